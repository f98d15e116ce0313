//! The player's connection to the live peer: TCP, TLS over TCP, or a UNIX socket.
//!
//! It answers the calls the player makes on a `TcpStream` (timeouts, blocking or
//! not, peek, read, write, shutting the write side), so the player does not care
//! which it is. Underneath it is the relay's `Stream`: the bytes read, written and
//! peeked at are plaintext, and shutting the write side of a TLS connection sends a
//! close_notify first. A reset (a zero linger time) is a RST for TCP and TLS; a UNIX
//! socket has none, and its peer sees the end of the stream.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use crate::relay::stream::Stream;
use crate::relay::unix;

pub struct PeerSocket(Stream);

impl PeerSocket {
    pub fn new(stream: Stream) -> PeerSocket {
        PeerSocket(stream)
    }

    /// Nagle off, for TCP; a UNIX socket has no such thing.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        if unix::is_unix(self.0.socket()) {
            return Ok(());
        }
        self.0.socket().set_tcp_nodelay(on)
    }

    pub fn set_read_timeout(&self, limit: Option<Duration>) -> io::Result<()> {
        self.0.socket().set_read_timeout(limit)
    }

    pub fn set_write_timeout(&self, limit: Option<Duration>) -> io::Result<()> {
        self.0.socket().set_write_timeout(limit)
    }

    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.0.socket().set_nonblocking(on)
    }

    /// What the peer sent and was not read yet, left to read.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.peek(buf)
    }

    /// `Shutdown::Write` ends our stream (with a close_notify first, for TLS).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match how {
            Shutdown::Write => self.0.shutdown_write(),
            other => self.0.socket().shutdown(other),
        }
    }

    /// Our address and the peer's; `None` for a UNIX socket.
    pub fn addrs(&self) -> Option<(SocketAddr, SocketAddr)> {
        let socket = self.0.socket();
        let ours = socket.local_addr().ok()?.as_socket()?;
        Some((ours, socket.peer_addr().ok()?.as_socket()?))
    }

    /// How the peer is reached when not by plain TCP (see `Stream::transport`).
    pub fn transport(&self) -> Option<String> {
        self.0.transport()
    }
}

impl Read for PeerSocket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.0).read(buf)
    }
}

impl Write for PeerSocket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.send(buf, true)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// For the zero linger time of a reset.
impl AsFd for PeerSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.socket().as_fd()
    }
}
