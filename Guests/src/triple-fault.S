/* triple-fault: long mode. A zero-limit IDT makes #UD undeliverable:
 * #UD -> #GP -> #DF -> triple fault -> the host sees KVM_EXIT_SHUTDOWN. */
#include "guest-asm.h"
        .globl _start
_start:
        PUTS msg
        lidt idtr(%rip)
        ud2
        HALT                            /* never reached */

        GUEST_ASM_LIB
        .balign 8
idtr:   .word 0                         /* limit 0 */
        .quad 0                         /* base     */
msg:    .asciz "Triple-faulting now\n"
