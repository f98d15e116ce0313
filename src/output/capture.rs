//! The capture (`-w`): the relayed session as one TCP connection Wireshark can open.
//!
//! The relay really holds two connections, A↔tiburoncin and tiburoncin↔B, but what a
//! person wants to see is the conversation, so the capture shows one connection
//! between A's real address and B's real address, made of the relay's events:
//!
//! - A accepted: SYN (A), SYN-ACK (B), ACK (A), with MSS and window scale options;
//! - bytes read from A: data segments A→B (split so that no IP packet exceeds its
//!   length limit, see `packet`);
//! - bytes written to B: a pure ACK from B, so Wireshark's "bytes in flight" for A→B
//!   is exactly what waits in tiburoncin's buffer, the "B is N bytes behind" of the
//!   terminal;
//! - A→B shut down (the buffer drained and B got its FIN): FIN from A and B's ACK;
//! - a failure: RST from the side that failed (the producer when a read failed, the
//!   consumer when a write failed), and nothing after it.
//!
//! B→A is the mirror image. Sequence numbers are derived, never stored per packet:
//! the next sequence number of a side is its ISN + 1 (the SYN) + the bytes the relay
//! read from it + 1 once its FIN is out; its acknowledgement number is the other
//! side's ISN + 1 + the bytes the relay wrote to it + 1 once it got the other's FIN.
//! So an ACK acknowledges only what that side has really received, and a segment
//! never acknowledges bytes the capture has not shown (events of one direction reach
//! the logger in order, and a `Read` always before the `Wrote` of its bytes).
//!
//! Wireshark's expert analysis must find nothing to flag:
//! - a pure ACK is written only when its acknowledgement number moves forward (each
//!   `Wrote` adds bytes), so no two ACKs of a side repeat (a "duplicate ACK") and the
//!   window never changes without one (a "window update");
//! - every window is the largest one (65535 scaled by 2^14, about 1 GiB, announced
//!   in the SYNs) and never 0, so the bytes in flight, at most the `-b` buffer,
//!   almost never reach it; where they would end exactly at its edge ("window
//!   full"), a byte waits (see `Held`);
//! - data is contiguous and never repeated, so no "previous segment not captured",
//!   retransmission or "ACKed unseen segment".
//!
//! `.pcapng` files get the same packets, and on each packet after the handshake a
//! comment with the relay's view (`B is 512 bytes behind`), which no packet sniffer
//! can know. `file` writes the formats; `packet` lays out each packet's bytes.
//!
//! Every packet's headers are built in one reused buffer and written before its
//! payload, which is never copied; the capture allocates nothing per packet.

#[cfg(test)]
#[path = "capture_tests.rs"]
mod tests;

use std::fmt::Write as _;
use std::io::{self, Write};
use std::mem;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::capture::packet::{self, Flags, Segment, SynOptions};
use crate::error::os_text;
use crate::relay::event::{Direction, End, Event};
use crate::relay::faults::Injected;

use crate::capture::Format;
use crate::capture::file::PacketFile;
use crate::words::Count;

/// The window scale both sides announce: the largest RFC 7323 allows.
const WINDOW_SHIFT: u8 = 14;
/// Every window field: with the shift, 65535 × 16384 bytes (just under 1 GiB).
const WINDOW: u16 = u16::MAX;

/// The connection as the capture shows it: the real addresses of A and B, the moment
/// A was accepted, and the initial sequence numbers of A and B.
#[derive(Debug, Clone)]
pub struct Connection {
    pub a: SocketAddr,
    pub b: SocketAddr,
    pub at: SystemTime,
    pub isns: [u32; 2],
    /// How A and B were really reached when not by plain TCP (TLS, its version and
    /// cipher suite; a UNIX socket, its name): in pcapng, the comment on each one's
    /// SYN, since the packets show plain TCP.
    pub transports: [Option<String>; 2],
}

impl Connection {
    /// ISNs that look like real ones (Wireshark shows relative numbers anyway): a
    /// mix of the accept time, different for A and B.
    pub fn new(a: SocketAddr, b: SocketAddr, at: SystemTime) -> Connection {
        let nanos = at.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos() as u64;
        // splitmix64's finaliser: every input bit affects every output bit.
        let mut x = nanos.wrapping_add(0x9e37_79b9_7f4a_7c15);
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
        Connection {
            a,
            b,
            at,
            isns: [x as u32, (x >> 32) as u32],
            transports: [None, None],
        }
    }
}

