//! What the relay threads tell the logger: the only way anything reaches an output.
//!
//! Events of one direction arrive in the order they happened, which the relay
//! guarantees with three rules (see `relay`): a `Read` is sent before its chunk goes to
//! the writer, a `Wrote` before its buffer space is given back, and an `Eof` before the
//! end of the stream is passed on. So the logger can compute "B is N bytes behind" from
//! the events alone, and each direction prints a deterministic sequence.

use std::io;
use std::time::SystemTime;

use crate::buffer::Chunk;

/// One of the two flows of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    AtoB,
    BtoA,
}

impl Direction {
    pub const BOTH: [Direction; 2] = [Direction::AtoB, Direction::BtoA];

    /// The side that produces this flow's bytes.
    pub fn from(self) -> &'static str {
        match self {
            Direction::AtoB => "A",
            Direction::BtoA => "B",
        }
    }

    /// The side that consumes them.
    pub fn to(self) -> &'static str {
        match self {
            Direction::AtoB => "B",
            Direction::BtoA => "A",
        }
    }

    /// 0 for A->B, 1 for B->A: the index into per-direction arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Which end of a direction an operation failed on: reading from the producer, or
/// writing to (or shutting down) the consumer. The capture needs it to know which
/// peer reset the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Producer,
    Consumer,
}

/// Every event carries `at`, the wall-clock time when the system call that it reports
/// returned: the capture's packet timestamps are the moments things happened, not the
/// moments the logger got round to them.
#[derive(Debug)]
pub enum Event {
    /// The reader got these bytes from the producer; they now wait in user space.
    Read {
        dir: Direction,
        chunk: Chunk,
        at: SystemTime,
    },
    /// The writer handed `n` more bytes to the consumer's kernel. When the whole chunk
    /// is out, the writer passes it along as `spent`, and the logger returns it to the
    /// reader once it is done with it (its credit went back already).
    Wrote {
        dir: Direction,
        n: usize,
        spent: Option<Chunk>,
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
}

impl Event {
    /// When it happened.
    pub fn at(&self) -> SystemTime {
        match *self {
            Event::Read { at, .. }
            | Event::Wrote { at, .. }
            | Event::Eof { at, .. }
            | Event::Closed { at, .. }
            | Event::Failed { at, .. } => at,
        }
    }
}
