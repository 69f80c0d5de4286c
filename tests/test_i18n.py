"""Messages in the student's language, end to end (issue 14).

A kernelspec installed with `forja-kernel install --lang es` (into a private
JUPYTER_PATH) carries FORJA_LANG=es, so a kernel started from it on a server
whose locale is C.UTF-8 (a hub) speaks Spanish: the note of an interrupt, a
forja error's text, and a display's headers. The rest of the suite runs in
English (conftest sets FORJA_LANG=en); the kernelspec's env wins over that.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from jupyter_client import KernelManager

from conftest import FLUSH, ROOT, Kernel

KERNEL = ROOT / "target" / "release" / "forja-kernel"
HANG = 20


@pytest.fixture(scope="module")
def kernel_es(tmp_path_factory):
    prefix = tmp_path_factory.mktemp("jupyter-es")
    subprocess.run(
        [str(KERNEL), "install", "--prefix", str(prefix), "--name", "forja-es", "--lang", "es"],
        check=True,
        capture_output=True,
    )
    data = prefix / "share" / "jupyter"
    spec = json.loads((data / "kernels" / "forja-es" / "kernel.json").read_text())
    assert spec["env"] == {"FORJA_LANG": "es"}, spec
    # A hub's environment: C.UTF-8, and (as in the rest of the suite)
    # FORJA_LANG=en, which the kernelspec overrides.
    env = {k: v for k, v in os.environ.items() if k not in ("LC_ALL", "LC_MESSAGES")}
    env.update({"LANG": "C.UTF-8", "FORJA_LANG": "en"})
    old_path = os.environ.get("JUPYTER_PATH", "")
    os.environ["JUPYTER_PATH"] = os.pathsep.join(p for p in (str(data), old_path) if p)
    try:
        km = KernelManager(kernel_name="forja-es")
        assert km.kernel_spec.env == {"FORJA_LANG": "es"}
    finally:
        os.environ["JUPYTER_PATH"] = old_path
    km.start_kernel(env=env)
    try:
        k = Kernel(km)
    except BaseException:
        km.shutdown_kernel(now=True)
        raise
    try:
        k.warm_up()
        yield k
    finally:
        k.close()


def test_install_lang_auto_writes_nothing(tmp_path: Path):
    subprocess.run(
        [str(KERNEL), "install", "--prefix", str(tmp_path), "--lang", "auto"],
        check=True,
        capture_output=True,
    )
    spec = json.loads((tmp_path / "share/jupyter/kernels/forja/kernel.json").read_text())
    assert "FORJA_LANG" not in spec.get("env", {}), spec


def test_a_forja_error_is_in_spanish(kernel_es: Kernel):
    ex = kernel_es.execute(
        "let q: Queue<i32> = Queue::new().unwrap();\n"
        "match q.try_get() { Err(e) => println!(\"{e}\"), Ok(_) => println!(\"?\") }"
    )
    assert ex.status == "ok", ex.dump()
    assert "la cola está vacía" in ex.stdout, ex.dump()


def test_a_display_is_in_spanish(kernel_es: Kernel):
    ex = kernel_es.execute('Process::new(|| {}).with_name("demo")')
    assert ex.status == "ok", ex.dump()
    html = "".join(
        r.content.get("data", {}).get("text/html", "")
        for r in ex.iopub
        if r.type in ("display_data", "execute_result")
    )
    assert "código de salida" in html and "sin iniciar" in html, ex.dump()


def test_the_magics_help_is_in_spanish(kernel_es: Kernel):
    ex = kernel_es.execute(":help")
    assert ex.status == "ok", ex.dump()
    text = "".join(
        r.content.get("data", {}).get("text/plain", "")
        for r in ex.iopub
        if r.type in ("display_data", "execute_result")
    )
    lines = {l.split()[0]: l for l in text.splitlines() if l.startswith(":")}
    for magic in (":procs", ":kill", ":waits", ":fresh", ":dep", ":vars", ":help"):
        assert magic in lines, ex.dump()
    assert "procesos que arrancaron tus celdas" in lines[":procs"], ex.dump()
    assert "agrega una dependencia" in lines[":dep"], ex.dump()
    assert "Print command help" not in text, ex.dump()


def test_an_interrupt_is_in_spanish(kernel_es: Kernel):
    code = f'println!("READY"); {FLUSH}\nforja::sleep(std::time::Duration::from_secs(60)).ok();'
    mid = kernel_es.send_execute(code)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        got = kernel_es.iopub_for(mid)
        if "READY" in "".join(r.content.get("text", "") for r in got if r.type == "stream"):
            break
        kernel_es.pump(0.05)
    cid = kernel_es.send_control("interrupt_request", {})
    assert kernel_es.control_reply(cid, timeout=HANG)["content"]["status"] == "ok"
    ex = kernel_es.collect(code, mid, timeout=HANG * 3)
    assert ex.status == "error" and ex.error["ename"] == "Interrupted", ex.dump()
    assert "Celda interrumpida" in ex.error["evalue"], ex.dump()
