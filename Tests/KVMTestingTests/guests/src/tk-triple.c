#include "guest.h"

int main(void) {
    __asm__ volatile("ud2");   /* no IDT: #UD, #DF, shutdown */
    return 0;
}
