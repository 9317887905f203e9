/* mb-exit - a multiboot kernel with the header's address fields (flag 16):
 * prints where it runs and exits through isa-debug-exit with the command
 * line's exit=N (decimal or 0x hex; default 0x21), so the run ends with
 * status (N << 1) | 1. */
#include "mb.h"

int main(uint32_t magic, struct mb_info *info) {
    extern char _start[];
    const char *cmdline = (info->flags & MB_INFO_CMDLINE) ? (const char *)(uintptr_t)info->cmdline : "";
    uint32_t code = cmdline_number(cmdline, "exit", 0x21);
    put_str("mb-exit");
    put_kv_hex("magic", magic, 8);
    put_kv_hex("entry", (uintptr_t)_start, 8);
    put_kv_hex("code", code, 2);
    put_str("\n");
    return (int)(code & 0xff);
}
