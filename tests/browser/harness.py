"""The browser harness: a private JupyterLab on notebooks/ (a temp copy) and
Debian's Chromium driven by Playwright, plus what a test does through them as
a student would (menus, toolbar buttons, typing into cells) and the
screenshots of each step.

Nothing here downloads a browser: Playwright launches /usr/bin/chromium
(tests/browser/install.sh installs it and the pinned Playwright).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv"
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-gpu",
    "--disable-sync",
]
# JupyterLab's own start-up; the first cell of a kernel compiles the session.
LAB_STARTUP = 90
FIRST_CELL = 300
CELL = 120


def missing(what: str) -> None:
    """Skips outside CI; in CI a missing browser piece is a failure."""
    msg = f"{what} (run tests/browser/install.sh)"
    if os.environ.get("CI"):
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# User settings for this private JupyterLab: every cell in the DOM (so a test
# can read a whole notebook), and no news or update checks (no network, no
# pop-up over what the student would see).
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


@dataclass
class Lab:
    """A running JupyterLab."""

    proc: subprocess.Popen
    url: str
    token: str
    notebooks: Path
    log: Path

    def api(self, path: str, method: str = "GET") -> object:
        req = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read()
        return json.loads(body) if body else None

    def log_tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:]


def start_lab(tmp: Path) -> Lab:
    jupyter = VENV / "bin" / "jupyter"
    if not jupyter.exists():
        missing(f"{jupyter} is missing (run ./install.sh --no-lab)")
    notebooks = tmp / "notebooks"
    shutil.copytree(ROOT / "notebooks", notebooks, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    settings = tmp / "lab-settings"
    for name, value in LAB_SETTINGS.items():
        f = settings / name
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(value))
    env = dict(os.environ)
    env.update(
        PATH=f"{VENV / 'bin'}:{env.get('PATH', '')}",
        JUPYTER_PATH=str(VENV / "share" / "jupyter"),
        JUPYTER_CONFIG_DIR=str(tmp / "config"),
        JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"),
    )
    port, token = free_port(), secrets.token_hex(16)
    log = tmp / "lab.log"
    proc = subprocess.Popen(
        [
            str(jupyter), "lab", "--no-browser",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={notebooks}",
            *(["--allow-root"] if os.geteuid() == 0 else []),
        ],
        cwd=notebooks, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    lab = Lab(proc, f"http://127.0.0.1:{port}", token, notebooks, log)
    deadline = time.monotonic() + LAB_STARTUP
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"jupyter lab exited with {proc.returncode}:\n{lab.log_tail()}")
        try:
            lab.api("/api/status")
            return lab
        except OSError:
            if time.monotonic() > deadline:
                stop_lab(lab)
                raise AssertionError(f"jupyter lab did not answer in {LAB_STARTUP}s:\n{lab.log_tail()}")
            time.sleep(0.3)


def stop_lab(lab: Lab) -> None:
    """Stops the server (it shuts its kernels down), then its whole group."""
    if lab.proc.poll() is None:
        lab.proc.terminate()
        try:
            lab.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(lab.proc.pid, 9)
    except ProcessLookupError:
        pass
    lab.proc.wait()


class Student:
    """One browser page on the lab, and what a student does with it."""

    def __init__(self, page, lab: Lab):
        self.page = page
        self.lab = lab
        self.step = 0

    # ---- screenshots -------------------------------------------------------
    def shot(self, name: str, cell: int | None = None) -> Path:
        """Screenshot of the page now (scrolled to code cell `cell`, if
        given); returns its path (named in failures)."""
        if cell is not None:
            self.code_cells().nth(cell).scroll_into_view_if_needed()
        self.step += 1
        path = SCREENSHOTS / f"{self.step:02d}-{name}.png"
        self.page.screenshot(path=str(path))
        return path

    def check(self, ok: bool, name: str, message: str, cell: int | None = None) -> None:
        """Takes the step's screenshot; fails naming it if not `ok`."""
        path = self.shot(name, cell)
        assert ok, f"{message}\n(screenshot: {path})"

    # ---- the lab -----------------------------------------------------------
    def open_lab(self) -> None:
        self.page.goto(f"{self.lab.url}/lab?token={self.lab.token}")
        self.page.locator(".jp-Launcher").first.wait_for(timeout=LAB_STARTUP * 1000)

    def menu(self, *path: str) -> None:
        """Clicks through the menu bar: menu("Kernel", "Restart Kernel…")."""
        self.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{re.escape(path[0])}$")).click()
        for label in path[1:]:
            item = self.page.locator(".lm-Menu:visible .lm-Menu-item", has=self.page.locator(
                ".lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(label)}$")))
            item.first.click()

    def open_file(self, name: str) -> None:
        """Opens a notebook by double-clicking it in the file browser."""
        self.page.locator(".jp-DirListing-item", has=self.page.locator(
            ".jp-DirListing-itemText", has_text=re.compile(f"^{re.escape(name)}$"))).dblclick()
        self.page.locator(f".jp-NotebookPanel .jp-Notebook").last.wait_for()

    # ---- the current notebook ---------------------------------------------
    @property
    def notebook(self):
        return self.page.locator(".jp-NotebookPanel:visible")

    def code_cells(self):
        return self.notebook.locator(".jp-Notebook .jp-CodeCell")

    def current_path(self) -> str:
        """The path of the notebook in the current tab."""
        return self.page.locator("#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current .lm-TabBar-tabLabel").first.inner_text()

    def wait_kernel_idle(self, timeout: float) -> None:
        """Waits until the notebook's kernel has started and is idle: the
        server says so, and so does the toolbar's indicator (which also says
        idle before a kernel exists, so it alone is not enough)."""
        path = self.current_path()
        deadline = time.monotonic() + timeout
        while True:
            sessions = [s for s in self.lab.api("/api/sessions") if s["path"].endswith(path)]
            server_idle = any(s["kernel"]["execution_state"] == "idle" for s in sessions)
            shown = self.notebook.locator(".jp-Notebook-ExecutionIndicator").first.get_attribute("data-status")
            if server_idle and shown == "idle":
                return
            if time.monotonic() > deadline:
                shot = self.shot("kernel-not-idle")
                raise AssertionError(
                    f"the kernel of {path} is not idle after {timeout}s (server: {sessions}, "
                    f"toolbar: {shown})\n(screenshot: {shot})")
            time.sleep(0.25)

    def wait_run_all_done(self, timeout: float) -> None:
        """After Run All: waits until the last code cell has run (a numbered
        prompt), then until the kernel is idle. The prompts alone do not say
        it: when a cell fails, JupyterLab blanks the `[*]` of the cells after
        it, though the kernel still runs them."""
        last = self.code_cells().last
        last.locator(".jp-InputPrompt", has_text=re.compile(r"\[\d+\]")).wait_for(timeout=timeout * 1000)
        self.wait_kernel_idle(CELL)

    def run_cell(self, index: int, code: str | None = None, timeout: float = CELL) -> None:
        """Types `code` into code cell `index` (if given), runs it with
        Shift+Enter and waits until it is done."""
        cell = self.code_cells().nth(index)
        if code is not None:
            self.set_code(index, code)
        cell.locator(".jp-InputArea-editor").click()
        self.page.keyboard.press("Escape")
        self.page.keyboard.press("Shift+Enter")
        cell.locator(".jp-InputPrompt", has_text="*").wait_for(timeout=10_000)
        cell.locator(".jp-InputPrompt", has_text=re.compile(r"\[\d+\]")).wait_for(timeout=timeout * 1000)

    def set_code(self, index: int, code: str) -> None:
        """Replaces code cell `index`'s text, as pasting it would."""
        editor = self.code_cells().nth(index).locator(".jp-InputArea-editor")
        editor.click()
        self.page.keyboard.press("Control+a")
        self.page.keyboard.press("Delete")
        self.page.keyboard.insert_text(code)

    def add_cell(self, code: str) -> int:
        """Puts `code` in a new code cell at the end (the empty one that
        Shift+Enter on the last cell left, or one made with `b`); returns
        its index."""
        cells = self.code_cells()
        n = cells.count()
        last = cells.nth(n - 1)
        if last.locator(".jp-InputArea-editor").inner_text().strip():
            last.locator(".jp-InputArea-editor").click()
            self.page.keyboard.press("Escape")
            self.page.keyboard.press("b")
            self.code_cells().nth(n).wait_for()
            n += 1
        self.set_code(n - 1, code)
        return n - 1

    def output_text(self, index: int) -> str:
        return self.code_cells().nth(index).locator(".jp-OutputArea").inner_text()

    def saved_code_cells(self) -> list[dict]:
        """Saves the notebook (Ctrl+S) and returns its code cells as saved:
        the file tells an error output from text on stderr, which JupyterLab
        renders alike."""
        path = self.current_path()
        self.page.keyboard.press("Control+s")
        self.page.locator("#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current.jp-mod-dirty").wait_for(state="detached")
        nb = self.lab.api(f"/api/contents/{path}")["content"]
        return [c for c in nb["cells"] if c["cell_type"] == "code"]