/// One side of the connection, A or B, as the capture has shown it so far.
#[derive(Debug)]
struct Peer {
    addr: SocketAddr,
    isn: u32,
    /// Data bytes this side has sent in the capture: what the relay read from it,
    /// less a byte held back (see `Held`).
    sent: u64,
    /// The producer has closed: its FIN is to be shown after its last data byte.
    fin_due: bool,
    fin_sent: bool,
    /// Data bytes this side received: what the relay wrote to it.
    got: u64,
    fin_got: bool,
    /// The data bytes acknowledged by this side's last segment.
    acked: u64,
    /// This side has sent a segment after its SYN. Until then Wireshark takes its
    /// window from the SYN, unscaled.
    past_syn: bool,
}

impl Peer {
    fn new(addr: SocketAddr, isn: u32) -> Peer {
        Peer {
            addr,
            isn,
            sent: 0,
            fin_due: false,
            fin_sent: false,
            got: 0,
            fin_got: false,
            acked: 0,
            past_syn: false,
        }
    }

    /// The sequence number of this side's next byte (see the module comment).
    /// Truncating the byte count to 32 bits is the modular arithmetic TCP uses.
    fn next_seq(&self) -> u32 {
        self.isn
            .wrapping_add(1)
            .wrapping_add(self.sent as u32)
            .wrapping_add(u32::from(self.fin_sent))
    }
}

/// The last byte of a read, not shown yet.
///
/// A data segment that ends exactly at the edge of the receiver's window (the
/// receiver's last acknowledgement plus its window) is what Wireshark calls "window
/// full". Bytes in flight can reach the window only in two corners: before the
/// receiver's first ACK, when the only window Wireshark knows is the unscaled 65535
/// of its SYN (`-b 65535` fills it with the first read), and with a buffer of 1 GiB.
/// A segment in the middle of a read is simply cut one byte short. But the last
/// segment of a read ends where the read does, however it is split; so the read's
/// last byte waits until the receiver's next segment has moved the edge (or a later
/// read carries it past the edge), and the receiver's acknowledgements never count
/// it before it is shown.
#[derive(Debug, Clone, Copy)]
struct Held {
    dir: Direction,
    byte: u8,
}

/// What a packet's pcapng comment says.
enum Comment<'a> {
    None,
    /// `A over TLS (...)`: how side 0 (A) or 1 (B) was really reached.
    Transport {
        side: usize,
        transport: &'a str,
    },
    /// `B is N bytes behind` / `B is in sync`, for the flow towards `to`.
    Status {
        dir: Direction,
    },
    Shutdown {
        dir: Direction,
    },
    Failed {
        dir: Direction,
        error: &'a io::Error,
    },
    /// `--reset-after`: this direction's consumer was reset after so many bytes.
    Injected {
        dir: Direction,
        after: u64,
    },
}

/// Writes the capture of one relayed connection into `W`.
pub struct Capture<W: Write> {
    file: PacketFile<W>,
    /// A and B, indexed by `Direction::index` of the flow each produces.
    peers: [Peer; 2],
    /// The largest TCP payload per packet for these addresses.
    mss: usize,
    held: Option<Held>,
    /// A RST was written: the connection is over, later events are not shown.
    reset: bool,
    /// The headers of the packet being written.
    packet: Vec<u8>,
    /// A held byte and the start of the next read, as one payload.
    joined: Vec<u8>,
}

impl<W: Write> Capture<W> {
    /// Writes the file header and the handshake of `connection`.
    pub fn new(out: W, format: Format, connection: Connection) -> io::Result<Capture<W>> {
        Self::start(PacketFile::new(out, format)?, connection)
    }

    /// Writes the handshake of another `connection` into a file whose header is
    /// written already (`-k`: one TCP stream per connection, in one file).
    pub fn continuing(out: W, format: Format, connection: Connection) -> io::Result<Capture<W>> {
        Self::start(PacketFile::continuing(out, format)?, connection)
    }

    fn start(file: PacketFile<W>, connection: Connection) -> io::Result<Capture<W>> {
        let (a, b) = packet::same_family(connection.a, connection.b);
        let mss = packet::max_payload(a.ip());
        let mut capture = Capture {
            file,
            peers: [
                Peer::new(a, connection.isns[0]),
                Peer::new(b, connection.isns[1]),
            ],
            mss,
            held: None,
            reset: false,
            packet: Vec::with_capacity(packet::MAX_HEADERS),
            joined: Vec::with_capacity(mss),
        };
        capture.handshake(connection.at, &connection.transports)?;
        Ok(capture)
    }

