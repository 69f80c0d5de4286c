"""Fork safety through the kernel (issue 11, item 4): a cell that starts a
Process gets no warning on stderr (the runner's own threads, the output pump
and the stdout flusher, are forja's and do not count); a cell that forks
while a thread it started is still running gets the warning, once.

The two tests share one kernel, in this order: the warning is shown once per
process (the runner), so the quiet cell must run first."""

from __future__ import annotations

import pytest

from conftest import Kernel, start_kernel

WARNING = "This process is multi-threaded, use of fork() may lead to deadlocks in the child"

TWO_CHILDREN = (
    "for _ in 0..2 { let p = Process::new(|| {}); p.start().unwrap(); p.join().unwrap(); }\n"
)


@pytest.fixture(scope="module")
def k():
    kernel = start_kernel()
    try:
        yield kernel
    finally:
        kernel.close()


def test_a_cell_that_starts_processes_gets_no_warning(k: Kernel):
    ex = k.execute(TWO_CHILDREN + 'println!("quiet done");')
    assert ex.status == "ok", ex.dump()
    assert "quiet done" in ex.stdout, ex.dump()
    assert WARNING not in ex.stream("stderr"), ex.dump()


def test_a_live_thread_then_a_process_warns_once(k: Kernel):
    code = (
        "{ let (stop, rx) = std::sync::mpsc::channel::<()>();\n"
        "  let t = std::thread::spawn(move || { let _ = rx.recv(); });\n"
        + TWO_CHILDREN
        + "  stop.send(()).unwrap(); t.join().unwrap(); }\n"
        'println!("threaded done");'
    )
    ex = k.execute(code)
    assert ex.status == "ok", ex.dump()
    assert "threaded done" in ex.stdout, ex.dump()
    assert ex.stream("stderr").count(WARNING) == 1, ex.dump()
    # Once per process: the next cell with a live thread is quiet.
    again = k.execute(code)
    assert again.status == "ok", again.dump()
    assert WARNING not in again.stream("stderr"), again.dump()
