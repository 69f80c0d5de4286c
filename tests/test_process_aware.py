"""End-to-end tests of the process-aware kernel (issue 4), through real
clients: `jupyter_client` for most, `nbclient` for the offline notebook.

What they check, point by point of the issue:

1. the first forja cell of a fresh kernel is timed (printed, loosely bounded)
   and forja cells work with no network (`unshare -n`);
2. an interrupt stops a cell blocked in any forja call, ends it with an
   `Interrupted` error, stops the processes it started and keeps earlier
   variables; forja calls fail at once afterwards; a busy loop (or a second
   interrupt) restarts the runner, names the lost variables and re-runs
   nothing;
3. no process started by a cell (grandchildren included) outlives an
   interrupt, a restart, a shutdown, a SIGTERM or a SIGKILL of the kernel;
   `:procs` lists what outlives its cell on purpose and `:kill` stops it;
4. a child's output shows while it runs, per process in order and whole, and
   output written between cells shows in the next cell, marked;
5. `forja::timeline()` draws one lane per process (parsed with
   `xml.etree`), Pool tasks on their workers, rich displays, live progress;
6. a fork bomb stops at the cap with a clear error and the kernel recovers.

Time bounds are about 10x the issue's targets: they only catch hangs. The
processes a cell started are found two ways: the pids the cell prints, and
every process whose environment names the kernel (`FORJA_KERNEL_PID`, which
survives re-parenting); zombies count as remaining unless their parent is
pid 1 (then reaping them is init's job, not the kernel's).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import nbformat
import psutil
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

from conftest import FLUSH, ROOT, Execution, Kernel, ok, start_kernel, strip_ansi, unique

HANG = 20  # seconds after an interrupt, where the issue says 2 s
GONE = 15  # seconds for killed processes to disappear ("a few seconds")
FIRST_FORJA_CELL_BOUND = 60  # the issue says 5 s; the benchmark reports the real number
SVG_NS = "{http://www.w3.org/2000/svg}"
BUILD_TOOLS = {"cargo", "rustc", "cc", "ld", "rust-lld", "ld.lld", "collect2", "rust-analyzer"}
NAP = "std::thread::sleep(std::time::Duration::from_millis(200))"
FIRST_FORJA_CELL = (
    "let first_q: Queue<u64> = Queue::new().unwrap();\n"
    "let first_p = { let q = first_q.clone(); Process::new(move || { q.put(&7).unwrap(); }) };\n"
    "first_p.start().unwrap(); let got = first_q.get().unwrap(); first_p.join().unwrap();\n"
    "println!(\"first forja cell got {got}\");"
)


# ---------------------------------------------------------------- processes


def _state(p: psutil.Process) -> str | None:
    """Its status, or None once it no longer exists."""
    try:
        return p.status()
    except psutil.Error:
        return None


def _remains(p: psutil.Process) -> bool:
    """Still running, or a zombie that a forja process (not init) must reap."""
    st = _state(p)
    if st is None:
        return False
    if st != psutil.STATUS_ZOMBIE:
        return True
    try:
        return p.ppid() != 1
    except psutil.Error:
        return False


def _describe(procs: list[psutil.Process]) -> list[tuple]:
    out = []
    for p in procs:
        try:
            out.append((p.pid, p.name(), _state(p), p.ppid()))
        except psutil.Error:
            out.append((p.pid, "?", _state(p), "?"))
    return out


def _wait_gone(procs: list[psutil.Process], timeout: float = GONE) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while True:
        left = [p for p in procs if _remains(p)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def _wait_stopped(procs: list[psutil.Process], timeout: float = GONE) -> list[psutil.Process]:
    """Waits until none runs (zombies count as stopped); returns those still running."""
    deadline = time.monotonic() + timeout
    while True:
        left = [p for p in procs if _state(p) not in (None, psutil.STATUS_ZOMBIE)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def _tracked(pids) -> list[psutil.Process]:
    out = []
    for pid in pids:
        try:
            out.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            pass
    return out


def _not_build_tool(p: psutil.Process) -> bool:
    try:
        return p.name() not in BUILD_TOOLS
    except psutil.Error:
        return False


def kernel_tagged(kernel_pid: int) -> list[psutil.Process]:
    """Every live process whose environment names this kernel: its runner and
    whatever cells started, wherever they were re-parented (build tools
    left out)."""
    out = []
    for p in psutil.process_iter():
        if p.pid == kernel_pid:
            continue
        try:
            env = p.environ()
        except psutil.Error:
            continue
        if env.get("FORJA_KERNEL_PID") == str(kernel_pid) and _not_build_tool(p):
            out.append(p)
    return out


def runners(k: Kernel) -> list[psutil.Process]:
    try:
        kids = psutil.Process(k.pid).children()
    except psutil.Error:
        return []
    return [p for p in kids if _not_build_tool(p) and _state(p) != psutil.STATUS_ZOMBIE]


def runner_pid(k: Kernel) -> int:
    """The runner: the kernel's one (non-build-tool) child."""
    deadline = time.monotonic() + HANG
    while True:
        rs = runners(k)
        if len(rs) == 1:
            return rs[0].pid
        if time.monotonic() > deadline:
            raise AssertionError(f"expected one runner, got {_describe(rs)}")
        time.sleep(0.1)


def cell_processes(k: Kernel) -> list[psutil.Process]:
    """Descendants of the runner (what cells started), zombies included."""
    try:
        r = psutil.Process(runner_pid(k))
        return [p for p in r.children(recursive=True) if _not_build_tool(p)]
    except psutil.Error:
        return []


