// GuestBuilder: builds the guests listed in a guests.list from source with the
// toolchain's clang, ld.lld and llvm-objcopy (through Guests/build-guest.sh),
// one build command per guest, each emitting a Swift file that embeds the
// guest's bytes; plus one command for the index (GuestImage.all and named(_:)).
//
// This package's `Guests` target: <target>/guests.list, <target>/build-guest.sh,
// <target>/include and <target>/lib, as always.
//
// Any other target (a user's, through the `GuestBuilder` product): the manifest
// is <target>/guests.list or <target>/guests/guests.list, guest sources are
// relative to the manifest's folder, and the guest library (include/, lib/,
// build-guest.sh) is this package's Guests folder, found from this file's path
// at plugin compile time (`#filePath`: PackagePlugin has no API for the
// plugin's own package), or else among the user package's dependencies. An include/ or lib/ folder beside the user's manifest
// comes first: its headers shadow the library's, its lib/*.c and lib/*.S are
// linked into every C guest, and a file with a library file's name replaces it.
// The generated files `import KVMGuestImage`, so the target depends on the
// KVMGuestImage or KVMTesting product.
import Foundation
import PackagePlugin

/// swift-kvm's Guests folder: Plugins/GuestBuilder/GuestBuilder.swift → ../../Guests.
let guestLibrary = URL(filePath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appending(path: "Guests")

@main
struct GuestBuilder: BuildToolPlugin {
    struct Entry {
        var name, kind, mode, load, entry, source, summary: String
    }

    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        guard let target = target as? SwiftSourceModuleTarget else { return [] }
        let fm = FileManager.default
        let ownScript = target.directoryURL.appending(path: "build-guest.sh")
        let isLibrary =
            fm.fileExists(atPath: ownScript.path())
            && fm.fileExists(atPath: target.directoryURL.appending(path: "guests.list").path())
        // dir: the manifest's folder (guest sources, and include/ lib/ that come first).
        var dir = target.directoryURL
        if !isLibrary && !fm.fileExists(atPath: dir.appending(path: "guests.list").path()) {
            dir = dir.appending(path: "guests")
        }
        let manifest = dir.appending(path: "guests.list")
        guard fm.fileExists(atPath: manifest.path()) else {
            throw PluginError(
                "target \(target.name): GuestBuilder needs \(target.directoryURL.path())/guests.list or guests/guests.list"
            )
        }
        let library = isLibrary ? dir : try locateGuestLibrary(from: context.package)
        let script = library.appending(path: "build-guest.sh")
        let entries = try parse(manifest)

        let clang = try context.tool(named: "clang").url
        let lld = try context.tool(named: "ld.lld").url
        let objcopy = try context.tool(named: "llvm-objcopy").url

        // Everything a guest may include or link: any change rebuilds all guests.
        var shared = [script]
        for sub in ["include", "lib"] {
            shared += try files(under: library.appending(path: sub))
            if !isLibrary { shared += try files(under: dir.appending(path: sub)) }
        }
        // Other targets: the library's folder (its include/ and lib/) for the script.
        let environment = isLibrary ? [:] : ["GUEST_LIBRARY": library.path()]

        let work = context.pluginWorkDirectoryURL
        let objects = work.appending(path: "obj")
        var commands: [Command] = []
        for e in entries {
            let output = work.appending(path: "Guest_\(e.name).swift")
            let source = dir.appending(path: e.source)
            commands.append(
                .buildCommand(
                    displayName: "Building guest \(e.name)",
                    executable: URL(filePath: "/bin/sh"),
                    arguments: [
                        script.path(), "guest",
                        clang.path(), lld.path(), objcopy.path(),
                        dir.path(), objects.path(), output.path(),
                        e.name, e.kind, e.mode, e.load, e.entry, e.source, e.summary,
                    ],
                    environment: environment,
                    inputFiles: [source] + shared,
                    outputFiles: [output]))
        }
        let index = work.appending(path: "GuestIndex.swift")
        commands.append(
            .buildCommand(
                displayName: "Indexing guests",
                executable: URL(filePath: "/bin/sh"),
                arguments: [script.path(), "index", index.path()] + entries.map(\.name),
                inputFiles: [manifest, script],
                outputFiles: [index]))
        return commands
    }

    /// swift-kvm's Guests folder: where this plugin's source was compiled from
    /// (`#filePath`), or else — a plugin built elsewhere — the Guests folder of
    /// the package among `package`'s dependencies (recursively) that has
    /// Guests/build-guest.sh and Plugins/GuestBuilder. PackagePlugin (Swift 6.3)
    /// gives a plugin the package it is applied in, not its own.
    func locateGuestLibrary(from package: Package) throws -> URL {
        let fm = FileManager.default
        func isLibrary(_ url: URL) -> Bool { fm.fileExists(atPath: url.appending(path: "build-guest.sh").path()) }
        if isLibrary(guestLibrary) { return guestLibrary }
        var queue = [package]
        var seen = Set<String>()
        while !queue.isEmpty {
            let p = queue.removeFirst()
            guard seen.insert(p.id).inserted else { continue }
            let guests = p.directoryURL.appending(path: "Guests")
            if isLibrary(guests), fm.fileExists(atPath: p.directoryURL.appending(path: "Plugins/GuestBuilder").path()) {
                return guests
            }
            queue += p.dependencies.map(\.package)
        }
        throw PluginError(
            "GuestBuilder: swift-kvm's guest library is neither at \(guestLibrary.path()) nor in a dependency's Guests/ folder"
        )
    }

    func parse(_ manifest: URL) throws -> [Entry] {
        let text = try String(contentsOf: manifest, encoding: .utf8)
        var entries: [Entry] = []
        var seen = Set<String>()
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let fields = line.split(maxSplits: 6, whereSeparator: { $0 == " " || $0 == "\t" })
                .map { $0.trimmingCharacters(in: .whitespaces) }
            guard fields.count == 7 else {
                throw PluginError(
                    "\(manifest.path()):\(number + 1): expected 'name kind mode load entry source summary'")
            }
            let e = Entry(
                name: fields[0], kind: fields[1], mode: fields[2], load: fields[3],
                entry: fields[4], source: fields[5], summary: fields[6])
            guard e.name.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") }),
                e.name.first?.isLetter == true
            else {
                throw PluginError("\(manifest.path()):\(number + 1): bad guest name '\(e.name)' (use a-z, 0-9, -)")
            }
            guard seen.insert(e.name).inserted else {
                throw PluginError("\(manifest.path()):\(number + 1): duplicate guest '\(e.name)'")
            }
            entries.append(e)
        }
        return entries
    }

    func files(under dir: URL) throws -> [URL] {
        guard let items = FileManager.default.enumerator(at: dir, includingPropertiesForKeys: nil) else { return [] }
        return items.compactMap { $0 as? URL }
            .filter { !$0.hasDirectoryPath }
            .sorted { $0.path() < $1.path() }
    }
}

struct PluginError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
