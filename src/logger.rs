//! The logger thread: the one owner of every output.
//!
//! Relay threads never print; they send notes (see `event`), and this thread turns
//! them into the terminal lines, the dump files, the capture and the JSON events. It also keeps the
//! count that "B is N bytes behind" reports: bytes read from the producer minus bytes
//! written to the consumer, as the events tell it, for each connection apart.
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

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use crossbeam_channel::Receiver;

use crate::buffer::Recycler;
use crate::capture::{Capture, Connection, Format};
use crate::config::DumpPaths;
use crate::dump::DumpWriter;
use crate::error::Error;
use crate::event::{Closing, ConnId, Direction, Ending, Event, Note, Opening};
use crate::events_json::{JsonEvents, Kind, Record};
use crate::faults::{self, Faults, Injected};
use crate::hexdump;
use crate::kernel_queues::Queues;
use crate::timestamps::{TimestampKind, Timestamps};

pub(crate) const COLOURS: [&[u8]; 2] = [b"\x1b[91m", b"\x1b[94m"];
pub(crate) const BOLD: &[u8] = b"\x1b[1m";
pub(crate) const RESET: &[u8] = b"\x1b[0m";

/// Where `--events` goes: a file or standard output.
pub type JsonOut = Box<dyn Write + Send>;

/// Bytes seen in one direction.
#[derive(Debug, Default, Clone, Copy)]
struct Flow {
    read: u64,
    written: u64,
}

impl Flow {
    fn backlog(self) -> u64 {
        self.read.saturating_sub(self.written)
    }
}

/// An output that may fail; after the first failure it is dropped.
struct Sink<T> {
    what: String,
    out: Option<T>,
}

impl<T> Sink<T> {
    fn new(what: impl Into<String>, out: T) -> Self {
        Sink {
            what: what.into(),
            out: Some(out),
        }
    }

    fn apply(&mut self, failures: &mut Vec<Error>, op: impl FnOnce(&mut T) -> io::Result<()>) {
        if let Some(out) = self.out.as_mut() {
            if let Err(source) = op(out) {
                output_failed(self.what.clone(), source, failures);
                self.out = None;
            }
        }
    }
}

/// Reports an output that failed, once, on stderr, and keeps it for the report.
fn output_failed(what: String, source: io::Error, failures: &mut Vec<Error>) {
    let error = Error::Output { what, source };
    eprintln!("{error}");
    failures.push(error);
}

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

/// What the logger knows of one connection while it relays.
struct Conn {
    /// `[N] ` with `-k`, empty otherwise.
    label: String,
    flows: [Flow; 2],
    recyclers: [Recycler; 2],
    dumps: Vec<Sink<DumpWriter<BufWriter<File>>>>,
    /// `-w`: the connection's TCP stream in the capture.
    capture: Option<Sink<Capture<CaptureOut>>>,
}

/// `-w`: the capture file. Each connection writes its own TCP stream into it through
/// a `Capture` of its own; the first one writes the file header.
struct CaptureFile {
    what: String,
    format: Format,
    /// The file, until the first stream takes it (or, with `-k`, shares it).
    file: Option<BufWriter<File>>,
    /// `-k`: the file, shared by every connection's stream.
    shared: Option<SharedFile>,
    /// Whether the file header is written (by the first connection's stream).
    started: bool,
    /// Writing it failed once: no stream writes to it any more.
    broken: bool,
}

/// Where a connection's capture stream writes.
enum CaptureOut {
    /// Without `-k` there is one connection, which owns the file: no lock per write.
    Own(BufWriter<File>),
    /// With `-k` the connections share it.
    Shared(SharedFile),
}

impl Write for CaptureOut {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            CaptureOut::Own(out) => out.write(bytes),
            CaptureOut::Shared(out) => out.write(bytes),
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            CaptureOut::Own(out) => out.write_all(bytes),
            CaptureOut::Shared(out) => out.write_all(bytes),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            CaptureOut::Own(out) => out.flush(),
            CaptureOut::Shared(out) => out.flush(),
        }
    }
}

/// One buffered file written by several owners, all on the logger's thread: the
/// lock is never contended, it only makes the sharing safe to hand over to it.
#[derive(Clone)]
struct SharedFile(Arc<Mutex<BufWriter<File>>>);

impl Write for SharedFile {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .write(bytes)
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .write_all(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .flush()
    }
}