def pids_in(text: str, tag: str = "PIDS") -> list[int]:
    """Pids a cell printed as `TAG [1, 2]` lines."""
    out: list[int] = []
    for m in re.finditer(rf"{tag} \[([0-9, ]*)\]", text):
        out += [int(x) for x in m.group(1).split(",") if x.strip()]
    return out


# ---------------------------------------------------------------- cells


def wait_for_stream(k: Kernel, msg_id: str, needle: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = k.iopub_for(msg_id)
        text = "".join(r.content.get("text", "") for r in got if r.type == "stream")
        if needle in text:
            return
        if any(r.type == "status" and r.content["execution_state"] == "idle" for r in got):
            raise AssertionError(
                f"cell ended before printing {needle!r}: "
                + "; ".join(f"{r.type} {r.content!r:.400}" for r in got)
            )
        k.pump(0.05)
    raise TimeoutError(f"{needle!r} never arrived")


def interrupt(k: Kernel) -> float:
    """Sends an interrupt_request on control; returns when it was sent."""
    t0 = time.monotonic()
    cid = k.send_control("interrupt_request", {})
    assert k.control_reply(cid, timeout=HANG)["content"]["status"] == "ok"
    return t0


def run_and_interrupt(
    k: Kernel, code: str, ready: str = "READY", before_interrupt=None
) -> tuple[Execution, float, str]:
    """Runs `code` up to its `ready` line (then calls `before_interrupt` with
    what it printed), interrupts it; returns the execution, the seconds from
    the interrupt to the cell's end, and what the cell printed before the
    interrupt."""
    mid = k.send_execute(code)
    wait_for_stream(k, mid, ready)
    before = "".join(r.content["text"] for r in k.iopub_for(mid) if r.type == "stream")
    if before_interrupt is not None:
        before_interrupt(before)
    t0 = interrupt(k)
    ex = k.collect(code, mid, timeout=HANG * 3)
    return ex, k.sent_at(mid) + ex.t_idle - t0, before


def text_result(ex: Execution) -> str:
    assert ex.result is not None, ex.dump()
    return ex.result["data"]["text/plain"]


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def pk():
    """One kernel for this module's non-destructive tests (interrupts keep
    it usable). Its first cell is the first forja cell, timed."""
    t_start = time.monotonic()
    k = start_kernel()
    try:
        t_ready = time.monotonic()
        mid = k.send_execute(FIRST_FORJA_CELL)
        ex = k.collect(FIRST_FORJA_CELL, mid, timeout=300)
        k.warmed_up = True
        k.first_forja_cell = ex  # type: ignore[attr-defined]
        k.first_forja_times = (  # type: ignore[attr-defined]
            time.monotonic() - t_start,
            time.monotonic() - t_ready,
        )
        yield k
    finally:
        k.close()


@pytest.fixture
def clean(pk: Kernel):
    """Starts and ends a test with no process left over from earlier cells."""
    ok(pk, ":kill all")
    yield pk
    ok(pk, ":kill all")


# ---------------------------------------------------------------- 9. first forja cell


def test_first_forja_cell_time(pk: Kernel):
    ex = pk.first_forja_cell  # type: ignore[attr-defined]
    since_start, since_ready = pk.first_forja_times  # type: ignore[attr-defined]
    print(
        f"\nfirst forja cell: {ex.t_idle:.2f}s from its request, "
        f"{since_ready:.2f}s after kernel_info, {since_start:.2f}s after the kernel was started"
    )
    assert ex.status == "ok", ex.dump()
    assert "first forja cell got 7" in ex.stdout, ex.dump()
    assert ex.t_idle < FIRST_FORJA_CELL_BOUND, ex.dump()


# ---------------------------------------------------------------- 2. interrupt keeps state

FOREVER_CHILD = f"Process::new(|| loop {{ {NAP}; }})"

BLOCKING = {
    "join": (
        f"let p = {FOREVER_CHILD}.with_name(\"forever\"); p.start().unwrap();\n"
        "println!(\"PIDS [{}]\", p.pid().unwrap());\n"
        f"println!(\"READY\"); {FLUSH}\n"
        "p.join().unwrap();"
    ),
    "queue_get": (
        "let q: Queue<u64> = Queue::new().unwrap();\n"
        f"let p = {{ let q = q.clone(); Process::new(move || {{ let _q = q; loop {{ {NAP}; }} }}) }};\n"
        "p.start().unwrap(); println!(\"PIDS [{}]\", p.pid().unwrap());\n"
        f"println!(\"READY\"); {FLUSH}\n"
        "let v = q.get().unwrap(); println!(\"got {v}\");"
    ),
    "lock_acquire": (
        "let l = Lock::new().unwrap();\n"
        f"let p = {{ let l = l.clone(); Process::new(move || {{ let _g = l.acquire().unwrap(); loop {{ {NAP}; }} }}) }};\n"
        "p.start().unwrap(); println!(\"PIDS [{}]\", p.pid().unwrap());\n"
        "while !l.is_locked() { std::thread::sleep(std::time::Duration::from_millis(10)); }\n"
        f"println!(\"READY\"); {FLUSH}\n"
        "{ let _g = l.acquire().unwrap(); println!(\"acquired\"); }"
    ),
    # The child does not wait on the barrier: with every process of the
    # tree in a forja wait nobody can satisfy, forja names it a Deadlock
    # (issue 17) instead of hanging; here the child is busy elsewhere.
    "barrier_wait": (
        "let b = Barrier::new(2).unwrap();\n"
        f"let p = Process::new(move || loop {{ {NAP}; }});\n"
        "p.start().unwrap(); println!(\"PIDS [{}]\", p.pid().unwrap());\n"
        f"println!(\"READY\"); {FLUSH}\n"
        "b.wait().unwrap(); println!(\"passed\");"
    ),
    "event_wait": (
        "let e = Event::new().unwrap();\n"
        f"let p = {FOREVER_CHILD}; p.start().unwrap(); println!(\"PIDS [{{}}]\", p.pid().unwrap());\n"
        f"println!(\"READY\"); {FLUSH}\n"
        "e.wait().unwrap(); println!(\"set\");"
    ),
    "forja_sleep": (
        f"let p = {FOREVER_CHILD}; p.start().unwrap(); println!(\"PIDS [{{}}]\", p.pid().unwrap());\n"
        f"println!(\"READY\"); {FLUSH}\n"
        "forja::sleep(std::time::Duration::from_secs(600)).unwrap(); println!(\"woke\");"
    ),
    # The handle is dropped while the child runs (`Process::new(..).start()`
    # without keeping it): whoever stops the child must also reap it.
    "sleep_dropped_handle": (
        f"let pid = {{ let p = {FOREVER_CHILD}; p.start().unwrap(); p.pid().unwrap() }};\n"
        "println!(\"PIDS [{pid}]\");\n"
        f"println!(\"READY\"); {FLUSH}\n"
        "forja::sleep(std::time::Duration::from_secs(600)).unwrap(); println!(\"woke\");"
    ),
    "pool_map": (
        "let pool = Pool::new(2).unwrap();\n"
        "println!(\"PIDS {:?}\", pool.worker_pids());\n"
        f"println!(\"READY\"); {FLUSH}\n"
        "let r = pool.map(|x: u64| { std::thread::sleep(std::time::Duration::from_secs(600)); x }, 0..4u64).unwrap();\n"
        "println!(\"mapped {r:?}\");"
    ),
    "pipe_recv": (
        "let (a, b) = Pipe::new::<u64>().unwrap();\n"
        f"let p = Process::new(move || {{ let _b = b; loop {{ {NAP}; }} }}); p.start().unwrap();\n"
        "println!(\"PIDS [{}]\", p.pid().unwrap());\n"
        f"println!(\"READY\"); {FLUSH}\n"
        "let v = a.recv().unwrap(); println!(\"received {v}\");"
    ),
}


def _check_interrupted(k: Kernel, ex: Execution, took: float, kept: str, runner_before: int):
    assert took < HANG, f"cell ended {took:.1f}s after the interrupt\n{ex.dump()}"
    assert ex.status == "error", ex.dump()
    err = ex.error
    assert err is not None and err["ename"] == "Interrupted", ex.dump()
    assert "interrupt" in err["evalue"].lower(), err
    # The gentle path: the runner (and so every variable) was kept.
    assert runner_pid(k) == runner_before, f"the runner was restarted\n{ex.dump()}"
    probe = k.execute(kept)
    assert probe.status == "ok", f"{kept} lost after an interrupt: {probe.dump()}\n{ex.dump()}"
    assert text_result(probe) == "42", probe.dump()


@pytest.mark.parametrize("call", list(BLOCKING))
def test_interrupt_blocked_forja_call_keeps_variables(clean: Kernel, call: str):
    k = clean
    kept = unique("kept")
    ok(k, f"let {kept}: i32 = 42;")
    existing = {p.pid for p in cell_processes(k)}
    rp = runner_pid(k)
    ex, took, printed = run_and_interrupt(k, BLOCKING[call])
    print(f"\n{call}: cell ended {took:.2f}s after the interrupt")
    _check_interrupted(k, ex, took, kept, rp)
    started = pids_in(printed)
    assert started, f"the cell printed no pids: {printed!r}"
    # What the cell started is gone (not left as zombies either), and
    # nothing else new runs under the runner.
    left = _wait_gone(_tracked(started))
    assert left == [], f"still there after the interrupt: {_describe(left)}"
    new = [p for p in cell_processes(k) if p.pid not in existing]
    left = _wait_gone(new)
    assert left == [], f"new processes under the runner after the interrupt: {_describe(left)}"
    # forja works again in the next cell.
    ex = ok(k, "let p = Process::new(|| {}); p.start().unwrap(); p.join().unwrap(); p.exitcode()")
    assert text_result(ex) == "Some(0)", ex.dump()


def test_forja_calls_fail_at_once_after_an_interrupt(clean: Kernel):
    """A cell that ignores the first Err and calls forja again still ends
    promptly — by forja failing at once, not by the runner restart."""
    k = clean
    kept = unique("kept")
    ok(k, f"let {kept}: i32 = 42;")
    rp = runner_pid(k)
    code = (
        "let q: Queue<u64> = Queue::new().unwrap();\n"
        f"println!(\"READY\"); {FLUSH}\n"
        "let _ = forja::sleep(std::time::Duration::from_secs(600));\n"
        "let t = std::time::Instant::now();\n"
        "let mut errs = 0;\n"
        "for _ in 0..5 {\n"
        "    if forja::sleep(std::time::Duration::from_secs(600)).is_err() { errs += 1; }\n"
        "    if q.get().is_err() { errs += 1; }\n"
        "    if Process::new(|| {}).start().is_err() { errs += 1; }\n"
        "    if Pool::new(1).and_then(|p| p.map(|x: u8| x, vec![1u8])).is_err() { errs += 1; }\n"
        "}\n"
        "println!(\"AFTER errs={errs} ms={}\", t.elapsed().as_millis());"
    )
    ex, took, _ = run_and_interrupt(k, code)
    print(f"\nignored-Err cell ended {took:.2f}s after the interrupt; {ex.stdout!r}")
    _check_interrupted(k, ex, took, kept, rp)
    m = re.search(r"AFTER errs=(\d+) ms=(\d+)", ex.stdout)
    assert m, f"the code after the ignored Err did not run to its end\n{ex.dump()}"
    assert int(m.group(1)) == 20, f"every later forja call must fail\n{ex.dump()}"
    assert int(m.group(2)) < HANG * 1000, ex.dump()


# ---------------------------------------------------------------- 2. busy loop: runner restart


def test_busy_loop_restarts_runner_names_lost_variables_reruns_nothing(clean: Kernel, tmp_path: Path):
    k = clean
    lost = unique("lost")
    ran = tmp_path / "ran.txt"
    define = (
        f"let {lost}: i32 = 42;\n"
        f"{{ use std::io::Write; let mut f = std::fs::OpenOptions::new().create(true).append(true)"
        f".open({json.dumps(str(ran))}).unwrap(); writeln!(f, \"ran\").unwrap(); }}\n"
        f"println!(\"DEFINED-{lost}\");"
    )
    ok(k, define)
    rp = runner_pid(k)
    ex, took, _ = run_and_interrupt(k, f"println!(\"READY\"); {FLUSH}\nloop {{}}")
    print(f"\nbusy loop ended {took:.2f}s after the interrupt")
    assert took < HANG, ex.dump()
    assert ex.status == "error", ex.dump()
    err = ex.error
    assert err is not None and err["ename"] == "Interrupted", ex.dump()
    assert lost in err["evalue"] and "lost" in err["evalue"], err
    new_runner = runner_pid(k)
    assert new_runner != rp, "a busy loop cannot end without a runner restart"
    assert not psutil.pid_exists(rp) or _state(psutil.Process(rp)) == psutil.STATUS_ZOMBIE
    # The variable is really gone; earlier cells were not re-run.
    probe = k.execute(lost)
    assert probe.status == "error", probe.dump()
    after = ok(k, "let p = Process::new(|| {}); p.start().unwrap(); p.join().unwrap(); p.exitcode()")
    assert text_result(after) == "Some(0)", after.dump()
    outputs = ex.stdout + ex.stderr + probe.stdout + after.stdout + after.stderr
    assert f"DEFINED-{lost}" not in outputs, "an earlier cell was re-run"
    assert ran.read_text() == "ran\n", "an earlier cell was re-run"

    # A second interrupt restarts at once (no 2 s wait for the first).
    kept2 = unique("lost2")
    ok(k, f"let {kept2}: i32 = 1;")
    rp = runner_pid(k)
    code = f"println!(\"READY\"); {FLUSH}\nloop {{}}"
    mid = k.send_execute(code)
    wait_for_stream(k, mid, "READY")
    interrupt(k)
    time.sleep(0.2)
    t2 = interrupt(k)
    ex2 = k.collect(code, mid, timeout=HANG * 3)
    took2 = k.sent_at(mid) + ex2.t_idle - t2
    print(f"second interrupt: cell ended {took2:.2f}s after it")
    assert took2 < HANG, ex2.dump()
    assert ex2.error is not None and ex2.error["ename"] == "Interrupted", ex2.dump()
    assert kept2 in ex2.error["evalue"], ex2.dump()
    assert runner_pid(k) != rp
    assert ran.read_text() == "ran\n", "an earlier cell was re-run"
    ok(k, "1 + 1")


# ---------------------------------------------------------------- 3. no orphans, no zombies

TREE = (
    "let tree: Vec<Process> = (0..2).map(|i| Process::new(move || {\n"
    f"    let gcs: Vec<Process> = (0..2).map(|j| Process::new(|| loop {{ {NAP}; }})\n"
    "        .with_name(format!(\"TAG-gc-{i}-{j}\"))).collect();\n"
    "    for g in &gcs { g.start().unwrap(); }\n"
    "    println!(\"GRANDCHILDREN {:?}\", gcs.iter().map(|g| g.pid().unwrap()).collect::<Vec<_>>());\n"
    f"    loop {{ {NAP}; }}\n"
    "}).with_name(format!(\"TAG-child-{i}\"))).collect();\n"
    "for p in &tree { p.start().unwrap(); }\n"
    "println!(\"PIDS {:?}\", tree.iter().map(|p| p.pid().unwrap()).collect::<Vec<_>>());\n"
)


def _tree_cell(tag: str) -> str:
    return "let TAG_tree = {\n".replace("TAG", tag) + TREE.replace("TAG", tag) + "tree };\n"


def _wait_tree(k: Kernel, children: list[int], per_child: int = 2) -> list[psutil.Process]:
    """The children and their grandchildren, once all have started."""
    deadline = time.monotonic() + 60
    while True:
        procs = _tracked(children)
        for c in list(procs):
            try:
                procs += c.children(recursive=True)
            except psutil.Error:
                pass
        live = [p for p in procs if _remains(p)]
        if len(live) >= len(children) * (1 + per_child) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(live) == len(children) * (1 + per_child), _describe(procs)
    return live


def test_interrupt_stops_cell_tree_but_not_earlier_cells_and_kill_all(clean: Kernel):
    """An interrupt stops the tree the interrupted cell started; a tree an
    earlier cell left running on purpose stays (listed by :procs) until
    `:kill all`."""
    k = clean
    a = unique("ta")
    ex = ok(k, _tree_cell(a))
    older = _wait_tree(k, pids_in(ex.stdout))
    b = unique("tb")
    code = _tree_cell(b) + f"println!(\"READY\"); {FLUSH}\nforja::sleep(std::time::Duration::from_secs(600)).unwrap();"
    trees: list[list[psutil.Process]] = []
    ex, took, _ = run_and_interrupt(
        k, code, before_interrupt=lambda printed: trees.append(_wait_tree(k, pids_in(printed)))
    )
    assert ex.error is not None and ex.error["ename"] == "Interrupted", ex.dump()
    assert took < HANG
    (newer,) = trees
    left = _wait_gone(newer)
    assert left == [], f"the interrupted cell's tree survived: {_describe(left)}"
    assert [p for p in older if not _remains(p)] == [], "the interrupt stopped an earlier cell's tree"
    procs = text_result(ok(k, ":procs"))
    for p in older:
        if p.ppid() == runner_pid(k):
            assert str(p.pid) in procs, procs
    ok(k, ":kill all")
    # Stopped: nothing runs; the children whose handles the variable still
    # holds may stay zombies until joined (as in Python), nothing else.
    left = _wait_stopped(older)
    assert left == [], f"running after :kill all: {_describe(left)}"
    ex = ok(k, f"{a}_tree.iter().map(|p| {{ p.join().unwrap(); p.exitcode() }}).collect::<Vec<_>>()")
    assert text_result(ex) == "[Some(-15), Some(-15)]", ex.dump()
    left = _wait_gone(older)
    assert left == [], f"left after :kill all and join: {_describe(left)}"


@pytest.fixture(scope="module")
def doomed():
    """Four fresh kernels, each running a forja tree (2 children with 2
    grandchildren each) and a plain `sleep` started by a child — one kernel
    per way of ending it. Started and warmed up together to save time."""
    ks: dict[str, Kernel] = {}
    try:
        for how in ("restart", "shutdown", "sigterm", "sigkill"):
            ks[how] = start_kernel()
        code = _tree_cell("doomed") + (
            "let cmd_child = Process::new(|| {\n"
            "    let mut c = std::process::Command::new(\"sleep\").arg(\"303\").spawn().unwrap();\n"
            "    println!(\"SLEEP [{}]\", c.id()); let _ = c.wait();\n"
            "}).with_name(\"doomed-cmd\"); cmd_child.start().unwrap();\n"
            "println!(\"CMDCHILD [{}]\", cmd_child.pid().unwrap());"
        )
        ids = {how: k.send_execute(code) for how, k in ks.items()}
        trees = {}
        for how, k in ks.items():
            ex = k.collect(code, ids[how], timeout=300)
            assert ex.status == "ok", ex.dump()
            k.warmed_up = True
            procs = _wait_tree(k, pids_in(ex.stdout))
            procs += _tracked(pids_in(ex.stdout, "CMDCHILD"))
            deadline = time.monotonic() + 30
            while not any(p.name() == "sleep" for p in cell_processes(k)):
                assert time.monotonic() < deadline, _describe(cell_processes(k))
                time.sleep(0.1)
            trees[how] = (procs, cell_processes(k))
        yield ks, trees
    finally:
        for k in ks.values():
            try:
                k.close()
            except Exception:
                pass


def _check_no_leftovers(kernel_pid: int, snapshot: list[tuple[psutil.Process, str]], what: str):
    """`snapshot`: (process, name) taken before the kernel was stopped."""
    # The runner and the forja tree (children and grandchildren).
    left = _wait_gone([p for p, name in snapshot if name != "sleep"])
    assert left == [], f"forja processes left after {what}: {_describe(left)}"
    # A process a cell started without forja (`sleep`, from a forja child).
    left = _wait_gone([p for p, name in snapshot if name == "sleep"])
    assert left == [], f"a plain command started by a cell was left after {what}: {_describe(left)}"
    # Anything else that carries the kernel's mark (forked since the snapshot).
    left = _wait_gone(kernel_tagged(kernel_pid))
    assert left == [], f"processes of the kernel left after {what}: {_describe(left)}"


def _doomed(doomed, how: str):
    ks, trees = doomed
    k = ks[how]
    procs, everything = trees[how]
    assert len(procs) == 7 and all(_remains(p) for p in procs), _describe(procs)
    runner = _tracked([runner_pid(k)])
    print(f"\n{how}: {len(everything) + 1} processes under the kernel: {_describe(everything + runner)}")
    return k, [(p, p.name()) for p in everything + runner]


def test_no_leftovers_after_restart(doomed):
    k, snapshot = _doomed(doomed, "restart")
    kernel_pid = k.pid
    cid = k.send_control("shutdown_request", {"restart": True})
    assert k.control_reply(cid, timeout=HANG)["content"]["status"] == "ok"
    k.km.provisioner.process.wait(timeout=HANG)
    _check_no_leftovers(kernel_pid, snapshot, "a restart")
    # What a manager does next: start the kernel again (not
    # km.restart_kernel(), see test_kernel_protocol); the new one runs forja.
    k.km.start_kernel()
    k.reconnect()
    ex = ok(k, FIRST_FORJA_CELL, timeout=300)
    assert "first forja cell got 7" in ex.stdout


def test_no_leftovers_after_shutdown(doomed):
    k, snapshot = _doomed(doomed, "shutdown")
    kernel_pid = k.pid
    k.kc.stop_channels()
    k.km.shutdown_kernel(now=False)
    _check_no_leftovers(kernel_pid, snapshot, "a shutdown")


@pytest.mark.parametrize("sig", ["sigterm", "sigkill"])
def test_no_leftovers_after_kernel_signal(doomed, sig: str):
    k, snapshot = _doomed(doomed, sig)
    kernel_pid = k.pid
    os.kill(kernel_pid, signal.SIGTERM if sig == "sigterm" else signal.SIGKILL)
    k.km.provisioner.process.wait(timeout=HANG)
    try:
        _check_no_leftovers(kernel_pid, snapshot, sig.upper())
    finally:
        # Whatever this test started and the kernel left behind.
        for p in [p for p, _ in snapshot] + kernel_tagged(kernel_pid):
            if _state(p) is not None:
                try:
                    p.kill()
                except psutil.Error:
                    pass


# ---------------------------------------------------------------- 3. :procs and :kill


def test_procs_lists_and_kill_stops(clean: Kernel):
    k = clean
    name = unique("keeper")
    code = (
        f"let {name} = Process::new(|| loop {{ {NAP}; }}).with_name(\"{name}\"); {name}.start().unwrap();\n"
        f"let {name}_b = Process::new(|| loop {{ {NAP}; }}).with_name(\"{name}-b\"); {name}_b.start().unwrap();\n"
        f"let {name}_c = Process::new(|| loop {{ {NAP}; }}).with_name(\"{name}-c\"); {name}_c.start().unwrap();\n"
        f"println!(\"PIDS [{{}}, {{}}, {{}}]\", {name}.pid().unwrap(), {name}_b.pid().unwrap(), {name}_c.pid().unwrap());"
    )
    ex = ok(k, code)
    cell = ex.reply["content"]["execution_count"]
    pids = pids_in(ex.stdout)
    assert len(pids) == 3
    listing = ok(k, ":procs")
    text = text_result(listing)
    assert "text/html" in listing.result["data"], listing.dump()
    for pid, nm in zip(pids, [name, f"{name}-b", f"{name}-c"]):
        row = next((line for line in text.splitlines() if re.match(rf"\s*{pid}\s", line)), None)
        assert row is not None, f"pid {pid} not listed:\n{text}"
        assert nm in row.split(), row
        assert f"[{cell}]" in row, row
        assert re.search(r"running|sleeping", row), row
    tracked = _tracked(pids)

    def row_of(text: str, pid: int) -> str | None:
        return next((line for line in text.splitlines() if re.match(rf"\s*{pid}\s", line)), None)

    ex = ok(k, f":kill {pids[0]}")
    assert str(pids[0]) in text_result(ex), ex.dump()
    # Stopped (its handle is held by a variable: a zombie until joined, as in Python).
    assert _wait_stopped(tracked[:1]) == [], _describe(tracked[:1])
    assert all(_remains(p) and _state(p) != psutil.STATUS_ZOMBIE for p in tracked[1:]), (
        f"`:kill PID` stopped others: {_describe(tracked)}"
    )
    row = row_of(text_result(ok(k, ":procs")), pids[0])
    assert row is None or not re.search(r"running|sleeping", row), row
    bad = k.execute(":kill 1")
    assert bad.status == "error" and bad.error["ename"] == "KillError", bad.dump()
    assert psutil.pid_exists(1)
    ok(k, ":kill all")
    assert _wait_stopped(tracked) == [], _describe(tracked)
    text = text_result(ok(k, ":procs"))
    for pid in pids:
        row = row_of(text, pid)
        assert row is None or not re.search(r"running|sleeping", row), text
    ex = ok(k, f"[{name}.join().is_ok(), {name}_b.join().is_ok(), {name}_c.join().is_ok()]")
    assert text_result(ex) == "[true, true, true]", ex.dump()
    left = _wait_gone(tracked)
    assert left == [], f"left after :kill and join: {_describe(left)}"
    text = text_result(ok(k, ":procs"))
    assert not any(row_of(text, p) for p in pids), text


# ---------------------------------------------------------------- 4. output


def test_child_output_arrives_while_it_runs(clean: Kernel):
    k = clean
    k.settle()
    code = (
        "let p = Process::new(|| { println!(\"tick 0\"); eprintln!(\"etick 0\");\n"
        "  std::thread::sleep(std::time::Duration::from_secs(3)); println!(\"tick 1\"); }).with_name(\"ticker\");\n"
        "p.start().unwrap(); p.join().unwrap();"
    )
    ex = ok(k, code)
    assert ex.stdout == "tick 0\ntick 1\n", ex.dump()
    assert ex.stderr == "etick 0\n", ex.dump()
    first = next(r for r in ex.of_type("stream") if "tick 0" in r.content["text"])
    assert ex.t_idle - first.t > 1.5, f"the child's first line came only at the end\n{ex.dump()}"


def test_concurrent_children_lines_whole_and_in_order(clean: Kernel):
    k = clean
    k.settle()
    n, pad = 3000, "x" * 150
    code = (
        "let kids: Vec<Process> = [\"A\", \"B\", \"C\"].iter().map(|&tag| Process::new(move || {\n"
        f"    for i in 0..{n} {{ print!(\"{{tag}} {{i}} \"); println!(\"{pad}\"); eprintln!(\"{{tag}}-err {{i}}\"); }}\n"
        "}).with_name(format!(\"writer-{tag}\"))).collect();\n"
        "for p in &kids { p.start().unwrap(); } for p in &kids { p.join().unwrap(); }"
    )
    ex = ok(k, code, timeout=300)
    for stream, pat in (("stdout", rf"^([ABC]) (\d+) {pad}$"), ("stderr", r"^([ABC])-err (\d+)$")):
        text = ex.stream(stream)
        assert text.endswith("\n"), text[-300:]
        seqs: dict[str, list[int]] = {"A": [], "B": [], "C": []}
        for line in text.splitlines():
            m = re.match(pat, line)
            assert m, f"torn or foreign {stream} line: {line!r}"
            seqs[m.group(1)].append(int(m.group(2)))
        for tag, seq in seqs.items():
            assert seq == list(range(n)), f"{stream} of {tag}: {len(seq)} lines, out of order or lost"


def test_output_between_cells_is_kept_marked_and_never_blocks(clean: Kernel):
    k = clean
    k.settle()
    name = unique("late")
    lines = 4000  # ~300 KB: more than a pipe holds, less than the 4 MiB kept
    code = (
        f"let {name} = Process::new(|| {{\n"
        "    std::thread::sleep(std::time::Duration::from_millis(1500));\n"
        f"    for i in 0..{lines} {{ println!(\"late {{i}} {'y' * 60}\"); }}\n"
        f"}}).with_name(\"{name}\"); {name}.start().unwrap();\n"
        f"println!(\"PIDS [{{}}]\", {name}.pid().unwrap());"
    )
    ex = ok(k, code)
    assert "late " not in ex.stdout, ex.dump()
    (child,) = _tracked(pids_in(ex.stdout))
    # The writer finishes while no cell runs: its output is drained.
    deadline = time.monotonic() + 60
    while _state(child) not in (None, psutil.STATUS_ZOMBIE):
        assert time.monotonic() < deadline, f"the writer is blocked: {_describe([child])}"
        k.pump(0.1)
    k.pump(1.0)
    nxt = ok(k, "()")
    got = [line for line in nxt.stdout.splitlines() if "late " in line]
    marker = f"[{name} pid {child.pid}, between cells] "
    assert len(got) == lines, f"{len(got)} of {lines} lines shown\n{nxt.dump()[:3000]}"
    for i, line in enumerate(got):
        assert line == f"{marker}late {i} {'y' * 60}", line
    ok(k, f"{name}.join().unwrap();")


# ---------------------------------------------------------------- 5. pictures


def _lanes(svg: str) -> list[ET.Element]:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG_NS}svg", root.tag
    return [g for g in root.iter(f"{SVG_NS}g") if "lane" in g.get("class", "").split()]


