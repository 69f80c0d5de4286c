"""Issue 21 item 4: `:fresh` bounds a long session's runner.

evcxr loads a library per cell into its runner and never unloads one. `:fresh`
(Spanish `:refrescar`) lists the variables that will be lost (sorted), starts
a new runner (stopping every process the old one's cells started), deletes the
old cell libraries from the session's disk, and the next cell still has the
earlier functions and types. Past a threshold of loaded cell libraries the
kernel suggests it once (`FORJA_FRESH_SUGGEST_AT` lowers it here).

Through `jupyter_client`, against the installed kernel.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import psutil

from conftest import Kernel, ok, start_kernel, strip_ansi, unique

CELLS = 8
SUGGEST_AT = 6
CELL_LIBRARY = re.compile(r"/libcode_\d+\.so$")


def runner_of(k: Kernel) -> psutil.Process:
    """The kernel's evcxr runner (its child with EVCXR_IS_RUNTIME set)."""
    found = []
    for p in psutil.Process(k.pid).children():
        try:
            if p.environ().get("EVCXR_IS_RUNTIME") and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p)
        except psutil.NoSuchProcess:
            pass
    assert len(found) == 1, found
    return found[0]


def cell_libraries(pid: int) -> set[str]:
    paths = set()
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) == 6 and CELL_LIBRARY.search(parts[5].strip()):
            paths.add(parts[5].strip())
    return paths


def stderr_of(ex) -> str:
    return "".join(
        r.content["text"] for r in ex.iopub if r.type == "stream" and r.content["name"] == "stderr"
    )


def gone(procs: list[psutil.Process], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = []
        for p in procs:
            try:
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(p)
            except psutil.NoSuchProcess:
                pass
        if not alive:
            return True
        time.sleep(0.1)
    return False


def test_fresh_keeps_items_drops_variables_and_libraries():
    k = start_kernel(env={"FORJA_FRESH_SUGGEST_AT": str(SUGGEST_AT)})
    try:
        k.warm_up()
        t = unique("f")
        ok(
            k,
            f"fn doble_{t}(x: u32) -> u32 {{ x * 2 }}\n"
            f"#[derive(Debug, Clone)] struct Punto_{t} {{ x: i32 }}\n"
            f"let zz_{t}: u32 = 7;\nlet aa_{t} = Punto_{t} {{ x: 1 }};\n"
            # A process the cell started and left running, outside forja.
            "std::process::Command::new(\"sleep\").arg(\"300\").spawn().map(|_| ())?;",
        )
        notes = []
        for i in range(CELLS):
            ex = ok(k, f"doble_{t}({i}) + zz_{t}")
            notes.append(stderr_of(ex))
        suggested = [n for n in notes if ":fresh" in n]
        assert len(suggested) == 1, notes

        old = runner_of(k)
        old_tree = [old, *old.children(recursive=True)]
        assert any(p.name() == "sleep" for p in old_tree), old_tree
        old_libs = cell_libraries(old.pid)
        assert len(old_libs) >= CELLS, old_libs
        assert all(Path(p).exists() for p in old_libs)

        ex = ok(k, ":fresh")
        text = strip_ansi(ex.result["data"]["text/plain"])
        assert f"lost: aa_{t}, zz_{t}" in text, text
        assert "functions and types were kept" in text, text

        assert gone(old_tree), [p for p in old_tree if p.is_running()]
        new = runner_of(k)
        assert new.pid != old.pid
        assert [p for p in old_libs if Path(p).exists()] == []

        ex = ok(k, f"doble_{t}(21)")
        assert ex.result["data"]["text/plain"] == "42", ex.dump()
        ex = ok(k, f"Punto_{t} {{ x: 3 }}.clone().x")
        assert ex.result["data"]["text/plain"] == "3", ex.dump()
        ex = k.execute(f"zz_{t} + 1")
        assert ex.status == "error", ex.dump()
        assert f"cannot find value `zz_{t}`" in strip_ansi("\n".join(ex.error["traceback"])), ex.dump()

        assert runner_of(k).pid == new.pid
        assert len(cell_libraries(new.pid)) <= 4, cell_libraries(new.pid)
        # The Spanish name does the same.
        ex = ok(k, ":refrescar")
        assert "no variables were lost" in strip_ansi(ex.result["data"]["text/plain"])
        newest = runner_of(k)
        assert newest.pid != new.pid
        ok(k, f"doble_{t}(1)")
    finally:
        tree = []
        try:
            tree = psutil.Process(k.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            pass
        k.close()
    assert gone(tree), [p for p in tree if p.is_running()]
