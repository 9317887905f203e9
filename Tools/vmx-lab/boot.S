/* boot.S - the VMX lab's boot sector (Tools/vmx-lab/README.md). The BIOS loads
 * it at 0x7c00 in real mode; it reads LOAD_SECTORS sectors after it (the guest
 * image, a flat copy of an ELF64 guest linked at 0x100000) to 0x10000 with
 * INT 13h extensions, then goes straight to long mode with the state
 * Docs/PROTOCOL.md gives ELF64 guests under KVMCore: flat code64 (0x18) and
 * data (0x10) segments, a TSS (0x20), the first 4 GiB identity-mapped with
 * 2 MiB pages, rsp = 0x80000, interrupts off (the tables sit at 0x30000, not
 * at KVMCore's 0x3000: this sector is at 0x7c00). COM1 is set to 8N1 first. In long mode it copies the image to 0x100000 and jumps there. */
#define LOAD_SEG      0x1000        /* the image lands at 0x10000 */
#define LOAD_SECTORS  256           /* 128 KiB: up to 0x30000 */
#define CHUNK         64            /* sectors per INT 13h call (32 KiB) */
#define PT_BASE       0x30000       /* PML4, PDPT, 4 PDs: 0x30000-0x35fff */
#define TSS_ADDR      0x36000
#define GUEST_ADDR    0x100000

        .section .text, "ax"
        .code16
        .globl _start
_start:
        cli
        xor %ax, %ax
        mov %ax, %ds
        mov %ax, %es
        mov %ax, %ss
        mov $0x7000, %sp
        mov %dl, boot_drive

        /* Read the image, CHUNK sectors at a time (a disk address packet). */
        mov $(LOAD_SECTORS / CHUNK), %cx
1:      push %cx
        mov $dap, %si
        mov boot_drive, %dl
        mov $0x42, %ah
        int $0x13
        jc disk_error
        addw $(CHUNK * 512 / 16), dap_seg
        addl $CHUNK, dap_lba
        pop %cx
        loop 1b

        /* COM1: 8N1, divisor 1 (the reset state is 5-bit words, which
         * Bochs's UART masks the guest's bytes to). */
        mov $0x3fb, %dx
        mov $0x80, %al                      /* DLAB */
        out %al, %dx
        mov $0x3f8, %dx
        mov $1, %al
        out %al, %dx
        inc %dx
        xor %al, %al
        out %al, %dx
        mov $0x3fb, %dx
        mov $3, %al                         /* 8 bits, no parity, 1 stop */
        out %al, %dx

        /* A20 through port 0x92. */
        in $0x92, %al
        or $2, %al
        and $0xfe, %al
        out %al, $0x92

        /* Page tables and the TSS at PT_BASE (after the image; 0x3000-0x8fff,
         * KVMCore's place, holds this sector): clear 28 KiB through ES. */
        cld
        mov $(PT_BASE >> 4), %ax
        mov %ax, %es
        xor %di, %di
        xor %eax, %eax
        mov $(0x7000 / 4), %ecx
        rep stosl
        movl $(PT_BASE + 0x1000 + 3), %es:0          /* PML4[0] -> PDPT */
        movl $(PT_BASE + 0x2000 + 3), %es:0x1000     /* PDPT[0..3] -> PDs */
        movl $(PT_BASE + 0x3000 + 3), %es:0x1008
        movl $(PT_BASE + 0x4000 + 3), %es:0x1010
        movl $(PT_BASE + 0x5000 + 3), %es:0x1018
        mov $0x2000, %di                    /* 2048 PDEs: 2 MiB pages, P|RW|PS */
        mov $0x83, %eax
2:      mov %eax, %es:(%di)
        add $(1 << 21), %eax
        add $8, %di
        cmp $0x6000, %di
        jne 2b
        movw $0x68, %es:(TSS_ADDR - PT_BASE + 0x66) /* I/O map base past the limit */
        xor %ax, %ax
        mov %ax, %es

        lgdtl gdt_ptr
        mov $PT_BASE, %eax
        mov %eax, %cr3
        mov %cr4, %eax
        or $0x20, %eax                      /* PAE */
        mov %eax, %cr4
        mov $0xc0000080, %ecx               /* EFER.LME */
        rdmsr
        or $0x100, %eax
        wrmsr
        mov %cr0, %eax
        or $0x80000001, %eax                /* PG | PE: straight to long mode */
        and $0x9fffffff, %eax               /* caches on (CD, NW clear) */
        mov %eax, %cr0
        ljmpl $0x18, $long_mode

disk_error:
        mov $'D', %al
        mov $0x3f8, %dx
        out %al, %dx
        mov $0x8900, %dx                    /* Bochs: "Shutdown" ends the run */
        mov $shutdown, %si
3:      lodsb
        test %al, %al
        jz 4f
        out %al, %dx
        jmp 3b
4:      hlt
        jmp 4b

        .code64
long_mode:
        mov $0x10, %eax
        mov %eax, %ds
        mov %eax, %es
        mov %eax, %ss
        mov %eax, %fs
        mov %eax, %gs
        mov $0x20, %ax
        ltr %ax
        mov $0x80000, %esp
        mov $(LOAD_SEG << 4), %esi
        mov $GUEST_ADDR, %edi
        mov $(LOAD_SECTORS * 512 / 8), %ecx
        rep movsq
        xor %eax, %eax
        xor %ecx, %ecx
        xor %edx, %edx
        xor %esi, %esi
        xor %edi, %edi
        mov $GUEST_ADDR, %ebx
        jmp *%rbx

        .balign 8
gdt:    .quad 0
        .quad 0x00cf9b000000ffff            /* 0x08 code32 */
        .quad 0x00cf93000000ffff            /* 0x10 data */
        .quad 0x00af9b000000ffff            /* 0x18 code64 */
        /* 0x20 TSS: 64-bit available TSS at TSS_ADDR, limit 0x67 */
        .word 0x67, TSS_ADDR & 0xffff
        .byte (TSS_ADDR >> 16) & 0xff, 0x89, 0, (TSS_ADDR >> 24) & 0xff
        .long 0, 0
gdt_end:
gdt_ptr:
        .word gdt_end - gdt - 1
        .long gdt
dap:    .byte 16, 0
        .word CHUNK
        .word 0                             /* offset */
dap_seg: .word LOAD_SEG
dap_lba: .long 1, 0
boot_drive: .byte 0
shutdown: .asciz "Shutdown"

        .org 510
        .byte 0x55, 0xaa
