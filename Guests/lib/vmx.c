/* vmx.c - nested VMX helpers for C guests. See include/vmx.h.
 * Follows the KVM selftests' lib/x86/vmx.c: prepare_for_vmx_operation,
 * load_vmcs, init_vmcs_control_fields, init_vmcs_host_state,
 * init_vmcs_guest_state. Differences: controls are adjusted to both the
 * allowed-0 and allowed-1 settings (TRUE MSRs only when IA32_VMX_BASIC[55]),
 * no secondary controls, no shadow VMCS, and fields that only exist with
 * optional features (PML index, interrupt status, PAT/EFER/PERF_GLOBAL_CTRL
 * guest fields, preemption timer) are not written. */
#include "guest.h"
#include "idt.h"
#include "vmx.h"

void vmx_prepare(struct vmx_pages *vmx) {
    /* CR0/CR4 bits fixed in VMX operation: FIXED0 bits must be 1, bits clear
     * in FIXED1 must be 0. */
    uintptr_t cr0 = read_cr0();
    cr0 &= rdmsr(MSR_IA32_VMX_CR0_FIXED1);
    cr0 |= rdmsr(MSR_IA32_VMX_CR0_FIXED0);
    write_cr0(cr0);

    uintptr_t cr4 = read_cr4();
    cr4 &= rdmsr(MSR_IA32_VMX_CR4_FIXED1);
    cr4 |= rdmsr(MSR_IA32_VMX_CR4_FIXED0);
    cr4 |= CR4_VMXE;
    write_cr4(cr4);

    /* Lock bit + VMXON outside SMX; without them VMXON #GPs. */
    uint64_t required = FEAT_CTL_LOCKED | FEAT_CTL_VMX_OUTSIDE_SMX;
    uint64_t feature_control = rdmsr(MSR_IA32_FEAT_CTL);
    if ((feature_control & required) != required)
        wrmsr(MSR_IA32_FEAT_CTL, feature_control | required);

    memset(vmx->vmxon, 0, sizeof(vmx->vmxon));
    *(volatile uint32_t *)vmx->vmxon = vmcs_revision();
}

int vmx_load_vmcs(struct vmx_pages *vmx) {
    memset(vmx->vmcs, 0, sizeof(vmx->vmcs));
    memset(vmx->msr_bitmap, 0, sizeof(vmx->msr_bitmap));
    *(volatile uint32_t *)vmx->vmcs = vmcs_revision();
    int r = vmclear((uintptr_t)vmx->vmcs);
    if (r) return 10 + r;
    r = vmptrld((uintptr_t)vmx->vmcs);
    if (r) return 20 + r;
    return 0;
}

static int failures;

static void vmw(uint64_t field, uint64_t value) {
    if (vmwrite(field, value)) failures++;
}

/* (want | allowed-0) & allowed-1: bits the CPU requires set, and only bits
 * it allows. */
static uint32_t adjust(uint32_t msr, uint32_t want) {
    uint64_t cap = rdmsr(msr);
    return (want | (uint32_t)cap) & (uint32_t)(cap >> 32);
}

/* VMX access rights of the GDT segment `selector`; 0x10000 (unusable) for a
 * null selector. */
static uint32_t access_rights(uint16_t selector) {
    if ((selector & ~7u) == 0) return 0x10000;
    uint64_t d = gdt_desc(selector);
    return (uint32_t)(((d >> 40) & 0xFF) | (((d >> 52) & 0xF) << 12));
}

