"""CPython side of bench/forja.py: the same workloads as bench/forja_cell.rs with
`multiprocessing` and the fork start method.

    python bench/cpython_bench.py [REPS] [SCALE]

prints one JSON object: workload -> samples (one per timed batch).
"""
import json
import multiprocessing as mp
import sys
import time


def _echo(conn):
    while True:
        x = conn.recv()
        if x is None:
            break
        conn.send(x)


def pipe_rtt(reps, n):
    parent, child = mp.Pipe()
    p = mp.Process(target=_echo, args=(child,))
    p.start()
    child.close()
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        for i in range(n):
            parent.send(i)
            assert parent.recv() == i
        out.append((time.perf_counter() - t) / n * 1e6)
    parent.send(None)
    p.join()
    return out


def _echo_oneway(rx, tx):
    while True:
        x = rx.recv()
        if x is None:
            break
        tx.send(x)


def pipe_oneway_rtt(reps, n):
    from_parent, to_child = mp.Pipe(duplex=False)
    from_child, to_parent = mp.Pipe(duplex=False)
    p = mp.Process(target=_echo_oneway, args=(from_parent, to_parent))
    p.start()
    from_parent.close()
    to_parent.close()
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        for i in range(n):
            to_child.send(i)
            assert from_child.recv() == i
        out.append((time.perf_counter() - t) / n * 1e6)
    to_child.send(None)
    p.join()
    return out


def _produce(q, go, n):
    go.wait()
    for i in range(n):
        q.put(i)


def queue_1to1(reps, n):
    out = []
    for _ in range(reps):
        q = mp.Queue()
        go = mp.Barrier(2)
        p = mp.Process(target=_produce, args=(q, go, n))
        p.start()
        go.wait()
        t = time.perf_counter()
        s = 0
        for _ in range(n):
            s += q.get()
        dt = time.perf_counter() - t
        p.join()
        assert s == n * (n - 1) // 2
        out.append(n / dt)
    return out


def _consume(q, go, n, sums, k):
    go.wait()
    s = 0
    for _ in range(n):
        s += q.get()
    with sums.get_lock():
        sums[k] = s


def queue_4to4(reps, n):
    per = n // 4
    out = []
    for _ in range(reps):
        q = mp.Queue()
        go = mp.Barrier(9)
        sums = mp.Array("q", 4)
        procs = [mp.Process(target=_produce, args=(q, go, per)) for _ in range(4)]
        procs += [mp.Process(target=_consume, args=(q, go, per, sums, k)) for k in range(4)]
        for p in procs:
            p.start()
        go.wait()
        t = time.perf_counter()
        for p in procs:
            p.join()
            assert p.exitcode == 0
        dt = time.perf_counter() - t
        assert sum(sums) == 4 * (per * (per - 1) // 2)
        out.append(4 * per / dt)
    return out


def _increment(v, go, m):
    go.wait()
    for _ in range(m):
        with v.get_lock():
            v.value += 1


def locked_incr(reps, m):
    out = []
    for _ in range(reps):
        v = mp.Value("q", 0)
        go = mp.Barrier(3)
        procs = [mp.Process(target=_increment, args=(v, go, m)) for _ in range(2)]
        for p in procs:
            p.start()
        go.wait()
        t = time.perf_counter()
        for p in procs:
            p.join()
        dt = time.perf_counter() - t
        assert v.value == 2 * m
        out.append(2 * m / dt / 1e6)
    return out


def _noop():
    pass


def process_start_join(reps, n):
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(n):
            p = mp.Process(target=_noop)
            p.start()
            p.join()
        out.append((time.perf_counter() - t) / n * 1e6)
    return out


def inc(x):
    return x + 1


def pool_map(pool, reps, n, chunksize):
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        r = pool.map(inc, range(n), chunksize)
        out.append((time.perf_counter() - t) / n * 1e6)
        assert len(r) == n and r[-1] == n
    return out


def apply_async(pool, reps, n):
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        for i in range(n):
            assert pool.apply_async(inc, (i,)).get() == i + 1
        out.append((time.perf_counter() - t) / n * 1e6)
    return out


def main():
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    scale = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0

    def n(base):
        return max(1, int(base * scale))

    mp.set_start_method("fork")
    res = {
        "pipe_rtt_us": pipe_rtt(reps, n(5_000)),
        "pipe_oneway_rtt_us": pipe_oneway_rtt(reps, n(5_000)),
        "queue_1to1_items_s": queue_1to1(reps, n(20_000)),
        "locked_incr_mps": locked_incr(reps, n(50_000)),
        "process_start_join_us": process_start_join(reps, n(20)),
        "queue_4to4_items_s": queue_4to4(reps, n(20_000)),
    }
    with mp.Pool(2) as pool:
        pool.map(inc, range(1000))  # warm: workers up and ready
        res["pool_map_default_us"] = pool_map(pool, reps, n(250_000), None)
        res["pool_map_cs1_us"] = pool_map(pool, reps, n(5_000), 1)
        res["apply_async_us"] = apply_async(pool, reps, n(2_000))
    print(json.dumps(res))


if __name__ == "__main__":
    main()
