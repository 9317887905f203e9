/* vmx-rules: the VMX lab's guest (Tools/vmx-lab/run) that asks the CPU itself
 * the questions NestedStateValidator answers from KVM's source, on a VMX CPU
 * (Bochs), with the guest library's VMX helpers (Guests/lib/vmx.c):
 *
 *   the VMXON region: page-aligned, below 2^MAXPHYADDR, right revision
 *     (validator rule vmxon-address);
 *   the VMCS pointer: page-aligned, below 2^MAXPHYADDR (vmcs12-address), not
 *     the VMXON region (vmcs12-not-vmxon), right revision (vmcs12-revision's
 *     hardware counterpart: IA32_VMX_BASIC's revision, not KVM's VMCS12_REVISION);
 *   VMXON in VMX root operation; VM entry with a bad control field, a bad host
 *   field and a bad guest field (exit reason 0x80000021, which the vmcs12
 *   decoder names INVALID_STATE (VM-entry failure)); then a good VMLAUNCH.
 *
 * Each case prints `rule NAME status=S error=E`: S is the instruction's
 * result (0 ok, 1 VMfailInvalid, 2 VMfailValid), E VM_INSTRUCTION_ERROR after
 * a VMfailValid (0 otherwise); VM entries add `exit_reason=R`. First line:
 * `rules maxphyaddr=N revision=0x..`. HC_DONE 0 at the end; the lab judges.
 */
#include "guest.h"
#include "idt.h"
#include "probe.h"
#include "vmx.h"

static struct vmx_pages vmx;
static uint8_t bad_revision[4096] __attribute__((aligned(4096)));
static uint8_t l2_stack[4096] __attribute__((aligned(16)));

static void rule(const char *name, int status) {
    probe_begin("rule");
    probe_word("name", name);
    probe_dec("status", status);
    probe_dec("error", status == 2 ? vmreadz(VM_INSTRUCTION_ERROR) : 0);
    probe_end();
}

static NORETURN void l2_main(void) {
    __asm__ volatile("mov $0x600d, %%rax\n\tvmcall\n\tud2" ::: "rax", "memory");
    __builtin_unreachable();
}

/* VMCLEAR, VMPTRLD and a fresh VMCS for L2 = l2_main. */
static void fresh_vmcs(void) {
    GUEST_ASSERT_EQ(vmx_load_vmcs(&vmx), 0);
    struct vmx_controls c;
    GUEST_ASSERT_EQ(vmx_prepare_vmcs(&vmx, (void *)l2_main, l2_stack + sizeof(l2_stack) - 8, &c), 0);
}

/* VMLAUNCH; prints the rule line with the exit reason when it exited. */
static void launch(const char *name) {
    int st = vmx_launch();
    idt_install();                          /* a VM exit sets the IDTR limit to 0xffff */
    probe_begin("rule");
    probe_word("name", name);
    probe_dec("status", st);
    probe_dec("error", st == 2 ? vmreadz(VM_INSTRUCTION_ERROR) : 0);
    if (st == 0) {
        uint64_t reason = vmreadz(VM_EXIT_REASON);
        probe_hex("exit_reason", reason);
        if (reason == EXIT_REASON_VMCALL) probe_hex("l2_rax", vmx_l2_rax);
    }
    probe_end();
}

int main(void) {
    idt_install();
    struct cpu_id id;
    cpu_identify(&id);
    if (!id.intel || !id.vmx) {
        probe_begin("rules");
        probe_word("skipped", "no-vmx");
        probe_end();
        return 0;
    }
    uint32_t r[4];
    cpuid(0x80000008, 0, r);
    uint64_t maxphy = r[0] & 0xff;
    uint64_t beyond = 1ull << maxphy;       /* the first address past MAXPHYADDR */
    uint32_t rev = vmcs_revision();
    probe_begin("rules");
    probe_dec("maxphyaddr", maxphy);
    probe_hex("revision", rev);
    probe_end();

    idt_step(1, "vmxon-rules");
    vmx_prepare(&vmx);
    uint64_t on = (uintptr_t)vmx.vmxon;
    rule("vmxon-misaligned", vmxon(on + 0x800));
    rule("vmxon-beyond-maxphyaddr", vmxon(beyond));
    *(volatile uint32_t *)vmx.vmxon = rev ^ 1;
    rule("vmxon-bad-revision", vmxon(on));
    *(volatile uint32_t *)vmx.vmxon = rev;
    rule("vmxon", vmxon(on));

    idt_step(2, "vmcs-rules");
    rule("vmcs-load", vmx_load_vmcs(&vmx));  /* a current VMCS: errors are VMfailValid now */
    uint64_t cs = (uintptr_t)vmx.vmcs;
    rule("vmxon-in-root", vmxon(on));
    rule("vmptrld-vmxon-region", vmptrld(on));
    rule("vmclear-vmxon-region", vmclear(on));
    rule("vmptrld-misaligned", vmptrld(cs + 0x800));
    rule("vmptrld-beyond-maxphyaddr", vmptrld(beyond));
    /* The last page below 2^MAXPHYADDR passes the address check; no RAM
     * there, so the revision read is all ones: error 11, not 9. */
    rule("vmptrld-top-page", vmptrld(beyond - 4096));
    rule("vmclear-misaligned", vmclear(cs + 0x800));
    memset(bad_revision, 0, sizeof(bad_revision));
    *(volatile uint32_t *)bad_revision = rev ^ 1;
    rule("vmptrld-bad-revision", vmptrld((uintptr_t)bad_revision));

    idt_step(3, "entry-rules");
    fresh_vmcs();
    GUEST_ASSERT_EQ(vmwrite(CR3_TARGET_COUNT, 5), 0);      /* > 4: a control-field error */
    launch("entry-bad-control");
    fresh_vmcs();
    GUEST_ASSERT_EQ(vmwrite(HOST_CR4, read_cr4() & ~(uint64_t)CR4_VMXE), 0);  /* host CR4 without VMXE */
    launch("entry-bad-host-state");
    fresh_vmcs();
    GUEST_ASSERT_EQ(vmwrite(GUEST_RFLAGS, 0), 0);          /* RFLAGS bit 1 must be 1 */
    launch("entry-bad-guest-state");
    fresh_vmcs();
    launch("entry-good");

    idt_step(4, "vmxoff");
    rule("vmxoff", vmxoff());
    return 0;
}
