//! Randomized sessions through the real relay (property tests).
//!
//! Each case is a whole session: the binary between a client A and a server B on
//! loopback, with a random user-space buffer per direction (`-b n` or `-b n:m`, 1
//! byte to 64 KiB), random kernel buffers (`-z`, or none), random messages each way,
//! random pauses of the senders and the readers, and a random order of half-closes:
//! either side may close first and the other may go on talking after it, or both
//! close without waiting for each other. The pauses are *inputs* that vary how the
//! traffic is cut into reads and how full the buffers get; no check waits on them.
//!
//! Whatever the case, these must hold:
//! - every byte arrives, in order, and the EOF only after the last one;
//! - the printed `sent` totals equal the bytes sent each way, and the hexdump rows
//!   spell out exactly those bytes at the right stream offsets;
//! - no `sent` and no `behind` exceeds that direction's buffer;
//! - each direction prints its `flow shutdown` once, after its last chunk, and ends
//!   in sync; the process exits 0 with nothing on stderr.
//!
//! CI runs 500 sessions (several at a time, since each mostly waits on sockets).
//! `TIBURONCIN_SESSIONS=10000` runs more; `TIBURONCIN_SEED=n` picks another sequence
//! (the default seed is fixed, so CI runs the same sessions every time). A failure
//! prints the smallest plan proptest could shrink it to; nothing is persisted to disk.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestError, TestRunner};

use common::*;

const DEFAULT_SESSIONS: u32 = 500;
const DEFAULT_SEED: u64 = 20_250_707;
/// Sessions run at once: each mostly waits on sockets, so more than the cores.
const WORKERS: u32 = 4;

