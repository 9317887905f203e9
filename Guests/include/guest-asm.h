/* guest-asm.h - tiny shared library for the assembly guests (AT&T syntax).
 *
 * build-guest.sh defines GUEST_BITS (16, 32 or 64) from the guest's mode and
 * includes this header before the guest source's own code runs, so a guest is:
 *
 *     #include "guest-asm.h"
 *     _start:  PUTS msg
 *              REPORT key_mode, $3
 *              HALT
 *              GUEST_ASM_LIB           // emits guest_puts, guest_hostcall, hc_block
 *     msg:     .asciz "Hello\n"
 *     key_mode: .asciz "mode"
 *
 * Flat images start executing at their first byte, so GUEST_ASM_LIB goes after
 * the code.  Real-mode guests are linked at offset 0 and rely on the loader's
 * convention ds = cs (kvmtool: cs = ds = es = ss = 0x1000); physical addresses
 * for the host are computed as cs * 16 + offset.
 *
 * Routines (all modes; "R" = si/esi/rsi etc. for the mode's width):
 *   guest_puts       Rsi = string address (NUL-terminated); polls LSR bit 5.
 *                    Clobbers ax, dx, Rsi.
 *   guest_hostcall   eax = command, Rdi/Rsi/Rdx/Rcx = args[0..3] (32-bit values
 *                    in 16/32-bit modes, zero-extended); writes hc_block and does
 *                    `out %eax, $HOSTCALL_PORT`. Returns args[0] (as written back
 *                    by the host) in eax/rax. Clobbers eax, edx.
 *   guest_phys16     (16-bit only) edi += cs * 16: offset -> physical address.
 *
 * Macros:
 *   PUTS label                 print a string
 *   REPORT key_label, value    HC_REPORT key = value (value: $imm or register;
 *                              it is moved first, so any register is fine)
 *   HCALL cmd, a0, a1, a2, a3  any hostcall with immediate/register args
 *   DONE status                HC_DONE, then HALT (so runners that ignore
 *                              hostcalls still stop)
 *   HALT                       cli; hlt (loop)
 *   DEBUG_EXIT value           out of an 8-bit immediate to port 0xf4
 */
#ifndef GUEST_ASM_H
#define GUEST_ASM_H

#include "hostcall.h"

#ifndef GUEST_BITS
#error "GUEST_BITS must be 16, 32 or 64 (build-guest.sh sets it from the mode)"
#endif

        .text
#if GUEST_BITS == 16
        .code16
#elif GUEST_BITS == 32
        .code32
#else
        .code64
#endif

.macro HALT
9999:   cli
        hlt
        jmp 9999b
.endm

.macro DEBUG_EXIT value
        mov $\value, %al
        out %al, $DEBUG_EXIT_PORT
.endm

#if GUEST_BITS == 16
/* ------------------------------------------------------------------ 16-bit */
.macro PUTS str
        mov $\str, %si
        call guest_puts
.endm

.macro REPORT key, value
        movl \value, %esi
        movl $\key, %edi
        call guest_phys16
        mov $HC_REPORT, %eax
        call guest_hostcall
.endm

.macro HCALL cmd, a0=$0, a1=$0, a2=$0, a3=$0
        movl \a3, %ecx
        movl \a2, %edx
        movl \a1, %esi
        movl \a0, %edi
        movl $\cmd, %eax
        call guest_hostcall
.endm

.macro GUEST_ASM_LIB
guest_puts:
        cld
1:      lodsb
        test %al, %al
        jz 3f
        mov %al, %ah
        mov $COM1_LSR, %dx
2:      in %dx, %al
        test $LSR_THRE, %al
        jz 2b
        mov $COM1_PORT, %dx
        mov %ah, %al
        out %al, %dx
        jmp 1b
3:      ret

guest_phys16:
        push %eax
        mov %cs, %ax
        movzwl %ax, %eax
        shl $4, %eax
        add %eax, %edi
        pop %eax
        ret

