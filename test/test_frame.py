"""Smoke tests of the module frame and of the test harness itself."""
import subprocess
import sys

import gwharness

DEMO_DB = gwharness.TOP / "db" / "demo.db"


def test_two_softiocs_on_different_ports_each_answer_a_client(harness):
    first = harness.softioc((DEMO_DB, {"P": "first:"}))
    second = harness.softioc((DEMO_DB, {"P": "second:"}))
    assert first.port != second.port

    result = harness.caget(harness.client_env(first, second), "-t", "first:name", "second:name")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["first:", "second:"]

    assert not gwharness.ca_search("second:name", first.port), "each IOC serves only its own"
    assert gwharness.ca_search("second:name", second.port)


def test_softioc_answers_iocsh_commands_and_writes(harness):
    ioc = harness.softioc((DEMO_DB, {"P": "demo:"}))
    env = harness.client_env(ioc)
    put = harness.run([gwharness.base_tool("caput"), "-t", "demo:setpoint", "12.5"], env)
    assert put.returncode == 0, put.stderr
    assert "12.5" in ioc.command("dbgf demo:setpoint")


def test_gateway_ioc_runs_gwVersion_and_exits_cleanly(harness):
    gateway = harness.gateway(commands_after_init=["gwVersion"])
    banner = "EPICS CA gateway 0.1.0 (built against EPICS Base"
    assert banner in gateway.log()
    assert banner in gateway.command("gwVersion")
    assert gateway.stop() == 0, gateway.tail()


def test_gateway_ioc_serves_its_own_records_through_rsrv(harness):
    gateway = harness.gateway(records=[(DEMO_DB, {"P": "gw:"})])
    result = harness.caget(harness.client_env(gateway), "-t", "gw:name")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "gw:"


NESTED_WITH_VETH = ("ip link set lo up && ip link add gwtest0 type veth peer name gwtest1 && ")


def _in_nested_namespace(command):
    return subprocess.run(["unshare", "--net", "sh", "-c", NESTED_WITH_VETH + command],
                          capture_output=True, text=True, timeout=60)


def test_netns_check_passes_inside_the_private_namespace():
    result = subprocess.run([str(gwharness.NETNS), "check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_netns_check_refuses_a_namespace_with_another_interface():
    result = _in_nested_namespace("exec %s check" % gwharness.NETNS)
    assert result.returncode == 1
    assert "refusing" in result.stderr and "gwtest0" in result.stderr


def test_harness_refuses_to_run_tests_outside_a_private_namespace():
    result = _in_nested_namespace("cd %s && exec %s -m pytest -p no:cacheprovider -q %s"
                                  % (gwharness.TOP / "test", sys.executable, __file__))
    assert result.returncode == 3, result.stdout + result.stderr
    assert "refusing to run CA processes" in result.stdout + result.stderr


def test_leftover_check_finds_orphaned_processes():
    subprocess.run(["sh", "-c", "exec sleep 60 >/dev/null 2>&1 &"], check=True)

    def orphans():
        return [pid for pid, comm in gwharness.leftover_processes() if comm == "sleep"]
    gwharness.wait_for(orphans, 5, "the orphaned sleep to show up")
    gwharness.kill_processes(orphans())
    assert not orphans()
