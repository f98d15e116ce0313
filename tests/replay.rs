//! `tiburoncin replay`, tested as a user runs it: the real binary, the fixture captures
//! recorded by tcpdump and dumpcap, tshark as the judge of what a capture holds, and
//! live peers on loopback that repeat a recording or change it.
//!
//! Replaying sessions recorded by our own relay (`-w`) is in `record_replay.rs`; the
//! live peers that repeat or change a side are in `common`.

mod common;

use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::{Step, change_byte, fixture, have_tshark, perform, run, script, spawn_replay_as_b};
use tiburoncin::direction::Direction;
use tiburoncin::replay::reassembly::StreamEvent;
use tiburoncin::replay::recording::Recording;

/// The fixtures besides `LAYERED`: with it, every fixture, each read as tshark reads it.
const PLAIN: [&str; 8] = [
    "http.pcap",
    "lines.pcap",
    "lines-ipv6.pcap",
    "any-sll2.pcap",
    "any-sll1.pcap",
    "lines.pcapng",
    "reuse.pcap",
    "disorder.pcap",
];

/// The fixtures in tunnels, in fragments, or without a handshake: each is played
/// back as well as read.
const LAYERED: [&str; 11] = [
    "fragmented.pcap",
    "fragments-disorder.pcap",
    "pppoe-qinq.pcap",
    "mpls.pcap",
    "gre.pcap",
    "gre-bridged.pcap",
    "vxlan.pcap",
    "6in4.pcap",
    "4in6.pcap",
    "nested.pcap",
    "midstream.pcap",
];

// ---- tshark as the judge ------------------------------------------------------------

/// `127.0.0.1:80`, `[::1]:80` or tshark's conv `::1:80`.
fn socket_addr(text: &str) -> SocketAddr {
    let (host, port) = text.rsplit_once(':').expect("host:port");
    let host = host.trim_start_matches('[').trim_end_matches(']');
    SocketAddr::new(
        host.parse::<IpAddr>().expect("an IP"),
        port.parse().expect("a port"),
    )
}

/// What tshark says of a capture.
struct Judged {
    /// `conv,tcp`: each connection's endpoints and duration, in tshark's own order.
    conversations: Vec<((SocketAddr, SocketAddr), f64)>,
    /// `follow,tcp,raw,N` for each N, merged into turns: (sender, bytes).
    turns: Vec<Vec<(SocketAddr, Vec<u8>)>>,
}

/// `tshark -qz conv,tcp` and `-qz follow,tcp,raw,N` for N below `connections`, in one run.
fn tshark(path: &Path, connections: usize) -> Judged {
    let mut command = Command::new("tshark");
    command.arg("-r").arg(path).args(["-q", "-z", "conv,tcp"]);
    for n in 0..connections {
        command.args(["-z", &format!("follow,tcp,raw,{n}")]);
    }
    let output = command.output().expect("run tshark");
    assert!(output.status.success(), "tshark failed on {path:?}");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();

    let mut conversations = Vec::new();
    for line in text.lines().filter(|l| l.contains(" <-> ")) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let duration = words[words.len() - 1].parse::<f64>().expect("a duration");
        conversations.push(((socket_addr(words[0]), socket_addr(words[2])), duration));
    }
    let mut turns = vec![Vec::new(); connections];
    let mut current: Option<usize> = None;
    let mut nodes = [None, None];
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("Filter: tcp.stream eq ") {
            current = Some(n.trim().parse().expect("a stream number"));
        } else if let Some(addr) = line.strip_prefix("Node 0: ") {
            nodes[0] = Some(socket_addr(addr));
        } else if let Some(addr) = line.strip_prefix("Node 1: ") {
            nodes[1] = Some(socket_addr(addr));
        } else if line.starts_with('=') {
            current = None;
        } else if let (Some(n), false) = (current, line.is_empty()) {
            let node = usize::from(line.starts_with('\t'));
            let sender = nodes[node].expect("the nodes come before the data");
            let bytes = hex(line.trim());
            let stream: &mut Vec<(SocketAddr, Vec<u8>)> = &mut turns[n];
            match stream.last_mut() {
                Some((who, all)) if *who == sender => all.extend_from_slice(&bytes),
                _ => stream.push((sender, bytes)),
            }
        }
    }
    Judged {
        conversations,
        turns,
    }
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

