"""Python's multiprocessing.Process start+join, the anchor for the `spawn_join` bench
(benches/process.rs). Prints the median time per start+join of a process running an
empty function, for each start method available.

Run: python3 benches/python/process_start.py [--quick]
"""
import multiprocessing as mp
import statistics
import sys
import time

QUICK = "--quick" in sys.argv


def _noop():
    pass


def start_join_ms(method, n):
    ctx = mp.get_context(method)
    for _ in range(2):  # warm-up (imports, the forkserver itself)
        p = ctx.Process(target=_noop)
        p.start()
        p.join()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        p = ctx.Process(target=_noop)
        p.start()
        p.join()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1e3


if __name__ == "__main__":
    print(f"python {sys.version.split()[0]}")
    for method, n in (("fork", 100), ("spawn", 20), ("forkserver", 50)):
        if method not in mp.get_all_start_methods():
            continue
        n = max(5, n // 10) if QUICK else n
        print(f"process_start_join_ms_{method} {start_join_ms(method, n):.2f} (median of {n})")
