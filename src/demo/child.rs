//! The relay a demo shows: the real `tiburoncin -A .. -B ..`, run as a child process.
//!
//! A child rather than threads of this process, for three reasons: it is the very
//! command a user runs, flags and all; its output can be read line by line, so the
//! demo knows what the relay has said before it narrates the next step (the relay's
//! lines come out beneath the step that caused them, never after the next one); and
//! a `-k` relay ends only on a signal, which is sent to the child alone.
//!
//! Two threads copy the child's standard output and error to ours, line by line as
//! they come, and pass each line, without its colours, to the demo.

use std::ffi::OsString;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, unbounded};

use crate::error::Error;

/// Longest a demo waits for any one thing: the relay, a peer, the end.
pub(crate) const DEADLINE: Duration = Duration::from_secs(5);

/// The relay, running.
pub(crate) struct RelayChild {
    child: Child,
    lines: Receiver<String>,
    /// Every line printed so far, without colours, in the order they arrived.
    seen: Vec<String>,
    /// Whether the relay prints its per-chunk lines (it does not with `-q`).
    pub(crate) chatty: bool,
}

impl RelayChild {
    /// Starts this very program with `args`.
    pub(crate) fn start(args: &[OsString], chatty: bool) -> Result<RelayChild, Error> {
        let program = std::env::current_exe()
            .map_err(|e| Error::Demo(format!("cannot find tiburoncin itself: {e}")))?;
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::Demo(format!("cannot start the relay: {e}")))?;
        let (send, lines) = unbounded();
        if let Some(out) = child.stdout.take() {
            forward(out, io::stdout, send.clone());
        }
        if let Some(err) = child.stderr.take() {
            forward(err, io::stderr, send);
        }
        Ok(RelayChild {
            child,
            lines,
            seen: Vec::new(),
            chatty,
        })
    }

    /// Waits until `done` holds for the lines printed so far; `what` names it for the
    /// message if it never does.
    pub(crate) fn until(
        &mut self,
        what: &str,
        done: impl Fn(&[String]) -> bool,
    ) -> Result<(), Error> {
        self.until_within(DEADLINE, what, done)
    }

    /// As `until`, giving up after `within`.
    pub(crate) fn until_within(
        &mut self,
        within: Duration,
        what: &str,
        done: impl Fn(&[String]) -> bool,
    ) -> Result<(), Error> {
        let deadline = Instant::now() + within;
        while !done(&self.seen) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => {
                    return Err(Error::Demo(format!("the relay never showed {what}")));
                }
            }
        }
        Ok(())
    }

    /// Waits for a line containing `text`, and returns it.
    pub(crate) fn line(&mut self, text: &str) -> Result<String, Error> {
        self.until(&format!("'{text}'"), |seen| {
            seen.iter().any(|l| l.contains(text))
        })?;
        Ok(self
            .seen
            .iter()
            .find(|l| l.contains(text))
            .cloned()
            .unwrap_or_default())
    }

    /// Waits until `count` lines contain `text`, when the relay prints such lines
    /// (with `-q` it does not, and there is nothing to wait for).
    pub(crate) fn count(&mut self, text: &str, count: usize) -> Result<(), Error> {
        if !self.chatty {
            return Ok(());
        }
        self.until(&format!("'{text}' {count} times"), |seen| {
            seen.iter().filter(|l| l.contains(text)).count() >= count
        })
    }

    /// Waits until the relay has shown `total` bytes read from `from` and written
    /// to `to`, every one: its `from -> to sent N bytes` (and `1 byte`) lines add up
    /// to `total`, and its last word on `to` is `to is in sync`. With `-q` there is
    /// nothing to wait for.
    pub(crate) fn caught_up(&mut self, from: &str, to: &str, total: usize) -> Result<(), Error> {
        if !self.chatty {
            return Ok(());
        }
        let sent = format!("{from} -> {to} sent ");
        let status = format!("{to} is ");
        let in_sync = format!("{to} is in sync");
        self.until(&format!("{total} bytes from {from} in sync"), |seen| {
            let shown: usize = seen
                .iter()
                .filter_map(|line| {
                    let (_, rest) = line.split_once(&sent)?;
                    match rest.strip_suffix(" bytes") {
                        Some(n) => n.parse::<usize>().ok(),
                        None => (rest == "1 byte").then_some(1),
                    }
                })
                .sum();
            shown == total
                && seen
                    .iter()
                    .rev()
                    .find(|l| l.contains(&status))
                    .is_some_and(|l| l.contains(&in_sync))
        })
    }

    /// The lines printed so far.
    pub(crate) fn seen(&self) -> &[String] {
        &self.seen
    }

    /// Asks a `-k` relay to stop, as Ctrl-C would.
    pub(crate) fn terminate(&self) -> Result<(), Error> {
        let pid = libc::pid_t::try_from(self.child.id())
            .map_err(|_| Error::Demo("the relay's process id is out of range".into()))?;
        // Our own child, not waited for yet, so the id is still its.
        let pid = nix::unistd::Pid::from_raw(pid);
        if let Err(errno) = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM) {
            return Err(Error::Demo(format!(
                "cannot stop the relay: {}",
                io::Error::from(errno)
            )));
        }
        Ok(())
    }

    /// Waits for the relay to end, and for the last of its output.
    pub(crate) fn wait(&mut self) -> Result<ExitStatus, Error> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    // The copying threads end at the end of the output; then the
                    // channel is closed.
                    while let Ok(line) = self.lines.recv_timeout(DEADLINE) {
                        self.seen.push(line);
                    }
                    return Ok(status);
                }
                Ok(None) if Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(5));
                }
                Ok(None) => return Err(Error::Demo("the relay did not end".into())),
                Err(e) => return Err(Error::Demo(format!("cannot wait for the relay: {e}"))),
            }
        }
    }

    /// Waits for the relay to end with `code`.
    pub(crate) fn ends_with(&mut self, code: i32) -> Result<(), Error> {
        let status = self.wait()?;
        if status.code() == Some(code) {
            Ok(())
        } else {
            Err(Error::Demo(format!(
                "the relay ended with {status}, not with exit status {code}"
            )))
        }
    }
}