    /// Shows what one relay event did to the connection.
    pub fn record(&mut self, event: &Event) -> io::Result<()> {
        if self.reset {
            return Ok(());
        }
        let at = event.at();
        match *event {
            Event::Read { dir, ref chunk, .. } => self.read(dir, chunk, at)?,
            Event::Wrote { dir, n, .. } => self.wrote(dir, n as u64, at)?,
            Event::Closed { dir, .. } => self.closed(dir, at)?,
            // The producer's FIN shows when the relay reads it, as its data does: it
            // comes after all the data read, and the peers' later packets may answer
            // it. (A FIN shown only once the relay had passed it on could come after
            // the other side's answer to it.) The consumer acknowledges it at
            // `Closed`, when it gets it.
            Event::Eof { dir, .. } => {
                self.peers[dir.index()].fin_due = true;
                self.fin_if_due(dir, at)?;
            }
            Event::Failed {
                dir,
                end,
                ref error,
                ..
            } => {
                let who = match end {
                    End::Producer => dir.index(),
                    End::Consumer => 1 - dir.index(),
                };
                return self.reset_by(who, at, Comment::Failed { dir, error });
            }
            // An injected reset (`--reset-after`): the consumer got an RST, which in
            // the one connection the capture shows comes from the producer.
            Event::Injected {
                dir,
                fault: Injected::Reset(after),
                ..
            } => return self.reset_by(dir.index(), at, Comment::Injected { dir, after }),
            // An injected stall: nothing happens, which the capture shows as the
            // consumer's acknowledgements stopping.
            Event::Injected { .. } => {}
        }
        self.release(at, false)
    }

    /// The consumer of `dir` got `n` more bytes, and acknowledges them.
    fn wrote(&mut self, dir: Direction, n: u64, at: SystemTime) -> io::Result<()> {
        let to = 1 - dir.index();
        self.peers[to].got += n;
        self.ack_if_new(to, at, Comment::Status { dir })
    }

    /// Everything of `dir` was written and the consumer's write side shut down.
    fn closed(&mut self, dir: Direction, at: SystemTime) -> io::Result<()> {
        let to = 1 - dir.index();
        // The FIN normally went out at the producer's `Eof`; a replay, which has no
        // `Eof`, shows it here. Either way it is due now, and nothing is held any
        // more: everything was written.
        self.peers[dir.index()].fin_due = true;
        self.release(at, true)?;
        self.fin_if_due(dir, at)?;
        if !self.peers[to].fin_got {
            // The relay's shutdown passed the FIN on to the consumer, whose kernel
            // acknowledges it at once.
            self.peers[to].fin_got = true;
            self.ack(to, at, Comment::None)?;
        }
        Ok(())
    }

    /// An RST from `who`, after every byte held back; nothing is shown after it.
    fn reset_by(&mut self, who: usize, at: SystemTime, comment: Comment) -> io::Result<()> {
        self.release(at, true)?;
        let seq = self.peers[who].next_seq();
        self.segment(who, seq, Flags::RST_ACK, &[], at, comment)?;
        self.reset = true;
        Ok(())
    }

    /// Shows `bytes` going from one side to the other and the receiver acknowledging
    /// them: a `Read` and the `Wrote` of all of it. The replay has no relay events;
    /// it calls this once a chunk is written whole (ours) or received and matched
    /// (the peer's).
    pub fn delivered(&mut self, dir: Direction, bytes: &[u8], at: SystemTime) -> io::Result<()> {
        if self.reset || bytes.is_empty() {
            return Ok(());
        }
        self.read(dir, bytes, at)?;
        self.wrote(dir, bytes.len() as u64, at)?;
        self.release(at, false)
    }

    /// Shows a byte still held back: the relay has ended, and the capture holds
    /// every byte read.
    pub fn finish(&mut self, at: SystemTime) -> io::Result<()> {
        if self.reset {
            return Ok(());
        }
        self.release(at, true)
    }

