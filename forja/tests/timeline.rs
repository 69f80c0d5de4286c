//! The timeline of what ran, and the rich displays, with real processes.
//! Run with `cargo nextest run -p forja` (each test in its own process).

use forja::prelude::*;
use forja::timeline::{self, Lane};
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::time::{Duration, Instant};

fn lane<'a>(t: &'a Timeline, name: &str) -> &'a Lane {
    t.lanes()
        .iter()
        .find(|l| l.name == name)
        .unwrap_or_else(|| panic!("no lane named {name} in\n{t}"))
}

fn overlaps(a: &Lane, b: &Lane) -> bool {
    let (a0, a1) = (a.start_ms, a.end_ms.expect("ended"));
    let (b0, b1) = (b.start_ms, b.end_ms.expect("ended"));
    a0 < b1 && b0 < a1
}

fn sequential_processes_do_not_overlap() {
    timeline::reset().unwrap();
    for i in 0..3 {
        let p = Process::new(|| std::thread::sleep(Duration::from_millis(30)))
            .with_name(format!("seq-{i}"));
        p.start().unwrap();
        p.join().unwrap();
    }
    let t = forja::timeline();
    assert_eq!(t.lanes().len(), 3, "{t}");
    let lanes: Vec<&Lane> = (0..3).map(|i| lane(&t, &format!("seq-{i}"))).collect();
    for l in &lanes {
        assert_eq!(l.exitcode, Some(0));
        let end = l.end_ms.expect("joined, so ended");
        assert!(end >= l.start_ms);
        assert!(l.tasks.is_empty());
        assert_eq!(l.parent_pid, std::process::id() as i32);
    }
    for w in lanes.windows(2) {
        assert!(!overlaps(w[0], w[1]), "{t}");
        assert!(w[0].end_ms.unwrap() <= w[1].start_ms, "{t}");
    }
    assert_eq!(t.max_parallel_processes(), 1);
}

fn parallel_processes_overlap() {
    timeline::reset().unwrap();
    let n = 3usize;
    // Nobody passes the barrier before all have started: their lives overlap.
    let barrier = Barrier::new(n as u32).unwrap();
    let procs: Vec<Process> = (0..n)
        .map(|i| {
            let b = barrier.clone();
            Process::new(move || {
                b.wait().unwrap();
            })
            .with_name(format!("par-{i}"))
        })
        .collect();
    for p in &procs {
        p.start().unwrap();
    }
    for p in &procs {
        p.join().unwrap();
        assert_eq!(p.exitcode(), Some(0));
    }
    let t = forja::timeline();
    assert_eq!(t.lanes().len(), n, "{t}");
    for i in 0..n {
        for j in i + 1..n {
            assert!(
                overlaps(lane(&t, &format!("par-{i}")), lane(&t, &format!("par-{j}"))),
                "{t}"
            );
        }
    }
    assert_eq!(t.max_parallel_processes(), n);
}

fn exit_codes_and_signals_are_recorded() {
    timeline::reset().unwrap();
    let forever = || loop {
        std::thread::sleep(Duration::from_millis(50))
    };
    let ok = Process::new(|| {}).with_name("ok");
    let three = Process::new(|| forja::exit(3)).with_name("three");
    let panics = Process::new(|| panic!("on purpose")).with_name("panics");
    let killed = Process::new(forever).with_name("killed");
    let termed = Process::new(forever).with_name("termed");
    let all = [&ok, &three, &panics, &killed, &termed];
    for p in all {
        p.start().unwrap();
    }
    killed.kill().unwrap();
    termed.terminate().unwrap();
    for p in all {
        p.join().unwrap();
    }
    let t = forja::timeline();
    let want = [
        ("ok", 0),
        ("three", 3),
        ("panics", 1),
        ("killed", -9),
        ("termed", -15),
    ];
    for (name, code) in want {
        let l = lane(&t, name);
        assert_eq!(l.exitcode, Some(code), "{name}: {t}");
        assert!(l.end_ms.is_some());
    }
    let svg = t.svg();
    assert!(
        svg.contains(">SIGKILL<") && svg.contains(">exit 3<"),
        "{svg}"
    );
    let text = t.to_string();
    assert!(
        text.contains("SIGTERM") && text.contains("exit 1"),
        "{text}"
    );
}

