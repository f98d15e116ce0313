//! The logger thread: the one owner of every output.
//!
//! Relay threads never print; they send events, and this thread turns them into the
//! terminal lines, the dump files and the capture. It also keeps the count that
//! "B is N bytes behind" reports: bytes read from the producer minus bytes written to
//! the consumer, as the events tell it.
//!
//! The logger must never hold the relay back longer than the output itself needs:
//! each event is formatted into one reusable buffer and appended to one buffered
//! writer, and the writer is flushed whenever the event queue is momentarily empty —
//! so a person watching sees every event at once (even through a pipe), while a bulk
//! transfer is written in big blocks.
//!
//! A failing output (a closed pipe, a full disk) is reported once on stderr and then
//! left alone: the relay goes on, because losing relayed bytes would be worse than
//! losing the view of them. The run then ends with a failure status.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crossbeam_channel::Receiver;

use crate::buffer::Recycler;
use crate::capture::Capture;
use crate::dump::DumpWriter;
use crate::error::Error;
use crate::event::{Direction, Event};
use crate::hexdump;

pub(crate) const COLOURS: [&[u8]; 2] = [b"\x1b[91m", b"\x1b[94m"];
pub(crate) const BOLD: &[u8] = b"\x1b[1m";
pub(crate) const RESET: &[u8] = b"\x1b[0m";

/// Bytes seen in one direction.
#[derive(Debug, Default, Clone, Copy)]
struct Flow {
    read: u64,
    written: u64,
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

    /// An output that failed before it could be used.
    fn failed(what: impl Into<String>, source: io::Error, failures: &mut Vec<Error>) -> Self {
        let mut sink = Sink {
            what: what.into(),
            out: None,
        };
        sink.fail(source, failures);
        sink
    }

    fn apply(&mut self, failures: &mut Vec<Error>, op: impl FnOnce(&mut T) -> io::Result<()>) {
        if let Some(out) = self.out.as_mut() {
            if let Err(source) = op(out) {
                self.fail(source, failures);
            }
        }
    }

    fn fail(&mut self, source: io::Error, failures: &mut Vec<Error>) {
        let error = Error::Output {
            what: self.what.clone(),
            source,
        };
        eprintln!("{error}");
        failures.push(error);
        self.out = None;
    }
}

/// How the relay went, as far as the logger saw it.
#[derive(Debug, Default)]
pub struct Report {
    /// A direction failed (its message is already on stderr).
    pub relay_failed: bool,
    /// Outputs that failed (already reported on stderr).
    pub output_failures: Vec<Error>,
    /// Bytes relayed A->B and B->A.
    pub bytes: [u64; 2],
}

pub struct Logger<W: Write> {
    terminal: Sink<W>,
    dumps: Vec<Sink<DumpWriter<BufWriter<File>>>>,
    capture: Option<Sink<Capture<BufWriter<File>>>>,
    colour: bool,
    quiet: bool,
    started: Instant,
    flows: [Flow; 2],
    text: Vec<u8>,
    report: Report,
}

impl<W: Write> Logger<W> {
    pub fn new(terminal: W, colour: bool) -> Self {
        Logger {
            terminal: Sink::new("to standard output", terminal),
            dumps: Vec::new(),
            capture: None,
            colour,
            quiet: false,
            started: Instant::now(),
            flows: [Flow::default(); 2],
            text: Vec::with_capacity(64 * 1024),
            report: Report::default(),
        }
    }

    /// `-q`: no per-chunk lines, only a summary when the relay ends.
    pub fn quiet(mut self, quiet: bool) -> Self {
        self.quiet = quiet;
        self
    }

    /// Also save each direction's bytes as hex: A->B into `a_to_b`, B->A into `b_to_a`.
    pub fn with_dumps(mut self, files: [(String, File); 2]) -> Self {
        self.dumps = files
            .into_iter()
            .map(|(name, file)| {
                Sink::new(
                    name,
                    DumpWriter::new(BufWriter::with_capacity(64 * 1024, file)),
                )
            })
            .collect();
        self
    }

