/* kvm-baseline: run a guest on /dev/kvm with raw ioctls, nothing else.
 *
 * The benchmark's baseline (what the Swift run loop is measured against) and a
 * stand-alone runner for the test guests. Sets up the CPU modes exactly as
 * Docs/PROTOCOL.md describes, then loops on KVM_RUN:
 *   out 0x3f8      -> stdout, one write(2) per byte (unless --quiet)
 *   in  0x3fd      -> 0x60 (LSR: THRE | TEMT)
 *   out 0xf4 v     -> exit((v << 1) | 1)
 *   out 0x1000     -> ignored (with --hostcalls: decoded to stderr)
 *   other in/MMIO reads -> all ones; other writes ignored
 *   HLT            -> exit 0;  SHUTDOWN or anything else -> message, exit 1
 *
 * usage: kvm-baseline [--mode real|protected|paged|long] [--load ADDR]
 *                     [--entry ADDR] [--quiet] [--count-exits] [--hostcalls] [--regs] FILE
 *   --count-exits  number of exits and ns per exit round trip (wall clock, and
 *                  the loop thread's CPU time), to stderr
 *   --hostcalls    decode hostcall blocks to stderr (otherwise ignored)
 *   --regs         dump the registers to stderr at HLT (always on failures)
 * A FILE starting with an ELF64 header is loaded by its program headers and
 * entered in long mode; anything else is a flat binary (default: real mode at
 * 0x10000, cs:ip = 0x1000:0; other modes at 0x100000).
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MEM_SIZE   (64ull << 20)
#define GDT_ADDR   0x0500
#define IDT_ADDR   0x1000
#define PD32_ADDR  0x2000
#define PML4_ADDR  0x3000
#define PDPT_ADDR  0x4000
#define PD64_ADDR  0x5000           /* 4 page directories: 0x5000-0x8fff */
#define HOST_END   0x9000           /* images must not overlap 0x500-0x8fff */
#define STACK_TOP  0x80000

#define SEL_CODE32 0x08
#define SEL_DATA   0x10
#define SEL_CODE64 0x18
#define SEL_TSS    0x20

#define CR0_PE     (1u << 0)
#define CR0_ET     (1u << 4)
#define CR0_PG     (1u << 31)
#define CR4_PSE    (1u << 4)
#define CR4_PAE    (1u << 5)
#define EFER_LME   (1u << 8)
#define EFER_LMA   (1u << 10)

enum mode { REAL, PROTECTED, PAGED, LONG };

static int count_exits, dump_regs;
static uint64_t exits;
static struct timespec t0, cpu0;

static double ns_between(struct timespec a, struct timespec b) {
    return (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
}

static _Noreturn void finish(int status) {
    if (count_exits) {
        struct timespec t1, cpu1;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu1);
        double ns = ns_between(t0, t1), cpu = ns_between(cpu0, cpu1);
        fprintf(stderr, "exits: %llu, %.1f ns/exit (%.3f ms total)\n",
                (unsigned long long)exits, exits ? ns / (double)exits : 0.0, ns / 1e6);
        fprintf(stderr, "cpu: %.1f ns/exit (%.3f ms thread CPU time)\n",
                exits ? cpu / (double)exits : 0.0, cpu / 1e6);
    }
    exit(status);
}

static _Noreturn void die(const char *what) {
    perror(what);
    exit(1);
}

static uint64_t parse_u64(const char *s) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end || end == s) {
        fprintf(stderr, "kvm-baseline: bad number '%s'\n", s);
        exit(2);
    }
    return v;
}

static uint8_t *read_file(const char *path, size_t *size) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) die(path);
    struct stat st;
    if (fstat(fd, &st) < 0) die(path);
    uint8_t *buf = malloc(st.st_size ? st.st_size : 1);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, st.st_size - got);
        if (n <= 0) die(path);
        got += n;
    }
    close(fd);
    *size = got;
    return buf;
}

