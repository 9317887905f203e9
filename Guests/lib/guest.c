/* guest.c - freestanding mini library for C guests. See include/guest.h. */
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

/* One block; guests are single-threaded. */
static volatile struct hostcall hc_block = { .magic = HOSTCALL_MAGIC };

uint64_t hostcall(uint32_t command, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3) {
    hc_block.magic = HOSTCALL_MAGIC;
    hc_block.command = command;
    hc_block.args[0] = a0;
    hc_block.args[1] = a1;
    hc_block.args[2] = a2;
    hc_block.args[3] = a3;
    /* The "memory" clobber orders the block stores before the out and the
     * host's write-back before the read below. */
    __asm__ volatile("outl %0, %1"
                     :: "a"((uint32_t)(uintptr_t)&hc_block), "Nd"((uint16_t)HOSTCALL_PORT)
                     : "memory");
    return hc_block.args[0];
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

void debug_exit(uint8_t value) {
    outb(DEBUG_EXIT_PORT, value);
    halt();
}
