//! Unit tests of the capture: events in, the file read back with pcap-file and
//! etherparse, every packet checked the way Wireshark's analysis would.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use etherparse::{SlicedPacket, TransportSlice};
use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketOption;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::{DataLink, TsResolution};

use super::*;
use crate::capture::file::NANOSECONDS;
use crate::relay::buffer::Chunk;

use Direction::{AtoB, BtoA};

const A: &str = "192.0.2.1:40000";
const B: &str = "198.51.100.2:8080";

/// One packet as read back from the file.
#[derive(Debug, Clone, PartialEq)]
struct CapturedPacket {
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
        transports: [None, None],
    }
}

/// Relay events, built as the relay builds them.
struct Events {
    list: Vec<Event>,
    clock: u64,
}

impl Events {
    fn new() -> Events {
        Events {
            list: Vec::new(),
            clock: 0,
        }
    }

    fn tick(&mut self) -> SystemTime {
        self.clock += 1_000;
        time(self.clock)
    }

    fn chunk(&mut self, bytes: &[u8]) -> Chunk {
        let chunk = Chunk::of(bytes);
        assert_eq!(chunk.len(), bytes.len(), "a test chunk over 64 KiB");
        chunk
    }

    fn read(mut self, dir: Direction, bytes: &[u8]) -> Self {
        let at = self.tick();
        let chunk = self.chunk(bytes);
        self.list.push(Event::Read { dir, chunk, at });
        self
    }

    fn wrote(mut self, dir: Direction, n: usize) -> Self {
        let at = self.tick();
        self.list.push(Event::Wrote { dir, n, at });
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

fn capture(format: Format, isns: [u32; 2], events: Events, finish: bool) -> Vec<CapturedPacket> {
    let mut capture = Capture::new(Vec::new(), format, connection(isns)).unwrap();
    for event in &events.list {
        capture.record(event).unwrap();
    }
    if finish {
        capture.finish(time(u64::MAX >> 8)).unwrap();
    }
    parse(&capture.into_inner(), format, isns)
}

fn parse(file: &[u8], format: Format, isns: [u32; 2]) -> Vec<CapturedPacket> {
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

fn decode(at: Duration, data: &[u8], comment: Option<String>, isns: [u32; 2]) -> CapturedPacket {
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
    CapturedPacket {
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
fn summary(packets: &[CapturedPacket]) -> Vec<(char, &'static str, u32, u32, usize)> {
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
fn assert_clean(packets: &[CapturedPacket]) {
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

fn stream(packets: &[CapturedPacket], from_a: bool) -> Vec<u8> {
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
fn each_syn_says_how_its_side_was_really_reached() {
    let mut connection = connection([7, 9]);
    connection.transports = [
        Some("TLS (TLSv1_3, TLS13_AES_256_GCM_SHA384)".into()),
        Some("UNIX socket unix:/run/b.sock".into()),
    ];
    let mut capture = Capture::new(Vec::new(), Format::PcapNg, connection).unwrap();
    for event in &hello_session().list {
        capture.record(event).unwrap();
    }
    let packets = parse(&capture.into_inner(), Format::PcapNg, [7, 9]);
    let comments: Vec<Option<&str>> = packets.iter().map(|p| p.comment.as_deref()).collect();
    assert_eq!(
        comments[..4],
        [
            Some("A over TLS (TLSv1_3, TLS13_AES_256_GCM_SHA384)"),
            Some("B over UNIX socket unix:/run/b.sock"),
            None,
            Some("B is 6 bytes behind"),
        ]
    );
}

#[test]
fn pcapng_has_the_same_packets_and_the_relay_view() {
    let pcap = capture(Format::Pcap, [7, 9], hello_session(), false);
    let pcapng = capture(Format::PcapNg, [7, 9], hello_session(), false);
    let without_comments: Vec<CapturedPacket> = pcapng
        .iter()
        .cloned()
        .map(|p| CapturedPacket { comment: None, ..p })
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

    // A segment in the middle of a read that would end at the edge is cut short.
    let big = vec![0xcd; 65536];
    let events = Events::new().read(AtoB, &[1; 40]).read(AtoB, &big);
    let packets = capture(Format::Pcap, [5, 6], events, false);
    assert_eq!(
        summary(&packets)[3..],
        [
            ('A', "PSH-ACK", 1, 1, 40),
            ('A', "ACK", 41, 1, 65494),
            ('A', "PSH-ACK", 65535, 1, 42),
        ]
    );
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
