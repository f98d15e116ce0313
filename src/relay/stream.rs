//! One side's connection as the relay threads use it: a socket, plain or with TLS.
//!
//! A plain socket (TCP or UNIX) is read and written directly. A TLS one is read and
//! written by two threads at once (its direction's reader, and the other
//! direction's writer) which share one `rustls` connection, so that state sits
//! behind a lock, and **no lock is held across a blocking socket call**:
//!
//! - the reader takes the lock only to hand ciphertext it has already received to
//!   rustls and to take the plaintext out; it receives from the socket with the
//!   lock released. So a read that blocks waiting for the peer never holds up a
//!   write.
//! - the writer takes the lock only to encrypt: plaintext in, the records to send
//!   out into a buffer of its own; it sends them with the lock released. Only the
//!   writer ever sends on a TLS socket (the reader's cut-through is off for a TLS
//!   consumer), so records leave in the order they were sealed. Whatever rustls
//!   wants to say on its own (a key update the peer asked for, an alert) goes out
//!   with the writer's next records, as TLS 1.3 allows.
//! - the writer's end of stream is a close_notify, then the TCP write side shut
//!   down; the reader sees the peer's close_notify (or a bare TCP FIN, taken as the
//!   end too) as the end of the stream. A bare FIN is passed on as a bare FIN: the
//!   relay does not make an unclean end look clean.
//!
//! A stop shuts the socket down, which wakes a blocked receive or send as it does
//! for a plain socket. The bytes the relay counts, shows and captures are plaintext;
//! the kernel's queues of a TLS socket hold ciphertext.

use std::io::{self, BufRead, Read};
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use nix::sys::socket::MsgFlags;
use socket2::Socket;

/// The largest TLS record on the wire: 16 KiB of payload and its overhead.
const RECORD: usize = 16 * 1024 + 512;

/// Plaintext sealed per lock: one record's worth, so the lock is held briefly.
const SEAL: usize = 16 * 1024;

/// One side's connection.
pub struct Stream {
    socket: Arc<Socket>,
    tls: Option<Tls>,
}

struct Tls {
    state: Mutex<rustls::Connection>,
    /// The peer ended its stream with a bare TCP FIN, no close_notify.
    ended_bare: AtomicBool,
    /// Ciphertext received and not yet taken by rustls. Only the reader uses it;
    /// the lock is never contended.
    inbox: Mutex<Inbox>,
}

#[derive(Default)]
struct Inbox {
    bytes: Vec<u8>,
    start: usize,
}

impl Stream {
    pub fn plain(socket: Arc<Socket>) -> Stream {
        Stream { socket, tls: None }
    }

    /// A TLS connection whose handshake is done (see `handshake`).
    pub fn tls(socket: Arc<Socket>, state: rustls::Connection) -> Stream {
        Stream {
            socket,
            tls: Some(Tls {
                state: Mutex::new(state),
                ended_bare: AtomicBool::new(false),
                inbox: Mutex::new(Inbox::default()),
            }),
        }
    }