/// One row of `--list`.
#[derive(Debug)]
struct Listed {
    number: usize,
    a: SocketAddr,
    b: SocketAddr,
    bytes: [u64; 2],
    duration: f64,
    ended: String,
}

fn list(path: &Path) -> Vec<Listed> {
    list_with(path, &[]).0
}

/// `--list` with `extra` arguments: the rows, and the `skipped:` line if there is one.
fn list_with(path: &Path, extra: &[&str]) -> (Vec<Listed>, Option<String>) {
    let mut arguments = vec!["replay", path.to_str().unwrap(), "--list"];
    arguments.extend_from_slice(extra);
    let (code, stdout, stderr) = run(&arguments);
    assert_eq!(code, 0, "{stderr}");
    let mut lines = stdout.lines();
    let header = lines.next().expect("a header");
    assert!(
        header.trim_start().starts_with("Stream  A (client)"),
        "{header}"
    );
    let (rows, skipped): (Vec<&str>, Vec<&str>) =
        lines.partition(|line| !line.starts_with("skipped: "));
    assert!(skipped.len() <= 1, "{stdout}");
    let rows = rows
        .into_iter()
        .map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            Listed {
                number: words[0].parse().unwrap(),
                a: socket_addr(words[1]),
                b: socket_addr(words[2]),
                bytes: [words[3].parse().unwrap(), words[4].parse().unwrap()],
                duration: words[5].parse().unwrap(),
                ended: words[6..].join(" "),
            }
        })
        .collect();
    (rows, skipped.first().map(|s| s.to_string()))
}

/// `--dump`: the turns of connection `n` as (A or B, bytes).
fn dump(path: &Path, n: usize) -> Vec<(String, Vec<u8>)> {
    let n = n.to_string();
    let file = path.to_str().unwrap();
    let (code, stdout, stderr) = run(&["replay", file, "--list", "--dump", "--stream", &n]);
    assert_eq!(code, 0, "{stderr}");
    stdout
        .lines()
        .map(|line| {
            let (who, bytes) = line.split_once(' ').expect("who and hex");
            (who.to_string(), hex(bytes))
        })
        .collect()
}

#[test]
fn every_fixture_is_read_as_tshark_reads_it() {
    if !have_tshark() {
        return;
    }
    for name in PLAIN.into_iter().chain(LAYERED) {
        let path = fixture(name);
        let ours = list(&path);
        assert!(!ours.is_empty(), "{name}: no connection at all");
        let judged = tshark(&path, ours.len());
        assert_eq!(
            ours.len(),
            judged.conversations.len(),
            "{name}: connections"
        );
        let mut unmatched = judged.conversations.clone();
        for (n, row) in ours.iter().enumerate() {
            assert_eq!(row.number, n, "{name}");
            // conv,tcp prints four decimals and has its own order: match each row to
            // a conversation with the same endpoints and duration.
            let found = unmatched.iter().position(|((x, y), d)| {
                ((*x, *y) == (row.a, row.b) || (*y, *x) == (row.a, row.b))
                    && (d - row.duration).abs() < 0.000_051
            });
            let Some(at) = found else {
                panic!("{name}: no conversation like {row:?} in {unmatched:?}");
            };
            unmatched.remove(at);

            // The bytes, turn by turn, as Follow TCP Stream shows them.
            let theirs: Vec<(String, Vec<u8>)> = judged.turns[n]
                .iter()
                .map(|(sender, bytes)| {
                    let who = if *sender == row.a { "A" } else { "B" };
                    assert!(*sender == row.a || *sender == row.b, "{name}: {sender}");
                    (who.to_string(), bytes.clone())
                })
                .collect();
            let dumped = dump(&path, n);
            assert_eq!(
                dumped, theirs,
                "{name} stream {n}: turns differ from tshark's"
            );
            for (i, who) in ["A", "B"].iter().enumerate() {
                let total: usize = theirs
                    .iter()
                    .filter(|t| t.0 == *who)
                    .map(|t| t.1.len())
                    .sum();
                assert_eq!(
                    row.bytes[i], total as u64,
                    "{name} stream {n}: {who}'s bytes"
                );
            }
        }
    }
}

