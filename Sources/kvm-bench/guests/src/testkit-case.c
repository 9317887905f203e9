/* testkit-case: the smallest useful test case (TestKitBench.swift): one fact,
 * two checkpoints, HC_DONE 0 from main's return. Four hostcall exits. */
#include "guest.h"

int main(void) {
    report("answer", 42);
    sync_stage(1);
    sync_stage(2);
    return 0;
}
