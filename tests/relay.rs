//! The relay as a user sees it: the real binary between real loopback peers.

mod common;

use std::io::Write;
use std::net::{Shutdown, TcpListener};
use std::path::Path;

use common::*;

/// The hello session of docs/intro.md, driven one step at a time so that even the order
/// between the two directions is fixed.
#[test]
fn the_hello_session_prints_the_intro_transcript() {
    let mut s = Session::start(&["-c"]);
    let out = s.stdout().clone();

    s.a.write_all(b"hello\n").unwrap();
    assert_eq!(read_exact(&mut s.b, 6), b"hello\n");
    out.wait_count("B in sync", 1, |l| l == "B is in sync");

    s.b.write_all(b"hi there!\n").unwrap();
    assert_eq!(read_exact(&mut s.a, 10), b"hi there!\n");
    out.wait_count("A in sync", 1, |l| l == "A is in sync");

    s.b.write_all(b"how are you?\n").unwrap();
    assert_eq!(read_exact(&mut s.a, 13), b"how are you?\n");
    out.wait_count("A in sync again", 2, |l| l == "A is in sync");

    s.a.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_end(&mut s.b).unwrap(), b"");
    out.wait_count("B in sync after the shutdown", 2, |l| l == "B is in sync");

    s.b.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_end(&mut s.a).unwrap(), b"");
    let status = s.process.wait();
    assert_eq!(
        status.code(),
        Some(0),
        "stderr: {}",
        s.process.stderr.text()
    );

    let text = out.text();
    let relay = &text[text.find("Allocating").unwrap()..];
    assert_eq!(
        relay,
        "\
Allocating buffers: 2048 and 2048 bytes...
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
B -> A flow shutdown
A is in sync
"
    );
    assert!(text.starts_with("Connecting to B 127.0.0.1:"));
    assert_eq!(s.process.stderr.text(), "");
}

/// Every byte value, and escape sequences that would recolour or retitle a terminal,
/// reach the peers intact but never reach stdout as control bytes.
#[test]
fn control_bytes_never_reach_the_terminal() {
    let hostile = hostile_bytes();
    for colour in [false, true] {
        let args: &[&str] = if colour { &[] } else { &["-c"] };
        let mut s = Session::start(args);
        s.a.write_all(&hostile).unwrap();
        s.a.shutdown(Shutdown::Write).unwrap();
        s.b.write_all(&hostile).unwrap();
        s.b.shutdown(Shutdown::Write).unwrap();
        assert_eq!(read_to_end(&mut s.b).unwrap(), hostile);
        assert_eq!(read_to_end(&mut s.a).unwrap(), hostile);
        assert_eq!(s.process.wait().code(), Some(0));

        let shown = s.stdout().bytes();
        let bad = control_bytes(&shown);
        assert!(
            bad.is_empty(),
            "control bytes in stdout (colour {colour}): {bad:02x?}"
        );
        let text = String::from_utf8(shown).unwrap();
        assert!(text.contains("|................|"));
        assert!(text.contains("1b 5b 32 4a"), "the escape is shown as hex");
    }
}

/// The original tool's slow receiver (docs/slow-receiver.md): chunks never exceed -b, the backlog never exceeds -b,
/// the relay stalls while B reads nothing, and B then gets every byte.
#[test]
fn a_slow_receiver_is_limited_by_the_user_space_buffer() {
    let data = random_bytes(1 << 20, 7);
    let mut s = Session::start_with(&["-c", "-b", "512", "-z", "1024:4096"], |listener| {
        socket2::SockRef::from(listener)
            .set_recv_buffer_size(1024)
            .unwrap();
    });
    let out = s.stdout().clone();
    let sender = send_in_background(&s.a, data.clone(), true);

    // B reads nothing: wait until the relay has stalled, which must happen long
    // before the whole megabyte got through.
    out.wait_until_quiet("the relay to stall");
    let stalled_at: usize = sent_sizes(&out.lines(), "A -> B").iter().sum();
    assert!(
        stalled_at < data.len() / 4,
        "{stalled_at} bytes got through to a B that reads nothing"
    );

    let received = read_to_end(&mut s.b).unwrap();
    sender.join().unwrap();
    assert!(
        received == data,
        "B got {} bytes, not the {} sent",
        received.len(),
        data.len()
    );
    s.b.shutdown(Shutdown::Write).unwrap();
    assert_eq!(s.process.wait().code(), Some(0));

    let lines = out.lines();
    let sent = sent_sizes(&lines, "A -> B");
    assert_eq!(sent.iter().sum::<usize>(), data.len());
    assert!(
        sent.iter().all(|&n| n <= 512),
        "a chunk over -b: {:?}",
        sent.iter().max()
    );
    let behind = behinds(&lines, "B");
    assert!(
        behind.iter().all(|&n| n <= 512),
        "a backlog over -b: {:?}",
        behind.iter().max()
    );
    assert!(behind.contains(&512), "the buffer never filled");
    assert_eq!(
        statuses(&lines, "B").last().map(String::as_str),
        Some("B is in sync")
    );
}