def _task_count(lane: ET.Element) -> int:
    total = 0
    for r in lane.iter(f"{SVG_NS}rect"):
        if r.get("class") == "task":
            title = r.find(f"{SVG_NS}title")
            m = re.match(r"(\d+) tasks", title.text if title is not None else "")
            total += int(m.group(1)) if m else 1
    return total


def test_timeline_one_lane_per_process(clean: Kernel):
    k = clean
    code = (
        "let ps: Vec<Process> = [\"uno\", \"dos\", \"tres\"].iter().map(|n| Process::new(|| "
        "std::thread::sleep(std::time::Duration::from_millis(100))).with_name(*n)).collect();\n"
        "for p in &ps { p.start().unwrap(); } for p in &ps { p.join().unwrap(); }\n"
        "println!(\"PIDS {:?}\", ps.iter().map(|p| p.pid().unwrap()).collect::<Vec<_>>());\n"
        "forja::timeline()"
    )
    ex = ok(k, code)
    pids = pids_in(ex.stdout)
    svg = ex.result["data"].get("image/svg+xml") if ex.result else None
    assert svg, ex.dump()
    lanes = _lanes(svg)
    got = sorted((int(g.get("data-pid")), g.get("data-name")) for g in lanes)
    assert got == sorted(zip(pids, ["uno", "dos", "tres"])), got
    assert all(g.get("data-exitcode") == "0" for g in lanes), [g.attrib for g in lanes]


