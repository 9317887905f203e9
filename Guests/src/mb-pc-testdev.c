/* mb-pc-testdev - QEMU's -device pc-testdev, everything but its interrupts
 * (mb-ioapic-level has those): the 32-bit register at ports 0xe0-0xe3 and
 * its byte-wide alias at 0xe8-0xeb with every access size and alignment,
 * accesses that run past the end into the flush-page port or unassigned
 * ports, the flush-page port 0xe4 (4-byte writes only; the page keeps its
 * bytes), reads of the IRQ ports 0x2000-0x2017, and the 64 KiB buffer at
 * 0xff000000 under plain and emulated instructions (read-modify-write,
 * xchg, cmpxchg, string moves). Prints each value; exits 0 (or 0x76 when
 * the register or the buffer did not hold what was written). */
#include "mb.h"

#define IOMEM 0xFF000000u

static volatile uint8_t page[4096] __attribute__((aligned(4096)));
static uint8_t ram_buf[64];

static void show(const char *what, uint32_t v) { put_str(what); put_kv_hex("", v, 8); put_str("\n"); }

static inline uint8_t  mr8(uint32_t a)  { return *(volatile uint8_t *)a; }
static inline uint16_t mr16(uint32_t a) { return *(volatile uint16_t *)a; }
static inline uint32_t mr32(uint32_t a) { return *(volatile uint32_t *)a; }
/* 8-byte accesses: lock cmpxchg8b (KVM emulates it on MMIO; SSE and x87 moves it does not). */
static inline uint64_t mr64(uint32_t a) {
    uint32_t lo = 0, hi = 0;
    __asm__ volatile("lock cmpxchg8b (%2)" : "+a"(lo), "+d"(hi) : "r"(a), "b"(0), "c"(0) : "memory", "cc");
    return (uint64_t)hi << 32 | lo;
}
static inline void mw8(uint32_t a, uint8_t v)   { *(volatile uint8_t *)a = v; }
static inline void mw16(uint32_t a, uint16_t v) { *(volatile uint16_t *)a = v; }
static inline void mw32(uint32_t a, uint32_t v) { *(volatile uint32_t *)a = v; }
static inline void mw64(uint32_t a, uint64_t v) {
    uint64_t old = mr64(a);
    uint32_t lo = (uint32_t)old, hi = (uint32_t)(old >> 32);
    __asm__ volatile("lock cmpxchg8b (%2)" : "+a"(lo), "+d"(hi) : "r"(a), "b"((uint32_t)v), "c"((uint32_t)(v >> 32)) : "memory", "cc");
}

enum { MOVSB, MOVSL, MOVSW_DOWN };
/* rep movs of `n` elements from `src` to `dst` (MOVSW_DOWN: with DF set). */
static void string_op(int op, const void *src, const void *dst, uint32_t n) {
    const void *si = src, *di = dst;
    switch (op) {
    case MOVSB: __asm__ volatile("cld; rep movsb" : "+S"(si), "+D"(di), "+c"(n) : : "memory"); break;
    case MOVSL: __asm__ volatile("cld; rep movsl" : "+S"(si), "+D"(di), "+c"(n) : : "memory"); break;
    default:    __asm__ volatile("std; rep movsw; cld" : "+S"(si), "+D"(di), "+c"(n) : : "memory"); break;
    }
}

