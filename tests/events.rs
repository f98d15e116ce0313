//! `--events`: every event as a line of JSON, read back with a real JSON parser.

mod common;

use std::net::{Shutdown, TcpListener, TcpStream};

use serde_json::Value;

use common::*;

/// Parses JSON lines, each of which must be one object.
fn parse(text: &str) -> Vec<Value> {
    text.lines()
        .map(|line| {
            let value: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            assert!(value.is_object(), "{line}");
            value
        })
        .collect()
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// What one direction's records say, checked for consistency as they are added.
#[derive(Default)]
struct Direction {
    read: Vec<u8>,
    written: u64,
    eof: bool,
    closed: bool,
}

impl Direction {
    fn add(&mut self, record: &Value) {
        let offset = record["offset"].as_u64().unwrap();
        let length = record["length"].as_u64().unwrap();
        match record["kind"].as_str().unwrap() {
            "read" => {
                assert_eq!(offset, self.read.len() as u64, "{record}");
                let bytes = unhex(record["bytes"].as_str().unwrap());
                assert_eq!(bytes.len() as u64, length, "{record}");
                self.read.extend_from_slice(&bytes);
            }
            "wrote" => {
                assert_eq!(offset, self.written, "{record}");
                assert!(record.get("bytes").is_none(), "{record}");
                self.written += length;
            }
            "eof" => {
                assert_eq!((offset, length), (self.read.len() as u64, 0));
                self.eof = true;
            }
            "closed" => {
                assert!(self.eof, "closed before eof: {record}");
                assert_eq!((offset, length), (self.written, 0));
                self.closed = true;
            }
            other => panic!("unexpected kind {other}: {record}"),
        }
        // The backlog is what was read and not yet written, after the event.
        assert_eq!(
            record["backlog"].as_u64().unwrap(),
            self.read.len() as u64 - self.written,
            "{record}"
        );
    }
}

/// Checks a whole connection's records and gives what each direction carried.
fn replay_records(records: &[Value]) -> (Direction, Direction) {
    let (mut ab, mut ba) = (Direction::default(), Direction::default());
    let mut times = Vec::new();
    for record in records {
        assert_eq!(record["connection"], 1, "{record}");
        times.push(record["time"].as_f64().unwrap());
        match record["direction"].as_str() {
            Some("A->B") => ab.add(record),
            Some("B->A") => ba.add(record),
            Some(other) => panic!("direction {other}"),
            None => {}
        }
    }
    // Every time is a plausible Unix time, within the test's run.
    let (first, last) = (times[0], times[times.len() - 1]);
    assert!(first > 1.6e9, "{first}");
    assert!(last - first < DEADLINE.as_secs_f64());
    (ab, ba)
}

#[test]
fn a_file_of_events_tells_the_whole_conversation() {
    let dir = scratch_dir("events-file");
    let path = dir.join("events.jsonl");
    let ab = random_bytes(300_000, 21);
    let ba = b"pong".to_vec();
    let mut s = Session::start(&["-q", "-b", "1000", "--events", path.to_str().unwrap()]);
    let sender = send_in_background(&s.a, ab.clone(), true);
    assert!(read_to_end(&mut s.b).unwrap() == ab);
    sender.join().unwrap();
    std::io::Write::write_all(&mut s.b, &ba).unwrap();
    s.b.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_end(&mut s.a).unwrap(), ba);
    let a_port = s.a.local_addr().unwrap().port();
    let b_port = s.b.local_addr().unwrap().port();
    assert_eq!(s.process.wait().code(), Some(0));

    let records = parse(&std::fs::read_to_string(&path).unwrap());
    let open = &records[0];
    assert_eq!(open["kind"], "open");
    assert_eq!(open["a"], format!("127.0.0.1:{a_port}"));
    assert_eq!(open["b"], format!("127.0.0.1:{b_port}"));
    let end = records.last().unwrap();
    assert_eq!(end["kind"], "end");
    assert_eq!(end["outcome"], "completed");
    assert_eq!(end["bytes_a_to_b"], ab.len());
    assert_eq!(end["bytes_b_to_a"], ba.len());

    let (to_b, to_a) = replay_records(&records[1..records.len() - 1]);
    assert!(to_b.read == ab, "the A->B reads are not what A sent");
    assert_eq!(to_b.written, ab.len() as u64);
    assert!(to_b.closed && to_a.closed);
    assert_eq!(to_a.read, ba);
    // -b 1000: no read was bigger than the buffer.
    assert!(
        records
            .iter()
            .filter(|r| r["kind"] == "read")
            .all(|r| r["length"].as_u64().unwrap() <= 1000)
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// `--events -`: standard output carries JSON only; the text moves to standard error.
#[test]
fn events_on_standard_output_move_the_text_to_standard_error() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let b_port = listener.local_addr().unwrap().port();
    let mut p = Process::spawn(&[
        "-c".into(),
        "-A".into(),
        "127.0.0.1:0".into(),
        "-B".into(),
        format!("127.0.0.1:{b_port}"),
        "--events".into(),
        "-".into(),
    ]);
    let waiting = p.stderr.wait_line("the waiting line", |l| {
        l.starts_with("Waiting for a connection from A ")
    });
    let (mut b, _) = listener.accept().unwrap();
    let mut a = TcpStream::connect(("127.0.0.1", waiting_port(&waiting))).unwrap();
    std::io::Write::write_all(&mut a, b"hello\n").unwrap();
    a.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_end(&mut b).unwrap(), b"hello\n");
    b.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_end(&mut a).unwrap(), b"");
    assert_eq!(p.wait().code(), Some(0));

    let records = parse(&p.stdout.text());
    let kinds: Vec<&str> = records
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds[0], "open");
    assert_eq!(kinds[kinds.len() - 1], "end");
    let (to_b, to_a) = replay_records(&records[1..records.len() - 1]);
    assert_eq!(to_b.read, b"hello\n");
    assert!(to_b.closed && to_a.closed && to_a.read.is_empty());

    let text = p.stderr.text();
    assert!(text.contains("A -> B sent 6 bytes\n"), "{text}");
    assert!(text.contains("A -> B flow shutdown\n"), "{text}");
}

/// A path that cannot be created is refused before anything connects.
#[test]
fn an_events_file_that_cannot_be_created() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let b_port = listener.local_addr().unwrap().port();
    let mut p = Process::spawn(&[
        "-A".into(),
        "127.0.0.1:0".into(),
        "-B".into(),
        format!("127.0.0.1:{b_port}"),
        "--events".into(),
        "/nonexistent-dir/e.jsonl".into(),
    ]);
    assert_eq!(p.wait().code(), Some(1));
    assert_eq!(
        p.stderr.text(),
        "Cannot create /nonexistent-dir/e.jsonl: No such file or directory\n"
    );
    assert_eq!(p.stdout.text(), "");
}
