"""Statistics and control as records; reports, the command file, signals
(issue 15, acceptance; the working spec is notes/issue15-spec.md).

Every test loads the installed db/gateway.db with P=gwt into the gateway
IOC (`var gwStatsInterval 1` before iocInit: rates and top lists every
second) and starts the gateway in front of a softIoc with
test/db/access.db (records acc:*). What the tests prove:

  1. every record of gatewayApp/Db/gateway.db (the names the spec lists
     included) exists with its DESC and its device support, is processed,
     and reads through the IOC's RSRV and through the gateway's server;
  2. vctotal, clients, pvtotal, connected, active, inactive, unconnected
     follow raw clients that connect and disconnect, and equal the counts
     of `gwReport 2` (the server line and the upstream line);
  3. each control flag written through the gateway by the host an access
     file allows performs its action (a report appended to the -report
     file with its header; the -command file run; the pvlist reloaded) and
     reads back 0 once the put callback has completed; another host gets a
     write-access error (raw client and caput) and nothing happens;
     quitFlag and quitServerFlag end the IOC with exit status 0;
  4. SIGUSR1 runs the command file, SIGUSR2 appends report 2,
     `gwReportFile N` appends report N;
  5. a client monitoring a fast upstream PV heads topClientsBytes and the
     PV heads topPvs (CHAR waveforms read with caget -S); the post, event
     and byte rates, subscriptions and iocs follow the monitors;
  6. a command file's unknown lines are reported as FILE:LINE and the
     other lines still run.
Also: the gateway's pvlist over the records (and vctotal counting the
local channel that reads it); the alarm limits' defaults and macros; a
client that does not read shows in queueFill (MAJOR), replaced,
topClientsReplaced and report 1; writing 0 to a flag does nothing and a
failed action leaves a MINOR WRITE alarm (documentation/statistics.md).

The statistics are read through the IOC's RSRV (its own port), so the
reader is not one of the gateway's clients. Timing: none in the
assertions; the 1 s ticks are waited for with generous limits.
"""
import os
import re
import signal
import socket
import time
from pathlib import Path

import pytest

import gwharness
import rawca
import test_access as access
import test_upstream as upstream

GATEWAY_DB_SOURCE = gwharness.TOP / "gatewayApp" / "Db" / "gateway.db"
GATEWAY_DB = gwharness.TOP / "db" / "gateway.db"      # installed by make
P = "gwt"
FAST_STATS = ["var gwStatsInterval 1"]
READ, WRITE = rawca.RIGHT_READ, rawca.RIGHT_READ | rawca.RIGHT_WRITE
DBR_DOUBLE = 6
WAIT = 15.0             # generous limit of every wait for a 1 s tick

# The names the spec lists (the db may have more).
SPEC_COUNTS = ("vctotal pvtotal connected active inactive unconnected connecting "
               "disconnected dead fd fdLimit clients iocs subscriptions queueFill "
               "replaced searchesDenied puts putsRefused uptime").split()
SPEC_RATES = ("clientEventRate clientPostRate existTestRate loopRate cpuFract load "
              "serverEventRate serverPostRate replacedRate bytesInRate bytesOutRate").split()
SPEC_TEXT = ["version", "topClientsBytes", "topClientsReplaced", "topPvs"]
SPEC_FLAGS = ("commandFlag report1Flag report2Flag report3Flag newAsFlag quitFlag "
              "quitServerFlag").split()

DEVICE = {"ai": "Gateway Stats", "stringin": "Gateway Stats", "waveform": "Gateway Stats",
          "bo": "Gateway Control"}

RECORD = re.compile(r'^record\s*\(\s*(\w+)\s*,\s*"\$\(P\):(\w+)"\s*\)\s*\{(.*?)^\}', re.S | re.M)
FIELD = re.compile(r'field\s*\(\s*(\w+)\s*,\s*"([^"]*)"\s*\)')


def db_records():
    """[(short name, record type, {field: value})] of gateway.db, in order."""
    text = GATEWAY_DB_SOURCE.read_text()
    return [(name, rtype, dict(FIELD.findall(body)))
            for rtype, name, body in RECORD.findall(text)]


def pv(name):
    return "%s:%s" % (P, name)


# ---------------------------------------------------------------- set-up

def start_softioc(harness, *extra):
    return harness.softioc((access.ACCESS_DB, {"P": access.P}), *extra)


def start_gateway(harness, softioc, options="", records=(), **kwargs):
    """The gateway IOC with gateway.db (P=gwt, 1 s statistics interval) and
    its server in front of softioc."""
    return harness.gateway_server(upstream.upstream_options(softioc, options),
                                  records=[(GATEWAY_DB, {"P": P})] + list(records),
                                  commands_before_init=FAST_STATS, **kwargs)


