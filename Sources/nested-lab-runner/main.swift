// nested-lab-runner: the checks of the nested lab (Tools/nested-lab) that need
// KVMCore itself. It runs inside the lab's L1 (Linux + kvm_amd nested=1 under
// QEMU TCG); each command prints detail lines and one `PASS name` or
// `FAIL name: why` line, and exits 0 on PASS, 1 on FAIL, 2 on bad usage.
import Glibc

let usage = """
    usage: nested-lab-runner COMMAND
      check-host FILE STATUS      test 'host': kvmrun host --json output and exit status
      check-probe FILE STATUS     test 'probe': kvmrun probe output and exit status
      check-dump FILE STATUS      test 'nested-state-dump': kvmrun nested-state --builtin nested-svm-l2 --json
      save-restore                test 'save-restore-in-process'
      save DIR                    snapshots of the lab guest (nested-vmx-l2 or nested-svm-l2) at each stop, as DIR/stop-N.snap
      restore FILE...             test 'save-restore-new-process': restore the files here, finish, compare
      validator                   test 'nested-state-validator'
      chain                       test 'chain': L0 … L3
      linux-reset KERNEL INITRD   test 'linux-reset': boot Linux once, reset(to:) it per case
      l2-fast-reset KERNEL INITRD test 'l2-fast-reset': L2 Linux with L3 running, reset(to:) twice
      debug-msrs                  which saved MSRs a fresh vCPU refuses (debugging)
    """

let args = Array(CommandLine.arguments.dropFirst())
guard let command = args.first else {
    complain(usage + "\n")
    exit(2)
}

func status(_ text: String) -> Int32 {
    guard let value = Int32(text) else {
        complain("nested-lab-runner: \(text): not an exit status\n")
        exit(2)
    }
    return value
}

func needs(_ count: Int) {
    if args.count - 1 != count {
        complain(usage + "\n")
        exit(2)
    }
}

var passed: Bool
switch command {
case "check-host":
    needs(2)
    passed = test("host") { try checkHost(output: args[1], status: status(args[2])) }
case "check-probe":
    needs(2)
    passed = test("probe") { try checkProbe(output: args[1], status: status(args[2])) }
case "check-dump":
    needs(2)
    passed = test("nested-state-dump") { try checkNestedDump(output: args[1], status: status(args[2])) }
case "save-restore":
    needs(0)
    passed = test("save-restore-in-process") { try checkSaveRestoreInProcess() }
case "save":
    needs(1)
    do {
        try saveSnapshots(to: args[1])
        passed = true
    } catch {
        passed = verdict("save-restore-new-process", "saving: \(error)")
    }
case "restore":
    passed = test("save-restore-new-process") { try checkRestoreFiles(Array(args.dropFirst())) }
case "validator":
    needs(0)
    passed = test("nested-state-validator") { try checkValidator() }
case "debug-msrs":
    try debugMSRs()
    passed = true
case "chain":
    needs(0)
    passed = test("chain") { try checkChain() }
case "linux-reset":
    needs(2)
    passed = test("linux-reset") { try checkLinuxReset(kernel: args[1], initrd: args[2]) }
case "l2-fast-reset":
    needs(2)
    passed = test("l2-fast-reset") { try checkL2FastReset(kernel: args[1], initrd: args[2]) }
default:
    complain("nested-lab-runner: unknown command \(command)\n" + usage + "\n")
    exit(2)
}
exit(passed ? 0 : 1)
