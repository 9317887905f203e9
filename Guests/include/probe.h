/* probe.h - one structured serial line per group of facts, each fact also
 * sent as HC_REPORT (lib/probe.c). A line is
 *
 *     TAG key=value key=value ...\n
 *
 * e.g. `probe svm=1 vmrun=ok exitcode=0x81`. Numbers are printed in decimal
 * (probe_dec) or compact hex (probe_hex); probe_ok prints `key=ok` / `key=fail`
 * and reports 1 / 0; probe_word prints `key=word` and reports nothing (the
 * value is not a number: say which fact carries it in the guest's comment);
 * probe_text prints `key=text` without reporting (strings).
 */
#ifndef GUEST_PROBE_H
#define GUEST_PROBE_H

#include <stdint.h>

void probe_begin(const char *tag);                      /* "TAG" */
void probe_dec(const char *key, uint64_t value);        /* " key=123", report */
void probe_hex(const char *key, uint64_t value);        /* " key=0x7b", report */
void probe_ok(const char *key, int ok);                 /* " key=ok|fail", report 1|0 */
void probe_word(const char *key, const char *word);     /* " key=word", no report */
void probe_text(const char *key, const char *s, unsigned max); /* printable chars only */
void probe_end(void);                                   /* "\n" */

/* Print-only variants (no HC_REPORT), for values reported under other keys. */
void print_dec(const char *key, uint64_t value);        /* " key=123" */
void print_hex(const char *key, uint64_t value);        /* " key=0x7b" */

void put_hex(uint64_t value);                           /* "0x" + minimal digits */

/* CPUID leaf 0, 1 and 0x80000001 in short. */
struct cpu_id {
    char vendor[13];            /* "GenuineIntel", "AuthenticAMD", ... */
    int intel, amd;             /* vendor string matches */
    int vmx;                    /* CPUID.1:ECX[5] */
    int svm;                    /* CPUID.80000001h:ECX[2] */
    int hypervisor;             /* CPUID.1:ECX[31] */
    uint32_t max_leaf, max_ext_leaf;
};
void cpu_identify(struct cpu_id *id);

/* The opening line of an L2 launcher: "probe vendor=… <feature>=N <feature>_l2=run|skipped",
 * with the facts <feature>_l2 reported. Returns whether the launcher should run. */
int launcher_begin(const struct cpu_id *id, const char *feature, int has_feature, int right_vendor);

/* What both launchers' L2 does first: says it is in (l2_entered), asks the host for a
 * nested-state dump and a stage-3 checkpoint while L2 runs. */
void l2_checkpoint(void);

#endif
