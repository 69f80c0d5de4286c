"""The forja kernel through `jupyter_kernel_test` (the Jupyter project's
kernel conformance suite), with every attribute that applies to Rust set."""

from __future__ import annotations

import jupyter_kernel_test as jkt
import pytest
from jupyter_client.manager import start_new_kernel

from conftest import FIRST_CELL_TIMEOUT, KERNEL_NAME, STARTUP_TIMEOUT

# A variable defined in a cell before the tests run, so completion of a name
# from an earlier cell is part of `completion_samples`.
EARLIER_VARIABLE = "conformance_earlier_variable"


class ForjaKernelTests(jkt.KernelTests):
    kernel_name = KERNEL_NAME
    language_name = "rust"
    file_extension = ".rs"

    @classmethod
    def setUpClass(cls) -> None:
        cls.km, cls.kc = start_new_kernel(kernel_name=cls.kernel_name, startup_timeout=STARTUP_TIMEOUT)
        try:
            # The suite waits at most 15 s for a reply; a kernel's first cell
            # compiles the session and forja, so run it (its output, start-up
            # notes, is discarded) and define the variable completed below
            # before the suite starts.
            cls.kc.execute_interactive("1", timeout=FIRST_CELL_TIMEOUT, output_hook=lambda m: None)
            reply = cls.kc.execute_interactive(
                f"let {EARLIER_VARIABLE}: i32 = 1;", timeout=FIRST_CELL_TIMEOUT, output_hook=lambda m: None
            )
            assert reply["content"]["status"] == "ok", reply["content"]
        except BaseException:
            super().tearDownClass()  # unittest does not call it when setUpClass fails
            raise

    code_hello_world = 'println!("hello, world");'

    code_stderr = 'eprintln!("an error line");'

    completion_samples = [
        # A name defined in an earlier cell completes to exactly itself.
        {"text": EARLIER_VARIABLE[:-4], "matches": {EARLIER_VARIABLE}},
        # A std path (needs rust-src): checked for a valid reply only, the
        # exact set of matches depends on the toolchain.
        {"text": "std::collections::Hash"},
    ]

    complete_code_samples = [
        "let x = 1;",
        "1 + 1",
        "fn add(a: i32, b: i32) -> i32 { a + b }",
        'println!("{}", 1);',
        "struct Point { x: f64, y: f64 }",
        "use std::collections::HashMap;",
    ]
    incomplete_code_samples = [
        "fn foo(",
        "fn foo() {",
        "let v = vec![1, 2,",
        'let s = "unterminated',
        "/* an open comment",
        "if true {\n    println!(\"yes\");",
    ]
    invalid_code_samples = [
        "fn fn",
        "let let = 1;",
    ]

    # execute_result: the cell's last expression, shown as text/plain.
    code_execute_result = [
        {"code": "6 * 7", "result": "42"},
        {"code": 'String::from("forja")', "result": '"forja"'},
        {"code": "vec![1u8, 2, 3]", "result": "[1, 2, 3]"},
    ]

    # Rich output while the cell runs comes from forja's display API.
    code_display_data = [
        {"code": 'forja::display::html("<b>bold</b>").unwrap();', "mime": "text/html"},
        {"code": 'forja::display::markdown("**bold**").unwrap();', "mime": "text/markdown"},
        {
            "code": 'forja::display::svg("<svg xmlns=\'http://www.w3.org/2000/svg\'/>").unwrap();',
            "mime": "image/svg+xml",
        },
        {"code": 'forja::display::text("plain").unwrap();', "mime": "text/plain"},
    ]

    # A compile error: exactly one output message, the error (a panic would
    # also print its message on stderr, which this suite does not allow).
    code_generate_error = 'let x: i32 = "not a number";'

    # Matches "6 * 7" (code_execute_result) and nothing else any test runs.
    code_history_pattern = "6 ? 7"
    supported_history_operations = ("tail", "range", "search")

    code_inspect_sample = "Vec::new"

    code_clear_output = "forja::display::clear_output(false).unwrap();"

    # code_page_something cannot apply: Rust has no pager/help payloads
    # (evcxr has no `?`-style help that would page documentation).


# The suite's welcome test reads iopub without a timeout: bound it here.
@pytest.mark.timeout(120)
class ForjaIopubWelcomeTests(jkt.IopubWelcomeTests):
    """JEP 65: iopub is an XPUB socket that greets each subscriber."""

    kernel_name = KERNEL_NAME
    support_iopub_welcome = True
