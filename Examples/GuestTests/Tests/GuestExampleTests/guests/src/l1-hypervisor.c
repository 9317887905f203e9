/* l1-hypervisor: a guest hypervisor (L1) that launches one L2 with the
 * guest library's VMX or SVM helpers (whichever the CPU's vendor has), as the
 * KVM selftests' vmx.c / svm.c do. L2 (l2_checkpoint) reports l2_entered=1,
 * asks for a nested-state dump (HC_DUMP_NESTED) and stage 3 while it runs, then
 * exits to L1 with VMCALL/VMMCALL and RAX = 0x12345678. Exceptions in L1 or L2
 * are reported by the IDT (the test fails on them). */
#include "guest.h"
#include "idt.h"
#include "probe.h"
#include "svm.h"
#include "vmx.h"

#define L2_RAX 0x12345678u

static uint8_t l2_stack[8192] __attribute__((aligned(16)));
static struct vmx_pages vmx;
static struct svm_pages svm;

static NORETURN void l2_vmx(void) {
    l2_checkpoint();
    __asm__ volatile("mov %0, %%rax\n\tvmcall\n\tud2" :: "i"(L2_RAX) : "rax", "memory");
    __builtin_unreachable();
}

static NORETURN void l2_svm(void) {
    l2_checkpoint();
    __asm__ volatile("mov %0, %%rax\n\tvmmcall\n\tud2" :: "i"(L2_RAX) : "rax", "memory");
    __builtin_unreachable();
}

static void run_vmx(void) {
    vmx_prepare(&vmx);
    GUEST_ASSERT_EQ(vmxon((uintptr_t)vmx.vmxon), 0);
    GUEST_ASSERT_EQ(vmx_load_vmcs(&vmx), 0);
    struct vmx_controls c;
    GUEST_ASSERT_EQ(vmx_prepare_vmcs(&vmx, (void *)l2_vmx, l2_stack + sizeof(l2_stack) - 8, &c), 0);
    int st = vmx_launch();
    guest_level = 1;
    idt_install();                          /* a VM exit sets the IDTR limit to 0xffff */
    GUEST_ASSERT_EQ(st, 0);
    GUEST_ASSERT_EQ(vmreadz(VM_EXIT_REASON), EXIT_REASON_VMCALL);
    report("l2_rax", vmx_l2_rax);
    vmxoff();
}

static void run_svm(void) {
    svm_enable(&svm);
    svm_vmcb_setup(&svm, (void *)l2_svm, l2_stack + sizeof(l2_stack) - 8);
    svm_vmrun((uintptr_t)&svm.vmcb);
    guest_level = 1;
    GUEST_ASSERT_EQ(svm_exit_code(&svm.vmcb), SVM_EXIT_VMMCALL);
    report("l2_rax", svm.vmcb.save.rax);
}

int main(void) {
    idt_install();
    struct cpu_id id;
    cpu_identify(&id);
    report("vmx", id.vmx);
    report("svm", id.svm);
    GUEST_ASSERT(id.vmx || id.svm);          /* the host offered one (GuestOptions.nested) */
    sync_stage(1);
    if (id.vmx) run_vmx(); else run_svm();
    sync_stage(4);
    return 0;
}
