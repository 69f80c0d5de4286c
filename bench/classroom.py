"""Sizing a class: N simulated students on a real JupyterHub on 127.0.0.1.

Each student is a real Unix user who logs in, starts a server and a forja
kernel, and runs lesson 01's code cells in order with a think time between
cells. Per student: memory (RSS and PSS summed over the user's processes,
peak while the class runs), first-cell time (kernel just started), cell
latency p50/p95 over the other cells, CPU seconds of all the user's
processes. Not part of CI. Needs root, deploy/setup-system.sh,
`pip install -r tests/hub/requirements.txt` and `npm ci --prefix tests/hub`:

    .venv/bin/python bench/classroom.py --students 1 5 10 --think 2
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests/hub"))
import hubclient as hc  # noqa: E402

MiB = 1024 * 1024


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))] if xs else float("nan")


def usage(user: str) -> tuple[int, int, float]:
    """RSS and PSS bytes and CPU seconds (own + waited-for children) of `user`'s processes."""
    rss = pss = 0
    cpu = 0.0
    for pid in hc.user_pids(user):
        try:
            p = psutil.Process(pid)
            m = p.memory_full_info()
            t = p.cpu_times()
            rss += m.rss
            pss += m.pss
            cpu += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            pass
    return rss, pss, cpu


class Student(threading.Thread):
    def __init__(self, hub: hc.Hub, user: str, cells: list[str], think: float, start_at: float):
        super().__init__(daemon=True)
        self.hub, self.user, self.cells, self.think, self.start_at = (
            hub, user, cells, think, start_at)
        self.first = float("nan")
        self.spawn = float("nan")
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.done = threading.Event()
        self.finished_cells = threading.Event()

    def run(self) -> None:
        try:
            time.sleep(max(0.0, self.start_at - time.monotonic()))
            t0 = time.monotonic()
            self.token = self.hub.login(self.user)
            self.hub.start_server(self.user, self.token, timeout=300)
            k = hc.Kernel(self.hub, self.user, self.token)
            self.spawn = time.monotonic() - t0
            for i, code in enumerate(self.cells):
                r = k.execute(code, timeout=300, stop_on_error=False)
                if r["status"] != "ok":
                    self.errors.append(f"cell {i}: {r['error'][:200]}")
                if i == 0:
                    self.first = r["seconds"]
                else:
                    self.latencies.append(r["seconds"])
                if i + 1 < len(self.cells):
                    time.sleep(self.think)
            self.kernel = k
        except Exception as e:  # noqa: BLE001 - reported in the table
            self.errors.append(repr(e))
        finally:
            self.finished_cells.set()


def run_class(n: int, think: float, stagger: float) -> dict:
    cells = hc.lesson_cells()
    tag = os.getpid() % 10000
    users = [f"fjcls{tag}x{i}" for i in range(n)]
    made: list[str] = []
    hub = hc.Hub(Path(tempfile.mkdtemp(prefix="forja-class-")), users)
    peaks = {u: [0, 0] for u in users}
    try:
        for u in users:
            hc.create_user(u)
            made.append(u)
        hub.start()
        t0 = time.monotonic()
        students = [Student(hub, u, cells, think, t0 + i * stagger) for i, u in enumerate(users)]
        for s in students:
            s.start()
        while not all(s.finished_cells.is_set() for s in students):
            for u in users:
                rss, pss, _ = usage(u)
                peaks[u][0] = max(peaks[u][0], rss)
                peaks[u][1] = max(peaks[u][1], pss)
            time.sleep(1.0)
        wall = time.monotonic() - t0
        cpu = {u: usage(u)[2] for u in users}
        load = os.getloadavg()
        for s in students:
            if hasattr(s, "kernel"):
                s.kernel.close()
        lat = [x for s in students for x in s.latencies]
        firsts = [s.first for s in students if s.first == s.first]
        res = {
            "students": n,
            "think_s": think,
            "stagger_s": stagger,
            "cells": len(cells),
            "wall_s": wall,
            "rss_mib_mean": statistics.mean(p[0] for p in peaks.values()) / MiB,
            "rss_mib_max": max(p[0] for p in peaks.values()) / MiB,
            "pss_mib_mean": statistics.mean(p[1] for p in peaks.values()) / MiB,
            "pss_mib_max": max(p[1] for p in peaks.values()) / MiB,
            "spawn_s_p50": pct([s.spawn for s in students], 0.5),
            "first_cell_s_p50": pct(firsts, 0.5),
            "first_cell_s_max": max(firsts) if firsts else float("nan"),
            "cell_s_p50": pct(lat, 0.5),
            "cell_s_p95": pct(lat, 0.95),
            "cpu_s_per_student": statistics.mean(cpu.values()),
            "load_avg_1m_end": load[0],
            "errors": [f"{s.user}: {e}" for s in students for e in s.errors],
        }
        for s in students:
            if getattr(s, "token", None):
                try:
                    hub.stop_server(s.user, s.token)
                except Exception:  # noqa: BLE001 - the hub stop below cleans up
                    pass
        return res
    finally:
        hub.stop()
        for u in made:
            hc.remove_user(u)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--students", type=int, nargs="+", default=[1, 5, 10, 20])
    ap.add_argument("--think", type=float, default=5.0, help="seconds between cells")
    ap.add_argument("--stagger", type=float, default=1.0,
                    help="seconds between two students' arrivals")
    ap.add_argument("--json", type=Path, help="also write the results here")
    a = ap.parse_args()
    if why := hc.missing_prerequisites():
        sys.exit(f"cannot run: {why}")
    print(f"# {datetime.date.today()} {platform.node()}: {os.cpu_count()} CPUs, "
          f"{psutil.virtual_memory().total / 2**30:.0f} GiB, {platform.platform()}")
    print(f"# lesson 01 ({len(hc.lesson_cells())} code cells), think {a.think} s, "
          f"arrivals {a.stagger} s apart")
    rows = []
    print("| N | RSS/student MiB (mean, max) | PSS/student MiB (mean, max) | server+kernel start s | "
          "first cell s (p50, max) | cell p50 s | cell p95 s | CPU s/student | load 1m | errors |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in a.students:
        r = run_class(n, a.think, a.stagger)
        rows.append(r)
        print(f"| {n} | {r['rss_mib_mean']:.0f}, {r['rss_mib_max']:.0f} | "
              f"{r['pss_mib_mean']:.0f}, {r['pss_mib_max']:.0f} | {r['spawn_s_p50']:.1f} | "
              f"{r['first_cell_s_p50']:.2f}, {r['first_cell_s_max']:.2f} | {r['cell_s_p50']:.2f} | "
              f"{r['cell_s_p95']:.2f} | {r['cpu_s_per_student']:.1f} | "
              f"{r['load_avg_1m_end']:.1f} | {len(r['errors'])} |", flush=True)
        for e in r["errors"][:5]:
            print(f"#   {e}")
    if a.json:
        a.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