/// A half-close with data still buffered: the data reaches B first, then the EOF,
/// and the other direction keeps working afterwards.
#[test]
fn half_close_drains_the_buffer_before_the_shutdown() {
    let data = random_bytes(200_000, 11);
    let mut s = Session::start(&["-c"]);
    let sender = send_in_background(&s.a, data.clone(), true);
    // B is slow: it starts reading only once A has sent everything and shut down.
    sender.join().unwrap();
    assert!(
        read_to_end(&mut s.b).unwrap() == data,
        "B did not get the 200 kB intact"
    );

    s.b.write_all(b"still talking\n").unwrap();
    assert_eq!(read_exact(&mut s.a, 14), b"still talking\n");
    s.b.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_end(&mut s.a).unwrap(), b"");
    assert_eq!(s.process.wait().code(), Some(0));

    let lines = s.stdout().lines();
    let shutdown = lines
        .iter()
        .position(|l| l == "A -> B flow shutdown")
        .unwrap();
    let last_sent = lines
        .iter()
        .rposition(|l| l.starts_with("A -> B sent"))
        .unwrap();
    assert!(last_sent < shutdown);
    assert!(lines.contains(&"B -> A sent 14 bytes".to_string()));
}

/// The original tool's broken pipe (docs/slow-receiver.md): A goes away while B still sends to it.
#[test]
fn a_consumer_that_is_gone_is_a_broken_pipe() {
    let mut s = Session::start(&["-c"]);
    s.a.shutdown(Shutdown::Both).unwrap();
    drop(s.a);
    keep_sending_to_a_gone(&s.b);
    assert_eq!(s.process.wait().code(), Some(1));
    assert_eq!(
        s.process.stderr.text(),
        "Passthrough from B to A failed: Broken pipe\n"
    );
}

/// Both peers say a line and close without reading what they were sent: A shuts down
/// both sides and closes, then B does. Each line reached the other peer's kernel, so
/// tiburoncin held nothing that could not be delivered: what a peer left unread was
/// its own to lose. As the original does, both directions end with their `flow
/// shutdown`, silently, with exit status 0, though each close was a reset (the peer
/// had unread bytes) and so the last shutdown found its consumer gone. Twenty times,
/// so that an ordering between the two directions that only sometimes fails shows.
#[test]
fn peers_that_close_without_reading_end_quietly() {
    for round in 0..20 {
        let Session {
            mut process,
            mut a,
            mut b,
        } = Session::start(&["-c"]);
        let out = process.stdout.clone();
        a.write_all(b"from A\n").unwrap();
        b.write_all(b"from B\n").unwrap();
        // Both lines are in the peers' kernels before anyone closes.
        out.wait_line("A's line to reach B", |l| l == "B is in sync");
        out.wait_line("B's line to reach A", |l| l == "A is in sync");
        a.shutdown(Shutdown::Both).unwrap();
        drop(a);
        out.wait_line("A's shutdown", |l| l == "A -> B flow shutdown");
        b.shutdown(Shutdown::Both).unwrap();
        drop(b);
        let status = process.wait();
        let err = process.stderr.text();
        assert_eq!(status.code(), Some(0), "round {round}: {err}");
        assert_eq!(err, "", "round {round}");
        // Each shutdown line is followed by its direction's status.
        let lines = out.lines();
        for (shutdown, status) in [
            ("A -> B flow shutdown", "B is in sync"),
            ("B -> A flow shutdown", "A is in sync"),
        ] {
            let at = lines.iter().position(|l| l == shutdown);
            let next = at.and_then(|at| lines.get(at + 1));
            assert_eq!(
                next.map(String::as_str),
                Some(status),
                "round {round}: {lines:#?}"
            );
        }
    }
}

/// A client that resets the connection.
#[test]
fn a_reset_from_a_is_reported() {
    let s = Session::start(&["-c"]);
    socket2::SockRef::from(&s.a)
        .set_linger(Some(std::time::Duration::ZERO))
        .unwrap();
    let Session { mut process, a, b } = s;
    drop(a); // linger 0: the close sends RST
    let status = process.wait();
    assert_eq!(status.code(), Some(1));
    assert_eq!(
        process.stderr.text(),
        "Passthrough from A to B failed: Connection reset by peer\n"
    );
    drop(b);
}

