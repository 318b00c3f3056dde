"""rawca - Channel Access messages as bytes, for tests that talk to a
server over raw sockets (test_wire_robustness.py, test_many_circuits.py).

Builds requests (well-formed or deliberately not), splits a byte stream
into messages, and runs the shortest useful conversation: VERSION,
CREATE_CHAN, READ_NOTIFY of one DBR_DOUBLE. Every socket operation is
bounded by the socket's timeout and by a deadline.
"""
import socket
import struct
import time

VERSION, EVENT_ADD, EVENT_CANCEL, WRITE, SEARCH = 0, 1, 2, 4, 6
EVENTS_OFF, EVENTS_ON, READ_SYNC, ERROR, CLEAR_CHANNEL = 8, 9, 10, 11, 12
NOT_FOUND, READ_NOTIFY, CREATE_CHAN, WRITE_NOTIFY = 14, 15, 18, 19
CLIENT_NAME, HOST_NAME, ACCESS_RIGHTS, ECHO, CREATE_CH_FAIL = 20, 21, 22, 23, 26
MINOR = 13
DBR_DOUBLE = 6
DO_REPLY = 10


def header(command, size=0, dtype=0, count=0, p1=0, p2=0):
    """A 16-byte header with exactly these fields (nothing checked)."""
    return struct.pack(">HHHHII", command, size, dtype, count, p1, p2)


def extended_header(command, size, dtype, count, p1=0, p2=0):
    """A 24-byte extended header (size 0xffff and count 0 mark it)."""
    return struct.pack(">HHHHIIII", command, 0xffff, dtype, 0, p1, p2, size, count)


def pad(payload):
    return payload + b"\0" * (-len(payload) % 8)


def message(command, payload=b"", dtype=0, count=0, p1=0, p2=0):
    """A well-formed message: payload padded to 8, its true size."""
    payload = pad(payload)
    return header(command, len(payload), dtype, count, p1, p2) + payload


def version(priority=0):
    return header(VERSION, 0, priority, MINOR, 0, 0)


def create_chan(name, cid=1):
    return message(CREATE_CHAN, name.encode() + b"\0", p1=cid, p2=MINOR)


def read_notify(sid, ioid=1, dtype=DBR_DOUBLE, count=1):
    return header(READ_NOTIFY, 0, dtype, count, sid, ioid)


def search(name, search_id=1):
    return message(SEARCH, name.encode() + b"\0", dtype=DO_REPLY, count=MINOR,
                   p1=search_id, p2=search_id)


class Message:
    def __init__(self, command, dtype, count, p1, p2, payload):
        self.command, self.dtype, self.count = command, dtype, count
        self.p1, self.p2, self.payload = p1, p2, payload

    def __repr__(self):
        return "Message(cmd=%d type=%d count=%d p1=%#x p2=%#x payload=%d bytes)" % (
            self.command, self.dtype, self.count, self.p1, self.p2, len(self.payload))


def split(data):
    """(messages, rest): the complete messages at the start of data."""
    messages, offset = [], 0
    while len(data) - offset >= 16:
        command, size, dtype, count, p1, p2 = struct.unpack_from(">HHHHII", data, offset)
        hlen = 16
        if size == 0xffff and count == 0:
            if len(data) - offset < 24:
                break
            size, count = struct.unpack_from(">II", data, offset + 16)
            hlen = 24
        if len(data) - offset < hlen + size:
            break
        start = offset + hlen
        messages.append(Message(command, dtype, count, p1, p2, data[start:start + size]))
        offset = start + size
    return messages, data[offset:]


class Stream:
    """The messages a server sends on one TCP connection."""

    def __init__(self, sock):
        self.sock = sock
        self.buffer = b""
        self.closed = False

    def read_until(self, done, timeout=5.0):
        """Receive until done(messages so far) is true, the server closes,
        or timeout passes; all messages received."""
        got = []
        deadline = time.monotonic() + timeout
        while not done(got) and not self.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.sock.settimeout(min(left, 1.0))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except (ConnectionResetError, BrokenPipeError):
                self.closed = True
                break
            if not data:
                self.closed = True
                break
            messages, self.buffer = split(self.buffer + data)
            got.extend(messages)
        return got

    def until_closed(self, timeout=5.0):
        """Receive until the server closes the connection (True) or timeout."""
        self.read_until(lambda _: False, timeout)
        return self.closed


def connect(port, timeout=5.0):
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def send_quietly(sock, data):
    """Send what the server takes; it may close the connection meanwhile."""
    try:
        sock.sendall(data)
        return True
    except (BrokenPipeError, ConnectionResetError, socket.timeout):
        return False


def has(command):
    return lambda messages: any(m.command == command for m in messages)


def read_double(sock, name, cid=1, ioid=7, pieces=None, timeout=5.0):
    """Connect a channel and read one DBR_DOUBLE over an open socket.

    pieces: when given, every request is sent that many bytes at a time.
    Returns the value; raises AssertionError with what the server sent."""
    return read_double_sid(sock, name, cid, ioid, pieces, timeout)[0]


def read_double_sid(sock, name, cid=1, ioid=7, pieces=None, timeout=5.0):
    """read_double, and the server's id of the channel: (value, sid)."""
    stream = Stream(sock)
    _send(sock, version() + create_chan(name, cid), pieces)
    got = stream.read_until(has(CREATE_CHAN), timeout)
    created = [m for m in got if m.command == CREATE_CHAN]
    assert created, "no CREATE_CHAN reply for %s: %r" % (name, got)
    sid = created[0].p2
    _send(sock, read_notify(sid, ioid), pieces)
    got = stream.read_until(has(READ_NOTIFY), timeout)
    replies = [m for m in got if m.command == READ_NOTIFY]
    assert replies, "no READ_NOTIFY reply for %s: %r" % (name, got)
    reply = replies[0]
    assert reply.p1 == 1 and reply.p2 == ioid and reply.dtype == DBR_DOUBLE, reply
    return struct.unpack(">d", reply.payload[:8])[0], sid


def _send(sock, data, pieces):
    if not pieces:
        sock.sendall(data)
        return
    for i in range(0, len(data), pieces):
        sock.sendall(data[i:i + pieces])
        time.sleep(0.001)
