"""gwharness - real EPICS processes for the gateway's integration tests.

Starts softIoc and gateway IOC processes on chosen loopback ports, waits
until they answer, gives the CA client environment that reaches them, and
stops them by PID. Every CA process runs inside the private network
namespace that `scripts/netns run` makes; this module refuses to start one
anywhere else.

Used by test/conftest.py (fixtures) and by the tests themselves.
"""
import ctypes
import itertools
import os
import re
import shlex
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
NETNS = TOP / "scripts" / "netns"

# The access security file a test gateway gets unless the test says
# otherwise: everyone may read and write. Without an access file the
# gateway is read-only for every client (as the classic gateway is), which
# is not what tests of the data path want.
ALLOW_ALL_ACF = TOP / "test" / "db" / "allow-all.acf"

# What every CA process of a test gets, whatever the caller's environment says.
LOOPBACK_ENV = {
    "EPICS_CA_AUTO_ADDR_LIST": "NO",
    "EPICS_CA_ADDR_LIST": "127.0.0.1 127.255.255.255",
    "EPICS_CAS_INTF_ADDR_LIST": "127.0.0.1",
    "EPICS_CAS_AUTO_BEACON_ADDR_LIST": "NO",
    "EPICS_CAS_BEACON_ADDR_LIST": "127.255.255.255",
    "EPICS_CA_REPEATER_PORT": "5065",
}
REMOVED_ENV = ("EPICS_CA_NAME_SERVERS", "EPICS_CAS_IGNORE_ADDR_LIST",
               "EPICS_CA_SERVER_PORT", "EPICS_CAS_SERVER_PORT",
               "EPICS_CAS_BEACON_PORT")

CA_PROTO_VERSION = 0
CA_PROTO_SEARCH = 6
CA_PROTO_NOT_FOUND = 14
CA_MINOR_VERSION = 13
DO_REPLY = 10

PR_SET_CHILD_SUBREAPER = 36


# The last line of every ThreadSanitizer, AddressSanitizer (and LeakSanitizer
# through it) and UndefinedBehaviorSanitizer report. A report fails the test
# even when it did not stop the process (TSAN_OPTIONS halt_on_error=0).
SANITIZER_SUMMARY = re.compile(
    r"^SUMMARY: (ThreadSanitizer|AddressSanitizer|UndefinedBehaviorSanitizer|"
    r"LeakSanitizer)\b.*$", re.MULTILINE)


def sanitizer_reports(text):
    """The sanitizer SUMMARY lines in a process's output."""
    return [m.group(0) for m in SANITIZER_SUMMARY.finditer(text or "")]


class HarnessError(RuntimeError):
    """The harness cannot do what a test asked (not a test failure)."""


# ---------------------------------------------------------------- namespace

def foreign_interfaces():
    """Network interfaces of this namespace other than loopback."""
    out = subprocess.run(["ip", "-o", "link", "show"], check=True,
                         capture_output=True, text=True).stdout
    names = [line.split(": ")[1].split("@")[0] for line in out.splitlines()
             if ": " in line]
    return [n for n in names if n != "lo"]


_namespace_inode = None


def require_private_namespace():
    """Raise HarnessError unless this is a private network namespace.

    The first call remembers the namespace; later calls only check that the
    process is still in it (tests may add veth interfaces of their own)."""
    global _namespace_inode
    inode = os.stat("/proc/self/ns/net").st_ino
    if _namespace_inode is None:
        foreign = foreign_interfaces()
        if foreign:
            raise HarnessError(
                "refusing to run CA processes outside a private network "
                "namespace (interfaces: %s); run the tests through "
                "scripts/netns run" % " ".join(foreign))
        _namespace_inode = inode
    elif inode != _namespace_inode:
        raise HarnessError("the test process left its private network namespace")


