#!/usr/bin/env python3
"""forja benchmark: the same workloads, in one run, in

  (a) CPython `multiprocessing`, fork start method   (bench/cpython_bench.py)
  (b) forja as a release binary                      (bench/forja-bench, which
                                                      includes bench/forja_cell.rs)
  (c) a raw floor in C: bare syscalls and process-shared pthread primitives
                                                     (bench/floor.c)
  (d) forja inside the forja kernel: bench/forja_cell.rs sent as a notebook
      cell through jupyter_client, which prints its samples as JSON

and prints, as a markdown table, the medians, the ratios and PASS/MISS against
the targets of the forja issue, plus the machine and the date. Also measures,
in the kernel only, what a Pool's re-fork costs: a pool made in one cell, then
a map in a later cell (which re-forks the workers) against a map in the same
cell.

Usage (from the repository root, after ./install.sh):

    .venv/bin/python bench/forja.py [--rounds 5] [--reps 5] [--scale 1.0] [--json FILE]

Each round runs (a)-(d) one after the other, each doing REPS timed batches
per workload; medians are over all ROUNDS x REPS batches, so a burst of load
from other jobs touches few of them. Not part of CI. Takes about 2 minutes (plus the first build).
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
CRATE = BENCH / "forja-bench"
FLOOR_SRC = BENCH / "floor.c"
FLOOR_BIN = CRATE / "target" / "floor"
FORJA_BIN = CRATE / "target" / "release" / "forja-bench"
CELL_SRC = BENCH / "forja_cell.rs"
KERNEL_BIN = ROOT / "target" / "release" / "forja-kernel"
KERNEL_SPECS = ROOT / ".venv" / "share" / "jupyter"

MARK = "FORJA_BENCH_JSON "
REFORK_ITEMS = 10_000


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- building

def build():
    if shutil.which("gcc") is None:
        sys.exit("gcc is needed for the raw floor (bench/floor.c)")
    FLOOR_BIN.parent.mkdir(parents=True, exist_ok=True)
    log("building bench/floor.c")
    subprocess.run(["gcc", "-O2", "-Wall", "-pthread", "-o", str(FLOOR_BIN), str(FLOOR_SRC)],
                   check=True)
    log("building bench/forja-bench (cargo build --release)")
    subprocess.run(["cargo", "build", "--release", "--quiet", "--target-dir",
                    str(CRATE / "target")], cwd=CRATE, check=True)
    if not KERNEL_BIN.exists() or not (KERNEL_SPECS / "kernels" / "forja" / "kernel.json").exists():
        sys.exit(f"the forja kernel is not installed ({KERNEL_BIN}, {KERNEL_SPECS}/kernels/forja):"
                 " run ./install.sh --no-lab first")


# ---------------------------------------------------------------- runners

def run_json(argv, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, check=False, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({r.returncode}):\n{r.stderr}")
    return json.loads(r.stdout)


def run_floor(reps, scale):
    return run_json([str(FLOOR_BIN), str(reps), str(scale)])


def run_cpython(reps, scale):
    return run_json([sys.executable, str(BENCH / "cpython_bench.py"), str(reps), str(scale)])


def run_forja_bin(reps, scale):
    return run_json([str(FORJA_BIN), str(reps), str(scale)])


class Kernel:
    """One forja kernel session, driven through jupyter_client."""

    def __init__(self):
        from jupyter_client import KernelManager

        os.environ["JUPYTER_PATH"] = str(KERNEL_SPECS)
        self.tmp = tempfile.TemporaryDirectory(prefix="forja-bench-")
        # Keep the user's kernel history clean.
        os.environ["FORJA_HISTORY_FILE"] = str(Path(self.tmp.name) / "history.jsonl")
        self.km = KernelManager(kernel_name="forja")
        self.km.start_kernel()
        self.kc = self.km.blocking_client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=120)
        self.defined = False

    def run(self, code, timeout=600):
        """Runs a cell; returns its stdout text. Raises if the cell fails."""
        out = []
        errors = []

        def hook(msg):
            t = msg["header"]["msg_type"]
            if t == "stream":
                (out if msg["content"]["name"] == "stdout" else errors).append(
                    msg["content"]["text"])
            elif t == "error":
                errors.append("\n".join(msg["content"].get("traceback", [])))

        reply = self.kc.execute_interactive(code, timeout=timeout, output_hook=hook)
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"kernel cell failed: {reply['content'].get('evalue')}\n"
                               + "".join(errors))
        return "".join(out)

    def marked_json(self, code, mark=MARK):
        text = self.run(code)
        for line in text.splitlines():
            if line.startswith(mark):
                return json.loads(line[len(mark):])
        raise RuntimeError(f"no {mark.strip()} line in the cell's output:\n{text}")

    def bench(self, reps, scale):
        if not self.defined:
            # The workloads' functions, in one cell (compiled once).
            self.run(CELL_SRC.read_text())
            self.defined = True
        return self.marked_json(f'println!("{MARK}{{}}", forja_bench({reps}, {float(scale)!r}));')

    def refork(self, n):
        """A pool made in one cell; a map in that cell, then in the next."""
        same = self.marked_json(f"""
