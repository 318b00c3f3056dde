"""The classic command line: `gateway [options]` (issue 17).

What it proves, each with real processes in the test namespace:
  1. The Users Guide's typical command line (`-log gateway.log -cip -sip
     -server -archive -no_cache`, with addresses written in) starts a
     gateway that serves the upstream IOC's PVs and its own statistics
     records under the host name; its log is stamped.
  2. -cport without -sport: the server listens on the upstream port, as the
     Users Guide warns; -sport keeps them apart.
  3. Server mode: a gateway killed with SIGKILL is followed by a new one
     that serves within 5 s; the eleventh end within the window stops the
     supervisor (exit status 1; the window shortened with the test-only
     GATEWAY_TEST_RESTART_WINDOW), ends spread wider than the window do
     not; quitFlag restarts the gateway, quitServerFlag ends both (exit 0);
     SIGUSR1/SIGUSR2 to the supervisor reach the gateway.
  4. gateway.killer stops the gateway (the supervisor in server mode);
     gateway.restart restarts it, in server mode and without.
  5. -uid/-gid: the gateway runs as that user and group, after binding a
     port only root may bind, and still makes new upstream channels.
  6. -log: every line stamped; server mode renames the previous log and put
     log at each start; without -server the log is appended to; SIGTERM
     ends the gateway with exit status 0 and says so.
  7. -home and GATEWAY_HOME (the option wins), -prefix, -debug 50.
  8. -help, -version: exit 0; a bad command line: one line, the usage,
     exit status 2, nothing started.
  9. The options shared with gwStart take effect from the command line:
     -pvlist, -access, -ro, -signore, -connect_timeout/-dead_timeout,
     -command/-report (SIGUSR1, SIGUSR2), -putlog, -caputlog (Base's
     iocLogServer receives the put), -reconnect_inhibit (beacon anomalies
     of reconnecting PVs counted on the beacon port), -io_threads.
"""
import os
import re
import select
import signal
import socket
import stat
import time
from pathlib import Path

import pytest

import gwharness
from gwharness import HarnessError, wait_for

WRITABLE_DB = gwharness.TOP / "test" / "db" / "writable.db"

# Sanitizer builds start processes several times slower.
SLOW = any(k in os.environ for k in ("ASAN_OPTIONS", "TSAN_OPTIONS"))
START_TIMEOUT = 60.0 if SLOW else 20.0

STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} ")
OLD_NAME = re.compile(r"^(?P<base>.+)\.\d{8}-\d{6}(-\d+)?$")

TRAPWRITE_ACF = """ASG(DEFAULT) {
    RULE(1, READ)
    RULE(1, WRITE, TRAPWRITE)
}
"""


# ---------------------------------------------------------------- harness

class CommandLine(gwharness.Process):
    """`bin/<arch>/gateway <args>` started in `home`, with the processes it
    forks (supervisor's gateways, the log writer) stopped with it."""

    def __init__(self, harness, args, home, extra_env=None, log_file=None):
        argv = [gwharness.module_tool("gateway")] + [str(a) for a in args]
        env = gwharness.with_env(gwharness.ca_environment(), extra_env)
        super().__init__(harness._name("cmdline"), argv, env, harness.log_dir, cwd=home)
        harness.processes.append(self)
        self.home = Path(home)
        self.log_file = log_file            # -log's file, searched for sanitizer reports
        self.family = set()

    def track(self):
        """Remember every process below this one (they may change)."""
        self.family |= {pid for pid, state, _ in gwharness.descendants(self.pid) if state != "Z"}

    def sanitizer_reports(self):
        found = super().sanitizer_reports()
        if self.log_file:
            for path in self.home.glob(self.log_file + "*"):
                found += gwharness.sanitizer_reports(path.read_text(errors="replace"))
        return found

    def stop(self, timeout=15.0):
        if self.alive():
            self.track()
        code = super().stop(timeout)
        wait_gone(self.family, timeout)
        return code


def alive(pid):
    gwharness.reap_zombies()
    try:
        state = Path("/proc/%d/stat" % pid).read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2] != "Z"


def wait_gone(pids, timeout):
    """Wait for the processes to end; kill the ones that do not."""
    pids = set(pids)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.05)
    left = [p for p in pids if alive(p)]
    gwharness.kill_processes(left)
    return left