    /// Also record the session as a capture, named `what` in messages. `capture` is
    /// the result of starting it (its header and handshake written): an error is
    /// reported like any output's, and the relay goes on without it.
    pub fn with_capture(
        mut self,
        what: impl Into<String>,
        capture: io::Result<Capture<BufWriter<File>>>,
    ) -> Self {
        self.capture = Some(match capture {
            Ok(capture) => Sink::new(what, capture),
            Err(source) => Sink::failed(what, source, &mut self.report.output_failures),
        });
        self
    }

    /// Whether any output shows the bytes of each chunk. When none does, the relay
    /// sends no per-chunk events at all.
    pub fn watches_chunks(&self) -> bool {
        !self.quiet || !self.dumps.is_empty() || self.capture.is_some()
    }

    /// Handles events until every relay thread has hung up, then flushes everything.
    /// Spent chunks go back to their reader through `recyclers`, indexed by direction;
    /// `totals` are the bytes the readers read, for the `-q` summary.
    pub fn run(
        mut self,
        events: Receiver<Event>,
        recyclers: [Recycler; 2],
        totals: &[AtomicU64; 2],
    ) -> Report {
        // What the outputs hold already (the capture's handshake) is written before
        // the first event, which may be long in coming.
        self.flush();
        while let Ok(event) = events.recv() {
            self.handle(event, &recyclers);
            // Batch whatever is already queued, then flush once: one write for a burst.
            while let Ok(event) = events.try_recv() {
                self.handle(event, &recyclers);
            }
            self.flush();
        }
        // Every reader has hung up, so the totals are final.
        self.report.bytes = totals.each_ref().map(|t| t.load(Ordering::Relaxed));
        if self.quiet {
            self.summary();
        }
        if let Some(capture) = self.capture.as_mut() {
            let now = std::time::SystemTime::now();
            capture.apply(&mut self.report.output_failures, |c| c.finish(now));
        }
        self.flush();
        self.report
    }

    fn handle(&mut self, event: Event, recyclers: &[Recycler; 2]) {
        if let Some(capture) = self.capture.as_mut() {
            capture.apply(&mut self.report.output_failures, |c| c.record(&event));
        }
        self.text.clear();
        match event {
            Event::Read { dir, chunk, .. } => {
                let flow = &mut self.flows[dir.index()];
                let offset = flow.read;
                flow.read += chunk.len() as u64;
                if !self.quiet {
                    self.sent(dir, offset, &chunk);
                    self.status(dir);
                }
                if let Some(dump) = self.dumps.get_mut(dir.index()) {
                    dump.apply(&mut self.report.output_failures, |d| d.write(&chunk));
                }
            }
            Event::Wrote { dir, n, spent, .. } => {
                self.flows[dir.index()].written += n as u64;
                if !self.quiet {
                    self.status(dir);
                }
                if let Some(chunk) = spent {
                    recyclers[dir.index()].buffer(chunk);
                }
            }
            Event::Eof { .. } if self.quiet => {}
            Event::Eof { dir, .. } => {
                self.line(
                    dir,
                    format_args!("{} -> {} flow shutdown\n", dir.from(), dir.to()),
                );
                self.status(dir);
            }
            Event::Closed { .. } => {}
            Event::Failed { dir, error, .. } => {
                self.report.relay_failed = true;
                // Whatever was printed before the failure comes first.
                self.flush();
                eprintln!("{}", Error::Passthrough { dir, source: error });
            }
        }
        let text = &self.text;
        self.terminal
            .apply(&mut self.report.output_failures, |out| out.write_all(text));
    }

    /// The `-q` summary: bytes each way and how long the relay ran.
    fn summary(&mut self) {
        self.text.clear();
        let [ab, ba] = self.report.bytes;
        let seconds = self.started.elapsed().as_secs_f64();
        let _ = writeln!(
            self.text,
            "Relayed A -> B {ab} bytes, B -> A {ba} bytes in {seconds:.3} s"
        );
        let text = &self.text;
        self.terminal
            .apply(&mut self.report.output_failures, |out| out.write_all(text));
    }

