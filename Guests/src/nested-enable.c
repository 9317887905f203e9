/* nested-enable: try to switch virtualization on, the way of the CPU vendor
 * (CPUID leaf 0), only when CPUID advertises it. Exceptions are results: the
 * IDT (lib/idt.c) prints `probe exception vector=.. rip=.. error=.. step=..
 * level=1`, reports `exception`, `exception_rip`, `exception_error`,
 * `exception_step` (numbers below), `exception_level`, and ends with HC_DONE 0.
 *
 * Serial and facts (numeric key=value pairs are HC_REPORT facts, same key):
 *   probe vendor=GenuineIntel vmx=0 svm=0 enable=skipped     enable: 0 skipped, 1 vmx, 2 svm
 * Intel (VMX in CPUID; first line ends enable=vmx), steps 1..4:
 *   vmx feature_control=0x5 vmx_basic=0x... vmx_revision=0x...
 *        (an MSR that faults prints `name=fault` and reports name_exception = vector)
 *   probe cr4_vmxe=ok                       step 1 "cr4.vmxe" (CR0/CR4 fixed bits when readable)
 *   probe feature_control_locked=ok         step 2 "feature_control" (wrmsr lock + VMXON outside SMX if needed)
 *   probe vmxon=ok vmxon_status=0 vmxon_pa=0x...   step 3 "vmxon" (status 1 VMfailInvalid, 2 VMfailValid)
 *   probe vmxoff=ok                         step 4 "vmxoff"
 * AMD (SVM in CPUID; first line ends enable=svm), steps 11..14:
 *   svm vm_cr=0x0 svmdis=0
 *   probe efer_svme=ok                      step 11 "efer.svme"
 *   probe hsave_pa=0x...                    step 12 "vm_hsave_pa"
 *   probe vmcb_pa=0x... asid=1 l2_rip=0x... step 13 "vmcb" (L2 = vmmcall)
 *   probe vmrun=ok exitcode=0x81            step 14 "vmrun" (vmrun=fail for any other exit code)
 * Ends with HC_DONE 0.
 */
#include "guest.h"
#include "idt.h"
#include "probe.h"
#include "svm.h"
#include "vmx.h"

static struct vmx_pages vmx;
static struct svm_pages svm;
static uint8_t l2_stack[4096] __attribute__((aligned(16)));

/* L2 for the SVM path: mark the level, VMMCALL (intercepted by L1). The ud2
 * only runs if VMMCALL did not exit: the IDT then reports #UD at level 2. */
void l2_vmmcall(void);
__asm__(".pushsection .text.l2_vmmcall, \"ax\"\n"
        ".globl l2_vmmcall\n"
        "l2_vmmcall:\n\t"
        "movq $2, guest_level(%rip)\n\t"
        "vmmcall\n\t"
        "ud2\n"
        ".popsection");

/* Reads an MSR for the line: prints `name=0x..` and reports it, or
 * `name=fault` and reports name_exception. Returns 1 when readable. */
static int msr_fact(const char *name, const char *fault_key, uint32_t msr, uint64_t *value) {
    uint8_t vec = rdmsr_safe(msr, value);
    if (vec) {
        probe_word(name, "fault");
        report(fault_key, vec);
        return 0;
    }
    probe_hex(name, *value);
    return 1;
}