/// How one direction's traffic goes.
#[derive(Debug, Clone)]
struct Flow {
    /// The sizes of the messages, written one `write_all` each.
    messages: Vec<usize>,
    /// Seed of the bytes.
    seed: u64,
    /// Microseconds the sender pauses before message i (cycled).
    send_pauses: Vec<u16>,
    /// Microseconds the receiver waits before its first read: the relay fills up.
    first_read_delay: u16,
    /// Microseconds the receiver pauses at evenly spaced points of the stream.
    read_pauses: Vec<u16>,
    /// Bytes the receiver asks for in each read.
    read_size: usize,
    /// If this direction closes second: how many of its last messages it sends only
    /// after the other direction's EOF has arrived (talking after a half-close).
    late: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closes {
    /// A's side closes first; B's last messages and its close follow A's EOF.
    AFirst,
    BFirst,
    /// Both close when they are done, without waiting for each other.
    Independent,
}

#[derive(Debug, Clone)]
struct Plan {
    /// `-b`: A->B and B->A; `pair` writes `n:m` even when they are equal.
    buffers: (usize, usize),
    pair: bool,
    /// `-z`, if given.
    socket_buffers: Option<(usize, usize)>,
    ab: Flow,
    ba: Flow,
    closes: Closes,
}

fn buffer_size() -> impl Strategy<Value = usize> {
    prop_oneof![1usize..=16, 17usize..=2048, 2049usize..=65536]
}

fn message_size() -> impl Strategy<Value = usize> {
    prop_oneof![3 => 1usize..=16, 3 => 17usize..=1024, 1 => 1025usize..=16384]
}

fn flow() -> impl Strategy<Value = Flow> {
    (
        prop::collection::vec(message_size(), 0..=8),
        any::<u64>(),
        prop::collection::vec(prop_oneof![3 => Just(0u16), 1 => 1u16..=2000], 0..=4),
        prop_oneof![2 => Just(0u16), 1 => 1u16..=20_000],
        prop::collection::vec(1u16..=3000, 0..=4),
        prop_oneof![1usize..=16, 17usize..=65536],
        0usize..=8,
    )
        .prop_map(
            |(messages, seed, send_pauses, first_read_delay, read_pauses, read_size, late)| {
                let late = late.min(messages.len());
                Flow {
                    messages,
                    seed,
                    send_pauses,
                    first_read_delay,
                    read_pauses,
                    read_size,
                    late,
                }
            },
        )
}

fn plan() -> impl Strategy<Value = Plan> {
    (
        buffer_size(),
        buffer_size(),
        any::<bool>(),
        any::<bool>(),
        prop::option::of((
            prop_oneof![1usize..=4096, 4097usize..=262_144],
            prop_oneof![1usize..=4096, 4097usize..=262_144],
        )),
        flow(),
        flow(),
        prop_oneof![
            Just(Closes::AFirst),
            Just(Closes::BFirst),
            Just(Closes::Independent)
        ],
    )
        .prop_map(
            |(ab_buf, ba_buf, same, pair, socket_buffers, ab, ba, closes)| {
                let buffers = if same {
                    (ab_buf, ab_buf)
                } else {
                    (ab_buf, ba_buf)
                };
                Plan {
                    buffers,
                    pair: pair || !same,
                    socket_buffers,
                    ab,
                    ba,
                    closes,
                }
            },
        )
}

impl Plan {
    fn args(&self) -> Vec<String> {
        let mut args = vec!["-c".to_string(), "-b".into()];
        let (n, m) = self.buffers;
        args.push(if self.pair {
            format!("{n}:{m}")
        } else {
            n.to_string()
        });
        if let Some((snd, rcv)) = self.socket_buffers {
            args.push("-z".into());
            args.push(format!("{snd}:{rcv}"));
        }
        args
    }
}

impl Flow {
    fn bytes(&self) -> Vec<u8> {
        random_bytes(self.messages.iter().sum(), self.seed)
    }
}

fn micros(n: u16) -> Duration {
    Duration::from_micros(u64::from(n))
}

/// Sends `flow`'s messages on `stream`, then shuts down its write side. When `after`
/// is given, the last `flow.late` messages wait until it reports the other
/// direction's EOF.
fn send(mut stream: TcpStream, flow: Flow, after: Option<mpsc::Receiver<()>>) {
    stream.set_write_timeout(Some(DEADLINE)).unwrap();
    let data = flow.bytes();
    let early = flow.messages.len() - if after.is_some() { flow.late } else { 0 };
    let mut at = 0;
    for (i, &size) in flow.messages.iter().enumerate() {
        if i == early {
            if let Some(eof) = &after {
                eof.recv_timeout(DEADLINE)
                    .expect("the other direction's EOF never came");
            }
        }
        if let Some(&pause) = flow.send_pauses.get(i % flow.send_pauses.len().max(1)) {
            thread::sleep(micros(pause));
        }
        stream.write_all(&data[at..at + size]).expect("send");
        at += size;
    }
    if early == flow.messages.len() {
        if let Some(eof) = &after {
            eof.recv_timeout(DEADLINE)
                .expect("the other direction's EOF never came");
        }
    }
    stream.shutdown(Shutdown::Write).expect("shutdown");
}

/// Reads until EOF as `flow` says, tells `eof` when it came, and returns the bytes.
fn receive(mut stream: TcpStream, flow: Flow, eof: mpsc::Sender<()>) -> Vec<u8> {
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let total: usize = flow.messages.iter().sum();
    let stops: Vec<usize> = (1..=flow.read_pauses.len())
        .map(|i| total * i / (flow.read_pauses.len() + 1))
        .collect();
    let mut next_stop = 0;
    thread::sleep(micros(flow.first_read_delay));
    let mut got = Vec::with_capacity(total);
    let mut buf = vec![0u8; flow.read_size];
    loop {
        while next_stop < stops.len() && got.len() >= stops[next_stop] {
            thread::sleep(micros(flow.read_pauses[next_stop]));
            next_stop += 1;
        }
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("receive after {} of {total} bytes: {e}", got.len()),
        }
    }
    let _ = eof.send(());
    got
}

