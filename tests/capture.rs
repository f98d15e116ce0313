//! The capture (`-w`) as a user meets it: real sessions through the real binary, the
//! file then read by tshark, the judge of what Wireshark will show. "Follow TCP Stream" must give
//! exactly the bytes relayed, and Wireshark's expert analysis must find nothing.
//!
//! Tests that need tshark fail when it is missing under CI (CI installs it), and
//! otherwise skip with a loud note, so a developer without Wireshark can still run
//! the rest of the suite.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use std::net::TcpStream;

use common::*;

/// What tshark printed, and whether it succeeded.
struct Tshark {
    stdout: String,
    stderr: String,
    ok: bool,
}

/// Runs `tshark -r file args...`, failing the test past the deadline.
fn tshark(file: &Path, args: &[&str]) -> Tshark {
    let mut child = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tshark");
    let drain = |mut from: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut text = String::new();
            let _ = from.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            panic!("tshark {args:?} did not finish");
        }
        thread::sleep(Duration::from_millis(10));
    };
    Tshark {
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
        ok: status.success(),
    }
}

/// tshark's complaints, without the notice it gives anyone running it as root.
fn complaints(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| !l.starts_with("Running as user"))
        .collect()
}

/// The bytes each side sent, as "Follow TCP Stream" reassembles them: (address,
/// bytes) for node 0 and node 1.
fn follow(file: &Path) -> [(String, Vec<u8>); 2] {
    follow_stream(file, 0)
}

/// As `follow`, for TCP stream `n` (Wireshark's `tcp.stream`: `-k` writes one per
/// connection).
fn follow_stream(file: &Path, n: usize) -> [(String, Vec<u8>); 2] {
    let out = tshark(file, &["-qz", &format!("follow,tcp,raw,{n}")]);
    assert!(out.ok, "tshark follow failed: {}", out.stderr);
    let mut nodes: [(String, Vec<u8>); 2] = Default::default();
    for line in out.stdout.lines() {
        if let Some(rest) = line.strip_prefix("Node ") {
            let (n, addr) = rest.split_once(": ").unwrap();
            nodes[n.parse::<usize>().unwrap()].0 = addr.to_string();
        } else if line.is_empty()
            || line.starts_with("====")
            || line.starts_with("Follow:")
            || line.starts_with("Filter:")
        {
            continue;
        } else {
            let (node, hex) = match line.strip_prefix('\t') {
                Some(hex) => (1, hex),
                None => (0, line),
            };
            nodes[node].1.extend(decode_hex(hex));
        }
    }
    nodes
}

fn decode_hex(hex: &str) -> impl Iterator<Item = u8> + '_ {
    (0..hex.len())
        .step_by(2)
        .map(move |i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex from tshark"))
}

/// What every capture must be: no expert flag, good checksums, one TCP
/// connection, the IP version expected.
fn assert_clean(file: &Path, ipv6: bool) {
    let flagged = tshark(file, &["-Y", "tcp.analysis.flags"]);
    assert!(flagged.ok, "tshark failed: {}", flagged.stderr);
    assert_eq!(
        flagged.stdout, "",
        "Wireshark's expert analysis flagged packets"
    );
    assert_eq!(complaints(&flagged.stderr), Vec::<&str>::new());

    let checks = tshark(
        file,
        &[
            "-o",
            "tcp.check_checksum:TRUE",
            "-o",
            "ip.check_checksum:TRUE",
            "-T",
            "fields",
            "-e",
            "tcp.checksum.status",
            "-e",
            "ip.checksum.status",
            "-e",
            "ipv6.src",
            "-e",
            "tcp.stream",
        ],
    );
    let lines: Vec<&str> = checks.stdout.lines().collect();
    assert!(lines.len() > 3, "hardly any packets: {lines:?}");
    for line in lines {
        let fields: Vec<&str> = line.split('\t').collect();
        // checksum.status: 1 is "Good" (0 bad, 2 unverified).
        let expected = if ipv6 {
            ["1", "", "::1", "0"]
        } else {
            ["1", "1", "", "0"]
        };
        assert_eq!(
            fields, expected,
            "a packet with a bad checksum or out of place"
        );
    }
}