def test_timeline_of_a_pool_shows_tasks_on_workers(clean: Kernel):
    k = clean
    n = 8
    code = (
        "let pool = Pool::new(2).unwrap();\n"
        f"let r = pool.chunksize(1).map(|x: u64| {{ std::thread::sleep(std::time::Duration::from_millis(150)); x * x }}, 0..{n}u64).unwrap();\n"
        "println!(\"SUM {}\", r.iter().sum::<u64>());\n"
        "println!(\"PIDS {:?}\", pool.worker_pids());\n"
        "forja::timeline()"
    )
    ex = ok(k, code)
    assert f"SUM {sum(x * x for x in range(n))}" in ex.stdout, ex.dump()
    workers = set(pids_in(ex.stdout))
    assert len(workers) == 2, ex.dump()
    svg = ex.result["data"].get("image/svg+xml") if ex.result else None
    assert svg, ex.dump()
    lanes = {int(g.get("data-pid")): g for g in _lanes(svg)}
    assert workers <= set(lanes), (workers, sorted(lanes))
    per_worker = {pid: _task_count(lanes[pid]) for pid in workers}
    print(f"\ntasks per worker lane: {per_worker}")
    assert sum(_task_count(g) for g in lanes.values()) == n, per_worker
    assert sum(per_worker.values()) == n, per_worker


