/* vmx.h - Intel VMX for C guests acting as an L1 hypervisor (lib/vmx.c).
 * Field encodings, controls and set-up follow the KVM selftests
 * (tools/testing/selftests/kvm: include/x86/vmx.h, lib/x86/vmx.c
 * prepare_for_vmx_operation, load_vmcs, init_vmcs_control_fields,
 * init_vmcs_host_state, init_vmcs_guest_state). No EPT, no VPID, no I/O or
 * MSR exiting: L2 shares L1's CR3, GDT and IDT, and its port I/O goes straight
 * to the host VMM, so a hostcall from L2 works like one from L1.
 */
#ifndef GUEST_VMX_H
#define GUEST_VMX_H

#include <stdint.h>
#include "guest.h"

#define MSR_IA32_FEAT_CTL              0x3Au
#define FEAT_CTL_LOCKED                (1u << 0)
#define FEAT_CTL_VMX_INSIDE_SMX        (1u << 1)
#define FEAT_CTL_VMX_OUTSIDE_SMX       (1u << 2)
#define MSR_IA32_SYSENTER_CS           0x174u
#define MSR_IA32_SYSENTER_ESP          0x175u
#define MSR_IA32_SYSENTER_EIP          0x176u
#define MSR_FS_BASE                    0xC0000100u
#define MSR_GS_BASE                    0xC0000101u
#define MSR_IA32_VMX_BASIC             0x480u
#define MSR_IA32_VMX_PINBASED_CTLS     0x481u
#define MSR_IA32_VMX_PROCBASED_CTLS    0x482u
#define MSR_IA32_VMX_EXIT_CTLS         0x483u
#define MSR_IA32_VMX_ENTRY_CTLS        0x484u
#define MSR_IA32_VMX_MISC              0x485u
#define MSR_IA32_VMX_CR0_FIXED0        0x486u
#define MSR_IA32_VMX_CR0_FIXED1        0x487u
#define MSR_IA32_VMX_CR4_FIXED0        0x488u
#define MSR_IA32_VMX_CR4_FIXED1        0x489u
#define MSR_IA32_VMX_PROCBASED_CTLS2   0x48Bu
#define MSR_IA32_VMX_TRUE_PINBASED_CTLS  0x48Du
#define MSR_IA32_VMX_TRUE_PROCBASED_CTLS 0x48Eu
#define MSR_IA32_VMX_TRUE_EXIT_CTLS    0x48Fu
#define MSR_IA32_VMX_TRUE_ENTRY_CTLS   0x490u
#define VMX_BASIC_TRUE_CTLS            (1ull << 55)
#define CR4_VMXE                       (1u << 13)

#define VM_EXIT_HOST_ADDR_SPACE_SIZE   0x00000200u
#define VM_EXIT_LOAD_IA32_PAT          0x00080000u
#define VM_EXIT_LOAD_IA32_EFER         0x00200000u
#define VM_ENTRY_IA32E_MODE            0x00000200u
#define CPU_BASED_UNCOND_IO_EXITING    0x01000000u
#define CPU_BASED_USE_IO_BITMAPS       0x02000000u

#define EXIT_REASON_TRIPLE_FAULT       2
#define EXIT_REASON_VMCALL             18
#define EXIT_REASON_FAILED_VMENTRY     0x80000000u