fn capture_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

/// Bytes each way, as the peers sent them.
#[derive(Default)]
struct Sent {
    a_to_b: Vec<u8>,
    b_to_a: Vec<u8>,
}

/// A conversation with everything a capture must get right: messages both ways,
/// bulk both ways at once (`bulk` bytes A->B, a fifth of that B->A), then A
/// half-closes, B still answers, and B closes.
fn converse(s: &mut Session, bulk: usize) -> Sent {
    let mut sent = Sent::default();
    for i in 0..12 {
        let ping = random_bytes(1 + i * 97, i as u64 + 1);
        s.a.write_all(&ping).unwrap();
        assert_eq!(read_exact(&mut s.b, ping.len()), ping);
        sent.a_to_b.extend(&ping);
        let pong = random_bytes(5 + i * 31, i as u64 + 100);
        s.b.write_all(&pong).unwrap();
        assert_eq!(read_exact(&mut s.a, pong.len()), pong);
        sent.b_to_a.extend(&pong);
    }

    let ab = random_bytes(bulk, 7);
    let ba = random_bytes(bulk / 5, 8);
    let a_sends = send_in_background(&s.a, ab.clone(), false);
    let b_sends = send_in_background(&s.b, ba.clone(), false);
    let b_reads = {
        let mut b = s.b.try_clone().unwrap();
        let n = ab.len();
        thread::spawn(move || read_exact(&mut b, n))
    };
    assert!(
        read_exact(&mut s.a, ba.len()) == ba,
        "A did not get B's bulk"
    );
    assert!(b_reads.join().unwrap() == ab, "B did not get A's bulk");
    a_sends.join().unwrap();
    b_sends.join().unwrap();
    sent.a_to_b.extend(&ab);
    sent.b_to_a.extend(&ba);

    s.a.write_all(b"last words from A\n").unwrap();
    s.a.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_end(&mut s.b).unwrap(), b"last words from A\n");
    sent.a_to_b.extend(b"last words from A\n");
    s.b.write_all(b"B answers after the half-close\n").unwrap();
    s.b.shutdown(Shutdown::Write).unwrap();
    assert_eq!(
        read_to_end(&mut s.a).unwrap(),
        b"B answers after the half-close\n"
    );
    sent.b_to_a.extend(b"B answers after the half-close\n");
    sent
}

/// Runs `converse` through tiburoncin on loopback `ip` with `-w file`, and checks
/// the capture: exact bytes both ways in Follow TCP Stream, and `assert_clean`.
fn check_session(ip: &str, file: &Path, extra: &[&str], bulk: usize) {
    let options = Options {
        dir: None,
        bulk: true,
        ..Options::default()
    };
    let file_arg = file.to_str().unwrap();
    let mut args = vec!["-c", "-w", file_arg];
    args.extend(extra);
    let mut s = Session::start_on(ip, &args, &options, |_| {});
    let a_addr = s.a.local_addr().unwrap();
    let sent = converse(&mut s, bulk);
    assert_eq!(
        s.process.wait().code(),
        Some(0),
        "{}",
        s.process.stderr.text()
    );
    assert_eq!(s.process.stderr.text(), "");

    let [(node0, bytes0), (node1, bytes1)] = follow(file);
    // Node 0 is the side that sent the SYN: A, at its real address.
    assert_eq!(node0, a_addr.to_string());
    assert!(
        bytes0 == sent.a_to_b,
        "A->B in the capture: {} bytes, sent {}",
        bytes0.len(),
        sent.a_to_b.len()
    );
    assert!(
        bytes1 == sent.b_to_a,
        "B->A in the capture: {} bytes, sent {} (node 1 is {node1})",
        bytes1.len(),
        sent.b_to_a.len()
    );
    assert_clean(file, ip.contains(':'));
}

