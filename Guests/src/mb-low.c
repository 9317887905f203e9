/* mb-low - a multiboot kernel that loads at 0x8000, over the multiboot
 * information QEMU places at 0x9000 (memory map) and 0x9500 (information
 * structure). QEMU's option ROM writes the information first and reads the
 * kernel last, so the kernel finds its own bytes there: it prints the magic,
 * EBX, its load range and the first bytes at 0x9000 and 0x9500 (its filler,
 * if the kernel won), then exits with 0 (status 1). */
#include "mb.h"

extern char __image_start[], __load_end[], __bss_end[];

/* File-backed bytes that cover 0x9000-0x9600 whatever the code's size. */
static const uint8_t filler[0x1800] = { [0 ... 0x17FF] = 0xA5 };

static void dump(uint32_t address) {
    const volatile uint32_t *p = (const volatile uint32_t *)address;
    put_kv_hex("at", address, 8);
    put_str(" words=");
    for (int i = 0; i < 4; i++) { put_hex(p[i], 8); put_str(i < 3 ? "," : "\n"); }
}

int main(uint32_t magic, struct mb_info *info) {
    put_str("mb-low");
    put_kv_hex("magic", magic, 8);
    put_kv_hex("ebx", (uint32_t)info, 8);
    put_kv_hex("load", (uint32_t)__image_start, 8);
    put_kv_hex("load_end", (uint32_t)__load_end, 8);
    put_kv_hex("bss_end", (uint32_t)__bss_end, 8);
    put_str("\n");
    dump(0x9000);
    dump(0x9500);
    /* Read through a volatile pointer: the filler stays in the image. */
    const volatile uint8_t *f = filler;
    put_str(f[0] == 0xA5 && f[sizeof filler - 1] == 0xA5 ? "mb-low: ok\n" : "mb-low: filler lost\n");
    return 0;
}
