#!/usr/bin/env python3
"""Tiny real programs for tools/make-fixtures to record on loopback.

  fixture_peers.py line-server HOST PORT       answer each line, close after the client
  fixture_peers.py line-client HOST PORT N     send N lines one by one, read each answer,
                                               half-close, read to the end
  fixture_peers.py reuse-client HOST PORT      two connections from one client port:
                                               the first ends with a RST, then the port
                                               is reused for the second
The server serves connections one after another until killed.
"""
import socket
import struct
import sys
import time


def family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def line_server(host, port):
    srv = socket.socket(family(host), socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, port))
    srv.listen(4)
    print("ready", flush=True)
    while True:
        conn, _ = srv.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            with conn, conn.makefile("rb") as lines:
                for line in lines:
                    conn.sendall(b"OK " + line.upper())
                conn.sendall(b"BYE\n")
        except ConnectionResetError:
            pass  # the reuse client resets its first connection


def talk(sock, n):
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for i in range(n):
        sock.sendall(b"line %d says hello\n" % i)
        answer = b""
        while not answer.endswith(b"\n"):
            answer += sock.recv(4096)
        time.sleep(0.01)


def line_client(host, port, n):
    with socket.create_connection((host, port)) as sock:
        talk(sock, n)
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(4096):
            pass


def reuse_client(host, port):
    local_port = port + 1000
    for close_with_reset in (True, False):
        sock = socket.socket(family(host), socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, local_port))
        sock.connect((host, port))
        talk(sock, 1)
        if close_with_reset:
            # A zero linger time: close sends a RST and leaves no TIME_WAIT behind,
            # so the same client port can connect again at once.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
            time.sleep(0.05)
        else:
            sock.shutdown(socket.SHUT_WR)
            while sock.recv(4096):
                pass
            sock.close()


if __name__ == "__main__":
    mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == "line-server":
        line_server(host, port)
    elif mode == "line-client":
        line_client(host, port, int(sys.argv[4]))
    elif mode == "reuse-client":
        reuse_client(host, port)
    else:
        sys.exit("unknown mode " + mode)
