/* debug-exit: real mode. Writes 0x2a to port 0xf4 -> run ends with status 0x55. */
#include "guest-asm.h"
        .globl _start
_start:
        PUTS msg
        DEBUG_EXIT 0x2a
        HALT                            /* not reached when the host handles 0xf4 */

        GUEST_ASM_LIB
msg:    .asciz "Exiting through isa-debug-exit with 0x2a\n"
