"""Several soft IOCs on one host (issue 16): every one of them reachable.

Host A (a network namespace, 10.64.16.1) runs three softIocs that all bind
UDP port 5064, as soft IOCs on one Linux machine do; host B (10.64.16.2)
runs the clients, with EPICS_CA_AUTO_ADDR_LIST=NO and host A's address in
EPICS_CA_ADDR_LIST. A unicast search reaches only one of the IOCs (the
problem); the gateway's proxy, name server and search relay each make all
three reachable. See documentation/several-iocs.md.
"""
import re
import time

import pytest

import gwharness

IOCS = 3
RECORD = """record(ai, "%s:x") { field(VAL, "%d") }
record(ao, "%s:out") { field(VAL, "0") }
"""

# What a softIoc on a real host has: nothing loopback-only.
HOST_IOC_ENV = {"EPICS_CAS_INTF_ADDR_LIST": None, "EPICS_CAS_SERVER_PORT": None,
                "EPICS_CAS_BEACON_ADDR_LIST": None}


def start_iocs(harness, host, count=IOCS, prefix="ioc"):
    """count softIocs on host, all on the default port 5064; their names."""
    names = []
    for index in range(1, count + 1):
        name = "%s%d" % (prefix, index)
        db = harness.write(name + ".db", RECORD % (name, index, name))
        harness.softioc(db, port=5064, host=host, extra_env=HOST_IOC_ENV)
        names.append(name)
    return names


def client_env(*, addresses="", name_servers=None):
    env = gwharness.ca_environment({"EPICS_CA_ADDR_LIST": addresses,
                                    "EPICS_CA_AUTO_ADDR_LIST": "NO",
                                    "EPICS_CA_CONN_TMO": "2"})
    if name_servers:
        env["EPICS_CA_NAME_SERVERS"] = name_servers
    return env


def resolved(harness, host, env, names, wait=2.0):
    """{name: value} of the names' :x PVs that a caget on host reaches (one
    caget per PV: caget prints nothing when one of its PVs is not found)."""
    values = {}
    for name in names:
        pv = "%s:x" % name
        result = harness.run([gwharness.base_tool("caget"), "-w", str(wait), pv], env,
                             timeout=30, host=host)
        words = result.stdout.split()
        if result.returncode == 0 and len(words) == 2 and words[0] == pv:
            values[name] = float(words[1])
    return values


def test_unicast_search_reaches_one_ioc_only(harness, hosts):
    a, b = hosts
    names = start_iocs(harness, a)
    found = resolved(harness, b, client_env(addresses=a.address), names)
    assert len(found) == 1, found
    # ... while a broadcast on host A reaches every one of them
    found = resolved(harness, a, client_env(addresses="127.255.255.255"), names)
    assert sorted(found) == names


def proxy(harness, host, options=""):
    """The gateway as a proxy on host A: its server on the host's address and
    port 5064 (started before the IOCs, so it has TCP port 5064), searching
    upstream through the loopback broadcast."""
    return harness.gateway_server(
        "-cip 127.255.255.255 " + options, host=host, sip=host.address, sport=5064,
        extra_env={"EPICS_CAS_INTF_ADDR_LIST": None})


def test_proxy_gateway_reaches_every_ioc(harness, hosts):
    a, b = hosts
    proxy(harness, a)
    names = start_iocs(harness, a)
    found = resolved(harness, b, client_env(addresses=a.address), names)
    assert found == {n: float(i) for i, n in enumerate(names, start=1)}
    # the data comes through the gateway: B's only CA circuit is to it
    assert set(b.tcp_peers()) <= {(a.address, 5064)}


def test_name_server_resolves_every_ioc_without_udp(harness, hosts):
    a, b = hosts
    proxy(harness, a)
    names = start_iocs(harness, a)
    env = client_env(addresses="", name_servers="%s:5064" % a.address)
    found = resolved(harness, b, env, names)
    assert sorted(found) == names


