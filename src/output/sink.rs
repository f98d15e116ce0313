//! The logger's outputs: what each is told, and how each fails on its own.
//!
//! Every output (the terminal, the dump files, the JSON events, the capture) is an
//! `Output`: the logger counts each note into its bookkeeping, then tells every
//! output in turn, with what it counted. So an output is one type in a file of its
//! own, and adding one is adding a file, not a case to every match of the logger.
//!
//! A terminal that went away or a full disk must not stop the relay: a `Sink`
//! reports its first failure once, on stderr, and is left alone afterwards, while
//! the logger goes on feeding the others.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::net::SocketAddr;
use std::time::SystemTime;

use crate::error::Error;
use crate::output::logger::Tally;
use crate::output::printer::Flow;
use crate::output::progress;
use crate::relay::event::{Closing, ConnId, Event, Opening};
use crate::relay::kernel_queues::Queues;

/// The failures of outputs so far, for the run's report.
pub(crate) type Failures = Vec<Error>;

/// What the logger knows of a connection when it tells an output about it.
pub(crate) struct Conn {
    pub(crate) id: ConnId,
    /// `[N] ` with `-k`, empty otherwise: what every line of the connection starts
    /// with.
    pub(crate) label: String,
    /// What each direction has read and written, the event being told included.
    pub(crate) flows: [Flow; 2],
}

/// What the logger and its outputs keep for each open connection.
///
/// The connection numbers are the session's own count, not anything a peer chooses,
/// so they need no hash that resists crafted keys: SipHash would cost more than the
/// rest of handling a note. A multiplication spreads them over the table instead.
pub(crate) type ConnMap<V> = HashMap<ConnId, V, BuildHasherDefault<ConnIdHasher>>;

/// Hashes a connection number by Fibonacci hashing (see `ConnMap`).
#[derive(Default)]
pub(crate) struct ConnIdHasher(u64);

impl Hasher for ConnIdHasher {
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    /// Never used by `ConnMap`, whose keys are `u64`; any bytes still hash (FNV-1a).
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// One of the logger's outputs, told every note the relay sends.
///
/// Each call reports its output's failures into `failures` (through a `Sink`) and
/// returns nothing: the logger goes on with the others whatever happens.
pub(crate) trait Output {
    /// Whether it shows the bytes of each chunk. When no output does, the relay
    /// sends no per-chunk events at all.
    fn watches_chunks(&self) -> bool;

    /// `-k`: a client A was accepted from `a`; B is being dialled.
    fn accepted(
        &mut self,
        _conn: &Conn,
        _a: Option<SocketAddr>,
        _at: SystemTime,
        _failures: &mut Failures,
    ) {
    }

    /// The connection starts relaying. The dump files, if the relay made them,
    /// come in `opening`, for the output that writes them to take.
    fn open(&mut self, conn: &Conn, opening: &mut Opening, failures: &mut Failures);

    /// Something happened in one of the connection's directions; with
    /// `--kernel-queues`, the direction's kernel queues right after it.
    fn event(
        &mut self,
        conn: &Conn,
        event: &Event,
        kernel: Option<Queues>,
        failures: &mut Failures,
    );

    /// The connection's last note. (A connection stopped while B was being dialled
    /// closes without having opened.)
    fn close(&mut self, conn: &Conn, closing: &Closing, failures: &mut Failures);

    /// `-k`: a client was turned away without a relay, for `why` (already on
    /// stderr).
    fn not_relayed(
        &mut self,
        _conn: &Conn,
        _why: &Error,
        _at: SystemTime,
        _failures: &mut Failures,
    ) {
    }

    /// Every sender has hung up: the run is over, and this is how it went.
    fn finish(&mut self, _tally: Tally, _failures: &mut Failures) {}

    /// Writes out whatever is buffered: the note queue is momentarily empty.
    fn flush(&mut self, failures: &mut Failures);
}

/// An output that may fail; after the first failure it is dropped.
pub(crate) struct Sink<T> {
    pub(crate) what: String,
    pub(crate) out: Option<T>,
}

impl<T> Sink<T> {
    pub(crate) fn new(what: impl Into<String>, out: T) -> Self {
        Sink {
            what: what.into(),
            out: Some(out),
        }
    }

    /// A sink that failed before it could start (its failure is reported already).
    pub(crate) fn failed() -> Self {
        Sink {
            what: String::new(),
            out: None,
        }
    }

    pub(crate) fn apply(
        &mut self,
        failures: &mut Failures,
        op: impl FnOnce(&mut T) -> io::Result<()>,
    ) {
        if let Some(out) = self.out.as_mut() {
            if let Err(source) = op(out) {
                output_failed(self.what.clone(), source, failures);
                self.out = None;
            }
        }
    }
}

/// Reports an output that failed, once, on stderr, and keeps it for the report.
pub(crate) fn output_failed(what: String, source: io::Error, failures: &mut Failures) {
    let error = Error::Output { what, source };
    progress::error_line(format_args!("{error}"));
    failures.push(error);
}
