//! TCP reassembly: from captured segments, in file order, back to the two byte streams
//! each connection carried.
//!
//! Pure logic, no I/O: segments go in, events come out (`Data` as bytes become
//! contiguous, `Gap` where the capture lacks bytes, `End` for a FIN or RST), and a
//! summary per connection is kept for `--list`. Payloads are not kept once delivered,
//! so a long capture is reassembled in flat memory: only segments that arrived ahead
//! of a hole wait here, and at most `MAX_PENDING` bytes of them per direction.
//!
//! The rules, and why:
//! - **Connections** are keyed by their two endpoints, either way round, and numbered
//!   in order of their first packet, as Wireshark numbers `tcp.stream`, so `--stream N`
//!   means what `tcp.stream eq N` means there. Like Wireshark (4.0), a SYN without ACK
//!   on an existing connection starts a *new* one when its sequence number differs
//!   from the base sequence number already seen in that direction (port reuse); an
//!   equal one is a retransmitted SYN.
//! - **A and B**: A is the client, the side that sent the SYN (or received the
//!   SYN-ACK). A capture that starts mid-connection shows neither; then (`Chosen`)
//!   A is the side on an ephemeral port facing a server port (`server_by_port`);
//!   failing that, the side that sent the first payload; failing that (no payload
//!   at all), the sender of the first packet. `--client` overrides all of these.
//! - **Sequence numbers** are unwrapped into 64 bits relative to the next expected
//!   byte (the nearest interpretation of the 32-bit value), so a stream may cross
//!   2^32 any number of times. A SYN takes one sequence number; without a SYN the
//!   first sequence number seen in a direction is taken as the stream's start.
//! - **Order**: bytes are delivered in sequence order. A segment ahead of the next
//!   expected byte waits until the hole before it is filled; bytes already delivered
//!   (retransmissions, duplicates, the overlapping part of a segment) are dropped:
//!   each byte is delivered once, by the segment that first makes it contiguous.
//! - **Ends**: a FIN ends its direction once every byte before it has been delivered;
//!   a RST ends its direction at once, and what was waiting behind a hole is lost. The
//!   other direction goes on until its own FIN or RST (data may still be in flight).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use crate::capture::decode::{CapturedSegment, Payload, PayloadLen};
use crate::capture::shared::SharedPayload;
use crate::direction::Direction;

/// Bytes that may wait behind a hole in one direction before the hole is given up as
/// never captured and skipped (a capture that dropped packets must not grow forever).
pub const MAX_PENDING: usize = 16 << 20;

/// How a direction of a connection ended in the capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    Fin,
    Rst,
    /// The capture ends without a FIN or RST in this direction.
    Open,
}

/// What `--list` shows of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    /// Wireshark's `tcp.stream`.
    pub number: usize,
    /// The client.
    pub a: SocketAddr,
    /// The server.
    pub b: SocketAddr,
    pub first: Duration,
    pub last: Duration,
    /// Bytes delivered A->B and B->A.
    pub bytes: [u64; 2],
    /// Bytes the capture lacks (holes skipped), A->B and B->A.
    pub missing: [u64; 2],
    pub ending: [StreamEnd; 2],
    /// How A was told from B.
    pub chosen: Chosen,
}

/// How the client (A) of a connection was told from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chosen {
    /// The SYN or the SYN-ACK says it.
    Handshake,
    /// No handshake: A's port is ephemeral and B's a server port.
    Port,
    /// No handshake, and the ports do not say: A sent the first payload.
    FirstPayload,
    /// No handshake, no payload: A sent the first packet.
    FirstPacket,
    /// `--client` said so.
    Given,
}

/// Ephemeral ports start here on Linux; IANA's range (the BSDs', Windows') at 49152.
const LINUX_EPHEMERAL: u16 = 32768;
const IANA_EPHEMERAL: u16 = 49152;

/// Whether `port` is a server's, facing a client on `other`: a well-known or
/// registered port (below 49152) facing an ephemeral one, and outside the ephemeral
/// range the other is in (so two Linux ephemeral ports do not decide it).
pub fn server_by_port(port: u16, other: u16) -> bool {
    let other_ephemeral = other >= LINUX_EPHEMERAL;
    other_ephemeral && port < IANA_EPHEMERAL && (port < LINUX_EPHEMERAL || other >= IANA_EPHEMERAL)
}

