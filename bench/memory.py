#!/usr/bin/env python3
"""Memory benchmark: forja-kernel, evcxr_jupyter and ipykernel side by side (issue 21).

For each kernel, in one run, through jupyter_client:
  * the first cell's time, sent as soon as the kernel answers kernel_info
    (forja: `let a = 1;`, forja is preloaded);
  * the five cells verbatim: `let a = 1;`, `fn f(x: u32) -> u32 { x + 1 }`, `f(a)`,
    `let v: Vec<u64> = (0..1000).collect(); v.len()`,
    `use std::collections::HashMap; let mut m = HashMap::new(); m.insert(1, 2); m.len()`
    (ipykernel: the same five in Python), then the sum of RSS and of PSS
    (/proc/PID/smaps_rollup) of the kernel and every process under it (the runner);
  * the trivial cell `a + 1` (median of N; verbatim, `f(a)` does not compile in
    Rust: `a` is an i32) and completion of names from earlier
    cells (`v.le` must offer `len`, `m.ins` must offer `insert`);
  * lesson 01 (notebooks/source/01_procesos.ipynb) top to bottom (not for
    ipykernel; evcxr_jupyter first gets `:dep forja` and forja's prelude),
    and the memory again;
  * forja only: what the kernel wrote to its work dir before its first cell
    (a second kernel, left idle until its warm-up is done);
  * forja only, with --idle S (FORJA_ANALYSIS_IDLE=S given to the kernel): after
    the five cells, a `let` cell, a trivial cell and a Tab with rust-analyzer
    loaded, then the same after it was unloaded (the kernel idle for S
    seconds): their times, and the memory after the unload and after the
    reload.
Not part of CI.

Usage: .venv/bin/python bench/memory.py [--runs N] [--only forja,evcxr,ipykernel]
       [--env VAR=VALUE ...]   (environment for forja-kernel, e.g. FORJA_NO_MEMORY_RELEASE=1)
       [--forja-kernel PATH]   (another forja-kernel binary, e.g. main's)
       [--idle S]              (the idle unload's rows; S >= 10, see above)
evcxr_jupyter is found as in bench/kernel.py (PATH or ~/.cargo/bin; install it with
`cargo install --locked evcxr_jupyter --version 0.22.0`).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kernel import FORJA_KERNEL, ROOT, start, stop, write_spec  # noqa: E402

FIVE = [
    "let a = 1;",
    "fn f(x: u32) -> u32 { x + 1 }",
    "f(a)",
    "let v: Vec<u64> = (0..1000).collect(); v.len()",
    "use std::collections::HashMap; let mut m = HashMap::new(); m.insert(1, 2); m.len()",
]
FIVE_PY = [
    "a = 1",
    "def f(x):\n    return x + 1",
    "f(a)",
    "v = list(range(1000)); len(v)",
    "m = {}; m[1] = 2; len(m)",
]
COMPLETIONS = [("v.le", "len"), ("m.ins", "insert")]
COMPLETIONS_PY = [("v.app", "append"), ("m.ite", "items")]
MiB = 1024 * 1024
LESSON = True
IDLE = None


def children(pid):
    """pid and every process under it, from /proc's parent links."""
    parent = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parent[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(c for c, pp in parent.items() if pp == p)
    return tree


def field(path, name):
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def comm(pid):
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def memory(pid):
    """RSS and PSS (bytes) of pid's tree, and each process's line."""
    procs = []
    for p in children(pid):
        rss = field(f"/proc/{p}/status", "VmRSS")
        pss = field(f"/proc/{p}/smaps_rollup", "Pss")
        anon = field(f"/proc/{p}/status", "RssAnon")
        procs.append((p, comm(p), rss, pss, anon))
    return {"rss": sum(x[2] for x in procs), "pss": sum(x[3] for x in procs), "procs": procs}


def cpu_seconds(pid):
    """User + system CPU seconds used so far by pid's tree (live processes)."""
    total = 0
    for p in children(pid):
        try:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(f[11]) + int(f[12])
        except OSError:
            pass
    return total / os.sysconf("SC_CLK_TCK")


def wait_idle(pid, quiet=1.5, limit=60):
    """Waits until pid's tree has used no CPU for `quiet` seconds."""
    def cpu():
        return cpu_seconds(pid)
    end, last, since = time.monotonic() + limit, cpu(), time.monotonic()
    while time.monotonic() < end:
        time.sleep(0.25)
        now = cpu()
        if now - last > 0.02:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return


def run_cell(kc, code, timeout=300, allow_error=False):
    t = time.perf_counter()
    reply = kc.execute_interactive(code, timeout=timeout, output_hook=lambda m: None)
    dt = time.perf_counter() - t
    if reply["content"]["status"] != "ok" and not allow_error:
        raise RuntimeError(f"cell failed: {code!r}: {reply['content']}")
    return dt


def ok(kc, code):
    reply = kc.execute_interactive(code, timeout=300, output_hook=lambda m: None)
    return reply["content"]["status"] == "ok"


def complete(kc, code):
    msg_id = kc.complete(code, len(code))
    reply = kc.get_shell_msg(timeout=60)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=60)
    return reply["content"].get("matches", [])


