"""rawca - Channel Access messages as bytes, for tests that talk to a
server over raw sockets (test_wire_robustness.py, test_many_circuits.py,
test_access.py).

Builds requests (well-formed or deliberately not), splits a byte stream
into messages, and runs the shortest useful conversation: VERSION,
CREATE_CHAN, READ_NOTIFY of one DBR_DOUBLE. `Client` is a small client
that says any user and host name (CLIENT_NAME, HOST_NAME), connects from
any loopback source address, keeps every message the server sent (the
ACCESS_RIGHTS and SERVER_DISCONN of each channel) and reads and writes
DBR_DOUBLE values. Every socket operation is bounded by the socket's
timeout and by a deadline.
"""
import itertools
import socket
import struct
import time

VERSION, EVENT_ADD, EVENT_CANCEL, WRITE, SEARCH = 0, 1, 2, 4, 6
EVENTS_OFF, EVENTS_ON, READ_SYNC, ERROR, CLEAR_CHANNEL = 8, 9, 10, 11, 12
NOT_FOUND, READ_NOTIFY, CREATE_CHAN, WRITE_NOTIFY = 14, 15, 18, 19
CLIENT_NAME, HOST_NAME, ACCESS_RIGHTS, ECHO, CREATE_CH_FAIL = 20, 21, 22, 23, 26
SERVER_DISCONN = 27
MINOR = 13
DBR_DOUBLE = 6
DO_REPLY = 10
DONT_REPLY = 5
RIGHT_READ, RIGHT_WRITE = 1, 2

# caerr.h: DEFMSG(severity, number) = number << 3 | severity
ECA_NORMAL = 1
ECA_NORDACCESS = 46 << 3
ECA_NOWTACCESS = 47 << 3


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


def client_name(user):
    return message(CLIENT_NAME, user.encode() + b"\0")


def host_name(host):
    return message(HOST_NAME, host.encode() + b"\0")


def double_payload(values):
    return b"".join(struct.pack(">d", float(v)) for v in values)


def search_datagram(names, flag=DONT_REPLY, first_id=1):
    """One UDP datagram searching for every name; search ids first_id, ..."""
    data = header(VERSION, 0, 0, MINOR)
    for i, name in enumerate(names):
        data += message(SEARCH, name.encode() + b"\0", dtype=flag, count=MINOR,
                        p1=first_id + i, p2=first_id + i)
    return data


def search_found(port, names, source=None, wait=0.3):
    """Search for names (one datagram from source, a loopback address; None:
    the kernel's choice) at the server on UDP port; the set of names
    answered within `wait` seconds."""
    names = list(names)
    found = set()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        if source:
            s.bind((source, 0))
        # datagrams of at most ~1 KiB (well under any server's buffer)
        for start in range(0, len(names), 32):
            s.sendto(search_datagram(names[start:start + 32], first_id=start + 1),
                     ("127.0.0.1", port))
        deadline = time.monotonic() + wait
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            s.settimeout(left)
            try:
                data, _ = s.recvfrom(65536)
            except socket.timeout:
                break
            for m in split(data)[0]:
                if m.command == SEARCH and 1 <= m.p2 <= len(names):
                    found.add(names[m.p2 - 1])
    return found


class Refused(AssertionError):
    """The server refused a channel (CREATE_CH_FAIL)."""


