//! `-k`: many clients, each relayed to a B of its own, on real loopback sockets.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// The lines of connection `n`, without their `[n] ` label.
fn lines_of(lines: &[String], n: u64) -> Vec<String> {
    let label = format!("[{n}] ");
    lines
        .iter()
        .filter_map(|l| l.strip_prefix(&label).map(str::to_string))
        .collect()
}

/// A short exchange: A says `hello`, B answers `hi`, A closes, B closes.
fn exchange(a: &mut TcpStream, b: &mut TcpStream, hello: &[u8]) {
    a.write_all(hello).unwrap();
    assert_eq!(read_exact(b, hello.len()), hello);
    b.write_all(b"hi\n").unwrap();
    assert_eq!(read_exact(a, 3), b"hi\n");
}

fn close_both(a: &mut TcpStream, b: &mut TcpStream) {
    a.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_end(b).unwrap(), b"");
    b.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_end(a).unwrap(), b"");
}

#[test]
fn concurrent_connections_each_get_their_own_b_and_label() {
    let mut k = Listening::start(&["-c"], &Options::default());
    let out = k.process.stdout.clone();
    let mut pairs: Vec<_> = (0..3).map(|_| k.connect()).collect();
    // Each step waits for its status line, so that each connection's transcript
    // is fixed, even the order between its two directions (as in tests/relay.rs).
    let synced = |n: usize, who: &str, count: usize| {
        let line = format!("[{n}] {who} is in sync");
        out.wait_count(&line, count, |l| l == line);
    };
    // Interleaved: each connection talks while the others are open.
    for (i, (a, b)) in pairs.iter_mut().enumerate() {
        let hello = format!("hello {i}\n");
        a.write_all(hello.as_bytes()).unwrap();
        assert_eq!(read_exact(b, 8), hello.as_bytes());
        synced(i + 1, "B", 1);
        b.write_all(b"hi\n").unwrap();
        assert_eq!(read_exact(a, 3), b"hi\n");
        synced(i + 1, "A", 1);
    }
    // Closed in another order than they were opened.
    for i in [1, 0, 2] {
        let (a, b) = &mut pairs[i];
        a.shutdown(Shutdown::Write).unwrap();
        assert_eq!(read_to_end(b).unwrap(), b"");
        synced(i + 1, "B", 2);
        b.shutdown(Shutdown::Write).unwrap();
        assert_eq!(read_to_end(a).unwrap(), b"");
    }
    out.wait_count("three summaries", 3, |l| l.contains("] Relayed A -> B"));
    k.process.signal(libc::SIGTERM);
    // Every connection had ended cleanly: a signal is just how -k stops.
    assert_eq!(k.process.wait().code(), Some(0));
    assert_eq!(k.process.stderr.text(), "");

    let lines = out.lines();
    assert!(lines[0].starts_with("Waiting for connections from A 127.0.0.1:"));
    assert_eq!(
        lines.last().map(String::as_str),
        Some("Served 3 connections: 3 completed, 0 failed, 0 cancelled")
    );
    // Every other line belongs to one connection, and is labelled so.
    for line in &lines[1..lines.len() - 1] {
        assert!(
            ["[1] ", "[2] ", "[3] "].iter().any(|p| line.starts_with(p)),
            "unlabelled: {line}"
        );
    }
    let b_port = k.b.local_addr().unwrap().port();
    for (n, (a, _)) in (1..=3).zip(&pairs) {
        let i = n - 1;
        let own = lines_of(&lines, n);
        assert_eq!(
            own[0],
            format!(
                "Connection from A {}, connecting to B 127.0.0.1:{b_port}...",
                a.local_addr().unwrap()
            )
        );
        // Each connection's own transcript is that of a single relay, but for the
        // narrower hexdump rows.
        let transcript = own[1..own.len() - 1].join("\n");
        assert_eq!(
            transcript,
            format!(
                "\
Allocating buffers: 2048 and 2048 bytes...
A -> B sent 8 bytes
00000000 68 65 6c 6c 6f 20 3{i} 0a                         hello {i}.
B is 8 bytes behind
B is in sync
B -> A sent 3 bytes
00000000 68 69 0a                                        hi.
A is 3 bytes behind
A is in sync
A -> B flow shutdown
B is in sync
B -> A flow shutdown
A is in sync"
            )
        );
        assert!(
            own.last()
                .unwrap()
                .starts_with("Relayed A -> B 8 bytes, B -> A 3 bytes in "),
            "{own:?}"
        );
    }
}