fn the_end_is_when_the_child_ended_not_when_it_was_joined() {
    timeline::reset().unwrap();
    let p = Process::new(|| {}).with_name("quick");
    p.start().unwrap();
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    p.join().unwrap();
    assert!(started.elapsed() >= Duration::from_millis(1500));
    let t = forja::timeline();
    let l = lane(&t, "quick");
    let lived = l.end_ms.unwrap() - l.start_ms;
    assert!(
        lived < 1000.0,
        "joined after 1.5 s, but the child ended at once: {t}"
    );
    // A running child has no end yet.
    let r = Process::new(|| std::thread::sleep(Duration::from_secs(30))).with_name("running");
    r.start().unwrap();
    let t = forja::timeline();
    assert_eq!(lane(&t, "running").end_ms, None);
    assert_eq!(lane(&t, "running").exitcode, None);
    assert!(t.svg().contains(">running<"));
    r.kill().unwrap();
    r.join().unwrap();
}

fn busy(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

fn pool_tasks_are_recorded_per_worker() {
    timeline::reset().unwrap();
    let pool = Pool::new(2).unwrap();
    let workers: HashSet<i32> = pool.worker_pids().into_iter().collect();
    let out = pool.chunksize(1).map(busy, vec![10u64; 10]).unwrap();
    assert_eq!(out.iter().sum::<u64>(), 100);
    pool.close().unwrap();
    pool.join().unwrap();
    let t = forja::timeline();
    assert_eq!(t.task_count(), 10, "{t}");
    assert_eq!(t.lanes().len(), 2, "{t}");
    let mut chunks = HashSet::new();
    let mut jobs = HashSet::new();
    for l in t.lanes() {
        assert!(
            workers.contains(&l.pid),
            "lane {} is not a worker: {t}",
            l.pid
        );
        assert!(l.name.starts_with("ForkPoolWorker"));
        assert!(l.is_pool_worker(), "both workers get tasks at once: {t}");
        assert_eq!(l.exitcode, Some(0), "closed and joined: {t}");
        let mut spans: Vec<(f64, f64)> = l
            .tasks
            .iter()
            .map(|s| (s.start_ms, s.end_ms.expect("finished")))
            .collect();
        spans.sort_by(|a, b| a.0.total_cmp(&b.0));
        for s in &spans {
            assert!(s.1 >= s.0);
            assert!(s.0 >= l.start_ms && s.1 <= l.end_ms.unwrap(), "{t}");
        }
        for w in spans.windows(2) {
            assert!(w[0].1 <= w[1].0, "one worker runs one task at a time: {t}");
        }
        for s in &l.tasks {
            assert!(chunks.insert(s.chunk), "chunk {} twice: {t}", s.chunk);
            jobs.insert(s.job);
        }
    }
    assert_eq!(chunks, (0..10).collect::<HashSet<u64>>());
    assert_eq!(jobs.len(), 1);
    assert!(t.max_parallel_tasks() <= 2);
    assert!(t.to_string().contains("10 pool tasks"), "{t}");
}

fn cells_select_what_a_cell_ran() {
    timeline::reset().unwrap();
    forja::registry::set_cell(5).unwrap();
    let pool = Pool::new(1).unwrap();
    let a = Process::new(|| {}).with_name("in-5");
    a.start().unwrap();
    a.join().unwrap();
    forja::registry::set_cell(6).unwrap();
    let b = Process::new(|| {}).with_name("in-6");
    b.start().unwrap();
    b.join().unwrap();
    // The pool made in cell 5 runs tasks in cell 6.
    assert_eq!(pool.apply(busy, 1).unwrap(), 1);
    let t5 = Timeline::of_cell(5);
    let t6 = Timeline::of_cell(6);
    let names5: HashSet<&str> = t5.lanes().iter().map(|l| l.name.as_str()).collect();
    let names6: HashSet<&str> = t6.lanes().iter().map(|l| l.name.as_str()).collect();
    assert!(names5.contains("in-5") && !names5.contains("in-6"), "{t5}");
    assert!(names6.contains("in-6") && !names6.contains("in-5"), "{t6}");
    assert_eq!(t5.task_count(), 0, "{t5}");
    assert_eq!(t6.task_count(), 1, "{t6}");
    let worker = pool.worker_pids()[0];
    let wl = t6.lanes().iter().find(|l| l.pid == worker).expect("worker");
    assert_eq!(wl.cell, 5);
    assert!(
        wl.start_ms < 0.0,
        "started before cell 6's first event: {t6}"
    );
    assert!(
        t5.lanes()
            .iter()
            .any(|l| l.pid == worker && l.tasks.is_empty())
    );
    assert_eq!(Timeline::all().lanes().len(), 3);
}

fn grandchildren_record_into_the_same_timeline() {
    timeline::reset().unwrap();
    let parent = Process::new(|| {
        let g = Process::new(|| {}).with_name("grandchild");
        g.start().unwrap();
        g.join().unwrap();
        assert_eq!(g.exitcode(), Some(0));
    })
    .with_name("child");
    parent.start().unwrap();
    parent.join().unwrap();
    assert_eq!(parent.exitcode(), Some(0));
    let t = forja::timeline();
    let c = lane(&t, "child");
    let g = lane(&t, "grandchild");
    assert_eq!(g.parent_pid, c.pid);
    assert_eq!(g.exitcode, Some(0));
    assert!(
        g.start_ms >= c.start_ms && g.end_ms.unwrap() <= c.end_ms.unwrap(),
        "{t}"
    );
}

fn recording_can_be_turned_off() {
    timeline::reset().unwrap();
    timeline::set_recording(false).unwrap();
    let p = Process::new(|| {});
    p.start().unwrap();
    p.join().unwrap();
    assert!(forja::timeline().is_empty());
    timeline::set_recording(true).unwrap();
    let p = Process::new(|| {});
    p.start().unwrap();
    p.join().unwrap();
    assert_eq!(forja::timeline().lanes().len(), 1);
}

// ---- SVG ----

/// A strict-enough XML well-formedness check: one root, balanced tags,
/// quoted attributes, no duplicate attributes, known entities only.
fn check_xml(doc: &str) -> Result<usize, String> {
    let b = doc.as_bytes();
    let mut i = 0;
    let mut stack: Vec<String> = Vec::new();
    let mut roots = 0;
    let mut elements = 0;
    let check_text = |t: &str| -> Result<(), String> {
        let mut rest = t;
        while let Some(p) = rest.find('&') {
            let after = &rest[p + 1..];
            let end = after.find(';').ok_or("& without ;")?;
            let ent = &after[..end];
            let ok = matches!(ent, "amp" | "lt" | "gt" | "quot" | "apos")
                || (ent.starts_with('#') && ent[1..].chars().all(|c| c.is_ascii_digit()));
            if !ok {
                return Err(format!("bad entity &{ent};"));
            }
            rest = &after[end + 1..];
        }
        Ok(())
    };
    while i < b.len() {
        if b[i] != b'<' {
            let next = doc[i..].find('<').map(|p| i + p).unwrap_or(b.len());
            let text = &doc[i..next];
            if stack.is_empty() && !text.trim().is_empty() {
                return Err(format!("text outside the root: {text:?}"));
            }
            check_text(text)?;
            i = next;
            continue;
        }
        let close = doc[i..].find('>').ok_or("unclosed <")? + i;
        let tag = &doc[i + 1..close];
        if let Some(name) = tag.strip_prefix('/') {
            let open = stack.pop().ok_or(format!("</{name}> without opening"))?;
            if open != name.trim() {
                return Err(format!("<{open}> closed by </{name}>"));
            }
        } else {
            let self_closing = tag.ends_with('/');
            let tag = tag.trim_end_matches('/');
            let name_end = tag.find(char::is_whitespace).unwrap_or(tag.len());
            let name = &tag[..name_end];
            if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '-') {
                return Err(format!("bad tag name {name:?}"));
            }
            // Attributes: name="value" ...
            let mut attrs = tag[name_end..].trim();
            let mut seen = HashSet::new();
            while !attrs.is_empty() {
                let eq = attrs
                    .find('=')
                    .ok_or(format!("attribute without = in <{name}>"))?;
                let an = attrs[..eq].trim();
                if !seen.insert(an.to_owned()) {
                    return Err(format!("duplicate attribute {an}"));
                }
                let rest = &attrs[eq + 1..];
                if !rest.starts_with('"') {
                    return Err(format!("unquoted attribute {an}"));
                }
                let vend = rest[1..].find('"').ok_or("unterminated attribute")? + 1;
                let value = &rest[1..vend];
                if value.contains('<') {
                    return Err(format!("< in attribute {an}"));
                }
                check_text(value)?;
                attrs = rest[vend + 1..].trim_start();
            }
            if stack.is_empty() {
                roots += 1;
            }
            elements += 1;
            if !self_closing {
                stack.push(name.to_owned());
            }
        }
        i = close + 1;
    }
    if !stack.is_empty() {
        return Err(format!("unclosed {stack:?}"));
    }
    if roots != 1 {
        return Err(format!("{roots} root elements"));
    }
    Ok(elements)
}

