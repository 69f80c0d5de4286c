#!/usr/bin/env python3
"""Checks the module layout of the workspace's crates: no import cycles, no big files.

Usage: tools/check_modules.py [CRATE_SRC_DIR ...]   (default: forja/src kernel/src)

Rules (exit 1 on any break, with a message saying where):

* No import cycle between modules. A module depends on another when it names it
  in a `crate::` or `super::` path: in a `use` item (grouped ones included) or in
  an expression or type (`crate::x::y()`). A path to an item that a module only
  re-exports (`pub use`) counts as a dependency on the module that defines the
  item. A module's own ancestors and descendants are not counted (a parent
  declares and re-exports its children; a child sees its parent). Inline
  modules (`mod x { }`) count as part of their file; `#[cfg(test)]` modules are
  left out (tests may reach anywhere).
* No source file over 700 lines (a trailing `#[cfg(test)]` module not counted),
  unless its first line is `//! One job: ...` saying why it is one job.

Plain Python 3.11, no dependencies: a small Rust lexer (comments, strings, chars
blanked out, line numbers kept) and regexes over what is left.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

MAX_LINES = 700
ONE_JOB = re.compile(r"^//! One job: \S")


# ---------------------------------------------------------------------------
# Lexing: blank out comments, strings and char literals, keep every newline.


def strip_rust(src: str) -> str:
    """`src` with comments, string and char literals replaced by spaces.

    Newlines are kept, so offsets map to the same lines; braces inside
    literals and comments no longer count.
    """
    out = list(src)
    n = len(src)
    i = 0

    def blank(a: int, b: int) -> None:
        for k in range(a, min(b, n)):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
        elif src.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif src.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            blank(i, j)
            i = j
        elif c in "rbc" and (i == 0 or not (src[i - 1].isalnum() or src[i - 1] == "_")):
            m = re.compile(r'(?:br|cr|r)(#*)"|[bc]"').match(src, i)
            if m is None:
                i += 1
            elif m.group(1) is not None:  # raw string: ends at `"` + same number of `#`
                end = src.find('"' + m.group(1), m.end())
                end = n if end < 0 else end + 1 + len(m.group(1))
                blank(i, end)
                i = end
            else:
                i = _skip_string(src, m.end())
                blank(m.start(), i)
        elif c == '"':
            j = _skip_string(src, i + 1)
            blank(i, j)
            i = j
        elif c == "'":
            if src.startswith("\\", i + 1):  # '\n', '\'', '\u{..}'
                j = src.find("'", i + 3)
                j = n if j < 0 else j + 1
                blank(i, j)
                i = j
            elif i + 2 < n and src[i + 2] == "'":  # 'x'
                blank(i, i + 3)
                i += 3
            else:  # a lifetime or a label
                i += 1
        else:
            i += 1
    return "".join(out)


def _skip_string(src: str, i: int) -> int:
    """Index just past the `"` closing a string whose body starts at `i`."""
    n = len(src)
    while i < n:
        if src[i] == "\\":
            i += 2
        elif src[i] == '"':
            return i + 1
        else:
            i += 1
    return n


# ---------------------------------------------------------------------------
# The module tree of one crate.

Path_ = tuple[str, ...]


@dataclass
class Module:
    path: Path_  # from the crate root, inline modules included
    file: Path
    node: Path_  # the file module this one collapses into
    is_test: bool = False
    items: set[str] = field(default_factory=set)  # names defined here
    # name -> (target path segments as written, anchor module, line)
    uses: dict[str, list[tuple[list[str], Path_, int]]] = field(default_factory=dict)
    globs: list[tuple[list[str], Path_]] = field(default_factory=list)


@dataclass
class Ref:
    """A `crate::`/`super::`/`self::` path written somewhere."""

    segments: list[str]  # as written, first one crate/super/self
    module: Path_  # the module (inline ones included) it is written in
    file: Path
    line: int


USE_ITEM = re.compile(r"\buse\s+([^;<]+);")
PATH_EXPR = re.compile(r"(?<![\w:])((?:crate|super|self)(?:\s*::\s*\w+)+)")
VIS_IN = re.compile(r"pub\s*\(\s*in\s+[^)]*\)")
MOD_DECL = re.compile(r"\bmod\s+(\w+)\s*([;{])")
ITEM_DEF = re.compile(
    r"\b(?:fn|struct|enum|trait|type|const|static|union|mod)\s+(\w+)|\bmacro_rules!\s*(\w+)"
)
CFG_TEST = re.compile(r"#\[\s*cfg\s*\(\s*test\s*\)\s*\]")


def line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def preceded_by_cfg_test(text: str, pos: int) -> bool:
    """Whether the item starting at `pos` has a `#[cfg(test)]` among its attributes."""
    head = text[:pos].rstrip()
    # Walk back over `pub`/`pub(crate)` and attributes.
    head = re.sub(r"pub\s*(\([^)]*\))?\s*$", "", head).rstrip()
    while head.endswith("]"):
        start = head.rfind("#[")
        if start < 0:
            return False
        if CFG_TEST.fullmatch(head[start:]):
            return True
        head = head[:start].rstrip()
    return False


def expand_use_tree(tree: str) -> list[tuple[list[str], str | None]]:
    """`a::{b, c::d as e, f::*}` -> [(['a','b'], 'b'), (['a','c','d'], 'e'), (['a','f','*'], None)].

    The second element is the name the item is bound to (None for a glob).
    """
    tree = re.sub(r"\s+", " ", tree).strip()
    out: list[tuple[list[str], str | None]] = []

    def split_top(s: str) -> list[str]:
        parts, depth, cur = [], 0, ""
        for ch in s:
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
            else:
                cur += ch
        parts.append(cur)
        return [p.strip() for p in parts if p.strip()]

    def walk(prefix: list[str], s: str) -> None:
        s = s.strip().lstrip(":").strip()
        if s.startswith("{"):
            for part in split_top(s[1 : s.rindex("}")]):
                walk(prefix, part)
            return
        brace = s.find("{")
        if brace >= 0:
            head = [x.strip() for x in s[:brace].split("::") if x.strip()]
            walk(prefix + head, s[brace:])
            return
        alias = None
        m = re.fullmatch(r"(.*?)\s+as\s+(\w+)", s)
        if m:
            s, alias = m.group(1), m.group(2)
        segs = [x.strip() for x in s.split("::") if x.strip()]
        if segs and segs[-1] == "self":  # `a::{self}` is `a`
            segs = segs[:-1]
        full = prefix + segs
        if not full:
            return
        if full[-1] == "*":
            out.append((full, None))
        else:
            out.append((full, alias or full[-1]))

    walk([], tree)
    return out


class Crate:
    def __init__(self, src: Path, root_file: Path):
        self.src = src
        self.modules: dict[Path_, Module] = {}
        self.refs: list[Ref] = []
        self._load(root_file, (), is_test=False)

    # -- loading ------------------------------------------------------------

    def _load(self, file: Path, path: Path_, is_test: bool) -> None:
        raw = file.read_text(encoding="utf-8")
        text = strip_rust(raw)
        self.modules[path] = Module(path, file, path, is_test)
        # Inline modules: find each `mod x {` and its closing brace.
        spans: list[tuple[int, int, Path_]] = []  # (start, end, module path)
        stack: list[tuple[int, Path_ | None]] = []  # brace stack: (open pos, module or None)
        pending_mod: dict[int, tuple[str, bool]] = {}
        for m in MOD_DECL.finditer(text):
            if m.group(2) == "{":
                pending_mod[m.end() - 1] = (m.group(1), preceded_by_cfg_test(text, m.start()))
        child_decls: list[tuple[Path_, str, bool]] = []

        def current(pos_stack: list[tuple[int, Path_ | None]]) -> Path_:
            for _, mod in reversed(pos_stack):
                if mod is not None:
                    return mod
            return path

        for i, ch in enumerate(text):
            if ch == "{":
                if i in pending_mod:
                    name, test = pending_mod[i]
                    parent = current(stack)
                    mpath = parent + (name,)
                    parent_test = self.modules[parent].is_test
                    self.modules[mpath] = Module(mpath, file, path, test or parent_test)
                    stack.append((i, mpath))
                else:
                    stack.append((i, None))
            elif ch == "}" and stack:
                start, mod = stack.pop()
                if mod is not None:
                    spans.append((start, i, mod))

        def module_at(pos: int) -> Path_:
            best, best_len = path, -1
            for a, b, mod in spans:
                if a < pos < b and len(mod) > best_len:
                    best, best_len = mod, len(mod)
            return best

        # Brace depth before each character, to tell module-level items apart.
        depth_before, depth = [], 0
        for ch in text:
            depth_before.append(depth)
            depth += (ch == "{") - (ch == "}")
        mod_depth = {mod: depth_before[a] + 1 for a, _, mod in spans}

        def top_level(pos: int) -> bool:
            """Whether `pos` is directly in a module body (not in a fn, impl, ...)."""
            return depth_before[pos] == mod_depth.get(module_at(pos), 0)

        # File modules declared here (`mod x;`).
        for m in MOD_DECL.finditer(text):
            if m.group(2) == ";":
                parent = module_at(m.start())
                child_decls.append(
                    (parent, m.group(1), preceded_by_cfg_test(text, m.start()) or self.modules[parent].is_test)
                )
        # Items defined at the top of each module.
        for m in ITEM_DEF.finditer(text):
            if top_level(m.start()):
                self.modules[module_at(m.start())].items.add(m.group(1) or m.group(2))
        # `use` items.
        masked = list(text)
        for m in USE_ITEM.finditer(text):
            mod = module_at(m.start())
            ln = line_of(text, m.start())
            for segs, name in expand_use_tree(m.group(1)):
                if not re.fullmatch(r"\w+", segs[0]) or segs[0] in ("std", "core", "alloc"):
                    continue
                if segs[0] in ("crate", "super", "self"):
                    self.refs.append(Ref(segs if name is not None else segs[:-1], mod, file, ln))
                if name is None:
                    self.modules[mod].globs.append((segs[:-1], mod))
                else:
                    self.modules[mod].uses.setdefault(name, []).append((segs, mod, ln))
            for k in range(m.start(), m.end()):
                if masked[k] != "\n":
                    masked[k] = " "
        rest = VIS_IN.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), "".join(masked))
        # Paths in expressions and types.
        for m in PATH_EXPR.finditer(rest):
            segs = [s.strip() for s in m.group(1).split("::")]
            self.refs.append(Ref(segs, module_at(m.start()), file, line_of(rest, m.start())))
        # Load the children last, so that this file's modules exist first.
        for parent, name, test in child_decls:
            base = file.parent if file.name in ("mod.rs", "lib.rs", "main.rs") else file.parent / file.stem
            # Inline parents add directories: `mod a { mod b; }` in x.rs -> x/a/b.rs.
            base = base.joinpath(*parent[len(path) :])
            for cand in (base / f"{name}.rs", base / name / "mod.rs"):
                if cand.exists():
                    self._load(cand, parent + (name,), test)
                    break

    # -- resolving ------------------------------------------------------------

    def absolute(self, segs: list[str], anchor: Path_) -> list[str] | None:
        """`segs` as a path from the crate root (None for an outside crate)."""
        cur = list(anchor)
        segs = list(segs)
        if segs and segs[0] == "crate":
            return segs[1:]
        if segs and segs[0] in ("super", "self"):
            while segs and segs[0] in ("super", "self"):
                if segs[0] == "super":
                    if not cur:
                        return None
                    cur.pop()
                segs.pop(0)
            return cur + segs
        # A bare path: a child module or an item of the anchor, else an outside crate.
        if segs and (tuple(cur + segs[:1]) in self.modules or segs[0] in self.modules[tuple(cur)].uses):
            return cur + segs
        return None

    def resolve(self, abs_segs: list[str], seen: frozenset = frozenset()) -> Path_ | None:
        """The module that defines what `abs_segs` (a path from the root) names."""
        k = len(abs_segs)
        while k > 0 and tuple(abs_segs[:k]) not in self.modules:
            k -= 1
        mod = tuple(abs_segs[:k])
        if mod not in self.modules:
            return None
        rest = abs_segs[k:]
        if not rest:
            return mod
        name = rest[0]
        m = self.modules[mod]
        if name in m.items:
            return mod
        key = (mod, name)
        if key in seen:
            return mod
        seen = seen | {key}
        for segs, anchor, _ in m.uses.get(name, []):
            target = self.absolute(segs, anchor)
            if target is None:
                continue  # from another crate
            found = self.resolve(target + rest[1:], seen)
            if found is not None:
                return found
        for segs, anchor in m.globs:
            target = self.absolute(segs, anchor)
            if target is None:
                continue
            tmod = self.resolve(target, seen)
            if tmod is None:
                continue
            t = self.modules[tmod]
            if name in t.items or name in t.uses or tuple(tmod) + (name,) in self.modules:
                found = self.resolve(list(tmod) + rest, seen)
                if found is not None:
                    return found
        return mod

    def edges(self) -> dict[tuple[Path_, Path_], list[tuple[Path, int]]]:
        """File-module dependency edges, each with the lines that make it."""
        out: dict[tuple[Path_, Path_], list[tuple[Path, int]]] = {}
        for r in self.refs:
            src_mod = self.modules[r.module]
            if src_mod.is_test:
                continue
            target = self.absolute(r.segments, r.module)
            if target is None:
                continue
            found = self.resolve(target)
            if found is None:
                continue
            a, b = src_mod.node, self.modules[found].node
            if a[: len(b)] == b or b[: len(a)] == a:  # self, ancestor or descendant
                continue
            where = (r.file, r.line)
            lst = out.setdefault((a, b), [])
            if where not in lst:
                lst.append(where)
        return out


# ---------------------------------------------------------------------------
# Cycles.


def strongly_connected(nodes: list[Path_], succ: dict[Path_, list[Path_]]) -> list[list[Path_]]:
    index: dict[Path_, int] = {}
    low: dict[Path_, int] = {}
    on_stack: set[Path_] = set()
    stack: list[Path_] = []
    out: list[list[Path_]] = []
    counter = [0]

    def visit(v: Path_) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in succ.get(v, []):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(comp)

    for v in nodes:
        if v not in index:
            visit(v)
    return out


def shortest_path(succ: dict[Path_, list[Path_]], start: Path_, goal: Path_, allowed: set[Path_]) -> list[Path_]:
    prev: dict[Path_, Path_ | None] = {start: None}
    queue = [start]
    while queue:
        v = queue.pop(0)
        if v == goal:
            path = [v]
            while prev[path[-1]] is not None:
                path.append(prev[path[-1]])  # type: ignore[arg-type]
            return path[::-1]
        for w in succ.get(v, []):
            if w in allowed and w not in prev:
                prev[w] = v
                queue.append(w)
    return []


def cycles(edges: dict[tuple[Path_, Path_], list]) -> list[tuple[list[Path_], list[list[Path_]]]]:
    """Each group of modules that import each other, with a few cycles that
    together use every edge inside the group.

    Each is the shortest cycle through an edge not yet shown, so a star of
    two-way imports reads as its 2-cycles and a ring as the ring.
    """
    succ: dict[Path_, list[Path_]] = {}
    for a, b in sorted(edges):
        succ.setdefault(a, []).append(b)
    nodes = sorted({n for e in edges for n in e})
    out: list[tuple[list[Path_], list[list[Path_]]]] = []
    for comp in strongly_connected(nodes, succ):
        if len(comp) < 2:
            continue
        members = set(comp)
        found: list[list[Path_]] = []
        shown: set[tuple[Path_, Path_]] = set()
        for a, b in sorted(e for e in edges if e[0] in members and e[1] in members):
            if (a, b) in shown:
                continue
            back = shortest_path(succ, b, a, members)
            cyc = [a] + back  # a -> b -> ... -> a
            # Start each cycle at its smallest module, so output is stable.
            ring = cyc[:-1]
            k = ring.index(min(ring))
            ring = ring[k:] + ring[:k]
            cyc = ring + [ring[0]]
            shown.update(zip(cyc, cyc[1:]))
            if cyc not in found:
                found.append(cyc)
        out.append((sorted(comp), found))
    return sorted(out)


# ---------------------------------------------------------------------------
# File sizes.


def counted_lines(raw: str) -> int:
    """Lines of a file, a trailing `#[cfg(test)]` module not counted."""
    lines = raw.splitlines()
    text = strip_rust(raw)
    ends_at = len(text.rstrip())
    for m in re.finditer(r"#\[\s*cfg\s*\(\s*test\s*\)\s*\]\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?mod\s+\w+\s*\{", text):
        if _matching_brace(text, m.end() - 1) == ends_at - 1:
            before = text[: m.start()]
            return len(before.rstrip().splitlines())
    return len(lines)


def _matching_brace(text: str, open_pos: int) -> int:
    depth = 0
    for k in range(open_pos, len(text)):
        if text[k] == "{":
            depth += 1
        elif text[k] == "}":
            depth -= 1
            if depth == 0:
                return k
    return -1


# ---------------------------------------------------------------------------


def name(path: Path_) -> str:
    return "::".join(path) if path else "crate"


def check(src_dirs: list[Path], base: Path) -> list[str]:
    problems: list[str] = []

    def rel(p: Path) -> str:
        try:
            return str(p.resolve().relative_to(base.resolve()))
        except ValueError:
            return str(p)

    for src in src_dirs:
        roots = [f for f in (src / "lib.rs", src / "main.rs") if f.exists()]
        if not roots:
            problems.append(f"{rel(src)}: no lib.rs or main.rs")
        for root in roots:
            crate = Crate(src, root)
            edges = crate.edges()
            for group, cycs in cycles(edges):
                lines = [
                    f"import cycle in {rel(root)} among {len(group)} modules "
                    f"({', '.join(name(n) for n in group)}); every edge below is on a cycle:"
                ]
                for cyc in cycs:
                    lines.append("  " + " -> ".join(name(n) for n in cyc))
                    for a, b in zip(cyc, cyc[1:]):
                        where = edges[(a, b)]
                        shown = ", ".join(f"{rel(f)}:{ln}" for f, ln in where[:6])
                        more = f" and {len(where) - 6} more" if len(where) > 6 else ""
                        lines.append(f"      {name(a)} -> {name(b)}: {shown}{more}")
                problems.append("\n".join(lines))
        for f in sorted(src.rglob("*.rs")):
            raw = f.read_text(encoding="utf-8")
            n = counted_lines(raw)
            first = raw.split("\n", 1)[0]
            if n > MAX_LINES and not ONE_JOB.match(first):
                problems.append(
                    f"{rel(f)}: {n} lines (trailing #[cfg(test)] module not counted), over {MAX_LINES}: "
                    f"split it, or make its first line `//! One job: ...` saying why it is one job"
                )
    return problems


def main(argv: list[str]) -> int:
    repo = Path(__file__).resolve().parent.parent
    dirs = [Path(a) for a in argv] if argv else [repo / "forja" / "src", repo / "kernel" / "src"]
    problems = check(dirs, Path.cwd())
    for p in problems:
        print(p)
    if problems:
        print(f"check_modules: {len(problems)} problem(s)")
        return 1
    print(f"check_modules: {', '.join(str(d) for d in dirs)}: no import cycle, no file over {MAX_LINES} lines")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
