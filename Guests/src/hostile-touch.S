/* hostile-touch: long mode. Writes a byte to every 4 KiB page from 2 MiB up,
 * reading each back, until one does not read back (no RAM there: an MMIO
 * write and read) or 3 GiB is reached; reports `ram_top` (the first address
 * that is not RAM) and `pages` (pages touched), asks for a snapshot
 * (HC_SNAPSHOT 1: every page is in it), then HC_DONE 0. So the host must back,
 * and a snapshot store, every page of guest RAM. */
#include "guest-asm.h"
        .globl _start
_start:
        PUTS msg
        mov $0x200000, %rbx
        xor %r12, %r12
1:      movb $0x5a, (%rbx)
        cmpb $0x5a, (%rbx)
        jne 2f
        inc %r12
        add $0x1000, %rbx
        mov $0xc0000000, %eax
        cmp %rax, %rbx
        jb 1b
2:      REPORT key_top, %rbx
        REPORT key_pages, %r12
        HCALL HC_SNAPSHOT, $1
        DONE $0
        GUEST_ASM_LIB
key_top:   .asciz "ram_top"
key_pages: .asciz "pages"
msg:       .asciz "Touching every page of RAM\n"
