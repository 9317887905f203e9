/* mb-pcports - the PC ports a test kernel pokes: port 0x92 (A20 bit reads
 * back), port 0x80 (reads 0xff), and the CMOS/RTC at 0x70/0x71: status
 * registers A (less UIP), B, D, the memory-size and equipment bytes QEMU's
 * pc sets from -m and -smp, and a check that the clock reads as valid BCD
 * time. Exits 0, or 0x75 when the clock does not. */
#include "mb.h"

static uint8_t cmos(uint8_t reg) { outb(0x70, reg); return inb(0x71); }
static int bcd_ok(uint8_t v, int max) { return (v & 15) < 10 && (v >> 4) < 10 && (v >> 4) * 10 + (v & 15) <= max; }
static int bcd(uint8_t v) { return (v >> 4) * 10 + (v & 15); }

int main(uint32_t magic, struct mb_info *info) {
    (void)magic; (void)info;
    uint8_t p92 = inb(0x92);
    outb(0x92, p92 | 0x02);
    put_str("port92"); put_kv_hex("a20", (inb(0x92) >> 1) & 1, 1); put_kv_hex("read", inb(0x92) & 0xfe, 2);
    put_kv_hex("port80", inb(0x80), 2); put_str("\n");

    put_str("cmos");
    put_kv_hex("a", cmos(0x0a) & 0x7f, 2);
    put_kv_hex("b", cmos(0x0b), 2);
    (void)cmos(0x0c);
    put_kv_hex("c", cmos(0x0c), 2);
    put_kv_hex("d", cmos(0x0d), 2);
    put_str("\n");
    static const uint8_t regs[] = { 0x10, 0x12, 0x14, 0x15, 0x16, 0x17, 0x18, 0x30, 0x31, 0x34, 0x35, 0x38, 0x3d, 0x5b, 0x5c, 0x5d, 0x5f };
    put_str("cmos bytes");
    for (unsigned i = 0; i < sizeof(regs); i++) {
        serial_putc(' '); put_hex(regs[i], 2); serial_putc('='); put_hex(cmos(regs[i]), 2);
    }
    put_str("\n");
    put_str("cmos port70="); put_hex(inb(0x70), 2); put_str("\n");

    /* The clock: wait out an update, then read it twice until stable. */
    uint8_t t[8], u[8];
    static const uint8_t treg[8] = { 0, 2, 4, 6, 7, 8, 9, 0x32 };
    for (int tries = 0; tries < 10; tries++) {
        for (uint32_t i = 0; i < 1000000 && (cmos(0x0a) & 0x80); i++) pause();
        for (int i = 0; i < 8; i++) t[i] = cmos(treg[i]);
        for (int i = 0; i < 8; i++) u[i] = cmos(treg[i]);
        if (!memcmp(t, u, 8)) break;
    }
    int ok = bcd_ok(t[0], 59) && bcd_ok(t[1], 59) && bcd_ok(t[2], 23) && bcd_ok(t[3], 7) && bcd(t[3]) >= 1
          && bcd_ok(t[4], 31) && bcd(t[4]) >= 1 && bcd_ok(t[5], 12) && bcd(t[5]) >= 1 && bcd_ok(t[6], 99)
          && t[7] == 0x20;
    put_str("rtc "); put_str(ok ? "valid bcd 24h time, century 20" : "INVALID time");
    put_str("\n");
    return ok ? 0 : 0x75;
}
