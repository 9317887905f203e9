/* tk.h - a user header beside the guests (found before the library's). */
#ifndef TK_H
#define TK_H
#include <stdint.h>
uint64_t tk_square(uint64_t x);   /* lib/tk.c: a user library file, linked into every C guest */
#endif
