//! The logger thread: the one owner of every output.
//!
//! Relay threads never print; they send notes (see `event`), and this thread tells
//! each note to every output (see `sink::Output`): the terminal lines, the dump
//! files, the capture and the JSON events. It also keeps the count that "B is N
//! bytes behind" reports: bytes read from the producer minus bytes written to the
//! consumer, as the events tell it, for each connection apart; and the tally of how
//! the connections ended.
//!
//! One logger serves every connection (`-k`), which is what keeps lines whole: each
//! note's lines are formatted into one buffer and written in one piece, so lines of
//! concurrent connections interleave, each tagged `[N] `, but never mix.
//!
//! The logger must never hold the relay back longer than the output itself needs:
//! each note is formatted into one reusable buffer and appended to one buffered
//! writer, and the writer is flushed whenever the note queue is momentarily empty —
//! so a person watching sees every event at once (even through a pipe), while a bulk
//! transfer is written in big blocks.
//!
//! A failing output (a closed pipe, a full disk) is reported once on stderr and then
//! left alone: the relay goes on, because losing relayed bytes would be worse than
//! losing the view of them. The run then ends with a failure status.

use std::fmt::Display;
use std::fs::File;
use std::io::{self, Write};

use crossbeam_channel::Receiver;

use crate::capture::Format;
use crate::capture::gather::GatherWriter;
use crate::direction::Direction;
use crate::error::{Error, os_text};
use crate::output::capture_streams::CaptureStreams;
use crate::output::dump::{DumpFiles, DumpPaths};
use crate::output::json::JsonLines;
use crate::output::printer::{Flow, label};
use crate::output::progress;
use crate::output::sink::{Conn, ConnMap, Failures, Output};
use crate::output::terminal::Terminal;
use crate::output::timestamps::TimestampKind;
use crate::relay::event::{Closing, ConnId, Ending, Event, Note};
use crate::relay::faults::{self, Faults};
use crate::relay::kernel_queues::Queues;

/// Where `--events` goes: a file or standard output.
pub type JsonOut = Box<dyn Write + Send>;

/// How many connections ended which way.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub completed: u64,
    pub failed: u64,
    pub cancelled: u64,
}

/// How the run went, as far as the logger saw it.
#[derive(Debug, Default)]
pub struct Report {
    /// How the connections ended (a B that could not be reached counts as failed).
    pub connections: Tally,
    /// Outputs that failed (already reported on stderr).
    pub output_failures: Vec<Error>,
    /// Bytes relayed A->B and B->A, all connections together.
    pub bytes: [u64; 2],
}

/// The logger, as the session sets it up: its outputs, and how many connections it
/// serves. `run` puts it to work.
pub struct Logger<W: Write> {
    terminal: Terminal<W>,
    dumps: DumpFiles,
    json: Option<JsonLines>,
    capture: Option<CaptureStreams>,
    /// `-k`: what turns on the `[N] ` labels (and the terminal's summaries).
    many: bool,
}

impl<W: Write> Logger<W> {
    pub fn new(terminal: W, colour: bool) -> Self {
        Logger {
            terminal: Terminal::new(terminal, colour),
            dumps: DumpFiles::default(),
            json: None,
            capture: None,
            many: false,
        }
    }

    /// How messages name the terminal output (`to standard output`).
    pub fn terminal_named(mut self, what: &str) -> Self {
        self.terminal.named(what);
        self
    }

    /// `-q`: no per-chunk lines, only a summary when a connection ends.
    pub fn quiet(mut self, quiet: bool) -> Self {
        self.terminal.quiet = quiet;
        self
    }

    /// `-qq`: with `-k`, no line for each connection, only the final tally (errors
    /// still go to standard error).
    pub fn tally_only(mut self, tally_only: bool) -> Self {
        self.terminal.tally_only = tally_only;
        self
    }

