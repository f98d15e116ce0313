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
//!   in the SYNs), far more than the user-space buffer holds in practice, so the
//!   bytes in flight never fill it ("window full", "zero window");
//! - data is contiguous and never repeated, so no "previous segment not captured",
//!   retransmission or "ACKed unseen segment".
//!
//! `.pcapng` files get the same packets, nanosecond timestamps, and on each packet
//! after the handshake a comment with the relay's view (`B is 512 bytes behind`),
//! which no packet sniffer can know. Classic pcap files use the nanosecond format.
//!
//! Every packet is built in one reused buffer and written straight into `W`; the
//! pcapng comment is a reused string. The capture allocates nothing per packet.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::mem;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use byteorder_slice::NativeEndian;
use pcap_file::pcap::{PcapHeader, PcapPacket};
use pcap_file::pcapng::Block;
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::section_header::{SectionHeaderBlock, SectionHeaderOption};
use pcap_file::{DataLink, Endianness, PcapError, TsResolution};

use crate::error::os_text;
use crate::event::{Direction, End, Event};
use crate::packet::{self, Flags, Segment, SynOptions};

/// The window scale both sides announce: the largest RFC 7323 allows.
const WINDOW_SHIFT: u8 = 14;
/// Every window field: with the shift, 65535 × 16384 bytes (just under 1 GiB).
const WINDOW: u16 = u16::MAX;
/// No packet is longer (see `packet::MAX_PACKET`), so none is ever cut.
const SNAPLEN: u32 = packet::MAX_PACKET as u32;
/// pcapng `if_tsresol`: timestamps count nanoseconds (10^-9 s).
const NANOSECONDS: u8 = 9;

/// Which file format to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pcap,
    PcapNg,
}

impl Format {
    /// pcapng for a `.pcapng` path, classic pcap for anything else.
    pub fn for_path(path: &Path) -> Format {
        match path.extension() {
            Some(ext) if ext.eq_ignore_ascii_case("pcapng") => Format::PcapNg,
            _ => Format::Pcap,
        }
    }
}

/// The connection as the capture shows it: the real addresses of A and B, the moment
/// A was accepted, and the initial sequence numbers of A and B.
#[derive(Debug, Clone, Copy)]
pub struct Connection {
    pub a: SocketAddr,
    pub b: SocketAddr,
    pub at: SystemTime,
    pub isns: [u32; 2],
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
        }
    }
}

