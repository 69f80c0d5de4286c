"""Fixtures and helpers for the end-to-end tests of the forja kernel.

Every test talks to a real `forja-kernel` process through `jupyter_client`
(or raw ZeroMQ sockets for the bad-input cases). Two fixtures:

- ``kernel``: one kernel for the whole test session, warmed up (its first cell
  compiles, which takes a while), for tests that leave it usable;
- ``fresh_kernel``: a new kernel per test, for destructive tests (interrupt,
  shutdown, restart).

``Kernel.execute`` sends an execute request and collects, with the time each
arrived (seconds after the request was sent), every iopub message whose parent
is that request, up to its ``idle`` status, plus the shell reply.
"""

from __future__ import annotations

import atexit
import os
import queue
import re
import shutil
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.manager import KernelManager

ROOT = Path(__file__).resolve().parent.parent
KERNEL_NAME = "forja"
# Starting the process and answering kernel_info is quick; the first cell of a
# kernel compiles (the session warm-up and forja), so it gets a long timeout.
STARTUP_TIMEOUT = 120
FIRST_CELL_TIMEOUT = 300
CELL_TIMEOUT = 120
REPLY_TIMEOUT = 60

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def strip_ansi(text: str) -> str:
    return ANSI.sub("", text)


def _configure_environment() -> None:
    """Kernels started by any test (ours, jupyter_kernel_test's, nbclient's)
    find the forja kernelspec of the virtualenv and write their history to a
    private file, never to the user's."""
    os.environ.setdefault("JUPYTER_PATH", str(ROOT / ".venv" / "share" / "jupyter"))
    # The suite reads the kernel's and forja's messages in English, whatever
    # the machine's locale; tests that want Spanish set FORJA_LANG=es.
    os.environ["FORJA_LANG"] = "en"
    # Kernels keep rust-analyzer loaded however long a test leaves them idle
    # (a reload would slow the next `let` cell); test_analysis_idle.py turns
    # the idle unload on.
    os.environ.setdefault("FORJA_ANALYSIS_IDLE", "off")
    if "FORJA_TEST_HISTORY_DIR" not in os.environ:
        d = tempfile.mkdtemp(prefix="forja-test-history-")
        os.environ["FORJA_TEST_HISTORY_DIR"] = d
        os.environ["FORJA_HISTORY_FILE"] = str(Path(d) / "history.jsonl")
        atexit.register(shutil.rmtree, d, ignore_errors=True)


_configure_environment()


@dataclass
class Received:
    """One message and when it arrived, in seconds after the request was sent."""

    t: float
    msg: dict[str, Any]

    @property
    def type(self) -> str:
        return self.msg["header"]["msg_type"]

    @property
    def content(self) -> dict[str, Any]:
        return self.msg["content"]


@dataclass
class Execution:
    """Everything a kernel sent for one execute request."""

    code: str
    msg_id: str
    reply: dict[str, Any]
    t_reply: float
    # iopub messages with this request as parent, up to and including idle.
    iopub: list[Received] = field(default_factory=list)

    @property
    def status(self) -> str:
        return self.reply["content"]["status"]

    @property
    def t_idle(self) -> float:
        return self.iopub[-1].t

    def of_type(self, msg_type: str) -> list[Received]:
        return [r for r in self.iopub if r.type == msg_type]

    def stream(self, name: str = "stdout") -> str:
        return "".join(
            r.content["text"] for r in self.of_type("stream") if r.content["name"] == name
        )

    @property
    def stdout(self) -> str:
        return self.stream("stdout")

    @property
    def stderr(self) -> str:
        return self.stream("stderr")

    @property
    def result(self) -> dict[str, Any] | None:
        r = self.of_type("execute_result")
        assert len(r) <= 1, f"more than one execute_result: {self.dump()}"
        return r[0].content if r else None

    @property
    def error(self) -> dict[str, Any] | None:
        r = self.of_type("error")
        assert len(r) <= 1, f"more than one error message: {self.dump()}"
        return r[0].content if r else None

    def dump(self) -> str:
        lines = [f"code: {self.code!r}", f"reply ({self.t_reply:.3f}s): {self.reply['content']!r:.2000}"]
        for r in self.iopub:
            lines.append(f"  {r.t:8.3f}s {r.type}: {r.content!r:.600}")
        return "\n".join(lines)