@pytest.mark.parametrize(
    "what,code",
    [
        ("Process", "let p = Process::new(|| {}).with_name(\"shown\"); p.start().unwrap(); p.join().unwrap(); p"),
        ("Value", "Value::new(42i32).unwrap()"),
        ("Array", "Array::from_slice(&[1.5f64, 2.5, 3.5]).unwrap()"),
        ("Queue", "{ let q: Queue<u8> = Queue::with_maxsize(4).unwrap(); q.put(&1).unwrap(); q }"),
        ("Pool", "Pool::new(2).unwrap()"),
    ],
)
def test_rich_display(clean: Kernel, what: str, code: str):
    ex = ok(clean, code)
    assert ex.result is not None, ex.dump()
    data = ex.result["data"]
    assert "text/html" in data and "<table" in data["text/html"], ex.dump()
    assert data.get("text/plain"), ex.dump()


def test_long_pool_map_shows_live_progress(clean: Kernel):
    code = (
        "let pool = Pool::new(2).unwrap();\n"
        "let r = pool.chunksize(1).map(|x: u64| { std::thread::sleep(std::time::Duration::from_millis(250)); x }, 0..16u64).unwrap();\n"
        "r.len()"
    )
    ex = ok(clean, code)
    assert text_result(ex) == "16", ex.dump()
    rich = [r for r in ex.iopub if r.type in ("display_data", "update_display_data")]
    assert rich and rich[0].type == "display_data", ex.dump()
    did = rich[0].content.get("transient", {}).get("display_id")
    assert did, ex.dump()
    updates = [r for r in rich[1:] if r.type == "update_display_data"]
    assert updates, f"no update of the progress display\n{ex.dump()}"
    assert all(u.content["transient"]["display_id"] == did for u in updates), ex.dump()