#[test]
fn how_connections_ended() {
    let ended: Vec<String> = list(&fixture("reuse.pcap"))
        .into_iter()
        .map(|r| r.ended)
        .collect();
    assert_eq!(ended, ["A RST, B open", "A FIN, B FIN"]);
    let http = list(&fixture("http.pcap"));
    assert_eq!(http.len(), 2);
    assert!(
        http.iter()
            .all(|r| r.ended == "A FIN, B FIN" && r.b.port() == 18080)
    );
}

// ---- live peers ---------------------------------------------------------------------

/// Replays `name` as B, with a client that plays `client` against it.
fn replay_as_b(name: &str, extra: &[&str], client: Vec<Step>) -> (i32, String, String) {
    let mut list = vec!["-c"];
    list.extend_from_slice(extra);
    let (mut p, port) = spawn_replay_as_b(&fixture(name), &list);
    let a = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let peer = thread::spawn(move || perform(a, &client));
    let status = p.wait();
    peer.join().unwrap();
    (
        status.code().unwrap_or(-1),
        p.stdout.text(),
        p.stderr.text(),
    )
}

/// Replays `name` as A, against a server that plays `server`.
fn replay_as_a(name: &str, server: Vec<Step>) -> (i32, String, String) {
    replay_as_a_with(name, &[], server)
}

fn replay_as_a_with(name: &str, extra: &[&str], server: Vec<Step>) -> (i32, String, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let peer = thread::spawn(move || {
        let (b, _) = listener.accept().unwrap();
        perform(b, &server);
    });
    let path = fixture(name);
    let b = format!("127.0.0.1:{port}");
    let mut list = vec![
        "replay",
        path.to_str().unwrap(),
        "--as",
        "a",
        "-B",
        &b,
        "-c",
    ];
    list.extend_from_slice(extra);
    let result = run(&list);
    peer.join().unwrap();
    result
}

/// `--as b` where A's address is taken: the waiting line names it, and the error
/// follows, as in the relay.
#[test]
fn as_b_on_a_busy_address_names_it_before_the_error() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = format!("127.0.0.1:{}", taken.local_addr().unwrap().port());
    let path = fixture("lines.pcap");
    let (code, stdout, stderr) = run(&["replay", path.to_str().unwrap(), "--as", "b", "-A", &a]);
    assert_eq!(code, 1);
    assert_eq!(stdout, format!("Waiting for a connection from A {a}...\n"));
    assert_eq!(
        stderr,
        format!("Wait for connection from the source failed: {a}: Address already in use\n")
    );
}

#[test]
fn as_b_a_client_that_repeats_a_matches() {
    let client = script(&fixture("lines.pcap"), 0, Direction::AtoB);
    let (code, stdout, stderr) = replay_as_b("lines.pcap", &[], client);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.ends_with("Replay matched stream 0: 90 bytes A -> B, 109 bytes B -> A, 10 turns.\n"),
        "{stdout}"
    );
    // The live display shows every chunk as the relay does.
    assert!(
        stdout.contains("A -> B sent 18 bytes\n00000000  6c 69 6e 65 20 30"),
        "{stdout}"
    );
    assert!(stdout.contains("B -> A flow shutdown"), "{stdout}");
}

#[test]
fn as_b_one_changed_byte_is_shown_where_it_is() {
    let mut client = script(&fixture("lines.pcap"), 0, Direction::AtoB);
    change_byte(&mut client, 43); // the "s" of "says" in the third line, "line 2 says hello"
    let (code, stdout, stderr) = replay_as_b("lines.pcap", &["-q"], client);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert_eq!(
        stderr.trim_end(),
        "Replay differs from the recording: A -> B at stream offset 43"
    );
    let expected = "\
Difference in A -> B at stream offset 43 (0x2b):
expected:
0000002b                                    73 61 79 73 20  |           says |
00000030  68 65 6c 6c 6f 0a                                 |hello.          |
received:
0000002b                                    53 61 79 73 20  |           Says |
00000030  68 65 6c 6c 6f 0a                                 |hello.          |
";
    assert!(stdout.ends_with(expected), "{stdout}");
}