class Client:
    """One client circuit over a raw socket.

    user, host: sent as CLIENT_NAME and HOST_NAME right after VERSION (None:
    not sent). source: the loopback address the connection comes from.
    Every message the server sends is kept in `received`, in order."""

    def __init__(self, port, user=None, host=None, source=None, timeout=5.0):
        self.timeout = timeout
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self.sock.settimeout(timeout)
            if source:
                self.sock.bind((source, 0))
            self.sock.connect(("127.0.0.1", port))
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except BaseException:
            self.sock.close()
            raise
        self.stream = Stream(self.sock)
        self.received = []
        self._cids = itertools.count(1)
        self._ioids = itertools.count(1)
        self.sids = {}          # cid -> sid
        self.names = {}         # cid -> name
        first = version()
        if user is not None:
            first += client_name(user)
        if host is not None:
            first += host_name(host)
        self.sock.sendall(first)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def _find(self, predicate, start=0):
        for m in self.received[start:]:
            if predicate(m):
                return m
        return None

    def wait(self, predicate, timeout=None, start=0):
        """The first message since received[start] that satisfies predicate,
        reading more as needed; None after timeout (or when the server
        closed the connection)."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            found = self._find(predicate, start)
            if found is not None or self.stream.closed:
                return found
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.received.extend(self.stream.read_until(lambda got: bool(got), min(left, 0.5)))

    def drain(self, seconds):
        """Receive for this long (to see that something does NOT come)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.stream.closed:
            self.received.extend(self.stream.read_until(lambda got: False,
                                                        deadline - time.monotonic()))

    def create(self, name):
        """Make a channel; its cid. Raises Refused on CREATE_CH_FAIL and
        AssertionError when no answer comes."""
        cid = next(self._cids)
        start = len(self.received)
        self.send(create_chan(name, cid))
        reply = self.wait(lambda m: m.command in (CREATE_CHAN, CREATE_CH_FAIL) and m.p1 == cid,
                          start=start)
        if reply is None:
            raise AssertionError("no reply to CREATE_CHAN %s (cid %d): %r" % (
                name, cid, self.received[start:]))
        if reply.command == CREATE_CH_FAIL:
            raise Refused("CREATE_CH_FAIL for %s" % name)
        self.sids[cid] = reply.p2
        self.names[cid] = name
        return cid

    def rights_messages(self, cid):
        """The rights of every ACCESS_RIGHTS message for cid, in order."""
        return [m.p2 for m in self.received if m.command == ACCESS_RIGHTS and m.p1 == cid]

    def rights(self, cid):
        """The channel's rights as last announced (RIGHT_READ | RIGHT_WRITE)."""
        got = self.rights_messages(cid)
        assert got, "no ACCESS_RIGHTS for cid %d: %r" % (cid, self.received)
        return got[-1]

    def wait_rights(self, cid, rights, timeout=None):
        """Wait until the last ACCESS_RIGHTS of cid says rights; True if so."""
        def last_is(_):
            got = self.rights_messages(cid)
            return bool(got) and got[-1] == rights
        return self.wait(last_is, timeout) is not None

    def disconnected(self, cid):
        """True once the server sent SERVER_DISCONN for cid."""
        return self._find(lambda m: m.command == SERVER_DISCONN and m.p1 == cid) is not None

    def wait_disconnected(self, cid, timeout=None):
        return self.wait(lambda m: m.command == SERVER_DISCONN and m.p1 == cid,
                         timeout) is not None

    def read(self, cid, count=1):
        """READ_NOTIFY of DBR_DOUBLE: (ECA status, [values] or None)."""
        ioid = next(self._ioids)
        start = len(self.received)
        self.send(header(READ_NOTIFY, 0, DBR_DOUBLE, count, self.sids[cid], ioid))
        reply = self.wait(lambda m: (m.command == READ_NOTIFY and m.p2 == ioid) or
                          (m.command == ERROR and m.p1 == cid), start=start)
        assert reply is not None, "no reply to READ_NOTIFY of %s: %r" % (
            self.names[cid], self.received[start:])
        if reply.command == ERROR:
            return reply.p2, None
        if reply.p1 != ECA_NORMAL:
            return reply.p1, None
        n = reply.count
        return ECA_NORMAL, list(struct.unpack(">%dd" % n, reply.payload[:8 * n]))

    def value(self, cid):
        """The channel's value (a read that must succeed)."""
        status, values = self.read(cid)
        assert status == ECA_NORMAL, "read of %s: ECA status %d" % (self.names[cid], status)
        return values[0]

    def write_notify(self, cid, *values):
        """WRITE_NOTIFY of DBR_DOUBLE values; the ECA status of the reply
        (or of the ERROR message the server sent instead)."""
        ioid = next(self._ioids)
        start = len(self.received)
        payload = pad(double_payload(values))
        self.send(header(WRITE_NOTIFY, len(payload), DBR_DOUBLE, len(values),
                         self.sids[cid], ioid) + payload)
        reply = self.wait(lambda m: (m.command == WRITE_NOTIFY and m.p2 == ioid) or
                          (m.command == ERROR and m.p1 == cid), start=start)
        assert reply is not None, "no reply to WRITE_NOTIFY of %s: %r" % (
            self.names[cid], self.received[start:])
        return reply.p2 if reply.command == ERROR else reply.p1

    def write(self, cid, *values):
        """A plain WRITE of DBR_DOUBLE values (no reply on success), then a
        READ_NOTIFY round trip; the ECA status of an ERROR the server sent
        for the write, or ECA_NORMAL."""
        ioid = next(self._ioids)
        start = len(self.received)
        payload = pad(double_payload(values))
        self.send(header(WRITE, len(payload), DBR_DOUBLE, len(values), self.sids[cid], ioid)
                  + payload)
        self.read(cid)
        error = self._find(lambda m: m.command == ERROR and m.p1 == cid and
                           struct.unpack_from(">H", m.payload)[0] == WRITE, start)
        return error.p2 if error is not None else ECA_NORMAL

    def set_user(self, user):
        self.send(client_name(user))

    def set_host(self, host):
        self.send(host_name(host))
