"""Malformed and truncated messages over TCP and UDP never crash, hang or
leak the gateway's CA server.

Each test starts a gateway IOC serving test/db/writable.db through its own
server, sends a batch of bad input over raw sockets, and then proves the
server is still whole: a normal caget through it reads the right value,
every circuit of the batch is gone (`gwReport 0`), and at the end the IOC
exits cleanly on `exit` (the harness fails the test otherwise; on a
sanitizer build that includes AddressSanitizer and LeakSanitizer reports).

Every socket has a timeout, every wait a deadline.
"""
import re
import socket
import struct
import time

import pytest

import gwharness
import rawca

WRITABLE_DB = gwharness.TOP / "test" / "db" / "writable.db"
CORPUS = gwharness.TOP / "gatewayApp" / "fuzz" / "corpus"
PV = "wire:ao"
VALUE = 1.5
NAME_MAX = 500  # Base's unreasonablePVNameSize

CLOSES, STAYS_OPEN, EITHER = "closes", "stays open", "either"


# ---------------------------------------------------------------- fixtures

@pytest.fixture
def server(harness):
    """(gateway IOC, server port) of a gateway serving wire:ao."""
    port = gwharness.free_port()
    ioc = harness.gateway(records=[(WRITABLE_DB, {"P": "wire:"})],
                          commands_after_init=['gwStart("-sip 127.0.0.1 -sport %d")' % port])
    assert "serving Channel Access on TCP port %d" % port in ioc.log(), ioc.tail()
    gwharness.wait_for(lambda: gwharness.ca_search(PV, port, timeout=0.2), 15,
                       "the gateway's server to answer for %s" % PV)
    return ioc, port


def clients(ioc):
    """How many circuits the server reports."""
    m = re.search(r"TCP port \d+: (\d+) clients", ioc.command("gwReport 0"))
    assert m, ioc.tail()
    return int(m.group(1))


def assert_server_whole(harness, ioc, port):
    """The server answers a normal client and keeps no circuit of the batch."""
    assert ioc.alive(), "the gateway IOC died:\n" + ioc.tail()
    env = gwharness.ca_environment({"EPICS_CA_ADDR_LIST": "127.0.0.1:%d" % port,
                                    "EPICS_CA_AUTO_ADDR_LIST": "NO"})
    result = harness.caget(env, "-t", PV)
    assert result.returncode == 0, result.stdout + result.stderr + ioc.tail()
    assert float(result.stdout) == VALUE
    deadline = time.monotonic() + 10
    while clients(ioc) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert clients(ioc) == 0, ioc.command("gwReport 2")


# ---------------------------------------------------------------- TCP cases

def open_channel(port):
    """A socket with wire:ao connected; (socket, stream, server channel id)."""
    sock = rawca.connect(port)
    stream = rawca.Stream(sock)
    sock.sendall(rawca.version() + rawca.create_chan(PV, cid=5))
    got = stream.read_until(rawca.has(rawca.CREATE_CHAN))
    created = [m for m in got if m.command == rawca.CREATE_CHAN]
    assert created, got
    return sock, stream, created[0].p2


def still_answers(sock, stream):
    """The circuit is open and working: an ECHO comes back."""
    if not rawca.send_quietly(sock, rawca.header(rawca.ECHO)):
        return False
    return any(m.command == rawca.ECHO for m in stream.read_until(rawca.has(rawca.ECHO)))


UNKNOWN_SID = 0x7fff1234
H = rawca.header
X = rawca.extended_header
M = rawca.message