def start_files(home):
    """{'gateway': pid, 'supervisor': pid or None} from gateway.killer."""
    text = (Path(home) / "gateway.killer").read_text()
    gateway = re.search(r"^# gateway pid +(\d+)$", text, re.M)
    supervisor = re.search(r"^# supervisor pid +(\d+) \(server mode\)$", text, re.M)
    return {"gateway": int(gateway.group(1)),
            "supervisor": int(supervisor.group(1)) if supervisor else None}


def wait_start_files(home, timeout=START_TIMEOUT):
    """start_files(home) once gateway.killer is written (after iocInit: the
    server may answer a moment before)."""
    found = {}

    def written():
        try:
            found.update(start_files(home))
        except (OSError, AttributeError):
            return False
        return True
    wait_for(written, timeout, "gateway.killer in %s" % home)
    return found


def serving(port, name):
    return gwharness.ca_search(name, port, timeout=0.3)


def wait_serving(port, name, proc=None, timeout=START_TIMEOUT):
    def ready():
        if proc is not None and not proc.alive():
            raise HarnessError("%s exited (%s):\n%s" % (proc.name, proc.popen.returncode,
                                                        proc.tail()))
        return serving(port, name)
    wait_for(ready, timeout, "a gateway to answer a search for %s on port %d" % (name, port))


def wait_new_gateway(home, old_pid, timeout=START_TIMEOUT):
    """The pid of the gateway that replaced old_pid (gateway.killer rewritten)."""
    found = {}

    def replaced():
        try:
            pid = start_files(home)["gateway"]
        except (OSError, AttributeError):
            return False
        if pid != old_pid and alive(pid):
            found["pid"] = pid
            return True
        return False
    wait_for(replaced, timeout, "a new gateway in place of pid %d" % old_pid)
    return found["pid"]


def caget_value(harness, port, pv):
    result = harness.caget(gwharness.server_env(port), pv, args=("-t",))
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip()


def caput(harness, port, pv, value):
    return harness.run([gwharness.base_tool("caput"), "-w", "5", pv, str(value)],
                       gwharness.server_env(port))


def upstream(harness, prefix="up:"):
    return harness.softioc((WRITABLE_DB, {"P": prefix}))


def home_dir(harness, name="home"):
    home = harness.log_dir / name
    home.mkdir()
    return home


def server_mode(harness, upstream_ioc, home, more=(), prefix="gwt", extra_env=None,
                log="gateway.log"):
    """A -server gateway on a fresh port; (process, port, first gateway pid)."""
    port = gwharness.free_port()
    args = ["-server", "-cip", "127.0.0.1:%d" % upstream_ioc.port, "-sip", "127.0.0.1",
            "-sport", port, "-prefix", prefix, "-access", gwharness.ALLOW_ALL_ACF]
    if log:
        args += ["-log", log]
    proc = CommandLine(harness, args + list(more), home, extra_env, log_file=log)
    wait_serving(port, prefix + ":vctotal", proc)
    files = wait_start_files(home)
    assert files["supervisor"] == proc.pid, files
    proc.track()
    return proc, port, files["gateway"]


def all_logs(home, name="gateway.log"):
    """The log and every renamed earlier log (server mode renames it at each
    start, after writing how the previous gateway ended), oldest first."""
    paths = sorted(p for p in Path(home).iterdir()
                   if OLD_NAME.match(p.name) and OLD_NAME.match(p.name).group("base") == name)
    return "".join(p.read_text() for p in paths + [Path(home) / name])


def wait_exit(proc, timeout):
    try:
        return proc.popen.wait(timeout)
    except Exception:
        raise HarnessError("%s did not end in %g s:\n%s" % (proc.name, timeout, proc.tail()))


# ---------------------------------------------------------------- 1. the typical line

