"""A thousand client circuits at once on the gateway's CA server: each
connects, reads the right value and disconnects; the server serves them
all without a thread per client, reports them while they are open, and
forgets every one of them once they close.

The circuits are raw sockets of the test process (test/rawca.py). The
file-descriptor limit is raised before the gateway IOC starts, so that the
IOC inherits it, and restored afterwards.
"""
import re
import resource
import struct
import time
from pathlib import Path

import pytest

import gwharness
import rawca

WRITABLE_DB = gwharness.TOP / "test" / "db" / "writable.db"
PV = "many:ao"
VALUE = 1.5
CIRCUITS = 1000
FILES_NEEDED = 2 * CIRCUITS + 256  # both ends live in this namespace's processes


@pytest.fixture
def more_files():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max(soft, FILES_NEEDED)
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip("RLIMIT_NOFILE hard limit %d is below %d" % (hard, wanted))
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def threads(pid):
    return len(list(Path("/proc/%d/task" % pid).iterdir()))


def report(ioc, level):
    return ioc.command("gwReport %d" % level)


def client_count(ioc):
    m = re.search(r"TCP port \d+: (\d+) clients", report(ioc, 0))
    assert m, ioc.tail()
    return int(m.group(1))


def open_circuits(port, n):
    """n sockets, each with VERSION and CREATE_CHAN sent; [(socket, stream)]."""
    circuits = []
    for i in range(n):
        sock = rawca.connect(port, timeout=15)
        circuits.append((sock, rawca.Stream(sock)))
        sock.sendall(rawca.version() + rawca.create_chan(PV, cid=i + 1))
    return circuits


def read_all(circuits):
    """Finish every conversation: READ_NOTIFY on each channel, then the
    values, in the order of the circuits."""
    for i, (sock, stream) in enumerate(circuits):
        got = stream.read_until(rawca.has(rawca.CREATE_CHAN), 15)
        created = [m for m in got if m.command == rawca.CREATE_CHAN]
        assert created and created[0].p1 == i + 1, "circuit %d: %r" % (i, got)
        sock.sendall(rawca.read_notify(created[0].p2, ioid=i + 1))
    values = []
    for i, (sock, stream) in enumerate(circuits):
        got = stream.read_until(rawca.has(rawca.READ_NOTIFY), 15)
        replies = [m for m in got if m.command == rawca.READ_NOTIFY]
        assert replies and replies[0].p2 == i + 1 and replies[0].p1 == 1, \
            "circuit %d: %r" % (i, got)
        values.append(struct.unpack(">d", replies[0].payload[:8])[0])
    return values


def close_all(circuits):
    for sock, _ in circuits:
        sock.close()


def test_a_thousand_circuits_read_their_value_without_a_thread_each(harness, more_files):
    port = gwharness.free_port()
    ioc = harness.gateway(records=[(WRITABLE_DB, {"P": "many:"})],
                          commands_after_init=['gwStart("-sip 127.0.0.1 -sport %d")' % port])
    assert "serving Channel Access on TCP port %d" % port in ioc.log(), ioc.tail()
    one = open_circuits(port, 1)
    many = []
    try:
        assert read_all(one) == [VALUE]
        threads_with_one = threads(ioc.pid)
        assert client_count(ioc) == 1

        many = open_circuits(port, CIRCUITS)
        assert read_all(many) == [VALUE] * CIRCUITS
        threads_with_many = threads(ioc.pid)
        text = report(ioc, 1)
        listed = [line for line in text.splitlines()
                  if line.startswith("  client") and ": 1 channels" in line]
        print("gateway threads: %d with 1 circuit, %d with %d"
              % (threads_with_one, threads_with_many, CIRCUITS + 1))
        assert client_count(ioc) == CIRCUITS + 1
        assert len(listed) == CIRCUITS + 1, text[-2000:]
        assert threads_with_many == threads_with_one
    finally:
        close_all(many)
        close_all(one)
    deadline = time.monotonic() + 30
    while client_count(ioc) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert client_count(ioc) == 0, report(ioc, 1)[-2000:]
    # and the server still serves a new client
    with rawca.connect(port) as sock:
        assert rawca.read_double(sock, PV) == VALUE
