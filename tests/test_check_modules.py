"""tools/check_modules.py on small synthetic crates written to tmp dirs."""

import subprocess
import sys
import textwrap
from pathlib import Path

CHECKER = Path(__file__).resolve().parent.parent / "tools" / "check_modules.py"


def crate(tmp_path, files):
    """Writes `files` (path -> source) under tmp_path/src and returns that dir."""
    src = tmp_path / "src"
    for name, text in files.items():
        f = src / name
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(textwrap.dedent(text).lstrip("\n"))
    return src


def run(src):
    r = subprocess.run(
        [sys.executable, str(CHECKER), str(src)],
        capture_output=True,
        text=True,
        cwd=src.parent,
        timeout=60,
    )
    return r.returncode, r.stdout + r.stderr


def test_a_clean_crate_passes(tmp_path):
    src = crate(
        tmp_path,
        {
            "lib.rs": "pub mod a;\npub mod b;\n",
            "a.rs": "pub fn f() {}\n",
            "b.rs": "use crate::a::f;\npub fn g() { f() }\n",
        },
    )
    code, out = run(src)
    assert code == 0, out
    assert "no import cycle" in out


def test_a_two_cycle_names_both_edges_and_their_lines(tmp_path):
    src = crate(
        tmp_path,
        {
            "lib.rs": "pub mod a;\npub mod b;\n",
            "a.rs": "use crate::b::g;\npub fn f() { g() }\n",
            "b.rs": "pub fn g() {}\n\npub fn h() { crate::a::f() }\n",
        },
    )
    code, out = run(src)
    assert code == 1, out
    assert "a -> b -> a" in out
    assert "a -> b: src/a.rs:1" in out
    assert "b -> a: src/b.rs:3" in out


def test_a_three_cycle_through_grouped_uses(tmp_path):
    src = crate(
        tmp_path,
        {
            "lib.rs": "pub mod a;\npub mod b;\npub mod c;\n",
            "a.rs": "use crate::{b::{self, G}, x as _};\npub fn f() {}\npub struct X;\n",
            "b.rs": "pub struct G;\npub fn g() -> crate::c::H { todo!() }\n",
            "c.rs": "pub struct H;\nfn h() { let _: Option<super::a::X> = None; }\n",
        },
    )
    code, out = run(src)
    assert code == 1, out
    assert "a -> b -> c -> a" in out
    assert "b -> c: src/b.rs:2" in out
    assert "c -> a: src/c.rs:2" in out


def test_a_cycle_only_through_a_re_export_is_found(tmp_path):
    # b names `crate::Thing`; the root only re-exports it from a, which uses b.
    src = crate(
        tmp_path,
        {
            "lib.rs": "pub mod a;\npub mod b;\npub use a::Thing;\n",
            "a.rs": "pub struct Thing;\npub fn f() { crate::b::g() }\n",
            "b.rs": "use crate::Thing;\npub fn g() {}\nfn k(_: Thing) {}\n",
        },
    )
    code, out = run(src)
    assert code == 1, out
    assert "a -> b -> a" in out
    assert "b -> a: src/b.rs:1" in out


def test_a_re_export_through_a_module_that_is_not_in_the_cycle(tmp_path):
    # c re-exports a's item; b uses it via c: the edge is b -> a, not b -> c.
    src = crate(
        tmp_path,
        {
            "lib.rs": "pub mod a;\npub mod b;\npub mod c;\n",
            "a.rs": "pub struct Thing;\n",
            "b.rs": "use crate::c::Thing;\npub fn g(_: Thing) {}\n",
            "c.rs": "pub use crate::a::Thing;\npub fn h() { crate::b::g(Thing) }\n",
        },
    )
    code, out = run(src)
    assert code == 0, out


def test_parent_and_child_edges_are_ignored(tmp_path):
    src = crate(
        tmp_path,
        {
            "lib.rs": "pub mod net;\npub use net::Socket;\npub fn top() { crate::net::helper() }\n",
            "net/mod.rs": (
                "pub mod socket;\npub use socket::Socket;\npub fn helper() {}\n"
                "pub fn make() -> self::socket::Socket { crate::net::socket::Socket }\n"
            ),
            "net/socket.rs": (
                "use super::helper;\nuse crate::top;\npub struct Socket;\n"
                "fn f() { super::super::top(); crate::net::helper(); }\n"
            ),
        },
    )
    code, out = run(src)
    assert code == 0, out


def test_inline_and_test_modules(tmp_path):
    # An inline module is part of its file; a #[cfg(test)] one is left out.
    src = crate(
        tmp_path,
        {
            "lib.rs": "pub mod a;\npub mod b;\n",
            "a.rs": """
                pub fn f() {}
                pub mod inner {
                    pub fn g() { super::f() }
                }
            """,
            "b.rs": """
                pub fn h() { crate::a::inner::g() }
                #[cfg(test)]
                mod tests {
                    use crate::a::f; // no cycle: test code
                }
            """,
        },
    )
    code, out = run(src)
    assert code == 0, out
    # ... and a real edge out of an inline module counts for its file.
    (src / "a.rs").write_text("pub fn f() {}\npub mod inner {\n    pub fn g() { crate::b::h() }\n}\n")
    code, out = run(src)
    assert code == 1, out
    assert "a -> b -> a" in out
    assert "a -> b: src/a.rs:3" in out


def test_paths_in_comments_and_strings_do_not_count(tmp_path):
    src = crate(
        tmp_path,
        {
            "lib.rs": "pub mod a;\npub mod b;\n",
            "a.rs": "use crate::b::g;\npub fn f() { g() }\n",
            "b.rs": (
                "/// See [`crate::a::f`].\npub fn g() {\n"
                '    let _ = "crate::a::f()"; // crate::a::f()\n    let _ = \'{\';\n}\n'
            ),
        },
    )
    code, out = run(src)
    assert code == 0, out


def big(n, first="//! Does things."):
    return first + "\n" + "".join(f"pub fn f{i}() {{}}\n" for i in range(n - 1))


def test_a_file_over_700_lines_fails(tmp_path):
    src = crate(tmp_path, {"lib.rs": "pub mod a;\n", "a.rs": big(701)})
    code, out = run(src)
    assert code == 1, out
    assert "src/a.rs: 701 lines" in out
    (src / "a.rs").write_text(big(700))
    code, out = run(src)
    assert code == 0, out


def test_the_trailing_test_module_is_not_counted(tmp_path):
    tests = "#[cfg(test)]\nmod tests {\n" + "    #[test]\n    fn t() {}\n" * 100 + "}\n"
    src = crate(tmp_path, {"lib.rs": "pub mod a;\n", "a.rs": big(690) + "\n" + tests})
    code, out = run(src)
    assert code == 0, out
    # A test module that is not at the end counts.
    (src / "a.rs").write_text(tests + big(690))
    code, out = run(src)
    assert code == 1, out
    assert "src/a.rs:" in out


def test_one_job_first_line_allows_a_big_file(tmp_path):
    src = crate(
        tmp_path,
        {"lib.rs": "pub mod a;\n", "a.rs": big(900, "//! One job: the whole state machine of X.")},
    )
    code, out = run(src)
    assert code == 0, out
    # Only on the first line, and it has to say something.
    (src / "a.rs").write_text("\n" + big(900, "//! One job: the whole state machine of X."))
    assert run(src)[0] == 1
    (src / "a.rs").write_text(big(900, "//! One job:"))
    assert run(src)[0] == 1
