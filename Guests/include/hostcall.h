/* hostcall.h - the guest <-> host port protocol (Docs/PROTOCOL.md).
 * Plain #defines, usable from C and from preprocessed assembly (.S). */
#ifndef GUEST_HOSTCALL_H
#define GUEST_HOSTCALL_H

#define COM1_PORT        0x3f8      /* 16550 data register                    */
#define COM1_LSR         0x3fd      /* line status register                   */
#define LSR_THRE         0x20       /* bit 5: transmit holding register empty */
#define DEBUG_EXIT_PORT  0xf4       /* write v -> run ends with (v << 1) | 1  */
#define HOSTCALL_PORT    0x1000     /* 32-bit out: physical address of block  */
#define HOSTCALL_MAGIC   0x4C435348 /* "HSCL"                                 */

#define HC_REPORT        1  /* args[0] = key address, args[1] = value        */
#define HC_DONE          2  /* args[0] = status (0 = pass)                    */
#define HC_FAIL          3  /* args[0] = message address, [1] = line, [2],[3] */
#define HC_SYNC          4  /* args[0] = stage                                */
#define HC_DUMP_NESTED   5  /* -                                              */
#define HC_SNAPSHOT      6  /* args[0] = tag                                  */

/* Block layout (8-byte aligned, 40 bytes). */
#define HC_OFF_MAGIC     0
#define HC_OFF_COMMAND   4
#define HC_OFF_ARG0      8
#define HC_OFF_ARG1      16
#define HC_OFF_ARG2      24
#define HC_OFF_ARG3      32
#define HC_BLOCK_SIZE    40

#ifndef __ASSEMBLER__
#include <stdint.h>
struct hostcall {
    uint32_t magic;
    uint32_t command;
    uint64_t args[4];
} __attribute__((aligned(8)));
_Static_assert(sizeof(struct hostcall) == HC_BLOCK_SIZE, "hostcall block layout");
#endif

#endif