/// What a captured segment causes in its connection, in the order a replay plays it.
/// `P` is what the segments keep of their payloads: the bytes, or only their count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent<P = Vec<u8>> {
    /// These bytes are next in `dir`; `time` is when the packet that made them
    /// contiguous was captured.
    Data {
        stream: usize,
        dir: Direction,
        time: Duration,
        bytes: P,
    },
    /// `len` bytes of `dir` were never captured; the stream goes on after them.
    Gap {
        stream: usize,
        dir: Direction,
        len: u64,
    },
    /// `dir` ended (`Fin` or `Rst`).
    End {
        stream: usize,
        dir: Direction,
        how: StreamEnd,
        time: Duration,
    },
}

/// One direction of one connection: where its bytes have got to, and what waits.
#[derive(Debug)]
struct HalfStream<P> {
    /// Wireshark's base sequence number (the SYN's, or one before the first seen),
    /// used only to tell a retransmitted SYN from a reused port.
    base_seq: Option<u32>,
    /// The unwrapped sequence number of the next byte to deliver.
    next: Option<u64>,
    /// Segments ahead of `next`, by unwrapped sequence number.
    pending: BTreeMap<u64, P>,
    pending_bytes: usize,
    /// Where the FIN is, once seen.
    fin_at: Option<u64>,
    ended: Option<StreamEnd>,
}

// Derived, it would ask `P: Default`, which an empty map does not need.
impl<P> Default for HalfStream<P> {
    fn default() -> Self {
        HalfStream {
            base_seq: None,
            next: None,
            pending: BTreeMap::new(),
            pending_bytes: 0,
            fin_at: None,
            ended: None,
        }
    }
}

struct Stream<P> {
    info: StreamInfo,
    flows: [HalfStream<P>; 2],
    /// False while A is only a guess that the first payload may still change.
    decided: bool,
}

/// The connections of a capture, and what each segment causes in them. `P` is what
/// the segments keep of their payloads: the bytes (to replay them), or only how many
/// (`PayloadLen`, to list the connections without copying a byte).
pub struct Reassembler<P = Vec<u8>> {
    /// The current connection number for each pair of endpoints (smaller first).
    current: HashMap<(SocketAddr, SocketAddr), usize>,
    /// The last segment's entry of `current`: a capture's segments come in long runs
    /// of one connection, and hashing the key of each was a fifth of a listing's work.
    last: Option<((SocketAddr, SocketAddr), usize)>,
    streams: Vec<Stream<P>>,
    /// `--client`: the endpoint that is A wherever it appears.
    client: Option<SocketAddr>,
}

/// Unwrapped sequence numbers start here, so that a segment from before the first one
/// seen (a late retransmission) still has a place below it.
const UNWRAP_ORIGIN: u64 = 1 << 32;

impl Default for Reassembler {
    fn default() -> Self {
        Self::new()
    }
}

impl Reassembler {
    pub fn new() -> Self {
        Self::with_client(None)
    }

    /// A reassembler for which `client` is A in every connection it is in.
    pub fn with_client(client: Option<SocketAddr>) -> Self {
        Self::keeping(client)
    }
}

impl Reassembler<PayloadLen> {
    /// As `with_client`, for segments that keep only their payload's length: the
    /// same connections, byte counts, holes and ends, and no bytes in the events.
    pub fn counting(client: Option<SocketAddr>) -> Self {
        Self::keeping(client)
    }
}

impl Reassembler<SharedPayload> {
    /// As `with_client`, for segments whose payloads share the reader's buffer.
    pub fn sharing(client: Option<SocketAddr>) -> Self {
        Self::keeping(client)
    }
}

impl<P: Payload> Reassembler<P> {
    fn keeping(client: Option<SocketAddr>) -> Self {
        Reassembler {
            current: HashMap::new(),
            last: None,
            streams: Vec::new(),
            client,
        }
    }

