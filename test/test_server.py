"""The gateway's own CA server serving the IOC's records (issue 4):
gwStart before and after iocInit, clients through it, conflicts with the
IOC's RSRV, gwStop, search over TCP."""
import socket

import gwharness

DEMO_DB = gwharness.TOP / "db" / "demo.db"


def start_gateway(harness, before_init=False, port=None, extra_commands=()):
    """A gateway IOC serving demo.db (P=gw:) through the new server."""
    port = port or gwharness.free_port()
    start = 'gwStart("-sip 127.0.0.1 -sport %d")' % port
    kwargs = {"commands_before_init": [start]} if before_init else \
             {"commands_after_init": [start]}
    kwargs.setdefault("commands_after_init", [])
    kwargs["commands_after_init"] = list(kwargs["commands_after_init"]) + list(extra_commands)
    ioc = harness.gateway(records=[(DEMO_DB, {"P": "gw:"})], **kwargs)
    return ioc, port


def server_env(harness, port, extra=None):
    env = gwharness.ca_environment({"EPICS_CA_ADDR_LIST": "127.0.0.1:%d" % port,
                                    "EPICS_CA_AUTO_ADDR_LIST": "NO"})
    env.update(extra or {})
    return env


def test_gwstart_after_iocinit_serves_the_iocs_records(harness):
    ioc, port = start_gateway(harness)
    assert "serving Channel Access on TCP port %d" % port in ioc.log()
    result = harness.caget(server_env(harness, port), "-t", "gw:name", "gw:setpoint")
    assert result.returncode == 0, result.stderr + ioc.tail()
    assert result.stdout.split() == ["gw:", "42.5"]


def test_gwstart_before_iocinit_starts_when_the_ioc_runs(harness):
    ioc, port = start_gateway(harness, before_init=True)
    assert "will start when the IOC runs" in ioc.log()
    result = harness.caget(server_env(harness, port), "-t", "gw:name")
    assert result.returncode == 0, result.stderr + ioc.tail()
    assert result.stdout.strip() == "gw:"


def test_caput_with_and_without_callback_writes_through_the_server(harness):
    ioc, port = start_gateway(harness)
    env = server_env(harness, port)
    caput = gwharness.base_tool("caput")
    plain = harness.run([caput, "-t", "gw:setpoint", "7.25"], env)
    assert plain.returncode == 0, plain.stderr
    assert "7.25" in ioc.command("dbgf gw:setpoint")
    callback = harness.run([caput, "-c", "-t", "gw:setpoint", "8.5"], env)
    assert callback.returncode == 0, callback.stderr
    assert "8.5" in ioc.command("dbgf gw:setpoint")


def test_camonitor_sees_updates_through_the_server(harness):
    ioc, port = start_gateway(harness)
    camonitor = gwharness.base_tool("camonitor")
    result = harness.run(["timeout", "-s", "INT", "3.5", camonitor, "-t", "n", "gw:counter"],
                         server_env(harness, port))
    lines = [line for line in result.stdout.splitlines() if line.startswith("gw:counter")]
    assert len(lines) >= 3, result.stdout + result.stderr
    values = [float(line.split()[1]) for line in lines]
    assert values == sorted(values)


def test_gwstart_on_the_port_of_the_iocs_rsrv_says_so_and_starts_nothing(harness):
    ioc = harness.gateway(records=[(DEMO_DB, {"P": "gw:"})])
    output = ioc.command('gwStart("-sip 127.0.0.1 -sport %d")' % ioc.port)
    assert "RSRV" in output and "did not start" in output, output
    assert "not running" in ioc.command("gwReport 0")


def test_gwstop_closes_the_server_and_gwstart_works_again(harness):
    ioc, port = start_gateway(harness)
    ioc.command("gwStop")
    assert "not running" in ioc.command("gwReport 0")
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # the port is free again
    ioc.command('gwStart("-sip 127.0.0.1 -sport %d")' % port)
    result = harness.caget(server_env(harness, port), "-t", "gw:name")
    assert result.returncode == 0, result.stderr + ioc.tail()


def test_search_over_tcp_for_a_client_with_name_servers(harness):
    ioc, port = start_gateway(harness)
    env = server_env(harness, port, {"EPICS_CA_ADDR_LIST": "",
                                     "EPICS_CA_NAME_SERVERS": "127.0.0.1:%d" % port})
    result = harness.caget(env, "-t", "gw:name")
    assert result.returncode == 0, result.stderr + ioc.tail()
    assert result.stdout.strip() == "gw:"


def test_unknown_names_are_not_found(harness):
    ioc, port = start_gateway(harness)
    assert not gwharness.ca_search("no:such:pv", port)
    assert gwharness.ca_search("gw:name", port)


def test_gwstart_with_a_bad_option_names_it_and_prints_the_usage(harness):
    ioc = harness.gateway()
    output = ioc.command('gwStart("-sport 70000")')
    assert "-sport" in output and "70000" in output, output
    assert "usage: gwStart" in output and "-signore" in output, output
    output = ioc.command('gwStart("-nosuch 1")')
    assert "unknown option '-nosuch'" in output, output
    assert "not running" in ioc.command("gwReport 0")


def test_the_iocs_server_report_includes_the_gateway_and_its_clients(harness):
    ioc, port = start_gateway(harness)
    camonitor = gwharness.base_tool("camonitor")
    monitor = harness.run(["timeout", "-s", "INT", "2", camonitor, "gw:counter"],
                          server_env(harness, port), timeout=30)
    assert "gw:counter" in monitor.stdout, monitor.stderr
    report = ioc.command("dbsr 1")
    assert "Server 'gateway'" in report and "TCP port %d" % port in report, report


def test_iocpause_pauses_the_server_and_iocrun_resumes_it(harness):
    """As RSRV: while the IOC is paused no search is answered and no new
    client is served; iocRun serves them again."""
    ioc, port = start_gateway(harness)
    assert gwharness.ca_search("gw:name", port)
    ioc.command("iocPause")
    assert "(paused)" in ioc.command("gwReport 0")
    assert not gwharness.ca_search("gw:name", port, timeout=1.0)
    paused = harness.caget(server_env(harness, port), "-t", "gw:name", args=("-w", "1"))
    assert paused.returncode != 0 and "gw:" not in paused.stdout, paused.stdout
    ioc.command("iocRun")
    assert "(paused)" not in ioc.command("gwReport 0")
    gwharness.wait_for(lambda: gwharness.ca_search("gw:name", port), 5.0,
                       "the gateway to answer searches again")
    result = harness.caget(server_env(harness, port), "-t", "gw:name")
    assert result.returncode == 0, result.stderr + ioc.tail()
    assert result.stdout.strip() == "gw:"
