#!/usr/bin/env python3
"""Kernel benchmark: forja-kernel side by side with evcxr_jupyter, through jupyter_client.

Measures, for each kernel, in one run:
  * start: process start to the first kernel_info reply;
  * first cell: the first cell (forja: `use forja::prelude::*` is preloaded, so this is
    the first forja cell; evcxr_jupyter: `:dep forja = { path = ... }` + a forja call);
  * trivial cell: `a + 1` (median of N);
  * fn cell: a cell defining a function (median of N);
  * late in a session (--late): one kernel runs every code cell of the
    instructor lessons 00-05 in order, twice; the trivial cell before and after
    each lesson of the first pass (median of 7), each pass's total time, and
    the trivial cell with 200 live forja handles against 200 u64 variables.
Prints medians and the forja/evcxr ratio. Not part of CI.

Usage: .venv/bin/python bench/kernel.py [--runs N] [--late]
       .venv/bin/python bench/kernel.py --against OLD_FORJA_KERNEL [--rounds R] [--runs N]
       .venv/bin/python bench/kernel.py --late --against OTHER --paired
       .venv/bin/python bench/kernel.py --late --paired --other-env KEY=VALUE
       .venv/bin/python bench/kernel.py --late --against-fresh
The second form compares this checkout's kernel with another forja-kernel
binary (e.g. one built from an earlier commit, with its own FORJA_CRATE_DIR
etc. already baked in), kernels started in turns, R rounds; medians over rounds.
The third runs the lessons in both kernels kept alive side by side and
alternates the trivial cells between them after each lesson (paired: the
VM's noise of ~±20 % between whole runs hits both columns alike).
Needs `cargo install --locked evcxr_jupyter --version 0.22.0` for the comparison.
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

from jupyter_client import KernelManager

ROOT = Path(__file__).resolve().parent.parent
FORJA_KERNEL = ROOT / "target/release/forja-kernel"


def write_spec(base: Path, name: str, argv, env=None):
    d = base / "kernels" / name
    d.mkdir(parents=True, exist_ok=True)
    spec = {"argv": argv, "display_name": name, "language": "rust", "interrupt_mode": "message"}
    if env:
        spec["env"] = env
    (d / "kernel.json").write_text(json.dumps(spec))


def run_cell(kc, code, timeout=300):
    t = time.perf_counter()
    reply = kc.execute_interactive(code, timeout=timeout, output_hook=lambda m: None)
    dt = time.perf_counter() - t
    if reply["content"]["status"] != "ok":
        raise RuntimeError(f"cell failed: {code!r}: {reply['content']}")
    return dt


def start(name):
    """Starts kernelspec `name` and waits until it answers: (manager,
    client, seconds from start to kernel_info reply)."""
    km = KernelManager(kernel_name=name)
    t0 = time.perf_counter()
    km.start_kernel()
    kc = km.blocking_client()
    kc.start_channels()
    kc.wait_for_ready(timeout=120)
    return km, kc, time.perf_counter() - t0


def stop(km, kc):
    """Closes the client's channels and shuts down what `start` started."""
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def bench_kernel(name, first_cell, runs):
    km, kc, started = start(name)
    try:
        first = run_cell(kc, first_cell)
        run_cell(kc, "let a = 1;")
        trivial = [run_cell(kc, "a + 1") for _ in range(runs)]
        fns = [run_cell(kc, f"fn f{i}(x: i32) -> i32 {{ x * {i} + 1 }}") for i in range(runs)]
    finally:
        stop(km, kc)
    return {"start": started, "first": first,
            "trivial": statistics.median(trivial), "fn": statistics.median(fns)}


LESSONS = sorted((ROOT / "notebooks" / "source").glob("0[0-5]_*.ipynb"))
TRIVIAL = "late_x + 1"


