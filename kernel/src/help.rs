//! `:help`: the kernel's own magics and evcxr's commands, each described in
//! the student's language (evcxr's `:help` writes English only).

use serde_json::{Map, Value};

forja::catalogue! {
    lang: crate::messages::lang;

    /// The line above the table.
    Title {
        es: "Comandos de celda (cada uno solo en su celda):",
        en: "Cell commands (each alone in its cell):"
    }
    /// The table's column headers.
    HeadCommand { es: "comando", en: "command" }
    /// The table's column headers.
    HeadWhat { es: "qué hace", en: "what it does" }
    /// forja's magics.
    Procs {
        es: "lista los procesos que arrancaron tus celdas y siguen vivos",
        en: "lists the processes your cells started that are still alive"
    }
    Kill {
        es: "termina un proceso de tus celdas (`:kill PID`) o todos (`:kill all`)",
        en: "stops one process your cells started (`:kill PID`) or all of them (`:kill all`)"
    }
    Waits {
        es: "muestra quién espera a quién (el grafo de esperas); `:waits auto 3s|off`, `:waits stop-after 5s|off`",
        en: "shows who waits for whom (the wait-for graph); `:waits auto 3s|off`, `:waits stop-after 5s|off`"
    }
    Fresh {
        es: "reinicia el proceso que corre tus celdas: conserva funciones y tipos, avisa qué variables se pierden (también `:refrescar`)",
        en: "restarts the process that runs your cells: keeps functions and types, says which variables are lost (also `:refrescar`)"
    }
    /// evcxr's commands.
    Dep {
        es: "agrega una dependencia, por ejemplo `:dep regex = \"1\"`",
        en: "adds a dependency, e.g. `:dep regex = \"1\"`"
    }
    ShowDeps { es: "muestra las dependencias agregadas", en: "shows the dependencies added" }
    Vars { es: "lista tus variables y sus tipos", en: "lists your variables and their types" }
    Type { es: "muestra el tipo de una variable", en: "shows a variable's type" }
    TypeShort { es: "lo mismo que `:type`", en: "short for `:type`" }
    Doc {
        es: "muestra la documentación de una variable, palabra clave, tipo o módulo",
        en: "shows the documentation of a variable, keyword, type or module"
    }
    Explain { es: "explica el último error de compilación", en: "explains the last compile error" }
    Clear {
        es: "borra todo el estado (variables, funciones), conserva lo compilado",
        en: "clears all state (variables, functions), keeps what was compiled"
    }
    Restart {
        es: "reinicia el proceso que corre las celdas (mejor `:fresh`)",
        en: "restarts the process that runs the cells (`:fresh` is better)"
    }
    Env { es: "fija una variable de entorno (`CLAVE=valor`)", en: "sets an environment variable (`KEY=value`)" }
    BuildEnv {
        es: "fija una variable de entorno para compilar (`CLAVE=valor`)",
        en: "sets an environment variable for compiling (`KEY=value`)"
    }
    Opt { es: "nivel de optimización (0/1/2)", en: "optimisation level (0/1/2)" }
    Timing {
        es: "activa o desactiva mostrar cuánto tarda cada celda",
        en: "turns showing how long each cell takes on or off"
    }
    TimePasses {
        es: "muestra los tiempos de cada fase de rustc (necesita nightly)",
        en: "shows rustc's time per pass (needs nightly)"
    }
    Fmt { es: "formato de salida de los valores (por defecto `{:?}`)", en: "output format of values (default `{:?}`)" }
    Types { es: "activa o desactiva mostrar los tipos de los valores", en: "turns showing values' types on or off" }
    Efmt {
        es: "formato de los errores que devuelve `?`",
        en: "format of the errors returned by `?`"
    }
    PreserveVars {
        es: "intentar conservar las variables tras un panic (0/1)",
        en: "try to keep variables after a panic (0/1)"
    }
    Toolchain { es: "qué toolchain usar (por ejemplo nightly)", en: "which toolchain to use (e.g. nightly)" }
    Offline { es: "cargo sin red (0/1)", en: "cargo offline mode (0/1)" }
    StaticLinking {
        es: "permitir enlazar dependencias estáticamente (0/1)",
        en: "allow static linking of dependencies (0/1)"
    }
    Sccache { es: "usar sccache (0/1)", en: "use sccache (0/1)" }
    Cache { es: "tamaño del caché en MiB (0 lo apaga)", en: "cache size in MiB (0 turns it off)" }
    ClearCache { es: "vacía el caché de `:cache`", en: "empties `:cache`'s cache" }
    Linker { es: "muestra o fija el enlazador (system, lld, mold)", en: "shows or sets the linker (system, lld, mold)" }
    CodegenBackend {
        es: "muestra o fija el backend de generación de código (necesita nightly)",
        en: "shows or sets the codegen backend (needs nightly)"
    }
    LastCompileDir {
        es: "muestra el directorio de la última compilación",
        en: "shows the directory of the last compile"
    }
    LastErrorJson {
        es: "el último error de compilación como JSON (para depurar)",
        en: "the last compile error as JSON (for debugging)"
    }
    LoadConfig {
        es: "recarga los archivos de configuración de inicio (`--quiet` para no avisar)",
        en: "reloads the start-up configuration files (`--quiet` to say nothing)"
    }
    InternalDebug { es: "depuración interna de evcxr", en: "evcxr's internal debugging" }
    Version { es: "la versión de evcxr", en: "evcxr's version" }
    Quit { es: "termina la sesión", en: "ends the session" }
    Help { es: "esta ayuda", en: "this help" }
}