/// One side of the connection, A or B, as the capture has shown it so far.
#[derive(Debug)]
struct Side {
    addr: SocketAddr,
    isn: u32,
    /// Data bytes this side has sent in the capture: what the relay read from it,
    /// less a byte held back (see `Held`).
    sent: u64,
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

impl Side {
    fn new(addr: SocketAddr, isn: u32) -> Side {
        Side {
            addr,
            isn,
            sent: 0,
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
/// Splitting the read would not help, since its last segment still ends where the
/// read does; so the read's last byte waits until the receiver's next segment has
/// moved the edge (or a later read carries it past the edge), and the receiver's
/// acknowledgements never count it before it is shown.
#[derive(Debug, Clone, Copy)]
struct Held {
    dir: Direction,
    byte: u8,
}

/// What a packet's pcapng comment says.
enum Note<'a> {
    None,
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
}

/// The file's layout and its per-format state.
enum Layout {
    Pcap,
    /// The options of the block being written, kept between packets so that their
    /// vector, and the comment string in it, are reused.
    PcapNg {
        options: Vec<EnhancedPacketOption<'static>>,
    },
}

/// Writes the capture of one relayed connection into `W`.
pub struct Capture<W: Write> {
    out: W,
    layout: Layout,
    /// A and B, indexed by `Direction::index` of the flow each produces.
    sides: [Side; 2],
    /// The largest TCP payload per packet for these addresses.
    mss: usize,
    held: Option<Held>,
    /// The latest timestamp written (see `write_record`).
    last_at: SystemTime,
    /// A RST was written: the connection is over, later events are not shown.
    reset: bool,
    packet: Vec<u8>,
    /// A held byte and the start of the next read, as one payload.
    joined: Vec<u8>,
    comment: String,
}

impl<W: Write> Capture<W> {
    /// Writes the file header and the handshake of `connection`.
    pub fn new(out: W, format: Format, connection: Connection) -> io::Result<Capture<W>> {
        let (a, b) = packet::same_family(connection.a, connection.b);
        let mss = packet::max_payload(a.ip());
        let mut capture = Capture {
            out,
            layout: match format {
                Format::Pcap => Layout::Pcap,
                Format::PcapNg => Layout::PcapNg {
                    options: Vec::with_capacity(1),
                },
            },
            sides: [
                Side::new(a, connection.isns[0]),
                Side::new(b, connection.isns[1]),
            ],
            mss,
            held: None,
            last_at: UNIX_EPOCH,
            reset: false,
            packet: Vec::with_capacity(packet::MAX_PACKET),
            joined: Vec::with_capacity(mss),
            comment: String::with_capacity(128),
        };
        capture.write_file_header()?;
        capture.handshake(connection.at)?;
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
            Event::Wrote { dir, n, .. } => {
                let to = 1 - dir.index();
                self.sides[to].got += n as u64;
                self.ack_if_new(to, at, Note::Status { dir })?;
            }
            Event::Closed { dir, at } => {
                let (from, to) = (dir.index(), 1 - dir.index());
                if !self.sides[from].fin_sent {
                    // All written, so the receiver has acknowledged everything and
                    // nothing is held for it any more; this is only in case.
                    self.release(at, true)?;
                    let seq = self.sides[from].next_seq();
                    self.sides[from].fin_sent = true;
                    self.segment(from, seq, Flags::FIN_ACK, &[], at, Note::Shutdown { dir })?;
                    // The relay's shutdown sent the FIN to the consumer, whose kernel
                    // acknowledges it at once.
                    self.sides[to].fin_got = true;
                    self.ack(to, at, Note::None)?;
                }
            }
            Event::Failed {
                dir,
                end,
                ref error,
                ..
            } => {
                self.release(at, true)?;
                let who = match end {
                    End::Producer => dir.index(),
                    End::Consumer => 1 - dir.index(),
                };
                let seq = self.sides[who].next_seq();
                self.segment(
                    who,
                    seq,
                    Flags::RST_ACK,
                    &[],
                    at,
                    Note::Failed { dir, error },
                )?;
                self.reset = true;
                return Ok(());
            }
            // The FIN shows when the direction is shut down (`Closed`), after the
            // buffered bytes: that is when the consumer gets it.
            Event::Eof { .. } => {}
        }
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
            let len = rest.len().min(self.mss);
            let piece;
            (piece, rest) = rest.split_at(len);
            let in_flight = self.sides[from].sent + len as u64 - self.sides[to].acked;
            if rest.is_empty() && in_flight == self.window(to) {
                let (shown, last) = piece.split_at(len - 1);
                self.held = Some(Held { dir, byte: last[0] });
                if !shown.is_empty() {
                    self.data(dir, shown, true, at)?;
                }
            } else {
                self.data(dir, piece, rest.is_empty(), at)?;
            }
        }
        Ok(())
    }

    /// Shows the held byte once its segment would no longer end at the edge of the
    /// receiver's window, or anyway when `force`d; then lets the receiver
    /// acknowledge what it could not count before.
    fn release(&mut self, at: SystemTime, force: bool) -> io::Result<()> {
        let Some(held) = self.held else {
            return Ok(());
        };
        let (from, to) = (held.dir.index(), 1 - held.dir.index());
        let in_flight = self.sides[from].sent + 1 - self.sides[to].acked;
        if !force && in_flight == self.window(to) {
            return Ok(());
        }
        self.held = None;
        self.data(held.dir, &[held.byte], true, at)?;
        self.ack_if_new(to, at, Note::Status { dir: held.dir })
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
        let seq = self.sides[from].next_seq();
        self.sides[from].sent += payload.len() as u64;
        self.segment(from, seq, flags, payload, at, Note::Status { dir })
    }