enum vmcs_field {
    VIRTUAL_PROCESSOR_ID        = 0x00000000,
    GUEST_ES_SELECTOR           = 0x00000800,
    GUEST_CS_SELECTOR           = 0x00000802,
    GUEST_SS_SELECTOR           = 0x00000804,
    GUEST_DS_SELECTOR           = 0x00000806,
    GUEST_FS_SELECTOR           = 0x00000808,
    GUEST_GS_SELECTOR           = 0x0000080a,
    GUEST_LDTR_SELECTOR         = 0x0000080c,
    GUEST_TR_SELECTOR           = 0x0000080e,
    HOST_ES_SELECTOR            = 0x00000c00,
    HOST_CS_SELECTOR            = 0x00000c02,
    HOST_SS_SELECTOR            = 0x00000c04,
    HOST_DS_SELECTOR            = 0x00000c06,
    HOST_FS_SELECTOR            = 0x00000c08,
    HOST_GS_SELECTOR            = 0x00000c0a,
    HOST_TR_SELECTOR            = 0x00000c0c,
    MSR_BITMAP                  = 0x00002004,
    VMCS_LINK_POINTER           = 0x00002800,
    GUEST_IA32_DEBUGCTL         = 0x00002802,
    HOST_IA32_PAT               = 0x00002c00,
    HOST_IA32_EFER              = 0x00002c02,
    PIN_BASED_VM_EXEC_CONTROL   = 0x00004000,
    CPU_BASED_VM_EXEC_CONTROL   = 0x00004002,
    EXCEPTION_BITMAP            = 0x00004004,
    PAGE_FAULT_ERROR_CODE_MASK  = 0x00004006,
    PAGE_FAULT_ERROR_CODE_MATCH = 0x00004008,
    CR3_TARGET_COUNT            = 0x0000400a,
    VM_EXIT_CONTROLS            = 0x0000400c,
    VM_EXIT_MSR_STORE_COUNT     = 0x0000400e,
    VM_EXIT_MSR_LOAD_COUNT      = 0x00004010,
    VM_ENTRY_CONTROLS           = 0x00004012,
    VM_ENTRY_MSR_LOAD_COUNT     = 0x00004014,
    VM_ENTRY_INTR_INFO_FIELD    = 0x00004016,
    TPR_THRESHOLD               = 0x0000401c,
    VM_INSTRUCTION_ERROR        = 0x00004400,
    VM_EXIT_REASON              = 0x00004402,
    VM_EXIT_INTR_INFO           = 0x00004404,
    VM_EXIT_INSTRUCTION_LEN     = 0x0000440c,
    GUEST_ES_LIMIT              = 0x00004800,
    GUEST_CS_LIMIT              = 0x00004802,
    GUEST_SS_LIMIT              = 0x00004804,
    GUEST_DS_LIMIT              = 0x00004806,
    GUEST_FS_LIMIT              = 0x00004808,
    GUEST_GS_LIMIT              = 0x0000480a,
    GUEST_LDTR_LIMIT            = 0x0000480c,
    GUEST_TR_LIMIT              = 0x0000480e,
    GUEST_GDTR_LIMIT            = 0x00004810,
    GUEST_IDTR_LIMIT            = 0x00004812,
    GUEST_ES_AR_BYTES           = 0x00004814,
    GUEST_CS_AR_BYTES           = 0x00004816,
    GUEST_SS_AR_BYTES           = 0x00004818,
    GUEST_DS_AR_BYTES           = 0x0000481a,
    GUEST_FS_AR_BYTES           = 0x0000481c,
    GUEST_GS_AR_BYTES           = 0x0000481e,
    GUEST_LDTR_AR_BYTES         = 0x00004820,
    GUEST_TR_AR_BYTES           = 0x00004822,
    GUEST_INTERRUPTIBILITY_INFO = 0x00004824,
    GUEST_ACTIVITY_STATE        = 0x00004826,
    GUEST_SYSENTER_CS           = 0x0000482a,
    HOST_IA32_SYSENTER_CS       = 0x00004c00,
    CR0_GUEST_HOST_MASK         = 0x00006000,
    CR4_GUEST_HOST_MASK         = 0x00006002,
    CR0_READ_SHADOW             = 0x00006004,
    CR4_READ_SHADOW             = 0x00006006,
    EXIT_QUALIFICATION          = 0x00006400,
    GUEST_CR0                   = 0x00006800,
    GUEST_CR3                   = 0x00006802,
    GUEST_CR4                   = 0x00006804,
    GUEST_ES_BASE               = 0x00006806,
    GUEST_CS_BASE               = 0x00006808,
    GUEST_SS_BASE               = 0x0000680a,
    GUEST_DS_BASE               = 0x0000680c,
    GUEST_FS_BASE               = 0x0000680e,
    GUEST_GS_BASE               = 0x00006810,
    GUEST_LDTR_BASE             = 0x00006812,
    GUEST_TR_BASE               = 0x00006814,
    GUEST_GDTR_BASE             = 0x00006816,
    GUEST_IDTR_BASE             = 0x00006818,
    GUEST_DR7                   = 0x0000681a,
    GUEST_RSP                   = 0x0000681c,
    GUEST_RIP                   = 0x0000681e,
    GUEST_RFLAGS                = 0x00006820,
    GUEST_PENDING_DBG_EXCEPTIONS = 0x00006822,
    GUEST_SYSENTER_ESP          = 0x00006824,
    GUEST_SYSENTER_EIP          = 0x00006826,
    HOST_CR0                    = 0x00006c00,
    HOST_CR3                    = 0x00006c02,
    HOST_CR4                    = 0x00006c04,
    HOST_FS_BASE                = 0x00006c06,
    HOST_GS_BASE                = 0x00006c08,
    HOST_TR_BASE                = 0x00006c0a,
    HOST_GDTR_BASE              = 0x00006c0c,
    HOST_IDTR_BASE              = 0x00006c0e,
    HOST_IA32_SYSENTER_ESP      = 0x00006c10,
    HOST_IA32_SYSENTER_EIP      = 0x00006c12,
    HOST_RSP                    = 0x00006c14,
    HOST_RIP                    = 0x00006c16,
};

/* Page-aligned regions an L1 needs (put one in .bss). */
struct vmx_pages {
    uint8_t vmxon[4096] __attribute__((aligned(4096)));
    uint8_t vmcs[4096] __attribute__((aligned(4096)));
    uint8_t msr_bitmap[4096] __attribute__((aligned(4096)));   /* zero (unused: MSR bitmaps off) */
};