static void check_range(uint64_t addr, uint64_t len, enum mode mode) {
    if (addr + len > MEM_SIZE || addr + len < addr) {
        fprintf(stderr, "kvm-baseline: image 0x%llx+0x%llx is outside guest memory\n",
                (unsigned long long)addr, (unsigned long long)len);
        exit(1);
    }
    if (mode != REAL && addr < HOST_END && len) {
        fprintf(stderr, "kvm-baseline: image at 0x%llx overlaps the host structures (0x500-0x8fff)\n",
                (unsigned long long)addr);
        exit(1);
    }
}

/* Static ELF64: copy PT_LOAD segments to p_paddr (identity-mapped). */
static uint64_t load_elf64(uint8_t *mem, const uint8_t *img, size_t size) {
    const Elf64_Ehdr *eh = (const void *)img;
    if (size < sizeof *eh || eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_machine != EM_X86_64 ||
        eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phoff + (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > size) {
        fprintf(stderr, "kvm-baseline: not a static x86-64 ELF64 image\n");
        exit(1);
    }
    const Elf64_Phdr *ph = (const void *)(img + eh->e_phoff);
    for (int i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type != PT_LOAD) continue;
        if (ph[i].p_filesz > ph[i].p_memsz || ph[i].p_offset + ph[i].p_filesz > size) {
            fprintf(stderr, "kvm-baseline: bad ELF program header %d\n", i);
            exit(1);
        }
        check_range(ph[i].p_paddr, ph[i].p_memsz, LONG);
        memcpy(mem + ph[i].p_paddr, img + ph[i].p_offset, ph[i].p_filesz);
        memset(mem + ph[i].p_paddr + ph[i].p_filesz, 0, ph[i].p_memsz - ph[i].p_filesz);
    }
    return eh->e_entry;
}

static struct kvm_segment seg(uint16_t sel, uint8_t type, int code64) {
    struct kvm_segment s = {
        .base = 0, .limit = 0xffffffff, .selector = sel, .type = type,
        .present = 1, .dpl = 0, .db = !code64, .s = 1, .l = code64, .g = 1,
    };
    return s;
}

