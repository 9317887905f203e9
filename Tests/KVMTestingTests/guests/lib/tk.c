#include "tk.h"
uint64_t tk_square(uint64_t x) { return x * x; }