    /// Data segments for bytes the relay read.
    fn read(&mut self, dir: Direction, chunk: &[u8], at: SystemTime) -> io::Result<()> {
        let (from, to) = (dir.index(), 1 - dir.index());
        let mut rest = chunk;
        if let Some(held) = self.held.take_if(|held| held.dir == dir) {
            // The held byte goes out with the start of this read, so that its
            // segment ends past the window's edge.
            let take = rest.len().min(self.mss - 1);
            let mut joined = mem::take(&mut self.joined);
            joined.clear();
            joined.push(held.byte);
            joined.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            let written = self.data(dir, &joined, rest.is_empty(), at);
            self.joined = joined;
            written?;
        }
        while !rest.is_empty() {
            // Split so that no packet exceeds the IP length limit.
            let mut len = rest.len().min(self.mss);
            let in_flight = self.peers[from].sent + len as u64 - self.peers[to].acked;
            if in_flight == self.window(to) {
                if len == rest.len() {
                    // The read ends at the window's edge: its last byte waits.
                    let (shown, last) = rest.split_at(len - 1);
                    self.held = Some(Held { dir, byte: last[0] });
                    if !shown.is_empty() {
                        self.data(dir, shown, true, at)?;
                    }
                    return Ok(());
                }
                // A piece in the middle of the read: one byte shorter, and the
                // next piece goes past the edge.
                len -= 1;
            }
            let piece;
            (piece, rest) = rest.split_at(len);
            self.data(dir, piece, rest.is_empty(), at)?;
        }
        Ok(())
    }

    /// The producer's FIN, once it is due and no byte of its is held back (the FIN
    /// comes after every data byte).
    fn fin_if_due(&mut self, dir: Direction, at: SystemTime) -> io::Result<()> {
        let from = dir.index();
        let held = self.held.is_some_and(|held| held.dir == dir);
        if !self.peers[from].fin_due || self.peers[from].fin_sent || held {
            return Ok(());
        }
        let seq = self.peers[from].next_seq();
        self.peers[from].fin_sent = true;
        self.segment(
            from,
            seq,
            Flags::FIN_ACK,
            &[],
            at,
            Comment::Shutdown { dir },
        )
    }

    /// Shows the held byte once its segment would no longer end at the edge of the
    /// receiver's window, or anyway when `force`d; then lets the receiver
    /// acknowledge what it could not count before.
    fn release(&mut self, at: SystemTime, force: bool) -> io::Result<()> {
        let Some(held) = self.held else {
            return Ok(());
        };
        let (from, to) = (held.dir.index(), 1 - held.dir.index());
        let in_flight = self.peers[from].sent + 1 - self.peers[to].acked;
        if !force && in_flight == self.window(to) {
            return Ok(());
        }
        self.held = None;
        self.data(held.dir, &[held.byte], true, at)?;
        self.ack_if_new(to, at, Comment::Status { dir: held.dir })?;
        // A FIN that waited for the held byte follows it.
        self.fin_if_due(held.dir, at)
    }

    /// One data segment from the producer of `dir`; `last` for the last of a read.
    fn data(
        &mut self,
        dir: Direction,
        payload: &[u8],
        last: bool,
        at: SystemTime,
    ) -> io::Result<()> {
        let from = dir.index();
        // PSH on the last segment of a read, as a sender's TCP does at the end of
        // a write.
        let flags = if last { Flags::PSH_ACK } else { Flags::ACK };
        // Counted before the comment is written: it tells the backlog this segment
        // makes.
        let seq = self.peers[from].next_seq();
        self.peers[from].sent += payload.len() as u64;
        self.segment(from, seq, flags, payload, at, Comment::Status { dir })
    }

    /// SYN, SYN-ACK, ACK, all at the moment A was accepted (the relay saw nothing
    /// earlier of A's connection). Only SYNs carry options, and their windows are
    /// never scaled. Each SYN's comment says how that side was really reached.
    fn handshake(&mut self, at: SystemTime, transports: &[Option<String>; 2]) -> io::Result<()> {
        let options = Some(SynOptions {
            // Fits in u16: at most 65495.
            mss: self.mss as u16,
            window_shift: WINDOW_SHIFT,
        });
        for (from, flags) in [(0, Flags::SYN), (1, Flags::SYN_ACK)] {
            let (seq, ack) = (self.peers[from].isn, self.peers[1 - from].isn);
            self.write_segment(from, seq, ack.wrapping_add(1), flags, options, &[])?;
            let comment = match &transports[from] {
                Some(transport) => Comment::Transport {
                    side: from,
                    transport,
                },
                None => Comment::None,
            };
            self.write_record(at, &[], comment)?;
        }
        self.ack(0, at, Comment::None)
    }

