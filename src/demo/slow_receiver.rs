//! `slow-receiver`: B stops reading, and the buffers between A and B fill in order:
//! B's kernel, tiburoncin's kernel towards B, tiburoncin's own buffer (`-b`), then
//! tiburoncin's kernel from A, until A's own write blocks. Then B catches up.
//!
//! The sizes make each stage end at a known chunk, as docs/slow-receiver.md finds
//! them on a real kernel: Linux doubles a size asked for with SO_RCVBUF or
//! SO_SNDBUF, and B, asking for 1536, offers a window of exactly three of the 512-byte
//! chunks tiburoncin reads (`-b 512`); tiburoncin's send buffer of 1024 (`-z 1024`)
//! becomes 4608, which holds eight of them. So every step waits for a line or a
//! queue level that it knows will come.

use std::io::{ErrorKind, Write};
use std::net::TcpStream;

use crate::cli::sizes::SizePair;
use crate::demo::child::RelayChild;
use crate::demo::peers::{self, receive, receive_end, send, settles, shutdown};
use crate::demo::{Show, Sizes, Stage};
use crate::error::Error;

/// tiburoncin's buffer A -> B (`-b`): the size of every chunk it reads.
pub(crate) const RING: usize = 512;

/// tiburoncin's SO_SNDBUF (`-z`), which decides how much its socket to B holds.
pub(crate) const SEND_BUFFER: usize = 1024;

/// B's SO_RCVBUF: a window of three chunks.
pub(crate) const B_RECEIVE_BUFFER: usize = 1536;
const CHUNKS_IN_B: usize = 3;

/// What tiburoncin's socket to B holds once B's window is closed: eight chunks.
const CHUNKS_QUEUED_TO_B: usize = 8;

/// A's SO_SNDBUF: small, so that A blocks after a few kilobytes, not megabytes.
const A_SEND_BUFFER: usize = 1024;

/// The sizes the relay gets: `-b 512:2048 -z 1024:4096 --kernel-queues`.
pub(crate) fn sizes() -> Sizes {
    Sizes {
        buffers: Some(SizePair(RING, 2048)),
        socket_buffers: Some(SizePair(SEND_BUFFER, 4096)),
        kernel_queues: true,
    }
}

pub(crate) fn play(show: &mut Show) -> Result<(), Error> {
    show.step(&[
        "slow-receiver: B stops reading, and A goes on sending. tiburoncin reads at most",
        "-b bytes at a time (512 here), and shows the kernel's queues (--kernel-queues).",
    ]);
    let mut stage = show.set_up(Some(B_RECEIVE_BUFFER), Some(A_SEND_BUFFER), sizes())?;
    let filled = fill(show, &mut stage)?;
    let sent = filled + block_a(show, &stage)?;
    let Stage { relay, a, b } = &mut stage;

    show.step(&[
        "B catches up: it reads everything. As B makes room, every queue drains in",
        "turn, and tiburoncin reads from A again:",
    ]);
    let got = receive("B", b, sent)?;
    if got[..filled] != filling()[..] || got[filled..].iter().any(|&c| c != b'1') {
        return Err(Error::Demo("B got other bytes than A sent".into()));
    }
    relay.caught_up("A", "B", sent)?;
    settles("A's send queue", 0, || peers::unacknowledged(a))?;
    show.step(&[
        &format!("B got all {sent} bytes A sent, in order. Nothing waits anywhere now:"),
        &format!(
            "B's kernel holds {} unread, A's kernel {} unsent: all in sync.",
            peers::unread(b),
            peers::unacknowledged(a)
        ),
        "A and B close; the relay passes each end on, and exits 0:",
    ]);
    shutdown("A", a)?;
    receive_end("B", b)?;
    shutdown("B", b)?;
    receive_end("A", a)?;
    relay.ends_with(0)
}