    /// `-t`: start each line (but the hexdump rows) with the time of its event.
    pub fn timestamps(mut self, kind: Option<TimestampKind>) -> Self {
        self.terminal.timestamps(kind);
        self
    }

    /// `--max-dump`: show at most this many bytes of each chunk as hex, then how
    /// many more there were; with 0 no hexdump at all. (The other outputs get every
    /// byte.)
    pub fn max_dump(mut self, most: Option<usize>) -> Self {
        self.terminal.max_dump(most);
        self
    }

    /// The connections will bring dump files (`-o`, `-f`).
    pub fn dumping(mut self, dumping: bool) -> Self {
        self.dumps.brought = dumping;
        self
    }

    /// `-k` with `-o`/`-f`: make a pair of dump files for each connection, named
    /// after its number (see `DumpPaths::for_connection`).
    pub fn dumps_per_connection(mut self, paths: Option<DumpPaths>) -> Self {
        self.dumps.per_connection = paths;
        self
    }

    /// The faults injected (`--rate`, `--delay`...), to be said at each connection's
    /// start.
    pub fn faults(mut self, faults: &[Faults; 2]) -> Self {
        self.terminal.faults = faults::describe(faults);
        self
    }

    /// `-w`: also record every connection as a TCP stream in a capture, `out`, named
    /// `what` in messages.
    pub fn with_capture(
        mut self,
        what: impl Into<String>,
        out: GatherWriter<File>,
        format: Format,
    ) -> Self {
        self.capture = Some(CaptureStreams::new(what, out, format));
        self
    }

    /// `--events`: also write every event as a line of JSON into `out`, named `what`
    /// in messages.
    pub fn with_json(mut self, what: impl Into<String>, out: JsonOut) -> Self {
        self.json = Some(JsonLines::new(what, out));
        self
    }

    /// `-k`: many connections, to the B shown as `b`. Every line of a connection
    /// starts with its number in brackets, each connection ends with a summary line,
    /// and the run with a tally.
    pub fn many(mut self, b: impl Into<String>) -> Self {
        self.terminal.many = Some(b.into());
        self.many = true;
        self
    }

    /// Whether any output shows the bytes of each chunk. When none does, the relay
    /// sends no per-chunk events at all.
    pub fn watches_chunks(&self) -> bool {
        self.terminal.watches_chunks()
            || self.dumps.watches_chunks()
            || self.json.is_some()
            || self.capture.is_some()
    }

    /// Handles notes until every sender has hung up, then flushes everything.
    pub fn run(self, notes: Receiver<Note>) -> Report {
        let Logger {
            mut terminal,
            mut dumps,
            mut json,
            mut capture,
            many,
        } = self;
        if let Some(capture) = capture.as_mut() {
            capture.shared = many;
        }
        let mut outputs: Vec<&mut dyn Output> = vec![&mut terminal, &mut dumps];
        if let Some(json) = json.as_mut() {
            outputs.push(json);
        }
        if let Some(capture) = capture.as_mut() {
            outputs.push(capture);
        }
        Running {
            outputs,
            many,
            conns: ConnMap::default(),
            report: Report::default(),
        }
        .run(notes)
    }
}

/// The logger at work: its outputs, and what it counts.
struct Running<'a> {
    outputs: Vec<&'a mut dyn Output>,
    many: bool,
    /// The open connections.
    conns: ConnMap<Conn>,
    report: Report,
}

