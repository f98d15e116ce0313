//! The terminal: the lines a person watches, on standard output (or standard error
//! when `--events -` has standard output).
//!
//! Each note's lines are formatted into the printer's one buffer and written in one
//! piece, which is what keeps the lines of concurrent connections (`-k`) whole. The
//! wording is the original tool's (see `printer`); `-q` keeps only what changes the
//! conversation (an injected fault) and a summary when each connection ends; `-qq`
//! only the tally of a `-k` run.

use std::io::Write;
use std::net::SocketAddr;
use std::time::SystemTime;

use crate::output::logger::Tally;
use crate::output::printer::Printer;
use crate::output::sink::{Conn, Failures, Output, Sink};
use crate::output::timestamps::{TimestampKind, Timestamps};
use crate::relay::event::{Closing, Ending, Event, Opening};
use crate::relay::faults::Injected;
use crate::relay::kernel_queues::Queues;
use crate::words::Count;

pub(crate) struct Terminal<W: Write> {
    screen: Screen<W>,
    /// `-q`: no per-chunk lines, only a summary when a connection ends.
    pub(crate) quiet: bool,
    /// `-qq`: no line for any connection; with `-k` the final tally only.
    pub(crate) tally_only: bool,
    /// `Injecting faults: ...`, printed when each connection opens.
    pub(crate) faults: Option<String>,
    /// `-k`: where B is, as typed, for the line that says it is being dialled. Also
    /// what turns on the summaries and the final tally.
    pub(crate) many: Option<String>,
}

impl<W: Write> Terminal<W> {
    pub(crate) fn new(out: W, colour: bool) -> Self {
        Terminal {
            screen: Screen {
                out: Sink::new("to standard output", out),
                print: Printer::new(colour),
            },
            quiet: false,
            tally_only: false,
            faults: None,
            many: None,
        }
    }

    /// How messages name it (`to standard output`).
    pub(crate) fn named(&mut self, what: &str) {
        self.screen.out.what = what.to_string();
    }

    /// `--max-dump`: at most this many bytes of each chunk in its hexdump.
    pub(crate) fn max_dump(&mut self, most: Option<usize>) {
        self.screen.print.max_dump = most;
    }

    /// `-t`: each line that says something starts with the time of its event.
    pub(crate) fn timestamps(&mut self, kind: Option<TimestampKind>) {
        self.screen.print.timestamps = kind.map(Timestamps::new);
    }
}

/// The terminal's stream, and the printer that formats what goes to it.
struct Screen<W: Write> {
    out: Sink<W>,
    print: Printer,
}

impl<W: Write> Screen<W> {
    /// Formats one note's lines with `lines`, then writes them in one piece.
    fn show(&mut self, failures: &mut Failures, lines: impl FnOnce(&mut Printer)) {
        self.print.text.clear();
        lines(&mut self.print);
        let text = &self.print.text;
        if !text.is_empty() {
            self.out.apply(failures, |out| out.write_all(text));
        }
    }
}

impl<W: Write> Output for Terminal<W> {
    fn watches_chunks(&self) -> bool {
        !self.quiet
    }

    fn accepted(
        &mut self,
        conn: &Conn,
        a: Option<SocketAddr>,
        at: SystemTime,
        failures: &mut Failures,
    ) {
        if self.tally_only {
            return;
        }
        let b = self.many.as_deref().unwrap_or("B");
        // Only a UNIX socket's client has no address to show.
        let a = a.map_or_else(|| "(UNIX socket)".to_string(), |a| a.to_string());
        self.screen.show(failures, |print| {
            print.connection_at(at);
            print.line(
                None,
                &conn.label,
                at,
                format_args!("Connection from A {a}, connecting to B {b}...\n"),
            );
        });
    }

