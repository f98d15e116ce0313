#!/usr/bin/env python3
"""Wraps every packet of a real capture in the layers a capture taken elsewhere has:
PPPoE in QinQ, MPLS, GRE, IP-in-IP, or several at once.

The kernel this project is built on has no GRE, IPIP, SIT, MPLS or PPPoE modules,
so these tunnels cannot be run and recorded here (VXLAN and IP fragmentation can:
tools/make-tunnel-fixtures records those). Instead the real packets of a tcpdump
capture of loopback (Ethernet link type) are kept, timestamps and all, and each IP
packet is put inside the layers, with the lengths and the IPv4 header checksums
they need. Packets from the side that sent the first packet get one outer address,
the others the other one, as a real tunnel between two routers would show them.

  encapsulate_capture.py IN.pcap OUT.pcap MODE

MODE is one of:
  pppoe-qinq   Ethernet, an 802.1ad tag, an 802.1Q tag, a PPPoE session, PPP;
               a PPPoE discovery frame (PADI) and a PPP LCP echo come first, as
               they do on a DSL line, to be counted as non-TCP
  mpls         Ethernet, two MPLS labels
  gre          Ethernet, IPv4, GRE: the first side's packets with a key and a
               sequence number, the other's with neither
  gre-bridged  Ethernet, IPv4, GRE with a key, transparent Ethernet bridging, the
               original Ethernet frame
  6in4         Ethernet, IPv4 (protocol 41), the IPv6 packet (from an IPv6 capture)
  4in6         Ethernet, IPv6 (next header 4), the IPv4 packet
  nested       Ethernet, a VLAN tag, MPLS, IPv4, GRE (bridged), Ethernet, IPv6,
               IPv4 (IP-in-IPv6), the packet: five tunnels deep
  fragments    no tunnel: each IPv4 packet that carries data is cut in three
               fragments, sent last first, with a fourth that overlaps the first
               two (same bytes) where they are long enough; after the first, a
               stray first fragment of a datagram whose other fragments never
               come. (The kernel fragments in order and without overlaps:
               tools/make-tunnel-fixtures records that case.)
"""
import struct
import sys

from pcap_edit import checksum, read_pcap

OUTER4 = (bytes([192, 0, 2, 1]), bytes([198, 51, 100, 1]))
OUTER6 = (bytes.fromhex("20010db8000000000000000000000001"), bytes.fromhex("20010db8000000000000000000000002"))
MACS = (bytes.fromhex("020000000001"), bytes.fromhex("020000000002"))


class Outer:
    """The outer headers' state: which way a packet goes, and the IPv4 IDs."""

    def __init__(self):
        self.ident = 0x4000
        self.seq = 0

    def ipv4(self, way, protocol, payload):
        self.ident += 1
        src, dst = OUTER4[way], OUTER4[1 - way]
        header = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), self.ident, 0x4000, 64, protocol, 0, src, dst))
        struct.pack_into("!H", header, 10, checksum(bytes(header)))
        return bytes(header) + payload

    def ipv6(self, way, next_header, payload):
        src, dst = OUTER6[way], OUTER6[1 - way]
        return struct.pack("!IHBB16s16s", 0x60000000, len(payload), next_header, 64, src, dst) + payload

    def gre(self, way, ether_type, payload, key=None, seq=False):
        flags = (0x2000 if key is not None else 0) | (0x1000 if seq else 0)
        out = struct.pack("!HH", flags, ether_type)
        if key is not None:
            out += struct.pack("!I", key)
        if seq:
            self.seq += 1
            out += struct.pack("!I", self.seq)
        return out + payload


def ethernet(way, ether_type, payload):
    return MACS[1 - way] + MACS[way] + struct.pack("!H", ether_type) + payload


def tag(tci, ether_type, payload):
    return struct.pack("!HH", tci, ether_type) + payload


def mpls(labels, payload):
    out = b""
    for i, label in enumerate(labels):
        bottom = 1 if i == len(labels) - 1 else 0
        out += struct.pack("!I", (label << 12) | (bottom << 8) | 64)
    return out + payload


def pppoe(protocol, payload):
    return struct.pack("!BBHHH", 0x11, 0, 0x2a2a, len(payload) + 2, protocol) + payload


def ip_of(frame):
    """The IP packet in an Ethernet frame, without Ethernet padding."""
    ether_type = struct.unpack("!H", frame[12:14])[0]
    ip = frame[14:]
    if ether_type == 0x0800:
        return 4, ip[: struct.unpack("!H", ip[2:4])[0]]
    if ether_type == 0x86DD:
        return 6, ip[: 40 + struct.unpack("!H", ip[4:6])[0]]
    raise SystemExit("expects IPv4 or IPv6 over Ethernet, got EtherType %#x" % ether_type)