def caget_values(harness, env, names, args=("-S",)):
    """{name: text} that caget printed for names (the names it could not
    read are missing), and caget's result."""
    result = harness.caget(env, *names, args=args)
    wanted = set(names)
    values = {}
    for line in result.stdout.splitlines():
        parts = line.split(None, 1)
        if parts and parts[0] in wanted:
            values[parts[0]] = parts[1].strip() if len(parts) > 1 else ""
    return values, result


class Stats:
    """Statistics records read through the gateway IOC's RSRV (raw client:
    no libca, and not a client of the gateway's server)."""

    def __init__(self, gateway, names):
        self.client = rawca.Client(gateway.port, user="stats", host="stats-reader")
        self.cids = {name: self.client.create(pv(name)) for name in names}

    def read(self):
        return {name: self.client.value(cid) for name, cid in self.cids.items()}

    def close(self):
        self.client.close()


SERVER_LINE = re.compile(r"gateway CA server on TCP port (?P<port>\d+): (?P<clients>\d+) clients, "
                         r"(?P<channels>\d+) channels")


def report_counts(gateway):
    """The counts of `gwReport 2`, under the names of the records."""
    text = gateway.command("gwReport 2")
    server, up = SERVER_LINE.search(text), gwharness.UPSTREAM_LINE.search(text)
    assert server and up, "gwReport 2 has no %s line (spec: \"gateway CA server on TCP port " \
        "P: C clients, V channels, ...\" and \"upstream: N PVs: ...\"):\n%s" % (
            "server" if not server else "upstream", text)
    n = {key: int(value) for key, value in up.groupdict().items()}
    return {"vctotal": int(server.group("channels")), "clients": int(server.group("clients")),
            "pvtotal": n["total"], "active": n["active"], "inactive": n["inactive"],
            "connected": n["active"] + n["inactive"],
            "unconnected": n["connecting"] + n["disconnected"] + n["dead"]}


def wait_counts(gateway, stats, expected, what):
    """Wait until the records and gwReport 2 both say `expected`."""
    deadline = time.monotonic() + WAIT
    while True:
        records = {k: int(v) for k, v in stats.read().items()}
        report = report_counts(gateway)
        if all(records[k] == report[k] == v for k, v in expected.items()):
            return
        if time.monotonic() > deadline:
            raise AssertionError("%s: after %.0f s, expected %s\nrecords   %s\ngwReport 2 %s" % (
                what, WAIT, expected, {k: records[k] for k in expected},
                {k: report[k] for k in expected}))
        time.sleep(0.2)


# ---------------------------------------------------------------- reports

HEADER = re.compile(r"^==== (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) report (\d+): (.*) ====$",
                    re.M)
# "  client user@host (ip:port) ...: N channels, E events sent, R replaced,
# B bytes out, I bytes in, F% queue"
CLIENT_LINE = re.compile(r"  client (?P<user>\S+)@(?P<host>\S+) \((?P<address>[\d.]+:\d+)\)[^:]*: "
                         r"\d+ channels, \d+ events sent, \d+ replaced, \d+ bytes out, "
                         r"\d+ bytes in, \d+(\.\d+)?% queue")
TITLES = {1: "virtual connections", 2: "process variables", 3: "access security"}


def reports(path):
    """[(N, title, body)] of the report file, in order ([] without a file)."""
    if not Path(path).exists():
        return []
    text = Path(path).read_text(errors="replace")
    found = list(HEADER.finditer(text))
    return [(int(m.group(2)), m.group(3),
             text[m.end():found[i + 1].start() if i + 1 < len(found) else len(text)])
            for i, m in enumerate(found)]


def numbers(path):
    return [n for n, _, _ in reports(path)]


def check_report(setup, n, title, body):
    """What each report must hold (the spec's first lines)."""
    assert title == TITLES[n], "report %d has title %r (spec: %r)" % (n, title, TITLES[n])
    if n == 1:
        assert re.search(r"gateway CA server on TCP port %d: \d+ clients, \d+ channels"
                         % setup.gateway.server_port, body), body
        for line in body.splitlines():
            if line.startswith("  client "):
                assert CLIENT_LINE.match(line), "report 1's client line is not the spec's:\n" \
                    + line
    elif n == 2:
        assert gwharness.UPSTREAM_LINE.search(body), body
    elif n == 3:
        assert str(setup.pvlist) in body and "acc:ao3" in body, body