    fn write_file_header(&mut self) -> io::Result<()> {
        match self.layout {
            Layout::Pcap => {
                let header = PcapHeader {
                    snaplen: SNAPLEN,
                    datalink: DataLink::RAW,
                    ts_resolution: TsResolution::NanoSecond,
                    endianness: Endianness::native(),
                    ..PcapHeader::default()
                };
                header.write_to(&mut self.out).map_err(into_io)?;
            }
            Layout::PcapNg { .. } => {
                let section = SectionHeaderBlock {
                    endianness: Endianness::native(),
                    options: vec![SectionHeaderOption::UserApplication(Cow::Borrowed(
                        concat!("tiburoncin ", env!("CARGO_PKG_VERSION")),
                    ))],
                    ..SectionHeaderBlock::default()
                };
                let interface = InterfaceDescriptionBlock {
                    linktype: DataLink::RAW,
                    snaplen: SNAPLEN,
                    options: vec![
                        InterfaceDescriptionOption::IfName(Cow::Borrowed("tiburoncin")),
                        InterfaceDescriptionOption::IfDescription(Cow::Borrowed(
                            "A <-> B as relayed by tiburoncin",
                        )),
                        InterfaceDescriptionOption::IfTsResol(NANOSECONDS),
                    ],
                };
                for block in [
                    Block::SectionHeader(section),
                    Block::InterfaceDescription(interface),
                ] {
                    block.write_to::<NativeEndian, _>(&mut self.out)?;
                }
            }
        }
        Ok(())
    }

    /// SYN, SYN-ACK, ACK, all at the moment A was accepted (the relay saw nothing
    /// earlier of A's connection). Only SYNs carry options, and their windows are
    /// never scaled.
    fn handshake(&mut self, at: SystemTime) -> io::Result<()> {
        let options = Some(SynOptions {
            // Fits in u16: at most 65495.
            mss: self.mss as u16,
            window_shift: WINDOW_SHIFT,
        });
        for (from, flags) in [(0, Flags::SYN), (1, Flags::SYN_ACK)] {
            let (seq, ack) = (self.sides[from].isn, self.sides[1 - from].isn);
            self.write_segment(from, seq, ack.wrapping_add(1), flags, options, &[])?;
            self.write_record(at, Note::None)?;
        }
        self.ack(0, at, Note::None)
    }

    /// The window of `side` in bytes, as Wireshark reckons it (see `past_syn`).
    fn window(&self, side: usize) -> u64 {
        if self.sides[side].past_syn {
            u64::from(WINDOW) << WINDOW_SHIFT
        } else {
            u64::from(WINDOW)
        }
    }

    /// The data bytes `side` can acknowledge: what it got, but never a byte the
    /// capture has not shown yet.
    fn acknowledgeable(&self, side: usize) -> u64 {
        self.sides[side].got.min(self.sides[1 - side].sent)
    }

    /// A pure ACK from `from`, if it has something new to acknowledge: an ACK that
    /// repeats the last one is a "duplicate ACK" to Wireshark.
    fn ack_if_new(&mut self, from: usize, at: SystemTime, note: Note) -> io::Result<()> {
        if self.acknowledgeable(from) > self.sides[from].acked {
            self.ack(from, at, note)?;
        }
        Ok(())
    }

    /// A pure ACK from `from`, acknowledging what it has received so far.
    fn ack(&mut self, from: usize, at: SystemTime, note: Note) -> io::Result<()> {
        let seq = self.sides[from].next_seq();
        self.segment(from, seq, Flags::ACK, &[], at, note)
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
        note: Note,
    ) -> io::Result<()> {
        let acked = self.acknowledgeable(from);
        let ack = self.sides[1 - from]
            .isn
            .wrapping_add(1)
            .wrapping_add(acked as u32)
            .wrapping_add(u32::from(self.sides[from].fin_got));
        self.write_segment(from, seq, ack, flags, None, payload)?;
        let side = &mut self.sides[from];
        side.acked = acked;
        side.past_syn = true;
        self.write_record(at, note)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The writer, for a caller that wants the bytes (tests).
    pub fn into_inner(self) -> W {
        self.out
    }

    /// Builds the packet into the reused buffer.
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
            src: self.sides[from].addr,
            dst: self.sides[1 - from].addr,
            seq,
            ack,
            flags,
            window: WINDOW,
            syn_options,
            payload,
        };
        packet::write(&mut self.packet, &segment).map_err(io::Error::other)
    }

