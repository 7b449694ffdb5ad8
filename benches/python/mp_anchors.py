"""Python multiprocessing anchors for docs/benchmarks.md, measured on the same machine
as the Rust benches: Queue items/s, Pipe round trip, Process start+join, Pool.map
per-task overhead. Prints one line per figure.

Run: python3 benches/python/mp_anchors.py [--quick]
"""
import multiprocessing as mp
import statistics
import sys
import time

QUICK = "--quick" in sys.argv


def _queue_sink(q, n):
    for _ in range(n):
        q.get()


def queue_items_per_s(n):
    q = mp.Queue()
    p = mp.Process(target=_queue_sink, args=(q, n))
    p.start()
    t0 = time.perf_counter()
    for i in range(n):
        q.put(i)
    p.join()
    return n / (time.perf_counter() - t0)


def _pipe_echo(conn, n):
    for _ in range(n):
        conn.send_bytes(conn.recv_bytes())


def pipe_round_trip_us(n):
    a, b = mp.Pipe()
    p = mp.Process(target=_pipe_echo, args=(b, n))
    p.start()
    msg = b"x" * 8
    for _ in range(100):  # warm-up
        a.send_bytes(msg)
        a.recv_bytes()
    t0 = time.perf_counter()
    for _ in range(n - 100):
        a.send_bytes(msg)
        a.recv_bytes()
    elapsed = time.perf_counter() - t0
    p.join()
    return elapsed / (n - 100) * 1e6


def _noop():
    pass


def process_start_join_ms(n, method):
    ctx = mp.get_context(method)
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        p = ctx.Process(target=_noop)
        p.start()
        p.join()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1e3


def _square(x):
    return x * x


def pool_task_overhead_us(n, chunksize):
    with mp.Pool(2) as pool:
        pool.map(_square, range(1000))  # warm-up: workers started
        t0 = time.perf_counter()
        pool.map(_square, range(n), chunksize=chunksize)
        return (time.perf_counter() - t0) / n * 1e6


if __name__ == "__main__":
    scale = 10 if QUICK else 1
    print(f"python {sys.version.split()[0]}")
    print(f"queue_items_per_s {queue_items_per_s(200_000 // scale):.0f}")
    print(f"pipe_round_trip_us {pipe_round_trip_us(20_000 // scale):.1f}")
    print(f"process_start_join_ms_fork {process_start_join_ms(50 // scale + 5, 'fork'):.2f}")
    print(f"process_start_join_ms_spawn {process_start_join_ms(20 // scale + 3, 'spawn'):.2f}")
    print(f"pool_map_task_us_chunksize1 {pool_task_overhead_us(20_000 // scale, 1):.2f}")
    print(f"pool_map_task_us_default {pool_task_overhead_us(200_000 // scale, None):.3f}")
