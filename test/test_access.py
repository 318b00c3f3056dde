"""Who may see and do what (issue 14): the pvlist, access security, put
logging, reloads, the policy probe and the check mode.

Every test starts a softIoc with test/db/access.db upstream (records acc:*,
each with a value of its own) and a gateway in front of it
(gwStart("-sip 127.0.0.1 -sport P -cip 127.0.0.1 -cport <softIoc> ...")),
then talks to the gateway's server as clients do:

- searches from chosen loopback source addresses (127.0.0.1, .2, .3: DENY
  FROM rules match the searching client's address), one datagram for many
  names (rawca.search_found);
- rawca.Client: a raw CA client that says any user and host name
  (CLIENT_NAME / HOST_NAME) and connects from any loopback address, and
  keeps every ACCESS_RIGHTS and SERVER_DISCONN the server sends, so a
  change of rights on an open channel is seen as it arrives;
- Base's caput and pyepics, which send this machine's host name and the
  user's login name (used where the host group is this host's own name).

The IOC's values are read with dbgf upstream, to prove that a refused put
never reached the IOC.

Timing: there is none in the assertions. A name the rules refuse is
searched for again for a few seconds (while the names the rules serve are
found) so that a refusal is not mistaken for an upstream search still
under way.
"""
import collections
import os
import pwd
import re
import socket
import time

import pytest

import gwharness
import rawca
import test_upstream as upstream

ACCESS_DB = gwharness.TOP / "test" / "db" / "access.db"
P = "acc:"
L1, L2, L3 = "127.0.0.1", "127.0.0.2", "127.0.0.3"
READ, WRITE = rawca.RIGHT_READ, rawca.RIGHT_READ | rawca.RIGHT_WRITE
NONE = 0

# This machine's host name and user, as libca (caput, pyepics) sends them.
THIS_HOST = socket.gethostname().lower()
THIS_USER = pwd.getpwuid(os.geteuid()).pw_name

field_value = upstream.field_value
wait_until = upstream.wait_until


# ---------------------------------------------------------------- set-up

def start_softioc(harness):
    return harness.softioc((ACCESS_DB, {"P": P}))


def start_gateway(harness, softioc, options="", pvlist=None, acf=gwharness.ALLOW_ALL_ACF,
                  **kwargs):
    """A gateway in front of softioc. pvlist: file text or None; acf: file
    text, a path, or None (no access file)."""
    if isinstance(pvlist, str):
        pvlist = harness.write("gateway.pvlist", pvlist)
    if isinstance(acf, str):
        acf = harness.write("gateway.acf", acf)
    return harness.gateway_server(upstream.upstream_options(softioc, options), pvlist=pvlist,
                                  access=acf, **kwargs)


class GatewayClient(rawca.Client):
    """A raw client of the gateway that searches for a name (from its own
    source address) before it asks for a channel, as libca does: the
    gateway answers a CREATE_CHAN for a name it has not found upstream yet
    with CREATE_CH_FAIL."""

    def __init__(self, gateway, user, host, source):
        super().__init__(gateway.server_port, user=user, host=host, source=source)
        self.source = source

    def create(self, name, search=True):
        if search:
            found(self.port, name, self.source, timeout=5.0)
        return super().create(name)


def client(gateway, user="tester", host="opi-test", source=None):
    return GatewayClient(gateway, user, host, source)


def found(gateway, name, source=None, timeout=15.0):
    """Wait until the gateway (or the server on that UDP port) answers a
    search for name (it may look for it upstream first); True, or False
    after timeout."""
    port = gateway if isinstance(gateway, int) else gateway.server_port
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if name in rawca.search_found(port, [name], source, wait=0.2):
            return True
    return False


def refused(gateway, name, source=None, settle=2.0):
    """True when no search for name is answered for `settle` seconds (long
    enough for a name the gateway serves to be found upstream)."""
    deadline = time.monotonic() + settle
    while time.monotonic() < deadline:
        if name in rawca.search_found(gateway.server_port, [name], source, wait=0.2):
            return False
    return True


def upstream_value(softioc, record):
    return float(field_value(softioc, record))


def caput(harness, gateway, pv, value):
    return harness.run([gwharness.base_tool("caput"), "-w", "5", pv, str(value)],
                       upstream.gateway_env(gateway))


def output_of(ioc, command):
    """What an iocsh command printed (the errors included)."""
    return ioc.command(command)


# ---------------------------------------------------------------- 1. the pvlist table

MISSING = "(no such record upstream)"   # allowed by the rules, no IOC has it

Case = collections.namedtuple("Case", "name source real why")

PVLIST_A = r"""# pvlist A (test_access.py): no EVALUATION ORDER line, so ALLOW, DENY.
# General rules first: within each list the last matching line wins.
acc:.*                      ALLOW
al:(ai|ao)([0-9])           ALIAS acc:\1\2
al:swap:([0-9]):([a-z]+)    Alias acc:\2:\1
al:ai1                      alias acc:ai2
ord:(.*)                    ALIAS acc:\1
ord:ai.*                    ALLOW
acc:secret:.*               DENY
acc:secret:open             Allow
acc:ai[0-9]+                Deny From 127.0.0.2
acc:ai[45]                  DENY FROM 127.0.0.3, 127.0.0.2
acc:lab:.*                  deny from localhost
acc:pub:a|acc:pub:b         DENY
acc:ao                      DENY
ao1                         DENY
acc:mixed                   DENY
"""

CASES_A = [
    Case("acc:ai1", L1, "acc:ai1", "allowed by acc:.*"),
    Case("acc:ai1", L2, None, "DENY FROM 127.0.0.2"),
    Case("acc:ai1", L3, "acc:ai1", "DENY FROM lists other hosts"),
    Case("acc:ai12", L2, None, "acc:ai[0-9]+ DENY FROM 127.0.0.2"),
    Case("acc:ai12", L3, "acc:ai12", "acc:ai[45] is anchored: not acc:ai12"),
    Case("acc:ai4", L1, "acc:ai4", "DENY FROM lists other hosts"),
    Case("acc:ai4", L2, None, "DENY FROM, first line listing .2"),
    Case("acc:ai4", L3, None, "DENY FROM, second host of a line"),
    Case("acc:ai5", L3, None, "DENY FROM, hosts separated by a comma"),
    Case("acc:lab:x", L1, None, "DENY FROM localhost: resolved to 127.0.0.1 at load"),
    Case("acc:lab:x", L2, "acc:lab:x", "DENY FROM localhost, from another address"),
    Case("acc:secret:a", L1, None, "DENY"),
    Case("acc:secret:open", L1, None, "ALLOW, DENY: a DENY wins over a later ALLOW"),
    Case("acc:pub:a", L1, None, "alternation, first branch"),
    Case("acc:pub:b", L1, None, "alternation, second branch"),
    Case("acc:pub:aa", L1, "acc:pub:aa", "the alternation is anchored as a whole"),
    Case("acc:ao1", L1, "acc:ao1", "acc:ao and ao1 match parts of the name only"),
    Case("acc:Mixed", L1, "acc:Mixed", "patterns are case-sensitive: acc:mixed"),
    Case("xacc:ai1", L1, None, "no rule: acc:.* is anchored at the start"),
    Case("al:ai3", L1, "acc:ai3", "ALIAS with two groups"),
    Case("al:ao2", L1, "acc:ao2", "ALIAS with two groups"),
    Case("al:ai1", L1, "acc:ai2", "bottom-up: the later al:ai1 line wins"),
    Case("al:ai12", L1, None, "no rule: the alias pattern is anchored at the end"),
    Case("al:swap:1:one", L1, "acc:one:1", "ALIAS with the groups swapped"),
    Case("al:swap:2:two", L1, "acc:two:2", "ALIAS with the groups swapped"),
    Case("ord:ao1", L1, "acc:ao1", "ALIAS with the whole rest of the name"),
    Case("ord:ai1", L1, MISSING, "bottom-up: ord:ai.* ALLOW (below the alias) wins"),
    Case("al:ai3", L2, "acc:ai3", "DENY FROM matches the client's name, not the real one"),
]

