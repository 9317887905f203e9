/* mb.h - 32-bit multiboot test kernels (guests.list kind `multiboot`).
 *
 * Entry (lib/start-mb.S): the multiboot header, our own flat GDT, a stack,
 * .bss cleared, then
 *
 *     int main(uint32_t magic, struct mb_info *info);
 *
 * whose result goes to isa-debug-exit (port 0xf4): the run ends with status
 * (result << 1) | 1 under QEMU and kvmrun alike. Output is serial only (no
 * hostcalls: QEMU has none), so QEMU is the oracle.
 *
 * Library (lib/mb.c): printing, the multiboot info, fw_cfg (PIO and DMA),
 * an IDT whose 256 vectors call mb_irq_handlers[v] (exceptions print and exit
 * with 0x7f), LAPIC/IOAPIC/PIT/PIC helpers and SMP start-up of the APs. */
#ifndef GUEST_MB_H
#define GUEST_MB_H

#include "guest.h"

/* ---- the multiboot information structure (Multiboot 0.6.96, 3.3) -------- */
#define MB_BOOTLOADER_MAGIC 0x2BADB002u

#define MB_INFO_MEMORY      (1u << 0)
#define MB_INFO_BOOTDEV     (1u << 1)
#define MB_INFO_CMDLINE     (1u << 2)
#define MB_INFO_MODS        (1u << 3)
#define MB_INFO_MMAP        (1u << 6)
#define MB_INFO_LOADER_NAME (1u << 9)

struct mb_info {
    uint32_t flags;
    uint32_t mem_lower, mem_upper;
    uint32_t boot_device;
    uint32_t cmdline;
    uint32_t mods_count, mods_addr;
    uint32_t syms[4];
    uint32_t mmap_length, mmap_addr;
    uint32_t drives_length, drives_addr;
    uint32_t config_table;
    uint32_t boot_loader_name;
    uint32_t apm_table;
    uint32_t vbe_control_info, vbe_mode_info;
    uint16_t vbe_mode, vbe_interface_seg, vbe_interface_off, vbe_interface_len;
} __attribute__((packed));

struct mb_module {
    uint32_t mod_start, mod_end;
    uint32_t string;
    uint32_t reserved;
} __attribute__((packed));

/* An mmap entry; `size` counts the bytes after itself (20). */
struct mb_mmap_entry {
    uint32_t size;
    uint64_t addr, len;
    uint32_t type;
} __attribute__((packed));

/* ---- printing (serial) ----------------------------------------------------- */
void put_str(const char *s);
void put_hex(uint64_t v, int digits);         /* "0x" + `digits` hex digits */
void put_dec(uint64_t v);
void put_quoted(const char *s, uint32_t max); /* "...", non-printables as \xNN */
void put_kv_hex(const char *key, uint64_t v, int digits);  /* " key=0x..." */
void put_kv_dec(const char *key, uint64_t v);              /* " key=N" */

/* ---- command line ---------------------------------------------------------- */
/* The value of `key=` in `cmdline` as a number (decimal or 0x hex), or `def`. */
uint32_t cmdline_number(const char *cmdline, const char *key, uint32_t def);

/* ---- fw_cfg (QEMU's firmware configuration device) ------------------------- */
#define FW_CFG_PORT_SEL   0x510
#define FW_CFG_PORT_DATA  0x511
#define FW_CFG_PORT_DMA   0x514

#define FW_CFG_SIGNATURE      0x00
#define FW_CFG_ID             0x01
#define FW_CFG_UUID           0x02
#define FW_CFG_RAM_SIZE       0x03
#define FW_CFG_NOGRAPHIC      0x04
#define FW_CFG_NB_CPUS        0x05
#define FW_CFG_KERNEL_ADDR    0x07
#define FW_CFG_KERNEL_SIZE    0x08
#define FW_CFG_KERNEL_CMDLINE 0x09
#define FW_CFG_INITRD_ADDR    0x0a
#define FW_CFG_INITRD_SIZE    0x0b
#define FW_CFG_BOOT_MENU      0x0e
#define FW_CFG_MAX_CPUS       0x0f
#define FW_CFG_KERNEL_ENTRY   0x10
#define FW_CFG_KERNEL_DATA    0x11
#define FW_CFG_INITRD_DATA    0x12
#define FW_CFG_CMDLINE_ADDR   0x13
#define FW_CFG_CMDLINE_SIZE   0x14
#define FW_CFG_CMDLINE_DATA   0x15
#define FW_CFG_FILE_DIR       0x19