def lesson_cells(name):
    nb = nbformat.read(ROOT / "notebooks/source" / name, as_version=4)
    return [c.source for c in nb.cells if c.cell_type == "code"]


def kernel_pid(km):
    return km.provisioner.process.pid


def bench(name, kind, runs):
    km, kc, started = start(name)
    pid = kernel_pid(km)
    out = {"start": started, "at_ready": memory(pid)}
    try:
        five = FIVE_PY if kind == "ipykernel" else FIVE
        out["first"] = run_cell(kc, five[0])
        # Verbatim, so `f(a)` fails to compile (`a` is an i32): that is a cell too.
        out["failed"] = [c for c in five[1:] if not ok(kc, c)]
        wait_idle(pid)
        out["after_five"] = memory(pid)
        trivial = "a + 1"
        out["trivial"] = statistics.median(run_cell(kc, trivial) for _ in range(runs))
        checks = COMPLETIONS_PY if kind == "ipykernel" else COMPLETIONS
        out["completion"] = all(any(m.startswith(want) for m in complete(kc, code))
                                for code, want in checks)
        if kind == "forja" and IDLE:
            idle_rows(kc, pid, out)
        if kind != "ipykernel" and LESSON:
            if kind == "evcxr":
                run_cell(kc, f':dep forja = {{ path = "{ROOT / "forja"}" }}\n'
                             "use forja::prelude::*;")
            t = time.perf_counter()
            for code in lesson_cells("01_procesos.ipynb"):
                run_cell(kc, code, allow_error=True)
            out["lesson01_s"] = time.perf_counter() - t
            wait_idle(pid)
            out["after_lesson01"] = memory(pid)
    finally:
        stop(km, kc)
    return out


def timed_complete(kc, code, want):
    t = time.perf_counter()
    found = any(m.startswith(want) for m in complete(kc, code))
    return time.perf_counter() - t, found


def wait_unloaded(pid, loaded_rss, limit):
    """Waits (up to `limit` s) until the kernel process's RSS fell below half
    of `loaded_rss` (the idle unload), then until its tree is quiet."""
    end = time.monotonic() + limit
    while time.monotonic() < end and field(f"/proc/{pid}/status", "VmRSS") > loaded_rss / 2:
        time.sleep(0.25)
    wait_idle(pid)
    return field(f"/proc/{pid}/status", "VmRSS") <= loaded_rss / 2


