/* hello-real: 16-bit real mode, flat, loaded at 0x10000, cs:ip = 0x1000:0000. */
#include "guest-asm.h"
        .globl _start
_start:
        PUTS msg
        REPORT key_mode, $0
        HALT

        GUEST_ASM_LIB
msg:      .asciz "Hello from real mode\n"
key_mode: .asciz "mode"
