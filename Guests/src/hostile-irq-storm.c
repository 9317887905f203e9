/* hostile-irq-storm.c - as many interrupts as the machine can make, forever.
 * Needs the in-kernel irqchip (kvmrun -smp 2, Machine(irqchip: true)).
 *
 *   - the 8259 PIC remapped to 0x20, IRQ 0 unmasked, the PIT's channel 0 in
 *     rate-generator mode with divisor 1 (1.19 MHz asked for);
 *   - the LAPIC software-enabled, its timer periodic with divisor 1 and an
 *     initial count of 1 on vector 0x50 (above the IPIs', so they cannot
 *     starve it);
 *   - every handler also sends itself an IPI (vector 0x41, self shorthand), so
 *     a new interrupt is always pending;
 *   - the main loop is `sti; hlt`, bumping a counter each time it wakes.
 *
 * Counters, as 64-bit words at `counters_addr` (a fact): [0] PIT (vector 0x20),
 * [1] LAPIC timer (0x50), [2] self-IPI (0x41), [3] spurious (0xff), [4] hlt
 * wake-ups, [5] exceptions. It never ends by itself: a runner
 * stops it with its timeout. An exception reports `exception` and halts.
 */
#include "guest.h"

#define LAPIC_BASE   0xfee00000UL
#define LAPIC_EOI    0x0b0
#define LAPIC_SVR    0x0f0
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_TIMER_INIT 0x380
#define LAPIC_TIMER_DIV 0x3e0

volatile uint64_t counters[8];

static inline void lapic_write(uint32_t reg, uint32_t v) { *(volatile uint32_t *)(LAPIC_BASE + reg) = v; }

struct gate {
    uint16_t offset_lo, selector;
    uint8_t ist, type_attr;
    uint16_t offset_mid;
    uint32_t offset_hi, reserved;
} __attribute__((packed));

static struct gate idt[256] __attribute__((aligned(16)));

/* Stubs: save the caller-saved registers, call the C handler with the vector. */
#define STUB(name, vector)                                                   \
    __asm__(".text\n" #name ":\n"                                            \
            "push %rax; push %rcx; push %rdx; push %rsi; push %rdi\n"        \
            "push %r8; push %r9; push %r10; push %r11\n"                     \
            "mov $" #vector ", %edi\n"                                       \
            "call irq_handler\n"                                             \
            "pop %r11; pop %r10; pop %r9; pop %r8\n"                         \
            "pop %rdi; pop %rsi; pop %rdx; pop %rcx; pop %rax\n"             \
            "iretq\n");                                                      \
    void name(void);

STUB(stub_pit, 0x20)
STUB(stub_timer, 0x50)
STUB(stub_ipi, 0x41)
STUB(stub_spurious, 0xff)
STUB(stub_exception, 0x100)

static void self_ipi(void) {
    lapic_write(LAPIC_ICR_HI, 0);
    lapic_write(LAPIC_ICR_LO, (1u << 18) | 0x41);        /* shorthand self, fixed, vector 0x41 */
}

void irq_handler(uint32_t vector) {
    switch (vector) {
    case 0x20: counters[0]++; outb(0x20, 0x20); break;  /* PIC EOI */
    case 0x50: counters[1]++; lapic_write(LAPIC_EOI, 0); break;
    case 0x41: counters[2]++; lapic_write(LAPIC_EOI, 0); break;
    case 0xff: counters[3]++; return;                     /* spurious: no EOI */
    default:
        counters[5]++;
        report("exception", 1);
        halt();
    }
    self_ipi();
}

static void set_gate(int vector, void (*handler)(void)) {
    uint64_t a = (uint64_t)(uintptr_t)handler;
    uint16_t cs;
    __asm__ volatile("mov %%cs, %0" : "=r"(cs));
    idt[vector] = (struct gate){ (uint16_t)a, cs, 0, 0x8e, (uint16_t)(a >> 16), (uint32_t)(a >> 32), 0 };
}

int main(void) {
    serial_puts("hostile-irq-storm: PIT, LAPIC timer and self-IPIs at full rate\n");
    report("counters_addr", (uint64_t)(uintptr_t)counters);
    for (int v = 0; v < 256; v++) set_gate(v, stub_exception);
    set_gate(0x20, stub_pit);
    set_gate(0x50, stub_timer);
    set_gate(0x41, stub_ipi);
    set_gate(0xff, stub_spurious);
    struct { uint16_t limit; uint64_t base; } __attribute__((packed)) idtr = { sizeof idt - 1, (uint64_t)(uintptr_t)idt };
    __asm__ volatile("lidt %0" :: "m"(idtr));

    /* 8259s: ICW1-4, master at 0x20, slave at 0x28, only IRQ 0 unmasked. */
    outb(0x20, 0x11); outb(0xa0, 0x11);
    outb(0x21, 0x20); outb(0xa1, 0x28);
    outb(0x21, 0x04); outb(0xa1, 0x02);
    outb(0x21, 0x01); outb(0xa1, 0x01);
    outb(0x21, 0xfe); outb(0xa1, 0xff);
    /* PIT channel 0, lobyte/hibyte, mode 2, divisor 1. */
    outb(0x43, 0x34);
    outb(0x40, 0x01);
    outb(0x40, 0x00);
    /* LAPIC: enabled, timer periodic on 0x50 at the fastest rate. */
    lapic_write(LAPIC_SVR, 0x1ff);
    lapic_write(LAPIC_TIMER_DIV, 0xb);
    lapic_write(LAPIC_LVT_TIMER, (1u << 17) | 0x50);
    lapic_write(LAPIC_TIMER_INIT, 1);
    self_ipi();
    for (;;) {
        __asm__ volatile("sti; hlt; cli" ::: "memory");
        counters[4]++;
    }
}