def idle_rows(kc, pid, out):
    """forja with FORJA_ANALYSIS_IDLE=IDLE: a `let` cell, a trivial cell and a
    Tab with rust-analyzer loaded, then each after an unload (one unload each:
    the `let` and the Tab reload it). Every request comes well within IDLE of
    the previous one until a wait for the unload."""
    n = [0]

    def let_cell():
        n[0] += 1
        return run_cell(kc, f"let w{n[0]} = v.iter().sum::<u64>();")

    def cpu_of(fn):
        before = cpu_seconds(pid)
        result = fn()
        return result, cpu_seconds(pid) - before
    loaded = {"trivial": run_cell(kc, "a + 1")}
    loaded["let"], loaded["let_cpu"] = cpu_of(let_cell)
    loaded["tab"], _ = timed_complete(kc, "m.ins", "insert")
    out["idle_loaded"] = loaded
    wait_idle(pid)
    kernel_rss = field(f"/proc/{pid}/status", "VmRSS")
    after = {}
    after["unloaded"] = wait_unloaded(pid, kernel_rss, IDLE + 60)
    out["after_unload"] = memory(pid)
    after["trivial"] = run_cell(kc, "a + 1")
    out["after_unload_trivial"] = memory(pid)
    after["let"], after["let_cpu"] = cpu_of(let_cell)
    wait_idle(pid)
    out["after_reload"] = memory(pid)
    wait_unloaded(pid, kernel_rss, IDLE + 60)
    (after["tab"], after["tab_found"]), after["tab_cpu"] = cpu_of(
        lambda: timed_complete(kc, "m.ins", "insert"))
    out["idle_unloaded"] = after


def workdir_written(name, out):
    """forja: bytes in the kernel's work dir (symlinks counted as links) once its
    warm-up is done, before any cell; and its memory then (out["idle_start"])."""
    km, kc, _ = start(name)
    pid = kernel_pid(km)
    try:
        wait_idle(pid, quiet=2.0)
        out["idle_start"] = memory(pid)
        base = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir())
        if not base.is_dir():
            base = Path(tempfile.gettempdir())
        dirs = list(base.glob(f"forja-kernel-{pid}-*"))
        if not dirs:
            return None
        total = subprocess.run(["du", "-sb", "-P", str(dirs[0])], capture_output=True,
                               text=True).stdout.split()[0]
        return int(total)
    finally:
        stop(km, kc)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--only", default="forja,evcxr,ipykernel")
    ap.add_argument("--env", action="append", default=[],
                    help="VAR=VALUE for forja-kernel's environment")
    ap.add_argument("--forja-kernel", default=str(FORJA_KERNEL),
                    help="the forja-kernel binary (default: this checkout's release build)")
    ap.add_argument("--no-lesson", action="store_true", help="only the five cells")
    ap.add_argument("--idle", type=float, default=None,
                    help="forja: FORJA_ANALYSIS_IDLE for the kernel, and the unload's rows")
    args = ap.parse_args()
    global LESSON, IDLE
    LESSON = not args.no_lesson
    IDLE = args.idle
    if IDLE:
        args.env.append(f"FORJA_ANALYSIS_IDLE={IDLE:g}")
    only = args.only.split(",")
    evcxr = shutil.which("evcxr_jupyter") or str(Path.home() / ".cargo/bin/evcxr_jupyter")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        env = [f"{k}" for k in args.env]
        write_spec(base, "mem-forja", ["env", *env, args.forja_kernel,
                                       "--connection-file", "{connection_file}"])
        write_spec(base, "mem-evcxr", [evcxr, "--control_file", "{connection_file}"])
        write_spec(base, "mem-ipykernel", [sys.executable, "-m", "ipykernel_launcher",
                                           "-f", "{connection_file}"])
        os.environ["JUPYTER_PATH"] = str(base)
        if "forja" in only:
            results["forja-kernel"] = bench("mem-forja", "forja", args.runs)
            if LESSON:
                results["forja-kernel"]["written"] = workdir_written("mem-forja", results["forja-kernel"])
        if "evcxr" in only and Path(evcxr).exists():
            results["evcxr_jupyter"] = bench("mem-evcxr", "evcxr", args.runs)
        if "ipykernel" in only:
            results["ipykernel"] = bench("mem-ipykernel", "ipykernel", args.runs)
    report(results, args)


