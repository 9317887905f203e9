// swift-tools-version:6.0
// An example of swift-kvm's test kit used from another package, as a user's
// package would: guest code in C beside Swift tests (the kernel's KVM selftests'
// way). swift-kvm is a path dependency here; elsewhere it is
// .package(url: "https://…/swift-kvm", from: "…").
import PackageDescription

let package = Package(
    name: "GuestTests",
    dependencies: [
        .package(name: "swift-kvm", path: "../..")
    ],
    targets: [
        // The tests and their guests: guests/guests.list names the guests,
        // guests/src holds their C; the GuestBuilder plugin builds each with
        // the toolchain's clang and ld.lld and adds GuestImage.<name>.
        .testTarget(
            name: "GuestExampleTests",
            dependencies: [.product(name: "KVMTesting", package: "swift-kvm")],
            exclude: ["guests"],
            plugins: [.plugin(name: "GuestBuilder", package: "swift-kvm")])
    ]
)
