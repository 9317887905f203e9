/* hostile-io.c - a guest that pokes every port and a lot of MMIO at random.
 *
 * Deterministic (xorshift64* seeded from the CPU's APIC ID):
 *   1. a sweep: a byte read of every one of the 65536 ports (BSP only);
 *   2. PORT_ACCESSES random port accesses: in/out of 1, 2 and 4 bytes, and
 *      string ins/outs of 1 to 32 elements (rep insb/insw/insl, outs...), to
 *      any port but 0xf4-0xf7 (isa-debug-exit) and 0x92 (reset), never an out
 *      to the hostcall port 0x1000 (reads of it are fine);
 *   3. fw_cfg abuse (0x510/0x511, DMA 0x514/0x518): every selector read far
 *      past its end, word reads of the data port, DMA descriptors at and over
 *      the end of RAM with lengths up to 4 GiB;
 *   4. MMIO_ACCESSES random MMIO accesses of 1, 2, 4 and 8 bytes (mov loads and
 *      stores, xchg, a read-modify-write or, rep movsb) where there is no RAM:
 *      64-192 MiB (above a 64 MiB guest), 0xd0000000, the HPET page, the last
 *      page below 4 GiB, and 8-byte accesses straddling the end of a 64 MiB RAM.
 *      The LAPIC and IOAPIC pages are left alone (the in-kernel irqchip's).
 *
 * More vCPUs: the host may start application processors at `ap_entry` (a
 * fact) with their stacks in `ap_stacks` (fact, `ap_stack_size` bytes each) and
 * write how many it started to the 32-bit word at `expected_aps_addr`; they run
 * steps 2-4 at once with the BSP, which waits for them before reporting.
 * APs use no hostcalls and no serial output.
 *
 * Facts: ap_entry, ap_stacks, ap_stack_size, expected_aps_addr (at start);
 * port_accesses, mmio_accesses, fwcfg_bytes, aps_done, sweep_ff (ports of the
 * sweep that read 0xff) at the end; then HC_DONE 0.
 */
#include "guest.h"

#define PORT_ACCESSES  6000
#define MMIO_ACCESSES  3000
#define MAX_APS        8
#define AP_STACK_SIZE  8192

uint8_t ap_stacks[MAX_APS][AP_STACK_SIZE] __attribute__((aligned(16)));
volatile uint32_t expected_aps;
static volatile uint32_t aps_done;
static volatile uint64_t total_ports, total_mmio;

static uint8_t buffers[MAX_APS + 1][256] __attribute__((aligned(16)));

