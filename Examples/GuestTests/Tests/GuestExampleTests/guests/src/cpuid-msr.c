/* cpuid-msr: instructions whose effects the host checks at a checkpoint. */
#include "guest.h"

#define MSR_GS_BASE        0xC0000101u
#define MSR_KERNEL_GS_BASE 0xC0000102u

static inline void swapgs(void) { __asm__ volatile("swapgs" ::: "memory"); }

int main(void) {
    uint32_t r[4];
    cpuid(0, 0, r);
    report("cpuid0_eax", r[0]);
    report("cpuid0_ebx", r[1]);
    report("cpuid0_ecx", r[2]);
    report("cpuid0_edx", r[3]);

    /* SWAPGS exchanges GS.base with IA32_KERNEL_GS_BASE. */
    wrmsr(MSR_GS_BASE, 0);
    wrmsr(MSR_KERNEL_GS_BASE, 0x00007fff12345678ull);
    swapgs();
    /* Stage 1: the host checks GS.base and the MSR, writes the MSR and replies
     * with the value it wrote. */
    uint64_t from_host = sync_stage_value(1);
    GUEST_ASSERT_EQ(rdmsr(MSR_KERNEL_GS_BASE), from_host);
    swapgs();
    GUEST_ASSERT_EQ(rdmsr(MSR_GS_BASE), from_host);

    uint64_t a = 5, b = 7;
    __asm__ volatile("xadd %0, %1" : "+r"(a), "+m"(b));
    GUEST_ASSERT_EQ(a, 7);
    GUEST_ASSERT_EQ(b, 12);
    report("xadd_sum", b);
    return 0;
}
