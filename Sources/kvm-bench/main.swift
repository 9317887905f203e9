print("kvm-bench: not written yet")
