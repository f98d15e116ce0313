"""Peers and a log reader for the executable docs in docs/*.md.

The pages run with byexample: their Python examples import this module (the runner,
tools/run-docs, puts tools/ on PYTHONPATH) to play the two ends of a connection, A the
client and B the server, while tiburoncin sits in between.

Three promises keep the pages deterministic and safe:

- Only 127.0.0.1. A listening peer binds port 0, so the kernel picks a free port and
  nothing is guessed or chosen at random.
- Every call that can block is bounded by a timeout (TIMEOUT seconds unless told):
  a page whose binary misbehaves fails with a clear exception instead of hanging.
- Nothing sleeps and hopes: the peers wait for bytes or for the end of a stream,
  and Log watches tiburoncin's output file until the line it waits for is there.
"""

import collections
import fcntl
import socket
import struct
import termios
import threading
import time

HOST = "127.0.0.1"

#: Seconds any single wait may take before it gives up with an exception.
TIMEOUT = 10.0

# ioctl requests on a TCP socket: bytes waiting to be read, bytes not yet acknowledged.
_SIOCINQ = termios.FIONREAD
_SIOCOUTQ = termios.TIOCOUTQ


def free_port():
    """A port that was free a moment ago: bind port 0, read what the kernel gave, close.

    Prefer Peer.listen_on(0), which keeps the port it got; this is for a program
    that must be told a port before it binds it (another process could take the
    port in between, which on a quiet loopback does not happen in practice).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _as_bytes(data):
    # Pages write text like 'X' * 1024; latin-1 maps each character to one byte.
    return data.encode("latin-1") if isinstance(data, str) else bytes(data)


_HOW = {
    "rd": socket.SHUT_RD,
    "wr": socket.SHUT_WR,
    "rdwr": socket.SHUT_RDWR,
    socket.SHUT_RD: socket.SHUT_RD,
    socket.SHUT_WR: socket.SHUT_WR,
    socket.SHUT_RDWR: socket.SHUT_RDWR,
}


class Peer:
    """One end of a TCP connection on 127.0.0.1, like a scriptable netcat.

    B = Peer.listen_on(0, rcv_buf=1024) listens (B.port is the port it got) and
    B.accept() takes the connection; A = Peer.connect_to(port) dials. Both then
    send, consume, recv_all and shutdown.

    rcv_buf / snd_buf set SO_RCVBUF / SO_SNDBUF *before* listen or connect: the TCP
    window scale is fixed at the handshake, and a fixed size also turns off the
    kernel's autotuning for that socket. The kernel doubles what is asked and
    applies a floor (on Linux, SO_RCVBUF 1024 becomes 2304 and SO_SNDBUF 1024
    becomes 4608); rcv_buf_size() / snd_buf_size() tell what it really is.
    """

    def __init__(self, sock=None, listener=None, timeout=TIMEOUT):
        self.sock = sock
        self.listener = listener
        self.timeout = timeout
        #: Every byte this peer has sent and read, in order.
        self.sent = bytearray()
        self.received = bytearray()
        self.eof = False

    @staticmethod
    def _socket(rcv_buf, snd_buf):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcv_buf is not None:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcv_buf)
        if snd_buf is not None:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, snd_buf)
        return s

    @classmethod
    def listen_on(cls, port=0, rcv_buf=None, snd_buf=None, timeout=TIMEOUT):
        """Listen on 127.0.0.1:port (0: a free port, see .port); accept() later.

        The accepted socket inherits the listener's buffer sizes.
        """
        listener = cls._socket(rcv_buf, snd_buf)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((HOST, port))
        listener.listen(1)
        listener.settimeout(timeout)
        return cls(listener=listener, timeout=timeout)

    @classmethod
    def connect_to(cls, port, rcv_buf=None, snd_buf=None, timeout=TIMEOUT):
        """Connect to 127.0.0.1:port."""
        s = cls._socket(rcv_buf, snd_buf)
        s.settimeout(timeout)
        s.connect((HOST, port))
        return cls(sock=s, timeout=timeout)

    @property
    def port(self):
        """The local port: the listener's for a server, the connection's otherwise."""
        return (self.listener or self.sock).getsockname()[1]

    def accept(self):
        """Take the one connection waiting on the listener, then stop listening."""
        self.sock, _ = self.listener.accept()
        self.sock.settimeout(self.timeout)
        self.listener.close()
        self.listener = None

    def send(self, data):
        """Send all of data (str as latin-1, or bytes); fails if it does not fit in
        the socket buffers within the timeout."""
        data = _as_bytes(data)
        self.sock.sendall(data)
        self.sent += data

    def recv(self, n):
        """Read exactly n bytes, waiting for them, and return them."""
        start = len(self.received)
        self.consume(n)
        return bytes(self.received[start:])

    def consume(self, n):
        """Read exactly n bytes, waiting for them; they are kept in .received."""
        deadline = time.monotonic() + self.timeout
        want = len(self.received) + n
        while len(self.received) < want:
            chunk = self._recv(want - len(self.received), deadline)
            if not chunk:
                raise EOFError(
                    "end of stream after %d of %d bytes"
                    % (n - (want - len(self.received)), n)
                )
            self.received += chunk

    def recv_all(self):
        """Read until the other side shuts down its writing; return what came."""
        deadline = time.monotonic() + self.timeout
        start = len(self.received)
        while True:
            chunk = self._recv(64 * 1024, deadline)
            if not chunk:
                self.eof = True
                return bytes(self.received[start:])
            self.received += chunk

    def _recv(self, n, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no data within %s seconds" % self.timeout)
        self.sock.settimeout(left)
        try:
            return self.sock.recv(n)
        finally:
            self.sock.settimeout(self.timeout)

    def shutdown(self, how="rdwr"):
        """shutdown(2): 'wr' (or 1) stops sending and the other side reads
        end-of-stream; 'rd' (0) stops receiving; 'rdwr' (2) both."""
        self.sock.shutdown(_HOW[how])

    def close(self):
        """Close the connection (and the listener if still open)."""
        for s in (self.sock, self.listener):
            if s is not None:
                s.close()

    def pending(self):
        """Bytes that arrived and wait in this socket's receive buffer, unread."""
        return _ioctl_int(self.sock, _SIOCINQ)

    def unacked(self):
        """Bytes in this socket's send queue that the other side has not acknowledged."""
        return _ioctl_int(self.sock, _SIOCOUTQ)

    def rcv_buf_size(self):
        """SO_RCVBUF as the kernel really set it."""
        s = self.sock or self.listener
        return s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)

    def snd_buf_size(self):
        """SO_SNDBUF as the kernel really set it."""
        s = self.sock or self.listener
        return s.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)