def wait_numbers(path, expected, what):
    deadline = time.monotonic() + WAIT
    while numbers(path) != expected:
        if time.monotonic() > deadline:
            raise AssertionError("%s: reports %s in %s, expected %s" % (
                what, numbers(path), path, expected))
        time.sleep(0.1)


# ---------------------------------------------------------------- the admins' set-up

ADMIN_ACF = """# test_stats.py: everyone may read and write, but the control flags
# (ASG GatewayAdmin) only the host allowedhost may write.
HAG(admins) {allowedhost}
ASG(DEFAULT) {
    RULE(1, READ)
    RULE(1, WRITE)
}
ASG(GatewayAdmin) {
    RULE(1, READ)
    RULE(1, WRITE) { HAG(admins) }
}
"""

# The gateway IOC's own records are subject to the pvlist like any name.
PVLIST = "gwt:.*  ALLOW\nacc:.*  ALLOW\nacc:ao3  DENY\n"
PVLIST_CHANGED = "gwt:.*  ALLOW\nacc:.*  ALLOW\nacc:ao2  DENY\n"


class Setup:
    pass


def admin_setup(harness, command="R1\nR3\n"):
    """softIoc, and a gateway with the admins' access file, a pvlist, a
    report file and a command file (-report, -command)."""
    s = Setup()
    s.softioc = start_softioc(harness)
    s.acf = harness.write("admin.acf", ADMIN_ACF)
    s.pvlist = harness.write("stats.pvlist", PVLIST)
    s.report = harness.log_dir / "stats.report"
    s.command = harness.write("stats.command", command)
    s.gateway = start_gateway(harness, s.softioc, "-report %s -command %s -access %s" % (
        s.report, s.command, s.acf), access=s.acf, pvlist=s.pvlist)
    return s


def at_once_or_later(check, timeout=WAIT):
    """'at once' when check() is true now, 'later' when it becomes true
    within timeout, 'never' otherwise."""
    if check():
        return "at once"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.1)
        if check():
            return "later"
    return "never"


# ---------------------------------------------------------------- 1. every record

def test_every_record_exists_with_its_desc_and_device_and_reads_through_rsrv_and_the_gateway(
        harness):
    records = db_records()
    names = [name for name, _, _ in records]
    missing = [n for n in SPEC_COUNTS + SPEC_RATES + SPEC_TEXT + SPEC_FLAGS if n not in names]
    assert not missing, "gateway.db lacks records of the spec: %s" % missing
    for name, rtype, fields in records:
        assert fields.get("DESC"), "%s has no DESC in gateway.db" % name
        if rtype == "ai":   # EGU may be "" (cpuFract, load have no unit)
            assert "EGU" in fields and all(fields.get(f) for f in ("PREC", "HOPR", "LOPR")), \
                (name, fields)

    softioc = start_softioc(harness)
    gateway = start_gateway(harness, softioc)
    startup = gateway.log()
    assert "Can't set" not in startup and "Error at or before" not in startup, startup

    stats = [pv(name) for name, rtype, _ in records if rtype != "bo"]
    versions = []
    for where, env in (("RSRV", harness.client_env(gateway)),
                       ("the gateway's server", gwharness.server_env(gateway.server_port))):
        # the DESC and the device support of every record
        descs, result = caget_values(harness, env, [pv(n) + ".DESC" for n in names])
        dtyps, result2 = caget_values(harness, env, [pv(n) + ".DTYP" for n in names])
        problems = []
        for name, rtype, fields in records:
            desc, dtyp = descs.get(pv(name) + ".DESC"), dtyps.get(pv(name) + ".DTYP")
            if desc != fields["DESC"]:
                problems.append("%s.DESC through %s: %r (gateway.db: %r)" % (
                    name, where, desc, fields["DESC"]))
            if dtyp != DEVICE[rtype]:
                problems.append("%s.DTYP through %s: %r (expected %r)" % (
                    name, where, dtyp, DEVICE[rtype]))
        assert not problems, "\n".join(problems) + "\n" + result.stderr + result2.stderr

        # every statistics record has been processed (a record never
        # processed is INVALID, UDF) and has a value
        def unprocessed():
            sevrs, _ = caget_values(harness, env, [n + ".SEVR" for n in stats])
            return [n for n in stats if sevrs.get(n + ".SEVR") in (None, "INVALID")]
        left = unprocessed()
        deadline = time.monotonic() + WAIT
        while left and time.monotonic() < deadline:
            time.sleep(0.5)
            left = unprocessed()
        assert not left, "never processed (SEVR INVALID) through %s: %s" % (where, left)
        # the counts of the running gateway (the first tick after gwStart)
        deadline = time.monotonic() + WAIT
        while True:
            values, result = caget_values(harness, env, stats + [pv(n) for n in SPEC_FLAGS])
            assert result.returncode == 0 and len(values) == len(stats) + len(SPEC_FLAGS), \
                result.stdout + result.stderr
            numeric = {n: float(values[pv(n)]) for n in SPEC_COUNTS + SPEC_RATES}
            if numeric["fd"] > 0 and numeric["uptime"] > 0 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert numeric["fd"] > 0 and numeric["fdLimit"] >= numeric["fd"], numeric
        assert numeric["uptime"] > 0, numeric
        versions.append(values[pv("version")])
        assert all(values[pv(n)] == "Idle" for n in SPEC_FLAGS), values
    # the spec: "gateway <version> (EPICS Base x.y.z)"-like text
    assert versions[0] == versions[1], versions
    assert re.match(r"gateway \S+ \(EPICS Base 7\.0\.3", versions[0]), \
        "%s:version is %r" % (P, versions[0])


