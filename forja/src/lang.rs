//! Which language a student reads forja's and the kernel's words in (Spanish
//! or English), and the shape of a catalogue of those words.
//!
//! One rule, for both crates: the first of `FORJA_LANG`, `LC_ALL`,
//! `LC_MESSAGES`, `LANG` that is set and not empty decides; a value starting
//! with `es` (`es`, `es_AR.UTF-8`…) means Spanish, anything else English. The
//! variables are read with the C library's `getenv`, which takes no lock, so
//! this is safe in a child forked from a process with threads (Rust's
//! `std::env::var` takes the standard library's environment lock); forja
//! never calls `setenv`.
//!
//! The words themselves live in one catalogue per crate
//! ([`crate::messages`] here, `messages` in the kernel), made with
//! [`catalogue!`](crate::catalogue): an enum with one variant per message and
//! one `match` arm per message holding both languages. A crate such as
//! `fluent` would keep the texts in files checked at run time; the enum makes
//! a missing translation a compile error, needs no new dependency in every
//! cell's build, and a test checks the rest (both texts non-empty, same
//! `{placeholders}`, different unless marked identical on purpose).

use std::fmt::Display;

/// The language of a student's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// Spanish (rioplatense voseo, as the course's lessons).
    Es,
    /// English.
    En,
}

/// The variables that choose the language, first match wins.
pub const VARS: [&str; 4] = [crate::link::env::LANG, "LC_ALL", "LC_MESSAGES", "LANG"];

impl Lang {
    /// The language this process's environment asks for (see the module).
    ///
    /// ```
    /// let _ = forja::lang::Lang::current();
    /// ```
    pub fn current() -> Lang {
        // forja's own unit tests read English whatever the machine's locale.
        if cfg!(test) {
            return Lang::En;
        }
        Lang::from_vars(getenv)
    }

    /// The language `get` (a variable's name to its value) asks for.
    ///
    /// ```
    /// use forja::lang::Lang;
    /// let env = |n: &str| (n == "LANG").then(|| "es_AR.UTF-8".to_owned());
    /// assert_eq!(Lang::from_vars(env), Lang::Es);
    /// let env = |n: &str| match n {
    ///     "LC_ALL" => Some("C.UTF-8".to_owned()),
    ///     "LANG" => Some("es_AR.UTF-8".to_owned()),
    ///     _ => None,
    /// };
    /// assert_eq!(Lang::from_vars(env), Lang::En);
    /// ```
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Lang {
        for name in VARS {
            if let Some(value) = get(name).filter(|v| !v.is_empty()) {
                return Lang::from_value(&value);
            }
        }
        Lang::En
    }

    /// `es…` (any case) is Spanish, anything else English.
    pub fn from_value(value: &str) -> Lang {
        if value.to_ascii_lowercase().starts_with("es") {
            Lang::Es
        } else {
            Lang::En
        }
    }
}

/// One variable through the C library's `getenv` (no lock; see the module).
fn getenv(name: &str) -> Option<String> {
    let name = std::ffi::CString::new(name).ok()?;
    // SAFETY: `name` is a NUL-terminated string; getenv returns NULL or a
    // pointer into the environment, copied at once. forja never calls
    // setenv, so nothing frees it while we read.
    let value = unsafe { libc::getenv(name.as_ptr()) };
    if value.is_null() {
        return None;
    }
    // SAFETY: non-NULL, NUL-terminated (checked above).
    let value = unsafe { std::ffi::CStr::from_ptr(value) };
    Some(value.to_string_lossy().into_owned())
}

/// Whether forja speaks Spanish here ([`Lang::current`] is [`Lang::Es`]).
///
/// ```
/// let _ = forja::lang::spanish();
/// ```
pub fn spanish() -> bool {
    Lang::current() == Lang::Es
}

/// `es` when [`spanish`], `en` otherwise.
///
/// ```
/// assert_eq!(forja::lang::pick("sí", "yes"), if forja::lang::spanish() { "sí" } else { "yes" });
/// ```
pub fn pick<'a>(es: &'a str, en: &'a str) -> &'a str {
    if spanish() { es } else { en }
}