PVLIST_B = r"""# pvlist B (test_access.py): DENY, ALLOW; inverted patterns; the
# synonyms of ALLOW.
EVALUATION ORDER DENY, ALLOW
!acc:(ai|ctl|secret).*      ALLOW
acc:secret:.*               DENY
acc:secret:open             ALLOW
acc:ai[0-9]                 allow
acc:ai[0-9]                 DENY
acc:ai3                     deny
acc:ctl:a                   PV
acc:ctl:b                   Pattern
acc:o.*                     DENY FROM 127.0.0.2
!acc:pub:.*                 DENY FROM 127.0.0.3
!acc:.*                     ALIAS acc:ao3
"""

CASES_B = [
    Case("acc:secret:open", L1, "acc:secret:open", "DENY, ALLOW: the ALLOW overrides the DENY"),
    Case("acc:secret:a", L1, None, "only a DENY matches (and the inverted ALLOW does not)"),
    Case("acc:ai1", L1, "acc:ai1", "DENY, ALLOW: ALLOW and DENY match"),
    Case("acc:ai3", L1, "acc:ai3", "DENY, ALLOW: ALLOW and two DENY lines match"),
    Case("acc:ai12", L1, None, "acc:ai[0-9] is anchored; the inverted ALLOW excludes acc:ai"),
    Case("acc:ctl:a", L1, "acc:ctl:a", "PV is ALLOW"),
    Case("acc:ctl:b", L1, "acc:ctl:b", "PATTERN is ALLOW, in any case"),
    Case("acc:ctl:a", L3, None, "inverted DENY FROM: not acc:pub:, from 127.0.0.3"),
    Case("acc:ao1", L1, "acc:ao1", "inverted ALLOW"),
    Case("acc:pub:a", L1, "acc:pub:a", "inverted ALLOW"),
    Case("acc:lab:x", L1, "acc:lab:x", "inverted ALLOW"),
    Case("acc:one:1", L1, "acc:one:1", "inverted ALLOW"),
    Case("acc:one:1", L2, None, "DENY FROM overrides an ALLOW in DENY, ALLOW too"),
    Case("acc:ao1", L2, "acc:ao1", "acc:o.* DENY FROM is anchored: not acc:ao1"),
    Case("acc:one:2", L2, None, "DENY FROM acc:o.*"),
    Case("acc:ao1", L3, None, "inverted DENY FROM"),
    Case("acc:pub:a", L3, "acc:pub:a", "inverted DENY FROM: acc:pub: is excluded"),
    Case("acc:pub:a", L2, "acc:pub:a", "acc:o.* does not match acc:pub:a"),
    Case("acc:ai2", L2, "acc:ai2", "acc:o.* is anchored: not acc:ai2"),
    Case("zz:top", L1, "acc:ao3", "an inverted ALIAS (no groups) is the last line: it wins"),
]

PVLIST_C = "\n".join([
    "# pvlist C (test_access.py): the order written out, tabs and commas,",
    "# a group and level given, general and specific aliases both ways round.",
    "Evaluation Order Allow,Deny",
    "acc:.*\tALLOW\tDEFAULT\t1",
    r"top:(.*)                ALIAS acc:\1",
    r"top:ai1                 ALIAS acc:ai3",
    r"gen:ai1                 ALIAS acc:ai3",
    r"gen:(.*)                ALIAS acc:\1",
    "acc:ai.*                DENY",
    "acc:ai2                 ALLOW",
    "acc:one:.*              DENY FROM 127.0.0.2,127.0.0.3",
    ""])

CASES_C = [
    Case("top:ai1", L1, "acc:ai3", "bottom-up: the specific alias below the general one wins"),
    Case("gen:ai1", L1, "acc:ai1", "bottom-up: the general alias below the specific one wins"),
    Case("gen:two:1", L1, "acc:two:1", "the general alias"),
    Case("top:ai2", L1, "acc:ai2", "DENY matches the client's name, not the real one"),
    Case("acc:ai1", L1, None, "DENY"),
    Case("acc:ai2", L1, None, "ALLOW, DENY: the DENY wins over a later ALLOW"),
    Case("acc:ao1", L1, "acc:ao1", "ALLOW with its group and level written out"),
    Case("acc:one:1", L1, "acc:one:1", "DENY FROM lists other hosts"),
    Case("acc:one:2", L2, None, "DENY FROM, hosts separated by a comma alone"),
    Case("acc:one:2", L3, None, "DENY FROM, second host"),
    Case("top:one:2", L2, "acc:one:2", "DENY FROM matches the client's name, not the real one"),
]

PVLISTS = {"A-allow-deny": (PVLIST_A, CASES_A),
           "B-deny-allow-inverted": (PVLIST_B, CASES_B),
           "C-order-written-aliases": (PVLIST_C, CASES_C)}


def test_the_pvlist_table_has_at_least_40_cases():
    cases = [c for _, table in PVLISTS.values() for c in table]
    assert len(cases) >= 40
    for _, table in PVLISTS.values():
        keys = [(c.name, c.source) for c in table]
        assert len(keys) == len(set(keys)), "a case is in a table twice"


def served(case):
    return case.real not in (None, MISSING)


def search_cases(port, cases, settle=3.0, limit=20.0):
    """Search for every case's name from its source, again and again, until
    every name that should be found is (at most `limit` s) and at least
    `settle` s have passed; the (name, source) pairs answered at any time."""
    by_source = collections.defaultdict(list)
    for case in cases:
        by_source[case.source].append(case.name)
    expected = {(c.name, c.source) for c in cases if served(c)}
    answered = set()
    start = time.monotonic()
    while True:
        for source, names in sorted(by_source.items()):
            answered |= {(n, source) for n in rawca.search_found(port, names, source, 0.25)}
        elapsed = time.monotonic() - start
        if (expected <= answered and elapsed >= settle) or elapsed >= limit:
            return answered


def direct_values(softioc, names):
    """{record: value} read from the softIoc itself."""
    values = {}
    with rawca.Client(softioc.port, user="tester", host="opi-test") as direct:
        for name in sorted(names):
            values[name] = direct.value(direct.create(name))
    return values


