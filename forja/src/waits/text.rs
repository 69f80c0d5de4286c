//! Every word about waits and deadlocks that a student reads, in Spanish
//! (rioplatense) and English, chosen by [`crate::lang`]. Kept in one place
//! so a catalogue of messages can take them over.

use crate::lang::pick;

/// How a process is called in sentences: its name and pid.
pub(crate) fn process(name: &str, pid: i32) -> String {
    if name.is_empty() {
        format!("{} {pid}", pick("el proceso", "process"))
    } else {
        format!("{name} ({pid})")
    }
}

/// "P1 espera `tenedor 2` que tiene P2".
pub(crate) fn waits_held(who: &str, what: &str, holder: &str) -> String {
    if crate::lang::spanish() {
        format!("{who} espera `{what}` que tiene {holder}")
    } else {
        format!("{who} waits for `{what}` held by {holder}")
    }
}

/// "P1 espera `cola`" (nobody in particular holds it).
pub(crate) fn waits_for(who: &str, what: &str) -> String {
    if crate::lang::spanish() {
        format!("{who} espera `{what}`")
    } else {
        format!("{who} waits for `{what}`")
    }
}

/// "P1 espera que termine P2" (a join).
pub(crate) fn waits_join(who: &str, child: &str) -> String {
    if crate::lang::spanish() {
        format!("{who} espera que termine {child}")
    } else {
        format!("{who} waits for {child} to end")
    }
}

/// The text of [`Error::Deadlock`](crate::Error::Deadlock).
pub(crate) fn deadlock(pid: i32, cycle: &str, quiescent: bool) -> String {
    match (crate::lang::spanish(), quiescent) {
        (true, false) => format!(
            "interbloqueo (deadlock), visto en el proceso {pid}: {cycle}. Ninguno puede seguir. \
             Tomá los locks en el mismo orden en todos los procesos (o usá acquire_timeout); \
             forja::waits() muestra el grafo"
        ),
        (true, true) => format!(
            "interbloqueo (deadlock), visto en el proceso {pid}: todos los procesos del árbol \
             esperan algo que sólo otro de ellos puede dar: {cycle}. Revisá quién debía \
             enviar, poner o avisar; forja::waits() muestra el grafo"
        ),
        (false, false) => format!(
            "deadlock, seen in process {pid}: {cycle}. None of them can go on. Take the locks \
             in the same order in every process (or use acquire_timeout); forja::waits() \
             draws the graph"
        ),
        (false, true) => format!(
            "deadlock, seen in process {pid}: every process of the tree waits for something \
             only another of them can give: {cycle}. Check who was meant to send, put or \
             signal; forja::waits() draws the graph"
        ),
    }
}

/// The title of the graph.
pub(crate) fn title(waiting: usize) -> String {
    if crate::lang::spanish() {
        format!("Quién espera a quién ({waiting} esperas)")
    } else {
        format!("Who waits for whom ({waiting} waits)")
    }
}

/// Said when nothing waits.
pub(crate) fn nobody_waits() -> &'static str {
    pick("Ningún proceso espera.", "No process is waiting.")
}

/// Said above a cycle.
pub(crate) fn cycle_heading() -> &'static str {
    pick("Interbloqueo:", "Deadlock:")
}
