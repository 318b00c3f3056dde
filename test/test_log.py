"""The gateway's log areas (issue 13, item 7): gwLogLevel prints and sets
the level of each area at run time, and messages a misbehaving peer causes
(malformed datagrams, protocol errors) name the peer and are rate-limited
(10 per area per 10 s; the next line printed says how many were
suppressed)."""
import re
import socket
import time

import gwharness
import rawca

DEMO_DB = gwharness.TOP / "db" / "demo.db"
AREAS = ("server", "circuit", "names", "beacon", "upstream", "search", "local", "relay")
BURST = 10  # peer messages an area prints at once; one more per second after


def most_printed(since):
    """The most peer messages of one area a flood that began at `since`
    (time.monotonic) may have printed by now: the burst, and a token per
    second since (a slow build floods slowly)."""
    return BURST + int(time.monotonic() - since) + 1


def start(harness):
    """A gateway serving demo.db (P=gw:) through its own server."""
    return harness.gateway_server(records=[(DEMO_DB, {"P": "gw:"})])


def levels(ioc):
    """{area: level} as `gwLogLevel` prints them."""
    found = dict(re.findall(r"^\s+(\w+)\s+(error|warning|info|debug)\s*$",
                            ioc.command("gwLogLevel"), re.M))
    assert set(found) == set(AREAS), found
    return found


def lines_with(ioc, text, start=0):
    return [line for line in ioc.log()[start:].splitlines() if text in line]


def wait_lines(ioc, text, count, start=0, timeout=10.0):
    gwharness.wait_for(lambda: len(lines_with(ioc, text, start)) >= count, timeout,
                       "%d lines with %r" % (count, text))
    return lines_with(ioc, text, start)


def test_gwloglevel_prints_the_default_level_of_every_area(harness):
    ioc = start(harness)
    assert levels(ioc) == {area: "info" if area == "server" else "warning" for area in AREAS}
    assert "circuit   warning" in ioc.command("gwLogLevel circuit")


def test_gwloglevel_changes_what_is_printed_at_run_time(harness):
    ioc = start(harness)
    env = gwharness.server_env(ioc.server_port)
    mark = len(ioc.log())
    assert harness.caget(env, "gw:name").returncode == 0
    time.sleep(0.5)
    assert not lines_with(ioc, "gateway circuit:", mark), ioc.log()[mark:]

    ioc.command("gwLogLevel circuit info")
    assert levels(ioc)["circuit"] == "info"
    mark = len(ioc.log())
    assert harness.caget(env, "gw:name").returncode == 0
    opened = wait_lines(ioc, ": circuit open", 1, mark)
    wait_lines(ioc, ": circuit closed", 1, mark)
    assert re.search(r"gateway circuit: 127\.0\.0\.1:\d+: circuit open", opened[0]), opened

    ioc.command("gwLogLevel names debug")
    mark = len(ioc.log())
    assert gwharness.ca_search("gw:name", ioc.server_port)
    assert not gwharness.ca_search("no:such:pv", ioc.server_port)
    wait_lines(ioc, "search for gw:name: served here", 1, mark)
    wait_lines(ioc, "search for no:such:pv: ", 1, mark)  # pending: upstream looks

    ioc.command("gwLogLevel all error")
    assert set(levels(ioc).values()) == {"error"}
    mark = len(ioc.log())
    assert harness.caget(env, "gw:name").returncode == 0
    assert gwharness.ca_search("gw:name", ioc.server_port)
    time.sleep(0.5)
    assert not lines_with(ioc, "gateway ", mark), ioc.log()[mark:]


def test_gwloglevel_refuses_unknown_areas_and_levels(harness):
    ioc = start(harness)
    before = levels(ioc)
    output = ioc.command("gwLogLevel nosuch debug")
    assert "unknown area 'nosuch'" in output and "usage: gwLogLevel" in output, output
    output = ioc.command("gwLogLevel circuit loud")
    assert "unknown level 'loud'" in output and "debug" in output, output
    output = ioc.command("gwLogLevel all loud")
    assert "unknown level 'loud'" in output, output
    assert levels(ioc) == before


def test_a_flood_of_malformed_datagrams_is_rate_limited_and_names_the_sender(harness):
    ioc = start(harness)
    mark = len(ioc.log())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        sender = "127.0.0.1:%d" % s.getsockname()[1]
        garbage = rawca.header(999)  # a command no datagram carries
        began = time.monotonic()
        for _ in range(100):
            s.sendto(garbage, ("127.0.0.1", ioc.server_port))
        text = "gateway names: %s: malformed datagram of 16 bytes" % sender
        wait_lines(ioc, text, BURST, mark)
        time.sleep(0.5)
        flood = lines_with(ioc, text, mark)
        assert BURST <= len(flood) <= most_printed(began), "\n".join(flood)
        assert "neither VERSION nor SEARCH" in flood[0], flood[0]

        time.sleep(1.2)  # a token back
        s.sendto(garbage, ("127.0.0.1", ioc.server_port))
        later = wait_lines(ioc, "names messages about peers suppressed", 1, mark)
        m = re.search(r"\[(\d+) more names messages about peers suppressed\]", later[0])
        assert m and 1 <= int(m.group(1)) <= 100 - BURST, later[0]
        assert sender in later[0], later[0]
    assert gwharness.ca_search("gw:name", ioc.server_port), "the name server stopped answering"


def bad_circuit(port, user, host):
    """Open a circuit, name the client, send a request code no client sends;
    the address:port the server saw."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(rawca.version() + rawca.message(rawca.CLIENT_NAME, user.encode() + b"\0")
                  + rawca.message(rawca.HOST_NAME, host.encode() + b"\0")
                  + rawca.header(99))
        rawca.Stream(s).until_closed()
        return "127.0.0.1:%d" % s.getsockname()[1]


def test_a_protocol_error_names_the_client_and_floods_are_rate_limited(harness):
    ioc = start(harness)
    mark = len(ioc.log())
    peer = bad_circuit(ioc.server_port, "alice", "box1")
    [line] = wait_lines(ioc, "closing the circuit: invalid request code", 1, mark)
    assert "gateway circuit: %s (alice@box1): closing the circuit: invalid request code" \
        " (command 99" % peer in line, line

    began = time.monotonic()
    for _ in range(3 * BURST):
        bad_circuit(ioc.server_port, "mallory", "box2")
    wait_lines(ioc, "(mallory@box2)", BURST - 1, mark)
    time.sleep(0.5)
    flood = lines_with(ioc, "closing the circuit:", mark)
    assert BURST <= len(flood) <= most_printed(began), "\n".join(flood)

    ioc.command("gwLogLevel circuit error")
    time.sleep(1.2)
    mark = len(ioc.log())
    bad_circuit(ioc.server_port, "eve", "box3")
    time.sleep(0.5)
    assert not lines_with(ioc, "closing the circuit", mark), "a warning printed at level error"
    assert harness.caget(gwharness.server_env(ioc.server_port), "gw:name").returncode == 0
