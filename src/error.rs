//! The failures a run can end with, worded as the original tool words them.
//!
//! The original reports through `perror(3)`, so each message is a fixed prefix and the
//! OS's own text (`Connection refused`), without the `(os error 111)` that Rust's
//! `io::Error` adds. Each variant keeps its cause as a `source`.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

use crate::direction::Direction;
use crate::words::Count;

#[derive(Debug, Error)]
pub enum Error {
    #[error("Establish a connection to the destination failed: {}", os_text(.0))]
    Connect(#[source] io::Error),

    #[error("Wait for connection from the source failed: {}", os_text(.0))]
    Accept(#[source] io::Error),

    /// Listening for A failed: the original's words, then the address it was about.
    #[error("Wait for connection from the source failed: {addr}: {}", os_text(.source))]
    Listen { addr: String, source: io::Error },

    #[error("Passthrough from {} to {} failed: {}", .dir.from(), .dir.to(), os_text(.source))]
    Passthrough { dir: Direction, source: io::Error },

    #[error("Cannot create {}: {}", .path.display(), os_text(.source))]
    CreateOutput { path: PathBuf, source: io::Error },

    #[error("Writing {what} failed: {}", os_text(.source))]
    Output { what: String, source: io::Error },

    #[error("Cannot read {}: {reason}", .path.display())]
    Capture { path: PathBuf, reason: String },

    #[error(
        "{} has {count} TCP connections: choose one with --stream N (see --list)",
        .path.display()
    )]
    ChooseStream { path: PathBuf, count: usize },

    #[error("{} has no TCP connection {stream} (see --list)", .path.display())]
    NoSuchStream { path: PathBuf, stream: usize },

    #[error("Cannot replay: the capture lacks {} of {} -> {} at stream offset {offset}", Count(*.len, "byte"), .dir.from(), .dir.to())]
    NotCaptured {
        dir: Direction,
        offset: u64,
        len: u64,
    },

    #[error("Replay differs from the recording: {} -> {} at stream offset {offset}", .dir.from(), .dir.to())]
    Differs { dir: Direction, offset: u64 },

    #[error("Cannot run {command}: {}", os_text(.source))]
    Command { command: String, source: io::Error },

    /// The end of a replay of several connections, or with a command: what failed,
    /// in words (each connection's own failure is on its verdict line).
    #[error("{what}")]
    ReplayFailed { what: String },

    /// `tiburoncin demo`: the relay or a built-in peer did not do what the demo
    /// expected.
    #[error("The demo did not go as planned: {0}")]
    Demo(String),

    /// A TLS certificate, key or setting that cannot be used.
    #[error("TLS: {0}")]
    Tls(String),

    #[error("User cancelled.")]
    Cancelled { signal: i32 },
}

impl Error {
    /// The process exit status for this failure: 128 + signal when cancelled, as a
    /// shell reports a command killed by that signal, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Cancelled { signal } => 128u8.saturating_add(*signal as u8),
            // Which connection to replay is part of the command line.
            Error::ChooseStream { .. } | Error::NoSuchStream { .. } => 2,
            _ => 1,
        }
    }
}

/// `text` with every control character written as an escape (`\u{1b}`, `\n`): for
/// echoing what a user typed, which must neither break a one-line message nor drive
/// the terminal.
pub fn visible(text: &str) -> String {
    let mut shown = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            shown.extend(c.escape_default());
        } else {
            shown.push(c);
        }
    }
    shown
}

/// The OS's message for an I/O error, as `strerror(3)` gives it.
pub fn os_text(error: &io::Error) -> String {
    strip_os_suffix(&error.to_string()).to_string()
}

/// Drops the ` (os error N)` Rust appends to an OS error's text.
pub fn strip_os_suffix(text: &str) -> &str {
    match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => &text[..at],
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_like_perror() {
        let refused = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(
            Error::Connect(refused).to_string(),
            "Establish a connection to the destination failed: Connection refused"
        );
        let pipe = io::Error::from_raw_os_error(libc::EPIPE);
        assert_eq!(
            Error::Passthrough {
                dir: Direction::BtoA,
                source: pipe
            }
            .to_string(),
            "Passthrough from B to A failed: Broken pipe"
        );
    }

    #[test]
    fn control_characters_are_shown_as_escapes() {
        assert_eq!(visible("a\x1b[31m\nb\u{9b}é"), "a\\u{1b}[31m\\nb\\u{9b}é");
    }

    #[test]
    fn exit_codes() {
        assert_eq!(Error::Cancelled { signal: 2 }.exit_code(), 130);
        assert_eq!(Error::Cancelled { signal: 15 }.exit_code(), 143);
        assert_eq!(Error::Accept(io::Error::other("x")).exit_code(), 1);
    }
}
