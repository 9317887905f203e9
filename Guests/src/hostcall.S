/* hostcall: long mode. HC_REPORT answer=42, HC_SYNC 1, HC_SYNC 2, HC_DONE 0. */
#include "guest-asm.h"
        .globl _start
_start:
        PUTS msg
        REPORT key_answer, $42
        HCALL HC_SYNC, $1
        HCALL HC_SYNC, $2
        PUTS msg_done
        DONE $0

        GUEST_ASM_LIB
msg:        .asciz "Hostcall test: report, sync 1, sync 2, done\n"
msg_done:   .asciz "synced twice\n"
key_answer: .asciz "answer"