/// Test 1 and 2 for pcap: several messages both ways, half-closes, 5 MB of bulk.
#[test]
fn a_pcap_follows_the_session_exactly_and_cleanly() {
    if !have_tshark() {
        return;
    }
    let dir = scratch_dir("capture-pcap");
    let file = capture_path(&dir, "session.pcap");
    check_session("127.0.0.1", &file, &[], 5 << 20);
    let info = std::fs::read(&file).unwrap();
    // The nanosecond pcap magic, in this machine's byte order.
    assert_eq!(info[..4], 0xa1b2_3c4d_u32.to_ne_bytes());
    let _ = std::fs::remove_dir_all(dir);
}

/// The same for pcapng, whose packets also carry the relay's view.
#[test]
fn a_pcapng_follows_the_session_exactly_and_cleanly() {
    if !have_tshark() {
        return;
    }
    let dir = scratch_dir("capture-pcapng");
    let file = capture_path(&dir, "session.pcapng");
    check_session("127.0.0.1", &file, &["-b", "100000"], 5 << 20);
    let comments = tshark(&file, &["-T", "fields", "-e", "frame.comment"]);
    let comments: Vec<&str> = comments.stdout.lines().collect();
    // The handshake, then the first ping, 1 byte. What follows — B's ACK of it, B's
    // 5-byte answer, A's ACK of that — happens all at once, in any order a scheduler
    // picks (the threads of the two directions run side by side).
    assert_eq!(comments[..4], ["", "", "", "B is 1 byte behind"]);
    assert!(comments[4..].contains(&"B is in sync"));
    assert!(comments[4..].contains(&"A is 5 bytes behind"));
    assert!(comments.contains(&"A -> B flow shutdown"));
    assert!(comments.contains(&"B -> A flow shutdown"));
    let _ = std::fs::remove_dir_all(dir);
}

/// Test 3: an IPv6 session gives IPv6 packets, as exact and as clean. (With -q: the
/// terminal shows nothing per chunk, but the capture still sees every event.)
#[test]
fn an_ipv6_session_gives_ipv6_packets() {
    if !have_tshark() {
        return;
    }
    if TcpListener::bind("[::1]:0").is_err() {
        assert!(std::env::var_os("CI").is_none(), "no IPv6 loopback in CI");
        eprintln!("SKIPPED: no IPv6 loopback");
        return;
    }
    let dir = scratch_dir("capture-ipv6");
    let file = capture_path(&dir, "v6.pcapng");
    check_session("::1", &file, &["-q"], 1 << 20);
    let _ = std::fs::remove_dir_all(dir);
}

/// `-b 65535`: the first read can fill exactly the window of B's SYN-ACK, which
/// Wireshark would call "window full"; the capture must still be clean.
#[test]
fn a_read_the_size_of_the_first_window_stays_clean() {
    if !have_tshark() {
        return;
    }
    let dir = scratch_dir("capture-window");
    let file = capture_path(&dir, "window.pcap");
    let file_arg = file.to_str().unwrap();
    let mut s = Session::start(&["-c", "-b", "65535", "-w", file_arg]);
    let first = random_bytes(65535, 3);
    s.a.write_all(&first).unwrap();
    assert!(read_exact(&mut s.b, first.len()) == first);
    s.a.write_all(b"and then some").unwrap();
    assert_eq!(read_exact(&mut s.b, 13), b"and then some");
    s.a.shutdown(Shutdown::Write).unwrap();
    s.b.shutdown(Shutdown::Write).unwrap();
    assert_eq!(s.process.wait().code(), Some(0));
    let [(_, ab), (_, ba)] = follow(&file);
    assert!(ab == [&first[..], b"and then some"].concat());
    assert!(ba.is_empty());
    assert_clean(&file, false);
    let _ = std::fs::remove_dir_all(dir);
}

