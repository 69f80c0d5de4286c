//! Drawing a [`Timeline`] as an SVG Gantt chart.

use super::model::{Timeline, exit_label, fmt_ms};
use crate::rich::protocol::xml_escape;
use std::fmt::Write as _;

impl Timeline {
    /// The Gantt chart as an SVG document: one `<g class="lane"
    /// data-pid=".." data-name="..">` per process, a bar from its start to its
    /// end coloured by how it ended (green: exit 0, red: other exit code,
    /// orange: killed by a signal, blue: still running), the exit code after
    /// the bar, pool tasks as segments inside their worker's lane, and a time
    /// axis in ms.
    ///
    /// ```
    /// let svg = forja::timeline().svg();
    /// assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    /// ```
    pub fn svg(&self) -> String {
        render_svg(self)
    }
}

fn status_colour(code: Option<i32>, ended: bool) -> &'static str {
    match code {
        Some(0) => "#43a047",
        Some(c) if c > 0 => "#e53935",
        Some(_) => "#fb8c00",
        None if ended => "#9e9e9e",
        None => "#1e88e5",
    }
}

const JOB_COLOURS: [&str; 6] = [
    "#3949ab", "#00897b", "#8e24aa", "#6d4c41", "#c0ca33", "#d81b60",
];

fn nice_step(span: f64, ticks: f64) -> f64 {
    let raw = (span / ticks).max(1e-6);
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let step = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    step * mag
}

