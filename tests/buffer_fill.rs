//! How full the user-space buffer gets when the consumer reads nothing: to `-b`,
//! whatever the size of each read, and never past it.
//!
//! B never reads. Its kernel buffers and tiburoncin's (`-z`) are made small, so that
//! they fill quickly; then every byte A sends waits in tiburoncin's buffer, until it
//! holds `-b` bytes and the relay stops reading from A. "B is N bytes behind" must
//! climb to `-b` minus less than one read, as the original's circular buffer does.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::thread;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestError, TestRunner};

use common::*;

/// Starts a relay with `-b <buffer>` and tiny kernel buffers towards a B that never
/// reads.
fn stalled_b(buffer: usize) -> Session {
    let b = buffer.to_string();
    Session::start_with(&["-c", "-b", &b, "-z", "1024"], |listener| {
        socket2::SockRef::from(listener)
            .set_recv_buffer_size(1024)
            .unwrap();
    })
}

/// The `A -> B sent` lines printed so far.
fn reads(out: &Captured) -> usize {
    out.text().matches("A -> B sent ").count()
}

/// The N of the last `B is N bytes behind` line so far.
fn last_backlog(out: &Captured) -> Option<usize> {
    let text = out.text();
    let from = text.rfind("\nB is ")?;
    behinds(&[text[from + 1..].lines().next()?.to_string()], "B").pop()
}

/// A sends 100-byte messages one at a time, each only once tiburoncin has read the one
/// before (so that every read gets one message), until the backlog reaches `-b`.
fn hundred_byte_reads_fill(buffer: usize) {
    let mut s = stalled_b(buffer);
    let out = s.stdout().clone();
    // Enough for the buffer and the kernel buffers on the way to B, many times over.
    let most = 3 * buffer / 100 + 2000;
    let mut sent = Vec::new();
    for i in 0..most {
        let message = [b'a' + (i % 26) as u8; 100];
        let before = reads(&out);
        s.a.write_all(&message).unwrap();
        sent.extend_from_slice(&message);
        wait_for(
            "the message to be read",
            || (reads(&out) > before).then_some(()),
            || out.text(),
        );
        if last_backlog(&out) == Some(buffer) {
            break;
        }
    }
    let lines = out.lines();
    let sizes = sent_sizes(&lines, "A -> B");
    let peak = behinds(&lines, "B").into_iter().max().unwrap_or(0);
    assert!(
        sizes.iter().all(|&n| n <= 100),
        "-b {buffer}: a read of more than one message: {sizes:?}"
    );
    assert!(
        peak > buffer - 100 && peak <= buffer,
        "-b {buffer}: the backlog peaked at {peak} bytes"
    );

    // Then B reads: every byte arrives, and the relay ends in sync.
    s.a.shutdown(std::net::Shutdown::Write).unwrap();
    let received = read_to_end(&mut s.b).unwrap();
    assert!(
        received == sent,
        "B got {} of {} bytes",
        received.len(),
        sent.len()
    );
    s.b.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(s.process.wait().code(), Some(0));
}

#[test]
fn hundred_byte_reads_fill_a_2048_byte_buffer() {
    hundred_byte_reads_fill(2048);
}

#[test]
fn hundred_byte_reads_fill_a_16384_byte_buffer() {
    hundred_byte_reads_fill(16384);
}

#[test]
fn hundred_byte_reads_fill_a_65536_byte_buffer() {
    hundred_byte_reads_fill(65536);
}

/// A test case: the buffer, and the sizes of the messages A sends.
#[derive(Debug, Clone)]
struct Case {
    buffer: usize,
    messages: Vec<usize>,
}

fn case() -> impl Strategy<Value = Case> {
    prop_oneof![1usize..=16, 17usize..=2048, 2049usize..=65536]
        .prop_flat_map(|buffer| {
            let size = 1..=3 * buffer;
            (Just(buffer), prop::collection::vec(size, 1..=64))
        })
        .prop_map(|(buffer, messages)| Case { buffer, messages })
}

/// Sends `messages`, cycling through them, until `total` bytes are out or the
/// relay is gone; blocking sends are what a full buffer does to A.
fn send_cycling(mut a: TcpStream, messages: Vec<usize>, total: usize) {
    let mut sent = 0;
    for (i, size) in messages.iter().cycle().enumerate() {
        if sent >= total {
            break;
        }
        let message = vec![(i % 251) as u8; *size];
        if a.write_all(&message).is_err() {
            break;
        }
        sent += size;
    }
}

fn peak_backlog_reaches_the_buffer(case: &Case) {
    let s = stalled_b(case.buffer);
    let out = s.stdout().clone();
    // More than the buffer and the kernel buffers towards B can hold.
    let total = 3 * case.buffer + 256 * 1024;
    let a = s.a.try_clone().unwrap();
    let messages = case.messages.clone();
    let sender = thread::spawn(move || send_cycling(a, messages, total));
    out.wait_until_quiet("the relay to stall");

    let lines = out.lines();
    let largest = sent_sizes(&lines, "A -> B").into_iter().max().unwrap_or(0);
    let peak = behinds(&lines, "B").into_iter().max().unwrap_or(0);
    let buffer = case.buffer;
    assert!(
        peak <= buffer && peak + largest >= buffer,
        "-b {buffer}: the backlog peaked at {peak} bytes, the largest read was {largest}"
    );
    drop(s);
    sender.join().unwrap();
}

#[test]
fn the_backlog_reaches_the_buffer_for_any_message_sizes() {
    let cases = std::env::var("TIBURONCIN_FILL_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(12);
    let config = Config {
        cases,
        rng_seed: RngSeed::Fixed(20_261_130),
        failure_persistence: None,
        max_shrink_iters: 32,
        ..Config::default()
    };
    let result = TestRunner::new(config).run(&case(), |case| {
        peak_backlog_reaches_the_buffer(&case);
        Ok(())
    });
    if let Err(error) = result {
        let error: TestError<Case> = error;
        panic!("{error}");
    }
}