@pytest.mark.parametrize("pvlist", sorted(PVLISTS))
def test_pvlist_cases_searched_and_connected_from_several_addresses(harness, pvlist):
    text, cases = PVLISTS[pvlist]
    softioc = start_softioc(harness)
    gateway = start_gateway(harness, softioc, pvlist=text)
    problems = []

    answered = search_cases(gateway.server_port, cases)
    for case in cases:
        got = (case.name, case.source) in answered
        if got != served(case):
            problems.append("search for %s from %s %s (expected %s: %s)" % (
                case.name, case.source, "answered" if got else "not answered",
                "served" if served(case) else "refused", case.why))

    # Channels: a served name reads the real record's value (an alias
    # reaches its real name); a refused name gets no channel, even from a
    # client that did not search (CREATE_CH_FAIL).
    direct = direct_values(softioc, {c.real for c in cases if served(c)})
    by_source = collections.defaultdict(list)
    for case in cases:
        by_source[case.source].append(case)
    for source, group in sorted(by_source.items()):
        with client(gateway, source=source) as c:
            for case in group:
                if served(case):
                    try:
                        value = c.value(c.create(case.name))
                    except AssertionError as e:
                        problems.append("%s from %s: %s" % (case.name, source, e))
                        continue
                    if value != direct[case.real]:
                        problems.append("%s from %s reads %r, %s has %r (%s)" % (
                            case.name, source, value, case.real, direct[case.real], case.why))
                elif case.real is None:
                    try:
                        c.create(case.name, search=False)
                        problems.append("%s from %s: a channel was made (%s)" % (
                            case.name, source, case.why))
                    except rawca.Refused:
                        pass

    # Upstream, an alias is its real name: one PV shared with the direct
    # users of that name, none under the alias. A name refused to every
    # client is never looked for upstream.
    states = gwharness.upstream_states(gateway)
    for case in cases:
        if served(case) and case.real != case.name:
            if case.name in states:
                problems.append("alias %s has an upstream PV of its own" % case.name)
            if case.real not in states:
                problems.append("alias %s: no upstream PV %s (%s)" % (
                    case.name, case.real, sorted(states)))
    real_names = {c.real for c in cases if served(c)}
    for name in {c.name for c in cases}:
        if all(c.real is None for c in cases if c.name == name) and name not in real_names \
                and name in states:
            problems.append("%s, refused to every client, was looked for upstream" % name)
    report = gateway.command("gwReport 2")
    for real in sorted(real_names):
        # the upstream PV lines ("  NAME STATE ..."), not the clients' channels
        lines = [line for line in report.splitlines()
                 if line.startswith("  " + real + " ") and not line.startswith("   ")
                 and line.split()[1:2] and line.split()[1] in gwharness.UPSTREAM_STATES]
        if len(lines) > 1:
            problems.append("%s has %d upstream PVs" % (real, len(lines)))
    if pvlist.startswith("A"):
        rules = gateway.command("gwReport 3")
        # DENY FROM hosts as written and as resolved
        if "localhost" not in rules or "127.0.0.1" not in rules:
            problems.append("gwReport 3 does not show DENY FROM localhost resolved")
    assert not problems, "\n".join(problems) + "\n" + report


def test_an_alias_and_its_real_name_share_one_upstream_subscription(harness):
    softioc = start_softioc(harness)
    gateway = start_gateway(harness, softioc, pvlist=PVLIST_A)
    assert found(gateway, "al:ai3") and found(gateway, "acc:ai3")
    alias = upstream.RawSubscriber(gateway.server_port, "al:ai3", upstream.DBR_TIME_DOUBLE)
    direct = upstream.RawSubscriber(gateway.server_port, "acc:ai3", upstream.DBR_TIME_DOUBLE)
    try:
        assert alias.first.payload == direct.first.payload
        assert gwharness.event_subscriptions(softioc, "acc:ai3") == 1
        states = gwharness.upstream_states(gateway)
        assert states.get("acc:ai3") == "active" and "al:ai3" not in states, states
    finally:
        alias.close()
        direct.close()


# ---------------------------------------------------------------- 2. access security

ACCESS_PVLIST = r"""# pvlist of the access tests (test_access.py); gwAsTest names these lines
acc:.*                          ALLOW
acc:pub:.*                      ALLOW USERS
acc:ao2                         ALLOW THISHOST
acc:log[0-9]|acc:logwave        ALLOW LOGGED 1
acc:ctl:a                       ALLOW LEVELS 0
acc:ctl:b                       ALLOW LEVELS 1
acc:secret:.*                   ALLOW NOREAD
al:ao1                          ALIAS acc:ao1 USERS
acc:hidden:.*                   DENY
acc:lab:.*                      DENY FROM localhost
al:log([0-9])                   ALIAS acc:log\1 LOGGED
"""
RULE_LINES = {"acc:.*": 2, "acc:pub:.*": 3, "acc:ao2": 4, "acc:log[0-9]|acc:logwave": 5,
              "acc:ctl:a": 6, "acc:ctl:b": 7, "acc:secret:.*": 8, "al:ao1": 9,
              "acc:hidden:.*": 10, "acc:lab:.*": 11, "al:log([0-9])": 12}

ACCESS_ACF = """# access file of the access tests (test_access.py)
UAG(admins) {alice}
HAG(adminhosts) {opi-admin}
HAG(thishost) {%s}
ASG(DEFAULT) {
    RULE(1, READ)
    RULE(1, WRITE) { HAG(adminhosts) }
}
ASG(USERS) {
    RULE(1, READ)
    RULE(1, WRITE) { UAG(admins) }
}
ASG(THISHOST) {
    RULE(1, READ)
    RULE(1, WRITE) { HAG(thishost) }
}
ASG(LOGGED) {
    RULE(1, READ)
    RULE(1, WRITE, TRAPWRITE)
}
ASG(LEVELS) {
    RULE(0, WRITE)
    RULE(1, READ)
}
ASG(NOREAD) {
    RULE(0, READ)
}
""" % THIS_HOST

READ_ONLY_ACF = """# every client may read, none may write (test_access.py)
ASG(DEFAULT) {
    RULE(1, READ)
}
"""


def access_pair(harness, options="", **kwargs):
    softioc = start_softioc(harness)
    gateway = start_gateway(harness, softioc, options, pvlist=ACCESS_PVLIST, acf=ACCESS_ACF,
                            **kwargs)
    return softioc, gateway


def test_a_read_only_host_cannot_put_and_an_admin_host_can(harness):
    softioc, gateway = access_pair(harness)
    with client(gateway, user="bob", host="office1") as office:
        cid = office.create("acc:ao1")
        assert office.rights(cid) == READ
        assert office.value(cid) == 201
        assert office.write_notify(cid, 7) == rawca.ECA_NOWTACCESS
        assert office.write(cid, 8) == rawca.ECA_NOWTACCESS
        assert office.value(cid) == 201
    assert upstream_value(softioc, "acc:ao1") == 201
    with client(gateway, user="bob", host="opi-admin") as admin:
        cid = admin.create("acc:ao1")
        assert admin.rights(cid) == WRITE
        assert admin.write_notify(cid, 7.5) == rawca.ECA_NORMAL
    assert upstream_value(softioc, "acc:ao1") == 7.5
    # Host names are not case-sensitive (asLib compares them lowercased).
    with client(gateway, user="bob", host="OPI-Admin") as admin:
        cid = admin.create("acc:ao1")
        assert admin.rights(cid) == WRITE
        assert admin.write(cid, 9.25) == rawca.ECA_NORMAL
    assert upstream_value(softioc, "acc:ao1") == 9.25