/// Every line fits an 80-column terminal, hexdump rows too, up to connection 100.
/// The connections before it come and go with a byte each, so that the run stays
/// short; the hundredth carries full rows and partial ones in both directions.
#[test]
fn lines_fit_80_columns_up_to_three_digit_connections() {
    let mut k = Listening::start(&["-c"], &Options::default());
    let out = k.process.stdout.clone();
    for n in 1..=100u64 {
        let (mut a, mut b) = k.connect();
        let said: Vec<u8> = if n == 100 {
            (0..100u8).map(|i| b'!' + i % 90).collect()
        } else {
            vec![b'x']
        };
        exchange(&mut a, &mut b, &said);
        close_both(&mut a, &mut b);
        let summary = format!("[{n}] Relayed");
        out.wait_line(&summary, |l| l.starts_with(&summary));
    }
    k.process.signal(libc::SIGTERM);
    assert_eq!(k.process.wait().code(), Some(0));
    let lines = out.lines();
    let rows = lines_of(&lines, 100);
    // 100 bytes from offset 0 (7 rows), then 3 bytes back.
    assert_eq!(rows.iter().filter(|l| l.starts_with("0000")).count(), 8);
    assert!(rows.contains(
        &"00000000 21 22 23 24 25 26 27 28 29 2a 2b 2c 2d 2e 2f 30 !\"#$%&'()*+,-./0".to_string()
    ));
    for line in &lines {
        assert!(line.len() <= 80, "{} columns: {line}", line.len());
    }
}

/// A signal cuts the connections still relaying; the ones that ended stay ended.
#[test]
fn a_signal_cancels_the_open_connections_only() {
    let mut k = Listening::start(&["-c", "-q"], &Options::default());
    let (mut a1, mut b1) = k.connect();
    exchange(&mut a1, &mut b1, b"one\n");
    close_both(&mut a1, &mut b1);
    let (mut a2, mut b2) = k.connect();
    exchange(&mut a2, &mut b2, b"two\n");
    let out = k.process.stdout.clone();
    out.wait_line("the first summary", |l| l.starts_with("[1] Relayed"));
    k.process.signal(libc::SIGINT);
    assert_eq!(k.process.wait().code(), Some(130));
    assert_eq!(k.process.stderr.text(), "User cancelled.\n");
    let lines = out.lines();
    assert!(
        lines.iter().any(
            |l| l.starts_with("[2] Relayed A -> B 4 bytes, B -> A 3 bytes in ")
                && l.ends_with(" s (cancelled)")
        ),
        "{lines:#?}"
    );
    assert_eq!(
        lines.last().map(String::as_str),
        Some("Served 2 connections: 1 completed, 0 failed, 1 cancelled")
    );
    // The cut connection's peers see it closed.
    assert_eq!(read_to_end(&mut b2).unwrap(), b"");
}

/// A client for whom B cannot be reached is turned away with a reset, and the run
/// then ends with a failure; the listener goes on serving others meanwhile.
#[test]
fn a_client_whose_b_is_unreachable_is_turned_away() {
    let mut k = Listening::start(&["-c"], &Options::default());
    let b_addr = k.b.local_addr().unwrap();
    // B goes away: the next client's B cannot be reached (three tries, 1 s apart).
    drop(std::mem::replace(
        &mut k.b,
        std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
    ));
    let mut a = TcpStream::connect(("127.0.0.1", k.port)).unwrap();
    a.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut buf = [0; 16];
    let err = a.read(&mut buf).expect_err("a reset");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    k.process
        .stderr
        .wait_line("the refusal", |l| l.starts_with("[1] Establish"));
    k.process.signal(libc::SIGTERM);
    assert_eq!(k.process.wait().code(), Some(1));
    assert_eq!(
        k.process.stderr.text(),
        "[1] Establish a connection to the destination failed: Connection refused\n"
    );
    let lines = k.process.stdout.lines();
    assert_eq!(
        lines[1],
        format!(
            "[1] Connection from A {}, connecting to B {b_addr}...",
            a.local_addr().unwrap()
        )
    );
    assert_eq!(
        lines.last().map(String::as_str),
        Some("Served 1 connection: 0 completed, 1 failed, 0 cancelled")
    );
}

