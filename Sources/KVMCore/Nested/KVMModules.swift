/// A loaded KVM kernel module and its parameters, read from /sys/module.
public struct KVMModule: Equatable, Sendable {
    /// The module's name ("kvm", "kvm_intel", "kvm_amd").
    public let name: String
    /// Parameter name → value, as sysfs shows them ("Y", "N", "1", "0", …).
    public let parameters: [(String, String)]

    /// A module from its name and parameters.
    public init(name: String, parameters: [(String, String)]) {
        self.name = name
        self.parameters = parameters
    }

    /// Same name and the same parameters in the same order.
    public static func == (a: KVMModule, b: KVMModule) -> Bool {
        a.name == b.name && a.parameters.elementsEqual(b.parameters, by: ==)
    }

    /// The value of parameter `name`; nil when the module has none.
    public func parameter(_ name: String) -> String? {
        parameters.first { $0.0 == name }?.1
    }

    /// "Y"/"1" → true, "N"/"0" → false, anything else nil.
    public func flag(_ name: String) -> Bool? {
        switch parameter(name) {
        case "Y", "y", "1": true
        case "N", "n", "0": false
        default: nil
        }
    }

    /// The hardware-backed vendor modules; anything else (kvm_pvm, …) is not.
    public var isHardwareVendorModule: Bool { name == "kvm_intel" || name == "kvm_amd" }

    /// The loaded modules named kvm or kvm_*, from `root` (default /sys/module).
    public static func loaded(root: String = "/sys/module") -> [KVMModule] {
        Files.list(root).filter { $0 == "kvm" || $0.hasPrefix("kvm_") }.map { name in
            let dir = "\(root)/\(name)/parameters"
            let parameters = Files.list(dir).compactMap { p in Files.text("\(dir)/\(p)").map { (p, $0) } }
            return KVMModule(name: name, parameters: parameters)
        }
    }
}