/// B reads nothing while A sends chunk after chunk, until B's kernel, tiburoncin's
/// socket to B and tiburoncin's buffer are full. Gives the bytes sent.
pub(crate) fn fill(show: &mut Show, stage: &mut Stage) -> Result<usize, Error> {
    let Stage { relay, a, b } = stage;
    show.step(&[
        "B reads nothing. A sends 512 bytes at a time: tiburoncin reads each chunk and",
        "writes it to B at once (B is in sync). The bytes wait in B's kernel:",
    ]);
    let mut chunks = 0;
    for _ in 0..CHUNKS_IN_B {
        chunks = chunk(relay, a, b'X', chunks)?;
        relay.count("B is in sync", chunks)?;
    }
    let window = (CHUNKS_IN_B * RING) as u64;
    settles("B's receive queue", window, || peers::unread(b))?;
    show.step(&[
        &format!("B's kernel now holds {window} bytes B has not read: its window is full."),
        "A sends more. tiburoncin's writes still succeed: its own kernel keeps the",
        "bytes for B, unacknowledged (queued to B):",
    ]);
    for _ in 0..CHUNKS_QUEUED_TO_B {
        chunks = chunk(relay, a, b'Y', chunks)?;
        relay.count("B is in sync", chunks)?;
    }
    show.step(&[
        &last_status(relay),
        "tiburoncin's socket to B is full. A sends 512 bytes more: tiburoncin reads",
        "them, but cannot write them; they wait in its own buffer, -b, now full:",
    ]);
    chunks = chunk(relay, a, b'Z', chunks)?;
    relay.count("B is 512 bytes behind", chunks)?;
    Ok(chunks * RING)
}

/// The bytes `fill` sends, in order.
pub(crate) fn filling() -> Vec<u8> {
    let mut bytes = vec![b'X'; CHUNKS_IN_B * RING];
    bytes.resize(bytes.len() + CHUNKS_QUEUED_TO_B * RING, b'Y');
    bytes.resize(bytes.len() + RING, b'Z');
    bytes
}

/// A sends one more chunk of `fill`; gives the chunks sent so far.
fn chunk(relay: &mut RelayChild, a: &TcpStream, fill: u8, sent: usize) -> Result<usize, Error> {
    send("A", a, &[fill; RING])?;
    relay.count("A -> B sent ", sent + 1)?;
    Ok(sent + 1)
}

/// The relay's last `B is ...` line, in words: where the bytes wait.
fn last_status(relay: &RelayChild) -> String {
    let status = relay
        .seen()
        .iter()
        .rev()
        .find(|l| l.contains("B is "))
        .map_or("", |l| l.as_str());
    format!("The relay said: {}", status.trim())
}

/// With tiburoncin's buffer full, A sends until its own write would block. Gives the
/// bytes A got into its kernel.
fn block_a(show: &mut Show, stage: &Stage) -> Result<usize, Error> {
    show.step(&[
        "With its buffer full, tiburoncin reads no more from A. A goes on: its bytes",
        "wait unread in tiburoncin's kernel, then in A's own, until A cannot send:",
    ]);
    let a = &stage.a;
    a.set_nonblocking(true)
        .map_err(|e| peers::failed("A", "stop blocking", e))?;
    let mut sent = 0;
    let block = [b'1'; RING];
    // A's write would block when its send buffer is full. That alone may be for a
    // moment, until tiburoncin's kernel acknowledges what it got; A is blocked for
    // good once, besides, it holds bytes it cannot even send: tiburoncin's kernel
    // has closed its window. That is the event this step waits for.
    loop {
        match (&*a).write(&block) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock && peers::unsent(a) > 0 => break,
            Err(e) if e.kind() == ErrorKind::WouldBlock => peers::writable(a)?,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(peers::failed("A", "send", e)),
        }
    }
    a.set_nonblocking(false)
        .map_err(|e| peers::failed("A", "block again", e))?;
    let unsent = peers::unsent(a);
    show.note(&[
        &format!(
            "A's write would block now. A sent {sent} bytes more: tiburoncin's kernel holds {},",
            sent as u64 - unsent
        ),
        &format!("unread; A's kernel the other {unsent}, which it cannot even send: tiburoncin's"),
        "kernel has no room. Nothing moves while B reads nothing: the relay is silent.",
    ]);
    Ok(sent)
}