def become_subreaper():
    """Make orphaned descendants (e.g. a caRepeater a client spawned) our
    children, so the leftover check sees them."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise HarnessError("prctl(PR_SET_CHILD_SUBREAPER) failed")


# ---------------------------------------------------------------- locations

def epics_base():
    base = os.environ.get("EPICS_BASE")
    if not base:
        release = TOP / "configure" / "RELEASE.local"
        if release.exists():
            for line in release.read_text().splitlines():
                m = re.match(r"\s*EPICS_BASE\s*=\s*(\S+)", line)
                if m:
                    base = m.group(1)
    if not base or not Path(base).is_dir():
        raise HarnessError("EPICS Base not found: run scripts/bootstrap or set EPICS_BASE")
    return Path(base)


def host_arch():
    arch = os.environ.get("EPICS_HOST_ARCH")
    if not arch:
        arch = subprocess.run(
            ["perl", str(epics_base() / "lib" / "perl" / "EpicsHostArch.pl")],
            check=True, capture_output=True, text=True).stdout.strip()
    return arch


def base_tool(name):
    path = epics_base() / "bin" / host_arch() / name
    if not path.exists():
        raise HarnessError("%s not found in EPICS Base (%s)" % (name, path))
    return str(path)


def module_tool(name):
    path = TOP / "bin" / host_arch() / name
    if not path.exists():
        raise HarnessError("%s not built (%s): run make at the top" % (name, path))
    return str(path)


def ca_environment(extra=None):
    """The caller's environment with every CA setting forced to loopback;
    then extra (a value None removes the variable)."""
    env = dict(os.environ)
    for key in REMOVED_ENV:
        env.pop(key, None)
    env.update(LOOPBACK_ENV)
    return with_env(env, extra)


def with_env(env, extra):
    """env updated by extra; a value None removes that variable."""
    for key, value in (extra or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


# ---------------------------------------------------------------- ports

def _port_free(port):
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


_ports = itertools.count(20000)


def free_port():
    """A loopback TCP+UDP port not used before in this test run."""
    for port in _ports:
        if port > 60000:
            break
        if _port_free(port):
            return port
    raise HarnessError("no free loopback port left")


# ---------------------------------------------------------------- CA search

def ca_search(name, port, host="127.0.0.1", timeout=0.5, source=None):
    """Send one UDP name search; True when a server answers that it has name.

    source: the loopback address the search comes from (e.g. "127.0.0.2",
    for DENY FROM rules); default the kernel's choice (127.0.0.1)."""
    payload = name.encode() + b"\0"
    payload += b"\0" * (-len(payload) % 8)
    message = struct.pack(">HHHHII", CA_PROTO_VERSION, 0, 0, CA_MINOR_VERSION, 0, 0)
    message += struct.pack(">HHHHII", CA_PROTO_SEARCH, len(payload), DO_REPLY,
                           CA_MINOR_VERSION, 1, 1) + payload
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        if source:
            s.bind((source, 0))
        s.settimeout(timeout)
        s.sendto(message, (host, port))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data, _ = s.recvfrom(4096)
            except socket.timeout:
                return False
            for command, p2 in _headers(data):
                if command == CA_PROTO_SEARCH and p2 == 1:
                    return True
                if command == CA_PROTO_NOT_FOUND:
                    return False
    return False


def _headers(data):
    offset = 0
    while offset + 16 <= len(data):
        command, size, _, _, _, p2 = struct.unpack_from(">HHHHII", data, offset)
        yield command, p2
        offset += 16 + size


def udp_port_bound(port):
    """True when some socket of this namespace is bound to UDP port."""
    wanted = ":%04X" % port
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        if line.split()[1].endswith(wanted):
            return True
    return False


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise HarnessError("timed out after %.1f s waiting for %s" % (timeout, what))


# ---------------------------------------------------------------- processes

class Process:
    """One child process with its output in a log file; stopped by PID."""

    def __init__(self, name, argv, env, log_dir, cwd=None):
        require_private_namespace()
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = Path(log_dir) / (name + ".log")
        self._log = open(self.log_path, "w")
        self.expect_clean_exit = True
        self.popen = subprocess.Popen(self.argv, env=env, cwd=cwd, stdin=subprocess.PIPE,
                                      stdout=self._log, stderr=subprocess.STDOUT,
                                      text=True, start_new_session=True)
        self.pid = self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def log(self):
        return self.log_path.read_text(errors="replace")

    def tail(self, lines=30):
        return "\n".join(self.log().splitlines()[-lines:])

    def sanitizer_reports(self):
        return sanitizer_reports(self.log())

    def _graceful(self):
        """How this kind of process is asked to stop; False when it cannot be."""
        return False

    def kill(self):
        """Kill the process at once (a test simulating a crash); no clean exit expected."""
        self.expect_clean_exit = False
        if self.alive():
            self.popen.kill()
            self.popen.wait()

    def stop(self, timeout=5.0):
        """Stop the process (politely, then SIGTERM, then SIGKILL); its exit code."""
        if self.alive() and self._graceful():
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if not self.alive():
                break
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        if self.popen.stdin:
            try:
                self.popen.stdin.close()
            except OSError:
                pass
        self._log.close()
        return self.popen.returncode


