//! Drawing a [`WaitGraph`]: processes on a circle, an arrow from each waiter
//! to the holder of what it waits for, labelled with the primitive's name
//! and how long; the deadlock's arrows in red and its sentence below.

use super::graph::{WaitGraph, WaitStep};
use super::names::Kind;
use super::text;
use crate::rich::protocol::xml_escape;
use std::fmt::Write as _;

/// At most this many processes and waits are drawn (the rest are counted),
/// so the picture stays small whatever the tree.
pub(crate) const MAX_NODES: usize = 200;
pub(crate) const MAX_EDGES: usize = 600;
/// Sentences longer than this are cut.
const MAX_SENTENCE: usize = 400;
/// At most this many steps of a deadlock are said in words.
const MAX_LINES: usize = 12;

fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn in_cycle(g: &WaitGraph, e: &WaitStep) -> bool {
    g.cycle
        .as_ref()
        .is_some_and(|c| c.iter().any(|s| s.tid == e.tid && s.pid == e.pid))
}

impl WaitGraph {
    /// The graph as an SVG document: one `<g class="proc" data-pid="..">`
    /// per process, one `<g class="wait">` per wait (`class="wait cycle"`,
    /// in red, for the waits of a deadlock) and the deadlock in words.
    ///
    /// ```
    /// let svg = forja::waits().svg();
    /// assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    /// ```
    pub fn svg(&self) -> String {
        let nodes: Vec<_> = self.processes.iter().take(MAX_NODES).collect();
        let n = nodes.len().max(1) as f64;
        let r = (60.0 + 22.0 * n).min(420.0);
        let (cx, cy) = (r + 160.0, r + 60.0);
        let w = 2.0 * r + 320.0;
        let steps_shown = self.cycle.as_ref().map_or(0, |c| c.len().min(MAX_LINES));
        let sentence_lines = if self.cycle.is_some() {
            steps_shown as f64 + 2.0
        } else {
            0.0
        };
        let h = 2.0 * r + 110.0 + 18.0 * sentence_lines;
        let pos = |pid: i32| -> Option<(f64, f64)> {
            let i = nodes.iter().position(|p| p.pid == pid)?;
            let a = std::f64::consts::TAU * i as f64 / n - std::f64::consts::FRAC_PI_2;
            Some((cx + r * a.cos(), cy + r * a.sin()))
        };
        let mut s = String::new();
        let _ = write!(
            s,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w:.0}\" height=\"{h:.0}\" \
             font-family=\"sans-serif\" font-size=\"12\">\
             <defs><marker id=\"a\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" \
             markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0L10,5L0,10z\" \
             fill=\"context-stroke\"/></marker></defs>\
             <text x=\"10\" y=\"20\" font-size=\"14\" font-weight=\"bold\">{}</text>",
            xml_escape(&text::title(self.edges.len()))
        );
        if self.edges.is_empty() {
            let _ = write!(
                s,
                "<text x=\"10\" y=\"40\">{}</text>",
                xml_escape(text::nobody_waits())
            );
        }
        for e in self.edges.iter().take(MAX_EDGES) {
            let Some((x1, y1)) = pos(e.pid) else { continue };
            let red = in_cycle(self, e);
            let colour = if red { "#d32f2f" } else { "#555" };
            let class = if red { "wait cycle" } else { "wait" };
            let label = if e.kind == Kind::Process {
                format!("join {:.1} s", e.waited.as_secs_f64())
            } else {
                format!("{} {:.1} s", e.what, e.waited.as_secs_f64())
            };
            let (x2, y2) = match e.held_by.and_then(pos) {
                Some(p) => p,
                // Nobody in particular holds it: a short arrow outwards.
                None => (x1 + (x1 - cx) * 0.25 + 1.0, y1 + (y1 - cy) * 0.25 + 18.0),
            };
            // Stop the arrow at the node's edge.
            let (dx, dy) = (x2 - x1, y2 - y1);
            let len = (dx * dx + dy * dy).sqrt().max(1.0);
            let (ex, ey) = if e.held_by.is_some() {
                (x2 - dx / len * 24.0, y2 - dy / len * 24.0)
            } else {
                (x2, y2)
            };
            let _ = write!(
                s,
                "<g class=\"{class}\" data-pid=\"{}\" data-held-by=\"{}\">\
                 <line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{ex:.1}\" y2=\"{ey:.1}\" \
                 stroke=\"{colour}\" stroke-width=\"{}\" marker-end=\"url(#a)\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" fill=\"{colour}\" text-anchor=\"middle\">{}</text></g>",
                e.pid,
                e.held_by.unwrap_or(0),
                if red { 2.5 } else { 1.5 },
                (x1 + ex) / 2.0,
                (y1 + ey) / 2.0 - 4.0,
                xml_escape(&label)
            );
        }
        for p in &nodes {
            let Some((x, y)) = pos(p.pid) else { continue };
            let red = self
                .cycle
                .as_ref()
                .is_some_and(|c| c.iter().any(|st| st.pid == p.pid));
            let fill = if red {
                "#ffcdd2"
            } else if p.waiting {
                "#fff3e0"
            } else {
                "#e8f5e9"
            };
            let label = if p.name.is_empty() {
                p.pid.to_string()
            } else {
                format!("{} ({})", p.name, p.pid)
            };
            let _ = write!(
                s,
                "<g class=\"proc\" data-pid=\"{}\"><circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"22\" \
                 fill=\"{fill}\" stroke=\"#333\"/><text x=\"{x:.1}\" y=\"{:.1}\" \
                 text-anchor=\"middle\">{}</text></g>",
                p.pid,
                y + 36.0,
                xml_escape(&label)
            );
        }
        let hidden = self.processes.len().saturating_sub(MAX_NODES)
            + self.edges.len().saturating_sub(MAX_EDGES);
        let mut y = h - 12.0 - 18.0 * sentence_lines;
        if hidden > 0 {
            let _ = write!(s, "<text x=\"10\" y=\"{y:.0}\">(+{hidden} …)</text>");
        }
        if let Some(c) = &self.cycle {
            // The heading, then one line per step (a long cycle is cut).
            y += 18.0;
            let _ = write!(
                s,
                "<text class=\"sentence\" x=\"10\" y=\"{y:.0}\" fill=\"#d32f2f\">{}</text>",
                xml_escape(text::cycle_heading())
            );
            for step in c.iter().take(MAX_LINES) {
                y += 18.0;
                let _ = write!(
                    s,
                    "<text class=\"sentence\" x=\"20\" y=\"{y:.0}\" fill=\"#d32f2f\">{}</text>",
                    xml_escape(&cut(&step.sentence(), MAX_SENTENCE))
                );
            }
            if c.len() > MAX_LINES {
                let _ = write!(s, "<text x=\"20\" y=\"{:.0}\">…</text>", y + 18.0);
            }
        }
        s.push_str("</svg>\n");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::super::graph::ProcNode;
    use super::*;
    use std::time::Duration;