fn the_xml_checker_rejects_broken_documents() {
    assert!(check_xml("<svg><g></g></svg>").is_ok());
    assert!(check_xml("<svg><g></svg>").is_err());
    assert!(check_xml("<svg a=\"1\" a=\"2\"/>").is_err());
    assert!(check_xml("<svg>a & b</svg>").is_err());
    assert!(check_xml("<svg/><svg/>").is_err());
    assert!(check_xml("<svg a=1/>").is_err());
}

fn lane_pids(svg: &str) -> Vec<i32> {
    svg.match_indices("<g class=\"lane\" data-pid=\"")
        .map(|(at, m)| {
            let rest = &svg[at + m.len()..];
            rest[..rest.find('"').unwrap()].parse().unwrap()
        })
        .collect()
}

fn svg_is_well_formed_with_one_lane_per_process() {
    timeline::reset().unwrap();
    let names = ["plain", "a <tricky> & \"quoted\" 'name'", "ñandú-ü"];
    let procs: Vec<Process> = names
        .iter()
        .map(|n| Process::new(|| std::thread::sleep(Duration::from_millis(20))).with_name(*n))
        .collect();
    for p in &procs {
        p.start().unwrap();
    }
    let pool = Pool::new(2).unwrap();
    pool.map(busy, vec![5u64; 8]).unwrap();
    for p in &procs {
        p.join().unwrap();
    }
    drop(pool); // terminated: its workers end by SIGTERM
    let t = forja::timeline();
    let svg = t.svg();
    check_xml(&svg).unwrap_or_else(|e| panic!("{e}\n{svg}"));
    let mut expected: Vec<i32> = procs.iter().map(|p| p.pid().unwrap()).collect();
    expected.extend(
        t.lanes()
            .iter()
            .filter(|l| l.is_pool_worker())
            .map(|l| l.pid),
    );
    assert_eq!(t.lanes().len(), 5, "{t}");
    let mut got = lane_pids(&svg);
    got.sort_unstable();
    expected.sort_unstable();
    assert_eq!(got, expected);
    assert!(svg.contains("data-name=\"a &lt;tricky&gt; &amp; &quot;quoted&quot; &#39;name&#39;\""));
    assert!(svg.matches("class=\"task\"").count() > 0);
    // Python's parser agrees (when python3 is installed, as on CI).
    if let Ok(mut child) = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, xml.etree.ElementTree as E; r = E.fromstring(sys.stdin.read()); \
             print(len([g for g in r.iter('{http://www.w3.org/2000/svg}g') \
             if g.get('class') == 'lane']))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(svg.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "python could not parse the SVG");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "5");
    }
    // Empty timelines are well-formed too.
    timeline::reset().unwrap();
    let empty = forja::timeline();
    assert!(empty.is_empty());
    check_xml(&empty.svg()).unwrap();
    assert!(lane_pids(&empty.svg()).is_empty());
}

