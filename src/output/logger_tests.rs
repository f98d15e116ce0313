//! The logger's unit tests: events in, text, JSON and reports out.

use super::*;
use crate::direction::Direction;
use crate::relay::buffer::Chunk;
use crate::relay::event::Opening;
use std::time::{Duration, SystemTime};

/// A time for events whose time is not shown.
const T: SystemTime = SystemTime::UNIX_EPOCH;

fn chunk(bytes: &[u8]) -> Chunk {
    Chunk::of(bytes)
}

/// Runs `logger` over connection 1's `events`, opened at `at` and closed with
/// `ending`, and gives its report.
fn feed<W: Write>(
    logger: Logger<W>,
    at: SystemTime,
    ending: Ending,
    events: impl FnOnce() -> Vec<Event>,
) -> Report {
    let (tx, rx) = crossbeam_channel::unbounded();
    let opening = Opening {
        at,
        a: None,
        b: None,
        transports: [None, None],
        buffers: (2048, 2048),
        dumps: None,
    };
    tx.send(Note::Open(1, Box::new(opening))).unwrap();
    let mut bytes = [0; 2];
    for event in events() {
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
fn log(colour: bool, events: impl FnOnce() -> Vec<Event>) -> String {
    let mut out = Vec::new();
    feed(Logger::new(&mut out, colour), T, Ending::Completed, events);
    let text = String::from_utf8(out).unwrap();
    text.strip_prefix("Allocating buffers: 2048 and 2048 bytes...\n")
        .expect("the first line")
        .to_string()
}

fn hello_how_are_you() -> Vec<Event> {
    use Direction::*;
    let hello = chunk(b"hello\n");
    let hi = chunk(b"hi there!\n");
    let how = chunk(b"how are you?\n");
    vec![
        Event::Read {
            dir: AtoB,
            chunk: hello,
            at: T,
        },
        Event::Wrote {
            dir: AtoB,
            n: 6,
            at: T,
        },
        Event::Read {
            dir: BtoA,
            chunk: hi,
            at: T,
        },
        Event::Wrote {
            dir: BtoA,
            n: 10,
            at: T,
        },
        Event::Read {
            dir: BtoA,
            chunk: how,
            at: T,
        },
        Event::Wrote {
            dir: BtoA,
            n: 13,
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
        "[1] 00000000 68 65 6c 6c 6f 0a                               hello."
    );
    assert_eq!(
        &lines[lines.len() - 2..],
        [
            "[1] Relayed A -> B 6 bytes, B -> A 23 bytes in 1.500 s (failed)",
            "Served 1 connection: 0 completed, 1 failed, 0 cancelled",
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
    feed(logger, origin, Ending::Completed, || {
        let c = chunk(&[b'x'; 20]);
        vec![
            Event::Read {
                dir: Direction::AtoB,
                chunk: c,
                at: read_at,
            },
            Event::Wrote {
                dir: Direction::AtoB,
                n: 20,
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
    let (tx, rx) = crossbeam_channel::unbounded();
    let opening = Opening {
        at: T,
        a: None,
        b: None,
        transports: [None, None],
        buffers: (2048, 2048),
        dumps: None,
    };
    tx.send(Note::Open(1, Box::new(opening))).unwrap();
    let c = chunk(&[b'x'; 512]);
    let queues = |to_consumer, from_producer| {
        Some(Queues {
            to_consumer,
            from_producer,
        })
    };
    let read = Event::Read {
        dir: Direction::AtoB,
        chunk: c,
        at: T,
    };
    tx.send(Note::Event(1, read, queues(4608, 1024))).unwrap();
    let wrote = Event::Wrote {
        dir: Direction::AtoB,
        n: 512,
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
    let text = log(false, || {
        let c = chunk(&[b'X'; 512]);
        vec![
            Event::Read {
                dir: Direction::AtoB,
                chunk: c,
                at: T,
            },
            Event::Wrote {
                dir: Direction::AtoB,
                n: 200,
                at: T,
            },
            Event::Eof {
                dir: Direction::AtoB,
                at: T,
            },
            Event::Wrote {
                dir: Direction::AtoB,
                n: 312,
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
    let report = feed(logger, T, Ending::Completed, || {
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
    let text = log(true, || {
        let c = chunk(b"ok");
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

#[test]
fn a_broken_capture_is_reported_once_and_stops_every_stream() {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let logger = Logger::new(io::sink(), false)
        .quiet(true)
        .many("B")
        .with_capture("to the capture", GatherWriter::new(full), Format::Pcap);
    let (tx, rx) = crossbeam_channel::unbounded();
    for id in [1, 2] {
        let opening = Opening {
            at: T,
            a: None,
            b: None,
            transports: [None, None],
            buffers: (2048, 2048),
            dumps: None,
        };
        tx.send(Note::Open(id, Box::new(opening))).unwrap();
    }
    for id in [1, 2] {
        let read = Event::Read {
            dir: Direction::AtoB,
            chunk: chunk(&[b'x'; 100_000]),
            at: T,
        };
        tx.send(Note::Event(id, read, None)).unwrap();
    }
    drop(tx);
    let report = logger.run(rx);
    let failures: Vec<String> = report
        .output_failures
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(
        failures,
        ["Writing to the capture failed: No space left on device"]
    );
}

/// The terminal text for `events` with `--max-dump most`.
fn log_max_dump(most: usize, events: impl FnOnce() -> Vec<Event>) -> String {
    let mut out = Vec::new();
    let logger = Logger::new(&mut out, false).max_dump(Some(most));
    feed(logger, T, Ending::Completed, events);
    let text = String::from_utf8(out).unwrap();
    text.strip_prefix("Allocating buffers: 2048 and 2048 bytes...\n")
        .expect("the first line")
        .to_string()
}

#[test]
fn max_dump_shows_the_first_bytes_and_counts_the_rest() {
    let expected = "\
A -> B sent 6 bytes
00000000  68 65 6c 6c                                       |hell            |
... 2 more bytes
B is 6 bytes behind
B is in sync
B -> A sent 10 bytes
00000000  68 69 20 74                                       |hi t            |
... 6 more bytes
A is 10 bytes behind
A is in sync
B -> A sent 13 bytes
0000000a                                 68 6f 77 20        |          how   |
... 9 more bytes
A is 13 bytes behind
A is in sync
A -> B flow shutdown
B is in sync
";
    assert_eq!(log_max_dump(4, hello_how_are_you), expected);
    // A chunk that fits shows whole, without a count; one more byte is "byte".
    let text = log_max_dump(5, hello_how_are_you);
    assert!(
        text.contains("|hello           |\n... 1 more byte\n"),
        "{text}"
    );
    let text = log_max_dump(10, hello_how_are_you);
    assert!(
        text.contains("|hi there!.      |\nA is 10 bytes behind"),
        "{text}"
    );
}

#[test]
fn max_dump_zero_shows_no_hexdump() {
    let expected = "\
A -> B sent 6 bytes
B is 6 bytes behind
B is in sync
B -> A sent 10 bytes
A is 10 bytes behind
A is in sync
B -> A sent 13 bytes
A is 13 bytes behind
A is in sync
A -> B flow shutdown
B is in sync
";
    assert_eq!(log_max_dump(0, hello_how_are_you), expected);
}

#[test]
fn one_byte_is_singular() {
    let mut out = Vec::new();
    let logger = Logger::new(&mut out, false).many("127.0.0.1:8082");
    feed(logger, T, Ending::Completed, || {
        vec![
            Event::Read {
                dir: Direction::AtoB,
                chunk: chunk(b"!"),
                at: T,
            },
            Event::Wrote {
                dir: Direction::AtoB,
                n: 1,
                at: T,
            },
        ]
    });
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[1..],
        [
            "[1] A -> B sent 1 byte",
            "[1] 00000000 21                                              !",
            "[1] B is 1 byte behind",
            "[1] B is in sync",
            "[1] Relayed A -> B 1 byte, B -> A 0 bytes in 1.500 s",
            "Served 1 connection: 1 completed, 0 failed, 0 cancelled",
        ]
    );
}
