/* svm.c - nested SVM helpers for C guests. See include/svm.h.
 * Follows the KVM selftests' lib/x86/svm.c (generic_svm_setup). */
#include "guest.h"
#include "idt.h"
#include "svm.h"

void svm_enable(struct svm_pages *svm) {
    wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SVME);
    wrmsr(MSR_VM_HSAVE_PA, (uintptr_t)svm->hsave);
}

/* VMCB attributes from the GDT descriptor: bits 40-47 -> 0-7, 52-55 -> 8-11. */
static uint16_t seg_attrib(uint16_t selector) {
    if ((selector & ~7u) == 0) return 0;
    uint64_t d = gdt_desc(selector);
    return (uint16_t)(((d >> 40) & 0xFF) | (((d >> 52) & 0xF) << 8));
}

static void set_seg(struct vmcb_seg *seg, uint16_t selector, uint64_t base, uint32_t limit, uint16_t attrib) {
    seg->selector = selector;
    seg->attrib = attrib;
    seg->limit = limit;
    seg->base = base;
}

void svm_vmcb_setup(struct svm_pages *svm, void *l2_rip, void *l2_rsp) {
    struct vmcb *vmcb = &svm->vmcb;
    struct vmcb_save *save = &vmcb->save;
    struct vmcb_control *ctrl = &vmcb->control;
    uint64_t vmcb_pa = (uintptr_t)vmcb;

    memset(vmcb, 0, sizeof(*vmcb));
    memset(svm->msrpm, 0, sizeof(svm->msrpm));
    memset(svm->iopm, 0, sizeof(svm->iopm));
    /* FS, GS, TR, LDTR, KernelGsBase, STAR..., SYSENTER_* as L1 has them. */
    __asm__ volatile("vmsave %%rax" :: "a"(vmcb_pa) : "memory");

    struct desc_ptr gdt = get_gdt(), idt = get_idt();
    set_seg(&save->es, get_es(), 0, 0xFFFFFFFFu, seg_attrib(get_es()));
    set_seg(&save->cs, get_cs(), 0, 0xFFFFFFFFu, seg_attrib(get_cs()));
    set_seg(&save->ss, get_ss(), 0, 0xFFFFFFFFu, seg_attrib(get_ss()));
    set_seg(&save->ds, get_ds(), 0, 0xFFFFFFFFu, seg_attrib(get_ds()));
    set_seg(&save->gdtr, 0, gdt.base, gdt.limit, 0);
    set_seg(&save->idtr, 0, idt.base, idt.limit, 0);

    ctrl->asid = 1;
    save->cpl = 0;
    save->efer = rdmsr(MSR_EFER);
    save->cr4 = read_cr4();
    save->cr3 = read_cr3();
    save->cr0 = read_cr0();
    save->dr7 = read_dr7();
    save->dr6 = read_dr6();
    save->cr2 = read_cr2();
    uint64_t v;
    save->g_pat = rdmsr_safe(MSR_IA32_CR_PAT, &v) ? 0x0007040600070406ull : v;
    save->dbgctl = rdmsr_safe(MSR_IA32_DEBUGCTL, &v) ? 0 : v;
    ctrl->intercept = (1ull << INTERCEPT_VMRUN) | (1ull << INTERCEPT_VMMCALL);
    ctrl->msrpm_base_pa = (uintptr_t)svm->msrpm;
    ctrl->iopm_base_pa = (uintptr_t)svm->iopm;
    ctrl->nested_ctl = 0;                   /* nested paging off: L2 uses L1's CR3 */

    save->rip = (uintptr_t)l2_rip;
    save->rsp = (uintptr_t)l2_rsp;
    save->rflags = 0x2;
    save->rax = 0;
}
