// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "swift-kvm",
    products: [
        .library(name: "KVMCore", targets: ["KVMCore"]),
        .executable(name: "kvmrun", targets: ["kvmrun"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // <linux/kvm.h> for Swift: ioctl request numbers and non-variadic ioctl wrappers.
        .target(name: "CKVM"),
        // The library. Imports Glibc and CKVM only (no Foundation), so kvmrun starts fast.
        .target(name: "KVMCore", dependencies: ["CKVM"]),
        // Test guests, built from source by the GuestBuilder plugin and embedded as bytes.
        .target(name: "Guests", path: "Guests",
                exclude: ["src", "include", "lib", "build-guest.sh", "README.md"],
                sources: ["Swift"],
                plugins: ["GuestBuilder"]),
        .plugin(name: "GuestBuilder", capability: .buildTool()),
        // The command line. Shipped statically linked (Scripts/release): no
        // dynamic loading at start, about half of a Swift program's start-up
        // cost and 3 MiB (kvm-bench). The manifest carries no unsafe flags, so
        // a plain `swift build -c release` links and the product can be a
        // versioned dependency.
        .executableTarget(name: "kvmrun", dependencies: [
            "KVMCore", "Guests",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // The benchmark's baseline: the same work done with raw ioctls in C.
        .executableTarget(name: "kvm-baseline", path: "Sources/kvm-baseline"),
        // Prints the benchmark table: KVMCore and kvmrun against the C baseline.
        .executableTarget(name: "kvm-bench", dependencies: ["KVMCore", "Guests"]),
        // Runs inside the nested lab's L1 (Tools/nested-lab): checks that need KVMCore itself.
        .executableTarget(name: "nested-lab-runner", dependencies: ["KVMCore", "Guests"]),
        .testTarget(name: "KVMCoreTests", dependencies: ["KVMCore", "Guests"]),
        .testTarget(name: "kvmrunTests", dependencies: ["KVMCore", "Guests"]),
    ],
    swiftLanguageModes: [.v5]
)
