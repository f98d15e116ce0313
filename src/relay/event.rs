//! What the relay threads tell the logger: the only way anything reaches an output.
//!
//! Events of one direction arrive in the order they happened, which the relay
//! guarantees with three rules (see `relay`): a `Read` is sent before its chunk goes to
//! the writer, a `Wrote` before its buffer space is given back, and an `Eof` before the
//! end of the stream is passed on. So the logger can compute "B is N bytes behind" from
//! the events alone, and each direction prints a deterministic sequence.
//!
//! One logger serves every connection (`-k`), so what travels to it is a `Note`: a
//! connection's events tagged with its number, framed by an `Open` that comes before
//! the first of them and a `Close` that comes after the last. The logger keeps each
//! connection's counts apart, and writes each note's lines whole, so the lines of
//! concurrent connections interleave but never mix.

use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

pub use crate::direction::{Direction, End};
use crate::relay::buffer::Chunk;
use crate::relay::faults::Injected;
use crate::relay::kernel_queues::Queues;

/// Every event carries `at`, the wall-clock time when the system call that it reports
/// returned: timestamps and the capture's packets show the moments things happened, not the
/// moments the logger got round to them.
#[derive(Debug)]
pub enum Event {
    /// The reader got these bytes from the producer; they now wait in user space. The
    /// chunk holds their space in the ring until the logger drops it.
    Read {
        dir: Direction,
        chunk: Chunk,
        at: SystemTime,
    },
    /// The writer handed `n` more bytes to the consumer's kernel.
    Wrote {
        dir: Direction,
        n: usize,
        at: SystemTime,
    },
    /// The producer closed its side: no more bytes will come in this direction.
    Eof { dir: Direction, at: SystemTime },
    /// Everything was written and the consumer's write side is shut down (FIN sent).
    Closed { dir: Direction, at: SystemTime },
    /// Reading from the producer or writing to the consumer failed.
    Failed {
        dir: Direction,
        end: End,
        error: io::Error,
        at: SystemTime,
    },
    /// A fault was injected on purpose (`--reset-after`, `--stall-after`).
    Injected {
        dir: Direction,
        fault: Injected,
        at: SystemTime,
    },
}

/// A connection's number: 1 for the first one accepted, and so on.
pub type ConnId = u64;

/// What the logger receives.
#[derive(Debug)]
pub enum Note {
    /// `-k`: a client A was accepted; B is being dialled.
    Accepted {
        conn: ConnId,
        a: Option<SocketAddr>,
        at: SystemTime,
    },
    /// `-k`: this client was turned away without a relay: B could not be reached,
    /// or its sockets could not be set up. Its last note.
    NotRelayed {
        conn: ConnId,
        error: crate::error::Error,
        at: SystemTime,
    },
    /// The connection starts relaying. Sent before any of its events.
    Open(ConnId, Box<Opening>),
    /// Something happened in one of the connection's directions; with
    /// `--kernel-queues`, the direction's kernel queues right after it.
    Event(ConnId, Event, Option<Queues>),
    /// Every thread of the connection has ended. Sent after all of its events.
    Close(ConnId, Closing),
}

/// What the logger needs to know about a connection before its first event.
#[derive(Debug)]
pub struct Opening {
    /// When A was accepted.
    pub at: SystemTime,
    /// A's and B's addresses, as the OS reports them.
    pub a: Option<SocketAddr>,
    pub b: Option<SocketAddr>,
    /// How A and B are reached when not by plain TCP (see `Stream::transport`).
    pub transports: [Option<String>; 2],
    /// The user-space buffer of each direction.
    pub buffers: (usize, usize),
    /// `-o`/`-f`: the files for each direction's bytes, with their names.
    pub dumps: Option<[(String, File); 2]>,
}

/// How a connection's relay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Both directions closed; every byte read was delivered.
    Completed,
    /// A direction failed (its message is already on stderr).
    Failed,
    /// Stopped by this signal.
    Cancelled(i32),
    /// Ended by a reset injected on purpose (`--reset-after`): not a failure.
    Reset,
}

impl Ending {
    pub fn word(self) -> &'static str {
        match self {
            Ending::Completed => "completed",
            Ending::Failed => "failed",
            Ending::Cancelled(_) => "cancelled",
            Ending::Reset => "reset",
        }
    }
}

/// A connection's last note: how it ended, and what it moved.
#[derive(Debug, Clone, Copy)]
pub struct Closing {
    pub ending: Ending,
    /// Bytes read from A (relayed A->B) and from B.
    pub bytes: [u64; 2],
    /// From acceptance to the end of the last relay thread.
    pub lasted: Duration,
    pub at: SystemTime,
}

impl Event {
    /// When it happened.
    pub fn at(&self) -> SystemTime {
        match *self {
            Event::Read { at, .. }
            | Event::Wrote { at, .. }
            | Event::Eof { at, .. }
            | Event::Closed { at, .. }
            | Event::Failed { at, .. }
            | Event::Injected { at, .. } => at,
        }
    }
}
