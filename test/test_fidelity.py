"""Fidelity: the server under test sends the same bytes as Base's RSRV.

One gateway IOC loads test/db/fidelity.db; RSRV serves its records on
`gateway.port` (the reference) and the server under test serves the same
records on another port. The raw client gwRawCaClient (gatewayApp/test)
reads every DBR type at several counts, and subscribes with every event
mask, from both endpoints; the tests compare the replies byte for byte.

SERVER_UNDER_TEST selects the endpoint under test:
  "rsrv"  RSRV itself, through a second, separate client connection (the
          tool and the tests validated end to end before our server exists);
  "gw"    our CA server, started with gwStart on a port of its own.
The environment variable GW_FIDELITY_SERVER overrides it.

Bytes that RSRV leaves undefined (and that differ between two reads from
RSRV) are zeroed before comparing, see `undefined_byte_ranges`; our server
must send zeros there.
"""
import os
import re
import socket
import struct
import threading

import pytest

import gwharness

SERVER_UNDER_TEST = os.environ.get("GW_FIDELITY_SERVER", "gw")

FIDELITY_DB = gwharness.TOP / "test" / "db" / "fidelity.db"
PREFIX = "fid:"
READ_TYPES = [t for t in range(39) if t not in (35, 36)]
DBR_CLASS_NAME = 38
DBR_TIME_DOUBLE = 20
DBR_CTRL_DOUBLE = 34
DBR_CTRL_ENUM = 31
DBR_TIME_CHAR = 18
DBE_VALUE, DBE_LOG, DBE_ALARM, DBE_PROPERTY = 1, 2, 4, 8
MAX_STRING_SIZE = 40

# Record name (without prefix) -> (record type, a count between 1 and the
# native count, or None).
RECORDS = {
    "ai": ("ai", None), "ao": ("ao", None), "bi": ("bi", None), "bo": ("bo", None),
    "mbbi": ("mbbi", None), "mbbo": ("mbbo", None),
    "longin": ("longin", None), "longout": ("longout", None),
    "int64in": ("int64in", None), "stringin": ("stringin", None),
    "lsi": ("lsi", None), "lsiempty": ("lsi", None), "calc": ("calc", None),
    "wfstring": ("waveform", 2), "wfchar": ("waveform", 3), "wfuchar": ("waveform", 3),
    "wfshort": ("waveform", 3), "wfushort": ("waveform", 3), "wflong": ("waveform", 3),
    "wfulong": ("waveform", 3), "wfint64": ("waveform", 3), "wfuint64": ("waveform", 3),
    "wffloat": ("waveform", 3), "wfdouble": ("waveform", 3), "wfenum": ("waveform", 3),
}
# Fields served as channels of their own: long strings as char arrays,
# string, menu and array-size fields.
FIELDS = {
    "lsi.VAL$": ("lsi", 50), "stringin.VAL$": ("stringin", 5),
    "ai.DESC": ("ai", None), "ai.EGU": ("ai", None), "ai.SCAN": ("ai", None),
    "wfdouble.NORD": ("waveform", None),
}
CHANNELS = dict(RECORDS, **FIELDS)

CLIENT = None


def raw_client():
    global CLIENT
    if CLIENT is None:
        path = gwharness.TOP / "gatewayApp" / "test" / ("O." + gwharness.host_arch()) / \
            "gwRawCaClient"
        if not path.exists():
            raise gwharness.HarnessError("%s not built: run make at the top" % path)
        CLIENT = str(path)
    return CLIENT


# ---------------------------------------------------------------- endpoints

class Endpoint:
    """One CA server in the gateway IOC: its name and TCP port."""

    def __init__(self, name, port):
        self.name = name
        self.port = port
        self.address = "127.0.0.1:%d" % port

    def client_env(self):
        return gwharness.ca_environment({"EPICS_CA_ADDR_LIST": self.address,
                                         "EPICS_CA_AUTO_ADDR_LIST": "NO"})