fn many_tasks_stay_a_light_picture() {
    timeline::reset().unwrap();
    let pool = Pool::new(2).unwrap();
    let n = 5000;
    pool.chunksize(1).map(|x: u32| x, 0..n).unwrap();
    let t = forja::timeline();
    assert_eq!(t.task_count(), n as usize);
    let svg = t.svg();
    check_xml(&svg).unwrap();
    // Adjacent tiny tasks are merged: far fewer rectangles than tasks.
    assert!(svg.matches("class=\"task\"").count() < n as usize / 2);
}

// ---- rich displays ----

/// Runs `f` in a child whose stdout goes to a file; returns what it printed.
fn stdout_of(f: impl FnOnce() + Send + 'static) -> String {
    let path = std::env::temp_dir().join(format!(
        "forja-rich-{}-{:?}.txt",
        std::process::id(),
        Instant::now()
    ));
    let p2 = path.clone();
    let p = Process::new(move || {
        use std::os::fd::AsRawFd;
        let file = std::fs::File::create(&p2).unwrap();
        // Safety: pointing fd 1 at the file, in the child only.
        unsafe { libc::dup2(file.as_raw_fd(), 1) };
        f();
    });
    p.start().unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(0));
    let mut s = String::new();
    std::fs::File::open(&path)
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    let _ = std::fs::remove_file(&path);
    s
}

