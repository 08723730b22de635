"""benchtest.py: the runner the benchmark-logic tests share: runs each test
function, prints ok/FAIL with the traceback, and returns the exit status."""
import traceback


def run(tests):
    """0 when every function in tests passed, else 1 (all are run)."""
    failed = 0
    for t in tests:
        try:
            t()
            print(f"ok   {t.__name__}")
        except Exception:  # noqa: BLE001
            failed += 1
            traceback.print_exc()
            print(f"FAIL {t.__name__}")
    return 1 if failed else 0
