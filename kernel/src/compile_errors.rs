//! Compile errors (and other evcxr errors) as readable Jupyter tracebacks,
//! pointing at the cell's own lines.

use crate::outcome::CellError;
use ariadne::sources;

/// Turns an evcxr error for `code` into a cell error.
pub fn cell_error(error: &evcxr::Error, code: &str) -> CellError {
    match error {
        evcxr::Error::CompilationErrors(errors) => {
            let mut traceback = Vec::new();
            let mut first = None;
            // Warnings (from the cell or from a path dependency such as
            // forja) must never stand in for the error.
            let only_errors: Vec<&evcxr::CompilationError> =
                errors.iter().filter(|e| e.level() == "error").collect();
            let shown: Vec<&evcxr::CompilationError> = if only_errors.is_empty() {
                errors.iter().collect()
            } else {
                only_errors
            };
            for e in shown {
                let message = e.message();
                first.get_or_insert_with(|| message.clone());
                if e.is_from_user_code()
                    && let Some(report) =
                        e.build_report("cell".to_owned(), code.to_owned(), evcxr::Theme::Light)
                {
                    let mut buf = Vec::new();
                    if report
                        .write(sources([("cell".to_owned(), code)]), &mut buf)
                        .is_ok()
                    {
                        traceback.extend(String::from_utf8_lossy(&buf).lines().map(str::to_owned));
                        continue;
                    }
                }
                // No span in the cell: show rustc's own rendering.
                traceback.push(format!("\x1b[31merror\x1b[0m: {message}"));
                for sm in e.spanned_messages() {
                    traceback.extend(sm.lines.iter().cloned());
                    if !sm.label.is_empty() {
                        traceback.push(sm.label.clone());
                    }
                }
                for help in e.help() {
                    traceback.push(format!("help: {help}"));
                }
            }
            CellError {
                ename: "CompileError".into(),
                evalue: first.unwrap_or_else(|| "the cell did not compile".into()),
                traceback,
            }
        }
        other => {
            let text = other.to_string();
            CellError {
                ename: "Error".into(),
                evalue: text.lines().next().unwrap_or_default().to_owned(),
                traceback: text.lines().map(str::to_owned).collect(),
            }
        }
    }
}
