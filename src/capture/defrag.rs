//! IP defragmentation: fragments of one IPv4 or IPv6 datagram, in whatever order the
//! capture holds them, back to the whole datagram's payload.
//!
//! A capture is hostile input, so what waits here is bounded: at most
//! `MAX_DATAGRAMS` datagrams and `MAX_HELD_BYTES` bytes at once (the oldest is given
//! up to make room), and a datagram whose fragments have not all arrived within
//! `TIMEOUT` of capture time after its first is given up too, as a kernel would.
//! Every frame of a datagram given up is counted, so `--list` can say how many
//! packets it could not use.
//!
//! Where fragments overlap, the first copy of a byte wins, as for TCP segments
//! (`replay::reassembly`); the first fragment that says it is the last fixes the
//! datagram's length. etherparse has a defragmenter too, but it lets the last copy
//! win and holds any number of datagrams, so this one is ours.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

/// How long, in capture time, a datagram's fragments may take to all arrive.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// Datagrams waiting for fragments at once.
pub const MAX_DATAGRAMS: usize = 256;
/// Bytes held in waiting datagrams at once.
pub const MAX_HELD_BYTES: usize = 4 << 20;
/// No IP datagram's payload is longer (the length fields are 16 bits).
const MAX_DATAGRAM_LEN: usize = 65_535;

/// What tells one datagram's fragments from another's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragmentKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub id: u32,
    pub protocol: u8,
}

/// One fragment as its IP header describes it.
#[derive(Debug)]
pub struct Fragment<'a> {
    pub key: FragmentKey,
    /// Where `payload` goes in the datagram's payload, in bytes.
    pub offset: usize,
    /// False for the last fragment.
    pub more: bool,
    pub payload: &'a [u8],
}

/// A datagram put back together.
#[derive(Debug, PartialEq, Eq)]
pub struct Whole {
    pub protocol: u8,
    pub payload: Vec<u8>,
    /// The capture's frames it was made of.
    pub frames: u64,
}

/// What adding a fragment did.
#[derive(Debug, PartialEq, Eq)]
pub enum Added {
    /// The datagram still lacks fragments.
    Waiting,
    Complete(Whole),
    /// The fragment reaches past the longest possible datagram.
    Malformed,
}

#[derive(Debug)]
struct Datagram {
    /// When its first fragment was captured.
    since: Duration,
    /// Arrival order, so the oldest is given up first whatever the hash order.
    order: u64,
    payload: Vec<u8>,
    /// The byte ranges received, sorted and disjoint.
    filled: Vec<(usize, usize)>,
    /// The length, once the last fragment has said it.
    len: Option<usize>,
    frames: u64,
}

#[derive(Debug, Default)]
pub struct Defragmenter {
    waiting: HashMap<FragmentKey, Datagram>,
    held_bytes: usize,
    arrivals: u64,
    /// Frames of datagrams given up (timed out, crowded out, or left at the end).
    given_up: u64,
}

