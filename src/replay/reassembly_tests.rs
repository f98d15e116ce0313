//! Unit tests for `reassembly`: one per rule, each a small hand-made conversation.

use super::*;
use crate::capture::packet::Flags;
use Direction::{AtoB, BtoA};

const CLIENT: &str = "10.0.0.1:40000";
const SERVER: &str = "10.0.0.2:80";

/// A conversation under construction: segments with increasing timestamps.
struct Talk {
    segments: Vec<CapturedSegment>,
}

impl Talk {
    fn new() -> Talk {
        Talk {
            segments: Vec::new(),
        }
    }

    fn seg(&mut self, from_client: bool, seq: u32, flags: &str, payload: &[u8]) -> &mut Self {
        let (src, dst) = if from_client {
            (CLIENT, SERVER)
        } else {
            (SERVER, CLIENT)
        };
        let time = Duration::from_millis(self.segments.len() as u64 * 10);
        self.segments.push(CapturedSegment {
            time,
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            seq,
            flags: Flags {
                syn: flags.contains('S'),
                ack: flags.contains('A'),
                psh: flags.contains('P'),
                fin: flags.contains('F'),
                rst: flags.contains('R'),
            },
            payload: payload.to_vec(),
        });
        self
    }

    fn a(&mut self, seq: u32, flags: &str, payload: &[u8]) -> &mut Self {
        self.seg(true, seq, flags, payload)
    }

    fn b(&mut self, seq: u32, flags: &str, payload: &[u8]) -> &mut Self {
        self.seg(false, seq, flags, payload)
    }

    /// Runs the reassembler over the segments (checking that the one keeping only
    /// lengths says the same).
    fn run(&self) -> (Vec<StreamEvent>, Vec<StreamInfo>) {
        let mut r = Reassembler::new();
        let mut events = Vec::new();
        for seg in &self.segments {
            r.push(seg.clone(), &mut events);
        }
        r.finish(&mut events);
        let streams: Vec<StreamInfo> = r.streams().cloned().collect();
        assert_counting_agrees(None, &self.segments, &events, &streams);
        (events, streams)
    }
}

/// The segment with only its payload's length.
fn counted(seg: &CapturedSegment) -> CapturedSegment<PayloadLen> {
    CapturedSegment {
        time: seg.time,
        src: seg.src,
        dst: seg.dst,
        seq: seg.seq,
        flags: seg.flags,
        payload: PayloadLen(seg.payload.len()),
    }
}

/// The event with only its bytes' count.
fn event_len(event: &StreamEvent) -> StreamEvent<PayloadLen> {
    match event {
        StreamEvent::Data {
            stream,
            dir,
            time,
            bytes,
        } => StreamEvent::Data {
            stream: *stream,
            dir: *dir,
            time: *time,
            bytes: PayloadLen(bytes.len()),
        },
        StreamEvent::Gap { stream, dir, len } => StreamEvent::Gap {
            stream: *stream,
            dir: *dir,
            len: *len,
        },
        StreamEvent::End {
            stream,
            dir,
            how,
            time,
        } => StreamEvent::End {
            stream: *stream,
            dir: *dir,
            how: *how,
            time: *time,
        },
    }
}

/// The listing's reassembler, which keeps only payload lengths, finds the same
/// connections, events (bytes counted) and summaries as the replay's.
fn assert_counting_agrees(
    client: Option<SocketAddr>,
    segments: &[CapturedSegment],
    events: &[StreamEvent],
    streams: &[StreamInfo],
) {
    let mut r = Reassembler::counting(client);
    let mut counted_events = Vec::new();
    for seg in segments {
        r.push(counted(seg), &mut counted_events);
    }
    r.finish(&mut counted_events);
    let want: Vec<StreamEvent<PayloadLen>> = events.iter().map(event_len).collect();
    assert_eq!(counted_events, want);
    assert!(r.streams().eq(streams.iter()));
}

/// The bytes of `dir` in stream `n`, concatenated.
fn bytes(events: &[StreamEvent], n: usize, want: Direction) -> Vec<u8> {
    let mut all = Vec::new();
    for e in events {
        if let StreamEvent::Data {
            stream, dir, bytes, ..
        } = e
        {
            if *stream == n && *dir == want {
                all.extend_from_slice(bytes);
            }
        }
    }
    all
}

fn ends(events: &[StreamEvent]) -> Vec<(usize, Direction, StreamEnd)> {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::End {
                stream, dir, how, ..
            } => Some((*stream, *dir, *how)),
            _ => None,
        })
        .collect()
}

