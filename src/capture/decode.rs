//! From a captured frame to the TCP segment inside it, whatever link layer, tunnels
//! and fragmentation it came through.
//!
//! Captures of the same loopback conversation look different depending on the tool
//! and the interface: Ethernet frames (possibly VLAN-tagged) from a real NIC, Linux
//! "cooked" headers from `tcpdump -i any` (v1 from older tools or `-y LINUX_SLL`, v2
//! from current ones), bare IP packets from tunnels, and the BSD loopback/null header
//! from macOS's `lo0`. Captures taken where people debug add layers: VLAN tags (one or
//! two, QinQ), PPPoE sessions (DSL), MPLS label stacks, GRE (with or without key and
//! sequence number, IP or Ethernet inside), VXLAN on UDP 4789 (Ethernet inside), and
//! IPv4 or IPv6 inside IPv4 or IPv6. Each layer is peeled in turn, in any order, up to
//! `MAX_DEPTH` layers; the connection is the innermost TCP/IP header's. IP fragments
//! are put back together (`defrag`) wherever they appear, outer or inner.
//!
//! The IP, IPv6 extension, UDP and TCP headers are read by etherparse, a parser that
//! is fuzzed and widely used; the tunnel and link headers it does not know (PPPoE,
//! MPLS, GRE, VXLAN, Linux cooked v2) are a few fixed fields each, decoded here.
//!
//! The reading is *lax*: a frame cut short by the capture's snap length still yields
//! the part of the payload that was captured (the rest becomes a hole the reassembly
//! knows about), and Ethernet padding after a short IP packet is cut off by the IP
//! length. Whatever is not used is counted by reason (`Skipped`), for `--list`.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use etherparse::{
    IpAuthHeaderSlice, Ipv4HeaderSlice, Ipv6FragmentHeaderSlice, Ipv6HeaderSlice,
    Ipv6RawExtHeaderSlice, TcpHeaderSlice, UdpHeaderSlice,
};

use crate::capture::defrag::{Added, Defragmenter, Fragment, FragmentKey};
use crate::capture::packet::Flags;
use crate::capture::shared::Chunk;

/// Link-layer header types (LINKTYPE_* in the pcap and pcapng specifications).
pub mod link {
    pub const NULL: u32 = 0;
    pub const ETHERNET: u32 = 1;
    /// `DLT_RAW` as some systems numbered it before LINKTYPE_RAW existed.
    pub const RAW_OPENBSD: u32 = 12;
    pub const RAW_BSDOS: u32 = 14;
    pub const RAW: u32 = 101;
    pub const LOOP: u32 = 108;
    pub const LINUX_SLL: u32 = 113;
    pub const IPV4: u32 = 228;
    pub const IPV6: u32 = 229;
    pub const LINUX_SLL2: u32 = 276;
}

/// Whether frames of this link type can be decoded.
pub fn supported(link_type: u32) -> bool {
    use link::*;
    matches!(
        link_type,
        NULL | ETHERNET
            | RAW_OPENBSD
            | RAW_BSDOS
            | RAW
            | LOOP
            | LINUX_SLL
            | IPV4
            | IPV6
            | LINUX_SLL2
    )
}

/// One TCP segment as captured (`packet::Segment` is one of ours, to be written).
/// Its payload is the bytes themselves (`Vec<u8>`), or only how many there are
/// (`PayloadLen`) for a pass over the file that counts bytes and never shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedSegment<P = Vec<u8>> {
    /// Capture time, since the Unix epoch.
    pub time: Duration,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub flags: Flags,
    /// The payload bytes the capture holds (fewer than were sent if it was cut short).
    pub payload: P,
}

/// What a decoded segment keeps of its payload, and what the reassembly needs of it.
pub trait Payload: Default {
    /// Made from the payload's bytes in the frame being decoded, which is in `chunk`
    /// when the reader read it into one (else the reader reuses its buffer for the
    /// next frame).
    fn captured(bytes: &[u8], chunk: Option<&Chunk>) -> Self;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// What is left after the first `skip` bytes (`skip` at most `len`).
    fn past(self, skip: usize) -> Self;
    /// The payload, kept for a while (behind a hole): holding nothing else.
    fn detached(self) -> Self {
        self
    }
}

