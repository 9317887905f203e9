#include "guest.h"
#include "tk.h"

int main(void) {
    serial_puts("tk-stages: start\n");
    report("answer", 42);
    report("minus_one", (uint64_t)-1);
    uint64_t x = sync_stage_value(1);       /* the host replies with the input */
    report("square", tk_square(x));
    sync_stage(2);
    serial_puts("tk-stages: done\n");
    return 0;
}