def _tcp_listening(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def start_server_under_test(gateway):
    """Start our CA server in the gateway IOC; its Endpoint."""
    usage = gateway.command("help gwStart").splitlines()[1:]
    if not any(line.split()[:1] == ["gwStart"] for line in usage):
        pytest.fail("GW_FIDELITY_SERVER=gw but this gateway IOC has no gwStart command")
    port = gwharness.free_port()
    gateway.command('gwStart "-sip 127.0.0.1 -sport %d"' % port)
    gwharness.wait_for(lambda: _tcp_listening(port), 15, "gwStart's server on port %d" % port)
    return Endpoint("gw", port)


def fidelity_pair(harness):
    """Start one gateway IOC with fidelity.db; (gateway, reference, under test)."""
    gateway = harness.gateway(records=[(FIDELITY_DB, {"P": PREFIX})])
    reference = Endpoint("rsrv", gateway.port)
    if SERVER_UNDER_TEST == "rsrv":
        under_test = Endpoint("rsrv-again", gateway.port)
    elif SERVER_UNDER_TEST == "gw":
        under_test = start_server_under_test(gateway)
    else:
        raise gwharness.HarnessError("SERVER_UNDER_TEST must be rsrv or gw, not %r"
                                     % SERVER_UNDER_TEST)
    return gateway, reference, under_test


# ---------------------------------------------------------------- raw replies

LINE = re.compile(r"(?P<kind>\w+) pv=(?P<pv>\S+)(?P<rest>.*)$")


def parse_line(line):
    """One output line of gwRawCaClient as a dict (kind, pv, key=value...)."""
    m = LINE.match(line)
    if not m:
        return {"kind": "other", "text": line}
    fields = {"kind": m.group("kind"), "pv": m.group("pv")}
    for key, value in re.findall(r"(\w+)=(\"[^\"]*\"|\S*)", m.group("rest")):
        fields[key] = value
    if "data" in fields:
        fields["data"] = bytes.fromhex(fields["data"])
    return fields


def raw_get(harness, endpoint, pv, types, counts):
    """Every reply of one `gwRawCaClient get`, keyed by (type, count)."""
    argv = [raw_client(), "get", endpoint.address, pv, ",".join(map(str, types)),
            ",".join(map(str, counts))]
    result = harness.run(argv, endpoint.client_env(), timeout=60)
    assert result.returncode == 0, "%s on %s: exit %d\n%s%s" % (
        pv, endpoint.name, result.returncode, result.stdout[-2000:], result.stderr)
    lines = [parse_line(line) for line in result.stdout.splitlines()]
    errors = [line for line in lines if line["kind"] in ("error", "unexpected", "other")]
    assert not errors, "%s on %s: %s" % (pv, endpoint.name, errors)
    channel = next(line for line in lines if line["kind"] == "channel")
    replies = {(int(r["type"]), r["count"]): r for r in lines if r["kind"] == "read"}
    return channel, replies


# ---------------------------------------------------------------- DBR layout

# Per DBR type: offset of the value, the string fields of the structure
# before the value as (offset, length), and its RISC_pad fields (alignment
# padding) as (offset, length).
_PLAIN_SIZE = {0: MAX_STRING_SIZE, 1: 2, 2: 4, 3: 2, 4: 1, 5: 4, 6: 8}
_UNITS = 8
_ENUM_STRINGS = [(6 + 26 * i, 26) for i in range(16)]
_LAYOUT = {
    # STS: status, severity (and a pad for char and double)
    7: (4, [], []), 8: (4, [], []), 9: (4, [], []), 10: (4, [], []),
    11: (5, [], [(4, 1)]), 12: (4, [], []), 13: (8, [], [(4, 4)]),
    # TIME: status, severity, stamp (and pads)
    14: (12, [], []), 15: (14, [], [(12, 2)]), 16: (12, [], []), 17: (14, [], [(12, 2)]),
    18: (15, [], [(12, 3)]), 19: (12, [], []), 20: (16, [], [(12, 4)]),
    # GR: units, limits, precision; enum: the strings
    21: (4, [], []), 22: (24, [(4, _UNITS)], []), 23: (40, [(8, _UNITS)], [(6, 2)]),
    24: (422, _ENUM_STRINGS, []), 25: (19, [(4, _UNITS)], [(18, 1)]),
    26: (36, [(4, _UNITS)], []), 27: (64, [(8, _UNITS)], [(6, 2)]),
    # CTRL: GR and the control limits
    28: (4, [], []), 29: (28, [(4, _UNITS)], []), 30: (48, [(8, _UNITS)], [(6, 2)]),
    31: (422, _ENUM_STRINGS, []), 32: (21, [(4, _UNITS)], [(20, 1)]),
    33: (44, [(4, _UNITS)], []), 34: (80, [(8, _UNITS)], [(6, 2)]),
    # STSACK_STRING: status, severity, ackt, acks; CLASS_NAME: a string
    37: (8, [], []), 38: (0, [], []),
}


def dbr_layout(dbr_type):
    """(value offset, element size, string fields, pad fields) of a DBR type."""
    if dbr_type in _PLAIN_SIZE:
        return 0, _PLAIN_SIZE[dbr_type], [], []
    offset, strings, pads = _LAYOUT[dbr_type]
    base = 0 if dbr_type in (37, 38) else (dbr_type - 7) % 7
    return offset, _PLAIN_SIZE[base], strings, pads


def dbr_is_string(dbr_type):
    return dbr_type in (0, 7, 14, 21, 28, 37, 38)


def undefined_byte_ranges(dbr_type, count, data, empty=False):
    """Byte ranges of a reply payload that RSRV does not define.

    empty: the channel has no elements now (an empty long string or array).

    - after the NUL of every string (string values, units, enum strings,
      class name): RSRV's conversion leaves earlier send-buffer contents;
    - the RISC_pad fields that align the value in the structure;
    - the first value element when the channel is empty (the reply has
      the space of one element, whatever count it asked for, and RSRV does
      not write it) or the header count is 0;
    - DBR_CLASS_NAME asked with a count above 1: all but the first string;
    - the padding after the value up to the 8-byte message alignment."""
    offset, size, strings, pads = dbr_layout(dbr_type)
    ranges = [(start, start + length) for start, length in pads]
    if dbr_is_string(dbr_type):
        strings = strings + [(offset + i * MAX_STRING_SIZE, MAX_STRING_SIZE)
                             for i in range(count)]
    for start, length in strings:
        field = data[start:start + length]
        nul = field.find(b"\0")
        if nul >= 0:
            ranges.append((start + nul + 1, start + length))
    if dbr_type == DBR_CLASS_NAME:
        count, empty = 1, False   # the record type is there whatever the value holds
    if empty or count == 0:
        ranges.append((offset, offset + size))
    ranges.append((offset + size * count, len(data)))
    return ranges


def defined_bytes(dbr_type, count, data, empty=False):
    """The payload with every undefined byte zeroed."""
    out = bytearray(data)
    for start, end in undefined_byte_ranges(dbr_type, count, data, empty):
        out[start:end] = bytes(len(out[start:end]))
    return bytes(out)


def header(reply):
    return {k: reply[k] for k in ("cmd", "dtype", "hcount", "p1", "ext", "size")}


def _first_difference(got, expected):
    at = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b),
              min(len(got), len(expected)))
    start = max(0, at - 8)
    return "at byte %d of %d: %s, expected %s" % (at, len(expected), got[start:at + 16].hex(),
                                                 expected[start:at + 16].hex())