    /// Appends the packet in the buffer to the file, stamped `at`.
    ///
    /// Each event is stamped when its system call returned, but events of the two
    /// directions can reach the logger a few microseconds out of that order (a
    /// writer sends its `Wrote` after the write returned, and by then the consumer
    /// may have answered and the other reader logged the answer). Packets keep the
    /// logger's order, which is a valid TCP history, so a stamp earlier than the
    /// last one written is raised to it: the file stays in time order.
    fn write_record(&mut self, at: SystemTime, note: Note) -> io::Result<()> {
        let at = at.max(self.last_at);
        self.last_at = at;
        let timestamp = at.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        // At most MAX_PACKET: `packet::write` refuses anything longer.
        let length = self.packet.len() as u32;
        match &mut self.layout {
            Layout::Pcap => {
                PcapPacket::new(timestamp, length, &self.packet)
                    .write_to::<_, NativeEndian>(&mut self.out, TsResolution::NanoSecond, SNAPLEN)
                    .map_err(into_io)?;
            }
            Layout::PcapNg { options } => {
                self.comment.clear();
                write_note(&mut self.comment, &note, &self.sides, self.held);
                if !self.comment.is_empty() {
                    options.push(EnhancedPacketOption::Comment(Cow::Owned(mem::take(
                        &mut self.comment,
                    ))));
                }
                // The block borrows nothing: the buffers move in and come back out.
                let block = Block::EnhancedPacket(EnhancedPacketBlock {
                    interface_id: 0,
                    timestamp,
                    original_len: length,
                    data: Cow::Owned(mem::take(&mut self.packet)),
                    options: mem::take(options),
                });
                let written = block.write_to::<NativeEndian, _>(&mut self.out);
                if let Block::EnhancedPacket(block) = block {
                    self.packet = block.data.into_owned();
                    *options = block.options;
                    if let Some(EnhancedPacketOption::Comment(Cow::Owned(text))) = options.pop() {
                        self.comment = text;
                    }
                }
                written?;
            }
        }
        Ok(())
    }
}

/// The relay's view for a pcapng comment, worded as the terminal words it.
fn write_note(out: &mut String, note: &Note, sides: &[Side; 2], held: Option<Held>) {
    // Writing into a String cannot fail.
    let _ = match *note {
        Note::None => Ok(()),
        Note::Status { dir } => {
            let (from, to) = (&sides[dir.index()], &sides[1 - dir.index()]);
            // What the relay read, the held byte included, less what it wrote.
            let read = from.sent + u64::from(held.is_some_and(|h| h.dir == dir));
            match read.saturating_sub(to.got) {
                0 => write!(out, "{} is in sync", dir.to()),
                behind => write!(out, "{} is {behind} bytes behind", dir.to()),
            }
        }
        Note::Shutdown { dir } => write!(out, "{} -> {} flow shutdown", dir.from(), dir.to()),
        Note::Failed { dir, error } => write!(
            out,
            "Passthrough from {} to {} failed: {}",
            dir.from(),
            dir.to(),
            os_text(error)
        ),
    };
}

