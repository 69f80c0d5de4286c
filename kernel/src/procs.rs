//! The `:procs` and `:kill PID|all` commands: processes that outlive their
//! cell on purpose (started, not joined), listed and stopped.

use crate::state::SessionState;
use serde_json::{Map, Value};

/// A row of `:procs`.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Pid.
    pub pid: i32,
    /// forja name.
    pub name: String,
    /// `running`, `sleeping`, `zombie (not joined)`, ...
    pub state: String,
    /// The cell (execution count) that started it.
    pub cell: u64,
}

fn state_of(pid: i32, exitcode: Option<i32>) -> String {
    if let Some(code) = exitcode {
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

/// The runner's live children.
pub fn rows(shared: &SessionState) -> Vec<Row> {
    let Some(r) = crate::interrupt::remote(shared) else {
        return Vec::new();
    };
    r.children()
        .into_iter()
        .filter(|c| c.state != forja::registry::ChildState::Reaped)
        .map(|c| Row {
            state: state_of(c.pid, c.exitcode),
            pid: c.pid,
            name: c.name,
            cell: c.cell,
        })
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
        text.push_str(&format!(
            "{:>8}  {:<20} {:<32} [{}]\n",
            r.pid, r.name, r.state, r.cell
        ));
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>[{}]</td></tr>",
            r.pid,
            escape(&r.name),
            escape(&r.state),
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
    let targets: Vec<&Row> = match arg.trim() {
        "all" => rows.iter().collect(),
        pid => {
            let pid: i32 = pid
                .parse()
                .map_err(|_| format!("usage: :kill PID|all (got `{pid}`)"))?;
            let t: Vec<&Row> = rows.iter().filter(|r| r.pid == pid).collect();
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
        pids.push(r.pid);
        pids.extend(crate::reaper::descendants(r.pid).into_iter().map(|d| d.pid));
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
        .map(|r| format!("stopped {} (pid {})\n", r.name, r.pid))
        .collect())
}
