"""What a student sees in JupyterLab, checked in a real browser (Chromium
through Playwright), one step after another on one page:

1. the launcher shows "Rust (forja)" with its logo;
2. lesson 01 (the student version, notebooks/01_procesos.ipynb) runs top to
   bottom with Run All: every cell but the self-checks of the unsolved
   exercises runs without an error, and those say "falta resolver";
3. solving exercise 1 (typing the solution) makes its self-check pass;
4. in a new notebook made from the launcher: the HTML tables, the timeline
   SVG and the Pool's progress bar render; the toolbar's interrupt button
   stops a blocked `join` (the rest of that cell does not run, the next cell
   does); a compile error in a cell with accents shows line numbers and
   rustc's help; Kernel → Restart Kernel… works.

Lesson 01 has no rich displays (no tables, timeline or Pool), so step 4 makes
them in a cell of its own. The tests share the page and run in file order.
Screenshots of each step go to tests/browser/screenshots/ (git-ignored); a
failure names the screenshot of the moment it failed.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from pathlib import Path

import pytest

import harness
from harness import CELL, FIRST_CELL, SCREENSHOTS, Student

LESSON = "01_procesos.ipynb"
# The kernelspec's display_name (kernel/src/install.rs).
KERNEL_DISPLAY_NAME = "Rust (forja)"


def code_cell_index(path: Path, grade_id: str) -> int:
    """Index among the code cells of the cell whose nbgrader id is `grade_id`."""
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    for i, c in enumerate(cells):
        if c["metadata"].get("nbgrader", {}).get("grade_id") == grade_id:
            return i
    raise AssertionError(f"{path}: no cell {grade_id}")


def solution(grade_id: str) -> str:
    """The instructor's solution cell, without nbgrader's markers."""
    nb = json.loads((harness.ROOT / "notebooks" / "source" / LESSON).read_text())
    for c in nb["cells"]:
        if c["metadata"].get("nbgrader", {}).get("grade_id") == grade_id:
            src = "".join(c["source"])
            return "\n".join(l for l in src.splitlines() if "SOLUTION" not in l)
    raise AssertionError(f"no solution {grade_id}")


@pytest.fixture(scope="module")
def lab():
    if not harness.CHROMIUM.exists():
        harness.missing(f"{harness.CHROMIUM} is missing")
    tmp = Path(tempfile.mkdtemp(prefix="forja-browser-"))
    lab = harness.start_lab(tmp)
    try:
        yield lab
    finally:
        harness.stop_lab(lab)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def student(lab):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        harness.missing("playwright is not installed in .venv")
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    profile = Path(tempfile.mkdtemp(prefix="forja-chromium-"))
    pw = sync_playwright().start()
    try:
        context = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(harness.CHROMIUM),
            headless=True,
            args=harness.CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000},
            locale="es-AR",
        )
        page = context.pages[0] if context.pages else context.new_page()
        page.set_default_timeout(30_000)
        s = Student(page, lab)
        s.open_lab()
        yield s
        context.close()
    finally:
        pw.stop()
        shutil.rmtree(profile, ignore_errors=True)


# ---- 1. the launcher ---------------------------------------------------------
def test_launcher_shows_forja_with_its_logo(student):
    card = student.page.locator(".jp-LauncherCard", has_text=KERNEL_DISPLAY_NAME).first
    card.wait_for()
    img = card.locator("img")
    loaded = img.count() > 0 and img.first.evaluate("i => i.complete && i.naturalWidth > 0")
    student.check(loaded, "launcher", f"the launcher card {KERNEL_DISPLAY_NAME!r} has no loaded logo")


# ---- 2. lesson 01, Run All ---------------------------------------------------
def test_lesson_01_runs_top_to_bottom(student):
    student.open_file(LESSON)
    student.wait_kernel_idle(60)
    student.shot("lesson01-open")
    student.menu("Run", "Run All Cells")
    student.wait_run_all_done(FIRST_CELL + 20 * CELL)
    code = student.saved_code_cells()
    not_run = [i for i, c in enumerate(code) if c["execution_count"] is None]
    failed = {
        i: next(o for o in c["outputs"] if o["output_type"] == "error")
        for i, c in enumerate(code)
        if any(o["output_type"] == "error" for o in c["outputs"])
    }
    nb = json.loads((student.lab.notebooks / LESSON).read_text(encoding="utf-8"))
    graded = [
        c["metadata"]["nbgrader"]["grade_id"]
        for c in nb["cells"]
        if c.get("metadata", {}).get("nbgrader", {}).get("grade_id", "").endswith("-verificacion")
    ]
    assert len(graded) >= 2, f"{LESSON}: its exercises' self-checks ({graded})"
    checks = {code_cell_index(student.lab.notebooks / LESSON, g) for g in graded}
    student.check(
        not not_run and set(failed) == checks,
        "lesson01-run-all",
        f"Run All on {LESSON}: cells not run {not_run}; cells with an error {sorted(failed)} "
        f"(only the unsolved self-checks {sorted(checks)} should fail): "
        + "; ".join(f"[{i}] {e['ename']}: {e['evalue'][:300]}" for i, e in failed.items()),
    )


def test_unsolved_self_check_says_falta_resolver(student):
    i = code_cell_index(student.lab.notebooks / LESSON, "l01-ej2-verificacion")
    text = student.output_text(i)
    # The kernel speaks the locale's language (CI's is English).
    lines = [
        l for l in text.splitlines()
        if "falta resolver" in l or "the exercise is not solved yet" in l
    ]
    student.check(
        len(lines) == 1,
        "lesson01-unsolved",
        f"the unsolved self-check should show one 'falta resolver' line; it shows:\n{text[:2000]}",
        cell=i,
    )


def test_solved_exercise_passes_its_self_check(student):
    path = student.lab.notebooks / LESSON
    sol = code_cell_index(path, "l01-ej1-solucion")
    check = code_cell_index(path, "l01-ej1-verificacion")
    student.run_cell(sol, solution("l01-ej1-solucion"))
    student.run_cell(check)
    text = student.output_text(check)
    student.check(
        "¡Ejercicio 1 resuelto!" in text
        and not [o for o in student.saved_code_cells()[check]["outputs"] if o["output_type"] == "error"],
        "lesson01-solved",
        f"exercise 1 solved: its self-check should pass; it shows:\n{text[:2000]}",
        cell=check,
    )
    # Done with the lesson: its kernel goes, so the next notebook has the CPUs.
    student.menu("Kernel", "Shut Down Kernel")


# ---- 3. a new notebook from the launcher ------------------------------------
RICH = """\
use std::time::Duration;
fn nap(ms: u64) -> u64 { std::thread::sleep(Duration::from_millis(ms)); ms }
forja::timeline::reset()?;
let pool = Pool::new(2)?;
let naps = pool.chunksize(1).map(nap, vec![400u64; 8])?; // 1.6 s: the progress bar shows
forja::timeline().show()?;
pool"""

BLOCKED_JOIN = """\
let p = Process::new(|| forja::sleep(Duration::from_secs(60)).unwrap());
p.start()?;
println!("esperando al hijo");
p.join()?;
println!("no debería llegar acá");"""

AFTER_INTERRUPT = 'println!("la celda siguiente corre");'

COMPILE_ERROR = """\
// sumo los números
let saludo: String = "buenos días";"""


def test_new_notebook_shows_tables_timeline_and_progress(student):
    student.page.locator(".lm-TabBar-tab", has_text="Launcher").first.click()
    student.page.locator(".jp-LauncherCard[data-category='Notebook']", has_text=KERNEL_DISPLAY_NAME).first.click()
    student.code_cells().first.wait_for()
    student.wait_kernel_idle(60)
    student.run_cell(0, RICH, timeout=FIRST_CELL)
    out = student.code_cells().nth(0).locator(".jp-OutputArea")
    tables = out.locator(".jp-RenderedHTMLCommon table").count()
    progress = out.locator("progress").count()
    svg = out.locator(".jp-RenderedSVG img, .jp-RenderedSVG svg, .jp-RenderedHTMLCommon svg")
    svg_ok = svg.count() > 0 and svg.first.evaluate(
        "e => e.tagName.toLowerCase() === 'svg' || (e.complete && e.naturalWidth > 0)")
    student.check(
        tables >= 1 and progress == 1 and svg_ok,
        "rich-displays",
        f"expected a Pool table, a progress bar and the timeline SVG; found {tables} tables, "
        f"{progress} progress bars, timeline shown: {svg_ok}; text:\n{out.inner_text()[:2000]}",
        cell=0,
    )


def test_interrupt_stops_a_blocked_join_and_the_next_cell_runs(student):
    i = student.add_cell(BLOCKED_JOIN)
    cell = student.code_cells().nth(i)
    student.page.keyboard.press("Shift+Enter")
    cell.locator(".jp-OutputArea", has_text="esperando al hijo").wait_for(timeout=CELL * 1000)
    time.sleep(0.5)
    student.shot("join-blocked", i)
    t = time.monotonic()
    student.notebook.locator(".jp-Toolbar [data-command='notebook:interrupt-kernel']").click()
    cell.locator(".jp-InputPrompt", has_text=re.compile(r"\[\d+\]")).wait_for(timeout=30_000)
    stopped_in = time.monotonic() - t
    student.blocked_join_output = student.output_text(i)
    student.check(
        stopped_in < 10,
        "join-interrupted",
        f"the interrupted cell ended {stopped_in:.1f}s after the click",
        cell=i,
    )
    j = student.add_cell(AFTER_INTERRUPT)
    student.run_cell(j)
    text = student.output_text(j)
    student.check(
        "la celda siguiente corre" in text,
        "after-interrupt",
        f"the cell after the interrupted one should run; it shows:\n{text[:2000]}",
        cell=j,
    )


def test_interrupted_join_does_not_run_the_rest_of_its_cell(student):
    text = getattr(student, "blocked_join_output", None)
    assert text is not None, "the interrupt step did not run"
    assert "no debería llegar acá" not in text, (
        f"after interrupting join the next line ran; the cell shows:\n{text[:2000]}\n"
        f"(screenshot: {SCREENSHOTS})"
    )


def test_compile_error_with_accents_shows_line_numbers_and_help(student):
    i = student.add_cell(COMPILE_ERROR)
    student.run_cell(i)
    text = student.output_text(i)
    numbered = re.search(r"^\s*2\s*\|\s*let saludo", text, re.M)
    student.check(
        bool(numbered) and re.search(r"^\s*help", text, re.M) is not None,
        "compile-error",
        f"a compile error should show the cell's line numbers and rustc's help; it shows:\n{text[:3000]}",
        cell=i,
    )


def test_restart_from_the_kernel_menu(student):
    student.menu("Kernel", "Restart Kernel…")
    dialog = student.page.locator(".jp-Dialog")
    dialog.wait_for()
    student.shot("restart-dialog")
    dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
    dialog.wait_for(state="detached")
    student.wait_kernel_idle(60)
    i = student.add_cell('println!("después de reiniciar: {}", 40 + 2);')
    student.run_cell(i, timeout=FIRST_CELL)
    text = student.output_text(i)
    student.check(
        "después de reiniciar: 42" in text,
        "after-restart",
        f"a cell after Kernel → Restart Kernel… should run; it shows:\n{text[:2000]}",
        cell=i,
    )
