/* mb-info - prints the multiboot information the loader passed (flags,
 * mem_lower/upper, boot device, command line, loader name, each module's
 * place, string, size, hash and first bytes, the memory map), checks it
 * against the multiboot spec, and exits with the cmdline's exit=N (else 0);
 * a failed check exits with 0x70. */
#include "mb.h"

static uint32_t fnv1a(const uint8_t *p, uint32_t n) {
    uint32_t h = 2166136261u;
    while (n--) { h ^= *p++; h *= 16777619u; }
    return h;
}

static int failures;
static void check(int ok, const char *what) {
    if (!ok) { put_str("check failed: "); put_str(what); put_str("\n"); failures++; }
}

int main(uint32_t magic, struct mb_info *info) {
    put_str("multiboot");
    put_kv_hex("magic", magic, 8);
    put_kv_hex("info", (uintptr_t)info, 8);
    put_kv_hex("flags", info->flags, 8);
    put_str("\n");
    check(magic == MB_BOOTLOADER_MAGIC, "magic is 0x2badb002");
    if (info->flags & MB_INFO_MEMORY) {
        put_str("memory");
        put_kv_dec("mem_lower", info->mem_lower);
        put_kv_dec("mem_upper", info->mem_upper);
        put_str("\n");
    }
    if (info->flags & MB_INFO_BOOTDEV) {
        put_str("boot");
        put_kv_hex("device", info->boot_device, 8);
        put_str("\n");
    }
    const char *cmdline = "";
    if (info->flags & MB_INFO_CMDLINE) {
        cmdline = (const char *)(uintptr_t)info->cmdline;
        put_str("cmdline");
        put_kv_hex("addr", info->cmdline, 8);
        put_str(" string=");
        put_quoted(cmdline, 4096);
        put_str("\n");
    }
    if (info->flags & MB_INFO_LOADER_NAME) {
        put_str("loader");
        put_kv_hex("addr", info->boot_loader_name, 8);
        put_str(" name=");
        put_quoted((const char *)(uintptr_t)info->boot_loader_name, 256);
        put_str("\n");
    }
    if (info->flags & MB_INFO_MODS) {
        put_str("modules");
        put_kv_dec("count", info->mods_count);
        put_kv_hex("addr", info->mods_addr, 8);
        put_str("\n");
        const struct mb_module *m = (const struct mb_module *)(uintptr_t)info->mods_addr;
        for (uint32_t i = 0; i < info->mods_count; i++, m++) {
            uint32_t size = m->mod_end - m->mod_start;
            const uint8_t *data = (const uint8_t *)(uintptr_t)m->mod_start;
            put_str("module "); put_dec(i); serial_putc(':');
            put_kv_hex("start", m->mod_start, 8);
            put_kv_hex("end", m->mod_end, 8);
            put_kv_dec("size", size);
            put_kv_hex("fnv1a", fnv1a(data, size), 8);
            put_kv_hex("string_addr", m->string, 8);
            put_str(" string=");
            put_quoted((const char *)(uintptr_t)m->string, 256);
            put_str(" head=");
            char head[25];
            uint32_t n = size < 24 ? size : 24;
            memcpy(head, data, n);
            head[n] = 0;
            put_quoted(head, n);
            put_str("\n");
            check((m->mod_start & 0xfff) == 0, "module page aligned (header flag 0)");
            check(m->mod_end >= m->mod_start, "module end >= start");
        }
    }
    if (info->flags & MB_INFO_MMAP) {
        put_str("mmap");
        put_kv_hex("addr", info->mmap_addr, 8);
        put_kv_dec("length", info->mmap_length);
        put_str("\n");
        uint32_t p = info->mmap_addr, end = info->mmap_addr + info->mmap_length;
        uint64_t ram_below_1m = 0, ram_from_1m = 0;
        int i = 0;
        while (p < end) {
            const struct mb_mmap_entry *e = (const struct mb_mmap_entry *)(uintptr_t)p;
            put_str("mmap "); put_dec((uint64_t)i++); serial_putc(':');
            put_kv_hex("base", e->addr, 16);
            put_kv_hex("length", e->len, 16);
            put_kv_dec("type", e->type);
            put_kv_dec("size", e->size);
            put_str("\n");
            if (e->type == 1 && e->addr == 0) ram_below_1m = e->len;
            if (e->type == 1 && e->addr == 0x100000) ram_from_1m = e->len;
            if (e->size < 20 || i > 64) { check(0, "mmap entry size >= 20"); break; }
            p += e->size + 4;
        }
        if (info->flags & MB_INFO_MEMORY) {
            check(ram_below_1m == (uint64_t)info->mem_lower * 1024, "mem_lower = the RAM entry at 0");
            check(ram_from_1m == (uint64_t)info->mem_upper * 1024, "mem_upper = the RAM entry at 1 MiB");
        }
    }
    uint32_t code = cmdline_number(cmdline, "exit", 0);
    if (failures) code = 0x70;
    put_str(failures ? "mb-info: FAILED" : "mb-info: ok");
    put_kv_dec("exit", code);
    put_str("\n");
    return (int)code;
}