fn dump_session(args: &[&str], dir: &Path) -> (Vec<u8>, Vec<u8>) {
    let ab = random_bytes(100_000, 3);
    let ba = random_bytes(100_003, 5);
    let options = Options {
        dir: Some(dir.to_path_buf()),
        bulk: true,
        ..Options::default()
    };
    let mut s = Session::start_full(args, &options, |_| {});
    exchange_both_ways(&mut s, &ab, &ba);
    (ab, ba)
}

#[test]
fn dump_files_restore_the_exact_bytes() {
    let dir = scratch_dir("dump-o");
    let (ab, ba) = dump_session(&["-c", "-o"], &dir);
    assert!(decode_dump(&dir.join("AtoB.dump")) == ab);
    assert!(decode_dump(&dir.join("BtoA.dump")) == ba);

    let dir = scratch_dir("dump-f");
    let prefix = format!("{}/run1-", dir.display());
    let (ab, ba) = dump_session(&["-c", "-b", "333:1000", "-f", &prefix], Path::new("/"));
    assert!(decode_dump(&dir.join("run1-AtoB.dump")) == ab);
    assert!(decode_dump(&dir.join("run1-BtoA.dump")) == ba);
    let _ = std::fs::remove_dir_all(dir);
}

/// Both directions at full speed at once, through a small buffer.
#[test]
fn bulk_both_ways_at_once_arrives_intact() {
    let ab = random_bytes(30_000_000, 1);
    let ba = random_bytes(20_000_000, 2);
    let options = Options {
        bulk: true,
        ..Options::default()
    };
    let mut s = Session::start_full(&["-c", "-b", "4096"], &options, |_| {});
    exchange_both_ways(&mut s, &ab, &ba);
    // Only the tail is kept; the direction that carried more ends last.
    let tail = s.stdout().lines();
    assert!(tail.iter().any(|l| l == "A -> B flow shutdown"));
    assert_eq!(tail.last().map(String::as_str), Some("B is in sync"));
}

/// Nothing listens on B's port.
#[test]
fn connection_refused() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut p = Process::spawn(&[
        "-A".into(),
        "127.0.0.1:0".into(),
        "-B".into(),
        format!("127.0.0.1:{port}"),
    ]);
    assert_eq!(p.wait().code(), Some(1));
    assert_eq!(
        p.stdout.text(),
        format!("Connecting to B 127.0.0.1:{port}...\n")
    );
    assert_eq!(
        p.stderr.text(),
        "Establish a connection to the destination failed: Connection refused\n"
    );
}

/// A's address is taken: as the original, the waiting line names it, and the error
/// follows.
#[test]
fn a_busy_address_for_a_is_named_before_the_error() {
    let b = TcpListener::bind("127.0.0.1:0").unwrap();
    let b_port = b.local_addr().unwrap().port();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let a_port = taken.local_addr().unwrap().port();
    let mut p = Process::spawn(&[
        "-A".into(),
        format!("127.0.0.1:{a_port}"),
        "-B".into(),
        format!("127.0.0.1:{b_port}"),
    ]);
    assert_eq!(p.wait().code(), Some(1));
    assert_eq!(
        p.stdout.text(),
        format!(
            "Connecting to B 127.0.0.1:{b_port}...\n\
             Waiting for a connection from A 127.0.0.1:{a_port}...\n"
        )
    );
    assert_eq!(
        p.stderr.text(),
        format!(
            "Wait for connection from the source failed: 127.0.0.1:{a_port}: Address already in use\n"
        )
    );
}

#[test]
fn sigint_while_waiting_for_a() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut p = Process::spawn(&[
        "-A".into(),
        "127.0.0.1:0".into(),
        "-B".into(),
        format!("127.0.0.1:{port}"),
    ]);
    p.stdout.wait_line("the waiting line", |l| {
        l.starts_with("Waiting for a connection")
    });
    p.signal(libc::SIGINT);
    assert_eq!(p.wait().code(), Some(130));
    assert_eq!(p.stderr.text(), "User cancelled.\n");
}