# (name, needs a channel, bytes to send (given the channel's sid), what the
#  server does with the circuit, a reply command it must send or None)
TCP_CASES = [
    ("payload size not a multiple of 8", False,
     lambda sid: H(rawca.ECHO, 5) + b"abcde", CLOSES, None),
    ("payload size 7 on a VERSION", False,
     lambda sid: H(rawca.VERSION, 7, 0, 13) + b"\0" * 7, CLOSES, None),
    ("extended header with payload size 0xffffffff", False,
     lambda sid: X(rawca.WRITE, 0xffffffff, 6, 1) + b"\0" * 64, EITHER, rawca.ERROR),
    ("extended header with payload 0xfffffff8 and count 0xffffffff", False,
     lambda sid: X(rawca.READ_NOTIFY, 0xfffffff8, 6, 0xffffffff), EITHER, rawca.ERROR),
    ("unknown command 0x7777", False, lambda sid: H(0x7777), CLOSES, rawca.ERROR),
    ("unknown command 0xffff with a payload", False,
     lambda sid: H(0xffff, 8) + b"\xff" * 8, CLOSES, rawca.ERROR),
    ("obsolete command 3 (READ)", False, lambda sid: H(3), CLOSES, rawca.ERROR),
    ("CREATE_CHAN with an unterminated name", False,
     lambda sid: H(rawca.CREATE_CHAN, 8, 0, 0, 9, 13) + b"wire:aoX", STAYS_OPEN,
     rawca.CREATE_CH_FAIL),
    ("CREATE_CHAN with an empty name", False,
     lambda sid: H(rawca.CREATE_CHAN, 8, 0, 0, 9, 13) + b"\0" * 8, STAYS_OPEN, None),
    ("CREATE_CHAN with no payload", False,
     lambda sid: H(rawca.CREATE_CHAN, 0, 0, 0, 9, 13), STAYS_OPEN, None),
    ("CREATE_CHAN with an over-long name", False,
     lambda sid: M(rawca.CREATE_CHAN, b"w" * (NAME_MAX + 100) + b"\0", p1=9, p2=13),
     STAYS_OPEN, rawca.CREATE_CH_FAIL),
    ("CREATE_CHAN with a 16000-byte name", False,
     lambda sid: M(rawca.CREATE_CHAN, b"w" * 15999 + b"\0", p1=9, p2=13),
     STAYS_OPEN, rawca.CREATE_CH_FAIL),
    ("READ_NOTIFY with type 39", True,
     lambda sid: rawca.read_notify(sid, 3, dtype=39), CLOSES, None),
    ("READ_NOTIFY with type 0xffff", True,
     lambda sid: rawca.read_notify(sid, 3, dtype=0xffff), CLOSES, None),
    ("READ_NOTIFY with count 2 of a scalar", True,
     lambda sid: rawca.read_notify(sid, 3, count=2), STAYS_OPEN, rawca.READ_NOTIFY),
    ("READ_NOTIFY with count 0xffff", True,
     lambda sid: rawca.read_notify(sid, 3, count=0xffff), STAYS_OPEN, None),
    ("READ_NOTIFY with extended count 0xffffffff", True,
     lambda sid: X(rawca.READ_NOTIFY, 0, 6, 0xffffffff, sid, 3), STAYS_OPEN, None),
    ("READ_NOTIFY of an unknown channel id", False,
     lambda sid: rawca.read_notify(UNKNOWN_SID, 3), CLOSES, rawca.ERROR),
    ("READ_NOTIFY of DBR_PUT_ACKT", True,
     lambda sid: rawca.read_notify(sid, 3, dtype=35), STAYS_OPEN, rawca.READ_NOTIFY),
    ("WRITE with no payload", True,
     lambda sid: H(rawca.WRITE, 0, 6, 1, sid, 3), CLOSES, rawca.ERROR),
    ("WRITE of 4 doubles with one double of payload", True,
     lambda sid: H(rawca.WRITE, 8, 6, 4, sid, 3) + struct.pack(">d", 2.0), CLOSES, rawca.ERROR),
    ("WRITE_NOTIFY with no payload", True,
     lambda sid: H(rawca.WRITE_NOTIFY, 0, 6, 1, sid, 3), EITHER, rawca.WRITE_NOTIFY),
    ("WRITE with type 0xffff", True,
     lambda sid: H(rawca.WRITE, 8, 0xffff, 1, sid, 3) + b"\0" * 8, CLOSES, rawca.ERROR),
    ("WRITE to an unknown channel id", False,
     lambda sid: H(rawca.WRITE, 8, 6, 1, UNKNOWN_SID, 3) + b"\0" * 8, CLOSES, rawca.ERROR),
    ("EVENT_ADD with no payload", True,
     lambda sid: H(rawca.EVENT_ADD, 0, 6, 1, sid, 3), CLOSES, None),
    ("EVENT_ADD with 8 bytes of payload", True,
     lambda sid: H(rawca.EVENT_ADD, 8, 6, 1, sid, 3) + b"\0" * 8, CLOSES, None),
    ("EVENT_ADD with mask 0", True,
     lambda sid: H(rawca.EVENT_ADD, 16, 6, 1, sid, 3) + b"\0" * 16, EITHER, None),
    ("EVENT_ADD of an unknown channel id", False,
     lambda sid: H(rawca.EVENT_ADD, 16, 6, 1, UNKNOWN_SID, 3) + b"\0" * 12 + b"\0\5\0\0",
     CLOSES, rawca.ERROR),
    ("EVENT_CANCEL of an unknown subscription", True,
     lambda sid: H(rawca.EVENT_CANCEL, 0, 6, 1, sid, 0x4444), CLOSES, rawca.ERROR),
    ("EVENT_CANCEL of an unknown channel id", False,
     lambda sid: H(rawca.EVENT_CANCEL, 0, 6, 1, UNKNOWN_SID, 0x4444), CLOSES, rawca.ERROR),
    ("CLEAR_CHANNEL of an unknown channel id", False,
     lambda sid: H(rawca.CLEAR_CHANNEL, 0, 0, 0, UNKNOWN_SID, 5), CLOSES, rawca.ERROR),
    ("CLEAR_CHANNEL twice", True,
     lambda sid: H(rawca.CLEAR_CHANNEL, 0, 0, 0, sid, 5) * 2, CLOSES, rawca.ERROR),
    ("CLIENT_NAME unterminated", False,
     lambda sid: H(rawca.CLIENT_NAME, 8) + b"joejoejo", CLOSES, None),
    ("VERSION with priority 0xffff", False,
     lambda sid: H(rawca.VERSION, 0, 0xffff, 13), CLOSES, None),
    ("SEARCH with an unterminated name", False,
     lambda sid: H(rawca.SEARCH, 8, 10, 13, 1, 1) + b"wire:aoX", STAYS_OPEN, None),
]