/// A whole connection: handshake, request, response, FIN both ways.
fn request_response(t: &mut Talk, isn_a: u32, isn_b: u32) {
    t.a(isn_a, "S", b"")
        .b(isn_b, "SA", b"")
        .a(isn_a.wrapping_add(1), "A", b"")
        .a(isn_a.wrapping_add(1), "A", b"GET /\n")
        .b(isn_b.wrapping_add(1), "A", b"200 OK\n")
        .a(isn_a.wrapping_add(7), "FA", b"")
        .b(isn_b.wrapping_add(8), "FA", b"")
        .a(isn_a.wrapping_add(8), "A", b"");
}

#[test]
fn a_plain_connection() {
    let mut t = Talk::new();
    request_response(&mut t, 1000, 5000);
    let (events, streams) = t.run();
    assert_eq!(bytes(&events, 0, AtoB), b"GET /\n");
    assert_eq!(bytes(&events, 0, BtoA), b"200 OK\n");
    assert_eq!(
        ends(&events),
        [(0, AtoB, StreamEnd::Fin), (0, BtoA, StreamEnd::Fin)]
    );
    let info = &streams[0];
    assert_eq!(info.a, CLIENT.parse().unwrap());
    assert_eq!(info.b, SERVER.parse().unwrap());
    assert_eq!(info.bytes, [6, 7]);
    assert_eq!(info.missing, [0, 0]);
    assert_eq!(info.last - info.first, Duration::from_millis(70));
}

#[test]
fn retransmissions_and_duplicates_are_dropped() {
    let mut t = Talk::new();
    t.a(0, "S", b"")
        .b(100, "SA", b"")
        .a(1, "A", b"hello")
        .a(1, "A", b"hello")
        .a(6, "A", b" world")
        .a(1, "A", b"hello")
        .a(6, "A", b" world");
    let (events, streams) = t.run();
    assert_eq!(bytes(&events, 0, AtoB), b"hello world");
    assert_eq!(streams[0].bytes, [11, 0]);
    assert_eq!(streams[0].ending, [StreamEnd::Open, StreamEnd::Open]);
}

#[test]
fn out_of_order_segments_wait_for_the_hole() {
    let mut t = Talk::new();
    t.a(0, "S", b"")
        .a(7, "A", b"world")
        .a(12, "FA", b"")
        .a(1, "A", b"hello ");
    let (events, _) = t.run();
    assert_eq!(bytes(&events, 0, AtoB), b"hello world");
    // Both pieces become contiguous with the late packet, and the FIN after them.
    let times: Vec<_> = events
        .iter()
        .map(|e| match e {
            StreamEvent::Data { time, .. } | StreamEvent::End { time, .. } => *time,
            StreamEvent::Gap { .. } => panic!("no gap expected"),
        })
        .collect();
    assert_eq!(times, vec![Duration::from_millis(30); 3]);
    assert_eq!(ends(&events), [(0, AtoB, StreamEnd::Fin)]);
}

#[test]
fn overlaps_merge_and_delivered_bytes_are_never_replaced() {
    let mut t = Talk::new();
    t.a(0, "S", b"")
        .a(1, "A", b"0123456789")
        .a(6, "A", b"XXXXXabcde")
        .a(20, "A", b"klm")
        .a(14, "A", b"YYYYYYY") // 14..21: fills 16..20, overlaps both sides
        .a(11, "A", b"abcdefghij"); // 11..21: everything already there
    let (events, _) = t.run();
    // 16..21 come from the segment that filled the hole; of the waiting "klm" only
    // what lies past it is new.
    assert_eq!(bytes(&events, 0, AtoB), b"0123456789abcdeYYYYYlm");
}

#[test]
fn sequence_numbers_wrap_around() {
    let mut t = Talk::new();
    let isn = u32::MAX - 3;
    t.a(isn, "S", b"")
        .a(isn.wrapping_add(1), "A", b"abc")
        .a(isn.wrapping_add(7), "A", b"ghi") // past 2^32, ahead of the hole
        .a(isn.wrapping_add(4), "A", b"def") // crosses 2^32
        .a(isn.wrapping_add(1), "A", b"abc"); // a retransmission from before the wrap
    let (events, _) = t.run();
    assert_eq!(bytes(&events, 0, AtoB), b"abcdefghi");
}

