/* nested-vmx-l2: a VMX L1 that runs one L2 (KVM selftests' lib/x86/vmx.c:
 * prepare_for_vmx_operation, load_vmcs, prepare_vmcs; no EPT/VPID, no I/O or
 * MSR exiting, L2 = flat 64-bit long mode sharing L1's CR3/GDT/IDT/TR).
 *
 * L2: sets guest_level = 2, HC_REPORT l2_entered=1, HC_DUMP_NESTED (the host
 * dumps nested state while L2 runs), HC_SYNC 3, then RAX = 0x12345678 and
 * VMCALL. Its port I/O does not exit to L1, so these hostcalls go straight to
 * the host VMM.
 *
 * Stages (HC_SYNC): 1 before reading IA32_VMX_BASIC and CR4.VMXE/VMXON; 2 after VMXON + VMCLEAR/VMPTRLD
 * + VMCS set-up, just before VMLAUNCH; 3 from L2; 4 right after the VM exit.
 *
 * Serial (numeric key=value pairs are also HC_REPORT facts, same key):
 *   probe vendor=GenuineIntel vmx=1 vmx_l2=run                  vmx_l2: 0 skipped, 1 run
 *   vmx vmx_basic=0x... vmx_revision=0x... true_ctls=1
 *   vmx vmxon_pa=0x... vmcs_pa=0x... l2_rip=0x... l2_rsp=0x... pin_ctls=0x16 proc_ctls=0x... exit_ctls=0x... entry_ctls=0x... vmwrite_failures=0
 *   l2 entered                                                   (printed by L2)
 *   probe vmlaunch=ok exit_reason=18 l2_rax=0x12345678 l2_exit_rip=0x... exit_qualification=0x0 exit_insn_len=3
 *   probe vmxoff=ok
 * VMLAUNCH failing: `probe vmlaunch=fail vmlaunch_status=2 vm_instruction_error=7` then HC_FAIL.
 * Without VMX (or on a non-Intel CPU): `probe vendor=... vmx=0 vmx_l2=skipped`.
 * Exceptions (L1 or L2) are reported by the IDT and end with HC_DONE 0.
 * HC_DONE 0 at the end; HC_FAIL if VMXON/VMPTRLD/VMLAUNCH fail, the exit reason
 * is not VMCALL (18) or L2's RAX is not 0x12345678.
 */
#include "guest.h"
#include "idt.h"
#include "probe.h"
#include "vmx.h"

#define L2_RAX 0x12345678u

static struct vmx_pages vmx;
static uint8_t l2_stack[8192] __attribute__((aligned(16)));

static NORETURN void l2_main(void) {
    l2_checkpoint();
    __asm__ volatile("mov %0, %%rax\n\t"
                     "vmcall\n\t"
                     "ud2"                  /* only if VMCALL did not exit */
                     :: "i"(L2_RAX) : "rax", "memory");
    __builtin_unreachable();
}

int main(void) {
    idt_install();
    struct cpu_id id;
    cpu_identify(&id);

    int run = launcher_begin(&id, "vmx", id.vmx, id.intel);
    if (!run) return 0;

    sync_stage(1);
    idt_step(1, "vmx_basic");
    uint64_t basic = rdmsr(MSR_IA32_VMX_BASIC);
    probe_begin("vmx");
    probe_hex("vmx_basic", basic);
    probe_hex("vmx_revision", basic & 0x7fffffffu);
    probe_dec("true_ctls", !!(basic & VMX_BASIC_TRUE_CTLS));
    probe_end();

    idt_step(2, "vmx_prepare");
    vmx_prepare(&vmx);                      /* CR0/CR4 fixed bits, CR4.VMXE, FEATURE_CONTROL */

    idt_step(3, "vmxon");
    int st = vmxon((uintptr_t)vmx.vmxon);
    if (st) {
        probe_begin("probe");
        probe_ok("vmxon", 0);
        probe_dec("vmxon_status", st);
        probe_end();
        fail("VMXON failed", __LINE__, st, 0);
    }

    idt_step(4, "vmptrld");
    st = vmx_load_vmcs(&vmx);
    if (st) {
        probe_begin("probe");
        probe_ok("vmptrld", 0);
        probe_dec("vmptrld_status", st);
        probe_end();
        fail("VMCLEAR/VMPTRLD failed", __LINE__, st, 0);
    }

    idt_step(5, "vmcs");
    struct vmx_controls c;
    void *l2_rsp = l2_stack + sizeof(l2_stack) - 8;
    int failures = vmx_prepare_vmcs(&vmx, (void *)l2_main, l2_rsp, &c);
    probe_begin("vmx");
    probe_hex("vmxon_pa", (uintptr_t)vmx.vmxon);
    probe_hex("vmcs_pa", (uintptr_t)vmx.vmcs);
    probe_hex("l2_rip", (uintptr_t)l2_main);
    probe_hex("l2_rsp", (uintptr_t)l2_rsp);
    probe_hex("pin_ctls", c.pin);
    probe_hex("proc_ctls", c.proc);
    probe_hex("exit_ctls", c.exit);
    probe_hex("entry_ctls", c.entry);
    probe_dec("vmwrite_failures", failures);
    probe_end();
    sync_stage(2);

    idt_step(6, "vmlaunch");
    st = vmx_launch();
    guest_level = 1;
    idt_install();                          /* a VM exit sets the IDTR limit to 0xffff */
    sync_stage(4);

    idt_step(7, "after-vmexit");
    if (st) {
        uint64_t err = vmreadz(VM_INSTRUCTION_ERROR);
        probe_begin("probe");
        probe_ok("vmlaunch", 0);
        probe_dec("vmlaunch_status", st);
        probe_dec("vm_instruction_error", err);
        probe_end();
        fail("VMLAUNCH failed", __LINE__, st, err);
    }
    uint64_t reason = vmreadz(VM_EXIT_REASON);
    probe_begin("probe");
    probe_ok("vmlaunch", 1);
    probe_dec("exit_reason", reason);
    probe_hex("l2_rax", vmx_l2_rax);
    probe_hex("l2_exit_rip", vmreadz(GUEST_RIP));
    probe_hex("exit_qualification", vmreadz(EXIT_QUALIFICATION));
    probe_dec("exit_insn_len", vmreadz(VM_EXIT_INSTRUCTION_LEN));
    probe_end();
    GUEST_ASSERT_EQ(reason, EXIT_REASON_VMCALL);
    GUEST_ASSERT_EQ(vmx_l2_rax, L2_RAX);

    idt_step(8, "vmxoff");
    st = vmxoff();
    probe_begin("probe");
    probe_ok("vmxoff", st == 0);
    probe_end();
    return 0;
}
