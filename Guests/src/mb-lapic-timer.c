/* mb-lapic-timer - the local APIC timer on vector 0x40: five periodic ticks
 * (divide by 16, count 100000), then one one-shot tick that must not repeat
 * and leaves the current count at 0. Exits 0, or 0x73 when a check fails. */
#include "mb.h"

static volatile uint32_t ticks;
static void on_timer(struct mb_frame *f) { (void)f; ticks++; lapic_eoi(); }

int main(uint32_t magic, struct mb_info *info) {
    (void)magic; (void)info;
    idt_init();
    mb_irq_handlers[0x40] = on_timer;
    pic_mask_all();
    lapic_enable();
    lapic_write(LAPIC_TIMER_DIV, 0x3);                      /* divide by 16 */
    lapic_write(LAPIC_LVT_TIMER, 0x40 | (1u << 17));        /* periodic */
    lapic_write(LAPIC_TIMER_INIT, 100000);
    while (ticks < 5) sti_hlt();
    cli();
    lapic_write(LAPIC_LVT_TIMER, 1u << 16);                 /* masked */
    lapic_write(LAPIC_TIMER_INIT, 0);
    uint32_t periodic = ticks;
    put_str("lapic timer"); put_kv_dec("periodic_ticks", periodic); put_str("\n");

    ticks = 0;
    lapic_write(LAPIC_LVT_TIMER, 0x40);                     /* one-shot */
    lapic_write(LAPIC_TIMER_INIT, 50000);
    while (ticks < 1) sti_hlt();
    sti();
    delay_loop(2000000);                                    /* a one-shot fires once */
    cli();
    uint32_t cur = lapic_read(LAPIC_TIMER_CUR);
    put_str("lapic timer"); put_kv_dec("one_shot_ticks", ticks); put_kv_dec("current_count", cur); put_str("\n");
    int ok = periodic == 5 && ticks == 1 && cur == 0;
    put_str(ok ? "mb-lapic-timer: ok\n" : "mb-lapic-timer: FAILED\n");
    return ok ? 0 : 0x73;
}