#[test]
fn a_whole_request_response_crossing_the_wrap() {
    let mut t = Talk::new();
    request_response(&mut t, u32::MAX - 2, u32::MAX);
    let (events, streams) = t.run();
    assert_eq!(bytes(&events, 0, AtoB), b"GET /\n");
    assert_eq!(bytes(&events, 0, BtoA), b"200 OK\n");
    assert_eq!(streams[0].ending, [StreamEnd::Fin, StreamEnd::Fin]);
}

#[test]
fn a_capture_that_starts_mid_connection() {
    let mut t = Talk::new();
    // The server speaks first in the capture; its port says it is the server.
    t.b(9000, "A", b"world\n")
        .a(500, "A", b"more\n")
        .b(9006, "A", b"!");
    let (events, streams) = t.run();
    assert_eq!(streams[0].a, CLIENT.parse().unwrap());
    assert_eq!(bytes(&events, 0, BtoA), b"world\n!");
    assert_eq!(bytes(&events, 0, AtoB), b"more\n");
}

#[test]
fn a_reset_ends_its_direction_at_once() {
    let mut t = Talk::new();
    t.a(0, "S", b"")
        .b(100, "SA", b"")
        .a(1, "A", b"hello")
        .a(11, "A", b"later") // waits behind a hole, then is lost to the RST
        .b(101, "RA", b"")
        .b(101, "A", b"ignored") // after its RST, B says nothing more
        .a(6, "A", b"12345"); // A's data still in flight is delivered
    let (events, streams) = t.run();
    assert_eq!(bytes(&events, 0, AtoB), b"hello12345later");
    assert_eq!(bytes(&events, 0, BtoA), b"");
    assert_eq!(ends(&events), [(0, BtoA, StreamEnd::Rst)]);
    assert_eq!(streams[0].ending, [StreamEnd::Open, StreamEnd::Rst]);
}

#[test]
fn a_reset_drops_what_waits_behind_a_hole() {
    let mut t = Talk::new();
    t.a(0, "S", b"")
        .a(1, "A", b"ab")
        .a(5, "A", b"ef")
        .a(7, "RA", b"");
    let (events, streams) = t.run();
    assert_eq!(bytes(&events, 0, AtoB), b"ab");
    assert_eq!(streams[0].ending[0], StreamEnd::Rst);
    assert_eq!(streams[0].missing, [0, 0]);
}

#[test]
fn holes_never_filled_are_skipped_at_the_end() {
    let mut t = Talk::new();
    t.a(0, "S", b"")
        .a(1, "A", b"ab")
        .a(5, "A", b"ef")
        .a(7, "FA", b"");
    let (events, streams) = t.run();
    assert_eq!(bytes(&events, 0, AtoB), b"abef");
    assert!(events.contains(&StreamEvent::Gap {
        stream: 0,
        dir: AtoB,
        len: 2
    }));
    assert_eq!(streams[0].missing, [2, 0]);
    assert_eq!(streams[0].ending[0], StreamEnd::Fin);
}

#[test]
fn streams_are_numbered_in_order_of_first_packet_and_ports_can_be_reused() {
    let mut t = Talk::new();
    request_response(&mut t, 1000, 5000);
    // A retransmitted SYN (same ISN) belongs to the same connection...
    t.a(1000, "S", b"");
    // ...a SYN with a new ISN on the same ports starts connection 1.
    request_response(&mut t, 777_777, 42);
    let (events, streams) = t.run();
    assert_eq!(streams.len(), 2);
    assert_eq!(streams[1].number, 1);
    assert_eq!(bytes(&events, 1, AtoB), b"GET /\n");
    assert_eq!(streams[0].bytes, [6, 7]);
    assert_eq!(streams[1].bytes, [6, 7]);

    // Interleaved connections on other ports get numbers by first packet.
    let mut r = Reassembler::new();
    let mut out = Vec::new();
    for port in [1u16, 2, 1, 3, 2] {
        let seg = CapturedSegment {
            time: Duration::ZERO,
            src: SocketAddr::from(([10, 0, 0, 1], 40000 + port)),
            dst: SERVER.parse().unwrap(),
            seq: 1,
            flags: Flags::default(),
            payload: Vec::new(),
        };
        r.push(seg, &mut out);
    }
    let ports: Vec<u16> = r.streams().map(|s| s.a.port()).collect();
    assert_eq!(ports, [40001, 40002, 40003]);
}