def lesson_cells(path: Path):
    nb = json.loads(path.read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def trivial(kc, n=7):
    """Median of `n` trivial cells: the first after other cells recompiles
    more (rustc's incremental cache), and a 2-core VM's noise is ~±20 %."""
    return statistics.median(run_cell(kc, TRIVIAL) for _ in range(n))


def late_session(name, setup=None):
    """The trivial cell fresh, after each lesson (first pass), both passes'
    times, and the cost of 200 live handles. Cells that fail (evcxr_jupyter
    cannot run kernel-only cells) are counted, not fatal."""
    km, kc, _ = start(name)
    failed = 0

    def cell(code):
        nonlocal failed
        try:
            return run_cell(kc, code)
        except RuntimeError as e:
            failed += 1
            first = code.strip().splitlines()[0] if code.strip() else ""
            print(f"[{name}] cell failed: {first[:70]!r}: {str(e)[-200:]}", file=sys.stderr)
            return 0.0

    out = {}
    try:
        if setup:
            cell(setup)
        run_cell(kc, "let late_x = 1u64;")
        out["fresh"] = trivial(kc)
        passes = []
        for p in range(2):
            total = 0.0
            for lesson in LESSONS:
                for code in lesson_cells(lesson):
                    total += cell(code)
                if p == 0:
                    out[f"after {lesson.name[:2]}"] = trivial(kc)
            passes.append(total)
        out["pass 1"], out["pass 2"] = passes
        out["after both passes"] = trivial(kc)
        many = "\n".join(f"let late_h{i} = forja::Queue::<u64>::new().unwrap();" for i in range(200))
        run_cell(kc, many)
        out["+200 Queue handles"] = trivial(kc)
        run_cell(kc, "\n".join(f"let late_u{i} = {i}u64;" for i in range(200)))
        out["+200 u64 variables"] = trivial(kc)
        out["failed cells"] = failed
    finally:
        stop(km, kc)
    return out


def print_late(results):
    names = list(results)
    print("| late in a session | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for key in results[names[0]]:
        cells = []
        for n in names:
            v = results[n].get(key)
            if v is None:
                cells.append("-")
            elif key == "failed cells":
                cells.append(str(v))
            elif key.startswith("pass"):
                cells.append(f"{v:.1f} s")
            else:
                cells.append(f"{v*1000:.0f} ms ({v / results[n]['fresh']:.2f}x fresh)")
        print(f"| {key} | " + " | ".join(cells) + " |")


def compare(old: str, rounds: int, runs: int):
    """This checkout's kernel against another forja-kernel binary, interleaved."""
    keys = ["start", "first", "trivial", "fn"]
    got = {"new": {k: [] for k in keys}, "old": {k: [] for k in keys}}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        write_spec(base, "bench-new", [str(FORJA_KERNEL), "--connection-file", "{connection_file}"])
        write_spec(base, "bench-old", [old, "--connection-file", "{connection_file}"])
        os.environ["JUPYTER_PATH"] = str(base)
        for r in range(rounds):
            order = ["new", "old"] if r % 2 == 0 else ["old", "new"]
            for which in order:
                res = bench_kernel(f"bench-{which}", "let _p = forja::cpu_count();", runs)
                for k in keys:
                    got[which][k].append(res[k])
                print(f"round {r + 1} {which}: " + ", ".join(
                    f"{k} {res[k]*1000:.0f} ms" for k in keys), flush=True)
    print(f"\nrounds: {rounds}, runs per round: {runs}; medians over rounds\n")
    print("| measurement | this kernel | other kernel | ratio |")
    print("|---|---|---|---|")
    for k in keys:
        n, o = statistics.median(got["new"][k]), statistics.median(got["old"][k])
        print(f"| {k} | {n*1000:.0f} ms | {o*1000:.0f} ms | {n/o:.2f}x |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--against", help="another forja-kernel binary to compare with")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--late", action="store_true", help="only the late-in-a-session rows")
    ap.add_argument("--paired", action="store_true",
                    help="with --late --against: both kernels alive at once, trivial cells alternating")
    ap.add_argument("--against-fresh", action="store_true",
                    help="with --late: a kernel after lessons 00-05 against a fresh one, alternating")
    ap.add_argument("--other-env", action="append", default=[], metavar="KEY=VALUE",
                    help="with --late --paired: the other kernel is this one with KEY=VALUE set "
                         "(e.g. EVCXR_COMPILE_ALL_ITEMS=1)")
    ap.add_argument("--columns", default="forja,all,evcxr",
                    help="late rows: which kernels (forja, all = every variable loaded, evcxr)")
    args = ap.parse_args()
    if args.late and args.against_fresh:
        return late_vs_fresh()
    if args.late and args.paired:
        if not args.against and not args.other_env:
            ap.error("--paired needs --against OTHER_FORJA_KERNEL or --other-env KEY=VALUE")
        env = dict(kv.split("=", 1) for kv in args.other_env) or None
        return late_paired(args.against, env)
    if args.late:
        return late_main(args.against, set(args.columns.split(",")))
    if args.against:
        return compare(args.against, args.rounds, args.runs)
    evcxr = shutil.which("evcxr_jupyter") or str(Path.home() / ".cargo/bin/evcxr_jupyter")
    have_evcxr = Path(evcxr).exists()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        write_spec(base, "bench-forja", [str(FORJA_KERNEL), "--connection-file", "{connection_file}"])
        if have_evcxr:
            write_spec(base, "bench-evcxr", [evcxr, "--control_file", "{connection_file}"])
        os.environ["JUPYTER_PATH"] = str(base)
        forja_dir = ROOT / "forja"
        results = {"forja-kernel": bench_kernel(
            "bench-forja", "let _p = forja::cpu_count();", args.runs)}
        if have_evcxr:
            results["evcxr_jupyter"] = bench_kernel(
                "bench-evcxr",
                f':dep forja = {{ path = "{forja_dir}" }}\nlet _p = forja::cpu_count();',
                args.runs)
    cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],
                         capture_output=True, text=True).stdout.strip()
    print(f"\nmachine: {os.cpu_count()} cores, {cpu}; date: {time.strftime('%Y-%m-%d')}")
    print(f"runs per median: {args.runs}\n")
    rows = [("kernel start → kernel_info reply", "start"),
            ("first forja cell (evcxr: :dep + use)", "first"),
            ("trivial cell `a + 1` (median)", "trivial"),
            ("cell defining a fn (median)", "fn")]
    print("| measurement | forja-kernel | evcxr_jupyter | ratio |")
    print("|---|---|---|---|")
    for label, key in rows:
        f = results["forja-kernel"][key]
        if "evcxr_jupyter" in results:
            e = results["evcxr_jupyter"][key]
            print(f"| {label} | {f*1000:.0f} ms | {e*1000:.0f} ms | {f/e:.2f}x |")
        else:
            print(f"| {label} | {f*1000:.0f} ms | (not installed) | - |")