int main(uint32_t magic, struct mb_info *info) {
    (void)magic; (void)info;
    int bad = 0;
    /* The register at 0xe0 and its alias at 0xe8. */
    show("e0 initial inl", inl(0xe0));
    outl(0xe0, 0x12345678);
    show("e0 after outl 0x12345678: inl", inl(0xe0));
    if (inl(0xe0) != 0x12345678) bad = 1;
    show("inw e0", inw(0xe0)); show("inw e2", inw(0xe2));
    show("inb e0", inb(0xe0)); show("inb e1", inb(0xe1)); show("inb e2", inb(0xe2)); show("inb e3", inb(0xe3));
    show("inw e1", inw(0xe1)); show("inw e3", inw(0xe3));
    show("inl e1", inl(0xe1)); show("inl e2", inl(0xe2)); show("inl e3", inl(0xe3));
    outw(0xe2, 0xabcd); show("after outw e2 0xabcd: inl e0", inl(0xe0));
    outb(0xe1, 0x5a);   show("after outb e1 0x5a: inl e0", inl(0xe0));
    outw(0xe1, 0x1122); show("after outw e1 0x1122: inl e0", inl(0xe0));
    outl(0xe2, 0xdeadbeef); show("after outl e2 0xdeadbeef: inl e0", inl(0xe0));
    outl(0xe3, 0x99887766); show("after outl e3 0x99887766: inl e0", inl(0xe0));
    show("inl e8 (alias)", inl(0xe8));
    show("inw ea", inw(0xea)); show("inb eb", inb(0xeb)); show("inb e9", inb(0xe9));
    outl(0xe8, 0xcafef00d); show("after outl e8 0xcafef00d: inl e0", inl(0xe0));
    outb(0xea, 0x11); show("after outb ea 0x11: inl e0", inl(0xe0));
    outw(0xe9, 0x3344); show("after outw e9 0x3344: inl e8", inl(0xe8));
    outl(0xea, 0x55667788); show("after outl ea 0x55667788: inl e8", inl(0xe8));
    show("inl ea", inl(0xea)); show("inl eb", inl(0xeb)); show("inw eb", inw(0xeb));
    static const uint8_t bytes[4] = { 0xa1, 0xb2, 0xc3, 0xd4 };
    { const void *si = bytes; uint32_t n = 4; __asm__ volatile("cld; rep outsb" : "+S"(si), "+c"(n) : "d"(0xe0) : "memory"); }
    show("after rep outsb a1 b2 c3 d4 to e0: inl e0", inl(0xe0));
    uint8_t got[4] = {0};
    { void *di = got; uint32_t n = 4; __asm__ volatile("cld; rep insb" : "+D"(di), "+c"(n) : "d"(0xe2) : "memory"); }
    show("rep insb x4 from e2", got[0] | got[1] << 8 | got[2] << 16 | (uint32_t)got[3] << 24);
    outl(0xe0, 0x0f1e2d3c);
    if (inl(0xe8) != 0x0f1e2d3c) bad = 1;

    /* The flush-page port: reads 0, only 4-byte writes count, the page keeps its bytes. */
    show("inl e4", inl(0xe4)); show("inw e4", inw(0xe4)); show("inb e5", inb(0xe5)); show("inw e6", inw(0xe6));
    for (int i = 0; i < 4096; i++) page[i] = (uint8_t)(i * 7);
    outl(0xe4, (uint32_t)(uintptr_t)page);
    outl(0xe4, (uint32_t)(uintptr_t)page + 0x123);
    outw(0xe4, 0x1000); outb(0xe4, 0x10);
    outl(0xe4, 0xd0000000u);            /* not RAM */
    outl(0xe4, 0xfffff000u);            /* the BIOS ROM on QEMU, nothing on kvmrun */
    uint32_t sum = 0;
    for (int i = 0; i < 4096; i++) sum = sum * 31 + page[i];
    show("page checksum after flushes", sum);
    page[5] = 0x77;
    show("page[5] after write", page[5]);
    show("e0 after flush-port accesses", inl(0xe0));

    /* The IRQ ports read 0 (nothing is raised here). */
    show("inb 2000", inb(0x2000)); show("inb 2017", inb(0x2017)); show("inw 2000", inw(0x2000));
    show("inl 2004", inl(0x2004)); show("inl 2016", inl(0x2016)); show("inb 2018", inb(0x2018));
    show("inb ec", inb(0xec));

    /* The iomem buffer. */
    show("iomem initial 32", mr32(IOMEM));
    show("iomem initial 32 at 0xfffc", mr32(IOMEM + 0xfffc));
    mw32(IOMEM, 0x44332211);
    show("after mw32 0x44332211: mr32", mr32(IOMEM));
    show("mr8 +1", mr8(IOMEM + 1)); show("mr16 +1", mr16(IOMEM + 1)); show("mr16 +2", mr16(IOMEM + 2));
    show("mr32 +1", mr32(IOMEM + 1)); show("mr32 +3", mr32(IOMEM + 3));
    mw8(IOMEM + 4, 0x55); mw16(IOMEM + 5, 0x7766); mw32(IOMEM + 7, 0xbbaa9988);
    uint64_t q = mr64(IOMEM);
    show("mr64 lo after byte/word/unaligned writes", (uint32_t)q); show("mr64 hi", (uint32_t)(q >> 32));
    mw64(IOMEM + 0x100, 0x0123456789abcdefull);
    show("after mw64: mr32 +0x100", mr32(IOMEM + 0x100)); show("mr32 +0x104", mr32(IOMEM + 0x104));
    q = mr64(IOMEM + 0x102);
    show("mr64 +0x102 lo", (uint32_t)q); show("mr64 +0x102 hi", (uint32_t)(q >> 32));
    mw32(IOMEM + 0xfff0, 0xa5a5a5a5); show("mr32 +0xfff0", mr32(IOMEM + 0xfff0));
    mw32(IOMEM + 0xfffc, 0x87654321); show("mr32 +0xfffc", mr32(IOMEM + 0xfffc));
    mw8(IOMEM + 0xffff, 0x99); show("mr8 +0xffff (the last byte)", mr8(IOMEM + 0xffff));
    if (mr32(IOMEM) != 0x44332211 || mr32(IOMEM + 0xfff0) != 0xa5a5a5a5) bad = 1;

    /* Instructions KVM emulates on MMIO. */
    mw32(IOMEM + 0x200, 100);
    __asm__ volatile("addl $5, (%0)" :: "r"(IOMEM + 0x200) : "memory", "cc");
    show("addl $5 -> ", mr32(IOMEM + 0x200));
    __asm__ volatile("incw (%0)" :: "r"(IOMEM + 0x202) : "memory", "cc");
    show("incw +0x202 -> mr32 +0x200", mr32(IOMEM + 0x200));
    __asm__ volatile("orb $0x80, (%0)" :: "r"(IOMEM + 0x203) : "memory", "cc");
    show("orb $0x80 +0x203 -> mr32 +0x200", mr32(IOMEM + 0x200));
    uint32_t x = 0xfeedface;
    __asm__ volatile("xchgl %0, (%1)" : "+r"(x) : "r"(IOMEM + 0x200) : "memory");
    show("xchgl old", x); show("xchgl new", mr32(IOMEM + 0x200));
    uint32_t expected = 0xfeedface, desired = 0x600d600d;
    __asm__ volatile("lock cmpxchgl %2, (%1)" : "+a"(expected) : "r"(IOMEM + 0x200), "r"(desired) : "memory", "cc");
    show("cmpxchg eax", expected); show("cmpxchg mem", mr32(IOMEM + 0x200));
    expected = 1;
    __asm__ volatile("lock cmpxchgl %2, (%1)" : "+a"(expected) : "r"(IOMEM + 0x200), "r"(desired + 1) : "memory", "cc");
    show("cmpxchg (fails) eax", expected); show("cmpxchg (fails) mem", mr32(IOMEM + 0x200));
    uint8_t flag;
    mw32(IOMEM + 0x210, 0x10);
    __asm__ volatile("btsl $3, (%1); setc %0" : "=r"(flag) : "r"(IOMEM + 0x210) : "memory", "cc");
    show("bts $3 cf", flag); show("bts mem", mr32(IOMEM + 0x210));
    __asm__ volatile("btrl $4, (%1); setc %0" : "=r"(flag) : "r"(IOMEM + 0x210) : "memory", "cc");
    show("btr $4 cf", flag); show("btr mem", mr32(IOMEM + 0x210));
    for (int i = 0; i < 64; i++) ram_buf[i] = (uint8_t)(0x40 + i);
    string_op(MOVSB, ram_buf, (void *)(IOMEM + 0x300), 37);
    show("rep movsb ram->iomem: mr32 +0x300", mr32(IOMEM + 0x300)); show("mr32 +0x320", mr32(IOMEM + 0x320));
    string_op(MOVSL, ram_buf, (void *)(IOMEM + 0x400), 16);
    show("rep movsl ram->iomem: mr32 +0x43c", mr32(IOMEM + 0x43c));
    for (int i = 0; i < 64; i++) ram_buf[i] = 0;
    string_op(MOVSB, (void *)(IOMEM + 0x301), ram_buf, 40);
    sum = 0;
    for (int i = 0; i < 64; i++) sum = sum * 31 + ram_buf[i];
    show("rep movsb iomem->ram checksum", sum);
    string_op(MOVSW_DOWN, (void *)(IOMEM + 0x43e), (void *)(IOMEM + 0x53e), 8);
    show("std rep movsw iomem->iomem: mr32 +0x530", mr32(IOMEM + 0x530)); show("mr32 +0x53c", mr32(IOMEM + 0x53c));
    { uint32_t di = IOMEM + 0x600, n = 5; __asm__ volatile("cld; rep stosl" : "+D"(di), "+c"(n) : "a"(0x5a5aa5a5) : "memory"); }
    show("rep stosl: mr32 +0x610", mr32(IOMEM + 0x610)); show("mr32 +0x614", mr32(IOMEM + 0x614));
    uint32_t lods;
    { uint32_t si = IOMEM + 0x100; __asm__ volatile("cld; lodsl" : "=a"(lods), "+S"(si) : : "memory"); }
    show("lodsl +0x100", lods);
    uint32_t movzx;
    __asm__ volatile("movzbl (%1), %0" : "=r"(movzx) : "r"(IOMEM + 0x103));
    show("movzbl +0x103", movzx);
    int32_t movsx;
    __asm__ volatile("movswl (%1), %0" : "=r"(movsx) : "r"(IOMEM + 0x106));
    show("movswl +0x106", (uint32_t)movsx);

    put_str(bad ? "mb-pc-testdev: FAILED\n" : "mb-pc-testdev: ok\n");
    return bad ? 0x76 : 0;
}
