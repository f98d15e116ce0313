//! Record a session with our own relay (`-w`), then replay it: the loop the replay
//! exists for. A real conversation goes through the binary between two live peers;
//! the capture it writes is then played `--as b` against clients and `--as a`
//! against servers that repeat the recorded side or change it, for pcap and pcapng.
//!
//! The live peers are scripted from the conversation the test itself held, not from
//! the capture: the replay must agree with what really went over the wire.

mod common;

use std::io::Write;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::thread;

use common::*;

/// One thing said in the recorded conversation.
#[derive(Debug, Clone)]
enum Said {
    A(Vec<u8>),
    B(Vec<u8>),
    /// A shuts down its write side (a half-close: B may still answer).
    AEnds,
    BEnds,
}

/// Several messages each way, one of them over the relay's 2048-byte buffer (so it is
/// recorded as several chunks), two writes of A in a row, then A half-closes and B
/// answers before it closes too.
fn conversation() -> Vec<Said> {
    let mut said = Vec::new();
    for i in 0..5 {
        said.push(Said::A(random_bytes(3 + i * 700, i as u64 + 1)));
        said.push(Said::B(random_bytes(7 + i * 1100, i as u64 + 20)));
    }
    said.push(Said::A(b"two lines from A,\n".to_vec()));
    said.push(Said::A(b"one after the other\n".to_vec()));
    said.push(Said::B(b"B heard both\n".to_vec()));
    said.push(Said::A(b"last words from A\n".to_vec()));
    said.push(Said::AEnds);
    said.push(Said::B(b"B answers after the half-close\n".to_vec()));
    said.push(Said::BEnds);
    said
}

/// Bytes A said before the message that starts at `said[index]`.
fn offset_of(said: &[Said], index: usize, a: bool) -> usize {
    said[..index]
        .iter()
        .map(|s| match (s, a) {
            (Said::A(bytes), true) | (Said::B(bytes), false) => bytes.len(),
            _ => 0,
        })
        .sum()
}

/// Holds `said` through tiburoncin with `-w file`; every message is read whole by the
/// other peer before the next one is sent, so the capture's order is the script's.
fn record(file: &Path, said: &[Said]) {
    let mut s = Session::start(&["-c", "-w", file.to_str().unwrap()]);
    for step in said {
        match step {
            Said::A(bytes) => {
                s.a.write_all(bytes).unwrap();
                assert_eq!(read_exact(&mut s.b, bytes.len()), *bytes);
            }
            Said::B(bytes) => {
                s.b.write_all(bytes).unwrap();
                assert_eq!(read_exact(&mut s.a, bytes.len()), *bytes);
            }
            Said::AEnds => {
                s.a.shutdown(Shutdown::Write).unwrap();
                assert_eq!(read_to_end(&mut s.b).unwrap(), b"");
            }
            Said::BEnds => {
                s.b.shutdown(Shutdown::Write).unwrap();
                assert_eq!(read_to_end(&mut s.a).unwrap(), b"");
            }
        }
    }
    let status = s.process.wait();
    assert_eq!(status.code(), Some(0), "{}", s.process.stderr.text());
}

/// What a live A (`a` true) or B does to repeat its side of `said`.
fn steps(said: &[Said], a: bool) -> Vec<Step> {
    said.iter()
        .map(|s| match (s, a) {
            (Said::A(bytes), true) | (Said::B(bytes), false) => Step::Send(bytes.clone()),
            (Said::A(bytes), false) | (Said::B(bytes), true) => Step::Receive(bytes.len()),
            (Said::AEnds, true) | (Said::BEnds, false) => Step::Shutdown,
            (Said::AEnds, false) | (Said::BEnds, true) => Step::ExpectEnd,
        })
        .collect()
}

struct Replayed {
    code: i32,
    stdout: String,
    stderr: String,
}

fn replayed(mut p: Process) -> Replayed {
    let status = p.wait();
    Replayed {
        code: status.code().unwrap_or(-1),
        stdout: p.stdout.text(),
        stderr: p.stderr.text(),
    }
}

/// `replay file --as b`, with a live client A that plays `client`.
fn replay_as_b(file: &Path, extra: &[&str], client: Vec<Step>) -> Replayed {
    let mut list = vec!["-c"];
    list.extend_from_slice(extra);
    let (p, port) = spawn_replay_as_b(file, &list);
    let a = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let peer = thread::spawn(move || perform(a, &client));
    let result = replayed(p);
    peer.join().unwrap();
    result
}

