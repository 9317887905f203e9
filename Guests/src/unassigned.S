/* unassigned: long mode. Unassigned port and MMIO accesses read all ones and
 * writes are ignored. */
#include "guest-asm.h"
#define PORT 0x2f0              /* nothing on a PC decodes 0x2f0 */
#define MMIO 0xD0000000         /* beyond RAM, no device         */
        .globl _start
_start:
        PUTS msg
        mov $PORT, %dx
        mov $0x5a, %al                  /* writes are ignored ...     */
        out %al, %dx
        mov $0x5a5a, %ax
        out %ax, %dx
        mov $0x5a5a5a5a, %eax
        out %eax, %dx

        xor %eax, %eax                  /* ... reads give all ones    */
        in %dx, %al
        movzbl %al, %ebx
        REPORT key_in8, %rbx
        mov $PORT, %dx
        xor %eax, %eax
        in %dx, %ax
        movzwl %ax, %ebx
        REPORT key_in16, %rbx
        mov $PORT, %dx
        xor %eax, %eax
        in %dx, %eax
        mov %eax, %ebx
        REPORT key_in32, %rbx

        mov $MMIO, %r12d
        movq $0x5a5a5a5a, (%r12)        /* MMIO write: ignored        */
        movzbl (%r12), %ebx
        REPORT key_mmio8, %rbx
        movzwl (%r12), %ebx
        REPORT key_mmio16, %rbx
        movl (%r12), %ebx
        REPORT key_mmio32, %rbx
        movq (%r12), %rbx
        REPORT key_mmio64, %rbx
        PUTS msg_done
        DONE $0

        GUEST_ASM_LIB
msg:        .asciz "Probing unassigned port 0x2f0 and MMIO 0xd0000000\n"
msg_done:   .asciz "done\n"
key_in8:    .asciz "in8"
key_in16:   .asciz "in16"
key_in32:   .asciz "in32"
key_mmio8:  .asciz "mmio8"
key_mmio16: .asciz "mmio16"
key_mmio32: .asciz "mmio32"
key_mmio64: .asciz "mmio64"
