//! `--events`: every event as one line of JSON, for scripts.
//!
//! The terminal output is for people and its wording is fixed by the original tool;
//! a script that wants to know what happened when should not have to parse hexdumps.
//! So the logger can also write each event as a JSON object on a line of its own
//! (JSON Lines): what happened, in which connection and direction, at which stream
//! offset, how many bytes (and, for reads, the bytes themselves as hex), and how far
//! the consumer is behind afterwards. The README documents the schema.
//!
//! The objects are flat and their values are numbers, fixed words and hex, so they
//! are written by hand into one reusable buffer: no serializer, no allocation per
//! event. The one free text, an OS error message, is escaped as JSON requires. (The
//! time must have exactly six decimals, which serde_json writes only from a raw value
//! made for each record; made to write the same bytes, it took 1.3 to 2 times as
//! long per event. The tests read every kind of line back with serde_json.)
//!
//! `JsonLines` is the logger's output that turns each note into its record.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::direction::Direction;
use crate::error::Error;
use crate::output::hexdump::HEX;
use crate::output::logger::{JsonOut, passthrough};
use crate::output::sink::{Conn, Failures, Output, Sink};
use crate::relay::event::{Closing, Event, Opening};
use crate::relay::kernel_queues::Queues;

/// What a per-direction record reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Bytes read from the producer (`bytes` holds them).
    Read,
    /// Bytes written to the consumer.
    Wrote,
    /// The producer closed its side.
    Eof,
    /// The consumer's write side was shut down after everything was written.
    Closed,
    /// Reading or writing failed (`error` says why).
    Failed,
    /// A fault was injected (`fault` says which).
    Fault,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Read => "read",
            Kind::Wrote => "wrote",
            Kind::Eof => "eof",
            Kind::Closed => "closed",
            Kind::Failed => "failed",
            Kind::Fault => "fault",
        }
    }
}

/// One event of one direction, as the logger saw it.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub at: SystemTime,
    pub connection: u64,
    pub dir: Direction,
    pub kind: Kind,
    /// Stream offset of the first byte concerned: bytes read before a read, bytes
    /// written before a write; the stream's length for the others.
    pub offset: u64,
    /// Bytes this event moved (0 for the others).
    pub length: u64,
    /// The bytes read (reads only).
    pub bytes: Option<&'a [u8]>,
    /// Bytes read from the producer and not yet written to the consumer, afterwards.
    pub backlog: u64,
    /// Why it failed (failures only).
    pub error: Option<&'a str>,
    /// Which fault was injected: `reset` or `stall` (faults only).
    pub fault: Option<&'static str>,
    /// `--kernel-queues`: the kernel's queues right after the event.
    pub kernel: Option<Queues>,
}

impl Record<'_> {
    /// A record that moved no bytes.
    pub fn new(
        at: SystemTime,
        connection: u64,
        dir: Direction,
        kind: Kind,
        offset: u64,
        backlog: u64,
    ) -> Self {
        Record {
            at,
            connection,
            dir,
            kind,
            offset,
            length: 0,
            bytes: None,
            backlog,
            error: None,
            fault: None,
            kernel: None,
        }
    }
}

/// Writes records as JSON lines into `W`.
pub struct JsonEvents<W: Write> {
    out: W,
    line: Vec<u8>,
}

impl<W: Write> JsonEvents<W> {
    pub fn new(out: W) -> Self {
        JsonEvents {
            out,
            line: Vec::with_capacity(64 * 1024),
        }
    }