/// `replay file --as a`, against a live server B that plays `server`.
fn replay_as_a(file: &Path, extra: &[&str], server: Vec<Step>) -> Replayed {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let b = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
    let peer = thread::spawn(move || {
        // The replay connects at once; accept_in_time fails the test past the deadline.
        let b = accept_in_time(&listener);
        perform(b, &server);
    });
    let args: Vec<String> = [
        "replay",
        file.to_str().unwrap(),
        "--as",
        "a",
        "-B",
        &b,
        "-c",
    ]
    .iter()
    .chain(extra)
    .map(|s| s.to_string())
    .collect();
    let result = replayed(Process::spawn(&args));
    peer.join().unwrap();
    result
}

/// Records the conversation into `name` in a scratch folder.
fn recorded(test: &str, name: &str) -> (PathBuf, Vec<Said>) {
    let dir = scratch_dir(test);
    let file = dir.join(name);
    let said = conversation();
    record(&file, &said);
    (file, said)
}

fn totals(said: &[Said]) -> String {
    let a = offset_of(said, said.len(), true);
    let b = offset_of(said, said.len(), false);
    format!("{a} bytes A -> B, {b} bytes B -> A")
}

/// `--as b` against clients that repeat A, change a byte, or close
/// early.
fn as_b(name: &str) {
    let (file, said) = recorded(&format!("record-replay-b-{name}"), name);

    let r = replay_as_b(&file, &[], steps(&said, true));
    assert_eq!(r.code, 0, "{name}: {}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains(&format!("Replay matched stream 0: {}, ", totals(&said))),
        "{name}: {}",
        r.stdout
    );

    // One byte in the middle of A's fourth message (index 6 of the conversation).
    let at = offset_of(&said, 6, true) + 10;
    let mut client = steps(&said, true);
    change_byte(&mut client, at);
    let r = replay_as_b(&file, &["-q"], client);
    assert_eq!(r.code, 1, "{name}: {}{}", r.stdout, r.stderr);
    assert_eq!(
        r.stderr.trim_end(),
        format!("Replay differs from the recording: A -> B at stream offset {at}")
    );
    assert!(
        r.stdout.contains(&format!(
            "Difference in A -> B at stream offset {at} ({at:#x}):"
        )),
        "{name}: {}",
        r.stdout
    );

    // After its second message and B's answer, the client hangs up.
    let early = offset_of(&said, 4, true);
    let mut client = steps(&said, true);
    client.truncate(4);
    client.push(Step::Shutdown);
    let r = replay_as_b(&file, &["-q"], client);
    assert_eq!(r.code, 1, "{name}: {}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains(&format!("A closed its side at stream offset {early}")),
        "{name}: {}",
        r.stdout
    );
    assert!(
        r.stderr
            .contains(&format!("A -> B at stream offset {early}")),
        "{name}: {}",
        r.stderr
    );
    let _ = std::fs::remove_dir_all(file.parent().unwrap());
}

/// `--as a` against servers that repeat B or differ.
fn as_a(name: &str) {
    let (file, said) = recorded(&format!("record-replay-a-{name}"), name);

    let r = replay_as_a(&file, &[], steps(&said, false));
    assert_eq!(r.code, 0, "{name}: {}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains(&format!("Replay matched stream 0: {}, ", totals(&said))),
        "{name}: {}",
        r.stdout
    );

    // B's answer after the half-close: the difference is found past A's FIN.
    let index = said.len() - 2;
    let at = offset_of(&said, index, false) + 3;
    let mut server = steps(&said, false);
    change_byte(&mut server, at);
    let r = replay_as_a(&file, &["-q"], server);
    assert_eq!(r.code, 1, "{name}: {}{}", r.stdout, r.stderr);
    assert_eq!(
        r.stderr.trim_end(),
        format!("Replay differs from the recording: B -> A at stream offset {at}")
    );
    let _ = std::fs::remove_dir_all(file.parent().unwrap());
}

#[test]
fn a_relayed_pcap_replayed_as_b() {
    as_b("session.pcap");
}

#[test]
fn a_relayed_pcapng_replayed_as_b() {
    as_b("session.pcapng");
}

#[test]
fn a_relayed_pcap_replayed_as_a() {
    as_a("session.pcap");
}

#[test]
fn a_relayed_pcapng_replayed_as_a() {
    as_a("session.pcapng");
}