impl Running<'_> {
    fn run(mut self, notes: Receiver<Note>) -> Report {
        while let Ok(note) = notes.recv() {
            self.handle(note);
            // Batch whatever is already queued, then flush once: one write for a burst.
            while let Ok(note) = notes.try_recv() {
                self.handle(note);
            }
            self.flush();
        }
        let failures = &mut self.report.output_failures;
        for output in &mut self.outputs {
            output.finish(self.report.connections, failures);
        }
        self.flush();
        self.report
    }

    fn handle(&mut self, note: Note) {
        match note {
            Note::Event(id, event, kernel) => self.event(id, event, kernel),
            Note::Accepted { conn, a, at } => {
                let conn = self.conn(conn);
                let failures = &mut self.report.output_failures;
                for output in &mut self.outputs {
                    output.accepted(&conn, a, at, failures);
                }
            }
            Note::NotRelayed { conn, error, at } => {
                self.report.connections.failed += 1;
                let conn = self.conn(conn);
                let failures = &mut self.report.output_failures;
                say(&mut self.outputs, failures, &conn, &error);
                for output in &mut self.outputs {
                    output.not_relayed(&conn, &error, at, failures);
                }
            }
            Note::Open(id, mut opening) => {
                let conn = self.conn(id);
                let failures = &mut self.report.output_failures;
                for output in &mut self.outputs {
                    output.open(&conn, &mut opening, failures);
                }
                self.conns.insert(id, conn);
            }
            Note::Close(id, closing) => self.close(id, closing),
        }
    }

    /// A connection's bookkeeping, as it starts.
    fn conn(&self, id: ConnId) -> Conn {
        Conn {
            id,
            label: if self.many { label(id) } else { String::new() },
            flows: [Flow::default(); 2],
        }
    }

    fn event(&mut self, id: ConnId, event: Event, kernel: Option<Queues>) {
        let Some(conn) = self.conns.get_mut(&id) else {
            // Cannot happen: `Open` comes first, `Close` last. A chunk dropped here
            // would cost its reader credit, but its reader would be gone too.
            debug_assert!(false, "an event of connection {id}, which is not open");
            return;
        };
        match event {
            Event::Read { dir, ref chunk, .. } => {
                conn.flows[dir.index()].read += chunk.len() as u64;
            }
            Event::Wrote { dir, n, .. } => conn.flows[dir.index()].written += n as u64,
            _ => {}
        }
        let failures = &mut self.report.output_failures;
        if let Event::Failed { dir, ref error, .. } = event {
            say(&mut self.outputs, failures, conn, passthrough(dir, error));
        }
        for output in &mut self.outputs {
            output.event(conn, &event, kernel, failures);
        }
    }

    /// The connection's last note. (A connection stopped before it could open, while
    /// B was being dialled, closes without having opened.)
    fn close(&mut self, id: ConnId, closing: Closing) {
        let conn = self.conns.remove(&id).unwrap_or_else(|| self.conn(id));
        let failures = &mut self.report.output_failures;
        for output in &mut self.outputs {
            output.close(&conn, &closing, failures);
        }
        let tally = &mut self.report.connections;
        match closing.ending {
            // A reset that was asked for is a connection that went as planned.
            Ending::Completed | Ending::Reset => tally.completed += 1,
            Ending::Failed => tally.failed += 1,
            Ending::Cancelled(_) => tally.cancelled += 1,
        }
        self.report.bytes[0] += closing.bytes[0];
        self.report.bytes[1] += closing.bytes[1];
    }

    fn flush(&mut self) {
        for output in &mut self.outputs {
            output.flush(&mut self.report.output_failures);
        }
    }
}

/// A connection's error, on stderr, after everything the outputs showed before it.
fn say(outputs: &mut [&mut dyn Output], failures: &mut Failures, conn: &Conn, error: impl Display) {
    for output in outputs.iter_mut() {
        output.flush(failures);
    }
    progress::error_line(format_args!("{}{error}", conn.label));
}

/// What stderr and the JSON events say of a direction that failed. The error owns
/// its cause, so it gets a copy of the event's: the capture's comment uses the
/// event's own.
pub(crate) fn passthrough(dir: Direction, error: &io::Error) -> Error {
    let source = io::Error::new(error.kind(), os_text(error));
    Error::Passthrough { dir, source }
}

#[cfg(test)]
#[path = "logger_tests.rs"]
mod tests;
