"""Issue 12: the cell behaves as a student expects.

Through `jupyter_client`, against the installed kernel:

1. Interrupts: a blocked `join` or `recv` returns `Interrupted` even when the
   kernel's stopping of the cell's processes satisfied the wait, the cell
   stops there, one short message; a live `Pool` progress display ends as
   interrupted; after a runner restart the lost variables are sorted and the
   note says functions and types were kept.
2. Every `EVCXR_BEGIN_CONTENT` block printed during a cell is a
   `display_data` at once, in order with the text, from the cell and from a
   child; split blocks are put together; an unfinished one comes back as
   text; only the cell's value is an `execute_result`.
3. `forja::input` / `forja::input_password` through the stdin channel, from
   the cell and from a child; `allow_stdin: false` is a clear error.
4. History search is IPython's (SQLite GLOB), checked against the pinned
   IPython's `HistoryManager` on the same entries.
5. The start-up note is a display, cleared before the cell's output.
"""

from __future__ import annotations

import json
import queue
import time
from pathlib import Path

import pytest

from conftest import FLUSH, Execution, Kernel, ok, start_kernel, strip_ansi, unique

HANG = 20


def wait_for_stream(k: Kernel, msg_id: str, needle: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = k.iopub_for(msg_id)
        if needle in "".join(r.content.get("text", "") for r in got if r.type == "stream"):
            return
        if any(r.type == "status" and r.content["execution_state"] == "idle" for r in got):
            raise AssertionError(f"cell ended before printing {needle!r}: {got}")
        k.pump(0.05)
    raise TimeoutError(f"{needle!r} never arrived")


def interrupt(k: Kernel) -> None:
    cid = k.send_control("interrupt_request", {})
    assert k.control_reply(cid, timeout=HANG)["content"]["status"] == "ok"


def run_and_interrupt(k: Kernel, code: str, wait: float = 0.0) -> Execution:
    mid = k.send_execute(code)
    wait_for_stream(k, mid, "READY")
    if wait:
        k.pump(wait)
    interrupt(k)
    return k.collect(code, mid, timeout=HANG * 3)


@pytest.fixture(scope="module")
def ck():
    k = start_kernel()
    try:
        k.warm_up()
        yield k
    finally:
        k.close()


# ---------------------------------------------------------------- 1. interrupts


def _check_one_short_interrupt(ex: Execution) -> None:
    assert ex.status == "error", ex.dump()
    assert ex.error["ename"] == "Interrupted", ex.dump()
    assert "no debería llegar acá" not in ex.stdout, ex.dump()
    everything = ex.stdout + ex.stderr + ex.error["evalue"] + "".join(ex.error["traceback"])
    assert "clear_interrupt" not in everything, ex.dump()
    # The `?` echo is one short line, not a second explanation.
    err_lines = [l for l in strip_ansi(ex.stderr).splitlines() if l.strip()]
    assert len(err_lines) <= 1 and all(len(l) < 40 for l in err_lines), ex.dump()


def test_interrupted_join_returns_interrupted_and_the_cell_stops(ck: Kernel):
    code = (
        "let p = Process::new(|| std::thread::sleep(std::time::Duration::from_secs(600)));\n"
        f"p.start()?; println!(\"READY\"); {FLUSH}\n"
        "p.join()?;\n"
        "println!(\"no debería llegar acá\");"
    )
    for _ in range(2):  # "every time"
        _check_one_short_interrupt(run_and_interrupt(ck, code, wait=0.2))


def test_interrupted_recv_returns_interrupted_not_eof(ck: Kernel):
    code = (
        "let (a, b) = Pipe::new::<u64>()?;\n"
        "let p = Process::new(move || { let _b = &b; std::thread::sleep(std::time::Duration::from_secs(600)); });\n"
        f"p.start()?; println!(\"READY\"); {FLUSH}\n"
        "let r = a.recv();\n"
        "println!(\"recv gave {:?}\", r.as_ref().err().map(|e| format!(\"{e:?}\")));\n"
        "r?; println!(\"no debería llegar acá\");"
    )
    ex = run_and_interrupt(ck, code, wait=0.2)
    _check_one_short_interrupt(ex)
    assert "Interrupted" in ex.stdout and "Eof" not in ex.stdout, ex.dump()


def test_progress_display_ends_as_interrupted(ck: Kernel):
    code = (
        "let pool = Pool::new(2)?;\n"
        f"println!(\"READY\"); {FLUSH}\n"
        "let r = pool.map(|x: u64| { std::thread::sleep(std::time::Duration::from_secs(600)); x }, 0..4u64)?;\n"
        "println!(\"no debería llegar acá {r:?}\");"
    )
    mid = ck.send_execute(code)
    wait_for_stream(ck, mid, "READY")
    # The progress display appears after a second of waiting.
    deadline = time.monotonic() + 30
    shown = None
    while shown is None and time.monotonic() < deadline:
        ck.pump(0.1)
        shown = next((r for r in ck.iopub_for(mid) if r.type == "display_data"), None)
    assert shown is not None, ck.iopub_for(mid)
    assert "text/plain" in shown.content["data"], shown.content
    did = shown.content["transient"]["display_id"]
    interrupt(ck)
    ex = ck.collect(code, mid, timeout=HANG * 3)
    assert ex.status == "error" and ex.error["ename"] == "Interrupted", ex.dump()
    updates = [
        r.content for r in ex.iopub
        if r.type == "update_display_data" and r.content["transient"]["display_id"] == did
    ]
    assert updates, ex.dump()
    last = updates[-1]["data"]
    assert any(w in last["text/plain"] for w in ("interrupted", "interrumpido")), last
    assert any(w in last["text/html"] for w in ("interrupted", "interrumpido")), last


def test_restart_lists_lost_variables_sorted_and_keeps_functions(ck: Kernel):
    names = [unique(p) for p in ("zeta", "alfa", "mu")]
    ok(ck, "".join(f"let {n}: i32 = 1;\n" for n in names) + f"fn kept_{names[0]}() -> i32 {{ 5 }}")
    ex = run_and_interrupt(ck, f"println!(\"READY\"); {FLUSH}\nloop {{}}")
    assert ex.status == "error" and ex.error["ename"] == "Interrupted", ex.dump()
    evalue = ex.error["evalue"]
    assert "lost: " + ", ".join(sorted(names)) in evalue, evalue
    assert "functions and types were kept" in evalue, evalue
    after = ok(ck, f"kept_{names[0]}()")
    assert after.result["data"]["text/plain"] == "5", after.dump()


# ---------------------------------------------------------------- 2. displays


def _outputs(ex: Execution) -> list[tuple[str, str]]:
    """The cell's outputs in order: stream text merged, displays by MIME."""
    out: list[tuple[str, str]] = []
    for r in ex.iopub:
        if r.type == "stream":
            if out and out[-1][0] == "stream":
                out[-1] = ("stream", out[-1][1] + r.content["text"])
            else:
                out.append(("stream", r.content["text"]))
        elif r.type in ("display_data", "execute_result"):
            out.append((r.type, json.dumps(r.content["data"], sort_keys=True)))
    return out


def test_printed_blocks_are_displays_at_once_in_order(ck: Kernel):
    code = (
        "println!(\"before\");\n"
        "println!(\"EVCXR_BEGIN_CONTENT text/html\\n<b>one</b>\\nEVCXR_END_CONTENT\");\n"
        "println!(\"middle\");\n"
        f"print!(\"EVCXR_BEGIN_CONTENT text/html\\n<b>t\"); {FLUSH}\n"
        f"std::thread::sleep(std::time::Duration::from_millis(150)); print!(\"wo</b>\\nEVCXR_END\"); {FLUSH}\n"
        "std::thread::sleep(std::time::Duration::from_millis(150)); println!(\"_CONTENT\");\n"
        "println!(\"after\");\n"
        "let p = Process::new(|| { println!(\"child says\"); println!(\"EVCXR_BEGIN_CONTENT image/svg+xml\\n<svg>child</svg>\\nEVCXR_END_CONTENT\"); });\n"
        "p.start()?; p.join()?;\n"
        "6 * 7"
    )
    ex = ok(ck, code)
    outs = _outputs(ex)
    html = lambda s: json.dumps({"text/html": s}, sort_keys=True)  # noqa: E731
    svg = ("display_data", json.dumps({"image/svg+xml": "<svg>child</svg>"}))
    # The child's output travels over its own connection, the parent's
    # through its stdout pump: the two may reach the kernel in either order.
    # Each stays in order and whole: the parent's outputs with the child's
    # taken out, and the child's block as one display.
    assert outs.count(svg) == 1, ex.dump()
    assert "child says\n" in ex.stdout, ex.dump()
    parent: list[tuple[str, str]] = []
    for kind, text in outs:
        if (kind, text) == svg:
            continue
        if kind == "stream":
            text = text.replace("child says\n", "", 1)
            if not text:
                continue
            if parent and parent[-1][0] == "stream":
                parent[-1] = ("stream", parent[-1][1] + text)
                continue
        parent.append((kind, text))
    assert parent == [
        ("stream", "before\n"),
        ("display_data", html("<b>one</b>")),
        ("stream", "middle\n"),
        ("display_data", html("<b>two</b>")),
        ("stream", "after\n"),
        ("execute_result", json.dumps({"text/plain": "42"})),
    ], ex.dump()
    assert "EVCXR_" not in ex.stdout, ex.dump()


def test_a_block_that_never_ends_is_text_and_the_cell_ends(ck: Kernel):
    ex = ok(ck, "print!(\"EVCXR_BEGIN_CONTENT text/html\\n<b>never\");", timeout=60)
    assert not any(r.type == "display_data" for r in ex.iopub), ex.dump()
    assert "<b>never" in ex.stdout, ex.dump()
    nxt = ok(ck, "println!(\"next\");")
    assert nxt.stdout == "next\n", nxt.dump()


# ---------------------------------------------------------------- 3. input


def _run_with_input(k: Kernel, code: str, answers: list[str]) -> tuple[Execution, list[dict]]:
    mid = k.send_execute(code, allow_stdin=True)
    asked = []
    for answer in answers:
        deadline = time.monotonic() + 120
        while True:
            try:
                msg = k.kc.get_stdin_msg(timeout=0.1)
                break
            except queue.Empty:
                k.pump(0)
                assert time.monotonic() < deadline, "no input_request"
        assert msg["header"]["msg_type"] == "input_request", msg
        asked.append(msg["content"])
        k.kc.input(answer)
    return k.collect(code, mid), asked


def test_input_from_the_cell_and_from_a_child(ck: Kernel):
    code = (
        "println!(\"pregunto\");\n"
        "let name = forja::input(\"¿Nombre? \")?;\n"
        "println!(\"hola {name}\");\n"
        "let p = Process::new(|| { let pw = forja::input_password(\"Contraseña: \").unwrap(); println!(\"child got {} chars\", pw.chars().count()); });\n"
        "p.start()?; p.join()?;"
    )
    ex, asked = _run_with_input(ck, code, ["Ada", "sésamo"])
    assert ex.status == "ok", ex.dump()
    assert asked == [
        {"prompt": "¿Nombre? ", "password": False},
        {"prompt": "Contraseña: ", "password": True},
    ], asked
    assert "hola Ada" in ex.stdout and "child got 6 chars" in ex.stdout, ex.dump()


def test_input_without_stdin_is_a_clear_error(ck: Kernel):
    t0 = time.monotonic()
    ex = ok(
        ck,
        "match forja::input(\"x? \") { Ok(v) => println!(\"got {v}\"), Err(e) => println!(\"ERR {e}\") }",
        allow_stdin=False,
    )
    assert time.monotonic() - t0 < 60
    assert "ERR" in ex.stdout and "allow_stdin" in ex.stdout, ex.dump()


# ---------------------------------------------------- 4. history, 5. quiet start

ENTRIES = [
    "6 * 7",
    "let v = [1, 2];",
    "v[1]",
    "x?",
    "let x = 6 * 7;",
    "6 * 7",
    "println!(\"[a]\");",
    "a-b",
    "]",
    "let ñ = 'ñ';",
    "let v = [1, 2];",
    "6*7",
]
PATTERNS = [
    "6 *", "*", "6*", "*7", "v[1*", "v[[]1]", "*[[]*", "[^l6]*", "[a-c]*", "[]]",
    "a[-]b", "a[b-]?", "x?", "x[?]", "*[", "v[1", "let ? = *", "*ñ*", "[!a]*", "?", "",
]


def _ipython_search() -> list:
    """The pinned IPython's answers (its HistoryManager needs a shell only to
    push `_i` variables: a stand-in does)."""
    from IPython.core.history import HistoryManager
    from IPython.core.interactiveshell import InteractiveShellABC

    class Shell:
        def push(self, *args, **kwargs):
            pass

    InteractiveShellABC.register(Shell)
    hm = HistoryManager(shell=Shell(), hist_file=":memory:")
    for line, source in enumerate(ENTRIES, 1):
        hm.store_inputs(line, source, source)
    answers = []
    for pattern in PATTERNS:
        for unique_ in (False, True):
            for n in (None, 2):
                rows = hm.search(pattern, n=n, unique=unique_)
                answers.append([[s, l, src] for s, l, src in rows])
    hm.end_session()
    return answers


def test_history_search_is_ipythons_and_the_start_note_is_not_kept(tmp_path: Path, monkeypatch):
    hist = tmp_path / "history.jsonl"
    hist.write_text(
        "".join(json.dumps({"session": 1, "line": i, "input": s}) + "\n" for i, s in enumerate(ENTRIES, 1))
    )
    monkeypatch.setenv("FORJA_HISTORY_FILE", str(hist))
    k = start_kernel()
    try:
        # 5. A cell sent at once, while the session starts.
        # (not stored in the history, which is compared below)
        code = "println!(\"real output\"); 6 * 7"
        ex = k.execute(code, timeout=300, store_history=False)
        assert ex.status == "ok", ex.dump()
        outputs = []  # what a notebook keeps, as nbclient/JupyterLab apply it
        for r in ex.iopub:
            if r.type == "clear_output":
                outputs = []
            elif r.type in ("stream", "display_data", "execute_result", "error"):
                outputs.append(r)
        assert "still starting" not in ex.stderr, ex.dump()  # not an error
        assert "still starting" not in json.dumps([r.content for r in outputs]), ex.dump()
        kept = "".join(r.content["text"] for r in outputs if r.type == "stream" and r.content["name"] == "stdout")
        assert kept == "real output\n", ex.dump()
        assert [r.type for r in outputs if r.type != "stream"] == ["execute_result"], ex.dump()
        notes = [r for r in ex.iopub if r.type == "display_data" and "still starting" in json.dumps(r.content)]
        print(f"\nstart-up note shown and cleared: {bool(notes)}")
        if notes:  # the note came, and before any output of the cell
            types = [r.type for r in ex.iopub]
            assert types.index("display_data") < types.index("clear_output") < types.index("stream"), ex.dump()

        # 4. History search, against IPython on the same entries (session 1).
        expected = iter(_ipython_search())
        for pattern in PATTERNS:
            for unique_ in (False, True):
                for n in (None, 2):
                    args = {"pattern": pattern, "unique": unique_}
                    if n is not None:
                        args["n"] = n
                    reply = k.request("history", hist_access_type="search", **args)
                    got = [row for row in reply["content"]["history"] if row[0] == 1]
                    want = next(expected)
                    assert got == want, f"pattern {pattern!r} unique={unique_} n={n}: {got} != {want}"
    finally:
        k.close()
