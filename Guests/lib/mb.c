/* mb.c - library of the 32-bit multiboot test kernels. See include/mb.h. */
#include "mb.h"

/* ---- 64-bit division for i386 (the compiler calls these; no libgcc here) ---- */
uint64_t __udivmoddi4(uint64_t n, uint64_t d, uint64_t *rem) {
    uint64_t q = 0, r = 0;
    for (int i = 63; i >= 0; i--) {
        r = (r << 1) | ((n >> i) & 1);
        if (r >= d) { r -= d; q |= (uint64_t)1 << i; }
    }
    if (rem) *rem = r;
    return q;
}
uint64_t __udivdi3(uint64_t n, uint64_t d) { return __udivmoddi4(n, d, 0); }
uint64_t __umoddi3(uint64_t n, uint64_t d) { uint64_t r; __udivmoddi4(n, d, &r); return r; }

/* ---- printing ---------------------------------------------------------------- */
void put_str(const char *s) { serial_puts(s); }

void put_hex(uint64_t v, int digits) {
    serial_puts("0x");
    for (int shift = (digits - 1) * 4; shift >= 0; shift -= 4)
        serial_putc("0123456789abcdef"[(v >> shift) & 0xf]);
}

void put_dec(uint64_t v) {
    char buf[21];
    int i = 20;
    buf[i] = 0;
    do { buf[--i] = (char)('0' + v % 10); v /= 10; } while (v);
    serial_puts(&buf[i]);
}

void put_quoted(const char *s, uint32_t max) {
    serial_putc('"');
    for (uint32_t i = 0; i < max && s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') { serial_putc('\\'); serial_putc((char)c); }
        else if (c >= 0x20 && c < 0x7f) serial_putc((char)c);
        else { serial_puts("\\x"); serial_putc("0123456789abcdef"[c >> 4]); serial_putc("0123456789abcdef"[c & 15]); }
    }
    serial_putc('"');
}

void put_kv_hex(const char *key, uint64_t v, int digits) {
    serial_putc(' '); serial_puts(key); serial_putc('='); put_hex(v, digits);
}

void put_kv_dec(const char *key, uint64_t v) {
    serial_putc(' '); serial_puts(key); serial_putc('='); put_dec(v);
}

/* ---- command line ------------------------------------------------------------ */
uint32_t cmdline_number(const char *cmdline, const char *key, uint32_t def) {
    size_t klen = strlen(key);
    const char *p = cmdline;
    while (p && *p) {
        while (*p == ' ') p++;
        if (!memcmp(p, key, klen) && p[klen] == '=') {
            const char *v = p + klen + 1;
            uint32_t n = 0, base = 10;
            if (v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) { base = 16; v += 2; }
            for (;; v++) {
                uint32_t d;
                if (*v >= '0' && *v <= '9') d = (uint32_t)(*v - '0');
                else if (base == 16 && *v >= 'a' && *v <= 'f') d = (uint32_t)(*v - 'a' + 10);
                else if (base == 16 && *v >= 'A' && *v <= 'F') d = (uint32_t)(*v - 'A' + 10);
                else break;
                n = n * base + d;
            }
            return n;
        }
        while (*p && *p != ' ') p++;
    }
    return def;
}

/* ---- fw_cfg ------------------------------------------------------------------ */
void fw_cfg_select(uint16_t key) { outw(FW_CFG_PORT_SEL, key); }

void fw_cfg_read(void *buf, uint32_t n) {
    uint8_t *p = buf;
    while (n--) *p++ = inb(FW_CFG_PORT_DATA);
}

uint32_t fw_cfg_read32(uint16_t key) {
    uint32_t v;
    fw_cfg_select(key);
    fw_cfg_read(&v, 4);
    return v;
}

uint64_t fw_cfg_read64(uint16_t key) {
    uint64_t v;
    fw_cfg_select(key);
    fw_cfg_read(&v, 8);
    return v;
}

static inline uint32_t bswap32(uint32_t v) { return __builtin_bswap32(v); }

struct fw_cfg_dma_access {
    uint32_t control, length;
    uint64_t address;
} __attribute__((packed, aligned(16)));

uint32_t fw_cfg_dma_read(uint16_t key, void *buf, uint32_t n) {
    static volatile struct fw_cfg_dma_access access;
    access.control = bswap32(((uint32_t)key << 16) | 0x08 | 0x02);   /* SELECT | READ */
    access.length = bswap32(n);
    access.address = (uint64_t)bswap32((uint32_t)(uintptr_t)buf) << 32;  /* big-endian 64-bit */
    __asm__ volatile("" ::: "memory");
    outl(FW_CFG_PORT_DMA, 0);                                          /* high half */
    outl(FW_CFG_PORT_DMA + 4, bswap32((uint32_t)(uintptr_t)&access));  /* low half: go */
    __asm__ volatile("" ::: "memory");
    return bswap32(access.control);
}

