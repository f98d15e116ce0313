//! The kernel's queues beside the user-space buffer (`--kernel-queues`).
//!
//! "B is 512 bytes behind" counts the bytes in tiburoncin's own buffer. Two more
//! queues hold bytes of the same stream, in the kernel, and say where a stall really
//! is:
//!
//! - the send queue of the socket to the consumer, `SIOCOUTQ`: bytes tiburoncin has
//!   written to B that B has not yet acknowledged — sent and in flight, or not yet
//!   sent because B's receive window is full (B's receive buffer, where they sit
//!   until B reads them, is B's own and not counted);
//! - the receive queue of the socket from the producer, `SIOCINQ`: bytes A has sent
//!   that the kernel has received for tiburoncin and tiburoncin has not yet read
//!   (they wait there while the user-space buffer is full).
//!
//! So the stream's bytes between A's send call and B's receive call are, in order:
//! A's own send queue, the `SIOCINQ` of A's socket here, the user-space backlog, the
//! `SIOCOUTQ` of B's socket here, and B's receive queue. Each level is read with an
//! `ioctl(2)` right after the read or write that the status line reports.

use std::io;
use std::os::fd::AsRawFd;

use socket2::Socket;

/// One direction's kernel queues at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Queues {
    /// Written to the consumer and not yet acknowledged by it (`SIOCOUTQ`).
    pub to_consumer: u64,
    /// Received from the producer and not yet read by us (`SIOCINQ`).
    pub from_producer: u64,
}

impl Queues {
    /// Both levels of a direction, or `None` if the kernel refused (a socket
    /// already shut down may).
    pub fn of(producer: &Socket, consumer: &Socket) -> Option<Queues> {
        Some(Queues {
            to_consumer: unacknowledged(consumer).ok()?,
            from_producer: unread(producer).ok()?,
        })
    }
}

/// `SIOCOUTQ`: bytes in the socket's send queue not yet acknowledged by the peer.
pub fn unacknowledged(socket: &Socket) -> io::Result<u64> {
    queue_level(socket, libc::TIOCOUTQ)
}

/// `SIOCINQ`: bytes received on the socket and not yet read.
pub fn unread(socket: &Socket) -> io::Result<u64> {
    queue_level(socket, libc::FIONREAD)
}

/// `SIOCOUTQNSD`: bytes in the socket's send queue not sent yet, which on loopback
/// means the peer's window has no room for them.
pub fn unsent(socket: &Socket) -> io::Result<u64> {
    queue_level(socket, libc::SIOCOUTQNSD as libc::Ioctl)
}

fn queue_level(socket: &Socket, request: libc::Ioctl) -> io::Result<u64> {
    let mut level: libc::c_int = 0;
    // SAFETY: both requests write one int through the pointer, which is valid for
    // the duration of the call; the descriptor belongs to `socket`, alive here.
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), request, &mut level) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(u64::try_from(level).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    /// Polls `level` until it gives `want` (loopback delivers and acknowledges
    /// within moments, but not within the write call), failing after a second.
    fn settles(want: u64, level: impl Fn() -> u64) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        let mut got = level();
        while got != want && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
            got = level();
        }
        assert_eq!(got, want);
    }

    #[test]
    fn levels_of_a_loopback_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut sender = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (receiver, _) = listener.accept().unwrap();
        let receiver = Socket::from(receiver);
        sender.write_all(&[7; 1000]).unwrap();
        settles(1000, || unread(&receiver).unwrap());
        let sender = Socket::from(sender);
        settles(0, || unacknowledged(&sender).unwrap());
        let mut buf = [0; 400];
        (&receiver).read_exact(&mut buf).unwrap();
        assert_eq!(unread(&receiver).unwrap(), 600);
        let both = Queues::of(&receiver, &sender).unwrap();
        assert_eq!(
            both,
            Queues {
                to_consumer: 0,
                from_producer: 600
            }
        );
    }
}