/// The bytes themselves: one copy out of the reader's buffer, for a replay to send
/// or compare.
impl Payload for Vec<u8> {
    fn captured(bytes: &[u8], _: Option<&Chunk>) -> Self {
        bytes.to_vec()
    }

    fn len(&self) -> usize {
        Vec::len(self)
    }

    /// The payload itself when nothing is skipped, as for every segment but a
    /// retransmission that overlaps, so that its bytes are not copied again.
    fn past(self, skip: usize) -> Self {
        if skip == 0 {
            self
        } else {
            self[skip..].to_vec()
        }
    }
}

/// Only the payload's length: a listing counts bytes and copies none of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PayloadLen(pub usize);

impl Payload for PayloadLen {
    fn captured(bytes: &[u8], _: Option<&Chunk>) -> Self {
        PayloadLen(bytes.len())
    }

    fn len(&self) -> usize {
        self.0
    }

    fn past(self, skip: usize) -> Self {
        PayloadLen(self.0.saturating_sub(skip))
    }
}

/// Linux cooked headers: where the protocol type (an EtherType) sits, and the header
/// length, from the tcpdump.org LINKTYPE_LINUX_SLL and LINUX_SLL2 pages. Decoded
/// here because etherparse knows only version 1, and refuses its ARPHRD_LOOPBACK
/// frames, which are exactly what `tcpdump -i any` records for loopback traffic.
const SLL_PROTOCOL_AT: usize = 14;
const SLL_HEADER_LEN: usize = 16;
const SLL2_PROTOCOL_AT: usize = 0;
const SLL2_HEADER_LEN: usize = 20;
/// Payload of a null/loopback frame starts after a 4-byte address family.
const NULL_HEADER_LEN: usize = 4;

/// Tunnels in tunnels: a frame with more layers than this is no real capture, and the
/// limit keeps a crafted one from recursing without end.
pub const MAX_DEPTH: usize = 16;

/// EtherTypes, IP protocol numbers and ports of the layers peeled here.
mod number {
    pub const ETHER_IPV4: u16 = 0x0800;
    pub const ETHER_IPV6: u16 = 0x86dd;
    pub const ETHER_VLAN: u16 = 0x8100;
    pub const ETHER_QINQ: u16 = 0x88a8;
    /// The pre-standard QinQ outer tag some switches still send.
    pub const ETHER_QINQ_OLD: u16 = 0x9100;
    pub const ETHER_PPPOE_SESSION: u16 = 0x8864;
    pub const ETHER_MPLS: u16 = 0x8847;
    pub const ETHER_MPLS_MULTICAST: u16 = 0x8848;
    /// Transparent Ethernet bridging: an Ethernet frame inside GRE.
    pub const ETHER_BRIDGED: u16 = 0x6558;
    pub const PPP_IPV4: u16 = 0x0021;
    pub const PPP_IPV6: u16 = 0x0057;
    pub const IP_IN_IP: u8 = 4;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const IPV6_IN_IP: u8 = 41;
    pub const GRE: u8 = 47;
    pub const MPLS_IN_IP: u8 = 137;
    pub const IPV6_HOP_BY_HOP: u8 = 0;
    pub const IPV6_ROUTING: u8 = 43;
    pub const IPV6_FRAGMENT: u8 = 44;
    pub const IPV6_AUTH: u8 = 51;
    pub const IPV6_DEST_OPTIONS: u8 = 60;
    pub const VXLAN_PORT: u16 = 4789;
}

/// Why a packet was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Skip {
    /// Something else than TCP: UDP, ICMP, ARP, a PPP control frame...
    NonTcp,
    /// A header cut short or nonsensical.
    Malformed,
    /// More than `MAX_DEPTH` layers.
    TooDeep,
}

/// Packets of a capture that were not used, by reason (the `skipped:` line of
/// `--list`). A datagram put back together from fragments counts all its frames.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Skipped {
    pub non_tcp: u64,
    pub malformed: u64,
    pub too_deep: u64,
    /// Packets by link type, for link types that cannot be decoded.
    pub unknown_links: BTreeMap<u32, u64>,
    /// Fragments of datagrams that never completed (lost, timed out, crowded out).
    pub incomplete_fragments: u64,
}