/* ---- IDT ----------------------------------------------------------------------- */
struct idt_gate32 {
    uint16_t offset_lo, selector;
    uint8_t zero, type_attr;
    uint16_t offset_hi;
} __attribute__((packed));

extern char isr_stubs[];
static struct idt_gate32 idt[256] __attribute__((aligned(8)));
mb_irq_handler mb_irq_handlers[256];

static const char *const exception_names[32] = {
    "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "?9", "#TS", "#NP", "#SS", "#GP", "#PF", "?15",
    "#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "?22", "?23", "?24", "?25", "?26", "?27", "?28", "?29", "?30", "?31",
};

void mb_isr(struct mb_frame *f) {
    mb_irq_handler h = mb_irq_handlers[f->vector & 0xff];
    if (h) { h(f); return; }
    if (f->vector == 0xff) return;     /* spurious: no EOI */
    serial_puts("unexpected ");
    serial_puts(f->vector < 32 ? exception_names[f->vector] : "interrupt");
    put_kv_dec("vector", f->vector);
    put_kv_hex("error", f->error, 8);
    put_kv_hex("eip", f->eip, 8);
    serial_putc('\n');
    debug_exit(0x7f);
}

void idt_init(void) {
    for (int v = 0; v < 256; v++) {
        uint32_t a = (uint32_t)(uintptr_t)(isr_stubs + 16 * v);
        idt[v] = (struct idt_gate32){ (uint16_t)a, 0x08, 0, 0x8E, (uint16_t)(a >> 16) };
    }
    struct { uint16_t limit; uint32_t base; } __attribute__((packed)) d = { sizeof(idt) - 1, (uint32_t)(uintptr_t)idt };
    __asm__ volatile("lidt %0" :: "m"(d) : "memory");
}

/* ---- LAPIC, IOAPIC, PIT, PIC ------------------------------------------------- */
void lapic_enable(void) {
    lapic_write(LAPIC_TPR, 0);
    lapic_write(LAPIC_SVR, 0x100 | 0xff);
}

uint32_t ioapic_read(uint32_t reg) {
    *(volatile uint32_t *)IOAPIC_BASE = reg;
    return *(volatile uint32_t *)(IOAPIC_BASE + 0x10);
}

void ioapic_write(uint32_t reg, uint32_t v) {
    *(volatile uint32_t *)IOAPIC_BASE = reg;
    *(volatile uint32_t *)(IOAPIC_BASE + 0x10) = v;
}

void ioapic_route(uint32_t pin, uint8_t vector, uint8_t apic) {
    ioapic_write(0x10 + 2 * pin + 1, (uint32_t)apic << 24);
    ioapic_write(0x10 + 2 * pin, vector);
}

void ioapic_mask(uint32_t pin) {
    ioapic_write(0x10 + 2 * pin, 1u << 16);
}

void pic_mask_all(void) {
    outb(0x21, 0xff);
    outb(0xa1, 0xff);
}

void pit_periodic(uint16_t divisor) {
    outb(0x43, 0x34);               /* channel 0, lobyte/hibyte, mode 2 */
    outb(0x40, (uint8_t)divisor);
    outb(0x40, (uint8_t)(divisor >> 8));
}

void pit_stop(void) {
    outb(0x43, 0x30);               /* channel 0, lobyte/hibyte, mode 0: counts down once */
    outb(0x40, 0xff);
    outb(0x40, 0xff);
}

void delay_loop(uint32_t n) {
    while (n--) pause();
}

/* ---- SMP ----------------------------------------------------------------------- */
extern char ap_trampoline[], ap_trampoline_end[];
volatile uint32_t smp_ap_count;
volatile uint32_t smp_ap_ids[256];

NORETURN void ap_main(void) {
    uint32_t id = lapic_id();
    uint32_t slot = __atomic_fetch_add(&smp_ap_count, 1, __ATOMIC_SEQ_CST);
    smp_ap_ids[slot & 255] = id;
    halt();
}

static void icr_send(uint32_t high, uint32_t low) {
    lapic_write(LAPIC_ICR_HI, high);
    lapic_write(LAPIC_ICR_LO, low);
    for (uint32_t i = 0; i < 1000000 && (lapic_read(LAPIC_ICR_LO) & (1u << 12)); i++) pause();
}

uint32_t smp_start_aps(uint32_t base, uint32_t expected) {
    memcpy((void *)(uintptr_t)base, ap_trampoline, (size_t)(ap_trampoline_end - ap_trampoline));
    icr_send(0, 0x000C4500);                                /* INIT, all excluding self */
    delay_loop(200000);
    for (int i = 0; i < 2; i++) {
        icr_send(0, 0x000C4600 | (base >> 12));             /* STARTUP */
        delay_loop(20000);
    }
    for (uint32_t spins = 0; smp_ap_count < expected && spins < 50000000u; spins++) pause();
    return smp_ap_count;
}
