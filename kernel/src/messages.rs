//! Every text the kernel writes for a student, in Spanish and English: the
//! notes on interrupts, restarts, lost variables, panics and output between
//! cells, the start-up notes, `:procs`, `:kill` and `:waits`, and the hints and place
//! names added to rustc's errors.
//!
//! One enum with one `match` arm per message holding both languages, made by
//! `forja::catalogue!` (forja's `lang` module says why an enum and not a
//! crate such as `fluent`: a missing translation does not compile). The
//! language follows `forja::lang` (`FORJA_LANG` > `LC_ALL` > `LC_MESSAGES` >
//! `LANG`); `{name}` marks a value filled in at run time. Spanish:
//! rioplatense voseo, as the lessons, and the course's words (proceso hijo,
//! tubería, cola, interbloqueo, sección crítica).

pub use forja::lang::{Lang, fill};

/// The language of the kernel's messages: the environment's, except in the
/// kernel's own unit tests, which read English whatever the machine's locale.
pub fn lang() -> Lang {
    if cfg!(test) {
        Lang::En
    } else {
        Lang::current()
    }
}

forja::catalogue! {
    lang: crate::messages::lang;

    // ---- where in the cells ----
    /// A line of cell `N` (its execution count).
    CellLine { es: "celda [{cell}], línea {line}", en: "cell [{cell}], line {line}" }
    /// A cell without a line.
    Cell { es: "celda [{cell}]", en: "cell [{cell}]" }
    /// Code the student wrote in an earlier cell (evcxr keeps no line for it).
    EarlierCell { es: "una celda anterior", en: "an earlier cell" }
    /// Before a location that rustc's report does not show.
    CalledFrom { es: "desde tu código en", en: "from your code at" }
    /// The word that starts a hint line.
    HintWord { es: "pista", en: "hint" }
    /// A forja child's panic, placed in the cells.
    ChildPanicAt {
        es: "el proceso {process} (pid {pid}) hizo panic en {place}: {message}\n",
        en: "panic in process {process} (pid {pid}) at {place}: {message}\n"
    }
    /// A graded exercise whose `todo!()` was reached.
    TodoReached {
        es: "todavía falta resolver el ejercicio: `todo!()` en `{function}`",
        en: "the exercise is not solved yet: `todo!()` in `{function}`"
    }

    // ---- hints after rustc's report (hints.rs) ----
    /// E0373.
    HintClosureNeedsMove {
        es: "la closure toma prestado algo que puede dejar de existir antes de que ella corra \
             (un proceso o un hilo la ejecuta más tarde): escribí `move || …` para que se lleve \
             sus propias copias.",
        en: "the closure borrows something that may die before it runs (a process or thread \
             runs it later): write `move || …` so it takes its own copies."
    }
    /// A pipe end, queue or handle moved into a process's closure.
    HintMovedIntoClosure {
        es: "un extremo de tubería, una cola o un handle que se mueve a la closure de un proceso \
             deja de ser tuyo: clonalo antes de la closure (`let q2 = q.clone();`, \
             `conn.try_clone()?` para un extremo de `Pipe`) o crealo adentro.",
        en: "a pipe end, queue or handle moved into a process's closure is no longer yours: \
             clone it before the closure (`let q2 = q.clone();`, `conn.try_clone()?` for a \
             `Pipe` end) or create it inside."
    }
    /// A moved value used again.
    HintMovedValue {
        es: "un valor movido (a una función, a otra variable, a una closure) ya no se puede \
             usar: pasá una referencia (`&x`), o clonalo antes (`x.clone()`).",
        en: "a moved value (into a function, another variable, a closure) cannot be used again: \
             pass a reference (`&x`), or clone it first (`x.clone()`)."
    }
    /// A non-`Shareable` type in shared memory.
    HintNotShareable {
        es: "en memoria compartida (`Value`, `Array`) solo entran datos planos: números, \
             `bool`, arreglos de ellos o un struct con `#[derive(Shareable)]`; nada con punteros \
             (`String`, `Vec`, `Box`). Para mandar esos, usá una `Queue` o un `Pipe`.",
        en: "shared memory (`Value`, `Array`) holds only plain data: numbers, `bool`, arrays of \
             them or a `#[derive(Shareable)]` struct; nothing with pointers (`String`, `Vec`, \
             `Box`). To send those, use a `Queue` or a `Pipe`."
    }
    /// A type sent between processes that serde cannot serialize.
    HintNotSerializable {
        es: "lo que viaja entre procesos (por una `Queue`, un `Pipe` o un `Pool`) se \
             serializa: agregale `#[derive(Serialize, Deserialize)]` a tu tipo \
             (`use serde::{Serialize, Deserialize};`).",
        en: "what travels between processes (through a `Queue`, `Pipe` or `Pool`) is \
             serialized: add `#[derive(Serialize, Deserialize)]` to your type \
             (`use serde::{Serialize, Deserialize};`)."
    }
    /// A pool task that captures.
    HintPoolTaskCaptures {
        es: "una tarea de `Pool` es una función que no captura nada (cada trabajador es otro \
             proceso): pasale lo que necesita como argumento de la tarea, o escribí una `fn`.",
        en: "a `Pool` task is a function that captures nothing (each worker is another \
             process): pass what it needs as the task's argument, or write a `fn`."
    }
    /// `?` in a child's closure.
    HintQuestionMarkInUnitClosure {
        es: "la closure de un proceso hijo devuelve `()`, así que `?` no tiene adónde devolver \
             el error: manejalo adentro (`match`, `.expect(\"…\")`), o pasá el trabajo a una \
             función que devuelva `Result` y llamala con `.expect(…)`.",
        en: "a child process's closure returns `()`, so `?` has nowhere to return the error to: \
             handle it inside (`match`, `.expect(\"…\")`), or move the work into a function \
             returning `Result` and call it with `.expect(…)`."
    }
    /// A `Result` used as its value.
    HintForgotQuestionMark {
        es: "esto es un `Result`, no el valor: agregá `?` para sacar el valor (y pasar el error \
             hacia arriba), o `.expect(\"…\")`.",
        en: "this is a `Result`, not the value: add `?` to get it (and pass the error on), or \
             `.expect(\"…\")`."
    }
    /// `u32` and `i32` pids mixed.
    HintPidType {
        es: "los pid: `std::process::id()` es `u32`; los de forja (`pid()`, `os::getpid()`) \
             son `i32` como en Linux, y el de un `Process` es `Option<i32>` (no tiene hasta \
             `start()`). Convertí con `i32::try_from(x)` o compará valores del mismo tipo.",
        en: "pids: `std::process::id()` is a `u32`; forja's (`pid()`, `os::getpid()`) are \
             `i32` as on Linux, and a `Process`'s is an `Option<i32>` (none until `start()`). \
             Convert with `i32::try_from(x)` or compare like with like."
    }

    // ---- the end of a cell (session.rs) ----
    /// The word in front of an interrupted cell's note.
    InterruptedLabel { es: "Interrumpida", en: "Interrupted" }
    /// An interrupted cell whose runner survived, after a panic.
    InterruptedKeptEarlier {
        es: "Celda interrumpida: se detuvieron los procesos que arrancó. Las variables de las \
             celdas anteriores se conservan (las nuevas de esta celda, no).",
        en: "Cell interrupted: the processes it started were stopped. Variables from earlier \
             cells are kept (this cell's new ones are not)."
    }
    /// An interrupted cell whose runner survived.
    InterruptedKept {
        es: "Celda interrumpida: se detuvieron los procesos que arrancó. Tus variables se \
             conservan.",
        en: "Cell interrupted: the processes it started were stopped. Your variables are kept."
    }
    /// The head of a restart's note, after an interrupt.
    CellInterrupted { es: "Celda interrumpida", en: "Cell interrupted" }
    /// The head of a restart's note, when the runner died.
    RunnerDied {
        es: "Murió el proceso que ejecutaba tu código ({why})",
        en: "The process running your code died ({why})"
    }
    /// A restarted runner.
    RunnerRestarted {
        es: "{head}: se detuvieron el proceso runner y todos los procesos que arrancó, y se \
             inició un runner nuevo; {lost}.",
        en: "{head}: the runner process and every process it started were stopped and a fresh \
             runner was started; {lost}."
    }
    /// No variable lost in a restart.
    NoVariablesLost {
        es: "no se perdió ninguna variable; las funciones y los tipos se conservan",
        en: "no variables were lost; functions and types were kept"
    }
    /// Variables lost in a restart.
    VariablesLost {
        es: "se perdieron estas variables: {vars} (volvé a ejecutar las celdas que las \
             definen); las funciones y los tipos se conservan",
        en: "these variables were lost: {vars} (re-run the cells that define them); functions \
             and types were kept"
    }
    /// `:fresh` done.
    FreshDone {
        es: "Runner nuevo (pid {old} → {new}): se descargaron sus {libs} bibliotecas de celdas y \
             se borraron {files} archivos ({mb} MB); {lost}.",
        en: "Fresh runner (pid {old} → {new}): its {libs} cell libraries were unloaded and {files} \
             files deleted ({mb} MB); {lost}."
    }
    /// The runner has loaded many cell libraries: suggest `:fresh`, once.
    FreshSuggested {
        es: "(nota: el proceso que ejecuta tu código ya cargó {libs} celdas y nunca las \
             descarga, así que ocupa cada vez más memoria y disco. `:fresh` (o `:refrescar`) \
             arranca uno nuevo: conserva funciones, tipos, `use` y `:dep`, y te dice qué \
             variables se pierden)",
        en: "(note: the process running your code has loaded {libs} cells and never unloads \
             them, so it uses more memory and disk each time. `:fresh` starts a new one: it \
             keeps functions, types, `use`s and `:dep`s, and tells you which variables are \
             lost)"
    }
    /// A panic without a message.
    CellPanicked { es: "la celda hizo panic", en: "the cell panicked" }
    /// After a panic.
    PanicNotKept {
        es: "Las variables que definió esta celda no se conservaron; las anteriores siguen \
             ahí.",
        en: "Variables defined by this cell were not kept; earlier ones are still there."
    }
    /// A cell whose code returned early through `?` with an `Err` (the
    /// error's own text is above it, on stderr).
    QuestionMarkError {
        es: "{cell}: la celda terminó en un `?` con el error de arriba",
        en: "{cell}: the cell stopped at a `?` with the error above"
    }
    /// A cell that did not compile, without rustc's message.
    DidNotCompile { es: "la celda no compiló", en: "the cell did not compile" }

    // ---- the session (session.rs, server.rs, build_cache) ----
    /// The session could not start.
    SessionCouldNotStart {
        es: "no se pudo iniciar la sesión de Rust: {why}",
        en: "the Rust session could not start: {why}"
    }
    /// The session stopped.
    SessionStopped { es: "la sesión de Rust se detuvo", en: "the Rust session stopped" }
    /// Under a cell sent while the session starts.
    StillStarting {
        es: "(la sesión de Rust todavía está arrancando; esta celda se ejecuta apenas esté \
             lista)",
        en: "(the Rust session is still starting; this cell runs as soon as it is ready)"
    }
    /// forja could not be added to the session.
    ForjaUnavailable {
        es: "forja-kernel: no se pudo agregar forja a esta sesión, así que `forja::` no está \
             disponible:\n{error}\n",
        en: "forja-kernel: forja could not be added to this session, so `forja::` is \
             unavailable:\n{error}\n"
    }
    /// Start-up: why the first cell is slow.
    SeedSlow {
        es: "así que esta sesión compila primero forja y sus dependencias (cerca de medio \
             minuto)",
        en: "so this session compiles forja and its dependencies first (about half a minute)"
    }
    /// Start-up: how to make it fast.
    SeedFix {
        es: "Ejecutá `forja-kernel prebuild` para que los kernels nuevos arranquen rápido.",
        en: "Run `forja-kernel prebuild` to make new kernels start fast."
    }
    /// Start-up: no prebuilt build.
    SeedMissing {
        es: "forja-kernel: no hay una compilación previa de forja en {dir}, {slow}. {fix}\n",
        en: "forja-kernel: there is no prebuilt forja build in {dir}, {slow}. {fix}\n"
    }
    /// Start-up: a prebuilt build for something else.
    SeedMismatch {
        es: "forja-kernel: la compilación previa de forja en {dir} no sirve para esta sesión \
             ({why}), {slow}. {fix}\n",
        en: "forja-kernel: the prebuilt forja build in {dir} does not fit this session ({why}), \
             {slow}. {fix}\n"
    }
    /// Start-up: a crate dir without parent.
    SeedNoParent {
        es: "forja-kernel: el directorio del crate no tiene padre, {slow}.\n",
        en: "forja-kernel: the crate dir has no parent, {slow}.\n"
    }
    /// Start-up: the prebuilt build could not be used.
    SeedUnusable {
        es: "forja-kernel: no se pudo usar la compilación previa de forja en {dir} ({why}), \
             {slow}. {fix}\n",
        en: "forja-kernel: could not use the prebuilt forja build in {dir} ({why}), {slow}. \
             {fix}\n"
    }
    /// Start-up: laying out the prebuilt build could not start.
    SeedLayoutNotStarted {
        es: "forja-kernel: no se pudo empezar a preparar la compilación previa ({why}), {slow}.\n",
        en: "forja-kernel: could not start laying out the prebuilt build ({why}), {slow}.\n"
    }

    // ---- output between cells (output.rs) ----
    /// Too much output between cells.
    BetweenCellsDropped {
        es: "[forja] entre celdas se imprimieron más de {kib} KiB; el resto se descartó\n",
        en: "[forja] more than {kib} KiB were printed between cells; the rest was dropped\n"
    }
    /// A child's line printed between cells.
    BetweenCellsOf {
        es: "[{process} pid {pid}, entre celdas] ",
        en: "[{process} pid {pid}, between cells] "
    }
    /// The runner's line printed between cells.
    BetweenCells { es: "[entre celdas] ", en: "[between cells] " }

    // ---- input (input.rs) ----
    /// `input()` with no cell running.
    InputNoCell {
        es: "no hay ninguna celda ejecutándose, así que no hay a quién preguntarle",
        en: "no cell is running, so there is nobody to ask"
    }
    /// `input()` with the stdin channel closed.
    InputStdinClosed {
        es: "el canal stdin del kernel está cerrado",
        en: "the kernel's stdin channel is closed"
    }
    /// `input()` without an answer.
    InputNoAnswer { es: "el frontend no dio ninguna respuesta", en: "the frontend gave no answer" }
    /// `input()` interrupted.
    InputInterrupted { es: "la celda fue interrumpida", en: "the cell was interrupted" }

    // ---- :procs and :kill (procs.rs) ----
    /// `:procs` with nothing alive.
    ProcsNone {
        es: "no queda vivo ningún proceso iniciado por las celdas",
        en: "no processes started by cells are alive"
    }
    /// `:procs` header.
    ProcsName { es: "nombre", en: "name" }
    /// `:procs` header.
    ProcsState { es: "estado", en: "state" }
    /// `:procs` header.
    ProcsCell { es: "celda", en: "cell" }
    /// A child that ended and was not joined.
    ProcsFinished {
        es: "terminó (código de salida {code}), sin join",
        en: "finished (exit code {code}), not joined"
    }
    /// A running child.
    ProcsRunning { es: "corriendo", en: "running" }
    /// A sleeping child.
    ProcsSleeping { es: "durmiendo", en: "sleeping" }
    /// A stopped child.
    ProcsStopped { es: "detenido", en: "stopped" }
    /// A zombie child.
    ProcsZombie { es: "zombi (terminó, sin join)", en: "zombie (finished, not joined)" }
    /// Another state letter.
    ProcsOtherState { es: "estado {state}", en: "state {state}" }
    /// A child gone.
    ProcsGone { es: "ya no está", en: "gone" }
    /// `:kill` with a bad argument.
    KillUsage { es: "uso: :kill PID|all (recibí `{arg}`)", en: "usage: :kill PID|all (got `{arg}`)" }
    /// `:kill` of a process the cells did not start.
    KillNotOurs {
        es: "el proceso {pid} no lo inició una celda de este kernel (mirá :procs)",
        en: "process {pid} was not started by a cell of this kernel (see :procs)"
    }
    /// `:kill all` with nothing to stop.
    KillNone { es: "no hay procesos para detener\n", en: "no processes to stop\n" }
    /// One process stopped by `:kill`.
    KillStopped { es: "detenido: {name} (pid {pid})\n", en: "stopped {name} (pid {pid})\n" }

    // ---- :waits (waits.rs) ----
    /// `:waits` with nothing waiting and no stuck graph seen.
    WaitsNothing {
        es: "ningún proceso espera ahora, y ninguna celda quedó trabada",
        en: "no process is waiting now, and no cell got stuck"
    }
    /// Above the last stuck graph, shown by `:waits` between cells.
    WaitsLast {
        es: "ahora nadie espera; así estaba la última celda que quedó trabada:",
        en: "nobody is waiting now; this is how the last stuck cell was:"
    }
    /// Above the graph the watcher shows by itself.
    WaitsStuck {
        es: "los procesos de esta celda están trabados hace {secs} s, esperándose entre \
             ellos (:waits auto off para no ver esto; interrumpí la celda para seguir):",
        en: "this cell's processes have been stuck for {secs} s, waiting for each other \
             (:waits auto off to not see this; interrupt the cell to go on):"
    }
    /// Why the watcher interrupted a cell.
    WaitsStopped {
        es: "forja detuvo la celda: sus procesos estuvieron trabados {secs} s sin avanzar \
             (:waits stop-after). Tus variables de celdas anteriores siguen ahí.\n",
        en: "forja stopped the cell: its processes were stuck for {secs} s without progress \
             (:waits stop-after). Your variables from earlier cells are kept.\n"
    }
    /// `:waits auto off`.
    WaitsAutoOff {
        es: "el grafo de espera ya no se muestra solo",
        en: "the wait graph is no longer shown by itself"
    }
    /// `:waits auto 3s`.
    WaitsAutoOn {
        es: "el grafo de espera se muestra solo cuando los procesos de una celda quedan \
             trabados {secs} s",
        en: "the wait graph is shown by itself once a cell's processes stay stuck for {secs} s"
    }
    /// `:waits stop-after off`.
    WaitsStopOff {
        es: "una celda trabada ya no se detiene sola",
        en: "a stuck cell is no longer stopped by itself"
    }
    /// `:waits stop-after 5s`.
    WaitsStopOn {
        es: "una celda cuyos procesos quedan trabados {secs} s se detiene sola (se conservan \
             las variables)",
        en: "a cell whose processes stay stuck for {secs} s is stopped (variables are kept)"
    }
    /// A `:waits` it does not understand.
    WaitsUsage {
        es: "`:waits {arg}`: escribí `:waits`, `:waits auto 3s|off` o `:waits stop-after 5s|off` \
             (entre 0 y 3600 segundos)",
        en: "`:waits {arg}`: write `:waits`, `:waits auto 3s|off` or `:waits stop-after 5s|off` \
             (between 0 and 3600 seconds)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use forja::lang::placeholders;

    #[test]
    fn every_entry_has_both_languages() {
        for m in Msg::ALL {
            let (es, en) = m.both();
            assert!(
                !es.trim().is_empty() && !en.trim().is_empty(),
                "{m:?} is empty"
            );
            assert_eq!(
                es == en,
                m.same_on_purpose(),
                "{m:?}: Spanish and English must differ unless marked `same`"
            );
            assert_eq!(
                placeholders(es),
                placeholders(en),
                "{m:?}: placeholders differ"
            );
        }
    }

    #[test]
    fn the_tests_read_english() {
        assert_eq!(lang(), Lang::En);
        assert_eq!(Msg::HintWord.get(), "hint");
        assert_eq!(Msg::HintWord.text(Lang::Es), "pista");
    }
}