/// A's address is taken: the waiting line names it, and the error follows, as
/// without `-k`.
#[test]
fn a_busy_address_for_a_is_named_before_the_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a_port = taken.local_addr().unwrap().port();
    let mut p = Process::spawn(&[
        "-k".into(),
        "-A".into(),
        format!("127.0.0.1:{a_port}"),
        "-B".into(),
        "127.0.0.1:9".into(),
    ]);
    assert_eq!(p.wait().code(), Some(1));
    assert_eq!(
        p.stdout.text(),
        format!("Waiting for connections from A 127.0.0.1:{a_port}...\n")
    );
    assert_eq!(
        p.stderr.text(),
        format!(
            "Wait for connection from the source failed: 127.0.0.1:{a_port}: Address already in use\n"
        )
    );
}

/// `--max-conns 1`: a second client waits, accepted by the kernel but not relayed,
/// until the first connection ends.
#[test]
fn max_conns_makes_extra_clients_wait() {
    let mut k = Listening::start(&["-c", "-q", "--max-conns", "1"], &Options::default());
    let (mut a1, mut b1) = k.connect();
    exchange(&mut a1, &mut b1, b"first\n");
    let mut a2 = TcpStream::connect(("127.0.0.1", k.port)).unwrap();
    a2.write_all(b"second\n").unwrap();
    // Nothing reaches B for it while the first connection relays. (Waiting can only
    // make this pass wrongly, never fail wrongly.)
    k.b.set_nonblocking(true).unwrap();
    let until = Instant::now() + Duration::from_millis(300);
    while Instant::now() < until {
        assert!(k.b.accept().is_err(), "a second B while the first relays");
        thread::sleep(Duration::from_millis(10));
    }
    close_both(&mut a1, &mut b1);
    let mut b2 = accept_in_time(&k.b);
    assert_eq!(read_exact(&mut b2, 7), b"second\n");
    close_both(&mut a2, &mut b2);
    k.process
        .stdout
        .wait_count("two summaries", 2, |l| l.contains("] Relayed"));
    k.process.signal(libc::SIGTERM);
    assert_eq!(k.process.wait().code(), Some(0));
}

