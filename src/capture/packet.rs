//! One TCP segment as the bytes of a raw IP packet, for the capture.
//!
//! The capture (see `capture`) decides what each segment says; this file only lays it
//! out: an IPv4 or IPv6 header, a TCP header (with the handshake's options when asked),
//! the payload, and both checksums, so that Wireshark's checksum validation passes.
//! Everything is written into a caller's buffer, which the capture reuses for every
//! packet: building a packet allocates nothing.
//!
//! The one limit that matters is the IP length field. An IPv4 packet is at most 65535
//! bytes in all; an IPv6 payload is at most 65535 bytes, but we hold the whole IPv6
//! packet to 65535 as well so that every packet fits the capture's snap length
//! (65535, what readers expect of a capture of plain TCP). `max_payload` is the TCP
//! payload left under that limit: the capture splits bigger reads into several
//! segments, and also announces it as the MSS in the handshake.

use std::net::{IpAddr, SocketAddr};

use etherparse::{IpNumber, Ipv4Header, Ipv6Header, TcpHeader, TcpOptionElement};
use thiserror::Error;

/// IPv4 header without options.
const IPV4_HEADER: usize = Ipv4Header::MIN_LEN;
/// IPv6 fixed header.
const IPV6_HEADER: usize = Ipv6Header::LEN;
/// TCP header without options: data segments carry none.
const TCP_HEADER: usize = TcpHeader::MIN_LEN;
/// The longest headers we write: IPv6, and TCP with the handshake's options.
pub const MAX_HEADERS: usize = IPV6_HEADER + TCP_HEADER + 8;
/// The largest packet we write, header included.
pub const MAX_PACKET: usize = u16::MAX as usize;
/// TTL / hop limit: what Linux uses.
const HOP_LIMIT: u8 = 64;

#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum PacketError {
    #[error("a TCP payload of {len} bytes does not fit in one IP packet (at most {max})")]
    TooBig { len: usize, max: usize },
    #[error("one segment between an IPv4 and an IPv6 address")]
    MixedFamilies,
}

/// The TCP flags that matter here: those a segment of ours can carry, and those the
/// reassembly reads from a captured one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    pub syn: bool,
    pub ack: bool,
    pub psh: bool,
    pub fin: bool,
    pub rst: bool,
}

impl Flags {
    pub const SYN: Flags = Flags {
        syn: true,
        ack: false,
        psh: false,
        fin: false,
        rst: false,
    };
    pub const SYN_ACK: Flags = Flags {
        syn: true,
        ..Flags::ACK
    };
    pub const ACK: Flags = Flags {
        syn: false,
        ack: true,
        psh: false,
        fin: false,
        rst: false,
    };
    pub const PSH_ACK: Flags = Flags {
        psh: true,
        ..Flags::ACK
    };
    pub const FIN_ACK: Flags = Flags {
        fin: true,
        ..Flags::ACK
    };
    pub const RST_ACK: Flags = Flags {
        rst: true,
        ..Flags::ACK
    };
}

/// The options a SYN or SYN-ACK announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynOptions {
    /// Maximum segment size.
    pub mss: u16,
    /// Window scale shift (RFC 7323): later windows are multiplied by 2^shift.
    pub window_shift: u8,
}

/// Everything one segment says.
#[derive(Debug, Clone, Copy)]
pub struct Segment<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    /// Meaningful only with the ACK flag; written as 0 without it.
    pub ack: u32,
    pub flags: Flags,
    pub window: u16,
    pub syn_options: Option<SynOptions>,
    pub payload: &'a [u8],
}

/// The TCP payload that fits in one packet between addresses of `ip`'s family.
pub fn max_payload(ip: IpAddr) -> usize {
    match ip {
        IpAddr::V4(_) => MAX_PACKET - IPV4_HEADER - TCP_HEADER,
        IpAddr::V6(_) => MAX_PACKET - IPV6_HEADER - TCP_HEADER,
    }
}

/// A and B as one connection can show them: both of one family. An IPv4-mapped
/// IPv6 address (what a dual-stack listener reports for an IPv4 client) counts as
/// the IPv4 address it maps. When only one of them is IPv6 (A came in over IPv6, B
/// was reached over IPv4, say), the IPv4 one is shown as its IPv4-mapped IPv6
/// address (`::ffff:127.0.0.1`).
pub fn same_family(a: SocketAddr, b: SocketAddr) -> (SocketAddr, SocketAddr) {
    let canonical = |addr: SocketAddr| SocketAddr::new(addr.ip().to_canonical(), addr.port());
    let (a, b) = (canonical(a), canonical(b));
    let mapped = |addr: SocketAddr| match addr.ip() {
        IpAddr::V4(v4) => SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), addr.port()),
        IpAddr::V6(_) => addr,
    };
    if a.is_ipv4() == b.is_ipv4() {
        (a, b)
    } else {
        (mapped(a), mapped(b))
    }
}

