/* idt.h - exception handling for C guests: an IDT whose 32 exception vectors
 * go to stubs (lib/idt-stubs.S) that call idt_handle() (lib/idt.c).
 *
 * By default an exception is a *result*, not a crash: the handler prints
 *
 *     probe exception vector=13 rip=0x100234 error=0x0 step=vmxon level=1
 *
 * reports the facts `exception` (vector), `exception_rip`, `exception_error`,
 * `exception_step` (the number given to idt_step) and `exception_level`
 * (1 = L1, 2 = code running as a nested guest), then ends the run with
 * HC_DONE 0. The IDT is shared with nested guests (L2 loads the same IDTR),
 * so an exception in L2 is reported the same way instead of triple-faulting.
 *
 * rdmsr_safe/wrmsr_safe arm a one-shot fix-up instead: a fault on that one
 * instruction resumes after it and returns the vector (0 = no exception),
 * like the KVM selftests' rdmsr_safe.
 *
 * A second exception while the handler runs halts (cli; hlt) quietly.
 */
#ifndef GUEST_IDT_H
#define GUEST_IDT_H

#include <stdint.h>

/* What the stubs push, lowest address first (the C handler gets a pointer). */
struct ex_regs {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
    uint64_t rdi, rsi, rbp, rbx, rdx, rcx, rax;
    uint64_t vector, error_code;
    uint64_t rip, cs, rflags, rsp, ss;          /* pushed by the CPU */
};

struct desc_ptr {
    uint16_t limit;
    uint64_t base;
} __attribute__((packed));

/* Builds the IDT (vectors 0..31, interrupt gates, code selector = current CS)
 * and loads it. Any vector above 31 is outside the limit, so it becomes #GP
 * (vector 13), which is caught too. */
void idt_install(void);

/* Names the step the guest is about to take: printed (`step=NAME`) and
 * reported (`exception_step` = number) if an exception happens during it. */
void idt_step(uint64_t number, const char *name);

/* 1 in L1, 2 while running as a nested guest: L2 code sets it on entry,
 * L1 sets it back after the exit. Printed and reported as `exception_level`. */
extern volatile uint64_t guest_level;

/* One-shot fix-up used by the *_safe helpers: the handler resumes at
 * ex_fixup_rip (if non-zero) and stores the vector in ex_fixup_vector. */
extern volatile uint64_t ex_fixup_rip;
extern volatile uint64_t ex_fixup_vector;
extern volatile uint64_t ex_fixup_error;

/* The common handler, called by the stubs. */
void idt_handle(struct ex_regs *regs);

/* rdmsr/wrmsr that return the exception vector (0: none). *value is 0 after
 * a fault. */
static inline uint8_t rdmsr_safe(uint32_t msr, uint64_t *value) {
    uint32_t lo = 0, hi = 0;
    uint64_t vec;
    __asm__ volatile("lea 1f(%%rip), %%r11\n\t"
                     "movq $0, ex_fixup_vector(%%rip)\n\t"
                     "mov %%r11, ex_fixup_rip(%%rip)\n\t"
                     "rdmsr\n"
                     "1:\tmovq $0, ex_fixup_rip(%%rip)\n\t"
                     "mov ex_fixup_vector(%%rip), %[vec]"
                     : "+a"(lo), "+d"(hi), [vec] "=r"(vec)
                     : "c"(msr)
                     : "r11", "memory");
    *value = vec ? 0 : ((uint64_t)hi << 32) | lo;
    return (uint8_t)vec;
}

static inline uint8_t wrmsr_safe(uint32_t msr, uint64_t value) {
    uint64_t vec;
    __asm__ volatile("lea 1f(%%rip), %%r11\n\t"
                     "movq $0, ex_fixup_vector(%%rip)\n\t"
                     "mov %%r11, ex_fixup_rip(%%rip)\n\t"
                     "wrmsr\n"
                     "1:\tmovq $0, ex_fixup_rip(%%rip)\n\t"
                     "mov ex_fixup_vector(%%rip), %[vec]"
                     : [vec] "=r"(vec)
                     : "c"(msr), "a"((uint32_t)value), "d"((uint32_t)(value >> 32))
                     : "r11", "memory");
    return (uint8_t)vec;
}

/* Descriptor-table and segment register reads. */
static inline struct desc_ptr get_gdt(void) { struct desc_ptr d; __asm__ volatile("sgdt %0" : "=m"(d)); return d; }
static inline struct desc_ptr get_idt(void) { struct desc_ptr d; __asm__ volatile("sidt %0" : "=m"(d)); return d; }
static inline uint16_t get_cs(void) { uint16_t v; __asm__ volatile("mov %%cs, %0" : "=r"(v)); return v; }
static inline uint16_t get_ds(void) { uint16_t v; __asm__ volatile("mov %%ds, %0" : "=r"(v)); return v; }
static inline uint16_t get_es(void) { uint16_t v; __asm__ volatile("mov %%es, %0" : "=r"(v)); return v; }
static inline uint16_t get_fs(void) { uint16_t v; __asm__ volatile("mov %%fs, %0" : "=r"(v)); return v; }
static inline uint16_t get_gs(void) { uint16_t v; __asm__ volatile("mov %%gs, %0" : "=r"(v)); return v; }
static inline uint16_t get_ss(void) { uint16_t v; __asm__ volatile("mov %%ss, %0" : "=r"(v)); return v; }
static inline uint16_t get_tr(void) { uint16_t v; __asm__ volatile("str %0" : "=r"(v)); return v; }
static inline uint16_t get_ldtr(void) { uint16_t v; __asm__ volatile("sldt %0" : "=r"(v)); return v; }

static inline uintptr_t read_cr2(void) { uintptr_t v; __asm__ volatile("mov %%cr2, %0" : "=r"(v)); return v; }
static inline void write_cr0(uintptr_t v) { __asm__ volatile("mov %0, %%cr0" :: "r"(v) : "memory"); }
static inline void write_cr4(uintptr_t v) { __asm__ volatile("mov %0, %%cr4" :: "r"(v) : "memory"); }
static inline uint64_t read_dr6(void) { uint64_t v; __asm__ volatile("mov %%dr6, %0" : "=r"(v)); return v; }
static inline uint64_t read_dr7(void) { uint64_t v; __asm__ volatile("mov %%dr7, %0" : "=r"(v)); return v; }
static inline uint64_t read_rflags(void) { uint64_t v; __asm__ volatile("pushfq; popq %0" : "=r"(v)); return v; }

/* Base of the 8- or 16-byte GDT descriptor for `selector` (16 bytes for a
 * system descriptor such as the TSS in long mode). */
uint64_t gdt_desc_base(uint16_t selector);
/* The descriptor's 8 low bytes (access rights in bits 40-47 and 52-55). */
uint64_t gdt_desc(uint16_t selector);

#endif
