//! The `:procs` and `:kill PID|all` commands: processes that outlive their
//! cell on purpose (started, not joined), listed and stopped.

use crate::state::SessionState;
use forja::registry::ChildRecord;
use serde_json::{Map, Value};

/// What `:procs` says of a child's state: `running`, `sleeping`,
/// `zombie (finished, not joined)`, ...
fn state_of(child: &ChildRecord) -> String {
    let pid = child.process.pid();
    if let Some(code) = child.exitcode {
        return format!("finished (exit code {code}), not joined");
    }
    match forja::os::proc_stat(pid).map(|p| p.state) {
        Some('R') => "running".into(),
        Some('S') | Some('D') => "sleeping".into(),
        Some('T') | Some('t') => "stopped".into(),
        Some('Z') => "zombie (finished, not joined)".into(),
        Some(c) => format!("state {c}"),
        None => "gone".into(),
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
    let mut html = String::from(
        "<table><thead><tr><th>pid</th><th>name</th><th>state</th><th>cell</th></tr></thead><tbody>",
    );
    if rows.is_empty() {
        text.push_str("no processes started by cells are alive\n");
        html.push_str("<tr><td colspan=\"4\">no processes started by cells are alive</td></tr>");
    } else {
        text.push_str(&format!(
            "{:>8}  {:<20} {:<32} cell\n",
            "pid", "name", "state"
        ));
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
                .map_err(|_| format!("usage: :kill PID|all (got `{pid}`)"))?;
            let t: Vec<&ChildRecord> = rows.iter().filter(|r| r.process.pid() == pid).collect();
            if t.is_empty() {
                return Err(format!(
                    "process {pid} was not started by a cell of this kernel (see :procs)"
                ));
            }
            t
        }
    };
    if targets.is_empty() {
        return Ok("no processes to stop\n".into());
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
        // SAFETY: plain kill syscall.
        unsafe { libc::kill(p, libc::SIGTERM) };
    }
    std::thread::sleep(crate::interrupt::GRACE);
    for &p in &pids {
        // SAFETY: plain kill syscall.
        unsafe { libc::kill(p, libc::SIGKILL) };
    }
    Ok(targets
        .iter()
        .map(|r| format!("stopped {} (pid {})\n", r.process.name(), r.process.pid()))
        .collect())
}
