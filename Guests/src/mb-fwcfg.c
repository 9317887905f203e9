/* mb-fwcfg - dumps QEMU's fw_cfg as a multiboot kernel sees it: signature,
 * ID, RAM size, CPU counts, the kernel/initrd/cmdline items (addresses,
 * sizes, FNV-1a of the data's defined parts, the multiboot info words), reads past an item's
 * end and of an unknown key, the DMA interface, and the etc/e820 file. */
#include "mb.h"

static uint32_t fnv1a_step(uint32_t h, const uint8_t *p, uint32_t n) {
    while (n--) { h ^= *p++; h *= 16777619u; }
    return h;
}

static uint8_t buf[4096];

/* FNV-1a of bytes [from, to) of `key`, read in chunks with PIO (dma = 0) or
 * DMA (a SKIP to `from`, then reads that go on from the offset). */
static uint32_t item_hash(uint16_t key, uint32_t from, uint32_t to, int dma) {
    uint32_t h = 2166136261u;
    struct { uint32_t c, l; uint64_t a; } __attribute__((packed, aligned(16))) static volatile acc;
    if (dma) {
        acc.c = __builtin_bswap32(((uint32_t)key << 16) | 0x08 | 0x04);    /* SELECT | SKIP */
        acc.l = __builtin_bswap32(from);
        acc.a = 0;
        __asm__ volatile("" ::: "memory");
        outl(FW_CFG_PORT_DMA, 0);
        outl(FW_CFG_PORT_DMA + 4, __builtin_bswap32((uint32_t)(uintptr_t)&acc));
        __asm__ volatile("" ::: "memory");
        if (acc.c) { put_str("dma error\n"); return 0; }
    } else {
        fw_cfg_select(key);
        for (uint32_t i = 0; i < from; i++) (void)inb(FW_CFG_PORT_DATA);
    }
    for (uint32_t off = from; off < to; off += sizeof(buf)) {
        uint32_t n = to - off < sizeof(buf) ? to - off : sizeof(buf);
        if (dma) {
            acc.c = __builtin_bswap32(0x02);                                 /* READ */
            acc.l = __builtin_bswap32(n);
            acc.a = (uint64_t)__builtin_bswap32((uint32_t)(uintptr_t)buf) << 32;
            __asm__ volatile("" ::: "memory");
            outl(FW_CFG_PORT_DMA, 0);
            outl(FW_CFG_PORT_DMA + 4, __builtin_bswap32((uint32_t)(uintptr_t)&acc));
            __asm__ volatile("" ::: "memory");
            if (acc.c) { put_str("dma error\n"); return 0; }
        } else {
            fw_cfg_read(buf, n);
        }
        h = fnv1a_step(h, buf, n);
    }
    return h;
}

/* `n` bytes of `key` from offset `from`, by DMA (SELECT|SKIP, then READ). */
static void item_read_dma(uint16_t key, uint32_t from, void *dst, uint32_t n) {
    struct { uint32_t c, l; uint64_t a; } __attribute__((packed, aligned(16))) static volatile acc;
    acc.c = __builtin_bswap32(((uint32_t)key << 16) | 0x08 | 0x04);
    acc.l = __builtin_bswap32(from);
    acc.a = 0;
    __asm__ volatile("" ::: "memory");
    outl(FW_CFG_PORT_DMA, 0);
    outl(FW_CFG_PORT_DMA + 4, __builtin_bswap32((uint32_t)(uintptr_t)&acc));
    acc.c = __builtin_bswap32(0x02);
    acc.l = __builtin_bswap32(n);
    acc.a = (uint64_t)__builtin_bswap32((uint32_t)(uintptr_t)dst) << 32;
    __asm__ volatile("" ::: "memory");
    outl(FW_CFG_PORT_DMA, 0);
    outl(FW_CFG_PORT_DMA + 4, __builtin_bswap32((uint32_t)(uintptr_t)&acc));
    __asm__ volatile("" ::: "memory");
}

static void put_bytes_hex(const uint8_t *p, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        serial_putc("0123456789abcdef"[p[i] >> 4]);
        serial_putc("0123456789abcdef"[p[i] & 15]);
    }
}

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