static void setup_modes(int vcpu, uint8_t *mem, enum mode mode, uint64_t load, uint64_t entry) {
    struct kvm_sregs sregs;
    struct kvm_regs regs;
    if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) die("KVM_GET_SREGS");
    memset(&regs, 0, sizeof regs);
    regs.rflags = 0x2;

    if (mode == REAL) {
        /* kvmtool: cs = ds = es = ss = fs = gs = load >> 4, ip = entry - load, sp = 0x8000. */
        uint16_t s = (uint16_t)(load >> 4);
        struct kvm_segment *segs[] = { &sregs.cs, &sregs.ds, &sregs.es, &sregs.fs, &sregs.gs, &sregs.ss };
        for (unsigned i = 0; i < 6; i++) {
            segs[i]->selector = s;
            segs[i]->base = (uint64_t)s << 4;
        }
        regs.rip = entry - load;
        regs.rsp = 0x8000;
    } else {
        /* GDT: null, code32 0x08, data 0x10, code64 0x18, TSS 0x20 (16 bytes). */
        uint64_t *gdt = (uint64_t *)(mem + GDT_ADDR);
        gdt[0] = 0;
        gdt[1] = 0x00cf9b000000ffffull;     /* code32: base 0, 4 GiB, D=1 G=1 */
        gdt[2] = 0x00cf93000000ffffull;     /* data:   base 0, 4 GiB          */
        gdt[3] = 0x00af9b000000ffffull;     /* code64: L=1                     */
        gdt[4] = 0x00008b0000000067ull;     /* TSS: busy, base 0, limit 0x67  */
        gdt[5] = 0;
        sregs.gdt.base = GDT_ADDR;
        sregs.gdt.limit = 6 * 8 - 1;
        sregs.idt.base = IDT_ADDR;
        sregs.idt.limit = 0;

        int l = mode == LONG;
        sregs.cs = seg(l ? SEL_CODE64 : SEL_CODE32, 0xb, l);
        sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = seg(SEL_DATA, 0x3, 0);
        sregs.tr = (struct kvm_segment){ .base = 0, .limit = 0x67, .selector = SEL_TSS,
                                         .type = 0xb, .present = 1 };
        sregs.ldt = (struct kvm_segment){ .type = 0x2, .present = 0, .unusable = 1 };
        sregs.cr0 = CR0_PE | CR0_ET;
        sregs.cr4 = 0;
        sregs.efer = 0;

        if (mode == PAGED) {
            uint32_t *pd = (uint32_t *)(mem + PD32_ADDR);
            for (uint32_t i = 0; i < 1024; i++)
                pd[i] = (i << 22) | 0x83;   /* P | RW | PS: 4 MiB pages */
            sregs.cr3 = PD32_ADDR;
            sregs.cr4 = CR4_PSE;
            sregs.cr0 |= CR0_PG;
        } else if (mode == LONG) {
            uint64_t *pml4 = (uint64_t *)(mem + PML4_ADDR);
            uint64_t *pdpt = (uint64_t *)(mem + PDPT_ADDR);
            uint64_t *pd = (uint64_t *)(mem + PD64_ADDR);
            pml4[0] = PDPT_ADDR | 0x3;
            for (uint64_t i = 0; i < 4; i++)
                pdpt[i] = (PD64_ADDR + i * 0x1000) | 0x3;
            for (uint64_t i = 0; i < 4 * 512; i++)
                pd[i] = (i << 21) | 0x83;   /* P | RW | PS: 2 MiB pages */
            sregs.cr3 = PML4_ADDR;
            sregs.cr4 = CR4_PAE;
            sregs.cr0 |= CR0_PG;
            sregs.efer = EFER_LME | EFER_LMA;
        }
        regs.rip = entry;
        regs.rsp = STACK_TOP;
    }
    if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0) die("KVM_SET_SREGS");
    if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0) die("KVM_SET_REGS");
}

static void set_cpuid(int kvm, int vcpu) {
    int n = 256;
    struct kvm_cpuid2 *c = calloc(1, sizeof *c + n * sizeof(struct kvm_cpuid_entry2));
    c->nent = n;
    if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, c) < 0) die("KVM_GET_SUPPORTED_CPUID");
    if (ioctl(vcpu, KVM_SET_CPUID2, c) < 0) die("KVM_SET_CPUID2");
    free(c);
}

/* --hostcalls: decode a hostcall block to stderr (not part of the baseline path). */
static void show_hostcall(const uint8_t *mem, uint32_t addr) {
    static const char *names[] = { "?", "REPORT", "DONE", "FAIL", "SYNC", "DUMP_NESTED", "SNAPSHOT" };
    if (addr > MEM_SIZE - 40) { fprintf(stderr, "[hostcall] block 0x%x outside RAM\n", addr); return; }
    uint32_t magic, cmd;
    uint64_t a[4];
    memcpy(&magic, mem + addr, 4);
    memcpy(&cmd, mem + addr + 4, 4);
    memcpy(a, mem + addr + 8, 32);
    const char *s0 = a[0] < MEM_SIZE ? (const char *)mem + a[0] : "?";
    fprintf(stderr, "[hostcall] %s", magic == 0x4C435348 ? "" : "BAD MAGIC ");
    if (cmd == 1)      fprintf(stderr, "REPORT %.63s = 0x%llx\n", s0, (unsigned long long)a[1]);
    else if (cmd == 3) fprintf(stderr, "FAIL \"%.200s\" line %llu values 0x%llx 0x%llx\n", s0,
                               (unsigned long long)a[1], (unsigned long long)a[2], (unsigned long long)a[3]);
    else fprintf(stderr, "%s 0x%llx\n", cmd < 7 ? names[cmd] : "UNKNOWN", (unsigned long long)a[0]);
}

