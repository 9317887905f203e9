// KVMTesting: the test kit's XCTest and Swift Testing entry points. One import
// gives the rest: KVMTestingCore (GuestMachine, Checkpoint, GuestRun, GuestFacts,
// GuestTestFailure), KVMGuestImage (GuestImage) and KVMCore (Machine, VCPU…).
@_exported import KVMCore
@_exported import KVMGuestImage
@_exported import KVMTestingCore
