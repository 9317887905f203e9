/* idt.c - the exception handler of C guests. See include/idt.h. */
#include "guest.h"
#include "idt.h"
#include "probe.h"

struct idt_gate {
    uint16_t offset_lo;
    uint16_t selector;
    uint8_t ist;
    uint8_t type_attr;      /* P=1, DPL=0, type 0xE (64-bit interrupt gate) */
    uint16_t offset_mid;
    uint32_t offset_hi;
    uint32_t reserved;
} __attribute__((packed));
_Static_assert(sizeof(struct idt_gate) == 16, "64-bit IDT gate");

extern const uint64_t idt_stub_table[32];

static struct idt_gate idt[32] __attribute__((aligned(16)));

volatile uint64_t guest_level = 1;
volatile uint64_t ex_fixup_rip;
volatile uint64_t ex_fixup_vector;
volatile uint64_t ex_fixup_error;

static volatile uint64_t step_number;
static const char *volatile step_name;
static volatile int in_handler;

void idt_install(void) {
    uint16_t cs = get_cs();
    for (int v = 0; v < 32; v++) {
        uint64_t a = idt_stub_table[v];
        idt[v] = (struct idt_gate){
            .offset_lo = (uint16_t)a,
            .selector = cs,
            .ist = 0,
            .type_attr = 0x8E,
            .offset_mid = (uint16_t)(a >> 16),
            .offset_hi = (uint32_t)(a >> 32),
        };
    }
    struct desc_ptr d = { .limit = sizeof(idt) - 1, .base = (uint64_t)(uintptr_t)idt };
    __asm__ volatile("lidt %0" :: "m"(d) : "memory");
}

void idt_step(uint64_t number, const char *name) {
    step_number = number;
    step_name = name;
}

void idt_handle(struct ex_regs *regs) {
    if (ex_fixup_rip) {
        /* A *_safe instruction faulted: resume after it. */
        ex_fixup_vector = regs->vector;
        ex_fixup_error = regs->error_code;
        regs->rip = ex_fixup_rip;
        ex_fixup_rip = 0;
        return;
    }
    if (in_handler) halt();                 /* a fault while reporting one */
    in_handler = 1;

    probe_begin("probe exception");
    print_dec("vector", regs->vector);
    print_hex("rip", regs->rip);
    print_hex("error", regs->error_code);
    if (regs->vector == 14) print_hex("cr2", read_cr2());
    probe_word("step", step_name ? step_name : "none");
    print_dec("level", guest_level);
    probe_end();
    /* The same facts under the documented keys. */
    report("exception", regs->vector);
    report("exception_rip", regs->rip);
    report("exception_error", regs->error_code);
    report("exception_step", step_number);
    report("exception_level", guest_level);
    done(0);
}

uint64_t gdt_desc(uint16_t selector) {
    struct desc_ptr g = get_gdt();
    return *(volatile uint64_t *)(uintptr_t)(g.base + (selector & ~7u));
}

uint64_t gdt_desc_base(uint16_t selector) {
    struct desc_ptr g = get_gdt();
    const volatile uint64_t *d = (const volatile uint64_t *)(uintptr_t)(g.base + (selector & ~7u));
    uint64_t lo = d[0];
    uint64_t base = ((lo >> 16) & 0xFFFFFF) | (((lo >> 56) & 0xFF) << 24);
    if (!((lo >> 44) & 1))                  /* S=0: system descriptor, 16 bytes */
        base |= (d[1] & 0xFFFFFFFFull) << 32;
    return base;
}