def report(results, args):
    cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],
                         capture_output=True, text=True).stdout.strip()
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(f"\nmachine: {os.cpu_count()} cores, {cpu}; load {' '.join(load)}; "
          f"date: {time.strftime('%Y-%m-%d %H:%M')}; forja env: {args.env or 'default'}")
    names = list(results)
    print("\n| measurement | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))

    def row(label, fn):
        cells = []
        for n in names:
            try:
                cells.append(fn(results[n]))
            except (KeyError, TypeError):
                cells.append("–")
        print(f"| {label} | " + " | ".join(cells) + " |")
    row("kernel start → kernel_info", lambda r: f"{r['start']*1000:.0f} ms")
    row("first cell", lambda r: f"{r['first']*1000:.0f} ms")
    row("RSS at the kernel_info reply", lambda r: f"{r['at_ready']['rss']/MiB:.0f} MiB")
    row("RSS idle after start, no cell yet", lambda r: f"{r['idle_start']['rss']/MiB:.0f} MiB")
    row("RSS after the five cells", lambda r: f"{r['after_five']['rss']/MiB:.0f} MiB")
    row("PSS after the five cells", lambda r: f"{r['after_five']['pss']/MiB:.0f} MiB")
    row("of the five, cells that failed", lambda r: ", ".join(f"`{c}`" for c in r["failed"]) or "none")
    row("trivial cell `a + 1` (median)", lambda r: f"{r['trivial']*1000:.0f} ms")
    row("completion of earlier names", lambda r: "yes" if r["completion"] else "NO")
    row("lesson 01 top to bottom", lambda r: f"{r['lesson01_s']:.1f} s")
    row("RSS after lesson 01", lambda r: f"{r['after_lesson01']['rss']/MiB:.0f} MiB")
    row("PSS after lesson 01", lambda r: f"{r['after_lesson01']['pss']/MiB:.0f} MiB")
    row("work dir before the first cell", lambda r: f"{r['written']/1e6:.1f} MB")
    if IDLE:
        loaded, un = "idle_loaded", "idle_unloaded"
        row(f"RSS after {IDLE:g} s idle (unload)", lambda r: f"{r['after_unload']['rss']/MiB:.0f} MiB"
            + ("" if r[un]["unloaded"] else " (NOT unloaded)"))
        row("PSS after the unload", lambda r: f"{r['after_unload']['pss']/MiB:.0f} MiB")
        row("RSS after the unload and a trivial cell",
            lambda r: f"{r['after_unload_trivial']['rss']/MiB:.0f} MiB")
        row("RSS after the next `let` cell (reload)",
            lambda r: f"{r['after_reload']['rss']/MiB:.0f} MiB")
        for what, label in (("let", "`let` cell"), ("trivial", "trivial cell"), ("tab", "Tab `m.ins`")):
            row(f"{label}: loaded → after an unload",
                lambda r, w=what: f"{r[loaded][w]*1000:.0f} → {r[un][w]*1000:.0f} ms")
        row("Tab after an unload completes `insert`", lambda r: "yes" if r[un]["tab_found"] else "NO")
        row("CPU of the `let` cell: loaded → after an unload",
            lambda r: f"{r[loaded]['let_cpu']:.1f} → {r[un]['let_cpu']:.1f} s")
        row("CPU of the Tab after an unload", lambda r: f"{r[un]['tab_cpu']:.1f} s")
    print()
    for n in names:
        for when in ("at_ready", "idle_start", "after_five", "after_unload",
                     "after_unload_trivial", "after_reload", "after_lesson01"):
            if when in results[n]:
                procs = ", ".join(f"{c} {rss/MiB:.0f}/{pss/MiB:.0f}/{anon/MiB:.0f}"
                                  for _, c, rss, pss, anon in results[n][when]["procs"])
                print(f"{n} {when} (RSS/PSS/anon MiB): {procs}")
    print(json.dumps({n: {k: v for k, v in r.items()
                          if not isinstance(v, dict) or k.startswith("idle_")}
                      for n, r in results.items()}))


if __name__ == "__main__":
    sys.exit(main())
