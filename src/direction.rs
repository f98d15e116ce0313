//! Which way bytes flow, and which end of that way: the words every part of the
//! tool shares, from the relay's threads to the capture reader's streams.

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
