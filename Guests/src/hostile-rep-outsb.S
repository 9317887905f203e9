/* hostile-rep-outsb: long mode. `rep outsb` with RCX = 2^32 - 1 from a valid
 * buffer to the unassigned port 0x2f0: KVM splits it into page-sized exits
 * (about a million of them); a runner stops it with its timeout. If it ever
 * finishes (the source then runs far past RAM into MMIO), HC_DONE 1. */
#include "guest-asm.h"
        .globl _start
_start:
        PUTS msg
        cld
        mov $0x200000, %rsi             /* 2 MiB: RAM, above the image */
        mov $0x2f0, %dx
        mov $0xffffffff, %rcx
        rep outsb
        DONE $1
        GUEST_ASM_LIB
msg:    .asciz "rep outsb, 4 GiB to port 0x2f0\n"
