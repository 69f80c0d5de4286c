"""rust-analyzer is dropped while the student is idle and reloaded on demand (issue 21).

A kernel with ``FORJA_ANALYSIS_IDLE=2`` runs cells that declare variables (a
forja Queue, a Vec, a HashMap), then stays idle: the kernel process's RSS
falls by at least a third (rust-analyzer's database is most of it). A new
``let`` whose type must be inferred from an earlier variable's then works
(the analysis is loaded again), and after the next unload a cell without a
``let`` runs without loading it back, and completion still offers names and
methods of earlier cells. Kernels with the unload off (every other test:
conftest sets ``FORJA_ANALYSIS_IDLE=off``) keep today's behaviour.
"""

from __future__ import annotations

import time
from pathlib import Path

from conftest import start_kernel

IDLE = 2


def rss(pid: int) -> int:
    """The kernel process's resident memory in bytes (not its runner's)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def wait_for_unload(pid: int, loaded: int, limit: float = 15.0) -> int:
    """Polls the kernel's RSS until it is at most two thirds of `loaded`."""
    deadline = time.monotonic() + limit
    now = rss(pid)
    while now > loaded * 2 / 3 and time.monotonic() < deadline:
        time.sleep(0.25)
        now = rss(pid)
    assert now <= loaded * 2 / 3, (
        f"the kernel's RSS went from {loaded >> 20} MiB to {now >> 20} MiB, "
        f"{limit:.0f} s after a {IDLE} s idle limit: rust-analyzer was not unloaded")
    return now


def ok(k, code: str):
    ex = k.execute(code)
    assert ex.status == "ok", ex.dump()
    return ex


def completes(k, code: str, want: str) -> list[str]:
    """The completions of `code` offering `want` (as `want` or `want(…)`)."""
    reply = k.request("complete", code, len(code))
    assert reply["content"]["status"] == "ok", reply["content"]
    matches = reply["content"]["matches"]
    assert any(m == want or m.startswith(want + "(") for m in matches), (code, matches)
    return matches


def test_idle_kernel_unloads_the_analysis_and_reloads_it():
    k = start_kernel({"FORJA_ANALYSIS_IDLE": str(IDLE)})
    try:
        ok(k, "let cola: forja::Queue<u32> = forja::Queue::new().unwrap(); cola.put(&7).unwrap();")
        ok(k, "let numeros: Vec<u64> = (1..=10).collect();")
        ok(k, "use std::collections::HashMap; let mut mapa = HashMap::new(); "
              "mapa.insert(1u8, \"uno\"); mapa.len()")
        loaded = rss(k.pid)
        wait_for_unload(k.pid, loaded)

        # The type of `total` is inferred from `numeros`' (u64): the analysis
        # is back; the earlier variables kept their values and types.
        ok(k, "let total = numeros.iter().sum::<u64>();")
        shown = ok(k, "total")
        assert shown.result and shown.result["data"]["text/plain"] == "55", shown.dump()
        got = ok(k, "println!(\"{} {}\", cola.get().unwrap(), mapa[&1]);")
        assert got.stdout.strip() == "7 uno", got.dump()

        # Unloaded again: a cell without a `let` does not load it back.
        reloaded = rss(k.pid)
        wait_for_unload(k.pid, reloaded)
        trivial = ok(k, "total + 1")
        assert trivial.result["data"]["text/plain"] == "56", trivial.dump()
        assert rss(k.pid) <= reloaded * 2 / 3, "a cell without `let` loaded rust-analyzer"

        # Tab after an unload loads it and completes names of earlier cells.
        completes(k, "nume", "numeros")
        completes(k, "mapa.ins", "insert")
    finally:
        k.close()
