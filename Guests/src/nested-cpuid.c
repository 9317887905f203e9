/* nested-cpuid: what CPUID tells a guest about virtualization.
 *
 * Serial (one line per group; every numeric key=value is also an HC_REPORT
 * fact under the same key):
 *   cpuid vendor=GenuineIntel family=6 model=85 stepping=7 hypervisor=1 hv=KVMKVMKVM vmx=0 svm=0
 *   cpuid-leaves max_leaf=0x1f max_ext_leaf=0x80000008 hv_max_leaf=0x40000001
 *   cpuid-svm svm_rev=0x1 svm_nasid=16 svm_features=0x... svm_npt=1 svm_nrips=1 svm_vmcb_clean=1 svm_vgif=1
 *                                                          (only when svm=1 and leaf 0x8000000A exists)
 * Strings are not facts: vendor -> `vendor_intel`, `vendor_amd` (0/1);
 * hv (the 12-byte signature of leaf 0x40000000, "none" without the
 * hypervisor bit) -> `hv_kvm` (1 for "KVMKVMKVM\0\0\0"), `hv_sig_ebx`,
 * `hv_sig_ecx`, `hv_sig_edx`.
 * Ends with HC_DONE 0 (no nesting is a result, not a failure).
 */
#include "guest.h"
#include "idt.h"
#include "probe.h"
#include "svm.h"

int main(void) {
    idt_install();

    struct cpu_id id;
    cpu_identify(&id);

    uint32_t r[4];
    cpuid(1, 0, r);
    uint32_t eax = r[0];
    uint32_t stepping = eax & 0xf, model = (eax >> 4) & 0xf, family = (eax >> 8) & 0xf;
    if (family == 0xf) family += (eax >> 20) & 0xff;
    if (family == 0x6 || family >= 0xf) model += ((eax >> 16) & 0xf) << 4;

    char hv[13] = "none";
    uint32_t hv_max = 0, sig[3] = {0, 0, 0};
    if (id.hypervisor) {
        cpuid(0x40000000u, 0, r);
        hv_max = r[0];
        sig[0] = r[1]; sig[1] = r[2]; sig[2] = r[3];
        memcpy(hv, sig, 12);
        hv[12] = 0;
    }
    int hv_kvm = id.hypervisor && memcmp(sig, "KVMKVMKVM\0\0\0", 12) == 0;

    probe_begin("cpuid");
    probe_text("vendor", id.vendor, 12);
    probe_dec("family", family);
    probe_dec("model", model);
    probe_dec("stepping", stepping);
    probe_dec("hypervisor", id.hypervisor);
    probe_text("hv", hv[0] ? hv : "-", 12);
    probe_dec("vmx", id.vmx);
    probe_dec("svm", id.svm);
    probe_end();
    report("vendor_intel", id.intel);
    report("vendor_amd", id.amd);
    report("hv_kvm", hv_kvm);
    report("hv_sig_ebx", sig[0]);
    report("hv_sig_ecx", sig[1]);
    report("hv_sig_edx", sig[2]);

    probe_begin("cpuid-leaves");
    probe_hex("max_leaf", id.max_leaf);
    probe_hex("max_ext_leaf", id.max_ext_leaf);
    probe_hex("hv_max_leaf", hv_max);
    probe_end();

    if (id.svm && id.max_ext_leaf >= 0x8000000Au) {
        cpuid(0x8000000Au, 0, r);
        uint32_t edx = r[3];
        probe_begin("cpuid-svm");
        probe_hex("svm_rev", r[0] & 0xff);
        probe_dec("svm_nasid", r[1]);
        probe_hex("svm_features", edx);
        probe_dec("svm_npt", !!(edx & SVM_FEAT_NPT));
        probe_dec("svm_nrips", !!(edx & SVM_FEAT_NRIPS));
        probe_dec("svm_vmcb_clean", !!(edx & SVM_FEAT_VMCB_CLEAN));
        probe_dec("svm_vgif", !!(edx & SVM_FEAT_VGIF));
        probe_end();
    }
    return 0;
}
