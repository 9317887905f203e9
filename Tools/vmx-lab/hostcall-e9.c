/* hostcall-e9.c - Guests/lib/guest.c for the VMX lab, where Bochs is the CPU
 * and no host VMM answers the port-0x1000 hostcalls (Docs/PROTOCOL.md).
 * It stands in for lib/hostcall.c (lib/guest.c's calls are linked as they are):
 * a hostcall prints one line on Bochs's port 0xe9 (port_e9_hack) instead of
 * OUT 0x1000:
 *
 *     hc report KEY=VALUE        HC_REPORT (VALUE in hex, 0x...)
 *     hc sync STAGE              HC_SYNC (returns STAGE: no checkpoint replies)
 *     hc dump-nested             HC_DUMP_NESTED (nothing to dump without a host)
 *     hc snapshot TAG            HC_SNAPSHOT
 *     hc fail line=N a=0x.. b=0x.. MESSAGE      HC_FAIL
 *     hc done STATUS             HC_DONE, then Bochs's shutdown port ends the run
 *
 * The guest's own serial output (COM1) is unchanged, so its probe lines read
 * as they do under KVMCore; the hostcall lines do not break them up. */
#include "guest.h"

#define E9_PORT        0xe9
#define BOCHS_SHUTDOWN 0x8900   /* "Shutdown" written here ends Bochs */

static void e9_puts(const char *s) {
    while (*s) outb(E9_PORT, (uint8_t)*s++);
}

static void e9_hex(uint64_t v) {
    int shift = 60;
    e9_puts("0x");
    while (shift > 0 && ((v >> shift) & 0xf) == 0) shift -= 4;
    for (; shift >= 0; shift -= 4) outb(E9_PORT, (uint8_t)"0123456789abcdef"[(v >> shift) & 0xf]);
}

static void e9_dec(uint64_t v) {
    char buf[21];
    int i = 20;
    buf[i] = 0;
    do { buf[--i] = (char)('0' + v % 10); v /= 10; } while (v);
    e9_puts(&buf[i]);
}

static NORETURN void bochs_shutdown(void) {
    /* Let COM1 drain first (LSR bit 6: transmitter empty): Bochs sends a
     * byte some time after the OUT, and the last ones would be lost. */
    for (unsigned n = 0; n < 10000000 && !(inb(COM1_LSR) & 0x40); n++) { }
    e9_puts("hc shutdown\n");
    for (const char *s = "Shutdown"; *s; s++) outb(BOCHS_SHUTDOWN, (uint8_t)*s);
    for (;;) { cli(); hlt(); }
}

uint64_t hostcall(uint32_t command, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3) {
        switch (command) {
    case HC_REPORT:
        e9_puts("hc report ");
        e9_puts((const char *)(uintptr_t)a0);
        e9_puts("=");
        e9_hex(a1);
        break;
    case HC_SYNC:
        e9_puts("hc sync ");
        e9_dec(a0);
        break;
    case HC_DUMP_NESTED:
        e9_puts("hc dump-nested");
        break;
    case HC_SNAPSHOT:
        e9_puts("hc snapshot ");
        e9_dec(a0);
        break;
    case HC_FAIL:
        e9_puts("hc fail line=");
        e9_dec(a1);
        e9_puts(" a=");
        e9_hex(a2);
        e9_puts(" b=");
        e9_hex(a3);
        e9_puts(" ");
        e9_puts((const char *)(uintptr_t)a0);
        e9_puts("\n");
        /* No host stops the run after a failure: end it here, as done(1). */
        return hostcall(HC_DONE, 1, 0, 0, 0);
    case HC_DONE:
        e9_puts("hc done ");
        e9_dec(a0);
        e9_puts("\n");
        bochs_shutdown();
    default:
        e9_puts("hc unknown ");
        e9_dec(command);
        break;
    }
    e9_puts("\n");
    return a0;
}

void debug_exit(uint8_t value) {
    e9_puts("hc debug-exit ");
    e9_dec(value);
    e9_puts("\n");
    bochs_shutdown();
}