/// Splits evcxr content blocks into mime -> body.
fn blocks(out: &str) -> HashMap<String, String> {
    let mut map = HashMap::new();
    let mut lines = out.lines();
    while let Some(line) = lines.next() {
        if let Some(mime) = line.strip_prefix("EVCXR_BEGIN_CONTENT ") {
            let mut body = Vec::new();
            for l in lines.by_ref() {
                if l == "EVCXR_END_CONTENT" {
                    break;
                }
                body.push(l);
            }
            map.insert(mime.to_owned(), body.join("\n"));
        }
    }
    map
}

fn display_of_each_handle_type() {
    let p = Process::new(|| forja::exit(4)).with_name("shown");
    assert!(p.to_string().contains("initial"));
    p.start().unwrap();
    p.join().unwrap();
    assert_eq!(
        p.to_string(),
        format!("<Process name='shown' pid={} exitcode=4>", p.pid().unwrap())
    );

    let v = Value::new(42i32).unwrap();
    assert_eq!(v.to_string(), "Value<i32>(42)");
    let g = v.get_lock().unwrap();
    assert_eq!(v.to_string(), "Value<i32>(<held by this thread>)"); // never hangs
    drop(g);
    assert_eq!(
        RawValue::new(1.5f64).unwrap().to_string(),
        "RawValue<f64>(1.5)"
    );

    let a = Array::from_slice(&[1u8, 2, 3]).unwrap();
    assert_eq!(a.to_string(), "Array<u8>[len 3]([1, 2, 3])");
    let long = Array::<u32>::from_fn(1000, |i| i as u32).unwrap();
    let s = long.to_string();
    assert!(
        s.starts_with("Array<u32>[len 1000]([0, 1,") && s.contains("…") && s.ends_with("999])")
    );
    assert!(s.len() < 200);

    let q: Queue<String> = Queue::with_maxsize(5).unwrap();
    q.put(&"x".to_owned()).unwrap();
    assert_eq!(q.to_string(), "<Queue qsize=1 maxsize=5 open>");
    q.close();
    assert_eq!(q.to_string(), "<Queue qsize=1 maxsize=5 closed>");
    let jq: JoinableQueue<u8> = JoinableQueue::new().unwrap();
    jq.put(&1).unwrap();
    assert_eq!(
        jq.to_string(),
        "<JoinableQueue qsize=1 maxsize=∞ unfinished=1 open>"
    );

    let pool = Pool::new(2).unwrap();
    let pids = pool.worker_pids();
    assert_eq!(
        pool.to_string(),
        format!("<Pool size=2 state=open workers={pids:?} worker_starts=2>")
    );
    pool.close().unwrap();
    assert!(pool.to_string().contains("state=closed"));
    pool.join().unwrap();
}