/// Replaces `out`'s contents with the IP and TCP headers of `segment` as a raw IP
/// packet (LINKTYPE_RAW), both checksums filled in. The payload is not copied: the
/// packet is `out` followed by `segment.payload`, and the capture file writes the
/// two one after the other.
pub fn write_headers(out: &mut Vec<u8>, segment: &Segment) -> Result<(), PacketError> {
    let max = max_payload(segment.src.ip());
    let too_big = PacketError::TooBig {
        len: segment.payload.len(),
        max,
    };
    if segment.payload.len() > max {
        return Err(too_big);
    }
    let tcp = tcp_header(segment);
    // The TCP length, options included, for the IP header and the pseudo-header.
    let tcp_len = tcp.header_len() + segment.payload.len();
    out.clear();
    // The length check above keeps every value below in range, so this error
    // cannot happen; it is mapped rather than unwrapped all the same.
    let pseudo_sum = match (segment.src.ip(), segment.dst.ip()) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let mut ip = Ipv4Header::new(
                tcp_len as u16,
                HOP_LIMIT,
                IpNumber::TCP,
                src.octets(),
                dst.octets(),
            )
            .map_err(|_| too_big)?;
            ip.header_checksum = ip.calc_header_checksum();
            out.extend_from_slice(&ip.to_bytes());
            // The pseudo-header: addresses, protocol, TCP length.
            let mut pseudo = [0u8; 12];
            pseudo[..4].copy_from_slice(&src.octets());
            pseudo[4..8].copy_from_slice(&dst.octets());
            pseudo[9] = IpNumber::TCP.0;
            pseudo[10..].copy_from_slice(&(tcp_len as u16).to_be_bytes());
            word_sum(&pseudo)
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let ip = Ipv6Header {
                traffic_class: 0,
                flow_label: Default::default(),
                payload_length: tcp_len as u16,
                next_header: IpNumber::TCP,
                hop_limit: HOP_LIMIT,
                source: src.octets(),
                destination: dst.octets(),
            };
            out.extend_from_slice(&ip.to_bytes());
            let mut pseudo = [0u8; 40];
            pseudo[..16].copy_from_slice(&src.octets());
            pseudo[16..32].copy_from_slice(&dst.octets());
            pseudo[32..36].copy_from_slice(&(tcp_len as u32).to_be_bytes());
            pseudo[39] = IpNumber::TCP.0;
            word_sum(&pseudo)
        }
        _ => return Err(PacketError::MixedFamilies),
    };
    let tcp_start = out.len();
    // Written with a checksum of 0, which is what the sum covers.
    out.extend_from_slice(&tcp.to_bytes());
    let sum = pseudo_sum + word_sum(&out[tcp_start..]) + word_sum(segment.payload);
    let checksum = internet_checksum(sum);
    out[tcp_start + TCP_CHECKSUM..tcp_start + TCP_CHECKSUM + 2].copy_from_slice(&checksum);
    Ok(())
}

/// Where the checksum sits in the TCP header.
const TCP_CHECKSUM: usize = 16;

/// The sum of `bytes` as 32-bit words in the machine's byte order, to be folded by
/// `internet_checksum`; a last odd byte counts as if followed by a zero. Only the
/// last of several parts summed together may have an odd length.
///
/// This is the Internet checksum of RFC 1071 done the fast way: its one's complement
/// sum does not depend on byte order (the bytes swapped in, swapped out at the end,
/// §2(B)), and 32-bit words added into a 64-bit total carry nothing that folding
/// does not recover (2^16 is 1 modulo 0xffff), so the loop has no carry to chain
/// and the compiler turns it into vector additions. A payload of 64 KiB is 16384
/// words: the total stays far below 2^64.
fn word_sum(bytes: &[u8]) -> u64 {
    // Four words at a time into four totals: the shape that becomes one vector
    // load and two vector additions per 16 bytes (measured: a fifth fewer
    // instructions than one word at a time).
    let mut blocks = bytes.chunks_exact(16);
    let mut lanes = [0u64; 4];
    for block in blocks.by_ref() {
        for (lane, w) in lanes.iter_mut().zip(block.chunks_exact(4)) {
            *lane += u64::from(u32::from_ne_bytes([w[0], w[1], w[2], w[3]]));
        }
    }
    let mut words = blocks.remainder().chunks_exact(4);
    let mut sum: u64 = lanes.iter().sum();
    for w in words.by_ref() {
        sum += u64::from(u32::from_ne_bytes([w[0], w[1], w[2], w[3]]));
    }
    let mut pairs = words.remainder().chunks_exact(2);
    for pair in pairs.by_ref() {
        sum += u64::from(u16::from_ne_bytes([pair[0], pair[1]]));
    }
    if let [last] = pairs.remainder() {
        sum += u64::from(u16::from_ne_bytes([*last, 0]));
    }
    sum
}

