//! Rich output that appears, updates and clears while a cell runs.
//!
//! Inside the forja kernel, displays travel over a side channel (a Unix socket
//! named in the `FORJA_KERNEL_SOCKET` environment variable) straight to the
//! kernel, which publishes them at once as `display_data`,
//! `update_display_data` or `clear_output`. This works from the cell and from
//! any child process it starts. Outside the kernel (a plain `cargo run`), the
//! plain-text form is printed to stdout instead.
//!
//! ```
//! let handle = forja::display::html("<b>working…</b>").unwrap();
//! handle.update("<b>done</b>").unwrap();
//! forja::display::clear_output(true).unwrap();
//! ```

use crate::error::{Error, Result};
use crate::link::{self, Message};
use serde_json::{Map, Value, json};
use std::io::{Read, Write};
use std::os::fd::{AsFd, IntoRawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// The environment variable naming the kernel's side-channel socket.
pub const SOCKET_ENV: &str = link::env::KERNEL_SOCKET;

/// A bundle of representations of one object, keyed by MIME type.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Data {
    bundle: Map<String, Value>,
}

impl Data {
    /// An empty bundle.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a representation under any MIME type.
    pub fn with(mut self, mime: &str, content: impl Into<String>) -> Self {
        self.bundle
            .insert(mime.to_owned(), Value::String(content.into()));
        self
    }
    /// Adds `text/plain`.
    pub fn text(self, text: impl Into<String>) -> Self {
        self.with("text/plain", text)
    }
    /// Adds `text/html`.
    pub fn html(self, html: impl Into<String>) -> Self {
        self.with("text/html", html)
    }
    /// Adds `text/markdown`.
    pub fn markdown(self, md: impl Into<String>) -> Self {
        self.with("text/markdown", md)
    }
    /// Adds `image/svg+xml`.
    pub fn svg(self, svg: impl Into<String>) -> Self {
        self.with("image/svg+xml", svg)
    }
    /// The plain-text form, or the first representation if there is none.
    pub fn plain(&self) -> Option<&str> {
        self.bundle
            .get("text/plain")
            .or_else(|| self.bundle.values().next())
            .and_then(Value::as_str)
    }
    fn to_json(&self) -> Value {
        Value::Object(self.bundle.clone())
    }
}

/// Whether this process runs inside the forja kernel (the side channel exists).
pub fn in_kernel() -> bool {
    std::env::var_os(SOCKET_ENV).is_some()
}

/// The prefix of a message written on the runner's stdout (see `send_message`).
pub const STDOUT_FRAME_MARKER: &str = link::STDOUT_FRAME_MARKER;

/// Whether this process is the kernel's runner (the process running cells),
/// whose stdout the kernel reads through its output pump.
fn in_runner() -> bool {
    let Some(kernel) = std::env::var(link::env::KERNEL_PID)
        .ok()
        .and_then(|p| p.parse::<i32>().ok())
    else {
        return false;
    };
    nix::unistd::getppid().as_raw() == kernel
}

/// Writes one message on the runner's stdout, in order with everything the
/// cell printed before it and before the cell's end.
fn write_stdout_frame(message: &Message) -> Result<()> {
    let line = message.to_stdout_frame();
    let mut out = std::io::stdout().lock();
    out.write_all(&line)
        .and_then(|()| out.flush())
        .map_err(|e| Error::Display(e.to_string()))
}

/// Sends one message to the kernel. Returns `Ok(false)` outside the kernel.
///
/// In the runner the message goes through stdout, so it keeps its place
/// among the cell's output; in a child process (whose output has connections
/// of its own) it goes over a connection to the kernel's socket.
fn send_message(message: &Message) -> Result<bool> {
    let Some(path) = std::env::var_os(SOCKET_ENV) else {
        return Ok(false);
    };
    if in_runner() {
        write_stdout_frame(message)?;
        return Ok(true);
    }
    // Keep ordering with ordinary output: what was printed before the display
    // reaches the kernel first.
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    let mut stream = UnixStream::connect(&path)
        .map_err(|e| Error::Display(format!("{}: {e}", path.to_string_lossy())))?;
    stream
        .write_all(&message.to_line())
        .map_err(|e| Error::Display(e.to_string()))?;
    Ok(true)
}

