"""Lesson 00a's self-checks fail for plausible wrong solutions.

``tests/wrong_solutions/00a/<exercise>/*.rs`` holds wrong solutions of each
exercise (``ej1`` is the cell ``l00a-ej1-solucion``): each file is a whole
solution cell that compiles. The student notebook runs on one kernel (its
first cell, then every cell from the first exercise on); at each exercise
every wrong solution goes into the solution cell, and the self-check that
follows must fail by a failed assertion (the kernel's ``Panic`` error): not
by a compile error, not by a hang (the cell timeout), not by the runner
dying. Then the instructor's solution goes in and the self-check
must pass, so the rest of the lesson runs as usual and its last cell finds no
process left behind.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from nbclient import NotebookClient

from conftest import FIRST_CELL_TIMEOUT, KERNEL_NAME, STARTUP_TIMEOUT
from test_notebooks import CELL_TIMEOUT, NOTEBOOKS, SOURCE, has_error, output_text, read

ROOT = Path(__file__).resolve().parent.parent
WRONG = ROOT / "tests" / "wrong_solutions"
LESSON = "00a"
NOTEBOOK = "00a_rust_al_paso.ipynb"
# How the kernel names a cell that panicked (a failed assert!); a compile
# error is "CompileError", an unsolved stub "Todo", a cut cell "Interrupted".
PANIC = "Panic"


def exercises() -> dict[str, list[Path]]:
    return {d.name: sorted(d.glob("*.rs")) for d in sorted((WRONG / LESSON).iterdir()) if d.is_dir()}


def test_every_exercise_has_two_wrong_solutions():
    nb = read(SOURCE / NOTEBOOK)
    solutions = {c.id for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("solution")}
    found = exercises()
    assert {f"l{LESSON}-{ex}-solucion" for ex in found} == solutions
    for ex, files in found.items():
        assert len(files) >= 2, f"{ex}: at least two wrong solutions"


def error_name(cell) -> str | None:
    return next((o.ename for o in cell.get("outputs", []) if o.output_type == "error"), None)


def test_self_checks_reject_wrong_solutions():
    student = read(NOTEBOOKS / NOTEBOOK)
    instructor = {c.id: c for c in read(SOURCE / NOTEBOOK).cells}
    wrong = {f"l{LESSON}-{ex}-solucion": files for ex, files in exercises().items()}
    client = NotebookClient(
        student,
        kernel_name=KERNEL_NAME,
        timeout=FIRST_CELL_TIMEOUT,
        startup_timeout=STARTUP_TIMEOUT,
        allow_errors=True,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    cells = student.cells
    code = [i for i, c in enumerate(cells) if c.cell_type == "code"]
    first_exercise = next(i for i in code if cells[i].id in wrong)
    # The exercises use only forja's prelude: the first cell (the session)
    # and everything from the first exercise on (the last cell checks that no
    # process was left behind) is enough, and keeps this test short.
    to_run = [code[0]] + [i for i in code if i >= first_exercise]
    problems = []
    with client.setup_kernel():
        for index in to_run:
            cell = cells[index]
            if cell.id in wrong:
                check = next(c for c in cells[index + 1 :] if c.cell_type == "code")
                for path in wrong[cell.id]:
                    cell.source = path.read_text(encoding="utf-8")
                    client.execute_cell(cell, index)
                    assert not has_error(cell), f"{path.name} does not compile:\n{output_text(cell)}"
                    client.execute_cell(check, cells.index(check))
                    name, text = error_name(check), output_text(check)
                    if name is None:
                        problems.append(f"{path.relative_to(WRONG)}: the self-check passed")
                    elif name != PANIC:
                        problems.append(f"{path.relative_to(WRONG)}: failed with {name}, not an assertion:\n{text}")
                cell.source = instructor[cell.id].source
            client.execute_cell(cell, index)
            assert not has_error(cell), f"cell {cell.id} failed:\n{output_text(cell)}"
            client.timeout = CELL_TIMEOUT
    assert not problems, "\n".join(problems)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-v"]))
