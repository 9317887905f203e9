/* svm.h - AMD SVM for C guests acting as an L1 hypervisor (lib/svm.c).
 * Layout and set-up follow the KVM selftests (tools/testing/selftests/kvm:
 * include/x86/svm.h, lib/x86/svm.c generic_svm_setup/run_guest): nested
 * paging off, L2 shares L1's CR3, GDT and IDT, ASID 1, VMRUN and VMMCALL
 * intercepted, no I/O or MSR intercepts (so L2's port I/O goes straight to
 * the host VMM, and a hostcall from L2 works like one from L1).
 */
#ifndef GUEST_SVM_H
#define GUEST_SVM_H

#include <stdint.h>
#include <stddef.h>

#define MSR_VM_CR          0xC0010114u  /* bit 4 SVMDIS, bit 3 LOCK */
#define MSR_VM_HSAVE_PA    0xC0010117u
#define MSR_IA32_CR_PAT    0x277u
#define MSR_IA32_DEBUGCTL  0x1D9u
#define EFER_SVME          (1u << 12)
#define VM_CR_SVMDIS       (1u << 4)
#define VM_CR_LOCK         (1u << 3)

/* CPUID 0x8000000A EDX */
#define SVM_FEAT_NPT           (1u << 0)
#define SVM_FEAT_LBRV          (1u << 1)
#define SVM_FEAT_SVML          (1u << 2)
#define SVM_FEAT_NRIPS         (1u << 3)
#define SVM_FEAT_TSC_RATE      (1u << 4)
#define SVM_FEAT_VMCB_CLEAN    (1u << 5)
#define SVM_FEAT_FLUSH_ASID    (1u << 6)
#define SVM_FEAT_DECODE_ASSIST (1u << 7)
#define SVM_FEAT_PAUSE_FILTER  (1u << 10)
#define SVM_FEAT_PF_THRESHOLD  (1u << 12)
#define SVM_FEAT_AVIC          (1u << 13)
#define SVM_FEAT_V_VMSAVE      (1u << 15)
#define SVM_FEAT_VGIF          (1u << 16)

/* Bits of vmcb_control.intercept (the 64-bit word at 0x0c). */
#define INTERCEPT_IOIO_PROT    27
#define INTERCEPT_MSR_PROT     28
#define INTERCEPT_SHUTDOWN     31
#define INTERCEPT_VMRUN        32
#define INTERCEPT_VMMCALL      33

/* #VMEXIT codes */
#define SVM_EXIT_VMMCALL       0x81
#define SVM_EXIT_INVALID       0xFFFFFFFFFFFFFFFFull  /* -1: VMRUN consistency check failed */

struct vmcb_seg {
    uint16_t selector;
    uint16_t attrib;        /* descriptor bits 40-47 in 0-7, bits 52-55 in 8-11 */
    uint32_t limit;
    uint64_t base;
} __attribute__((packed));

struct vmcb_control {
    uint32_t intercept_cr;          /* 0x000 */
    uint32_t intercept_dr;          /* 0x004 */
    uint32_t intercept_exceptions;  /* 0x008 */
    uint64_t intercept;             /* 0x00c */
    uint8_t  reserved_1[40];
    uint16_t pause_filter_thresh;   /* 0x03c */
    uint16_t pause_filter_count;    /* 0x03e */
    uint64_t iopm_base_pa;          /* 0x040 */
    uint64_t msrpm_base_pa;         /* 0x048 */
    uint64_t tsc_offset;            /* 0x050 */
    uint32_t asid;                  /* 0x058 */
    uint8_t  tlb_ctl;               /* 0x05c */
    uint8_t  reserved_2[3];
    uint32_t int_ctl;               /* 0x060 */
    uint32_t int_vector;            /* 0x064 */
    uint32_t int_state;             /* 0x068 */
    uint8_t  reserved_3[4];
    uint32_t exit_code;             /* 0x070 */
    uint32_t exit_code_hi;          /* 0x074 */
    uint64_t exit_info_1;           /* 0x078 */
    uint64_t exit_info_2;           /* 0x080 */
    uint32_t exit_int_info;         /* 0x088 */
    uint32_t exit_int_info_err;     /* 0x08c */
    uint64_t nested_ctl;            /* 0x090: bit 0 NP_ENABLE */
    uint64_t avic_vapic_bar;        /* 0x098 */
    uint8_t  reserved_4[8];
    uint32_t event_inj;             /* 0x0a8 */
    uint32_t event_inj_err;         /* 0x0ac */
    uint64_t nested_cr3;            /* 0x0b0 */
    uint64_t virt_ext;              /* 0x0b8 */
    uint32_t clean;                 /* 0x0c0 */
    uint32_t reserved_5;
    uint64_t next_rip;              /* 0x0c8 */
    uint8_t  insn_len;              /* 0x0d0 */
    uint8_t  insn_bytes[15];
    uint8_t  reserved_6[0x400 - 0xe0];
} __attribute__((packed));

