"""End-to-end tests of the forja kernel's Jupyter protocol, through real
clients (`jupyter_client`, and raw ZeroMQ sockets for the bad-input cases).

Time bounds are loose (about 10x the targets) and only catch hangs; ordering
checks are about guarantees (one thread's messages keep their order, nothing
follows a request's idle), never about interleavings.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import queue
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import psutil
import pytest
import zmq
from jupyter_client.session import Session

from conftest import CELL_TIMEOUT, Kernel, Received, strip_ansi, unique

HANG = 30  # seconds: anything slower than this is a hang


def rust_str(s: str) -> str:
    """A Rust string literal for `s` (JSON escapes are valid Rust escapes for
    the paths and words used here)."""
    return json.dumps(s)


# ---------------------------------------------------------------- kernel_info


def test_kernel_info_fields(kernel: Kernel):
    reply = kernel.request("kernel_info")
    c = reply["content"]
    assert c["status"] == "ok"
    assert c["implementation"] == "forja"
    major, minor = (int(x) for x in c["protocol_version"].split(".")[:2])
    assert (major, minor) >= (5, 3), c["protocol_version"]
    li = c["language_info"]
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True, check=True)
    assert li["version"] == rustc.stdout.split()[1]
    assert li["name"] == "rust"
    assert li["mimetype"] == "text/rust"
    assert li["file_extension"] == ".rs"
    assert li["pygments_lexer"] == "rust"
    assert li["codemirror_mode"] == "rust"
    assert c["banner"].strip()
    links = c["help_links"]
    assert all(set(link) >= {"text", "url"} for link in links), links
    urls = " ".join(link["url"] for link in links)
    texts = " ".join(link["text"] for link in links).lower()
    assert "doc.rust-lang.org" in urls and "std" in urls, links
    assert "forja" in texts, links


def test_kernel_info_answered_at_once_after_start():
    """kernel_info is answered while evcxr still warms up in the background."""
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name="forja")
    t0 = time.monotonic()
    km.start_kernel()
    kc = km.client()
    try:
        kc.start_channels()
        kc.wait_for_ready(timeout=HANG)
        elapsed = time.monotonic() - t0
        assert elapsed < 10, f"first kernel_info reply took {elapsed:.1f}s"
        # The control channel answers at once too.
        msg = kc.session.msg("kernel_info_request", {})
        kc.control_channel.send(msg)
        reply = kc.get_control_msg(timeout=10)
        assert reply["parent_header"]["msg_id"] == msg["header"]["msg_id"]
        assert reply["content"]["status"] == "ok"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)


def test_control_channel_answers_while_a_cell_runs(kernel: Kernel):
    code = (
        'println!("napping"); use std::io::Write; std::io::stdout().flush().unwrap();\n'
        "std::thread::sleep(std::time::Duration::from_secs(4));"
    )
    mid = kernel.send_execute(code)
    _wait_for_stream(kernel, mid, "napping")
    cid = kernel.send_control("kernel_info_request", {})
    reply = kernel.control_reply(cid, timeout=HANG)
    replied_at = time.monotonic()
    assert reply["content"]["status"] == "ok"
    ex = kernel.collect(code, mid)
    assert ex.status == "ok", ex.dump()
    idle_at = kernel.sent_at(mid) + ex.t_idle
    # The control reply came while the cell was still sleeping.
    assert idle_at - replied_at > 1.0, f"control reply {idle_at - replied_at:.2f}s before idle\n{ex.dump()}"


def _wait_for_stream(kernel: Kernel, msg_id: str, needle: str, timeout: float = CELL_TIMEOUT * 2):
    """Reads iopub until a stream of `msg_id` contains `needle`; returns its arrival."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = ""
        for r in kernel.iopub_for(msg_id):
            if r.type == "stream":
                text += r.content["text"]
                if needle in text:
                    return r
            if r.type == "status" and r.content["execution_state"] == "idle":
                raise AssertionError(
                    f"cell ended before printing {needle!r}: "
                    + "; ".join(f"{x.type} {x.content!r:.300}" for x in kernel.iopub_for(msg_id))
                )
        kernel.pump(0.05)
    raise TimeoutError(f"{needle!r} never arrived")


# ---------------------------------------------------------------- execute


def test_execute_result_and_counts(kernel: Kernel):
    ex = kernel.execute("vec![1, 2, 3]")
    assert ex.status == "ok", ex.dump()
    assert ex.result is not None, ex.dump()
    assert ex.result["data"]["text/plain"] == "[1, 2, 3]"
    count = ex.reply["content"]["execution_count"]
    assert ex.result["execution_count"] == count
    inputs = ex.of_type("execute_input")
    assert len(inputs) == 1 and inputs[0].content["code"] == "vec![1, 2, 3]"
    assert inputs[0].content["execution_count"] == count
    ex2 = kernel.execute('String::from("forja")')
    assert ex2.result["data"]["text/plain"] == '"forja"', ex2.dump()
    assert ex2.reply["content"]["execution_count"] == count + 1


def test_variables_persist_between_cells(kernel: Kernel):
    name = unique("kept")
    assert kernel.execute(f"let {name}: u64 = 40;").status == "ok"
    ex = kernel.execute(f"{name} + 2")
    assert ex.result["data"]["text/plain"] == "42", ex.dump()