fn evcxr_display_prints_html_and_text() {
    let out = stdout_of(|| {
        let p = Process::new(|| {}).with_name("<p&>");
        p.start().unwrap();
        p.join().unwrap();
        p.evcxr_display();
    });
    let b = blocks(&out);
    assert!(b["text/plain"].contains("name='<p&>'"), "{out}");
    let html = &b["text/html"];
    check_xml(html).unwrap_or_else(|e| panic!("{e}: {html}"));
    assert!(
        html.contains("&lt;p&amp;&gt;") && html.contains("stopped"),
        "{html}"
    );

    let out = stdout_of(|| {
        Array::<i64>::from_fn(100, |i| i as i64 * 2)
            .unwrap()
            .evcxr_display()
    });
    let b = blocks(&out);
    check_xml(&b["text/html"]).unwrap();
    assert!(
        b["text/html"].contains("<th style=\"padding:2px 8px\">99</th>"),
        "{out}"
    );
    assert!(b["text/html"].contains(">198<"));
    assert!(b["text/html"].matches("<td").count() <= 16);

    let out = stdout_of(|| Value::new([1u8, 2]).unwrap().evcxr_display());
    assert!(blocks(&out)["text/html"].contains("[1, 2]"), "{out}");
    let out = stdout_of(|| Queue::<u8>::new().unwrap().evcxr_display());
    assert!(blocks(&out)["text/html"].contains("∞"), "{out}");
    let out = stdout_of(|| Pool::new(1).unwrap().evcxr_display());
    let b = blocks(&out);
    check_xml(&b["text/html"]).unwrap();
    assert!(
        b["text/plain"].starts_with("<Pool size=1 state=open"),
        "{out}"
    );

    let out = stdout_of(|| {
        timeline::reset().unwrap();
        let p = Process::new(|| {}).with_name("drawn");
        p.start().unwrap();
        p.join().unwrap();
        forja::timeline().evcxr_display();
    });
    let b = blocks(&out);
    let svg = &b["image/svg+xml"];
    check_xml(svg).unwrap();
    assert_eq!(lane_pids(svg).len(), 1);
    assert!(b["text/plain"].contains("drawn"));
}

/// Not a test: what recording costs. Run with
/// `cargo nextest run -p forja --release --run-ignored only recording_overhead --no-capture`.
fn recording_overhead() {
    fn median(mut v: Vec<f64>) -> f64 {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    }
    let start_join = |n: usize| {
        let mut v = Vec::new();
        for _ in 0..n {
            let t = Instant::now();
            let p = Process::new(|| {});
            p.start().unwrap();
            p.join().unwrap();
            v.push(t.elapsed().as_secs_f64() * 1e6);
        }
        median(v)
    };
    let pool = Pool::new(1).unwrap();
    let round_trip = |n: usize| {
        let mut v = Vec::new();
        for _ in 0..n {
            let t = Instant::now();
            pool.apply_async(|x: u32| x, 1).unwrap().get().unwrap();
            v.push(t.elapsed().as_secs_f64() * 1e6);
        }
        median(v)
    };
    for round in 0..3 {
        for on in [false, true] {
            timeline::set_recording(on).unwrap();
            timeline::reset().unwrap();
            let sj = start_join(300);
            let rt = round_trip(20000);
            println!(
                "round {round} recording={on}: Process start+join median {sj:.1} µs, \
                 apply_async+get median {rt:.2} µs"
            );
        }
    }
}

// ---- live progress of a long map, through a fake kernel side channel ----