fn render_svg(t: &Timeline) -> String {
    const LABEL_W: f64 = 210.0;
    const PLOT_W: f64 = 600.0;
    const RIGHT_W: f64 = 80.0;
    const TOP: f64 = 34.0;
    const LANE_H: f64 = 26.0;
    const AXIS_H: f64 = 30.0;
    let width = LABEL_W + PLOT_W + RIGHT_W;
    let n = t.lanes.len().max(1);
    let height = TOP + LANE_H * n as f64 + AXIS_H;
    let span = if t.span_ms > 0.0 { t.span_ms } else { 1.0 };
    let x = |ms: f64| LABEL_W + (ms.clamp(0.0, span) / span) * PLOT_W;
    let mut s = String::with_capacity(4096 + 400 * t.lanes.len());
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"forja-timeline\" width=\"{width}\" \
         height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"monospace\" \
         font-size=\"12\">"
    );
    let _ = writeln!(
        s,
        "<rect x=\"0\" y=\"0\" width=\"{width}\" height=\"{height}\" fill=\"#ffffff\"/>"
    );
    let _ = writeln!(
        s,
        "<text class=\"title\" x=\"8\" y=\"20\" font-size=\"13\" font-weight=\"bold\">{}</text>",
        xml_escape(&t.title())
    );
    // Grid and axis.
    let axis_y = TOP + LANE_H * n as f64;
    let step = nice_step(span, 8.0);
    let _ = writeln!(s, "<g class=\"axis\">");
    let mut tick = 0.0;
    while tick <= span + step * 1e-9 {
        let tx = x(tick);
        let _ = writeln!(
            s,
            "<line x1=\"{tx:.1}\" y1=\"{TOP}\" x2=\"{tx:.1}\" y2=\"{:.1}\" stroke=\"#e0e0e0\"/>\
             <text x=\"{tx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#555\">{}</text>",
            axis_y + 4.0,
            axis_y + 17.0,
            fmt_tick(tick, step)
        );
        tick += step;
    }
    let _ = writeln!(
        s,
        "<line x1=\"{LABEL_W}\" y1=\"{axis_y}\" x2=\"{:.1}\" y2=\"{axis_y}\" stroke=\"#757575\"/>\
         <text x=\"{:.1}\" y=\"{:.1}\" fill=\"#555\">ms</text>",
        LABEL_W + PLOT_W,
        LABEL_W + PLOT_W + 8.0,
        axis_y + 17.0
    );
    let _ = writeln!(s, "</g>");
    if t.lanes.is_empty() {
        let _ = writeln!(
            s,
            "<text x=\"{LABEL_W}\" y=\"{:.1}\" fill=\"#757575\">{}</text>",
            TOP + 17.0,
            crate::messages::Msg::TimelineEmpty.get()
        );
    }
    for (i, lane) in t.lanes.iter().enumerate() {
        let y = TOP + LANE_H * i as f64;
        let ended = lane.end_ms.is_some();
        let colour = status_colour(lane.exitcode, ended);
        let label = exit_label(lane.exitcode, ended);
        let end_ms = lane.end_ms.unwrap_or(span);
        let (x0, x1) = (x(lane.start_ms), x(end_ms).max(x(lane.start_ms) + 1.0));
        let _ = writeln!(
            s,
            "<g class=\"lane\" data-pid=\"{}\" data-name=\"{}\" data-exitcode=\"{}\">",
            lane.pid,
            xml_escape(&lane.name),
            lane.exitcode.map(|c| c.to_string()).unwrap_or_default()
        );
        if i % 2 == 1 {
            let _ = writeln!(
                s,
                "<rect x=\"0\" y=\"{y}\" width=\"{width}\" height=\"{LANE_H}\" fill=\"#f7f7f7\"/>"
            );
        }
        let mut name = lane.name.clone();
        if name.chars().count() > 20 {
            name = name.chars().take(19).collect::<String>() + "…";
        }
        let _ = writeln!(
            s,
            "<text class=\"label\" x=\"8\" y=\"{:.1}\">{} <tspan fill=\"#757575\">({})</tspan></text>",
            y + 17.0,
            xml_escape(&name),
            lane.pid
        );
        let worker = lane.is_pool_worker();
        let (fill, opacity) = if worker {
            ("#cfd8dc", "1")
        } else {
            (colour, "0.85")
        };
        let _ = writeln!(
            s,
            "<rect class=\"bar\" x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" \
             rx=\"3\" fill=\"{fill}\" fill-opacity=\"{opacity}\" stroke=\"{colour}\">\
             <title>{} (pid {}): {}–{} ms, {}</title></rect>",
            y + 5.0,
            x1 - x0,
            LANE_H - 10.0,
            xml_escape(&lane.name),
            lane.pid,
            fmt_ms(lane.start_ms, span),
            lane.end_ms.map(|e| fmt_ms(e, span)).unwrap_or("…".into()),
            label
        );
        if lane.start_ms < 0.0 {
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#757575\" font-size=\"10\">◀</text>",
                x0 + 2.0,
                y + 17.0
            );
        }
        // Tasks: tasks narrower than 2 px that follow each other are merged
        // into one segment, so that a long map stays a light picture.
        let tiny = 2.0 * span / PLOT_W;
        let mut merged: Vec<(f64, f64, u64, usize)> = Vec::new();
        for task in &lane.tasks {
            let a = task.start_ms;
            let b = task.end_ms.unwrap_or(end_ms);
            if let Some(last) = merged.last_mut()
                && last.2 == task.job
                && last.1 - last.0 < tiny
                && b - a < tiny
                && a - last.1 < tiny / 4.0
            {
                last.1 = last.1.max(b);
                last.3 += 1;
                continue;
            }
            merged.push((a, b, task.job, 1));
        }
        for (a, b, job, count) in merged {
            let (tx0, tx1) = (x(a), x(b).max(x(a) + 1.0));
            let what = if count == 1 {
                crate::messages::Msg::TimelineTask.get().to_owned()
            } else {
                crate::messages::Msg::TimelineTasksMerged.fill(&[("count", &count)])
            };
            let _ = writeln!(
                s,
                "<rect class=\"task\" x=\"{tx0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" \
                 fill=\"{}\" stroke=\"#ffffff\" stroke-width=\"0.75\"><title>{}: {}–{} ms</title></rect>",
                y + 8.0,
                tx1 - tx0,
                LANE_H - 16.0,
                JOB_COLOURS[(job as usize) % JOB_COLOURS.len()],
                crate::messages::Msg::TimelineTaskTitle.fill(&[("what", &what), ("job", &job)]),
                fmt_ms(a, span),
                fmt_ms(b, span)
            );
        }
        let _ = writeln!(
            s,
            "<text class=\"exit\" x=\"{:.1}\" y=\"{:.1}\" fill=\"{colour}\" font-weight=\"bold\">{}</text>",
            x1 + 4.0,
            y + 17.0,
            xml_escape(&label)
        );
        let _ = writeln!(s, "</g>");
    }
    s.push_str("</svg>\n");
    s
}

fn fmt_tick(tick: f64, step: f64) -> String {
    if step >= 1.0 {
        format!("{tick:.0}")
    } else if step >= 0.1 {
        format!("{tick:.1}")
    } else {
        format!("{tick:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps() {
        assert_eq!(nice_step(100.0, 10.0), 10.0);
        assert_eq!(nice_step(13.0, 8.0), 2.0);
    }
}