    fn step(pid: i32, held_by: Option<i32>) -> WaitStep {
        WaitStep {
            pid,
            tid: pid,
            process: format!("p<{pid}>"),
            what: "<script>alert(1)</script> & \"x\"".repeat(3),
            kind: Kind::Lock,
            held_by,
            holder: String::new(),
            waited: Duration::from_millis(1500),
            timed: false,
        }
    }

    #[test]
    fn a_huge_graph_stays_small_and_escaped() {
        let n = 10_000;
        let g = WaitGraph {
            processes: (0..n)
                .map(|pid| ProcNode {
                    pid,
                    name: "<b>".repeat(20),
                    waiting: true,
                })
                .collect(),
            edges: (0..n).map(|p| step(p, Some((p + 1) % n))).collect(),
            cycle: Some((0..n).map(|p| step(p, Some((p + 1) % n))).collect()),
            quiescent: false,
        };
        let svg = g.svg();
        assert!(svg.len() <= 1 << 20, "{} bytes", svg.len());
        let elements = svg.matches('<').count() - svg.matches("</").count();
        assert!(elements <= 5000, "{elements} elements");
        assert!(!svg.contains("<script>") && !svg.contains("<b>"));
        assert!(svg.contains("&lt;script&gt;"));
        assert!(svg.trim_end().ends_with("</svg>"));
    }

    #[test]
    fn an_empty_graph_says_nobody_waits() {
        let svg = WaitGraph::default().svg();
        assert!(svg.contains(text::nobody_waits()));
    }
}