def test_the_gateway_serves_the_records_under_its_pvlist_and_vctotal_counts_local_channels(
        harness):
    """The pvlist decides which records the gateway's server serves (RSRV
    serves them all); a channel to a record is a client channel like any:
    the reader of vctotal through the gateway sees itself."""
    softioc = start_softioc(harness)
    pvlist = harness.write("stats.pvlist", "acc:.*  ALLOW\ngwt:vctotal  ALLOW\n")
    gateway = start_gateway(harness, softioc, pvlist=pvlist)
    assert access.found(gateway, pv("vctotal")) and access.refused(gateway, pv("pvtotal"))
    values, result = caget_values(harness, harness.client_env(gateway),
                                  [pv("vctotal"), pv("pvtotal")])
    assert len(values) == 2, result.stdout + result.stderr
    with access.client(gateway, user="reader", host="reader-host") as c:
        cid = c.create(pv("vctotal"))
        upstream.wait_until(lambda: c.value(cid) == 1, WAIT,
                            "vctotal through the gateway to count its reader")
        with pytest.raises(rawca.Refused):
            c.create(pv("pvtotal"), search=False)


def test_alarm_limits_have_defaults_and_macros_override_them(harness):
    softioc = start_softioc(harness)
    gateway = start_gateway(harness, softioc, records=[(GATEWAY_DB, {
        "P": "gwm", "FD_HIGH": "100", "FD_HIHI": "200", "QUEUE_HIGH": "40", "QUEUE_HIHI": "70",
        "CPU_HIGH": "0.5", "CPU_HIHI": "0.9"})])
    fields = ["fdLimit", "fd.HIGH", "fd.HIHI", "fd.HSV", "fd.HHSV", "queueFill.HIGH",
              "queueFill.HIHI", "cpuFract.HIGH", "cpuFract.HIHI"]
    env = harness.client_env(gateway)

    def limits(prefix):
        names = ["%s:%s" % (prefix, f) for f in fields]
        values, result = caget_values(harness, env, names)
        assert len(values) == len(names), result.stdout + result.stderr
        return {f: values["%s:%s" % (prefix, f)] for f in fields}
    # fd's default limits (0 in gateway.db): 80 % and 90 % of the fd limit,
    # once the limit is known
    upstream.wait_until(lambda: float(limits(P)["fdLimit"]) > 0, WAIT, "fdLimit")
    got = limits(P)
    fd_limit = float(got["fdLimit"])
    assert (float(got["fd.HIGH"]), float(got["fd.HIHI"])) == \
        pytest.approx((0.8 * fd_limit, 0.9 * fd_limit), abs=1), got
    assert (got["fd.HSV"], got["fd.HHSV"]) == ("MINOR", "MAJOR"), got
    assert [float(got[f]) for f in fields[5:]] == [50, 90, 0.8, 1.5], got
    got = limits("gwm")
    assert [float(got[f]) for f in ("fd.HIGH", "fd.HIHI")] == [100, 200], got
    assert [float(got[f]) for f in fields[5:]] == [40, 70, 0.5, 0.9], got


# ---------------------------------------------------------------- 2. counts

COUNTED = ["vctotal", "clients", "pvtotal", "connected", "active", "inactive", "unconnected"]