def test_compile_error_is_readable(kernel: Kernel):
    code = 'let fine = 1;\nlet broken: i32 = "forty-two";\nfine'
    ex = kernel.execute(code)
    assert ex.status == "error", ex.dump()
    err = ex.error
    assert err is not None, ex.dump()
    assert err["ename"] and err["evalue"], err
    assert isinstance(err["traceback"], list) and all(isinstance(t, str) for t in err["traceback"])
    text = strip_ansi("\n".join(err["traceback"]))
    # rustc's message, pointing at the cell's own line 2 ...
    assert "mismatched types" in text or "E0308" in text, text
    assert 'let broken: i32 = "forty-two";' in text, text
    # ... not at evcxr's generated wrapper.
    assert "evcxr" not in text.lower(), text
    rc = ex.reply["content"]
    assert (rc["ename"], rc["evalue"], rc["traceback"]) == (err["ename"], err["evalue"], err["traceback"])
    assert ex.result is None
    # The failed cell defined nothing and broke nothing.
    assert kernel.execute("1 + 1").result["data"]["text/plain"] == "2"


def test_cells_survive_their_build_files_vanishing(fresh_kernel: Kernel):
    """A cleaner that empties old files under /tmp (systemd-tmpfiles) can
    remove a long-running kernel's compiled forja. Cells then compile through
    cargo again, which rebuilds it, instead of failing: the kernel runs rustc
    directly between cells only while everything it used is still there."""
    k = fresh_kernel
    assert k.execute("let kept: u32 = 41;").status == "ok"
    assert k.execute("kept + 1").result["data"]["text/plain"] == "42"
    work = [d for d in Path(tempfile.gettempdir()).glob(f"forja-kernel-{k.pid}-*") if d.is_dir()]
    assert len(work) == 1, work
    libs = list(work[0].glob("evcxr/target/*/debug/deps/libforja-*"))
    assert libs, "no compiled forja in the kernel's work dir"
    for lib in libs:
        lib.unlink()
    ex = k.execute("kept + forja::cpu_count() as u32 - forja::cpu_count() as u32 + 2", timeout=300)
    assert ex.status == "ok", ex.dump()
    assert ex.result["data"]["text/plain"] == "43", ex.dump()
    # Errors in the cell are still reported as errors, and the next cell runs.
    bad = k.execute('let wrong: u32 = "x";')
    assert bad.status == "error" and "mismatched types" in strip_ansi(bad.dump()), bad.dump()
    assert k.execute("kept + 3").result["data"]["text/plain"] == "44"


def test_panic_is_an_error_and_earlier_variables_survive(kernel: Kernel):
    name = unique("survivor")
    assert kernel.execute(f"let {name} = 7;").status == "ok"
    ex = kernel.execute('panic!("the answer was {}", 41);')
    assert ex.status == "error", ex.dump()
    err = ex.error
    assert err is not None, ex.dump()
    assert err["ename"]
    assert "the answer was 41" in err["evalue"], err
    assert ex.reply["content"]["ename"] == err["ename"]
    ex = kernel.execute(name)
    assert ex.status == "ok", ex.dump()
    assert ex.result["data"]["text/plain"] == "7"


def test_silent_publishes_no_input_or_result_and_keeps_count(kernel: Kernel):
    before = kernel.execute("1").reply["content"]["execution_count"]
    tok = unique("silent")
    ex = kernel.execute(f"let {tok} = 5; {tok} * 2", silent=True)
    assert ex.status == "ok", ex.dump()
    assert ex.of_type("execute_input") == [], ex.dump()
    assert ex.of_type("execute_result") == [], ex.dump()
    after = kernel.execute("2").reply["content"]["execution_count"]
    assert after == before + 1
    # (unique and n given: a bare search is tested in test_history_search_unique)
    hist = kernel.request(
        "history", hist_access_type="search", pattern=f"*{tok}*", unique=False, n=1000,
        output=False, raw=True,
    )
    assert hist["content"]["history"] == []


def test_store_history_false_keeps_count_and_history(kernel: Kernel):
    before = kernel.execute("3").reply["content"]["execution_count"]
    tok = unique("nohist")
    ex = kernel.execute(f"let {tok} = 6; {tok} * 7", store_history=False)
    assert ex.status == "ok", ex.dump()
    assert ex.result["data"]["text/plain"] == "42", ex.dump()
    after = kernel.execute("4").reply["content"]["execution_count"]
    assert after == before + 1
    # (unique and n given: a bare search is tested in test_history_search_unique)
    hist = kernel.request(
        "history", hist_access_type="search", pattern=f"*{tok}*", unique=False, n=1000,
        output=False, raw=True,
    )
    assert hist["content"]["history"] == []


def test_user_expressions(kernel: Kernel):
    name = unique("ue")
    ex = kernel.execute(
        f"let {name}: i64 = 20;",
        user_expressions={"double": f"{name} * 2", "bad": "no_such_variable_here"},
    )
    assert ex.status == "ok", ex.dump()
    ue = ex.reply["content"]["user_expressions"]
    assert ue["double"]["status"] == "ok", ue
    assert ue["double"]["data"]["text/plain"] == "40", ue
    assert ue["bad"]["status"] == "error", ue
    assert ue["bad"]["ename"] and "traceback" in ue["bad"], ue


def test_stop_on_error_aborts_queued_executes(kernel: Kernel, tmp_path: Path):
    marker = tmp_path / "ran"
    codes = [
        'let broken: i32 = "no";',
        f"std::fs::write({rust_str(str(marker))}, \"x\").unwrap();",
        "40 + 2",
    ]
    ids = [kernel.send_execute(c) for c in codes]  # all queued before the first ends
    exs = [kernel.collect(c, i) for c, i in zip(codes, ids)]
    assert [e.status for e in exs] == ["error", "aborted", "aborted"], [e.dump() for e in exs]
    assert not marker.exists(), "an aborted cell ran"
    assert exs[2].result is None
    # Later requests run again.
    assert kernel.execute("1 + 2").result["data"]["text/plain"] == "3"


