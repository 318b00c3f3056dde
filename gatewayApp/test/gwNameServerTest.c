/* gwNameServerTest.c - unit test of UDP name resolution (gwNameServer.c) and
 * beacons (gwBeacon.c) with real sockets on loopback.
 *
 * Opens sockets: run only inside `scripts/netns run` (make runtests does).
 * Outside a private network namespace (GW_NETNS unset) it skips, or fails
 * where it must run (gwTestNetns.h).
 *
 * gwServer.c is replaced by a stand-in (below) that serves names starting
 * with "known:", says PENDING for "pending:" and NO for anything else.
 * A multicast group in the interface list is tested on lo: a client
 * sends to the group through 127.0.0.1 (IP_MULTICAST_IF; the namespace
 * has no route to the group) and the server bound to 127.0.0.1 answers.
 * Ordering, not timing: the server handles the datagrams of one socket in
 * order, so "no reply to X" is proven by sending X, then a good request
 * from the same (or another) client, and seeing the good reply first.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <caProto.h>
#include <ellLib.h>
#include <epicsMutex.h>
#include <epicsStdio.h>
#include <epicsThread.h>
#include <epicsTime.h>
#include <epicsUnitTest.h>
#include <errlog.h>
#include <osiSock.h>
#include <testMain.h>

#include "gwCodec.h"
#include "gwBeacon.h"
#include "gwNameServer.h"
#include "gwServerPriv.h"
#include "gwTestNetns.h"
#include "gwTestUdp.h"

#define TEST_TCP_PORT 47123u
#define WAIT_SECONDS 10.0

/* ---- the stand-in for gwServer.c ------------------------------------------ */

struct gwServer {
    gwServerConfig config;
    unsigned short tcpPort;
    epicsMutexId lock;
    char lastPeer[32];
    char lastUser[8];
    unsigned lastMinor;
    unsigned calls;
    int lateReady;     /* "late:" names: PENDING until set, then YES */
    unsigned doneCalls;  /* gwServerSearchesDone calls */
    gwNameServer *names; /* for "race:" names */
    int raceSettled;     /* a "race:" name was settled: YES from now on */
    unsigned resolveCalls; /* gwServerResolve calls */
    unsigned largestBatch; /* most names in one of them */
};

static gwExistsAnswer answerOne(gwServer *server, const char *pvName,
                                const gwClientIdentity *client)
{
    epicsMutexMustLock(server->lock);
    epicsSnprintf(server->lastPeer, sizeof server->lastPeer, "%s", client->peer);
    epicsSnprintf(server->lastUser, sizeof server->lastUser, "%s", client->user);
    server->lastMinor = client->minorVersion;
    server->calls++;
    epicsMutexUnlock(server->lock);
    if (strncmp(pvName, "known:", 6) == 0)
        return GW_EXISTS_YES;
    if (strncmp(pvName, "pending:", 8) == 0)
        return GW_EXISTS_PENDING;
    if (strncmp(pvName, "race:", 5) == 0) {
        /* settled just after the answer PENDING, before the search waits
         * for it: the settling cannot find the search */
        int settled;
        epicsMutexMustLock(server->lock);
        settled = server->raceSettled;
        server->raceSettled = 1;
        epicsMutexUnlock(server->lock);
        if (!settled)
            gwNameServerSettled(server->names, &pvName, 1);
        return settled ? GW_EXISTS_YES : GW_EXISTS_PENDING;
    }
    if (strncmp(pvName, "late:", 5) == 0) {
        int ready;
        epicsMutexMustLock(server->lock);
        ready = server->lateReady;
        epicsMutexUnlock(server->lock);
        return ready ? GW_EXISTS_YES : GW_EXISTS_PENDING;
    }
    if (strncmp(pvName, "relay:", 6) == 0)
        return GW_EXISTS_ELSEWHERE;
    return GW_EXISTS_NO;
}

/* "relay:" names are served by 127.0.0.7:7777. */
void gwServerResolve(gwServer *server, const gwClientIdentity *client,
                     gwExistsQuery *queries, unsigned count, gwProvider **providers)
{
    unsigned i;

    epicsMutexMustLock(server->lock);
    server->resolveCalls++;
    if (count > server->largestBatch)
        server->largestBatch = count;
    epicsMutexUnlock(server->lock);
    for (i = 0; i < count; i++) {
        queries[i].answer = answerOne(server, queries[i].pvName, client);
        if (queries[i].answer == GW_EXISTS_ELSEWHERE)
            queries[i].where = gwTestAddress("127.0.0.7", 7777);
        if (providers)
            providers[i] = NULL;
    }
}

gwExistsAnswer gwServerResolveOne(gwServer *server, const char *pvName,
                                  const gwClientIdentity *client, gwProvider **provider,
                                  struct sockaddr_in *where)
{
    gwExistsQuery query;

    memset(&query, 0, sizeof query);
    query.pvName = pvName;
    gwServerResolve(server, client, &query, 1, provider);
    if (where)
        *where = query.where;
    return query.answer;
}

void gwServerSearchesDone(gwServer *server)
{
    epicsMutexMustLock(server->lock);
    server->doneCalls++;
    epicsMutexUnlock(server->lock);
}

