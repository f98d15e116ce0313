//! One fuzz input, and a mutator to make more: shared by `tests/fuzz.rs` (the short,
//! deterministic run in CI) and `fuzz/fuzz_targets/capture.rs` (cargo-fuzz, the long
//! coverage-guided run), so both check exactly the same thing.
//!
//! An input is the bytes of a capture file. It goes through the library's public
//! path — `CaptureReader` to segments, `Reassembler` to events — and must never panic,
//! never allocate without bound, and leave the reassembler's summary (`--list`)
//! agreeing with the events it gave (what `replay` plays). A disagreement would mean
//! `--list` and a replay tell different stories about the same file.

#![allow(dead_code)] // the fuzz target uses `check_capture` only

use std::io::Cursor;
use std::path::Path;

use tiburoncin::capture::read::CaptureReader;
use tiburoncin::direction::Direction;
use tiburoncin::replay::reassembly::{Reassembler, StreamEnd, StreamEvent};

/// Reads `bytes` as a capture and reassembles every connection in it, checking the
/// events against the summary. Panics (a crash to the fuzzer) on any inconsistency.
pub fn check_capture(bytes: &[u8]) {
    let input = Box::new(Cursor::new(bytes.to_vec()));
    let Ok(mut reader) = CaptureReader::from_reader(Path::new("fuzz-input"), input) else {
        return; // a file refused at its header: fine, as long as it did not panic
    };
    let mut reassembler = Reassembler::new();
    let mut events = Vec::new();
    let mut seen = Seen::default();
    // Each segment comes from at least one header's worth of input, so this ends; a
    // malformed packet ends the file as the command would end it, with an error.
    let mut segments = 0u64;
    let ended = loop {
        match reader.next_segment() {
            Ok(Some(segment)) => {
                segments += 1;
                reassembler.push(segment, &mut events);
                seen.take(&mut events);
            }
            Ok(None) => break true,
            Err(_) => break false,
        }
    };
    // Every packet is a segment, part of one (a fragment), or skipped and counted
    // once: never counted twice, so the counts cannot add up to more than were read.
    if ended {
        let skipped = reader.skipped().total();
        assert!(
            segments + skipped <= reader.packets(),
            "{segments} segments and {skipped} skipped from {} packets",
            reader.packets()
        );
    }
    reassembler.finish(&mut events);
    seen.take(&mut events);

    let streams: Vec<_> = reassembler.streams().cloned().collect();
    for (number, info) in streams.iter().enumerate() {
        assert_eq!(info.number, number, "streams are numbered in order");
        assert!(
            info.first <= info.last,
            "stream {number} ends before it starts"
        );
        for dir in Direction::BOTH {
            let flow = seen.flow(number, dir);
            let i = dir.index();
            assert_eq!(flow.bytes, info.bytes[i], "stream {number} {dir:?}: bytes");
            assert_eq!(
                flow.missing, info.missing[i],
                "stream {number} {dir:?}: gaps"
            );
            assert_eq!(
                flow.ending.unwrap_or(StreamEnd::Open),
                info.ending[i],
                "stream {number} {dir:?}: ending"
            );
        }
    }
    assert!(
        seen.flows.len() <= 2 * streams.len(),
        "an event for a stream that does not exist"
    );
}

/// What the events said about one direction of one connection.
#[derive(Default, Clone)]
struct FlowSeen {
    bytes: u64,
    missing: u64,
    ending: Option<StreamEnd>,
}

#[derive(Default)]
struct Seen {
    /// Indexed by stream * 2 + direction.
    flows: Vec<FlowSeen>,
}

impl Seen {
    fn flow(&mut self, stream: usize, dir: Direction) -> &mut FlowSeen {
        let at = stream * 2 + dir.index();
        if self.flows.len() <= at {
            self.flows.resize(at + 1, FlowSeen::default());
        }
        &mut self.flows[at]
    }