def late_paired(other, other_env=None, reps=11):
    """This kernel and `other` (another forja-kernel binary, or this one
    with `other_env` in its environment) alive at once:
    each lesson runs in one kernel and then the other, then `reps` trivial
    cells alternate between them (medians of all but the first). Both see
    the same moment's noise, which a whole `--late` run apiece does not."""
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        specs = {"this": FORJA_KERNEL, "other": other or FORJA_KERNEL}
        for name, binary in specs.items():
            write_spec(base, f"paired-{name}", [str(binary), "--connection-file", "{connection_file}"],
                       other_env if name == "other" else None)
        os.environ["JUPYTER_PATH"] = str(base)
        kernels = {name: start(f"paired-{name}") for name in specs}
        failed = dict.fromkeys(specs, 0)

        def cell(name, code):
            try:
                return run_cell(kernels[name][1], code)
            except RuntimeError:
                failed[name] += 1
                return None

        rows = {}

        def trivial_pair(label):
            times = {name: [] for name in specs}
            for i in range(reps):
                for name in (list(specs) if i % 2 == 0 else list(specs)[::-1]):
                    times[name].append(cell(name, TRIVIAL))
            rows[label] = {name: statistics.median(t[1:]) for name, t in times.items()}

        try:
            for name in specs:
                cell(name, "let late_x = 1u64;")
            trivial_pair("fresh")
            for lesson in LESSONS:
                for name in specs:
                    for code in lesson_cells(lesson):
                        cell(name, code)
                trivial_pair(f"after {lesson.name[:2]}")
        finally:
            for km, kc, _ in kernels.values():
                stop(km, kc)
    print(f"\nmachine: {os.cpu_count()} cores; paired: {reps} trivial cells alternating\n")
    print("| trivial cell | this kernel | other kernel | this / other |")
    print("|---|---|---|---|")
    for label, r in rows.items():
        this, oth = r["this"], r["other"]
        print(f"| {label} | {this*1000:.0f} ms ({this / rows['fresh']['this']:.2f}x) "
              f"| {oth*1000:.0f} ms ({oth / rows['fresh']['other']:.2f}x) | {this / oth:.2f}x |")
    print(f"| failed cells | {failed['this']} | {failed['other']} | |")