def test_caput_fails_with_a_write_access_error_unless_this_host_is_in_the_group(harness):
    """caput sends this machine's host name: acc:ao1 (DEFAULT: opi-admin
    writes) refuses its put, acc:ao2 (THISHOST: this machine writes) takes it."""
    softioc, gateway = access_pair(harness)
    assert found(gateway, "acc:ao1") and found(gateway, "acc:ao2")
    refused_put = caput(harness, gateway, "acc:ao1", 17)
    assert refused_put.returncode != 0, refused_put.stdout
    assert "Write access denied" in refused_put.stderr, refused_put.stderr
    assert upstream_value(softioc, "acc:ao1") == 201
    done = caput(harness, gateway, "acc:ao2", 18)
    assert done.returncode == 0, done.stdout + done.stderr
    assert upstream_value(softioc, "acc:ao2") == 18


def test_a_user_access_group_gives_write_access_by_user_name(harness):
    softioc, gateway = access_pair(harness)
    with client(gateway, user="alice", host="office1") as alice, \
            client(gateway, user="bob", host="opi-admin") as bob:
        a, b = alice.create("acc:pub:a"), bob.create("acc:pub:a")
        assert alice.rights(a) == WRITE
        assert bob.rights(b) == READ
        assert bob.write_notify(b, 1) == rawca.ECA_NOWTACCESS
        assert upstream_value(softioc, "acc:pub:a") == 401
        assert alice.write_notify(a, 2) == rawca.ECA_NORMAL
        assert upstream_value(softioc, "acc:pub:a") == 2
        # user names are case-sensitive
    with client(gateway, user="Alice", host="office1") as other:
        assert other.rights(other.create("acc:pub:a")) == READ


def test_rights_are_per_client_channel_and_follow_a_new_user_or_host_name(harness):
    softioc, gateway = access_pair(harness)
    with client(gateway, user="bob", host="office1") as c:
        pub, ao = c.create("acc:pub:a"), c.create("acc:ao1")
        assert (c.rights(pub), c.rights(ao)) == (READ, READ)
        c.set_user("alice")
        assert c.wait_rights(pub, WRITE), c.rights_messages(pub)
        assert c.rights(ao) == READ
        c.set_host("opi-admin")
        assert c.wait_rights(ao, WRITE), c.rights_messages(ao)
        assert c.write_notify(ao, 3.5) == rawca.ECA_NORMAL
        assert not c.disconnected(pub) and not c.disconnected(ao)
    assert upstream_value(softioc, "acc:ao1") == 3.5


def test_an_alias_channel_gets_the_group_of_its_own_rule(harness):
    softioc, gateway = access_pair(harness)
    with client(gateway, user="alice", host="office1") as c:
        alias, real = c.create("al:ao1"), c.create("acc:ao1")
        assert c.rights(alias) == WRITE     # al:ao1 ALIAS acc:ao1 USERS
        assert c.rights(real) == READ       # acc:.* ALLOW (DEFAULT)
        assert c.write_notify(real, 5) == rawca.ECA_NOWTACCESS
        assert c.write_notify(alias, 6) == rawca.ECA_NORMAL
        wait_until(lambda: c.value(real) == 6, 10, "the put through the alias to show "
                   "in the real name")
    assert upstream_value(softioc, "acc:ao1") == 6


def test_the_access_level_of_a_rule_selects_the_asl_rules(harness):
    softioc, gateway = access_pair(harness)
    with client(gateway, user="bob", host="office1") as c:
        level0, level1 = c.create("acc:ctl:a"), c.create("acc:ctl:b")
        assert c.rights(level0) == WRITE    # RULE(0, WRITE) applies to ASL 0
        assert c.rights(level1) == READ
        assert c.write_notify(level1, 1) == rawca.ECA_NOWTACCESS
        assert c.write_notify(level0, 2) == rawca.ECA_NORMAL
    assert upstream_value(softioc, "acc:ctl:a") == 2
    assert upstream_value(softioc, "acc:ctl:b") == 702


def test_a_channel_without_read_access_is_refused_reads_and_writes(harness):
    softioc, gateway = access_pair(harness)
    with client(gateway, user="alice", host="opi-admin") as c:
        cid = c.create("acc:secret:a")
        assert c.rights(cid) == NONE
        status, values = c.read(cid)
        assert (status, values) == (rawca.ECA_NORDACCESS, None)
        assert c.write_notify(cid, 1) == rawca.ECA_NOWTACCESS
    assert upstream_value(softioc, "acc:secret:a") == 301


CALC_ACF = """# a CALC rule on an upstream PV (test_access.py)
ASG(DEFAULT) {
    INPA("acc:enable")
    RULE(1, READ)
    RULE(1, WRITE) { CALC("A=1") }
}
"""


def test_a_calc_rule_on_an_upstream_pv_changes_the_rights_of_an_open_channel(harness):
    softioc = start_softioc(harness)
    # asLib's INPA is a CA channel of the IOC's own client context: it finds
    # the softIoc through EPICS_CA_ADDR_LIST.
    gateway = start_gateway(harness, softioc, acf=CALC_ACF, extra_env={
        "EPICS_CA_ADDR_LIST": "127.0.0.1:%d" % softioc.port})
    with client(gateway, user="bob", host="office1") as c:
        cid = c.create("acc:flag")
        assert c.rights(cid) == READ
        assert c.write_notify(cid, 1) == rawca.ECA_NOWTACCESS
        softioc.command("dbpf acc:enable 1")
        assert c.wait_rights(cid, WRITE, timeout=15), c.rights_messages(cid)
        assert c.write_notify(cid, 2) == rawca.ECA_NORMAL
        assert upstream_value(softioc, "acc:flag") == 2
        softioc.command("dbpf acc:enable 0")
        assert c.wait_rights(cid, READ, timeout=15), c.rights_messages(cid)
        assert c.write_notify(cid, 3) == rawca.ECA_NOWTACCESS
        assert not c.disconnected(cid)
    assert upstream_value(softioc, "acc:flag") == 2


def test_ro_makes_every_pv_read_only_whatever_the_access_file_says(harness):
    softioc = start_softioc(harness)
    # -access names the file, so that gwLoadAccess can read it again (on
    # Base before 7.0.4 it only reloads a file the gateway was given).
    gateway = start_gateway(harness, softioc, "-ro -access %s" % gwharness.ALLOW_ALL_ACF)
    with client(gateway, user="alice", host="opi-admin") as c:
        cid = c.create("acc:ao1")
        assert c.rights(cid) == READ
        assert c.value(cid) == 201
        assert c.write_notify(cid, 1) == rawca.ECA_NOWTACCESS
        assert c.write(cid, 2) == rawca.ECA_NOWTACCESS
    result = caput(harness, gateway, "acc:ao1", 3)
    assert result.returncode != 0 and "Write access denied" in result.stderr, result.stderr
    assert upstream_value(softioc, "acc:ao1") == 201
    # and a reload of the access file does not undo it
    gateway.command("gwLoadAccess")
    with client(gateway, user="alice", host="opi-admin") as c:
        assert c.rights(c.create("acc:ao1")) == READ