class Ioc(Process):
    """An IOC process reading iocsh commands from its stdin."""

    _markers = itertools.count(1)

    def __init__(self, name, argv, env, log_dir, port, cwd=None):
        super().__init__(name, argv, env, log_dir, cwd)
        self.port = port

    def command(self, line, timeout=10.0):
        """Run one iocsh command; return what it printed."""
        marker = "GW-HARNESS-MARK-%d" % next(self._markers)
        start = len(self.log())
        self.popen.stdin.write("%s\necho %s\n" % (line, marker))
        self.popen.stdin.flush()
        wait_for(lambda: marker in self.log()[start:] or not self.alive(), timeout,
                 "%s to run %r" % (self.name, line))
        if not self.alive():
            raise HarnessError("%s exited while running %r:\n%s" % (self.name, line, self.tail()))
        text = self.log()[start:]
        return text[:text.index(marker)]

    def _graceful(self):
        try:
            self.popen.stdin.write("exit\n")
            self.popen.stdin.flush()
            return True
        except (BrokenPipeError, ValueError, OSError):
            return False

    def client_env(self):
        """CA client settings that reach this IOC (and only it)."""
        return {"EPICS_CA_ADDR_LIST": "127.0.0.1:%d" % self.port,
                "EPICS_CA_AUTO_ADDR_LIST": "NO"}


def _expand_macros(text, macros):
    def one(m):
        name, equals, default = m.group(1).partition("=")
        if name in macros:
            return macros[name]
        return default if equals else m.group(0)
    return re.sub(r"\$\(([^)]*)\)", one, text)


def first_record(db_path, macros):
    text = _expand_macros(Path(db_path).read_text(), macros)
    m = re.search(r'record\s*\(\s*\w+\s*,\s*"([^"]+)"', text)
    if not m:
        raise HarnessError("no record in %s" % db_path)
    return m.group(1)


def _macro_string(macros):
    return ",".join("%s=%s" % kv for kv in sorted(macros.items()))


