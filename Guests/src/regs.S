/* regs: long mode. Prints a line, sets rflags = 0x2 and loads known values
 * into every general register except rsp (left at the host's 0x80000), then
 * halts with interrupts off at a fixed address: the hlt is at 0x100200, so the
 * final rip is 0x100201. The host asserts the final registers. */
#include "guest-asm.h"
        .globl _start
_start:
        PUTS msg
        jmp load_regs

        GUEST_ASM_LIB
msg:    .asciz "Loading known register values\n"

        .org 0x200 - 3 - 15 * 10, 0xcc     /* pushq $2; popfq = 3 bytes, movabs = 10 bytes */
load_regs:
        pushq $2                        /* rflags = 0x2: IF=0, no status flags */
        popfq
        movabs $0x1111111111111111, %rax
        movabs $0x2222222222222222, %rbx
        movabs $0x3333333333333333, %rcx
        movabs $0x4444444444444444, %rdx
        movabs $0x5555555555555555, %rsi
        movabs $0x6666666666666666, %rdi
        movabs $0x7777777777777777, %rbp
        movabs $0x8888888888888888, %r8
        movabs $0x9999999999999999, %r9
        movabs $0xaaaaaaaaaaaaaaaa, %r10
        movabs $0xbbbbbbbbbbbbbbbb, %r11
        movabs $0xcccccccccccccccc, %r12
        movabs $0xdddddddddddddddd, %r13
        movabs $0xeeeeeeeeeeeeeeee, %r14
        movabs $0xffffffffffffffff, %r15
        .globl regs_hlt
regs_hlt:                               /* image offset 0x200 (the .org above) */
        hlt
        HALT
