"""The lessons' self-checks cannot be passed without the work they ask for.

``tests/wrong_solutions/<lesson>/<exercise>/*.rs`` holds plausible wrong
solutions of every exercise (sequential, no processes, a leaked child, a
forgotten ``join``, the wrong error...), each the whole content of the
exercise's solution cell. For each lesson one kernel runs the student
notebook's setup cells, then, for every wrong solution, puts it in the
solution cell's place (it must compile) and runs the exercise's self-check,
which must fail at run time: by a failed assertion or an error the check
propagates, not by a compile error and not by a hang (the cell timeout).
After each failed check no process the check started is left behind (the
checks kill their leftovers), so a student's later cells start clean.
"""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError

from conftest import FIRST_CELL_TIMEOUT, KERNEL_NAME, STARTUP_TIMEOUT
from test_notebooks import (
    NOTEBOOKS,
    GRACE,
    has_error,
    left_behind,
    output_text,
    proc_table,
    describe,
    read,
    runner_of,
    wait_until,
)

WRONG = Path(__file__).resolve().parent / "wrong_solutions"
# Cells each lesson's exercises need besides the first code cell: the
# definitions they use (a function, a struct).
SETUP = {
    "00_fundamentos": [],
    "01_procesos": [],
    "02_pipe_y_queue": [],
    "03_lock": [],
    "04_pool": ["l04-c02", "l04-c17", "l04-ej3-datos"],  # count_primes; the lesson's pool, closed; square_where
    "05_memoria_compartida": ["l05-c22"],
}
CHECK_TIMEOUT = int(os.environ.get("FORJA_WRONG_SOLUTION_TIMEOUT", "120"))
# Lessons 00–05 (folders named after their notebooks); lesson 00a's wrong
# solutions (folder "00a") run in test_wrong_solutions_00a.py, through the
# lesson's earlier cells its exercises use.
LESSONS = sorted(p.name for p in WRONG.iterdir() if p.is_dir() and p.name != "00a")


def exercises(nb) -> list[tuple[str, object, object]]:
    """(exercise, solution cell, self-check cell), in lesson order; the
    exercise is the solution's grade id without lesson and suffix ("ej1")."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    out = []
    for i, cell in enumerate(code):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution") and not meta.get("grade"):
            exercise = meta["grade_id"].split("-")[1]
            out.append((exercise, cell, code[i + 1]))
    return out


def test_every_exercise_has_two_wrong_solutions():
    assert sorted(LESSONS) == sorted(SETUP), "a wrong_solutions folder per lesson"
    for lesson in LESSONS:
        nb = read(NOTEBOOKS / f"{lesson}.ipynb")
        names = [ex for ex, _, _ in exercises(nb)]
        assert names, lesson
        for ex in names:
            files = sorted((WRONG / lesson / ex).glob("*.rs"))
            assert len(files) >= 2, f"{lesson}/{ex}: at least two wrong solutions"
        extra = {p.name for p in (WRONG / lesson).iterdir()} - set(names)
        assert not extra, f"{lesson}: folders for exercises that do not exist: {extra}"


def run(client, nb, cell, timeout: int):
    """Runs a copy of `cell` (errors allowed); returns it with its outputs."""
    cell = copy.deepcopy(cell)
    cell.outputs = []
    client.timeout = timeout
    client.execute_cell(cell, nb.cells.index(next(c for c in nb.cells if c.id == cell.id)))
    return cell


@pytest.mark.parametrize("lesson", LESSONS)
def test_wrong_solutions_fail_their_self_check(lesson, capsys):
    path = NOTEBOOKS / f"{lesson}.ipynb"
    nb = read(path)
    client = NotebookClient(
        nb,
        kernel_name=KERNEL_NAME,
        timeout=CHECK_TIMEOUT,
        startup_timeout=STARTUP_TIMEOUT,
        allow_errors=True,
        resources={"metadata": {"path": str(path.parent)}},
    )
    code = [c for c in nb.cells if c.cell_type == "code"]
    setup = [code[0]] + [c for c in code if c.id in SETUP[lesson]]
    problems = []
    start = time.monotonic()
    with client.setup_kernel():
        kernel_pid = client.km.provisioner.process.pid
        for i, cell in enumerate(setup):
            done = run(client, nb, cell, FIRST_CELL_TIMEOUT if i == 0 else CHECK_TIMEOUT)
            assert not has_error(done), f"{lesson}: setup cell {cell.id} failed:\n{output_text(done)}"
        runner = runner_of(kernel_pid)
        before = set(left_behind(kernel_pid, runner))  # what the setup cells keep running
        for exercise, solution, check in exercises(nb):
            for wrong in sorted((WRONG / lesson / exercise).glob("*.rs")):
                name = f"{lesson}/{exercise}/{wrong.name}"
                sol = copy.deepcopy(solution)
                sol.source = wrong.read_text(encoding="utf-8")
                done = run(client, nb, sol, CHECK_TIMEOUT)
                if has_error(done):
                    problems.append(f"{name}: the wrong solution does not compile:\n{output_text(done)}")
                    continue
                try:
                    done = run(client, nb, check, CHECK_TIMEOUT)
                except CellTimeoutError:
                    problems.append(f"{name}: the self-check hung (over {CHECK_TIMEOUT} s)")
                    client.km.interrupt_kernel()
                    continue
                text = output_text(done)
                errors = [o for o in done.outputs if o.output_type == "error"]
                if not errors:
                    problems.append(f"{name}: the self-check passed:\n{text}")
                elif any(o.ename == "CompileError" for o in errors):
                    problems.append(f"{name}: the self-check does not compile with it:\n{text}")
                def new_left():
                    return [p for p in left_behind(kernel_pid, runner) if p not in before]

                if not wait_until(lambda: not new_left(), GRACE):
                    left = new_left()
                    problems.append(f"{name}: processes left after the failed check: {describe(left, proc_table())}")
    elapsed = time.monotonic() - start
    with capsys.disabled():
        print(f"\n    wrong solutions of {lesson}: {elapsed:.1f} s", flush=True)
    assert not problems, "\n\n".join(problems)
