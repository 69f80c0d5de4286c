"""The contract between the kernel, its runner and forja's children (issue 10,
`forja::link`), through a real kernel.

- A panic is reported by a typed message (`panic_report`), never found by
  reading stderr: a forja child's panic shows in the cell even when the child
  has closed its stderr; a pool worker's panic reaches the cell's error
  through the parent; text on stderr that merely looks like a panic is not
  taken for one.
- A child's raw output connection starts with a typed attach header and is
  raw bytes after it: a program the child `exec`s writes there, and a line
  of its output that looks like a message stays output.
"""

from __future__ import annotations

import re

from conftest import Kernel, strip_ansi, unique


def test_a_childs_panic_arrives_typed_even_with_its_stderr_closed(kernel: Kernel):
    name = unique("explota")
    code = (
        "use forja::prelude::*;\n"
        "use std::os::fd::FromRawFd;\n"
        f"let p = Process::new(|| {{\n"
        "    // Close fd 2: nothing the child writes on stderr can reach the kernel.\n"
        "    drop(unsafe { std::os::fd::OwnedFd::from_raw_fd(2) });\n"
        f"    panic!(\"boom-{name}\");\n"
        f"}}).with_name(\"{name}\");\n"
        "p.start().unwrap();\n"
        "p.join().unwrap();\n"
        "println!(\"exitcode {:?}\", p.exitcode());"
    )
    ex = kernel.execute(code)
    assert ex.status == "ok", ex.dump()
    assert "exitcode Some(1)" in ex.stdout, ex.dump()
    # The kernel shows the typed report as the line the child's hook would
    # have written: who, where (in the cell: line 6), what.
    count = ex.reply["content"]["execution_count"]
    assert re.search(
        rf"panic in process {name} \(pid \d+\) at cell \[{count}\], line 6: boom-{name}\n",
        ex.stderr,
    ), ex.dump()


def test_a_childs_panic_shows_once(kernel: Kernel):
    name = unique("una")
    code = (
        "use forja::prelude::*;\n"
        f"let p = Process::new(|| panic!(\"once-{name}\")).with_name(\"{name}\");\n"
        "p.start().unwrap();\n"
        "p.join().unwrap();"
    )
    ex = kernel.execute(code)
    assert ex.status == "ok", ex.dump()
    kernel.pump(0.5)
    assert ex.stderr.count(f"once-{name}") == 1, ex.dump()


def test_a_pool_workers_panic_reaches_the_cells_error(kernel: Kernel):
    tag = unique("worker")
    fn = unique("falla")
    defined = kernel.execute(
        f"fn {fn}(x: u32) -> u32 {{ if x == 3 {{ panic!(\"boom-{tag}\") }} x }}"
    )
    assert defined.status == "ok", defined.dump()
    ex = kernel.execute(
        "use forja::prelude::*;\n"
        "let pool = Pool::new(2).unwrap();\n"
        f"let r = pool.map({fn}, 0..5u32);\n"
        "println!(\"is_err {}\", r.is_err());\n"
        "r.unwrap();"
    )
    assert ex.status == "error", ex.dump()
    assert "is_err true" in ex.stdout, ex.dump()
    assert ex.error["ename"] == "Panic", ex.dump()
    assert f"boom-{tag}" in ex.error["evalue"], ex.dump()


def test_stderr_that_looks_like_a_panic_is_not_one(kernel: Kernel):
    fake = "thread 'main' panicked at src/lib.rs:1:1:\\nfake-boom"
    ok = kernel.execute(f'eprintln!("{fake}");\nprintln!("still fine");')
    assert ok.status == "ok", ok.dump()
    assert "still fine" in ok.stdout and "fake-boom" in ok.stderr, ok.dump()
    # A real panic after the same text: the error says the real message.
    real = unique("real")
    ex = kernel.execute(f'eprintln!("{fake}");\npanic!("{real}");')
    assert ex.status == "error", ex.dump()
    assert ex.error["ename"] == "Panic", ex.dump()
    assert real in ex.error["evalue"] and "fake-boom" not in ex.error["evalue"], ex.dump()
    text = strip_ansi("\n".join(ex.error["traceback"]))
    assert "fake-boom" not in text, text


def test_a_child_that_execs_writes_raw_bytes_after_the_attach_header(kernel: Kernel):
    tag = unique("exec")
    script = (
        f"echo out-{tag}-$$; "
        "echo '{\"type\":\"cell_end\"}'; "
        f"printf 'partial-{tag}'; "
        f"echo err-{tag} >&2"
    )
    code = (
        "use forja::prelude::*;\n"
        "use std::os::unix::process::CommandExt;\n"
        "let p = Process::new(|| {\n"
        f"    let e = std::process::Command::new(\"sh\").arg(\"-c\").arg({script!r}).exec();\n"
        "    panic!(\"exec failed: {e}\");\n"
        f"}}).with_name(\"{tag}\");\n"
        "p.start().unwrap();\n"
        "let pid = p.pid().unwrap();\n"
        "p.join().unwrap();\n"
        "println!(\"pid {pid} exitcode {:?}\", p.exitcode());"
    )
    # The script is passed as a Rust string literal: Python's repr of it has
    # no backslashes or single quotes that Rust would read differently.
    code = code.replace(repr(script), '"' + script.replace('"', '\\"') + '"')
    ex = kernel.execute(code)
    assert ex.status == "ok", ex.dump()
    m = re.search(r"pid (\d+) exitcode Some\(0\)", ex.stdout)
    assert m, ex.dump()
    kernel.pump(0.5)
    # The exec'd program's pid is the child's: its output came on the
    # child's own connections, raw after the header.
    assert f"out-{tag}-{m.group(1)}\n" in ex.stdout, ex.dump()
    assert '{"type":"cell_end"}\n' in ex.stdout, ex.dump()
    assert f"partial-{tag}" in ex.stdout, ex.dump()
    assert f"err-{tag}\n" in ex.stderr, ex.dump()
