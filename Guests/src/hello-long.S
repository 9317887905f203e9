/* hello-long: 64-bit long mode, flat at 0x100000. */
#include "guest-asm.h"
        .globl _start
_start:
        mov $0xC0000080, %ecx           /* IA32_EFER */
        rdmsr
        shl $32, %rdx
        or %rax, %rdx
        mov %rdx, %rbx
        test $0x400, %ebx               /* EFER.LMA */
        jz bad
        PUTS msg
        REPORT key_mode, $3
        REPORT key_efer, %rbx
        HALT
bad:
        lea msg_bad(%rip), %rdi
        HCALL HC_FAIL, %rdi, $__LINE__, %rbx, $0
        HALT

        GUEST_ASM_LIB
msg:      .asciz "Hello from long mode\n"
msg_bad:  .asciz "hello-long: expected EFER.LMA=1"
key_mode: .asciz "mode"
key_efer: .asciz "efer"