def compare_replies(what, ref, test, empty=False):
    """Mismatch messages of two replies (empty when equal)."""
    if header(ref) != header(test):
        return ["%s: header %s, expected %s" % (what, header(test), header(ref))]
    dbr_type, count = int(ref["dtype"]), int(ref["hcount"])
    expected = defined_bytes(dbr_type, count, ref["data"], empty)
    got = defined_bytes(dbr_type, count, test["data"], empty)
    if got != expected:
        return ["%s: payload differs %s" % (what, _first_difference(got, expected))]
    if SERVER_UNDER_TEST != "rsrv" and got != test["data"]:
        return ["%s: undefined bytes are not zero: %s" % (
            what, _first_difference(test["data"], got))]
    return []


def counts_for(pv):
    _, middle = CHANNELS[pv]
    return [0, 1, "n"] + ([middle] if middle else [])


# ---------------------------------------------------------------- reads

def test_every_channel_sends_identical_bytes_for_every_dbr_type_and_count(harness):
    _, reference, under_test = fidelity_pair(harness)
    problems, compared = [], 0
    for name in sorted(CHANNELS):
        pv = PREFIX + name
        counts = counts_for(name)
        ref_chan, ref = raw_get(harness, reference, pv, READ_TYPES, counts)
        # The other order, so that leftovers of earlier replies differ.
        test_chan, test = raw_get(harness, under_test, pv, READ_TYPES[::-1], counts[::-1])
        if (ref_chan["type"], ref_chan["count"]) != (test_chan["type"], test_chan["count"]):
            problems.append("%s: native type/count %s/%s, expected %s/%s" % (
                pv, test_chan["type"], test_chan["count"], ref_chan["type"], ref_chan["count"]))
            continue
        assert set(ref) == set(test) and len(ref) >= 2 * len(READ_TYPES), pv
        empty = ref[(int(ref_chan["type"]), "0")]["hcount"] == "0"
        for key in sorted(ref):
            problems += compare_replies("%s type %d count %s" % ((pv,) + key), ref[key],
                                        test[key], empty)
            compared += 1
    print("compared %d replies of %d channels" % (compared, len(CHANNELS)))
    assert not problems, "\n".join(problems[:20]) + "\n(%d mismatches)" % len(problems)


