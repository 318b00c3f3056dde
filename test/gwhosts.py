"""gwhosts - test "hosts": network namespaces joined by a veth pair.

A test that needs several machines (a client on host B searching an IOC on
host A by unicast) gets them from `make_hosts`: each host is a network
namespace of its own, held by a bounded `sleep` process, with loopback up
and one veth address on the test subnet 10.64.16.0/24. The namespaces are
made inside the private namespace of `scripts/netns run`, so nothing they
send can reach a real interface; they disappear when their holder stops.

No file is made (no `ip netns add`, no /run/netns): a process runs on a
host through `nsenter --net=/proc/<holder>/ns/net`, which keeps its PID,
so the harness stops it by PID as usual.
"""
import os
import subprocess
import time

import gwharness

SUBNET = "10.64.16"
PREFIX = 24
BROADCAST = SUBNET + ".255"


class Host:
    """One test host: a network namespace with one veth address."""

    def __init__(self, name, address, holder):
        self.name = name
        self.address = address
        self.holder = holder          # subprocess.Popen of the namespace's holder

    def argv(self, argv):
        """argv run on this host (nsenter execs it: the PID is the program's)."""
        return ["nsenter", "--net=/proc/%d/ns/net" % self.holder.pid, "--"] + \
            [str(a) for a in argv]

    def sh(self, *argv, check=True):
        """Run a short command (ip, ss) on this host; its stdout."""
        result = subprocess.run(self.argv(argv), capture_output=True, text=True,
                                timeout=10)
        if check and result.returncode != 0:
            raise gwharness.HarnessError("%s on %s: %s" % (" ".join(argv), self.name,
                                                          result.stderr.strip()))
        return result.stdout

    def tcp_listening(self, port):
        """True when a TCP socket of this host listens on port."""
        return bool(self.sh("ss", "-Hltn", "sport = :%d" % port).strip())

    def tcp_peers(self):
        """[(remote address, remote port)] of the established TCP connections."""
        peers = []
        for line in self.sh("ss", "-Htn", "state", "established").splitlines():
            words = line.split()
            if len(words) >= 4:
                address, _, port = words[-1].rpartition(":")
                peers.append((address, int(port)))
        return peers

    def stop(self):
        if self.holder.poll() is None:
            self.holder.kill()
        self.holder.wait()


def _holder():
    # unshare execs sleep: /proc/<pid>/ns/net is the new namespace. The
    # sleep bounds the namespace's life if the test process dies.
    popen = subprocess.Popen(["unshare", "--net", "--", "sleep", "900"],
                             stdin=subprocess.DEVNULL)
    own = "/proc/self/ns/net"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if os.readlink("/proc/%d/ns/net" % popen.pid) != os.readlink(own):
                return popen
        except OSError:
            pass
        time.sleep(0.01)
    popen.kill()
    popen.wait()
    raise gwharness.HarnessError("the namespace holder did not start")


def make_hosts(count=2):
    """count hosts (A = 10.64.16.1, B = .2, ...), all on one bridge-less
    subnet: with two hosts a veth pair joins them; more are not needed yet."""
    if count != 2:
        raise gwharness.HarnessError("make_hosts makes two hosts")
    gwharness.require_private_namespace()
    hosts = []
    try:
        for index, name in enumerate(("hostA", "hostB"), start=1):
            hosts.append(Host(name, "%s.%d" % (SUBNET, index), _holder()))
        a, b = hosts
        tag = str(a.holder.pid)
        va, vb = "gwa" + tag, "gwb" + tag
        subprocess.run(["ip", "link", "add", va, "type", "veth", "peer", "name", vb],
                       check=True, timeout=10)
        subprocess.run(["ip", "link", "set", va, "netns", str(a.holder.pid)], check=True,
                       timeout=10)
        subprocess.run(["ip", "link", "set", vb, "netns", str(b.holder.pid)], check=True,
                       timeout=10)
        for host, dev in ((a, va), (b, vb)):
            host.device = dev
            host.sh("ip", "link", "set", "lo", "up")
            host.sh("ip", "addr", "add", "%s/%d" % (host.address, PREFIX),
                    "broadcast", BROADCAST, "dev", dev)
            host.sh("ip", "link", "set", dev, "up")
        return hosts
    except Exception:
        for host in hosts:
            host.stop()
        raise