struct vmcb_save {
    struct vmcb_seg es, cs, ss, ds, fs, gs, gdtr, ldtr, idtr, tr;  /* 0x400.. */
    uint8_t  reserved_1[43];
    uint8_t  cpl;                   /* 0x4cb */
    uint8_t  reserved_2[4];
    uint64_t efer;                  /* 0x4d0 */
    uint8_t  reserved_3[112];
    uint64_t cr4;                   /* 0x548 */
    uint64_t cr3;                   /* 0x550 */
    uint64_t cr0;                   /* 0x558 */
    uint64_t dr7;                   /* 0x560 */
    uint64_t dr6;                   /* 0x568 */
    uint64_t rflags;                /* 0x570 */
    uint64_t rip;                   /* 0x578 */
    uint8_t  reserved_4[88];
    uint64_t rsp;                   /* 0x5d8 */
    uint8_t  reserved_5[24];
    uint64_t rax;                   /* 0x5f8 */
    uint64_t star, lstar, cstar, sfmask, kernel_gs_base;
    uint64_t sysenter_cs, sysenter_esp, sysenter_eip;
    uint64_t cr2;                   /* 0x640 */
    uint8_t  reserved_6[32];
    uint64_t g_pat;                 /* 0x668 */
    uint64_t dbgctl;                /* 0x670 */
    uint64_t br_from, br_to, last_excp_from, last_excp_to;
} __attribute__((packed));

struct vmcb {
    struct vmcb_control control;
    struct vmcb_save save;
    uint8_t pad[4096 - 0x400 - sizeof(struct vmcb_save)];
} __attribute__((packed, aligned(4096)));

_Static_assert(offsetof(struct vmcb_control, iopm_base_pa) == 0x40, "vmcb iopm");
_Static_assert(offsetof(struct vmcb_control, asid) == 0x58, "vmcb asid");
_Static_assert(offsetof(struct vmcb_control, exit_code) == 0x70, "vmcb exit_code");
_Static_assert(offsetof(struct vmcb_control, nested_ctl) == 0x90, "vmcb nested_ctl");
_Static_assert(offsetof(struct vmcb_control, next_rip) == 0xc8, "vmcb next_rip");
_Static_assert(sizeof(struct vmcb_control) == 0x400, "vmcb control size");
_Static_assert(offsetof(struct vmcb, save.cpl) == 0x4cb, "vmcb cpl");
_Static_assert(offsetof(struct vmcb, save.efer) == 0x4d0, "vmcb efer");
_Static_assert(offsetof(struct vmcb, save.cr4) == 0x548, "vmcb cr4");
_Static_assert(offsetof(struct vmcb, save.rflags) == 0x570, "vmcb rflags");
_Static_assert(offsetof(struct vmcb, save.rip) == 0x578, "vmcb rip");
_Static_assert(offsetof(struct vmcb, save.rsp) == 0x5d8, "vmcb rsp");
_Static_assert(offsetof(struct vmcb, save.rax) == 0x5f8, "vmcb rax");
_Static_assert(offsetof(struct vmcb, save.cr2) == 0x640, "vmcb cr2");
_Static_assert(offsetof(struct vmcb, save.g_pat) == 0x668, "vmcb g_pat");
_Static_assert(sizeof(struct vmcb) == 4096, "vmcb size");

/* Everything an L1 needs, page-aligned (put one in .bss). */
struct svm_pages {
    struct vmcb vmcb;                                       /* 4 KiB */
    uint8_t hsave[4096] __attribute__((aligned(4096)));     /* VM_HSAVE_PA */
    uint8_t msrpm[8192] __attribute__((aligned(4096)));     /* zero: no MSR intercepts (unused: MSR_PROT off) */
    uint8_t iopm[12288] __attribute__((aligned(4096)));     /* zero: no I/O intercepts (unused: IOIO_PROT off) */
};

/* EFER.SVME = 1 (may #GP where SVM is not really available) and VM_HSAVE_PA. */
void svm_enable(struct svm_pages *svm);

/* generic_svm_setup: VMSAVE into the VMCB, then L1's segments, descriptor
 * tables, control registers, EFER, DR6/DR7, PAT and DEBUGCTL as L2's state;
 * ASID 1, intercept VMRUN and VMMCALL, rip/rsp as given, rflags 0x2. */
void svm_vmcb_setup(struct svm_pages *svm, void *l2_rip, void *l2_rsp);

/* VMLOAD, VMRUN, VMSAVE (lib/svm-run.S: callee-saved registers survive; L2's
 * RAX/RSP/RIP are in the VMCB afterwards). Returns after the #VMEXIT. */
void svm_vmrun(uint64_t vmcb_pa);

/* The 64-bit exit code from the VMCB. */
static inline uint64_t svm_exit_code(const struct vmcb *vmcb) {
    return ((uint64_t)vmcb->control.exit_code_hi << 32) | vmcb->control.exit_code;
}

static inline void vmmcall(void) { __asm__ volatile("vmmcall" ::: "memory"); }

#endif