#[test]
fn as_b_a_client_that_closes_early_differs() {
    let mut client = script(&fixture("lines.pcap"), 0, Direction::AtoB);
    // After its first line and answer, the client hangs up.
    client.truncate(2);
    client.push(Step::Shutdown);
    let (code, stdout, stderr) = replay_as_b("lines.pcap", &["-q"], client);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains("A closed its side at stream offset 18, with 18 bytes still to send."),
        "{stdout}"
    );
    assert!(stderr.contains("A -> B at stream offset 18"), "{stderr}");
}

#[test]
fn as_b_a_client_that_says_too_much_differs() {
    let mut client = script(&fixture("lines.pcap"), 0, Direction::AtoB);
    // An extra line before B's first answer, in the same write as the first line, so
    // it is surely there when the replay looks before answering.
    let Step::Send(first) = &mut client[0] else {
        panic!("A speaks first in lines.pcap");
    };
    first.extend_from_slice(b"surprise\n");
    let (code, stdout, _) = replay_as_b("lines.pcap", &["-q"], client);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains(
            "A sent bytes the recording does not have, at stream offset 18 (before B's next turn):"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("|  surprise.     |"), "{stdout}");
}

#[test]
fn as_b_a_silent_client_fails_after_the_timeout() {
    // Connected, saying nothing, waiting for the replay to hang up.
    let silent = vec![Step::ExpectEnd];
    let (code, stdout, _) = replay_as_b("lines.pcap", &["-q", "--timeout", "0.3"], silent);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("A sent nothing for 0.3 s at stream offset 0."),
        "{stdout}"
    );
}

#[test]
fn as_b_over_ipv6_and_pcapng_and_cooked_captures() {
    for name in [
        "lines-ipv6.pcap",
        "lines.pcapng",
        "any-sll1.pcap",
        "any-sll2.pcap",
    ] {
        let client = script(&fixture(name), 0, Direction::AtoB);
        let (code, stdout, stderr) = replay_as_b(name, &["-q"], client);
        assert_eq!(code, 0, "{name}: {stdout}{stderr}");
    }
}

#[test]
fn as_a_a_server_that_repeats_b_matches() {
    let server = script(&fixture("lines.pcap"), 0, Direction::BtoA);
    let (code, stdout, stderr) = replay_as_a("lines.pcap", server);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.starts_with("Connecting to B 127.0.0.1:"), "{stdout}");
    assert!(stdout.contains("Replay matched stream 0"), "{stdout}");
}

#[test]
fn as_a_a_server_that_differs_is_caught() {
    let mut server = script(&fixture("lines.pcap"), 0, Direction::BtoA);
    change_byte(&mut server, 3); // "OK LINE 0..." becomes "OK lINE 0..."
    let (code, stdout, stderr) = replay_as_a("lines.pcap", server);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains("Difference in B -> A at stream offset 3 (0x3):"),
        "{stdout}"
    );
    assert!(stdout.contains("|   lINE 0 SAYS H|"), "{stdout}");
}