/// Every command with its description: forja's magics first, then evcxr's
/// in alphabetical order (all of evcxr 0.22's commands; a test keeps the
/// list complete).
pub const COMMANDS: &[(&str, Msg)] = &[
    (":procs", Msg::Procs),
    (":kill", Msg::Kill),
    (":waits", Msg::Waits),
    (":fresh", Msg::Fresh),
    (":allow_static_linking", Msg::StaticLinking),
    (":build_env", Msg::BuildEnv),
    (":cache", Msg::Cache),
    (":clear", Msg::Clear),
    (":clear_cache", Msg::ClearCache),
    (":codegen_backend", Msg::CodegenBackend),
    (":dep", Msg::Dep),
    (":doc", Msg::Doc),
    (":efmt", Msg::Efmt),
    (":env", Msg::Env),
    (":explain", Msg::Explain),
    (":fmt", Msg::Fmt),
    (":help", Msg::Help),
    (":internal_debug", Msg::InternalDebug),
    (":last_compile_dir", Msg::LastCompileDir),
    (":last_error_json", Msg::LastErrorJson),
    (":linker", Msg::Linker),
    (":load_config", Msg::LoadConfig),
    (":offline", Msg::Offline),
    (":opt", Msg::Opt),
    (":preserve_vars_on_panic", Msg::PreserveVars),
    (":quit", Msg::Quit),
    (":restart", Msg::Restart),
    (":sccache", Msg::Sccache),
    (":show_deps", Msg::ShowDeps),
    (":t", Msg::TypeShort),
    (":time_passes", Msg::TimePasses),
    (":timing", Msg::Timing),
    (":toolchain", Msg::Toolchain),
    (":type", Msg::Type),
    (":types", Msg::Types),
    (":vars", Msg::Vars),
    (":version", Msg::Version),
];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `:help`'s output: a plain-text and an HTML table.
pub fn table() -> Map<String, Value> {
    let mut text = format!("{}\n", Msg::Title.get());
    let mut html = format!(
        "<p>{}</p><table><tr><th>{}</th><th>{}</th></tr>",
        escape(Msg::Title.get()),
        escape(Msg::HeadCommand.get()),
        escape(Msg::HeadWhat.get())
    );
    for (name, what) in COMMANDS {
        text.push_str(&format!("{name:<24} {}\n", what.get()));
        html.push_str(&format!(
            "<tr><td><code>{}</code></td><td>{}</td></tr>",
            escape(name),
            escape(what.get())
        ));
    }
    html.push_str("</table>");
    Map::from_iter([
        ("text/plain".to_owned(), Value::String(text)),
        ("text/html".to_owned(), Value::String(html)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_has_both_languages() {
        for m in Msg::ALL {
            let (es, en) = m.both();
            assert!(!es.is_empty() && !en.is_empty(), "{m:?}");
            assert!(es != en || m.same_on_purpose(), "{m:?} is not translated");
        }
    }

    #[test]
    fn every_evcxr_command_is_described() {
        let ours: Vec<&str> = COMMANDS.iter().map(|(n, _)| *n).collect();
        let src = include_str!("../../vendor/evcxr/src/command_context.rs");
        let mut missing = Vec::new();
        for part in src.split("AvailableCommand::new(").skip(1) {
            let name = part.trim_start().trim_start_matches('"');
            let name = &name[..name.find('"').expect("a quoted name")];
            if !ours.contains(&name) {
                missing.push(name.to_owned());
            }
        }
        assert!(
            missing.is_empty(),
            "evcxr commands without a description: {missing:?}"
        );
    }

    #[test]
    fn the_table_lists_every_command_once() {
        let t = table();
        let text = t["text/plain"].as_str().unwrap();
        for (name, _) in COMMANDS {
            assert!(
                text.lines()
                    .any(|l| l.split_whitespace().next() == Some(*name)),
                "{name}"
            );
        }
        assert!(t["text/html"].as_str().unwrap().ends_with("</table>"));
    }
}