class Kernel:
    """A started forja kernel with a blocking client, and message collection
    that keeps messages belonging to other requests for later."""

    def __init__(self, km: KernelManager):
        self.km = km
        self.kc = km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=STARTUP_TIMEOUT)
        self._iopub: dict[str, list[Received]] = defaultdict(list)
        self._shell: dict[str, Received] = {}
        self._control: dict[str, Received] = {}
        self._sent: dict[str, float] = {}
        self.warmed_up = False

    # ---- plumbing --------------------------------------------------------
    @property
    def pid(self) -> int:
        return self.km.provisioner.process.pid  # type: ignore[union-attr]

    def _stamp(self, msg_id: str) -> float:
        return self._sent.get(msg_id, time.monotonic())

    def _pump_iopub(self, timeout: float) -> bool:
        try:
            msg = self.kc.get_iopub_msg(timeout=timeout)
        except queue.Empty:
            return False
        parent = msg.get("parent_header", {}).get("msg_id", "")
        now = time.monotonic()
        self._iopub[parent].append(Received(now - self._stamp(parent), msg))
        return True

    def pump(self, seconds: float) -> None:
        """Reads iopub for `seconds`, keeping everything."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self._pump_iopub(min(left, 0.05))

    def iopub_for(self, msg_id: str) -> list[Received]:
        """Messages kept (and not yet taken) whose parent is `msg_id`."""
        return list(self._iopub.get(msg_id, []))

    def sent(self, msg_id: str) -> str:
        """Notes when request `msg_id` was sent (arrival times count from it)."""
        self._sent[msg_id] = time.monotonic()
        return msg_id

    def sent_at(self, msg_id: str) -> float:
        """When request `msg_id` was sent (time.monotonic())."""
        return self._sent[msg_id]

    def got_shell_reply(self, msg_id: str) -> bool:
        """Whether a shell reply to `msg_id` arrived and was not taken."""
        return msg_id in self._shell

    def wait_idle(self, msg_id: str, timeout: float) -> list[Received]:
        """Collects iopub messages of `msg_id` up to its idle status; takes them."""
        deadline = time.monotonic() + timeout
        while True:
            got = self._iopub.get(msg_id, [])
            for i, r in enumerate(got):
                if r.type == "status" and r.content["execution_state"] == "idle":
                    taken = got[: i + 1]
                    self._iopub[msg_id] = got[i + 1 :]
                    return taken
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f"no idle status for {msg_id} within {timeout}s; got "
                    + "; ".join(f"{r.t:.2f}s {r.type} {r.content!r:.200}" for r in got)
                )
            self._pump_iopub(min(left, 0.05))

    def _reply(self, channel: str, msg_id: str, timeout: float) -> Received:
        store = self._shell if channel == "shell" else self._control
        get = self.kc.get_shell_msg if channel == "shell" else self.kc.get_control_msg
        deadline = time.monotonic() + timeout
        while msg_id not in store:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {channel} reply to {msg_id} within {timeout}s")
            try:
                msg = get(timeout=min(left, 0.05))
            except queue.Empty:
                # Keep iopub moving so timestamps stay accurate.
                self._pump_iopub(0)
                continue
            parent = msg.get("parent_header", {}).get("msg_id", "")
            store[parent] = Received(time.monotonic() - self._stamp(parent), msg)
        return store.pop(msg_id)

    def shell_reply(self, msg_id: str, timeout: float = REPLY_TIMEOUT) -> dict[str, Any]:
        return self._reply("shell", msg_id, timeout).msg

    def control_reply(self, msg_id: str, timeout: float = REPLY_TIMEOUT) -> dict[str, Any]:
        return self._reply("control", msg_id, timeout).msg

    def send_shell(self, msg_type: str, content: dict[str, Any]) -> str:
        msg = self.kc.session.msg(msg_type, content)
        self.kc.shell_channel.send(msg)
        return self.sent(msg["header"]["msg_id"])

    def send_control(self, msg_type: str, content: dict[str, Any]) -> str:
        msg = self.kc.session.msg(msg_type, content)
        self.kc.control_channel.send(msg)
        return self.sent(msg["header"]["msg_id"])

    # ---- requests --------------------------------------------------------
    def send_execute(self, code: str, **kwargs: Any) -> str:
        return self.sent(self.kc.execute(code, **kwargs))

    def collect(self, code: str, msg_id: str, timeout: float = CELL_TIMEOUT) -> Execution:
        iopub = self.wait_idle(msg_id, timeout)
        reply = self._reply("shell", msg_id, timeout=30)
        return Execution(code=code, msg_id=msg_id, reply=reply.msg, t_reply=reply.t, iopub=iopub)

    def execute(self, code: str, timeout: float | None = None, **kwargs: Any) -> Execution:
        if timeout is None:
            timeout = CELL_TIMEOUT if self.warmed_up else FIRST_CELL_TIMEOUT
        ex = self.collect(code, self.send_execute(code, **kwargs), timeout)
        self.warmed_up = True
        return ex

    def request(self, method: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Sends a shell request with the client's method (`complete`, ...)
        and returns its reply, after its idle status."""
        msg_id = self.sent(getattr(self.kc, method)(*args, **kwargs))
        reply = self.shell_reply(msg_id)
        try:
            self.wait_idle(msg_id, 10)
        except TimeoutError as e:
            raise AssertionError(
                f"{method}: no idle status after the reply {reply['content']!r:.500}: {e}"
            ) from None
        return reply

    def warm_up(self) -> Execution:
        """Runs the first cell (compiles the session); its output can carry
        start-up notes, so tests should not look at it."""
        ex = self.execute("1 + 1", timeout=FIRST_CELL_TIMEOUT)
        assert ex.status == "ok", ex.dump()
        return ex

    def reconnect(self) -> None:
        """A new client (after a restart), with nothing kept from before."""
        self.kc.stop_channels()
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=STARTUP_TIMEOUT)
        self._iopub.clear()
        self._shell.clear()
        self._control.clear()
        self.warmed_up = False

    def settle(self) -> None:
        """Runs an empty cell, so output an earlier cell left behind cannot
        show up under the next one (tests of that leak exist on their own)."""
        ex = self.execute("()")
        assert ex.status == "ok", ex.dump()

    def close(self) -> None:
        try:
            self.kc.stop_channels()
        finally:
            if self.km.has_kernel:
                self.km.shutdown_kernel(now=False)