/* After a failure: the registers a person needs first. */
static void dump_state(int vcpu) {
    struct kvm_regs r;
    struct kvm_sregs s;
    if (ioctl(vcpu, KVM_GET_REGS, &r) < 0 || ioctl(vcpu, KVM_GET_SREGS, &s) < 0) return;
    fprintf(stderr, "  rax=0x%llx rbx=0x%llx rcx=0x%llx rdx=0x%llx\n"
                    "  rsi=0x%llx rdi=0x%llx rbp=0x%llx r8=0x%llx\n"
                    "  r9=0x%llx r10=0x%llx r11=0x%llx r12=0x%llx\n"
                    "  r13=0x%llx r14=0x%llx r15=0x%llx\n",
            (unsigned long long)r.rax, (unsigned long long)r.rbx, (unsigned long long)r.rcx,
            (unsigned long long)r.rdx, (unsigned long long)r.rsi, (unsigned long long)r.rdi,
            (unsigned long long)r.rbp, (unsigned long long)r.r8, (unsigned long long)r.r9,
            (unsigned long long)r.r10, (unsigned long long)r.r11, (unsigned long long)r.r12,
            (unsigned long long)r.r13, (unsigned long long)r.r14, (unsigned long long)r.r15);
    fprintf(stderr, "  rip=0x%llx rsp=0x%llx rflags=0x%llx cs=0x%x\n"
                    "  cr0=0x%llx cr2=0x%llx cr3=0x%llx cr4=0x%llx efer=0x%llx\n",
            (unsigned long long)r.rip, (unsigned long long)r.rsp, (unsigned long long)r.rflags,
            s.cs.selector, (unsigned long long)s.cr0, (unsigned long long)s.cr2,
            (unsigned long long)s.cr3, (unsigned long long)s.cr4, (unsigned long long)s.efer);
}

