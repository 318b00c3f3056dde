"""Base's own CA test clients, acctst and catime, pass against a writable
record served by the gateway's CA server (not the IOC's RSRV).

acctst stops half-way with "Please force test channel to disconnect." and
waits: the test then restarts the gateway IOC on the same server port, so
the channel disconnects and reconnects, and acctst goes on to the end."""
import time

import pytest

import gwharness

WRITABLE_DB = gwharness.TOP / "test" / "db" / "writable.db"
PV = "tool:ao"
# acctst itself takes about 3 minutes (two fixed 30 s waits, 2000 contexts
# made and destroyed); more on a sanitizer build. A bound, not a measure.
ACCTST_TIMEOUT = 480.0
DISCONNECT_PROMPT = "Please force test channel to disconnect."
# What libCom prints when a check of acctst fails (the thread then suspends).
ASSERT_FAILED = "A call to 'assert("


def start_gateway(harness, port):
    """A gateway IOC serving writable.db on its own CA server at port."""
    ioc = harness.gateway(records=[(WRITABLE_DB, {"P": "tool:"})],
                          commands_after_init=['gwStart("-sip 127.0.0.1 -sport %d")' % port])
    assert "serving Channel Access on TCP port %d" % port in ioc.log(), ioc.tail()
    gwharness.wait_for(lambda: gwharness.ca_search(PV, port, timeout=0.2), 15,
                       "the gateway's server to answer for %s" % PV)
    return ioc


def server_env(port):
    """Only the gateway's server: the IOC's RSRV is on another port."""
    return gwharness.ca_environment({"EPICS_CA_ADDR_LIST": "127.0.0.1:%d" % port,
                                     "EPICS_CA_AUTO_ADDR_LIST": "NO"})


def wait_for_output(process, text, deadline):
    """Wait until process prints text (True), or fails a check, exits or
    runs out of time (False)."""
    while time.monotonic() < deadline:
        log = process.log()
        if text in log or ASSERT_FAILED in log or not process.alive():
            return text in log
        time.sleep(0.1)
    return False


def wait_for_exit(process, deadline):
    """Wait until process exits (True), or fails a check or runs out of
    time (False; a failed check suspends acctst instead of exiting)."""
    while time.monotonic() < deadline:
        if not process.alive():
            return True
        if ASSERT_FAILED in process.log():
            return False
        time.sleep(0.1)
    return False


@pytest.mark.timeout(ACCTST_TIMEOUT + 60)
def test_acctst_passes_through_the_server_and_survives_a_gateway_restart(harness):
    port = gwharness.free_port()
    first = start_gateway(harness, port)
    deadline = time.monotonic() + ACCTST_TIMEOUT
    # acctst <pv> <progress level> <channels> <repetitions> <preemptive callback>
    acctst = gwharness.Process("acctst", [gwharness.base_tool("acctst"), PV, 2, 200, 1, 0],
                               server_env(port), harness.log_dir)
    harness.processes.append(acctst)
    assert wait_for_output(acctst, DISCONNECT_PROMPT, deadline), \
        "acctst never asked for a disconnect:\n" + acctst.tail()
    assert first.stop() == 0, "the first gateway IOC did not exit cleanly:\n" + first.tail()
    start_gateway(harness, port)
    exited = wait_for_exit(acctst, deadline)
    output = acctst.log()
    print(output[-3000:])
    assert exited, "acctst failed a check or did not finish in %.0f s:\n%s" % (
        ACCTST_TIMEOUT, acctst.tail(60))
    assert acctst.popen.returncode == 0, acctst.tail(60)
    assert "Test Complete" in output


def test_catime_runs_to_completion_through_the_server(harness):
    port = gwharness.free_port()
    start_gateway(harness, port)
    result = harness.run([gwharness.base_tool("catime"), PV, 1000], server_env(port),
                         timeout=120)
    print(result.stdout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
