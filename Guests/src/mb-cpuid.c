/* mb-cpuid - the CPUID a -cpu option shapes, printed so QEMU is its oracle.
 *
 * Serial, one line each (all numbers hex, 8 digits):
 *   vendor="AuthenticAMD" max=0x0000000d
 *   leaf1 eax=... ecx=... edx=...            (EBX holds APIC IDs: not printed)
 *   leaf7 ebx=... ecx=... edx=... eax1=...   (7.0 EBX/ECX/EDX, 7.1 EAX; zeros below level 7)
 *   xsave eax1=...                           (0xD.1 EAX; zero below level 0xD)
 *   ext max=0x8000000a ecx=... edx=...       (0x80000001 ECX/EDX; zeros when absent)
 *   ext8 ebx=...                             (0x80000008 EBX; zero when absent)
 *   brand="..."                              (0x80000002..4; empty when absent)
 *   hv max=0x40000001 sig="KVMKVMKVM"        (leaf 0x40000000, read even without the hypervisor bit)
 * then debug-exit 0 (status 1). */
#include "mb.h"

static uint32_t r[4];

static void put_word(const char *key, uint32_t v) { put_kv_hex(key, v, 8); }

int main(uint32_t magic, struct mb_info *info) {
    (void)magic; (void)info;
    char text[49];

    cpuid(0, 0, r);
    uint32_t max = r[0];
    memcpy(text, &r[1], 4); memcpy(text + 4, &r[3], 4); memcpy(text + 8, &r[2], 4); text[12] = 0;
    put_str("vendor="); put_quoted(text, 12); put_word("max", max); put_str("\n");

    cpuid(1, 0, r);
    put_str("leaf1"); put_word("eax", r[0]); put_word("ecx", r[2]); put_word("edx", r[3]); put_str("\n");

    uint32_t l7[4] = {0, 0, 0, 0}, l71[4] = {0, 0, 0, 0};
    if (max >= 7) { cpuid(7, 0, l7); if (l7[0] >= 1) cpuid(7, 1, l71); }
    put_str("leaf7"); put_word("ebx", l7[1]); put_word("ecx", l7[2]); put_word("edx", l7[3]);
    put_word("eax1", l71[0]); put_str("\n");

    uint32_t xs[4] = {0, 0, 0, 0};
    if (max >= 0xd) cpuid(0xd, 1, xs);
    put_str("xsave"); put_word("eax1", xs[0]); put_str("\n");

    cpuid(0x80000000u, 0, r);
    uint32_t xmax = r[0];
    uint32_t e1[4] = {0, 0, 0, 0}, e8[4] = {0, 0, 0, 0};
    if (xmax >= 0x80000001u && xmax < 0x80010000u) cpuid(0x80000001u, 0, e1);
    if (xmax >= 0x80000008u && xmax < 0x80010000u) cpuid(0x80000008u, 0, e8);
    put_str("ext"); put_word("max", xmax); put_word("ecx", e1[2]); put_word("edx", e1[3]); put_str("\n");
    put_str("ext8"); put_word("ebx", e8[1]); put_str("\n");

    text[0] = 0;
    if (xmax >= 0x80000004u && xmax < 0x80010000u) {
        for (uint32_t i = 0; i < 3; i++) { cpuid(0x80000002u + i, 0, r); memcpy(text + 16 * i, r, 16); }
        text[48] = 0;
    }
    put_str("brand="); put_quoted(text, 48); put_str("\n");

    cpuid(0x40000000u, 0, r);
    memcpy(text, &r[1], 12); text[12] = 0;
    put_str("hv"); put_word("max", r[0]); put_str(" sig="); put_quoted(text, 12); put_str("\n");
    return 0;
}