fn new_display_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("forja-{}-{nanos:x}-{n}", std::process::id())
}

/// A display that can be updated in place while the cell runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayHandle {
    id: String,
    mime: String,
}

impl DisplayHandle {
    /// The `display_id` the kernel uses for this display.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Replaces the content, keeping the MIME type the display was made with.
    ///
    /// ```
    /// let h = forja::display::markdown("**0 %**").unwrap();
    /// h.update("**100 %**").unwrap();
    /// ```
    pub fn update(&self, content: impl Into<String>) -> Result<()> {
        let data = Data::new().with(&self.mime, content);
        self.update_data(&data)
    }

    /// Replaces the content with a whole bundle.
    pub fn update_data(&self, data: &Data) -> Result<()> {
        let message = Message::UpdateDisplayData {
            data: data.to_json(),
            metadata: json!({}),
            display_id: self.id.clone(),
        };
        if !send_message(&message)? {
            print_plain(data);
        }
        Ok(())
    }
}

fn print_plain(data: &Data) {
    if let Some(text) = data.plain() {
        println!("{text}");
    }
}

/// Shows a bundle now and returns a handle to update it.
///
/// ```
/// use forja::display::{Data, display};
/// display(&Data::new().text("x = 1").html("<i>x</i> = 1")).unwrap();
/// ```
pub fn display(data: &Data) -> Result<DisplayHandle> {
    let mime = data
        .bundle
        .keys()
        .find(|k| *k != "text/plain")
        .or_else(|| data.bundle.keys().next())
        .cloned()
        .unwrap_or_else(|| "text/plain".to_owned());
    let handle = DisplayHandle {
        id: new_display_id(),
        mime,
    };
    let message = Message::DisplayData {
        data: data.to_json(),
        metadata: json!({}),
        display_id: Some(handle.id.clone()),
    };
    if !send_message(&message)? {
        print_plain(data);
    }
    Ok(handle)
}

/// Shows HTML now. Outside the kernel, prints it as text.
pub fn html(html: impl Into<String>) -> Result<DisplayHandle> {
    display(&Data::new().html(html))
}

/// Shows Markdown now.
pub fn markdown(md: impl Into<String>) -> Result<DisplayHandle> {
    display(&Data::new().markdown(md))
}

/// Shows plain text now, as a display that can be updated.
pub fn text(text: impl Into<String>) -> Result<DisplayHandle> {
    display(&Data::new().text(text))
}

/// Shows an SVG picture now.
pub fn svg(svg: impl Into<String>) -> Result<DisplayHandle> {
    display(&Data::new().svg(svg))
}

/// Shows a picture and the text that says the same: both in the forja
/// kernel, the text alone elsewhere (`Timeline::show`, `WaitGraph::show`).
pub(crate) fn show_picture(
    text: &dyn std::fmt::Display,
    svg: impl FnOnce() -> String,
) -> Result<()> {
    if in_kernel() {
        display(&Data::new().text(text.to_string()).svg(svg()))?;
    } else {
        println!("{text}");
    }
    Ok(())
}

/// Clears the cell's output; with `wait`, only when new output arrives.
///
/// ```
/// forja::display::clear_output(false).unwrap();
/// ```
pub fn clear_output(wait: bool) -> Result<()> {
    send_message(&Message::ClearOutput { wait })?;
    Ok(())
}

/// Shows any `Debug` value as a notebook cell's result.
///
/// evcxr first compiles an expression cell as `(expr).evcxr_display()` and,
/// when that does not type-check, compiles it again with `Debug`; with this
/// trait in scope (the prelude brings it) the first compile succeeds, which
/// saves a compile (~0.1 s) per cell. Types with their own rich display keep
/// it: inherent methods win over trait methods.
#[doc(hidden)]
pub trait DebugDisplay {
    /// Prints the value in evcxr's display protocol (`text/plain`).
    fn evcxr_display(&self);
}

