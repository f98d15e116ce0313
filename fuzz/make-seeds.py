#!/usr/bin/env python3
"""Makes fuzz/seeds/w-session.pcap[ng]: a short session recorded by tiburoncin -w
(three turns, binary bytes, a half-close), so the fuzzers also start from our
own captures, pcapng comments included. Run from the repository root after
`cargo build`: fuzz/make-seeds.py fuzz/seeds/w-session.pcap"""
import socket, subprocess, sys, re
out = sys.argv[1]
b = socket.socket(); b.bind(('127.0.0.1', 0)); b.listen(1)
p = subprocess.Popen(['target/debug/tiburoncin', '-c', '-q', '-w', out, '-A', '127.0.0.1:0', '-B', '127.0.0.1:%d' % b.getsockname()[1]], stdout=subprocess.PIPE, text=True)
port = None
while port is None:
    line = p.stdout.readline()
    m = re.search(r'Waiting for a connection from A .*:(\d+)\.\.\.', line)
    if m: port = int(m.group(1))
bs, _ = b.accept()
a = socket.create_connection(('127.0.0.1', port))
for i in range(3):
    msg = (b'request %d ' % i) + bytes(range(256))[: 20 * (i + 1)]
    a.sendall(msg)
    got = b''
    while len(got) < len(msg): got += bs.recv(65536)
    ans = b'answer %d\n' % i * (i + 1)
    bs.sendall(ans)
    got = b''
    while len(got) < len(ans): got += a.recv(65536)
a.shutdown(socket.SHUT_WR); assert bs.recv(10) == b''
bs.sendall(b'bye\n'); bs.shutdown(socket.SHUT_WR)
got = b''
while True:
    d = a.recv(100)
    if not d: break
    got += d
print(p.wait(), got)
