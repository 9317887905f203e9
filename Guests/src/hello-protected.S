/* hello-protected: 32-bit protected mode without paging, flat at 0x100000. */
#include "guest-asm.h"
        .globl _start
_start:
        mov %cr0, %ebx
        test $1, %ebx                   /* CR0.PE must be set   */
        jz bad
        test $0x80000000, %ebx          /* CR0.PG must be clear */
        jnz bad
        PUTS msg
        REPORT key_mode, $1
        REPORT key_cr0, %ebx
        HALT
bad:
        HCALL HC_FAIL, $msg_bad, $__LINE__, %ebx, $0
        HALT

        GUEST_ASM_LIB
msg:      .asciz "Hello from protected mode\n"
msg_bad:  .asciz "hello-protected: expected CR0.PE=1 and CR0.PG=0"
key_mode: .asciz "mode"
key_cr0:  .asciz "cr0"