def test_stop_on_error_false_runs_queued_executes(kernel: Kernel, tmp_path: Path):
    marker = tmp_path / "ran"
    codes = [
        'let broken: i32 = "no";',
        f"std::fs::write({rust_str(str(marker))}, \"x\").unwrap();",
        "40 + 2",
    ]
    ids = [kernel.send_execute(codes[0], stop_on_error=False)] + [
        kernel.send_execute(c) for c in codes[1:]
    ]
    exs = [kernel.collect(c, i) for c, i in zip(codes, ids)]
    assert [e.status for e in exs] == ["error", "ok", "ok"], [e.dump() for e in exs]
    assert marker.read_text() == "x"
    assert exs[2].result["data"]["text/plain"] == "42"


# ---------------------------------------------------------------- output


def test_flushed_partial_line_at_end_of_cell(kernel: Kernel):
    kernel.settle()
    code = 'print!("x"); std::io::Write::flush(&mut std::io::stdout()).unwrap();'
    ex = kernel.execute(code, timeout=HANG)
    assert ex.status == "ok", ex.dump()
    assert ex.stdout == "x", ex.dump()
    # The kernel is not stuck on evcxr's end-of-cell marker.
    assert kernel.execute("1 + 1", timeout=HANG).result["data"]["text/plain"] == "2"


def test_unflushed_print_at_end_of_cell_still_shows(kernel: Kernel):
    kernel.settle()
    ex = kernel.execute('print!("unflushed tail");', timeout=HANG)
    nxt = kernel.execute("2 + 2", timeout=HANG)
    dumps = f"{ex.dump()}\n{nxt.dump()}"
    assert ex.status == "ok", dumps
    # Shown under its own cell, not lost and not under the next cell.
    assert ex.stdout == "unflushed tail", dumps
    assert nxt.stdout == "", dumps
    assert nxt.result["data"]["text/plain"] == "4", dumps


def test_partial_lines_and_stderr_keep_their_text(kernel: Kernel):
    kernel.settle()
    code = (
        'print!("a"); print!("b"); println!("c");\n'
        'eprint!("e1"); eprintln!("e2");\n'
        'print!("d"); println!();'
    )
    ex = kernel.execute(code)
    assert ex.status == "ok", ex.dump()
    assert ex.stdout == "abc\nd\n", ex.dump()
    assert ex.stderr == "e1e2\n", ex.dump()


def test_stderr_stays_under_its_own_cell(kernel: Kernel):
    kernel.settle()
    for i in range(5):
        ex = kernel.execute(f'eprintln!("err line {i}"); println!("out line {i}");')
        nxt = kernel.execute("()")
        dumps = f"{ex.dump()}\n{nxt.dump()}"
        assert ex.stderr == f"err line {i}\n", dumps
        assert ex.stdout == f"out line {i}\n", dumps
        assert nxt.stderr == "" and nxt.stdout == "", dumps


def test_first_line_of_long_cell_arrives_before_it_ends(kernel: Kernel):
    kernel.settle()
    code = (
        'println!("first line");\n'
        "std::thread::sleep(std::time::Duration::from_secs(3));\n"
        'println!("last line");'
    )
    ex = kernel.execute(code)
    assert ex.status == "ok", ex.dump()
    assert ex.stdout == "first line\nlast line\n", ex.dump()
    first = next(r for r in ex.of_type("stream") if "first line" in r.content["text"])
    assert ex.t_idle - first.t > 1.5, f"first line arrived only at the end\n{ex.dump()}"


def test_flushed_print_without_newline_arrives_mid_cell(kernel: Kernel):
    kernel.settle()
    code = (
        'print!("partial"); std::io::Write::flush(&mut std::io::stdout()).unwrap();\n'
        "std::thread::sleep(std::time::Duration::from_secs(3));\n"
        'println!(" done");'
    )
    ex = kernel.execute(code)
    assert ex.status == "ok", ex.dump()
    assert ex.stdout == "partial done\n", ex.dump()
    first = next(r for r in ex.of_type("stream") if "partial" in r.content["text"])
    assert ex.t_idle - first.t > 1.5, f"'partial' arrived only at the end\n{ex.dump()}"


def test_unflushed_print_without_newline_arrives_mid_cell(kernel: Kernel):
    """The issue: `print!` without a newline shows within about 50 ms (no
    explicit flush by the user)."""
    kernel.settle()
    code = (
        'print!("partial");\n'
        "std::thread::sleep(std::time::Duration::from_secs(3));\n"
        'println!(" done");'
    )
    ex = kernel.execute(code)
    assert ex.status == "ok", ex.dump()
    assert ex.stdout == "partial done\n", ex.dump()
    first = next(r for r in ex.of_type("stream") if "partial" in r.content["text"])
    assert ex.t_idle - first.t > 1.5, f"'partial' arrived only at the end\n{ex.dump()}"


def test_output_is_batched(kernel: Kernel):
    kernel.settle()
    n = 100_000
    code = f"for i in 0..{n} {{ println!(\"{{i}}\"); }}"
    ex = kernel.execute(code, timeout=CELL_TIMEOUT)
    assert ex.status == "ok", ex.dump()[:3000]
    expected = "".join(f"{i}\n" for i in range(n))
    assert ex.stdout == expected, f"{len(ex.stdout)} chars vs {len(expected)} expected"
    streams = ex.of_type("stream")
    assert len(streams) < n // 20, f"{len(streams)} stream messages for {n} lines"
    assert ex.t_idle < 60, f"took {ex.t_idle:.1f}s"


# ---------------------------------------------------------------- rich output


