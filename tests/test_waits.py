"""Issue 17, the kernel side: the wait-for graph of a stuck cell.

Through `jupyter_client`, against the installed kernel (one kernel for the
module; the checks are invariants, never an interleaving):

1. A cell whose processes are all stuck in forja waits (detection off: a
   parent joins a child waiting on an `Event` nobody sets) gets the graph as
   a `display_data` of that cell (SVG + text naming the primitives) before
   any interrupt; interrupting it then works and earlier variables stay.
2. `:waits` between cells shows the last stuck graph (or says nothing waits).
3. With detection on, a lock-order inversion between two processes ends in
   `Deadlock` naming both locks (given with `with_name`), not in a hang.
4. A 5 s `Pool::map` of busy tasks shows no graph.
5. `:waits stop-after 2s` interrupts a stuck cell with a note; the next cell
   runs and earlier variables stay.
"""

from __future__ import annotations

import time

import pytest

from conftest import FLUSH, Kernel, ok, start_kernel

HANG = 30


def graphs(got) -> list[dict]:
    """The wait graphs among displays (a bundle with an SVG)."""
    return [
        r.content["data"]
        for r in got
        if r.type in ("display_data", "execute_result") and "image/svg+xml" in r.content["data"]
    ]


def interrupt(k: Kernel) -> None:
    cid = k.send_control("interrupt_request", {})
    assert k.control_reply(cid, timeout=HANG)["content"]["status"] == "ok"


def stuck_cell(event: str, child: str) -> str:
    """A cell whose tree is quiescent: the child waits on an Event nobody
    sets, the cell joins it; detection is off, so it hangs as in Python."""
    return (
        "forja::deadlock::detect(false)?;\n"
        f'let ev = Event::new()?.with_name("{event}");\n'
        "let ev2 = ev.clone();\n"
        f'let p = Process::new(move || {{ let _ = ev2.wait(); }}).with_name("{child}");\n'
        f'p.start()?; println!("READY"); {FLUSH}\n'
        "p.join()?;\n"
        'println!("no debería llegar acá");'
    )


@pytest.fixture(scope="module")
def wk():
    k = start_kernel()
    try:
        k.warm_up()
        yield k
    finally:
        k.close()


def test_nothing_waits_at_first(wk: Kernel):
    ex = ok(wk, ":waits")
    text = ex.result["data"]["text/plain"]
    assert "no process is waiting" in text.lower(), ex.dump()


def test_a_stuck_cell_shows_its_graph_before_any_interrupt(wk: Kernel):
    ok(wk, "let guardado = 40 + 2;")
    code = stuck_cell("evento_nunca", "hijo_que_espera")
    mid = wk.send_execute(code)
    t0 = time.monotonic()
    shown: list[dict] = []
    while not shown and time.monotonic() - t0 < 120:
        wk.pump(0.2)
        got = wk.iopub_for(mid)
        assert not any(
            r.type == "status" and r.content["execution_state"] == "idle" for r in got
        ), f"the cell ended by itself: {got}"
        shown = graphs(got)
    assert shown, "no graph within 120 s of a stuck cell"
    g = shown[0]
    assert g["image/svg+xml"].lstrip().startswith("<svg"), g
    assert "evento_nunca" in g["image/svg+xml"] and "evento_nunca" in g["text/plain"], g
    assert "hijo_que_espera" in g["text/plain"], g
    assert "stuck" in g["text/plain"], g
    interrupt(wk)
    ex = wk.collect(code, mid, timeout=HANG * 3)
    assert ex.status == "error", ex.dump()
    assert "no debería llegar acá" not in ex.stdout, ex.dump()
    assert len(graphs(ex.iopub)) == 1, "the graph is shown once"
    assert ok(wk, "guardado + 1").result["data"]["text/plain"] == "43"

    # Between cells, `:waits` shows that graph (or the tree now, if a
    # process of it is still there).
    ex = ok(wk, ":waits")
    assert "evento_nunca" in ex.result["data"]["text/plain"], ex.dump()


def test_a_lock_order_inversion_is_a_named_deadlock(wk: Kernel):
    code = (
        "forja::deadlock::detect(true)?;\n"
        'let a = Lock::new()?.with_name("cuchara_a");\n'
        'let b = Lock::new()?.with_name("cuchara_b");\n'
        "let bar = Barrier::new(2)?;\n"
        "let (a2, b2, bar2) = (a.clone(), b.clone(), bar.clone());\n"
        "let p = Process::new(move || {\n"
        "    let _gb = b2.acquire().unwrap();\n"
        "    bar2.wait().unwrap();\n"
        '    match a2.acquire() { Ok(_) => println!("hijo: tomé a"), Err(e) => println!("hijo: {e}") }\n'
        f"    {FLUSH}\n"
        '}).with_name("hijo_inverso");\n'
        "p.start()?;\n"
        "let ga = a.acquire()?;\n"
        "bar.wait()?;\n"
        "let r = b.acquire().map(|_| ());\n"
        "drop(ga);\n"
        'println!("padre: {}", r.as_ref().err().map(|e| e.to_string()).unwrap_or_default());\n'
        "p.join()?;\n"
        'println!("FIN");'
    )
    ex = wk.execute(code, timeout=HANG * 3)
    assert ex.status == "ok", ex.dump()
    out = ex.stdout
    assert "FIN" in out, ex.dump()
    said = [line for line in out.splitlines() if "deadlock" in line.lower()]
    assert len(said) == 1, ex.dump()  # one process of the cycle reports it
    assert "cuchara_a" in said[0] and "cuchara_b" in said[0], ex.dump()
    assert not graphs(ex.iopub), "a deadlock that is reported shows no graph"


def test_a_slow_pool_map_shows_no_graph(wk: Kernel):
    code = (
        "fn ocupado(x: u64) -> u64 {\n"
        "    let t = std::time::Instant::now();\n"
        "    let mut s = x;\n"
        "    while t.elapsed() < std::time::Duration::from_millis(2500) {\n"
        "        s = std::hint::black_box(s.wrapping_mul(31).wrapping_add(1));\n"
        "    }\n"
        "    s\n"
        "}\n"
        # The pool ends with the cell: a live pool's idle workers would keep
        # a later cell's tree from counting as stuck.
        "let n = { let pool = Pool::new(2)?; pool.map(ocupado, vec![1u64, 2, 3, 4])?.len() };\n"
        "n"
    )
    ex = ok(wk, code, timeout=HANG * 4)
    assert ex.result["data"]["text/plain"] == "4", ex.dump()
    assert not graphs(ex.iopub), ex.dump()


def test_stop_after_interrupts_a_stuck_cell(wk: Kernel):
    ok(wk, "let guardado2 = 7;")
    assert "2.0" in ok(wk, ":waits stop-after 2s").result["data"]["text/plain"]
    try:
        code = stuck_cell("evento_parado", "hijo_parado")
        ex = wk.execute(code, timeout=120)
        assert ex.status == "error", ex.dump()
        assert "no debería llegar acá" not in ex.stdout, ex.dump()
        assert "stopped the cell" in ex.stderr, ex.dump()
        assert len(graphs(ex.iopub)) == 1, ex.dump()
    finally:
        ok(wk, ":waits stop-after off")
    assert ok(wk, "guardado2 * 6").result["data"]["text/plain"] == "42"
    ex = wk.execute(":waits stop-after pronto")
    assert ex.status == "error" and "stop-after" in ex.error["evalue"], ex.dump()