/// SIGTERM in the middle of a transfer: prompt exit, and the outputs are whole.
#[test]
fn sigterm_mid_relay_keeps_the_outputs_whole() {
    let dir = scratch_dir("sigterm");
    let options = Options {
        dir: Some(dir.clone()),
        bulk: true,
        ..Options::default()
    };
    let data = random_bytes(8 << 20, 9);
    let mut s = Session::start_full(&["-c", "-o", "-b", "1000"], &options, |_| {});
    let _sender = flood_in_background(&s.a, data.clone());
    // B reads a little, then stops: tiburoncin is mid-transfer with a full buffer.
    let got = read_exact(&mut s.b, 100_000);
    s.stdout()
        .wait_line("some traffic", |l| l.starts_with("A -> B sent"));
    s.process.signal(libc::SIGTERM);
    assert_eq!(s.process.wait().code(), Some(143));
    assert_eq!(s.process.stderr.text(), "User cancelled.\n");
    assert!(s.stdout().text().ends_with('\n'), "the last line was cut");

    // The dump holds a prefix of what A sent, at least what B already got.
    let dumped = decode_dump(&dir.join("AtoB.dump"));
    assert!(dumped.len() >= got.len());
    assert!(data.starts_with(&dumped), "the dump is not what A sent");
    let _ = std::fs::remove_dir_all(dir);
}

/// Malformed command lines: exit 2, one clear reason and the usage, never a panic.
#[test]
fn malformed_command_lines_are_usage_errors() {
    let cases: &[&[&str]] = &[
        &[],
        &["-A", "8081"],
        &["-B", "8082"],
        &["-A", "1", "-B", "2", "-b", "0"],
        &["-A", "1", "-B", "2", "-b", "-1"],
        &["-A", "1", "-B", "2", "-b", "1:2:3"],
        &["-A", "1", "-B", "2", "-b", "lots"],
        &["-A", "1", "-B", "2", "-b", ""],
        &["-A", "1", "-B", "2", "-b", "99999999999999999999999"],
        &["-A", "1", "-B", "2", "-z", "0x"],
        &["-A", "1", "-B", "2", "-z", "4294967296"],
        &["-A", "1", "-B", "2", "-o", "-f", "x"],
        &["-A", ":", "-B", "2"],
        &["-A", "1", "-B", "127.0.0.1:0"],
        &["-A", "1", "-B", "127.0.0.1:70000"],
        &["-A", "1", "-B", "a..b:80"],
        &["-A", "1", "-B", "127.0.0.1:no-such-service"],
        &["-A", "[::1:80", "-B", "2"],
        &["-A", "1", "-B", "2", "-x"],
        &["-A", "1", "-B", "2", "extra"],
    ];
    for case in cases {
        let args: Vec<String> = case.iter().map(|s| s.to_string()).collect();
        assert_usage_error(&args, false);
    }
}

/// Ctrl-Z and `fg`: the process stops, traffic waits in the kernel, and everything
/// flows again once it continues.
#[test]
fn stop_and_continue_just_work() {
    let mut s = Session::start(&["-c"]);
    s.a.write_all(b"before ").unwrap();
    assert_eq!(read_exact(&mut s.b, 7), b"before ");
    s.process.signal(libc::SIGTSTP);
    wait_for(
        "the process to stop",
        || process_state(s.process.child.id()).filter(|&c| c == 'T'),
        String::new,
    );
    s.a.write_all(b"while stopped").unwrap();
    s.process.signal(libc::SIGCONT);
    assert_eq!(read_exact(&mut s.b, 13), b"while stopped");
    s.a.shutdown(Shutdown::Write).unwrap();
    s.b.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_end(&mut s.b).unwrap(), b"");
    assert_eq!(read_to_end(&mut s.a).unwrap(), b"");
    assert_eq!(s.process.wait().code(), Some(0));
    assert_eq!(s.process.stderr.text(), "");
}

/// The state letter of a process in /proc (`T` when stopped).
fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].chars().next()
}

/// `-q`: the start-up lines and one summary line, whatever the traffic.
#[test]
fn quiet_prints_a_summary_only() {
    let data = random_bytes(1 << 20, 4);
    let mut s = Session::start(&["-q"]);
    let sender = send_in_background(&s.a, data.clone(), true);
    s.b.write_all(b"pong").unwrap();
    s.b.shutdown(Shutdown::Write).unwrap();
    assert!(read_to_end(&mut s.b).unwrap() == data);
    assert_eq!(read_to_end(&mut s.a).unwrap(), b"pong");
    sender.join().unwrap();
    assert_eq!(s.process.wait().code(), Some(0));
    let lines = s.stdout().lines();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(lines[2].starts_with("Allocating buffers"));
    assert!(
        lines[3].starts_with("Relayed A -> B 1048576 bytes, B -> A 4 bytes in "),
        "{}",
        lines[3]
    );
}
