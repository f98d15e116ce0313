//! From a captured frame to the TCP segment inside it, whatever link layer it came on.
//!
//! Captures of the same loopback conversation look different depending on the tool
//! and the interface: Ethernet frames (possibly VLAN-tagged) from a real NIC, Linux
//! "cooked" headers from `tcpdump -i any` (v1 from older tools or `-y LINUX_SLL`, v2
//! from current ones), bare IP packets from tunnels, and the BSD loopback/null header
//! from macOS's `lo0`. Each is peeled here down to the IP packet; etherparse then
//! slices IP and TCP, so header lengths, options and IPv6 extension headers are
//! handled by a parser that is fuzzed and widely used instead of by offsets of ours.
//!
//! The slicing is *lax*: a frame cut short by the capture's snap length still yields
//! the part of the payload that was captured (the rest becomes a hole the reassembly
//! knows about), and Ethernet padding after a short IP packet is cut off by the IP
//! length. Anything that is not TCP over IPv4/IPv6, or not a whole TCP header, or an
//! IP fragment (its TCP header may be elsewhere), is skipped, as Wireshark does for
//! stream following.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use etherparse::{EtherType, LaxNetSlice, LaxSlicedPacket, TransportSlice};

use crate::capture::packet::Flags;

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedSegment {
    /// Capture time, since the Unix epoch.
    pub time: Duration,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub flags: Flags,
    /// The payload bytes the capture holds (fewer than were sent if it was cut short).
    pub payload: Vec<u8>,
}

/// Linux cooked headers: where the protocol type (an EtherType) sits, and the header
/// length, from the tcpdump.org LINKTYPE_LINUX_SLL and LINUX_SLL2 pages. These are
/// the only hand-decoded offsets here: etherparse knows only version 1, and refuses
/// its ARPHRD_LOOPBACK frames, which are exactly what `tcpdump -i any` records for
/// loopback traffic.
const SLL_PROTOCOL_AT: usize = 14;
const SLL_HEADER_LEN: usize = 16;
const SLL2_PROTOCOL_AT: usize = 0;
const SLL2_HEADER_LEN: usize = 20;
/// Payload of a null/loopback frame starts after a 4-byte address family.
const NULL_HEADER_LEN: usize = 4;

/// The TCP segment in `frame` of link type `link_type`, or `None` when the frame holds
/// something else (or too little of a TCP segment to use).
pub fn tcp_segment(link_type: u32, frame: &[u8], time: Duration) -> Option<CapturedSegment> {
    let sliced = match link_type {
        link::ETHERNET => LaxSlicedPacket::from_ethernet(frame).ok()?,
        link::LINUX_SLL => cooked(frame, SLL_PROTOCOL_AT, SLL_HEADER_LEN)?,
        link::LINUX_SLL2 => cooked(frame, SLL2_PROTOCOL_AT, SLL2_HEADER_LEN)?,
        // The family word is in the writer's byte order (NULL) or big-endian (LOOP),
        // and BSDs number AF_INET6 differently; the IP version nibble says it all.
        link::NULL | link::LOOP => LaxSlicedPacket::from_ip(frame.get(NULL_HEADER_LEN..)?).ok()?,
        link::RAW | link::RAW_OPENBSD | link::RAW_BSDOS | link::IPV4 | link::IPV6 => {
            LaxSlicedPacket::from_ip(frame).ok()?
        }
        _ => return None,
    };
    let (src_ip, dst_ip): (IpAddr, IpAddr) = match sliced.net.as_ref()? {
        LaxNetSlice::Ipv4(ip) => (
            ip.header().source_addr().into(),
            ip.header().destination_addr().into(),
        ),
        LaxNetSlice::Ipv6(ip) => (
            ip.header().source_addr().into(),
            ip.header().destination_addr().into(),
        ),
        LaxNetSlice::Arp(_) => return None,
    };
    let Some(TransportSlice::Tcp(tcp)) = sliced.transport else {
        return None;
    };
    Some(CapturedSegment {
        time,
        src: SocketAddr::new(src_ip, tcp.source_port()),
        dst: SocketAddr::new(dst_ip, tcp.destination_port()),
        seq: tcp.sequence_number(),
        flags: Flags {
            syn: tcp.syn(),
            ack: tcp.ack(),
            psh: tcp.psh(),
            fin: tcp.fin(),
            rst: tcp.rst(),
        },
        payload: tcp.payload().to_vec(),
    })
}