/// Formats lines into one reusable buffer.
struct Printer {
    text: Vec<u8>,
    colour: bool,
    /// `-t`: the time at the start of each line that says something.
    timestamps: Option<Timestamps>,
}

pub struct Logger<W: Write> {
    terminal: Sink<W>,
    json: Option<Sink<JsonEvents<JsonOut>>>,
    capture: Option<CaptureFile>,
    print: Printer,
    quiet: bool,
    /// Whether the connections have dump files (they come with each `Opening`).
    dumping: bool,
    /// `-k` with `-o`/`-f`: the logger makes each connection's dump files itself.
    dumps_per_connection: Option<DumpPaths>,
    /// `Injecting faults: ...`, printed when each connection opens.
    faults: Option<String>,
    /// `-k`: where B is, as typed, for the line that says it is being dialled. Also
    /// what turns on the `[N] ` labels, the summaries and the final tally.
    many: Option<String>,
    conns: HashMap<ConnId, Conn>,
    report: Report,
}

impl<W: Write> Logger<W> {
    pub fn new(terminal: W, colour: bool) -> Self {
        Logger {
            terminal: Sink::new("to standard output", terminal),
            json: None,
            capture: None,
            print: Printer {
                text: Vec::with_capacity(64 * 1024),
                colour,
                timestamps: None,
            },
            quiet: false,
            dumping: false,
            dumps_per_connection: None,
            faults: None,
            many: None,
            conns: HashMap::new(),
            report: Report::default(),
        }
    }

    /// How messages name the terminal output (`to standard output`).
    pub fn terminal_named(mut self, what: &str) -> Self {
        self.terminal.what = what.to_string();
        self
    }

    /// `-q`: no per-chunk lines, only a summary when a connection ends.
    pub fn quiet(mut self, quiet: bool) -> Self {
        self.quiet = quiet;
        self
    }

    /// `-t`: start each line (but the hexdump rows) with the time of its event.
    pub fn timestamps(mut self, kind: Option<TimestampKind>) -> Self {
        self.print.timestamps = kind.map(Timestamps::new);
        self
    }

    /// The connections will bring dump files (`-o`, `-f`).
    pub fn dumping(mut self, dumping: bool) -> Self {
        self.dumping = dumping;
        self
    }

    /// `-k` with `-o`/`-f`: make a pair of dump files for each connection, named
    /// after its number (see `DumpPaths::for_connection`).
    pub fn dumps_per_connection(mut self, paths: Option<DumpPaths>) -> Self {
        self.dumps_per_connection = paths;
        self
    }

    /// The faults injected (`--rate`, `--delay`...), to be said at each connection's
    /// start.
    pub fn faults(mut self, faults: &[Faults; 2]) -> Self {
        self.faults = faults::describe(faults);
        self
    }

    /// `-w`: also record every connection as a TCP stream in a capture, `out`, named
    /// `what` in messages.
    pub fn with_capture(
        mut self,
        what: impl Into<String>,
        out: BufWriter<File>,
        format: Format,
    ) -> Self {
        self.capture = Some(CaptureFile {
            what: what.into(),
            format,
            file: Some(out),
            shared: None,
            started: false,
            broken: false,
        });
        self
    }

    /// `--events`: also write every event as a line of JSON into `out`, named `what`
    /// in messages.
    pub fn with_json(mut self, what: impl Into<String>, out: JsonOut) -> Self {
        self.json = Some(Sink::new(what, JsonEvents::new(out)));
        self
    }

    /// `-k`: many connections, to the B shown as `b`. Every line of a connection
    /// starts with its number in brackets, each connection ends with a summary line,
    /// and the run with a tally.
    pub fn many(mut self, b: impl Into<String>) -> Self {
        self.many = Some(b.into());
        self
    }

    /// Whether any output shows the bytes of each chunk. When none does, the relay
    /// sends no per-chunk events at all.
    pub fn watches_chunks(&self) -> bool {
        !self.quiet
            || self.dumping
            || self.dumps_per_connection.is_some()
            || self.json.is_some()
            || self.capture.is_some()
    }