/// Test 4: a broken pipe ends the capture with a RST from the side that is gone.
#[test]
fn a_broken_pipe_ends_the_capture_with_a_reset() {
    if !have_tshark() {
        return;
    }
    let dir = scratch_dir("capture-rst");
    let file = capture_path(&dir, "rst.pcap");
    let file_arg = file.to_str().unwrap();
    let mut s = Session::start(&["-c", "-w", file_arg]);
    let a_port = s.a.local_addr().unwrap().port().to_string();
    s.a.write_all(b"bye\n").unwrap();
    assert_eq!(read_exact(&mut s.b, 4), b"bye\n");
    s.a.shutdown(Shutdown::Both).unwrap();
    drop(s.a);
    keep_sending_to_a_gone(&s.b);
    assert_eq!(s.process.wait().code(), Some(1));
    assert_eq!(
        s.process.stderr.text(),
        "Passthrough from B to A failed: Broken pipe\n"
    );
    let packets = tshark(
        &file,
        &["-T", "fields", "-e", "tcp.srcport", "-e", "tcp.flags.reset"],
    );
    let last = packets.stdout.lines().last().unwrap().to_string();
    // tshark 4 shows a flag as 1 or True depending on the version.
    let (port, reset) = last.split_once('\t').unwrap();
    assert_eq!(port, a_port, "the reset should come from A: {last}");
    assert!(
        reset == "1" || reset == "True",
        "the last packet is no reset: {last}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Peers that close without reading what they were sent (each close a reset, its
/// peer's line unread) end no relay in failure: the capture shows both lines and
/// both FINs, no RST (tiburoncin failed nothing), and nothing Wireshark would flag.
#[test]
fn peers_that_close_without_reading_leave_a_clean_capture() {
    if !have_tshark() {
        return;
    }
    let dir = scratch_dir("capture-unread");
    let file = capture_path(&dir, "unread.pcap");
    let file_arg = file.to_str().unwrap();
    let mut s = Session::start(&["-c", "-w", file_arg]);
    let out = s.stdout().clone();
    s.a.write_all(b"from A\n").unwrap();
    s.b.write_all(b"from B\n").unwrap();
    out.wait_line("A's line to reach B", |l| l == "B is in sync");
    out.wait_line("B's line to reach A", |l| l == "A is in sync");
    let Session {
        mut process, a, b, ..
    } = s;
    a.shutdown(Shutdown::Both).unwrap();
    drop(a);
    out.wait_line("A's shutdown", |l| l == "A -> B flow shutdown");
    b.shutdown(Shutdown::Both).unwrap();
    drop(b);
    assert_eq!(process.wait().code(), Some(0));
    assert_eq!(process.stderr.text(), "");
    let [(_, ab), (_, ba)] = follow(&file);
    assert_eq!((&ab[..], &ba[..]), (&b"from A\n"[..], &b"from B\n"[..]));
    assert_clean(&file, false);
    let flags = tshark(
        &file,
        &[
            "-T",
            "fields",
            "-e",
            "tcp.flags.fin",
            "-e",
            "tcp.flags.reset",
        ],
    );
    // tshark 4 shows a flag as 1 or True depending on the version.
    let set = |field: &str| field == "1" || field == "True";
    let (mut fins, mut resets) = (0, 0);
    for line in flags.stdout.lines() {
        let (fin, reset) = line.split_once('\t').unwrap();
        fins += usize::from(set(fin));
        resets += usize::from(set(reset));
    }
    assert_eq!((fins, resets), (2, 0), "{}", flags.stdout);
    let _ = std::fs::remove_dir_all(dir);
}

/// Test 4: SIGINT in the middle of a transfer leaves a whole file, holding at least
/// what B already got.
#[test]
fn sigint_mid_transfer_leaves_a_readable_capture() {
    if !have_tshark() {
        return;
    }
    let dir = scratch_dir("capture-sigint");
    let file = capture_path(&dir, "cut.pcapng");
    let options = Options {
        dir: None,
        bulk: true,
        ..Options::default()
    };
    let file_arg = file.to_str().unwrap();
    let data = random_bytes(8 << 20, 5);
    let mut s = Session::start_full(&["-c", "-b", "1000", "-w", file_arg], &options, |_| {});
    let _sender = flood_in_background(&s.a, data.clone());
    // B reads a little, then stops: tiburoncin is mid-transfer with a full buffer.
    let got = read_exact(&mut s.b, 100_000);
    s.process.signal(libc::SIGINT);
    assert_eq!(s.process.wait().code(), Some(130));
    assert_eq!(s.process.stderr.text(), "User cancelled.\n");

    let all = tshark(&file, &[]);
    assert!(all.ok, "tshark could not read the capture: {}", all.stderr);
    assert_eq!(complaints(&all.stderr), Vec::<&str>::new());
    let [(_, ab), _] = follow(&file);
    assert!(ab.len() >= got.len(), "the capture lost bytes B got");
    assert!(data.starts_with(&ab), "the capture is not what A sent");
    let _ = std::fs::remove_dir_all(dir);
}

/// Test 4: a capture that cannot be written (a full disk) is reported at once, the
/// bytes are still relayed, and the run ends with status 1.
#[test]
fn a_full_disk_is_reported_and_the_relay_goes_on() {
    let mut s = Session::start(&["-c", "-w", "/dev/full"]);
    // At once: before any traffic, the handshake could not be written.
    s.process.stderr.wait_line("the write error", |l| {
        l == "Writing /dev/full failed: No space left on device"
    });
    s.a.write_all(b"still relayed\n").unwrap();
    assert_eq!(read_exact(&mut s.b, 14), b"still relayed\n");
    s.b.write_all(b"both ways\n").unwrap();
    assert_eq!(read_exact(&mut s.a, 10), b"both ways\n");
    s.a.shutdown(Shutdown::Write).unwrap();
    s.b.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_end(&mut s.a).unwrap(), b"");
    assert_eq!(s.process.wait().code(), Some(1));
    // Reported once, not for every packet.
    assert_eq!(
        s.process.stderr.text(),
        "Writing /dev/full failed: No space left on device\n"
    );
    assert!(
        s.stdout()
            .lines()
            .contains(&"B -> A sent 10 bytes".to_string())
    );
}

/// A capture that cannot even be created stops the run before it connects to B.
#[test]
fn a_capture_that_cannot_be_created_fails_before_connecting() {
    let b = TcpListener::bind("127.0.0.1:0").unwrap();
    let b_port = b.local_addr().unwrap().port();
    let mut process = Process::spawn(&[
        "-A".into(),
        "127.0.0.1:0".into(),
        "-B".into(),
        format!("127.0.0.1:{b_port}"),
        "-w".into(),
        "/nonexistent-dir/x.pcap".into(),
    ]);
    assert_eq!(process.wait().code(), Some(1));
    assert_eq!(
        process.stderr.text(),
        "Cannot create /nonexistent-dir/x.pcap: No such file or directory\n"
    );
    assert_eq!(process.stdout.text(), "");
    b.set_nonblocking(true).unwrap();
    assert!(b.accept().is_err(), "tiburoncin connected to B anyway");
}

/// Test 5: with a slow receiver, Wireshark's bytes in flight A->B climb to what
/// waits in tiburoncin's buffer (the terminal's "B is N bytes behind"), and fall
/// back to nothing once B has caught up.
#[test]
fn bytes_in_flight_show_the_slow_receivers_backlog() {
    if !have_tshark() {
        return;
    }
    let dir = scratch_dir("capture-flight");
    let file = capture_path(&dir, "flight.pcap");
    let file_arg = file.to_str().unwrap();
    let mut s = Session::start_with(
        &["-c", "-b", "4096", "-z", "1024:4096", "-w", file_arg],
        |listener| {
            socket2::SockRef::from(listener)
                .set_recv_buffer_size(1024)
                .unwrap();
        },
    );
    let a_port = s.a.local_addr().unwrap().port().to_string();
    let data = random_bytes(200_000, 9);
    let sender = send_in_background(&s.a, data.clone(), false);
    // B reads nothing until the relay has stalled with every buffer full.
    s.stdout().wait_until_quiet("the relay to stall");
    assert!(read_exact(&mut s.b, data.len()) == data);
    sender.join().unwrap();
    // Once B is in sync, a new message is all there is in flight.
    wait_for(
        "the last write to be reported",
        || {
            let total: usize = sent_sizes(&s.stdout().lines(), "A -> B").iter().sum();
            let in_sync = s.stdout().lines().last().map(String::as_str) == Some("B is in sync");
            (total == data.len() && in_sync).then_some(())
        },
        || s.stdout().text(),
    );
    s.a.write_all(b"tail").unwrap();
    assert_eq!(read_exact(&mut s.b, 4), b"tail");
    s.a.shutdown(Shutdown::Write).unwrap();
    s.b.shutdown(Shutdown::Write).unwrap();
    assert_eq!(s.process.wait().code(), Some(0));

    let fields = tshark(
        &file,
        &[
            "-Y",
            &format!("tcp.srcport == {a_port} && tcp.len > 0"),
            "-T",
            "fields",
            "-e",
            "tcp.analysis.bytes_in_flight",
        ],
    );
    let in_flight: Vec<u64> = fields
        .stdout
        .lines()
        .map(|l| l.parse().expect("bytes in flight on every data segment"))
        .collect();
    // Each data segment's bytes in flight is exactly the backlog printed after that
    // read: Wireshark sees what "B is N bytes behind" says.
    let lines = s.stdout().lines();
    let printed: Vec<u64> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("A -> B sent "))
        .map(|(i, _)| {
            let status = lines[i..].iter().find(|l| l.starts_with("B is ")).unwrap();
            behinds(std::slice::from_ref(status), "B")
                .first()
                .map_or(0, |&n| n as u64)
        })
        .collect();
    assert_eq!(in_flight, printed);
    assert!(
        in_flight.iter().max() > Some(&2048),
        "the buffer never filled: {in_flight:?}"
    );
    assert!(
        in_flight.iter().all(|&n| n <= 4096),
        "over -b: {in_flight:?}"
    );
    assert_eq!(in_flight.last(), Some(&4), "the backlog did not fall to 0");
    assert_clean(&file, false);
    let _ = std::fs::remove_dir_all(dir);
}