def test_counts_follow_clients_connecting_and_disconnecting_and_equal_gwreport_2(harness):
    softioc = start_softioc(harness)
    gateway = start_gateway(harness, softioc)
    stats = Stats(gateway, COUNTED + ["iocs"])
    try:
        wait_counts(gateway, stats, dict.fromkeys(COUNTED, 0), "no client yet")
        a = access.client(gateway, user="alice", host="host-a")
        b = access.client(gateway, user="bob", host="host-b")
        with a, b:
            for name in ("acc:ai1", "acc:ai2", "acc:ao1"):
                a.create(name)
            for name in ("acc:ao1", "acc:ao2"):
                b.create(name)
            wait_counts(gateway, stats, {"vctotal": 5, "clients": 2, "pvtotal": 4,
                                         "connected": 4, "active": 4, "inactive": 0,
                                         "unconnected": 0}, "two clients, 5 channels, 4 PVs")
            assert stats.read()["iocs"] == 1
            b.close()
            # acc:ao2 had only bob: connected upstream still, without clients
            wait_counts(gateway, stats, {"vctotal": 3, "clients": 1, "pvtotal": 4,
                                         "connected": 4, "active": 3, "inactive": 1,
                                         "unconnected": 0}, "bob gone")
            a.create("acc:ao2")
            wait_counts(gateway, stats, {"vctotal": 4, "clients": 1, "pvtotal": 4,
                                         "connected": 4, "active": 4, "inactive": 0},
                        "alice takes acc:ao2")
        wait_counts(gateway, stats, {"vctotal": 0, "clients": 0, "pvtotal": 4, "connected": 4,
                                     "active": 0, "inactive": 4, "unconnected": 0},
                    "every client gone")
    finally:
        stats.close()


# ---------------------------------------------------------------- 3. the flags

def refused_by_other_host(setup, name):
    """otherhost may read the flag but not write it (raw client)."""
    with access.client(setup.gateway, user="operator", host="otherhost") as other:
        cid = other.create(pv(name))
        assert other.rights(cid) == READ, other.rights_messages(cid)
        assert other.write_notify(cid, 1) == rawca.ECA_NOWTACCESS
        assert other.write(cid, 1) == rawca.ECA_NOWTACCESS
        assert other.value(cid) == 0
        other.drain(1.0)


ACTIONS = {"report1Flag": [1], "report2Flag": [2], "report3Flag": [3], "commandFlag": [1, 3]}


@pytest.mark.parametrize("flag", sorted(ACTIONS))
def test_a_report_flag_from_the_allowed_host_appends_its_reports_and_reads_back_0(harness, flag):
    setup = admin_setup(harness, command="R1\nR3\n")
    refused_by_other_host(setup, flag)
    assert numbers(setup.report) == [], "a refused write of %s acted" % flag
    wanted = ACTIONS[flag]
    with access.client(setup.gateway, user="admin", host="allowedhost") as admin:
        cid = admin.create(pv(flag))
        assert admin.rights(cid) == WRITE, admin.rights_messages(cid)
        assert admin.write_notify(cid, 1) == rawca.ECA_NORMAL
        done = at_once_or_later(lambda: numbers(setup.report) == wanted)
        back = at_once_or_later(lambda: admin.value(cid) == 0)
        assert (done, back) == ("at once", "at once"), \
            "after the put callback of %s completed: reports %s (%s; expected %s), " \
            "value back to 0: %s" % (flag, numbers(setup.report), done, wanted, back)
        for n, title, body in reports(setup.report):
            check_report(setup, n, title, body)
        if flag == "report1Flag":
            body = reports(setup.report)[0][2]
            address = "127.0.0.1:%d" % admin.sock.getsockname()[1]
            assert re.search(r"^  client admin@allowedhost \(%s\).*\n    %s \(sid " % (
                re.escape(address), re.escape(pv(flag))), body, re.M), body
        # a plain write (no callback) acts too
        assert admin.write(cid, 1) == rawca.ECA_NORMAL
        wait_numbers(setup.report, wanted + wanted, "a plain write of %s" % flag)
        upstream.wait_until(lambda: admin.value(cid) == 0, WAIT, "%s back to 0" % flag)


def test_newasflag_from_the_allowed_host_reloads_the_pvlist_and_reads_back_0(harness):
    setup = admin_setup(harness)
    gateway = setup.gateway
    assert access.found(gateway, "acc:ao2") and access.refused(gateway, "acc:ao3")
    setup.pvlist.write_text(PVLIST_CHANGED)
    refused_by_other_host(setup, "newAsFlag")
    assert access.found(gateway, "acc:ao2") and access.refused(gateway, "acc:ao3"), \
        "a refused write of newAsFlag reloaded the pvlist"
    with access.client(gateway, user="admin", host="allowedhost") as admin:
        cid = admin.create(pv("newAsFlag"))
        assert admin.rights(cid) == WRITE, admin.rights_messages(cid)
        assert admin.write_notify(cid, 1) == rawca.ECA_NORMAL
        back = at_once_or_later(lambda: admin.value(cid) == 0)
        assert back == "at once", "newAsFlag back to 0 after its put callback: %s" % back
    assert access.found(gateway, "acc:ao3") and access.refused(gateway, "acc:ao2"), \
        gateway.command("gwReport 3")