    /// The window of `side` in bytes, as Wireshark reckons it (see `past_syn`).
    fn window(&self, side: usize) -> u64 {
        if self.peers[side].past_syn {
            u64::from(WINDOW) << WINDOW_SHIFT
        } else {
            u64::from(WINDOW)
        }
    }

    /// The data bytes `side` can acknowledge: what it got, but never a byte the
    /// capture has not shown yet.
    fn acknowledgeable(&self, side: usize) -> u64 {
        self.peers[side].got.min(self.peers[1 - side].sent)
    }

    /// A pure ACK from `from`, if it has something new to acknowledge: an ACK that
    /// repeats the last one is a "duplicate ACK" to Wireshark.
    fn ack_if_new(&mut self, from: usize, at: SystemTime, comment: Comment) -> io::Result<()> {
        if self.acknowledgeable(from) > self.peers[from].acked {
            self.ack(from, at, comment)?;
        }
        Ok(())
    }

    /// A pure ACK from `from`, acknowledging what it has received so far.
    fn ack(&mut self, from: usize, at: SystemTime, comment: Comment) -> io::Result<()> {
        let seq = self.peers[from].next_seq();
        self.segment(from, seq, Flags::ACK, &[], at, comment)
    }

    /// One segment from `from` with sequence number `seq`, acknowledging what `from`
    /// has received.
    fn segment(
        &mut self,
        from: usize,
        seq: u32,
        flags: Flags,
        payload: &[u8],
        at: SystemTime,
        comment: Comment,
    ) -> io::Result<()> {
        let acked = self.acknowledgeable(from);
        let ack = self.peers[1 - from]
            .isn
            .wrapping_add(1)
            .wrapping_add(acked as u32)
            .wrapping_add(u32::from(self.peers[from].fin_got));
        self.write_segment(from, seq, ack, flags, None, payload)?;
        let side = &mut self.peers[from];
        side.acked = acked;
        side.past_syn = true;
        self.write_record(at, payload, comment)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }

    /// The writer, for a caller that wants the bytes (tests).
    pub fn into_inner(self) -> W {
        self.file.into_inner()
    }

    /// Builds the packet's headers into the reused buffer.
    fn write_segment(
        &mut self,
        from: usize,
        seq: u32,
        ack: u32,
        flags: Flags,
        syn_options: Option<SynOptions>,
        payload: &[u8],
    ) -> io::Result<()> {
        let segment = Segment {
            src: self.peers[from].addr,
            dst: self.peers[1 - from].addr,
            seq,
            ack,
            flags,
            window: WINDOW,
            syn_options,
            payload,
        };
        packet::write_headers(&mut self.packet, &segment).map_err(io::Error::other)
    }

    /// Appends the packet whose headers are in the buffer, and `payload`, to the
    /// file, stamped `at`, with `comment` where the format has room for one.
    fn write_record(&mut self, at: SystemTime, payload: &[u8], comment: Comment) -> io::Result<()> {
        let (peers, held) = (&self.peers, self.held);
        self.file.write(at, &self.packet, payload, |text| {
            write_comment(text, &comment, peers, held)
        })
    }
}

/// The relay's view for a pcapng comment, worded as the terminal words it.
fn write_comment(out: &mut String, comment: &Comment, peers: &[Peer; 2], held: Option<Held>) {
    // Writing into a String cannot fail.
    let _ = match *comment {
        Comment::None => Ok(()),
        Comment::Transport { side, transport } => {
            write!(out, "{} over {transport}", ["A", "B"][side])
        }
        Comment::Status { dir } => {
            let (from, to) = (&peers[dir.index()], &peers[1 - dir.index()]);
            // What the relay read, the held byte included, less what it wrote.
            let read = from.sent + u64::from(held.is_some_and(|h| h.dir == dir));
            match read.saturating_sub(to.got) {
                0 => write!(out, "{} is in sync", dir.to()),
                behind => write!(out, "{} is {} behind", dir.to(), Count(behind, "byte")),
            }
        }
        Comment::Shutdown { dir } => write!(out, "{} -> {} flow shutdown", dir.from(), dir.to()),
        Comment::Failed { dir, error } => write!(
            out,
            "Passthrough from {} to {} failed: {}",
            dir.from(),
            dir.to(),
            os_text(error)
        ),
        Comment::Injected { dir, after } => write!(
            out,
            "{} -> {} reset after {} (injected)",
            dir.from(),
            dir.to(),
            Count(after, "byte")
        ),
    };
}