impl Defragmenter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Frames of datagrams that never completed, so far.
    pub fn given_up(&self) -> u64 {
        self.given_up
    }

    /// Adds a fragment captured at `time` that stands for `frames` capture frames
    /// (more than one when it was itself put back together from fragments).
    pub fn add(&mut self, fragment: Fragment, time: Duration, frames: u64) -> Added {
        let Some(end) = fragment
            .offset
            .checked_add(fragment.payload.len())
            .filter(|&end| end <= MAX_DATAGRAM_LEN)
        else {
            return Added::Malformed;
        };
        self.expire(time);
        if !self.waiting.contains_key(&fragment.key) {
            self.make_room(fragment.payload.len());
            self.arrivals += 1;
            let datagram = Datagram {
                since: time,
                order: self.arrivals,
                payload: Vec::new(),
                filled: Vec::new(),
                len: None,
                frames: 0,
            };
            self.waiting.insert(fragment.key, datagram);
        }
        let Some(datagram) = self.waiting.get_mut(&fragment.key) else {
            return Added::Waiting;
        };
        datagram.frames += frames;
        if !fragment.more && datagram.len.is_none() {
            datagram.len = Some(end);
        }
        let before = datagram.payload.len();
        datagram.fill(fragment.offset, fragment.payload);
        self.held_bytes += datagram.payload.len() - before;
        if !datagram.is_complete() {
            return Added::Waiting;
        }
        let Some(mut done) = self.waiting.remove(&fragment.key) else {
            return Added::Waiting;
        };
        self.held_bytes -= done.payload.len();
        done.payload.truncate(done.len.unwrap_or(0));
        Added::Complete(Whole {
            protocol: fragment.key.protocol,
            payload: done.payload,
            frames: done.frames,
        })
    }

    /// Gives up the datagrams that have waited longer than `TIMEOUT` at `now`.
    pub fn expire(&mut self, now: Duration) {
        if self.waiting.is_empty() {
            return;
        }
        let mut given_up = 0;
        let mut freed = 0;
        self.waiting.retain(|_, d| {
            let keep = now.saturating_sub(d.since) <= TIMEOUT;
            if !keep {
                given_up += d.frames;
                freed += d.payload.len();
            }
            keep
        });
        self.given_up += given_up;
        self.held_bytes -= freed;
    }

    /// The capture has ended: whatever still waits will never complete.
    pub fn finish(&mut self) {
        for (_, d) in self.waiting.drain() {
            self.given_up += d.frames;
        }
        self.held_bytes = 0;
    }

    /// Gives up the oldest datagrams until a new one, of about `len` bytes, fits.
    fn make_room(&mut self, len: usize) {
        while !self.waiting.is_empty()
            && (self.waiting.len() >= MAX_DATAGRAMS || self.held_bytes + len > MAX_HELD_BYTES)
        {
            let oldest = self
                .waiting
                .iter()
                .min_by_key(|(_, d)| d.order)
                .map(|(key, _)| *key);
            let Some(d) = oldest.and_then(|key| self.waiting.remove(&key)) else {
                return;
            };
            self.given_up += d.frames;
            self.held_bytes -= d.payload.len();
        }
    }
}

impl Datagram {
    /// Copies the bytes of `bytes` (which go at `offset`) that no earlier fragment
    /// gave, and none past the datagram's known end.
    fn fill(&mut self, offset: usize, bytes: &[u8]) {
        let end = match self.len {
            Some(len) => (offset + bytes.len()).min(len.max(offset)),
            None => offset + bytes.len(),
        };
        if end <= offset {
            return;
        }
        if self.payload.len() < end {
            self.payload.resize(end, 0);
        }
        let mut at = offset;
        for &(start, stop) in &self.filled {
            if stop <= at {
                continue;
            }
            if start >= end {
                break;
            }
            if start > at {
                self.payload[at..start].copy_from_slice(&bytes[at - offset..start - offset]);
            }
            at = at.max(stop);
        }
        if at < end {
            self.payload[at..end].copy_from_slice(&bytes[at - offset..end - offset]);
        }
        self.mark(offset, end);
    }

    /// Adds `start..end` to the ranges received, merging what touches it.
    fn mark(&mut self, mut start: usize, mut end: usize) {
        self.filled.retain(|&(s, e)| {
            let apart = e < start || s > end;
            if !apart {
                start = start.min(s);
                end = end.max(e);
            }
            apart
        });
        let at = self.filled.partition_point(|&(s, _)| s < start);
        self.filled.insert(at, (start, end));
    }

