extension Machine {
    public func attachPCITestDevice() throws { throw ConfigurationError("pci-testdev is not there yet") }
}
