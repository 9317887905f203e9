/* spin: real mode. Prints a line, then loops forever (the host's timeout test). */
#include "guest-asm.h"
        .globl _start
_start:
        PUTS msg
1:      jmp 1b

        GUEST_ASM_LIB
msg:    .asciz "spinning\n"