/// Slices what follows a Linux cooked header.
fn cooked(frame: &[u8], protocol_at: usize, header_len: usize) -> Option<LaxSlicedPacket<'_>> {
    let protocol = frame.get(protocol_at..protocol_at + 2)?;
    let ether_type = EtherType(u16::from_be_bytes([protocol[0], protocol[1]]));
    Some(LaxSlicedPacket::from_ether_type(
        ether_type,
        frame.get(header_len..)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn ipv4_tcp(payload: &[u8]) -> Vec<u8> {
        let builder = PacketBuilder::ipv4([127, 0, 0, 1], [127, 0, 0, 2], 64)
            .tcp(40000, 8080, 1000, 65535)
            .psh()
            .ack(77);
        let mut out = Vec::new();
        builder.write(&mut out, payload).unwrap();
        out
    }

    fn check(link_type: u32, frame: &[u8]) {
        let seg = tcp_segment(link_type, frame, Duration::from_secs(1)).expect("a segment");
        assert_eq!(seg.src, "127.0.0.1:40000".parse().unwrap());
        assert_eq!(seg.dst, "127.0.0.2:8080".parse().unwrap());
        assert_eq!(seg.seq, 1000);
        assert!(seg.flags.ack && !seg.flags.syn);
        assert_eq!(seg.payload, b"hello");
    }

    #[test]
    fn every_link_type_reaches_the_same_segment() {
        let ip = ipv4_tcp(b"hello");
        check(link::RAW, &ip);
        check(link::RAW_OPENBSD, &ip);

        let mut null = 2u32.to_le_bytes().to_vec();
        null.extend_from_slice(&ip);
        check(link::NULL, &null);

        let mut eth = vec![0u8; 12];
        eth.extend_from_slice(&[0x08, 0x00]);
        eth.extend_from_slice(&ip);
        eth.resize(eth.len() + 7, 0); // Ethernet padding must not become payload
        check(link::ETHERNET, &eth);

        let mut vlan = vec![0u8; 12];
        vlan.extend_from_slice(&[0x81, 0x00, 0x00, 0x2a, 0x08, 0x00]);
        vlan.extend_from_slice(&ip);
        check(link::ETHERNET, &vlan);

        let mut sll = vec![0, 0, 3, 4, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0]; // ARPHRD_LOOPBACK
        sll.extend_from_slice(&[0x08, 0x00]);
        sll.extend_from_slice(&ip);
        check(link::LINUX_SLL, &sll);

        let mut sll2 = vec![0x08, 0x00, 0, 0, 0, 0, 0, 1, 3, 4, 0, 6];
        sll2.extend_from_slice(&[0; 8]);
        sll2.extend_from_slice(&ip);
        check(link::LINUX_SLL2, &sll2);
    }

    #[test]
    fn ipv6_segments() {
        let builder = PacketBuilder::ipv6([0; 16], [0; 16], 64)
            .tcp(1, 2, 3, 100)
            .syn();
        let mut ip = Vec::new();
        builder.write(&mut ip, b"").unwrap();
        let seg = tcp_segment(link::RAW, &ip, Duration::ZERO).unwrap();
        assert_eq!(seg.src, "[::]:1".parse().unwrap());
        assert!(seg.flags.syn && seg.payload.is_empty());
    }

    #[test]
    fn a_frame_cut_short_keeps_what_was_captured() {
        let ip = ipv4_tcp(b"hello");
        let seg = tcp_segment(link::RAW, &ip[..ip.len() - 2], Duration::ZERO).unwrap();
        assert_eq!(seg.payload, b"hel");
    }

    #[test]
    fn other_traffic_and_garbage_are_skipped() {
        let builder = PacketBuilder::ipv4([1, 1, 1, 1], [2, 2, 2, 2], 9).udp(1, 2);
        let mut udp = Vec::new();
        builder.write(&mut udp, b"x").unwrap();
        assert_eq!(tcp_segment(link::RAW, &udp, Duration::ZERO), None);
        let ip = ipv4_tcp(b"hello");
        for cut in 0..40 {
            assert_eq!(tcp_segment(link::RAW, &ip[..cut], Duration::ZERO), None);
            assert_eq!(
                tcp_segment(link::ETHERNET, &ip[..cut], Duration::ZERO),
                None
            );
            assert_eq!(
                tcp_segment(link::LINUX_SLL2, &ip[..cut], Duration::ZERO),
                None
            );
        }
        assert_eq!(tcp_segment(147, &ip, Duration::ZERO), None);
    }
}