/* The controls prepare_vmcs chose, for reporting. */
struct vmx_controls {
    uint32_t pin, proc, exit, entry;
    int true_msrs;                  /* IA32_VMX_BASIC bit 55: TRUE_* MSRs used */
};

/* Each returns 0 on success, else 1 = VMfailInvalid (CF), 2 = VMfailValid (ZF). */
static inline int vmxon(uint64_t pa) {
    uint8_t cf, zf;
    __asm__ volatile("vmxon %[pa]; setc %[cf]; setz %[zf]"
                     : [cf] "=rm"(cf), [zf] "=rm"(zf) : [pa] "m"(pa) : "cc", "memory");
    return cf ? 1 : zf ? 2 : 0;
}
static inline int vmxoff(void) {
    uint8_t cf, zf;
    __asm__ volatile("vmxoff; setc %[cf]; setz %[zf]" : [cf] "=rm"(cf), [zf] "=rm"(zf) :: "cc", "memory");
    return cf ? 1 : zf ? 2 : 0;
}
static inline int vmclear(uint64_t pa) {
    uint8_t cf, zf;
    __asm__ volatile("vmclear %[pa]; setc %[cf]; setz %[zf]"
                     : [cf] "=rm"(cf), [zf] "=rm"(zf) : [pa] "m"(pa) : "cc", "memory");
    return cf ? 1 : zf ? 2 : 0;
}
static inline int vmptrld(uint64_t pa) {
    uint8_t cf, zf;
    __asm__ volatile("vmptrld %[pa]; setc %[cf]; setz %[zf]"
                     : [cf] "=rm"(cf), [zf] "=rm"(zf) : [pa] "m"(pa) : "cc", "memory");
    return cf ? 1 : zf ? 2 : 0;
}
static inline int vmwrite(uint64_t field, uint64_t value) {
    uint8_t cf, zf;
    __asm__ volatile("vmwrite %[value], %[field]; setc %[cf]; setz %[zf]"
                     : [cf] "=rm"(cf), [zf] "=rm"(zf) : [value] "rm"(value), [field] "r"(field) : "cc", "memory");
    return cf ? 1 : zf ? 2 : 0;
}
static inline int vmread(uint64_t field, uint64_t *value) {
    uint64_t tmp = 0;
    uint8_t cf, zf;
    __asm__ volatile("vmread %[field], %[value]; setc %[cf]; setz %[zf]"
                     : [value] "+rm"(tmp), [cf] "=rm"(cf), [zf] "=rm"(zf) : [field] "r"(field) : "cc", "memory");
    *value = tmp;
    return cf ? 1 : zf ? 2 : 0;
}
static inline uint64_t vmreadz(uint64_t field) { uint64_t v; return vmread(field, &v) ? 0 : v; }

/* Bits 30:0 of IA32_VMX_BASIC (bit 31 is always 0). */
static inline uint32_t vmcs_revision(void) { return (uint32_t)rdmsr(MSR_IA32_VMX_BASIC) & 0x7fffffffu; }

/* prepare_for_vmx_operation: CR0/CR4 fixed bits, CR4.VMXE, IA32_FEATURE_CONTROL
 * (lock + VMXON outside SMX when unlocked), revision id into the VMXON region.
 * Any of these may #GP where VMX is not really there (the IDT reports it).
 * Does not execute VMXON. */
void vmx_prepare(struct vmx_pages *vmx);

/* load_vmcs: revision id, VMCLEAR, VMPTRLD. Returns 0 or the failing
 * instruction's code (see vmxon) + 10 * (1 = VMCLEAR, 2 = VMPTRLD). */
int vmx_load_vmcs(struct vmx_pages *vmx);

/* init_vmcs_control_fields + init_vmcs_host_state + init_vmcs_guest_state:
 * L2 = flat 64-bit long mode sharing L1's CR3/GDT/IDT/TR, entered at l2_rip
 * with l2_rsp. Controls are adjusted to the allowed-0/allowed-1 settings of
 * the TRUE capability MSRs (IA32_VMX_BASIC bit 55) or the plain ones.
 * Returns the number of VMWRITEs that failed (0 expected). */
int vmx_prepare_vmcs(struct vmx_pages *vmx, void *l2_rip, void *l2_rsp, struct vmx_controls *out);

/* VMLAUNCH (lib/vmx-run.S). HOST_RSP/HOST_RIP are written here, so the exit
 * lands back in this call. Returns 0 after a VM exit (L2's RAX is then in
 * vmx_l2_rax), 1 = VMfailInvalid, 2 = VMfailValid (see VM_INSTRUCTION_ERROR). */
int vmx_launch(void);
extern uint64_t vmx_l2_rax;

static inline void vmcall(void) { __asm__ volatile("vmcall" ::: "memory"); }

#endif