    pub fn socket(&self) -> &Arc<Socket> {
        &self.socket
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Sends plaintext; how much was taken. `wait` false: never block (plain
    /// sockets only: the cut-through is off for TLS).
    pub fn send(&self, bytes: &[u8], wait: bool) -> io::Result<usize> {
        let Some(tls) = &self.tls else {
            let flags = if wait { 0 } else { libc::MSG_DONTWAIT };
            return self.socket.send_with_flags(bytes, flags);
        };
        let mut sealed = Vec::with_capacity(RECORD);
        let taken = {
            let mut state = lock(&tls.state);
            let taken = io::Write::write(&mut state.writer(), &bytes[..bytes.len().min(SEAL)])?;
            drain(&mut state, &mut sealed)?;
            taken
        };
        self.send_all(&sealed)?;
        Ok(taken)
    }

    /// Ends this side's stream: a close_notify for TLS, then the write side shut.
    pub fn shutdown_write(&self) -> io::Result<()> {
        if let Some(tls) = &self.tls {
            let mut sealed = Vec::new();
            {
                let mut state = lock(&tls.state);
                state.send_close_notify();
                drain(&mut state, &mut sealed)?;
            }
            // A peer already gone cannot be told: as for a plain socket, whose
            // shutdown then says "not connected" (see the writer's shutdown).
            self.send_all(&sealed).map_err(|e| match e.raw_os_error() {
                Some(libc::EPIPE | libc::ECONNRESET) => io::ErrorKind::NotConnected.into(),
                _ => e,
            })?;
        }
        self.socket.shutdown(Shutdown::Write)
    }

    /// Ends this side's stream as `producer`'s ended: a TLS peer that sent no
    /// close_notify gets none passed on either, only the FIN, so the consumer sees
    /// the same unclean end it would see from that peer itself.
    pub fn pass_end_on(&self, producer: &Stream) -> io::Result<()> {
        let bare = producer
            .tls
            .as_ref()
            .is_some_and(|tls| tls.ended_bare.load(Ordering::Acquire));
        if bare {
            return self.socket.shutdown(Shutdown::Write);
        }
        self.shutdown_write()
    }

    fn send_all(&self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            match self.socket.send(bytes) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Copies plaintext that has come into `buf` without taking it, blocking until
    /// some comes (as `recv`, and as a socket's `MSG_PEEK`); 0 at the end of the
    /// stream.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(tls) = &self.tls else {
            return nix::sys::socket::recv(self.socket.as_raw_fd(), buf, MsgFlags::MSG_PEEK)
                .map_err(io::Error::from);
        };
        self.receive(tls, buf, Take::Peek)
    }

    /// Receives plaintext, blocking until some comes; 0 at the end of the stream.
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(tls) = &self.tls else {
            return (&*self.socket).read(buf);
        };
        self.receive(tls, buf, Take::Read)
    }

    fn receive(&self, tls: &Tls, buf: &mut [u8], take: Take) -> io::Result<usize> {
        let mut inbox = lock(&tls.inbox);
        loop {
            if let Some(n) = take_plaintext(&mut lock(&tls.state), &mut inbox, buf, take)? {
                return Ok(n);
            }
            // Nothing to decrypt: receive more ciphertext, with the state unlocked.
            inbox.bytes.resize(RECORD, 0);
            inbox.start = 0;
            let received = loop {
                match (&*self.socket).read(&mut inbox.bytes) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    other => break other,
                }
            };
            // A receive that timed out (or would block) leaves the inbox empty, not
            // full of zeros the next call would take for ciphertext.
            let n = received.inspect_err(|_| inbox.bytes.clear())?;
            inbox.bytes.truncate(n);
            if n == 0 {
                // The TCP stream ended: rustls is told, and says whether a
                // close_notify came first.
                let mut state = lock(&tls.state);
                state.read_tls(&mut io::empty())?;
                return match take.from(&mut state.reader(), buf) {
                    Ok(n) => Ok(n),
                    // A peer that just closes the TCP connection (many do) ends the
                    // stream all the same; the relay passes on what it said, and
                    // then its end as it came (see `pass_end_on`).
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        tls.ended_bare.store(true, Ordering::Release);
                        Ok(0)
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
                    Err(e) => Err(e),
                };
            }
        }
    }

    /// Completes the handshake, blocking for at most `limit` between two steps.
    pub fn handshake(
        socket: &Socket,
        state: &mut rustls::Connection,
        limit: Duration,
    ) -> io::Result<()> {
        socket.set_read_timeout(Some(limit))?;
        socket.set_write_timeout(Some(limit))?;
        let mut io = SocketIo(socket);
        while state.is_handshaking() {
            state.complete_io(&mut io).map_err(tls_error)?;
        }
        // Flush what the handshake's end left to send (a client's Finished).
        while state.wants_write() {
            state.write_tls(&mut io).map_err(tls_error)?;
        }
        socket.set_read_timeout(None)?;
        socket.set_write_timeout(None)
    }

    /// Reads a TLS client's ClientHello, blocking for at most `limit` between two
    /// receives: what it offers (ALPN) is then known before the server answers.
    pub fn client_hello(socket: &Socket, limit: Duration) -> io::Result<rustls::server::Accepted> {
        socket.set_read_timeout(Some(limit))?;
        socket.set_write_timeout(Some(limit))?;
        let mut acceptor = rustls::server::Acceptor::default();
        let mut io = SocketIo(socket);
        loop {
            if acceptor.read_tls(&mut io).map_err(tls_error)? == 0 {
                return Err(tls_error(io::ErrorKind::UnexpectedEof.into()));
            }
            match acceptor.accept() {
                Ok(Some(accepted)) => return Ok(accepted),
                Ok(None) => {}
                Err((error, mut alert)) => {
                    // The client is told why, if it can still hear it.
                    let _ = alert.write_all(&mut io);
                    return Err(tls_error(io::Error::new(io::ErrorKind::InvalidData, error)));
                }
            }
        }
    }

    /// Answers the ClientHello `client_hello` read, with `config`, and completes
    /// the handshake (see `handshake`).
    pub fn answer_client_hello(
        socket: &Socket,
        hello: rustls::server::Accepted,
        config: Arc<rustls::ServerConfig>,
        limit: Duration,
    ) -> io::Result<rustls::Connection> {
        let mut state = match hello.into_connection(config) {
            Ok(state) => state.into(),
            Err((error, mut alert)) => {
                let _ = alert.write_all(&mut SocketIo(socket));
                return Err(tls_error(io::Error::new(io::ErrorKind::InvalidData, error)));
            }
        };
        Stream::handshake(socket, &mut state, limit)?;
        Ok(state)
    }

    /// The protocol ALPN chose, if any.
    pub fn alpn(&self) -> Option<Vec<u8>> {
        lock(&self.tls.as_ref()?.state)
            .alpn_protocol()
            .map(<[u8]>::to_vec)
    }

    /// How this side is reached when it is not plain TCP, for the capture:
    /// `TLS (TLSv1_3, TLS13_AES_256_GCM_SHA384)`, `UNIX socket unix:/run/x.sock`.
    pub fn transport(&self) -> Option<String> {
        if let Some(summary) = self.tls_summary() {
            return Some(format!("TLS ({summary})"));
        }
        crate::relay::unix::name_of(&self.socket).map(|name| format!("UNIX socket {name}"))
    }

    /// The negotiated version and cipher suite, for the start-up line.
    pub fn tls_summary(&self) -> Option<String> {
        tls_summary(&lock(&self.tls.as_ref()?.state))
    }
}

