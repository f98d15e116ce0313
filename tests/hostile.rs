//! Hostile input: command lines that are wrong in every way we could think of, and
//! recorded traffic full of control bytes and escape sequences played back.
//!
//! The relay's own twenty malformed command lines are in `tests/relay.rs`, with its
//! traffic test; here are the rest of them and the replay subcommand's, and the replay
//! side of "traffic never writes a control byte to the terminal": a replay shows
//! every chunk it sends and receives, and a difference shows both sides' bytes.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

fn fixture(name: &str) -> String {
    format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Malformed relay command lines beyond `tests/relay.rs`'s twenty.
#[test]
fn more_malformed_relay_command_lines() {
    let cases: &[&[&str]] = &[
        &["-A", "1", "-B", "2", "-b", "0:5"],
        &["-A", "1", "-B", "2", "-b", "5:0"],
        &["-A", "1", "-B", "2", "-b", "0x0"],
        &["-A", "1", "-B", "2", "-b", "1073741825"],
        &["-A", "1", "-B", "2", "-z", "0"],
        &["-A", "1", "-B", "2", "-z", "-5"],
        &["-A", "", "-B", "2"],
        &["-A", "1", "-B", ""],
        &["-A", "127.0.0.1:-1", "-B", "2"],
        &["-A", "1", "-B", "[::1]"],
        &["-A", "1", "-B", "2", "-f"],
        &["-A", "1", "-B", "2", "--bogus"],
        &["-A", "1 2", "-B", "3"],
        // What a user typed is echoed back: control characters in it are escaped,
        // on a lookup failure as on a parse failure.
        &["-A", "1", "-B", "a\x1b[31m:80"],
        &["-A", "1", "-B", "2", "-b", "1\n\n2\x1b]0;owned\x07"],
    ];
    for case in cases {
        assert_usage_error(&strings(case), false);
    }
}

/// A flag given twice is no mistake, as with the original's getopt: the last one
/// wins. Here A's first address is taken, so only the second can work, and `-c -c`
/// still means no colours.
#[test]
fn a_repeated_flag_is_taken_the_last_time() {
    let b = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let b_port = b.local_addr().unwrap().port();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    let mut p = Process::spawn(&strings(&[
        "-A",
        &format!("127.0.0.1:{taken_port}"),
        "-A",
        "127.0.0.1:0",
        "-B",
        &format!("127.0.0.1:{b_port}"),
        "-c",
        "-c",
    ]));
    let waiting = p.stdout.wait_line("the waiting line", |l| {
        l.starts_with("Waiting for a connection from A ")
    });
    let a_port = waiting_port(&waiting);
    assert_ne!(a_port, taken_port, "{waiting}");
    let (mut b, _) = b.accept().unwrap();
    let mut a = TcpStream::connect(("127.0.0.1", a_port)).unwrap();
    a.write_all(b"twice\n").unwrap();
    assert_eq!(read_exact(&mut b, 6), b"twice\n");
    a.shutdown(Shutdown::Write).unwrap();
    b.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_end(&mut a).unwrap(), b"");
    assert_eq!(p.wait().code(), Some(0), "{}", p.stderr.text());
    assert_eq!(p.stderr.text(), "");
    let out = p.stdout.text();
    assert!(out.contains("A -> B sent 6 bytes\n"), "{out}");
    assert!(!out.contains('\x1b'), "colours despite -c -c: {out:?}");
}

/// An argument that is not UTF-8 at all.
#[test]
fn an_argument_that_is_not_text() {
    let out = std::process::Command::new(BIN)
        .args(["-A", "1", "-B"])
        .arg(std::ffi::OsString::from_vec(vec![0xff, 0xfe, b':', b'8']))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("error: invalid UTF-8"), "{err}");
}

/// Malformed `tiburoncin replay` command lines: each shows the replay usage.
#[test]
fn malformed_replay_command_lines() {
    let lines = fixture("lines.pcap");
    let f = lines.as_str();
    let cases: &[&[&str]] = &[
        &["replay"],
        &["replay", "--list"],
        &["replay", f, "--as", "a"],
        &["replay", f, "--as", "B", "-A", "1"],
        &["replay", f, "--list", "--stream", "-1"],
        &[
            "replay",
            f,
            "--as",
            "b",
            "-A",
            "1",
            "--stream",
            "99999999999999999999999",
        ],
        &["replay", f, "--as", "b", "-A", "1", "--timing", "never"],
        &["replay", f, "--as", "b", "-A", "1", "--speed", "nan"],
        &["replay", f, "--as", "b", "-A", "1", "--speed", "-2"],
        &["replay", f, "--list", "--timeout", "-3"],
        &["replay", f, "--list", "--timeout", "1e400"],
        &["replay", f, "--list", "--bogus"],
        &["replay", f, f, "--list"],
        &["replay", f, "--dump"],
        &["replay", f, "--as", "a", "-B", "127.0.0.1:70000"],
        &["replay", f, "--as", "a", "-B", "a..b:80"],
        &["replay", f, "--as", "a", "-B", "2", "-b", "512"],
    ];
    for case in cases {
        assert_usage_error(&strings(case), true);
    }
}

// ---- hostile traffic in a replay ------------------------------------------------------

