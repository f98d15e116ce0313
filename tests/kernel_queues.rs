//! `--kernel-queues`: the kernel's queues beside the user-space backlog, measured on
//! real loopback sockets.

mod common;

use std::net::Shutdown;

use common::*;

/// `B is N bytes behind (kernel: Q queued to B, U unread from A)` → (N, Q, U); "in
/// sync" is N = 0.
fn parse_status(line: &str) -> Option<(u64, u64, u64)> {
    let rest = line.strip_prefix("B is ")?;
    let (behind, kernel) = rest.split_once(" (kernel: ")?;
    let behind = match behind {
        "in sync" => 0,
        "1 byte behind" => 1,
        b => b.strip_suffix(" bytes behind")?.parse().ok()?,
    };
    let kernel = kernel.strip_suffix(" unread from A)")?;
    let (queued, unread) = kernel.split_once(" queued to B, ")?;
    Some((behind, queued.parse().ok()?, unread.parse().ok()?))
}

/// The original tool's slow receiver with the kernel's queues shown: once the user-space
/// buffer is full, bytes also wait in the send queue to B (B's window is full) and
/// in the receive queue from A (tiburoncin stopped reading).
#[test]
fn a_stalled_relay_shows_where_the_bytes_wait() {
    let data = random_bytes(200_000, 13);
    let mut s = Session::start_with(
        &["-c", "-b", "512", "-z", "1024:4096", "--kernel-queues"],
        |listener| {
            socket2::SockRef::from(listener)
                .set_recv_buffer_size(1024)
                .unwrap();
        },
    );
    let out = s.stdout().clone();
    let sender = send_in_background(&s.a, data.clone(), true);
    // The relay fills its buffer, then stalls: wait until its output stops moving
    // (as the slow-receiver test in tests/relay.rs does).
    out.wait_line("a full buffer", |l| {
        l.starts_with("B is 512 bytes behind (kernel: ")
    });
    out.wait_until_quiet("the relay to stall");
    // Stalled, the bytes wait in three places: the user-space buffer (full), the
    // send queue to B (B's window is full, nothing is acknowledged) and the receive
    // queue from A (tiburoncin reads no more).
    let lines = out.lines();
    let last_status = lines.iter().rev().find_map(|l| parse_status(l)).unwrap();
    let (behind, queued, unread) = last_status;
    assert_eq!(behind, 512, "{last_status:?}");
    assert!(
        queued > 0,
        "nothing queued to a B that reads nothing: {last_status:?}"
    );
    assert!(
        unread > 0,
        "nothing waiting from A, which sent 200 kB: {last_status:?}"
    );

    assert!(read_to_end(&mut s.b).unwrap() == data);
    sender.join().unwrap();
    s.b.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_end(&mut s.a).unwrap(), b"");
    assert_eq!(s.process.wait().code(), Some(0));
    // Every status line carries the kernel's queues.
    let lines = out.lines();
    for line in lines.iter().filter(|l| l.starts_with("B is ")) {
        assert!(parse_status(line).is_some(), "{line}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("A is in sync (kernel: "))
    );
}

/// Without the flag, nothing changes.
#[test]
fn without_the_flag_the_status_is_the_original() {
    let mut s = Session::start(&["-c"]);
    std::io::Write::write_all(&mut s.a, b"x").unwrap();
    assert_eq!(read_exact(&mut s.b, 1), b"x");
    s.stdout().wait_line("in sync", |l| l == "B is in sync");
}
