import CKVM
import Glibc

/// What the numbers were measured on.
struct HostFacts {
    var cpuModel: String
    var onlineCPUs: Int
    var kernel: String
    var kvmModules: [String]
    var kvmAPIVersion: Int
    var loadAverage: String

    static func gather() -> HostFacts {
        var model = "unknown"
        if let text = readTextFile("/proc/cpuinfo") {
            for line in text.split(separator: "\n") where line.hasPrefix("model name") {
                if let colon = line.firstIndex(of: ":") {
                    model = line[line.index(after: colon)...].trimmingSpaces
                }
                break
            }
        }
        var names = utsname()
        uname(&names)
        let release = withUnsafeBytes(of: &names.release) {
            String(cString: $0.bindMemory(to: CChar.self).baseAddress!)
        }
        let machine = withUnsafeBytes(of: &names.machine) {
            String(cString: $0.bindMemory(to: CChar.self).baseAddress!)
        }

        // Built-in or loaded, a KVM module shows up in /sys/module.
        var modules: [String] = []
        if let dir = opendir("/sys/module") {
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) {
                    String(cString: $0.bindMemory(to: CChar.self).baseAddress!)
                }
                if name == "kvm" || name.hasPrefix("kvm_") { modules.append(name) }
            }
            closedir(dir)
        }
        modules.sort()

        var api = -1
        let fd = open("/dev/kvm", O_RDWR | O_CLOEXEC)
        if fd >= 0 {
            api = Int(ckvm_ioctl(fd, CKVM_GET_API_VERSION, 0))
            close(fd)
        }
        let load =
            readTextFile("/proc/loadavg").map { $0.split(separator: " ").prefix(3).joined(separator: " ") } ?? "?"
        return HostFacts(
            cpuModel: model, onlineCPUs: Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))),
            kernel: "Linux \(release) \(machine)", kvmModules: modules, kvmAPIVersion: api,
            loadAverage: load)
    }
}

extension Substring {
    var trimmingSpaces: String {
        var s = self
        while let c = s.first, c == " " || c == "\t" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\t" { s.removeLast() }
        return String(s)
    }
}

// MARK: Statistics

func median(_ values: [Double]) -> Double {
    guard !values.isEmpty else { return .nan }
    let s = values.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

func fmt(_ value: Double, _ decimals: Int) -> String {
    guard value.isFinite else { return "n/a" }
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let rounded = (abs(value) * scale).rounded()
    let whole = Int(rounded / scale)
    let frac = Int(rounded - Double(whole) * scale)
    var text = (value < 0 && rounded != 0 ? "-" : "") + String(whole)
    if decimals > 0 {
        let f = String(frac)
        text += "." + String(repeating: "0", count: decimals - f.count) + f
    }
    return text
}

func padLeft(_ s: String, _ width: Int) -> String {
    String(repeating: " ", count: max(0, width - s.count)) + s
}

func padRight(_ s: String, _ width: Int) -> String {
    s + String(repeating: " ", count: max(0, width - s.count))
}