def relay(harness, host, listen=None, forward="127.255.255.255"):
    """The search relay on host A: a gateway IOC that runs gwRelay only."""
    listen = listen or "%s 127.0.0.1" % host.address
    gateway = harness.gateway(commands_after_init=['gwRelay "%s" "%s"' % (listen, forward)],
                              host=host)
    report = gateway.command("gwReport 1")
    assert "relay: listening on" in report, report
    return gateway


def relay_counters(gateway):
    text = gateway.command("gwReport 1")
    counters = {}
    for key, pattern in (("forwarded", r"forwarded (\d+)"), ("limited", r"rate-limited (\d+)"),
                         ("replies", r"replies passed (\d+)"),
                         ("outstanding", r"outstanding searches (\d+) of (\d+)")):
        m = re.search(pattern, text)
        assert m, text
        counters[key] = int(m.group(1))
        if key == "outstanding":
            counters["capacity"] = int(m.group(2))
    return counters


def ioc_tcp_ports(harness):
    """The TCP ports the softIocs listen on (from their start-up lines: the
    first one has 5064)."""
    ports = []
    for proc in harness.processes:
        if proc.name.startswith("softIoc"):
            m = re.search(r"dynamically assigned TCP port (\d+)", proc.log())
            ports.append(int(m.group(1)) if m else 5064)
    return ports


def test_relay_reaches_every_ioc_and_clients_connect_to_the_iocs(harness, hosts):
    a, b = hosts
    gateway = relay(harness, a)
    names = start_iocs(harness, a)
    found = resolved(harness, b, client_env(addresses=a.address), names)
    assert found == {n: float(i) for i, n in enumerate(names, start=1)}
    counters = relay_counters(gateway)
    assert counters["forwarded"] >= 3 and counters["replies"] >= 3, counters


def test_relay_client_circuits_go_to_the_iocs_own_ports(harness, hosts):
    a, b = hosts
    relay(harness, a)
    names = start_iocs(harness, a)
    monitor = gwharness.Process(
        "camonitor", b.argv([gwharness.base_tool("camonitor"), *("%s:x" % n for n in names)]),
        client_env(addresses=a.address), harness.log_dir)
    harness.processes.append(monitor)
    monitor.expect_clean_exit = False
    gwharness.wait_for(lambda: all("%s:x " % n in monitor.log() for n in names), 15,
                       "camonitor to connect all three")
    peers = set(b.tcp_peers())
    assert peers == {(a.address, port) for port in ioc_tcp_ports(harness)}, peers


def test_relay_answers_a_client_on_the_same_host(harness, hosts):
    a, _ = hosts
    relay(harness, a)
    names = start_iocs(harness, a)
    for address in ("127.0.0.1", a.address):
        found = resolved(harness, a, client_env(addresses=address), names)
        assert sorted(found) == names, address


def test_relay_reconnects_clients_to_a_restarted_ioc(harness, hosts):
    a, b = hosts
    relay(harness, a)
    names = start_iocs(harness, a)
    monitor = gwharness.Process(
        "camonitor", b.argv([gwharness.base_tool("camonitor"), "ioc3:x"]),
        client_env(addresses=a.address), harness.log_dir)
    harness.processes.append(monitor)
    monitor.expect_clean_exit = False
    gwharness.wait_for(lambda: "ioc3:x " in monitor.log(), 15, "camonitor to connect")
    old = [p for p in harness.processes if p.name.startswith("softIoc")][2]
    old_port = ioc_tcp_ports(harness)[2]
    old.stop()
    harness.processes.remove(old)
    gwharness.wait_for(lambda: "disconnected" in monitor.log(), 15, "the disconnection")
    db = harness.write("ioc3b.db", RECORD.replace('"%d"', '"33"') % ("ioc3", "ioc3"))
    harness.softioc(db, port=5064, host=a, extra_env=HOST_IOC_ENV)
    new_port = ioc_tcp_ports(harness)[-1]
    assert new_port != old_port
    gwharness.wait_for(lambda: re.search(r"ioc3:x .* 33\b", monitor.log()), 30,
                       "camonitor to reconnect to the restarted IOC")
    assert (a.address, new_port) in b.tcp_peers()