impl<T: std::fmt::Debug + ?Sized> DebugDisplay for T {
    fn evcxr_display(&self) {
        let (begin, end) = (link::evcxr::BEGIN_CONTENT, link::evcxr::END_CONTENT);
        let text = format!("{begin} text/plain\n{self:?}\n{end}\n");
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}

/// The old way the kernel's output pump reached the stdout flusher (by the
/// address of this struct, which travelled in a message). Unused: the pump
/// now talks to the flusher over a socket ([`link::Message::Flusher`]).
#[deprecated(note = "the flusher is reached through the socket in `link::Message::Flusher`")]
#[repr(C)]
pub struct FlushControl {
    /// Incremented by the pump to ask for a flush.
    pub request: AtomicU32,
    /// The request number the flusher has completed.
    pub done: AtomicU32,
}

/// How often the flusher flushes the cells' stdout unasked.
const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_millis(20);

/// Starts, in the kernel's runner, a thread that flushes the cells' stdout
/// every 20 ms and whenever the kernel's output pump asks (at the end of each
/// cell), so `print!` without a newline shows at once and is never lost, and
/// a panic hook that reports the cell's panics to the kernel as a typed
/// message. The kernel calls this once per runner; elsewhere it does nothing.
///
/// The pump reaches the flusher through a socket pair: its end's fd is
/// announced in a [`Message::Flusher`] on stdout (the cells' copies of forja
/// and the kernel's are different copies, so no address could be shared).
#[doc(hidden)]
pub fn start_output_flusher() -> Result<()> {
    if !in_runner() {
        return Ok(());
    }
    let (mut ours, pumps) =
        UnixStream::pair().map_err(|e| Error::os("making the output flusher's socket", e))?;
    crate::os::spawn_owned("flusher", move || {
        let mut last_reap = std::time::Instant::now();
        let mut pump_gone = false;
        let mut buf = [0u8; 256];
        loop {
            // Children whose handles were dropped (a cell that was
            // interrupted, `:kill`) have no one else to reap them.
            if last_reap.elapsed() >= std::time::Duration::from_millis(200) {
                last_reap = std::time::Instant::now();
                if let Some(reg) = crate::registry::Registry::existing() {
                    reg.reap_dropped();
                }
            }
            let mut asked = None;
            if pump_gone || !readable(&ours, FLUSH_EVERY) {
                if pump_gone {
                    std::thread::sleep(FLUSH_EVERY);
                }
            } else {
                match ours.read(&mut buf) {
                    Ok(0) | Err(_) => pump_gone = true,
                    Ok(n) => asked = link::last_flush_number(&buf[..n]),
                }
            }
            let _ = std::io::stdout().flush();
            if let Some(n) = asked
                && ours.write_all(&link::flush_request(n)).is_err()
            {
                pump_gone = true;
            }
        }
    })
    .map_err(|e| Error::os("starting the output flusher", e))?;
    install_runner_panic_hook();
    write_stdout_frame(&Message::Flusher {
        fd: pumps.into_raw_fd(),
    })
}

/// Whether `s` has something to read (or was closed) within `timeout`.
fn readable(s: &UnixStream, timeout: std::time::Duration) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let mut fds = [PollFd::new(s.as_fd(), PollFlags::POLLIN)];
    let ms = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
    poll(&mut fds, ms).is_ok_and(|n| n > 0)
}

/// In the runner: a typed report of the panic on stdout, before evcxr's own
/// panic notice, so the kernel shows the message without reading it back
/// from the text. A panic on the main thread (the cell's) becomes the cell's
/// error, placed in the cell, so Rust's usual message on stderr (naming
/// `src/lib.rs`, with its `RUST_BACKTRACE` note) is left out unless the user
/// asked for backtraces (`FORJA_BACKTRACE`); other threads' panics keep it.
fn install_runner_panic_hook() {
    let previous = std::panic::take_hook();
    let backtraces = std::env::var_os(crate::link::env::BACKTRACE).is_some();
    std::panic::set_hook(Box::new(move |info| {
        // The main thread by its tid: the cell's copy of std does not know
        // the runner's main thread by name.
        if backtraces || nix::unistd::gettid() != nix::unistd::getpid() {
            previous(info);
        }
        let _ = write_stdout_frame(&Message::panic_report(info, None));
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_prefers_rich_mime_for_handle() {
        let d = Data::new().text("t").html("<b>t</b>");
        assert_eq!(d.plain(), Some("t"));
        // Outside the kernel this prints and still returns a handle.
        let h = display(&d).unwrap();
        assert_eq!(h.mime, "text/html");
        assert!(h.id().starts_with("forja-"));
    }
}