def test_display_update_and_clear_while_the_cell_runs(kernel: Kernel):
    kernel.settle()
    code = (
        'let h = forja::display::html("<b>step 0</b>").unwrap();\n'
        "std::thread::sleep(std::time::Duration::from_secs(2));\n"
        'h.update("<b>step 1</b>").unwrap();\n'
        "forja::display::clear_output(true).unwrap();\n"
        'forja::display::markdown("**after clear**").unwrap();\n'
        "std::thread::sleep(std::time::Duration::from_secs(2));\n"
        'println!("end");'
    )
    ex = kernel.execute(code)
    assert ex.status == "ok", ex.dump()
    rich = [r for r in ex.iopub if r.type in ("display_data", "update_display_data", "clear_output")]
    kinds = [r.type for r in rich]
    # One thread's displays arrive in the order it made them.
    assert kinds == ["display_data", "update_display_data", "clear_output", "display_data"], ex.dump()
    first, update, clear, second = rich
    display_id = first.content["transient"]["display_id"]
    assert display_id
    assert first.content["data"] == {"text/html": "<b>step 0</b>"}
    assert update.content["transient"]["display_id"] == display_id
    assert update.content["data"]["text/html"] == "<b>step 1</b>"
    assert clear.content["wait"] is True
    assert second.content["data"]["text/markdown"] == "**after clear**"
    assert second.content["transient"]["display_id"] != display_id
    # Shown while the cell ran, not when it ended.
    assert ex.t_idle - first.t > 2.5, ex.dump()
    assert ex.t_idle - second.t > 1.0, ex.dump()


def test_display_at_the_end_of_a_cell_stays_under_that_cell(kernel: Kernel):
    kernel.settle()
    for i in range(5):
        ex = kernel.execute(f'forja::display::html("<i>display {i}</i>").unwrap();')
        nxt = kernel.execute("()")
        dumps = f"{ex.dump()}\n{nxt.dump()}"
        shown = [r.content["data"] for r in ex.of_type("display_data")]
        assert shown == [{"text/html": f"<i>display {i}</i>"}], dumps
        assert nxt.of_type("display_data") == [], dumps


def test_display_from_a_forked_child(kernel: Kernel):
    kernel.settle()
    code = (
        "let p = Process::new(|| { forja::display::text(\"from the child\").unwrap(); });\n"
        "p.start().unwrap(); p.join().unwrap(); p.exitcode()"
    )
    ex = kernel.execute(code)
    assert ex.status == "ok", ex.dump()
    displays = ex.of_type("display_data")
    assert [d.content["data"].get("text/plain") for d in displays] == ["from the child"], ex.dump()
    assert ex.result["data"]["text/plain"] == "Some(0)", ex.dump()


# ---------------------------------------------------------------- stdin


def _answer_input(kernel: Kernel, msg_id: str, answer: str) -> dict:
    req = kernel.kc.get_stdin_msg(timeout=CELL_TIMEOUT * 2)
    assert req["header"]["msg_type"] == "input_request", req
    assert req["parent_header"]["msg_id"] == msg_id
    kernel.kc.input(answer)
    return req


@pytest.fixture(scope="module")
def input_crate(kernel: Kernel):
    """evcxr's input functions live in the `evcxr_input` crate."""
    ex = kernel.execute(':dep evcxr_input = "1"', timeout=300)
    assert ex.status == "ok", ex.dump()


def test_stdin_text_input(kernel: Kernel, input_crate):
    code = 'let answer = evcxr_input::get_string("Name? "); format!("hello {answer}")'
    mid = kernel.send_execute(code, allow_stdin=True)
    req = _answer_input(kernel, mid, "Ada")
    assert req["content"]["prompt"] == "Name? "
    assert req["content"]["password"] is False
    ex = kernel.collect(code, mid)
    assert ex.status == "ok", ex.dump()
    assert ex.result["data"]["text/plain"] == '"hello Ada"', ex.dump()


def test_stdin_password_input(kernel: Kernel, input_crate):
    code = 'let pw = evcxr_input::get_password("Password? "); pw.len()'
    mid = kernel.send_execute(code, allow_stdin=True)
    req = _answer_input(kernel, mid, "s3cret!")
    assert req["content"]["prompt"] == "Password? "
    assert req["content"]["password"] is True
    ex = kernel.collect(code, mid)
    assert ex.status == "ok", ex.dump()
    assert ex.result["data"]["text/plain"] == "7", ex.dump()
    assert "s3cret!" not in json.dumps([r.msg["content"] for r in ex.iopub])


def test_stdin_prompt_with_a_colon_is_kept(kernel: Kernel, input_crate):
    code = 'let city = evcxr_input::get_string("City: "); city'
    mid = kernel.send_execute(code, allow_stdin=True)
    req = _answer_input(kernel, mid, "Quito")
    ex = kernel.collect(code, mid)
    assert ex.result["data"]["text/plain"] == '"Quito"', ex.dump()
    assert req["content"]["prompt"] == "City: "


def test_stdin_not_allowed_gets_no_input_request(kernel: Kernel, input_crate):
    code = 'let got = evcxr_input::get_string("Name? "); got.len()'
    ex = kernel.execute(code, allow_stdin=False)
    assert ex.status == "ok", ex.dump()
    assert ex.result["data"]["text/plain"] == "0", ex.dump()
    with pytest.raises(queue.Empty):
        kernel.kc.get_stdin_msg(timeout=0.5)


# ---------------------------------------------------------------- is_complete, complete, inspect


@pytest.mark.parametrize(
    "code,status",
    [
        ("let x = 1;", "complete"),
        ("1 + 1", "complete"),
        ("fn f() -> i32 { 1 }", "complete"),
        ('println!("{}", 1);', "complete"),
        ("fn foo(", "incomplete"),
        ("fn foo() {", "incomplete"),
        ("let v = vec![1, 2", "incomplete"),
        ("let t = (1,", "incomplete"),
        ('let s = "abc', "incomplete"),
        ("/* a comment", "incomplete"),
        ("if true {\n    let y = 2;", "incomplete"),
        ("fn fn", "invalid"),
        ("let let = 3;", "invalid"),
    ],
)
def test_is_complete(kernel: Kernel, code: str, status: str):
    reply = kernel.request("is_complete", code)
    c = reply["content"]
    assert c["status"] == status, (code, c)
    if status == "incomplete":
        assert isinstance(c.get("indent"), str), c


