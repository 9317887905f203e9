/* hostcall.c - the guest's way out to the host (Docs/PROTOCOL.md): a hostcall
 * block's address written to the hostcall port, and QEMU's isa-debug-exit.
 * lib/guest.c builds report/sync/done/fail on hostcall(); Tools/vmx-lab has its
 * own transport in place of this file, where Bochs is the CPU. */
#include "guest.h"

/* One block; guests are single-threaded. */
static volatile struct hostcall hc_block = { .magic = HOSTCALL_MAGIC };

uint64_t hostcall(uint32_t command, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3) {
    hc_block.magic = HOSTCALL_MAGIC;
    hc_block.command = command;
    hc_block.args[0] = a0;
    hc_block.args[1] = a1;
    hc_block.args[2] = a2;
    hc_block.args[3] = a3;
    /* The "memory" clobber orders the block stores before the out and the
     * host's write-back before the read below. */
    __asm__ volatile("outl %0, %1"
                     :: "a"((uint32_t)(uintptr_t)&hc_block), "Nd"((uint16_t)HOSTCALL_PORT)
                     : "memory");
    return hc_block.args[0];
}

void debug_exit(uint8_t value) {
    outb(DEBUG_EXIT_PORT, value);
    halt();
}
