//! Every text the kernel adds for a student to an error, in Spanish or
//! English: the hints shown after rustc's report for the mistakes beginners
//! make with processes, and the words that name a place in a cell. One table,
//! until the full message catalogue arrives.

/// The student's language: Spanish when the first of `FORJA_LANG`, `LC_ALL`,
/// `LC_MESSAGES`, `LANG` that is set starts with `es`, else English.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Es,
    En,
}

impl Lang {
    /// The language the kernel's environment asks for.
    pub fn from_env() -> Lang {
        Lang::from_vars(|name| std::env::var(name).ok())
    }

    fn from_vars(get: impl Fn(&str) -> Option<String>) -> Lang {
        for name in [forja::link::env::LANG, "LC_ALL", "LC_MESSAGES", "LANG"] {
            if let Some(value) = get(name).filter(|v| !v.is_empty()) {
                return if value.to_ascii_lowercase().starts_with("es") {
                    Lang::Es
                } else {
                    Lang::En
                };
            }
        }
        Lang::En
    }
}

/// One text in both languages.
#[derive(Debug, Clone, Copy)]
pub struct Text {
    pub es: &'static str,
    pub en: &'static str,
}

impl Text {
    pub fn get(&self, lang: Lang) -> &'static str {
        match lang {
            Lang::Es => self.es,
            Lang::En => self.en,
        }
    }
}

/// `celda [N], línea L`: a line of cell `N` (its execution count).
pub const CELL_LINE: Text = Text {
    es: "celda [{cell}], línea {line}",
    en: "cell [{cell}], line {line}",
};
/// `celda [N]` without a line.
pub const CELL: Text = Text {
    es: "celda [{cell}]",
    en: "cell [{cell}]",
};
/// Code the student wrote in an earlier cell (evcxr keeps no line for it).
pub const EARLIER_CELL: Text = Text {
    es: "una celda anterior",
    en: "an earlier cell",
};
/// Before a location that rustc's report does not show (an error inside a
/// library, caused by the student's call).
pub const CALLED_FROM: Text = Text {
    es: "desde tu código en",
    en: "from your code at",
};
/// The word that starts a hint line.
pub const HINT: Text = Text {
    es: "pista",
    en: "hint",
};
/// A graded exercise whose `todo!()` was reached.
pub const TODO_REACHED: Text = Text {
    es: "falta resolver el ejercicio: `todo!()` en `{function}`",
    en: "the exercise is not solved yet: `todo!()` in `{function}`",
};