impl Drop for RelayChild {
    /// A demo that went wrong leaves no relay behind.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Copies `from` to `to` line by line, and sends each line without its colours.
fn forward<R, W>(from: R, to: fn() -> W, lines: Sender<String>)
where
    R: Read + Send + 'static,
    W: Write + 'static,
{
    thread::spawn(move || {
        let mut from = BufReader::new(from);
        let mut line = Vec::new();
        while matches!(from.read_until(b'\n', &mut line), Ok(n) if n > 0) {
            // A reader that went away (`| head`) must not stop the relay: the
            // copying goes on, unseen.
            let mut out = to();
            let _ = out.write_all(&line).and_then(|()| out.flush());
            let text = String::from_utf8_lossy(&without_colours(&line)).into_owned();
            let _ = lines.send(text.trim_end_matches('\n').to_string());
            line.clear();
        }
    });
}

/// `line` without the terminal's colour codes (ESC [ ... letter).
fn without_colours(line: &[u8]) -> Vec<u8> {
    let mut plain = Vec::with_capacity(line.len());
    let mut bytes = line.iter().copied();
    while let Some(b) = bytes.next() {
        if b == 0x1b {
            // Skip to the code's final letter.
            for c in bytes.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(b);
        }
    }
    plain
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_are_taken_out() {
        assert_eq!(
            without_colours(b"\x1b[91mA -> B sent 3 bytes\n\x1b[1m00\x1b[0m"),
            b"A -> B sent 3 bytes\n00"
        );
        assert_eq!(without_colours(b"plain"), b"plain");
    }
}