def test_without_an_access_file_the_gateway_is_read_only(harness):
    softioc = start_softioc(harness)
    gateway = start_gateway(harness, softioc, acf=None)
    with client(gateway, user="alice", host="opi-admin") as c:
        cid = c.create("acc:ao2")
        assert c.rights(cid) == READ
        assert c.value(cid) == 202
        assert c.write_notify(cid, 1) == rawca.ECA_NOWTACCESS
    result = caput(harness, gateway, "acc:ao2", 3)
    assert result.returncode != 0 and "Write access denied" in result.stderr, result.stderr
    assert upstream_value(softioc, "acc:ao2") == 202
    # without a pvlist every name is served
    assert found(gateway, "acc:secret:a")


def test_gwloadaccess_changes_a_connected_clients_rights_without_reconnecting(harness):
    softioc = start_softioc(harness)
    acf = harness.write("reload.acf", ACCESS_ACF)
    gateway = start_gateway(harness, softioc, "-access %s" % acf, pvlist=ACCESS_PVLIST)
    with client(gateway, user="bob", host="opi-admin") as c:
        cid = c.create("acc:ao1")
        assert c.rights(cid) == WRITE
        assert c.write_notify(cid, 11) == rawca.ECA_NORMAL

        acf.write_text(READ_ONLY_ACF)                       # the same file, changed
        gateway.command("gwLoadAccess")
        assert c.wait_rights(cid, READ), c.rights_messages(cid)
        assert c.write_notify(cid, 12) == rawca.ECA_NOWTACCESS
        assert c.value(cid) == 11

        other = harness.write("other.acf", ACCESS_ACF)      # another file
        gateway.command('gwLoadAccess "%s"' % other)
        assert c.wait_rights(cid, WRITE), c.rights_messages(cid)
        assert c.write_notify(cid, 13) == rawca.ECA_NORMAL
        # one channel all along: never disconnected, never made again
        assert not c.disconnected(cid) and not c.stream.closed
        assert [m.p1 for m in c.received if m.command == rawca.CREATE_CHAN] == [cid]
    assert upstream_value(softioc, "acc:ao1") == 13


def test_pyepics_sees_its_access_rights_change_when_the_access_file_is_reloaded(harness):
    softioc = start_softioc(harness)
    acf = harness.write("thishost.acf", ACCESS_ACF.replace("HAG(adminhosts) {opi-admin}",
                                                           "HAG(adminhosts) {%s}" % THIS_HOST))
    gateway = start_gateway(harness, softioc, "-access %s" % acf)
    assert found(gateway, "acc:ao1")
    monitor = upstream.process(harness, "pyepics-access",
                               ["/usr/bin/python3", "-u", "-c", PYEPICS_ACCESS, "acc:ao1"],
                               upstream.gateway_env(gateway))
    wait_until(lambda: "access 1 1" in monitor.log() or not monitor.alive(), 15,
               "pyepics to connect with read and write access")
    acf.write_text(READ_ONLY_ACF)
    gateway.command("gwLoadAccess")
    wait_until(lambda: "access 1 0" in monitor.log() or not monitor.alive(), 15,
               "pyepics to see the write access go")
    assert "conn 0" not in monitor.log(), monitor.log()


PYEPICS_ACCESS = """
import sys, time, epics
def access(read_access=None, write_access=None, **kw):
    print("access %d %d" % (int(bool(read_access)), int(bool(write_access))), flush=True)
def connection(conn=None, **kw):
    print("conn %d" % int(bool(conn)), flush=True)
pv = epics.PV(sys.argv[1], access_callback=access, connection_callback=connection)
while True:
    time.sleep(0.05)
"""


def test_the_access_option_of_gwstart_switches_to_its_file(harness):
    """-access after iocInit (access security active with allow-all.acf):
    the IOC switches to the file and loads it."""
    softioc = start_softioc(harness)
    acf = harness.write("option.acf", ACCESS_ACF)
    gateway = start_gateway(harness, softioc, "-access %s" % acf)
    with client(gateway, user="bob", host="office1") as office, \
            client(gateway, user="bob", host="opi-admin") as admin:
        assert office.rights(office.create("acc:ao1")) == READ
        assert admin.rights(admin.create("acc:ao1")) == WRITE


def test_access_before_iocinit_is_the_iocs_file_and_its_records_keep_their_groups(harness):
    """gwStart with -access before iocInit: the IOC loads the file at
    iocInit. The gateway IOC's own records, served by the gateway, get the
    rights of their own ASG and of the pvlist rule: both must allow."""
    softioc = start_softioc(harness)
    acf = harness.write("early.acf", ACCESS_ACF + "ASG(RECORDRO) {\n    RULE(1, READ)\n}\n")
    # the IOC's own records are subject to the pvlist like any name
    pvlist = harness.write("early.pvlist", ACCESS_PVLIST + "gwioc:.*  ALLOW\n")
    db = harness.write("own.db", 'record(ao, "gwioc:free") {\n    field(VAL, "1")\n}\n'
                       'record(ao, "gwioc:locked") {\n    field(VAL, "2")\n'
                       '    field(ASG, "RECORDRO")\n}\n')
    sport = gwharness.free_port()
    start = 'gwStart("-sip 127.0.0.1 -sport %d -cip 127.0.0.1 -cport %d -pvlist %s -access %s")' % (
        sport, softioc.port, pvlist, acf)
    gateway = harness.gateway(records=[db], commands_before_init=[start], access=None)
    gateway.server_port = sport
    gwharness.wait_for(lambda: gwharness.tcp_listening(sport), 15, "the gateway's server")
    with client(gateway, user="bob", host="opi-admin") as admin, \
            client(gateway, user="bob", host="office1") as office:
        free, locked = admin.create("gwioc:free"), admin.create("gwioc:locked")
        assert (admin.rights(free), admin.rights(locked)) == (WRITE, READ)
        assert office.rights(office.create("gwioc:free")) == READ
        assert admin.write_notify(locked, 5) == rawca.ECA_NOWTACCESS
        assert admin.write_notify(free, 6) == rawca.ECA_NORMAL
        up = admin.create("acc:ao1")
        assert admin.rights(up) == WRITE
        assert office.rights(office.create("acc:ao1")) == READ
    assert field_value(gateway, "gwioc:free") == "6"
    assert field_value(gateway, "gwioc:locked") == "2"


def test_the_pvlist_loaded_before_gwstart_is_in_force(harness):
    softioc = start_softioc(harness)
    pvlist = harness.write("early.pvlist", "acc:ao.*  ALLOW\n")
    gateway = start_gateway(harness, softioc,
                            commands_before_init=['gwLoadPvList "%s"' % pvlist])
    assert found(gateway, "acc:ao1")
    assert refused(gateway, "acc:ai1")