/// A connection's TLS version and cipher suite: `TLSv1_3, TLS13_AES_256_GCM_SHA384`.
pub fn tls_summary(state: &rustls::Connection) -> Option<String> {
    let version = state.protocol_version()?;
    let suite = state.negotiated_cipher_suite()?;
    let mut summary = format!("{version:?}, {:?}", suite.suite());
    if let Some(protocol) = state.alpn_protocol() {
        summary += &format!(", ALPN {}", String::from_utf8_lossy(protocol));
    }
    Some(summary)
}

/// Feeds what waits in the inbox to rustls and takes plaintext out, until there is
/// some or the inbox is empty; `None` when more ciphertext is needed.
fn take_plaintext(
    state: &mut rustls::Connection,
    inbox: &mut Inbox,
    buf: &mut [u8],
    take: Take,
) -> io::Result<Option<usize>> {
    loop {
        match take.from(&mut state.reader(), buf) {
            Ok(n) => return Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        if inbox.start == inbox.bytes.len() {
            return Ok(None);
        }
        let mut rest = &inbox.bytes[inbox.start..];
        let taken = state.read_tls(&mut rest)?;
        inbox.start += taken;
        if let Err(e) = state.process_new_packets() {
            return Err(tls_error(io::Error::new(io::ErrorKind::InvalidData, e)));
        }
    }
}

/// What a receive does with the plaintext: takes it, or only copies it.
#[derive(Clone, Copy)]
enum Take {
    Read,
    Peek,
}

impl Take {
    fn from(self, reader: &mut rustls::Reader, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Take::Read => reader.read(buf),
            Take::Peek => {
                let ready = reader.fill_buf()?;
                let n = ready.len().min(buf.len());
                buf[..n].copy_from_slice(&ready[..n]);
                Ok(n)
            }
        }
    }
}

/// Takes every record rustls has sealed into `out`.
fn drain(state: &mut rustls::Connection, out: &mut Vec<u8>) -> io::Result<()> {
    while state.wants_write() {
        state.write_tls(out)?;
    }
    Ok(())
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A TLS failure as the messages show it: `TLS: <what rustls said>`. A timeout or a
/// socket error stays as the OS said it.
pub fn tls_error(error: io::Error) -> io::Error {
    if error.raw_os_error().is_some() {
        return error;
    }
    if matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    ) {
        return io::Error::new(io::ErrorKind::TimedOut, "TLS: the handshake timed out");
    }
    if error.kind() == io::ErrorKind::UnexpectedEof {
        return io::Error::other("TLS: the peer closed the connection during the handshake");
    }
    match error.get_ref() {
        Some(inner) => io::Error::other(format!("TLS: {inner}")),
        None => io::Error::other(format!("TLS: {error}")),
    }
}

