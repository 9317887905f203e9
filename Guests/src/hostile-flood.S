/* hostile-flood: long mode. Hostcalls as fast as it can, forever: HC_REPORT
 * (the same key, then a counter as the value), HC_SYNC, HC_SNAPSHOT and
 * HC_DUMP_NESTED in turn, and a byte to COM1 each round. A runner must stay
 * responsive and stop it with its timeout, its memory not growing with the
 * number of requests. */
#include "guest-asm.h"
        .globl _start
_start:
        PUTS msg
        xor %r12, %r12
1:      inc %r12
        REPORT key, %r12
        HCALL HC_SYNC, %r12
        HCALL HC_SNAPSHOT, %r12
        HCALL HC_DUMP_NESTED
        mov $COM1_PORT, %dx
        mov $'.', %al
        out %al, %dx
        jmp 1b
        GUEST_ASM_LIB
key:    .asciz "flood"
msg:    .asciz "Flooding the host with hostcalls\n"