static inline uint64_t next(uint64_t *s) {
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static inline uint32_t apic_id(void) {
    uint32_t r[4];
    cpuid(1, 0, r);
    return r[1] >> 24;
}

static int forbidden_out(uint16_t port, int size) {
    (void)size;
    return (port >= DEBUG_EXIT_PORT && port <= DEBUG_EXIT_PORT + 3)   /* isa-debug-exit, iosize 4 */
        || port == HOSTCALL_PORT || port == 0x92;
}

static void random_ports(uint64_t *s, uint8_t *buf) {
    for (int i = 0; i < PORT_ACCESSES; i++) {
        uint64_t r = next(s);
        uint16_t port = (uint16_t)r;
        /* A third of the accesses go to the ports devices sit on. */
        static const uint16_t hot[] = { 0x3f8, 0x3f9, 0x3fa, 0x3fb, 0x3fc, 0x3fd, 0x3fe, 0x3ff,
                                        0x510, 0x511, 0x514, 0x518, 0x70, 0x71, 0x80, 0x1000,
                                        0x40, 0x43, 0x20, 0x21, 0xa0, 0xa1, 0x61, 0xcf8 };
        if ((r >> 16) % 3 == 0) port = hot[(r >> 20) % (sizeof hot / sizeof hot[0])];
        uint32_t value = (uint32_t)(r >> 32);
        int kind = (int)((r >> 40) % 10);
        int size = 1 << ((r >> 44) % 3);
        uint64_t count = 1 + ((r >> 48) % 32);
        switch (kind) {
        case 0: case 1: case 2:            /* in */
            if (size == 1) (void)inb(port); else if (size == 2) (void)inw(port); else (void)inl(port);
            break;
        case 3: case 4: case 5: case 6:    /* out */
            if (forbidden_out(port, size)) { (void)inb(port); break; }
            if (size == 1) outb(port, (uint8_t)value); else if (size == 2) outw(port, (uint16_t)value); else outl(port, value);
            break;
        case 7: case 8: {                  /* rep ins into the buffer */
            void *d = buf;
            if (count * (uint64_t)size > 256) count = 256 / (uint64_t)size;
            if (size == 1) __asm__ volatile("cld; rep insb" : "+D"(d), "+c"(count) : "d"(port) : "memory");
            else if (size == 2) __asm__ volatile("cld; rep insw" : "+D"(d), "+c"(count) : "d"(port) : "memory");
            else __asm__ volatile("cld; rep insl" : "+D"(d), "+c"(count) : "d"(port) : "memory");
            break;
        }
        default: {                         /* rep outs from the buffer */
            const void *src = buf;
            if (forbidden_out(port, size)) break;
            if (count * (uint64_t)size > 256) count = 256 / (uint64_t)size;
            if (size == 1) __asm__ volatile("cld; rep outsb" : "+S"(src), "+c"(count) : "d"(port) : "memory");
            else if (size == 2) __asm__ volatile("cld; rep outsw" : "+S"(src), "+c"(count) : "d"(port) : "memory");
            else __asm__ volatile("cld; rep outsl" : "+S"(src), "+c"(count) : "d"(port) : "memory");
            break;
        }
        }
    }
    __atomic_add_fetch(&total_ports, PORT_ACCESSES, __ATOMIC_RELAXED);
}

static uint64_t mmio_address(uint64_t r) {
    switch ((r >> 8) % 6) {
    case 0: return 0x04000000 + (r >> 16) % 0x08000000;        /* above a 64 MiB RAM */
    case 1: return 0xd0000000 + (r >> 16) % 0x100000;
    case 2: return 0xfed00000 + (r >> 16) % 0x1000;            /* HPET (none here) */
    case 3: return 0xfffff000 + (r >> 16) % 0xff8;             /* last page below 4 GiB */
    case 4: return 0x03fffffc;                                 /* straddles the end of 64 MiB */
    default: return 0x04000000 - 1 - (r >> 16) % 7;           /* the last RAM bytes */
    }
}

static void random_mmio(uint64_t *s, uint8_t *buf) {
    for (int i = 0; i < MMIO_ACCESSES; i++) {
        uint64_t r = next(s);
        uintptr_t a = (uintptr_t)mmio_address(r);
        int size = 1 << ((r >> 40) % 4);
        uint64_t v = next(s);
        switch ((r >> 44) % 6) {
        case 0: case 1:                    /* load */
            if (size == 1) v = *(volatile uint8_t *)a;
            else if (size == 2) v = *(volatile uint16_t *)a;
            else if (size == 4) v = *(volatile uint32_t *)a;
            else v = *(volatile uint64_t *)a;
            buf[i & 0xff] = (uint8_t)v;
            break;
        case 2: case 3:                    /* store */
            if (size == 1) *(volatile uint8_t *)a = (uint8_t)v;
            else if (size == 2) *(volatile uint16_t *)a = (uint16_t)v;
            else if (size == 4) *(volatile uint32_t *)a = (uint32_t)v;
            else *(volatile uint64_t *)a = v;
            break;
        case 4:                            /* locked exchange, read-modify-write */
            __asm__ volatile("xchgq %0, (%1)" : "+r"(v) : "r"(a & ~7ULL) : "memory");
            __asm__ volatile("orl %0, (%1)" :: "r"((uint32_t)v), "r"(a & ~3ULL) : "memory");
            break;
        default: {                         /* string moves in both directions */
            uint64_t n = 1 + v % 16;
            void *d = buf; const void *src = (const void *)a;
            __asm__ volatile("cld; rep movsb" : "+D"(d), "+S"(src), "+c"(n) :: "memory");
            n = 1 + v % 16; d = (void *)a; src = buf;
            __asm__ volatile("cld; rep movsb" : "+D"(d), "+S"(src), "+c"(n) :: "memory");
            break;
        }
        }
    }
    __atomic_add_fetch(&total_mmio, MMIO_ACCESSES, __ATOMIC_RELAXED);
}

/* fw_cfg DMA descriptor: control, length, address, big-endian. */
struct fw_dma { uint32_t control, length; uint64_t address; } __attribute__((packed));
static struct fw_dma dma_desc __attribute__((aligned(16)));

static uint32_t be32(uint32_t v) { return __builtin_bswap32(v); }

static void fw_dma_at(uint64_t descriptor) {
    outl(0x514, be32((uint32_t)(descriptor >> 32)));
    outl(0x518, be32((uint32_t)descriptor));
}

static uint64_t fwcfg_abuse(void) {
    uint64_t bytes = 0;
    /* Each of the first selectors and the file range, read well past its end. */
    for (uint32_t key = 0; key < 0x40; key++) {
        uint16_t k = key < 0x20 ? (uint16_t)key : (uint16_t)(0x20 + key);
        outw(0x510, k);
        for (int i = 0; i < 600; i++) { (void)inb(0x511); bytes++; }
        (void)inw(0x511);
        (void)inl(0x511);
        (void)inl(0x510);
    }
    outw(0x510, 0xffff);
    for (int i = 0; i < 100; i++) (void)inb(0x511);
    /* DMA: past-the-end reads into RAM and beyond it, a descriptor straddling
     * the end of RAM, one outside RAM, a write (refused), a skip of 4 GiB. */
    static const struct { uint32_t control, length; uint64_t address; } cases[] = {
        { (0x19u << 16) | 8 | 2, 0x10000, 0x800000 },          /* select E820-ish key, read 64 KiB */
        { (0x0000u << 16) | 8 | 2, 0xffffffff, 0x900000 },     /* 4 GiB read into RAM: runs off its end */
        { 2, 0x1000, 0x03fff800 },                              /* read across the end of 64 MiB */
        { 2, 0x1000, 0xfffff000 },                              /* read into no RAM at all */
        { 0x10, 0x100, 0x800000 },                              /* write: refused */
        { 4, 0xffffffff, 0 },                                   /* skip 4 GiB */
        { 0xffffffff, 0xffffffff, 0xffffffffffffffffULL },      /* everything set */
    };
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dma_desc.control = be32(cases[i].control);
        dma_desc.length = be32(cases[i].length);
        dma_desc.address = __builtin_bswap64(cases[i].address);
        fw_dma_at((uint64_t)(uintptr_t)&dma_desc);
    }
    fw_dma_at(0x03fffff8);                 /* descriptor straddles the end of 64 MiB */
    fw_dma_at(0x03fffffc);
    fw_dma_at(0xfffffff0);                 /* descriptor where there is no RAM */
    fw_dma_at(0xffffffffffffffffULL);
    fw_dma_at(0);
    return bytes;
}

