/* nested-svm-l2: an SVM L1 that runs one L2 (KVM selftests' generic_svm_setup
 * + run_guest: nested paging off, L2 shares L1's CR3/GDT/IDT, ASID 1, VMRUN
 * and VMMCALL intercepted, no I/O or MSR intercepts).
 *
 * L2: sets guest_level = 2, HC_REPORT l2_entered=1, HC_DUMP_NESTED (the host
 * dumps nested state while L2 runs), HC_SYNC 3, then RAX = 0x12345678 and
 * VMMCALL. Its port I/O is not intercepted by L1, so these hostcalls go
 * straight to the host VMM.
 *
 * Stages (HC_SYNC): 1 before EFER.SVME; 2 after EFER.SVME + VM_HSAVE_PA + VMCB
 * set-up, just before VMRUN; 3 from L2; 4 right after the #VMEXIT (GIF = 0).
 *
 * Serial (numeric key=value pairs are also HC_REPORT facts, same key):
 *   probe vendor=AuthenticAMD svm=1 svm_l2=run                 svm_l2: 0 skipped, 1 run
 *   svm vmcb_pa=0x... hsave_pa=0x... asid=1 l2_rip=0x... l2_rsp=0x... intercept=0x300000000 efer=0x1d00
 *   l2 entered                                                  (printed by L2)
 *   probe vmrun=ok exitcode=0x81 l2_rax=0x12345678 l2_exit_rip=0x... next_rip=0x... exit_info_1=0x0
 * Without SVM (or on a non-AMD CPU): `probe vendor=GenuineIntel svm=0 svm_l2=skipped`.
 * Exceptions (L1 or L2) are reported by the IDT and end with HC_DONE 0.
 * HC_DONE 0 at the end; HC_FAIL if the exit code is not VMMCALL or L2's RAX
 * is not 0x12345678 (a bug in this guest or in the nested hypervisor).
 */
#include "guest.h"
#include "idt.h"
#include "probe.h"
#include "svm.h"

#define L2_RAX 0x12345678u

static struct svm_pages svm;
static uint8_t l2_stack[8192] __attribute__((aligned(16)));

static NORETURN void l2_main(void) {
    l2_checkpoint();
    __asm__ volatile("mov %0, %%rax\n\t"
                     "vmmcall\n\t"
                     "ud2"                  /* only if VMMCALL did not exit */
                     :: "i"(L2_RAX) : "rax", "memory");
    __builtin_unreachable();
}

int main(void) {
    idt_install();
    struct cpu_id id;
    cpu_identify(&id);

    int run = launcher_begin(&id, "svm", id.svm, id.amd);
    if (!run) return 0;

    sync_stage(1);
    idt_step(1, "efer.svme");
    svm_enable(&svm);

    idt_step(2, "vmcb");
    svm_vmcb_setup(&svm, (void *)l2_main, l2_stack + sizeof(l2_stack) - 8);
    struct vmcb *vmcb = &svm.vmcb;
    probe_begin("svm");
    probe_hex("vmcb_pa", (uintptr_t)vmcb);
    probe_hex("hsave_pa", (uintptr_t)svm.hsave);
    probe_dec("asid", vmcb->control.asid);
    probe_hex("l2_rip", vmcb->save.rip);
    probe_hex("l2_rsp", vmcb->save.rsp);
    probe_hex("intercept", vmcb->control.intercept);
    probe_hex("efer", vmcb->save.efer);
    probe_end();
    sync_stage(2);

    idt_step(3, "vmrun");
    svm_vmrun((uintptr_t)vmcb);
    guest_level = 1;
    sync_stage(4);

    idt_step(4, "after-vmexit");
    uint64_t code = svm_exit_code(vmcb);
    probe_begin("probe");
    probe_ok("vmrun", code == SVM_EXIT_VMMCALL);
    probe_hex("exitcode", code);
    probe_hex("l2_rax", vmcb->save.rax);
    probe_hex("l2_exit_rip", vmcb->save.rip);
    probe_hex("next_rip", vmcb->control.next_rip);
    probe_hex("exit_info_1", vmcb->control.exit_info_1);
    probe_end();
    GUEST_ASSERT_EQ(code, SVM_EXIT_VMMCALL);
    GUEST_ASSERT_EQ(vmcb->save.rax, L2_RAX);
    return 0;
}