/// `text` with each `{name}` replaced by its value.
///
/// ```
/// assert_eq!(forja::lang::fill("{a} y {b}", &[("a", &1), ("b", &"dos")]), "1 y dos");
/// ```
pub fn fill(text: &str, values: &[(&str, &dyn Display)]) -> String {
    let mut out = text.to_owned();
    for (name, value) in values {
        out = out.replace(&format!("{{{name}}}"), &value.to_string());
    }
    out
}

/// The `{placeholders}` of a catalogue text, sorted, for the tests that
/// compare the two languages of an entry.
pub fn placeholders(text: &str) -> Vec<&str> {
    let mut names: Vec<&str> = text
        .split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
        .filter(|name| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// Makes a catalogue: `pub enum Msg` with one variant per entry, `Msg::ALL`,
/// and `Msg::both` (one `match` arm per entry: `(spanish, english)`), plus
/// `get` and `fill` in the current language. Entries that end in `, same`
/// are meant to read the same in both languages.
///
/// The first line names the function that gives the current language.
///
/// ```
/// forja::catalogue! {
///     lang: forja::lang::Lang::current;
///     /// A greeting.
///     Hello { es: "hola, {name}", en: "hello, {name}" }
///     Ok { es: "ok", en: "ok", same }
/// }
/// assert_eq!(Msg::Hello.both().0, "hola, {name}");
/// assert_eq!(Msg::Hello.text(forja::lang::Lang::En), "hello, {name}");
/// assert_eq!(Msg::ALL.len(), 2);
/// assert!(Msg::Ok.same_on_purpose() && !Msg::Hello.same_on_purpose());
/// ```
#[macro_export]
macro_rules! catalogue {
    (lang: $current:path; $( $(#[doc = $doc:literal])* $name:ident { es: $es:literal, en: $en:literal $(, $same:ident)? } )*) => {
        /// One message a student can read, in Spanish and English.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Msg {
            $( $(#[doc = $doc])* $name, )*
        }

        impl Msg {
            /// Every entry, for the tests.
            pub const ALL: &'static [Msg] = &[$(Msg::$name),*];

            /// (Spanish, English).
            pub fn both(self) -> (&'static str, &'static str) {
                match self {
                    $( Msg::$name => ($es, $en), )*
                }
            }

            /// Whether the two texts are identical on purpose.
            pub fn same_on_purpose(self) -> bool {
                match self {
                    $( Msg::$name => $crate::catalogue!(@same $($same)?), )*
                }
            }

            /// The text in `lang`, `{placeholders}` unfilled.
            pub fn text(self, lang: $crate::lang::Lang) -> &'static str {
                let (es, en) = self.both();
                match lang {
                    $crate::lang::Lang::Es => es,
                    $crate::lang::Lang::En => en,
                }
            }

            /// The text in the current language, unfilled.
            pub fn get(self) -> &'static str {
                self.text($current())
            }

            /// The text in the current language with its `{placeholders}` filled.
            pub fn fill(self, values: &[(&str, &dyn ::std::fmt::Display)]) -> String {
                $crate::lang::fill(self.get(), values)
            }
        }
    };
    (@same same) => { true };
    (@same) => { false };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        move |n| pairs.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone())
    }

    #[test]
    fn precedence() {
        assert_eq!(Lang::from_vars(env(&[])), Lang::En);
        assert_eq!(Lang::from_vars(env(&[("LANG", "es_AR.UTF-8")])), Lang::Es);
        assert_eq!(Lang::from_vars(env(&[("LANG", "ES")])), Lang::Es);
        assert_eq!(
            Lang::from_vars(env(&[("LANG", "es_AR.UTF-8"), ("LC_MESSAGES", "en_US")])),
            Lang::En
        );
        assert_eq!(
            Lang::from_vars(env(&[("LC_MESSAGES", "en_US"), ("LC_ALL", "es_ES")])),
            Lang::Es
        );
        assert_eq!(
            Lang::from_vars(env(&[("LC_ALL", "es_ES"), ("FORJA_LANG", "en")])),
            Lang::En
        );
        assert_eq!(
            Lang::from_vars(env(&[("FORJA_LANG", ""), ("LANG", "es")])),
            Lang::Es
        );
        assert_eq!(Lang::from_vars(env(&[("LANG", "C.UTF-8")])), Lang::En);
    }

    #[test]
    fn placeholders_are_found() {
        assert_eq!(placeholders("a {pid} b {what}{pid} {}"), ["pid", "what"]);
    }
}