static void hostile_work(uint32_t cpu) {
    uint64_t s = 0x9E3779B97F4A7C15ULL ^ ((uint64_t)(cpu + 1) * 0xD1B54A32D192ED03ULL);
    uint8_t *buf = buffers[cpu % (MAX_APS + 1)];
    random_ports(&s, buf);
    random_mmio(&s, buf);
}

/* Entered by the host on each AP (long mode, own stack, interrupts off). */
__attribute__((noreturn)) void ap_entry(void) {
    hostile_work(apic_id());
    __atomic_add_fetch(&aps_done, 1, __ATOMIC_SEQ_CST);
    for (;;) __asm__ volatile("cli; hlt");
}

int main(void) {
    serial_puts("hostile-io: ports, fw_cfg, MMIO\n");
    report("ap_entry", (uint64_t)(uintptr_t)ap_entry);
    report("ap_stacks", (uint64_t)(uintptr_t)ap_stacks);
    report("ap_stack_size", AP_STACK_SIZE);
    report("expected_aps_addr", (uint64_t)(uintptr_t)&expected_aps);
    sync_stage(1);                        /* the host may start APs now */

    uint64_t sweep_ff = 0;
    for (uint32_t port = 0; port < 0x10000; port++)
        if (inb((uint16_t)port) == 0xff) sweep_ff++;
    uint64_t fw = fwcfg_abuse();
    hostile_work(0);
    while (aps_done < expected_aps) __asm__ volatile("pause");

    /* The UART may have been left in any state: put it back for the last line. */
    outb(0x3fb, 0x03);                    /* 8N1, DLAB off */
    outb(0x3fc, 0x00);                    /* no loopback */
    outb(0x3f9, 0x00);                    /* no interrupts */
    serial_puts("\nhostile-io: survived\n");
    report("sweep_ff", sweep_ff);
    report("fwcfg_bytes", fw);
    report("port_accesses", total_ports);
    report("mmio_accesses", total_mmio);
    report("aps_done", aps_done);
    return 0;
}
