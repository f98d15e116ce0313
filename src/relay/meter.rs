//! Running counts for the live progress line: bytes read each way and connections
//! relaying, over the whole run.
//!
//! Every connection's readers add to the same two counters, so they are plain
//! atomics, added to with one relaxed `fetch_add` per read: no lock and no
//! allocation on the relay's path. The progress line's own thread reads them ten
//! times a second; it needs no ordering with anything else.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::relay::event::Direction;

/// The run's counts so far. Made only when a progress line shows them.
#[derive(Debug, Default)]
pub struct Meter {
    bytes: [AtomicU64; 2],
    open: AtomicU64,
}

/// What a `Meter` said at one moment.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// Bytes read from A (A->B) and from B (B->A).
    pub bytes: [u64; 2],
    /// Connections relaying.
    pub open: u64,
}

impl Meter {
    /// `n` more bytes were read in `dir`.
    pub fn read(&self, dir: Direction, n: usize) {
        self.bytes[dir.index()].fetch_add(n as u64, Ordering::Relaxed);
    }

    /// A connection starts relaying.
    pub fn opened(&self) {
        self.open.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection has ended.
    pub fn closed(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn reading(&self) -> Reading {
        Reading {
            bytes: self.bytes.each_ref().map(|b| b.load(Ordering::Relaxed)),
            open: self.open.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_each_way_and_the_open_connections() {
        let meter = Meter::default();
        meter.opened();
        meter.opened();
        meter.read(Direction::AtoB, 5);
        meter.read(Direction::BtoA, 7);
        meter.read(Direction::AtoB, 1);
        meter.closed();
        assert_eq!(
            meter.reading(),
            Reading {
                bytes: [6, 7],
                open: 1
            }
        );
    }
}
