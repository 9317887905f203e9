/* hostile-rep-insb: long mode. `rep insb` with RCX = 2^32 - 1 from the
 * unassigned port 0x2f0 (reads 0xff) into memory from 1 MiB below the end of a
 * 64 MiB RAM: KVM fills page-sized chunks, then the destination runs past the
 * end of RAM into MMIO, one exit a byte. A runner stops it with its timeout.
 * If it ever finishes, HC_DONE 1. */
#include "guest-asm.h"
        .globl _start
_start:
        PUTS msg
        cld
        mov $0x03f00000, %rdi
        mov $0x2f0, %dx
        mov $0xffffffff, %rcx
        rep insb
        DONE $1
        GUEST_ASM_LIB
msg:    .asciz "rep insb, 4 GiB from port 0x2f0 over the end of RAM\n"