    /// One per-direction event.
    pub fn record(&mut self, record: &Record) -> io::Result<()> {
        self.start(record.at, record.connection, record.kind.name());
        let _ = write!(
            self.line,
            r#","direction":"{}->{}","offset":{},"length":{}"#,
            record.dir.from(),
            record.dir.to(),
            record.offset,
            record.length
        );
        if let Some(bytes) = record.bytes {
            self.line.extend_from_slice(br#","bytes":""#);
            for &b in bytes {
                self.line.extend_from_slice(&HEX[b as usize]);
            }
            self.line.push(b'"');
        }
        let _ = write!(self.line, r#","backlog":{}"#, record.backlog);
        if let Some(Queues {
            to_consumer,
            from_producer,
        }) = record.kernel
        {
            let _ = write!(
                self.line,
                r#","kernel_queued":{to_consumer},"kernel_unread":{from_producer}"#
            );
        }
        if let Some(error) = record.error {
            self.line.extend_from_slice(br#","error":"#);
            write_string(&mut self.line, error);
        }
        if let Some(fault) = record.fault {
            let _ = write!(self.line, r#","fault":"{fault}""#);
        }
        self.finish()
    }

    /// A connection was accepted from `a` and relays to `b`.
    pub fn open(
        &mut self,
        at: SystemTime,
        connection: u64,
        a: Option<SocketAddr>,
        b: Option<SocketAddr>,
    ) -> io::Result<()> {
        self.start(at, connection, "open");
        for (key, addr) in [("a", a), ("b", b)] {
            let _ = write!(self.line, r#","{key}":"#);
            match addr {
                Some(addr) => {
                    let _ = write!(self.line, r#""{addr}""#);
                }
                None => self.line.extend_from_slice(b"null"),
            }
        }
        self.finish()
    }

    /// A connection's relay ended: how (`completed`, `failed`, `cancelled`), and the
    /// bytes read each way; `error` when it never started.
    pub fn end(
        &mut self,
        at: SystemTime,
        connection: u64,
        outcome: &str,
        bytes: [u64; 2],
        error: Option<&str>,
    ) -> io::Result<()> {
        self.start(at, connection, "end");
        let _ = write!(
            self.line,
            r#","outcome":"{outcome}","bytes_a_to_b":{},"bytes_b_to_a":{}"#,
            bytes[0], bytes[1]
        );
        if let Some(error) = error {
            self.line.extend_from_slice(br#","error":"#);
            write_string(&mut self.line, error);
        }
        self.finish()
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn start(&mut self, at: SystemTime, connection: u64, kind: &str) {
        self.line.clear();
        let since = at.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        // Seconds with exactly six decimals, from the integers: a float would round.
        let _ = write!(
            self.line,
            r#"{{"time":{}.{:06},"connection":{connection},"kind":"{kind}""#,
            since.as_secs(),
            since.subsec_micros()
        );
    }

    fn finish(&mut self) -> io::Result<()> {
        self.line.extend_from_slice(b"}\n");
        self.out.write_all(&self.line)
    }
}

/// `--events`: the logger's output that writes every note as a JSON line.
pub(crate) struct JsonLines {
    events: Sink<JsonEvents<JsonOut>>,
}

impl JsonLines {
    /// Into `out`, named `what` in messages.
    pub(crate) fn new(what: impl Into<String>, out: JsonOut) -> Self {
        JsonLines {
            events: Sink::new(what, JsonEvents::new(out)),
        }
    }
}

impl Output for JsonLines {
    fn watches_chunks(&self) -> bool {
        true
    }

    fn open(&mut self, conn: &Conn, opening: &mut Opening, failures: &mut Failures) {
        let Opening { at, a, b, .. } = *opening;
        self.events.apply(failures, |j| j.open(at, conn.id, a, b));
    }

    fn event(
        &mut self,
        conn: &Conn,
        event: &Event,
        kernel: Option<Queues>,
        failures: &mut Failures,
    ) {
        let message;
        let mut record = record_of(conn, event, kernel);
        if let Event::Failed { dir, ref error, .. } = *event {
            message = passthrough(dir, error).to_string();
            record.error = Some(&message);
        }
        self.events.apply(failures, |j| j.record(&record));
    }

    fn close(&mut self, conn: &Conn, closing: &Closing, failures: &mut Failures) {
        let Closing {
            ending, bytes, at, ..
        } = *closing;
        self.events
            .apply(failures, |j| j.end(at, conn.id, ending.word(), bytes, None));
    }

    fn not_relayed(&mut self, conn: &Conn, why: &Error, at: SystemTime, failures: &mut Failures) {
        let message = why.to_string();
        self.events.apply(failures, |j| {
            j.end(at, conn.id, "failed", [0, 0], Some(&message))
        });
    }

    fn flush(&mut self, failures: &mut Failures) {
        self.events.apply(failures, |j| j.flush());
    }
}

/// The record of an event, from the connection's counts after it (a failure's
/// message aside).
fn record_of<'a>(conn: &Conn, event: &'a Event, kernel: Option<Queues>) -> Record<'a> {
    let flow = |dir: Direction| conn.flows[dir.index()];
    let record =
        |at, dir, kind, offset| Record::new(at, conn.id, dir, kind, offset, flow(dir).backlog());
    match *event {
        // A read's or a write's offset is where it started, before it was counted.
        Event::Read { dir, ref chunk, at } => {
            let length = chunk.len() as u64;
            Record {
                length,
                bytes: Some(chunk),
                kernel,
                ..record(at, dir, Kind::Read, flow(dir).read - length)
            }
        }
        Event::Wrote { dir, n, at } => Record {
            length: n as u64,
            kernel,
            ..record(at, dir, Kind::Wrote, flow(dir).written - n as u64)
        },
        Event::Eof { dir, at } => Record {
            kernel,
            ..record(at, dir, Kind::Eof, flow(dir).read)
        },
        Event::Closed { dir, at } => record(at, dir, Kind::Closed, flow(dir).written),
        Event::Injected { dir, fault, at } => Record {
            fault: Some(fault.word()),
            ..record(at, dir, Kind::Fault, fault.after())
        },
        Event::Failed { dir, at, .. } => record(at, dir, Kind::Failed, flow(dir).written),
    }
}

/// `text` as a JSON string: quotes, backslashes and control characters escaped.
fn write_string(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    for c in text.chars() {
        match c {
            '"' => out.extend_from_slice(br#"\""#),
            '\\' => out.extend_from_slice(br"\\"),
            '\n' => out.extend_from_slice(br"\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let mut utf8 = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(micros: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_micros(micros)
    }

    fn record(kind: Kind) -> Record<'static> {
        Record {
            at: at(1_714_599_667_000_042),
            connection: 3,
            dir: Direction::BtoA,
            kind,
            offset: 10,
            length: 0,
            bytes: None,
            backlog: 0,
            error: None,
            fault: None,
            kernel: None,
        }
    }

    fn lines(write: impl FnOnce(&mut JsonEvents<&mut Vec<u8>>)) -> String {
        let mut out = Vec::new();
        write(&mut JsonEvents::new(&mut out));
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_read_carries_its_bytes_as_hex() {
        let text = lines(|json| {
            json.record(&Record {
                length: 3,
                bytes: Some(b"a\x00\xff"),
                backlog: 3,
                ..record(Kind::Read)
            })
            .unwrap()
        });
        assert_eq!(
            text,
            r#"{"time":1714599667.000042,"connection":3,"kind":"read","direction":"B->A","offset":10,"length":3,"bytes":"6100ff","backlog":3}"#
                .to_owned()
                + "\n"
        );
    }

    #[test]
    fn writes_and_ends_carry_no_bytes() {
        let text = lines(|json| {
            json.record(&Record {
                length: 2,
                backlog: 1,
                ..record(Kind::Wrote)
            })
            .unwrap();
            json.record(&record(Kind::Eof)).unwrap();
            json.record(&record(Kind::Closed)).unwrap();
        });
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            r#"{"time":1714599667.000042,"connection":3,"kind":"wrote","direction":"B->A","offset":10,"length":2,"backlog":1}"#
        );
        assert!(lines[1].contains(r#""kind":"eof""#));
        assert!(lines[2].contains(r#""kind":"closed""#));
    }

    #[test]
    fn an_injected_fault_names_itself() {
        let text = lines(|json| {
            json.record(&Record {
                fault: Some("reset"),
                ..record(Kind::Fault)
            })
            .unwrap()
        });
        assert!(
            text.ends_with(r#""kind":"fault","direction":"B->A","offset":10,"length":0,"backlog":0,"fault":"reset"}
"#),
            "{text}"
        );
    }

    #[test]
    fn error_text_is_escaped() {
        let text = lines(|json| {
            json.record(&Record {
                error: Some("bad \"thing\"\\\n\x01é"),
                ..record(Kind::Failed)
            })
            .unwrap()
        });
        assert!(
            text.ends_with(
                &(r#""backlog":0,"error":"bad \"thing\"\\\n\u0001é"}"#.to_owned() + "\n")
            ),
            "{text}"
        );
    }

    #[test]
    fn connections_open_and_end() {
        let text = lines(|json| {
            let a = "127.0.0.1:40000".parse().ok();
            let b = "[::1]:8082".parse().ok();
            json.open(at(1_500_000), 1, a, b).unwrap();
            json.open(at(2_000_000), 2, None, b).unwrap();
            json.end(at(3_000_000), 1, "completed", [6, 13], None)
                .unwrap();
            json.end(at(4_000_000), 2, "failed", [0, 0], Some("refused"))
                .unwrap();
        });
        assert_eq!(
            text,
            "\
{\"time\":1.500000,\"connection\":1,\"kind\":\"open\",\"a\":\"127.0.0.1:40000\",\"b\":\"[::1]:8082\"}
{\"time\":2.000000,\"connection\":2,\"kind\":\"open\",\"a\":null,\"b\":\"[::1]:8082\"}
{\"time\":3.000000,\"connection\":1,\"kind\":\"end\",\"outcome\":\"completed\",\"bytes_a_to_b\":6,\"bytes_b_to_a\":13}
{\"time\":4.000000,\"connection\":2,\"kind\":\"end\",\"outcome\":\"failed\",\"bytes_a_to_b\":0,\"bytes_b_to_a\":0,\"error\":\"refused\"}
"
        );
    }

    /// One line of each kind, with `error` as the failures' text and `bytes` as
    /// the read's, as serde_json reads them.
    fn one_line_of_each_kind(error: &str, bytes: &[u8]) -> Vec<serde_json::Value> {
        let a = "127.0.0.1:40000".parse().ok();
        let text = lines(|json| {
            json.open(at(1_714_599_667_000_042), 1, a, None).unwrap();
            let kernel = Some(Queues {
                to_consumer: 4608,
                from_producer: 7,
            });
            let read = Record {
                length: bytes.len() as u64,
                bytes: Some(bytes),
                backlog: u64::MAX,
                kernel,
                ..record(Kind::Read)
            };
            json.record(&read).unwrap();
            let wrote = Record {
                length: 5,
                kernel,
                ..record(Kind::Wrote)
            };
            json.record(&wrote).unwrap();
            json.record(&record(Kind::Eof)).unwrap();
            json.record(&record(Kind::Closed)).unwrap();
            let fault = Record {
                fault: Some("stall"),
                ..record(Kind::Fault)
            };
            json.record(&fault).unwrap();
            let failed = Record {
                error: Some(error),
                ..record(Kind::Failed)
            };
            json.record(&failed).unwrap();
            json.end(at(0), 2, "failed", [u64::MAX, 0], Some(error))
                .unwrap();
        });
        text.lines()
            .map(|line| serde_json::from_str(line).expect(line))
            .collect()
    }

    /// Every kind of line, read back by a real JSON parser: what the hand-written
    /// writer says is what serde_json reads, awkward error text and extreme numbers
    /// included.
    #[test]
    fn every_kind_of_line_reads_back_with_serde_json() {
        let error = "quote \" backslash \\ newline \n tab \t nul \0 bell \x07 del \x7f é ✓ 🦈";
        let bytes: Vec<u8> = (0..=255).collect();
        let values = one_line_of_each_kind(error, &bytes);
        let keys = |v: &serde_json::Value| -> Vec<String> {
            let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            keys.sort();
            keys
        };
        let kinds: Vec<&str> = values.iter().map(|v| v["kind"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "open", "read", "wrote", "eof", "closed", "fault", "failed", "end"
            ]
        );
        let (open, read, failed, end) = (&values[0], &values[1], &values[6], &values[7]);
        assert_eq!(open["time"].as_f64(), Some(1_714_599_667.000_042));
        assert_eq!(open["a"], "127.0.0.1:40000");
        assert!(open["b"].is_null());
        assert_eq!(read["direction"], "B->A");
        assert_eq!(read["offset"], 10);
        assert_eq!(read["length"], 256);
        let hex = read["bytes"].as_str().unwrap();
        let decoded: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(decoded, bytes);
        assert_eq!(read["backlog"].as_u64(), Some(u64::MAX));
        assert_eq!(read["kernel_queued"], 4608);
        assert_eq!(read["kernel_unread"], 7);
        assert_eq!(
            keys(&values[2]),
            [
                "backlog",
                "connection",
                "direction",
                "kernel_queued",
                "kernel_unread",
                "kind",
                "length",
                "offset",
                "time"
            ]
        );
        assert_eq!(values[5]["fault"], "stall");
        assert_eq!(failed["error"].as_str(), Some(error));
        assert_eq!(end["time"].as_f64(), Some(0.0));
        assert_eq!(end["outcome"], "failed");
        assert_eq!(end["bytes_a_to_b"].as_u64(), Some(u64::MAX));
        assert_eq!(end["bytes_b_to_a"], 0);
        assert_eq!(end["error"].as_str(), Some(error));
    }
}
