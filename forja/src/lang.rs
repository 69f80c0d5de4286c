//! Which language forja's words for students are in: Spanish or English.
//!
//! For now one check, [`spanish`]; a Spanish/English catalogue of messages
//! comes later and will replace the `if spanish() { … } else { … }` pairs.

/// Whether forja speaks Spanish here: `FORJA_LANG`, or else `LANG`, starts
/// with `es` (`es`, `es_ES.UTF-8`, `es_AR`…). English otherwise.
///
/// ```
/// let _ = forja::lang::spanish();
/// ```
pub fn spanish() -> bool {
    let lang = std::env::var(crate::link::env::LANG)
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(|| std::env::var("LANG").ok())
        .unwrap_or_default();
    lang.starts_with("es")
}

/// `es` when [`spanish`], `en` otherwise.
///
/// ```
/// assert_eq!(forja::lang::pick("sí", "yes"), if forja::lang::spanish() { "sí" } else { "yes" });
/// ```
pub fn pick<'a>(es: &'a str, en: &'a str) -> &'a str {
    if spanish() { es } else { en }
}