def test_the_users_guide_typical_line_serves_with_a_supervisor_and_a_stamped_log(harness):
    up = upstream(harness)
    home = home_dir(harness)
    port = gwharness.free_port()
    # The guide's line, its addresses written in; the port from the
    # environment, as a site's script may set it.
    args = ["-log", "gateway.log", "-cip", "127.0.0.1:%d" % up.port, "-sip", "127.0.0.1",
            "-server", "-archive", "-no_cache"]
    proc = CommandLine(harness, args, home, {"EPICS_CAS_SERVER_PORT": str(port)},
                       log_file="gateway.log")
    host = socket.gethostname()
    wait_serving(port, "up:ao", proc)
    assert caget_value(harness, port, "up:ao") == "1.5"
    # -prefix defaults to the host name
    assert float(caget_value(harness, port, host + ":vctotal")) >= 0
    files = wait_start_files(home)
    assert files["supervisor"] == proc.pid and alive(files["gateway"]), files
    killer = (home / "gateway.killer").read_text()
    assert "# prefix           %s" % host in killer
    assert "'-archive' '-no_cache'" in killer
    log = (home / "gateway.log").read_text()
    lines = [l for l in log.splitlines() if l]
    assert lines and all(STAMP.match(l) for l in lines), log
    assert "the supervisor (pid %d) started the gateway pid %d" % (proc.pid, files["gateway"]) \
        in log, log
    assert "iocRun: All initialization complete" in log, log
    # Nothing goes to the terminal once the log is open.
    assert proc.log().strip() == "", proc.log()


# ---------------------------------------------------------------- 2. -cport and -sport

def test_cport_without_sport_serves_on_the_upstream_port_and_sport_keeps_them_apart(harness):
    up = harness.softioc((WRITABLE_DB, {"P": "up:"}), address="127.0.0.2")
    port = up.port
    home = home_dir(harness)
    same = CommandLine(harness, ["-cip", "127.0.0.2", "-cport", port, "-sip", "127.0.0.1",
                                 "-prefix", "gwa"], home)
    # the gateway's server took the upstream port (on its own interface)
    wait_serving(port, "gwa:vctotal", same)
    assert caget_value(harness, port, "up:ao") == "1.5"
    assert wait_start_files(home)["gateway"] == same.pid
    assert "# server port      %d" % port in (home / "gateway.killer").read_text()
    assert same.stop() == 0
    other = gwharness.free_port()
    apart = CommandLine(harness, ["-cip", "127.0.0.2", "-cport", port, "-sip", "127.0.0.1",
                                  "-sport", other, "-prefix", "gwb"], home)
    wait_serving(other, "gwb:vctotal", apart)
    assert caget_value(harness, other, "up:ao") == "1.5"
    assert not gwharness.tcp_listening(port), "-sport given, yet the upstream port is served"
    assert not serving(port, "up:ao")


# ---------------------------------------------------------------- 3. server mode

def test_server_mode_replaces_a_killed_gateway_within_5_s(harness):
    up = upstream(harness)
    home = home_dir(harness)
    proc, port, first = server_mode(harness, up, home)
    os.kill(first, signal.SIGKILL)
    killed = time.monotonic()
    wait_for(lambda: not serving(port, "up:ao"), 10, "the killed gateway to stop answering")
    second = wait_new_gateway(home, first, timeout=30 if SLOW else 5)
    wait_serving(port, "up:ao", proc, timeout=30 if SLOW else max(0.1, 5 - (time.monotonic()
                                                                            - killed)))
    print("a new gateway served %.2f s after the kill" % (time.monotonic() - killed))
    assert caget_value(harness, port, "up:ao") == "1.5"
    assert second != first and start_files(home)["supervisor"] == proc.pid
    log = all_logs(home)
    assert "gateway: pid %d was killed by signal 9" % first in log, log
    assert "the supervisor (pid %d) started the gateway pid %d" % (proc.pid, second) in log


def kill_and_replace(home, pid):
    os.kill(pid, signal.SIGKILL)
    return wait_new_gateway(home, pid)


def test_the_eleventh_end_within_the_window_stops_the_supervisor(harness):
    up = upstream(harness)
    home = home_dir(harness)
    proc, port, pid = server_mode(harness, up, home,
                                  extra_env={"GATEWAY_TEST_RESTART_WINDOW": "600"})
    for end in range(1, 11):
        pid = kill_and_replace(home, pid)
        assert proc.alive(), "the supervisor ended after %d ends" % end
    wait_serving(port, "up:ao", proc)
    os.kill(pid, signal.SIGKILL)
    assert wait_exit(proc, 30) == 1
    proc.expect_clean_exit = False      # its exit status 1 is the point
    assert not alive(pid) and not serving(port, "up:ao")
    log = all_logs(home)
    assert "gateway: 11 ends within 600 s; the supervisor stops" in log, log
    assert log.count("the supervisor (pid %d) started the gateway pid" % proc.pid) == 11