def _class_name(reply):
    return reply["data"].split(b"\0")[0].decode()


def test_dbr_class_name_is_the_record_type(harness):
    _, reference, under_test = fidelity_pair(harness)
    for endpoint in (reference, under_test):
        for name, (record_type, _) in sorted(CHANNELS.items()):
            _, replies = raw_get(harness, endpoint, PREFIX + name, [DBR_CLASS_NAME], [1])
            assert _class_name(replies[(DBR_CLASS_NAME, "1")]) == record_type, (endpoint.name,
                                                                               name)


# ---------------------------------------------------------------- monitors

def _updates(process):
    return [parse_line(line) for line in process.log().splitlines()
            if line.startswith("update ")]


def start_monitor(harness, endpoint, pv, dbr_type, count, mask, nupdates, tag):
    """A `gwRawCaClient monitor` stopped by the harness at the end of the test."""
    argv = [raw_client(), "monitor", endpoint.address, pv, dbr_type, count, mask, nupdates, 30]
    process = gwharness.Process("monitor-%s-%s" % (endpoint.name, tag), argv,
                                endpoint.client_env(), harness.log_dir)
    harness.processes.append(process)
    return process


def monitor_sequences(harness, gateway, endpoints, pv, dbr_type, count, mask, steps):
    """Subscribe at every endpoint, run the steps, return each update sequence.

    steps: (iocsh command, True when it must cause an update). After each
    step, waits until every subscriber has the updates expected so far, so
    that no server has a reason to coalesce them."""
    wanted = 1 + sum(1 for _, posts in steps if posts)
    monitors = [start_monitor(harness, endpoint, pv, dbr_type, count, mask, wanted, i)
                for i, endpoint in enumerate(endpoints)]
    expected = 1
    for command, posts in [(None, False)] + list(steps):
        if command:
            gateway.command(command)
        expected += 1 if posts else 0
        for monitor in monitors:
            gwharness.wait_for(lambda: len(_updates(monitor)) >= expected or not monitor.alive(),
                               15, "%s to receive %d updates" % (monitor.name, expected))
    sequences = []
    for monitor in monitors:
        code = monitor.popen.wait(timeout=30)
        assert code == 0, "%s exited with %s:\n%s" % (monitor.name, code, monitor.log())
        assert "late " not in monitor.log(), "more updates than expected:\n" + monitor.log()
        sequences.append(_updates(monitor))
    return sequences


