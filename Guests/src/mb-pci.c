/* mb-pci - PCI bus 0 through configuration mechanism 1 (0xcf8/0xcfc) as a
 * kernel finds it on QEMU's pc after qboot, with -device pci-testdev:
 *   - the address register and odd-sized data accesses, bit 31 clear, a
 *     missing device, bus 1
 *   - every function of bus 0 (multi-function devices followed): each
 *     non-zero dword of its 256-byte configuration space
 *   - BAR sizing (all ones written, the mask read, the value put back)
 *   - pci-testdev (1b36:0005): its BARs programmed (memory 0xe0000000, I/O
 *     0xc000) and decoding enabled, then each of its six tests (mmio/portio ×
 *     no-eventfd, wildcard-eventfd, datamatch-eventfd) as kvm-unit-tests runs
 *     them: select, read the header, write the data 16 times at the test's
 *     offset, read the count; plus writes of another value and of 2 and 4
 *     bytes, a moved BAR, and decoding turned off.
 * (Unassigned memory is not read: QEMU's pc reads 0 there.)
 * Prints it all; exits 0, or 0x78 when pci-testdev is missing. */
#include "mb.h"

#define MEMBAR 0xE0000000u
#define MEMBAR2 0xE0100000u
#define IOBAR 0xC000u

static uint32_t cfg_addr(uint32_t bdf, uint32_t reg) { return 0x80000000u | bdf << 8 | (reg & 0xfc); }
static uint32_t cfg_read32(uint32_t bdf, uint32_t reg) { outl(0xcf8, cfg_addr(bdf, reg)); return inl(0xcfc); }
static uint16_t cfg_read16(uint32_t bdf, uint32_t reg) { outl(0xcf8, cfg_addr(bdf, reg)); return inw(0xcfc + (reg & 2)); }
static uint8_t cfg_read8(uint32_t bdf, uint32_t reg) { outl(0xcf8, cfg_addr(bdf, reg)); return inb(0xcfc + (reg & 3)); }
static void cfg_write32(uint32_t bdf, uint32_t reg, uint32_t v) { outl(0xcf8, cfg_addr(bdf, reg)); outl(0xcfc, v); }
static void cfg_write16(uint32_t bdf, uint32_t reg, uint16_t v) { outl(0xcf8, cfg_addr(bdf, reg)); outw(0xcfc + (reg & 2), v); }
static void cfg_write8(uint32_t bdf, uint32_t reg, uint8_t v) { outl(0xcf8, cfg_addr(bdf, reg)); outb(0xcfc + (reg & 3), v); }

static void show(const char *what, uint32_t v) { put_str(what); put_kv_hex("", v, 8); put_str("\n"); }
static void put_bdf(uint32_t bdf) {
    put_hex(bdf >> 8, 2); put_str(":"); put_hex((bdf >> 3) & 31, 2); put_str("."); put_dec(bdf & 7);
}

static void dump_function(uint32_t bdf) {
    put_str("function "); put_bdf(bdf); put_str("\n");
    for (uint32_t reg = 0; reg < 256; reg += 4) {
        uint32_t v = cfg_read32(bdf, reg);
        if (v) { put_str("  "); put_hex(reg, 2); put_kv_hex("", v, 8); put_str("\n"); }
    }
    uint8_t type = cfg_read8(bdf, 0x0e) & 0x7f;
    if (type != 0) return;
    for (uint32_t bar = 0x10; bar <= 0x24; bar += 4) {
        uint32_t old = cfg_read32(bdf, bar);
        cfg_write32(bdf, bar, 0xffffffffu);
        uint32_t mask = cfg_read32(bdf, bar);
        cfg_write32(bdf, bar, old);
        if (mask) { put_str("  bar "); put_hex(bar, 2); put_kv_hex("sizing", mask, 8); put_kv_hex("restored", cfg_read32(bdf, bar), 8); put_str("\n"); }
    }
    uint32_t rom = cfg_read32(bdf, 0x30);
    cfg_write32(bdf, 0x30, 0xfffffffeu);
    uint32_t rmask = cfg_read32(bdf, 0x30);
    cfg_write32(bdf, 0x30, rom);
    if (rmask) { put_str("  rom"); put_kv_hex("sizing", rmask, 8); put_str("\n"); }
}