def test_writing_0_does_nothing_and_a_failed_action_leaves_a_minor_write_alarm(harness):
    """documentation/statistics.md (not the spec): a command file that is
    not there fails commandFlag's action."""
    setup = admin_setup(harness)
    setup.command.unlink()
    env = harness.client_env(setup.gateway)
    with access.client(setup.gateway, user="admin", host="allowedhost") as admin:
        report = admin.create(pv("report2Flag"))
        assert admin.write_notify(report, 0) == rawca.ECA_NORMAL
        admin.drain(1.0)
        assert numbers(setup.report) == [], "writing 0 to report2Flag acted"
        command = admin.create(pv("commandFlag"))
        assert admin.write_notify(command, 1) == rawca.ECA_NORMAL
        upstream.wait_until(lambda: admin.value(command) == 0, WAIT, "commandFlag back to 0")
    alarm, result = caget_values(harness, env, [pv("commandFlag.STAT"), pv("commandFlag.SEVR")])
    assert (alarm.get(pv("commandFlag.STAT")), alarm.get(pv("commandFlag.SEVR"))) == \
        ("WRITE", "MINOR"), result.stdout + result.stderr + setup.gateway.tail()


@pytest.mark.parametrize("flag", ["quitFlag", "quitServerFlag"])
def test_a_quit_flag_from_the_allowed_host_ends_the_ioc_with_exit_status_0(harness, flag):
    """Without server mode (-server) quitFlag and quitServerFlag are the same.
    The harness's stop of a process that has exited only collects its exit
    status, which must be 0."""
    setup = admin_setup(harness)
    gateway = setup.gateway
    refused_by_other_host(setup, flag)
    refused_put = access.caput(harness, gateway, pv(flag), 1)     # this machine's host name
    assert refused_put.returncode != 0 and "Write access denied" in refused_put.stderr, \
        refused_put.stdout + refused_put.stderr
    assert gateway.alive(), gateway.tail()
    with access.client(gateway, user="admin", host="allowedhost") as admin:
        cid = admin.create(pv(flag))
        assert admin.rights(cid) == WRITE
        payload = rawca.pad(rawca.double_payload([1]))
        admin.send(rawca.header(rawca.WRITE_NOTIFY, len(payload), DBR_DOUBLE, 1,
                                admin.sids[cid], 99) + payload)
        gwharness.wait_for(lambda: not gateway.alive(), WAIT, "the gateway IOC to exit")
    assert gateway.popen.returncode == 0, "exit status %s:\n%s" % (
        gateway.popen.returncode, gateway.tail())
    assert setup.softioc.alive()


# ---------------------------------------------------------------- 4. signals

def test_sigusr1_runs_the_command_file_sigusr2_and_gwreportfile_append_reports(harness):
    setup = admin_setup(harness, command="R1\nR2\n")
    gateway = setup.gateway
    exe = Path(os.readlink("/proc/%d/exe" % gateway.pid)).resolve()
    assert exe == Path(gwharness.module_tool("gateway")).resolve(), \
        "the harness's pid %d is %s, not the gateway" % (gateway.pid, exe)
    os.kill(gateway.pid, signal.SIGUSR1)
    wait_numbers(setup.report, [1, 2], "SIGUSR1 (command file R1, R2)")
    os.kill(gateway.pid, signal.SIGUSR2)
    wait_numbers(setup.report, [1, 2, 2], "SIGUSR2")
    os.kill(gateway.pid, signal.SIGUSR1)
    wait_numbers(setup.report, [1, 2, 2, 1, 2], "SIGUSR1 again")
    gateway.command("gwReportFile 3")
    wait_numbers(setup.report, [1, 2, 2, 1, 2, 3], "gwReportFile 3")
    for n, title, body in reports(setup.report):
        check_report(setup, n, title, body)
    assert gateway.alive()


# ---------------------------------------------------------------- 5. top lists

FAST_DB = """# test_stats.py: upstream records that change on their own
record(calc, "fast:count") {
    field(SCAN, ".1 second")
    field(CALC, "A+1")
    field(INPA, "fast:count")
}
record(calc, "slow:count") {
    field(SCAN, "1 second")
    field(CALC, "A+1")
    field(INPA, "slow:count")
}
"""