int main(uint32_t magic, struct mb_info *info) {
    (void)magic; (void)info;
    char sig[5] = {0};
    fw_cfg_select(FW_CFG_SIGNATURE);
    fw_cfg_read(sig, 4);
    put_str("signature="); put_quoted(sig, 4);
    uint32_t id = fw_cfg_read32(FW_CFG_ID);
    put_kv_hex("id", id, 8);
    put_str("\n");
    if (sig[0] != 'Q') { put_str("no fw_cfg\n"); return 0x71; }

    uint8_t uuid[16];
    fw_cfg_select(FW_CFG_UUID);
    fw_cfg_read(uuid, 16);
    put_str("uuid="); put_bytes_hex(uuid, 16);
    put_kv_hex("ram_size", fw_cfg_read64(FW_CFG_RAM_SIZE), 16);
    put_str("\n");
    uint16_t v16;
    put_str("cpus");
    fw_cfg_select(FW_CFG_NB_CPUS); fw_cfg_read(&v16, 2); put_kv_dec("nb_cpus", v16);
    fw_cfg_select(FW_CFG_MAX_CPUS); fw_cfg_read(&v16, 2); put_kv_dec("max_cpus", v16);
    fw_cfg_select(FW_CFG_NOGRAPHIC); fw_cfg_read(&v16, 2); put_kv_dec("nographic", v16);
    fw_cfg_select(FW_CFG_BOOT_MENU); fw_cfg_read(&v16, 2); put_kv_dec("boot_menu", v16);
    put_str("\n");

    uint32_t kaddr = fw_cfg_read32(FW_CFG_KERNEL_ADDR), ksize = fw_cfg_read32(FW_CFG_KERNEL_SIZE);
    uint32_t kentry = fw_cfg_read32(FW_CFG_KERNEL_ENTRY);
    put_str("kernel");
    put_kv_hex("addr", kaddr, 8); put_kv_hex("size", ksize, 8); put_kv_hex("entry", kentry, 8);
    put_kv_hex("head_fnv1a_pio", item_hash(FW_CFG_KERNEL_DATA, 0, ksize < 512 ? ksize : 512, 0), 8);
    put_kv_hex("head_fnv1a_dma", item_hash(FW_CFG_KERNEL_DATA, 0, ksize < 512 ? ksize : 512, 1), 8);
    put_str("\n");
    /* KERNEL_DATA is QEMU's mb_buf: the kernel, then (page aligned) the module
     * list, the strings and the loader name, then each module on a page. The
     * padding between them is whatever QEMU's heap held, so only the defined
     * parts are hashed: the kernel with its .bss, list to loader name, modules. */
    extern char __image_start[], __bss_end[];
    uint32_t image = (uint32_t)(__bss_end - __image_start);
    uint32_t w[22];
    fw_cfg_select(FW_CFG_INITRD_DATA);
    fw_cfg_read(w, 88);
    uint32_t list = w[6] - kaddr, names_end = w[16] + 5 - kaddr;   /* mods_addr, loader name + "qemu\0" */
    put_str("kernel data");
    put_kv_hex("image", image, 8);
    put_kv_hex("image_fnv1a", item_hash(FW_CFG_KERNEL_DATA, 0, image, 1), 8);
    put_kv_hex("strings_fnv1a", item_hash(FW_CFG_KERNEL_DATA, list, names_end, 1), 8);
    for (uint32_t i = 0; i < w[5] && i < 16; i++) {
        struct mb_module m;
        item_read_dma(FW_CFG_KERNEL_DATA, list + 16 * i, &m, 16);
        put_str(" module"); put_dec(i); put_str("_fnv1a=");
        put_hex(item_hash(FW_CFG_KERNEL_DATA, m.mod_start - kaddr, m.mod_end - kaddr, 1), 8);
    }
    put_str("\n");
    /* The loaded kernel is the start of KERNEL_DATA. */
    put_str("kernel in memory matches KERNEL_DATA head: ");
    fw_cfg_select(FW_CFG_KERNEL_DATA);
    fw_cfg_read(buf, 64);
    put_str(memcmp(buf, (const void *)(uintptr_t)kaddr, 64) ? "no\n" : "yes\n");

    uint32_t iaddr = fw_cfg_read32(FW_CFG_INITRD_ADDR), isize = fw_cfg_read32(FW_CFG_INITRD_SIZE);
    put_str("initrd");
    put_kv_hex("addr", iaddr, 8); put_kv_hex("size", isize, 8);
    put_kv_hex("data_fnv1a", item_hash(FW_CFG_INITRD_DATA, 0, isize, 0), 8);
    put_str("\n");
    if (isize >= 88) {
        uint32_t w[22];
        fw_cfg_select(FW_CFG_INITRD_DATA);
        fw_cfg_read(w, 88);
        put_str("initrd words:");
        for (int i = 0; i < 22; i++) { serial_putc(' '); put_hex(w[i], 8); }
        put_str("\n");
    }

    uint32_t caddr = fw_cfg_read32(FW_CFG_CMDLINE_ADDR), csize = fw_cfg_read32(FW_CFG_CMDLINE_SIZE);
    put_str("cmdline");
    put_kv_hex("addr", caddr, 8); put_kv_hex("size", csize, 8);
    char cdata[65] = {0};
    fw_cfg_select(FW_CFG_CMDLINE_DATA);
    fw_cfg_read(cdata, 64);
    put_str(" data="); put_quoted(cdata, 64);
    put_kv_hex("kernel_cmdline", fw_cfg_read32(FW_CFG_KERNEL_CMDLINE), 8);
    put_str("\n");

    /* Reads past the end of an item, and of a key nobody set, give zeros. */
    uint8_t past[8];
    fw_cfg_select(FW_CFG_NB_CPUS);
    fw_cfg_read(past, 8);
    put_str("past_end nb_cpus="); put_bytes_hex(past, 8);
    fw_cfg_select(0x3fff);
    fw_cfg_read(past, 8);
    put_str(" unknown_key="); put_bytes_hex(past, 8);
    fw_cfg_select(0x8002);
    fw_cfg_read(past, 8);
    put_str(" irq0_override="); put_bytes_hex(past, 8);
    put_str("\n");

    /* The DMA interface: its port reads "QEMU CFG", and a DMA read of the
     * signature gives "QEMU". */
    uint32_t d0 = inl(FW_CFG_PORT_DMA), d1 = inl(FW_CFG_PORT_DMA + 4);
    char dsig[9] = {0};
    memcpy(dsig, &d0, 4); memcpy(dsig + 4, &d1, 4);
    put_str("dma port="); put_quoted(dsig, 8);
    char s2[5] = {0};
    uint32_t ctl = fw_cfg_dma_read(FW_CFG_SIGNATURE, s2, 4);
    put_str(" read="); put_quoted(s2, 4); put_kv_hex("control", ctl, 8);
    memset(past, 0xaa, 8);
    ctl = fw_cfg_dma_read(FW_CFG_NB_CPUS, past, 8);
    put_str(" past_end="); put_bytes_hex(past, 8); put_kv_hex("control", ctl, 8);
    put_str("\n");

    /* The file directory: look up etc/e820 by name. */
    uint32_t count;
    fw_cfg_select(FW_CFG_FILE_DIR);
    fw_cfg_read(&count, 4);
    count = __builtin_bswap32(count);
    int found = 0;
    for (uint32_t i = 0; i < count && i < 1000; i++) {
        uint8_t f[64];
        fw_cfg_read(f, 64);            /* be32 size, be16 select, u16 reserved, name[56] */
        if (!memcmp(f + 8, "etc/e820", 9)) {
            uint32_t size = be32(f);
            uint16_t sel = (uint16_t)(f[4] << 8 | f[5]);
            put_str("etc/e820"); put_kv_dec("size", size); put_str("\n");
            uint8_t e[20];
            fw_cfg_select(sel);
            for (uint32_t off = 0; off + 20 <= size; off += 20) {
                fw_cfg_read(e, 20);
                uint64_t a, l; uint32_t t;
                memcpy(&a, e, 8); memcpy(&l, e + 8, 8); memcpy(&t, e + 16, 4);
                put_str("e820"); put_kv_hex("addr", a, 16); put_kv_hex("length", l, 16); put_kv_dec("type", t);
                put_str("\n");
            }
            found = 1;
            break;
        }
    }
    if (!found) put_str("etc/e820 not found\n");
    put_str("mb-fwcfg: done\n");
    return 0;
}