# ---------------------------------------------------------------- 6. limits


def test_fork_bomb_stops_at_the_cap_and_kernel_recovers(clean: Kernel):
    k = clean
    existing = {p.pid for p in cell_processes(k)}
    code = (
        "let mut started = 0u32;\n"
        f"loop {{ Process::new(|| loop {{ std::thread::sleep(std::time::Duration::from_secs(1)); }}).start().unwrap(); started += 1; }}"
    )
    t0 = time.monotonic()
    ex = k.execute(code, timeout=300)
    print(f"\nfork bomb cell: {time.monotonic() - t0:.1f}s")
    assert ex.status == "error", ex.dump()
    err = ex.error
    msg = strip_ansi(err["evalue"] + "\n".join(err["traceback"]))
    assert "256" in msg, msg
    assert re.search(r"too many|TooManyChildren", msg, re.I), msg
    live = [p for p in cell_processes(k) if p.pid not in existing and _remains(p)]
    print(f"live children after the bomb: {len(live)}")
    assert 0 < len(live) <= 256, len(live)
    # The kernel answers.
    t0 = time.monotonic()
    ex = ok(k, "6 * 7", timeout=HANG * 3)
    assert text_result(ex) == "42"
    assert time.monotonic() - t0 < HANG * 3
    ok(k, ":kill all", timeout=HANG * 3)
    left = _wait_gone(live, GONE * 2)
    assert left == [], f"{len(left)} left after :kill all, e.g. {_describe(left[:5])}"
    # And starting processes works again.
    ex = ok(k, "let p = Process::new(|| {}); p.start().unwrap(); p.join().unwrap(); p.exitcode()")
    assert text_result(ex) == "Some(0)", ex.dump()


