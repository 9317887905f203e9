import KVMCore
@_exported import KVMGuestImage

// KVMTestingCore: the test kit without XCTest or Swift Testing (Glibc + KVMCore),
// for runners and benchmarks; KVMTesting adds the test frameworks. A GuestImage
// becomes a BootImage with KVMCore's `GuestImage.bootImage()`.