def assert_same_updates(pv, sequences):
    reference, *others = sequences
    for other in others:
        assert len(other) == len(reference), (pv, len(other), len(reference))
        problems = []
        for i, (ref, got) in enumerate(zip(reference, other)):
            problems += compare_replies("%s update %d" % (pv, i + 1), ref, got)
        assert not problems, "\n".join(problems)


MONITOR_CASES = {
    # Deadband MDEL=1 around 3.25: 3.5 and 4.9 stay inside it.
    "value_deadband": ("ai", DBR_TIME_DOUBLE, 1, DBE_VALUE, [
        ("dbpf fid:ai 3.5", False), ("dbpf fid:ai 4.5", True),
        ("dbpf fid:ai 4.9", False), ("dbpf fid:ai 6", True)]),
    # Archive deadband ADEL=5.
    "log_deadband": ("ai", DBR_TIME_DOUBLE, 1, DBE_LOG, [
        ("dbpf fid:ai 4.5", False), ("dbpf fid:ai 9", True),
        ("dbpf fid:ai 10", False), ("dbpf fid:ai 20", True)]),
    # HIGH 50 (MINOR), HIHI 90 (MAJOR).
    "alarm_limits": ("ai", DBR_TIME_DOUBLE, 1, DBE_ALARM, [
        ("dbpf fid:ai 10", False), ("dbpf fid:ai 60", True), ("dbpf fid:ai 70", False),
        ("dbpf fid:ai 95", True), ("dbpf fid:ai 0", True)]),
    # Metadata changes; a value change is not a property change.
    "property_changes": ("ai", DBR_CTRL_DOUBLE, 1, DBE_PROPERTY, [
        ("dbpf fid:ai.EGU cm", True), ("dbpf fid:ai 5", False),
        ("dbpf fid:ai.HOPR 200", True), ("dbpf fid:ai.PREC 1", True)]),
    "enum_strings": ("mbbo", DBR_CTRL_ENUM, 1, DBE_PROPERTY, [
        ("dbpf fid:mbbo.ONST Go", True), ("dbpf fid:mbbo 2", False)]),
    # A char array whose length changes, read with count 0 (dynamic size).
    "array_length": ("wfchar", DBR_TIME_CHAR, 0, DBE_VALUE | DBE_ALARM, [
        ("dbpf fid:wfchar hi", True), ("dbpf fid:wfchar 'hello world'", True),
        ("dbpf fid:wfchar ''", True)]),
}


@pytest.mark.parametrize("case", sorted(MONITOR_CASES))
def test_subscriptions_deliver_the_same_updates_for_each_event_mask(harness, case):
    record, dbr_type, count, mask, steps = MONITOR_CASES[case]
    gateway, reference, under_test = fidelity_pair(harness)
    pv = PREFIX + record
    sequences = monitor_sequences(harness, gateway, [reference, under_test], pv, dbr_type,
                                  count, mask, steps)
    assert_same_updates(pv, sequences)


# ---------------------------------------------------------------- CA tools

def base_tool_output(harness, endpoint, *argv):
    result = harness.run([gwharness.base_tool(argv[0]), *argv[1:]], endpoint.client_env())
    assert result.returncode == 0, "%s: %s%s" % (" ".join(argv), result.stdout, result.stderr)
    return result.stdout


def test_caput_and_caput_callback_write_through_the_server_under_test(harness):
    gateway, _, under_test = fidelity_pair(harness)
    out = base_tool_output(harness, under_test, "caput", "-w", "5", "fid:ao", "7.5")
    assert out.split()[-1] == "7.5"
    assert "7.5" in gateway.command("dbgf fid:ao")
    out = base_tool_output(harness, under_test, "caput", "-c", "-w", "5", "fid:longout", "-3")
    assert out.split()[-1] == "-3"
    assert "-3" in gateway.command("dbgf fid:longout")
    out = base_tool_output(harness, under_test, "caput", "-c", "-w", "5", "fid:mbbo", "Pause")
    assert out.split()[-1] == "Pause"


