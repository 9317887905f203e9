/* vmx-run.S - int vmx_launch(void), after the KVM selftests' vmlaunch():
 * HOST_RSP = the stack slot below the saved registers, HOST_RIP = label 1,
 * then VMLAUNCH. A VM exit lands at 1 with RSP = HOST_RSP and the GPRs as L2
 * left them: RAX is saved to vmx_l2_rax, the callee-saved registers come back
 * from the stack, and the slot (0) is the result. If VMLAUNCH falls through,
 * it failed: 1 = VMfailInvalid (CF), 2 = VMfailValid (ZF). */
#define HOST_RSP 0x6c14
#define HOST_RIP 0x6c16

        .section .text.vmx_launch, "ax"
        .code64
        .globl vmx_launch
vmx_launch:
        push %rbx
        push %rbp
        push %r12
        push %r13
        push %r14
        push %r15
        pushq $0                        /* result slot */
        mov $HOST_RSP, %rdx
        vmwrite %rsp, %rdx
        lea 1f(%rip), %rax
        mov $HOST_RIP, %rdx
        vmwrite %rax, %rdx
        vmlaunch
        /* Fell through: VMfail. */
        movq $1, (%rsp)
        jc 2f
        movq $2, (%rsp)
        jmp 2f
1:      mov %rax, vmx_l2_rax(%rip)      /* VM exit */
2:      pop %rax
        pop %r15
        pop %r14
        pop %r13
        pop %r12
        pop %rbp
        pop %rbx
        ret

        .section .bss.vmx_l2_rax, "aw", @nobits
        .balign 8
        .globl vmx_l2_rax
vmx_l2_rax:
        .skip 8