    /// `A -> B sent N bytes` and the hexdump rows.
    fn sent(&mut self, dir: Direction, offset: u64, bytes: &[u8]) {
        // As the original: colour, the line, bold for the rows, one reset at the end.
        if self.colour {
            self.text.extend_from_slice(COLOURS[dir.index()]);
        }
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
        hexdump::write_rows(&mut self.text, offset, bytes);
        if self.colour {
            self.text.extend_from_slice(RESET);
        }
    }

    /// `B is N bytes behind` or `B is in sync`.
    fn status(&mut self, dir: Direction) {
        let Flow { read, written } = self.flows[dir.index()];
        if written >= read {
            self.line(dir, format_args!("{} is in sync\n", dir.to()));
        } else {
            self.line(
                dir,
                format_args!("{} is {} bytes behind\n", dir.to(), read - written),
            );
        }
    }

    /// One line in the direction's colour.
    fn line(&mut self, dir: Direction, args: std::fmt::Arguments) {
        if self.colour {
            self.text.extend_from_slice(COLOURS[dir.index()]);
        }
        // Writing into a Vec cannot fail.
        let _ = self.text.write_fmt(args);
        if self.colour {
            self.text.extend_from_slice(RESET);
        }
    }

    fn flush(&mut self) {
        let failures = &mut self.report.output_failures;
        self.terminal.apply(failures, |out| out.flush());
        for dump in &mut self.dumps {
            dump.apply(failures, |d| d.flush());
        }
        if let Some(capture) = self.capture.as_mut() {
            capture.apply(failures, |c| c.flush());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::{Chunk, Credit, user_space_buffer};
    use std::time::SystemTime;

    /// The logger's terminal output does not show times.
    const T: SystemTime = SystemTime::UNIX_EPOCH;

    fn chunk(credit: &mut Credit, bytes: &[u8]) -> Chunk {
        let mut blank = credit.blank(&crossbeam_channel::never()).unwrap();
        let n = blank.read_from(bytes).unwrap();
        credit.fill(blank, n)
    }

    fn log(colour: bool, events: impl FnOnce(&mut Credit, &mut Credit) -> Vec<Event>) -> String {
        let (mut ab, rab) = user_space_buffer(2048);
        let (mut ba, rba) = user_space_buffer(2048);
        let (tx, rx) = crossbeam_channel::unbounded();
        for event in events(&mut ab, &mut ba) {
            tx.send(event).unwrap();
        }
        drop(tx);
        let mut out = Vec::new();
        let totals = [AtomicU64::new(0), AtomicU64::new(0)];
        Logger::new(&mut out, colour).run(rx, [rab, rba], &totals);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_design_transcript() {
        use Direction::*;
        let text = log(false, |ab, ba| {
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
        });
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
        assert_eq!(text, expected);
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
        let (mut ab, rab) = user_space_buffer(64);
        let (_, rba) = user_space_buffer(64);
        let (tx, rx) = crossbeam_channel::unbounded();
        let c = chunk(&mut ab, b"0123456789");
        tx.send(Event::Read {
            dir: Direction::AtoB,
            chunk: c.clone(),
            at: T,
        })
        .unwrap();
        tx.send(Event::Wrote {
            dir: Direction::AtoB,
            n: 10,
            spent: Some(c),
            at: T,
        })
        .unwrap();
        tx.send(Event::Eof {
            dir: Direction::AtoB,
            at: T,
        })
        .unwrap();
        drop(tx);
        let mut out = Vec::new();
        // The readers' counts, which is where the summary's numbers come from.
        let totals = [AtomicU64::new(10), AtomicU64::new(0)];
        let report = Logger::new(&mut out, true)
            .quiet(true)
            .run(rx, [rab, rba], &totals);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("Relayed A -> B 10 bytes, B -> A 0 bytes in "),
            "{text}"
        );
        assert_eq!(text.lines().count(), 1);
        assert_eq!(report.bytes, [10, 0]);
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
}
