#!/usr/bin/env python3
"""Makes fuzz/seeds/layers.pcap: one Ethernet frame for each way of carrying TCP that
the fixtures do not show (they show PPPoE in QinQ, MPLS, GRE with key and sequence,
bridged GRE, VXLAN, 6in4, 4in6, a five-tunnel nesting and IPv4 fragments), so the
fuzzers start from every decoder: IPv6 fragments, GRE with a checksum, MPLS in IP,
PPPoE carrying IPv6, IPv4 in IPv4, IPv6 in IPv6, VXLAN over IPv6, a fragmented
GRE tunnel, and an old-style 0x9100 QinQ tag. Run from the repository root:
  fuzz/make-layer-seeds.py fuzz/seeds/layers.pcap"""
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
from encapsulate_capture import Outer, ethernet, mpls, pppoe, tag, write_pcap  # noqa: E402

SRC4, DST4 = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
SRC6, DST6 = bytes(15) + b"\x01", bytes(15) + b"\x02"


def tcp(payload, seq=1000):
    return struct.pack("!HHIIBBHHH", 40000, 8080, seq, 1, 0x50, 0x18, 65535, 0, 0) + payload


def ipv4(protocol, payload, ident=1, offset=0, more=False):
    flags = (offset // 8) | (0x2000 if more else 0)
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, flags, 64, protocol, 0, SRC4, DST4) + payload


def ipv6(next_header, payload):
    return struct.pack("!IHBB16s16s", 0x60000000, len(payload), next_header, 64, SRC6, DST6) + payload


def ipv6_fragment(next_header, payload, ident, offset, more):
    frag = struct.pack("!BBHI", next_header, 0, offset | (1 if more else 0), ident)
    return ipv6(44, frag + payload)


def udp(port, payload):
    return struct.pack("!HHHH", 50000, port, 8 + len(payload), 0) + payload


def main(path):
    outer = Outer()
    segment = tcp(b"GET / HTTP/1.0\r\n\r\n")
    frames = []
    # IPv6 fragments, the last first.
    frames.append(ethernet(0, 0x86DD, ipv6_fragment(6, segment[16:], 9, 16, False)))
    frames.append(ethernet(0, 0x86DD, ipv6_fragment(6, segment[:16], 9, 0, True)))
    # GRE with checksum, key and sequence number.
    gre = struct.pack("!HHHHII", 0xB000, 0x0800, 0, 0, 5, 6) + ipv4(6, segment)
    frames.append(ethernet(0, 0x0800, ipv4(47, gre)))
    frames.append(ethernet(0, 0x0800, ipv4(137, mpls([20, 21], ipv4(6, segment)))))
    frames.append(ethernet(0, 0x8864, pppoe(0x0057, ipv6(6, segment))))
    frames.append(ethernet(0, 0x0800, ipv4(4, ipv4(6, segment))))
    frames.append(ethernet(0, 0x86DD, ipv6(41, ipv6(6, segment))))
    vxlan = struct.pack("!II", 0x08000000, 42 << 8) + ethernet(0, 0x0800, ipv4(6, segment))
    frames.append(ethernet(0, 0x86DD, ipv6(17, udp(4789, vxlan))))
    # A GRE tunnel whose outer packet was fragmented.
    tunnel = outer.gre(0, 0x0800, ipv4(6, segment), key=1)
    frames.append(ethernet(0, 0x0800, ipv4(47, tunnel[:24], 77, 0, True)))
    frames.append(ethernet(0, 0x0800, ipv4(47, tunnel[24:], 77, 24, False)))
    frames.append(ethernet(0, 0x9100, tag(1, 0x8100, tag(2, 0x0800, ipv4(6, segment)))))
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    write_pcap(path, header, [(1700000000 + i, 0, f) for i, f in enumerate(frames)])


if __name__ == "__main__":
    main(sys.argv[1])
