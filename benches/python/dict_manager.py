"""Python's Manager().dict() at the sizes of benches/dict.rs: per-operation cost of
`d[k]` (get) and `d[k] = v` (set, replacing a present key) at 100, 10 000 and
1 000 000 entries, for int -> int and str -> small record (a tuple of id, score,
flags: what the Rust bench's `Item` struct holds). The anchor for the Dict section of
docs/benchmarks.md. Prints one line per figure: `python_dict_<op>/<case>/<entries> <ns>`.

Run: python3 benches/python/dict_manager.py [OPS]   (OPS operations per figure, default 2000)
"""
import multiprocessing as mp
import random
import sys
import time

SIZES = [100, 10_000, 1_000_000]


def skey(i):
    return f"key-{i:08}"


def item(i):
    return (i, i * 0.5, i & 0xFF)


def measure(d, keys, value, ops):
    rng = random.Random(7)
    picks = [keys[rng.randrange(len(keys))] for _ in range(ops)]
    t0 = time.perf_counter()
    for k in picks:
        d[k]
    get = (time.perf_counter() - t0) / ops
    t0 = time.perf_counter()
    for i, k in enumerate(picks):
        d[k] = value(i)
    put = (time.perf_counter() - t0) / ops
    return get, put


def main():
    ops = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    with mp.Manager() as m:
        for n in SIZES:
            for case, key, value in (("int_int", lambda i: i, lambda i: i * 7), ("str_record", skey, item)):
                d = m.dict()
                # Filled in batches: one round trip per batch, not per entry.
                for start in range(0, n, 100_000):
                    d.update({key(i): value(i) for i in range(start, min(n, start + 100_000))})
                keys = [key(i) for i in range(0, n, max(1, n // 100_000))]
                get, put = measure(d, keys, value, ops)
                print(f"python_dict_get/{case}/{n} {get * 1e9:.0f}")
                print(f"python_dict_set/{case}/{n} {put * 1e9:.0f}")
                sys.stdout.flush()
                d.clear()


if __name__ == "__main__":
    main()
