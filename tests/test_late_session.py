"""Issue 23: cells stay fast as a session grows, and nothing is lost.

A cell's generated code loads, checks and stores only the variables the cell
names (evcxr patch 0014); the others stay in evcxr's variable store as they
are. These tests check, through `jupyter_client`:

1. Every forja handle type kept across 50 cells, most of which do not name
   them, still works and holds its state at the end.
2. A variable reached without its name in the cell (here through
   `include!`) still works: rustc's "cannot find value" makes evcxr load every
   variable and compile again.
3. The trivial cell after lesson 03's cells (and after 60 live queues) stays
   well under 3x the fresh kernel's: a loose bound, so a regression to the
   old cost per live variable is caught.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from conftest import ROOT, Kernel, ok, start_kernel

LESSON_03 = ROOT / "notebooks" / "source" / "03_lock.ipynb"

SETUP = """
fn late_sq(x: u64) -> u64 { x * x }
let lsp = Process::new(|| {});
lsp.start().unwrap();
lsp.join().unwrap();
let (lsa, lsb) = Pipe::new::<u64>().unwrap();
let lsq: Queue<u64> = Queue::new().unwrap();
let lsjq: JoinableQueue<u64> = JoinableQueue::new().unwrap();
let lssq: SimpleQueue<u64> = SimpleQueue::new().unwrap();
let lslock = Lock::new().unwrap();
let lsrlock = RLock::new().unwrap();
let lssem = Semaphore::new(2).unwrap();
let lsbsem = BoundedSemaphore::new(1).unwrap();
let lscond = Condition::new().unwrap();
let lsev = Event::new().unwrap();
let lsbar = Barrier::new(1).unwrap();
let lsval = Value::new(0u64).unwrap();
let lsarr = Array::from_elem(0u64, 4).unwrap();
let lspool = Pool::new(2).unwrap();
let lsshm = forja::SharedMemory::new(64).unwrap();
let mut lscount = 0u64;
"""

# Each touches some handles and counts itself in `lsval`, `lsarr[1]`, the
# shared memory's first byte and the plain `lscount`.
USES = [
    "lsq.put(&1).unwrap(); assert_eq!(lsq.get().unwrap(), 1);",
    "lsjq.put(&2).unwrap(); assert_eq!(lsjq.get().unwrap(), 2); lsjq.task_done().unwrap();",
    "lssq.put(&3).unwrap(); assert_eq!(lssq.get().unwrap(), 3);",
    "lsa.send(&4).unwrap(); assert_eq!(lsb.recv().unwrap(), 4);",
    "{ let _g = lslock.acquire().unwrap(); } { let _g = lsrlock.acquire().unwrap(); let _h = lsrlock.acquire().unwrap(); }",
    "{ let _g = lssem.acquire().unwrap(); } { let _g = lsbsem.acquire().unwrap(); }",
    "lsev.set(); assert!(lsev.is_set()); lsev.clear();",
    "{ let g = lscond.acquire().unwrap(); g.notify_all(); } lsbar.wait().unwrap();",
    "assert_eq!(lspool.map(late_sq, vec![1u64, 2, 3]).unwrap(), vec![1, 4, 9]);",
    "assert_eq!(lsp.exitcode(), Some(0)); assert!(!lsp.is_alive());",
]
COUNT = (
    "lsval.store(lsval.load().unwrap() + 1).unwrap();"
    " lsarr.store(1, lsarr.load(1).unwrap() + 1).unwrap();"
    " { let mut g = lsshm.lock().unwrap(); g[0] += 1; }"
    " lscount += 1;"
)

FINAL = """
assert_eq!(lsval.load().unwrap(), {n});
assert_eq!(lsarr.load(1).unwrap(), {n});
assert_eq!(lsshm.lock().unwrap()[0] as u64, {n});
assert_eq!(lscount, {n});
lsq.put(&7).unwrap(); assert_eq!(lsq.get().unwrap(), 7);
lsjq.put(&7).unwrap(); assert_eq!(lsjq.get().unwrap(), 7); lsjq.task_done().unwrap(); lsjq.join().unwrap();
lssq.put(&7).unwrap(); assert_eq!(lssq.get().unwrap(), 7);
lsb.send(&7).unwrap(); assert_eq!(lsa.recv().unwrap(), 7);
drop(lslock.acquire().unwrap()); drop(lsrlock.acquire().unwrap());
drop(lssem.acquire().unwrap()); drop(lsbsem.acquire().unwrap());
drop(lscond.acquire().unwrap()); lsbar.wait().unwrap();
lsev.set(); assert!(lsev.is_set());
assert_eq!(lspool.map(late_sq, vec![4u64]).unwrap(), vec![16]);
assert_eq!(lsp.exitcode(), Some(0));
println!("LATE OK {n}");
"""


def trivial(k: Kernel, n: int = 3) -> float:
    times = []
    for _ in range(n):
        ex = ok(k, "late_x + 1")
        assert ex.result and ex.result["data"]["text/plain"] == "2", ex.dump()
        times.append(ex.t_reply)
    return statistics.median(times)


def test_every_handle_type_kept_across_50_cells():
    k = start_kernel()
    try:
        k.warm_up()
        ok(k, "let late_x = 1u64;")
        ok(k, SETUP)
        uses = 0
        for i in range(50):
            if i % 2:
                ok(k, USES[(i // 2) % len(USES)] + "\n" + COUNT)
                uses += 1
            else:
                ex = ok(k, f"late_x + {i}")
                assert ex.result["data"]["text/plain"] == str(1 + i), ex.dump()
        ex = ok(k, FINAL.replace("{n}", str(uses)))
        assert f"LATE OK {uses}" in ex.stdout, ex.dump()
        # Handles dropped by a later cell are really gone (the pool's workers
        # exit), and the other variables are still there.
        ok(k, "drop(lspool); drop(lsq);")
        ex = ok(k, "lsval.load().unwrap() + late_x")
        assert ex.result["data"]["text/plain"] == str(uses + 1), ex.dump()
    finally:
        k.close()


def include(k: Kernel, path: Path, code: str) -> str:
    """Runs `include!` of a file holding `code`: the cell names nothing in
    it. Returns the value shown."""
    path.write_text(code)
    ex = ok(k, f'include!("{path}")')
    return ex.result["data"]["text/plain"]


def test_a_variable_named_only_by_an_included_file_still_loads(tmp_path: Path):
    k = start_kernel()
    try:
        k.warm_up()
        ok(k, "let late_x = 4u64; let late_y = 2u64;")
        assert include(k, tmp_path / "uses_late_x.rs", "late_x * 10 + late_y") == "42"
        # Both variables are still there afterwards.
        ex = ok(k, "late_x + late_y")
        assert ex.result["data"]["text/plain"] == "6", ex.dump()
    finally:
        k.close()


def test_trivial_cell_stays_fast_after_a_lesson_and_60_handles():
    cells = ["".join(c["source"]) for c in json.loads(LESSON_03.read_text())["cells"]
             if c["cell_type"] == "code"]
    k = start_kernel()
    try:
        k.warm_up()
        ok(k, "let late_x = 1u64;")
        fresh = trivial(k)
        for code in cells:
            ok(k, code)
        after_lesson = trivial(k)
        ok(k, "\n".join(f"let late_h{i} = Queue::<u64>::new().unwrap();" for i in range(60)))
        after_handles = trivial(k)
        # Loose bounds (the machine may be loaded); bench/kernel.py --late
        # measures the lessons and 200 handles against the targets.
        assert after_lesson < 3 * fresh, (fresh, after_lesson)
        assert after_handles < 3 * fresh, (fresh, after_handles)
    finally:
        k.close()


# evcxr patch 0020: a cell compiles only the session's items it reaches.
ITEMS = [
    # A struct with its impls in one cell, an operator impl in another.
    """
