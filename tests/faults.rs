//! Faults: peers that reset, vanish, never answer or stop reading; signals in the
//! middle of a transfer; dump files on a full or unwritable file system.
//!
//! Each test checks what a user relies on when things go wrong: a clear message, the
//! right exit status, an end within a bounded time, and no lost byte — everything
//! tiburoncin read from one side reaches the other side if that side is still there.

mod common;

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// Reads from `stream` until EOF or an error, in the background; the bytes and the
/// error, if it ended with one.
fn drain(stream: &TcpStream) -> thread::JoinHandle<(Vec<u8>, Option<io::ErrorKind>)> {
    let mut stream = stream.try_clone().unwrap();
    thread::spawn(move || {
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 64 * 1024];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => return (got, None),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (got, Some(e.kind())),
            }
        }
    })
}

/// Writes `data` until done or the connection fails, in the background; how many
/// bytes the kernel took.
fn flood(stream: &TcpStream, data: Vec<u8>) -> thread::JoinHandle<usize> {
    let mut stream = stream.try_clone().unwrap();
    thread::spawn(move || {
        stream.set_write_timeout(Some(DEADLINE)).unwrap();
        let mut done = 0;
        while done < data.len() {
            match stream.write(&data[done..]) {
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        done
    })
}

/// The total of the `X -> Y sent N bytes` lines for `dir` printed so far.
fn printed(out: &Captured, dir: &str) -> usize {
    sent_sizes(&out.lines(), dir).iter().sum()
}

/// Closes `stream` with a RST instead of a FIN (SO_LINGER 0).
fn reset(stream: TcpStream) {
    socket2::SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(stream);
}

/// A fixed receive buffer of `size` (the kernel doubles it; fixed sizes are not
/// autotuned), so a consumer that stops reading stops the relay soon. Below the
/// loopback MSS (64 KiB) a sender waits for window probes, so small is slow.
fn receive_buffer<S: std::os::fd::AsFd>(socket: &S, size: usize) {
    socket2::SockRef::from(socket)
        .set_recv_buffer_size(size)
        .unwrap();
}

/// Every line of stderr is one of `allowed`, and there is at least one.
fn stderr_lines_among(process: &Process, allowed: &[&str]) {
    let text = process.stderr.text();
    assert!(!text.is_empty(), "no message on stderr");
    for line in text.lines() {
        assert!(
            allowed.contains(&line),
            "unexpected message {line:?} in {text:?}"
        );
    }
}

/// B goes away (`go`: a reset or a close) while A is still sending, once tiburoncin
/// has read `words` from B. Those words must still reach A (`at_a` drains A), and
/// the run must end with a failure line and exit status 1.
fn b_goes_after(
    s: Session,
    words: &[u8],
    at_a: thread::JoinHandle<(Vec<u8>, Option<io::ErrorKind>)>,
    go: impl FnOnce(TcpStream),
) {
    let out = s.stdout().clone();
    wait_for(
        "B's last words to be read",
        || (printed(&out, "B -> A") == words.len()).then_some(()),
        || out.text(),
    );
    let Session { mut process, a, b } = s;
    go(b);
    assert_eq!(process.wait().code(), Some(1));
    stderr_lines_among(
        &process,
        &[
            "Passthrough from A to B failed: Connection reset by peer",
            "Passthrough from A to B failed: Broken pipe",
            "Passthrough from B to A failed: Connection reset by peer",
        ],
    );
    let (got, _) = at_a.join().unwrap();
    assert!(
        got == words,
        "A got {} of B's {} bytes",
        got.len(),
        words.len()
    );
    drop(a);
}

#[test]
fn b_resets_mid_stream() {
    let data = random_bytes(4 << 20, 21);
    let last_words = random_bytes(3000, 22);
    let mut s = Session::start(&["-c", "-b", "4096"]);
    let to_b = flood(&s.a, data.clone());
    let at_a = drain(&s.a);
    s.b.write_all(&last_words).unwrap();
    let got_b = read_exact(&mut s.b, 50_000);
    // B's last words are in tiburoncin's hands before B goes: they must reach A.
    b_goes_after(s, &last_words, at_a, reset);
    assert!(data.starts_with(&got_b));
    let _ = to_b.join().unwrap();
}

#[test]
fn a_resets_mid_stream_with_data_in_flight() {
    let data = random_bytes(2 << 20, 23);
    // Small kernel buffers on the way to B (fixed sizes are not autotuned), so that
    // the user-space buffer is what fills; a big one from A, so that it fills fast.
    let s = Session::start_with(&["-c", "-b", "65536", "-z", "4096:1048576"], |l| {
        receive_buffer(l, 1024)
    });
    let out = s.stdout().clone();
    let to_b = flood(&s.a, data.clone());
    // B reads nothing yet: once a buffer's worth is read from A, most of it waits in
    // tiburoncin (B's kernel holds a few KiB at most), and stays there.
    wait_for(
        "a buffer's worth read from A",
        || (printed(&out, "A -> B") >= 65536).then_some(()),
        || out.text(),
    );
    let Session { mut process, a, b } = s;
    reset(a);
    // Room for the drain to go fast (the window can grow up to 64 KiB).
    receive_buffer(&b, 256 * 1024);
    let at_b = drain(&b);
    let status = process.wait();
    assert_eq!(status.code(), Some(1));
    stderr_lines_among(
        &process,
        &["Passthrough from A to B failed: Connection reset by peer"],
    );
    let (at_b, error) = at_b.join().unwrap();
    assert_eq!(error, None, "B saw a reset, not the end");
    assert_eq!(
        at_b.len(),
        printed(&out, "A -> B"),
        "bytes read from A but not given to B"
    );
    assert!(data.starts_with(&at_b));
    let _ = to_b.join();
}

/// A listener whose accept queue is full: further SYNs are dropped, so a connect
/// neither succeeds nor is refused. With `listen(0)` Linux queues one connection.
struct Unanswering {
    listener: socket2::Socket,
    _queued: Vec<socket2::Socket>,
}

impl Unanswering {
    fn new() -> Unanswering {
        use socket2::{Domain, SockAddr, Socket, Type};
        let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        listener
            .bind(&SockAddr::from(
                "127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap(),
            ))
            .unwrap();
        listener.listen(0).unwrap();
        let addr = listener.local_addr().unwrap();
        // Fill the queue until a connect stays pending. A queued connect completes at
        // once on loopback; one that is still pending after a while is being dropped.
        let mut queued = Vec::new();
        for _ in 0..8 {
            let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
            let done = socket.connect_timeout(&addr, Duration::from_millis(500));
            queued.push(socket);
            if done.is_err() {
                return Unanswering {
                    listener,
                    _queued: queued,
                };
            }
        }
        panic!("8 connections queued on a listen(0) socket: the accept queue never fills");
    }

    fn port(&self) -> u16 {
        self.listener
            .local_addr()
            .unwrap()
            .as_socket()
            .unwrap()
            .port()
    }
}

/// B's accept queue is full: each of the 3 tries times out after 5 s, a second apart,
/// so this test takes 17 s, run alongside the others. It is the real code path with the
/// real constants; a knob only for tests would test something else.
#[test]
fn b_never_accepts() {
    let b = Unanswering::new();
    let started = Instant::now();
    let mut p = Process::spawn(&[
        "-A".into(),
        "127.0.0.1:0".into(),
        "-B".into(),
        format!("127.0.0.1:{}", b.port()),
    ]);
    let status = p.wait();
    let took = started.elapsed();
    assert_eq!(status.code(), Some(1));
    assert_eq!(
        p.stderr.text(),
        "Establish a connection to the destination failed: Connection timed out\n"
    );
    assert_eq!(
        p.stdout.text(),
        format!("Connecting to B 127.0.0.1:{}...\n", b.port())
    );
    assert!(took >= Duration::from_secs(15), "gave up after {took:?}");
}

/// B stops reading (shutdown of its read side: on Linux the data still piles up in
/// its kernel), answers, and closes while A is still sending: the close is a reset.
#[test]
fn b_closes_its_read_side_while_a_keeps_sending() {
    let data = random_bytes(8 << 20, 24);
    let answer = random_bytes(5000, 25);
    let mut s = Session::start(&["-c"]);
    let to_b = flood(&s.a, data.clone());
    let at_a = drain(&s.a);
    let first = read_exact(&mut s.b, 10_000);
    s.b.shutdown(Shutdown::Read).unwrap();
    s.b.write_all(&answer).unwrap();
    b_goes_after(s, &answer, at_a, drop);
    assert!(data.starts_with(&first));
    let _ = to_b.join();
}

/// Ctrl-C while B does not answer: the connect is abandoned at once.
#[test]
fn sigint_while_connecting_to_a_b_that_never_accepts() {
    let b = Unanswering::new();
    let mut p = Process::spawn(&[
        "-A".into(),
        "127.0.0.1:0".into(),
        "-B".into(),
        format!("127.0.0.1:{}", b.port()),
    ]);
    p.stdout
        .wait_line("the connecting line", |l| l.starts_with("Connecting to B"));
    p.signal(libc::SIGINT);
    assert_eq!(p.wait().code(), Some(130));
    assert_eq!(p.stderr.text(), "User cancelled.\n");
}

/// The bytes each way in a capture, as `tiburoncin replay` reassembles them; the
/// capture must read to its end without an error.
fn captured(path: &Path) -> [Vec<u8>; 2] {
    let mut bytes = [Vec::new(), Vec::new()];
    let turns = tiburoncin::replay::recording::turns(path, 0)
        .unwrap_or_else(|e| panic!("{} does not read back: {e}", path.display()));
    for turn in turns {
        bytes[turn.dir.index()].extend_from_slice(&turn.bytes);
    }
    bytes
}

/// A signal while both directions are mid-transfer, both consumers stalled with full
/// buffers: a prompt exit with the signal's status, and every output whole — both
/// dump files and the capture read to their end, and hold exactly what the terminal
/// showed, which is a prefix of what was sent and at least what each consumer got.
fn signal_mid_transfer_keeps_the_outputs_whole(signal: i32, name: &str, capture: &str) {
    let dir = scratch_dir(name);
    let options = Options {
        dir: Some(dir.clone()),
        bulk: false,
        ..Options::default()
    };
    let ab = random_bytes(3 << 20, 26);
    let ba = random_bytes(3 << 20, 27);
    let mut s = Session::start_full(
        &[
            "-c",
            "-o",
            "-w",
            capture,
            "-b",
            "1000:3000",
            "-z",
            "4096:1048576",
        ],
        &options,
        |l| receive_buffer(l, 65536),
    );
    receive_buffer(&s.a, 65536);
    let out = s.stdout().clone();
    let to_b = flood(&s.a, ab.clone());
    let to_a = flood(&s.b, ba.clone());
    // Each consumer reads a little, then stops: both buffers fill and stay full.
    let got_b = read_exact(&mut s.b, 70_000);
    let got_a = read_exact(&mut s.a, 90_000);
    // Until both stall with bytes held in tiburoncin: more read than the consumer
    // took plus a buffer, and the last status of each a backlog. (A partly written
    // chunk holds its credit, so "behind" need not reach the buffer size exactly.)
    let stalled = |lines: &[String], flow: &str, who: &str, took: usize, buffer: usize| {
        let read: usize = sent_sizes(lines, flow).iter().sum();
        let last = statuses(lines, who).pop().unwrap_or_default();
        read >= took + buffer && last.ends_with(" bytes behind")
    };
    wait_for(
        "both directions to stall with a backlog",
        || {
            let lines = out.lines();
            (stalled(&lines, "A -> B", "B", got_b.len(), 1000)
                && stalled(&lines, "B -> A", "A", got_a.len(), 3000))
            .then_some(())
        },
        || out.text(),
    );
    s.process.signal(signal);
    assert_eq!(s.process.wait().code(), Some(128 + signal));
    assert_eq!(s.process.stderr.text(), "User cancelled.\n");
    let text = out.text();
    assert!(
        text.ends_with('\n'),
        "the last line was cut: {:?}",
        &text[text.len().saturating_sub(80)..]
    );

    let in_capture = captured(&dir.join(capture));
    for (file, sent, got, flow) in [
        ("AtoB.dump", &ab, &got_b, "A -> B"),
        ("BtoA.dump", &ba, &got_a, "B -> A"),
    ] {
        let dumped = decode_dump(&dir.join(file));
        assert!(sent.starts_with(&dumped), "{file} is not what was sent");
        assert!(
            dumped.len() >= got.len(),
            "{file} lacks bytes a consumer got"
        );
        assert_eq!(
            dumped.len(),
            printed(&out, flow),
            "{file} and the terminal differ"
        );
    }
    assert!(
        in_capture[0] == decode_dump(&dir.join("AtoB.dump")),
        "capture and AtoB.dump differ"
    );
    assert!(
        in_capture[1] == decode_dump(&dir.join("BtoA.dump")),
        "capture and BtoA.dump differ"
    );
    drop(s);
    let _ = (to_b.join(), to_a.join());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn sigint_mid_transfer_keeps_the_outputs_whole() {
    signal_mid_transfer_keeps_the_outputs_whole(libc::SIGINT, "sigint-outputs", "cut.pcap");
}

#[test]
fn sigterm_mid_transfer_keeps_the_outputs_whole() {
    signal_mid_transfer_keeps_the_outputs_whole(libc::SIGTERM, "sigterm-outputs", "cut.pcapng");
}

/// A connects and closes before saying anything; B sees the EOF and closes too:
/// nothing was lost, so this is a normal end.
#[test]
fn a_connects_and_vanishes_before_sending_anything() {
    let Session {
        mut process,
        a,
        mut b,
    } = Session::start(&["-c"]);
    drop(a);
    assert_eq!(read_to_end(&mut b).unwrap(), b"");
    b.shutdown(Shutdown::Write).unwrap();
    assert_eq!(process.wait().code(), Some(0));
    assert_eq!(process.stderr.text(), "");
    let lines = process.stdout.lines();
    assert_eq!(
        lines[3..],
        [
            "A -> B flow shutdown",
            "B is in sync",
            "B -> A flow shutdown",
            "A is in sync"
        ]
    );
}

/// Whether the kernel still lists a TCP connection between these two loopback ports
/// (either side of it, in any state but closed).
fn connection_listed(one: u16, other: u16) -> bool {
    let port = |field: &str| {
        field
            .rsplit(':')
            .next()
            .and_then(|p| u16::from_str_radix(p, 16).ok())
    };
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|table| {
        std::fs::read_to_string(table)
            .unwrap_or_default()
            .lines()
            .skip(1)
            .any(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let ports = (port(fields[1]), port(fields[2]));
                ports == (Some(one), Some(other)) || ports == (Some(other), Some(one))
            })
    })
}

/// A connects and closes; B, not knowing, greets it. The greeting reaches A's
/// kernel, which answers it with a reset: A is gone, and the greeting with it. But
/// tiburoncin held nothing it could not deliver (the greeting was written whole), so
/// when B closes, the run ends as the original's does, with exit status 0 and
/// nothing on stderr, although passing B's shutdown on to A fails. The JSON events
/// still tell the truth: B -> A has its `eof` but no `closed` (no FIN reached A), and
/// no `failed`.
#[test]
fn a_vanishes_and_b_greets_it() {
    let dir = scratch_dir("a-vanishes");
    let events = dir.join("events.jsonl");
    let s = Session::start(&["-c", "--events", events.to_str().unwrap()]);
    let Session {
        mut process,
        a,
        mut b,
    } = s;
    let ports = (
        a.local_addr().unwrap().port(),
        a.peer_addr().unwrap().port(),
    );
    drop(a);
    assert_eq!(read_to_end(&mut b).unwrap(), b"");
    b.write_all(b"220 welcome\r\n").unwrap();
    let out = process.stdout.clone();
    wait_for(
        "the greeting to be written",
        || {
            out.lines()
                .iter()
                .any(|l| l == "A is in sync")
                .then_some(())
        },
        || out.text(),
    );
    // The reset has come back once neither end of A's connection is left.
    wait_for(
        "A's reset",
        || (!connection_listed(ports.0, ports.1)).then_some(()),
        String::new,
    );
    b.shutdown(Shutdown::Write).unwrap();
    let status = process.wait();
    assert_eq!(process.stderr.text(), "");
    assert_eq!(status.code(), Some(0));
    assert_eq!(read_to_end(&mut b).unwrap(), b"");
    let lines = process.stdout.lines();
    assert_eq!(
        lines[lines.len() - 2..],
        ["B -> A flow shutdown", "A is in sync"]
    );

    let records: Vec<serde_json::Value> = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let has = |direction: &str, kind: &str| {
        records
            .iter()
            .any(|r| r["direction"] == direction && r["kind"] == kind)
    };
    assert!(has("A->B", "closed"), "{records:#?}");
    assert!(has("B->A", "eof"), "{records:#?}");
    assert!(!has("B->A", "closed"), "{records:#?}");
    assert!(
        !records.iter().any(|r| r["kind"] == "failed"),
        "{records:#?}"
    );
    let end = records.last().unwrap();
    assert_eq!(
        (&end["kind"], &end["outcome"]),
        (&"end".into(), &"completed".into())
    );
    let _ = std::fs::remove_dir_all(dir);
}

// ---- outputs that fail ----------------------------------------------------------

/// Whether tests that need a tool or a privilege this machine lacks must fail (in CI)
/// rather than be skipped with a loud note.
fn required() -> bool {
    std::env::var_os("CI").is_some()
}

/// A small tmpfs mounted on a fresh directory, unmounted and removed when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// `None` (after a loud note) where mounting is not permitted, outside CI.
    fn mount(name: &str, options: &str) -> Option<Tmpfs> {
        let dir = scratch_dir(name);
        let done = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(&dir)
            .output();
        match done {
            Ok(out) if out.status.success() => Some(Tmpfs(dir)),
            other => {
                let why = match other {
                    Ok(out) => String::from_utf8_lossy(&out.stderr).into_owned(),
                    Err(e) => e.to_string(),
                };
                let _ = std::fs::remove_dir(&dir);
                assert!(!required(), "cannot mount a tmpfs in CI: {why}");
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs here ({}), test not run",
                    why.trim()
                );
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The text a dump file holds for `bytes`.
fn dump_text(bytes: &[u8]) -> String {
    let mut text = String::new();
    for (i, b) in bytes.iter().enumerate() {
        text += &format!("{b:02x}");
        if i % 16 == 15 {
            text.push('\n');
        }
    }
    text
}

/// A relay with `-o` and `extra` in `dir`: B speaks first (`ba`), and once that is
/// shown A answers (`ab`), then both close. Both must arrive intact; the exit status
/// and stderr are returned.
fn relay_with_outputs_in(
    dir: &Path,
    extra: &[&str],
    ab: &[u8],
    ba: &[u8],
) -> (Option<i32>, String) {
    let options = Options {
        dir: Some(dir.to_path_buf()),
        bulk: true,
        ..Options::default()
    };
    let mut args = vec!["-c", "-o"];
    args.extend_from_slice(extra);
    let mut s = Session::start_full(&args, &options, |_| {});
    s.b.write_all(ba).unwrap();
    s.b.shutdown(Shutdown::Write).unwrap();
    assert!(
        read_to_end(&mut s.a).unwrap() == ba,
        "A did not get B's bytes intact"
    );
    // The logger flushes the files right after the terminal, before its next event:
    // once this line shows, B's bytes are in BtoA.dump (and the capture), before any
    // of A's are read.
    s.stdout()
        .wait_line("B -> A to be closed", |l| l == "B -> A flow shutdown");
    let to_b = send_in_background(&s.a, ab.to_vec(), true);
    assert!(
        read_to_end(&mut s.b).unwrap() == ab,
        "B did not get A's bytes intact"
    );
    to_b.join().unwrap();
    let status = s.process.wait();
    (status.code(), s.process.stderr.text())
}

/// Dump files that cannot be written at all (both are /dev/full): each failure is
/// reported once, the relay goes on and delivers every byte, and the run fails.
#[test]
fn dumps_to_dev_full() {
    let dir = scratch_dir("dev-full");
    for name in ["AtoB.dump", "BtoA.dump"] {
        std::os::unix::fs::symlink("/dev/full", dir.join(name)).unwrap();
    }
    let ab = random_bytes(300_000, 28);
    let ba = random_bytes(200_000, 29);
    let (code, stderr) = relay_with_outputs_in(&dir, &[], &ab, &ba);
    assert_eq!(code, Some(1), "{stderr}");
    let mut lines: Vec<&str> = stderr.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "Writing AtoB.dump failed: No space left on device",
            "Writing BtoA.dump failed: No space left on device"
        ]
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// A file system that fills up mid-relay (a 64 KiB tmpfs): the dumps and the capture
/// keep what fit, which is the start of what they should hold, each failure is
/// reported once, and nothing relayed is lost.
#[test]
fn outputs_on_a_disk_that_fills_up() {
    let Some(disk) = Tmpfs::mount("full-disk", "size=64k") else {
        return;
    };
    let ab = random_bytes(400_000, 30);
    let ba = random_bytes(100, 31);
    let (code, stderr) = relay_with_outputs_in(&disk.0, &["-w", "session.pcap"], &ab, &ba);
    assert_eq!(code, Some(1), "{stderr}");
    let mut lines: Vec<&str> = stderr.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "Writing AtoB.dump failed: No space left on device",
            "Writing session.pcap failed: No space left on device"
        ]
    );
    let kept = std::fs::read_to_string(disk.0.join("AtoB.dump")).unwrap();
    assert!(!kept.is_empty() && dump_text(&ab).starts_with(&kept));
    assert_eq!(decode_dump(&disk.0.join("BtoA.dump")), ba);
    let [in_ab, in_ba] = readable_part(&disk.0.join("session.pcap"));
    assert!(
        ab.starts_with(&in_ab),
        "the capture holds other bytes A -> B"
    );
    assert_eq!(
        in_ba, ba,
        "the capture lost B's bytes, written before the disk filled"
    );
}

/// The bytes each way in the part of a capture that was written whole: the file may
/// end in the middle of a packet (a full disk, a SIGKILL), but only there.
fn readable_part(path: &Path) -> [Vec<u8>; 2] {
    use tiburoncin::capture::read::CaptureReader;
    use tiburoncin::replay::reassembly::{Reassembler, StreamEvent};
    let mut reader = CaptureReader::open(path).unwrap();
    let mut reassembler = Reassembler::new();
    let mut events = Vec::new();
    loop {
        match reader.next_segment() {
            Ok(Some(segment)) => reassembler.push(segment, &mut events),
            Ok(None) => break,
            Err(e) => {
                let text = e.to_string();
                assert!(text.contains("cut short"), "{text}");
                break;
            }
        }
    }
    reassembler.finish(&mut events);
    let mut bytes = [Vec::new(), Vec::new()];
    for event in events {
        match event {
            StreamEvent::Data { dir, bytes: b, .. } => bytes[dir.index()].extend_from_slice(&b),
            StreamEvent::Gap { .. } => panic!("{}: a hole in the capture", path.display()),
            StreamEvent::End { .. } => {}
        }
    }
    bytes
}

/// SIGKILL: nothing can be flushed any more, but what was flushed stays readable.
/// The exchange is waited for in the file itself, then a bulk transfer is cut by the
/// kill: the file reads up to the last whole packet, and holds at least the exchange.
#[test]
fn sigkill_leaves_the_capture_readable_up_to_the_last_flush() {
    let dir = scratch_dir("sigkill");
    for name in ["killed.pcap", "killed.pcapng"] {
        let path = dir.join(name);
        let file = path.to_str().unwrap();
        let mut s = Session::start_full(
            &["-c", "-w", file],
            &Options {
                bulk: true,
                ..Options::default()
            },
            |_| {},
        );
        s.a.write_all(b"ping\n").unwrap();
        assert_eq!(read_exact(&mut s.b, 5), b"ping\n");
        s.b.write_all(b"pong\n").unwrap();
        assert_eq!(read_exact(&mut s.a, 5), b"pong\n");
        // The logger flushes when idle: wait until the file holds the exchange.
        wait_for(
            "the exchange in the capture",
            || {
                let [ab, ba] = readable_part(&path);
                (ab == b"ping\n" && ba == b"pong\n").then_some(())
            },
            String::new,
        );
        let data = random_bytes(8 << 20, 33);
        let _to_b = flood(&s.a, data.clone());
        let got = read_exact(&mut s.b, 200_000);
        s.process.signal(libc::SIGKILL);
        let status = s.process.wait();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGKILL)
        );
        let [ab, ba] = readable_part(&path);
        assert_eq!(ba, b"pong\n", "{name}");
        assert!(ab.starts_with(b"ping\n"), "{name}: lost what was flushed");
        let mut sent = b"ping\n".to_vec();
        sent.extend_from_slice(&data);
        assert!(sent.starts_with(&ab), "{name}: holds other bytes A -> B");
        drop(got);
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Dump files or a capture that cannot be created: the run stops before connecting
/// to anyone.
#[test]
fn outputs_in_a_directory_that_cannot_be_written() {
    let missing = scratch_dir("missing-dir").join("no-such-dir");
    let read_only = Tmpfs::mount("read-only", "ro,size=64k");
    let mut cases = vec![
        (missing.display().to_string(), "No such file or directory"),
        ("/dev/full".to_string(), "Not a directory"),
    ];
    if let Some(fs) = &read_only {
        cases.push((fs.0.display().to_string(), "Read-only file system"));
    }
    for (dir, reason) in cases {
        for (flag, value, created) in [
            ("-f", format!("{dir}/run-"), format!("{dir}/run-AtoB.dump")),
            ("-w", format!("{dir}/run.pcap"), format!("{dir}/run.pcap")),
        ] {
            let b = TcpListener::bind("127.0.0.1:0").unwrap();
            let mut p = Process::spawn(&[
                "-A".into(),
                "127.0.0.1:0".into(),
                "-B".into(),
                b.local_addr().unwrap().to_string(),
                flag.into(),
                value.clone(),
            ]);
            assert_eq!(p.wait().code(), Some(1), "{flag} {value}");
            assert_eq!(
                p.stderr.text(),
                format!("Cannot create {created}: {reason}\n")
            );
            assert_eq!(p.stdout.text(), "", "{flag} {value}: it went on");
            b.set_nonblocking(true).unwrap();
            assert_eq!(
                b.accept().map(|_| ()).unwrap_err().kind(),
                io::ErrorKind::WouldBlock,
                "{flag} {value}: B was connected to"
            );
        }
    }
}

/// `tiburoncin ... | head`: the terminal output goes away mid-relay. That is reported
/// once, and the relay itself goes on to the end.
#[test]
fn standard_output_closed_mid_relay() {
    use std::io::BufRead;
    let b_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut child = Command::new(BIN)
        .args(["-c", "-A", "127.0.0.1:0", "-B"])
        .arg(b_listener.local_addr().unwrap().to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let stderr = thread::spawn(move || io::read_to_string(stderr).unwrap());
    // Like `head -3`: read the start-up lines, then go away.
    let mut stdout = io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    for _ in 0..2 {
        line.clear();
        stdout.read_line(&mut line).unwrap();
    }
    let (mut b, _) = b_listener.accept().unwrap();
    let mut a = TcpStream::connect(("127.0.0.1", waiting_port(line.trim_end()))).unwrap();
    line.clear();
    stdout.read_line(&mut line).unwrap();
    assert!(line.starts_with("Allocating buffers"), "{line}");
    drop(stdout);

    let data = random_bytes(500_000, 32);
    let to_b = send_in_background(&a, data.clone(), true);
    assert!(
        read_to_end(&mut b).unwrap() == data,
        "B did not get A's bytes intact"
    );
    b.write_all(b"done").unwrap();
    b.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_end(&mut a).unwrap(), b"done");
    to_b.join().unwrap();
    let mut p = Process {
        child,
        stdout: Captured::default(),
        stderr: Captured::default(),
    };
    let started = Instant::now();
    let status = loop {
        if let Some(status) = p.child.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < DEADLINE, "tiburoncin did not end");
        thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(status.code(), Some(1));
    assert_eq!(
        stderr.join().unwrap(),
        "Writing to standard output failed: Broken pipe\n"
    );
}
