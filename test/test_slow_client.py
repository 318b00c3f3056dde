"""A client that stops reading must not hurt anyone else (issue 4):
while a record updates at about 1 kHz, a circuit that never reads costs the
server bounded memory, other clients keep receiving every update, and the
stuck circuit is closed after the send timeout."""
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import gwharness

WRITES = 4000          # puts by the writer, about 1 kHz
SEND_TIMEOUT = 3       # seconds (-send_timeout)
STUCK_SUBSCRIPTIONS = 10
DBR_CTRL_DOUBLE = 34
DBR_DOUBLE = 6

WRITER = r"""
import sys, time, epics
pv = epics.PV(sys.argv[1])
pv.wait_for_connection(10)
n = int(sys.argv[2])
start = time.monotonic()
for i in range(1, n + 1):
    pv.put(float(i), wait=False)
    delay = start + i / 1000.0 - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    if time.monotonic() - start > 60:
        break
epics.ca.flush_io()
time.sleep(0.5)
print(i)
"""

COUNTER = r"""
import sys, time, epics
count = [0]
last = [0.0]
def update(value=None, **kw):
    count[0] += 1
    last[0] = value
pv = epics.PV(sys.argv[1], callback=update, form="native")
pv.wait_for_connection(10)
print("ready", flush=True)
deadline = time.monotonic() + float(sys.argv[2])
target = float(sys.argv[3])
while time.monotonic() < deadline and last[0] < target:
    time.sleep(0.05)
print(count[0], last[0])
"""

RECORDS = 'record(ao, "slow:value") { field(PREC, "3") }\n'


def message(command, payload=b"", dtype=0, count=0, p1=0, p2=0):
    payload += b"\0" * (-len(payload) % 8)
    return struct.pack(">HHHHII", command, len(payload), dtype, count, p1, p2) + payload


def stuck_client(port):
    """Connect, subscribe many times, and never read again."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    out = message(0, dtype=0, count=13)
    out += message(20, b"stuck\0") + message(21, b"stuckhost\0")
    out += message(18, b"slow:value\0", p1=1, p2=13)
    s.sendall(out)
    sid = None
    data = b""
    while sid is None:
        data += s.recv(4096)
        at = 0
        while at + 16 <= len(data):
            cmd, size, _, _, p1, p2 = struct.unpack_from(">HHHHII", data, at)
            if cmd == 18:
                sid = p2
            at += 16 + size
    adds = b"".join(message(1, struct.pack(">fffHH", 0, 0, 0, 1, 0), DBR_CTRL_DOUBLE, 1, sid, i)
                    for i in range(STUCK_SUBSCRIPTIONS))
    s.sendall(adds)
    return s


def rss_kib(pid):
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_a_client_that_stops_reading_costs_bounded_memory_and_is_closed(harness, tmp_path):
    db = tmp_path / "slow.db"
    db.write_text(RECORDS)
    port = gwharness.free_port()
    gateway = harness.gateway(records=[db], commands_after_init=[
        'gwStart("-sip 127.0.0.1 -sport %d -send_timeout %d")' % (port, SEND_TIMEOUT)])
    env = gwharness.ca_environment({"EPICS_CA_ADDR_LIST": "127.0.0.1:%d" % port})
    writer_env = gwharness.ca_environment({"EPICS_CA_ADDR_LIST": "127.0.0.1:%d" % gateway.port})

    stuck = stuck_client(port)
    counter = subprocess.Popen([sys.executable, "-c", COUNTER, "slow:value", "90", str(WRITES)],
                               env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert counter.stdout.readline().strip() == "ready"
        rss_before = rss_kib(gateway.pid)
        writer = subprocess.run([sys.executable, "-c", WRITER, "slow:value", str(WRITES)],
                                env=writer_env, capture_output=True, text=True, timeout=120)
        assert writer.returncode == 0, writer.stderr
        rss_after = rss_kib(gateway.pid)
        received, last = counter.communicate(timeout=120)[0].split()
    finally:
        if counter.poll() is None:
            counter.kill()
            counter.wait()

    # the other client saw the writes up to the last one, (nearly) every update
    assert float(last) == WRITES
    report = gateway.command("gwReport 1")
    assert int(received) >= 0.95 * WRITES, (received, report)
    # memory did not grow with the updates the stuck client did not read
    assert rss_after - rss_before < 32 * 1024, (rss_before, rss_after)

    def stuck_closed():
        return "stuck@" not in gateway.command("gwReport 1")
    gwharness.wait_for(stuck_closed, SEND_TIMEOUT + 30, "the stuck circuit to be closed")
    assert "has not read for" in gateway.log()
    stuck.close()