guest_hostcall:
        movl %eax, hc_block + HC_OFF_COMMAND
        movl %edi, hc_block + HC_OFF_ARG0
        movl %esi, hc_block + HC_OFF_ARG1
        movl %edx, hc_block + HC_OFF_ARG2
        movl %ecx, hc_block + HC_OFF_ARG3
        xor %eax, %eax
        movl %eax, hc_block + HC_OFF_ARG0 + 4
        movl %eax, hc_block + HC_OFF_ARG1 + 4
        movl %eax, hc_block + HC_OFF_ARG2 + 4
        movl %eax, hc_block + HC_OFF_ARG3 + 4
        mov %cs, %ax
        shl $4, %eax
        add $hc_block, %eax
        mov $HOSTCALL_PORT, %dx
        out %eax, %dx
        movl hc_block + HC_OFF_ARG0, %eax
        ret

        .balign 8
hc_block:
        .long HOSTCALL_MAGIC, 0
        .quad 0, 0, 0, 0
.endm

#elif GUEST_BITS == 32
/* ------------------------------------------------------------------ 32-bit */
.macro PUTS str
        mov $\str, %esi
        call guest_puts
.endm

.macro REPORT key, value
        movl \value, %esi
        movl $\key, %edi
        mov $HC_REPORT, %eax
        call guest_hostcall
.endm

.macro HCALL cmd, a0=$0, a1=$0, a2=$0, a3=$0
        movl \a3, %ecx
        movl \a2, %edx
        movl \a1, %esi
        movl \a0, %edi
        movl $\cmd, %eax
        call guest_hostcall
.endm

.macro GUEST_ASM_LIB
guest_puts:
        cld
1:      lodsb
        test %al, %al
        jz 3f
        mov %al, %ah
        mov $COM1_LSR, %dx
2:      in %dx, %al
        test $LSR_THRE, %al
        jz 2b
        mov $COM1_PORT, %dx
        mov %ah, %al
        out %al, %dx
        jmp 1b
3:      ret

guest_hostcall:
        movl %eax, hc_block + HC_OFF_COMMAND
        movl %edi, hc_block + HC_OFF_ARG0
        movl %esi, hc_block + HC_OFF_ARG1
        movl %edx, hc_block + HC_OFF_ARG2
        movl %ecx, hc_block + HC_OFF_ARG3
        xor %eax, %eax
        movl %eax, hc_block + HC_OFF_ARG0 + 4
        movl %eax, hc_block + HC_OFF_ARG1 + 4
        movl %eax, hc_block + HC_OFF_ARG2 + 4
        movl %eax, hc_block + HC_OFF_ARG3 + 4
        mov $hc_block, %eax
        mov $HOSTCALL_PORT, %dx
        out %eax, %dx
        movl hc_block + HC_OFF_ARG0, %eax
        ret

        .balign 8
hc_block:
        .long HOSTCALL_MAGIC, 0
        .quad 0, 0, 0, 0
.endm

#else
/* ------------------------------------------------------------------ 64-bit */
.macro PUTS str
        lea \str(%rip), %rsi
        call guest_puts
.endm

.macro REPORT key, value
        mov \value, %rsi
        lea \key(%rip), %rdi
        mov $HC_REPORT, %eax
        call guest_hostcall
.endm

.macro HCALL cmd, a0=$0, a1=$0, a2=$0, a3=$0
        mov \a3, %rcx
        mov \a2, %rdx
        mov \a1, %rsi
        mov \a0, %rdi
        mov $\cmd, %eax
        call guest_hostcall
.endm

.macro GUEST_ASM_LIB
guest_puts:
        cld
1:      lodsb
        test %al, %al
        jz 3f
        mov %al, %ah
        mov $COM1_LSR, %dx
2:      in %dx, %al
        test $LSR_THRE, %al
        jz 2b
        mov $COM1_PORT, %dx
        mov %ah, %al
        out %al, %dx
        jmp 1b
3:      ret

guest_hostcall:
        movl %eax, hc_block + HC_OFF_COMMAND(%rip)
        mov %rdi, hc_block + HC_OFF_ARG0(%rip)
        mov %rsi, hc_block + HC_OFF_ARG1(%rip)
        mov %rdx, hc_block + HC_OFF_ARG2(%rip)
        mov %rcx, hc_block + HC_OFF_ARG3(%rip)
        lea hc_block(%rip), %rax
        mov $HOSTCALL_PORT, %dx
        out %eax, %dx
        mov hc_block + HC_OFF_ARG0(%rip), %rax
        ret

        .balign 8
hc_block:
        .long HOSTCALL_MAGIC, 0
        .quad 0, 0, 0, 0
.endm
#endif

.macro DONE status
        HCALL HC_DONE, \status
        HALT
.endm

#endif