# ---------------------------------------------------------------- 1. offline


def _unshare_works() -> str | None:
    try:
        r = subprocess.run(["unshare", "-n", "true"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unshare -n not available: {e}"
    if r.returncode != 0:
        return f"unshare -n does not work here (needs CAP_SYS_ADMIN): {r.stderr.strip()}"
    r = subprocess.run(
        ["unshare", "-n", "sh", "-c", "cat /proc/net/dev"], capture_output=True, text=True, timeout=20
    )
    if "eth" in r.stdout or "ens" in r.stdout:
        return "unshare -n kept the network interfaces"
    return None


def test_forja_cells_work_offline_through_nbclient(tmp_path: Path):
    reason = _unshare_works()
    if reason:
        pytest.skip(reason)
    import nbclient

    spec_dir = tmp_path / "kernels" / "forja-offline"
    spec_dir.mkdir(parents=True)
    spec = json.loads((ROOT / ".venv/share/jupyter/kernels/forja/kernel.json").read_text())
    spec["argv"] = ["unshare", "-n", *spec["argv"]]
    spec["display_name"] = "Rust (forja, no network)"
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    ksm = KernelSpecManager(kernel_dirs=[str(tmp_path / "kernels")])
    # ipc transport: the kernel needs no network at all, not even loopback.
    km = KernelManager(
        kernel_name="forja-offline", kernel_spec_manager=ksm, transport="ipc",
        ip=str(tmp_path / "ipc" / "k"),
    )
    (tmp_path / "ipc").mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "let q: Queue<u64> = Queue::new().unwrap();\n"
            "let ps: Vec<Process> = (0..3u64).map(|i| { let q = q.clone();\n"
            "    Process::new(move || q.put(&(i * 10)).unwrap()).with_name(format!(\"offline-{i}\")) }).collect();\n"
            "for p in &ps { p.start().unwrap(); }\n"
            "let total: u64 = (0..3).map(|_| q.get().unwrap()).sum();\n"
            "for p in &ps { p.join().unwrap(); }\n"
            "println!(\"OFFLINE total={total}\");\n"
            "println!(\"NETNS {}\", std::fs::read_link(\"/proc/self/ns/net\").unwrap().display());"
        ),
        nbformat.v4.new_code_cell(
            "let ps2: Vec<Process> = (0..2).map(|i| Process::new(|| {}).with_name(format!(\"off-lane-{i}\"))).collect();\n"
            "for p in &ps2 { p.start().unwrap(); } for p in &ps2 { p.join().unwrap(); }\n"
            "forja::timeline()"
        ),
    ]
    client = nbclient.NotebookClient(
        nb, km=km, timeout=300, startup_timeout=120, kernel_name="forja-offline"
    )
    t0 = time.monotonic()
    try:
        client.execute()
    finally:
        # nbclient shuts down only kernels it made itself.
        if km.has_kernel:
            km.shutdown_kernel(now=True)
    print(f"\noffline notebook (kernel start + 2 cells): {time.monotonic() - t0:.1f}s")
    out0 = "".join(o.get("text", "") for o in nb.cells[0].outputs if o.output_type == "stream")
    assert "OFFLINE total=30" in out0, nb.cells[0].outputs
    m = re.search(r"NETNS (\S+)", out0)
    assert m and m.group(1) != os.readlink("/proc/self/ns/net"), "the kernel ran with the network"
    res = [o for o in nb.cells[1].outputs if o.output_type == "execute_result"]
    assert res and "image/svg+xml" in res[0]["data"], nb.cells[1].outputs
    names = sorted(g.get("data-name") for g in _lanes(res[0]["data"]["image/svg+xml"]))
    assert names == ["off-lane-0", "off-lane-1"], names