/// Many clients at once: connection N's `[N] Connection from A` line comes after
/// those of 1 to N-1, so the numbers count the lines as a reader does, however the
/// threads that serve the connections are scheduled. (Each client closes at once, so
/// every connection ends, cleanly.)
#[test]
fn connections_are_numbered_in_the_order_their_lines_appear() {
    const CLIENTS: usize = 100;
    let mut k = Listening::start(&["-c", "-q"], &Options::default());
    let out = k.process.stdout.clone();
    // From several threads, so that clients arrive as fast as they can.
    let port = k.port;
    let clients: Vec<_> = (0..4)
        .map(|_| {
            thread::spawn(move || {
                for _ in 0..CLIENTS / 4 {
                    let a = TcpStream::connect(("127.0.0.1", port)).unwrap();
                    a.shutdown(Shutdown::Write).unwrap();
                }
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    // B closes each of its sides too.
    for _ in 0..CLIENTS {
        let b = accept_in_time(&k.b);
        b.shutdown(Shutdown::Write).unwrap();
    }
    out.wait_count("every summary", CLIENTS, |l| l.contains("] Relayed A -> B"));
    k.process.signal(libc::SIGTERM);
    assert_eq!(k.process.wait().code(), Some(0));
    assert_eq!(k.process.stderr.text(), "");
    let numbers: Vec<usize> = out
        .lines()
        .iter()
        .filter(|l| l.contains("] Connection from A "))
        .map(|l| l[1..l.find(']').unwrap()].parse().unwrap())
        .collect();
    assert_eq!(numbers, (1..=CLIENTS).collect::<Vec<_>>());
}

/// `-k -o`: each connection gets its own pair of dump files, named after its number.
#[test]
fn each_connection_has_its_own_dump_files() {
    let dir = scratch_dir("keep-dumps");
    let options = Options {
        dir: Some(dir.clone()),
        ..Options::default()
    };
    let mut k = Listening::start(&["-c", "-q", "-o"], &options);
    for i in 1..=2 {
        let (mut a, mut b) = k.connect();
        exchange(&mut a, &mut b, format!("dump {i}\n").as_bytes());
        close_both(&mut a, &mut b);
    }
    k.process
        .stdout
        .wait_count("two summaries", 2, |l| l.contains("] Relayed"));
    k.process.signal(libc::SIGTERM);
    assert_eq!(k.process.wait().code(), Some(0));
    // No pair of files for a single relay: only the connections' own.
    assert!(!dir.join("AtoB.dump").exists());
    for i in 1..=2 {
        let hex: String = format!("dump {i}\n")
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            std::fs::read_to_string(dir.join(format!("{i}-AtoB.dump"))).unwrap(),
            hex
        );
        assert_eq!(
            std::fs::read_to_string(dir.join(format!("{i}-BtoA.dump"))).unwrap(),
            "68690a"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

// --- the load test ---------------------------------------------------------------

/// Bytes each client sends each way: 1 MB in CI, more with TIBURONCIN_LOAD_MB.
fn load_size() -> usize {
    let mb = std::env::var("TIBURONCIN_LOAD_MB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1);
    mb * 1_000_000
}

/// The bytes of every stream come from one random block, at an offset that depends
/// on the stream: a byte lost, repeated or taken from another connection shows,
/// and checking is a `memcmp`, fast even in a debug build.
const BLOCK: usize = 1_000_003;

fn block() -> &'static [u8] {
    static BLOCK_BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    // Twice the same block, so that a slice starting anywhere in the first copy
    // reads on as if the block wrapped around.
    BLOCK_BYTES.get_or_init(|| {
        let mut bytes = random_bytes(BLOCK, 99);
        bytes.extend_from_within(..);
        bytes
    })
}

/// `len` bytes (at most BLOCK) of stream `id`, from `offset` on.
fn stream_bytes(id: u64, offset: usize, len: usize) -> &'static [u8] {
    let start = (offset + id as usize * 4099) % BLOCK;
    &block()[start..start + len.min(BLOCK)]
}

/// Sends stream `id`, `size` bytes, then shuts down the write side.
fn send_stream(mut to: TcpStream, id: u64, size: usize) {
    to.set_write_timeout(Some(DEADLINE)).unwrap();
    let mut sent = 0;
    while sent < size {
        let piece = stream_bytes(id, sent, (size - sent).min(64 * 1024));
        to.write_all(piece).unwrap();
        sent += piece.len();
    }
    to.shutdown(Shutdown::Write).unwrap();
}

/// Reads to the end and checks that it was exactly stream `id`, `size` bytes.
fn check_stream(from: &mut TcpStream, id: u64, size: usize) {
    from.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut buf = vec![0; 64 * 1024];
    let mut got = 0;
    loop {
        let n = from.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        assert!(got + n <= size, "stream {id}: more than {size} bytes");
        assert!(
            buf[..n] == *stream_bytes(id, got, n),
            "stream {id} differs in bytes {got}..{}",
            got + n
        );
        got += n;
    }
    assert_eq!(got, size, "stream {id}: {got} of {size} bytes");
}

/// Peak resident memory of a process (VmHWM), in kB.
fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

/// The load test: 100 concurrent clients, each sending `load_size()` bytes
/// while receiving as many from its B, all through one `-q -k` process. Every byte
/// must arrive intact, and the memory must stay bounded by the buffers, not grow
/// with the traffic.
#[test]
fn a_hundred_concurrent_connections_both_ways() {
    const CLIENTS: u64 = 100;
    let size = load_size();
    let options = Options {
        bulk: true,
        ..Options::default()
    };
    let mut k = Listening::start(&["-q", "-c"], &options);
    let started = Instant::now();

    // B: every connection says which client it is in its first 8 bytes.
    let b_listener = k.b.try_clone().unwrap();
    let server = thread::spawn(move || {
        let handlers: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let mut b = accept_in_time(&b_listener);
                thread::spawn(move || {
                    let id = u64::from_le_bytes(read_exact(&mut b, 8).try_into().unwrap());
                    let to_a = b.try_clone().unwrap();
                    let sender = thread::spawn(move || send_stream(to_a, 1000 + id, size));
                    check_stream(&mut b, id, size);
                    sender.join().unwrap();
                })
            })
            .collect();
        for handler in handlers {
            handler.join().unwrap();
        }
    });
    let clients: Vec<_> = (0..CLIENTS)
        .map(|id| {
            let port = k.port;
            thread::spawn(move || {
                let mut a = TcpStream::connect(("127.0.0.1", port)).unwrap();
                a.write_all(&id.to_le_bytes()).unwrap();
                let to_b = a.try_clone().unwrap();
                let sender = thread::spawn(move || send_stream(to_b, id, size));
                check_stream(&mut a, 1000 + id, size);
                sender.join().unwrap();
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    server.join().unwrap();
    let took = started.elapsed();

    k.process
        .stdout
        .wait_count("every summary", CLIENTS as usize, |l| {
            l.contains("] Relayed")
        });
    let peak_kb = peak_rss_kb(k.process.child.id());
    k.process.signal(libc::SIGTERM);
    assert_eq!(
        k.process.wait().code(),
        Some(0),
        "{}",
        k.process.stderr.text()
    );
    let lines = k.process.stdout.lines();
    let expected = format!("Relayed A -> B {} bytes, B -> A {size} bytes in ", size + 8);
    let summaries = lines.iter().filter(|l| l.contains(&expected)).count();
    assert_eq!(summaries, CLIENTS as usize);
    assert_eq!(
        lines.last().map(String::as_str),
        Some("Served 100 connections: 100 completed, 0 failed, 0 cancelled")
    );
    let total_mb = 2.0 * CLIENTS as f64 * size as f64 / 1e6;
    eprintln!(
        "load: {CLIENTS} connections x {} MB each way: {total_mb:.0} MB in {:.2} s \
         ({:.0} MB/s); tiburoncin peak RSS {} kB",
        size / 1_000_000,
        took.as_secs_f64(),
        total_mb / took.as_secs_f64(),
        peak_kb
    );
    // Two 2048-byte buffers and five threads per connection: the peak must not grow
    // with the bytes relayed (a leak of 1% of them would be 2 MB per MB relayed).
    assert!(peak_kb < 64 * 1024, "peak RSS {peak_kb} kB");
}

/// `-qq`: nothing for each connection, only the tally at the end (with its plural
/// right); errors still go to standard error.
#[test]
fn twice_quiet_prints_only_the_tally() {
    let mut k = Listening::start(&["-c", "-qq"], &Options::default());
    let (mut a1, mut b1) = k.connect();
    exchange(&mut a1, &mut b1, b"one\n");
    close_both(&mut a1, &mut b1);
    // The second is still open when the signal comes: it is cancelled.
    let (mut a2, mut b2) = k.connect();
    exchange(&mut a2, &mut b2, b"two\n");
    k.process.signal(libc::SIGINT);
    assert_eq!(k.process.wait().code(), Some(130));
    assert_eq!(k.process.stderr.text(), "User cancelled.\n");
    let lines = k.process.stdout.lines();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(lines[0].starts_with("Waiting for connections from A "));
    assert!(lines[1].starts_with("Served 2 connections: "), "{lines:#?}");

    // One client whose B is gone: one error line, and "1 connection".
    let mut k = Listening::start(&["-c", "-qq"], &Options::default());
    drop(std::mem::replace(
        &mut k.b,
        std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
    ));
    let mut a = TcpStream::connect(("127.0.0.1", k.port)).unwrap();
    a.set_read_timeout(Some(DEADLINE)).unwrap();
    let _ = a.read(&mut [0; 16]);
    k.process
        .stderr
        .wait_line("the refusal", |l| l.starts_with("[1] Establish"));
    k.process.signal(libc::SIGTERM);
    assert_eq!(k.process.wait().code(), Some(1));
    let lines = k.process.stdout.lines();
    assert_eq!(
        lines[1..],
        ["Served 1 connection: 0 completed, 1 failed, 0 cancelled"]
    );
}