def test_ends_spread_wider_than_the_window_do_not_stop_the_supervisor(harness):
    up = upstream(harness)
    home = home_dir(harness)
    # A window of 1 s: a gateway lives longer than that between two kills.
    proc, port, pid = server_mode(harness, up, home,
                                  extra_env={"GATEWAY_TEST_RESTART_WINDOW": "1"})
    for _ in range(12):
        pid = kill_and_replace(home, pid)
        time.sleep(1.1)
    assert proc.alive()
    wait_serving(port, "up:ao", proc)
    assert "the supervisor stops" not in all_logs(home)


def test_quitflag_restarts_the_gateway_and_quitserverflag_ends_both(harness):
    up = upstream(harness)
    home = home_dir(harness)
    proc, port, first = server_mode(harness, up, home)
    result = caput(harness, port, "gwt:quitFlag", 1)
    assert result.returncode == 0, result.stdout + result.stderr
    second = wait_new_gateway(home, first)
    wait_serving(port, "gwt:vctotal", proc)
    log = all_logs(home)
    assert "gateway: pid %d exited with status 0" % first in log, log
    result = caput(harness, port, "gwt:quitServerFlag", 1)
    assert result.returncode == 0, result.stdout + result.stderr
    assert wait_exit(proc, 30) == 0
    wait_gone([second], 10)
    log = all_logs(home)
    assert "gateway: pid %d exited with status 3" % second in log, log
    assert "quitServerFlag: the supervisor ends too" in log, log
    assert not serving(port, "gwt:vctotal")


def test_usr1_and_usr2_to_the_supervisor_reach_the_gateway(harness):
    up = upstream(harness)
    home = home_dir(harness)
    (home / "gateway.command").write_text("R1\n")
    proc, port, pid = server_mode(harness, up, home)
    report = home / "gateway.report"
    os.kill(proc.pid, signal.SIGUSR1)
    wait_for(lambda: report.exists() and "report 1: virtual connections" in report.read_text(),
             10, "report 1 in gateway.report")
    os.kill(proc.pid, signal.SIGUSR2)
    wait_for(lambda: "report 2: process variables" in report.read_text(), 10,
             "report 2 in gateway.report")
    assert start_files(home)["gateway"] == pid and proc.alive()


# ---------------------------------------------------------------- 4. killer and restart