def test_is_complete_indent_for_open_block(kernel: Kernel):
    c = kernel.request("is_complete", "fn foo() {")["content"]
    assert c["status"] == "incomplete" and c["indent"].strip() == "" and len(c["indent"]) > 0, c


@pytest.fixture(scope="module")
def completion_vars(kernel: Kernel):
    ex = kernel.execute(
        "let completion_target_value: u32 = 5;\nlet inspect_me_vec: Vec<u8> = vec![1, 2];"
    )
    assert ex.status == "ok", ex.dump()


def test_complete_earlier_variable(kernel: Kernel, completion_vars):
    code = "completion_tar"
    c = kernel.request("complete", code)["content"]
    assert c["status"] == "ok"
    assert "completion_target_value" in c["matches"], c
    assert (c["cursor_start"], c["cursor_end"]) == (0, len(code)), c


def test_complete_cursor_positions_are_code_points(kernel: Kernel, completion_vars):
    code = "let é = 1; completion_tar"  # 'é' is one code point, two bytes
    c = kernel.request("complete", code)["content"]
    assert "completion_target_value" in c["matches"], c
    assert (c["cursor_start"], c["cursor_end"]) == (11, len(code)), c


def test_complete_in_the_middle_of_a_line(kernel: Kernel, completion_vars):
    code = "let y = completion_tar + 1;"
    pos = code.index(" + 1")
    c = kernel.request("complete", code, pos)["content"]
    assert "completion_target_value" in c["matches"], c
    assert (c["cursor_start"], c["cursor_end"]) == (code.index("completion_tar"), pos), c


def test_complete_std_method(kernel: Kernel):
    code = 'String::from("a").to_upp'
    c = kernel.request("complete", code)["content"]
    assert any(m.startswith("to_uppercase") for m in c["matches"]), c
    assert (c["cursor_start"], c["cursor_end"]) == (len(code) - len("to_upp"), len(code)), c


def test_inspect_variable_type(kernel: Kernel, completion_vars):
    c = kernel.request("inspect", "inspect_me_vec")["content"]
    assert c["status"] == "ok" and c["found"], c
    assert "Vec<u8>" in c["data"]["text/plain"], c


def test_inspect_std_docs_plain_and_markdown(kernel: Kernel):
    c = kernel.request("inspect", "Vec::new")["content"]
    assert c["status"] == "ok" and c["found"], c
    assert "new" in c["data"]["text/plain"], c
    assert "text/markdown" in c["data"], c


def test_inspect_with_cursor_inside_a_name(kernel: Kernel, completion_vars):
    """Frontends send the cursor where it is, often inside a name or with
    code after it."""
    code = "let copy = inspect_me_vec.len();"
    pos = code.index("inspect_me_vec") + 5
    c = kernel.request("inspect", code, pos)["content"]
    assert c["status"] == "ok" and c["found"], c
    assert "Vec<u8>" in c["data"]["text/plain"], c


def test_inspect_nothing_is_not_found(kernel: Kernel):
    c = kernel.request("inspect", "   ", 1)["content"]
    assert c["status"] == "ok" and c["found"] is False, c


# ---------------------------------------------------------------- history


def test_history_tail_range_and_search(kernel: Kernel):
    tok = unique("hist")
    codes = [f"let {tok}_a = 1;", f"let {tok}_b = 2;"]
    counts = []
    for code in codes:
        ex = kernel.execute(code)
        assert ex.status == "ok", ex.dump()
        counts.append(ex.reply["content"]["execution_count"])
    assert counts[1] == counts[0] + 1

    h = kernel.request("history", hist_access_type="tail", n=2, output=False, raw=True)["content"]
    assert h["status"] == "ok"
    rows = h["history"]
    assert [r[2] for r in rows] == codes, rows
    assert [r[1] for r in rows] == counts, rows
    session = rows[0][0]
    assert rows[1][0] == session

    h = kernel.request(
        "history", hist_access_type="range", session=session, start=counts[0], stop=counts[1] + 1,
        output=False, raw=True,
    )["content"]
    assert [r[2] for r in h["history"]] == codes, h
    # session 0 is the current session
    h = kernel.request(
        "history", hist_access_type="range", session=0, start=counts[1], stop=counts[1] + 1,
        output=False, raw=True,
    )["content"]
    assert [(r[0], r[1], r[2]) for r in h["history"]] == [(session, counts[1], codes[1])], h

    h = kernel.request("history", hist_access_type="tail", n=1, output=True, raw=True)["content"]
    assert len(h["history"]) == 1 and len(h["history"][0][2]) == 2, h


def test_history_search_unique(kernel: Kernel):
    tok = unique("dup")
    code = f'"{tok}"'
    last = None
    for _ in range(3):
        ex = kernel.execute(code)
        assert ex.status == "ok", ex.dump()
        last = ex.reply["content"]["execution_count"]
    pattern = f"*{tok}*"
    h = kernel.request("history", hist_access_type="search", pattern=pattern, output=False, raw=True)
    assert [r[2] for r in h["content"]["history"]] == [code] * 3, h["content"]
    h = kernel.request(
        "history", hist_access_type="search", pattern=pattern, unique=True, output=False, raw=True
    )
    rows = h["content"]["history"]
    assert len(rows) == 1 and rows[0][2] == code, rows
    assert rows[0][1] == last, rows  # the latest occurrence is kept
    h = kernel.request("history", hist_access_type="search", pattern=pattern, n=2, output=False, raw=True)
    assert len(h["content"]["history"]) == 2, h["content"]


# ---------------------------------------------------------------- comms


