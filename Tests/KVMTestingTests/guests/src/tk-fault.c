#include "guest.h"
#include "idt.h"

int main(void) {
    idt_install();
    __asm__ volatile("ud2");
    return 0;
}
