#!/usr/bin/env python3
"""Kernel benchmark: forja-kernel side by side with evcxr_jupyter, through jupyter_client.

Measures, for each kernel, in one run:
  * start: process start to the first kernel_info reply;
  * first cell: the first cell (forja: `use forja::prelude::*` is preloaded, so this is
    the first forja cell; evcxr_jupyter: `:dep forja = { path = ... }` + a forja call);
  * trivial cell: `a + 1` (median of N);
  * fn cell: a cell defining a function (median of N).
Prints medians and the forja/evcxr ratio. Not part of CI.

Usage: .venv/bin/python bench/kernel.py [--runs N]
       .venv/bin/python bench/kernel.py --against OLD_FORJA_KERNEL [--rounds R] [--runs N]
The second form compares this checkout's kernel with another forja-kernel
binary (e.g. one built from an earlier commit, with its own FORJA_CRATE_DIR
etc. already baked in), kernels started in turns, R rounds; medians over rounds.
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


def write_spec(base: Path, name: str, argv):
    d = base / "kernels" / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "kernel.json").write_text(json.dumps(
        {"argv": argv, "display_name": name, "language": "rust", "interrupt_mode": "message"}))


def run_cell(kc, code, timeout=300):
    t = time.perf_counter()
    reply = kc.execute_interactive(code, timeout=timeout, output_hook=lambda m: None)
    dt = time.perf_counter() - t
    if reply["content"]["status"] != "ok":
        raise RuntimeError(f"cell failed: {code!r}: {reply['content']}")
    return dt


def bench_kernel(name, first_cell, runs):
    km = KernelManager(kernel_name=name)
    t0 = time.perf_counter()
    km.start_kernel()
    kc = km.blocking_client()
    kc.start_channels()
    kc.wait_for_ready(timeout=120)
    start = time.perf_counter() - t0
    try:
        first = run_cell(kc, first_cell)
        run_cell(kc, "let a = 1;")
        trivial = [run_cell(kc, "a + 1") for _ in range(runs)]
        fns = [run_cell(kc, f"fn f{i}(x: i32) -> i32 {{ x * {i} + 1 }}") for i in range(runs)]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    return {"start": start, "first": first,
            "trivial": statistics.median(trivial), "fn": statistics.median(fns)}


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
    args = ap.parse_args()
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


if __name__ == "__main__":
    sys.exit(main())
