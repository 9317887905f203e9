/* fail: long mode. HC_FAIL "expected failure", line 7, values 1 and 2. */
#include "guest-asm.h"
        .globl _start
_start:
        PUTS msg
        lea msg_fail(%rip), %rdi
        HCALL HC_FAIL, %rdi, $7, $1, $2
        HALT

        GUEST_ASM_LIB
msg:      .asciz "Failing on purpose\n"
msg_fail: .asciz "expected failure"
