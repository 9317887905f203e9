/* port-loop-real: the benchmark guest in real mode. 200,000 byte writes to
 * port 0x80, then cli; hlt. No serial output: 200,000 I/O exits + 1 HLT. */
#include "guest-asm.h"
        .globl _start
_start:
        mov $200000, %ecx
        mov $0x80, %dx
        xor %eax, %eax
1:      out %al, %dx
        dec %ecx
        jnz 1b
        HALT
