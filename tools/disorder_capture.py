#!/usr/bin/env python3
"""Makes a capture with retransmitted, out-of-order and overlapping segments from a
clean tcpdump capture of a line session (Ethernet link type, IPv4, one connection).

Loopback never loses or reorders, and the kernel here has no netem, so the disorder
is made by editing the capture, the way Wireshark users make test cases: the real
packets are kept (timestamps moved with them) and only the order of A's data
segments is changed, plus a copy and one new, overlapping segment:

  D1 and D2 swap places            -> out of order (D2 waits for D1)
  D0 again after D3                -> a retransmission of delivered data
  after D4, a segment covering the second half of D4 and the first half of D5
                                   -> overlap: half old bytes, half new; D5 then
                                      overlaps it in turn

usage: disorder_capture.py IN.pcap OUT.pcap
"""
import struct
import sys

from pcap_edit import checksum, read_pcap


def parse(frame):
    """(ip header length, tcp header length, src port, seq, payload) of an Ethernet frame."""
    ip = frame[14:]
    ihl = (ip[0] & 0xF) * 4
    total = struct.unpack("!H", ip[2:4])[0]
    tcp = ip[ihl:total]
    thl = (tcp[12] >> 4) * 4
    sport, _, seq = struct.unpack("!HHI", tcp[:8])
    return ihl, thl, sport, seq, tcp[thl:]


def with_payload(frame, seq, payload):
    """The frame with a new sequence number and payload, lengths and checksums redone."""
    ihl, thl, _, _, _ = parse(frame)
    eth, ip = frame[:14], bytearray(frame[14 : 14 + ihl])
    tcp = bytearray(frame[14 + ihl : 14 + ihl + thl])
    struct.pack_into("!I", tcp, 4, seq)
    struct.pack_into("!H", tcp, 16, 0)
    segment = bytes(tcp) + payload
    pseudo = ip[12:20] + struct.pack("!BBH", 0, 6, len(segment))
    struct.pack_into("!H", tcp, 16, checksum(pseudo + segment))
    struct.pack_into("!H", ip, 2, ihl + len(segment))
    struct.pack_into("!H", ip, 10, 0)
    struct.pack_into("!H", ip, 10, checksum(bytes(ip)))
    return eth + bytes(ip) + bytes(tcp) + payload


def main(src, dst):
    header, packets = read_pcap(src)
    client_port = parse(packets[0][2])[2]  # the first packet is the client's SYN
    data = [i for i, p in enumerate(packets) if parse(p[2])[2] == client_port and parse(p[2])[4]]
    assert len(data) >= 6, "needs six data segments from the client"
    d = [packets[i] for i in data]

    out = list(packets)
    # Swap D1 and D2 (their timestamps stay in place, so time still runs forward).
    i1, i2 = data[1], data[2]
    out[i1] = [packets[i1][0], packets[i1][1], d[2][2]]
    out[i2] = [packets[i2][0], packets[i2][1], d[1][2]]
    # New packets go in just after an existing one, a microsecond later.
    inserts = []
    inserts.append((data[3], d[0][2]))
    _, _, _, seq4, pay4 = parse(d[4][2])
    _, _, _, seq5, pay5 = parse(d[5][2])
    half4, half5 = len(pay4) // 2, len(pay5) // 2
    overlap = with_payload(d[4][2], seq4 + half4, pay4[half4:] + pay5[:half5])
    inserts.append((data[4], overlap))
    for after, frame in sorted(inserts, reverse=True):
        sec, usec = out[after][0], out[after][1] + 1
        out.insert(after + 1, [sec + usec // 1_000_000, usec % 1_000_000, frame])

    with open(dst, "wb") as f:
        f.write(header)
        for sec, usec, frame in out:
            f.write(struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
