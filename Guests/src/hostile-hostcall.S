/* hostile-hostcall: long mode. A series of broken hostcalls, each of which
 * ends a run with a protocol error; a runner that resumes after each reaches
 * the next. In order:
 *   1  a 1-byte out to the hostcall port
 *   2  a 2-byte out
 *   3  a block address outside RAM (0xfffffff0)
 *   4  a block with a bad magic
 *   5  an unknown command (0x7777)
 *   6  HC_REPORT whose key pointer is outside RAM
 *   7  HC_REPORT with a 64 KiB unterminated key: accepted, cut to 63 bytes
 *      (no error: the run goes on to 8)
 *   8  HC_FAIL whose message runs off the end of a 64 MiB RAM, unterminated
 *   9  HC_DONE in a block straddling the end of a 64 MiB RAM (args past it)
 *  10  rep outsl of four block addresses: a good HC_REPORT (`string_io`=7),
 *      then a bad magic
 *  11  HC_DONE 0
 * With more than 64 MiB of RAM, 8 and 9 are not errors (8 fails the run
 * instead). */
#include "guest-asm.h"
        .globl _start
_start:
        PUTS msg
        mov $HOSTCALL_PORT, %dx
        mov $0x41, %al
        outb %al, %dx                   /* 1 */
        mov $0x4142, %ax
        outw %ax, %dx                   /* 2 */
        mov $0xfffffff0, %eax
        outl %eax, %dx                  /* 3 */
        lea bad_magic(%rip), %rax
        outl %eax, %dx                  /* 4 */
        lea bad_command(%rip), %rax
        outl %eax, %dx                  /* 5 */
        lea bad_key(%rip), %rax
        outl %eax, %dx                  /* 6 */
        /* 7: 64 KiB of 'K' at 2 MiB, no NUL */
        cld
        mov $0x200000, %rdi
        mov $0x10000, %rcx
        mov $'K', %al
        rep stosb
        lea long_key(%rip), %rax
        mov $HOSTCALL_PORT, %dx
        outl %eax, %dx                  /* 7 */
        /* 8: "XXXX" in the last 4 bytes of 64 MiB, no NUL after it */
        movl $0x58585858, 0x03fffffc
        lea fail_off_end(%rip), %rax
        outl %eax, %dx                  /* 8 */
        /* 9: a block at 64 MiB - 8: magic and command fit, args do not */
        movl $HOSTCALL_MAGIC, 0x03fffff8
        movl $HC_DONE, 0x03fffffc
        mov $0x03fffff8, %eax
        outl %eax, %dx                  /* 9 */
        /* 10 */
        lea blocks(%rip), %rsi
        mov $2, %rcx
        rep outsl                       /* 10 */
        DONE $0                         /* 11 */
        GUEST_ASM_LIB

        .balign 8
bad_magic:      .long 0x12345678, HC_DONE
                .quad 0, 0, 0, 0
bad_command:    .long HOSTCALL_MAGIC, 0x7777
                .quad 0, 0, 0, 0
bad_key:        .long HOSTCALL_MAGIC, HC_REPORT
                .quad 0xffffffffffff0000, 1, 0, 0
long_key:       .long HOSTCALL_MAGIC, HC_REPORT
                .quad 0x200000, 77, 0, 0
fail_off_end:   .long HOSTCALL_MAGIC, HC_FAIL
                .quad 0x03fffffc, 8, 0, 0
good_report:    .long HOSTCALL_MAGIC, HC_REPORT
                .quad key_string_io, 7, 0, 0
blocks:         .long good_report, bad_magic
key_string_io:  .asciz "string_io"
msg:            .asciz "Breaking the hostcall protocol\n"