#[test]
fn recorded_timing_keeps_the_pauses_before_our_turns() {
    // As A, the pauses are the client's: ~10 ms before each of its later lines.
    let path = fixture("lines.pcap");
    let mut recording = Recording::open(&path, 0).unwrap();
    let (mut pauses, mut previous) = (Duration::ZERO, None);
    while let Some(event) = recording.next_event().unwrap() {
        if let StreamEvent::Data { dir, time, .. } = event {
            if let Some((before_dir, before)) = previous {
                if dir == Direction::AtoB && before_dir != dir {
                    pauses += time - before;
                }
            }
            previous = Some((dir, time));
        }
    }
    assert!(pauses > Duration::from_millis(30), "{pauses:?}");
    let speed = 0.25;
    let server = script(&path, 0, Direction::BtoA);
    let started = Instant::now();
    let (code, stdout, stderr) = replay_as_a_with(
        "lines.pcap",
        &["--timing", "recorded", "--speed", "0.25", "-q"],
        server,
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    // Sleeps last at least as long as asked; nothing here bounds them from above.
    assert!(
        started.elapsed() >= pauses.div_f64(speed),
        "{:?}",
        started.elapsed()
    );
}

// ---- bad input ----------------------------------------------------------------------

/// A file of its own in the temporary directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn with(name: &str, bytes: &[u8]) -> TempFile {
        let path = std::env::temp_dir().join(format!("tiburoncin-{}-{name}", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn empty_garbage_and_truncated_files_are_clear_errors() {
    let whole = std::fs::read(fixture("lines.pcap")).unwrap();
    let cases = [
        ("empty.pcap", Vec::new(), "the file is empty, not a capture"),
        (
            "garbage.pcap",
            b"<html>not a capture</html>".to_vec(),
            "not a pcap or pcapng file",
        ),
        (
            "header.pcap",
            whole[..20].to_vec(),
            "the file is cut short in its header",
        ),
        (
            "cut.pcap",
            whole[..whole.len() - 5].to_vec(),
            "the file is cut short in packet",
        ),
    ];
    for (name, bytes, reason) in cases {
        let file = TempFile::with(name, &bytes);
        let path = file.0.to_str().unwrap();
        for extra in [&["--list"][..], &["--as", "b", "-A", "127.0.0.1:0"]] {
            let mut list = vec!["replay", path];
            list.extend_from_slice(extra);
            let (code, stdout, stderr) = run(&list);
            assert_eq!(code, 1, "{name}: {stdout}{stderr}");
            assert!(
                stderr.starts_with(&format!("Cannot read {path}: {reason}")),
                "{stderr}"
            );
            assert!(!stderr.contains("panicked"), "{stderr}");
            assert!(
                !stdout.contains("Waiting"),
                "the file is checked before listening"
            );
        }
    }
}

#[test]
fn a_fifo_is_listed_but_not_played() {
    let path = std::env::temp_dir().join(format!("tiburoncin-{}-fifo.pcap", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let c_path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo(3) with a NUL-terminated path and a mode; no memory is shared.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let file = TempFile(path);
    let path = file.0.to_str().unwrap();
    // Playing would open it a second time and wait for a writer for ever: it is
    // refused before the first open, so no writer is needed here.
    for extra in [
        &["--as", "b", "-A", "127.0.0.1:0"][..],
        &["--list", "--dump"],
    ] {
        let mut list = vec!["replay", path];
        list.extend_from_slice(extra);
        let (code, stdout, stderr) = run(&list);
        assert_eq!(code, 1, "{stdout}{stderr}");
        assert!(
            stderr.starts_with(&format!(
                "Cannot read {path}: replay reads the capture more than once, so it must \
                 be a file, not a pipe or a FIFO"
            )),
            "{stderr}"
        );
    }
    // --list reads it once, from a writer feeding it.
    let feeder = {
        let target = file.0.clone();
        let bytes = std::fs::read(fixture("lines.pcap")).unwrap();
        std::thread::spawn(move || std::fs::write(target, bytes))
    };
    let (code, stdout, stderr) = run(&["replay", path, "--list"]);
    feeder.join().unwrap().unwrap();
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (_, from_file, _) = run(&["replay", fixture("lines.pcap").to_str().unwrap(), "--list"]);
    assert_eq!(stdout, from_file);
}

#[test]
fn a_connection_the_capture_lacks_is_a_usage_error() {
    let http = fixture("http.pcap");
    let path = http.to_str().unwrap();
    // Without --stream every connection is played (tests/replay_ci.rs); one that is
    // not there is a mistake in the command line, found before listening.
    let (code, stdout, stderr) = run(&[
        "replay",
        path,
        "--as",
        "b",
        "-A",
        "127.0.0.1:0",
        "--stream",
        "0,7",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stdout, "");
    assert!(
        stderr.starts_with(&format!(
            "error: {path} has no TCP connection 7 (see --list)\n"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("Usage: tiburoncin replay <capture> --list"),
        "{stderr}"
    );
}

#[test]
fn bad_replay_arguments_are_usage_errors() {
    let lines = fixture("lines.pcap");
    let path = lines.to_str().unwrap();
    for list in [
        &["replay", path][..],
        &["replay", path, "--as", "b"],
        &["replay", path, "--as", "a", "-B", "127.0.0.1:0"],
        &["replay", path, "--as", "b", "-A", "1", "-B", "2"],
        &["-A", "1", "replay", path, "--list"],
        &["replay", path, "--list", "--client", "127.0.0.1"],
    ] {
        let (code, _, stderr) = run(list);
        assert_eq!(code, 2, "{list:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(stderr.contains("Usage: tiburoncin"), "{stderr}");
    }
}

// ---- tunnels, fragments, captures without a handshake -------------------------------

#[test]
fn layered_captures_replay_as_either_side() {
    for name in LAYERED {
        let path = fixture(name);
        let client = script(&path, 0, Direction::AtoB);
        let (code, stdout, stderr) = replay_as_b(name, &["-q", "--stream", "0"], client);
        assert_eq!(code, 0, "{name} as B: {stdout}{stderr}");
        let server = script(&path, 0, Direction::BtoA);
        let (code, stdout, stderr) = replay_as_a_with(name, &["-q", "--stream", "0"], server);
        assert_eq!(code, 0, "{name} as A: {stdout}{stderr}");
    }
}

#[test]
fn list_says_what_it_skipped() {
    for (name, said) in [
        ("lines.pcap", None),
        ("pppoe-qinq.pcap", Some("skipped: 2 non-TCP")),
        // ARP, and IPv6 neighbour discovery and MLD inside the VXLAN.
        ("vxlan.pcap", Some("skipped: 5 non-TCP")),
        (
            "fragments-disorder.pcap",
            Some("skipped: 1 incomplete fragment"),
        ),
    ] {
        let (_, skipped) = list_with(&fixture(name), &[]);
        assert_eq!(skipped.as_deref(), said, "{name}");
    }
    // A capture with nothing but those two packets says why it has no connection.
    let whole = std::fs::read(fixture("pppoe-qinq.pcap")).unwrap();
    let mut end = 24;
    for _ in 0..2 {
        let length: [u8; 4] = whole[end + 8..end + 12].try_into().unwrap();
        end += 16 + u32::from_le_bytes(length) as usize;
    }
    let file = TempFile::with("pppoe-chatter.pcap", &whole[..end]);
    let path = file.0.to_str().unwrap();
    let (code, _, stderr) = run(&["replay", path, "--as", "b", "-A", "127.0.0.1:0"]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        format!("Cannot read {path}: it holds no TCP connection (skipped: 2 non-TCP)")
    );
}

#[test]
fn without_a_handshake_the_client_is_chosen_by_port_or_given() {
    let path = fixture("midstream.pcap");
    let file = path.to_str().unwrap();
    // The capture starts with the server's answer; its port still says it is B.
    let (rows, _) = list_with(&path, &[]);
    assert_eq!(rows[0].b.port(), 18081);
    assert!(
        rows[0].ended.ends_with("(no handshake: A chosen by port)"),
        "{rows:?}"
    );
    let server = rows[0].b.to_string();
    let (rows, _) = list_with(&path, &["--client", &server]);
    assert_eq!(rows[0].a.port(), 18081, "{rows:?}");
    assert!(rows[0].ended.ends_with("(A given by --client)"), "{rows:?}");
    let (code, stdout, stderr) = run(&["replay", file, "--list", "--dump", "--client", &server]);
    assert_eq!(code, 0, "{stderr}");
    let first = stdout.lines().next().expect("a turn");
    let (who, bytes) = first.split_once(' ').expect("who and hex");
    assert_eq!(who, "A");
    assert!(hex(bytes).starts_with(b"OK "), "{first}");
}
