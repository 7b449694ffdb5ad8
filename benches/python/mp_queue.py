"""Python multiprocessing.Queue items/s: one producer (this process) puts N small ints,
one consumer process gets them — the anchor for `queue_u64/shmkit/items` in
benches/ring.rs. Prints `python_queue_items_per_s <rate>`.

Run: python3 benches/python/mp_queue.py [N]
"""
import multiprocessing as mp
import sys
import time


def _sink(q, n):
    for _ in range(n):
        q.get()


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    q = mp.Queue()
    p = mp.Process(target=_sink, args=(q, n))
    p.start()
    t0 = time.perf_counter()
    for i in range(n):
        q.put(i)
    p.join()
    print(f"python_queue_items_per_s {n / (time.perf_counter() - t0):.0f}")


if __name__ == "__main__":
    main()
