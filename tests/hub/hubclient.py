"""A real JupyterHub on 127.0.0.1 for tests and the classroom benchmark.

What it drives: throwaway Unix users (useradd/userdel), a hub with
DummyAuthenticator and LocalProcessSpawner whose single-user servers run from
the shared install made by deploy/setup-system.sh, logins through the hub's
login form and REST API, and forja kernels through each server's REST and
websocket API. Needs root (the hub switches to each user). Used by
tests/test_hub.py and bench/classroom.py.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import requests
import websocket

ROOT = Path(__file__).resolve().parents[2]
PREFIX = Path(os.environ.get("FORJA_PREFIX", "/opt/forja"))
CHP = ROOT / "tests/hub/node_modules/.bin/configurable-http-proxy"
LESSON_01 = ROOT / "notebooks/01_procesos.ipynb"


def missing_prerequisites() -> str | None:
    """Why a hub cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (useradd, and the hub switches users)"
    if not (PREFIX / "venv/bin/jupyterhub-singleuser").is_file():
        return f"no {PREFIX}/venv: run deploy/setup-system.sh"
    if not CHP.is_file():
        return "no configurable-http-proxy: npm ci --prefix tests/hub"
    for tool in ("useradd", "userdel", "node"):
        if shutil.which(tool) is None:
            return f"no {tool}"
    try:
        import jupyterhub  # noqa: F401
    except ImportError:
        return "no jupyterhub in this Python: pip install -r tests/hub/requirements.txt"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lesson_cells(path: Path = LESSON_01) -> list[str]:
    nb = json.loads(path.read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


# ---------------------------------------------------------------- Unix users


def create_user(name: str) -> None:
    subprocess.run(
        ["useradd", "--create-home", "--shell", "/bin/bash", name],
        check=True,
        capture_output=True,
    )


def user_pids(name: str) -> list[int]:
    try:
        uid = pwd.getpwnam(name).pw_uid
    except KeyError:
        return []
    pids = []
    for p in psutil.process_iter(["uids"]):
        try:
            if p.info["uids"] and p.info["uids"].real == uid:
                pids.append(p.pid)
        except psutil.Error:
            pass
    return pids


def describe(pids: list[int]) -> str:
    """One line per process: pid, parent, name, command line (for failures)."""
    lines = []
    for pid in pids:
        try:
            p = psutil.Process(pid)
            lines.append(f"{pid} ppid={p.ppid()} {p.name()} {' '.join(p.cmdline())[:160]}")
        except psutil.Error:
            lines.append(f"{pid} (gone)")
    return "\n".join(lines)


def remove_user(name: str) -> None:
    """Kills what is left of the user's processes, then removes the user and home."""
    for _ in range(20):
        pids = user_pids(name)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)
    subprocess.run(["userdel", "--remove", name], capture_output=True)


# ---------------------------------------------------------------------- hub

CONFIG = """
c = get_config()  # noqa
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.command = [{chp!r}]
c.JupyterHub.db_url = "sqlite:///{dir}/hub.sqlite"
c.JupyterHub.cookie_secret_file = "{dir}/cookie_secret"
c.JupyterHub.pid_file = "{dir}/hub.pid"
c.JupyterHub.cleanup_servers = True
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = {password!r}
c.Authenticator.allowed_users = set({users!r})
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = ["{prefix}/venv/bin/jupyterhub-singleuser"]
c.Spawner.environment = {{"PATH": "{prefix}/venv/bin:/usr/local/bin:/usr/bin:/bin"}}
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
c.Spawner.default_url = "/lab"
"""