def run_script(harness, home, name):
    result = harness.run(["sh", str(home / name)], gwharness.ca_environment(), timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_killer_and_restart_in_server_mode(harness):
    up = upstream(harness)
    home = home_dir(harness)
    proc, port, first = server_mode(harness, up, home)
    for name in ("gateway.killer", "gateway.restart"):
        mode = (home / name).stat().st_mode
        assert mode & stat.S_IXUSR, "%s is not executable" % name
    killer = (home / "gateway.killer").read_text()
    commands = [l for l in killer.splitlines() if l and not l.startswith("#")]
    assert commands == ["kill %d" % proc.pid], killer
    assert "# kill -USR1 %d" % first in killer and "# kill -USR2 %d" % first in killer
    run_script(harness, home, "gateway.restart")
    second = wait_new_gateway(home, first)
    wait_serving(port, "up:ao", proc)
    assert proc.alive() and not alive(first)
    run_script(harness, home, "gateway.killer")
    assert wait_exit(proc, 30) == 0
    wait_gone([second], 10)
    assert not alive(second) and not serving(port, "up:ao")


def test_killer_and_restart_without_server_mode(harness):
    up = upstream(harness)
    home = home_dir(harness)
    port = gwharness.free_port()
    proc = CommandLine(harness, ["-cip", "127.0.0.1:%d" % up.port, "-sip", "127.0.0.1",
                                 "-sport", port, "-prefix", "gwt"], home)
    wait_serving(port, "up:ao", proc)
    files = wait_start_files(home)
    assert files == {"gateway": proc.pid, "supervisor": None}
    killer = (home / "gateway.killer").read_text()
    assert [l for l in killer.splitlines() if l and not l.startswith("#")] == \
        ["kill %d" % proc.pid], killer
    run_script(harness, home, "gateway.restart")
    assert wait_exit(proc, 30) == 0
    new = wait_new_gateway(home, proc.pid)
    try:
        wait_serving(port, "up:ao")
        assert caget_value(harness, port, "up:ao") == "1.5"
        run_script(harness, home, "gateway.killer")
        wait_for(lambda: not alive(new), 30, "gateway.killer to end pid %d" % new)
    finally:
        assert wait_gone([new], 15) == [], "gateway.killer did not end pid %d" % new
    assert not serving(port, "up:ao")


# ---------------------------------------------------------------- 5. -uid, -gid

def ids(pid, field):
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        if line.startswith(field + ":"):
            return [int(x) for x in line.split()[1:]]
    raise HarnessError("no %s in /proc/%d/status" % (field, pid))


@pytest.mark.skipif(os.geteuid() != 0, reason="-uid/-gid need root (CI runs as root)")
def test_uid_and_gid_are_taken_after_a_root_only_port_is_bound(harness):
    up = upstream(harness)
    up2 = upstream(harness, "up2:")
    home = home_dir(harness)
    home.chmod(0o777)
    port = 1023         # below 1024: only root binds it
    # LeakSanitizer's report at exit runs as uid 65534, which cannot read
    # EPICS Base's libraries under /root to name their frames, so the
    # suppressions of Base's own leaks (test/lsan.supp) do not match: no
    # leak check for this process (every other test checks the same code).
    extra = {"ASAN_OPTIONS": os.environ["ASAN_OPTIONS"] + ":detect_leaks=0"} \
        if "ASAN_OPTIONS" in os.environ else None
    proc = CommandLine(harness, ["-cip", "127.0.0.1:%d 127.0.0.1:%d" % (up.port, up2.port),
                                 "-sip", "127.0.0.1", "-sport", port, "-prefix", "gwt",
                                 "-uid", "65534", "-gid", "65534", "-log", "gateway.log"],
                       home, extra, log_file="gateway.log")
    wait_serving(port, "up:ao", proc)
    wait_for(lambda: "now running as uid 65534 gid 65534" in (home / "gateway.log").read_text(),
             10, "the gateway to say it changed user")
    assert ids(proc.pid, "Uid") == [65534] * 4
    assert ids(proc.pid, "Gid") == [65534] * 4
    # a new upstream IOC (new libca threads) after the change
    assert caget_value(harness, port, "up2:ao") == "1.5"
    assert caget_value(harness, port, "up:ao") == "1.5"
    assert caget_value(harness, port, "gwt:vctotal")


def test_an_unknown_user_is_refused_before_anything_starts(harness):
    home = home_dir(harness)
    result = harness.run([gwharness.module_tool("gateway"), "-uid", "no-such-user-here",
                          "-sport", gwharness.free_port()], gwharness.ca_environment())
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.splitlines()[0].startswith("gateway: -uid"), result.stderr
    assert not (home / "gateway.killer").exists()


# ---------------------------------------------------------------- 6. -log

def put_logged(harness, port, value):
    result = caput(harness, port, "up:ao", value)
    assert result.returncode == 0, result.stdout + result.stderr


def test_server_mode_renames_the_previous_log_and_put_log_at_each_start(harness):
    up = upstream(harness)
    home = home_dir(harness)
    acf = harness.write("trap.acf", TRAPWRITE_ACF)
    (home / "gateway.log").write_text("a log of an earlier run\n")
    proc, port, first = server_mode(harness, up, home,
                                    more=["-access", acf, "-putlog", "gateway.putlog"])
    put_logged(harness, port, 7)
    putlog = home / "gateway.putlog"
    wait_for(lambda: putlog.exists() and "up:ao" in putlog.read_text(), 10, "the put log line")
    os.kill(first, signal.SIGKILL)
    wait_new_gateway(home, first)
    wait_serving(port, "up:ao", proc)

    def old(base):
        return sorted(p for p in home.iterdir() if OLD_NAME.match(p.name)
                      and OLD_NAME.match(p.name).group("base") == base)
    logs, putlogs = old("gateway.log"), old("gateway.putlog")
    # the log of the earlier run (renamed at the first start), then the first gateway's
    assert len(logs) == 2, [p.name for p in home.iterdir()]
    texts = [p.read_text() for p in logs]
    assert any(t == "a log of an earlier run\n" for t in texts), texts
    first_log = [t for t in texts if t != "a log of an earlier run\n"][0]
    assert "started the gateway pid %d" % first in first_log
    assert len(putlogs) == 1 and "up:ao" in putlogs[0].read_text()
    current = (home / "gateway.log").read_text()
    assert any("gateway: the previous log is %s\n" % p.name in current for p in logs), current
    assert "the previous put log is" in current, current
    assert "started the gateway pid %d" % first not in current
    assert all(STAMP.match(l) for l in current.splitlines() if l), current


def test_log_without_server_mode_appends_and_sigterm_ends_cleanly(harness):
    up = upstream(harness)
    home = home_dir(harness)
    (home / "gateway.log").write_text("kept line\n")
    port = gwharness.free_port()
    proc = CommandLine(harness, ["-cip", "127.0.0.1:%d" % up.port, "-sip", "127.0.0.1",
                                 "-sport", port, "-prefix", "gwt", "-log", "gateway.log"],
                       home, log_file="gateway.log")
    wait_serving(port, "up:ao", proc)
    proc.track()
    writers = [pid for pid, _, comm in gwharness.descendants(proc.pid) if comm == "gateway-log"]
    assert len(writers) == 1, gwharness.descendants(proc.pid)
    proc.popen.send_signal(signal.SIGTERM)
    assert wait_exit(proc, 30) == 0
    assert wait_gone(writers, 10) == [], "the log writer did not end"
    text = (home / "gateway.log").read_text()
    assert text.startswith("kept line\n"), text
    rest = [l for l in text.splitlines()[1:] if l]
    assert rest and all(STAMP.match(l) for l in rest), text
    assert "gateway: ended by signal 15" in text, text
    assert not [p for p in home.iterdir() if OLD_NAME.match(p.name)]
    assert proc.log().strip() == "", proc.log()


# ---------------------------------------------------------------- 7. home, prefix, debug

def test_home_and_gateway_home_and_the_option_wins(harness):
    up = upstream(harness)
    env_home, opt_home, start = (home_dir(harness, n) for n in ("envhome", "opthome", "start"))
    for home in (env_home, opt_home):
        (home / "gw.pvlist").write_text("up:.*  ALLOW\n")
    port = gwharness.free_port()
    args = ["-cip", "127.0.0.1:%d" % up.port, "-sip", "127.0.0.1", "-sport", port,
            "-prefix", "gwh", "-pvlist", "gw.pvlist"]
    proc = CommandLine(harness, args, start, {"GATEWAY_HOME": str(env_home)})
    wait_serving(port, "up:ao", proc)
    assert not serving(port, "gwh:vctotal"), "the pvlist in GATEWAY_HOME was not read"
    wait_start_files(env_home)
    assert not (start / "gateway.killer").exists()
    assert "# home             %s" % env_home in (env_home / "gateway.killer").read_text()
    assert proc.stop() == 0
    (opt_home / "gw.pvlist").write_text("gwh:.*  ALLOW\n")
    proc = CommandLine(harness, args + ["-home", opt_home], start,
                       {"GATEWAY_HOME": str(env_home)})
    wait_serving(port, "gwh:vctotal", proc)
    assert not serving(port, "up:ao")
    assert wait_start_files(opt_home)["gateway"] == proc.pid
    assert start_files(env_home)["gateway"] != proc.pid


def test_debug_50_prints_the_name_searches(harness):
    up = upstream(harness)
    home = home_dir(harness)
    port = gwharness.free_port()
    proc = CommandLine(harness, ["-cip", "127.0.0.1:%d" % up.port, "-sip", "127.0.0.1",
                                 "-sport", port, "-prefix", "gwt", "-debug", "50",
                                 "-log", "gateway.log"], home, log_file="gateway.log")
    wait_serving(port, "up:ao", proc)
    assert caget_value(harness, port, "up:ao") == "1.5"
    wait_for(lambda: re.search(r"search for up:ao", (home / "gateway.log").read_text()), 10,
             "a debug line for the search of up:ao")
    quiet = home_dir(harness, "quiet")
    port2 = gwharness.free_port()
    proc2 = CommandLine(harness, ["-cip", "127.0.0.1:%d" % up.port, "-sip", "127.0.0.1",
                                  "-sport", port2, "-prefix", "gwq", "-log", "gateway.log"],
                        quiet, log_file="gateway.log")
    wait_serving(port2, "up:ao", proc2)
    assert caget_value(harness, port2, "up:ao") == "1.5"
    time.sleep(0.5)
    assert "search for up:ao" not in (quiet / "gateway.log").read_text()


# ---------------------------------------------------------------- 8. help, version, refusals

def test_help_and_version_exit_0(harness):
    gateway = gwharness.module_tool("gateway")
    help_ = harness.run([gateway, "-help"], gwharness.ca_environment())
    assert help_.returncode == 0 and help_.stdout.startswith("usage: gateway [options]")
    for option in ("-debug", "-log", "-home", "-server", "-prefix", "-uid", "-gid", "-cip",
                   "-sport", "-cport", "-ro", "-caputlog", "-no_cache", "-archive"):
        assert re.search(r"^\s+%s\b" % option, help_.stdout, re.M), option
    version = harness.run([gateway, "-version"], gwharness.ca_environment())
    assert version.returncode == 0
    assert re.match(r"EPICS CA gateway \d+\.\d+\.\d+ ", version.stdout), version.stdout


@pytest.mark.parametrize("args, reason", [
    (["-bogus"], "unknown option '-bogus'"),
    (["-sport", "99999"], "-sport"),
    (["-connect_timeout", "soon"], "-connect_timeout"),
    (["-mask", "vx"], "-mask"),
    (["-cip"], "-cip"),
    (["-home", "/no/such/directory"], "-home"),
    (["-gid", "no-such-group-here"], "-gid"),
    (["-prefix", ""], "-prefix"),
    (["-sip", "127.0.0.1", "stray"], "stray"),
])
def test_a_bad_command_line_says_why_shows_the_usage_and_exits_2(harness, args, reason):
    home = home_dir(harness)
    result = harness.run([gwharness.module_tool("gateway")] + args, gwharness.ca_environment())
    assert result.returncode == 2, (args, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert lines[0].startswith("gateway: ") and reason in lines[0], lines[0]
    assert lines[1].startswith("usage: gateway [options]"), result.stderr
    assert result.stdout == ""
    assert not (home / "gateway.killer").exists()


# ---------------------------------------------------------------- 9. gwStart's options

def test_gwstart_options_take_effect_from_the_command_line(harness):
    up = upstream(harness)
    home = home_dir(harness)
    (home / "gw.pvlist").write_text(".*  ALLOW\nup:secret  DENY\n")
    (home / "gw.command").write_text("R3\n")
    port = gwharness.free_port()
    proc = CommandLine(harness, [
        "-cip", "127.0.0.1:%d" % up.port, "-sip", "127.0.0.1", "-sport", port,
        "-prefix", "gwo", "-pvlist", "gw.pvlist", "-access", gwharness.ALLOW_ALL_ACF, "-ro",
        "-signore", "127.0.0.2", "-connect_timeout", "0.5", "-dead_timeout", "2",
        "-inactive_timeout", "3", "-disconnect_timeout", "3", "-reconnect_inhibit", "2",
        "-mask", "val", "-archive", "-no_cache", "-command", "gw.command",
        "-report", "gw.report", "-io_threads", "3"], home)
    wait_serving(port, "up:ao", proc)
    # -io_threads: the server's I/O threads
    names = sorted(p.read_text().strip() for p in Path("/proc/%d/task" % proc.pid).glob("*/comm"))
    assert [n for n in names if n.startswith("gwIo")] == ["gwIo0", "gwIo1", "gwIo2"], names
    # -pvlist
    assert not serving(port, "up:secret")
    # -signore: searches from 127.0.0.2 are dropped, from 127.0.0.1 answered
    assert not gwharness.ca_search("up:ao", port, source="127.0.0.2")
    assert gwharness.ca_search("up:ao", port, source="127.0.0.1")
    # -ro over an access file that lets everyone write
    result = caput(harness, port, "up:ao", 5)
    assert "Write access denied" in result.stdout + result.stderr
    assert caget_value(harness, port, "up:ao") == "1.5"
    # -connect_timeout and -dead_timeout: a missing name is dead, then gone
    harness.caget(gwharness.server_env(port), "up:missing", args=("-w", "1"))
    wait_for(lambda: float(caget_value(harness, port, "gwo:dead")) == 1, 10,
             "the missing name to be dead")
    wait_for(lambda: float(caget_value(harness, port, "gwo:dead")) == 0, 15,
             "the dead PV to be dropped after the dead timeout")
    # -command, -report: SIGUSR1 runs the command file into the report file
    os.kill(proc.pid, signal.SIGUSR1)
    report = home / "gw.report"
    wait_for(lambda: report.exists() and "report 3: access security" in report.read_text(), 10,
             "report 3 in gw.report")
    os.kill(proc.pid, signal.SIGUSR2)
    wait_for(lambda: "report 2: process variables" in report.read_text(), 10,
             "report 2 in gw.report")


def test_putlog_and_caputlog_from_the_command_line(harness):
    up = upstream(harness)
    home = home_dir(harness)
    acf = harness.write("trap.acf", TRAPWRITE_ACF)
    received = harness.log_dir / "iocLogServer.log"
    log_port = harness.log_server(received)
    port = gwharness.free_port()
    proc = CommandLine(harness, ["-cip", "127.0.0.1:%d" % up.port, "-sip", "127.0.0.1",
                                 "-sport", port, "-prefix", "gwp", "-access", acf,
                                 "-putlog", "gw.putlog",
                                 "-caputlog", "127.0.0.1:%d" % log_port], home)
    wait_serving(port, "up:ao", proc)
    put_logged(harness, port, 42)
    putlog = home / "gw.putlog"
    wait_for(lambda: putlog.exists() and re.search(r"up:ao.*42", putlog.read_text()), 10,
             "the put in gw.putlog")
    wait_for(lambda: received.exists() and re.search(r"up:ao new=42 ", received.read_text()),
             20, "the log server to receive the put")


# ---------------------------------------------------------------- -reconnect_inhibit

CA_PROTO_RSRV_IS_UP = 13


def beacon_socket(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("", port))
    s.setblocking(False)
    return s


def beacons(sock, seconds):
    """The number of beacons that come to sock within the next seconds."""
    count, deadline = 0, time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return count
        ready, _, _ = select.select([sock], [], [], left)
        if ready:
            data = sock.recv(4096)
            if len(data) >= 16 and int.from_bytes(data[0:2], "big") == CA_PROTO_RSRV_IS_UP:
                count += 1


def test_reconnect_inhibit_limits_the_beacon_anomalies_of_reconnecting_pvs(harness):
    # Two gateways on one upstream IOC, each with its own beacon port: one
    # may send a beacon anomaly once per 600 s, the other once per second.
    # A fast beacon sequence (0.02 s doubling) after a reconnect is the
    # anomaly; without one, beacons come seconds apart.
    up = upstream(harness)
    gateways = {}
    for inhibit in ("600", "1"):
        home = home_dir(harness, "inhibit" + inhibit)
        port, beacon_port = gwharness.free_port(), gwharness.free_port()
        sock = beacon_socket(beacon_port)
        proc = CommandLine(harness, ["-cip", "127.0.0.1:%d" % up.port, "-sip", "127.0.0.1",
                                     "-sport", port, "-prefix", "gw" + inhibit,
                                     "-reconnect_inhibit", inhibit], home,
                           {"EPICS_CAS_BEACON_PORT": str(beacon_port)})
        wait_serving(port, "up:ao", proc)
        assert caget_value(harness, port, "up:ao") == "1.5"
        gateways[inhibit] = (proc, port, sock)
    try:
        time.sleep(4)           # the start-up sequence slows to seconds apart
        counts = []
        for restart in (1, 2):
            for _, _, sock in gateways.values():
                beacons(sock, 0)            # drop what came before
            up.stop()
            up = harness.softioc((WRITABLE_DB, {"P": "up:"}), port=up.port)
            window = {k: beacons(sock, 3.0) for k, (_, _, sock) in gateways.items()}
            for _, port, _ in gateways.values():
                assert caget_value(harness, port, "up:ao") == "1.5"
            counts.append(window)
            time.sleep(2)
        print("beacons in the 3 s after each upstream restart: %s" % counts)
        # the first reconnect: both send the anomaly
        assert counts[0]["600"] >= 6 and counts[0]["1"] >= 6, counts
        # the second, 5 s later: only the gateway whose inhibit time is over
        assert counts[1]["1"] >= 6, counts
        assert counts[1]["600"] <= 3, counts
    finally:
        for _, _, sock in gateways.values():
            sock.close()