def test_malformed_tcp_requests_are_refused_and_the_server_goes_on(harness, server):
    ioc, port = server
    failures = []
    for name, needs_channel, make, fate, reply in TCP_CASES:
        if needs_channel:
            sock, stream, sid = open_channel(port)
        else:
            sock, stream, sid = rawca.connect(port), None, 0
            stream = rawca.Stream(sock)
            sock.sendall(rawca.version())
        with sock:
            rawca.send_quietly(sock, make(sid))
            got = stream.read_until(rawca.has(reply) if reply else lambda _: False, 2.0)
            if reply and not any(m.command == reply for m in got):
                failures.append("%s: no reply %d, got %r" % (name, reply, got))
            if fate == CLOSES and not stream.until_closed(5.0):
                failures.append("%s: the server kept the circuit open" % name)
            if fate == STAYS_OPEN and not still_answers(sock, stream):
                failures.append("%s: the server closed the circuit" % name)
        assert ioc.alive(), "%s killed the gateway IOC:\n%s" % (name, ioc.tail())
    assert not failures, "\n".join(failures)
    assert_server_whole(harness, ioc, port)


def test_truncated_and_abandoned_tcp_conversations_leave_nothing_behind(harness, server):
    ioc, port = server
    valid = rawca.version() + rawca.create_chan(PV) + rawca.read_notify(1)
    abandoned = [
        b"",                                          # connect, send nothing, close
        rawca.header(rawca.VERSION)[:7],              # truncated header, then close
        rawca.extended_header(rawca.WRITE, 64, 6, 8)[:20],  # truncated extended header
        rawca.header(rawca.ECHO, 64) + b"\0" * 8,     # payload size says 64, 8 sent
        rawca.extended_header(rawca.WRITE, 0x100000, 6, 0x20000, 1, 1) + b"\0" * 1000,
        valid[:len(valid) - 3],                       # a valid conversation cut short
    ]
    for data in abandoned:
        with rawca.connect(port) as sock:
            rawca.send_quietly(sock, data)
    # some left open while the server waits for the rest of their message
    held = []
    try:
        for data in abandoned:
            sock = rawca.connect(port)
            held.append(sock)
            rawca.send_quietly(sock, data)
        gwharness.wait_for(lambda: clients(ioc) == len(held), 10, "the held circuits")
        with rawca.connect(port) as sock:
            assert rawca.read_double(sock, PV) == VALUE
    finally:
        for sock in held:
            sock.close()
    assert_server_whole(harness, ioc, port)


def test_a_conversation_sent_one_byte_at_a_time_still_works(harness, server):
    ioc, port = server
    with rawca.connect(port) as sock:
        assert rawca.read_double(sock, PV, pieces=1) == VALUE
    with rawca.connect(port) as sock:
        # a WRITE, split in 3-byte pieces, then a read of what it wrote
        stream = rawca.Stream(sock)
        value, sid = rawca.read_double_sid(sock, PV, pieces=3)
        assert value == VALUE
        write = rawca.header(rawca.WRITE_NOTIFY, 8, rawca.DBR_DOUBLE, 1, sid, 99) + \
            struct.pack(">d", 4.25)
        for i in range(0, len(write), 3):
            sock.sendall(write[i:i + 3])
            time.sleep(0.001)
        got = stream.read_until(rawca.has(rawca.WRITE_NOTIFY))
        assert any(m.command == rawca.WRITE_NOTIFY and m.p1 == 1 for m in got), got
    assert "4.25" in ioc.command("dbgf wire:ao")
    ioc.command("dbpf wire:ao %s" % VALUE)
    assert_server_whole(harness, ioc, port)