/// A capture (raw IP link type) of one connection: A sends `ab`, B answers `ba`, then
/// both close.
fn write_capture(path: &Path, ab: &[u8], ba: &[u8]) {
    use etherparse::PacketBuilder;
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
    let (a, b) = ([10, 0, 0, 1], [10, 0, 0, 2]);
    let (a_port, b_port) = (40_000, 8080);
    let (a_seq, b_seq) = (1000u32, 5000u32);
    let a_end = a_seq + 1 + ab.len() as u32;
    let b_end = b_seq + 1 + ba.len() as u32;
    let from_a = |seq| PacketBuilder::ipv4(a, b, 64).tcp(a_port, b_port, seq, 65535);
    let from_b = |seq| PacketBuilder::ipv4(b, a, 64).tcp(b_port, a_port, seq, 65535);
    let mut frames: Vec<Vec<u8>> = Vec::new();
    let mut push = |builder: etherparse::PacketBuilderStep<etherparse::TcpHeader>,
                    payload: &[u8]| {
        let mut frame = Vec::new();
        builder.write(&mut frame, payload).unwrap();
        frames.push(frame);
    };
    push(from_a(a_seq).syn(), b"");
    push(from_b(b_seq).syn().ack(a_seq + 1), b"");
    push(from_a(a_seq + 1).ack(b_seq + 1), b"");
    push(from_a(a_seq + 1).psh().ack(b_seq + 1), ab);
    push(from_b(b_seq + 1).psh().ack(a_end), ba);
    push(from_a(a_end).fin().ack(b_end), b"");
    push(from_b(b_end).fin().ack(a_end + 1), b"");
    push(from_a(a_end + 1).ack(b_end + 1), b"");
    let header = PcapHeader {
        datalink: pcap_file::DataLink::RAW,
        ..PcapHeader::default()
    };
    let mut writer = PcapWriter::with_header(Vec::new(), header).unwrap();
    for (i, frame) in frames.iter().enumerate() {
        let time = Duration::from_millis(1_700_000_000_000 + i as u64);
        let packet = PcapPacket::new(time, frame.len() as u32, frame);
        writer.write_packet(&packet).unwrap();
    }
    std::fs::write(path, writer.into_writer()).unwrap();
}

/// Plays B of a hostile capture for a client that sends `sent` and reads an answer of
/// `answer_len` bytes; the exit status and everything printed.
fn replay_hostile_as_b(
    capture: &Path,
    sent: &[u8],
    answer_len: usize,
    colour: bool,
) -> (Option<i32>, Vec<u8>, Vec<u8>) {
    let mut args = strings(&[
        "replay",
        capture.to_str().unwrap(),
        "--as",
        "b",
        "-A",
        "127.0.0.1:0",
    ]);
    if !colour {
        args.push("-c".into());
    }
    let mut p = Process::spawn(&args);
    let waiting = p.stdout.wait_line("the waiting line", |l| {
        l.starts_with("Waiting for a connection from A ")
    });
    let mut a = TcpStream::connect(("127.0.0.1", waiting_port(&waiting))).unwrap();
    a.set_read_timeout(Some(DEADLINE)).unwrap();
    a.write_all(sent).unwrap();
    // As the recorded A: the answer, then the close. The replay may stop early
    // instead (that is the test), so a short answer is no failure here.
    let mut answer = vec![0; answer_len];
    if a.read_exact(&mut answer).is_ok() {
        a.shutdown(Shutdown::Write).unwrap();
        let _ = a.read_to_end(&mut answer);
    }
    let status = p.wait();
    (status.code(), p.stdout.bytes(), p.stderr.bytes())
}

fn scratch_capture(name: &str) -> PathBuf {
    scratch_dir(name).join("hostile.pcap")
}

/// A replay shows every byte it exchanges as a hexdump, and a difference shows both
/// sides' bytes: none of it may reach the terminal as a control byte.
#[test]
fn hostile_recorded_traffic_never_reaches_the_terminal() {
    let ab = hostile_bytes();
    let mut ba = hostile_bytes();
    ba.reverse();
    let capture = scratch_capture("hostile-replay");
    write_capture(&capture, &ab, &ba);
    let mut changed = ab.clone();
    // Just before the escape sequences, so both sides of the difference show them.
    changed[250] ^= 0x40;
    for colour in [false, true] {
        let (code, stdout, stderr) = replay_hostile_as_b(&capture, &ab, ba.len(), colour);
        assert_eq!(code, Some(0), "{}", String::from_utf8_lossy(&stderr));
        assert_eq!(
            control_bytes(&stdout),
            b"",
            "matching replay, colour {colour}"
        );
        let text = String::from_utf8_lossy(&stdout);
        assert!(text.contains("1b 5b 32 4a"), "the escape is shown as hex");
        assert!(text.contains("Replay matched stream 0"), "{text}");

        let (code, stdout, stderr) = replay_hostile_as_b(&capture, &changed, ba.len(), colour);
        assert_eq!(code, Some(1));
        let text = String::from_utf8_lossy(&stdout);
        assert!(
            text.contains("Difference in A -> B at stream offset 250"),
            "{text}"
        );
        assert_eq!(control_bytes(&stdout), b"", "difference, colour {colour}");
        assert_eq!(
            control_bytes(&stderr),
            b"",
            "difference stderr, colour {colour}"
        );
    }
    for extra in [&["--list"][..], &["--list", "--dump"]] {
        let mut args = strings(&["replay", capture.to_str().unwrap()]);
        args.extend(strings(extra));
        let mut p = Process::spawn(&args);
        assert_eq!(p.wait().code(), Some(0), "{extra:?}");
        assert_eq!(control_bytes(&p.stdout.bytes()), b"", "{extra:?}");
    }
    let _ = std::fs::remove_dir_all(capture.parent().unwrap());
}
