/* square: the README's example (KVMTesting section), kept compiled and run here. */
#include "guest.h"

int main(void) {
    uint64_t x = sync_stage_value(1);   /* stage 1: the host replies with x */
    GUEST_ASSERT(x < (1ull << 32));     /* a failure is reported at this line */
    report("square", x * x);
    return 0;                           /* HC_DONE 0: passed */
}
