/* idt-stubs.S - entry stubs for exception vectors 0..31 (see include/idt.h).
 * Each stub pushes a dummy error code where the CPU pushes none, then the
 * vector, and jumps to idt_common, which saves the GPRs (struct ex_regs),
 * calls idt_handle(regs) and returns with iretq (for the *_safe fix-ups).
 * Frame: 15 GPRs + vector + error + 5 CPU words = 22 * 8 = 176 bytes, a
 * multiple of 16, and the CPU aligns RSP to 16 before pushing in 64-bit mode:
 * so RSP is 16-aligned at the call, as the ABI wants. */
        .section .text.idt_stubs, "ax"
        .code64

/* Vectors that push an error code: 8, 10-14, 17, 21, 29, 30. */
.macro STUB vec
        .balign 16
idt_stub_\vec:
.if (\vec == 8) || ((\vec >= 10) && (\vec <= 14)) || (\vec == 17) || (\vec == 21) || (\vec == 29) || (\vec == 30)
.else
        pushq $0
.endif
        pushq $\vec
        jmp idt_common
.endm

idt_common:
        push %rax
        push %rcx
        push %rdx
        push %rbx
        push %rbp
        push %rsi
        push %rdi
        push %r8
        push %r9
        push %r10
        push %r11
        push %r12
        push %r13
        push %r14
        push %r15
        mov %rsp, %rdi
        cld
        call idt_handle
        pop %r15
        pop %r14
        pop %r13
        pop %r12
        pop %r11
        pop %r10
        pop %r9
        pop %r8
        pop %rdi
        pop %rsi
        pop %rbp
        pop %rbx
        pop %rdx
        pop %rcx
        pop %rax
        add $16, %rsp                   /* vector, error code */
        iretq

        STUB 0
        STUB 1
        STUB 2
        STUB 3
        STUB 4
        STUB 5
        STUB 6
        STUB 7
        STUB 8
        STUB 9
        STUB 10
        STUB 11
        STUB 12
        STUB 13
        STUB 14
        STUB 15
        STUB 16
        STUB 17
        STUB 18
        STUB 19
        STUB 20
        STUB 21
        STUB 22
        STUB 23
        STUB 24
        STUB 25
        STUB 26
        STUB 27
        STUB 28
        STUB 29
        STUB 30
        STUB 31

/* The stubs' addresses, for idt_install. */
        .section .rodata.idt_stub_table, "a"
        .balign 8
        .globl idt_stub_table
idt_stub_table:
        .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        .quad idt_stub_\v
        .endr
