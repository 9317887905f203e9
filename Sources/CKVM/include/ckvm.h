// CKVM: <linux/kvm.h> for Swift.
//
// Swift imports neither the variadic ioctl(2) nor the _IO/_IOR/_IOW request
// macros, so this header turns each request KVMCore uses into a constant and
// gives non-variadic wrappers. Structs come straight from the kernel headers
// (Debian's linux-libc-dev 6.1); anything newer is defined behind #ifndef.
#ifndef CKVM_H
#define CKVM_H

#include <linux/kvm.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/eventfd.h>
#include <cpuid.h>

// MARK: - Constants newer than the 6.1 headers

#ifndef KVM_CAP_X86_NOTIFY_VMEXIT
#define KVM_CAP_X86_NOTIFY_VMEXIT 219
#endif
#ifndef KVM_CAP_MEMORY_FAULT_INFO
#define KVM_CAP_MEMORY_FAULT_INFO 232
#endif
#ifndef KVM_EXIT_NOTIFY
#define KVM_EXIT_NOTIFY 37
#endif
#ifndef KVM_EXIT_MEMORY_FAULT
#define KVM_EXIT_MEMORY_FAULT 39
#endif
#ifndef KVM_STATE_NESTED_GIF_SET
#define KVM_STATE_NESTED_GIF_SET 0x00000100
#endif

// KVM_IOEVENTFD's flags are shifts of an enum, which Swift does not import.
static const uint32_t CKVM_IOEVENTFD_FLAG_DATAMATCH = KVM_IOEVENTFD_FLAG_DATAMATCH;
static const uint32_t CKVM_IOEVENTFD_FLAG_PIO = KVM_IOEVENTFD_FLAG_PIO;
static const uint32_t CKVM_IOEVENTFD_FLAG_DEASSIGN = KVM_IOEVENTFD_FLAG_DEASSIGN;
static inline int ckvm_eventfd(void) { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }

// MARK: - Request numbers

#define CKVM_REQ(name) static const unsigned long CKVM_##name = KVM_##name;
// system fd
CKVM_REQ(GET_API_VERSION)
CKVM_REQ(CREATE_VM)
CKVM_REQ(CHECK_EXTENSION)
CKVM_REQ(GET_VCPU_MMAP_SIZE)
CKVM_REQ(GET_SUPPORTED_CPUID)
CKVM_REQ(GET_MSR_INDEX_LIST)
CKVM_REQ(GET_MSR_FEATURE_INDEX_LIST)
// vm fd
CKVM_REQ(SET_USER_MEMORY_REGION)
CKVM_REQ(CREATE_VCPU)
CKVM_REQ(SET_TSS_ADDR)
CKVM_REQ(SET_IDENTITY_MAP_ADDR)
CKVM_REQ(CREATE_IRQCHIP)
CKVM_REQ(CREATE_PIT2)
CKVM_REQ(IRQ_LINE)
CKVM_REQ(SET_GSI_ROUTING)
CKVM_REQ(GET_DIRTY_LOG)
CKVM_REQ(ENABLE_CAP)
CKVM_REQ(GET_IRQCHIP)
CKVM_REQ(SET_IRQCHIP)
CKVM_REQ(GET_PIT2)
CKVM_REQ(SET_PIT2)
CKVM_REQ(GET_CLOCK)
CKVM_REQ(SET_CLOCK)
CKVM_REQ(IOEVENTFD)
// vcpu fd (GET_MSRS works on the system fd too, for feature MSRs)
CKVM_REQ(RUN)
CKVM_REQ(GET_REGS)
CKVM_REQ(SET_REGS)
CKVM_REQ(GET_SREGS)
CKVM_REQ(SET_SREGS)
CKVM_REQ(GET_FPU)
CKVM_REQ(SET_FPU)
CKVM_REQ(GET_XSAVE)
CKVM_REQ(GET_XSAVE2)
CKVM_REQ(SET_XSAVE)
CKVM_REQ(GET_XCRS)
CKVM_REQ(SET_XCRS)
CKVM_REQ(GET_MSRS)
CKVM_REQ(SET_MSRS)
CKVM_REQ(GET_CPUID2)
CKVM_REQ(SET_CPUID2)
CKVM_REQ(GET_LAPIC)
CKVM_REQ(SET_LAPIC)
CKVM_REQ(GET_VCPU_EVENTS)
CKVM_REQ(SET_VCPU_EVENTS)
CKVM_REQ(GET_DEBUGREGS)
CKVM_REQ(SET_DEBUGREGS)
CKVM_REQ(GET_MP_STATE)
CKVM_REQ(SET_MP_STATE)
CKVM_REQ(GET_NESTED_STATE)
CKVM_REQ(SET_NESTED_STATE)
CKVM_REQ(SET_GUEST_DEBUG)
#undef CKVM_REQ

// MARK: - Non-variadic ioctl

static inline int ckvm_ioctl(int fd, unsigned long request, unsigned long arg) {
    return ioctl(fd, request, arg);
}

static inline int ckvm_ioctl_ptr(int fd, unsigned long request, void *arg) {
    return ioctl(fd, request, arg);
}

/// KVM_RUN: the hot path, kept a direct call.
static inline int ckvm_run(int fd) {
    return ioctl(fd, KVM_RUN, 0);
}

// MARK: - Helpers Swift cannot express directly

/// "EINVAL" for EINVAL (glibc's strerrorname_np); NULL when unknown.
const char *ckvm_errno_name(int err);

/// Pointer to the data of a KVM_EXIT_IO exit inside the mmap'd kvm_run.
static inline uint8_t *ckvm_io_data(struct kvm_run *run) {
    return (uint8_t *)run + run->io.data_offset;
}

/// CPUID on the host CPU: out = {eax, ebx, ecx, edx}.
static inline void ckvm_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t out[4]) {
    __cpuid_count(leaf, subleaf, out[0], out[1], out[2], out[3]);
}

/// Pointer to the 8 data bytes of a KVM_EXIT_MMIO exit.
static inline uint8_t *ckvm_mmio_data(struct kvm_run *run) {
    return run->mmio.data;
}

// MARK: - Kicking a vCPU out of KVM_RUN
//
// A kick is a signal to the vCPU's thread. Its handler (C, async-signal-safe)
// sets immediate_exit in the kvm_run of the thread it lands on, so a kick that
// arrives while the thread is outside KVM_RUN still makes the next KVM_RUN
// return EINTR at once. The run loop clears immediate_exit after each kick.

/// Installs the kick handler for `signo` (no SA_RESTART). Idempotent.
int ckvm_kick_install(int signo);
/// Tells the calling thread's kick handler which kvm_run to flag (NULL: none).
void ckvm_kick_set_run(struct kvm_run *run);
/// The kernel thread id of the caller (for per-thread timers).
int ckvm_gettid(void);
/// Sends `signo` to thread `tid` of this process (tgkill).
int ckvm_tgkill(int tid, int signo);
/// Arms a one-shot CLOCK_MONOTONIC timer that sends `signo` to thread `tid`
/// after `nanoseconds`. Returns an opaque id > 0, or -errno.
long ckvm_timer_start(int signo, int tid, long long nanoseconds);
/// The same, firing every `interval` nanoseconds after the first.
long ckvm_timer_start_periodic(int signo, int tid, long long nanoseconds, long long interval);
/// Disarms and deletes a timer from ckvm_timer_start.
void ckvm_timer_stop(long timer);

#endif
