/* collatz: one input per run, from the host's reply at stage 1. The host
 * snapshots the guest at stage 1 once and resets it for every input. */
#include "guest.h"

int main(void) {
    uint64_t n = sync_stage_value(1);
    GUEST_ASSERT(n != 0);
    uint64_t steps = 0, peak = n;
    while (n != 1) {
        n = (n & 1) ? 3 * n + 1 : n / 2;
        if (n > peak) peak = n;
        steps++;
    }
    report("steps", steps);
    report("peak", peak);
    return 0;
}