let rf_pool = Pool::new(2).unwrap();
{{
    rf_pool.map(|x: u64| x + 1, 0..1000u64).unwrap(); // warm: workers up and ready
    let starts = rf_pool.worker_starts();
    let t = std::time::Instant::now();
    let r = rf_pool.map(|x: u64| x + 1, 0..{n}u64).unwrap();
    let dt = t.elapsed().as_secs_f64() * 1e3;
    assert_eq!(r.len(), {n});
    println!("{MARK}{{{{\\"same_ms\\": {{dt}}, \\"refork_starts\\": {{}}}}}}",
             rf_pool.worker_starts() - starts);
}}
""")
        later = self.marked_json(f"""
{{
    let starts = rf_pool.worker_starts();
    let t = std::time::Instant::now();
    let r = rf_pool.map(|x: u64| x + 2, 0..{n}u64).unwrap();
    let later = t.elapsed().as_secs_f64() * 1e3;
    assert_eq!(r.len(), {n});
    let refork_starts = rf_pool.worker_starts() - starts;
    let t = std::time::Instant::now();
    rf_pool.map(|x: u64| x + 3, 0..{n}u64).unwrap();
    let again = t.elapsed().as_secs_f64() * 1e3;
    println!("{MARK}{{{{\\"later_ms\\": {{later}}, \\"again_ms\\": {{again}}, \\"refork_starts\\": {{refork_starts}}}}}}");
}}
drop(rf_pool);
""")
        return {"same_ms": same["same_ms"], "same_starts": same["refork_starts"],
                "later_ms": later["later_ms"], "again_ms": later["again_ms"],
                "later_starts": later["refork_starts"]}

    def close(self):
        try:
            self.kc.stop_channels()
            self.km.shutdown_kernel(now=False)
        finally:
            self.tmp.cleanup()


# ---------------------------------------------------------------- report

def med(samples):
    return statistics.median(samples) if samples else None


def fmt(x, unit):
    if x is None:
        return "–"
    if unit == "items/s":
        return f"{x / 1e6:.2f} M/s" if x >= 1e6 else f"{x / 1e3:.0f} k/s"
    if unit == "M/s":
        return f"{x:.2f} M/s" if x < 10 else f"{x:.1f} M/s"
    if unit == "µs":
        if x >= 1000:
            return f"{x / 1000:.2f} ms"
        return f"{x:.3f} µs" if x < 1 else (f"{x:.2f} µs" if x < 10 else f"{x:.1f} µs")
    return f"{x:.3g}"


# (key, label, unit, higher_is_better, target kind, target factor)
#   kind "floor_x":   forja time <= factor x floor
#   kind "floor_frac": forja rate >= factor x floor
#   kind "cpy_x":     forja at least factor x better than CPython
#   kind "fork_x":    forja time <= factor x bare fork+waitpid from the same process
ROWS = [
    ("pipe_rtt_us", "Pipe round trip, small message: duplex `Pipe` (a socket pair)", "µs", False,
     "floor_x", 1.5),
    ("pipe_oneway_rtt_us", "Pipe round trip, small message: two one-way pipes (`Pipe::one_way`, `Pipe(duplex=False)`)", "µs", False,
     "floor_x", 1.5),
    ("queue_1to1_items_s", "Queue 1 producer → 1 consumer, small items", "items/s", True,
     "cpy_x", 20),
    ("locked_incr_mps", "Locked increments of a shared counter, 2 processes", "M/s", True,
     "floor_frac", 0.5),
    ("process_start_join_us", "Process start + join", "µs", False, "fork_x", 2),
    ("queue_4to4_items_s", "Queue 4 producers → 4 consumers", "items/s", True, "cpy_x", 5),
    ("pool_map_default_us", "Pool.map per task, default chunksize", "µs", False, "cpy_x", 5),
    ("pool_map_cs1_us", "Pool.map per task, chunksize 1", "µs", False, "cpy_x", 5),
    ("apply_async_us", "apply_async + get round trip", "µs", False, "cpy_x", 5),
]
FLOOR_KEY = {"pipe_rtt_us": "pipe_rtt_us", "pipe_oneway_rtt_us": "pipe_rtt_us", "locked_incr_mps": "locked_incr_mps",
             "process_start_join_us": "fork_wait_us"}


def verdict(kind, factor, higher, forja, cpy, floor, same_fork, socketpair=None):
    """(ratio text, passed) for one forja figure."""
    if forja is None:
        return "–", None
    if kind == "floor_x":
        r = forja / floor
        extra = f" ({forja / socketpair:.2f}x socket-pair floor)" if socketpair else ""
        return f"{r:.2f}x floor{extra}", r <= factor
    if kind == "floor_frac":
        r = forja / floor
        return f"{r:.2f}x floor", r >= factor
    if kind == "fork_x":
        r = forja / same_fork
        return f"{r:.2f}x bare fork", r <= factor
    r = forja / cpy if higher else cpy / forja
    return f"{r:.1f}x CPython", r >= factor


def target_text(kind, factor):
    return {"floor_x": f"≤ {factor}x raw pipe floor",
            "floor_frac": f"≥ {factor}x raw floor",
            "fork_x": f"≤ {factor}x bare fork + waitpid, same process",
            "cpy_x": f"≥ {factor}x CPython"}[kind]


def machine():
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    return {"cores": os.cpu_count(), "cpu": cpu, "date": time.strftime("%Y-%m-%d"),
            "os": f"{platform.system()} {platform.release()}",
            "python": platform.python_version(), "rustc": rustc}


def report(res, refork, m, args, load, elapsed):
    cpy, fbin, fker, floor = res["cpython"], res["binary"], res["kernel"], res["floor"]
    print(f"Machine: {m['cores']} cores, {m['cpu']}; {m['os']}; {m['rustc']}; "
          f"CPython {m['python']}. Date: {m['date']}. Load average at start: {load}.")
    print(f"Medians of {args.rounds} rounds x {args.reps} batches per workload "
          f"(scale {args.scale}); whole run {elapsed:.0f} s. "
          f"Command: `.venv/bin/python bench/forja.py`.\n")
    print("| workload | CPython (fork) | forja binary | forja in kernel | raw floor (C) "
          "| target | binary | kernel |")
    print("|---|---|---|---|---|---|---|---|")
    for key, label, unit, higher, kind, factor in ROWS:
        c = med(cpy.get(key, []))
        b = med(fbin.get(key, []))
        k = med(fker.get(key, []))
        fl = med(floor.get(FLOOR_KEY.get(key, ""), []))
        cells = []
        for forja, src in ((b, fbin), (k, fker)):
            same_fork = med(src.get("bare_fork_wait_us", []))
            sp = med(floor.get("socketpair_rtt_us", [])) if key == "pipe_rtt_us" else None
            text, ok = verdict(kind, factor, higher, forja, c, fl, same_fork, sp)
            cells.append("–" if ok is None else f"**{'PASS' if ok else 'MISS'}** {text}")
        print(f"| {label} | {fmt(c, unit)} | {fmt(b, unit)} | {fmt(k, unit)} | "
              f"{fmt(fl, unit) if fl is not None else 'n/a'} | {target_text(kind, factor)} | "
              f"{cells[0]} | {cells[1]} |")
    # Reference rows (no target of their own).
    print(f"| (reference) bare fork + waitpid, same process | – | "
          f"{fmt(med(fbin.get('bare_fork_wait_us', [])), 'µs')} | "
          f"{fmt(med(fker.get('bare_fork_wait_us', [])), 'µs')} | "
          f"{fmt(med(floor.get('fork_wait_us', [])), 'µs')} | – | – | – |")
    print(f"| (reference) raw socket-pair round trip (a duplex Pipe is one) | – | – | – | "
          f"{fmt(med(floor.get('socketpair_rtt_us', [])), 'µs')} | – | – | – |")

    if refork:
        same = med([r["same_ms"] for r in refork])
        later = med([r["later_ms"] for r in refork])
        again = med([r["again_ms"] for r in refork])
        starts = sorted({r["later_starts"] for r in refork})
        same_starts = sorted({r["same_starts"] for r in refork})
        print(f"\nPool re-fork in the kernel (Pool::new(2); map of {REFORK_ITEMS:,} items of "
              f"`|x: u64| x + k`; median of {len(refork)} pool/cell pairs):\n")
        print("| map | time | workers forked during the map |")
        print("|---|---|---|")
        print(f"| in the cell that made the pool | {same:.2f} ms | "
              f"{'/'.join(map(str, same_starts))} |")
        print(f"| first map in a later cell (re-forks the workers) | {later:.2f} ms | "
              f"{'/'.join(map(str, starts))} |")
        print(f"| second map in that later cell | {again:.2f} ms | 0 |")
        print(f"| **re-fork cost** (later − same) | **{later - same:.2f} ms** | |")
    print("\nNotes. Small message = one u64 (CPython: an int). Raw floors: pipe = 8-byte "
          "ping-pong over two OS pipes, the floor of both Pipe rows (a duplex Pipe, in CPython "
          "as in forja, is a Unix socket pair, whose own raw floor is the reference row); "
          "locked increments = a process-shared (non-robust) pthread mutex; Process start + "
          "join is held to a bare fork + _exit + waitpid from the same process (the binary, "
          "or the kernel's runner), since fork costs grow with the forking process's size. "
          "Pools have 2 workers; tasks are `x + 1`. Throughputs: higher is better; times: "
          "lower is better.")


def main():
    ap = argparse.ArgumentParser(
        description="Runs the same workloads in CPython multiprocessing (fork), forja (release "
                    "binary and inside the forja kernel) and a raw C floor; prints medians, "
                    "ratios and PASS/MISS against the targets as a markdown table.")
    ap.add_argument("--rounds", type=int, default=5,
                    help="times (a)-(d) each run, one after the other (default 5)")
    ap.add_argument("--reps", type=int, default=5, help="timed batches per workload per round (default 5)")
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies the batch sizes")
    ap.add_argument("--refork", type=int, default=5, help="pool/cell pairs for the re-fork cost")
    ap.add_argument("--no-kernel", action="store_true", help="skip (d) and the re-fork cost")
    ap.add_argument("--json", type=Path, help="also write every sample to this file")
    args = ap.parse_args()

    t0 = time.perf_counter()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    m = machine()
    build()
    res = {"floor": {}, "cpython": {}, "binary": {}, "kernel": {}}

    def merge(side, got):
        for k, v in got.items():
            res[side].setdefault(k, []).extend(v)

    kernel = None
    refork = []
    try:
        if not args.no_kernel:
            log("starting the forja kernel")
            kernel = Kernel()
        for r in range(1, args.rounds + 1):
            log(f"round {r}/{args.rounds}: raw floor (C)")
            merge("floor", run_floor(args.reps, args.scale))
            log(f"round {r}/{args.rounds}: CPython multiprocessing")
            merge("cpython", run_cpython(args.reps, args.scale))
            log(f"round {r}/{args.rounds}: forja binary")
            merge("binary", run_forja_bin(args.reps, args.scale))
            if kernel:
                log(f"round {r}/{args.rounds}: forja in the kernel")
                merge("kernel", kernel.bench(args.reps, args.scale))
        if kernel:
            for i in range(args.refork):
                log(f"pool re-fork in the kernel {i + 1}/{args.refork}")
                refork.append(kernel.refork(REFORK_ITEMS))
    finally:
        if kernel:
            kernel.close()
    if args.json:
        args.json.write_text(json.dumps({"machine": m, "samples": res, "refork": refork},
                                        indent=1))
    report(res, refork, m, args, load, time.perf_counter() - t0)


if __name__ == "__main__":
    main()
