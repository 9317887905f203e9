/* mb-hello - the smallest multiboot kernel: checks the boot magic, prints a
 * line on COM1 and exits through isa-debug-exit with 0 (status 1). */
#include "mb.h"

int main(uint32_t magic, struct mb_info *info) {
    (void)info;
    if (magic != MB_BOOTLOADER_MAGIC) {
        put_str("bad multiboot magic");
        put_kv_hex("eax", magic, 8);
        put_str("\n");
        return 0x7e;
    }
    put_str("Hello from multiboot\n");
    return 0;
}