#[derive(Debug, Clone, Copy, PartialEq)]
struct LatePoint { x: i64, y: i64 }
impl std::fmt::Display for LatePoint {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result { write!(f, "({}, {})", self.x, self.y) }
}
""",
    "impl std::ops::Add for LatePoint { type Output = LatePoint; "
    "fn add(self, o: LatePoint) -> LatePoint { LatePoint { x: self.x + o.x, y: self.y + o.y } } }",
    # A trait of the session's on a foreign type, in two cells.
    "trait LateDoubled { fn late_doubled(&self) -> u64; }",
    "impl LateDoubled for u64 { fn late_doubled(&self) -> u64 { self * 2 } }",
    # Drop, reached only through the type.
    "struct LateNoisy(u32);\nimpl Drop for LateNoisy { fn drop(&mut self) { println!(\"dropped {}\", self.0); } }",
    # A macro, an enum whose variants a `use` brings in, a static behind a fn.
    "macro_rules! late_twice { ($e:expr) => { $e + $e }; }",
    "#[derive(Debug, PartialEq)] enum LateColor { LateRed, LateGreen }\nuse LateColor::*;",
    "static LATE_BASE: u64 = 40;\nfn late_base() -> u64 { LATE_BASE }",
    # A function returning a type of the session, and an error type with its
    # `From` for `?`.
    "fn late_origin() -> LatePoint { LatePoint { x: 0, y: 0 } }",
    """