@pytest.mark.parametrize("from_ip", [False, True], ids=["claimed-name", "hostname_from_ip"])
def test_hostname_from_ip_matches_host_groups_with_the_name_of_the_clients_address(
        harness, from_ip):
    """A client on 127.0.0.1 claims to be opi-admin. By default HAG matching
    believes it; with -hostname_from_ip it uses the name 127.0.0.1 resolves
    to (localhost)."""
    acf = """HAG(adminhosts) {opi-admin}
HAG(local) {localhost}
ASG(DEFAULT) {
    RULE(1, READ)
    RULE(1, WRITE) { HAG(adminhosts) }
}
ASG(LOCAL) {
    RULE(1, READ)
    RULE(1, WRITE) { HAG(local) }
}
"""
    pvlist = "acc:.*  ALLOW\nacc:ao2  ALLOW LOCAL\n"
    softioc = start_softioc(harness)
    gateway = start_gateway(harness, softioc, "-hostname_from_ip" if from_ip else "",
                            pvlist=pvlist, acf=acf)
    with client(gateway, user="bob", host="opi-admin", source=L1) as c:
        admin, local = c.create("acc:ao1"), c.create("acc:ao2")
        expected = (READ, WRITE) if from_ip else (WRITE, READ)
        assert (c.rights(admin), c.rights(local)) == expected
        assert c.write_notify(admin, 1) == \
            (rawca.ECA_NOWTACCESS if from_ip else rawca.ECA_NORMAL)
    assert upstream_value(softioc, "acc:ao1") == (201 if from_ip else 1)


# ---------------------------------------------------------------- 3. reloads

def test_a_pvlist_reload_disconnects_channels_no_longer_allowed_and_updates_rights(harness):
    softioc = start_softioc(harness)
    pvlist = harness.write("reload.pvlist", "acc:.*  ALLOW\n")
    gateway = start_gateway(harness, softioc, pvlist=pvlist, acf=ACCESS_ACF)
    with client(gateway, user="bob", host="opi-admin") as c:
        ai, ao, ao2 = c.create("acc:ai1"), c.create("acc:ao1"), c.create("acc:ao2")
        assert (c.rights(ai), c.rights(ao), c.rights(ao2)) == (WRITE, WRITE, WRITE)

        pvlist.write_text("# reloaded\nacc:.*  ALLOW\nacc:ai.*  DENY\nacc:ao1  ALLOW LEVELS 1\n")
        output = gateway.command('gwLoadPvList "%s"' % pvlist)
        assert c.wait_disconnected(ai), c.received
        assert c.wait_rights(ao, READ), c.rights_messages(ao)
        assert not c.disconnected(ao) and not c.disconnected(ao2)
        assert c.value(ao) == 201 and c.value(ao2) == 202
        assert c.rights(ao2) == WRITE
        with pytest.raises(rawca.Refused):
            c.create("acc:ai1", search=False)
    assert refused(gateway, "acc:ai1") and refused(gateway, "acc:ai2"), output
    assert found(gateway, "acc:ao2")
    report = gateway.command("gwReport 3")
    assert str(pvlist) in report and "acc:ai.*" in report and "LEVELS" in report, report

    # another file: acc:ai names are served again
    other = harness.write("other.pvlist", "acc:ai.*  ALLOW\n")
    gateway.command('gwLoadPvList "%s"' % other)
    assert found(gateway, "acc:ai1")
    assert refused(gateway, "acc:ao2")
    report = gateway.command("gwReport 3")
    assert str(other) in report, report


def test_gwnewas_reloads_the_pvlist_and_the_access_file(harness):
    softioc = start_softioc(harness)
    pvlist = harness.write("newas.pvlist", "acc:.*  ALLOW\n")
    acf = harness.write("newas.acf", ACCESS_ACF)
    gateway = start_gateway(harness, softioc, "-access %s" % acf, pvlist=pvlist)
    assert found(gateway, "acc:ao3")
    with client(gateway, user="bob", host="opi-admin") as c:
        cid = c.create("acc:ao1")
        assert c.rights(cid) == WRITE
        pvlist.write_text("acc:.*  ALLOW\nacc:ao3  DENY\n")
        acf.write_text(READ_ONLY_ACF)
        gateway.command("gwNewAs")
        assert c.wait_rights(cid, READ), c.rights_messages(cid)
        assert not c.disconnected(cid)
    assert refused(gateway, "acc:ao3")


# ---------------------------------------------------------------- 4. put logging

PUTLOG_LINE = re.compile(
    r"^(?P<time>(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 0-3]\d \d\d:\d\d:\d\d) "
    r"(?P<user>[^@\s]+)@(?P<host>\S+) (?P<pv>\S+) (?P<new>\S*) old=(?P<old>\S*)$")


def putlog_lines(*paths):
    lines = []
    for path in paths:
        if os.path.exists(path):
            with open(path) as f:
                lines += f.read().splitlines()
    return lines


def parsed(line):
    m = PUTLOG_LINE.match(line)
    assert m, "not a put log line: %r" % line
    return m.groupdict()


def test_the_put_log_has_one_classic_line_per_trapped_put(harness):
    log = harness.log_dir / "gateway.putlog"
    softioc, gateway = access_pair(harness, "-putlog %s" % log)
    with client(gateway, user="alice", host="opi-admin") as c:
        log0, wave, ao = c.create("acc:log0"), c.create("acc:logwave"), c.create("acc:ao1")
        alias = c.create("al:log3")
        assert c.write_notify(log0, 5) == rawca.ECA_NORMAL
        assert c.write(log0, 6.5) == rawca.ECA_NORMAL
        assert c.write_notify(wave, 1.5, 2, 3) == rawca.ECA_NORMAL
        assert c.write_notify(alias, 0.1) == rawca.ECA_NORMAL
        assert c.write_notify(ao, 9) == rawca.ECA_NORMAL          # DEFAULT: no TRAPWRITE
    with client(gateway, user="bob", host="office1") as c:
        assert c.write_notify(c.create("acc:ao1"), 10) == rawca.ECA_NOWTACCESS
    with client(gateway, user=None, host=None) as c:              # says no names
        assert c.write_notify(c.create("acc:log1"), -2) == rawca.ECA_NORMAL
    wait_until(lambda: len(putlog_lines(log)) >= 5, 10, "five put log lines")
    time.sleep(0.5)     # a wrong sixth line would have come by now
    lines = [parsed(line) for line in putlog_lines(log)]
    assert len(lines) == 5, putlog_lines(log)
    assert [(l["user"], l["host"]) for l in lines] == [("alice", "opi-admin")] * 4 + [
        ("unknown", "unknown")], lines
    # the alias is logged under the name the client used; 0.1 with the
    # fewest digits that read back as the same double
    assert [(l["pv"], l["new"]) for l in lines] == [
        ("acc:log0", "5"), ("acc:log0", "6.5"), ("acc:logwave", "1.5,2,3"), ("al:log3", "0.1"),
        ("acc:log1", "-2")], lines
    assert lines[0]["old"] in ("0", "?") and lines[1]["old"] in ("5", "?"), lines
    assert upstream_value(softioc, "acc:log0") == 6.5
    assert upstream_value(softioc, "acc:log3") == 0.1


