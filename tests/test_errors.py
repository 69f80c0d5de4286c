"""Errors a student can read (issue 13), through a real kernel.

Compile errors are rustc's own report with the cell's execution count and
line numbers, complete (help, notes, suggestions) whatever UTF-8 the cell
holds, then forja's hints in the student's language. The tests key on error
codes and stable phrases, never on whole rustc texts, so a toolchain update
does not break them.
"""

from __future__ import annotations

import os
import re
import unicodedata

import pytest

from conftest import Kernel, start_kernel, strip_ansi, unique


@pytest.fixture(scope="module")
def kernel_es():
    """A warmed-up kernel whose student reads Spanish (FORJA_LANG=es)."""
    k = start_kernel(env={"FORJA_LANG": "es"})
    try:
        k.warm_up()
        yield k
    finally:
        k.close()


def compile_error(k: Kernel, code: str) -> tuple[int, str, dict]:
    """Runs `code`, which must fail to compile: (execution count, traceback
    without colours, error content)."""
    ex = k.execute(code)
    assert ex.status == "error", ex.dump()
    err = ex.error
    assert err is not None and err["ename"] == "CompileError", ex.dump()
    return ex.reply["content"]["execution_count"], strip_ansi("\n".join(err["traceback"])), err


def width(text: str) -> int:
    """Display columns, as a terminal (and rustc) counts them."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def source_and_carets(text: str, source: str) -> tuple[str, str]:
    """The report's line showing `source` (after the gutter) and the
    annotation line under it (after the gutter)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^(\d+)\s+\| (.*)$", line)
        if m and source in m.group(2) and i + 1 < len(lines):
            under = re.match(r"^\s*\| (.*)$", lines[i + 1])
            if under:
                return m.group(2), under.group(1)
    raise AssertionError(f"{source!r} not shown with carets:\n{text}")


# Each: what goes before the error on its line, and a comment line above.
TEXTS = {
    "ascii": ("plain", "// add the numbers"),
    "accents": ("Autoverificación", "// sumo los números"),
    "spanish": ("¡¿señor, año?!", "// ¿qué pasó? ¡ñandú!"),
    "emoji": ("🎉🦀", "// fiesta 🎉"),
    "wide": ("日本語の文字", "// 漢字のコメント"),
}


@pytest.mark.parametrize("name", list(TEXTS))
def test_compile_error_is_complete_whatever_the_utf8(kernel_es: Kernel, name: str):
    before, comment = TEXTS[name]
    code = f'{comment}\nlet fine = 1;\nlet x: (usize, i32) = ("{before}".len(), "no");\nfine'
    count, text, err = compile_error(kernel_es, code)
    assert "error[E0308]" in text, text
    # The header names the cell and its real line (3), not src/lib.rs.
    assert f"--> celda [{count}], línea 3" in text, text
    assert "src/lib.rs" not in text and "evcxr" not in text.lower(), text
    assert f"celda [{count}], línea 3" in err["evalue"], err["evalue"]
    # The caret is under `"no"`, after the non-ASCII text.
    line, carets = source_and_carets(text, f'"{before}"')
    start = line.index('"no"')
    assert carets.index("^") == width(line[:start]), f"{line}\n{carets}"
    assert carets.count("^") >= 4, carets
    # Line 3 in the gutter, not the generated file's line number.
    assert re.search(r"^3\s+\| ", text, re.M), text


def test_help_and_suggestion_are_kept(kernel_es: Kernel):
    code = (
        "// los datos: «¿clonarlos?»\n"
        "let datos = vec![1, 2, 3];\n"
        "for i in 0..2 {\n"
        "    let h = std::thread::spawn(move || datos.len() + i);\n"
        "    h.join().unwrap();\n"
        "}\n"
    )
    count, text, _ = compile_error(kernel_es, code)
    assert "error[E0382]" in text, text
    assert f"--> celda [{count}], línea 4" in text, text
    # rustc's help, with its suggested line.
    assert re.search(r"^help: ", text, re.M), text
    assert "clone" in text, text
    assert "pista:" in text, text