/// The checksum field's bytes for a `word_sum` total: folded to 16 bits, and
/// complemented.
fn internet_checksum(mut sum: u64) -> [u8; 2] {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    // Summed in the machine's byte order, so its bytes are already in network order.
    (!(sum as u16)).to_ne_bytes()
}

fn tcp_header(segment: &Segment) -> TcpHeader {
    let mut tcp = TcpHeader::new(
        segment.src.port(),
        segment.dst.port(),
        segment.seq,
        segment.window,
    );
    let Flags {
        syn,
        ack,
        psh,
        fin,
        rst,
    } = segment.flags;
    (tcp.syn, tcp.ack, tcp.psh, tcp.fin, tcp.rst) = (syn, ack, psh, fin, rst);
    if ack {
        tcp.acknowledgment_number = segment.ack;
    }
    if let Some(options) = segment.syn_options {
        // MSS (4 bytes), NOP, window scale (3 bytes): 8 bytes, word-aligned, as
        // Linux lays them out. Eight bytes always fit the 40 bytes of option space.
        let _ = tcp.set_options(&[
            TcpOptionElement::MaximumSegmentSize(options.mss),
            TcpOptionElement::Noop,
            TcpOptionElement::WindowScale(options.window_shift),
        ]);
    }
    tcp
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    /// The Internet checksum, written out independently of etherparse: the one's
    /// complement sum of 16-bit words. A packet checks out when the sum over the
    /// checked bytes, checksum field included, is 0xffff.
    fn ones_complement_sum(parts: &[&[u8]]) -> u16 {
        let mut sum: u32 = 0;
        let bytes: Vec<u8> = parts.concat();
        for pair in bytes.chunks(2) {
            let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
            sum += u32::from(word);
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum as u16
    }

    fn checks_out(packet: &[u8]) {
        let sliced = SlicedPacket::from_ip(packet).unwrap();
        let (pseudo, tcp_bytes) = match sliced.net.unwrap() {
            NetSlice::Ipv4(ip) => {
                let header = ip.header().slice();
                assert_eq!(ones_complement_sum(&[header]), 0xffff, "IPv4 checksum");
                let tcp = ip.payload().payload;
                let mut pseudo = Vec::new();
                pseudo.extend_from_slice(&header[12..20]);
                pseudo.extend_from_slice(&[0, 6]);
                pseudo.extend_from_slice(&(tcp.len() as u16).to_be_bytes());
                (pseudo, tcp.to_vec())
            }
            NetSlice::Ipv6(ip) => {
                let header = ip.header().slice();
                let tcp = ip.payload().payload;
                let mut pseudo = Vec::new();
                pseudo.extend_from_slice(&header[8..40]);
                pseudo.extend_from_slice(&(tcp.len() as u32).to_be_bytes());
                pseudo.extend_from_slice(&[0, 0, 0, 6]);
                (pseudo, tcp.to_vec())
            }
            other => panic!("not IP: {other:?}"),
        };
        assert_eq!(
            ones_complement_sum(&[&pseudo, &tcp_bytes]),
            0xffff,
            "TCP checksum"
        );
    }

    /// The whole packet, as the capture file holds it: the headers, then the payload.
    fn write(out: &mut Vec<u8>, segment: &Segment) -> Result<(), PacketError> {
        write_headers(out, segment)?;
        out.extend_from_slice(segment.payload);
        Ok(())
    }

    fn segment<'a>(src: &str, dst: &str, payload: &'a [u8]) -> Segment<'a> {
        Segment {
            src: addr(src),
            dst: addr(dst),
            seq: 0xffff_fff0,
            ack: 1234,
            flags: Flags::PSH_ACK,
            window: 65535,
            syn_options: None,
            payload,
        }
    }

    #[test]
    fn an_ipv4_data_segment_reads_back() {
        let mut out = Vec::new();
        let seg = segment("127.0.0.1:40000", "10.1.2.3:8080", b"hello, odd length");
        write(&mut out, &seg).unwrap();
        assert_eq!(out.len(), 20 + 20 + 17);
        checks_out(&out);
        let sliced = SlicedPacket::from_ip(&out).unwrap();
        let Some(TransportSlice::Tcp(tcp)) = sliced.transport else {
            panic!("no TCP")
        };
        assert_eq!((tcp.source_port(), tcp.destination_port()), (40000, 8080));
        assert_eq!(tcp.sequence_number(), 0xffff_fff0);
        assert_eq!(tcp.acknowledgment_number(), 1234);
        assert!(tcp.psh() && tcp.ack() && !tcp.syn() && !tcp.fin() && !tcp.rst());
        assert_eq!(tcp.payload(), b"hello, odd length");
    }

    #[test]
    fn an_ipv6_syn_carries_its_options() {
        let mut out = Vec::new();
        let seg = Segment {
            flags: Flags::SYN,
            syn_options: Some(SynOptions {
                mss: 65475,
                window_shift: 14,
            }),
            ..segment("[::1]:40000", "[fe80::1]:80", b"")
        };
        write(&mut out, &seg).unwrap();
        assert_eq!(out.len(), 40 + 28);
        checks_out(&out);
        let sliced = SlicedPacket::from_ip(&out).unwrap();
        let Some(TransportSlice::Tcp(tcp)) = sliced.transport else {
            panic!("no TCP")
        };
        assert!(tcp.syn() && !tcp.ack());
        assert_eq!(tcp.acknowledgment_number(), 0, "no ACK flag, no ack number");
        let options: Vec<_> = tcp.options_iterator().map(Result::unwrap).collect();
        assert_eq!(
            options,
            [
                TcpOptionElement::MaximumSegmentSize(65475),
                TcpOptionElement::Noop,
                TcpOptionElement::WindowScale(14)
            ]
        );
    }

    #[test]
    fn no_packet_exceeds_the_ip_length_limit() {
        let mut out = Vec::new();
        for (a, b) in [("1.2.3.4:1", "5.6.7.8:2"), ("[::1]:1", "[::2]:2")] {
            let max = max_payload(addr(a).ip());
            let payload = vec![0xa5; max + 1];
            write(&mut out, &segment(a, b, &payload[..max])).unwrap();
            assert_eq!(out.len(), MAX_PACKET);
            checks_out(&out);
            assert_eq!(
                write(&mut out, &segment(a, b, &payload)),
                Err(PacketError::TooBig { len: max + 1, max })
            );
        }
        assert_eq!(max_payload(addr("1.2.3.4:1").ip()), 65495);
        assert_eq!(max_payload(addr("[::1]:1").ip()), 65475);
    }

    #[test]
    fn checksums_hold_for_every_length_and_content() {
        let mut out = Vec::new();
        // Every remainder modulo 8, odd lengths, carries (bytes of 0xff), and the
        // largest payloads; both families.
        let mut x: u32 = 1;
        let noise: Vec<u8> = (0..70_000)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect();
        let ones = vec![0xff; 70_000];
        for (a, b) in [
            ("1.2.3.4:1", "255.255.255.255:65535"),
            ("[::1]:1", "[ffff::2]:2"),
        ] {
            let max = max_payload(addr(a).ip());
            let lengths = (0..40).chain([1000, 1001, max - 1, max]);
            for len in lengths {
                for bytes in [&noise[..len], &ones[..len]] {
                    write(&mut out, &segment(a, b, bytes)).unwrap();
                    checks_out(&out);
                }
            }
        }
    }

    #[test]
    fn mixed_families_become_ipv6() {
        let (a, b) = same_family(addr("127.0.0.1:5"), addr("[::1]:6"));
        assert_eq!(a, addr("[::ffff:127.0.0.1]:5"));
        assert_eq!(b, addr("[::1]:6"));
        let (a, b) = same_family(addr("127.0.0.1:5"), addr("10.0.0.1:6"));
        assert_eq!((a, b), (addr("127.0.0.1:5"), addr("10.0.0.1:6")));
        // A dual-stack listener's IPv4 client, and an IPv4 B: plain IPv4.
        let (a, b) = same_family(addr("[::ffff:127.0.0.1]:5"), addr("127.0.0.1:6"));
        assert_eq!((a, b), (addr("127.0.0.1:5"), addr("127.0.0.1:6")));
        let mut out = Vec::new();
        assert_eq!(
            write(&mut out, &segment("127.0.0.1:5", "[::1]:6", b"")),
            Err(PacketError::MixedFamilies)
        );
    }
}