/// The live display is the relay's: every chunk with its rows, aligned to the stream
/// offset, then the receiver's status; colours unless `-c`; nothing but the verdict
/// with `-q`.
#[test]
fn the_replay_shows_what_the_relay_shows() {
    let (file, said) = recorded("record-replay-display", "session.pcap");
    let Said::A(first) = &said[0] else {
        panic!("A speaks first");
    };
    let first_row: String = first.iter().map(|b| format!(" {b:02x}")).collect();

    let r = replay_as_b(&file, &[], steps(&said, true));
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains(&format!("A -> B sent 3 bytes\n00000000 {first_row}")),
        "{}",
        r.stdout
    );
    // The status follows every chunk, B's as well as ours (see player.rs).
    let lines: Vec<String> = r.stdout.lines().map(str::to_string).collect();
    let sent = lines.iter().filter(|l| l.contains(" sent ")).count();
    assert_eq!(
        statuses(&lines, "B").len() + statuses(&lines, "A").len(),
        sent
    );
    assert!(lines.iter().filter(|l| l.ends_with(" is in sync")).count() == sent);
    // The second chunk of A starts at offset 3, in the fourth column.
    assert!(
        r.stdout
            .contains("A -> B sent 703 bytes\n00000003           ")
    );

    // --color=always, even into a pipe: the colours of the relay, red for A -> B,
    // blue for B -> A.
    let args = [
        "replay",
        file.to_str().unwrap(),
        "--color=always",
        "--as",
        "a",
        "-B",
    ];
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let b = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
    let server = steps(&said, false);
    let peer = thread::spawn(move || perform(accept_in_time(&listener), &server));
    let all: Vec<String> = args
        .iter()
        .chain(&[b.as_str()])
        .map(|s| s.to_string())
        .collect();
    let r = replayed(Process::spawn(&all));
    peer.join().unwrap();
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("\x1b[91mA -> B sent 3 bytes\n\x1b[1m00000000"),
        "{:?}",
        r.stdout
    );
    assert!(
        r.stdout.contains("\x1b[94mA is in sync\n\x1b[0m"),
        "{:?}",
        r.stdout
    );

    // -q: the waiting line and the verdict only.
    let r = replay_as_b(&file, &["-q"], steps(&said, true));
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.stdout.lines().count(), 2, "{}", r.stdout);
    let _ = std::fs::remove_dir_all(file.parent().unwrap());
}

/// The bytes of each node of TCP stream 0, as tshark's Follow TCP Stream gives them.
fn follow(file: &Path) -> [Vec<u8>; 2] {
    let out = std::process::Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(["-qz", "follow,tcp,raw,0"])
        .output()
        .expect("run tshark");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut nodes: [Vec<u8>; 2] = Default::default();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let (node, hex) = match line.strip_prefix('\t') {
            Some(hex) => (1, hex),
            None => (0, line),
        };
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue; // the ==== frame, Follow:, Filter:, Node lines
        }
        nodes[node].extend(
            (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex from tshark")),
        );
    }
    nodes
}

/// `-w` on the replay: the replayed session as one TCP stream whose bytes each way
/// are the conversation's, whichever side was played, pcap and pcapng.
#[test]
fn the_replay_records_itself() {
    if !have_tshark() {
        return;
    }
    let (file, said) = recorded("record-replay-w", "session.pcap");
    let dir = file.parent().unwrap().to_path_buf();
    let sent = |a: bool| -> Vec<u8> {
        said.iter()
            .flat_map(|s| match (s, a) {
                (Said::A(bytes), true) | (Said::B(bytes), false) => bytes.clone(),
                _ => Vec::new(),
            })
            .collect()
    };
    for name in ["as-b.pcap", "as-b.pcapng"] {
        let out = dir.join(name);
        let r = replay_as_b(
            &file,
            &["-q", "-w", out.to_str().unwrap()],
            steps(&said, true),
        );
        assert_eq!(r.code, 0, "{name}: {}{}", r.stdout, r.stderr);
        let [a, b] = follow(&out);
        assert!(a == sent(true), "{name}: A -> B differs");
        assert!(b == sent(false), "{name}: B -> A differs");
    }
    let out = dir.join("as-a.pcapng");
    let r = replay_as_a(
        &file,
        &["-q", "-w", out.to_str().unwrap()],
        steps(&said, false),
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let [a, b] = follow(&out);
    assert!(
        a == sent(true) && b == sent(false),
        "as a: the bytes differ"
    );

    // A difference: the capture holds what was matched before it.
    let out = dir.join("differs.pcap");
    let mut client = steps(&said, true);
    change_byte(&mut client, offset_of(&said, 2, true));
    let r = replay_as_b(&file, &["-q", "-w", out.to_str().unwrap()], client);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let [a, b] = follow(&out);
    assert_eq!(a.len(), offset_of(&said, 2, true));
    assert_eq!(b.len(), offset_of(&said, 2, false));

    // The capture being replayed is not overwritten.
    let same = file.to_str().unwrap();
    assert_usage_error(
        &["replay", same, "--as", "b", "-A", "127.0.0.1:0", "-w", same].map(String::from),
        true,
    );
    let _ = std::fs::remove_dir_all(dir);
}