    fn is_complete(&self) -> bool {
        match (self.len, self.filled.first()) {
            (Some(len), Some(&(0, end))) => end >= len,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u32) -> FragmentKey {
        FragmentKey {
            src: [10, 0, 0, 1].into(),
            dst: [10, 0, 0, 2].into(),
            id,
            protocol: 6,
        }
    }

    fn add(d: &mut Defragmenter, id: u32, offset: usize, more: bool, bytes: &[u8]) -> Added {
        add_at(d, id, offset, more, bytes, Duration::ZERO)
    }

    fn add_at(
        d: &mut Defragmenter,
        id: u32,
        offset: usize,
        more: bool,
        payload: &[u8],
        time: Duration,
    ) -> Added {
        let fragment = Fragment {
            key: key(id),
            offset,
            more,
            payload,
        };
        d.add(fragment, time, 1)
    }

    fn whole(payload: &[u8], frames: u64) -> Added {
        Added::Complete(Whole {
            protocol: 6,
            payload: payload.to_vec(),
            frames,
        })
    }

    #[test]
    fn fragments_in_any_order_make_the_datagram() {
        let mut d = Defragmenter::new();
        assert_eq!(add(&mut d, 1, 16, false, b"cc"), Added::Waiting);
        assert_eq!(add(&mut d, 1, 0, true, b"aaaaaaaa"), Added::Waiting);
        assert_eq!(
            add(&mut d, 1, 8, true, b"bbbbbbbb"),
            whole(b"aaaaaaaabbbbbbbbcc", 3)
        );
        d.finish();
        assert_eq!(d.given_up(), 0);
    }

    #[test]
    fn datagrams_are_told_apart_by_their_key() {
        let mut d = Defragmenter::new();
        assert_eq!(add(&mut d, 1, 0, true, b"11111111"), Added::Waiting);
        assert_eq!(add(&mut d, 2, 0, true, b"22222222"), Added::Waiting);
        assert_eq!(add(&mut d, 2, 8, false, b"2"), whole(b"222222222", 2));
        assert_eq!(add(&mut d, 1, 8, false, b"1"), whole(b"111111111", 2));
    }

    #[test]
    fn where_fragments_overlap_the_first_copy_wins() {
        let mut d = Defragmenter::new();
        assert_eq!(add(&mut d, 1, 8, true, b"BBBBBBBB"), Added::Waiting);
        // Covers the end of the first part and half of what is already there.
        assert_eq!(add(&mut d, 1, 4, true, b"xxxxyyyy"), Added::Waiting);
        assert_eq!(add(&mut d, 1, 0, true, b"AAAAzzzz"), Added::Waiting);
        // The first last fragment fixes the length; a later, longer one is ignored.
        assert_eq!(
            add(&mut d, 1, 16, false, b"C"),
            whole(b"AAAAxxxxBBBBBBBBC", 4)
        );
        assert_eq!(add(&mut d, 3, 0, false, b"short"), whole(b"short", 1));
    }

    #[test]
    fn a_conflicting_last_fragment_does_not_change_the_length() {
        let mut d = Defragmenter::new();
        assert_eq!(add(&mut d, 1, 8, false, b"end"), Added::Waiting);
        assert_eq!(add(&mut d, 1, 8, false, b"longer end"), Added::Waiting);
        assert_eq!(
            add(&mut d, 1, 0, true, b"01234567"),
            whole(b"01234567end", 3)
        );
    }

    #[test]
    fn a_fragment_past_the_longest_datagram_is_malformed() {
        let mut d = Defragmenter::new();
        assert_eq!(
            add(&mut d, 1, 65_530, true, b"0123456789"),
            Added::Malformed
        );
        assert_eq!(add(&mut d, 1, usize::MAX, true, b"0"), Added::Malformed);
    }

    #[test]
    fn incomplete_datagrams_time_out_by_capture_time() {
        let mut d = Defragmenter::new();
        let t0 = Duration::from_secs(100);
        assert_eq!(add_at(&mut d, 1, 0, true, b"aaaaaaaa", t0), Added::Waiting);
        assert_eq!(add_at(&mut d, 1, 8, true, b"aaaaaaaa", t0), Added::Waiting);
        d.expire(t0 + TIMEOUT);
        assert_eq!(d.given_up(), 0, "not yet");
        // The last fragment comes too late: its datagram was given up, with 2 frames.
        let late = t0 + TIMEOUT + Duration::from_millis(1);
        assert_eq!(add_at(&mut d, 1, 16, false, b"b", late), Added::Waiting);
        assert_eq!(d.given_up(), 2);
        d.finish();
        assert_eq!(d.given_up(), 3);
    }

    #[test]
    fn waiting_datagrams_are_bounded_in_number_and_bytes() {
        let mut d = Defragmenter::new();
        for id in 0..(MAX_DATAGRAMS as u32 + 10) {
            assert_eq!(add(&mut d, id, 0, true, b"aaaaaaaa"), Added::Waiting);
        }
        assert_eq!(d.waiting.len(), MAX_DATAGRAMS);
        assert_eq!(d.given_up(), 10, "the oldest were given up");
        // The newest still completes.
        let last = MAX_DATAGRAMS as u32 + 9;
        assert_eq!(add(&mut d, last, 8, false, b"b"), whole(b"aaaaaaaab", 2));

        let mut d = Defragmenter::new();
        let big = vec![7u8; 60_000];
        for id in 0..200 {
            add(&mut d, id, 0, true, &big);
            assert!(d.held_bytes <= MAX_HELD_BYTES + big.len());
        }
        let held: usize = d.waiting.values().map(|x| x.payload.len()).sum();
        assert_eq!(held, d.held_bytes);
        assert!(d.held_bytes <= MAX_HELD_BYTES);
    }
}