    fn open(&mut self, conn: &Conn, opening: &mut Opening, failures: &mut Failures) {
        if self.tally_only {
            return;
        }
        let (at, (ab, ba)) = (opening.at, opening.buffers);
        let faults = self.faults.as_deref();
        self.screen.show(failures, |print| {
            print.connection_at(at);
            print.line(
                None,
                &conn.label,
                at,
                format_args!("Allocating buffers: {ab} and {ba} bytes...\n"),
            );
            if let Some(faults) = faults {
                print.line(None, &conn.label, at, format_args!("{faults}\n"));
            }
        });
    }

    fn event(
        &mut self,
        conn: &Conn,
        event: &Event,
        kernel: Option<Queues>,
        failures: &mut Failures,
    ) {
        if self.tally_only {
            return;
        }
        let quiet = self.quiet;
        self.screen.show(failures, |print| {
            event_lines(print, quiet, conn, event, kernel);
        });
    }

    /// With `-q` or `-k`, a summary; without `-k` it is the original `-q` line,
    /// word for word.
    fn close(&mut self, conn: &Conn, closing: &Closing, failures: &mut Failures) {
        let many = self.many.is_some();
        if self.tally_only || (!self.quiet && !many) {
            return;
        }
        let [ab, ba] = closing.bytes;
        let seconds = closing.lasted.as_secs_f64();
        let how = match closing.ending {
            Ending::Completed => "",
            _ if !many => "",
            Ending::Failed => " (failed)",
            Ending::Cancelled(_) => " (cancelled)",
            Ending::Reset => " (reset injected)",
        };
        self.screen.show(failures, |print| {
            print.line(
                None,
                &conn.label,
                SystemTime::now(),
                format_args!(
                    "Relayed A -> B {}, B -> A {} in {seconds:.3} s{how}\n",
                    Count(ab, "byte"),
                    Count(ba, "byte")
                ),
            );
        });
    }

    /// `-k`: the tally of the run.
    fn finish(&mut self, tally: Tally, failures: &mut Failures) {
        if self.many.is_none() {
            return;
        }
        let Tally {
            completed,
            failed,
            cancelled,
        } = tally;
        let total = completed + failed + cancelled;
        let connections = if total == 1 {
            "connection"
        } else {
            "connections"
        };
        self.screen.show(failures, |print| {
            print.lead("", SystemTime::now());
            let _ = writeln!(
                print.text,
                "Served {total} {connections}: {completed} completed, {failed} failed, \
                 {cancelled} cancelled"
            );
        });
    }

    fn flush(&mut self, failures: &mut Failures) {
        self.screen.out.apply(failures, |out| out.flush());
    }
}

/// The lines of one event: what moved, and how far behind its consumer is.
fn event_lines(
    print: &mut Printer,
    quiet: bool,
    conn: &Conn,
    event: &Event,
    kernel: Option<Queues>,
) {
    let label = &conn.label;
    match *event {
        Event::Read {
            dir, ref chunk, at, ..
        } if !quiet => {
            let flow = conn.flows[dir.index()];
            let offset = flow.read - chunk.len() as u64;
            print.sent(label, dir, at, offset, chunk);
            print.status(label, dir, at, flow, kernel);
        }
        Event::Wrote { dir, at, .. } if !quiet => {
            print.status(label, dir, at, conn.flows[dir.index()], kernel);
        }
        Event::Eof { dir, at } if !quiet => {
            print.line(
                Some(dir),
                label,
                at,
                format_args!("{} -> {} flow shutdown\n", dir.from(), dir.to()),
            );
            print.status(label, dir, at, conn.flows[dir.index()], kernel);
        }
        // Shown even with -q: like an error, it changes the conversation.
        Event::Injected { dir, fault, at } => {
            let what = match fault {
                Injected::Reset(_) => "reset",
                Injected::Stall(_) => "stalled",
            };
            print.line(
                Some(dir),
                label,
                at,
                format_args!(
                    "{} -> {} {what} after {} (injected)\n",
                    dir.from(),
                    dir.to(),
                    Count(fault.after(), "byte")
                ),
            );
        }
        // A failure is said on stderr, by the logger.
        _ => {}
    }
}
