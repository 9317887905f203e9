/* hostile-smash: long mode. Fills its own IDT (0x1000), GDT (0x500) and page
 * tables (0x2000-0xffff: the host's identity map) with 0xab, loads the garbage
 * IDT, flushes the TLB and executes ud2. Nothing can be delivered any more:
 * the host sees a triple fault (KVM_EXIT_SHUTDOWN). */
#include "guest-asm.h"
        .globl _start
_start:
        PUTS msg
        cld
        mov $0x1000, %rdi               /* IDT page */
        mov $0x1000, %rcx
        mov $0xab, %al
        rep stosb
        lidt idtr(%rip)
        mov $0x500, %rdi                /* GDT */
        mov $0x100, %rcx
        rep stosb
        mov $0x2000, %rdi               /* 32-bit PD, PML4, PDPT, PDs */
        mov $0xe000, %rcx
        rep stosb
        mov %cr3, %rax
        mov %rax, %cr3                  /* flush: the next fetch walks garbage */
        ud2
        DONE $1                         /* never reached */
        GUEST_ASM_LIB
        .balign 8
idtr:   .word 0xfff
        .quad 0x1000
msg:    .asciz "Smashing the IDT, GDT and page tables\n"