impl Skipped {
    pub fn total(&self) -> u64 {
        self.non_tcp
            + self.malformed
            + self.too_deep
            + self.unknown_links.values().sum::<u64>()
            + self.incomplete_fragments
    }

    fn count(&mut self, skip: Skip, frames: u64) {
        match skip {
            Skip::NonTcp => self.non_tcp += frames,
            Skip::Malformed => self.malformed += frames,
            Skip::TooDeep => self.too_deep += frames,
        }
    }
}

/// "12 non-TCP, 3 unknown link types (LINKTYPE 147), 2 incomplete fragments": the
/// reasons with a count, or "nothing".
impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = |n: u64| if n == 1 { "" } else { "s" };
        let mut parts = Vec::new();
        if self.non_tcp > 0 {
            parts.push(format!("{} non-TCP", self.non_tcp));
        }
        if self.malformed > 0 {
            parts.push(format!("{} malformed or cut short", self.malformed));
        }
        if self.too_deep > 0 {
            parts.push(format!(
                "{} nested more than {MAX_DEPTH} layers deep",
                self.too_deep
            ));
        }
        let unknown: u64 = self.unknown_links.values().sum();
        if unknown > 0 {
            let types: Vec<String> = self.unknown_links.keys().map(u32::to_string).collect();
            parts.push(format!(
                "{unknown} unknown link type{} (LINKTYPE {})",
                plural(unknown),
                types.join(", ")
            ));
        }
        let incomplete = self.incomplete_fragments;
        if incomplete > 0 {
            parts.push(format!(
                "{incomplete} incomplete fragment{}",
                plural(incomplete)
            ));
        }
        if parts.is_empty() {
            return f.write_str("nothing");
        }
        f.write_str(&parts.join(", "))
    }
}

/// Turns frames into TCP segments, one at a time, keeping what spans frames: the
/// fragments of unfinished datagrams, and the count of what was skipped.
#[derive(Debug, Default)]
pub struct Decoder {
    defrag: Defragmenter,
    skipped: Skipped,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// The TCP segment in `frame` of link type `link_type`, captured at `time`; `None`
    /// when the frame holds something else (counted), or a fragment of a datagram
    /// not yet complete.
    pub fn decode(
        &mut self,
        link_type: u32,
        frame: &[u8],
        time: Duration,
    ) -> Option<CapturedSegment> {
        self.decode_with(link_type, frame, time)
    }

    /// As `decode`, keeping of the payload what `P` keeps (its bytes, or its length).
    pub fn decode_with<P: Payload>(
        &mut self,
        link_type: u32,
        frame: &[u8],
        time: Duration,
    ) -> Option<CapturedSegment<P>> {
        self.decode_in(link_type, frame, None, time)
    }

    /// As `decode_with`, for a frame that is part of `chunk`: a payload may share it.
    pub fn decode_in<P: Payload>(
        &mut self,
        link_type: u32,
        frame: &[u8],
        chunk: Option<&Chunk>,
        time: Duration,
    ) -> Option<CapturedSegment<P>> {
        if !supported(link_type) {
            *self.skipped.unknown_links.entry(link_type).or_default() += 1;
            return None;
        }
        let mut walk = Walk {
            defrag: &mut self.defrag,
            time,
            chunk,
            frames: 1,
            payload: PhantomData,
        };
        match walk.link(link_type, frame) {
            Ok(segment) => segment,
            Err(skip) => {
                let frames = walk.frames;
                self.skipped.count(skip, frames);
                None
            }
        }
    }

    /// A packet that could not even be handed over (a pcapng packet naming an
    /// interface that was never described).
    pub fn malformed(&mut self) {
        self.skipped.malformed += 1;
    }

    /// The capture has ended: fragments still waiting never completed.
    pub fn finish(&mut self) {
        self.defrag.finish();
    }

    /// What was skipped so far (all of it after `finish`).
    pub fn skipped(&self) -> Skipped {
        Skipped {
            incomplete_fragments: self.defrag.given_up(),
            ..self.skipped.clone()
        }
    }
}

/// A TCP segment, nothing yet (a fragment that waits for the rest), or a skip.
type Step<P> = Result<Option<CapturedSegment<P>>, Skip>;

/// The two addresses of the IP header a payload came in.
#[derive(Debug, Clone, Copy)]
struct Ends {
    src: IpAddr,
    dst: IpAddr,
}

