/* hello-paged: 32-bit protected mode with paging (4 MiB pages), flat at 0x100000. */
#include "guest-asm.h"
        .globl _start
_start:
        mov %cr0, %ebx
        test $0x80000000, %ebx          /* CR0.PG must be set */
        jz bad
        PUTS msg
        REPORT key_mode, $2
        REPORT key_cr0, %ebx
        HALT
bad:
        HCALL HC_FAIL, $msg_bad, $__LINE__, %ebx, $0
        HALT

        GUEST_ASM_LIB
msg:      .asciz "Hello from paged mode\n"
msg_bad:  .asciz "hello-paged: expected CR0.PG=1"
key_mode: .asciz "mode"
key_cr0:  .asciz "cr0"