    /// Handles notes until every sender has hung up, then flushes everything.
    pub fn run(mut self, notes: Receiver<Note>) -> Report {
        while let Ok(note) = notes.recv() {
            self.handle(note);
            // Batch whatever is already queued, then flush once: one write for a burst.
            while let Ok(note) = notes.try_recv() {
                self.handle(note);
            }
            self.flush();
        }
        if self.many.is_some() {
            let Tally {
                completed,
                failed,
                cancelled,
            } = self.report.connections;
            let total = completed + failed + cancelled;
            self.print.text.clear();
            self.print.lead("", SystemTime::now());
            let _ = writeln!(
                self.print.text,
                "Served {total} connections: {completed} completed, {failed} failed, \
                 {cancelled} cancelled"
            );
            self.emit();
        }
        self.flush();
        self.report
    }

    fn handle(&mut self, note: Note) {
        self.print.text.clear();
        match note {
            Note::Event(id, event, kernel) => self.event(id, event, kernel),
            Note::Accepted { conn, a, at } => {
                self.print.connection_at(at);
                let b = self.many.as_deref().unwrap_or("B");
                let a = a.map_or_else(|| "?".to_string(), |a| a.to_string());
                self.print.line(
                    None,
                    &label(conn),
                    at,
                    format_args!("Connection from A {a}, connecting to B {b}...\n"),
                );
            }
            Note::NotRelayed { conn, error, at } => {
                self.report.connections.failed += 1;
                self.flush();
                eprintln!("{}{error}", label(conn));
                let message = error.to_string();
                self.json(|j| j.end(at, conn, "failed", [0, 0], Some(&message)));
            }
            Note::Open(id, opening) => self.open(id, *opening),
            Note::Close(id, closing) => self.close(id, closing),
        }
        self.emit();
    }

    fn open(&mut self, id: ConnId, opening: Opening) {
        let Opening {
            at,
            a,
            b,
            buffers: (ab, ba),
            recyclers,
            dumps,
        } = opening;
        let label = if self.many.is_some() {
            label(id)
        } else {
            String::new()
        };
        self.print.connection_at(at);
        self.print.line(
            None,
            &label,
            at,
            format_args!("Allocating buffers: {ab} and {ba} bytes...\n"),
        );
        if let Some(faults) = &self.faults {
            self.print
                .line(None, &label, at, format_args!("{faults}\n"));
        }
        self.json(|j| j.open(at, id, a, b));
        let made: Vec<Result<(String, File), Error>> = match (dumps, &self.dumps_per_connection) {
            (Some(files), _) => files.into_iter().map(Ok).collect(),
            (None, Some(paths)) => {
                let paths = paths.for_connection(id);
                [paths.a_to_b, paths.b_to_a]
                    .into_iter()
                    .map(|path| match File::create(&path) {
                        Ok(file) => Ok((path.display().to_string(), file)),
                        Err(source) => Err(Error::CreateOutput { path, source }),
                    })
                    .collect()
            }
            (None, None) => Vec::new(),
        };
        let dumps = made
            .into_iter()
            .map(|made| match made {
                Ok((name, file)) => Sink::new(
                    name,
                    DumpWriter::new(BufWriter::with_capacity(64 * 1024, file)),
                ),
                // A file that cannot be created costs that file, not the relay.
                Err(error) => {
                    eprintln!("{label}{error}");
                    self.report.output_failures.push(error);
                    Sink {
                        what: String::new(),
                        out: None,
                    }
                }
            })
            .collect();
        let capture = self.start_stream(at, a, b);
        let conn = Conn {
            label,
            flows: [Flow::default(); 2],
            recyclers,
            dumps,
            capture,
        };
        self.conns.insert(id, conn);
    }

    /// `-w`: the connection's stream in the capture, its handshake written. None
    /// once the capture has failed: a broken file is reported once, not once a
    /// connection.
    fn start_stream(
        &mut self,
        at: SystemTime,
        a: Option<SocketAddr>,
        b: Option<SocketAddr>,
    ) -> Option<Sink<Capture<CaptureOut>>> {
        let capture = self.capture.as_mut().filter(|c| !c.broken)?;
        let out = if self.many.is_some() {
            if let Some(file) = capture.file.take() {
                capture.shared = Some(SharedFile(Arc::new(Mutex::new(file))));
            }
            CaptureOut::Shared(capture.shared.clone()?)
        } else {
            CaptureOut::Own(capture.file.take()?)
        };
        // The OS names both ends of every TCP connection; the fallback is never used.
        let unknown = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
        let connection = Connection::new(a.unwrap_or(unknown), b.unwrap_or(unknown), at);
        let started = if capture.started {
            Capture::continuing(out, capture.format, connection)
        } else {
            Capture::new(out, capture.format, connection)
        };
        capture.started = true;
        let failures = &mut self.report.output_failures;
        match started {
            Ok(started) => Some(Sink::new(capture.what.clone(), started)),
            Err(source) => {
                capture.broken = true;
                output_failed(capture.what.clone(), source, failures);
                None
            }
        }
    }

