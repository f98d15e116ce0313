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

fn ipv6_tcp(payload: &[u8]) -> Vec<u8> {
    let mut src = [0u8; 16];
    src[15] = 1;
    let builder = PacketBuilder::ipv6(src, src, 64).tcp(40000, 8080, 1000, 100);
    let mut out = Vec::new();
    builder.write(&mut out, payload).unwrap();
    out
}

/// The segment in one frame; decoding it for its payload's length alone finds the
/// same segment.
fn decode(link_type: u32, frame: &[u8]) -> Option<CapturedSegment> {
    let time = Duration::from_secs(1);
    let seg = Decoder::new().decode(link_type, frame, time);
    let counted: Option<CapturedSegment<PayloadLen>> =
        Decoder::new().decode_with(link_type, frame, time);
    let want = seg.as_ref().map(|s| CapturedSegment {
        time: s.time,
        src: s.src,
        dst: s.dst,
        seq: s.seq,
        flags: s.flags,
        payload: PayloadLen(s.payload.len()),
    });
    assert_eq!(counted, want);
    seg
}

fn check(link_type: u32, frame: &[u8]) {
    let seg = decode(link_type, frame).expect("a segment");
    assert_eq!(seg.src, "127.0.0.1:40000".parse().unwrap());
    assert_eq!(seg.dst, "127.0.0.2:8080".parse().unwrap());
    assert_eq!(seg.seq, 1000);
    assert!(seg.flags.ack && !seg.flags.syn);
    assert_eq!(seg.payload, b"hello");
}

/// A bare IPv4 header (checksum left 0: nothing here checks it) before `payload`.
fn ipv4(protocol: u8, payload: &[u8], id: u16, offset: usize, more: bool) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let flags = (offset / 8) as u16 | if more { 0x2000 } else { 0 };
    let mut out = vec![0x45, 0];
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&[64, protocol, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
    out.extend_from_slice(payload);
    out
}

fn ipv6(next: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x60, 0, 0, 0];
    out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    out.extend_from_slice(&[next, 64]);
    out.extend_from_slice(&[0xfe; 32]);
    out.extend_from_slice(payload);
    out
}

