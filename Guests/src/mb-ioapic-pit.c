/* mb-ioapic-pit - the PIT (channel 0, ~100 Hz) through the IOAPIC
 * (0xfec00000): ISA IRQ 0 arrives at IOAPIC pin 2 (GSI 2) as on QEMU's pc,
 * routed to vector 0x30; pin 0 is routed to 0x31 and must stay quiet. The
 * 8259s are masked. A LAPIC one-shot of about 2 s is the watchdog. Prints
 * the IOAPIC's redirection entry count and the interrupts per pin; exits 0,
 * or 0x74 when the interrupts did not come as expected. */
#include "mb.h"

static volatile uint32_t pin2, pin0, watchdog;
static void on_pin2(struct mb_frame *f) { (void)f; pin2++; lapic_eoi(); }
static void on_pin0(struct mb_frame *f) { (void)f; pin0++; lapic_eoi(); }
static void on_watchdog(struct mb_frame *f) { (void)f; watchdog = 1; lapic_eoi(); }

int main(uint32_t magic, struct mb_info *info) {
    (void)magic; (void)info;
    idt_init();
    mb_irq_handlers[0x30] = on_pin2;
    mb_irq_handlers[0x31] = on_pin0;
    mb_irq_handlers[0x40] = on_watchdog;
    pic_mask_all();
    lapic_enable();
    uint32_t entries = ((ioapic_read(1) >> 16) & 0xff) + 1;
    put_str("ioapic"); put_kv_dec("redirection_entries", entries); put_str("\n");
    ioapic_route(2, 0x30, (uint8_t)lapic_id());
    ioapic_route(0, 0x31, (uint8_t)lapic_id());
    lapic_write(LAPIC_TIMER_DIV, 0xA);                      /* divide by 128 */
    lapic_write(LAPIC_LVT_TIMER, 0x40);                     /* one-shot watchdog */
    lapic_write(LAPIC_TIMER_INIT, 15625000);                /* ~2 s at a 1 GHz APIC clock */
    pit_periodic(11932);                                    /* ~100 Hz */
    while (pin2 < 5 && !watchdog) sti_hlt();
    cli();
    ioapic_mask(2);
    ioapic_mask(0);
    pit_stop();
    lapic_write(LAPIC_TIMER_INIT, 0);
    put_str("pit irq0"); put_kv_dec("pin2_interrupts", pin2 >= 5 ? 5 : pin2); put_kv_dec("pin0_interrupts", pin0);
    put_str(watchdog ? " watchdog=expired\n" : " watchdog=quiet\n");
    int ok = pin2 >= 5 && pin0 == 0 && !watchdog;
    put_str(ok ? "mb-ioapic-pit: ok\n" : "mb-ioapic-pit: FAILED\n");
    return ok ? 0 : 0x74;
}
