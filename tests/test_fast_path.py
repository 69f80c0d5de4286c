"""The cargo-free cell path (vendor/evcxr patches 0004 and 0005) is never stale.

Between cells the kernel runs the rustc command cargo last used instead of
cargo. For each input that changes a compile (`:env`, `:build_env`, `:opt`, a
path dependency's sources, a cargo config, `Cargo.lock`, the rustc itself),
the same cells run in two kernels: one as installed, one with
EVCXR_NO_FAST_RUSTC set, where every cell goes through cargo. Both must print
the same, and what cargo's build gives. A trivial cell must still take the
fast path: it is timed against the cargo kernel's.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import textwrap
from pathlib import Path

import pytest

from conftest import KERNEL_NAME, Kernel, unique
from jupyter_client.manager import KernelManager

# Each scenario's last cell prints one line, the value compared.
PRINT_ENV = 'println!("{:?}", option_env!("{var}"));'


def _start(env: dict[str, str]) -> Kernel:
    km = KernelManager(kernel_name=KERNEL_NAME)
    km.start_kernel(env={**os.environ, **env})
    try:
        k = Kernel(km)
        k.warm_up()
        return k
    except BaseException:
        km.shutdown_kernel(now=True)
        raise


@pytest.fixture(scope="module")
def kernels():
    """{"fast": a kernel as installed, "cargo": one that always runs cargo}."""
    started: dict[str, Kernel] = {}
    try:
        started["fast"] = _start({})
        started["cargo"] = _start({"EVCXR_NO_FAST_RUSTC": "1"})
        yield started
    finally:
        for k in started.values():
            k.close()


def run(k: Kernel, code: str) -> str:
    ex = k.execute(code)
    assert ex.status == "ok", ex.dump()
    return ex.stdout.strip()


def both(kernels: dict[str, Kernel], code: str) -> str:
    """Runs `code` in both kernels; returns the output they agree on."""
    fast = run(kernels["fast"], code)
    cargo = run(kernels["cargo"], code)
    assert fast == cargo, f"fast path printed {fast!r}, cargo {cargo!r} for {code!r}"
    return fast


def primed(kernels: dict[str, Kernel], code: str) -> str:
    """Runs `code` twice in both kernels, so the fast kernel's next compile of
    it goes through the fast path if nothing changed."""
    both(kernels, code)
    return both(kernels, code)


def test_trivial_cell_takes_the_fast_path(kernels):
    """a + 1, median of 9 taken in turns: the fast kernel must beat the one
    running cargo (on a quiet 2-core VM about 100 ms against 140 ms)."""
    samples: dict[str, list[float]] = {name: [] for name in kernels}
    for k in kernels.values():
        run(k, "let a = 1;")
    for _ in range(9):
        for name, k in kernels.items():
            ex = k.execute("a + 1")
            assert ex.status == "ok", ex.dump()
            samples[name].append(ex.t_idle)
    times = {name: statistics.median(s) for name, s in samples.items()}
    print(f"a + 1 median: fast {times['fast'] * 1000:.0f} ms, cargo {times['cargo'] * 1000:.0f} ms")
    assert times["fast"] < times["cargo"], times


def test_env_then_restart(kernels):
    """The reported bug: `:env` then `:restart`, then option_env! in a cell."""
    var = unique("FAST_ENV").upper()
    cell = PRINT_ENV.replace("{var}", var)
    assert primed(kernels, cell) == "None"
    for k in kernels.values():
        run(k, f":env {var}=1")
        run(k, ":restart")
    assert both(kernels, cell) == 'Some("1")'


def test_env(kernels):
    var = unique("FAST_ENV").upper()
    cell = PRINT_ENV.replace("{var}", var)
    assert primed(kernels, cell) == "None"
    for k in kernels.values():
        run(k, f":env {var}=yes")
    assert both(kernels, cell) == 'Some("yes")'


def test_build_env(kernels):
    var = unique("FAST_BUILD_ENV").upper()
    cell = PRINT_ENV.replace("{var}", var)
    assert primed(kernels, cell) == "None"
    for k in kernels.values():
        run(k, f":build_env {var}=two")
    assert both(kernels, cell) == 'Some("two")'


def test_cargo_config(kernels):
    """A `[env]` in a cargo config of the session crate's parent directory."""
    var = unique("FAST_CONFIG").upper()
    cell = PRINT_ENV.replace("{var}", var)
    assert primed(kernels, cell) == "None"
    # The session's config already holds the prebuilt build's settings (its
    # vendored sources): the `[env]` table goes after them, and they come
    # back afterwards, so no dependency is rebuilt from crates.io.
    configs = []
    for k in kernels.values():
        crate_dir = Path(run(k, 'println!("{}", env!("CARGO_MANIFEST_DIR"));'))
        config = crate_dir.parent / ".cargo" / "config.toml"
        config.parent.mkdir(exist_ok=True)
        original = config.read_text() if config.exists() else None
        assert "[env]" not in (original or ""), "the session's config has an [env] already"
        configs.append((config, original))

    def write(value):
        for config, original in configs:
            config.write_text(f'{original or ""}\n[env]\n{var} = "{value}"\n')

    try:
        write("from-config")
        assert both(kernels, cell) == 'Some("from-config")'
        write("changed")
        assert both(kernels, cell) == 'Some("changed")'
    finally:
        for config, original in configs:
            if original is None:
                config.unlink()
            else:
                config.write_text(original)