static void init_control_fields(struct vmx_pages *vmx, struct vmx_controls *c) {
    c->true_msrs = (rdmsr(MSR_IA32_VMX_BASIC) & VMX_BASIC_TRUE_CTLS) != 0;
    c->pin = adjust(c->true_msrs ? MSR_IA32_VMX_TRUE_PINBASED_CTLS : MSR_IA32_VMX_PINBASED_CTLS, 0);
    /* No I/O exiting (neither unconditional nor bitmaps: never required-1),
     * no MSR bitmaps (every L2 RDMSR/WRMSR would exit; L2 does none), no
     * secondary controls. */
    c->proc = adjust(c->true_msrs ? MSR_IA32_VMX_TRUE_PROCBASED_CTLS : MSR_IA32_VMX_PROCBASED_CTLS, 0);
    c->exit = adjust(c->true_msrs ? MSR_IA32_VMX_TRUE_EXIT_CTLS : MSR_IA32_VMX_EXIT_CTLS,
                     VM_EXIT_HOST_ADDR_SPACE_SIZE);           /* 64-bit host */
    c->entry = adjust(c->true_msrs ? MSR_IA32_VMX_TRUE_ENTRY_CTLS : MSR_IA32_VMX_ENTRY_CTLS,
                      VM_ENTRY_IA32E_MODE);                   /* 64-bit guest */

    vmw(PIN_BASED_VM_EXEC_CONTROL, c->pin);
    vmw(CPU_BASED_VM_EXEC_CONTROL, c->proc);
    vmw(EXCEPTION_BITMAP, 0);
    vmw(PAGE_FAULT_ERROR_CODE_MASK, 0);
    vmw(PAGE_FAULT_ERROR_CODE_MATCH, (uint32_t)-1);          /* never match */
    vmw(CR3_TARGET_COUNT, 0);
    vmw(VM_EXIT_CONTROLS, c->exit);
    vmw(VM_EXIT_MSR_STORE_COUNT, 0);
    vmw(VM_EXIT_MSR_LOAD_COUNT, 0);
    vmw(VM_ENTRY_CONTROLS, c->entry);
    vmw(VM_ENTRY_MSR_LOAD_COUNT, 0);
    vmw(VM_ENTRY_INTR_INFO_FIELD, 0);
    vmw(TPR_THRESHOLD, 0);
    vmw(CR0_GUEST_HOST_MASK, 0);
    vmw(CR4_GUEST_HOST_MASK, 0);
    vmw(CR0_READ_SHADOW, read_cr0());
    vmw(CR4_READ_SHADOW, read_cr4());
    vmw(MSR_BITMAP, (uintptr_t)vmx->msr_bitmap);
}

static void init_host_state(const struct vmx_controls *c) {
    vmw(HOST_ES_SELECTOR, get_es());
    vmw(HOST_CS_SELECTOR, get_cs());
    vmw(HOST_SS_SELECTOR, get_ss());
    vmw(HOST_DS_SELECTOR, get_ds());
    vmw(HOST_FS_SELECTOR, get_fs());
    vmw(HOST_GS_SELECTOR, get_gs());
    vmw(HOST_TR_SELECTOR, get_tr());
    if (c->exit & VM_EXIT_LOAD_IA32_PAT) vmw(HOST_IA32_PAT, rdmsr(0x277));
    if (c->exit & VM_EXIT_LOAD_IA32_EFER) vmw(HOST_IA32_EFER, rdmsr(MSR_EFER));
    vmw(HOST_IA32_SYSENTER_CS, rdmsr(MSR_IA32_SYSENTER_CS));
    vmw(HOST_CR0, read_cr0());
    vmw(HOST_CR3, read_cr3());
    vmw(HOST_CR4, read_cr4());
    vmw(HOST_FS_BASE, rdmsr(MSR_FS_BASE));
    vmw(HOST_GS_BASE, rdmsr(MSR_GS_BASE));
    vmw(HOST_TR_BASE, gdt_desc_base(get_tr()));
    vmw(HOST_GDTR_BASE, get_gdt().base);
    vmw(HOST_IDTR_BASE, get_idt().base);
    vmw(HOST_IA32_SYSENTER_ESP, rdmsr(MSR_IA32_SYSENTER_ESP));
    vmw(HOST_IA32_SYSENTER_EIP, rdmsr(MSR_IA32_SYSENTER_EIP));
    /* HOST_RSP / HOST_RIP: written by vmx_launch. */
}

