//! `-A unix:` and `-B unix:`: the real binary relaying UNIX stream sockets, to and
//! from TCP and to each other.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::Command;

use common::*;
use tiburoncin::direction::Direction;

/// Connects to a UNIX socket that is about to listen (the waiting line is printed
/// before `listen` returns only in the failure case, so this waits for the file).
fn connect_unix(path: &Path) -> UnixStream {
    wait_for(
        "the UNIX socket to accept",
        || UnixStream::connect(path).ok(),
        || format!("{} never accepted", path.display()),
    )
}

/// One line each way, each in sync before the next: the transcript is then fixed.
fn exchange(out: &Captured, a: &mut UnixStream, b: &mut (impl Read + Write)) {
    a.set_read_timeout(Some(DEADLINE)).unwrap();
    a.write_all(b"hello\n").unwrap();
    let mut got = [0; 6];
    b.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"hello\n");
    out.wait_count("B in sync", 1, |l| l == "B is in sync");
    b.write_all(b"hi there!\n").unwrap();
    let mut got = [0; 10];
    a.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"hi there!\n");
    out.wait_count("A in sync", 1, |l| l == "A is in sync");
}

/// What the relay prints from `Allocating` on: the same for any transport.
const TRANSCRIPT: &str = "\
Allocating buffers: 2048 and 2048 bytes...
A -> B sent 6 bytes
00000000  68 65 6c 6c 6f 0a                                 |hello.          |
B is 6 bytes behind
B is in sync
B -> A sent 10 bytes
00000000  68 69 20 74 68 65 72 65  21 0a                    |hi there!.      |
A is 10 bytes behind
A is in sync
";

#[test]
fn a_on_a_unix_socket_b_on_tcp() {
    let dir = scratch_dir("unix-a");
    let path = dir.join("a.sock");
    let b_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let b_port = b_listener.local_addr().unwrap().port();
    let mut process = Process::spawn(&[
        "-c".into(),
        "-A".into(),
        format!("unix:{}", path.display()),
        "-B".into(),
        format!("127.0.0.1:{b_port}"),
    ]);
    let waiting = process.stdout.wait_line("the waiting line", |l| {
        l.starts_with("Waiting for a connection from A ")
    });
    assert_eq!(
        waiting,
        format!("Waiting for a connection from A unix:{}...", path.display())
    );
    let mut b = accept_in_time(&b_listener);
    let mut a = connect_unix(&path);
    exchange(&process.stdout, &mut a, &mut b);
    // The single relay closed its listener once A was in: the file is gone.
    assert!(!path.exists(), "the listener's file was left behind");
    a.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_end(&mut b).unwrap(), b"");
    b.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    a.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    let status = process.wait();
    assert_eq!(status.code(), Some(0), "{}", process.stderr.text());
    let text = process.stdout.text();
    let relay = &text[text.find("Allocating").unwrap()..];
    assert!(relay.starts_with(TRANSCRIPT), "{relay}");
}

#[test]
fn unix_to_unix_abstract_a_and_a_file_b_captured_as_loopback_tcp() {
    let dir = scratch_dir("unix-unix");
    let b_path = dir.join("b.sock");
    let b_listener = UnixListener::bind(&b_path).unwrap();
    let abstract_name = format!("tiburoncin-test-{}", std::process::id());
    let capture = dir.join("s.pcapng");
    let mut process = Process::spawn(&[
        "-c".into(),
        "-A".into(),
        format!("unix:@{abstract_name}"),
        "-B".into(),
        format!("unix:{}", b_path.display()),
        "-w".into(),
        capture.display().to_string(),
    ]);
    process.stdout.wait_line("the waiting line", |l| {
        l == format!("Waiting for a connection from A unix:@{abstract_name}...")
    });
    let (mut b, _) = b_listener.accept().unwrap();
    b.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut a = connect_abstract(&abstract_name);
    exchange(&process.stdout, &mut a, &mut b);
    a.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    b.read_to_end(&mut rest).unwrap();
    b.shutdown(Shutdown::Write).unwrap();
    a.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    let status = process.wait();
    assert_eq!(status.code(), Some(0), "{}", process.stderr.text());
    let text = process.stdout.text();
    assert!(text.contains(TRANSCRIPT), "{text}");

    if !have_tshark() {
        return;
    }
    let out = Command::new("tshark")
        .args([
            "-r",
            &capture.display().to_string(),
            "-q",
            "-z",
            "follow,tcp,ascii,0",
        ])
        .output()
        .unwrap();
    let follow = String::from_utf8_lossy(&out.stdout);
    assert!(
        follow.contains("Node 0: 127.0.0.2:49153") && follow.contains("Node 1: 127.0.0.3:1"),
        "{follow}"
    );
    assert!(
        follow.contains("hello") && follow.contains("hi there!"),
        "{follow}"
    );
    let expert = Command::new("tshark")
        .args([
            "-r",
            &capture.display().to_string(),
            "-Y",
            "tcp.analysis.flags",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&expert.stdout), "");
    // The SYNs' comments give the sockets' names.
    let comments = Command::new("tshark")
        .args(["-r", &capture.display().to_string(), "-c", "2"])
        .args(["-T", "fields", "-e", "frame.comment"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&comments.stdout),
        format!(
            "A over UNIX socket unix:@{abstract_name}\nB over UNIX socket unix:{}\n",
            b_path.display()
        )
    );
}