def _ioctl_int(sock, request):
    raw = fcntl.ioctl(sock.fileno(), request, struct.pack("i", 0))
    return struct.unpack("i", raw)[0]


Queues = collections.namedtuple("Queues", "send recv")


def kernel_queues(peer):
    """The kernel queues of the socket at the other end of peer's connection (in
    the docs, tiburoncin's socket towards that peer), whatever process owns it.

    send: bytes its process wrote that the peer has not acknowledged yet;
    recv: bytes that arrived from the peer that its process has not read yet
    (after the peer shut down its sending side, one more: the end of the stream
    takes a sequence number too).

    The numbers come from /proc/net/tcp, one line per connection with hex
    addresses and `tx_queue:rx_queue`.
    """
    here, there = peer.sock.getsockname(), peer.sock.getpeername()

    def hexaddr(addr):
        ip = struct.unpack("<I", socket.inet_aton(addr[0]))[0]
        return "%08X:%04X" % (ip, addr[1])

    # The other end's socket has our address as its remote one, and vice versa.
    local, remote = hexaddr(there), hexaddr(here)
    with open("/proc/net/tcp") as f:
        next(f)  # the header
        for line in f:
            fields = line.split()
            if fields[1] == local and fields[2] == remote:
                tx, rx = fields[4].split(":")
                return Queues(int(tx, 16), int(rx, 16))
    raise LookupError("no socket at the other end of %s:%d" % here)


def transfer(sender, receiver, data):
    """Send data from one peer and read it on the other; check it arrived unchanged.

    Returns the number of bytes that went through. The receiver reads as it goes,
    so data may be larger than every buffer on the way.
    """
    data = _as_bytes(data)
    failure = []

    def send():
        try:
            sender.send(data)
        except Exception as e:  # reported by the caller's thread below
            failure.append(e)

    t = threading.Thread(target=send, daemon=True)
    start = len(receiver.received)
    t.start()
    receiver.consume(len(data))
    t.join(receiver.timeout)
    if failure:
        raise failure[0]
    got = bytes(receiver.received[start:])
    if got != data:
        at = next(i for i, (x, y) in enumerate(zip(got, data)) if x != y)
        raise AssertionError("received bytes differ from offset %d" % at)
    return len(got)


class Log:
    """tiburoncin's output, written to a file by a process in the background.

    show() prints the lines that appeared since the previous show(), up to a line
    the page names, waiting for that line if it is not there yet. So a page shows
    exactly the output that a step caused, without sleeping and hoping.
    """

    def __init__(self, path, timeout=TIMEOUT):
        self.path = path
        self.timeout = timeout
        self.shown = 0  # lines already shown

    def lines(self):
        """Every complete line written so far."""
        try:
            with open(self.path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return []
        # A line still being written (no newline yet) is not complete.
        return text.split("\n")[:-1]

    def show(self, until, times=1, after=0, brief=False):
        """Print the new lines up to and including the times-th new line that starts
        with `until`, and `after` lines more; wait up to the timeout for them.

        brief=True prints only the first and the last row of each hexdump, with a
        line that says how many rows are left out between them.
        """
        deadline = time.monotonic() + self.timeout
        while True:
            lines = self.lines()
            end = self._find(lines, until, times)
            if end is not None and end + after < len(lines):
                end += after + 1
                break
            if time.monotonic() > deadline:
                raise TimeoutError(
                    "no line %r in %s within %s seconds; after the %d lines shown "
                    "already there is:\n%s"
                    % (until, self.path, self.timeout, self.shown,
                       "\n".join(lines[self.shown:]))
                )
            time.sleep(0.01)  # look again: the wait is for the line, not for a time
        new = lines[self.shown:end]
        print("\n".join(_brief(new) if brief else new))
        self.shown = end

    def _find(self, lines, until, times):
        seen = 0
        for i in range(self.shown, len(lines)):
            if lines[i].startswith(until):
                seen += 1
                if seen == times:
                    return i
        return None

    def rest(self):
        """Print every line not shown yet (use once the process has ended)."""
        lines = self.lines()
        if lines[self.shown:]:
            print("\n".join(lines[self.shown:]))
        self.shown = len(lines)


def _is_row(line):
    # A hexdump row starts with its offset: at least 8 hex digits and two spaces.
    head = line.split("  ", 1)[0]
    return len(head) >= 8 and all(c in "0123456789abcdef" for c in head)


def _brief(lines):
    """Each run of hexdump rows cut to its first and last row."""
    out = []
    run = []
    for line in lines + [None]:
        if line is not None and _is_row(line):
            run.append(line)
            continue
        if len(run) > 2:
            out += [run[0], "          ... %d rows ..." % (len(run) - 2), run[-1]]
        else:
            out += run
        run = []
        if line is not None:
            out.append(line)
    return out