/// What the transcript shows of one direction.
#[derive(Debug, Default)]
struct Shown {
    bytes: Vec<u8>,
    sent: Vec<usize>,
    behinds: Vec<usize>,
    last_status: Option<String>,
    /// Line numbers of the `flow shutdown` lines and of the last chunk.
    shutdowns: Vec<usize>,
    last_chunk: Option<usize>,
}

/// Byte `i` of a hexdump row is at this column.
fn cell_column(i: usize) -> usize {
    10 + 3 * i + usize::from(i >= 8)
}

/// Splits a `-c` transcript into the two directions, reading the bytes back from the
/// hexdump rows (and checking each row's label and text column on the way).
fn parse(lines: &[String]) -> [Shown; 2] {
    let mut shown: [Shown; 2] = Default::default();
    let mut i = 0;
    while i < lines.len() {
        let line = &lines[i];
        let dir = if line.starts_with("A -> B") || line.starts_with("B is ") {
            0
        } else if line.starts_with("B -> A") || line.starts_with("A is ") {
            1
        } else {
            i += 1;
            continue; // the start-up lines
        };
        let view = &mut shown[dir];
        // "1 byte", else "N bytes".
        let singular = |l: &str| l.replace(" 1 byte", " 1 bytes");
        if let Some(n) = singular(line)
            .strip_suffix(" bytes")
            .and_then(|l| l.split(" sent ").nth(1))
        {
            let n: usize = n.parse().unwrap();
            view.sent.push(n);
            view.last_chunk = Some(i);
            let mut left = n;
            while left > 0 {
                i += 1;
                let row = lines
                    .get(i)
                    .unwrap_or_else(|| panic!("chunk cut short at line {i}"));
                let offset = view.bytes.len();
                let label = usize::from_str_radix(&row[..8], 16).unwrap();
                assert_eq!(label, offset, "row label at line {i}: {row}");
                let lead = offset % 16;
                let take = left.min(16 - lead);
                assert_eq!(row.len(), 78, "row width at line {i}: {row:?}");
                for cell in 0..16 {
                    let hex = &row[cell_column(cell)..cell_column(cell) + 2];
                    let text = row.as_bytes()[61 + cell];
                    if cell < lead || cell >= lead + take {
                        assert_eq!((hex, text), ("  ", b' '), "blank cell at line {i}");
                    } else {
                        let b = u8::from_str_radix(hex, 16).unwrap();
                        let shown = if (0x20..0x7f).contains(&b) { b } else { b'.' };
                        assert_eq!(text, shown, "text cell at line {i}: {row}");
                        view.bytes.push(b);
                    }
                }
                left -= take;
            }
        } else if line.ends_with("flow shutdown") {
            view.shutdowns.push(i);
        } else if let Some(n) = singular(line)
            .strip_suffix(" bytes behind")
            .and_then(|l| l.rsplit(' ').next())
        {
            view.behinds.push(n.parse().unwrap());
            view.last_status = Some(line.clone());
        } else if line.ends_with(" is in sync") {
            view.last_status = Some(line.clone());
        } else {
            panic!("unexpected line {i}: {line:?}");
        }
        i += 1;
    }
    shown
}

