// GuestBuilder: builds the guests listed in <target>/guests.list from source
// with the toolchain's clang, ld.lld and llvm-objcopy (through
// <target>/build-guest.sh), one build command per guest, each emitting a Swift
// file that embeds the guest's bytes; plus one command for the index
// (GuestImage.all and named(_:)).
import Foundation
import PackagePlugin

@main
struct GuestBuilder: BuildToolPlugin {
    struct Entry {
        var name, kind, mode, load, entry, source, summary: String
    }

    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        guard let target = target as? SwiftSourceModuleTarget else { return [] }
        let dir = target.directoryURL
        let manifest = dir.appending(path: "guests.list")
        let script = dir.appending(path: "build-guest.sh")
        let entries = try parse(manifest)

        let clang = try context.tool(named: "clang").url
        let lld = try context.tool(named: "ld.lld").url
        let objcopy = try context.tool(named: "llvm-objcopy").url

        // Everything a guest may include or link: any change rebuilds all guests.
        var shared = [script]
        for sub in ["include", "lib"] {
            shared += try files(under: dir.appending(path: sub))
        }

        let work = context.pluginWorkDirectoryURL
        let objects = work.appending(path: "obj")
        var commands: [Command] = []
        for e in entries {
            let output = work.appending(path: "Guest_\(e.name).swift")
            let source = dir.appending(path: e.source)
            commands.append(.buildCommand(
                displayName: "Building guest \(e.name)",
                executable: URL(filePath: "/bin/sh"),
                arguments: [script.path(), "guest",
                            clang.path(), lld.path(), objcopy.path(),
                            dir.path(), objects.path(), output.path(),
                            e.name, e.kind, e.mode, e.load, e.entry, e.source, e.summary],
                inputFiles: [source] + shared,
                outputFiles: [output]))
        }
        let index = work.appending(path: "GuestIndex.swift")
        commands.append(.buildCommand(
            displayName: "Indexing guests",
            executable: URL(filePath: "/bin/sh"),
            arguments: [script.path(), "index", index.path()] + entries.map(\.name),
            inputFiles: [manifest, script],
            outputFiles: [index]))
        return commands
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
                throw PluginError("\(manifest.path()):\(number + 1): expected 'name kind mode load entry source summary'")
            }
            let e = Entry(name: fields[0], kind: fields[1], mode: fields[2], load: fields[3],
                          entry: fields[4], source: fields[5], summary: fields[6])
            guard e.name.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") }),
                  e.name.first?.isLetter == true else {
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