def monitor(gateway, user, host, name):
    """A raw client of the gateway with a DBR_DOUBLE subscription to name."""
    c = access.client(gateway, user=user, host=host)
    cid = c.create(name)
    c.send(upstream.event_add(c.sids[cid], 1, DBR_DOUBLE))
    return c


def text_lines(harness, gateway, name):
    """The lines of a CHAR waveform read with caget -S through RSRV (which
    escapes a newline as \\n). Base 7.0.3.1's caget prints a stray byte for
    an array of no elements: NORD 0 is read first and means no lines."""
    values, result = caget_values(harness, harness.client_env(gateway),
                                  [pv(name) + ".NORD", pv(name)])
    assert pv(name) in values and pv(name) + ".NORD" in values, result.stdout + result.stderr
    if int(values[pv(name) + ".NORD"]) == 0:
        return []
    text = values[pv(name)].replace("\\n", "\n")
    return [line for line in text.splitlines() if line.strip()]


def test_a_client_monitoring_a_fast_pv_heads_topclientsbytes_and_the_pv_heads_toppvs(harness):
    db = harness.write("fast.db", FAST_DB)
    softioc = start_softioc(harness, db)
    gateway = start_gateway(harness, softioc)
    fast = monitor(gateway, "topuser", "tophost", "fast:count")
    slow = monitor(gateway, "slowuser", "slowhost", "slow:count")
    with fast, slow:
        fast_client = "topuser@tophost 127.0.0.1:%d " % fast.sock.getsockname()[1]
        deadline = time.monotonic() + WAIT
        while True:
            fast.drain(0.3)
            slow.drain(0.3)
            clients = text_lines(harness, gateway, "topClientsBytes")
            pvs = text_lines(harness, gateway, "topPvs")
            if clients and clients[0].startswith(fast_client) and \
                    pvs and pvs[0].startswith("fast:count "):
                break
            if time.monotonic() > deadline:
                raise AssertionError("topClientsBytes %r, topPvs %r: expected %r and "
                                     "'fast:count ...' first" % (clients, pvs, fast_client))
        assert len(clients) <= 10 and len(pvs) <= 10, (clients, pvs)
        m = re.fullmatch(re.escape(fast_client) + r"(\d+(?:\.\d+)?) B/s", clients[0])
        assert m and float(m.group(1)) > 0, clients
        m = re.fullmatch(r"fast:count (\d+(?:\.\d+)?) updates/s", pvs[0])
        assert m and float(m.group(1)) > 0, pvs
        for line in clients:
            assert re.fullmatch(r"\S+@\S+ \d+\.\d+\.\d+\.\d+:\d+ \d+(\.\d+)? B/s", line), clients
        for line in pvs:
            assert re.fullmatch(r"\S+ \d+(\.\d+)? updates/s", line), pvs
        # busiest first
        for lines in (clients, pvs):
            rates = [float(line.split()[-2]) for line in lines]
            assert rates == sorted(rates, reverse=True), lines
        print("first interval: topClientsBytes %s, topPvs %s" % (clients, pvs))
        # Later intervals (not the one with the subscriptions' first
        # updates): both clients and both PVs listed, the 10 Hz ones first.
        slow_client = "slowuser@slowhost 127.0.0.1:%d " % slow.sock.getsockname()[1]
        for _ in range(6):
            fast.drain(0.5)
            slow.drain(0.5)
        deadline = time.monotonic() + WAIT
        while True:
            clients = text_lines(harness, gateway, "topClientsBytes")
            pvs = text_lines(harness, gateway, "topPvs")
            if [line.split()[0] for line in clients[:2]] == [fast_client.split()[0],
                                                              slow_client.split()[0]] and \
                    [line.split()[0] for line in pvs[:2]] == ["fast:count", "slow:count"]:
                break
            if time.monotonic() > deadline:
                raise AssertionError("later: topClientsBytes %r, topPvs %r: expected topuser, "
                                     "slowuser and fast:count, slow:count" % (clients, pvs))
            fast.drain(0.3)
            slow.drain(0.3)
        print("later: topClientsBytes %s, topPvs %s" % (clients, pvs))
        # the rates of about 11 updates/s (one upstream subscription per
        # PV, one client subscription each), with a wide margin
        stats = Stats(gateway, ["clientPostRate", "serverPostRate", "serverEventRate",
                                "bytesOutRate", "subscriptions", "iocs"])
        try:
            def rates():
                fast.drain(0.3)
                slow.drain(0.3)
                now = stats.read()
                good = all(now[k] >= 5 for k in ("clientPostRate", "serverPostRate",
                                                  "serverEventRate")) and \
                    now["bytesOutRate"] > 100 and now["subscriptions"] == 2 and now["iocs"] == 1
                return now if good else None
            deadline = time.monotonic() + WAIT
            now = rates()
            while now is None and time.monotonic() < deadline:
                now = rates()
            assert now is not None, "rates with a 10 Hz and a 1 Hz monitor: %s" % stats.read()
            print("rates: %s" % now)
        finally:
            stats.close()
        # nobody is slow: no client with replaced updates
        replaced = text_lines(harness, gateway, "topClientsReplaced")
        for line in replaced:
            m = re.fullmatch(r"\S+@\S+ \d+\.\d+\.\d+\.\d+:\d+ (\d+(?:\.\d+)?) replaced/s", line)
            assert m and float(m.group(1)) == 0, replaced


