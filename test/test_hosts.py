"""Several soft IOCs on one host (issue 16): every one of them reachable.

Host A (a network namespace, 10.64.16.1) runs three softIocs that all bind
UDP port 5064, as soft IOCs on one Linux machine do; host B (10.64.16.2)
runs the clients, with EPICS_CA_AUTO_ADDR_LIST=NO and host A's address in
EPICS_CA_ADDR_LIST. A unicast search reaches only one of the IOCs (the
problem); the gateway's proxy, name server and search relay each make all
three reachable. See documentation/several-iocs.md.
"""
import re

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
