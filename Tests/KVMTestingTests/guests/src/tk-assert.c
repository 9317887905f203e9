#include "guest.h"

int main(void) {
    report("before", 1);
    GUEST_ASSERT_EQ(7, 8);   /* line 5: KVMTestingTests checks this line */
    return 0;
}