static int enable_vmx(void) {
    uint64_t fc = 0, basic = 0;
    probe_begin("vmx");
    int fc_ok = msr_fact("feature_control", "feature_control_exception", MSR_IA32_FEAT_CTL, &fc);
    int basic_ok = msr_fact("vmx_basic", "vmx_basic_exception", MSR_IA32_VMX_BASIC, &basic);
    if (basic_ok) probe_hex("vmx_revision", basic & 0x7fffffffu);
    probe_end();

    idt_step(1, "cr4.vmxe");
    uint64_t f0, f1;
    if (!rdmsr_safe(MSR_IA32_VMX_CR0_FIXED0, &f0) && !rdmsr_safe(MSR_IA32_VMX_CR0_FIXED1, &f1))
        write_cr0((read_cr0() & f1) | f0);
    uintptr_t cr4 = read_cr4();
    if (!rdmsr_safe(MSR_IA32_VMX_CR4_FIXED0, &f0) && !rdmsr_safe(MSR_IA32_VMX_CR4_FIXED1, &f1))
        cr4 = (cr4 & f1) | f0;
    write_cr4(cr4 | CR4_VMXE);
    probe_begin("probe");
    probe_ok("cr4_vmxe", (read_cr4() & CR4_VMXE) != 0);
    probe_end();

    idt_step(2, "feature_control");
    uint64_t required = FEAT_CTL_LOCKED | FEAT_CTL_VMX_OUTSIDE_SMX;
    if (!fc_ok || (fc & required) != required) {
        wrmsr(MSR_IA32_FEAT_CTL, fc | required);
        fc = rdmsr(MSR_IA32_FEAT_CTL);
    }
    probe_begin("probe");
    probe_ok("feature_control_locked", (fc & required) == required);
    probe_end();

    idt_step(3, "vmxon");
    memset(vmx.vmxon, 0, sizeof(vmx.vmxon));
    *(volatile uint32_t *)vmx.vmxon = (uint32_t)(basic_ok ? basic : rdmsr(MSR_IA32_VMX_BASIC)) & 0x7fffffffu;
    int st = vmxon((uintptr_t)vmx.vmxon);
    probe_begin("probe");
    probe_ok("vmxon", st == 0);
    probe_dec("vmxon_status", st);
    probe_hex("vmxon_pa", (uintptr_t)vmx.vmxon);
    probe_end();
    if (st) return 0;

    idt_step(4, "vmxoff");
    st = vmxoff();
    probe_begin("probe");
    probe_ok("vmxoff", st == 0);
    probe_end();
    return 0;
}

static int enable_svm(void) {
    uint64_t vm_cr = 0;
    probe_begin("svm");
    if (msr_fact("vm_cr", "vm_cr_exception", MSR_VM_CR, &vm_cr))
        probe_dec("svmdis", !!(vm_cr & VM_CR_SVMDIS));
    probe_end();

    idt_step(11, "efer.svme");
    wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SVME);
    probe_begin("probe");
    probe_ok("efer_svme", (rdmsr(MSR_EFER) & EFER_SVME) != 0);
    probe_end();

    idt_step(12, "vm_hsave_pa");
    wrmsr(MSR_VM_HSAVE_PA, (uintptr_t)svm.hsave);
    probe_begin("probe");
    probe_hex("hsave_pa", rdmsr(MSR_VM_HSAVE_PA));
    probe_end();

    idt_step(13, "vmcb");
    svm_vmcb_setup(&svm, l2_vmmcall, l2_stack + sizeof(l2_stack) - 8);
    probe_begin("probe");
    probe_hex("vmcb_pa", (uintptr_t)&svm.vmcb);
    probe_dec("asid", svm.vmcb.control.asid);
    probe_hex("l2_rip", svm.vmcb.save.rip);
    probe_end();

    idt_step(14, "vmrun");
    svm_vmrun((uintptr_t)&svm.vmcb);
    guest_level = 1;
    uint64_t code = svm_exit_code(&svm.vmcb);
    probe_begin("probe");
    probe_ok("vmrun", code == SVM_EXIT_VMMCALL);
    probe_hex("exitcode", code);
    probe_end();
    return 0;
}

int main(void) {
    idt_install();
    struct cpu_id id;
    cpu_identify(&id);

    probe_begin("probe");
    probe_text("vendor", id.vendor, 12);
    probe_dec("vmx", id.vmx);
    probe_dec("svm", id.svm);
    int path = id.intel && id.vmx ? 1 : id.amd && id.svm ? 2 : 0;
    probe_word("enable", path == 1 ? "vmx" : path == 2 ? "svm" : "skipped");
    probe_end();
    report("enable", path);
    if (path == 1) return enable_vmx();
    if (path == 2) return enable_svm();
    return 0;
}
