/* svm-run.S - void svm_vmrun(uint64_t vmcb_pa): VMLOAD, VMRUN, VMSAVE, as
 * the KVM selftests' run_guest. #VMEXIT restores RAX, RSP and RIP from the
 * host save area but leaves the other GPRs as L2 had them, so the
 * callee-saved ones are kept on the stack around VMRUN. Interrupts stay off
 * (no CLGI/STGI, like the selftests). */
        .section .text.svm_vmrun, "ax"
        .code64
        .globl svm_vmrun
svm_vmrun:
        push %rbx
        push %rbp
        push %r12
        push %r13
        push %r14
        push %r15
        mov %rdi, %rax
        vmload %rax
        vmrun %rax
        vmsave %rax
        pop %r15
        pop %r14
        pop %r13
        pop %r12
        pop %rbp
        pop %rbx
        ret