const gwServerConfig *gwServerGetConfig(const gwServer *server)
{
    return &server->config;
}

unsigned short gwServerTcpPort(const gwServer *server)
{
    return server->tcpPort;
}

/* ---- sockets -------------------------------------------------------------- */

/* A UDP port nobody uses right now. */
static unsigned short freePort(void)
{
    SOCKET s = gwTestUdpSocket("127.0.0.1", 0);
    unsigned short port = gwTestBoundPort(s);

    epicsSocketDestroy(s);
    return port;
}

static void sendTo(SOCKET s, const void *buf, size_t len, const char *dotted, unsigned short port)
{
    struct sockaddr_in to = gwTestAddress(dotted, port);

    if (sendto(s, buf, len, 0, (struct sockaddr *)&to, sizeof to) != (int)len)
        testAbort("sendto %s:%u: %s", dotted, port, strerror(errno));
}

/* One datagram, or -1 when none comes within WAIT_SECONDS (a bound, not a
 * measurement: every expected datagram arrives long before). */
static int receive(SOCKET s, void *buf, size_t cap)
{
    return gwTestReceive(s, buf, cap, NULL, WAIT_SECONDS);
}

/* Entries of a /proc directory (open descriptors, threads of this process);
 * -1 where there is no /proc. */
static int countEntries(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;

    if (!d)
        return -1;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

typedef struct resources {
    int descriptors, threads;
} resources;

static resources resourcesNow(void)
{
    resources r;

    r.descriptors = countEntries("/proc/self/fd");
    r.threads = countEntries("/proc/self/task");
    return r;
}

/* The count of a thread just joined (or just ended) may still include it
 * for a moment: the kernel removes its /proc entry a little after the join
 * returns. Counts are taken when two reads 10 ms apart agree (bounded). */
static resources resourcesSettled(void)
{
    resources r = resourcesNow(), again;
    int tries;

    for (tries = 0; tries < 100; tries++) {
        epicsThreadSleep(0.01);
        again = resourcesNow();
        if (again.descriptors == r.descriptors && again.threads == r.threads)
            break;
        r = again;
    }
    return r;
}

static void testNothingLeft(const char *what, resources before)
{
    resources after = resourcesSettled();

    testOk(after.descriptors == before.descriptors && after.threads == before.threads,
           "%s: no descriptor or thread left (%d/%d descriptors, %d/%d threads)", what,
           after.descriptors, before.descriptors, after.threads, before.threads);
}

/* ---- requests ------------------------------------------------------------- */

typedef struct request {
    union {
        double align;
        unsigned char bytes[16384];
    } buf;
    size_t used;
} request;

static void addVersion(request *r, epicsUInt16 minor, epicsUInt32 sequence)
{
    r->used += gwCodecBuildVersion(r->buf.bytes + r->used, sizeof r->buf.bytes - r->used,
                                   1, minor, sequence);
}

static void addSearch(request *r, const char *name, epicsUInt32 id, epicsUInt16 replyFlag)
{
    size_t length = strlen(name) + 1, padded = (length + 7u) & ~(size_t)7u;
    gwCaHeader h;

    h.command = CA_PROTO_SEARCH;
    h.payloadSize = (epicsUInt32)padded;
    h.dataType = replyFlag;
    h.count = GW_CA_MINOR_VERSION;
    h.parameter1 = id;
    h.parameter2 = id;
    r->used += gwCodecWriteHeader(r->buf.bytes + r->used, sizeof r->buf.bytes - r->used, &h,
                                  GW_CA_MINOR_VERSION);
    memset(r->buf.bytes + r->used, 0, padded);
    memcpy(r->buf.bytes + r->used, name, length - 1);
    r->used += padded;
}

static void addRaw(request *r, const void *bytes, size_t n)
{
    memcpy(r->buf.bytes + r->used, bytes, n);
    r->used += n;
}

/* ---- replies -------------------------------------------------------------- */

typedef struct reply {
    int hasVersion;
    gwCaHeader version;
    unsigned nAnswers;
    epicsUInt32 ids[64];
    int answersOk;    /* every answer: port, address, minor as expected */
    epicsUInt16 ports[64];      /* each answer's TCP port */
    epicsUInt32 addresses[64];  /* and server address */
    int wellFormed;
    size_t size;
} reply;

static int receiveReply(SOCKET s, reply *out)
{
    union {
        double align;
        unsigned char bytes[65536];
    } buf;
    int n = receive(s, buf.bytes, sizeof buf.bytes);
    size_t offset = 0;

    memset(out, 0, sizeof *out);
    if (n < 0)
        return -1;
    out->size = (size_t)n;
    out->wellFormed = 1;
    out->answersOk = 1;
    while (offset < (size_t)n) {
        gwCaMessage m;
        size_t used;

        if (gwCodecParseMessage(buf.bytes + offset, (size_t)n - offset, 1024, &m, &used)
            != GW_CODEC_OK) {
            out->wellFormed = 0;
            break;
        }
        if (m.header.command == CA_PROTO_VERSION && offset == 0) {
            out->hasVersion = 1;
            out->version = m.header;
        } else if (m.header.command == CA_PROTO_SEARCH && out->nAnswers < 64) {
            out->ports[out->nAnswers] = m.header.dataType;
            out->addresses[out->nAnswers] = m.header.parameter1;
            out->ids[out->nAnswers++] = m.header.parameter2;
            if (m.header.dataType != TEST_TCP_PORT || m.header.count != 0
                || m.header.parameter1 != GW_CA_ADDRESS_OF_SENDER || m.header.payloadSize != 8
                || m.payload[0] != 0 || m.payload[1] != GW_CA_MINOR_VERSION)
                out->answersOk = 0;
        } else {
            out->wellFormed = 0;
        }
        offset += used;
    }
    return 0;
}

/* Send a request from s, expect exactly one reply datagram answering id. */
static int answersOnly(SOCKET s, unsigned short port, epicsUInt32 id)
{
    request r;
    reply got;
    int tries;

    r.used = 0;
    addVersion(&r, GW_CA_MINOR_VERSION, id);
    addSearch(&r, "known:probe", id, DONTREPLY);
    /* a probe sent after a flood of datagrams may be dropped by the
     * server's full socket buffer: sent again then, a few times */
    for (tries = 0; tries < 3; tries++) {
        sendTo(s, r.buf.bytes, r.used, "127.0.0.1", port);
        if (receiveReply(s, &got) == 0)
            return got.nAnswers == 1 && got.ids[0] == id;
    }
    return 0;
}

/* ---- tests ---------------------------------------------------------------- */

static gwServer server;

static void startServer(void)
{
    char error[160];

    memset(&server, 0, sizeof server);
    server.lock = epicsMutexMustCreate();
    server.tcpPort = TEST_TCP_PORT;
    server.config.port = freePort();
    server.config.beaconPort = freePort();
    server.config.beaconPeriod = 3600.0;
    server.config.maxArrayBytes = 16384;
    server.config.ioThreads = 1;
    if (gwServerConfigParseAddresses(&server.config.interfaces, "127.0.0.1", server.config.port,
                                     "interfaces", error, sizeof error) != 0
        || gwServerConfigParseAddresses(&server.config.ignoreAddresses, "127.0.0.3", 0,
                                        "ignore", error, sizeof error) != 0)
        testAbort("%s", error);
    testDiag("name server on 127.0.0.1:%u", server.config.port);
}

static void testSearches(unsigned short port)
{
    SOCKET client = gwTestUdpSocket("127.0.0.1", 0);
    request r;
    reply got;
    char peer[32];
    unsigned doneBefore, doneAfter;

    testDiag("one datagram: VERSION and several SEARCHes");
    epicsMutexMustLock(server.lock);
    doneBefore = server.doneCalls;
    epicsMutexUnlock(server.lock);
    r.used = 0;
    addVersion(&r, GW_CA_MINOR_VERSION, 77);
    addSearch(&r, "known:a", 1, DONTREPLY);
    addSearch(&r, "unknown:b", 2, DONTREPLY);
    addSearch(&r, "pending:c", 3, DONTREPLY);
    addSearch(&r, "known:d", 4, DOREPLY);
    addSearch(&r, "unknown:e", 5, DOREPLY);
    addSearch(&r, "pending:f", 6, DOREPLY);
    sendTo(client, r.buf.bytes, r.used, "127.0.0.1", port);
    testOk1(receiveReply(client, &got) == 0 && got.wellFormed);
    testOk(got.hasVersion && got.version.count == GW_CA_MINOR_VERSION
           && got.version.parameter1 == 77 && got.version.dataType == 1,
           "reply starts with VERSION (minor %u, sequence %u)", (unsigned)got.version.count,
           (unsigned)got.version.parameter1);
    testOk(got.nAnswers == 2 && got.ids[0] == 1 && got.ids[1] == 4,
           "exactly the known names answered (%u answers)", got.nAnswers);
    testOk1(got.answersOk);
    testOk1(got.size == 16u + 2u * 24u);
    testOk(answersOnly(client, port, 1000), "no second datagram (no NOT_FOUND over UDP)");
    epicsMutexMustLock(server.lock);
    doneAfter = server.doneCalls;
    epicsMutexUnlock(server.lock);
    testOk(doneAfter - doneBefore == 2, "the providers were told once per request datagram "
           "that its searches are over (%u times for 2)", doneAfter - doneBefore);

    {
        struct sockaddr_in self = gwTestAddress("127.0.0.1", gwTestBoundPort(client));

        ipAddrToDottedIP(&self, peer, sizeof peer);
    }
    epicsMutexMustLock(server.lock);
    testOk(strcmp(server.lastPeer, peer) == 0 && server.lastMinor == GW_CA_MINOR_VERSION
           && server.lastUser[0] == '\0',
           "the provider saw peer %s, minor %u, empty user", server.lastPeer, server.lastMinor);
    epicsMutexUnlock(server.lock);

    testDiag("no VERSION in the request: no VERSION in the reply (as RSRV)");
    r.used = 0;
    addSearch(&r, "known:old", 9, DONTREPLY);
    sendTo(client, r.buf.bytes, r.used, "127.0.0.1", port);
    testOk1(receiveReply(client, &got) == 0 && !got.hasVersion && got.nAnswers == 1
            && got.ids[0] == 9 && got.size == 24);

    testDiag("broadcast to 127.255.255.255 reaches the server bound to 127.0.0.1");
    r.used = 0;
    addVersion(&r, GW_CA_MINOR_VERSION, 5);
    addSearch(&r, "known:bcast", 31, DONTREPLY);
    sendTo(client, r.buf.bytes, r.used, "127.255.255.255", port);
    testOk1(receiveReply(client, &got) == 0 && got.nAnswers == 1 && got.ids[0] == 31);
    epicsSocketDestroy(client);
}

static void setLateReady(int ready)
{
    epicsMutexMustLock(server.lock);
    server.lateReady = ready;
    epicsMutexUnlock(server.lock);
}

static void settle(gwNameServer *names, const char *name)
{
    gwNameServerSettled(names, &name, 1);
}

/* Pending names settled later: the waiting searches are answered then. */
static void testSettled(gwNameServer *names, unsigned short port)
{
    SOCKET client = gwTestUdpSocket("127.0.0.1", 0);
    request r;
    reply got;
    int received;

    testDiag("a pending search is answered when its name is settled");
    r.used = 0;
    addVersion(&r, GW_CA_MINOR_VERSION, 88);
    addSearch(&r, "late:x", 41, DONTREPLY);
    addSearch(&r, "late:y", 42, DONTREPLY);
    addSearch(&r, "late:z", 43, DONTREPLY);
    sendTo(client, r.buf.bytes, r.used, "127.0.0.1", port);
    r.used = 0;
    addVersion(&r, GW_CA_MINOR_VERSION, 89);
    addSearch(&r, "late:z", 43, DONTREPLY);   /* the client repeats one */
    sendTo(client, r.buf.bytes, r.used, "127.0.0.1", port);
    testOk(answersOnly(client, port, 2000), "no answer while the names are pending");

    {
        unsigned before, after;

        epicsMutexMustLock(server.lock);
        before = server.calls;
        epicsMutexUnlock(server.lock);
        settle(names, "late:x");    /* the provider serves it now */
        memset(&got, 0, sizeof got);
        received = receiveReply(client, &got) == 0;
        epicsMutexMustLock(server.lock);
        after = server.calls;
        epicsMutexUnlock(server.lock);
        testOk(received && got.nAnswers == 1 && got.ids[0] == 41
               && got.version.parameter1 == 88 && after == before,
               "settled: answered without asking the provider again (id %u, %u asks)",
               got.nAnswers ? (unsigned)got.ids[0] : 0u, after - before);
    }
    setLateReady(1);
    settle(names, "late:nobody");
    testOk(answersOnly(client, port, 2002), "a name nobody waits for: nothing sent");
    settle(names, "late:y");
    memset(&got, 0, sizeof got);
    received = receiveReply(client, &got) == 0;
    testOk(received && got.wellFormed && got.answersOk
           && got.nAnswers == 1 && got.ids[0] == 42 && got.hasVersion
           && got.version.parameter1 == 88,
           "settled and served: the waiting search is answered (id %u, sequence %u)",
           got.nAnswers ? (unsigned)got.ids[0] : 0u, (unsigned)got.version.parameter1);
    settle(names, "late:y");
    testOk(answersOnly(client, port, 2003), "answered once only");
    settle(names, "late:z");
    testOk(receiveReply(client, &got) == 0 && got.nAnswers == 1 && got.ids[0] == 43
           && got.version.parameter1 == 89,
           "a repeated search waits once, with its latest sequence number");
    testOk(answersOnly(client, port, 2004), "no second answer for the repeat");

    testDiag("names settled together: one datagram per request answers them");
    r.used = 0;
    addVersion(&r, GW_CA_MINOR_VERSION, 91);
    addSearch(&r, "late:b1", 51, DONTREPLY);
    addSearch(&r, "late:b2", 52, DONTREPLY);
    addSearch(&r, "late:b3", 53, DONTREPLY);
    setLateReady(0);
    sendTo(client, r.buf.bytes, r.used, "127.0.0.1", port);
    r.used = 0;
    addVersion(&r, GW_CA_MINOR_VERSION, 92);
    addSearch(&r, "late:b4", 54, DONTREPLY);
    sendTo(client, r.buf.bytes, r.used, "127.0.0.1", port);
    testOk(answersOnly(client, port, 2006), "four pending searches in two datagrams");
    setLateReady(1);
    {
        const char *batch[] = { "late:b1", "late:b2", "late:b3", "late:b4", "late:none" };
        gwNameServerSettled(names, batch, sizeof batch / sizeof batch[0]);
    }
    memset(&got, 0, sizeof got);
    received = receiveReply(client, &got) == 0;
    testOk(received && got.answersOk && got.nAnswers == 3 && got.ids[0] == 51 && got.ids[1] == 52
           && got.ids[2] == 53 && got.version.parameter1 == 91,
           "the first request's three answers share one datagram (%u answers, sequence %u)",
           got.nAnswers, (unsigned)got.version.parameter1);
    memset(&got, 0, sizeof got);
    received = receiveReply(client, &got) == 0;
    testOk(received && got.nAnswers == 1 && got.ids[0] == 54 && got.version.parameter1 == 92,
           "the second request's answer comes in its own, with its sequence number");
    testOk(answersOnly(client, port, 2007), "nothing more");

    testDiag("a search that is served by the time it is remembered is answered at once");
    r.used = 0;
    addVersion(&r, GW_CA_MINOR_VERSION, 90);
    addSearch(&r, "late:w", 44, DONTREPLY);
    sendTo(client, r.buf.bytes, r.used, "127.0.0.1", port);
    testOk1(receiveReply(client, &got) == 0 && got.nAnswers == 1 && got.ids[0] == 44);
    setLateReady(0);

    testDiag("a name settled while its search was on its way to waiting is answered");
    r.used = 0;
    addVersion(&r, GW_CA_MINOR_VERSION, 93);
    addSearch(&r, "race:a", 45, DONTREPLY);
    sendTo(client, r.buf.bytes, r.used, "127.0.0.1", port);
    memset(&got, 0, sizeof got);
    testOk(receiveReply(client, &got) == 0 && got.nAnswers == 1 && got.ids[0] == 45,
           "answered at once (the settling was counted, the name asked again)");

    testDiag("many pending searches stay bounded and are freed at stop");
    {
        unsigned i;
        for (i = 0; i < 5000; i++) {
            char name[32];
            r.used = 0;
            addVersion(&r, GW_CA_MINOR_VERSION, i);
            epicsSnprintf(name, sizeof name, "late:many%u", i);
            addSearch(&r, name, 10000 + i, DONTREPLY);
            sendTo(client, r.buf.bytes, r.used, "127.0.0.1", port);
        }
        testOk(answersOnly(client, port, 2005), "5000 pending searches: no answer");
    }
    epicsSocketDestroy(client);
}

static void testIgnore(gwNameServer *names, unsigned short port)
{
    SOCKET ignored = gwTestUdpSocket("127.0.0.3", 0);
    SOCKET other = gwTestUdpSocket("127.0.0.2", 0);
    gwNameServerCounters before, after;
    request r;

    testDiag("searches from an ignored address get no answer");
    gwNameServerGetCounters(names, &before);
    r.used = 0;
    addVersion(&r, GW_CA_MINOR_VERSION, 1);
    addSearch(&r, "known:x", 11, DOREPLY);
    sendTo(ignored, r.buf.bytes, r.used, "127.0.0.1", port);
    testOk(answersOnly(other, port, 12), "127.0.0.2 is answered");
    testOk(!gwTestPending(ignored), "127.0.0.3 is not");
    gwNameServerGetCounters(names, &after);
    testOk1(after.ignored == before.ignored + 1);
    epicsSocketDestroy(ignored);
    epicsSocketDestroy(other);
}

typedef struct badDatagram {
    const char *what;
    unsigned char bytes[48];
    size_t size;
} badDatagram;

static void testMalformed(gwNameServer *names, unsigned short port)
{
    static const badDatagram bad[] = {
        {"empty datagram", {0}, 0},
        {"truncated header", {0, 6, 0, 8, 0, 5, 0, 13, 0, 0}, 10},
        {"payload size larger than the datagram",
         {0, 6, 0, 64, 0, 5, 0, 13, 0, 0, 0, 1, 0, 0, 0, 1, 'k', 'n', 'o', 'w', 'n', ':', 'a', 0}, 24},
        {"unterminated name",
         {0, 6, 0, 8, 0, 5, 0, 13, 0, 0, 0, 1, 0, 0, 0, 1, 'k', 'n', 'o', 'w', 'n', ':', 'a', 'b'}, 24},
        {"empty name", {0, 6, 0, 8, 0, 5, 0, 13, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0}, 24},
        {"payload size not a multiple of 8",
         {0, 6, 0, 5, 0, 5, 0, 13, 0, 0, 0, 1, 0, 0, 0, 1, 'k', 'n', 'o', 'w', 0, 0, 0, 0}, 24},
        {"huge extended header",
         {0, 6, 0xff, 0xff, 0, 5, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 1}, 24},
        {"extended header cut short", {0, 6, 0xff, 0xff, 0, 5, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0}, 18},
        {"command not served over UDP (CREATE_CHAN)",
         {0, 18, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 13, 'k', 'n', 'o', 'w', 'n', ':', 'a', 0}, 24},
        {"unknown command", {0x03, 0xe7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 16},
        {"VERSION from an unsupported client (minor 2), then a search",
         {0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0,
          0, 6, 0, 8, 0, 5, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1, 'k', 'n', 'o', 'w', 'n', ':', 'a', 0}, 40},
    };
    SOCKET client = gwTestUdpSocket("127.0.0.1", 0);
    gwNameServerCounters before, after;
    size_t i;
    request r;
    reply got;

    gwNameServerGetCounters(names, &before);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sendTo(client, bad[i].bytes, bad[i].size, "127.0.0.1", port);
        testOk(answersOnly(client, port, 2000u + (epicsUInt32)i),
               "%s: no answer, and the next search is answered", bad[i].what);
    }
    gwNameServerGetCounters(names, &after);
    testOk(after.malformed == before.malformed + i, "%lu malformed datagrams counted",
           after.malformed - before.malformed);

    testDiag("answers gathered before a bad message are still sent");
    r.used = 0;
    addVersion(&r, GW_CA_MINOR_VERSION, 3);
    addSearch(&r, "known:before", 41, DONTREPLY);
    addRaw(&r, bad[3].bytes, bad[3].size);
    addSearch(&r, "known:after", 42, DONTREPLY);
    sendTo(client, r.buf.bytes, r.used, "127.0.0.1", port);
    testOk1(receiveReply(client, &got) == 0 && got.nAnswers == 1 && got.ids[0] == 41);
    testOk1(answersOnly(client, port, 43));
    epicsSocketDestroy(client);
}

static void testManySearches(unsigned short port)
{
    enum { N = 200 };
    SOCKET client = gwTestUdpSocket("127.0.0.1", 0);
    static int seen[N];
    unsigned datagrams = 0, total = 0, inOrder = 1, allVersion = 1, allSmall = 1, allOk = 1;
    epicsUInt32 next = 0;
    request r;
    int i;

    testDiag("%d searches in one datagram", N);
    r.used = 0;
    addVersion(&r, GW_CA_MINOR_VERSION, 99);
    for (i = 0; i < N; i++) {
        char name[32];

        epicsSnprintf(name, sizeof name, "known:many%03d", i);
        addSearch(&r, name, (epicsUInt32)i, DONTREPLY);
    }
    sendTo(client, r.buf.bytes, r.used, "127.0.0.1", port);
    while (total < N && datagrams < 20) {
        reply got;
        unsigned k;

        if (receiveReply(client, &got) != 0)
            break;
        datagrams++;
        allVersion &= got.hasVersion && got.version.parameter1 == 99;
        allSmall &= got.size <= 1024;
        allOk &= got.answersOk && got.wellFormed;
        for (k = 0; k < got.nAnswers; k++, total++) {
            inOrder &= got.ids[k] == next++;
            if (got.ids[k] < N)
                seen[got.ids[k]]++;
        }
    }
    testOk(total == N, "%u answers", total);
    testOk(datagrams >= (N + 41) / 42 && datagrams <= N / 30 + 1,
           "split over %u datagrams", datagrams);
    testOk1(allVersion && allSmall && allOk);
    testOk1(inOrder);
    for (i = 0; i < N && seen[i] == 1; i++)
        ;
    testOk(i == N, "every search id exactly once");
    testOk(answersOnly(client, port, 3000), "nothing else was sent");
    epicsSocketDestroy(client);
}

/* The searches of one datagram reach the providers as one batch; an
 * answer ELSEWHERE names the other server; paused, nothing is answered. */
static void testBatchElsewherePause(gwNameServer *names, unsigned short port)
{
    SOCKET client = gwTestUdpSocket("127.0.0.1", 0);
    unsigned callsBefore, callsAfter, largest;
    request r;
    reply got;

    testDiag("one datagram of five searches: one batch for the providers");
    epicsMutexMustLock(server.lock);
    callsBefore = server.resolveCalls;
    server.largestBatch = 0;
    epicsMutexUnlock(server.lock);
    r.used = 0;
    addVersion(&r, GW_CA_MINOR_VERSION, 41);
    addSearch(&r, "known:b1", 1, DONTREPLY);
    addSearch(&r, "relay:b2", 2, DONTREPLY);
    addSearch(&r, "unknown:b3", 3, DONTREPLY);
    addSearch(&r, "known:b4", 4, DONTREPLY);
    addSearch(&r, "relay:b5", 5, DONTREPLY);
    sendTo(client, r.buf.bytes, r.used, "127.0.0.1", port);
    testOk1(receiveReply(client, &got) == 0 && got.wellFormed);
    epicsMutexMustLock(server.lock);
    callsAfter = server.resolveCalls;
    largest = server.largestBatch;
    epicsMutexUnlock(server.lock);
    testOk(callsAfter - callsBefore == 1 && largest == 5,
           "resolved in %u call(s), %u names at most", callsAfter - callsBefore, largest);
    testOk(got.nAnswers == 4 && got.ids[0] == 1 && got.ids[1] == 2 && got.ids[2] == 4
           && got.ids[3] == 5, "the four served names answered in order (%u answers)",
           got.nAnswers);
    testOk(got.ports[0] == TEST_TCP_PORT && got.addresses[0] == GW_CA_ADDRESS_OF_SENDER,
           "a name served here: this server's port, the sender's address");
    testOk(got.ports[1] == 7777 && got.addresses[1] == 0x7f000007u
           && got.ports[3] == 7777 && got.addresses[3] == 0x7f000007u,
           "a name served elsewhere: that server's address and port (%x:%u)",
           (unsigned)got.addresses[1], got.ports[1]);

    testDiag("paused: a search is not answered; resumed: the next one is");
    {
        gwNameServerCounters before, now;
        int waited;

        gwNameServerGetCounters(names, &before);
        gwNameServerPause(names, 1);
        r.used = 0;
        addVersion(&r, GW_CA_MINOR_VERSION, 42);
        addSearch(&r, "known:paused", 61, DONTREPLY);
        sendTo(client, r.buf.bytes, r.used, "127.0.0.1", port);
        /* a bound, not a measurement: until the datagram was read */
        for (waited = 0; waited < 1000; waited++) {
            gwNameServerGetCounters(names, &now);
            if (now.ignored > before.ignored)
                break;
            epicsThreadSleep(0.01);
        }
        testOk(now.ignored == before.ignored + 1, "paused: the search was dropped");
        gwNameServerPause(names, 0);
        testOk(answersOnly(client, port, 62),
               "resumed: the next search is the first answered");
    }
    epicsSocketDestroy(client);
}

static void testNameServer(void)
{
    gwNameServer *names;
    gwNameServerCounters counters;
    unsigned short port;
    SOCKET probe;
    struct sockaddr_in a;

    resources before;

    startServer();
    port = server.config.port;
    before = resourcesSettled();
    names = gwNameServerStart(&server);
    server.names = names;
    testOk(names != NULL, "name server started");
    if (!names)
        testAbort("cannot go on");
    testSearches(port);
    testSettled(names, port);
    testIgnore(names, port);
    testMalformed(names, port);
    testManySearches(port);
    testBatchElsewherePause(names, port);
    gwNameServerGetCounters(names, &counters);
    testDiag("datagrams %lu ignored %lu malformed %lu searches %lu answered %lu replies %lu",
             counters.datagrams, counters.ignored, counters.malformed, counters.searches,
             counters.answered, counters.replyDatagrams);
    testOk1(counters.answered > 200 && counters.replyDatagrams >= 5);

    gwNameServerStop(names);
    testNothingLeft("name server stopped", before);
    testDiag("after stop the port is free: a socket without SO_REUSEADDR binds it");
    probe = epicsSocketCreate(AF_INET, SOCK_DGRAM, 0);
    a = gwTestAddress("127.0.0.1", port);
    testOk1(bind(probe, (struct sockaddr *)&a, sizeof a) == 0);
    epicsSocketDestroy(probe);
    probe = epicsSocketCreate(AF_INET, SOCK_DGRAM, 0);
    a = gwTestAddress("127.255.255.255", port);
    testOk1(bind(probe, (struct sockaddr *)&a, sizeof a) == 0);
    epicsSocketDestroy(probe);

    testDiag("a taken port makes start fail cleanly");
    probe = epicsSocketCreate(AF_INET, SOCK_DGRAM, 0);
    a = gwTestAddress("127.0.0.1", port);
    bind(probe, (struct sockaddr *)&a, sizeof a);
    before = resourcesSettled();
    testOk1(gwNameServerStart(&server) == NULL);
    testNothingLeft("failed start", before);
    epicsSocketDestroy(probe);

    testDiag("0.0.0.0 with other interfaces is refused");
    {
        char error[160];

        gwServerConfigParseAddresses(&server.config.interfaces, "0.0.0.0", port, "test",
                                     error, sizeof error);
        testOk1(gwNameServerStart(&server) == NULL);
    }
    gwServerConfigClear(&server.config);
    epicsMutexDestroy(server.lock);
}

#define TEST_GROUP "224.0.2.10"

/* interfaces "127.0.0.1 <group>": a search sent to the group on lo is
 * answered once, from the unicast socket (127.0.0.1:port). Before the
 * group had its own socket the server joined it on the socket bound to
 * 127.0.0.1, which Linux never gives a multicast datagram. */
static void testGroup(void)
{
    char error[160];
    gwNameServer *names;
    resources before;
    SOCKET client;
    struct in_addr loopback;
    struct sockaddr_in from;
    unsigned short port;
    request r;
    reply got;
    int n;
    union {
        double align;
        unsigned char bytes[1024];
    } buf;

    testDiag("a multicast group in the interface list");
    startServer();
    port = server.config.port;
    ellFree(&server.config.interfaces);
    if (gwServerConfigParseAddresses(&server.config.interfaces, "127.0.0.1 " TEST_GROUP, port,
                                     "interfaces", error, sizeof error) != 0)
        testAbort("%s", error);
    before = resourcesSettled();
    names = gwNameServerStart(&server);
    server.names = names;
    testOk(names != NULL, "name server on 127.0.0.1 and %s started", TEST_GROUP);
    if (!names)
        testAbort("cannot go on");
    client = gwTestUdpSocket("127.0.0.1", 0);
    loopback.s_addr = htonl(INADDR_LOOPBACK);
    if (setsockopt(client, IPPROTO_IP, IP_MULTICAST_IF, (char *)&loopback, sizeof loopback) != 0)
        testAbort("IP_MULTICAST_IF: %s", strerror(errno));
    r.used = 0;
    addVersion(&r, GW_CA_MINOR_VERSION, 3);
    addSearch(&r, "known:group", 41, DONTREPLY);
    sendTo(client, r.buf.bytes, r.used, TEST_GROUP, port);
    n = gwTestReceive(client, buf.bytes, sizeof buf.bytes, &from, WAIT_SECONDS);
    testOk(n > 0, "a search sent to %s:%u is answered", TEST_GROUP, port);
    testOk(n > 0 && from.sin_addr.s_addr == htonl(INADDR_LOOPBACK) && ntohs(from.sin_port) == port,
           "from the unicast socket 127.0.0.1:%u", port);
    testOk(answersOnly(client, port, 42) && !gwTestPending(client),
           "once: the next datagram answers the next request");
    sendTo(client, r.buf.bytes, r.used, TEST_GROUP, port);
    testOk(receiveReply(client, &got) == 0 && got.nAnswers == 1 && got.ids[0] == 41,
           "again: the group's socket goes on answering");
    epicsSocketDestroy(client);
    gwNameServerStop(names);
    testNothingLeft("name server with a group stopped", before);
    gwServerConfigClear(&server.config);
    epicsMutexDestroy(server.lock);
}

/* ---- beacons -------------------------------------------------------------- */

typedef struct beaconSeen {
    int ok;
    epicsUInt32 sequence;
} beaconSeen;

static beaconSeen receiveBeacon(SOCKET s)
{
    unsigned char buf[64];
    beaconSeen seen = {0, 0};
    int n = receive(s, buf, sizeof buf);
    gwCaMessage m;
    size_t used;

    if (n == 16 && gwCodecParseMessage(buf, 16, 0, &m, &used) == GW_CODEC_OK
        && m.header.command == CA_PROTO_RSRV_IS_UP && m.header.dataType == GW_CA_MINOR_VERSION
        && m.header.count == TEST_TCP_PORT && m.header.parameter2 == 0) {
        seen.ok = 1;
        seen.sequence = m.header.parameter1;
    }
    return seen;
}

/* Receive n beacons on s; their sequence numbers must count up from first. */
static int beaconsCountUp(SOCKET s, unsigned n, epicsUInt32 first)
{
    unsigned i;

    for (i = 0; i < n; i++) {
        beaconSeen b = receiveBeacon(s);

        if (!b.ok || b.sequence != first + i) {
            testDiag("beacon %u: ok %d sequence %u, expected %u", i, b.ok, (unsigned)b.sequence,
                     (unsigned)(first + i));
            return 0;
        }
    }
    return 1;
}

static void testBeacons(void)
{
    unsigned short beaconPort = freePort();
    SOCKET explicitReceiver = gwTestUdpSocket("127.0.0.2", beaconPort);
    SOCKET autoReceiver = gwTestUdpSocket("127.0.0.1", beaconPort);
    char error[160];
    gwBeacon *beacon;
    epicsTimeStamp t0, t1;
    resources before;

    testDiag("beacons to 127.0.0.2 (port from beaconPort) and, automatically, to the"
             " interface 127.0.0.1");
    memset(&server, 0, sizeof server);
    server.lock = epicsMutexMustCreate();
    server.tcpPort = TEST_TCP_PORT;
    server.config.port = freePort();
    server.config.beaconPort = beaconPort;
    server.config.beaconPeriod = 3600.0;
    server.config.autoBeaconAddresses = 1;
    if (gwServerConfigParseAddresses(&server.config.interfaces, "127.0.0.1", server.config.port,
                                     "interfaces", error, sizeof error) != 0)
        testAbort("%s", error);
    /* a node without a port: gwBeacon uses beaconPort */
    if (gwServerConfigParseAddresses(&server.config.beaconAddresses, "127.0.0.2", 0, "beacons",
                                     error, sizeof error) != 0)
        testAbort("%s", error);

    before = resourcesSettled();
    epicsTimeGetCurrent(&t0);
    beacon = gwBeaconStart(&server);
    testOk(beacon != NULL, "beacon sender started");
    if (!beacon)
        testAbort("cannot go on");
    testOk(beaconsCountUp(explicitReceiver, 4, 0), "first 4 beacons: RSRV_IS_UP, minor 13,"
           " TCP port, address 0, sequence 0..3");
    epicsTimeGetCurrent(&t1);
    testDiag("the first 4 came within %.3f s", epicsTimeDiffInSeconds(&t1, &t0));
    testOk(beaconsCountUp(autoReceiver, 4, 0), "the automatic destination got the same");

    gwBeaconAnomaly(beacon);
    epicsTimeGetCurrent(&t0);
    {
        beaconSeen b = receiveBeacon(explicitReceiver);
        epicsUInt32 from = b.sequence;

        testOk(b.ok && b.sequence >= 4, "after an anomaly: sequence goes on (%u)",
               (unsigned)b.sequence);
        testOk1(beaconsCountUp(explicitReceiver, 3, from + 1));
    }
    epicsTimeGetCurrent(&t1);
    testDiag("4 beacons after the anomaly within %.3f s", epicsTimeDiffInSeconds(&t1, &t0));
    gwBeaconAnomaly(beacon);
    gwBeaconAnomaly(beacon);
    gwBeaconStop(beacon);
    testNothingLeft("beacon sender stopped", before);
    gwBeaconAnomaly(NULL);
    gwBeaconStop(NULL);

    epicsSocketDestroy(explicitReceiver);
    epicsSocketDestroy(autoReceiver);
    gwServerConfigClear(&server.config);
    epicsMutexDestroy(server.lock);
}

MAIN(gwNameServerTest)
{
    (void)argc; /* MAIN() names them; this test takes no arguments */
    (void)argv;
    if (!gwTestInNetns()) {
        testPlan(1);
        testSkip(1, "opens sockets: run inside scripts/netns run");
        return testDone();
    }
    testPlan(74);
    errlogFlush(); /* start errlog's thread now, so that thread counts stay put */
    testNameServer();
    testGroup();
    testBeacons();
    return testDone();
}