#[derive(Debug)] struct LateError(String);
impl std::fmt::Display for LateError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result { write!(f, "late error: {}", self.0) }
}
fn late_check(v: u64) -> Result<u64, LateError> { if v > 10 { Err(LateError(format!("{v}"))) } else { Ok(v) } }
""",
    "fn late_unrelated_item() -> u64 { 7 }",
]


def last_source(k: Kernel) -> str:
    ex = ok(k, ":last_compile_dir")
    directory = (ex.result["data"]["text/plain"] if ex.result else ex.stdout).strip()
    return (Path(directory) / "src" / "lib.rs").read_text()


def test_cells_reach_the_items_they_use_and_compile_no_other():
    k = start_kernel()
    try:
        k.warm_up()
        for code in ITEMS:
            ok(k, code)
        ok(k, "let late_a = LatePoint { x: 1, y: 2 }; let late_n = 5u64;")
        # The operator impl comes with the variables' type.
        ex = ok(k, "format!(\"{}\", late_a + late_a)")
        assert ex.result["data"]["text/plain"] == '"(2, 4)"', ex.dump()
        source = last_source(k)
        assert "impl std::ops::Add for LatePoint" in source, source
        assert "late_unrelated_item" not in source and "LateNoisy" not in source, source
        # A method of the session's trait on a u64, called by name.
        ex = ok(k, "late_n.late_doubled()")
        assert ex.result["data"]["text/plain"] == "10", ex.dump()
        # Drop runs, reached through the type alone.
        ex = ok(k, "{ let _n = LateNoisy(3); }")
        assert "dropped 3" in ex.stdout, ex.dump()
        # A macro, a variant brought in by a `use`, a static behind a fn, a
        # fn returning a session type and `?` through the session's error.
        ex = ok(k, "assert_eq!(late_twice!(late_base()), 80); assert_eq!(LateRed, LateColor::LateRed);"
                   " assert_ne!(LateGreen, LateRed); late_origin() == LatePoint { x: 0, y: 0 }")
        assert ex.result["data"]["text/plain"] == "true", ex.dump()
        ex = k.execute("let late_v = late_check(late_n * 3)?;")
        assert ex.status == "error" and "late error: 15" in ex.stderr, ex.dump()
        # A trivial cell compiles none of them.
        ok(k, "late_n + 1")
        source = last_source(k)
        assert "LatePoint" not in source and "late_doubled" not in source, source
        # Redefining an item: the cell defining it always compiles it, so
        # its error is reported at once, and the old one stays.
        ex = k.execute("fn late_unrelated_item() -> u64 { \"seven\" }")
        assert ex.status == "error" and "mismatched types" in ex.stderr + str(ex.error), ex.dump()
        ex = ok(k, "late_unrelated_item()")
        assert ex.result["data"]["text/plain"] == "7", ex.dump()
        # A redefinition that breaks an older item fails at once, as when
        # every item was compiled in every cell: the items naming what the
        # cell defines are compiled with it.
        ok(k, "fn late_sum(p: &LatePoint) -> i64 { p.x + p.y }")
        ex = k.execute("struct LatePoint { x: i64 }")
        assert ex.status == "error" and "no field `y`" in ex.stderr + str(ex.error), ex.dump()
        ex = ok(k, "late_sum(&late_a)")
        assert ex.result["data"]["text/plain"] == "3", ex.dump()
        # An error of the cell's own (a type mismatch naming nothing of the
        # session) is shown as before.
        ex = k.execute('let late_e: u64 = "x";')
        assert ex.status == "error" and "mismatched types" in ex.stderr + str(ex.error), ex.dump()
    finally:
        k.close()


def test_an_item_reached_only_by_an_included_file_compiles_again_with_every_item(tmp_path: Path):
    k = start_kernel()
    try:
        k.warm_up()
        ok(k, "fn late_hidden(v: u64) -> u64 { v + 1 }\nlet late_x = 21u64;")
        assert include(k, tmp_path / "uses_late_item.rs", "late_hidden(20) + late_x") == "42"
        # A misspelt name gets rustc's suggestion, which needs the item it
        # suggests: the error comes from the build with every item.
        ex = k.execute("late_hiden(1)")
        assert ex.status == "error", ex.dump()
        assert "late_hidden" in ex.stderr + str(ex.error), ex.dump()
    finally:
        k.close()