def test_a_flood_of_echo_requests_is_answered_in_full(harness, server):
    ioc, port = server
    n = 20000
    with rawca.connect(port, timeout=10) as sock:
        stream = rawca.Stream(sock)
        sock.sendall(rawca.version())
        stream.read_until(rawca.has(rawca.VERSION))
        echoes = rawca.header(rawca.ECHO) * 1000
        replies = 0
        for _ in range(n // 1000):
            sock.sendall(echoes)
            got = stream.read_until(
                lambda ms: sum(m.command == rawca.ECHO for m in ms) >= 1000, 20)
            replies += sum(m.command == rawca.ECHO for m in got)
        assert replies == n
        # and all at once, without reading until the end
        rawca.send_quietly(sock, rawca.header(rawca.ECHO) * n)
        got = stream.read_until(lambda ms: sum(m.command == rawca.ECHO for m in ms) >= n, 30)
        assert sum(m.command == rawca.ECHO for m in got) == n
    assert_server_whole(harness, ioc, port)


# ---------------------------------------------------------------- UDP

def udp_send(port, datagrams, collect=0.3):
    """Send datagrams to the name server; the reply datagrams that arrive
    within collect seconds of the last one."""
    replies = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(collect)
        for datagram in datagrams:
            s.sendto(datagram, ("127.0.0.1", port))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                data, _ = s.recvfrom(65536)
            except socket.timeout:
                break
            replies.append(data)
    return replies


def search_replies(datagrams):
    ids = []
    for data in datagrams:
        messages, _ = rawca.split(data)
        ids += [m.p2 for m in messages if m.command == rawca.SEARCH]
    return ids


def test_malformed_udp_datagrams_are_ignored_and_searches_still_answered(harness, server):
    ioc, port = server
    good = rawca.version() + rawca.search(PV, 77)
    bad = [
        b"",                                                  # empty datagram
        b"\0\0\0",                                            # truncated header
        rawca.header(rawca.VERSION)[:15],
        rawca.header(rawca.SEARCH, 64, 10, 13, 1, 1) + pad_name(PV),   # size says 64
        rawca.header(rawca.SEARCH, 0xfff8, 10, 13, 1, 1) + pad_name(PV),
        rawca.extended_header(rawca.SEARCH, 0xfffffff8, 10, 0xffffffff, 1, 1) + pad_name(PV),
        rawca.header(rawca.SEARCH, 5, 10, 13, 1, 1) + b"wire:",        # size not 8n
        rawca.header(rawca.SEARCH, 8, 10, 13, 1, 1) + b"wire:aoX",     # unterminated
        rawca.header(rawca.SEARCH, 0, 10, 13, 1, 1),                   # no name
        rawca.header(0x7777) + rawca.search(PV, 2),                    # bad command first
        rawca.header(rawca.VERSION, 0, 0, 0xffff, 0xffffffff, 0xffffffff) + rawca.search(PV, 3),
        rawca.search(PV, 4)[:-3],                                      # cut short
        rawca.message(rawca.SEARCH, b"w" * 2000 + b"\0", dtype=10, count=13, p1=5, p2=5),
        b"\xff" * 1400,
    ]
    for datagram in bad:
        udp_send(port, [datagram], collect=0.05)
        assert ioc.alive(), "datagram %r killed the gateway IOC" % datagram[:40]
        assert 77 in search_replies(udp_send(port, [good])), \
            "no answer after datagram %r" % datagram[:40]
    assert_server_whole(harness, ioc, port)


def pad_name(name):
    return rawca.pad(name.encode() + b"\0")


def test_a_thousand_searches_in_one_datagram_are_all_answered(harness, server):
    ioc, port = server
    datagram = rawca.version() + b"".join(rawca.search(PV, i) for i in range(1, 1001))
    ids = search_replies(udp_send(port, [datagram], collect=1.0))
    assert sorted(ids) == list(range(1, 1001))
    unknown = rawca.version() + b"".join(rawca.search("no:such:%d" % i, i)
                                         for i in range(1, 1001))
    assert search_replies(udp_send(port, [unknown])) == []
    assert_server_whole(harness, ioc, port)


# ---------------------------------------------------------------- fuzz corpus

def corpus_files():
    files = sorted(p for p in CORPUS.iterdir() if p.is_file())
    assert files, "no corpus in %s" % CORPUS
    return files


def test_every_fuzz_corpus_input_over_tcp_and_udp_leaves_the_server_whole(harness, server):
    ioc, port = server
    for path in corpus_files():
        data = path.read_bytes()
        with rawca.connect(port) as sock:
            stream = rawca.Stream(sock)
            rawca.send_quietly(sock, data)
            stream.read_until(lambda _: False, 0.3)
        udp_send(port, [data], collect=0.05)
        assert ioc.alive(), "%s killed the gateway IOC:\n%s" % (path.name, ioc.tail())
        # the input cut at every 7th byte, as a connection closed mid-message
        for cut in range(1, len(data), 7):
            with rawca.connect(port) as sock:
                rawca.send_quietly(sock, data[:cut])
        assert ioc.alive(), "%s (cut) killed the gateway IOC:\n%s" % (path.name, ioc.tail())
    assert_server_whole(harness, ioc, port)