/// `&Socket` as the `Read + Write` rustls drives its handshake with.
struct SocketIo<'a>(&'a Socket);

impl io::Read for SocketIo<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self.0).read(buf)
    }
}

impl io::Write for SocketIo<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.send(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};
    use std::sync::mpsc;
    use std::thread;

    const LIMIT: Duration = Duration::from_secs(10);

    /// A TLS connection over loopback: (client side, server side), handshakes done.
    fn tls_pair() -> (Stream, Stream) {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let key =
            rustls::pki_types::PrivateKeyDer::try_from(made.key_pair.serialize_der()).unwrap();
        let server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![made.cert.der().clone()], key)
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(made.cert.der().clone()).unwrap();
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let tcp = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        let server_side = thread::spawn(move || {
            let socket = Socket::from(accepted);
            let mut state = rustls::ServerConnection::new(Arc::new(server))
                .unwrap()
                .into();
            Stream::handshake(&socket, &mut state, LIMIT).unwrap();
            Stream::tls(Arc::new(socket), state)
        });
        let socket = Socket::from(tcp);
        let name = "localhost".try_into().unwrap();
        let mut state = rustls::ClientConnection::new(Arc::new(client), name)
            .unwrap()
            .into();
        Stream::handshake(&socket, &mut state, LIMIT).unwrap();
        (
            Stream::tls(Arc::new(socket), state),
            server_side.join().unwrap(),
        )
    }

    fn read_some(stream: &Stream) -> Vec<u8> {
        let mut buf = [0; 100];
        let n = (&*stream).read(&mut buf).unwrap();
        buf[..n].to_vec()
    }

    #[test]
    fn a_blocked_read_does_not_hold_up_a_write_on_the_same_connection() {
        let (a, b) = tls_pair();
        let (a, b) = (Arc::new(a), Arc::new(b));
        let (got, reads) = mpsc::channel();
        let reader = {
            let a = a.clone();
            // Blocks in `recv`: b sends nothing yet.
            thread::spawn(move || got.send(read_some(&a)).unwrap())
        };
        // Meanwhile a's other half writes, and b reads it.
        assert_eq!(a.send(b"ping", true).unwrap(), 4);
        assert_eq!(read_some(&b), b"ping");
        assert!(
            reads.try_recv().is_err(),
            "the reader saw bytes nobody sent"
        );
        assert_eq!(b.send(b"pong", true).unwrap(), 4);
        assert_eq!(reads.recv_timeout(LIMIT).unwrap(), b"pong");
        reader.join().unwrap();
    }

    #[test]
    fn close_notify_is_a_half_close() {
        let (a, b) = tls_pair();
        a.shutdown_write().unwrap();
        assert_eq!(read_some(&b), b"");
        // The other way still flows.
        let big = vec![7u8; 100_000];
        let sender = thread::spawn(move || {
            let mut done = 0;
            while done < big.len() {
                done += b.send(&big[done..], true).unwrap();
            }
            b.shutdown_write().unwrap();
        });
        let mut all = Vec::new();
        let mut buf = [0; 4096];
        loop {
            match (&a).read(&mut buf).unwrap() {
                0 => break,
                n => all.extend_from_slice(&buf[..n]),
            }
        }
        sender.join().unwrap();
        assert_eq!(all, vec![7u8; 100_000]);
    }

    #[test]
    fn a_peek_leaves_the_plaintext_to_read_and_a_timed_out_read_loses_nothing() {
        let (a, b) = tls_pair();
        a.socket()
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let mut buf = [0; 100];
        assert!((&a).read(&mut buf).is_err(), "nothing was sent yet");
        assert_eq!(b.send(b"ping", true).unwrap(), 4);
        a.socket().set_read_timeout(Some(LIMIT)).unwrap();
        let n = a.peek(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"ping");
        assert_eq!(read_some(&a), b"ping");
        b.shutdown_write().unwrap();
        assert_eq!(a.peek(&mut buf).unwrap(), 0);
        assert_eq!(read_some(&a), b"");
    }
}
