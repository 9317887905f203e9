/* mb-ioapic-level - edge and level-triggered interrupts through the IOAPIC,
 * driven by QEMU's -device pc-testdev IRQ ports (a byte v written to port
 * 0x2000+n sets ISA IRQ line n to v != 0). The 8259s are masked; a LAPIC
 * one-shot of about 100 ms bounds each wait. -append case=N runs one case (default: all):
 *   1 edge: a raise delivers once, a line held high does not re-deliver,
 *     low then high delivers again
 *   2 level-retrigger: a line held high re-delivers after each EOI until the
 *     handler lowers it (the third time); remote IRR and TMR seen in the handler
 *   3 level-coalesce: a low-high pulse while the interrupt is in service
 *     (remote IRR set) does not deliver a second time
 *   4 level-sequential: two raises, the handler lowering the line each time,
 *     deliver twice
 *   5 level-masked: a level raised while the pin is masked is delivered when
 *     the pin is unmasked
 *   6 level-priority: two level lines high at once: the higher vector first
 *   7 isa-irq0: ISA IRQ 0 arrives at IOAPIC pin 2 (QEMU's PC routing), not pin 0
 *     (the PIT, on the same GSI, stopped first)
 * Prints the counts; exits 0, or 0x77 when a case did not behave. */
#include "mb.h"

#define TESTDEV_IRQ 0x2000
/* One line a case, so what one case leaves behind (a remote IRR KVM has
 * not cleared yet) cannot touch the next. */
#define EDGE_LINE      14
#define RETRIGGER_LINE 15
#define COALESCE_LINE  9
#define SEQUENTIAL_LINE 5
#define MASKED_LINE    6

static volatile uint32_t count, watchdog, order[4], norder, line;
static volatile uint32_t seen_remote_irr, seen_tmr;
static int failed;

static void set_irq_line(uint32_t n, int level) { outb(TESTDEV_IRQ + n, (uint8_t)level); }

static void route(uint32_t pin, uint8_t vector, int level, int masked) {
    ioapic_write(0x10 + 2 * pin + 1, lapic_id() << 24);
    ioapic_write(0x10 + 2 * pin, vector | (level ? 1u << 15 : 0) | (masked ? 1u << 16 : 0));
}
static uint32_t remote_irr(uint32_t pin) { return (ioapic_read(0x10 + 2 * pin) >> 14) & 1; }
static uint32_t apic_bit(uint32_t base, uint8_t vector) { return (lapic_read(base + 0x10 * (vector / 32)) >> (vector % 32)) & 1; }

static void on_watchdog(struct mb_frame *f) { (void)f; watchdog = 1; lapic_eoi(); }

/* case 1 */
static void on_edge(struct mb_frame *f) { (void)f; count++; lapic_eoi(); }
/* case 2 */
static void on_retrigger(struct mb_frame *f) {
    count++;
    if (count == 1) {
        seen_remote_irr = remote_irr(RETRIGGER_LINE);
        seen_tmr = apic_bit(0x180, (uint8_t)f->vector);
    }
    if (count == 3) set_irq_line(RETRIGGER_LINE, 0);
    lapic_eoi();
}
/* case 3 */
static void on_coalesce(struct mb_frame *f) {
    (void)f;
    count++;
    if (count == 1) { set_irq_line(COALESCE_LINE, 0); set_irq_line(COALESCE_LINE, 1); }
    set_irq_line(COALESCE_LINE, 0);
    lapic_eoi();
}
/* cases 4, 5 */
static void on_lower(struct mb_frame *f) { (void)f; count++; set_irq_line(line, 0); lapic_eoi(); }
/* case 6 */
static void on_prio(struct mb_frame *f) {
    if (norder < 4) order[norder++] = f->vector;
    set_irq_line(f->vector == 0x68 ? 10 : 11, 0);
    lapic_eoi();
}
/* case 7 */
static void on_pin2(struct mb_frame *f) { (void)f; count++; set_irq_line(0, 0); lapic_eoi(); }
static volatile uint32_t pin0_count;
static void on_pin0(struct mb_frame *f) { (void)f; pin0_count++; set_irq_line(0, 0); lapic_eoi(); }

static void check(const char *name, int ok) {
    put_str(name); put_str(ok ? " ok\n" : " FAILED\n");
    if (!ok) failed = 1;
}

/* A LAPIC one-shot of about 100 ms ends each wait. */
static void arm_watchdog(void) {
    watchdog = 0;
    lapic_write(LAPIC_TIMER_INIT, 0);
    lapic_write(LAPIC_TIMER_INIT, 781250);
}
/* Halts with interrupts on until `cond` holds or the watchdog fires; KVM
 * may deliver what an EOI re-enables only at the next exit, so the waits
 * halt rather than count. */
#define WAIT(cond) do { arm_watchdog(); while (!(cond) && !watchdog) { sti_hlt(); cli(); } } while (0)
/* Lets whatever is still to come arrive: halts until the watchdog fires. */
#define SETTLE() WAIT(0)