def late_vs_fresh(reps=21):
    """One kernel runs lessons 00-05; then a second, fresh one starts, and
    `reps` trivial cells alternate between the two (medians of all but the
    first): the growth a session brings, measured at one moment."""
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        write_spec(base, "bench-forja", [str(FORJA_KERNEL), "--connection-file", "{connection_file}"])
        os.environ["JUPYTER_PATH"] = str(base)
        kernels = {"after 00-05": start("bench-forja")}
        failed = 0
        try:
            kc = kernels["after 00-05"][1]
            run_cell(kc, "let late_x = 1u64;")
            for lesson in LESSONS:
                for code in lesson_cells(lesson):
                    try:
                        run_cell(kc, code)
                    except RuntimeError:
                        failed += 1
            kernels["fresh"] = start("bench-forja")
            run_cell(kernels["fresh"][1], "let late_x = 1u64;")
            times = {name: [] for name in kernels}
            for i in range(reps):
                for name in (list(kernels) if i % 2 == 0 else list(kernels)[::-1]):
                    times[name].append(run_cell(kernels[name][1], TRIVIAL))
        finally:
            for km, kc, _ in kernels.values():
                stop(km, kc)
    med = {name: statistics.median(t[1:]) for name, t in times.items()}
    print(f"\nmachine: {os.cpu_count()} cores; {reps} trivial cells alternating; "
          f"{failed} lesson cells failed\n")
    print("| trivial cell | fresh kernel | after lessons 00-05 | ratio |")
    print("|---|---|---|---|")
    print(f"| median | {med['fresh']*1000:.0f} ms | {med['after 00-05']*1000:.0f} ms "
          f"| {med['after 00-05'] / med['fresh']:.2f}x |")


def late_main(against, columns=frozenset({"forja", "all", "evcxr"})):
    """Late-in-a-session rows: this kernel, and evcxr_jupyter (or, with
    --against, another forja-kernel binary) on the same sequence."""
    evcxr = shutil.which("evcxr_jupyter") or str(Path.home() / ".cargo/bin/evcxr_jupyter")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        write_spec(base, "bench-forja", [str(FORJA_KERNEL), "--connection-file", "{connection_file}"])
        os.environ["JUPYTER_PATH"] = str(base)
        results = {}
        if "forja" in columns:
            results["forja-kernel"] = late_session("bench-forja")
        # The same binary loading every variable in every cell, as evcxr
        # does upstream (what forja did before evcxr patch 0014).
        write_spec(base, "bench-all", [str(FORJA_KERNEL), "--connection-file", "{connection_file}"],
                   {"EVCXR_LOAD_ALL_VARIABLES": "1"})
        if "all" in columns:
            results["every variable loaded"] = late_session("bench-all")
        if against:
            write_spec(base, "bench-old", [against, "--connection-file", "{connection_file}"])
            results["other forja-kernel"] = late_session("bench-old")
        elif "evcxr" in columns and Path(evcxr).exists():
            write_spec(base, "bench-evcxr", [evcxr, "--control_file", "{connection_file}"])
            forja_dir = ROOT / "forja"
            results["evcxr_jupyter"] = late_session(
                "bench-evcxr", f':dep forja = {{ path = "{forja_dir}" }}\nuse forja::prelude::*;')
    print(f"\nmachine: {os.cpu_count()} cores, loaded by other work: compare within a column\n")
    print_late(results)


if __name__ == "__main__":
    sys.exit(main())