STORM = r"""
import socket, struct, sys, time
host, count, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
start = time.monotonic()
deadline = start + seconds + 20
sent = 0
while sent < count and time.monotonic() < deadline:
    ahead = start + seconds * sent / count - time.monotonic()
    if ahead > 0:
        time.sleep(ahead)
    msg = struct.pack(">HHHHII", 0, 0, 0, 13, sent, 0)
    for i in range(10):
        name = b"missing:%d\0" % (sent + i)
        name += b"\0" * (-len(name) % 8)
        msg += struct.pack(">HHHHII", 6, len(name), 5, 13, sent + i, sent + i) + name
    try:
        s.sendto(msg, (host, 5064))
    except OSError:
        pass
    sent += 10
print(sent)
"""


def test_relay_storm_of_missing_names_stays_bounded(harness, hosts):
    a, b = hosts
    gateway = relay(harness, a)
    names = start_iocs(harness, a)
    assert sorted(resolved(harness, b, client_env(addresses=a.address), names)) == names
    before = gwharness.rss_kib(gateway.pid)
    storm = harness.write("storm.py", STORM)
    # 100,000 names in 10 s from host B; real searches from B meanwhile
    stormer = gwharness.Process("storm", b.argv(["/usr/bin/python3", storm, a.address,
                                                 "100000", "10"]),
                                gwharness.ca_environment(), harness.log_dir)
    harness.processes.append(stormer)
    time.sleep(1)
    during = resolved(harness, b, client_env(addresses=a.address), names)
    assert stormer.alive(), "the storm ended before the real searches"
    stormer.popen.wait(60)
    assert stormer.log().strip() == "100000", stormer.log()
    assert sorted(during) == names
    counters = relay_counters(gateway)
    after = gwharness.rss_kib(gateway.pid)
    print("storm: RSS %d -> %d KiB, %s" % (before, after, counters))
    assert counters["outstanding"] <= counters["capacity"]
    assert counters["limited"] > 0, counters     # the storm was rate-limited
    assert after - before < 4096, (before, after)
    # real searches are still answered, from the same host as the storm
    found = resolved(harness, b, client_env(addresses=a.address), names)
    assert sorted(found) == names


HOSTILE = r"""
import socket, struct, sys
host = sys.argv[1]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
name = b"ioc1:x\0\0"
search = struct.pack(">HHHHII", 6, len(name), 5, 13, 7, 7) + name
datagrams = [
    b"", b"\x00", b"\xff" * 15,                                   # short
    struct.pack(">HHHHII", 6, 4000, 5, 13, 1, 1) + b"x" * 8,      # payload past the end
    struct.pack(">HHHHII", 6, 0xffff, 5, 13, 1, 1) + struct.pack(">II", 0xffffffff, 1),
    struct.pack(">HHHHII", 6, 8, 5, 13, 1, 1) + b"no-nul!!",      # name without NUL
    struct.pack(">HHHHII", 6, 8, 5, 1, 1, 1) + name,              # client too old
    struct.pack(">HHHHII", 1, 0, 0, 0, 0, 0),                     # not a search
    # another relay's datagram (its marker in the VERSION): never forwarded again
    struct.pack(">HHHHII", 0, 0, 1, 13, 1, 0x47575259) + search,
]
for d in datagrams:
    s.sendto(d, (host, 5064))
print(len(datagrams))
"""


def test_relay_drops_malformed_and_relayed_datagrams(harness, hosts):
    a, b = hosts
    gateway = relay(harness, a)
    names = start_iocs(harness, a)
    hostile = harness.write("hostile.py", HOSTILE)
    result = harness.run(["/usr/bin/python3", hostile, a.address],
                         gwharness.ca_environment(), timeout=30, host=b)
    assert result.returncode == 0, result.stderr
    gwharness.wait_for(lambda: "looped 1," in gateway.command("gwReport 1"), 5,
                       "the relayed datagram to be counted")
    text = gateway.command("gwReport 1")
    m = re.search(r"forwarded (\d+), rate-limited \d+, looped (\d+), malformed (\d+)", text)
    assert m and int(m.group(1)) == 0 and int(m.group(3)) >= 6, text
    assert sorted(resolved(harness, b, client_env(addresses=a.address), names)) == names