    fn event(&mut self, id: ConnId, event: Event, kernel: Option<Queues>) {
        let Some(conn) = self.conns.get_mut(&id) else {
            // Cannot happen: `Open` comes first, `Close` last. A chunk dropped here
            // would cost its reader credit, but its reader would be gone too.
            debug_assert!(false, "an event of connection {id}, which is not open");
            return;
        };
        let failures = &mut self.report.output_failures;
        if let Some(stream) = conn.capture.as_mut() {
            stream.apply(failures, |c| c.record(&event));
            if stream.out.is_none() {
                // The file is broken: no other stream may write to it either.
                conn.capture = None;
                if let Some(capture) = self.capture.as_mut() {
                    capture.broken = true;
                }
            }
        }
        match event {
            Event::Read { dir, chunk, at } => {
                let flow = &mut conn.flows[dir.index()];
                let offset = flow.read;
                flow.read += chunk.len() as u64;
                let flow = *flow;
                if !self.quiet {
                    self.print.sent(&conn.label, dir, at, offset, &chunk);
                    self.print.status(&conn.label, dir, at, flow, kernel);
                }
                if let Some(dump) = conn.dumps.get_mut(dir.index()) {
                    dump.apply(failures, |d| d.write(&chunk));
                }
                if let Some(json) = self.json.as_mut() {
                    let record = Record {
                        length: chunk.len() as u64,
                        bytes: Some(&chunk),
                        kernel,
                        ..Record::new(at, id, dir, Kind::Read, offset, flow.backlog())
                    };
                    json.apply(failures, |j| j.record(&record));
                }
            }
            Event::Wrote { dir, n, spent, at } => {
                let flow = &mut conn.flows[dir.index()];
                let offset = flow.written;
                flow.written += n as u64;
                let flow = *flow;
                if !self.quiet {
                    self.print.status(&conn.label, dir, at, flow, kernel);
                }
                if let Some(json) = self.json.as_mut() {
                    let record = Record {
                        length: n as u64,
                        kernel,
                        ..Record::new(at, id, dir, Kind::Wrote, offset, flow.backlog())
                    };
                    json.apply(failures, |j| j.record(&record));
                }
                if let Some(chunk) = spent {
                    conn.recyclers[dir.index()].buffer(chunk);
                }
            }
            Event::Eof { dir, at } => {
                let flow = conn.flows[dir.index()];
                if !self.quiet {
                    self.print.line(
                        Some(dir),
                        &conn.label,
                        at,
                        format_args!("{} -> {} flow shutdown\n", dir.from(), dir.to()),
                    );
                    self.print.status(&conn.label, dir, at, flow, kernel);
                }
                if let Some(json) = self.json.as_mut() {
                    let record = Record {
                        kernel,
                        ..Record::new(at, id, dir, Kind::Eof, flow.read, flow.backlog())
                    };
                    json.apply(failures, |j| j.record(&record));
                }
            }
            Event::Closed { dir, at } => {
                if let Some(json) = self.json.as_mut() {
                    let flow = conn.flows[dir.index()];
                    let record =
                        Record::new(at, id, dir, Kind::Closed, flow.written, flow.backlog());
                    json.apply(failures, |j| j.record(&record));
                }
            }
            Event::Injected { dir, fault, at } => {
                let flow = conn.flows[dir.index()];
                let what = match fault {
                    Injected::Reset(_) => "reset",
                    Injected::Stall(_) => "stalled",
                };
                // Shown even with -q: like an error, it changes the conversation.
                self.print.line(
                    Some(dir),
                    &conn.label,
                    at,
                    format_args!(
                        "{} -> {} {what} after {} bytes (injected)\n",
                        dir.from(),
                        dir.to(),
                        fault.after()
                    ),
                );
                if let Some(json) = self.json.as_mut() {
                    let record = Record {
                        fault: Some(fault.word()),
                        ..Record::new(at, id, dir, Kind::Fault, fault.after(), flow.backlog())
                    };
                    json.apply(failures, |j| j.record(&record));
                }
            }
            Event::Failed { dir, error, at, .. } => {
                // Whatever was printed before the failure comes first.
                self.terminal.apply(failures, |out| out.flush());
                let error = Error::Passthrough { dir, source: error };
                eprintln!("{}{error}", conn.label);
                if let Some(json) = self.json.as_mut() {
                    let flow = conn.flows[dir.index()];
                    let message = error.to_string();
                    let record = Record {
                        error: Some(&message),
                        ..Record::new(at, id, dir, Kind::Failed, flow.written, flow.backlog())
                    };
                    json.apply(failures, |j| j.record(&record));
                }
            }
        }
    }

