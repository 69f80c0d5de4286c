"""A small notebook, built with nbformat and run headless through nbclient on
the forja kernel, as `jupyter nbconvert --execute` or a CI job would."""

from __future__ import annotations

import nbformat
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from conftest import FIRST_CELL_TIMEOUT, KERNEL_NAME, STARTUP_TIMEOUT, strip_ansi


def build_notebook() -> nbformat.NotebookNode:
    nb = new_notebook(
        metadata={
            "kernelspec": {"name": KERNEL_NAME, "display_name": "Rust (forja)", "language": "rust"},
            "language_info": {"name": "rust"},
        }
    )
    nb.cells = [
        new_markdown_cell("# Suma de números\nUn cuaderno pequeño para la prueba."),
        new_code_cell("let numbers: Vec<u64> = (1..=10).collect();\nnumbers.iter().sum::<u64>()"),
        new_code_cell('println!("hola desde el cuaderno");\neprintln!("y por stderr");'),
        new_code_cell('forja::display::markdown("**negrita** y `código`").unwrap();'),
        new_code_cell(
            "let p = Process::new(|| println!(\"hola desde el hijo\")).with_name(\"hijo\");\n"
            "p.start().unwrap();\n"
            "p.join().unwrap();\n"
            "p.exitcode()"
        ),
        new_code_cell('panic!("esperado: {}", numbers.len());', metadata={"tags": ["raises-exception"]}),
        new_code_cell("numbers.len()"),
    ]
    return nb


def test_notebook_runs_headless():
    nb = build_notebook()
    client = NotebookClient(
        nb,
        kernel_name=KERNEL_NAME,
        timeout=FIRST_CELL_TIMEOUT,
        startup_timeout=STARTUP_TIMEOUT,
        allow_errors=False,  # only the cell tagged raises-exception may fail
    )
    client.execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))

    def results(cell):
        return [o for o in cell.outputs if o.output_type == "execute_result"]

    def stream(cell, name):
        return "".join(o.text for o in cell.outputs if o.output_type == "stream" and o.name == name)

    # 1. a value
    (r,) = results(code[0])
    assert r.data["text/plain"] == "55"
    # 2. printing (the first cell may carry start-up notes; this one must not)
    assert stream(code[1], "stdout") == "hola desde el cuaderno\n"
    assert stream(code[1], "stderr") == "y por stderr\n"
    # 3. a display
    displays = [o for o in code[2].outputs if o.output_type == "display_data"]
    assert len(displays) == 1, code[2].outputs
    assert displays[0].data["text/markdown"] == "**negrita** y `código`"
    # 4. a forja Process: the child's output reaches the notebook
    assert stream(code[3], "stdout") == "hola desde el hijo\n", code[3].outputs
    (r,) = results(code[3])
    assert r.data["text/plain"] == "Some(0)"
    # 5. a panic is an error output...
    errors = [o for o in code[4].outputs if o.output_type == "error"]
    assert len(errors) == 1, code[4].outputs
    assert "esperado: 10" in errors[0].evalue + strip_ansi("\n".join(errors[0].traceback))
    # 6. ... and the notebook goes on, with earlier variables kept
    (r,) = results(code[5])
    assert r.data["text/plain"] == "10"
    nbformat.validate(nb)
