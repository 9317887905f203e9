// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "swift-kvm",
    products: [
        .library(name: "KVMCore", targets: ["KVMCore"]),
        .executable(name: "kvmrun", targets: ["kvmrun"]),
        // The test kit: guests in C beside Swift tests, as the kernel's KVM selftests
        // (Sources/KVMTesting/KVMTesting.docc). GuestImage is the type the
        // GuestBuilder plugin's generated files extend.
        .library(name: "KVMTesting", targets: ["KVMTesting"]),
        // The same without XCTest and Swift Testing (runners, benchmarks).
        .library(name: "KVMTestingCore", targets: ["KVMTestingCore"]),
        .library(name: "KVMGuestImage", targets: ["KVMGuestImage"]),
        .plugin(name: "GuestBuilder", targets: ["GuestBuilder"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // <linux/kvm.h> for Swift: ioctl request numbers and non-variadic ioctl wrappers.
        .target(name: "CKVM"),
        // The library. Imports Glibc and CKVM only (no Foundation), so kvmrun starts fast.
        .target(name: "KVMCore", dependencies: ["CKVM", "KVMGuestImage"]),
        // A guest program embedded as bytes (what the GuestBuilder plugin makes); no
        // dependencies. KVMCore loads it (`GuestImage.bootImage()`).
        .target(name: "KVMGuestImage"),
        // Test guests, built from source by the GuestBuilder plugin and embedded as bytes.
        .target(
            name: "Guests", dependencies: ["KVMGuestImage"], path: "Guests",
            exclude: ["src", "include", "lib", "build-guest.sh", "README.md"],
            sources: ["Swift"],
            plugins: ["GuestBuilder"]),
        .plugin(name: "GuestBuilder", capability: .buildTool()),
        // The test-side API: run a GuestImage fresh or reset from a snapshot, stages,
        // facts, guest failures as XCTest / Swift Testing issues at the guest's file:line.
        .target(name: "KVMTestingCore", dependencies: ["KVMCore", "KVMGuestImage"]),
        .target(name: "KVMTesting", dependencies: ["KVMTestingCore", "KVMCore", "KVMGuestImage"]),
        // The command line. Shipped statically linked (Scripts/release): no
        // dynamic loading at start, about half of a Swift program's start-up
        // cost and 3 MiB (kvm-bench). The manifest carries no unsafe flags, so
        // a plain `swift build -c release` links and the product can be a
        // versioned dependency.
        .executableTarget(
            name: "kvmrun",
            dependencies: [
                "KVMCore", "Guests",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        // Prints the benchmark table: KVMCore and kvmrun against the C baseline
        // (Sources/kvm-baseline/main.c: the same work with raw ioctls, which
        // kvm-bench builds with plain `cc -O2 -static`, as a C program ships).
        .executableTarget(
            name: "kvm-bench", dependencies: ["KVMCore", "Guests", "KVMTestingCore"],
            exclude: ["guests"], plugins: ["GuestBuilder"]),
        // Runs inside the nested lab's L1 (Tools/nested-lab): checks that need KVMCore itself.
        .executableTarget(name: "nested-lab-runner", dependencies: ["KVMCore", "Guests"]),
        // Test inputs both test targets build (a synthetic bzImage).
        .target(name: "TestFixtures", dependencies: ["KVMCore"], path: "Tests/Fixtures"),
        .testTarget(name: "KVMCoreTests", dependencies: ["KVMCore", "Guests", "TestFixtures"]),
        .testTarget(name: "kvmrunTests", dependencies: ["KVMCore", "Guests", "TestFixtures"]),
        // The test kit's own tests; their guests are built by the plugin as a user's are.
        .testTarget(
            name: "KVMTestingTests", dependencies: ["KVMTesting"],
            exclude: ["guests"], plugins: ["GuestBuilder"]),
    ],
    swiftLanguageModes: [.v6]
)
