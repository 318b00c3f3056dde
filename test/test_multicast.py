"""Multicast name searches (issue 16 items 1 and 2), on test hosts.

Upstream: softIocs on host A join a multicast group (RSRV joins the groups
listed in EPICS_CAS_INTF_ADDR_LIST); the proxy gateway on host A searches
through that group (-cip <group>) and reaches every one of them.
Server side: the gateway listed a group in its own interface list (-sip)
and answers searches sent to that group from another host.
See documentation/several-iocs.md for what each needs.
"""
import gwharness
import test_hosts

UPSTREAM_GROUP = "224.0.2.9"
SERVER_GROUP = "224.0.2.10"


def group_iocs(harness, host, group):
    """Three softIocs on host, port 5064, joined to group only."""
    env = dict(test_hosts.HOST_IOC_ENV, EPICS_CAS_INTF_ADDR_LIST=group)
    names = []
    for index in range(1, test_hosts.IOCS + 1):
        name = "mioc%d" % index
        db = harness.write(name + ".db", test_hosts.RECORD % (name, index, name))
        harness.softioc(db, port=5064, host=host, extra_env=env)
        names.append(name)
    return names


def test_proxy_gateway_reaches_every_ioc_through_a_loopback_group(harness, hosts):
    a, b = hosts
    a.sh("ip", "route", "add", "224.0.0.0/4", "dev", "lo")
    harness.gateway_server("-cip " + UPSTREAM_GROUP, host=a, sip=a.address, sport=5064,
                           extra_env={"EPICS_CAS_INTF_ADDR_LIST": None})
    names = group_iocs(harness, a, UPSTREAM_GROUP)
    found = test_hosts.resolved(harness, b, test_hosts.client_env(addresses=a.address), names)
    assert found == {n: float(i) for i, n in enumerate(names, start=1)}
    # the searches left on loopback (IP_MULTICAST_IF 127.0.0.1), so the IOCs
    # answered to 127.0.0.1 and the gateway's circuits to them are on
    # loopback, not on host A's veth address
    peers = {address for address, _ in a.tcp_peers()}
    assert "127.0.0.1" in peers and a.address not in peers, peers


def test_gateway_answers_searches_sent_to_a_group_in_its_interface_list(harness, hosts):
    a, b = hosts
    # B's libca sends to the group where the route says: over the veth
    b.sh("ip", "route", "add", "224.0.0.0/4", "dev", b.device)
    ioc_port = gwharness.free_port()
    harness.gateway_server("-cip 127.255.255.255 -cport %d" % ioc_port, host=a,
                           sip="'%s %s'" % (a.address, SERVER_GROUP), sport=5064,
                           extra_env={"EPICS_CAS_INTF_ADDR_LIST": None})
    # the IOC on another port: only the gateway can answer on 5064
    db = harness.write("gioc.db", test_hosts.RECORD % ("gioc", 7, "gioc"))
    harness.softioc(db, port=ioc_port, host=a, extra_env={"EPICS_CAS_INTF_ADDR_LIST": None,
                                                          "EPICS_CAS_BEACON_ADDR_LIST": None})
    env = test_hosts.client_env(addresses=SERVER_GROUP)
    assert test_hosts.resolved(harness, b, env, ["gioc"]) == {"gioc": 7.0}
    assert set(b.tcp_peers()) <= {(a.address, 5064)}


def test_relay_forwards_to_a_loopback_group(harness, hosts):
    """The relay's forward list names a group: sent on 127.0.0.1, every IOC
    that joined it on lo answers, and a client on host B reaches all three."""
    a, b = hosts
    a.sh("ip", "route", "add", "224.0.0.0/4", "dev", "lo")
    gateway = test_hosts.relay(harness, a, forward=UPSTREAM_GROUP)
    names = group_iocs(harness, a, UPSTREAM_GROUP)
    env = test_hosts.client_env(addresses=a.address)
    found = test_hosts.resolved(harness, b, env, names)
    assert sorted(found) == names
    counters = test_hosts.relay_counters(gateway)
    assert counters["replies"] >= 3, counters
