print("nested-lab-runner: not written yet")
