//! Setting up the two connections, in the original's order: B first, then A.
//!
//! B is dialled first so that a missing server is reported before anyone connects
//! to us. Socket buffer sizes (`-z`) are set before `connect` and before `listen`,
//! because the kernel fixes the TCP window scale during the handshake: a size set
//! afterwards could not grow the window any more. The accepted socket inherits the
//! listener's sizes.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use crossbeam_channel::Receiver;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// The original retries B this many times, a second apart.
const CONNECT_TRIES: u32 = 3;
const CONNECT_RETRY_PAUSE: Duration = Duration::from_secs(1);
/// A B that never answers (filtered, backlog full) fails a try after this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// `-z`: SO_SNDBUF and SO_RCVBUF, or the kernel's defaults.
pub type SocketBuffers = Option<(usize, usize)>;

fn new_socket(addr: &SocketAddr, buffers: SocketBuffers) -> io::Result<Socket> {
    let socket = Socket::new(
        Domain::for_address(*addr),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    if let Some((snd, rcv)) = buffers {
        socket.set_send_buffer_size(snd)?;
        socket.set_recv_buffer_size(rcv)?;
    }
    Ok(socket)
}

/// Connects to B: every resolved address in turn, the whole list up to three times,
/// a second apart. Gives the socket and the address it reached (what the capture
/// shows as B). The error is the last one the OS gave. `stop` cuts the pauses short.
pub fn connect(
    addrs: &[SocketAddr],
    buffers: SocketBuffers,
    stop: &Receiver<()>,
) -> io::Result<(Socket, SocketAddr)> {
    let mut last = io::Error::new(io::ErrorKind::AddrNotAvailable, "no address to connect to");
    for attempt in 0..CONNECT_TRIES {
        if attempt > 0
            && stop
                .recv_timeout(CONNECT_RETRY_PAUSE)
                .is_err_and(|e| e.is_disconnected())
        {
            break;
        }
        for addr in addrs {
            match new_socket(addr, buffers).and_then(|s| {
                s.connect_timeout(&SockAddr::from(*addr), CONNECT_TIMEOUT)
                    .map(|()| s)
            }) {
                Ok(socket) => return Ok((socket, *addr)),
                Err(e) => last = as_os_error(e),
            }
        }
    }
    Err(last)
}

/// socket2 reports a connect that outlives its timeout as a bare `TimedOut`, which
/// prints as "timed out"; the kernel's own ETIMEDOUT reads "Connection timed out", as
/// the original's perror says it and as a user searching for it expects.
fn as_os_error(error: io::Error) -> io::Error {
    if error.kind() == io::ErrorKind::TimedOut && error.raw_os_error().is_none() {
        io::Error::from_raw_os_error(libc::ETIMEDOUT)
    } else {
        error
    }
}

/// Binds and listens where A will connect (SO_REUSEADDR, so a quick restart works),
/// trying each resolved address until one binds. One A only: a backlog of one.
pub fn listen(addrs: &[SocketAddr], buffers: SocketBuffers) -> io::Result<Socket> {
    listen_with_backlog(addrs, buffers, 1)
}

/// As `listen`, with room for `backlog` clients waiting to be accepted (`-k`).
pub fn listen_with_backlog(
    addrs: &[SocketAddr],
    buffers: SocketBuffers,
    backlog: i32,
) -> io::Result<Socket> {
    let mut last = io::Error::new(io::ErrorKind::AddrNotAvailable, "no address to listen on");
    for addr in addrs {
        let bound = new_socket(addr, buffers).and_then(|socket| {
            socket.set_reuse_address(true)?;
            socket.bind(&SockAddr::from(*addr))?;
            socket.listen(backlog)?;
            Ok(socket)
        });
        match bound {
            Ok(socket) => return Ok(socket),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Waits for A on `listener`, retrying system calls interrupted by a stop/continue.
/// Gives the socket and A's address, if the OS told it (it always does for TCP).
pub fn accept(listener: &Socket) -> io::Result<(Socket, Option<SocketAddr>)> {
    loop {
        match listener.accept() {
            Ok((socket, addr)) => return Ok((socket, addr.as_socket())),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// As `accept`, but gives up with `TimedOut` when nobody connects within `limit`
/// (a replay in CI must not wait forever for a client that failed to start).
pub fn accept_within(listener: &Socket, limit: Duration) -> io::Result<Socket> {
    use nix::errno::Errno;
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let deadline = std::time::Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, timeout) {
            Ok(0) => return Err(io::Error::from_raw_os_error(libc::ETIMEDOUT)),
            Ok(_) => return accept(listener).map(|(socket, _)| socket),
            Err(Errno::EINTR) => {}
            Err(errno) => return Err(errno.into()),
        }
    }
}

/// The port a socket is bound to (what `-A host:0` turned into).
pub fn local_port(socket: &Socket) -> Option<u16> {
    socket.local_addr().ok()?.as_socket().map(|a| a.port())
}

/// Resets a connected socket: the peer gets an RST ("Connection reset by peer") and
/// whatever it had not acknowledged is thrown away.
///
/// The usual way, SO_LINGER 0 and `close`, would free the descriptor while the
/// other direction's threads still use it (and the number could be reused for
/// another socket under them). `connect` with the address family AF_UNSPEC
/// disconnects a TCP socket instead: Linux resets an established connection and
/// leaves the descriptor valid, so the other threads just see it reset.
///
/// A UNIX socket has no reset: it is shut down both ways instead, which its peer
/// sees as the end of the stream.
pub fn reset(socket: &Socket) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    if crate::relay::unix::is_unix(socket) {
        return socket.shutdown(std::net::Shutdown::Both);
    }
    // SAFETY: an all-zero sockaddr is a valid AF_UNSPEC address (AF_UNSPEC is 0);
    // the pointer and length describe it for the duration of the call.
    let unspecified: libc::sockaddr = unsafe { std::mem::zeroed() };
    let len = std::mem::size_of::<libc::sockaddr>() as libc::socklen_t;
    let rc = unsafe { libc::connect(socket.as_raw_fd(), &unspecified, len) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Options for a relayed connection: every chunk goes out as soon as it is written
/// (Nagle would hold small chunks back and distort what each side sees), and blocking
/// I/O, which is what the relay threads do. A UNIX socket has no Nagle to turn off.
pub fn prepare_relay_socket(socket: &Socket) -> io::Result<()> {
    socket.set_nonblocking(false)?;
    if crate::relay::unix::is_unix(socket) {
        return Ok(());
    }
    socket.set_tcp_nodelay(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connect_timeout_reads_as_the_os_says_it() {
        let error = as_os_error(io::ErrorKind::TimedOut.into());
        assert_eq!(
            crate::error::Error::Connect(error).to_string(),
            "Establish a connection to the destination failed: Connection timed out"
        );
        let refused = as_os_error(io::Error::from_raw_os_error(libc::ECONNREFUSED));
        assert_eq!(refused.raw_os_error(), Some(libc::ECONNREFUSED));
    }
}