def test_unicode_and_long_labels_draw_no_boxes(kernel_es: Kernel):
    code = 'let año_largo_con_nombre_muy_muy_largo: u8 = "ésta es una cadena larga que no es un número";'
    _, text, _ = compile_error(kernel_es, code)
    assert not any(c in text for c in "╭╰─│┬"), text
    assert "E0308" in text, text


def hint_case(k: Kernel, code: str, codes: tuple[str, ...], phrase: str) -> str:
    _, text, _ = compile_error(k, code)
    assert any(f"[{c}]" in text for c in codes), text
    hints = [line for line in text.splitlines() if line.startswith(("pista: ", "hint: "))]
    assert hints, text
    assert phrase in "\n".join(hints), text
    # rustc's report comes first, whole.
    assert text.index("error[") < text.index(hints[0]), text
    return text


def test_hint_move(kernel_es: Kernel):
    code = 'let nombre = String::from("José");\nlet p = Process::new(|| println!("{nombre}"));'
    hint_case(kernel_es, code, ("E0373",), "move")


def test_hint_moved_queue(kernel_es: Kernel):
    code = (
        "let cola: Queue<u64> = Queue::new().unwrap();\n"
        "for i in 0..2 {\n"
        "    let mut p = Process::new(move || cola.put(&i).unwrap());\n"
        "    p.start().unwrap();\n"
        "}\n"
    )
    hint_case(kernel_es, code, ("E0382", "E0505"), "clon")


def test_hint_not_shareable(kernel_es: Kernel):
    hint_case(kernel_es, 'let v = Value::new(String::from("sí")).unwrap();', ("E0277",), "Shareable")


def test_hint_not_serializable(kernel_es: Kernel):
    code = "struct Punto { x: i32 }\nlet q: Queue<Punto> = Queue::new().unwrap();\nq.put(&Punto { x: 1 }).unwrap();"
    hint_case(kernel_es, code, ("E0277",), "Serialize")


def test_hint_pool_task_captures(kernel_es: Kernel):
    code = (
        'let sufijo = String::from("ñ");\n'
        "let pool = Pool::new(2).unwrap();\n"
        "let r = pool.map(move |x: u32| format!(\"{x}{sufijo}\"), vec![1, 2]).unwrap();"
    )
    hint_case(kernel_es, code, ("E0277", "E0308"), "Pool")


def test_hint_question_mark_in_child(kernel_es: Kernel):
    code = (
        "let q: Queue<u64> = Queue::new().unwrap();\n"
        "let mut p = Process::new(move || {\n"
        "    q.put(&1)?;\n"
        "});"
    )
    hint_case(kernel_es, code, ("E0277",), "`?`")


def test_hint_forgot_question_mark(kernel_es: Kernel):
    code = "let q: Queue<u64> = Queue::new().unwrap();\nlet n: u64 = q.get();"
    hint_case(kernel_es, code, ("E0308",), "`?`")


def test_hint_pid_types(kernel_es: Kernel):
    code = "let yo: i32 = std::process::id();"
    hint_case(kernel_es, code, ("E0308",), "u32")