#[test]
fn data_on_the_syn_counts() {
    // TCP Fast Open carries data on the SYN: it starts right after the SYN's number.
    let mut t = Talk::new();
    t.a(10, "S", b"early").a(16, "A", b"!");
    let (events, _) = t.run();
    assert_eq!(bytes(&events, 0, AtoB), b"early!");
}

fn segment(src: &str, dst: &str, seq: u32, payload: &[u8]) -> CapturedSegment {
    CapturedSegment {
        time: Duration::ZERO,
        src: src.parse().unwrap(),
        dst: dst.parse().unwrap(),
        seq,
        flags: Flags {
            ack: true,
            ..Flags::default()
        },
        payload: payload.to_vec(),
    }
}

fn reassemble(
    client: Option<&str>,
    segments: &[CapturedSegment],
) -> (Vec<StreamEvent>, StreamInfo) {
    let client = client.map(|c| c.parse().unwrap());
    let mut r = Reassembler::with_client(client);
    let mut events = Vec::new();
    for seg in segments {
        r.push(seg.clone(), &mut events);
    }
    r.finish(&mut events);
    let streams: Vec<StreamInfo> = r.streams().cloned().collect();
    assert_counting_agrees(client, segments, &events, &streams);
    let info = streams.first().cloned().expect("a connection");
    (events, info)
}

#[test]
fn server_ports_face_ephemeral_ones() {
    assert!(server_by_port(80, 40000));
    assert!(server_by_port(8080, 60999));
    assert!(server_by_port(32767, 32768));
    // A registered port in Linux's ephemeral range faces IANA's range only.
    assert!(server_by_port(40000, 50000));
    assert!(!server_by_port(40000, 45000));
    // Neither side ephemeral, or the server side higher: the ports do not say.
    assert!(!server_by_port(80, 8080));
    assert!(!server_by_port(50000, 40000));
    assert!(!server_by_port(50000, 60000));
}

#[test]
fn without_a_handshake_the_ports_choose_the_client() {
    // The server speaks first, and its port says it is the server.
    let (_, info) = reassemble(
        None,
        &[
            segment("10.0.0.2:22", "10.0.0.1:51000", 1, b"SSH-2.0-x\r\n"),
            segment("10.0.0.1:51000", "10.0.0.2:22", 1, b"SSH-2.0-y\r\n"),
        ],
    );
    assert_eq!(info.a, "10.0.0.1:51000".parse().unwrap());
    assert_eq!(info.chosen, Chosen::Port);
}

#[test]
fn when_the_ports_do_not_say_the_first_payload_does() {
    // A pure ACK from one side first, then the other side's request: the requester is
    // A, and the ACK's direction follows it.
    let (events, info) = reassemble(
        None,
        &[
            segment("10.0.0.2:40000", "10.0.0.1:45000", 500, b""),
            segment("10.0.0.1:45000", "10.0.0.2:40000", 9000, b"hello"),
            segment("10.0.0.2:40000", "10.0.0.1:45000", 500, b"world"),
        ],
    );
    assert_eq!(info.a, "10.0.0.1:45000".parse().unwrap());
    assert_eq!(info.chosen, Chosen::FirstPayload);
    assert_eq!(bytes(&events, 0, AtoB), b"hello");
    assert_eq!(bytes(&events, 0, BtoA), b"world");
    assert_eq!(info.bytes, [5, 5]);

    // No payload at all: the first packet's sender.
    let (_, info) = reassemble(None, &[segment("10.0.0.2:40000", "10.0.0.1:45000", 1, b"")]);
    assert_eq!(info.a, "10.0.0.2:40000".parse().unwrap());
    assert_eq!(info.chosen, Chosen::FirstPacket);
}

#[test]
fn the_client_given_wins_over_everything() {
    let mut syn = segment("10.0.0.1:51000", "10.0.0.2:80", 1, b"");
    syn.flags = Flags {
        syn: true,
        ..Flags::default()
    };
    let (_, info) = reassemble(Some("10.0.0.2:80"), &[syn.clone()]);
    assert_eq!(info.a, "10.0.0.2:80".parse().unwrap());
    assert_eq!(info.chosen, Chosen::Given);
    // A client that is not in the connection changes nothing.
    let (_, info) = reassemble(Some("10.9.9.9:80"), &[syn]);
    assert_eq!(info.a, "10.0.0.1:51000".parse().unwrap());
    assert_eq!(info.chosen, Chosen::Handshake);
}