/// `tiburoncin replay` reads what `-w` wrote: the turns of the conversation, in
/// order, byte for byte. (No tshark needed: this one always runs.)
#[test]
fn the_replay_reads_what_the_capture_wrote() {
    let dir = scratch_dir("capture-replay");
    for name in ["turns.pcap", "turns.pcapng"] {
        let file = capture_path(&dir, name);
        let file_arg = file.to_str().unwrap();
        let mut s = Session::start(&["-c", "-w", file_arg]);
        let mut turns = Vec::new();
        for i in 0..5 {
            let ask = random_bytes(10 + i * 1000, i as u64 + 1);
            s.a.write_all(&ask).unwrap();
            assert_eq!(read_exact(&mut s.b, ask.len()), ask);
            let answer = random_bytes(3 + i * 5000, i as u64 + 50);
            s.b.write_all(&answer).unwrap();
            assert_eq!(read_exact(&mut s.a, answer.len()), answer);
            turns.push(format!("A {}", hex(&ask)));
            turns.push(format!("B {}", hex(&answer)));
        }
        s.a.shutdown(Shutdown::Write).unwrap();
        s.b.shutdown(Shutdown::Write).unwrap();
        assert_eq!(s.process.wait().code(), Some(0));

        let mut replay = Process::spawn(&[
            "replay".into(),
            file_arg.into(),
            "--list".into(),
            "--dump".into(),
        ]);
        assert_eq!(replay.wait().code(), Some(0), "{}", replay.stderr.text());
        assert!(replay.stdout.lines() == turns, "{name}: the turns differ");
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `-k -w`: every connection is a TCP stream of its own in the one file, each
/// exact, and the whole file clean.
#[test]
fn keep_listening_writes_one_stream_per_connection() {
    if !have_tshark() {
        return;
    }
    let dir = scratch_dir("capture-many");
    for name in ["many.pcap", "many.pcapng"] {
        let file = capture_path(&dir, name);
        let mut k = Listening::start(
            &["-c", "-q", "-w", file.to_str().unwrap()],
            &Options::default(),
        );
        let mut sent = Vec::new();
        let mut exchange = |(mut a, mut b): (TcpStream, TcpStream), round: usize| {
            let to_b = random_bytes(50_000 + round * 1000, 10 + round as u64);
            let to_a = random_bytes(20_000 + round * 1000, 20 + round as u64);
            let sender = send_in_background(&a, to_b.clone(), true);
            let replier = send_in_background(&b, to_a.clone(), true);
            assert!(read_to_end(&mut b).unwrap() == to_b);
            assert!(read_to_end(&mut a).unwrap() == to_a);
            sender.join().unwrap();
            replier.join().unwrap();
            sent.push((a.local_addr().unwrap().port(), to_b, to_a));
        };
        // Two connections open at once, the second one talking first; then a third.
        let (first, second) = (k.connect(), k.connect());
        exchange(second, 0);
        exchange(first, 1);
        exchange(k.connect(), 2);
        k.process
            .stdout
            .wait_count("three summaries", 3, |l| l.contains("] Relayed"));
        k.process.signal(libc::SIGTERM);
        k.process.wait();

        let flagged = tshark(&file, &["-Y", "tcp.analysis.flags"]);
        assert!(flagged.ok, "tshark failed: {}", flagged.stderr);
        assert_eq!(flagged.stdout, "", "{name}: Wireshark flagged packets");
        // One stream per connection, in order of their handshakes.
        let ports = tshark(
            &file,
            &[
                "-Y",
                "tcp.flags == 0x002",
                "-T",
                "fields",
                "-e",
                "tcp.srcport",
            ],
        );
        let syn_ports: Vec<u16> = ports.stdout.lines().map(|p| p.parse().unwrap()).collect();
        assert_eq!(syn_ports.len(), 3, "{name}: {syn_ports:?}");
        for (stream, port) in syn_ports.iter().enumerate() {
            let [(node_a, from_a), (_, from_b)] = follow_stream(&file, stream);
            assert!(node_a.ends_with(&format!(":{port}")), "{name}: {node_a}");
            let (_, to_b, to_a) = sent.iter().find(|(p, ..)| p == port).unwrap();
            assert!(from_a == *to_b, "{name}: stream {stream} A->B differs");
            assert!(from_b == *to_a, "{name}: stream {stream} B->A differs");
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// `--reset-after`: the capture ends the conversation with the RST that the
/// consumer got, shown as coming from the producer.
#[test]
fn an_injected_reset_shows_as_a_reset() {
    if !have_tshark() {
        return;
    }
    let dir = scratch_dir("capture-injected");
    let file = capture_path(&dir, "reset.pcapng");
    let mut s = Session::start(&[
        "-c",
        "-q",
        "--reset-after",
        "1000:",
        "-w",
        file.to_str().unwrap(),
    ]);
    let _sender = send_in_background(&s.a, random_bytes(3000, 3), false);
    s.b.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0; 4096];
    while let Ok(n @ 1..) = s.b.read(&mut buf) {
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got.len(), 1000);
    assert_eq!(s.process.wait().code(), Some(0));
    let a_port = s.a.local_addr().unwrap().port().to_string();
    let resets = tshark(
        &file,
        &[
            "-Y",
            "tcp.flags.reset == 1",
            "-T",
            "fields",
            "-e",
            "tcp.srcport",
            "-e",
            "frame.comment",
        ],
    );
    let lines: Vec<&str> = resets.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with(&format!("{a_port}\t")), "{lines:?}");
    assert!(
        lines[0].ends_with("A -> B reset after 1000 bytes (injected)"),
        "{lines:?}"
    );
    // A's segments are what the relay read from A, more than the 1000 bytes B got
    // before the reset: the rest were in flight, as the capture's ACKs show.
    let [(_, from_a), _] = follow(&file);
    assert!(from_a.len() >= 1000, "{}", from_a.len());
    let _ = std::fs::remove_dir_all(dir);
}