fn run_session(plan: &Plan) {
    let args = plan.args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut s = Session::start(&args);
    let (ab_eof_tx, ab_eof) = mpsc::channel();
    let (ba_eof_tx, ba_eof) = mpsc::channel();
    let (wait_ab, wait_ba) = match plan.closes {
        Closes::AFirst => (None, Some(ab_eof)),
        Closes::BFirst => (Some(ba_eof), None),
        Closes::Independent => (None, None),
    };
    let threads = {
        let (a, b) = (&s.a, &s.b);
        let (ab, ba) = (plan.ab.clone(), plan.ba.clone());
        let send_ab = {
            let (a, ab) = (a.try_clone().unwrap(), ab.clone());
            thread::spawn(move || send(a, ab, wait_ab))
        };
        let send_ba = {
            let (b, ba) = (b.try_clone().unwrap(), ba.clone());
            thread::spawn(move || send(b, ba, wait_ba))
        };
        let recv_ab = {
            let b = b.try_clone().unwrap();
            thread::spawn(move || receive(b, ab, ab_eof_tx))
        };
        let recv_ba = {
            let a = a.try_clone().unwrap();
            thread::spawn(move || receive(a, ba, ba_eof_tx))
        };
        (send_ab, send_ba, recv_ab, recv_ba)
    };
    let (send_ab, send_ba, recv_ab, recv_ba) = threads;
    let got_ab = recv_ab.join().expect("B's reader");
    let got_ba = recv_ba.join().expect("A's reader");
    send_ab.join().expect("A's sender");
    send_ba.join().expect("B's sender");

    let status = s.process.wait();
    let stderr = s.process.stderr.text();
    assert_eq!(status.code(), Some(0), "exit status; stderr: {stderr}");
    assert_eq!(stderr, "", "stderr");

    let lines = s.stdout().lines();
    let shown = parse(&lines);
    let sent = [plan.ab.bytes(), plan.ba.bytes()];
    let got = [got_ab, got_ba];
    let buffers = [plan.buffers.0, plan.buffers.1];
    for (d, name) in ["A -> B", "B -> A"].iter().enumerate() {
        let view = &shown[d];
        assert!(
            got[d] == sent[d],
            "{name}: received {} of {} bytes, or other bytes",
            got[d].len(),
            sent[d].len()
        );
        assert_eq!(
            view.sent.iter().sum::<usize>(),
            sent[d].len(),
            "{name}: sent total"
        );
        assert!(
            view.bytes == sent[d],
            "{name}: the hexdump shows other bytes"
        );
        assert!(
            view.sent.iter().all(|&n| (1..=buffers[d]).contains(&n)),
            "{name}: a chunk of {:?} with a {} byte buffer",
            view.sent.iter().max(),
            buffers[d]
        );
        assert!(
            view.behinds.iter().all(|&n| n <= buffers[d]),
            "{name}: {:?} behind with a {} byte buffer",
            view.behinds.iter().max(),
            buffers[d]
        );
        assert_eq!(view.shutdowns.len(), 1, "{name}: flow shutdown lines");
        assert!(
            view.last_chunk < Some(view.shutdowns[0]),
            "{name}: flow shutdown before the last chunk"
        );
        let to = if d == 0 { "B" } else { "A" };
        assert_eq!(
            view.last_status.as_deref(),
            Some(format!("{to} is in sync").as_str()),
            "{name}: last status"
        );
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(text) => text
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text:?} is not a number")),
        Err(_) => default,
    }
}

#[test]
fn randomized_sessions_lose_nothing_and_print_the_truth() {
    let sessions = env_number("TIBURONCIN_SESSIONS", DEFAULT_SESSIONS.into()) as u32;
    let seed = env_number("TIBURONCIN_SEED", DEFAULT_SEED);
    let started = Instant::now();
    let results: Vec<Result<(), String>> = thread::scope(|scope| {
        let handles: Vec<_> = (0..WORKERS)
            .map(|worker| {
                let cases = sessions / WORKERS + u32::from(worker < sessions % WORKERS);
                scope.spawn(move || {
                    let config = Config {
                        cases,
                        rng_seed: RngSeed::Fixed(seed.wrapping_add(worker.into())),
                        // The seed is fixed: a failure recurs without a file to keep it.
                        failure_persistence: None,
                        // Each shrinking step is a whole session: keep shrinking bounded.
                        max_shrink_iters: 256,
                        max_shrink_time: 60_000,
                        ..Config::default()
                    };
                    TestRunner::new(config)
                        .run(&plan(), |plan| {
                            run_session(&plan);
                            Ok(())
                        })
                        .map_err(|error: TestError<Plan>| error.to_string())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    eprintln!(
        "{sessions} randomized sessions (seed {seed}) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for result in results {
        if let Err(error) = result {
            panic!("{error}");
        }
    }
}
