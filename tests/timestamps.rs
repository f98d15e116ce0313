//! `-t`: every line that says something starts with the time of its event.

mod common;

use std::io::Write;
use std::net::Shutdown;
use std::time::{SystemTime, UNIX_EPOCH};

use common::*;

/// Seconds since midnight UTC, from `HH:MM:SS.uuuuuu`.
fn seconds_of_day(stamp: &str) -> f64 {
    let parts: Vec<f64> = stamp.split(':').map(|p| p.parse().unwrap()).collect();
    parts[0] * 3600.0 + parts[1] * 60.0 + parts[2]
}

fn now_of_day() -> f64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    (now.as_secs() % 86_400) as f64 + now.subsec_micros() as f64 / 1e6
}

/// A short exchange with both directions closed: the relay's lines, as printed.
fn hello_session(args: &[&str], options: &Options) -> Vec<String> {
    let mut s = Session::start_full(args, options, |_| {});
    s.a.write_all(b"hello\n").unwrap();
    assert_eq!(read_exact(&mut s.b, 6), b"hello\n");
    s.a.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_end(&mut s.b).unwrap(), b"");
    s.b.write_all(b"bye").unwrap();
    s.b.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_end(&mut s.a).unwrap(), b"bye");
    assert_eq!(s.process.wait().code(), Some(0));
    let lines = s.stdout().lines();
    let from = lines.iter().position(|l| l.contains("Allocating")).unwrap();
    lines[from..].to_vec()
}

#[test]
fn local_time_to_the_microsecond_on_each_event_line() {
    let options = Options {
        env: vec![("TZ".into(), "UTC".into())],
        ..Options::default()
    };
    let before = now_of_day();
    let lines = hello_session(&["-c", "-t"], &options);
    let after = now_of_day();
    let (rows, stamped): (Vec<&String>, Vec<&String>) =
        lines.iter().partition(|l| l.starts_with("00000000  "));
    assert_eq!(rows.len(), 2, "{lines:#?}");
    let mut last = 0.0;
    for line in &stamped {
        let (stamp, _) = line.split_once(' ').unwrap();
        assert_eq!(stamp.len(), "23:41:07.123456".len(), "{line}");
        assert_eq!(&stamp[2..3], ":", "{line}");
        assert_eq!(&stamp[8..9], ".", "{line}");
        let t = seconds_of_day(stamp);
        // Midnight may pass during the test; then only the shape is checked.
        if before <= after {
            assert!(before - 0.001 <= t && t <= after + 0.001, "{line}");
            assert!(t >= last, "time went backwards at {line}");
        }
        last = t;
    }
    let texts: Vec<&str> = stamped.iter().map(|l| &l[16..]).collect();
    assert_eq!(
        texts,
        [
            "Allocating buffers: 2048 and 2048 bytes...",
            "A -> B sent 6 bytes",
            "B is 6 bytes behind",
            "B is in sync",
            "A -> B flow shutdown",
            "B is in sync",
            "B -> A sent 3 bytes",
            "A is 3 bytes behind",
            "A is in sync",
            "B -> A flow shutdown",
            "A is in sync",
        ]
    );
}

#[test]
fn relative_time_counts_from_the_connection() {
    let lines = hello_session(&["-c", "--timestamps=relative"], &Options::default());
    let mut last = 0.0;
    for line in lines.iter().filter(|l| !l.starts_with("00000000  ")) {
        let (stamp, _) = line.split_once(' ').unwrap();
        let (whole, micros) = stamp.split_once('.').unwrap();
        assert_eq!(micros.len(), 6, "{line}");
        let t: f64 = stamp.parse().unwrap();
        assert!(whole.parse::<u64>().is_ok(), "{line}");
        // The whole exchange takes well under the test's deadline.
        assert!((last..DEADLINE.as_secs_f64()).contains(&t), "{line}");
        last = t;
    }
}

/// With -q the relay prints two lines, both stamped; relative time starts at 0 when
/// A is accepted, which is when the buffers are allocated.
#[test]
fn the_quiet_summary_is_stamped_too() {
    let lines = hello_session(&["-q", "--timestamps=relative"], &Options::default());
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(
        lines[0],
        "0.000000 Allocating buffers: 2048 and 2048 bytes..."
    );
    let (stamp, rest) = lines[1].split_once(' ').unwrap();
    assert!(stamp.parse::<f64>().is_ok(), "{}", lines[1]);
    assert!(rest.starts_with("Relayed A -> B 6 bytes, B -> A 3 bytes in "));
}