    /// The connection's last note. (A connection stopped before it could open, while
    /// B was being dialled, closes without having opened.)
    fn close(&mut self, id: ConnId, closing: Closing) {
        let Closing {
            ending,
            bytes,
            lasted,
            at,
        } = closing;
        let label = match self.conns.remove(&id) {
            Some(mut conn) => {
                let failures = &mut self.report.output_failures;
                for dump in &mut conn.dumps {
                    dump.apply(failures, |d| d.flush());
                }
                if let Some(stream) = conn.capture.as_mut() {
                    // A byte still held back is shown: the stream holds every byte.
                    stream.apply(failures, |c| {
                        c.finish(at)?;
                        c.flush()
                    });
                }
                conn.label
            }
            None if self.many.is_some() => label(id),
            None => String::new(),
        };
        let tally = &mut self.report.connections;
        match ending {
            // A reset that was asked for is a connection that went as planned.
            Ending::Completed | Ending::Reset => tally.completed += 1,
            Ending::Failed => tally.failed += 1,
            Ending::Cancelled(_) => tally.cancelled += 1,
        }
        self.report.bytes[0] += bytes[0];
        self.report.bytes[1] += bytes[1];
        if self.quiet || self.many.is_some() {
            let [ab, ba] = bytes;
            let seconds = lasted.as_secs_f64();
            // Without -k the line is the original -q summary, word for word.
            let how = match ending {
                Ending::Completed => "",
                _ if self.many.is_none() => "",
                Ending::Failed => " (failed)",
                Ending::Cancelled(_) => " (cancelled)",
                Ending::Reset => " (reset injected)",
            };
            self.print.line(
                None,
                &label,
                SystemTime::now(),
                format_args!(
                    "Relayed A -> B {ab} bytes, B -> A {ba} bytes in {seconds:.3} s{how}\n"
                ),
            );
        }
        self.json(|j| j.end(at, id, ending.word(), bytes, None));
    }

    /// Writes what the last note printed.
    fn emit(&mut self) {
        let text = &self.print.text;
        self.terminal
            .apply(&mut self.report.output_failures, |out| out.write_all(text));
    }

    fn json(&mut self, op: impl FnOnce(&mut JsonEvents<JsonOut>) -> io::Result<()>) {
        if let Some(json) = self.json.as_mut() {
            json.apply(&mut self.report.output_failures, op);
        }
    }

    fn flush(&mut self) {
        let failures = &mut self.report.output_failures;
        self.terminal.apply(failures, |out| out.flush());
        for conn in self.conns.values_mut() {
            for dump in &mut conn.dumps {
                dump.apply(failures, |d| d.flush());
            }
            // (With -k each stream flushes the shared file: a few flushes a batch.)
            if let Some(stream) = conn.capture.as_mut() {
                stream.apply(failures, |c| c.flush());
            }
        }
        if let Some(json) = self.json.as_mut() {
            json.apply(failures, |j| j.flush());
        }
    }
}

/// `[N] `, what every line of connection N starts with under `-k`.
fn label(conn: ConnId) -> String {
    format!("[{conn}] ")
}

impl Printer {
    /// A connection was accepted at `at` (for relative timestamps).
    fn connection_at(&mut self, at: SystemTime) {
        if let Some(stamps) = self.timestamps.as_mut() {
            stamps.connection_at(at);
        }
    }

    /// What every line that says something starts with: the connection's label and,
    /// with `-t`, the time.
    fn lead(&mut self, label: &str, at: SystemTime) {
        self.text.extend_from_slice(label.as_bytes());
        if let Some(stamps) = self.timestamps.as_mut() {
            stamps.write(&mut self.text, at);
        }
    }