static void init_guest_state(void *rip, void *rsp) {
    uint16_t es = get_es(), cs = get_cs(), ss = get_ss(), ds = get_ds(), fs = get_fs(), gs = get_gs(), tr = get_tr();
    struct desc_ptr gdt = get_gdt(), idt = get_idt();

    vmw(GUEST_ES_SELECTOR, es);
    vmw(GUEST_CS_SELECTOR, cs);
    vmw(GUEST_SS_SELECTOR, ss);
    vmw(GUEST_DS_SELECTOR, ds);
    vmw(GUEST_FS_SELECTOR, fs);
    vmw(GUEST_GS_SELECTOR, gs);
    vmw(GUEST_LDTR_SELECTOR, 0);
    vmw(GUEST_TR_SELECTOR, tr);

    vmw(VMCS_LINK_POINTER, ~0ull);
    vmw(GUEST_IA32_DEBUGCTL, 0);

    vmw(GUEST_ES_LIMIT, 0xFFFFFFFFu);
    vmw(GUEST_CS_LIMIT, 0xFFFFFFFFu);
    vmw(GUEST_SS_LIMIT, 0xFFFFFFFFu);
    vmw(GUEST_DS_LIMIT, 0xFFFFFFFFu);
    vmw(GUEST_FS_LIMIT, 0xFFFFFFFFu);
    vmw(GUEST_GS_LIMIT, 0xFFFFFFFFu);
    vmw(GUEST_LDTR_LIMIT, 0xFFFFFFFFu);
    vmw(GUEST_TR_LIMIT, 0x67);
    vmw(GUEST_GDTR_LIMIT, gdt.limit);
    vmw(GUEST_IDTR_LIMIT, idt.limit);
    vmw(GUEST_ES_AR_BYTES, access_rights(es));        /* 0xc093 with our GDT */
    vmw(GUEST_CS_AR_BYTES, access_rights(cs));        /* 0xa09b */
    vmw(GUEST_SS_AR_BYTES, access_rights(ss));        /* 0xc093 */
    vmw(GUEST_DS_AR_BYTES, access_rights(ds));
    vmw(GUEST_FS_AR_BYTES, access_rights(fs));
    vmw(GUEST_GS_AR_BYTES, access_rights(gs));
    vmw(GUEST_LDTR_AR_BYTES, 0x10000);                /* unusable */
    vmw(GUEST_TR_AR_BYTES, 0x8b);                     /* busy 64-bit TSS, present */
    vmw(GUEST_INTERRUPTIBILITY_INFO, 0);
    vmw(GUEST_ACTIVITY_STATE, 0);
    vmw(GUEST_SYSENTER_CS, rdmsr(MSR_IA32_SYSENTER_CS));

    vmw(GUEST_CR0, read_cr0());
    vmw(GUEST_CR3, read_cr3());
    vmw(GUEST_CR4, read_cr4());
    vmw(GUEST_ES_BASE, 0);
    vmw(GUEST_CS_BASE, 0);
    vmw(GUEST_SS_BASE, 0);
    vmw(GUEST_DS_BASE, 0);
    vmw(GUEST_FS_BASE, rdmsr(MSR_FS_BASE));
    vmw(GUEST_GS_BASE, rdmsr(MSR_GS_BASE));
    vmw(GUEST_LDTR_BASE, 0);
    vmw(GUEST_TR_BASE, gdt_desc_base(tr));
    vmw(GUEST_GDTR_BASE, gdt.base);
    vmw(GUEST_IDTR_BASE, idt.base);
    vmw(GUEST_DR7, 0x400);
    vmw(GUEST_RSP, (uintptr_t)rsp);
    vmw(GUEST_RIP, (uintptr_t)rip);
    vmw(GUEST_RFLAGS, 2);
    vmw(GUEST_PENDING_DBG_EXCEPTIONS, 0);
    vmw(GUEST_SYSENTER_ESP, rdmsr(MSR_IA32_SYSENTER_ESP));
    vmw(GUEST_SYSENTER_EIP, rdmsr(MSR_IA32_SYSENTER_EIP));
}

int vmx_prepare_vmcs(struct vmx_pages *vmx, void *l2_rip, void *l2_rsp, struct vmx_controls *out) {
    struct vmx_controls c;
    failures = 0;
    init_control_fields(vmx, &c);
    init_host_state(&c);
    init_guest_state(l2_rip, l2_rsp);
    if (out) *out = c;
    return failures;
}
