/* probe.c - structured probe lines + HC_REPORT facts. See include/probe.h. */
#include "guest.h"
#include "probe.h"
#include "idt.h"

void put_hex(uint64_t value) {
    serial_puts("0x");
    int shift = 60;
    while (shift > 0 && ((value >> shift) & 0xf) == 0) shift -= 4;
    for (; shift >= 0; shift -= 4)
        serial_putc("0123456789abcdef"[(value >> shift) & 0xf]);
}

void probe_begin(const char *tag) {
    serial_puts(tag);
}

static void key_eq(const char *key) {
    serial_putc(' ');
    serial_puts(key);
    serial_putc('=');
}

void print_dec(const char *key, uint64_t value) {
    key_eq(key);
    serial_put_dec(value);
}

void print_hex(const char *key, uint64_t value) {
    key_eq(key);
    put_hex(value);
}

void probe_dec(const char *key, uint64_t value) {
    print_dec(key, value);
    report(key, value);
}

void probe_hex(const char *key, uint64_t value) {
    print_hex(key, value);
    report(key, value);
}

void probe_ok(const char *key, int ok) {
    key_eq(key);
    serial_puts(ok ? "ok" : "fail");
    report(key, ok ? 1 : 0);
}

void probe_word(const char *key, const char *word) {
    key_eq(key);
    serial_puts(word);
}

void probe_text(const char *key, const char *s, unsigned max) {
    key_eq(key);
    for (unsigned i = 0; i < max && s[i]; i++)
        serial_putc(s[i] > ' ' && s[i] < 0x7f ? s[i] : '.');
}

void probe_end(void) {
    serial_putc('\n');
}

void cpu_identify(struct cpu_id *id) {
    uint32_t r[4];
    cpuid(0, 0, r);
    id->max_leaf = r[0];
    memcpy(id->vendor + 0, &r[1], 4);   /* EBX, EDX, ECX */
    memcpy(id->vendor + 4, &r[3], 4);
    memcpy(id->vendor + 8, &r[2], 4);
    id->vendor[12] = 0;
    id->intel = memcmp(id->vendor, "GenuineIntel", 12) == 0;
    id->amd = memcmp(id->vendor, "AuthenticAMD", 12) == 0;
    cpuid(1, 0, r);
    id->vmx = (r[2] >> 5) & 1;
    id->hypervisor = (r[2] >> 31) & 1;
    cpuid(0x80000000u, 0, r);
    id->max_ext_leaf = r[0];
    id->svm = 0;
    if (id->max_ext_leaf >= 0x80000001u && id->max_ext_leaf <= 0x8000ffffu) {
        cpuid(0x80000001u, 0, r);
        id->svm = (r[2] >> 2) & 1;
    }
}

int launcher_begin(const struct cpu_id *id, const char *feature, int has_feature, int right_vendor) {
    char run_key[16];
    unsigned n = 0;
    while (feature[n] && n < sizeof run_key - 4) { run_key[n] = feature[n]; n++; }
    run_key[n++] = '_'; run_key[n++] = 'l'; run_key[n++] = '2'; run_key[n] = 0;
    int run = right_vendor && has_feature;
    probe_begin("probe");
    probe_text("vendor", id->vendor, 12);
    probe_dec(feature, has_feature);
    probe_word(run_key, run ? "run" : "skipped");
    probe_end();
    report(run_key, run);
    return run;
}

void l2_checkpoint(void) {
    guest_level = 2;
    serial_puts("l2 entered\n");
    report("l2_entered", 1);
    hostcall(HC_DUMP_NESTED, 0, 0, 0, 0);
    sync_stage(3);
}