    fn take(&mut self, events: &mut Vec<StreamEvent>) {
        for event in events.drain(..) {
            match event {
                StreamEvent::Data {
                    stream, dir, bytes, ..
                } => {
                    let flow = self.flow(stream, dir);
                    assert!(flow.ending.is_none(), "data after the end of {dir:?}");
                    assert!(!bytes.is_empty(), "an empty data event");
                    flow.bytes += bytes.len() as u64;
                }
                StreamEvent::Gap { stream, dir, len } => {
                    let flow = self.flow(stream, dir);
                    assert!(flow.ending.is_none(), "a gap after the end of {dir:?}");
                    assert!(len > 0, "an empty gap");
                    flow.missing += len;
                }
                StreamEvent::End {
                    stream, dir, how, ..
                } => {
                    let flow = self.flow(stream, dir);
                    assert!(flow.ending.is_none(), "{dir:?} ended twice");
                    assert_ne!(how, StreamEnd::Open, "an end that is not one");
                    flow.ending = Some(how);
                }
            }
        }
    }
}

/// A small deterministic generator (splitmix64): the same seed gives the same inputs
/// on every machine, so a failure in CI is a failure on a laptop.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Values that make length and offset fields interesting: zero, one, the edges of
/// signed and unsigned 16- and 32-bit numbers.
const INTERESTING: [u32; 10] = [
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0x7fff,
    0xffff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
];

/// Changes `data` in 1 to 8 random ways, some of which keep the file's structure
/// (so the decoder gets past the header) and some of which break it. `other` is
/// another seed to splice from.
pub fn mutate(rng: &mut Rng, data: &mut Vec<u8>, other: &[u8]) {
    for _ in 0..1 + rng.below(8) {
        if data.is_empty() {
            data.push(rng.next() as u8);
        }
        let len = data.len();
        let at = rng.below(len);
        match rng.below(9) {
            0 => data[at] ^= 1 << rng.below(8),
            1 => data[at] = rng.next() as u8,
            2 => {
                // A 16- or 32-bit field, in either byte order, set to an edge value.
                let value = INTERESTING[rng.below(INTERESTING.len())];
                let bytes = if rng.below(2) == 0 {
                    value.to_le_bytes()
                } else {
                    value.to_be_bytes()
                };
                let width = if rng.below(2) == 0 { 2 } else { 4 };
                let bytes = if width == 2 { &bytes[..2] } else { &bytes[..] };
                for (i, &b) in bytes.iter().enumerate() {
                    if let Some(slot) = data.get_mut(at + i) {
                        *slot = b;
                    }
                }
            }
            3 => {
                // Add or subtract a little from a byte (lengths off by a few).
                let delta = 1 + rng.below(16) as u8;
                data[at] = if rng.below(2) == 0 {
                    data[at].wrapping_add(delta)
                } else {
                    data[at].wrapping_sub(delta)
                };
            }
            4 => {
                let n = 1 + rng.below(64.min(len));
                let end = (at + n).min(len);
                data.drain(at..end);
            }
            5 => {
                let n = 1 + rng.below(64);
                let fresh: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                data.splice(at..at, fresh);
            }
            6 => {
                // Repeat a stretch elsewhere: packets retransmitted, blocks duplicated.
                let n = 1 + rng.below(256.min(len));
                let end = (at + n).min(len);
                let piece = data[at..end].to_vec();
                let to = rng.below(len + 1);
                data.splice(to..to, piece);
            }
            7 => data.truncate(at),
            _ => {
                // Splice in a stretch of another file.
                if !other.is_empty() {
                    let from = rng.below(other.len());
                    let n = 1 + rng.below(512.min(other.len() - from));
                    let to = rng.below(len + 1);
                    data.splice(to..to, other[from..from + n].iter().copied());
                }
            }
        }
    }
    // Keep inputs small: big ones are slow and find nothing small ones would not.
    data.truncate(64 * 1024);
}