    /// One line, in the direction's colour if it has one.
    fn line(
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

    /// `A -> B sent N bytes` and the hexdump rows.
    ///
    /// Only the first line carries the timestamp, not the rows: the rows are that
    /// line's bytes, read at that one instant, so a time on each would repeat it
    /// hundreds of times for a big chunk, and would push the 79-column rows past the
    /// width of a standard terminal, which would wrap every one of them. The label
    /// `[N] ` is on every row, so that `grep '^\[3\] '` keeps whole hexdumps.
    fn sent(&mut self, label: &str, dir: Direction, at: SystemTime, offset: u64, bytes: &[u8]) {
        // As the original: colour, the line, bold for the rows, one reset at the end.
        if self.colour {
            self.text.extend_from_slice(COLOURS[dir.index()]);
        }
        self.lead(label, at);
        let _ = writeln!(
            self.text,
            "{} -> {} sent {} bytes",
            dir.from(),
            dir.to(),
            bytes.len()
        );
        if self.colour {
            self.text.extend_from_slice(BOLD);
        }
        hexdump::write_prefixed_rows(&mut self.text, label.as_bytes(), offset, bytes);
        if self.colour {
            self.text.extend_from_slice(RESET);
        }
    }

    /// `B is N bytes behind` or `B is in sync`.
    /// With `--kernel-queues`, followed by the kernel's queues of the moment:
    /// `B is 512 bytes behind (kernel: 4608 queued to B, 0 unread from A)`.
    fn status(
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
                format_args!("{} is {behind} bytes behind{kernel}\n", dir.to()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::{Chunk, Credit, user_space_buffer};
    use std::time::Duration;

    /// A time for events whose time is not shown.
    const T: SystemTime = SystemTime::UNIX_EPOCH;

    fn chunk(credit: &mut Credit, bytes: &[u8]) -> Chunk {
        let mut blank = credit.blank(&crossbeam_channel::never()).unwrap();
        let n = blank.read_from(bytes).unwrap();
        credit.fill(blank, n)
    }

    /// Runs `logger` over connection 1's `events`, opened at `at` and closed with
    /// `ending`, and gives its report.
    fn feed<W: Write>(
        logger: Logger<W>,
        at: SystemTime,
        ending: Ending,
        events: impl FnOnce(&mut Credit, &mut Credit) -> Vec<Event>,
    ) -> Report {
        let (mut ab, rab) = user_space_buffer(2048);
        let (mut ba, rba) = user_space_buffer(2048);
        let (tx, rx) = crossbeam_channel::unbounded();
        let opening = Opening {
            at,
            a: None,
            b: None,
            buffers: (2048, 2048),
            recyclers: [rab, rba],
            dumps: None,
        };
        tx.send(Note::Open(1, Box::new(opening))).unwrap();
        let mut bytes = [0; 2];
        for event in events(&mut ab, &mut ba) {
            if let Event::Read { dir, chunk, .. } = &event {
                bytes[dir.index()] += chunk.len() as u64;
            }
            tx.send(Note::Event(1, event, None)).unwrap();
        }
        let closing = Closing {
            ending,
            bytes,
            lasted: Duration::from_millis(1500),
            at,
        };
        tx.send(Note::Close(1, closing)).unwrap();
        drop(tx);
        logger.run(rx)
    }

    /// The terminal text for `events` of a default logger, colours or not.
    fn log(colour: bool, events: impl FnOnce(&mut Credit, &mut Credit) -> Vec<Event>) -> String {
        let mut out = Vec::new();
        feed(Logger::new(&mut out, colour), T, Ending::Completed, events);
        let text = String::from_utf8(out).unwrap();
        text.strip_prefix("Allocating buffers: 2048 and 2048 bytes...\n")
            .expect("the first line")
            .to_string()
    }

    fn hello_how_are_you(ab: &mut Credit, ba: &mut Credit) -> Vec<Event> {
        use Direction::*;
        let hello = chunk(ab, b"hello\n");
        let hi = chunk(ba, b"hi there!\n");
        let how = chunk(ba, b"how are you?\n");
        vec![
            Event::Read {
                dir: AtoB,
                chunk: hello.clone(),
                at: T,
            },
            Event::Wrote {
                dir: AtoB,
                n: 6,
                spent: Some(hello),
                at: T,
            },
            Event::Read {
                dir: BtoA,
                chunk: hi.clone(),
                at: T,
            },
            Event::Wrote {
                dir: BtoA,
                n: 10,
                spent: Some(hi),
                at: T,
            },
            Event::Read {
                dir: BtoA,
                chunk: how.clone(),
                at: T,
            },
            Event::Wrote {
                dir: BtoA,
                n: 13,
                spent: Some(how),
                at: T,
            },
            Event::Eof { dir: AtoB, at: T },
            Event::Closed { dir: AtoB, at: T },
        ]
    }

    #[test]
    fn the_design_transcript() {
        let expected = "\
A -> B sent 6 bytes
00000000  68 65 6c 6c 6f 0a                                 |hello.          |
B is 6 bytes behind
B is in sync
B -> A sent 10 bytes
00000000  68 69 20 74 68 65 72 65  21 0a                    |hi there!.      |
A is 10 bytes behind
A is in sync
B -> A sent 13 bytes
0000000a                                 68 6f 77 20 61 72  |          how ar|
00000010  65 20 79 6f 75 3f 0a                              |e you?.         |
A is 13 bytes behind
A is in sync
A -> B flow shutdown
B is in sync
";
        assert_eq!(log(false, hello_how_are_you), expected);
    }

    #[test]
    fn many_connections_label_every_line_and_sum_up() {
        let mut out = Vec::new();
        let logger = Logger::new(&mut out, false).many("127.0.0.1:8082");
        let report = feed(logger, T, Ending::Failed, hello_how_are_you);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines
                .iter()
                .all(|l| l.starts_with("[1] ") || l.starts_with("Served "))
        );
        assert_eq!(lines[0], "[1] Allocating buffers: 2048 and 2048 bytes...");
        assert_eq!(
            lines[2],
            "[1] 00000000  68 65 6c 6c 6f 0a                                 |hello.          |"
        );
        assert_eq!(
            &lines[lines.len() - 2..],
            [
                "[1] Relayed A -> B 6 bytes, B -> A 23 bytes in 1.500 s (failed)",
                "Served 1 connections: 0 completed, 1 failed, 0 cancelled",
            ]
        );
        assert_eq!(report.connections.failed, 1);
        assert_eq!(report.bytes, [6, 23]);
    }

    #[test]
    fn timestamps_lead_every_line_but_the_rows() {
        let origin = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let read_at = origin + Duration::from_micros(1500);
        let wrote_at = origin + Duration::from_micros(2_000_007);
        let mut out = Vec::new();
        let logger = Logger::new(&mut out, false).timestamps(Some(TimestampKind::Relative));
        feed(logger, origin, Ending::Completed, |ab, _| {
            let c = chunk(ab, &[b'x'; 20]);
            vec![
                Event::Read {
                    dir: Direction::AtoB,
                    chunk: c.clone(),
                    at: read_at,
                },
                Event::Wrote {
                    dir: Direction::AtoB,
                    n: 20,
                    spent: Some(c),
                    at: wrote_at,
                },
                Event::Eof {
                    dir: Direction::AtoB,
                    at: wrote_at,
                },
            ]
        });
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\
0.000000 Allocating buffers: 2048 and 2048 bytes...
0.001500 A -> B sent 20 bytes
00000000  78 78 78 78 78 78 78 78  78 78 78 78 78 78 78 78  |xxxxxxxxxxxxxxxx|
00000010  78 78 78 78                                       |xxxx            |
0.001500 B is 20 bytes behind
2.000007 B is in sync
2.000007 A -> B flow shutdown
2.000007 B is in sync
"
        );
    }

    #[test]
    fn kernel_queues_follow_the_status() {
        let mut out = Vec::new();
        let (mut ab, rab) = user_space_buffer(2048);
        let (_, rba) = user_space_buffer(2048);
        let (tx, rx) = crossbeam_channel::unbounded();
        let opening = Opening {
            at: T,
            a: None,
            b: None,
            buffers: (2048, 2048),
            recyclers: [rab, rba],
            dumps: None,
        };
        tx.send(Note::Open(1, Box::new(opening))).unwrap();
        let c = chunk(&mut ab, &[b'x'; 512]);
        let queues = |to_consumer, from_producer| {
            Some(Queues {
                to_consumer,
                from_producer,
            })
        };
        let read = Event::Read {
            dir: Direction::AtoB,
            chunk: c.clone(),
            at: T,
        };
        tx.send(Note::Event(1, read, queues(4608, 1024))).unwrap();
        let wrote = Event::Wrote {
            dir: Direction::AtoB,
            n: 512,
            spent: Some(c),
            at: T,
        };
        tx.send(Note::Event(1, wrote, queues(5120, 0))).unwrap();
        drop(tx);
        Logger::new(&mut out, false).run(rx);
        let text = String::from_utf8(out).unwrap();
        let statuses: Vec<&str> = text.lines().filter(|l| l.starts_with("B is")).collect();
        assert_eq!(
            statuses,
            [
                "B is 512 bytes behind (kernel: 4608 queued to B, 1024 unread from A)",
                "B is in sync (kernel: 5120 queued to B, 0 unread from A)",
            ]
        );
    }

    #[test]
    fn partial_writes_report_the_backlog() {
        let text = log(false, |ab, _| {
            let c = chunk(ab, &[b'X'; 512]);
            vec![
                Event::Read {
                    dir: Direction::AtoB,
                    chunk: c.clone(),
                    at: T,
                },
                Event::Wrote {
                    dir: Direction::AtoB,
                    n: 200,
                    spent: None,
                    at: T,
                },
                Event::Eof {
                    dir: Direction::AtoB,
                    at: T,
                },
                Event::Wrote {
                    dir: Direction::AtoB,
                    n: 312,
                    spent: Some(c),
                    at: T,
                },
            ]
        });
        let statuses: Vec<&str> = text.lines().filter(|l| l.starts_with("B is")).collect();
        assert_eq!(
            statuses,
            [
                "B is 512 bytes behind",
                "B is 312 bytes behind",
                "B is 312 bytes behind",
                "B is in sync"
            ]
        );
    }

    #[test]
    fn quiet_prints_only_the_summary() {
        let mut out = Vec::new();
        let logger = Logger::new(&mut out, true).quiet(true);
        assert!(!logger.watches_chunks());
        let report = feed(logger, T, Ending::Completed, |_, _| {
            vec![Event::Eof {
                dir: Direction::AtoB,
                at: T,
            }]
        });
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "Allocating buffers: 2048 and 2048 bytes...\n\
             Relayed A -> B 0 bytes, B -> A 0 bytes in 1.500 s\n"
        );
        assert_eq!(report.connections.completed, 1);
    }