def start_kernel(env: dict[str, str] | None = None) -> Kernel:
    """A new kernel; `env` adds to (or overrides) the test's environment."""
    km = KernelManager(kernel_name=KERNEL_NAME)
    if env is None:
        km.start_kernel()
    else:
        km.start_kernel(env={**os.environ, **env})
    try:
        return Kernel(km)
    except BaseException:
        km.shutdown_kernel(now=True)
        raise


# Flushes the cell's stdout, so a line printed before a blocking call
# reaches the client before the call blocks.
FLUSH = "std::io::Write::flush(&mut std::io::stdout()).unwrap();"


def ok(k: Kernel, code: str, **kwargs: Any) -> Execution:
    """Runs `code` in `k` and requires it to succeed."""
    ex = k.execute(code, **kwargs)
    assert ex.status == "ok", ex.dump()
    return ex


@pytest.fixture(scope="session")
def kernel():
    """One warmed-up kernel for every test that leaves it usable."""
    k = start_kernel()
    try:
        k.warm_up()
        yield k
    finally:
        k.close()


@pytest.fixture
def fresh_kernel():
    """A new kernel for one test (not warmed up: call `warm_up()` if needed)."""
    k = start_kernel()
    try:
        yield k
    finally:
        k.close()


def unique(prefix: str = "t") -> str:
    """A fresh Rust-identifier-safe token."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"