int main(int argc, char **argv) {
    enum mode mode = REAL;
    int have_mode = 0, have_load = 0, have_entry = 0, quiet = 0, hostcalls = 0;
    uint64_t load = 0, entry = 0;
    const char *path = NULL;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--mode") && i + 1 < argc) {
            const char *m = argv[++i];
            have_mode = 1;
            if (!strcmp(m, "real")) mode = REAL;
            else if (!strcmp(m, "protected")) mode = PROTECTED;
            else if (!strcmp(m, "paged")) mode = PAGED;
            else if (!strcmp(m, "long")) mode = LONG;
            else { fprintf(stderr, "kvm-baseline: unknown mode '%s'\n", m); return 2; }
        } else if (!strcmp(a, "--load") && i + 1 < argc) { load = parse_u64(argv[++i]); have_load = 1; }
        else if (!strcmp(a, "--entry") && i + 1 < argc) { entry = parse_u64(argv[++i]); have_entry = 1; }
        else if (!strcmp(a, "--quiet")) quiet = 1;
        else if (!strcmp(a, "--count-exits")) count_exits = 1;
        else if (!strcmp(a, "--hostcalls")) hostcalls = 1;
        else if (!strcmp(a, "--regs")) dump_regs = 1;
        else if (a[0] != '-' && !path) path = a;
        else {
            fprintf(stderr, "usage: kvm-baseline [--mode real|protected|paged|long] [--load ADDR] "
                            "[--entry ADDR] [--quiet] [--count-exits] [--hostcalls] [--regs] FILE\n");
            return 2;
        }
    }
    if (!path) { fprintf(stderr, "kvm-baseline: no FILE\n"); return 2; }

    size_t size;
    uint8_t *img = read_file(path, &size);
    int is_elf = size >= 4 && !memcmp(img, ELFMAG, SELFMAG);

    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) die("/dev/kvm");
    if (ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
        fprintf(stderr, "kvm-baseline: unexpected KVM API version\n");
        return 1;
    }
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0) die("KVM_CREATE_VM");
    (void)ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000ul);   /* needed by VMX without unrestricted guest */

    uint8_t *mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED) die("mmap guest memory");
    struct kvm_userspace_memory_region region = {
        .slot = 0, .guest_phys_addr = 0, .memory_size = MEM_SIZE, .userspace_addr = (uint64_t)mem,
    };
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) die("KVM_SET_USER_MEMORY_REGION");

    if (is_elf) {
        if (have_mode && mode != LONG) { fprintf(stderr, "kvm-baseline: ELF64 images run in long mode\n"); return 2; }
        mode = LONG;
        uint64_t elf_entry = load_elf64(mem, img, size);
        if (!have_entry) entry = elf_entry;
    } else {
        if (!have_load) load = mode == REAL ? 0x10000 : 0x100000;
        if (!have_entry) entry = load;
        if (mode == REAL && (load & 0xf || load > 0xffff0)) {
            fprintf(stderr, "kvm-baseline: real-mode load address must be 16-byte aligned and below 1 MiB\n");
            return 2;
        }
        check_range(load, size, mode);
        memcpy(mem + load, img, size);
    }

    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    if (vcpu < 0) die("KVM_CREATE_VCPU");
    int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (run_size < 0) die("KVM_GET_VCPU_MMAP_SIZE");
    struct kvm_run *run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    if (run == MAP_FAILED) die("mmap kvm_run");
    set_cpuid(kvm, vcpu);
    setup_modes(vcpu, mem, mode, load, entry);

    clock_gettime(CLOCK_MONOTONIC, &t0);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu0);
    for (;;) {
        if (ioctl(vcpu, KVM_RUN, 0) < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            die("KVM_RUN");
        }
        exits++;
        switch (run->exit_reason) {
        case KVM_EXIT_IO: {
            uint8_t *data = (uint8_t *)run + run->io.data_offset;
            uint16_t port = run->io.port;
            uint32_t n = (uint32_t)run->io.size * run->io.count;
            if (run->io.direction == KVM_EXIT_IO_OUT) {
                if (port == 0x3f8) {
                    if (!quiet)
                        for (uint32_t i = 0; i < n; i += run->io.size)
                            if (write(1, data + i, 1) < 0) die("write");
                } else if (port == 0xf4) {
                    uint32_t v = 0;
                    memcpy(&v, data, run->io.size);
                    finish((int)((v << 1) | 1));
                } else if (port == 0x1000 && hostcalls) {
                    uint32_t v;
                    memcpy(&v, data, 4);
                    show_hostcall(mem, v);
                }
            } else {
                memset(data, port == 0x3fd ? 0x60 : 0xff, n);
            }
            break;
        }
        case KVM_EXIT_MMIO:
            if (!run->mmio.is_write)
                memset(run->mmio.data, 0xff, run->mmio.len);
            break;
        case KVM_EXIT_HLT:
            if (dump_regs) dump_state(vcpu);
            finish(0);
        case KVM_EXIT_SHUTDOWN:
            fprintf(stderr, "kvm-baseline: shutdown (triple fault)\n");
            dump_state(vcpu);
            finish(1);
        case KVM_EXIT_FAIL_ENTRY:
            fprintf(stderr, "kvm-baseline: entry failed, hardware reason 0x%llx\n",
                    (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
            dump_state(vcpu);
            finish(1);
        case KVM_EXIT_INTERNAL_ERROR:
            fprintf(stderr, "kvm-baseline: internal error, suberror %u\n", run->internal.suberror);
            dump_state(vcpu);
            finish(1);
        default:
            fprintf(stderr, "kvm-baseline: unexpected exit reason %u\n", run->exit_reason);
            dump_state(vcpu);
            finish(1);
        }
    }
}
