"""What the capture-editing tools share: reading a little-endian microsecond pcap of
Ethernet frames, and the Internet checksum for the headers they redo."""
import struct


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return (~total) & 0xFFFF


def read_pcap(path):
    """(file header, [(sec, usec, frame)]) of the capture at path."""
    raw = open(path, "rb").read()
    header, rest = raw[:24], raw[24:]
    assert header[:4] == b"\xd4\xc3\xb2\xa1", "expects a little-endian microsecond pcap"
    assert struct.unpack("<I", header[20:24])[0] == 1, "expects Ethernet"
    packets = []
    while rest:
        sec, usec, incl, _ = struct.unpack("<IIII", rest[:16])
        packets.append((sec, usec, rest[16 : 16 + incl]))
        rest = rest[16 + incl :]
    return header, packets
