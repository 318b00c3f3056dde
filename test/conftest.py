"""pytest fixtures of the integration tests (see gwharness.py).

- The whole run refuses to start outside a private network namespace.
- `ca_repeater` (session): the harness's own caRepeater, so CA clients do not
  spawn one that outlives them.
- `harness` (per test): starts softIocs, gateway IOCs and clients, and stops
  them by PID when the test ends, passed or failed; prints their logs when
  the test failed; fails the test when one of them did not exit cleanly
  (exit code 0 when asked to stop: sanitizer reports make it non-zero), and
  when a sanitizer report (its SUMMARY line) is in the output of any of
  them, or of a program the test ran, whether or not it stopped the process.
- After every test, no process started during it may still be alive.
"""
import pytest

import gwharness


def pytest_configure(config):
    try:
        gwharness.require_private_namespace()
    except gwharness.HarnessError as e:
        pytest.exit(str(e), returncode=3)
    gwharness.become_subreaper()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, "report_" + report.when, report)


@pytest.fixture(scope="session")
def ca_repeater(tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("caRepeater")
    repeater = gwharness.Process("caRepeater", [gwharness.base_tool("caRepeater")],
                                 gwharness.ca_environment(), log_dir)
    port = int(gwharness.LOOPBACK_ENV["EPICS_CA_REPEATER_PORT"])
    gwharness.wait_for(lambda: gwharness.udp_port_bound(port), 10, "caRepeater")
    yield repeater
    repeater.stop()


@pytest.fixture(autouse=True)
def no_leftover_processes(ca_repeater):
    allowed = {ca_repeater.pid}
    before = {pid for pid, _ in gwharness.leftover_processes(allowed)}
    yield
    left = [(pid, comm) for pid, comm in gwharness.leftover_processes(allowed)
            if pid not in before]
    if left:
        gwharness.kill_processes(pid for pid, _ in left)
        pytest.fail("test left processes behind (now killed): %s"
                    % ", ".join("%s[%d]" % (comm, pid) for pid, comm in left))


@pytest.fixture
def harness(request, tmp_path, ca_repeater):
    h = gwharness.Harness(tmp_path / "logs")
    yield h
    unclean = h.stop_all()
    report = getattr(request.node, "report_call", None)
    if unclean or (report is not None and report.failed):
        print("\nlogs of the processes this test started:\n" + h.logs())
    if unclean:
        pytest.fail("; ".join(unclean))


@pytest.fixture
def hosts(harness, tmp_path):
    """Two test hosts (gwhosts): A = 10.64.16.1 and B = 10.64.16.2, each
    with its own caRepeater; gone when the test ends."""
    import gwhosts
    pair = gwhosts.make_hosts()
    repeaters = []
    try:
        for host in pair:
            repeaters.append(gwharness.Process(
                "caRepeater-" + host.name, host.argv([gwharness.base_tool("caRepeater")]),
                gwharness.ca_environment(), tmp_path))
        yield pair
    finally:
        for repeater in repeaters:
            repeater.stop()
        for host in pair:
            host.stop()