def test_gwputlog_starts_and_switches_the_put_log_at_run_time(harness):
    first, second = harness.log_dir / "first.putlog", harness.log_dir / "second.putlog"
    softioc, gateway = access_pair(harness)
    with client(gateway, user="alice", host="opi-admin") as c:
        cid = c.create("acc:log1")
        assert c.write_notify(cid, 1) == rawca.ECA_NORMAL         # no put log yet
        gateway.command('gwPutLog "%s"' % first)
        assert c.write_notify(cid, 2) == rawca.ECA_NORMAL
        wait_until(lambda: putlog_lines(first), 10, "a line in %s" % first)
        gateway.command('gwPutLog "%s"' % second)
        assert c.write_notify(cid, 3) == rawca.ECA_NORMAL
        wait_until(lambda: putlog_lines(second), 10, "a line in %s" % second)
    assert [parsed(l)["new"] for l in putlog_lines(first)] == ["2"]
    assert [parsed(l)["new"] for l in putlog_lines(second)] == ["3"]


PUTTER = """
import sys, epics
name, count, callback = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "callback"
pv = epics.PV(name, auto_monitor=False)
if not pv.wait_for_connection(timeout=15):
    sys.exit("no connection to %s" % name)
if not pv.write_access:
    sys.exit("no write access to %s" % name)
for i in range(1, count + 1):
    result = pv.put(i, wait=callback, timeout=30)
    if callback and result != 1:
        sys.exit("put %d to %s: %r" % (i, name, result))
# a read after the puts: the circuit has carried them all
print("done", name, pv.get(use_monitor=False, timeout=30), flush=True)
epics.ca.finalize_libca()
"""


def test_10000_puts_from_4_clients_give_10000_lines_and_moving_the_file_loses_none(harness):
    log = str(harness.log_dir / "mass.putlog")
    moved = [log + ".1", log + ".2"]
    softioc, gateway = access_pair(harness, "-putlog %s" % log)
    pvs = ["acc:log%d" % i for i in range(4)]
    for pv in pvs:
        assert found(gateway, pv)
    count = 2500
    env = upstream.gateway_env(gateway)
    putters = []
    for i, pv in enumerate(pvs):
        mode = "callback" if i % 2 else "plain"    # WRITE_NOTIFY and WRITE
        proc = gwharness.Process("putter%d" % i, ["/usr/bin/python3", "-u", "-c", PUTTER,
                                                  pv, str(count), mode], env, harness.log_dir)
        harness.processes.append(proc)
        putters.append(proc)

    # Move the file away twice while the puts go on (as logrotate does).
    renames = [(2000, moved[0]), (6000, moved[1])]
    deadline = time.monotonic() + 240
    while any(p.alive() for p in putters) and time.monotonic() < deadline:
        if renames and len(putlog_lines(log, *moved)) >= renames[0][0]:
            os.rename(log, renames[0][1])
            renames.pop(0)
        time.sleep(0.01)
    for p in putters:
        assert p.popen.wait(60) == 0, p.log()
    assert not renames, "the puts ended before the file was moved away: nothing proved"

    total = 4 * count
    wait_until(lambda: len(putlog_lines(log, *moved)) >= total, 30, "%d put log lines" % total)
    time.sleep(0.5)
    parts = [putlog_lines(path) for path in (moved[0], moved[1], log)]
    print("lines in the file and after each move: %s" % [len(p) for p in parts])
    assert all(parts), "a part is empty: %s" % [len(p) for p in parts]
    lines = [parsed(line) for part in parts for line in part]
    assert len(lines) == total
    assert {(l["user"], l["host"].lower()) for l in lines} == {(THIS_USER, THIS_HOST)}
    by_pv = collections.defaultdict(list)
    for line in lines:
        by_pv[line["pv"]].append(line["new"])
    assert sorted(by_pv) == pvs
    for pv in pvs:
        assert sorted(by_pv[pv], key=int) == [str(i) for i in range(1, count + 1)], pv
        # one client per PV: its puts are logged in the order it made them
        assert by_pv[pv] == [str(i) for i in range(1, count + 1)], pv
    for pv in pvs:
        assert upstream_value(softioc, pv) == count


def test_caputlog_sends_each_put_to_a_log_server(harness):
    received = harness.log_dir / "iocLogServer.log"
    port = harness.log_server(received)
    log = harness.log_dir / "gateway.putlog"
    softioc, gateway = access_pair(harness, "-putlog %s -caputlog 127.0.0.1:%d" % (log, port))
    with client(gateway, user="alice", host="opi-admin") as c:
        assert c.write_notify(c.create("acc:log2"), 9) == rawca.ECA_NORMAL
    pattern = re.compile(r"\d\d-[A-Z][a-z]{2}-\d\d \d\d:\d\d:\d\d opi-admin alice acc:log2 "
                         r"new=9 old=\S*$", re.M)
    wait_until(lambda: received.exists() and pattern.search(received.read_text()), 20,
               "the log server to receive the put")
    assert [parsed(l)["new"] for l in putlog_lines(log)] == ["9"]


# ---------------------------------------------------------------- 5. broken files

GOOD_PVLIST = "acc:.*  ALLOW\nacc:ao3  DENY\n"

BROKEN_PVLISTS = [
    ("acc:.*  ALLOW\nacc:ai1  ALLOW\nacc:x  PERMIT\n", 3, "unknown keyword"),
    ("acc:.*  ALLOW\nacc:(ai  ALLOW\n", 2, "bad pattern"),
    ("# comment\n\nacc:.*  ALLOW\nal:(x)  ALIAS acc:\\2\n", 4, "group beyond the pattern's"),
    ("acc:.*  ALLOW DEFAULT 7\n", 1, "bad level"),
    ("EVALUATION ORDER UP, DOWN\nacc:.*  ALLOW\n", 1, "bad order"),
    ("acc:.*  ALLOW\nacc:ao.*  DENY FROM no-such-host.invalid\n", 2, "host does not resolve"),
    ("acc:.*  ALLOW\nacc:ao3\n", 2, "no keyword"),
]


def test_a_broken_pvlist_is_refused_naming_file_and_line_and_the_rules_stay(harness):
    softioc = start_softioc(harness)
    good = harness.write("good.pvlist", GOOD_PVLIST)
    gateway = start_gateway(harness, softioc, pvlist=good)
    assert found(gateway, "acc:ai1") and refused(gateway, "acc:ao3")
    with client(gateway) as c:
        cid = c.create("acc:ao1")
        for i, (text, line, why) in enumerate(BROKEN_PVLISTS):
            broken = harness.write("broken%d.pvlist" % i, text)
            output = gateway.command('gwLoadPvList "%s"' % broken)
            assert "gwLoadPvList: %s:%d:" % (broken, line) in output, (why, output)
            assert found(gateway, "acc:ai1"), (why, output)
            assert refused(gateway, "acc:ao3", settle=1.0), (why, output)
            assert not c.disconnected(cid) and c.value(cid) == 201, why
        # the file in force, broken in place and loaded again
        good.write_text("acc:.*  ALLOW\nacc:ao3  DENY\nacc:ai.* DENIAL\n")
        output = gateway.command('gwLoadPvList "%s"' % good)
        assert "gwLoadPvList: %s:3:" % good in output, output
        assert found(gateway, "acc:ai1") and refused(gateway, "acc:ao3")
    report = gateway.command("gwReport 3")
    assert "acc:ao3" in report and "DENIAL" not in report, report


BROKEN_ACFS = [
    ("UAG(admins) {alice}\nASG(DEFAULT) {\n    RULE(1, READ) &\n    RULE(1, WRITE)\n}\n", 3,
     "invalid character"),
    ("ASG(DEFAULT) {\n    RULE(1, READ)\n    RULE(1, WRTE)\n}\n", 3, "bad access right"),
]


