/* start64.S - entry of ELF64 C guests. The host starts us in long mode with
 * the first 4 GiB identity-mapped and interrupts off. We switch to our own
 * stack, clear .bss, call main(), and report main's return value as HC_DONE. */
        .section .text.start, "ax"
        .code64
        .globl _start
_start:
        cli
        cld
        /* 8 bytes a step (elf64.ld aligns both ends): on kvm_pvm a string
         * store into a write-protected page (fresh RAM, or dirty-logged after
         * a reset) is emulated one iteration at a time. The stack is not
         * cleared (.stack, after __bss_end): 16 KiB of rep stosb cost 8 ms there. */
        lea __bss_start(%rip), %rdi
        lea __bss_end(%rip), %rcx
        sub %rdi, %rcx
        shr $3, %rcx
        xor %eax, %eax
        rep stosq
        lea guest_stack_top(%rip), %rsp
        xor %ebp, %ebp
        call main
        mov %eax, %edi
        call done                       /* HC_DONE(main's result); never returns */
1:      cli
        hlt
        jmp 1b

        .section .stack, "aw", @nobits
        .balign 16
        .space 16384
guest_stack_top:
