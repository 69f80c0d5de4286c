//! The `:procs` and `:kill PID|all` commands: processes that outlive their
//! cell on purpose (started, not joined), listed and stopped.

use crate::state::SessionState;
use forja::registry::ChildRecord;
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use serde_json::{Map, Value};

/// What `:procs` says of a child's state: `running`, `sleeping`,
/// `zombie (finished, not joined)`, ...
fn state_of(child: &ChildRecord) -> String {
    let pid = child.process.pid();
    if let Some(code) = child.exitcode {
        return crate::messages::Msg::ProcsFinished.fill(&[("code", &code)]);
    }
    match forja::os::proc_stat(pid).map(|p| p.state) {
        Some('R') => crate::messages::Msg::ProcsRunning.get().into(),
        Some('S') | Some('D') => crate::messages::Msg::ProcsSleeping.get().into(),
        Some('T') | Some('t') => crate::messages::Msg::ProcsStopped.get().into(),
        Some('Z') => crate::messages::Msg::ProcsZombie.get().into(),
        Some(c) => crate::messages::Msg::ProcsOtherState.fill(&[("state", &c)]),
        None => crate::messages::Msg::ProcsGone.get().into(),
    }
}

/// The runner's children not yet reaped: one row of `:procs` each.
pub fn rows(shared: &SessionState) -> Vec<ChildRecord> {
    let Some(r) = crate::interrupt::remote(shared) else {
        return Vec::new();
    };
    r.children()
        .into_iter()
        .filter(|c| c.state != forja::registry::ChildState::Reaped)
        .collect()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `:procs` output as a MIME bundle.
pub fn list(shared: &SessionState) -> Map<String, Value> {
    let rows = rows(shared);
    let mut text = String::new();
    let (name, state, cell) = (
        crate::messages::Msg::ProcsName.get(),
        crate::messages::Msg::ProcsState.get(),
        crate::messages::Msg::ProcsCell.get(),
    );
    let mut html = format!(
        "<table><thead><tr><th>pid</th><th>{name}</th><th>{state}</th><th>{cell}</th></tr></thead><tbody>",
    );
    if rows.is_empty() {
        let none = crate::messages::Msg::ProcsNone.get();
        text.push_str(&format!("{none}\n"));
        html.push_str(&format!("<tr><td colspan=\"4\">{none}</td></tr>"));
    } else {
        text.push_str(&format!("{:>8}  {name:<20} {state:<32} {cell}\n", "pid"));
    }
    for r in &rows {
        let state = state_of(r);
        text.push_str(&format!(
            "{:>8}  {:<20} {:<32} [{}]\n",
            r.process.pid(),
            r.process.name(),
            state,
            r.cell
        ));
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>[{}]</td></tr>",
            r.process.pid(),
            escape(r.process.name()),
            escape(&state),
            r.cell
        ));
    }
    html.push_str("</tbody></table>");
    let mut m = Map::new();
    m.insert("text/plain".into(), Value::String(text));
    m.insert("text/html".into(), Value::String(html));
    m
}

/// `:kill PID|all`: SIGTERM, then SIGKILL after a grace period, to processes
/// started by cells (and their descendants). Returns what was done.
pub fn kill(shared: &SessionState, arg: &str) -> Result<String, String> {
    let rows = rows(shared);
    let targets: Vec<&ChildRecord> = match arg.trim() {
        "all" => rows.iter().collect(),
        pid => {
            let pid: i32 = pid
                .parse()
                .map_err(|_| crate::messages::Msg::KillUsage.fill(&[("arg", &pid)]))?;
            let t: Vec<&ChildRecord> = rows.iter().filter(|r| r.process.pid() == pid).collect();
            if t.is_empty() {
                return Err(crate::messages::Msg::KillNotOurs.fill(&[("pid", &pid)]));
            }
            t
        }
    };
    if targets.is_empty() {
        return Ok(crate::messages::Msg::KillNone.get().into());
    }
    let mut pids: Vec<i32> = Vec::new();
    for r in &targets {
        pids.push(r.process.pid());
        pids.extend(
            crate::reaper::descendants(r.process.pid())
                .into_iter()
                .map(|d| d.pid),
        );
    }
    for &p in &pids {
        let _ = signal::kill(Pid::from_raw(p), Signal::SIGTERM);
    }
    std::thread::sleep(crate::interrupt::GRACE);
    for &p in &pids {
        let _ = signal::kill(Pid::from_raw(p), Signal::SIGKILL);
    }
    Ok(targets
        .iter()
        .map(|r| {
            crate::messages::Msg::KillStopped
                .fill(&[("name", &r.process.name()), ("pid", &r.process.pid())])
        })
        .collect())
}