def expected_lang() -> str:
    for name in ("FORJA_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(name)
        if value:
            return "es" if value.lower().startswith("es") else "en"
    return "en"


def test_language_follows_the_environment(kernel: Kernel):
    name = unique("n")
    code = f"let {name} = 5;\nlet p = Process::new(|| println!(\"{{}}\", {name}));"
    count, text, _ = compile_error(kernel, code)
    if expected_lang() == "es":
        assert f"celda [{count}], línea 2" in text and "pista: " in text, text
    else:
        assert f"cell [{count}], line 2" in text and "hint: " in text, text


def test_panic_names_the_cell_and_line(kernel_es: Kernel):
    code = "// ¡ojo! división\nlet v: Vec<u32> = vec![];\nlet x = v[3];"
    ex = kernel_es.execute(code)
    assert ex.status == "error", ex.dump()
    count = ex.reply["content"]["execution_count"]
    text = strip_ansi("\n".join(ex.error["traceback"]))
    assert f"celda [{count}], línea 3" in text, text
    assert "src/lib.rs" not in text and "RUST_BACKTRACE" not in text, text
    assert "src/lib.rs" not in ex.stderr and "RUST_BACKTRACE" not in ex.stderr, ex.dump()


def test_panic_in_a_function_of_an_earlier_cell(kernel_es: Kernel):
    name = unique("explota")
    defined = kernel_es.execute(f"// defino\nfn {name}(n: u32) -> u32 {{\n    if n > 1 {{\n        panic!(\"¡demasiado!\");\n    }}\n    n\n}}")
    assert defined.status == "ok", defined.dump()
    count = defined.reply["content"]["execution_count"]
    ex = kernel_es.execute(f"{name}(5)")
    assert ex.status == "error", ex.dump()
    text = strip_ansi("\n".join(ex.error["traceback"]))
    assert f"celda [{count}], línea 4" in text, text


def test_todo_in_an_exercise_says_so_in_one_line(kernel_es: Kernel):
    defined = kernel_es.execute("fn sum_with_workers(v: &[u64]) -> u64 {\n    todo!()\n}")
    assert defined.status == "ok", defined.dump()
    ex = kernel_es.execute("// Autoverificación\nassert_eq!(sum_with_workers(&[1, 2]), 3);")
    assert ex.status == "error", ex.dump()
    tb = ex.error["traceback"]
    assert len(tb) == 1, tb
    assert "falta resolver el ejercicio: `todo!()` en `sum_with_workers`" in strip_ansi(tb[0]), tb
    # The note is the one line shown: no raw panic line on stderr above it.
    assert "panicked at" not in ex.stderr and "not yet implemented" not in ex.stderr, ex.dump()


# ---- a `?` that returns an `Err` fails the cell ----

QUESTION_MARK_TEXTS = {
    "ascii": ("// check the parse", "not a number"),
    "accents": ("// Autoverificación: ¿se lee el número?", "¡no es un número!"),
}


@pytest.mark.parametrize("name", list(QUESTION_MARK_TEXTS))
def test_question_mark_on_an_err_fails_the_cell(kernel_es: Kernel, name: str):
    comment, text = QUESTION_MARK_TEXTS[name]
    code = f'{comment}\nlet n: i32 = "{text}".parse()?;\nprintln!("no llega {{n}}");'
    ex = kernel_es.execute(code)
    assert ex.status == "error", ex.dump()
    count = ex.reply["content"]["execution_count"]
    assert ex.error["ename"] == "Error", ex.dump()
    assert f"celda [{count}]" in ex.error["evalue"] and "`?`" in ex.error["evalue"], ex.dump()
    # The error's own text, as the cell printed it; nothing after the `?` ran.
    assert "invalid digit" in ex.stderr, ex.dump()
    assert "no llega" not in ex.stdout, ex.dump()
    # The session goes on.
    after = kernel_es.execute("1 + 1")
    assert after.status == "ok" and after.result["data"]["text/plain"] == "2", after.dump()


def test_question_mark_on_an_ok_stays_ok(kernel_es: Kernel):
    code = '// ¿se lee?\nlet n: i32 = "42".parse()?;\nn + 1'
    ex = kernel_es.execute(code)
    assert ex.status == "ok", ex.dump()
    assert ex.result["data"]["text/plain"] == "43", ex.dump()
    assert ex.error is None, ex.dump()


def test_question_mark_error_stops_a_notebook():
    """nbclient with allow_errors=False stops at a self-check failing
    through `?` (it used to pass silently)."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    from nbformat.v4 import new_code_cell, new_notebook

    from conftest import FIRST_CELL_TIMEOUT, KERNEL_NAME, STARTUP_TIMEOUT

    nb = new_notebook(
        metadata={
            "kernelspec": {"name": KERNEL_NAME, "display_name": "Rust (forja)", "language": "rust"},
            "language_info": {"name": "rust"},
        }
    )
    nb.cells = [
        new_code_cell('let ok: u8 = "7".parse()?;\nok'),
        new_code_cell('// Autoverificación\nlet bad: u8 = "700".parse()?;\nbad'),
        new_code_cell('println!("no se ejecuta");'),
    ]
    client = NotebookClient(
        nb,
        kernel_name=KERNEL_NAME,
        timeout=FIRST_CELL_TIMEOUT,
        startup_timeout=STARTUP_TIMEOUT,
        allow_errors=False,
    )
    with pytest.raises(CellExecutionError):
        client.execute()
    code = nb.cells
    assert code[0].execution_count == 1 and code[1].execution_count == 2
    assert code[2].execution_count is None and code[2].outputs == []
    errors = [o for o in code[1].outputs if o.output_type == "error"]
    assert len(errors) == 1 and errors[0].ename == "Error", code[1].outputs


# ---- a panic in a forja child or a pool worker names the cell and line ----


def test_a_childs_panic_names_the_cell_and_line(kernel_es: Kernel):
    name = unique("hijo")
    code = (
        "// ¡un hijo que explota!\n"
        "use forja::prelude::*;\n"
        f"let p = Process::new(|| {{\n"
        "    let v: Vec<u32> = vec![];\n"
        "    println!(\"{}\", v[3]);\n"
        f"}}).with_name(\"{name}\");\n"
        "p.start().unwrap();\n"
        "p.join().unwrap();"
    )
    ex = kernel_es.execute(code)
    assert ex.status == "ok", ex.dump()
    count = ex.reply["content"]["execution_count"]
    assert re.search(
        rf"el proceso {name} \(pid \d+\) hizo panic en celda \[{count}\], línea 5: index out of bounds",
        ex.stderr,
    ), ex.dump()
    assert "src/lib.rs" not in ex.stderr, ex.dump()


def test_a_childs_panic_in_a_function_of_an_earlier_cell(kernel_es: Kernel):
    fn = unique("trabajo")
    name = unique("hijo")
    defined = kernel_es.execute(
        f"// defino el trabajo\nfn {fn}(n: u32) {{\n    if n > 1 {{\n        panic!(\"¡demasiado!\");\n    }}\n}}"
    )
    assert defined.status == "ok", defined.dump()
    count = defined.reply["content"]["execution_count"]
    ex = kernel_es.execute(
        "use forja::prelude::*;\n"
        f"let p = Process::new(|| {fn}(5)).with_name(\"{name}\");\n"
        "p.start().unwrap();\n"
        "p.join().unwrap();"
    )
    assert ex.status == "ok", ex.dump()
    assert re.search(
        rf"el proceso {name} \(pid \d+\) hizo panic en celda \[{count}\], línea 4: ¡demasiado!",
        ex.stderr,
    ), ex.dump()


def test_a_process_made_in_an_earlier_cell_uses_that_cells_build(kernel: Kernel):
    """The closure is in an older build's library: its line map, not the
    newest's, places the panic (English this time)."""
    name = unique("tardio")
    made = kernel.execute(
        "use forja::prelude::*;\n"
        "let p = Process::new(|| {\n"
        "    // a comment first\n"
        f"    panic!(\"late-{name}\");\n"
        f"}}).with_name(\"{name}\");"
    )
    assert made.status == "ok", made.dump()
    count = made.reply["content"]["execution_count"]
    # Another build in between, with other lines.
    assert kernel.execute("let padding = 1;\nlet more = 2;\nlet x = padding + more;").status == "ok"
    ex = kernel.execute("p.start().unwrap();\np.join().unwrap();")
    assert ex.status == "ok", ex.dump()
    assert re.search(
        rf"panic in process {name} \(pid \d+\) at cell \[{count}\], line 4: late-{name}",
        ex.stderr,
    ), ex.dump()


def test_todo_in_a_child_says_so(kernel_es: Kernel):
    fn = unique("resolver")
    defined = kernel_es.execute(f"fn {fn}() -> u64 {{\n    todo!()\n}}")
    assert defined.status == "ok", defined.dump()
    ex = kernel_es.execute(
        "use forja::prelude::*;\n"
        f"let p = Process::new(|| {{ {fn}(); }});\n"
        "p.start().unwrap();\n"
        "p.join().unwrap();"
    )
    assert ex.status == "ok", ex.dump()
    assert f"falta resolver el ejercicio: `todo!()` en `{fn}`" in ex.stderr, ex.dump()
    assert "not yet implemented" not in ex.stderr, ex.dump()


def test_a_pool_task_panic_names_the_cell_and_line(kernel_es: Kernel):
    fn = unique("tarea")
    defined = kernel_es.execute(
        f"// una tarea que falla\nfn {fn}(x: u32) -> u32 {{\n    if x == 3 {{\n        panic!(\"¡tres!\");\n    }}\n    x\n}}"
    )
    assert defined.status == "ok", defined.dump()
    count = defined.reply["content"]["execution_count"]
    ex = kernel_es.execute(
        "use forja::prelude::*;\n"
        "let pool = Pool::new(2).unwrap();\n"
        f"pool.map({fn}, 0..5u32).unwrap();"
    )
    assert ex.status == "error", ex.dump()
    assert "¡tres!" in ex.error["evalue"], ex.dump()
    assert f"celda [{count}], línea 4" in ex.error["evalue"], ex.dump()
    assert "src/lib.rs" not in ex.error["evalue"], ex.dump()


# ---- a `?` on a failing forja call names the call and the line ----


def test_question_mark_on_a_forja_call_names_the_call_and_line(kernel_es: Kernel):
    code = (
        "// Autoverificación: ¿llega algo?\n"
        "use forja::prelude::*;\n"
        "let q: Queue<u32> = Queue::new()?;\n"
        "let x = q.get_timeout(std::time::Duration::from_millis(20))?;\n"
        "println!(\"no llega {x}\");"
    )
    ex = kernel_es.execute(code)
    assert ex.status == "error", ex.dump()
    count = ex.reply["content"]["execution_count"]
    assert ex.error["ename"] == "Error", ex.dump()
    assert f"Queue::get_timeout falló en celda [{count}], línea 4" in ex.stderr, ex.dump()
    assert "src/lib.rs" not in ex.stderr and "no llega" not in ex.stdout, ex.dump()


def test_question_mark_on_a_closed_pipe_in_english(kernel: Kernel):
    code = (
        "use forja::prelude::*;\n"
        "let (a, b) = Pipe::new::<u32>()?;\n"
        "drop(b);\n"
        "\n"
        "let v = a.recv()?;"
    )
    ex = kernel.execute(code)
    assert ex.status == "error", ex.dump()
    count = ex.reply["content"]["execution_count"]
    assert f"Connection::recv failed at cell [{count}], line 5" in ex.stderr, ex.dump()


def test_question_mark_on_a_handled_forja_error_then_another_names_no_call(kernel: Kernel):
    """A forja error handled first, then another error through `?`: the
    forja call is not blamed."""
    code = (
        "use forja::prelude::*;\n"
        "let q: Queue<u32> = Queue::new()?;\n"
        "assert!(q.try_get().is_err());\n"
        "let n: i32 = \"x\".parse()?;"
    )
    ex = kernel.execute(code)
    assert ex.status == "error", ex.dump()
    assert "invalid digit" in ex.stderr, ex.dump()
    assert "failed at" not in ex.stderr, ex.dump()


def test_an_unwrap_of_a_forja_error_in_a_child_names_the_call(kernel: Kernel):
    name = unique("espera")
    code = (
        "use forja::prelude::*;\n"
        "let q: Queue<u32> = Queue::new().unwrap();\n"
        "let p = Process::new(move || {\n"
        "    q.get_timeout(std::time::Duration::from_millis(10)).unwrap();\n"
        f"}}).with_name(\"{name}\");\n"
        "p.start().unwrap();\n"
        "p.join().unwrap();"
    )
    ex = kernel.execute(code)
    assert ex.status == "ok", ex.dump()
    count = ex.reply["content"]["execution_count"]
    assert re.search(
        rf"panic in process {name} \(pid \d+\) at cell \[{count}\], line 4: .*Empty .*"
        rf"\(Queue::get_timeout at cell \[{count}\], line 4\)",
        ex.stderr,
    ), ex.dump()
