// swift-tools-version:5.4
// libFuzzer targets for swift-kvm's parsers of untrusted input. A package of its
// own, so the main package's `swift build` and `swift test` never see the fuzzer
// flags. Tools version 5.4 on purpose: from 5.5 SwiftPM renames an executable's
// `main` so tests can link it, and the link then wants a `<target>_main` that a
// libFuzzer target (whose `main` is libFuzzer's) does not have. Build and run with `Fuzz/run` (see Docs/HARDENING.md); by hand:
//
//   swift build --package-path Fuzz --scratch-path .build-fuzz \
//       -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
//   .build-fuzz/debug/fuzz-elf Fuzz/Corpus/fuzz-elf
import Foundation
import PackageDescription

// A path dependency's identity is its directory's name, whatever the checkout is called.
let mainPackage = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().lastPathComponent.lowercased()

let kvmCore: Target.Dependency = .product(name: "KVMCore", package: mainPackage)

// The fuzz targets reach KVMCore's `package` API (Parse, hex, the JSON
// renderings) as the main package's own targets do: they are compiled with its
// package name, which SwiftPM derives from the identity (non-alphanumerics as
// '_'). Tools 5.4 passes no package name of its own.
let packageName = String(mainPackage.map { $0.isLetter || $0.isNumber ? $0 : "_" })
let inMainPackage: [SwiftSetting] = [.unsafeFlags(["-package-name", packageName])]

/// One libFuzzer executable: `LLVMFuzzerTestOneInput` in Sources/<name>/main.swift.
func fuzzTarget(_ name: String) -> Target {
    .executableTarget(
        name: name, dependencies: [kvmCore, "FuzzSupport"], path: "Sources/\(name)",
        swiftSettings: inMainPackage)
}

let package = Package(
    name: "swift-kvm-fuzz",
    dependencies: [.package(path: "..")],
    targets: [
        .target(name: "FuzzSupport", dependencies: [kvmCore], swiftSettings: inMainPackage),
        fuzzTarget("fuzz-elf"),
        fuzzTarget("fuzz-nested-state"),
        fuzzTarget("fuzz-parse"),
        fuzzTarget("fuzz-multiboot"),
        fuzzTarget("fuzz-snapshot"),
        fuzzTarget("fuzz-linux"),
    ]
)