static void run_case(uint32_t n) {
    count = 0; norder = 0; pin0_count = 0;
    seen_remote_irr = seen_tmr = 0;
    switch (n) {
    case 1:
        mb_irq_handlers[0x60] = on_edge;
        route(EDGE_LINE, 0x60, 0, 0);
        sti();
        set_irq_line(EDGE_LINE, 1); __asm__ volatile("nop");
        uint32_t first = count;
        set_irq_line(EDGE_LINE, 1); __asm__ volatile("nop");
        cli();
        SETTLE();
        uint32_t held = count;
        sti();
        set_irq_line(EDGE_LINE, 0); set_irq_line(EDGE_LINE, 1); __asm__ volatile("nop");
        cli();
        set_irq_line(EDGE_LINE, 0);
        SETTLE();
        ioapic_mask(EDGE_LINE);
        put_str("edge"); put_kv_dec("first", first); put_kv_dec("held_high", held); put_kv_dec("after_pulse", count); put_str("\n");
        check("edge", first == 1 && held == 1 && count == 2);
        break;
    case 2:
        mb_irq_handlers[0x61] = on_retrigger;
        route(RETRIGGER_LINE, 0x61, 1, 0);
        set_irq_line(RETRIGGER_LINE, 1);
        WAIT(count >= 3);
        SETTLE();
        ioapic_mask(RETRIGGER_LINE);
        put_str("level-retrigger"); put_kv_dec("interrupts", count); put_kv_dec("remote_irr_in_handler", seen_remote_irr);
        put_kv_dec("tmr_in_handler", seen_tmr); put_str("\n");
        check("level-retrigger", count == 3 && seen_remote_irr == 1 && seen_tmr == 1);
        break;
    case 3:
        mb_irq_handlers[0x62] = on_coalesce;
        route(COALESCE_LINE, 0x62, 1, 0);
        sti();
        set_irq_line(COALESCE_LINE, 1); __asm__ volatile("nop");
        cli();
        SETTLE();
        ioapic_mask(COALESCE_LINE);
        put_str("level-coalesce"); put_kv_dec("interrupts", count); put_str("\n");
        check("level-coalesce", count == 1);
        break;
    case 4:
        line = SEQUENTIAL_LINE;
        mb_irq_handlers[0x63] = on_lower;
        route(SEQUENTIAL_LINE, 0x63, 1, 0);
        sti();
        set_irq_line(SEQUENTIAL_LINE, 1); __asm__ volatile("nop");
        cli();
        WAIT(count >= 1);
        sti();
        set_irq_line(SEQUENTIAL_LINE, 1); __asm__ volatile("nop");
        cli();
        SETTLE();
        ioapic_mask(SEQUENTIAL_LINE);
        put_str("level-sequential"); put_kv_dec("interrupts", count); put_str("\n");
        check("level-sequential", count == 2);
        break;
    case 5:
        line = MASKED_LINE;
        mb_irq_handlers[0x64] = on_lower;
        route(MASKED_LINE, 0x64, 1, 1);
        set_irq_line(MASKED_LINE, 1);
        SETTLE();
        uint32_t while_masked = count;
        route(MASKED_LINE, 0x64, 1, 0);
        SETTLE();
        ioapic_mask(MASKED_LINE);
        put_str("level-masked"); put_kv_dec("while_masked", while_masked); put_kv_dec("after_unmask", count); put_str("\n");
        check("level-masked", while_masked == 0 && count == 1);
        break;
    case 6:
        mb_irq_handlers[0x68] = on_prio;
        mb_irq_handlers[0x78] = on_prio;
        route(10, 0x68, 1, 0);
        route(11, 0x78, 1, 0);
        set_irq_line(10, 1);
        set_irq_line(11, 1);
        SETTLE();
        ioapic_mask(10); ioapic_mask(11);
        put_str("level-priority"); put_kv_dec("interrupts", norder);
        put_kv_hex("first", order[0], 2); put_kv_hex("second", order[1], 2); put_str("\n");
        check("level-priority", norder == 2 && order[0] == 0x78 && order[1] == 0x68);
        break;
    case 7:
        /* The PIT shares GSI 0 and QEMU starts it at 18.2 Hz: stop it (one
         * last edge ~55 ms later, while pin 2 is still masked) first. */
        pit_stop();
        SETTLE();
        mb_irq_handlers[0x6a] = on_pin2;
        mb_irq_handlers[0x6b] = on_pin0;
        route(2, 0x6a, 0, 0);
        route(0, 0x6b, 0, 0);
        sti();
        set_irq_line(0, 1); __asm__ volatile("nop");
        cli();
        set_irq_line(0, 0);
        SETTLE();
        ioapic_mask(2); ioapic_mask(0);
        put_str("isa-irq0"); put_kv_dec("pin2", count); put_kv_dec("pin0", pin0_count); put_str("\n");
        check("isa-irq0", count == 1 && pin0_count == 0);
        break;
    }
}

int main(uint32_t magic, struct mb_info *info) {
    (void)magic;
    const char *cmdline = (info->flags & MB_INFO_CMDLINE) ? (const char *)(uintptr_t)info->cmdline : "";
    uint32_t only = cmdline_number(cmdline, "case", 0);
    idt_init();
    mb_irq_handlers[0x40] = on_watchdog;
    pic_mask_all();
    lapic_enable();
    lapic_write(LAPIC_TIMER_DIV, 0xA);                      /* divide by 128 */
    lapic_write(LAPIC_LVT_TIMER, 0x40);                     /* one-shot */
    for (uint32_t n = 1; n <= 7; n++)
        if (only == 0 || only == n) run_case(n);
    lapic_write(LAPIC_TIMER_INIT, 0);
    put_str(failed ? "mb-ioapic-level: FAILED\n" : "mb-ioapic-level: ok\n");
    return failed ? 0x77 : 0;
}