def test_comm_info_lists_no_comms(kernel: Kernel):
    c = kernel.request("comm_info")["content"]
    assert c["status"] == "ok" and isinstance(c["comms"], dict), c
    c = kernel.request("comm_info", target_name="jupyter.widget")["content"]
    assert c["status"] == "ok" and c["comms"] == {}, c


def test_comm_open_unknown_target_is_closed(kernel: Kernel):
    comm_id = uuid.uuid4().hex
    mid = kernel.send_shell(
        "comm_open", {"comm_id": comm_id, "target_name": "forja.no_such_target", "data": {}}
    )
    msgs = kernel.wait_idle(mid, HANG)
    assert msgs[0].type == "status" and msgs[0].content["execution_state"] == "busy", msgs
    closes = [r for r in msgs if r.type == "comm_close"]
    assert len(closes) == 1, [(r.type, r.content) for r in msgs]
    assert closes[0].content["comm_id"] == comm_id
    c = kernel.request("comm_info")["content"]
    assert comm_id not in c["comms"], c


def test_comm_msg_and_close_are_accepted(kernel: Kernel):
    comm_id = uuid.uuid4().hex
    ids = [
        kernel.send_shell("comm_msg", {"comm_id": comm_id, "data": {"x": 1}}),
        kernel.send_shell("comm_close", {"comm_id": comm_id, "data": {}}),
    ]
    for mid in ids:
        msgs = kernel.wait_idle(mid, HANG)
        states = [r.content["execution_state"] for r in msgs if r.type == "status"]
        assert states == ["busy", "idle"], [(r.type, r.content) for r in msgs]
    # comm messages have no reply; the kernel goes on answering.
    assert kernel.request("kernel_info")["content"]["status"] == "ok"
    for mid in ids:
        assert not kernel.got_shell_reply(mid), "a comm message got a shell reply"


# ---------------------------------------------------------------- busy/idle


def test_every_request_is_wrapped_in_busy_idle(kernel: Kernel):
    k = kernel
    shell_ids = {
        "kernel_info": k.sent(k.kc.kernel_info()),
        "execute": k.send_execute(
            'println!("line"); print!("flushed tail"); std::io::Write::flush(&mut std::io::stdout()).unwrap();'
        ),
        "execute_error": k.send_execute('let broken: u8 = "x";', stop_on_error=False),
        "complete": k.sent(k.kc.complete("String::fr")),
        "inspect": k.sent(k.kc.inspect("Vec::new")),
        "is_complete": k.sent(k.kc.is_complete("fn foo(")),
        "history": k.sent(k.kc.history(hist_access_type="tail", n=1)),
        "comm_info": k.sent(k.kc.comm_info()),
    }
    control_ids = {"control_kernel_info": k.send_control("kernel_info_request", {})}
    taken: dict[str, list[Received]] = {}
    for name, mid in {**shell_ids, **control_ids}.items():
        if name in shell_ids:
            reply = k.shell_reply(mid, timeout=CELL_TIMEOUT)
        else:
            reply = k.control_reply(mid, timeout=HANG)
        assert reply["parent_header"]["msg_id"] == mid
        taken[name] = k.wait_idle(mid, HANG)
    k.pump(1.0)
    for name, mid in {**shell_ids, **control_ids}.items():
        msgs = taken[name]
        statuses = [r.content["execution_state"] for r in msgs if r.type == "status"]
        assert statuses == ["busy", "idle"], (name, [(r.type, r.content) for r in msgs])
        assert msgs[0].type == "status" and msgs[0].content["execution_state"] == "busy", name
        for r in msgs:
            assert r.msg["parent_header"]["msg_id"] == mid
        late = k.iopub_for(mid)
        assert late == [], (name, [(r.type, r.content) for r in late])
    ex_msgs = taken["execute"]
    text = "".join(r.content["text"] for r in ex_msgs if r.type == "stream")
    assert text == "line\nflushed tail", [(r.type, r.content) for r in ex_msgs]


# ---------------------------------------------------------------- heartbeat, iopub welcome


def _connect(kernel: Kernel, kind: int, port_name: str) -> zmq.Socket:
    info = kernel.km.get_connection_info()
    s = zmq.Context.instance().socket(kind)
    s.linger = 0
    s.connect(f"{info['transport']}://{info['ip']}:{info[port_name]}")
    return s


def _own_session(kernel: Kernel) -> Session:
    """A Session with the kernel's key but its own record of seen signatures
    (the client's would reject a message it later sees again)."""
    return Session(key=kernel.kc.session.key, signature_scheme=kernel.kc.session.signature_scheme)


def test_heartbeat_echoes(kernel: Kernel):
    s = _connect(kernel, zmq.REQ, "hb_port")
    try:
        for payload in [b"ping", uuid.uuid4().bytes, b"x" * 4096]:
            s.send(payload)
            assert s.poll(10_000), "no heartbeat echo"
            assert s.recv() == payload
    finally:
        s.close()


def test_iopub_welcome_on_subscribe(kernel: Kernel):
    s = _connect(kernel, zmq.SUB, "iopub_port")
    try:
        s.setsockopt(zmq.SUBSCRIBE, b"")
        assert s.poll(10_000), "no iopub_welcome"
        frames = s.recv_multipart()
        session = _own_session(kernel)
        _, parts = session.feed_identities(frames)
        msg = session.deserialize(parts)  # also checks the signature
        assert msg["header"]["msg_type"] == "iopub_welcome", msg
        assert msg["content"]["subscription"] == ""
    finally:
        s.close()


# ---------------------------------------------------------------- interrupt