def wrap(mode, outer, way, frame):
    version, ip = ip_of(frame)
    ether_ip = 0x0800 if version == 4 else 0x86DD
    if mode == "pppoe-qinq":
        ppp = 0x0021 if version == 4 else 0x0057
        return ethernet(way, 0x88A8, tag(100, 0x8100, tag(200, 0x8864, pppoe(ppp, ip))))
    if mode == "mpls":
        return ethernet(way, 0x8847, mpls([1000 + way, 16], ip))
    if mode == "gre":
        inner = outer.gre(way, ether_ip, ip, key=0x1234, seq=True) if way == 0 else outer.gre(way, ether_ip, ip)
        return ethernet(way, 0x0800, outer.ipv4(way, 47, inner))
    if mode == "gre-bridged":
        return ethernet(way, 0x0800, outer.ipv4(way, 47, outer.gre(way, 0x6558, frame, key=7)))
    if mode == "6in4":
        assert version == 6, "6in4 needs an IPv6 capture"
        return ethernet(way, 0x0800, outer.ipv4(way, 41, ip))
    if mode == "4in6":
        assert version == 4, "4in6 needs an IPv4 capture"
        return ethernet(way, 0x86DD, outer.ipv6(way, 4, ip))
    if mode == "nested":
        in6 = outer.ipv6(way, 4 if version == 4 else 41, ip)
        bridged = outer.gre(way, 0x6558, ethernet(way, 0x86DD, in6), key=9)
        return ethernet(way, 0x8100, tag(300, 0x8847, mpls([77], outer.ipv4(way, 47, bridged))))
    raise SystemExit("unknown mode " + mode)


def fragments(frame, ident):
    """The IPv4 packet in `frame` as fragments with IP ID `ident`, in capture order:
    the last, one overlapping the first two (if they are long enough), the first,
    the second."""
    _, ip = ip_of(frame)
    header_len = (ip[0] & 0xF) * 4
    header, payload = ip[:header_len], ip[header_len:]
    cut = max(8, (len(payload) // 3) // 8 * 8)

    def fragment(start, end, more):
        h = bytearray(header)
        struct.pack_into("!HHH", h, 2, header_len + end - start, ident, (start // 8) | (0x2000 if more else 0))
        struct.pack_into("!H", h, 10, 0)
        struct.pack_into("!H", h, 10, checksum(bytes(h)))
        return frame[:14] + bytes(h) + payload[start:end]

    pieces = [fragment(2 * cut, len(payload), False)]
    # The overlap starts after the first fragment, so that the datagram is complete
    # only with the last fragment sent (one sent after would start a new datagram).
    if cut >= 16:
        pieces.append(fragment(8, cut + 8, True))
    return pieces + [fragment(0, cut, True), fragment(cut, 2 * cut, True)]


def fragmented(packets):
    """Every IPv4 packet with data, fragmented (see `fragments`), and one stray."""
    out = []
    stray = True
    for n, (sec, usec, frame) in enumerate(packets):
        version, ip = ip_of(frame)
        header_len = (ip[0] & 0xF) * 4
        data_at = header_len + (ip[header_len + 12] >> 4) * 4
        if version != 4 or len(ip) <= data_at:
            out.append((sec, usec, frame))
            continue
        out += [(sec, usec, f) for f in fragments(frame, 0x5000 + n)]
        if stray:
            out.append((sec, usec, fragments(frame, 0x7FFF)[-2]))
            stray = False
    return out


def pppoe_chatter(way):
    """A PADI (discovery) and an LCP echo request: what a DSL line carries besides IP."""
    padi = ethernet(way, 0x8863, struct.pack("!BBHH", 0x11, 0x09, 0, 4) + struct.pack("!HH", 0x0101, 0))
    padi = b"\xff" * 6 + padi[6:]
    echo = struct.pack("!BBHI", 9, 1, 8, 0x11223344)
    lcp = ethernet(way, 0x88A8, tag(100, 0x8100, tag(200, 0x8864, pppoe(0xC021, echo))))
    return [padi, lcp]


def main(src, dst, mode):
    header, packets = read_pcap(src)
    if mode == "fragments":
        write_pcap(dst, header, fragmented(packets))
        return
    first_port = None
    outer = Outer()
    out = []
    if mode == "pppoe-qinq":
        sec, usec, _ = packets[0]
        out += [(sec, usec, frame) for frame in pppoe_chatter(0)]
    for sec, usec, frame in packets:
        version, ip = ip_of(frame)
        # Loopback captures have the same address both ways: the port tells the side.
        header_len = (ip[0] & 0xF) * 4 if version == 4 else 40
        port = ip[header_len : header_len + 2]
        if first_port is None:
            first_port = port
        way = 0 if port == first_port else 1
        out.append((sec, usec, wrap(mode, outer, way, frame)))
    write_pcap(dst, header, out)


def write_pcap(path, header, packets):
    with open(path, "wb") as f:
        f.write(header[:16] + struct.pack("<I", 65535) + header[20:])
        for sec, usec, frame in packets:
            f.write(struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3])