def test_cainfo_describes_a_channel_of_the_server_under_test(harness):
    _, _, under_test = fidelity_pair(harness)
    out = base_tool_output(harness, under_test, "cainfo", "-w", "5", "fid:wfdouble")
    assert "State:            connected" in out
    assert "Native data type: DBF_DOUBLE" in out
    assert "Element count:    8" in out
    assert "Access:           read, write" in out


def test_camonitor_sees_a_change_made_in_the_ioc(harness):
    gateway, _, under_test = fidelity_pair(harness)
    monitor = gwharness.Process("camonitor", [gwharness.base_tool("camonitor"), "-w", "5",
                                              "fid:longin"],
                                under_test.client_env(), harness.log_dir)
    harness.processes.append(monitor)
    gwharness.wait_for(lambda: "-123456" in monitor.log() or not monitor.alive(), 15,
                       "camonitor's first update")
    gateway.command("dbpf fid:longin 77")
    gwharness.wait_for(lambda: " 77" in monitor.log() or not monitor.alive(), 15,
                       "camonitor's second update")
    assert monitor.alive(), monitor.log()
    monitor.kill()
    lines = monitor.log().split("\n")
    assert [line.split()[-1] for line in lines if line.startswith("fid:longin")] == \
        ["-123456", "77"]


PYEPICS_SCRIPT = """
import epics
pv = epics.PV("fid:ao", connection_timeout=5)
assert pv.wait_for_connection(timeout=5)
ctrl = pv.get_ctrlvars(timeout=5)
print(pv.get(timeout=5), ctrl["units"], ctrl["upper_ctrl_limit"])
assert pv.put(42.5, wait=True, timeout=5) == 1
print(epics.caget("fid:ao", timeout=5), epics.caget("fid:mbbi", as_string=True, timeout=5))
print(list(epics.caget("fid:wflong", timeout=5)))
epics.ca.finalize_libca()
"""


def test_pyepics_reads_writes_and_gets_metadata_from_the_server_under_test(harness):
    _, _, under_test = fidelity_pair(harness)
    result = harness.run(["/usr/bin/python3", "-c", PYEPICS_SCRIPT], under_test.client_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == ["-12.5 V 150.0", "42.5 two", "[-100000, 2, 3, 4, 5]"]


# ---------------------------------------------------------------- the raw client itself

def _serve_once(listener, reply, then_close):
    connection, _ = listener.accept()
    with connection:
        connection.settimeout(10)
        try:
            connection.recv(4096)
            connection.sendall(reply)
            if then_close:
                # end the stream but keep reading: a request the client
                # sends later must not be answered with a reset
                connection.shutdown(socket.SHUT_WR)
            while connection.recv(4096):
                pass
        except OSError:
            pass


@pytest.mark.parametrize("reply, then_close, message", [
    (b"", False, "no reply to CREATE_CHAN"),
    (struct.pack(">HHHHII", 18, 0xffff, 0, 0, 1, 1) + struct.pack(">II", 0xfffffff8, 1), False,
     "announces a 4294967288 byte payload"),
    (struct.pack(">HHHHII", 22, 0, 0, 0, 1, 3) + struct.pack(">HH", 18, 8), True,
     "closed the connection"),
])
def test_raw_client_fails_cleanly_on_a_silent_or_malformed_server(harness, reply, then_close,
                                                                  message):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        server = threading.Thread(target=_serve_once, args=(listener, reply, then_close),
                                  daemon=True)
        server.start()
        endpoint = Endpoint("fake", listener.getsockname()[1])
        result = harness.run([raw_client(), "get", endpoint.address, "x", "all", "0"],
                             endpoint.client_env())
        server.join(15)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