def _runner_processes(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [p for p in procs if _alive(p)]
        if not left:
            return []
        time.sleep(0.1)
    return [p for p in procs if _alive(p)]


def _interrupt_and_check(k: Kernel, code: str, started: str, kept: str, via_manager: bool):
    before = _runner_processes(k.pid)
    assert before, "no runner process before the interrupt"
    mid = k.send_execute(code)
    _wait_for_stream(k, mid, started)
    t0 = time.monotonic()
    if via_manager:
        k.km.interrupt_kernel()
    else:
        cid = k.send_control("interrupt_request", {})
        reply = k.control_reply(cid, timeout=HANG)
        assert reply["content"]["status"] == "ok"
        assert time.monotonic() - t0 < 10, "interrupt_reply was not prompt"
    ex = k.collect(code, mid, timeout=HANG)
    took = time.monotonic() - t0
    assert took < HANG, f"cell ended {took:.1f}s after the interrupt"
    assert ex.status == "error", ex.dump()
    err = ex.error
    assert err is not None and err["ename"] == "Interrupted", ex.dump()
    # The runner that ran the cell, and what it started, are gone.
    left = _wait_gone(before, 10)
    assert left == [], f"still running after the interrupt: {[(p.pid, p.name()) for p in left]}"
    # The next cell runs.
    nxt = k.execute("6 * 7", timeout=CELL_TIMEOUT * 2)
    assert nxt.status == "ok", nxt.dump()
    assert nxt.result["data"]["text/plain"] == "42"
    # The variable from an earlier cell is either kept or named as lost,
    # never lost silently.
    probe = k.execute(kept)
    if probe.status == "ok":
        assert probe.result["data"]["text/plain"] == "42", probe.dump()
        assert "lost" not in err["evalue"] or kept not in err["evalue"], err["evalue"]
    else:
        assert kept in err["evalue"], f"{kept} was lost but the error does not say so: {err['evalue']}"


def test_interrupt_busy_loop_and_long_sleep(fresh_kernel: Kernel):
    k = fresh_kernel
    k.warm_up()
    assert k.execute("let kept_before_loop: i32 = 42;").status == "ok"
    _interrupt_and_check(
        k,
        'println!("spinning"); use std::io::Write; std::io::stdout().flush().unwrap();\nloop {}',
        "spinning",
        "kept_before_loop",
        via_manager=False,
    )
    assert k.execute("let kept_before_sleep: i32 = 42;").status == "ok"
    _interrupt_and_check(
        k,
        'println!("sleeping"); std::thread::sleep(std::time::Duration::from_secs(600));',
        "sleeping",
        "kept_before_sleep",
        via_manager=True,
    )


# ---------------------------------------------------------------- shutdown, restart

SPAWN_CHILDREN = (
    "let children_to_outlive: Vec<std::process::Child> = (0..2)\n"
    '    .map(|_| std::process::Command::new("sleep").arg("300").spawn().unwrap())\n'
    "    .collect();\n"
    'let shell_with_grandchild = std::process::Command::new("sh")\n'
    '    .args(["-c", "sleep 301 & sleep 302"]).spawn().unwrap();\n'
)


def _start_children(k: Kernel, extra: str = "") -> list[psutil.Process]:
    ex = k.execute(SPAWN_CHILDREN + extra, timeout=300)
    assert ex.status == "ok", ex.dump()
    deadline = time.monotonic() + 10
    while True:
        procs = _runner_processes(k.pid)
        sleeps = [p for p in procs if p.name() == "sleep"]
        if len(sleeps) >= 4 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(sleeps) >= 4, [(p.pid, p.name()) for p in procs]
    return procs


def _shutdown_and_check(k: Kernel, restart: bool, procs: list[psutil.Process]):
    kernel_proc = psutil.Process(k.pid)
    cid = k.send_control("shutdown_request", {"restart": restart})
    reply = k.control_reply(cid, timeout=HANG)
    assert reply["content"]["status"] == "ok", reply
    assert reply["content"]["restart"] is restart, reply
    k.km.provisioner.process.wait(timeout=HANG)  # the kernel process exits
    left = _wait_gone([kernel_proc, *procs], 10)
    assert left == [], f"left running after shutdown: {[(p.pid, p.name()) for p in left]}"


def test_shutdown_without_restart(fresh_kernel: Kernel):
    k = fresh_kernel
    procs = _start_children(k)
    _shutdown_and_check(k, restart=False, procs=procs)


def test_shutdown_with_restart_and_history_survives(fresh_kernel: Kernel):
    k = fresh_kernel
    tok = unique("restart")
    procs = _start_children(k, extra=f"let {tok} = 1;")
    code = SPAWN_CHILDREN + f"let {tok} = 1;"
    old_session = k.request("history", hist_access_type="tail", n=1, output=False, raw=True)[
        "content"
    ]["history"][0][0]
    old_pid = k.pid
    _shutdown_and_check(k, restart=True, procs=procs)

    # What a kernel manager does once the kernel has exited after a restart
    # reply: start it again, on the same connection file. (Not
    # `km.restart_kernel()`: it would send a second shutdown_request, which
    # its control socket delivers to the new kernel when it binds the port.)
    k.km.start_kernel()
    k.reconnect()
    assert k.pid != old_pid
    h = k.request(
        "history", hist_access_type="search", pattern=f"*{tok}*", unique=False, n=1000,
        output=False, raw=True,
    )
    rows = h["content"]["history"]
    assert [(r[0], r[2]) for r in rows] == [(old_session, code)], rows
    h = k.request("history", hist_access_type="tail", n=1, output=False, raw=True)["content"]
    assert h["history"][-1][2] == code, h
    # A fresh session: the new kernel runs cells (with a new session number).
    ex = k.execute("1 + 2", timeout=300)
    assert ex.status == "ok", ex.dump()
    assert ex.reply["content"]["execution_count"] == 1
    h = k.request("history", hist_access_type="tail", n=1, output=False, raw=True)["content"]
    assert h["history"][-1][0] > old_session and h["history"][-1][2] == "1 + 2", h


# ---------------------------------------------------------------- bad input
# These run last in this module: they need a live kernel afterwards.


def _sign(key: bytes, parts: list[bytes]) -> bytes:
    h = hmac.new(key, digestmod=hashlib.sha256)
    for p in parts:
        h.update(p)
    return h.hexdigest().encode()


def _frames(k: Kernel, msg_type: str, content: bytes, key: bytes | None = None, sig: bytes | None = None):
    """Wire frames for a message with raw `content` bytes, signed with `key`
    (the kernel's by default) unless `sig` is given."""
    session = k.kc.session
    header = session.msg_header(msg_type)
    h = session.pack(header)
    parts = [h, b"{}", b"{}", content]
    if sig is None:
        sig = _sign(session.key if key is None else key, parts)
    return header["msg_id"], [b"<IDS|MSG>", sig, *parts]


def _raw(k: Kernel, channel: str = "shell") -> zmq.Socket:
    return _connect(k, zmq.DEALER, f"{channel}_port")


def _recv(k: Kernel, sock: zmq.Socket, timeout_ms: int):
    if not sock.poll(timeout_ms):
        return None
    session = _own_session(k)
    _, parts = session.feed_identities(sock.recv_multipart())
    return session.deserialize(parts)


def _still_alive(k: Kernel):
    assert k.km.is_alive(), "the kernel process died"
    assert k.request("kernel_info")["content"]["status"] == "ok"
    cid = k.send_control("kernel_info_request", {})
    assert k.control_reply(cid, timeout=HANG)["content"]["status"] == "ok"
    hb = _connect(k, zmq.REQ, "hb_port")
    try:
        hb.send(b"alive?")
        assert hb.poll(10_000) and hb.recv() == b"alive?"
    finally:
        hb.close()


@pytest.mark.parametrize("how", ["wrong key", "missing signature", "garbled signature"])
def test_badly_signed_execute_is_not_run(kernel: Kernel, tmp_path: Path, how: str):
    marker = tmp_path / "marker"
    code = f"std::fs::write({rust_str(str(marker))}, \"executed\").unwrap();"
    content = json.dumps({"code": code, "silent": False, "store_history": True,
                          "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}).encode()
    if how == "wrong key":
        mid, frames = _frames(kernel, "execute_request", content, key=b"not-the-kernel-key")
    elif how == "missing signature":
        mid, frames = _frames(kernel, "execute_request", content, sig=b"")
    else:
        mid, frames = _frames(kernel, "execute_request", content, sig=b"ab" * 32)
    sock = _raw(kernel)
    try:
        sock.send_multipart(frames)
        assert _recv(kernel, sock, 2000) is None, "a badly signed request was answered"
    finally:
        sock.close()
    # A proper cell after it runs; had the bad one been accepted, it ran first.
    ex = kernel.execute("5 + 5")
    assert ex.result["data"]["text/plain"] == "10", ex.dump()
    assert not marker.exists(), f"the badly signed ({how}) execute ran"
    kernel.pump(0.3)
    assert kernel.iopub_for(mid) == [], "the badly signed request got iopub messages"
    _still_alive(kernel)


def test_badly_signed_shutdown_is_ignored(kernel: Kernel):
    content = json.dumps({"restart": False}).encode()
    _, frames = _frames(kernel, "shutdown_request", content, key=b"not-the-kernel-key")
    sock = _raw(kernel, "control")
    try:
        sock.send_multipart(frames)
        assert _recv(kernel, sock, 2000) is None
    finally:
        sock.close()
    _still_alive(kernel)


@pytest.mark.parametrize(
    "msg_type,content",
    [
        ("execute_request", b'{"code": "1 + '),  # broken JSON
        ("execute_request", b"[1, 2, 3]"),  # JSON, not an object
        ("execute_request", b'{"silent": false}'),  # no code
        ("kernel_info_request", b"\xff\xfe not utf-8"),
        ("complete_request", b'{"code": 5, "cursor_pos": "x"}'),  # wrong types
    ],
)
def test_malformed_content_gets_an_error_reply(kernel: Kernel, msg_type: str, content: bytes):
    mid, frames = _frames(kernel, msg_type, content)
    sock = _raw(kernel)
    try:
        sock.send_multipart(frames)
        reply = _recv(kernel, sock, 10_000)
    finally:
        sock.close()
    assert reply is not None, f"no reply to a {msg_type} with malformed content"
    assert reply["header"]["msg_type"] == msg_type.replace("_request", "_reply"), reply
    assert reply["parent_header"]["msg_id"] == mid
    assert reply["content"]["status"] == "error", reply
    assert reply["content"]["ename"] and reply["content"]["evalue"], reply
    _still_alive(kernel)


def test_garbage_frames_do_not_hurt_the_kernel(kernel: Kernel):
    key = kernel.kc.session.key
    bad_header = [b"\xff\xfe\x00 not json", b"{}", b"{}", b"{}"]
    garbage = [
        [b"garbage"],
        [b""],
        [b"<IDS|MSG>"],
        [b"<IDS|MSG>", b"deadbeef", b"{}"],
        [b"<IDS|MSG>", _sign(key, bad_header), *bad_header],  # signed, header not JSON
        [b"<IDS|MSG>", _sign(key, [b"{}"] * 4), b"{}", b"{}", b"{}", b"{}"],  # signed, empty header
        [os.urandom(4096) for _ in range(7)],
        [b"<IDS|MSG>", *[os.urandom(512) for _ in range(5)]],
        [b"<IDS|MSG>"] * 50,
    ]
    for channel in ("shell", "control"):
        sock = _raw(kernel, channel)
        try:
            for frames in garbage:
                sock.send_multipart(frames)
            # Nothing here can be answered (no readable header).
            time.sleep(1)
        finally:
            sock.close()
    _still_alive(kernel)
    ex = kernel.execute("1 + 1")
    assert ex.result["data"]["text/plain"] == "2", ex.dump()
