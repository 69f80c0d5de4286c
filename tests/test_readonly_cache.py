"""The prebuilt forja build is used in place, read-only and shared (issue 21).

A copy of the prebuilt build (``FORJA_PREBUILT``, made by ``forja-kernel
prebuild``) is made read-only (``chmod -R a-w``) and given to a new kernel.
Cells run, then a ``:dep`` on a new path crate makes cargo rebuild the
session's crate, and a cell uses it. Afterwards every file of the read-only
build has the same checksum, mode and mtime as before, nothing was added or
removed, and the session's target dir links to the read-only build instead of
holding a copy of it: what the kernel wrote to its work dir before its first
cell stays under 10 MB.

Under root, ``a-w`` stops nobody: the checksums are what catch a write.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import KERNEL_NAME, Kernel, ROOT
from jupyter_client.manager import KernelManager

PREBUILT = Path(os.environ.get("FORJA_PREBUILT", ROOT / "target" / "forja-prebuilt"))
LIMIT = 10 * 1000 * 1000


def snapshot(base: Path) -> dict[str, tuple]:
    """Every entry under base: its kind, mode, mtime and (files) sha256."""
    seen: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(base):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            if stat.S_ISREG(st.st_mode):
                digest = hashlib.sha256(p.read_bytes()).hexdigest()
                seen[str(p.relative_to(base))] = ("f", st.st_mode, st.st_mtime_ns, digest)
            elif stat.S_ISLNK(st.st_mode):
                seen[str(p.relative_to(base))] = ("l", os.readlink(p))
            else:
                seen[str(p.relative_to(base))] = ("d", st.st_mode)
    return seen


def workdir_of(pid: int) -> Path:
    base = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir())
    if not base.is_dir():
        base = Path(tempfile.gettempdir())
    found = list(base.glob(f"forja-kernel-{pid}-*"))
    assert found, f"no work dir of kernel {pid} in {base}"
    return found[0]


def disk_usage(path: Path) -> int:
    """Bytes under path, symlinks counted as links (not what they point to)."""
    out = subprocess.run(["du", "-sb", "-P", str(path)], capture_output=True, text=True,
                         check=True).stdout
    return int(out.split()[0])


@pytest.fixture
def readonly_build(tmp_path):
    if not (PREBUILT / "forja-prebuilt.json").exists():
        pytest.skip(f"no prebuilt build in {PREBUILT} (run ./install.sh)")
    copy = tmp_path / "forja-prebuilt"
    subprocess.run(["cp", "-a", str(PREBUILT), str(copy)], check=True)
    subprocess.run(["chmod", "-R", "a-w", str(copy)], check=True)
    try:
        yield copy
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(copy)], check=True)


def test_cells_and_dep_leave_the_readonly_build_untouched(readonly_build, tmp_path):
    before = snapshot(readonly_build)
    tiny = tmp_path / "tiny"
    (tiny / "src").mkdir(parents=True)
    (tiny / "Cargo.toml").write_text(
        '[package]\nname = "tiny"\nversion = "0.1.0"\nedition = "2021"\n')
    (tiny / "src/lib.rs").write_text("pub fn twice(x: usize) -> usize { x * 2 }\n")

    km = KernelManager(kernel_name=KERNEL_NAME)
    km.start_kernel(env={**os.environ, "FORJA_PREBUILT": str(readonly_build)})
    k = Kernel(km)
    try:
        work = workdir_of(k.pid)
        first = k.execute("let n = forja::cpu_count();")
        assert first.status == "ok", first.dump()
        assert "prebuilt" not in first.stdout + first.stderr, first.dump()
        # The session's target dir links to the shared build: forja's rlib
        # is a symlink into the read-only copy, not a copy.
        rlibs = list((work / "evcxr" / "target").rglob("libforja-*.rlib"))
        assert rlibs, "no forja rlib in the session's target dir"
        for rlib in rlibs:
            assert rlib.is_symlink(), rlib
            assert Path(os.readlink(rlib)).is_relative_to(readonly_build), rlib
        written = disk_usage(work)
        assert written < LIMIT, f"the kernel's work dir holds {written} bytes"

        ex = k.execute("n + 1")
        assert ex.status == "ok", ex.dump()
        dep = k.execute(f':dep tiny = {{ path = "{tiny}" }}')
        assert dep.status == "ok", dep.dump()
        used = k.execute('println!("{}", tiny::twice(n) == 2 * n);')
        assert used.status == "ok", used.dump()
        assert used.stdout.strip() == "true", used.dump()
        # forja still works after the rebuild.
        again = k.execute("let q: forja::Queue<u32> = forja::Queue::new().unwrap(); "
                          "q.put(&3).unwrap(); println!(\"{}\", q.get().unwrap());")
        assert again.status == "ok", again.dump()
        assert again.stdout.strip() == "3", again.dump()
    finally:
        k.close()
    after = snapshot(readonly_build)
    changed = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
    assert not changed, f"the read-only build changed: {changed[:20]}"
    shutil.rmtree(tiny, ignore_errors=True)