void fw_cfg_select(uint16_t key);
void fw_cfg_read(void *buf, uint32_t n);      /* PIO, from the current offset */
uint32_t fw_cfg_read32(uint16_t key);         /* select + 4 bytes, little-endian */
uint64_t fw_cfg_read64(uint16_t key);
/* DMA read of `n` bytes of `key` (select + read); returns the control word the
 * device left (0 = done, 1 = error). */
uint32_t fw_cfg_dma_read(uint16_t key, void *buf, uint32_t n);

/* ---- descriptor tables and interrupts -------------------------------------- */
struct mb_frame {                 /* what the stubs push (pusha order), then the CPU */
    uint32_t edi, esi, ebp, esp_, ebx, edx, ecx, eax;
    uint32_t vector, error;
    uint32_t eip, cs, eflags;
};
typedef void (*mb_irq_handler)(struct mb_frame *f);
extern mb_irq_handler mb_irq_handlers[256];
void idt_init(void);              /* load the IDT (all 256 vectors) */
static inline void sti(void) { __asm__ volatile("sti"); }
static inline void pause(void) { __asm__ volatile("pause"); }
static inline void sti_hlt(void) { __asm__ volatile("sti; hlt" ::: "memory"); }

/* ---- local APIC, IOAPIC, PIT, PIC ----------------------------------------- */
#define LAPIC_BASE     0xFEE00000u
#define LAPIC_ID       0x020
#define LAPIC_VERSION  0x030
#define LAPIC_TPR      0x080
#define LAPIC_EOI      0x0B0
#define LAPIC_SVR      0x0F0
#define LAPIC_ICR_LO   0x300
#define LAPIC_ICR_HI   0x310
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_LVT_LINT0 0x350
#define LAPIC_LVT_LINT1 0x360
#define LAPIC_TIMER_INIT 0x380
#define LAPIC_TIMER_CUR  0x390
#define LAPIC_TIMER_DIV  0x3E0

static inline uint32_t lapic_read(uint32_t reg) { return *(volatile uint32_t *)(LAPIC_BASE + reg); }
static inline void lapic_write(uint32_t reg, uint32_t v) { *(volatile uint32_t *)(LAPIC_BASE + reg) = v; }
static inline void lapic_eoi(void) { lapic_write(LAPIC_EOI, 0); }
static inline uint32_t lapic_id(void) { return lapic_read(LAPIC_ID) >> 24; }
void lapic_enable(void);          /* SVR: software enable, spurious vector 0xff */

#define IOAPIC_BASE    0xFEC00000u
uint32_t ioapic_read(uint32_t reg);
void ioapic_write(uint32_t reg, uint32_t v);
/* Redirection entry `pin`: `vector`, fixed, physical destination `apic`, edge,
 * active high, unmasked. */
void ioapic_route(uint32_t pin, uint8_t vector, uint8_t apic);
void ioapic_mask(uint32_t pin);

void pic_mask_all(void);          /* both 8259s: IMR = 0xff */
void pit_periodic(uint16_t divisor);  /* channel 0, mode 2 (rate generator) */
void pit_stop(void);              /* channel 0, mode 0 with count 0 (one last edge, then quiet) */
void delay_loop(uint32_t n);      /* n pauses */

/* ---- SMP -------------------------------------------------------------------- */
/* Copies the AP trampoline to `base` (page aligned, below 1 MiB), broadcasts
 * INIT-SIPI-SIPI, and waits (bounded) for `expected` APs to check in.
 * Each AP records its LAPIC ID and halts. Returns how many checked in. */
uint32_t smp_start_aps(uint32_t base, uint32_t expected);
extern volatile uint32_t smp_ap_count;
extern volatile uint32_t smp_ap_ids[256];

#endif
