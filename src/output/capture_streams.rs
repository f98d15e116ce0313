//! `-w`: the logger's capture output, one file with a TCP stream for each connection.
//!
//! Each connection's stream is a `Capture` of its own, whose handshake is written
//! when the connection opens; the first stream writes the file header too. Without
//! `-k` the one connection owns the file; with `-k` the streams share it.
//!
//! A file that failed once is broken: whatever follows a partly written packet is
//! garbage to a reader, so no stream writes to it any more, and the failure is
//! reported once, not once a connection.

use std::fs::File;
use std::io::{self, IoSlice, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use crate::capture::Format;
use crate::capture::gather::GatherWriter;
use crate::output::capture::{Capture, Connection};
use crate::output::sink::{Conn, ConnMap, Failures, Output, output_failed};
use crate::relay::event::{Closing, Event, Opening};
use crate::relay::kernel_queues::Queues;

pub(crate) struct CaptureStreams {
    what: String,
    format: Format,
    /// `-k`: the streams share the file.
    pub(crate) shared: bool,
    /// The file, until the first stream takes it (or, with `-k`, shares it).
    file: Option<GatherWriter<File>>,
    /// `-k`: the file, shared by every connection's stream.
    shared_file: Option<SharedFile>,
    /// Whether the file header is written (by the first connection's stream).
    started: bool,
    /// Writing it failed once: no stream writes to it any more.
    broken: bool,
    /// Each open connection's stream.
    streams: ConnMap<Capture<CaptureOut>>,
}

impl CaptureStreams {
    /// Into `file`, named `what` in messages.
    pub(crate) fn new(what: impl Into<String>, file: GatherWriter<File>, format: Format) -> Self {
        CaptureStreams {
            what: what.into(),
            format,
            shared: false,
            file: Some(file),
            shared_file: None,
            started: false,
            broken: false,
            streams: ConnMap::default(),
        }
    }

    /// Where the next stream writes: the file itself, or with `-k` its share of it.
    fn out(&mut self) -> Option<CaptureOut> {
        if !self.shared {
            return self.file.take().map(CaptureOut::Own);
        }
        if let Some(file) = self.file.take() {
            self.shared_file = Some(SharedFile(Arc::new(Mutex::new(file))));
        }
        self.shared_file.clone().map(CaptureOut::Shared)
    }

    /// Reports the file broken by `result`'s failure; then no stream writes to it.
    fn check(&mut self, result: io::Result<()>, failures: &mut Failures) {
        if let Err(source) = result {
            output_failed(self.what.clone(), source, failures);
            self.broken = true;
            self.streams.clear();
        }
    }
}

impl Output for CaptureStreams {
    fn watches_chunks(&self) -> bool {
        true
    }

    /// Starts the connection's stream with its handshake.
    fn open(&mut self, conn: &Conn, opening: &mut Opening, failures: &mut Failures) {
        if self.broken {
            return;
        }
        let Some(out) = self.out() else {
            return;
        };
        let (a, b) = stand_ins(conn.id, opening.a, opening.b);
        let mut connection = Connection::new(a, b, opening.at);
        connection.transports = opening.transports.clone();
        let started = if self.started {
            Capture::continuing(out, self.format, connection)
        } else {
            Capture::new(out, self.format, connection)
        };
        self.started = true;
        match started {
            Ok(stream) => {
                self.streams.insert(conn.id, stream);
            }
            Err(source) => self.check(Err(source), failures),
        }
    }

    fn event(&mut self, conn: &Conn, event: &Event, _: Option<Queues>, failures: &mut Failures) {
        if let Some(stream) = self.streams.get_mut(&conn.id) {
            let result = stream.record(event);
            self.check(result, failures);
        }
    }

    fn close(&mut self, conn: &Conn, closing: &Closing, failures: &mut Failures) {
        if let Some(mut stream) = self.streams.remove(&conn.id) {
            // A byte still held back is shown: the stream holds every byte.
            let result = stream.finish(closing.at).and_then(|()| stream.flush());
            self.check(result, failures);
        }
    }

    fn flush(&mut self, failures: &mut Failures) {
        // (With -k each stream flushes the shared file: a few flushes a batch.)
        let result = self
            .streams
            .values_mut()
            .try_for_each(|stream| stream.flush());
        self.check(result, failures);
    }
}

/// Where a connection's capture stream writes.
pub(crate) enum CaptureOut {
    /// Without `-k` there is one connection, which owns the file: no lock per write.
    Own(GatherWriter<File>),
    /// With `-k` the connections share it.
    Shared(SharedFile),
}

impl Write for CaptureOut {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            CaptureOut::Own(out) => out.write(bytes),
            CaptureOut::Shared(out) => out.write(bytes),
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            CaptureOut::Own(out) => out.write_all(bytes),
            CaptureOut::Shared(out) => out.write_all(bytes),
        }
    }

    /// Passed on whole: the file's `GatherWriter` takes a packet's parts in one go.
    fn write_vectored(&mut self, parts: &[IoSlice]) -> io::Result<usize> {
        match self {
            CaptureOut::Own(out) => out.write_vectored(parts),
            CaptureOut::Shared(out) => out.write_vectored(parts),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            CaptureOut::Own(out) => out.flush(),
            CaptureOut::Shared(out) => out.flush(),
        }
    }
}

/// One buffered file written by several owners, all on the logger's thread: the
/// lock is never contended, it only makes the sharing safe to hand over to it.
#[derive(Clone)]
pub(crate) struct SharedFile(Arc<Mutex<GatherWriter<File>>>);

impl Write for SharedFile {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .write(bytes)
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .write_all(bytes)
    }

    fn write_vectored(&mut self, parts: &[IoSlice]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .write_vectored(parts)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .flush()
    }
}

/// The addresses the capture shows for A and B. A UNIX socket has none, so a UNIX
/// side gets a made-up loopback one (the README lists them): A at 127.0.0.2, port
/// 49152 + the connection's number (so each connection is a stream of its own), B
/// at 127.0.0.3 port 1; with an IPv6 peer, both at ::1 with those ports.
pub fn stand_ins(
    id: u64,
    a: Option<SocketAddr>,
    b: Option<SocketAddr>,
) -> (SocketAddr, SocketAddr) {
    let a_port = 49152 + (id % 16384) as u16;
    let ipv6 = a.or(b).is_some_and(|known| known.is_ipv6());
    let made_up = |v4: Ipv4Addr, port: u16| match ipv6 {
        true => SocketAddr::new(IpAddr::V6(std::net::Ipv6Addr::LOCALHOST), port),
        false => SocketAddr::new(IpAddr::V4(v4), port),
    };
    (
        a.unwrap_or_else(|| made_up(Ipv4Addr::new(127, 0, 0, 2), a_port)),
        b.unwrap_or_else(|| made_up(Ipv4Addr::new(127, 0, 0, 3), 1)),
    )
}
