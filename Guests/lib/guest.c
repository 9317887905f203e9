/* guest.c - freestanding mini library for C guests. See include/guest.h.
 * The hostcall protocol's calls here go through hostcall(), whose transport
 * (the hostcall port, and isa-debug-exit) is lib/hostcall.c. */
#include "guest.h"

void serial_putc(char c) {
    while (!(inb(COM1_LSR) & LSR_THRE)) { }
    outb(COM1_PORT, (uint8_t)c);
}

void serial_puts(const char *s) {
    while (*s) serial_putc(*s++);
}

void serial_put_hex(uint64_t v) {
    serial_puts("0x");
    for (int shift = 60; shift >= 0; shift -= 4)
        serial_putc("0123456789abcdef"[(v >> shift) & 0xf]);
}

void serial_put_dec(uint64_t v) {
    char buf[21];
    int i = 20;
    buf[i] = 0;
    do { buf[--i] = (char)('0' + v % 10); v /= 10; } while (v);
    serial_puts(&buf[i]);
}

void report(const char *key, uint64_t value) {
    hostcall(HC_REPORT, (uintptr_t)key, value, 0, 0);
}

void sync_stage(uint64_t stage) {
    hostcall(HC_SYNC, stage, 0, 0, 0);
}

uint64_t sync_stage_value(uint64_t stage) {
    return hostcall(HC_SYNC, stage, 0, 0, 0);
}

void halt(void) {
    for (;;) { cli(); hlt(); }
}

void done(uint64_t status) {
    hostcall(HC_DONE, status, 0, 0, 0);
    halt();
}

void fail(const char *msg, uint64_t line, uint64_t a, uint64_t b) {
    serial_puts("FAIL: ");
    serial_puts(msg);
    serial_putc('\n');
    hostcall(HC_FAIL, (uintptr_t)msg, line, a, b);
    halt();
}