STUCK_SUBSCRIPTIONS = 1000
DBR_CTRL_DOUBLE = 34


def stuck_client(gateway, name):
    """A client (stuckuser@stuckhost) with a tiny receive buffer that
    subscribes to name many times and never reads."""
    assert access.found(gateway, name)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(5)
    s.connect(("127.0.0.1", gateway.server_port))
    s.sendall(rawca.version() + rawca.client_name("stuckuser") + rawca.host_name("stuckhost")
              + rawca.create_chan(name))
    got = rawca.Stream(s).read_until(rawca.has(rawca.CREATE_CHAN), 10)
    created = [m for m in got if m.command == rawca.CREATE_CHAN]
    assert created, got
    s.sendall(b"".join(upstream.event_add(created[0].p2, i, DBR_CTRL_DOUBLE)
                       for i in range(1, STUCK_SUBSCRIPTIONS + 1)))
    return s


def test_a_client_that_does_not_read_shows_in_queuefill_replaced_and_topclientsreplaced(harness):
    db = harness.write("fast.db", FAST_DB)
    softioc = start_softioc(harness, db)
    gateway = start_gateway(harness, softioc, "-send_timeout 300")
    stats = Stats(gateway, ["queueFill", "replaced"])
    stuck = stuck_client(gateway, "fast:count")
    try:
        address = "127.0.0.1:%d" % stuck.getsockname()[1]
        deadline = time.monotonic() + 60
        while True:
            now = stats.read()
            replaced = text_lines(harness, gateway, "topClientsReplaced")
            head = re.fullmatch(r"stuckuser@stuckhost %s (\d+(?:\.\d+)?) replaced/s"
                                % re.escape(address), replaced[0]) if replaced else None
            if now["queueFill"] >= 90 and now["replaced"] > 0 and head \
                    and float(head.group(1)) > 0:
                break
            if time.monotonic() > deadline:
                raise AssertionError("a client that does not read: %s, topClientsReplaced %r"
                                     % (now, replaced))
            time.sleep(0.5)
        print("stuck client: %s, topClientsReplaced %s" % (now, replaced))
        sevr, result = caget_values(harness, harness.client_env(gateway), [pv("queueFill.SEVR")])
        assert sevr.get(pv("queueFill.SEVR")) == "MAJOR", result.stdout + result.stderr
        line = [text for text in gateway.command("gwReport 1").splitlines()
                if text.startswith("  client stuckuser@stuckhost (%s)" % address)]
        assert line, gateway.command("gwReport 1")
        m = re.search(r"(\d+) replaced, .*, (\d+(?:\.\d+)?)% queue", line[0])
        assert m and int(m.group(1)) > 0 and float(m.group(2)) >= 90, line
    finally:
        stuck.close()
        stats.close()


# ---------------------------------------------------------------- 6. command file errors

COMMANDS_WITH_ERRORS = """# test_stats.py: comments, blank lines, any case, and errors
R1

bogus line
r2
As
R4
R3
"""


def test_unknown_command_file_lines_are_reported_with_file_and_line_and_the_rest_runs(harness):
    setup = admin_setup(harness, command=COMMANDS_WITH_ERRORS)
    gateway = setup.gateway
    start = len(gateway.log())
    os.kill(gateway.pid, signal.SIGUSR1)
    wait_numbers(setup.report, [1, 2, 3], "SIGUSR1 (command file with errors)")
    expected = ["%s:%d: unknown command" % (setup.command, line) for line in (4, 7)]
    upstream.wait_until(lambda: all(e in gateway.log()[start:] for e in expected), WAIT,
                        "the errors %s in the IOC's output" % expected)
    said = [line for line in gateway.log()[start:].splitlines() if "unknown command" in line]
    assert len(said) == 2, said
    assert gateway.alive()