class Harness:
    """What one test starts; everything is stopped at the end of the test."""

    def __init__(self, log_dir):
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.processes = []
        self._names = itertools.count(1)
        self.client_reports = []    # sanitizer SUMMARY lines of run() programs

    def _name(self, kind):
        return "%s%d" % (kind, next(self._names))

    def softioc(self, *dbs, port=None, ready_pv=None, timeout=15.0, extra_env=None,
                host=None, address="127.0.0.1"):
        """Start Base's softIoc serving the given (db file, macros) pairs.

        Each db is a path, or a (path, {macro: value}) pair. Returns when a
        CA search for ready_pv (default: the first record) is answered.
        port: a given port (e.g. the port of a softIoc the test stopped, to
        restart it where clients and gateways look for it); default a fresh
        one. extra_env: more environment (e.g. EPICS_CA_MAX_ARRAY_BYTES; a
        value None removes a variable). host: a gwhosts.Host to run on
        (then ready when its shell runs, after iocInit). address: the
        loopback address it serves on (EPICS_CAS_INTF_ADDR_LIST), e.g.
        127.0.0.2."""
        require_private_namespace()
        port = port or free_port()
        argv = [base_tool("softIoc")]
        records = []
        for db in dbs:
            path, macros = (db, {}) if isinstance(db, (str, Path)) else db
            if macros:
                argv += ["-m", _macro_string(macros)]
            argv += ["-d", str(path)]
            records.append(first_record(path, macros))
        env = with_env(ca_environment({"EPICS_CAS_SERVER_PORT": str(port),
                                       "EPICS_CAS_INTF_ADDR_LIST": address}), extra_env)
        ioc = Ioc(self._name("softIoc"), host.argv(argv) if host else argv, env,
                  self.log_dir, port)
        self.processes.append(ioc)
        if host:
            ioc.command("", timeout)
            return ioc
        pv = ready_pv or records[0]
        self._wait_answering(ioc, pv, timeout, address)
        return ioc

    def write(self, name, text):
        """Write a file (a pvlist, an access file) next to the test's logs;
        its absolute path."""
        path = self.log_dir / name
        path.write_text(text)
        return path

    def gateway(self, commands_after_init=(), commands_before_init=(), records=(),
                port=None, timeout=15.0, extra_env=None, access=ALLOW_ALL_ACF, pvlist=None,
                host=None):
        """Start the gateway IOC with a generated st.cmd.

        records: (db path, macros) pairs loaded before iocInit. The IOC's own
        RSRV listens on `port`. Returns when the st.cmd has run.
        access: the IOC's access security file, set with asSetFilename
        before iocInit (and before commands_before_init): by default
        test/db/allow-all.acf (everyone reads and writes); None: no access
        file, so the gateway is read-only for every client; a path: that
        file. pvlist: a pvlist loaded with gwLoadPvList before iocInit
        (None: none, every name is served). host: a gwhosts.Host to run on."""
        require_private_namespace()
        port = port or free_port()
        lines = ['dbLoadDatabase "%s"' % (TOP / "dbd" / "gatewayIoc.dbd"),
                 "gatewayIoc_registerRecordDeviceDriver pdbbase"]
        for db in records:
            path, macros = (db, {}) if isinstance(db, (str, Path)) else db
            lines.append('dbLoadRecords "%s", "%s"' % (path, _macro_string(macros)))
        if access is not None:
            lines.append('asSetFilename "%s"' % access)
        if pvlist is not None:
            lines.append('gwLoadPvList "%s"' % pvlist)
        lines += list(commands_before_init) + ["iocInit"] + list(commands_after_init)
        ready = "GW-HARNESS-STARTED"
        lines.append("echo %s" % ready)
        name = self._name("gateway")
        stcmd = self.log_dir / (name + ".cmd")
        stcmd.write_text("\n".join(lines) + "\n")
        env = with_env(ca_environment({"EPICS_CAS_SERVER_PORT": str(port)}), extra_env)
        argv = [module_tool("gateway"), stcmd]
        ioc = Ioc(name, host.argv(argv) if host else argv, env, self.log_dir, port)
        self.processes.append(ioc)
        wait_for(lambda: ready in ioc.log() or not ioc.alive(), timeout,
                 "%s to run its st.cmd" % name)
        if not ioc.alive():
            raise HarnessError("%s exited during start-up:\n%s" % (name, ioc.tail()))
        return ioc

    def gateway_server(self, options="", records=(), sport=None, extra_env=None,
                       commands_before_init=(), timeout=15.0, access=ALLOW_ALL_ACF,
                       pvlist=None, commands_after_start=(), host=None, sip="127.0.0.1"):
        """Start the gateway IOC and its CA server (the gateway proper).

        Runs gwStart("-sip 127.0.0.1 -sport <sport> <options>") after
        iocInit; options are the classic ones (-cip, -cport, timeouts,
        -archive, -ro, -putlog, ...). access: as for gateway() (the default
        lets everyone write). pvlist: given to gwStart as -pvlist.
        commands_after_start: iocsh commands run after gwStart. Returns the
        Ioc once the server listens, with `server_port` set; clients reach
        it with server_env(server_port). host: a gwhosts.Host to run on;
        sip: the -sip list."""
        sport = sport or free_port()
        if pvlist is not None:
            options = "-pvlist %s %s" % (pvlist, options)
        start = 'gwStart("-sip %s -sport %d %s")' % (sip, sport, options)
        ioc = self.gateway(commands_after_init=[start] + list(commands_after_start),
                           records=records, commands_before_init=commands_before_init,
                           timeout=timeout, extra_env=extra_env, access=access, host=host)
        ioc.server_port = sport
        listening = host.tcp_listening if host else tcp_listening
        wait_for(lambda: listening(sport) or not ioc.alive(), timeout,
                 "%s to serve on TCP port %d" % (ioc.name, sport))
        if not ioc.alive():
            raise HarnessError("%s exited during start-up:\n%s" % (ioc.name, ioc.tail()))
        return ioc

    def log_server(self, received):
        """Start Base's iocLogServer writing what it receives to the file
        received; its port. It only stops on a signal (no clean exit)."""
        port = free_port()
        server = Process(self._name("iocLogServer"), [base_tool("iocLogServer")],
                         ca_environment({"EPICS_IOC_LOG_PORT": str(port),
                                         "EPICS_IOC_LOG_FILE_NAME": str(received)}),
                         self.log_dir)
        server.expect_clean_exit = False
        self.processes.append(server)
        wait_for(lambda: tcp_listening(port), 10, "iocLogServer to listen")
        return port

    def _wait_answering(self, ioc, pv, timeout, address="127.0.0.1"):
        def answering():
            if not ioc.alive():
                raise HarnessError("%s exited during start-up:\n%s" % (ioc.name, ioc.tail()))
            return ca_search(pv, ioc.port, host=address, timeout=0.2)
        wait_for(answering, timeout, "%s to answer a search for %s" % (ioc.name, pv))

    def client_env(self, *iocs, extra=None):
        """Environment for a CA client that reaches the given IOCs."""
        env = ca_environment({
            "EPICS_CA_ADDR_LIST": " ".join("127.0.0.1:%d" % i.port for i in iocs),
            "EPICS_CA_AUTO_ADDR_LIST": "NO"})
        env.update(extra or {})
        return env

    def run(self, argv, env, timeout=30.0, host=None):
        """Run a client program to completion (bounded in time); on host
        (a gwhosts.Host) when given."""
        require_private_namespace()
        program = Path(str(argv[0])).name
        argv = host.argv(argv) if host else [str(a) for a in argv]
        result = subprocess.run(argv, env=env, capture_output=True,
                                text=True, timeout=timeout)
        for line in sanitizer_reports(result.stderr):
            self.client_reports.append("%s: %s" % (program, line))
        return result

    def caget(self, env, *pvs, args=(), timeout=30.0, host=None):
        return self.run([base_tool("caget"), "-w", "5", *args, *pvs], env, timeout, host)

    def stop_all(self):
        """Stop every process, newest first; what went wrong: the ones that
        did not exit cleanly (exit code 0 on request) although they were
        expected to, and every sanitizer report of a process (killed ones
        too) or of a program run()."""
        unclean = []
        for proc in reversed(self.processes):
            code = proc.stop()
            if proc.expect_clean_exit and code != 0:
                unclean.append("%s exited with %s" % (proc.name, code))
            unclean += ["%s: %s" % (proc.name, line) for line in proc.sanitizer_reports()]
        unclean += self.client_reports
        return unclean

    def logs(self, lines=40):
        return "\n".join("---- %s (%s) ----\n%s" % (p.name, " ".join(map(shlex.quote, p.argv)),
                                                    p.tail(lines))
                         for p in self.processes)