class Hub:
    """A JupyterHub process (run from this Python) and its proxy on loopback."""

    def __init__(self, workdir: Path, users: list[str], password: str | None = None):
        self.dir = workdir
        self.users = users
        self.password = password or secrets.token_urlsafe(12)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log = workdir / "hub.log"

    def start(self, timeout: float = 90) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        (self.dir / "jupyterhub_config.py").write_text(
            CONFIG.format(
                port=self.port,
                hub_port=free_port(),
                proxy_api_port=free_port(),
                chp=str(CHP),
                dir=self.dir,
                password=self.password,
                users=self.users,
                prefix=PREFIX,
            )
        )
        env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jupyterhub", "-f", "jupyterhub_config.py"],
                cwd=self.dir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the hub exited ({self.proc.returncode}):\n{self.tail()}")
            try:
                if requests.get(f"{self.url}/hub/api", timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"the hub did not answer within {timeout} s:\n{self.tail()}")

    def tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        """Stops the hub (which stops the servers, cleanup_servers) and its proxy."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            pass
        try:  # the proxy and anything else in the hub's session
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)

    # ------------------------------------------------------------ REST API

    def login(self, user: str) -> str:
        """Logs in through the login form, then asks the REST API for a token."""
        s = requests.Session()
        s.get(f"{self.url}/hub/login", timeout=10).raise_for_status()
        xsrf = s.cookies.get("_xsrf")
        r = s.post(
            f"{self.url}/hub/login",
            data={"username": user, "password": self.password, "_xsrf": xsrf},
            allow_redirects=False,
            timeout=30,
        )
        if r.status_code != 302:
            raise RuntimeError(f"login of {user} failed: {r.status_code} {r.text[:300]}")
        r = s.post(
            f"{self.url}/hub/api/users/{user}/tokens",
            json={"note": "forja hub test", "expires_in": 3600},
            headers={"X-XSRFToken": s.cookies.get("_xsrf") or xsrf},
            timeout=30,
        )
        r.raise_for_status()
        return r.json()["token"]

    def api(self, method: str, path: str, token: str, **kw) -> requests.Response:
        return requests.request(
            method,
            f"{self.url}/hub/api{path}",
            headers={"Authorization": f"token {token}"},
            timeout=kw.pop("timeout", 30),
            **kw,
        )

    def start_server(self, user: str, token: str, timeout: float = 120) -> None:
        r = self.api("POST", f"/users/{user}/server", token)
        if r.status_code not in (201, 202, 400):  # 400: already running
            raise RuntimeError(f"starting {user}'s server: {r.status_code} {r.text[:300]}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = self.api("GET", f"/users/{user}", token).json()
            server = info.get("servers", {}).get("")
            if server and server.get("ready"):
                return
            time.sleep(0.3)
        raise TimeoutError(f"{user}'s server not ready in {timeout} s:\n{self.tail()}")

    def stop_server(self, user: str, token: str, timeout: float = 60) -> None:
        r = self.api("DELETE", f"/users/{user}/server", token)
        if r.status_code not in (202, 204):
            raise RuntimeError(f"stopping {user}'s server: {r.status_code} {r.text[:300]}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = self.api("GET", f"/users/{user}", token).json()
            if not info.get("servers"):
                return
            time.sleep(0.3)
        raise TimeoutError(f"{user}'s server did not stop in {timeout} s")


# ------------------------------------------------------------------ kernels


class Kernel:
    """A kernel in a user's server, driven through /api/kernels and its websocket."""

    def __init__(self, hub: Hub, user: str, token: str, name: str = "forja"):
        self.hub, self.user, self.token = hub, user, token
        base = f"/user/{user}/api/kernels"
        self.headers = {"Authorization": f"token {token}"}
        r = requests.post(f"{hub.url}{base}", json={"name": name}, headers=self.headers, timeout=60)
        r.raise_for_status()
        self.id = r.json()["id"]
        self.url = f"{hub.url}{base}/{self.id}"
        ws_url = self.url.replace("http://", "ws://") + "/channels"
        self.ws = websocket.create_connection(
            ws_url, header=[f"Authorization: token {token}"], timeout=120
        )
        self.session = uuid.uuid4().hex

    def execute(self, code: str, timeout: float = 120, stop_on_error: bool = True) -> dict:
        """Runs a cell; returns status, stdout text, error text, seconds."""
        msg_id = uuid.uuid4().hex
        msg = {
            "header": {
                "msg_id": msg_id,
                "username": self.user,
                "session": self.session,
                "msg_type": "execute_request",
                "version": "5.3",
                "date": "",
            },
            "parent_header": {},
            "metadata": {},
            "content": {
                "code": code,
                "silent": False,
                "store_history": True,
                "user_expressions": {},
                "allow_stdin": False,
                "stop_on_error": stop_on_error,
            },
            "channel": "shell",
            "buffers": [],
        }
        t0 = time.monotonic()
        self.ws.send(json.dumps(msg))
        out, err, status, idle = [], [], None, False
        deadline = t0 + timeout
        while status is None or not idle:
            self.ws.settimeout(max(0.1, deadline - time.monotonic()))
            m = json.loads(self.ws.recv())
            if m.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            t = m["msg_type"]
            if t == "stream":
                out.append(m["content"]["text"])
            elif t == "error":
                err.append("\n".join(m["content"].get("traceback", [])) or m["content"]["evalue"])
            elif t == "execute_reply":
                status = m["content"]["status"]
            elif t == "status" and m["content"]["execution_state"] == "idle":
                idle = True
        return {
            "status": status,
            "stdout": "".join(out),
            "error": "\n".join(err),
            "seconds": time.monotonic() - t0,
        }

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            requests.delete(self.url, headers=self.headers, timeout=30)


def kernel_pids(user: str) -> list[int]:
    """The forja-kernel processes of `user` whose parent is not a forja-kernel
    (the kernel itself, not its runner)."""
    pids = []
    for pid in user_pids(user):
        try:
            p = psutil.Process(pid)
            if p.name() == "forja-kernel" and p.parent().name() != "forja-kernel":
                pids.append(pid)
        except psutil.Error:
            pass
    return pids
