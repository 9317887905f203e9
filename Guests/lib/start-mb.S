/* start-mb.S - entry of multiboot test kernels (see include/mb.h).
 *
 * The multiboot header asks for page-aligned modules and memory information
 * (flags bits 0 and 1). Built with -DMB_ADDRESS_FIELDS it also sets bit 16
 * and gives header_addr/load_addr/load_end_addr/bss_end_addr/entry_addr, so
 * the loader uses those instead of the ELF program headers.
 *
 * The loader enters _start in flat 32-bit protected mode, paging off,
 * interrupts off, EAX = 0x2BADB002, EBX = the multiboot information. We load
 * our own GDT (the loader's may be gone), take our own stack, clear .bss, call
 * main(magic, info) and send its result to isa-debug-exit. */
#define MB_HEADER_MAGIC 0x1BADB002
#ifdef MB_ADDRESS_FIELDS
#define MB_HEADER_FLAGS 0x00010003
#else
#define MB_HEADER_FLAGS 0x00000003
#endif

        .section .multiboot, "a"
        .balign 4
mb_header:
        .long MB_HEADER_MAGIC
        .long MB_HEADER_FLAGS
        .long -(MB_HEADER_MAGIC + MB_HEADER_FLAGS)
#ifdef MB_ADDRESS_FIELDS
        .long mb_header                 /* header_addr */
        .long __image_start             /* load_addr */
        .long __load_end                /* load_end_addr */
        .long __bss_end                 /* bss_end_addr */
        .long _start                    /* entry_addr */
#endif

        .section .text.start, "ax"
        .code32
        .globl _start
_start:
        cli
        cld
        mov %eax, %ebp                  /* magic */
        lgdt gdt_desc
        ljmp $0x08, $1f
1:      mov $0x10, %eax
        mov %eax, %ds
        mov %eax, %es
        mov %eax, %ss
        mov %eax, %fs
        mov %eax, %gs
        mov $__bss_start, %edi          /* ebx (info) survives rep stosb */
        mov $__bss_end, %ecx
        sub %edi, %ecx
        xor %eax, %eax
        rep stosb
        mov $bsp_stack_top, %esp
        push %ebx
        push %ebp
        call main
        add $8, %esp
        push %eax
        call debug_exit                 /* never returns */
2:      cli
        hlt
        jmp 2b

/* ---- interrupt stubs: 16 bytes each, vector v at isr_stubs + 16 * v ---- */
        .section .text.isr, "ax"
        .globl isr_stubs
        .balign 16
isr_stubs:
        .set vec, 0
        .rept 256
        .balign 16
        .if (vec == 8) || (vec == 10) || (vec == 11) || (vec == 12) || (vec == 13) || (vec == 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
        .else
        pushl $0                        /* no error code: push a zero one */
        .endif
        pushl $vec
        jmp isr_common
        .set vec, vec + 1
        .endr

isr_common:
        pusha
        cld
        push %esp                       /* struct mb_frame * */
        call mb_isr
        add $4, %esp
        popa
        add $8, %esp                    /* vector, error code */
        /* Return without IRET: KVM's instruction emulator cannot do a
         * protected-mode IRET, and hosts that emulate 32-bit unpaged code
         * (kvm_pvm) stop with an emulation failure there. Same privilege
         * level, so the frame is EIP, CS, EFLAGS: reorder it to EFLAGS, CS,
         * EIP, then POPF and a near RET (CS does not change). */
        push %eax                       /* eax, eip, cs, eflags */
        mov 4(%esp), %eax
        xchg %eax, 12(%esp)             /* eax = eflags; the eflags slot = eip */
        mov %eax, 4(%esp)               /* eax, eflags, cs, eip */
        pop %eax
        popf
        add $4, %esp                    /* cs */
        ret

/* ---- AP trampoline: copied below 1 MiB, entered by SIPI in real mode at
 * CS:IP = (base >> 4):0. Only position-independent 16-bit code up to the far
 * jump, which goes to the kernel's 32-bit ap_start32. ---- */
        .section .text.trampoline, "ax"
        .globl ap_trampoline, ap_trampoline_end
        .code16
ap_trampoline:
        cli
        cld
        mov %cs, %ax
        mov %ax, %ds
        lgdtl ap_gdt_desc - ap_trampoline
        mov %cr0, %eax
        or $1, %eax
        mov %eax, %cr0
        ljmpl $0x08, $ap_start32
        .balign 4
ap_gdt_desc:
        .word gdt_end - gdt - 1
        .long gdt
ap_trampoline_end:

        .code32
ap_start32:
        mov $0x10, %eax
        mov %eax, %ds
        mov %eax, %es
        mov %eax, %ss
        mov %eax, %fs
        mov %eax, %gs
        mov $1, %eax
        lock xadd %eax, ap_stack_next   /* eax = this AP's stack number */
        and $63, %eax
        inc %eax
        shl $10, %eax                   /* 1 KiB each, 64 of them */
        add $ap_stacks, %eax
        mov %eax, %esp
        call ap_main                    /* never returns */
3:      cli
        hlt
        jmp 3b

        .section .data
        .balign 8
gdt:
        .quad 0
        .quad 0x00CF9A000000FFFF        /* 0x08: code, base 0, 4 GiB, 32-bit */
        .quad 0x00CF92000000FFFF        /* 0x10: data, base 0, 4 GiB */
gdt_end:
        .balign 4
        .word 0
gdt_desc:
        .word gdt_end - gdt - 1
        .long gdt

        .section .data.ap_stack_next, "aw"
        .balign 4
ap_stack_next:
        .long 0

        .section .bss
        .balign 16
        .space 16384
bsp_stack_top:

        .section .bss.ap_stacks, "aw", @nobits
        .balign 16
ap_stacks:
        .space 1024 * 64
