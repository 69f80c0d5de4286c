"""A class on a real JupyterHub: two real Unix users log in through the hub,
start their servers (LocalProcessSpawner, the shared install of
deploy/setup-system.sh), run lesson 01's first cells in a forja kernel each,
cannot signal each other's processes nor read their environment, and
stopping a server leaves no process of that user.

Needs root, deploy/setup-system.sh, tests/hub/requirements.txt in this Python
and `npm ci --prefix tests/hub` (test.sh's hub phase does all of it); skipped
otherwise. Users and hub are removed even when a step fails.
"""

import os
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "hub"))
import hubclient as hc  # noqa: E402

why_not = hc.missing_prerequisites()
pytestmark = pytest.mark.skipif(why_not is not None, reason=why_not or "")

FIRST_CELLS = 3


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    tag = f"{os.getpid() % 100000}"
    users = [f"fjhuba{tag}", f"fjhubb{tag}"]
    made = []
    hub = hc.Hub(tmp_path_factory.mktemp("hub"), users)
    try:
        for u in users:
            hc.create_user(u)
            made.append(u)
        hub.start()
        yield hub
    finally:
        hub.stop()
        for u in made:
            hc.remove_user(u)
        if why_not is None:
            print(f"hub log tail:\n{hub.tail(15)}")


def test_two_students_are_isolated_and_cleaned_up(hub):
    a, b = hub.users
    tokens = {u: hub.login(u) for u in (a, b)}
    kernels = {}
    for u in (a, b):
        hub.start_server(u, tokens[u])
        kernels[u] = hc.Kernel(hub, u, tokens[u])

    # Lesson 01's first cells, in each student's kernel.
    cells = hc.lesson_cells()[:FIRST_CELLS]
    for u in (a, b):
        for i, code in enumerate(cells):
            r = kernels[u].execute(code)
            assert r["status"] == "ok", f"{u}, cell {i}: {r['error']}\n{r['stdout']}"
        assert "Sesión lista" in kernels[u].execute(cells[0])["stdout"]

    # The kernel runs as its user, from the shared install.
    [pid_b] = hc.kernel_pids(b)
    [pid_a] = hc.kernel_pids(a)
    whoami = kernels[a].execute('print!("{}", std::env::var("USER").unwrap_or_default());')
    assert whoami["stdout"] == a

    # Student A, from a cell, cannot signal B's kernel nor read its environment.
    probe = f"""
let kill = std::process::Command::new("kill").args(["-0", "{pid_b}"]).output()?;
println!("kill-status={{}}", kill.status.success());
println!("kill-stderr={{}}", String::from_utf8_lossy(&kill.stderr).trim());
match std::fs::read("/proc/{pid_b}/environ") {{
    Ok(b) => println!("environ=read {{}} bytes", b.len()),
    Err(e) => println!("environ={{:?}}", e.kind()),
}}
"""
    r = kernels[a].execute(probe)
    assert r["status"] == "ok", r["error"]
    assert "kill-status=false" in r["stdout"], r["stdout"]
    assert "not permitted" in r["stdout"].lower(), r["stdout"]
    assert "environ=PermissionDenied" in r["stdout"], r["stdout"]
    # …while its own kernel is fine to signal (the probe itself works).
    own = kernels[a].execute(probe.replace(str(pid_b), str(pid_a)))
    assert "kill-status=true" in own["stdout"], own["stdout"]

    # Stopping A's server leaves no process of A; B's kernel still answers.
    kernels[a].ws.close()
    hub.stop_server(a, tokens[a])
    assert_no_processes_left(a)
    assert kernels[b].execute("1 + 1")["status"] == "ok"
    kernels[b].ws.close()
    hub.stop_server(b, tokens[b])
    assert_no_processes_left(b)


def assert_no_processes_left(user, within=10.0):
    deadline = time.monotonic() + within
    while hc.user_pids(user) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = hc.user_pids(user)
    assert left == [], f"{user} still has processes {within} s after its server stopped:\n{hc.describe(left)}"
