//! The built-in peers: a server B and clients A, plain sockets on loopback.
//!
//! Each waits for what it can see itself: bytes that arrive, the end of a stream,
//! the level of its own kernel queues (the ioctls `--kernel-queues` uses). Every
//! wait has a deadline, so a demo that goes wrong ends with a message instead of
//! hanging.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use socket2::{Domain, SockRef, Socket, Type};

use crate::demo::child::DEADLINE;
use crate::error::Error;
use crate::relay::kernel_queues;

/// What went wrong with a peer, as the demo reports it.
pub(crate) fn failed(who: &str, what: &str, error: io::Error) -> Error {
    Error::Demo(format!("{who} could not {what}: {error}"))
}

/// B's listening socket on a free loopback port. With `receive_buffer`, it asks for
/// that SO_RCVBUF before it listens, so that the connections it accepts inherit it.
pub(crate) fn listen(receive_buffer: Option<usize>) -> Result<TcpListener, Error> {
    let open = || -> io::Result<TcpListener> {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
        if let Some(size) = receive_buffer {
            socket.set_recv_buffer_size(size)?;
        }
        socket.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())?;
        socket.listen(16)?;
        Ok(socket.into())
    };
    open().map_err(|e| failed("B", "listen", e))
}

/// The port `listener` got.
pub(crate) fn port(listener: &TcpListener) -> Result<u16, Error> {
    Ok(listener
        .local_addr()
        .map_err(|e| failed("B", "find its port", e))?
        .port())
}

/// B accepts the relay's connection, waiting at most the deadline.
pub(crate) fn accept(listener: &TcpListener) -> Result<TcpStream, Error> {
    let accepted = || -> io::Result<TcpStream> {
        listener.set_nonblocking(true)?;
        let deadline = Instant::now() + DEADLINE;
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false)?;
                    return prepared(stream);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(2));
                }
                Err(e) => return Err(e),
            }
        }
    };
    accepted().map_err(|e| failed("B", "accept the relay's connection", e))
}

/// A connects to the relay on `port`. With `send_buffer`, A asks for that SO_SNDBUF
/// first (the kernel would otherwise let A's own queue grow to megabytes).
pub(crate) fn connect(port: u16, send_buffer: Option<usize>) -> Result<TcpStream, Error> {
    let connected = || -> io::Result<TcpStream> {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
        if let Some(size) = send_buffer {
            socket.set_send_buffer_size(size)?;
        }
        socket.connect_timeout(
            &SocketAddr::from((Ipv4Addr::LOCALHOST, port)).into(),
            DEADLINE,
        )?;
        prepared(socket.into())
    };
    connected().map_err(|e| failed("A", "connect to the relay", e))
}

/// Bounds every blocking call on `stream` by the deadline.
fn prepared(stream: TcpStream) -> io::Result<TcpStream> {
    stream.set_read_timeout(Some(DEADLINE))?;
    stream.set_write_timeout(Some(DEADLINE))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// `who` sends all of `bytes`.
pub(crate) fn send(who: &str, mut stream: &TcpStream, bytes: &[u8]) -> Result<(), Error> {
    stream.write_all(bytes).map_err(|e| failed(who, "send", e))
}

/// `who` reads exactly `n` bytes.
pub(crate) fn receive(who: &str, mut stream: &TcpStream, n: usize) -> Result<Vec<u8>, Error> {
    let mut bytes = vec![0; n];
    stream
        .read_exact(&mut bytes)
        .map_err(|e| failed(who, &format!("receive {n} bytes"), e))?;
    Ok(bytes)
}

/// `who` reads exactly `bytes`: what its peer sent, relayed unchanged.
pub(crate) fn expect(who: &str, stream: &TcpStream, bytes: &[u8]) -> Result<(), Error> {
    if receive(who, stream, bytes.len())? == bytes {
        Ok(())
    } else {
        Err(Error::Demo(format!("{who} got other bytes than were sent")))
    }
}

/// `who` reads the end of the stream: nothing more comes.
pub(crate) fn receive_end(who: &str, mut stream: &TcpStream) -> Result<(), Error> {
    let mut rest = [0; 1];
    match stream.read(&mut rest) {
        Ok(0) => Ok(()),
        Ok(_) => Err(Error::Demo(format!("{who} got bytes instead of the end"))),
        Err(e) => Err(failed(who, "read the end of the stream", e)),
    }
}

/// `who` shuts down its sending side: a FIN follows its last bytes.
pub(crate) fn shutdown(who: &str, stream: &TcpStream) -> Result<(), Error> {
    stream
        .shutdown(Shutdown::Write)
        .map_err(|e| failed(who, "shut down its side", e))
}

/// Bytes received by `stream`'s kernel that its program has not read (SIOCINQ).
pub(crate) fn unread(stream: &TcpStream) -> u64 {
    kernel_queues::unread(&SockRef::from(stream)).unwrap_or(0)
}

/// Bytes `stream` sent that the peer's kernel has not acknowledged (SIOCOUTQ).
pub(crate) fn unacknowledged(stream: &TcpStream) -> u64 {
    kernel_queues::unacknowledged(&SockRef::from(stream)).unwrap_or(0)
}

/// Bytes `stream` could not send yet: the peer's window has no room (SIOCOUTQNSD).
pub(crate) fn unsent(stream: &TcpStream) -> u64 {
    kernel_queues::unsent(&SockRef::from(stream)).unwrap_or(0)
}

/// Waits until `stream` may be written to again, or the deadline.
pub(crate) fn writable(stream: &TcpStream) -> Result<(), Error> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let mut fds = [PollFd::new(stream.as_fd(), PollFlags::POLLOUT)];
    let timeout = PollTimeout::try_from(DEADLINE).unwrap_or(PollTimeout::MAX);
    match poll(&mut fds, timeout) {
        Ok(0) => Err(Error::Demo("A could not send for too long".into())),
        Ok(_) => Ok(()),
        Err(errno) => Err(failed("A", "wait to send", io::Error::from(errno))),
    }
}

/// Polls `level` until it gives `want`: a kernel queue settles within moments on
/// loopback, but not always within the call that moved the bytes.
pub(crate) fn settles(what: &str, want: u64, level: impl Fn() -> u64) -> Result<(), Error> {
    let deadline = Instant::now() + DEADLINE;
    let mut got = level();
    while got != want {
        if Instant::now() >= deadline {
            return Err(Error::Demo(format!("{what} stayed at {got}, not {want}")));
        }
        thread::sleep(Duration::from_millis(1));
        got = level();
    }
    Ok(())
}