/* pci-testdev through one of its BARs. */
struct bar_ops {
    const char *name;
    uint8_t (*rb)(uint32_t off);
    uint32_t (*rl)(uint32_t off);
    void (*wb)(uint32_t off, uint8_t v);
    void (*ww)(uint32_t off, uint16_t v);
    void (*wl)(uint32_t off, uint32_t v);
};
static uint32_t membase = MEMBAR;
static uint8_t m_rb(uint32_t o) { return *(volatile uint8_t *)(membase + o); }
static uint32_t m_rl(uint32_t o) { return *(volatile uint32_t *)(membase + o); }
static void m_wb(uint32_t o, uint8_t v) { *(volatile uint8_t *)(membase + o) = v; }
static void m_ww(uint32_t o, uint16_t v) { *(volatile uint16_t *)(membase + o) = v; }
static void m_wl(uint32_t o, uint32_t v) { *(volatile uint32_t *)(membase + o) = v; }
static uint8_t p_rb(uint32_t o) { return inb(IOBAR + o); }
static uint32_t p_rl(uint32_t o) { return inl(IOBAR + o); }
static void p_wb(uint32_t o, uint8_t v) { outb(IOBAR + o, v); }
static void p_ww(uint32_t o, uint16_t v) { outw(IOBAR + o, v); }
static void p_wl(uint32_t o, uint32_t v) { outl(IOBAR + o, v); }
static const struct bar_ops mmio = { "mmio", m_rb, m_rl, m_wb, m_ww, m_wl };
static const struct bar_ops pio = { "portio", p_rb, p_rl, p_wb, p_ww, p_wl };

static void run_test(const struct bar_ops *ops, uint32_t test) {
    ops->wb(0, (uint8_t)test);
    put_str(ops->name); put_kv_dec("select", test);
    put_kv_hex("test", ops->rb(0), 2); put_kv_dec("width", ops->rb(1));
    uint32_t off = ops->rl(4);
    uint8_t data = ops->rb(8);
    put_kv_dec("offset", off); put_kv_hex("data", data, 2); put_kv_dec("count", ops->rl(12));
    char name[40];
    uint32_t n = 0;
    for (; n < sizeof name - 1; n++) { name[n] = (char)ops->rb(16 + n); if (!name[n]) break; }
    name[n] = 0;
    put_str(" name="); put_quoted(name, 40);
    put_kv_hex("past_end", ops->rb(16 + n + 1), 2);
    put_str("\n");
    if (off >= 4096) return;
    for (int i = 0; i < 16; i++) ops->wb(off, data);
    put_str("  16 byte writes of data: count="); put_dec(ops->rl(12));
    for (int i = 0; i < 4; i++) ops->wb(off, (uint8_t)(data + 1));
    put_str("; 4 of data+1: count="); put_dec(ops->rl(12));
    for (int i = 0; i < 4; i++) ops->ww(off, (uint16_t)(0x1100 | data));
    put_str("; 4 word writes: count="); put_dec(ops->rl(12));
    for (int i = 0; i < 4; i++) ops->wl(off, 0x33221100u | data);
    put_str("; 4 dword writes: count="); put_dec(ops->rl(12));
    ops->wb(off + 1, data);
    put_str("; one at offset+1: count="); put_dec(ops->rl(12));
    put_str("\n");
}

