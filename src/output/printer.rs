//! How the logger's lines look: colours, the `[N] ` label, the `-t` timestamp.
//!
//! Every line the logger prints goes through here, into one reusable buffer, so
//! the rules hold everywhere: colour and label first, then the time for a line that
//! says something, and hexdump rows with the label but without the time. The texts
//! are the original tool's, word for word (docs/intro.md shows them).

use std::io::Write;
use std::time::SystemTime;

use crate::output::hexdump;
use crate::output::timestamps::Timestamps;
use crate::relay::event::{ConnId, Direction};
use crate::relay::kernel_queues::Queues;
use crate::words::Count;

pub(crate) const COLOURS: [&[u8]; 2] = [b"\x1b[91m", b"\x1b[94m"];
pub(crate) const BOLD: &[u8] = b"\x1b[1m";
pub(crate) const RESET: &[u8] = b"\x1b[0m";

/// Bytes seen in one direction.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Flow {
    pub(crate) read: u64,
    pub(crate) written: u64,
}

impl Flow {
    pub(crate) fn backlog(self) -> u64 {
        self.read.saturating_sub(self.written)
    }
}

/// Formats lines into one reusable buffer.
pub(crate) struct Printer {
    /// What the lines of the note being handled came to; the logger writes it out.
    pub(crate) text: Vec<u8>,
    colour: bool,
    /// `-t`: the time at the start of each line that says something.
    pub(crate) timestamps: Option<Timestamps>,
    /// `--max-dump`: at most this many bytes of a chunk in its hexdump.
    pub(crate) max_dump: Option<usize>,
}

/// `[N] `, what every line of connection N starts with under `-k`.
pub(crate) fn label(conn: ConnId) -> String {
    format!("[{conn}] ")
}

impl Printer {
    pub(crate) fn new(colour: bool) -> Self {
        Printer {
            text: Vec::with_capacity(64 * 1024),
            colour,
            timestamps: None,
            max_dump: None,
        }
    }

    /// A connection was accepted at `at` (for relative timestamps).
    pub(crate) fn connection_at(&mut self, at: SystemTime) {
        if let Some(stamps) = self.timestamps.as_mut() {
            stamps.connection_at(at);
        }
    }

    /// What every line that says something starts with: the connection's label and,
    /// with `-t`, the time.
    pub(crate) fn lead(&mut self, label: &str, at: SystemTime) {
        self.text.extend_from_slice(label.as_bytes());
        if let Some(stamps) = self.timestamps.as_mut() {
            stamps.write(&mut self.text, at);
        }
    }

    /// One line, in the direction's colour if it has one.
    pub(crate) fn line(
        &mut self,
        dir: Option<Direction>,
        label: &str,
        at: SystemTime,
        args: std::fmt::Arguments,
    ) {
        let colour = dir.filter(|_| self.colour);
        if let Some(dir) = colour {
            self.text.extend_from_slice(COLOURS[dir.index()]);
        }
        self.lead(label, at);
        // Writing into a Vec cannot fail.
        let _ = self.text.write_fmt(args);
        if colour.is_some() {
            self.text.extend_from_slice(RESET);
        }
    }

    /// `A -> B sent N bytes` and the hexdump rows (with `--max-dump N`, of the first N
    /// bytes only, then `... M more bytes`).
    ///
    /// Only the first line carries the timestamp, not the rows: the rows are that
    /// line's bytes, read at that one instant, so a time on each would repeat it
    /// hundreds of times for a big chunk, and would push the rows past the width of a
    /// standard terminal, which would wrap every one of them. The label `[N] ` is on
    /// every row, so that `grep '^\[3\] '` keeps whole hexdumps.
    pub(crate) fn sent(
        &mut self,
        label: &str,
        dir: Direction,
        at: SystemTime,
        offset: u64,
        bytes: &[u8],
    ) {
        // As the original: colour, the line, bold for the rows, one reset at the end.
        if self.colour {
            self.text.extend_from_slice(COLOURS[dir.index()]);
        }
        self.lead(label, at);
        let _ = writeln!(
            self.text,
            "{} -> {} sent {}",
            dir.from(),
            dir.to(),
            Count(bytes.len(), "byte")
        );
        if self.colour {
            self.text.extend_from_slice(BOLD);
        }
        let shown = self
            .max_dump
            .map_or(bytes.len(), |most| most.min(bytes.len()));
        // Only `-k` labels its lines; its rows are the narrow ones, so that the label
        // and a row fit an 80-column terminal.
        if label.is_empty() {
            hexdump::write_rows(&mut self.text, offset, &bytes[..shown]);
        } else {
            hexdump::write_prefixed_rows(&mut self.text, label.as_bytes(), offset, &bytes[..shown]);
        }
        let more = bytes.len() - shown;
        // With --max-dump 0 there is no hexdump to say the rest of.
        if more > 0 && shown > 0 {
            let unit = if more == 1 { "byte" } else { "bytes" };
            let _ = writeln!(self.text, "{label}... {more} more {unit}");
        }
        if self.colour {
            self.text.extend_from_slice(RESET);
        }
    }

    /// `B is N bytes behind` or `B is in sync`.
    /// With `--kernel-queues`, followed by the kernel's queues of the moment:
    /// `B is 512 bytes behind (kernel: 4608 queued to B, 0 unread from A)`.
    pub(crate) fn status(
        &mut self,
        label: &str,
        dir: Direction,
        at: SystemTime,
        flow: Flow,
        kernel: Option<Queues>,
    ) {
        let kernel = KernelSuffix(dir, kernel);
        match flow.backlog() {
            0 => self.line(
                Some(dir),
                label,
                at,
                format_args!("{} is in sync{kernel}\n", dir.to()),
            ),
            behind => self.line(
                Some(dir),
                label,
                at,
                format_args!("{} is {} behind{kernel}\n", dir.to(), Count(behind, "byte")),
            ),
        }
    }
}

/// ` (kernel: N queued to B, M unread from A)` after a status, or nothing.
struct KernelSuffix(Direction, Option<Queues>);

impl std::fmt::Display for KernelSuffix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.1 {
            Some(Queues {
                to_consumer,
                from_producer,
            }) => write!(
                f,
                " (kernel: {to_consumer} queued to {}, {from_producer} unread from {})",
                self.0.to(),
                self.0.from()
            ),
            None => Ok(()),
        }
    }
}