/// `text` with each `{name}` replaced by its value.
pub fn fill(text: &str, values: &[(&str, &str)]) -> String {
    let mut out = text.to_owned();
    for (name, value) in values {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

/// What a hint rule looks at: one diagnostic from rustc.
#[derive(Debug, Clone, Copy)]
pub struct Diagnostic<'a> {
    /// `E0382`, or a lint's name (`unused_must_use`).
    pub code: Option<&'a str>,
    /// rustc's one-line message.
    pub message: &'a str,
    /// rustc's whole report, without colours.
    pub report: &'a str,
}

/// A hint: which diagnostics it is for, and what it says.
pub struct Hint {
    /// A stable name, for tests.
    pub id: &'static str,
    applies: fn(&Diagnostic) -> bool,
    pub text: Text,
}

fn code_is(d: &Diagnostic, codes: &[&str]) -> bool {
    d.code.is_some_and(|c| codes.contains(&c))
}

/// The forja and std types that are moved into a child's closure: a pipe end,
/// a queue, a handle.
const PROCESS_TYPES: &[&str] = &[
    "Connection",
    "Sender",
    "Receiver",
    "Queue",
    "JoinableQueue",
    "SimpleQueue",
    "Process",
    "Pool",
    "Value",
    "Array",
    "Lock",
    "RLock",
    "Semaphore",
    "Event",
    "Condition",
    "Barrier",
];

fn moves_a_process_thing(d: &Diagnostic) -> bool {
    d.report.contains("closure")
        && (PROCESS_TYPES
            .iter()
            .any(|t| d.report.contains(&format!("{t}<")) || d.report.contains(&format!("`{t}`")))
            || d.report.contains("forja::"))
}

fn mismatched_result(d: &Diagnostic) -> bool {
    code_is(d, &["E0308"])
        && (d.report.contains("found enum `Result")
            || d.report.contains("found `Result<")
            || d.report.contains("found enum `std::result::Result")
            || d.report.contains("found enum `core::result::Result"))
}

fn pid_mismatch(d: &Diagnostic) -> bool {
    code_is(d, &["E0308"])
        && (d.report.contains("expected `i32`, found `u32`")
            || d.report.contains("expected `u32`, found `i32`")
            || d.report.contains("expected `i32`, found `Option<i32>`")
            || d.report.contains("expected `u32`, found `Option<i32>`"))
}

/// The hints, in the order they are shown.
pub const HINTS: &[Hint] = &[
    Hint {
        id: "closure-needs-move",
        applies: |d| code_is(d, &["E0373"]),
        text: Text {
            es: "la closure toma prestado algo que puede morir antes que ella (un proceso o un hilo la ejecuta más tarde): escribe `move || …` para que se lleve sus propias copias.",
            en: "the closure borrows something that may die before it runs (a process or thread runs it later): write `move || …` so it takes its own copies.",
        },
    },
    Hint {
        id: "moved-into-closure",
        applies: |d| code_is(d, &["E0382", "E0505"]) && moves_a_process_thing(d),
        text: Text {
            es: "un extremo de tubería, una cola o un manejador que se mueve a la closure de un proceso ya no es tuyo: clónalo antes de la closure (`let q2 = q.clone();`, `conn.try_clone()?` para un extremo de `Pipe`) o créalo dentro.",
            en: "a pipe end, queue or handle moved into a process's closure is no longer yours: clone it before the closure (`let q2 = q.clone();`, `conn.try_clone()?` for a `Pipe` end) or create it inside.",
        },
    },
    Hint {
        id: "moved-value",
        applies: |d| code_is(d, &["E0382", "E0505"]) && !moves_a_process_thing(d),
        text: Text {
            es: "un valor movido (a una función, a otra variable, a una closure) ya no se puede usar: pasa una referencia (`&x`), o clónalo antes (`x.clone()`).",
            en: "a moved value (into a function, another variable, a closure) cannot be used again: pass a reference (`&x`), or clone it first (`x.clone()`).",
        },
    },
    Hint {
        id: "not-shareable",
        applies: |d| code_is(d, &["E0277"]) && d.report.contains("Shareable"),
        text: Text {
            es: "en memoria compartida (`Value`, `Array`) solo cabe dato plano: números, `bool`, arreglos de ellos o un struct con `#[derive(Shareable)]`; nada con punteros (`String`, `Vec`, `Box`). Para enviar esos, usa una `Queue` o un `Pipe`.",
            en: "shared memory (`Value`, `Array`) holds only plain data: numbers, `bool`, arrays of them or a `#[derive(Shareable)]` struct; nothing with pointers (`String`, `Vec`, `Box`). To send those, use a `Queue` or a `Pipe`.",
        },
    },
    Hint {
        id: "not-serializable",
        applies: |d| {
            code_is(d, &["E0277"])
                && (d.report.contains("Serialize") || d.report.contains("Deserialize"))
        },
        text: Text {
            es: "lo que viaja entre procesos (por `Queue`, `Pipe` o `Pool`) se serializa: añade `#[derive(Serialize, Deserialize)]` a tu tipo (`use serde::{Serialize, Deserialize};`).",
            en: "what travels between processes (through a `Queue`, `Pipe` or `Pool`) is serialized: add `#[derive(Serialize, Deserialize)]` to your type (`use serde::{Serialize, Deserialize};`).",
        },
    },
    Hint {
        id: "pool-task-captures",
        applies: |d| {
            (code_is(d, &["E0308"])
                && d.report
                    .contains("closures can only be coerced to `fn` types if they do not capture"))
                || (code_is(d, &["E0277"])
                    && d.report.contains("Copy")
                    && d.report.contains("closure"))
        },
        text: Text {
            es: "una tarea de `Pool` es una función sin capturas (cada trabajador es otro proceso): pasa lo que necesita como argumento de la tarea, o escribe un `fn`.",
            en: "a `Pool` task is a function that captures nothing (each worker is another process): pass what it needs as the task's argument, or write a `fn`.",
        },
    },
    Hint {
        id: "question-mark-in-unit-closure",
        applies: |d| {
            code_is(d, &["E0277"])
                && d.message
                    .contains("`?` operator can only be used in a closure")
        },
        text: Text {
            es: "la closure de un proceso hijo devuelve `()`, así que `?` no tiene adónde devolver el error: trátalo dentro (`match`, `.expect(\"…\")`), o mueve el trabajo a una función que devuelva `Result` y llámala con `.expect(…)`.",
            en: "a child process's closure returns `()`, so `?` has nowhere to return the error to: handle it inside (`match`, `.expect(\"…\")`), or move the work into a function returning `Result` and call it with `.expect(…)`.",
        },
    },
    Hint {
        id: "forgot-question-mark",
        applies: |d| {
            mismatched_result(d)
                || (code_is(d, &["E0599"]) && d.message.contains("for enum `Result"))
                || (code_is(d, &["unused_must_use"]) && d.message.contains("`Result`"))
        },
        text: Text {
            es: "esto es un `Result`, no el valor: añade `?` para obtenerlo (y propagar el error), o `.expect(\"…\")`.",
            en: "this is a `Result`, not the value: add `?` to get it (and pass the error on), or `.expect(\"…\")`.",
        },
    },
    Hint {
        id: "pid-type",
        applies: pid_mismatch,
        text: Text {
            es: "los pid: `std::process::id()` es `u32`; los de forja (`pid()`, `os::getpid()`) son `i32` como en Linux, y el de un `Process` es `Option<i32>` (no tiene hasta `start()`). Convierte con `i32::try_from(x)` o compara del mismo tipo.",
            en: "pids: `std::process::id()` is a `u32`; forja's (`pid()`, `os::getpid()`) are `i32` as on Linux, and a `Process`'s is an `Option<i32>` (none until `start()`). Convert with `i32::try_from(x)` or compare like with like.",
        },
    },
];

/// The hints for one diagnostic, in table order.
pub fn hints_for(d: &Diagnostic) -> Vec<&'static Hint> {
    HINTS.iter().filter(|h| (h.applies)(d)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(code: &str, message: &str, report: &str) -> Vec<&'static str> {
        hints_for(&Diagnostic {
            code: Some(code),
            message,
            report,
        })
        .iter()
        .map(|h| h.id)
        .collect()
    }

    #[test]
    fn language_first_set_variable_wins() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(Lang::from_vars(env(&[])), Lang::En);
        assert_eq!(Lang::from_vars(env(&[("LANG", "es_ES.UTF-8")])), Lang::Es);
        assert_eq!(
            Lang::from_vars(env(&[("LANG", "es_ES.UTF-8"), ("LC_ALL", "C.UTF-8")])),
            Lang::En
        );
        assert_eq!(
            Lang::from_vars(env(&[("FORJA_LANG", "es"), ("LC_ALL", "en_US")])),
            Lang::Es
        );
        assert_eq!(
            Lang::from_vars(env(&[("FORJA_LANG", ""), ("LANG", "es_MX")])),
            Lang::Es
        );
    }

    #[test]
    fn each_rule_keys_on_codes_and_stable_phrases() {
        assert_eq!(
            ids("E0373", "closure may outlive", ""),
            ["closure-needs-move"]
        );
        assert_eq!(
            ids(
                "E0382",
                "use of moved value: `tx`",
                "move occurs because `tx` has type `Sender<i32>`\nvalue moved into closure here"
            ),
            ["moved-into-closure"]
        );
        assert_eq!(ids("E0382", "borrow of moved value", "x"), ["moved-value"]);
        assert_eq!(
            ids("E0277", "x", "the trait `Shareable` is not implemented"),
            ["not-shareable"]
        );
        assert_eq!(
            ids("E0277", "x", "the trait `Serialize` is not implemented"),
            ["not-serializable"]
        );
        assert_eq!(
            ids(
                "E0308",
                "mismatched types",
                "closures can only be coerced to `fn` types if they do not capture any variables"
            ),
            ["pool-task-captures"]
        );
        assert_eq!(
            ids(
                "E0277",
                "the `?` operator can only be used in a closure that returns `Result` or `Option` (or another type that implements `FromResidual`)",
                ""
            ),
            ["question-mark-in-unit-closure"]
        );
        assert_eq!(
            ids(
                "E0308",
                "mismatched types",
                "expected `i32`, found enum `Result<i32, Error>`"
            ),
            ["forgot-question-mark"]
        );
        assert_eq!(
            ids("unused_must_use", "unused `Result` that must be used", ""),
            ["forgot-question-mark"]
        );
        assert_eq!(
            ids("E0308", "mismatched types", "expected `i32`, found `u32`"),
            ["pid-type"]
        );
        assert!(ids("E0425", "cannot find value", "").is_empty());
    }

    #[test]
    fn fill_replaces_names() {
        assert_eq!(
            fill(CELL_LINE.get(Lang::Es), &[("cell", "12"), ("line", "3")]),
            "celda [12], línea 3"
        );
    }
}