fn ethernet(ether_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
    out.extend_from_slice(&ether_type.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn vlan(id: u16, ether_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = id.to_be_bytes().to_vec();
    out.extend_from_slice(&ether_type.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn pppoe(ppp_protocol: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x11, 0, 0x12, 0x34];
    out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&ppp_protocol.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn mpls(labels: &[u32], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, label) in labels.iter().enumerate() {
        let bottom = u32::from(i + 1 == labels.len());
        out.extend_from_slice(&((label << 12) | (bottom << 8) | 64).to_be_bytes());
    }
    out.extend_from_slice(payload);
    out
}

fn gre(flags: u16, ether_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = flags.to_be_bytes().to_vec();
    out.extend_from_slice(&ether_type.to_be_bytes());
    for flag in [0x8000, 0x2000, 0x1000] {
        if flags & flag != 0 {
            out.extend_from_slice(&[0xaa; 4]);
        }
    }
    out.extend_from_slice(payload);
    out
}

fn udp(dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = 50000u16.to_be_bytes().to_vec();
    out.extend_from_slice(&dst_port.to_be_bytes());
    out.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(payload);
    out
}

fn vxlan(frame: &[u8]) -> Vec<u8> {
    let mut out = vec![0x08, 0, 0, 0, 0, 0x12, 0x34, 0];
    out.extend_from_slice(frame);
    udp(4789, &out)
}

#[test]
fn every_link_type_reaches_the_same_segment() {
    let ip = ipv4_tcp(b"hello");
    check(link::RAW, &ip);
    check(link::RAW_OPENBSD, &ip);

    let mut null = 2u32.to_le_bytes().to_vec();
    null.extend_from_slice(&ip);
    check(link::NULL, &null);

    let mut eth = ethernet(0x0800, &ip);
    eth.resize(eth.len() + 7, 0); // Ethernet padding must not become payload
    check(link::ETHERNET, &eth);

    check(link::ETHERNET, &ethernet(0x8100, &vlan(42, 0x0800, &ip)));

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
    let seg = decode(link::RAW, &ip).unwrap();
    assert_eq!(seg.src, "[::]:1".parse().unwrap());
    assert!(seg.flags.syn && seg.payload.is_empty());
}

#[test]
fn a_frame_cut_short_keeps_what_was_captured() {
    let ip = ipv4_tcp(b"hello");
    let seg = decode(link::RAW, &ip[..ip.len() - 2]).unwrap();
    assert_eq!(seg.payload, b"hel");
}

#[test]
fn other_traffic_and_garbage_are_skipped_and_counted() {
    let builder = PacketBuilder::ipv4([1, 1, 1, 1], [2, 2, 2, 2], 9).udp(1, 2);
    let mut udp = Vec::new();
    builder.write(&mut udp, b"x").unwrap();
    let mut decoder = Decoder::new();
    let time = Duration::ZERO;
    assert_eq!(decoder.decode(link::RAW, &udp, time), None);
    assert_eq!(
        decoder.decode(link::ETHERNET, &ethernet(0x0806, &[0; 28]), time),
        None
    );
    let ip = ipv4_tcp(b"hello");
    for cut in 0..40 {
        assert_eq!(decoder.decode(link::RAW, &ip[..cut], time), None);
        assert_eq!(decoder.decode(link::ETHERNET, &ip[..cut], time), None);
        assert_eq!(decoder.decode(link::LINUX_SLL2, &ip[..cut], time), None);
    }
    assert_eq!(decoder.decode(147, &ip, time), None);
    assert_eq!(decoder.decode(147, &ip, time), None);
    assert_eq!(decoder.decode(148, &ip, time), None);
    let skipped = decoder.skipped();
    assert_eq!(skipped.total(), 2 + 3 * 40 + 3, "every packet is counted");
    assert_eq!(skipped.unknown_links, BTreeMap::from([(147, 2), (148, 1)]));
    let named = Skipped {
        non_tcp: 12,
        unknown_links: BTreeMap::from([(147, 3)]),
        incomplete_fragments: 2,
        ..Skipped::default()
    };
    assert_eq!(
        named.to_string(),
        "12 non-TCP, 3 unknown link types (LINKTYPE 147), 2 incomplete fragments"
    );
    assert_eq!(Skipped::default().to_string(), "nothing");
}

#[test]
fn pppoe_in_qinq() {
    let ip = ipv4_tcp(b"hello");
    let inner = vlan(20, 0x8864, &pppoe(0x0021, &ip));
    check(link::ETHERNET, &ethernet(0x88a8, &vlan(10, 0x8100, &inner)));
    check(link::ETHERNET, &ethernet(0x9100, &vlan(10, 0x8100, &inner)));
    // The PPPoE length cuts off what follows; a PPP control frame is no TCP.
    let mut padded = ethernet(0x8864, &pppoe(0x0021, &ip));
    padded.extend_from_slice(&[0; 9]);
    check(link::ETHERNET, &padded);
    let mut decoder = Decoder::new();
    let lcp = ethernet(0x8864, &pppoe(0xc021, &[1, 1, 0, 4]));
    assert_eq!(decoder.decode(link::ETHERNET, &lcp, Duration::ZERO), None);
    assert_eq!(decoder.skipped().non_tcp, 1);
    let v6 = decode(
        link::ETHERNET,
        &ethernet(0x8864, &pppoe(0x0057, &ipv6_tcp(b"six"))),
    );
    assert_eq!(v6.unwrap().payload, b"six");
}

#[test]
fn mpls_label_stacks() {
    let ip = ipv4_tcp(b"hello");
    check(link::ETHERNET, &ethernet(0x8847, &mpls(&[16], &ip)));
    check(link::ETHERNET, &ethernet(0x8847, &mpls(&[16, 17, 18], &ip)));
    let v6 = decode(
        link::ETHERNET,
        &ethernet(0x8847, &mpls(&[3], &ipv6_tcp(b"six"))),
    );
    assert_eq!(v6.unwrap().payload, b"six");
    // A stack that never ends, and one with something else under it.
    let mut decoder = Decoder::new();
    let endless = ethernet(0x8847, &[0, 0, 0, 64, 0, 0, 0, 64]);
    assert_eq!(
        decoder.decode(link::ETHERNET, &endless, Duration::ZERO),
        None
    );
    let other = ethernet(0x8847, &mpls(&[16], &[0; 20]));
    assert_eq!(decoder.decode(link::ETHERNET, &other, Duration::ZERO), None);
    assert_eq!(
        (decoder.skipped().malformed, decoder.skipped().non_tcp),
        (1, 1)
    );
}

#[test]
fn gre_with_and_without_optional_fields() {
    let ip = ipv4_tcp(b"hello");
    for flags in [0, 0x2000, 0x1000, 0x3000, 0xb000] {
        check(link::RAW, &ipv4(47, &gre(flags, 0x0800, &ip), 1, 0, false));
    }
    // Ethernet bridged over GRE, and MPLS in GRE.
    let bridged = gre(0x2000, 0x6558, &ethernet(0x0800, &ip));
    check(link::RAW, &ipv4(47, &bridged, 1, 0, false));
    check(
        link::RAW,
        &ipv4(47, &gre(0, 0x8847, &mpls(&[5], &ip)), 1, 0, false),
    );
    // PPTP's version 1 is not peeled.
    assert_eq!(
        decode(link::RAW, &ipv4(47, &gre(1, 0x880b, &ip), 1, 0, false)),
        None
    );
}

#[test]
fn vxlan_on_udp_4789() {
    let frame = ethernet(0x0800, &ipv4_tcp(b"hello"));
    check(
        link::ETHERNET,
        &ethernet(0x0800, &ipv4(17, &vxlan(&frame), 1, 0, false)),
    );
    let elsewhere = ipv4(17, &udp(4790, &[0; 60]), 1, 0, false);
    assert_eq!(decode(link::RAW, &elsewhere), None);
}

#[test]
fn ip_in_ip_every_way() {
    let v4 = ipv4_tcp(b"hello");
    check(link::RAW, &ipv4(4, &v4, 1, 0, false));
    check(link::RAW, &ipv6(4, &v4));
    let v6 = ipv6_tcp(b"six");
    for outer in [ipv4(41, &v6, 1, 0, false), ipv6(41, &v6)] {
        let seg = decode(link::RAW, &outer).unwrap();
        assert_eq!(seg.src, "[::1]:40000".parse().unwrap());
        assert_eq!(seg.payload, b"six");
    }
}

#[test]
fn nesting_in_any_order_up_to_the_limit() {
    // TCP in IPv6 in GRE in IPv4 in MPLS on Ethernet; and all that in a VLAN, in
    // VXLAN, in IPv4.
    let inner = ipv4(
        47,
        &gre(0x2000, 0x86dd, &ipv6(6, &ipv6_tcp(b"x")[40..])),
        7,
        0,
        false,
    );
    let deep = ethernet(0x8847, &mpls(&[9], &inner));
    let outer = ipv4(
        17,
        &vxlan(&ethernet(0x8100, &vlan(3, 0x8847, &mpls(&[9], &inner)))),
        2,
        0,
        false,
    );
    let seg = decode(link::ETHERNET, &deep).unwrap();
    assert_eq!(seg.payload, b"x");
    assert_eq!(
        seg.src.ip(),
        "fefe:fefe:fefe:fefe:fefe:fefe:fefe:fefe"
            .parse::<IpAddr>()
            .unwrap()
    );
    assert_eq!(decode(link::RAW, &outer).unwrap().payload, b"x");

    // IPv4 in IPv4, over and over: within the limit it decodes, beyond it is counted.
    let mut packet = ipv4_tcp(b"hello");
    for _ in 0..MAX_DEPTH - 1 {
        packet = ipv4(4, &packet, 1, 0, false);
    }
    check(link::RAW, &packet);
    for _ in 0..2 {
        packet = ipv4(4, &packet, 1, 0, false);
    }
    let mut decoder = Decoder::new();
    assert_eq!(decoder.decode(link::RAW, &packet, Duration::ZERO), None);
    assert_eq!(decoder.skipped().too_deep, 1);
}

#[test]
fn ipv4_fragments_are_put_back_together() {
    let whole = ipv4_tcp(b"a request long enough to be cut in three");
    let (header, payload) = whole.split_at(20);
    let mut decoder = Decoder::new();
    let t = Duration::from_secs(5);
    let fragment = |range: std::ops::Range<usize>, more: bool| {
        let mut f = ipv4(6, &payload[range.clone()], 99, range.start, more);
        f[12..20].copy_from_slice(&header[12..20]);
        f
    };
    // Out of order: the last first.
    assert_eq!(
        decoder.decode(link::RAW, &fragment(48..payload.len(), false), t),
        None
    );
    assert_eq!(decoder.decode(link::RAW, &fragment(0..24, true), t), None);
    let seg = decoder
        .decode(link::RAW, &fragment(24..48, true), t)
        .unwrap();
    assert_eq!(seg.payload, b"a request long enough to be cut in three");
    assert_eq!(seg.src, "127.0.0.1:40000".parse().unwrap());
    // A datagram that never completes is counted once the capture ends.
    assert_eq!(decoder.decode(link::RAW, &fragment(0..24, true), t), None);
    assert_eq!(decoder.skipped().incomplete_fragments, 0);
    decoder.finish();
    assert_eq!(decoder.skipped().incomplete_fragments, 1);
    assert_eq!(decoder.skipped().to_string(), "1 incomplete fragment");
}

#[test]
fn ipv6_fragments_are_put_back_together() {
    let whole = ipv6_tcp(b"sixteen bytes ok and then some more");
    let payload = &whole[40..];
    let fragment = |range: std::ops::Range<usize>, more: bool| {
        let offset = (range.start as u16) | u16::from(more);
        let mut header = vec![6, 0];
        header.extend_from_slice(&offset.to_be_bytes());
        header.extend_from_slice(&7u32.to_be_bytes());
        header.extend_from_slice(&payload[range]);
        let mut packet = whole[..40].to_vec();
        packet[6] = 44;
        packet[4..6].copy_from_slice(&(header.len() as u16).to_be_bytes());
        packet.extend_from_slice(&header);
        packet
    };
    let mut decoder = Decoder::new();
    let t = Duration::ZERO;
    assert_eq!(
        decoder.decode(link::RAW, &fragment(32..payload.len(), false), t),
        None
    );
    let seg = decoder
        .decode(link::RAW, &fragment(0..32, true), t)
        .unwrap();
    assert_eq!(seg.payload, b"sixteen bytes ok and then some more");
    // An atomic fragment (offset 0, no more) is a whole packet.
    assert_eq!(
        decoder
            .decode(link::RAW, &fragment(0..payload.len(), false), t)
            .unwrap()
            .payload,
        seg.payload
    );
}

#[test]
fn a_fragmented_tunnel_counts_every_frame_it_was_made_of() {
    // The outer IPv4 of an IP-in-IP packet is fragmented, and carries UDP inside: the
    // two frames are counted as two non-TCP packets.
    let inner = ipv4(17, &udp(53, &[0; 16]), 1, 0, false);
    let mut decoder = Decoder::new();
    let first = ipv4(4, &inner[..24], 5, 0, true);
    let second = ipv4(4, &inner[24..], 5, 24, false);
    assert_eq!(decoder.decode(link::RAW, &first, Duration::ZERO), None);
    assert_eq!(decoder.decode(link::RAW, &second, Duration::ZERO), None);
    assert_eq!(decoder.skipped().non_tcp, 2);
}