fn into_io(error: PcapError) -> io::Error {
    match error {
        PcapError::IoError(error) => error,
        other => io::Error::other(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::{Chunk, Credit, user_space_buffer};
    use etherparse::{SlicedPacket, TransportSlice};
    use pcap_file::pcap::PcapReader;
    use pcap_file::pcapng::PcapNgReader;
    use std::net::IpAddr;

    use Direction::{AtoB, BtoA};

    const A: &str = "192.0.2.1:40000";
    const B: &str = "198.51.100.2:8080";

    /// One packet as read back from the file.
    #[derive(Debug, Clone, PartialEq)]
    struct Packet {
        at: Duration,
        src: SocketAddr,
        dst: SocketAddr,
        /// Relative to the sender's ISN, as Wireshark shows it.
        seq: u32,
        /// Relative to the receiver's ISN; 0 without the ACK flag.
        ack: u32,
        flags: &'static str,
        payload: Vec<u8>,
        comment: Option<String>,
    }

    fn time(ns: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000) + Duration::from_nanos(ns)
    }

    fn connection(isns: [u32; 2]) -> Connection {
        Connection {
            a: A.parse().unwrap(),
            b: B.parse().unwrap(),
            at: time(0),
            isns,
        }
    }

    /// Relay events, built as the relay builds them.
    struct Events {
        credits: [Credit; 2],
        list: Vec<Event>,
        clock: u64,
    }

    impl Events {
        fn new() -> Events {
            let (ab, _) = user_space_buffer(1 << 20);
            let (ba, _) = user_space_buffer(1 << 20);
            Events {
                credits: [ab, ba],
                list: Vec::new(),
                clock: 0,
            }
        }

        fn tick(&mut self) -> SystemTime {
            self.clock += 1_000;
            time(self.clock)
        }

        fn chunk(&mut self, dir: Direction, bytes: &[u8]) -> Chunk {
            let credit = &mut self.credits[dir.index()];
            let mut blank = credit.blank(&crossbeam_channel::never()).unwrap();
            let n = blank.read_from(bytes).unwrap();
            assert_eq!(n, bytes.len(), "a test chunk over 64 KiB");
            credit.fill(blank, n)
        }

        fn read(mut self, dir: Direction, bytes: &[u8]) -> Self {
            let at = self.tick();
            let chunk = self.chunk(dir, bytes);
            self.list.push(Event::Read { dir, chunk, at });
            self
        }

        fn wrote(mut self, dir: Direction, n: usize) -> Self {
            let at = self.tick();
            self.list.push(Event::Wrote {
                dir,
                n,
                spent: None,
                at,
            });
            self
        }

        fn closed(mut self, dir: Direction) -> Self {
            let at = self.tick();
            self.list.push(Event::Eof { dir, at });
            self.list.push(Event::Closed { dir, at });
            self
        }

        fn failed(mut self, dir: Direction, end: End, errno: i32) -> Self {
            let at = self.tick();
            let error = io::Error::from_raw_os_error(errno);
            self.list.push(Event::Failed {
                dir,
                end,
                error,
                at,
            });
            self
        }
    }

    fn capture(format: Format, isns: [u32; 2], events: Events, finish: bool) -> Vec<Packet> {
        let mut capture = Capture::new(Vec::new(), format, connection(isns)).unwrap();
        for event in &events.list {
            capture.record(event).unwrap();
        }
        if finish {
            capture.finish(time(u64::MAX >> 8)).unwrap();
        }
        parse(&capture.into_inner(), format, isns)
    }

    fn parse(file: &[u8], format: Format, isns: [u32; 2]) -> Vec<Packet> {
        let mut packets = Vec::new();
        match format {
            Format::Pcap => {
                let mut reader = PcapReader::new(file).unwrap();
                let header = reader.header();
                assert_eq!(header.datalink, DataLink::RAW);
                assert_eq!(header.ts_resolution, TsResolution::NanoSecond);
                while let Some(packet) = reader.next_packet() {
                    let packet = packet.unwrap();
                    assert_eq!(packet.orig_len as usize, packet.data.len());
                    packets.push(decode(packet.timestamp, &packet.data, None, isns));
                }
            }
            Format::PcapNg => {
                let mut reader = PcapNgReader::new(file).unwrap();
                while let Some(block) = reader.next_block() {
                    if let Block::EnhancedPacket(packet) = block.unwrap() {
                        let comment = packet.options.iter().find_map(|o| match o {
                            EnhancedPacketOption::Comment(text) => Some(text.to_string()),
                            _ => None,
                        });
                        packets.push(decode(packet.timestamp, &packet.data, comment, isns));
                    }
                }
                let interface = &reader.interfaces()[0];
                assert_eq!(interface.linktype, DataLink::RAW);
                assert!(
                    interface
                        .options
                        .contains(&InterfaceDescriptionOption::IfTsResol(NANOSECONDS))
                );
            }
        }
        packets
    }

    fn decode(at: Duration, data: &[u8], comment: Option<String>, isns: [u32; 2]) -> Packet {
        let sliced = SlicedPacket::from_ip(data).unwrap();
        let (src, dst) = match sliced.net.unwrap() {
            etherparse::NetSlice::Ipv4(ip) => (
                IpAddr::V4(ip.header().source_addr()),
                IpAddr::V4(ip.header().destination_addr()),
            ),
            etherparse::NetSlice::Ipv6(ip) => (
                IpAddr::V6(ip.header().source_addr()),
                IpAddr::V6(ip.header().destination_addr()),
            ),
            other => panic!("not IP: {other:?}"),
        };
        let Some(TransportSlice::Tcp(tcp)) = sliced.transport else {
            panic!("not TCP")
        };
        let src = SocketAddr::new(src, tcp.source_port());
        let from_a = src == A.parse().unwrap() || src.port() == 40000;
        let (own, other) = if from_a {
            (isns[0], isns[1])
        } else {
            (isns[1], isns[0])
        };
        let flags = match (tcp.syn(), tcp.ack(), tcp.psh(), tcp.fin(), tcp.rst()) {
            (true, false, false, false, false) => "SYN",
            (true, true, false, false, false) => "SYN-ACK",
            (false, true, false, false, false) => "ACK",
            (false, true, true, false, false) => "PSH-ACK",
            (false, true, false, true, false) => "FIN-ACK",
            (false, true, false, false, true) => "RST-ACK",
            other => panic!("unexpected flags {other:?}"),
        };
        assert_eq!(tcp.window_size(), WINDOW);
        Packet {
            at,
            src,
            dst: SocketAddr::new(dst, tcp.destination_port()),
            seq: tcp.sequence_number().wrapping_sub(own),
            ack: if tcp.ack() {
                tcp.acknowledgment_number().wrapping_sub(other)
            } else {
                0
            },
            flags,
            payload: tcp.payload().to_vec(),
            comment,
        }
    }

    /// (from A?, flags, seq, ack, payload length), the way one reads a capture.
    fn summary(packets: &[Packet]) -> Vec<(char, &'static str, u32, u32, usize)> {
        packets
            .iter()
            .map(|p| {
                let who = if p.src.port() == 40000 { 'A' } else { 'B' };
                (who, p.flags, p.seq, p.ack, p.payload.len())
            })
            .collect()
    }

    /// What Wireshark's analysis checks, for each side: data contiguous, no ACK of
    /// bytes not shown, and no pure ACK repeating the side's previous segment.
    fn assert_clean(packets: &[Packet]) {
        let mut next = [1u32, 1u32]; // the SYN takes sequence number 0
        let mut last_ack: [Option<u32>; 2] = [None, None];
        for (p, line) in packets.iter().zip(summary(packets)).skip(2) {
            let me = usize::from(p.src.port() != 40000);
            assert_eq!(p.seq, next[me], "a gap or an overlap at {line:?}");
            next[me] += p.payload.len() as u32 + u32::from(p.flags == "FIN-ACK");
            assert!(p.ack <= next[1 - me], "an ACK of bytes not shown: {line:?}");
            if p.flags == "ACK" && p.payload.is_empty() {
                assert_ne!(Some(p.ack), last_ack[me], "a duplicate ACK: {line:?}");
            }
            last_ack[me] = Some(p.ack);
        }
    }

    fn stream(packets: &[Packet], from_a: bool) -> Vec<u8> {
        packets
            .iter()
            .filter(|p| (p.src.port() == 40000) == from_a)
            .flat_map(|p| p.payload.iter().copied())
            .collect()
    }

    fn hello_session() -> Events {
        Events::new()
            .read(AtoB, b"hello\n")
            .wrote(AtoB, 6)
            .read(BtoA, b"how are you?\n")
            .wrote(BtoA, 13)
            .closed(AtoB)
            .closed(BtoA)
    }

    #[test]
    fn a_session_is_one_connection_with_derived_numbers() {
        let packets = capture(Format::Pcap, [1000, 2000], hello_session(), false);
        assert_eq!(
            summary(&packets),
            [
                ('A', "SYN", 0, 0, 0),
                ('B', "SYN-ACK", 0, 1, 0),
                ('A', "ACK", 1, 1, 0),
                ('A', "PSH-ACK", 1, 1, 6),
                ('B', "ACK", 1, 7, 0),
                ('B', "PSH-ACK", 1, 7, 13),
                ('A', "ACK", 7, 14, 0),
                ('A', "FIN-ACK", 7, 14, 0),
                ('B', "ACK", 14, 8, 0),
                ('B', "FIN-ACK", 14, 8, 0),
                ('A', "ACK", 8, 15, 0),
            ]
        );
        assert_clean(&packets);
        let a: SocketAddr = A.parse().unwrap();
        assert!(packets[0].src == a && packets[0].dst == B.parse().unwrap());
        // Each packet stamped with its event's moment, to the nanosecond.
        let since = |ns: u64| time(ns).duration_since(UNIX_EPOCH).unwrap();
        let stamps: Vec<Duration> = packets.iter().map(|p| p.at).collect();
        assert_eq!(stamps[..4], [since(0), since(0), since(0), since(1_000)]);
        assert_eq!(stamps[10], since(6_000));
        assert_eq!(stream(&packets, true), b"hello\n");
        assert_eq!(stream(&packets, false), b"how are you?\n");
    }

    #[test]
    fn pcapng_has_the_same_packets_and_the_relay_view() {
        let pcap = capture(Format::Pcap, [7, 9], hello_session(), false);
        let pcapng = capture(Format::PcapNg, [7, 9], hello_session(), false);
        let without_comments: Vec<Packet> = pcapng
            .iter()
            .cloned()
            .map(|p| Packet { comment: None, ..p })
            .collect();
        assert_eq!(without_comments, pcap);
        let comments: Vec<Option<&str>> = pcapng.iter().map(|p| p.comment.as_deref()).collect();
        assert_eq!(
            comments,
            [
                None,
                None,
                None,
                Some("B is 6 bytes behind"),
                Some("B is in sync"),
                Some("A is 13 bytes behind"),
                Some("A is in sync"),
                Some("A -> B flow shutdown"),
                None,
                Some("B -> A flow shutdown"),
                None,
            ]
        );
    }

    #[test]
    fn big_reads_are_split_and_sequence_numbers_wrap() {
        let data: Vec<u8> = (0..65536u32).map(|i| (i % 251) as u8).collect();
        let events = Events::new()
            .read(AtoB, &data)
            .read(AtoB, &data)
            .wrote(AtoB, 100_000)
            .wrote(AtoB, 31_072);
        // ISNs just below 2^32: the numbers wrap in the middle of the data.
        let packets = capture(Format::Pcap, [u32::MAX - 10, u32::MAX], events, false);
        let sizes: Vec<usize> = packets.iter().map(|p| p.payload.len()).collect();
        assert_eq!(sizes, [0, 0, 0, 65495, 41, 65495, 41, 0, 0]);
        assert_eq!(packets[4].flags, "PSH-ACK");
        assert_eq!(packets[5].flags, "ACK");
        assert_eq!(
            (packets[7].ack, packets[8].ack),
            (100_001, 131_073),
            "B acknowledges as it gets the bytes"
        );
        assert_clean(&packets);
        assert_eq!(stream(&packets, true), [&data[..], &data[..]].concat());
    }

    #[test]
    fn ipv6_endpoints_give_ipv6_packets_and_mixed_ones_are_mapped() {
        let mut conn = connection([1, 2]);
        conn.a = "[2001:db8::1]:40000".parse().unwrap();
        let mut capture = Capture::new(Vec::new(), Format::Pcap, conn).unwrap();
        let events = Events::new().read(AtoB, &[0x55; 65535]);
        capture.record(&events.list[0]).unwrap();
        let packets = parse(&capture.into_inner(), Format::Pcap, [1, 2]);
        assert_eq!(packets[0].src, "[2001:db8::1]:40000".parse().unwrap());
        assert_eq!(
            packets[0].dst,
            "[::ffff:198.51.100.2]:8080".parse().unwrap()
        );
        // IPv6 leaves 20 bytes less for the payload of a 65535-byte packet.
        assert_eq!(packets[3].payload.len(), 65475);
    }

    /// `-b 65535`: the first read fills the window of B's SYN exactly. Its last byte
    /// waits for B's first ACK, which does not count it before it is shown.
    #[test]
    fn a_read_that_fills_the_syn_window_holds_its_last_byte() {
        let data = vec![0xab; 65535];
        let events = Events::new()
            .read(AtoB, &data)
            .wrote(AtoB, 100)
            .wrote(AtoB, 65435)
            .read(AtoB, b"more")
            .wrote(AtoB, 4);
        let packets = capture(Format::PcapNg, [5, 6], events, false);
        assert_eq!(
            summary(&packets)[3..],
            [
                ('A', "ACK", 1, 1, 65495),
                ('A', "PSH-ACK", 65496, 1, 39),
                ('B', "ACK", 1, 101, 0),
                ('A', "PSH-ACK", 65535, 1, 1),
                ('B', "ACK", 1, 65536, 0),
                ('A', "PSH-ACK", 65536, 1, 4),
                ('B', "ACK", 1, 65540, 0),
            ]
        );
        assert_eq!(
            packets[4].comment.as_deref(),
            Some("B is 65535 bytes behind")
        );
        assert_clean(&packets);

        // Held until the next read: it goes out with that read's first bytes.
        let events = Events::new()
            .read(AtoB, &data)
            .read(AtoB, b"xyz")
            .wrote(AtoB, 65538);
        let packets = capture(Format::Pcap, [5, 6], events, false);
        assert_eq!(
            summary(&packets)[3..],
            [
                ('A', "ACK", 1, 1, 65495),
                ('A', "PSH-ACK", 65496, 1, 39),
                ('A', "PSH-ACK", 65535, 1, 4),
                ('B', "ACK", 1, 65539, 0),
            ]
        );
        assert_eq!(packets[5].payload, [0xab, b'x', b'y', b'z']);

        // Or until the relay ends.
        let packets = capture(Format::Pcap, [5, 6], Events::new().read(AtoB, &data), true);
        assert_eq!(stream(&packets, true), data);
    }

    #[test]
    fn partial_writes_are_acknowledged_as_they_happen() {
        let events = Events::new()
            .read(BtoA, &[1; 1000])
            .wrote(BtoA, 300)
            .wrote(BtoA, 300)
            .read(AtoB, b"interleaved")
            .wrote(BtoA, 400)
            .wrote(AtoB, 11);
        let packets = capture(Format::Pcap, [0, 0], events, false);
        assert_eq!(
            summary(&packets)[3..],
            [
                ('B', "PSH-ACK", 1, 1, 1000),
                ('A', "ACK", 1, 301, 0),
                ('A', "ACK", 1, 601, 0),
                ('A', "PSH-ACK", 1, 601, 11),
                ('A', "ACK", 12, 1001, 0),
                ('B', "ACK", 1001, 12, 0),
            ]
        );
        assert_clean(&packets);
    }

    #[test]
    fn a_failure_ends_with_a_reset_from_the_side_that_failed() {
        // B is gone: writing to it failed. B resets; nothing after that is shown.
        let events = Events::new()
            .read(AtoB, b"lost")
            .failed(AtoB, End::Consumer, libc::EPIPE)
            .read(BtoA, b"late")
            .closed(BtoA);
        let packets = capture(Format::PcapNg, [0, 0], events, true);
        let last = packets.last().unwrap();
        assert_eq!(
            summary(&packets)[3..],
            [('A', "PSH-ACK", 1, 1, 4), ('B', "RST-ACK", 1, 1, 0)]
        );
        assert_eq!(
            last.comment.as_deref(),
            Some("Passthrough from A to B failed: Broken pipe")
        );

        // A reset its connection: reading from it failed. A resets.
        let events = Events::new().failed(AtoB, End::Producer, libc::ECONNRESET);
        let packets = capture(Format::Pcap, [0, 0], events, false);
        assert_eq!(summary(&packets)[3..], [('A', "RST-ACK", 1, 1, 0)]);
    }

    #[test]
    fn the_file_stays_in_time_order() {
        // B's answer logged before the write that it answers: a few microseconds
        // out of order, as the relay threads can report them.
        let mut events = Events::new().read(AtoB, b"ping").read(BtoA, b"pong");
        events.list.push(Event::Wrote {
            dir: AtoB,
            n: 4,
            spent: None,
            at: time(1_500),
        });
        let packets = capture(Format::Pcap, [0, 0], events, false);
        let stamps: Vec<Duration> = packets.iter().map(|p| p.at).collect();
        assert!(stamps.is_sorted(), "{stamps:?}");
        assert_eq!(
            summary(&packets)[3..],
            [
                ('A', "PSH-ACK", 1, 1, 4),
                ('B', "PSH-ACK", 1, 1, 4),
                ('B', "ACK", 5, 5, 0),
            ]
        );
    }

    #[test]
    fn the_format_follows_the_file_name() {
        assert_eq!(Format::for_path(Path::new("x.pcapng")), Format::PcapNg);
        assert_eq!(
            Format::for_path(Path::new("dir.pcapng/x.PCAPNG")),
            Format::PcapNg
        );
        assert_eq!(Format::for_path(Path::new("x.pcap")), Format::Pcap);
        assert_eq!(Format::for_path(Path::new("pcapng")), Format::Pcap);
    }

    #[test]
    fn a_failing_writer_is_an_error() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::from_raw_os_error(libc::ENOSPC))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let error = Capture::new(Full, Format::Pcap, connection([0, 0]))
            .err()
            .unwrap();
        assert_eq!(error.raw_os_error(), Some(libc::ENOSPC));
        let error = Capture::new(Full, Format::PcapNg, connection([0, 0]))
            .err()
            .unwrap();
        assert_eq!(error.raw_os_error(), Some(libc::ENOSPC));
    }
}