/// One frame being peeled, layer by layer.
struct Walk<'a, P> {
    defrag: &'a mut Defragmenter,
    time: Duration,
    /// The buffer the frame was read into, if it may be shared.
    chunk: Option<&'a Chunk>,
    /// The capture frames the bytes at hand came from: 1, or all the fragments of the
    /// datagram last put back together.
    frames: u64,
    /// What the segment found keeps of its payload.
    payload: PhantomData<P>,
}

/// The first `len` bytes of `data`, or a skip if there are fewer.
fn need(data: &[u8], len: usize) -> Result<&[u8], Skip> {
    data.get(..len).ok_or(Skip::Malformed)
}

fn be16(data: &[u8], at: usize) -> Result<u16, Skip> {
    match data.get(at..at + 2) {
        Some(&[hi, lo]) => Ok(u16::from_be_bytes([hi, lo])),
        _ => Err(Skip::Malformed),
    }
}

impl<P: Payload> Walk<'_, P> {
    fn link(&mut self, link_type: u32, frame: &[u8]) -> Step<P> {
        match link_type {
            link::ETHERNET => self.ethernet(frame, 0),
            link::LINUX_SLL => self.cooked(frame, SLL_PROTOCOL_AT, SLL_HEADER_LEN),
            link::LINUX_SLL2 => self.cooked(frame, SLL2_PROTOCOL_AT, SLL2_HEADER_LEN),
            // The family word is in the writer's byte order (NULL) or big-endian (LOOP),
            // and BSDs number AF_INET6 differently; the IP version nibble says it all.
            link::NULL | link::LOOP => {
                self.ip(frame.get(NULL_HEADER_LEN..).ok_or(Skip::Malformed)?, 0)
            }
            _ => self.ip(frame, 0),
        }
    }

    /// What follows a Linux cooked header.
    fn cooked(&mut self, frame: &[u8], protocol_at: usize, header_len: usize) -> Step<P> {
        let ether_type = be16(frame, protocol_at)?;
        let rest = frame.get(header_len..).ok_or(Skip::Malformed)?;
        self.ether_type(ether_type, rest, 0)
    }

    fn ethernet(&mut self, frame: &[u8], depth: usize) -> Step<P> {
        let ether_type = be16(frame, 12)?;
        self.ether_type(ether_type, &frame[14..], depth + 1)
    }

    fn ether_type(&mut self, ether_type: u16, rest: &[u8], depth: usize) -> Step<P> {
        use number::*;
        if depth > MAX_DEPTH {
            return Err(Skip::TooDeep);
        }
        match ether_type {
            ETHER_IPV4 | ETHER_IPV6 => self.ip(rest, depth),
            ETHER_VLAN | ETHER_QINQ | ETHER_QINQ_OLD => {
                let inner = be16(rest, 2)?;
                self.ether_type(inner, &rest[4..], depth + 1)
            }
            ETHER_PPPOE_SESSION => self.pppoe(rest, depth),
            ETHER_MPLS | ETHER_MPLS_MULTICAST => self.mpls(rest, depth),
            ETHER_BRIDGED => self.ethernet(rest, depth),
            _ => Err(Skip::NonTcp),
        }
    }

    /// A PPPoE session frame (RFC 2516): version and type 1, code 0, a session id,
    /// the length of the PPP frame, then PPP's protocol field.
    fn pppoe(&mut self, rest: &[u8], depth: usize) -> Step<P> {
        let header = need(rest, 6)?;
        if header[0] != 0x11 || header[1] != 0 {
            return Err(Skip::NonTcp);
        }
        let len = usize::from(be16(header, 4)?);
        let ppp = &rest[6..];
        let ppp = &ppp[..len.min(ppp.len())];
        // A protocol field of one byte (RFC 1661's compression) ends in an odd byte.
        let (protocol, payload) = match ppp.first() {
            Some(&b) if b & 1 == 1 => (u16::from(b), &ppp[1..]),
            _ => (be16(ppp, 0)?, &ppp[2..]),
        };
        match protocol {
            number::PPP_IPV4 | number::PPP_IPV6 => self.ip(payload, depth + 1),
            _ => Err(Skip::NonTcp),
        }
    }

    /// An MPLS label stack (RFC 3032): labels of four bytes up to the one with the
    /// bottom-of-stack bit. What follows has no type field; like Wireshark, an IP
    /// version nibble of 4 or 6 is taken as IPv4 or IPv6.
    fn mpls(&mut self, mut rest: &[u8], depth: usize) -> Step<P> {
        loop {
            let label = need(rest, 4)?;
            rest = &rest[4..];
            if label[2] & 1 == 1 {
                break;
            }
        }
        match rest.first().map(|b| b >> 4) {
            Some(4 | 6) => self.ip(rest, depth + 1),
            _ => Err(Skip::NonTcp),
        }
    }

    fn ip(&mut self, packet: &[u8], depth: usize) -> Step<P> {
        if depth > MAX_DEPTH {
            return Err(Skip::TooDeep);
        }
        match packet.first().map(|b| b >> 4) {
            Some(4) => self.ipv4(packet, depth),
            Some(6) => self.ipv6(packet, depth),
            _ => Err(Skip::Malformed),
        }
    }

    fn ipv4(&mut self, packet: &[u8], depth: usize) -> Step<P> {
        let header = Ipv4HeaderSlice::from_slice(packet).map_err(|_| Skip::Malformed)?;
        let header_len = header.slice().len();
        let total = usize::from(header.total_len());
        // A total length shorter than the header is nonsense: trust the capture.
        let end = if total < header_len {
            packet.len()
        } else {
            total.min(packet.len())
        };
        let payload = &packet[header_len..end];
        let ends = Ends {
            src: header.source_addr().into(),
            dst: header.destination_addr().into(),
        };
        let protocol = header.protocol().0;
        if !header.is_fragmenting_payload() {
            return self.transport(protocol, ends, payload, depth + 1);
        }
        let fragment = Fragment {
            key: FragmentKey {
                src: ends.src,
                dst: ends.dst,
                id: header.identification().into(),
                protocol,
            },
            offset: header.fragments_offset().byte_offset().into(),
            more: header.more_fragments(),
            payload,
        };
        match self.reassemble(fragment)? {
            Some(whole) => self.transport(protocol, ends, &whole, depth + 1),
            None => Ok(None),
        }
    }

    fn ipv6(&mut self, packet: &[u8], depth: usize) -> Step<P> {
        let header = Ipv6HeaderSlice::from_slice(packet).map_err(|_| Skip::Malformed)?;
        let len = usize::from(header.payload_length());
        let header_len = header.slice().len();
        // A payload length of 0 is a jumbogram's, or a tool's that left it unset.
        let end = if len == 0 {
            packet.len()
        } else {
            (header_len + len).min(packet.len())
        };
        let ends = Ends {
            src: header.source_addr().into(),
            dst: header.destination_addr().into(),
        };
        let payload = &packet[header_len..end];
        self.ipv6_extensions(header.next_header().0, ends, payload, depth)
    }

    /// IPv6 extension headers, up to the payload. etherparse reads each, but walks on
    /// past a fragment header into bytes that belong to the datagram, so the walk
    /// (which stops there to defragment) is ours.
    fn ipv6_extensions(
        &mut self,
        mut next: u8,
        ends: Ends,
        mut rest: &[u8],
        depth: usize,
    ) -> Step<P> {
        use number::*;
        for _ in 0..MAX_DEPTH {
            let len = match next {
                IPV6_HOP_BY_HOP | IPV6_ROUTING | IPV6_DEST_OPTIONS => {
                    let ext =
                        Ipv6RawExtHeaderSlice::from_slice(rest).map_err(|_| Skip::Malformed)?;
                    next = ext.next_header().0;
                    ext.slice().len()
                }
                IPV6_AUTH => {
                    let ext = IpAuthHeaderSlice::from_slice(rest).map_err(|_| Skip::Malformed)?;
                    next = ext.next_header().0;
                    ext.slice().len()
                }
                IPV6_FRAGMENT => {
                    let ext =
                        Ipv6FragmentHeaderSlice::from_slice(rest).map_err(|_| Skip::Malformed)?;
                    next = ext.next_header().0;
                    let after = &rest[ext.slice().len()..];
                    if !ext.is_fragmenting_payload() {
                        rest = after;
                        continue;
                    }
                    let fragment = Fragment {
                        key: FragmentKey {
                            src: ends.src,
                            dst: ends.dst,
                            id: ext.identification(),
                            protocol: next,
                        },
                        offset: ext.fragment_offset().byte_offset().into(),
                        more: ext.more_fragments(),
                        payload: after,
                    };
                    return match self.reassemble(fragment)? {
                        Some(whole) => self.ipv6_extensions(next, ends, &whole, depth + 1),
                        None => Ok(None),
                    };
                }
                _ => return self.transport(next, ends, rest, depth + 1),
            };
            rest = &rest[len..];
        }
        Err(Skip::TooDeep)
    }

    /// Adds a fragment: the datagram's payload once it is complete.
    fn reassemble(&mut self, fragment: Fragment) -> Result<Option<Vec<u8>>, Skip> {
        match self.defrag.add(fragment, self.time, self.frames) {
            Added::Waiting => Ok(None),
            Added::Malformed => Err(Skip::Malformed),
            Added::Complete(whole) => {
                self.frames = whole.frames;
                Ok(Some(whole.payload))
            }
        }
    }

    /// The payload of an IP packet, by its protocol number.
    fn transport(&mut self, protocol: u8, ends: Ends, payload: &[u8], depth: usize) -> Step<P> {
        use number::*;
        match protocol {
            TCP => tcp(ends, payload, self.time, self.chunk).map(Some),
            IP_IN_IP | IPV6_IN_IP => self.ip(payload, depth),
            GRE => self.gre(payload, depth),
            UDP => self.udp(payload, depth),
            MPLS_IN_IP => self.mpls(payload, depth),
            _ => Err(Skip::NonTcp),
        }
    }

    /// GRE (RFC 2784 and 2890): flags, a version, an EtherType, then a checksum, a key
    /// and a sequence number, each there when its flag says so.
    fn gre(&mut self, packet: &[u8], depth: usize) -> Step<P> {
        const CHECKSUM: u16 = 0x8000;
        const ROUTING: u16 = 0x4000;
        const KEY: u16 = 0x2000;
        const SEQUENCE: u16 = 0x1000;
        let flags = be16(packet, 0)?;
        let ether_type = be16(packet, 2)?;
        // Version 1 is PPTP's, with PPP inside; RFC 1701's routing is long obsolete.
        if flags & 0x7 != 0 || flags & ROUTING != 0 {
            return Err(Skip::NonTcp);
        }
        let len = [CHECKSUM, KEY, SEQUENCE]
            .iter()
            .filter(|&&flag| flags & flag != 0)
            .count()
            * 4
            + 4;
        let rest = packet.get(len..).ok_or(Skip::Malformed)?;
        self.ether_type(ether_type, rest, depth + 1)
    }

    /// UDP: only VXLAN (RFC 7348) is peeled, an 8-byte header and an Ethernet frame.
    fn udp(&mut self, datagram: &[u8], depth: usize) -> Step<P> {
        let header = UdpHeaderSlice::from_slice(datagram).map_err(|_| Skip::Malformed)?;
        let vxlan = number::VXLAN_PORT;
        if header.destination_port() != vxlan && header.source_port() != vxlan {
            return Err(Skip::NonTcp);
        }
        let len = usize::from(header.length());
        let end = if len < 8 {
            datagram.len()
        } else {
            len.min(datagram.len())
        };
        let frame = datagram[8..end].get(8..).ok_or(Skip::Malformed)?;
        self.ethernet(frame, depth + 1)
    }
}

/// The TCP segment in an IP payload.
fn tcp<P: Payload>(
    ends: Ends,
    payload: &[u8],
    time: Duration,
    chunk: Option<&Chunk>,
) -> Result<CapturedSegment<P>, Skip> {
    let tcp = TcpHeaderSlice::from_slice(payload).map_err(|_| Skip::Malformed)?;
    Ok(CapturedSegment {
        time,
        src: SocketAddr::new(ends.src, tcp.source_port()),
        dst: SocketAddr::new(ends.dst, tcp.destination_port()),
        seq: tcp.sequence_number(),
        flags: Flags {
            syn: tcp.syn(),
            ack: tcp.ack(),
            psh: tcp.psh(),
            fin: tcp.fin(),
            rst: tcp.rst(),
        },
        payload: P::captured(&payload[tcp.slice().len()..], chunk),
    })
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