def tcp_listening(port, host="127.0.0.1"):
    """True when a TCP connection to host:port is accepted."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def server_env(port, extra=None):
    """CA client environment that reaches only the server on port (e.g. the
    gateway's own server, not the IOC's RSRV)."""
    env = ca_environment({"EPICS_CA_ADDR_LIST": "127.0.0.1:%d" % port,
                          "EPICS_CA_AUTO_ADDR_LIST": "NO"})
    env.update(extra or {})
    return env


# ---------------------------------------------------------------- IOC reports

UPSTREAM_LINE = re.compile(
    r"upstream: (?P<total>\d+) PVs: (?P<connecting>\d+) connecting, (?P<active>\d+) active, "
    r"(?P<inactive>\d+) inactive, (?P<disconnected>\d+) disconnected, (?P<dead>\d+) dead")
UPSTREAM_STATES = ("connecting", "active", "inactive", "disconnected", "dead")


def upstream_counts(gateway):
    """The PV counts of `gwReport 1`: {"total": N, "connecting": C, ...}."""
    text = gateway.command("gwReport 1")
    m = UPSTREAM_LINE.search(text)
    if not m:
        raise HarnessError("no upstream line in gwReport 1:\n%s" % text)
    return {key: int(value) for key, value in m.groupdict().items()}


def upstream_states(gateway):
    """{PV name: state word} from the per-PV lines of `gwReport 2`."""
    states = {}
    for line in gateway.command("gwReport 2").splitlines():
        words = line.split()
        if line.startswith("  ") and not line.startswith("   ") and len(words) >= 2 \
                and words[1] in UPSTREAM_STATES:
            states[words[0]] = words[1]
    return states


def event_subscriptions(ioc, record):
    """The number of event subscriptions on a record of ioc (`dbel`)."""
    text = ioc.command("dbel %s" % record)
    if "No PV event subscriptions" in text:
        return 0
    m = re.search(r"(\d+) PV Event Subscriptions", text)
    if not m:
        raise HarnessError("unexpected dbel output:\n%s" % text)
    return int(m.group(1))


def rss_kib(pid):
    """Resident set size of a process in KiB (VmRSS)."""
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise HarnessError("no VmRSS for pid %d" % pid)


# ---------------------------------------------------------------- leftovers

def _proc_table():
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        table[int(entry.name)] = (int(fields[1]), fields[0], comm)
    return table


def descendants(root=None):
    """[(pid, state, command name)] of every process below root (default: us)."""
    root = root or os.getpid()
    table = _proc_table()
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, state, comm) in table.items():
            if ppid == parent:
                found.append((pid, state, comm))
                frontier.append(pid)
    return found


def reap_zombies():
    for pid, state, _ in descendants():
        if state == "Z":
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass


def leftover_processes(allowed=()):
    """Live processes below us other than the allowed PIDs."""
    reap_zombies()
    return [(pid, comm) for pid, state, comm in descendants()
            if pid not in allowed and state != "Z"]


def kill_processes(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    time.sleep(0.05)
    reap_zombies()
