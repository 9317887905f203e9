/* guest.h - freestanding mini library for C guests (32- or 64-bit).
 * Implementation: Guests/lib/guest.c; ELF64 entry: Guests/lib/start64.S. */
#ifndef GUEST_H
#define GUEST_H

#include <stdint.h>
#include <stddef.h>
#include "hostcall.h"

#define NORETURN __attribute__((noreturn))

/* ---- port and MSR / control register access ---------------------------- */
static inline void outb(uint16_t port, uint8_t v)  { __asm__ volatile("outb %0, %1" :: "a"(v), "Nd"(port)); }
static inline void outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0, %1" :: "a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" :: "a"(v), "Nd"(port)); }
static inline uint8_t  inb(uint16_t port) { uint8_t v;  __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint16_t inw(uint16_t port) { uint16_t v; __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint32_t inl(uint16_t port) { uint32_t v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }

static inline uint64_t rdmsr(uint32_t msr) {
    uint32_t lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return ((uint64_t)hi << 32) | lo;
}
static inline void wrmsr(uint32_t msr, uint64_t v) {
    __asm__ volatile("wrmsr" :: "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}
static inline uintptr_t read_cr0(void) { uintptr_t v; __asm__ volatile("mov %%cr0, %0" : "=r"(v)); return v; }
static inline uintptr_t read_cr3(void) { uintptr_t v; __asm__ volatile("mov %%cr3, %0" : "=r"(v)); return v; }
static inline uintptr_t read_cr4(void) { uintptr_t v; __asm__ volatile("mov %%cr4, %0" : "=r"(v)); return v; }
static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4]) {
    __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}
static inline void cli(void) { __asm__ volatile("cli"); }
static inline void hlt(void) { __asm__ volatile("hlt"); }

#define MSR_EFER   0xC0000080u
#define EFER_LME   (1u << 8)
#define EFER_LMA   (1u << 10)
#define CR0_PE     (1u << 0)
#define CR0_PG     (1u << 31)

/* ---- serial (COM1, polled) --------------------------------------------- */
void serial_putc(char c);
void serial_puts(const char *s);
void serial_put_hex(uint64_t v);          /* "0x" + 16 hex digits */
void serial_put_dec(uint64_t v);

/* ---- hostcalls (Docs/PROTOCOL.md) -------------------------------------- */
/* Returns args[0] as the host left it. Block addresses are identity-mapped. */
uint64_t hostcall(uint32_t command, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3);
void report(const char *key, uint64_t value);       /* HC_REPORT */
void sync_stage(uint64_t stage);                    /* HC_SYNC */
/* HC_SYNC, returning what the host's checkpoint replied (KVMTesting's
 * Checkpoint.reply), or `stage` itself if it did not reply. */
uint64_t sync_stage_value(uint64_t stage);
NORETURN void done(uint64_t status);                /* HC_DONE, then halt */
NORETURN void fail(const char *msg, uint64_t line, uint64_t a, uint64_t b); /* HC_FAIL */
NORETURN void debug_exit(uint8_t value);            /* port 0xf4, then halt */
NORETURN void halt(void);                           /* cli; hlt forever */

/* Assertions (HC_FAIL with the message, __LINE__ and two values). The message
 * literal carries the source file after its NUL, as ESC "file=" __FILE__: the
 * host reads it as GuestFailure.file (KVMTesting reports the failure at that
 * file and line); a host that does not know reads the message alone. */
#define GUEST_FAIL_MESSAGE(msg) msg "\0" "\033file=" __FILE__
#define GUEST_FAIL(msg) fail(GUEST_FAIL_MESSAGE(msg), __LINE__, 0, 0)
#define GUEST_ASSERT(cond) \
    do { if (!(cond)) fail(GUEST_FAIL_MESSAGE("assertion failed: " #cond), __LINE__, 0, 0); } while (0)
#define GUEST_ASSERT_OP_(a, op, b) \
    do { uint64_t a_ = (uint64_t)(a), b_ = (uint64_t)(b); \
         if (!(a_ op b_)) fail(GUEST_FAIL_MESSAGE("assertion failed: " #a " " #op " " #b), __LINE__, a_, b_); } while (0)
#define GUEST_ASSERT_EQ(a, b) GUEST_ASSERT_OP_(a, ==, b)
#define GUEST_ASSERT_NE(a, b) GUEST_ASSERT_OP_(a, !=, b)

/* ---- what the compiler may call even when freestanding ------------------ */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

#endif
