//! [`input()`] and [`input_password`]: a line typed by the student, as
//! Python's `input()` and `getpass()`.
//!
//! In the forja kernel (from the cell or from any process it started) the
//! question goes over the kernel's side channel (`FORJA_KERNEL_SOCKET`): one
//! connection per question, an `input_request` line out, one JSON line back
//! (`{"value": …}` or `{"error": …}`); the kernel asks the notebook through
//! Jupyter's stdin channel. No `:dep` and no network. Outside the kernel the
//! prompt goes to stdout and the line is read from stdin (without echo for a
//! password, when stdin is a terminal).

use crate::error::{Error, Result};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::termios::{self, LocalFlags, SetArg, Termios};
use std::io::{BufRead, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;

/// Asks the student for one line, showing `prompt`; returns the line without
/// its line ending. In the notebook a text box appears under the cell.
///
/// Fails with [`Error::Input`] when the frontend does not accept input (a
/// notebook run by a script with `allow_stdin` off), and with
/// [`Error::Interrupted`] when the cell is interrupted while it waits.
///
/// ```no_run
/// let name = forja::input("¿Nombre? ").unwrap();
/// println!("hola, {name}");
/// ```
pub fn input(prompt: &str) -> Result<String> {
    ask(prompt, false)
}

/// Like [`input()`], but what is typed is not shown (a password).
///
/// ```no_run
/// let secret = forja::input_password("Contraseña: ").unwrap();
/// assert!(!secret.is_empty());
/// ```
pub fn input_password(prompt: &str) -> Result<String> {
    ask(prompt, true)
}

fn ask(prompt: &str, password: bool) -> Result<String> {
    crate::interrupt::check()?;
    // What was printed before the question comes before it.
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    match std::env::var_os(crate::display::SOCKET_ENV) {
        Some(path) => ask_kernel(&path, prompt, password),
        None => ask_terminal(prompt, password),
    }
}

fn input_error(reason: impl Into<String>) -> Error {
    Error::Input {
        reason: reason.into(),
        pid: crate::os::pid(),
    }
}

fn ask_kernel(path: &std::ffi::OsStr, prompt: &str, password: bool) -> Result<String> {
    let mut stream = UnixStream::connect(path).map_err(|e| {
        input_error(
            crate::messages::Msg::InputNoChannel
                .fill(&[("path", &path.to_string_lossy()), ("error", &e)]),
        )
    })?;
    let line = crate::link::Message::InputRequest {
        prompt: prompt.to_owned(),
        password,
    }
    .to_line();
    stream
        .write_all(&line)
        .map_err(|e| input_error(crate::messages::Msg::InputSending.fill(&[("error", &e)])))?;
    // Wait for the answer, looking at the interrupt flag as every wait does.
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        crate::interrupt::check()?;
        let mut pfd = [PollFd::new(stream.as_fd(), PollFlags::POLLIN)];
        let ms = PollTimeout::try_from(crate::registry::POLL_INTERVAL).unwrap_or(PollTimeout::MAX);
        if !matches!(poll(&mut pfd, ms), Ok(n) if n > 0) {
            continue; // timeout or EINTR: look at the flag again
        }
        crate::interrupt::check()?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                reply.extend_from_slice(&buf[..n]);
                if reply.ends_with(b"\n") {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(input_error(
                    crate::messages::Msg::InputReading.fill(&[("error", &e)]),
                ));
            }
        }
    }
    if reply.is_empty() {
        return Err(input_error(crate::messages::Msg::InputClosed.get()));
    }
    let answer = crate::link::InputAnswer::from_line(&reply).map_err(|e| {
        input_error(crate::messages::Msg::InputNotUnderstood.fill(&[("error", &e)]))
    })?;
    match (answer.value, answer.error) {
        (_, Some(e)) => Err(input_error(e)),
        (Some(v), None) => Ok(v),
        (None, None) => Err(input_error(crate::messages::Msg::InputEmpty.get())),
    }
}

/// Turns the terminal's echo off while it lives (for a password).
struct NoEcho {
    saved: Option<Termios>,
}

impl NoEcho {
    /// Fd 0 may not be a terminal: then nothing changes.
    fn new() -> NoEcho {
        let stdin = std::io::stdin();
        if nix::unistd::isatty(&stdin) != Ok(true) {
            return NoEcho { saved: None };
        }
        let Ok(mut t) = termios::tcgetattr(&stdin) else {
            return NoEcho { saved: None };
        };
        let saved = t.clone();
        t.local_flags.remove(LocalFlags::ECHO);
        let _ = termios::tcsetattr(&stdin, SetArg::TCSANOW, &t);
        NoEcho { saved: Some(saved) }
    }
}

impl Drop for NoEcho {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = termios::tcsetattr(std::io::stdin(), SetArg::TCSANOW, saved);
            println!();
        }
    }
}

fn ask_terminal(prompt: &str, password: bool) -> Result<String> {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(prompt.as_bytes());
    let _ = out.flush();
    drop(out);
    let _echo = password.then(NoEcho::new);
    let mut line = String::new();
    let n = std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| input_error(crate::messages::Msg::InputStdin.fill(&[("error", &e)])))?;
    if n == 0 {
        return Err(input_error(crate::messages::Msg::InputEof.get()));
    }
    while line.ends_with('\n') || line.ends_with('\r') {
        line.pop();
    }
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    /// The kernel's side of one question, played by a thread.
    #[test]
    fn asks_the_kernel_over_the_side_channel() {
        let dir = std::env::temp_dir().join(format!("forja-input-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let mut answers = vec![];
            for reply in [r#"{"value":"Ada"}"#, r#"{"error":"no stdin"}"#] {
                let (s, _) = listener.accept().unwrap();
                let mut r = std::io::BufReader::new(s);
                let mut q = String::new();
                r.read_line(&mut q).unwrap();
                answers.push(q);
                let mut s = r.into_inner();
                s.write_all(reply.as_bytes()).unwrap();
                s.write_all(b"\n").unwrap();
            }
            answers
        });
        assert_eq!(
            ask_kernel(path.as_os_str(), "¿Nombre? ", false).unwrap(),
            "Ada"
        );
        let e = ask_kernel(path.as_os_str(), "pw: ", true).unwrap_err();
        assert!(e.to_string().contains("no stdin"), "{e}");
        let asked = server.join().unwrap();
        assert!(
            asked[0].contains("\"prompt\":\"¿Nombre? \""),
            "{}",
            asked[0]
        );
        assert!(asked[1].contains("\"password\":true"), "{}", asked[1]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
