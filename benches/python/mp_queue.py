"""Python multiprocessing.Queue items/s — the anchors for `queue_u64/*/items` in
benches/ring.rs.

Default: one producer (this process) puts N small ints, one consumer process gets
them (`queue_u64/shmkit`); prints `python_queue_items_per_s <rate>`.
With `--producers P --consumers C`: P producer processes put N/P ints each and C
consumer processes get them (`queue_u64/shmkit_4x4` with 4 and 4); prints
`python_queue_PxC_items_per_s <rate>`.

Run: python3 benches/python/mp_queue.py [N] [--producers P --consumers C]
"""
import argparse
import multiprocessing as mp
import time


def _sink(q, n):
    for _ in range(n):
        q.get()


def _put(q, go, n):
    go.wait()
    for i in range(n):
        q.put(i)


def _take_until_none(q):
    while q.get() is not None:
        pass


def one_to_one(n):
    q = mp.Queue()
    p = mp.Process(target=_sink, args=(q, n))
    p.start()
    t0 = time.perf_counter()
    for i in range(n):
        q.put(i)
    p.join()
    print(f"python_queue_items_per_s {n / (time.perf_counter() - t0):.0f}")


def many_to_many(n, producers, consumers):
    q, go = mp.Queue(), mp.Event()
    takers = [mp.Process(target=_take_until_none, args=(q,)) for _ in range(consumers)]
    for t in takers:
        t.start()
    shares = [n // producers + (k < n % producers) for k in range(producers)]
    putters = [mp.Process(target=_put, args=(q, go, s)) for s in shares]
    for p in putters:
        p.start()
    # Every process is started before the clock starts, as in the Rust bench.
    t0 = time.perf_counter()
    go.set()
    for p in putters:
        p.join()
    for _ in takers:
        q.put(None)
    for t in takers:
        t.join()
    rate = n / (time.perf_counter() - t0)
    print(f"python_queue_{producers}x{consumers}_items_per_s {rate:.0f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=200_000)
    ap.add_argument("--producers", type=int, default=0)
    ap.add_argument("--consumers", type=int, default=1)
    args = ap.parse_args()
    if args.producers:
        many_to_many(args.n, args.producers, args.consumers)
    else:
        one_to_one(args.n)


if __name__ == "__main__":
    main()