fn connect_abstract(name: &str) -> UnixStream {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    wait_for(
        "the abstract socket to accept",
        || UnixStream::connect_addr(&addr).ok(),
        || format!("@{name} never accepted"),
    )
}

#[test]
fn a_stale_socket_file_is_replaced_and_a_live_one_is_not() {
    let dir = scratch_dir("unix-stale");
    let path = dir.join("a.sock");
    let b_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let b = format!("127.0.0.1:{}", b_listener.local_addr().unwrap().port());
    let a = format!("unix:{}", path.display());

    // Someone listens there: tiburoncin must not take the socket over.
    let live = UnixListener::bind(&path).unwrap();
    let mut process = Process::spawn(&["-A".into(), a.clone(), "-B".into(), b.clone()]);
    let status = process.wait();
    assert_eq!(status.code(), Some(1));
    assert_eq!(
        process.stderr.text(),
        format!("Wait for connection from the source failed: {a}: Address already in use\n")
    );
    assert!(
        UnixStream::connect(&path).is_ok(),
        "the live socket was broken"
    );

    // The listener is gone but its file stays, as after a crash: it is replaced.
    drop(live);
    assert!(path.exists());
    let mut process = Process::spawn(&["-c".into(), "-A".into(), a, "-B".into(), b]);
    process.stdout.wait_line("the waiting line", |l| {
        l.starts_with("Waiting for a connection from A ")
    });
    let _b = accept_in_time(&b_listener);
    let mut client = connect_unix(&path);
    client.write_all(b"x").unwrap();
    client.shutdown(Shutdown::Both).unwrap();
    process
        .stdout
        .wait_line("the byte relayed", |l| l == "A -> B sent 1 byte");
    process.signal(libc::SIGTERM);
    process.wait();
    assert!(!path.exists());
}

#[test]
fn a_unix_path_too_long_is_a_usage_error() {
    let long = format!("unix:/tmp/{}", "x".repeat(110));
    let mut process = Process::spawn(&["-A".into(), long, "-B".into(), "127.0.0.1:9".into()]);
    let status = process.wait();
    assert_eq!(status.code(), Some(2));
    let err = process.stderr.text();
    assert!(
        err.contains("the name is 115 bytes long; a UNIX socket's is at most 107"),
        "{err}"
    );
}

#[test]
fn a_missing_unix_b_is_reported_like_a_refused_tcp_one() {
    let dir = scratch_dir("unix-missing");
    let mut process = Process::spawn(&[
        "-A".into(),
        "127.0.0.1:0".into(),
        "-B".into(),
        format!("unix:{}", dir.join("none.sock").display()),
    ]);
    let status = process.wait();
    assert_eq!(status.code(), Some(1));
    assert_eq!(
        process.stderr.text(),
        "Establish a connection to the destination failed: No such file or directory\n"
    );
}

const LINES_MATCHED: &str =
    "Replay matched stream 0: 90 bytes A -> B, 109 bytes B -> A, 10 turns.\n";

#[test]
fn replay_as_b_on_a_unix_socket_with_a_client_that_repeats_a() {
    let dir = scratch_dir("unix-replay-b");
    let path = dir.join("a.sock");
    let lines = fixture("lines.pcap");
    let capture = dir.join("replayed.pcapng");
    let mut process = Process::spawn(&strings(&[
        "replay",
        lines.to_str().unwrap(),
        "-c",
        "--as",
        "b",
        "-A",
        &format!("unix:{}", path.display()),
        "-w",
        capture.to_str().unwrap(),
    ]));
    process.stdout.wait_line("the waiting line", |l| {
        l == format!("Waiting for a connection from A unix:{}...", path.display())
    });
    perform(connect_unix(&path), &script(&lines, 0, Direction::AtoB));
    let status = process.wait();
    let out = process.stdout.text();
    assert_eq!(status.code(), Some(0), "{out}{}", process.stderr.text());
    assert!(out.ends_with(LINES_MATCHED), "{out}");
    // The listener's socket file goes with the replay.
    assert!(!path.exists());
    if !have_tshark() {
        return;
    }
    let comments = Command::new("tshark")
        .args(["-r", capture.to_str().unwrap(), "-c", "1"])
        .args(["-T", "fields", "-e", "frame.comment"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&comments.stdout),
        format!("A over UNIX socket unix:{}\n", path.display())
    );
}

#[test]
fn replay_as_a_to_a_unix_socket_against_a_server_that_repeats_b() {
    let dir = scratch_dir("unix-replay-a");
    let path = dir.join("b.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let lines = fixture("lines.pcap");
    let server = script(&lines, 0, Direction::BtoA);
    let peer = std::thread::spawn(move || {
        let (b, _) = listener.accept().unwrap();
        perform(b, &server);
    });
    let (code, out, err) = run(&[
        "replay",
        lines.to_str().unwrap(),
        "-c",
        "--as",
        "a",
        "-B",
        &format!("unix:{}", path.display()),
    ]);
    peer.join().unwrap();
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.ends_with(LINES_MATCHED), "{out}");
}