fn a_long_map_shows_live_progress_in_the_kernel() {
    use std::io::BufRead;
    use std::os::unix::net::UnixListener;
    use std::sync::{Arc, Mutex};
    let dir = std::env::temp_dir().join(format!("forja-progress-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("kernel.sock");
    let listener = UnixListener::bind(&path).unwrap();
    // A fake kernel: one thread per connection (children keep theirs open
    // for their output); frames are ordered by when their connection came.
    let received: Arc<Mutex<Vec<(usize, serde_json::Value)>>> = Arc::default();
    let sink = received.clone();
    std::thread::spawn(move || {
        for (seq, conn) in listener.incoming().enumerate() {
            let Ok(conn) = conn else { break };
            let sink = sink.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(conn).lines() {
                    let Ok(line) = line else { break };
                    if let Ok(v) = serde_json::from_str(&line) {
                        sink.lock().unwrap().push((seq, v));
                    }
                }
            });
        }
    });
    // Safety: set before any process or pool exists (one test per process).
    unsafe { std::env::set_var(forja::display::SOCKET_ENV, &path) };
    assert!(forja::display::in_kernel());

    let pool = Pool::new(2).unwrap();
    let started = Instant::now();
    let n = 32;
    let out = pool.chunksize(1).map(busy, vec![100u64; n]).unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(out.len(), n);
    // A short map right after shows nothing.
    pool.map(busy, vec![1u64; 4]).unwrap();
    forja::timeline().show().unwrap();
    std::thread::sleep(Duration::from_millis(300));

    let mut received = received.lock().unwrap().clone();
    received.sort_by_key(|(seq, _)| *seq);
    let frames: Vec<serde_json::Value> = received.into_iter().map(|(_, v)| v).collect();
    let shown: Vec<&serde_json::Value> = frames
        .iter()
        .filter(|f| f["type"] == "display_data" && f["data"]["text/html"].is_string())
        .collect();
    assert_eq!(shown.len(), 1, "one progress display: {frames:#?}");
    let id = shown[0]["display_id"].clone();
    let updates: Vec<String> = frames
        .iter()
        .filter(|f| f["type"] == "update_display_data" && f["display_id"] == id)
        .map(|f| f["data"]["text/html"].as_str().unwrap().to_owned())
        .collect();
    assert!(!updates.is_empty());
    let last = updates.last().unwrap();
    assert!(
        last.contains(&format!("{n} / {n} tasks, done in")),
        "{last}"
    );
    // At most ~5 updates a second (plus the final one).
    assert!(
        (updates.len() as f64) <= elapsed * 5.0 + 2.0,
        "{} updates in {elapsed:.1} s",
        updates.len()
    );
    let done_counts: Vec<usize> = std::iter::once(shown[0]["data"]["text/html"].as_str().unwrap())
        .chain(updates.iter().map(String::as_str))
        .map(|h| {
            let at = h.find(" / ").unwrap();
            let head = &h[..at];
            head[head.rfind(' ').unwrap() + 1..].parse().unwrap()
        })
        .collect();
    assert!(
        done_counts.windows(2).all(|w| w[0] <= w[1]),
        "{done_counts:?}"
    );
    assert!(done_counts[0] < n);
    // show() in the kernel sends the picture.
    let pictures: Vec<&serde_json::Value> = frames
        .iter()
        .filter(|f| f["type"] == "display_data" && f["data"]["image/svg+xml"].is_string())
        .collect();
    assert_eq!(pictures.len(), 1);
    let svg = pictures[0]["data"]["image/svg+xml"].as_str().unwrap();
    check_xml(svg).unwrap();
    assert_eq!(lane_pids(svg).len(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

// Each test runs in a process of its own, under cargo test too (common/harness.rs).
mod common;
common::tests! {
    sequential_processes_do_not_overlap,
    parallel_processes_overlap,
    exit_codes_and_signals_are_recorded,
    the_end_is_when_the_child_ended_not_when_it_was_joined,
    pool_tasks_are_recorded_per_worker,
    cells_select_what_a_cell_ran,
    grandchildren_record_into_the_same_timeline,
    recording_can_be_turned_off,
    the_xml_checker_rejects_broken_documents,
    svg_is_well_formed_with_one_lane_per_process,
    many_tasks_stay_a_light_picture,
    display_of_each_handle_type,
    evcxr_display_prints_html_and_text,
    #[ignore] recording_overhead,
    a_long_map_shows_live_progress_in_the_kernel,
}
