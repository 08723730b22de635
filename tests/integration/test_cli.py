from harness import run
run([])