int main(uint32_t magic, struct mb_info *info) {
    (void)magic; (void)info;
    /* The address register and the data port. */
    outl(0xcf8, 0x80000000u);
    show("cf8 after outl 0x80000000", inl(0xcf8));
    outb(0xcf8, 0x12); show("cf8 after outb 0x12 (ignored)", inl(0xcf8));
    outw(0xcfa, 0x3456); show("cf8 after outw cfa (ignored)", inl(0xcf8));
    show("inw cf8", inw(0xcf8)); show("inw cfa", inw(0xcfa)); show("inb cfb", inb(0xcfb)); show("inb cf9 (reset control)", inb(0xcf9));
    show("vendor/device 00:00.0", inl(0xcfc));
    show("inw cfe", inw(0xcfe)); show("inb cfd", inb(0xcfd)); show("inb cff", inb(0xcff));
    outl(0xcf8, 0x80000002u); show("reg 0x02 in the address: inl cfc", inl(0xcfc));
    outl(0xcf8, 0x00000000u); show("bit 31 clear: inl cfc", inl(0xcfc)); show("bit 31 clear: inw cfc", inw(0xcfc));
    outl(0xcf8, 0x80000000u | 31 << 11); show("device 31: inl cfc", inl(0xcfc));
    outl(0xcf8, 0x80010000u); show("bus 1: inl cfc", inl(0xcfc));
    outl(0xcf8, 0x80000000u | 2 << 11 | 0xfc); show("pci-testdev reg 0xfc: inl cfd", inl(0xcfd));

    /* Bus 0. */
    uint32_t testdev = 0xffffffffu;
    for (uint32_t dev = 0; dev < 32; dev++) {
        for (uint32_t fn = 0; fn < 8; fn++) {
            uint32_t bdf = dev << 3 | fn;
            uint32_t id = cfg_read32(bdf, 0);
            if ((id & 0xffff) == 0xffff) { if (fn == 0) break; continue; }
            dump_function(bdf);
            if (id == 0x00051b36u) testdev = bdf;
            if (fn == 0 && !(cfg_read8(bdf, 0x0e) & 0x80)) break;
        }
    }
    if (testdev == 0xffffffffu) { put_str("mb-pci: no pci-testdev\n"); return 0x78; }

    /* pci-testdev: program its BARs, enable decoding. */
    cfg_write32(testdev, 0x10, MEMBAR);
    cfg_write32(testdev, 0x14, IOBAR);
    show("testdev ports before decoding is on: inl", inl(IOBAR + 4));
    cfg_write16(testdev, 0x04, 0x0003);
    show("command", cfg_read16(testdev, 0x04));
    show("bar0", cfg_read32(testdev, 0x10)); show("bar1", cfg_read32(testdev, 0x14));
    show("no test selected: mmio inl 4", mmio.rl(4)); show("portio inb 0", pio.rb(0));
    for (uint32_t t = 0; t < 4; t++) run_test(&mmio, t);
    for (uint32_t t = 0; t < 4; t++) run_test(&pio, t);

    /* The memory BAR moved with a test running: its writes follow. */
    run_test(&mmio, 2);
    cfg_write32(testdev, 0x10, MEMBAR2);
    *(volatile uint8_t *)(MEMBAR + 2050) = 0xfa;
    show("a write to the old address: count", pio.rl(12));
    membase = MEMBAR2;
    put_str("after the move: "); run_test(&mmio, 1);
    for (int i = 0; i < 3; i++) mmio.wb(2049, 0xce);
    show("3 more wildcard writes: count", mmio.rl(12));
    /* Memory decoding off: the BAR's addresses are unassigned; the port BAR still works. */
    cfg_write8(testdev, 0x04, 0x01);
    *(volatile uint8_t *)(MEMBAR2 + 2049) = 0xce;
    show("portio count after a write to the dead BAR", pio.rl(12));
    cfg_write8(testdev, 0x04, 0x03);
    show("memory decoding on again: count", mmio.rl(12));
    cfg_write8(testdev, 0x04, 0x02);
    show("port decoding off: inl", inl(IOBAR + 12));
    pio.wb(0, 0);
    show("select through dead ports changes nothing: mmio test", mmio.rb(0));
    put_str("mb-pci: ok\n");
    return 0;
}