def test_opt(kernels):
    """`:opt`: an unoptimized loop of 10^8 steps takes far longer than 20 ms;
    LLVM turns the optimized one into a formula."""
    cell = textwrap.dedent(
        """\
        {
            let n = std::hint::black_box(100_000_000u64);
            let t = std::time::Instant::now();
            let mut s = 0u64;
            for i in 0..n { s = s.wrapping_add(i); }
            std::hint::black_box(s);
            println!("{}", if t.elapsed().as_millis() < 20 { "optimized" } else { "not optimized" });
        }"""
    )
    for k in kernels.values():
        run(k, ":opt 2")
    assert primed(kernels, cell) == "optimized"
    for k in kernels.values():
        run(k, ":opt 0")
    assert both(kernels, cell) == "not optimized"
    for k in kernels.values():
        run(k, ":opt 2")
    assert both(kernels, cell) == "optimized"


def test_path_dependency_sources(kernels, tmp_path):
    """A path crate's source edited after `:dep`: cargo rebuilds it."""
    name = unique("fastdep")
    (tmp_path / "src").mkdir()
    (tmp_path / "Cargo.toml").write_text(
        f'[package]\nname = "{name}"\nversion = "0.1.0"\nedition = "2021"\n'
    )
    lib = tmp_path / "src" / "lib.rs"
    lib.write_text('pub fn v() -> &\'static str { "one" }\n')
    for k in kernels.values():
        run(k, f':dep {name} = {{ path = "{tmp_path}" }}')
    cell = f'println!("{{}}", {name}::v());'
    assert primed(kernels, cell) == "one"
    lib.write_text('pub fn v() -> &\'static str { "two" }\n')
    assert both(kernels, cell) == "two"
    # A new module in the path crate, through an edited lib.rs.
    (tmp_path / "src" / "extra.rs").write_text('pub fn w() -> &\'static str { "three" }\n')
    lib.write_text('pub mod extra;\npub fn v() -> &\'static str { extra::w() }\n')
    assert both(kernels, cell) == "three"


def test_path_dependency_version_and_cargo_lock(kernels, tmp_path):
    """A path crate's version bumped after `:dep`: cargo relocks (Cargo.lock
    changes) and rebuilds it with the new CARGO_PKG_VERSION."""
    name = unique("fastver")
    (tmp_path / "src").mkdir()
    manifest = tmp_path / "Cargo.toml"
    manifest.write_text(f'[package]\nname = "{name}"\nversion = "0.1.0"\nedition = "2021"\n')
    (tmp_path / "src" / "lib.rs").write_text(
        'pub fn version() -> &\'static str { env!("CARGO_PKG_VERSION") }\n'
    )
    for k in kernels.values():
        run(k, f':dep {name} = {{ path = "{tmp_path}" }}')
    cell = f'println!("{{}}", {name}::version());'
    assert primed(kernels, cell) == "0.1.0"
    manifest.write_text(f'[package]\nname = "{name}"\nversion = "0.2.0"\nedition = "2021"\n')
    assert both(kernels, cell) == "0.2.0"
    for k in kernels.values():
        crate_dir = Path(run(k, 'println!("{}", env!("CARGO_MANIFEST_DIR"));'))
        lock = (crate_dir / "Cargo.lock").read_text()
        assert f'name = "{name}"\nversion = "0.2.0"' in lock, lock


def test_rustc_changed(tmp_path):
    """A new rustc in place, as `rustup update` does: evcxr finds its rustc
    with `rustup which rustc` at start, so a fake `rustup` first in the PATH
    of a new pair of kernels names a script that runs the real rustc with
    `--cfg fast_v1`; the script is then replaced by one passing `--cfg
    fast_v2` (the same `rustc -vV`, so cargo rebuilds no dependency)."""
    real_rustup = shutil.which("rustup")
    if real_rustup is None:
        pytest.skip("needs rustup")
    real_rustc = subprocess.run(
        [real_rustup, "which", "rustc"], check=True, capture_output=True, text=True
    ).stdout.strip()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "rustc"

    def install(path: Path, text: str) -> None:
        new = path.with_name(path.name + ".new")
        new.write_text(text)
        new.chmod(0o755)
        os.replace(new, path)

    install(
        bin_dir / "rustup",
        f'#!/bin/sh\ncase "$*" in\n  "which rustc") echo "{script}" ;;\n'
        f'  *) exec "{real_rustup}" "$@" ;;\nesac\n',
    )
    install(script, f'#!/bin/sh\nexec "{real_rustc}" "$@" --cfg fast_v1\n')
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    kernels = {}
    try:
        kernels["fast"] = _start({"PATH": path})
        kernels["cargo"] = _start({"PATH": path, "EVCXR_NO_FAST_RUSTC": "1"})
        cell = 'println!("{} {}", cfg!(fast_v1), cfg!(fast_v2));'
        assert primed(kernels, cell) == "true false"
        install(script, f'#!/bin/sh\nexec "{real_rustc}" "$@" --cfg fast_v2\n')
        assert both(kernels, cell) == "false true"
    finally:
        for k in kernels.values():
            k.close()