    /// Takes the next segment of the capture, appending what it causes to `out`.
    pub fn push(&mut self, seg: CapturedSegment<P>, out: &mut Vec<StreamEvent<P>>) {
        let key = if seg.src <= seg.dst {
            (seg.src, seg.dst)
        } else {
            (seg.dst, seg.src)
        };
        let known = match self.last {
            Some((last_key, n)) if last_key == key => Some(n),
            _ => self.current.get(&key).copied(),
        };
        let number = match known {
            Some(n) if !self.reuses_port(n, &seg) => n,
            _ => {
                let n = self.streams.len();
                self.streams.push(Stream::new(n, &seg, self.client));
                self.current.insert(key, n);
                n
            }
        };
        self.last = Some((key, number));
        let stream = &mut self.streams[number];
        stream.info.last = stream.info.last.max(seg.time);
        if !stream.decided && !seg.payload.is_empty() {
            stream.first_payload_from(seg.src);
        }
        let dir = stream.direction(&seg);
        stream.take(dir, seg, out);
    }

    /// A SYN whose sequence number differs from the base already seen in its direction
    /// opens a new connection on the same ports.
    fn reuses_port(&self, number: usize, seg: &CapturedSegment<P>) -> bool {
        if !seg.flags.syn || seg.flags.ack {
            return false;
        }
        let stream = &self.streams[number];
        let flow = &stream.flows[stream.direction(seg).index()];
        flow.base_seq.is_some_and(|base| base != seg.seq)
    }

    /// The capture has ended: skip the holes nothing filled, deliver what waited behind
    /// them, and end the directions whose FIN was behind them.
    pub fn finish(&mut self, out: &mut Vec<StreamEvent<P>>) {
        for stream in &mut self.streams {
            let time = stream.info.last;
            for dir in Direction::BOTH {
                while stream.skip_hole(dir, time, out) {}
            }
        }
    }

    /// Every connection so far, in number order.
    pub fn streams(&self) -> impl Iterator<Item = &StreamInfo> {
        self.streams.iter().map(|s| &s.info)
    }
}

impl<P: Payload> Stream<P> {
    fn new(number: usize, first: &CapturedSegment<P>, client: Option<SocketAddr>) -> Self {
        let (src, dst) = (first.src, first.dst);
        let (client_is_src, chosen) = match client {
            Some(c) if c == src || c == dst => (c == src, Chosen::Given),
            _ if first.flags.syn => (!first.flags.ack, Chosen::Handshake),
            _ if server_by_port(dst.port(), src.port()) => (true, Chosen::Port),
            _ if server_by_port(src.port(), dst.port()) => (false, Chosen::Port),
            _ => (true, Chosen::FirstPacket),
        };
        let (a, b) = if client_is_src {
            (src, dst)
        } else {
            (dst, src)
        };
        Stream {
            info: StreamInfo {
                number,
                a,
                b,
                first: first.time,
                last: first.time,
                bytes: [0; 2],
                missing: [0; 2],
                ending: [StreamEnd::Open; 2],
                chosen,
            },
            flows: Default::default(),
            decided: chosen != Chosen::FirstPacket,
        }
    }

    /// The first payload of a connection A was only guessed for: its sender is A.
    /// Nothing has been delivered yet (that takes a payload), so the two directions
    /// can still change places.
    fn first_payload_from(&mut self, sender: SocketAddr) {
        if sender != self.info.a {
            std::mem::swap(&mut self.info.a, &mut self.info.b);
            self.flows.swap(0, 1);
        }
        self.info.chosen = Chosen::FirstPayload;
        self.decided = true;
    }

    fn direction(&self, seg: &CapturedSegment<P>) -> Direction {
        if seg.src == self.info.a && seg.dst == self.info.b {
            Direction::AtoB
        } else {
            Direction::BtoA
        }
    }

