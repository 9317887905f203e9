#include "guest.h"

int main(void) {
    for (;;) __asm__ volatile("pause");
}
