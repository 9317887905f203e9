/* hello-c: ELF64 C guest. Prints a line, reports facts computed in C, then
 * leaves through isa-debug-exit with 0x10 (-> status 0x21). */
#include "guest.h"

static uint64_t fib(unsigned n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

int main(void) {
    serial_puts("Hello from C (ELF64)\n");

    uint64_t sum = 0;
    for (volatile unsigned i = 1; i <= 100; i++) sum += i;
    report("sum", sum);                  /* 5050 */
    report("fib20", fib(20));            /* 6765 */
    uint64_t efer = rdmsr(MSR_EFER);
    report("mode", (efer & EFER_LMA) ? 3 : 0);

    serial_puts("sum(1..100) = ");
    serial_put_dec(sum);
    serial_putc('\n');
    debug_exit(0x10);
}