    fn take(&mut self, dir: Direction, seg: CapturedSegment<P>, out: &mut Vec<StreamEvent<P>>) {
        let flow = &mut self.flows[dir.index()];
        if flow.base_seq.is_none() {
            flow.base_seq = Some(if seg.flags.syn {
                seg.seq
            } else {
                seg.seq.wrapping_sub(1)
            });
        }
        if flow.ended.is_some() {
            return;
        }
        let next = *flow
            .next
            .get_or_insert(UNWRAP_ORIGIN + u64::from(seg.seq) + u64::from(seg.flags.syn));
        // The nearest 64-bit sequence number with these low 32 bits.
        let delta = i64::from(seg.seq.wrapping_sub(next as u32) as i32);
        let start = next.saturating_add_signed(delta) + u64::from(seg.flags.syn);
        if seg.flags.rst {
            // Whatever waited behind a hole will never be acknowledged now.
            flow.pending.clear();
            flow.pending_bytes = 0;
            self.end(dir, StreamEnd::Rst, seg.time, out);
            return;
        }
        let end = start + seg.payload.len() as u64;
        if seg.flags.fin && flow.fin_at.is_none() {
            flow.fin_at = Some(end);
        }
        if end > next {
            if start <= next {
                let fresh = seg.payload.past((next - start) as usize);
                self.deliver(dir, fresh, seg.time, out);
                self.drain(dir, seg.time, out);
            } else {
                let flow = &mut self.flows[dir.index()];
                let len = seg.payload.len();
                let kept = flow.pending.entry(start).or_default();
                if kept.len() < len {
                    flow.pending_bytes += len - kept.len();
                    *kept = seg.payload.detached();
                }
                if flow.pending_bytes > MAX_PENDING {
                    self.skip_hole(dir, seg.time, out);
                }
            }
        }
        self.check_fin(dir, seg.time, out);
    }

    /// Delivers the waiting segments that the bytes delivered so far have reached.
    fn drain(&mut self, dir: Direction, time: Duration, out: &mut Vec<StreamEvent<P>>) {
        loop {
            let flow = &mut self.flows[dir.index()];
            let Some(next) = flow.next else { return };
            let Some(entry) = flow.pending.first_entry() else {
                return;
            };
            let start = *entry.key();
            if start > next {
                return;
            }
            let bytes = entry.remove();
            flow.pending_bytes -= bytes.len();
            let end = start + bytes.len() as u64;
            if end > next {
                let fresh = bytes.past((next - start) as usize);
                self.deliver(dir, fresh, time, out);
            }
        }
    }

    /// Skips the hole before the first waiting segment (or before the FIN), then
    /// delivers what follows it. False when there was no hole to skip.
    fn skip_hole(&mut self, dir: Direction, time: Duration, out: &mut Vec<StreamEvent<P>>) -> bool {
        let flow = &mut self.flows[dir.index()];
        let Some(next) = flow.next else { return false };
        if flow.ended.is_some() {
            return false;
        }
        let Some(to) = flow
            .pending
            .keys()
            .next()
            .copied()
            .or(flow.fin_at)
            .filter(|&to| to > next)
        else {
            return false;
        };
        flow.next = Some(to);
        self.info.missing[dir.index()] += to - next;
        out.push(StreamEvent::Gap {
            stream: self.info.number,
            dir,
            len: to - next,
        });
        self.drain(dir, time, out);
        self.check_fin(dir, time, out);
        true
    }

    fn deliver(&mut self, dir: Direction, bytes: P, time: Duration, out: &mut Vec<StreamEvent<P>>) {
        if bytes.is_empty() {
            return;
        }
        let flow = &mut self.flows[dir.index()];
        flow.next = flow.next.map(|n| n + bytes.len() as u64);
        self.info.bytes[dir.index()] += bytes.len() as u64;
        out.push(StreamEvent::Data {
            stream: self.info.number,
            dir,
            time,
            bytes,
        });
    }

    fn check_fin(&mut self, dir: Direction, time: Duration, out: &mut Vec<StreamEvent<P>>) {
        let flow = &self.flows[dir.index()];
        if flow.fin_at.is_some() && flow.fin_at <= flow.next {
            self.end(dir, StreamEnd::Fin, time, out);
        }
    }

    fn end(
        &mut self,
        dir: Direction,
        how: StreamEnd,
        time: Duration,
        out: &mut Vec<StreamEvent<P>>,
    ) {
        // The event names A and B: from now on they stay.
        self.decided = true;
        self.flows[dir.index()].ended = Some(how);
        self.info.ending[dir.index()] = how;
        out.push(StreamEvent::End {
            stream: self.info.number,
            dir,
            how,
            time,
        });
    }
}

#[cfg(test)]
#[path = "reassembly_tests.rs"]
mod tests;
