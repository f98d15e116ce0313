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
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crossbeam_channel::Receiver;

use crate::capture::Format;
use crate::error::Error;
use crate::output::capture::{Capture, Connection};
use crate::output::dump::DumpPaths;
use crate::output::dump::DumpWriter;
use crate::output::json::{JsonEvents, Kind, Record};
use crate::output::printer::{Flow, Printer, label};
use crate::output::sink::{CaptureOut, SharedFile, Sink, output_failed};
use crate::output::timestamps::{TimestampKind, Timestamps};
use crate::relay::event::{Closing, ConnId, Ending, Event, Note, Opening};
use crate::relay::faults::{self, Faults, Injected};
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

/// What the logger knows of one connection while it relays.
struct Conn {
    /// `[N] ` with `-k`, empty otherwise.
    label: String,
    flows: [Flow; 2],
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
            print: Printer::new(colour),
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
                // Only a UNIX socket's client has no address to show.
                let a = a.map_or_else(|| "(UNIX socket)".to_string(), |a| a.to_string());
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
        let capture = self.start_stream(at, stand_ins(id, a, b));
        let conn = Conn {
            label,
            flows: [Flow::default(); 2],
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
        (a, b): (SocketAddr, SocketAddr),
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
        let connection = Connection::new(a, b, at);
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
            Event::Wrote { dir, n, at } => {
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

/// The addresses the capture shows for A and B. A UNIX socket has none, so a UNIX
/// side gets a made-up loopback one (the README lists them): A at 127.0.0.2, port
/// 49152 + the connection's number (so each connection is a stream of its own), B
/// at 127.0.0.3 port 1; with an IPv6 peer, both at ::1 with those ports.
fn stand_ins(id: ConnId, a: Option<SocketAddr>, b: Option<SocketAddr>) -> (SocketAddr, SocketAddr) {
    let a_port = 49152 + (id % 16384) as u16;
    let ipv6 = a.or(b).is_some_and(|known| known.is_ipv6());
    let made_up = |v4: Ipv4Addr, port: u16| match ipv6 {
        true => SocketAddr::new(IpAddr::V6(std::net::Ipv6Addr::LOCALHOST), port),
        false => SocketAddr::new(IpAddr::V4(v4), port),
    };
    (
        a.unwrap_or_else(|| made_up(Ipv4Addr::new(127, 0, 0, 2), a_port)),
        b.unwrap_or_else(|| made_up(Ipv4Addr::new(127, 0, 0, 3), 1)),
    )
}

#[cfg(test)]
#[path = "logger_tests.rs"]
mod tests;
