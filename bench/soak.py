#!/usr/bin/env python3
"""Soak: one forja kernel runs lessons 00–05 (notebooks/source) top to bottom,
several passes in a row, and after each pass reports the runner's memory
(RSS, PSS, anonymous), its open file descriptors and mapped cell libraries,
the kernel's memory and the session's disk use (issue 21). evcxr loads each
cell as a library and never unloads it, so this is where growth would show.
Not part of CI.

With --fresh, `:fresh` runs after each pass (a new runner that keeps the
functions and types and drops the old cell libraries) and the measures are
taken again: the bound a student gets with one command.

Usage: .venv/bin/python bench/soak.py [--passes 5] [--fresh] [--env VAR=VALUE ...]
"""
import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kernel import FORJA_KERNEL, ROOT, write_spec  # noqa: E402
from memory import MiB, children, comm, field, lesson_cells, run_cell, start, stop, wait_idle  # noqa: E402

LESSONS = ["00_fundamentos.ipynb", "01_procesos.ipynb", "02_pipe_y_queue.ipynb",
           "03_lock.ipynb", "04_pool.ipynb", "05_memoria_compartida.ipynb"]


def runner_of(kernel):
    """The runner: the kernel's child that is forja-kernel too."""
    for p in children(kernel)[1:]:
        if comm(p).startswith("forja-kernel"):
            try:
                if int(Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[1]) == kernel:
                    return p
            except OSError:
                pass
    return None


def cell_libraries(pid):
    libs = set()
    try:
        for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 6 and "/evcxr/target/" in parts[5] and parts[5].endswith(".so"):
                libs.add(parts[5])
    except OSError:
        pass
    return len(libs)


def du(path):
    out = subprocess.run(["du", "-sb", "-P", str(path)], capture_output=True, text=True).stdout
    return int(out.split()[0]) if out else 0


def measure(kernel, workdir):
    r = runner_of(kernel)
    row = {"kernel_rss": field(f"/proc/{kernel}/status", "VmRSS"),
           "kernel_pss": field(f"/proc/{kernel}/smaps_rollup", "Pss"),
           "disk": du(workdir) if workdir else 0}
    if r:
        row.update(runner=r,
                   runner_rss=field(f"/proc/{r}/status", "VmRSS"),
                   runner_pss=field(f"/proc/{r}/smaps_rollup", "Pss"),
                   runner_anon=field(f"/proc/{r}/status", "RssAnon"),
                   fds=len(os.listdir(f"/proc/{r}/fd")),
                   libs=cell_libraries(r),
                   threads=int(field(f"/proc/{r}/status", "Threads") / 1024))
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--passes", type=int, default=5)
    ap.add_argument("--env", action="append", default=[])
    ap.add_argument("--fresh", action="store_true", help="run :fresh after each pass")
    args = ap.parse_args()

    def stop(*_):
        raise KeyboardInterrupt
    # A `timeout` still shuts the kernel down and prints the passes done.
    signal.signal(signal.SIGTERM, stop)
    with tempfile.TemporaryDirectory() as tmp:
        write_spec(Path(tmp), "soak-forja", ["env", *args.env, str(FORJA_KERNEL),
                                             "--connection-file", "{connection_file}"])
        os.environ["JUPYTER_PATH"] = tmp
        km, kc, _ = start("soak-forja")
        kernel = km.provisioner.process.pid
        base = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir())
        work = next(iter(base.glob(f"forja-kernel-{kernel}-*")), None)
        rows = []
        try:
            soak(kc, kernel, work, rows, args.passes, args.fresh)
        except KeyboardInterrupt:
            print("stopped: the table has the passes done", flush=True)
        finally:
            stop(km, kc)
    table(rows, args)


def soak(kc, kernel, work, rows, passes, fresh=False):
    """Runs the passes, appending (name, seconds, failed cells, measures) to rows."""
    run_cell(kc, "1 + 1")
    wait_idle(kernel)
    rows.append(("start", 0.0, 0, measure(kernel, work)))
    print(f"start: {rows[-1][3]}", flush=True)
    for n in range(1, passes + 1):
        t, failed = time.perf_counter(), 0
        for lesson in LESSONS:
            for code in lesson_cells(lesson):
                try:
                    run_cell(kc, code, timeout=600, allow_error=False)
                except RuntimeError:
                    failed += 1
        wait_idle(kernel)
        rows.append((f"pass {n}", time.perf_counter() - t, failed, measure(kernel, work)))
        print(f"pass {n}: {rows[-1][1]:.0f} s, {failed} cells failed "
              f"(some demos fail on purpose), {rows[-1][3]}", flush=True)
        if fresh:
            t = time.perf_counter()
            run_cell(kc, ":fresh", timeout=600, allow_error=False)
            wait_idle(kernel)
            rows.append((f"pass {n} + :fresh", time.perf_counter() - t, 0, measure(kernel, work)))
            print(f":fresh: {rows[-1][1]:.1f} s, {rows[-1][3]}", flush=True)


def table(rows, args):
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"\n{time.strftime('%Y-%m-%d %H:%M')}, load {load}, forja env: {args.env or 'default'}\n")
    print("| after | time | failed cells | runner RSS | runner PSS | runner anon | runner fds "
          "| cell libraries mapped | kernel RSS | session disk |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, secs, failed, m in rows:
        print(f"| {name} | {secs:.0f} s | {failed} | {m.get('runner_rss', 0)/MiB:.0f} MiB "
              f"| {m.get('runner_pss', 0)/MiB:.0f} MiB | {m.get('runner_anon', 0)/MiB:.0f} MiB "
              f"| {m.get('fds', '?')} | {m.get('libs', '?')} | {m['kernel_rss']/MiB:.0f} MiB "
              f"| {m['disk']/1e6:.1f} MB |")


if __name__ == "__main__":
    sys.exit(main())
