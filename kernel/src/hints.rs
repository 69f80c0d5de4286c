//! The hints shown after rustc's report for the mistakes beginners make
//! with processes: which diagnostics each is for. Their texts, and the
//! words that name a place in a cell, are in the catalogue
//! ([`crate::messages`]).

pub use crate::messages::{Lang, Msg, fill};

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
    pub text: Msg,
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
        text: Msg::HintClosureNeedsMove,
    },
    Hint {
        id: "moved-into-closure",
        applies: |d| code_is(d, &["E0382", "E0505"]) && moves_a_process_thing(d),
        text: Msg::HintMovedIntoClosure,
    },
    Hint {
        id: "moved-value",
        applies: |d| code_is(d, &["E0382", "E0505"]) && !moves_a_process_thing(d),
        text: Msg::HintMovedValue,
    },
    Hint {
        id: "not-shareable",
        applies: |d| code_is(d, &["E0277"]) && d.report.contains("Shareable"),
        text: Msg::HintNotShareable,
    },
    Hint {
        id: "not-serializable",
        applies: |d| {
            code_is(d, &["E0277"])
                && (d.report.contains("Serialize") || d.report.contains("Deserialize"))
        },
        text: Msg::HintNotSerializable,
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
        text: Msg::HintPoolTaskCaptures,
    },
    Hint {
        id: "question-mark-in-unit-closure",
        applies: |d| {
            code_is(d, &["E0277"])
                && d.message
                    .contains("`?` operator can only be used in a closure")
        },
        text: Msg::HintQuestionMarkInUnitClosure,
    },
    Hint {
        id: "forgot-question-mark",
        applies: |d| {
            mismatched_result(d)
                || (code_is(d, &["E0599"]) && d.message.contains("for enum `Result"))
                || (code_is(d, &["unused_must_use"]) && d.message.contains("`Result`"))
        },
        text: Msg::HintForgotQuestionMark,
    },
    Hint {
        id: "pid-type",
        applies: pid_mismatch,
        text: Msg::HintPidType,
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
            fill(Msg::CellLine.text(Lang::Es), &[("cell", &12), ("line", &3)]),
            "celda [12], línea 3"
        );
    }
}