def test_a_broken_access_file_is_refused_naming_file_and_line_and_the_rights_stay(harness):
    softioc = start_softioc(harness)
    acf = harness.write("good.acf", ACCESS_ACF)
    gateway = start_gateway(harness, softioc, "-access %s" % acf, pvlist=ACCESS_PVLIST)
    with client(gateway, user="bob", host="opi-admin") as admin, \
            client(gateway, user="bob", host="office1") as office:
        a, o = admin.create("acc:ao1"), office.create("acc:ao1")
        assert (admin.rights(a), office.rights(o)) == (WRITE, READ)

        def rights_stay(why, output):
            assert admin.rights(a) == WRITE and office.rights(o) == READ, (why, output)
            assert admin.write_notify(a, 4) == rawca.ECA_NORMAL, (why, output)
            assert office.write_notify(o, 5) == rawca.ECA_NOWTACCESS, (why, output)
            with client(gateway, user="bob", host="office1") as late:
                assert late.rights(late.create("acc:ao1")) == READ, (why, output)
            with client(gateway, user="alice", host="office1") as late:
                assert late.rights(late.create("acc:pub:a")) == WRITE, (why, output)

        for i, (text, line, why) in enumerate(BROKEN_ACFS):
            broken = harness.write("broken%d.acf" % i, text)
            output = gateway.command('gwLoadAccess "%s"' % broken)
            assert "gwLoadAccess: %s:%d:" % (broken, line) in output, (why, output)
            rights_stay(why, output)
        # the file in force, broken in place and loaded again
        acf.write_text(BROKEN_ACFS[0][0])
        output = gateway.command("gwLoadAccess")
        assert "gwLoadAccess: %s:3:" % acf in output, output
        rights_stay("in place", output)
        assert not admin.disconnected(a) and not office.disconnected(o)
    assert upstream_value(softioc, "acc:ao1") == 4


# ---------------------------------------------------------------- 6. probe, report, check

def as_test(gateway, name, user, host):
    """{item: value} of the lines gwAsTest prints."""
    output = gateway.command("gwAsTest %s %s %s" % (name, user, host))
    head = "gwAsTest %s user %s host %s:" % (name, user, host)
    assert head in output, output
    items = {}
    for line in output[output.index(head) + len(head):].splitlines():
        m = re.match(r"^  (rule|served|alias|asg|rights|put logging): (.*)$", line)
        if m:
            items[m.group(1)] = m.group(2).strip()
    return items


def rule(pattern, kind):
    return 'line %d "%s" %s' % (RULE_LINES[pattern], pattern, kind)


def test_gwastest_answers_what_a_user_on_a_host_may_do_with_a_name(harness):
    softioc, gateway = access_pair(harness)
    # A put is logged when its rule has TRAPWRITE and a put log is open.
    assert as_test(gateway, "acc:log3", "bob", "office1")["put logging"] == "no"
    gateway.command('gwPutLog "%s"' % (harness.log_dir / "astest.putlog"))
    cases = [
        (("acc:ao1", "alice", "opi-admin"),
         {"rule": rule("acc:.*", "ALLOW"), "served": "yes", "asg": "DEFAULT asl: 1",
          "rights": "read,write", "put logging": "no"}),
        (("acc:ao1", "bob", "office1"),
         {"rule": rule("acc:.*", "ALLOW"), "served": "yes", "rights": "read"}),
        (("acc:pub:b", "alice", "office1"),
         {"rule": rule("acc:pub:.*", "ALLOW"), "asg": "USERS asl: 1", "rights": "read,write"}),
        (("acc:log3", "bob", "office1"),
         {"rule": rule("acc:log[0-9]|acc:logwave", "ALLOW"), "asg": "LOGGED asl: 1",
          "rights": "read,write", "put logging": "yes"}),
        (("acc:ctl:a", "bob", "office1"),
         {"asg": "LEVELS asl: 0", "rights": "read,write", "put logging": "no"}),
        (("acc:secret:b", "alice", "opi-admin"),
         {"rule": rule("acc:secret:.*", "ALLOW"), "asg": "NOREAD asl: 1", "rights": "none"}),
        (("al:ao1", "alice", "office1"),
         {"rule": rule("al:ao1", "ALIAS"), "served": "yes", "alias": "acc:ao1",
          "asg": "USERS asl: 1", "rights": "read,write"}),
        (("acc:hidden:x", "alice", "opi-admin"),
         {"rule": rule("acc:hidden:.*", "DENY"), "served": "no"}),
        (("zz:nothing", "alice", "opi-admin"), {"rule": "none", "served": "no"}),
        # the host is resolved for the DENY FROM rules
        (("acc:lab:x", "bob", "localhost"),
         {"rule": rule("acc:lab:.*", "DENY FROM"), "served": "no"}),
        (("al:log2", "bob", "office1"),
         {"rule": rule("al:log([0-9])", "ALIAS"), "alias": "acc:log2", "asg": "LOGGED asl: 1",
          "put logging": "yes"}),
    ]
    problems = []
    for args, expected in cases:
        items = as_test(gateway, *args)
        for key, value in expected.items():
            if items.get(key) != value:
                problems.append("gwAsTest %s: %s is %r, expected %r (%r)" % (
                    " ".join(args), key, items.get(key), value, items))
        if "alias" in items and "alias" not in expected:
            problems.append("gwAsTest %s: an alias line %r" % (" ".join(args), items))
        if expected.get("served") == "no" and items.get("rights", "none") != "none":
            problems.append("gwAsTest %s: refused, but rights %r" % (" ".join(args), items))
    assert not problems, "\n".join(problems)


def test_gwreport_3_prints_the_rules_in_force(harness):
    softioc, gateway = access_pair(harness)
    report = gateway.command("gwReport 3")
    assert "gateway.pvlist" in report, report
    for pattern, line in RULE_LINES.items():
        assert pattern in report, (pattern, report)
    assert re.search(r"ALLOW,\s*DENY", report), report


def run_check(harness, *args):
    result = harness.run([gwharness.module_tool("gateway"), "-check", *map(str, args)],
                         gwharness.ca_environment(), timeout=30)
    return result.returncode, result.stdout + result.stderr


def test_check_mode_validates_a_pvlist_and_an_access_file(harness):
    pvlist = harness.write("check.pvlist", ACCESS_PVLIST)
    acf = harness.write("check.acf", ACCESS_ACF)
    code, output = run_check(harness, "-pvlist", pvlist, "-access", acf)
    assert code == 0, output
    text, line, _ = BROKEN_PVLISTS[0]
    bad_pvlist = harness.write("check-bad.pvlist", text)
    code, output = run_check(harness, "-pvlist", bad_pvlist, "-access", acf)
    assert code != 0 and "%s:%d" % (bad_pvlist, line) in output, (code, output)
    text, line, _ = BROKEN_ACFS[0]
    bad_acf = harness.write("check-bad.acf", text)
    code, output = run_check(harness, "-pvlist", pvlist, "-access", bad_acf)
    assert code != 0 and "%s:%d" % (bad_acf, line) in output, (code, output)