    #[test]
    fn colours_as_the_original() {
        let text = log(true, |_, ba| {
            let c = chunk(ba, b"ok");
            vec![Event::Read {
                dir: Direction::BtoA,
                chunk: c,
                at: T,
            }]
        });
        assert_eq!(
            text,
            "\x1b[94mB -> A sent 2 bytes\n\x1b[1m00000000  6f 6b                                             |ok              |\n\x1b[0m\x1b[94mA is 2 bytes behind\n\x1b[0m"
        );
    }

    /// A writer shared with the test, for the JSON output.
    #[derive(Clone, Default)]
    struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn json_events_follow_the_stream() {
        let json = Shared::default();
        let logger = Logger::new(io::sink(), false)
            .quiet(true)
            .with_json("events", Box::new(json.clone()));
        assert!(logger.watches_chunks());
        feed(logger, T, Ending::Completed, hello_how_are_you);
        let text = String::from_utf8(json.0.lock().unwrap().clone()).unwrap();
        let kinds: Vec<&str> = text
            .lines()
            .map(|l| &l[l.find(r#""kind""#).unwrap()..])
            .collect();
        assert_eq!(
            kinds,
            [
                r#""kind":"open","a":null,"b":null}"#,
                r#""kind":"read","direction":"A->B","offset":0,"length":6,"bytes":"68656c6c6f0a","backlog":6}"#,
                r#""kind":"wrote","direction":"A->B","offset":0,"length":6,"backlog":0}"#,
                r#""kind":"read","direction":"B->A","offset":0,"length":10,"bytes":"6869207468657265210a","backlog":10}"#,
                r#""kind":"wrote","direction":"B->A","offset":0,"length":10,"backlog":0}"#,
                r#""kind":"read","direction":"B->A","offset":10,"length":13,"bytes":"686f772061726520796f753f0a","backlog":13}"#,
                r#""kind":"wrote","direction":"B->A","offset":10,"length":13,"backlog":0}"#,
                r#""kind":"eof","direction":"A->B","offset":6,"length":0,"backlog":0}"#,
                r#""kind":"closed","direction":"A->B","offset":6,"length":0,"backlog":0}"#,
                r#""kind":"end","outcome":"completed","bytes_a_to_b":6,"bytes_b_to_a":23}"#,
            ]
        );
        assert!(text.starts_with(r#"{"time":0.000000,"connection":1,"#));
    }
}
