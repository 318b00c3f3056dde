/* gwUpstreamSearchTest.c - unit test of the upstream provider's own
 * searches and search proxy (gwUpstreamSearch.c) with real sockets on
 * loopback: a stand-in IOC answers the searches, a stand-in libca sends
 * its searches to the proxy. A multicast group in the address list is
 * searched on loopback: a stand-in IOC that joined the group on lo hears
 * the searches from 127.0.0.1 (the namespace has no route to the group).
 *
 * Opens sockets: run only inside `scripts/netns run` (make runtests does).
 * Outside a private network namespace (GW_NETNS unset) it skips, or fails
 * where it must run (gwTestNetns.h).
 * Waits are bounds (WAIT_SECONDS), never measurements.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <caProto.h>
#include <envDefs.h>
#include <epicsMutex.h>
#include <epicsThread.h>
#include <epicsUnitTest.h>
#include <osiSock.h>
#include <testMain.h>

#include "gwCodec.h"
#include "gwTestNetns.h"
#include "gwTestUdp.h"
#include "gwUpstreamSearch.h"

#define WAIT_SECONDS 10.0
#define STORM_NAMES 40
#define IOC_TCP_PORT 5099u

/* What the found callback saw. */
typedef struct foundLog {
    epicsMutexId lock;
    unsigned count;
    char last[64];
    SOCKET libca;          /* checked from the callback */
    int libcaHadAnswer;    /* an answer waited at libca when a name was found */
} foundLog;

static foundLog found;

static void onFound(void *arg, const char **names, unsigned count)
{
    foundLog *log = arg;
    int answered = log->libca != INVALID_SOCKET && gwTestPending(log->libca);

    epicsMutexMustLock(log->lock);
    log->count += count;
    snprintf(log->last, sizeof log->last, "%s", names[count - 1]);
    log->libcaHadAnswer |= answered;
    epicsMutexUnlock(log->lock);
}

/* The last name found (copied into last). */
static void foundLast(char *last, size_t size)
{
    epicsMutexMustLock(found.lock);
    snprintf(last, size, "%s", found.last);
    epicsMutexUnlock(found.lock);
}

static unsigned foundCount(void)
{
    unsigned n;

    epicsMutexMustLock(found.lock);
    n = found.count;
    epicsMutexUnlock(found.lock);
    return n;
}

/* Wait until n names were found (bounded). */
static int waitFound(unsigned n)
{
    int i;

    for (i = 0; i < (int)(WAIT_SECONDS * 1000) && foundCount() < n; i++)
        epicsThreadSleep(0.001);
    return foundCount() >= n;
}

/* The stand-in IOC: receive searches until `names` SEARCH messages came,
 * answer each (TCP port IOC_TCP_PORT, address of the sender) in one
 * datagram per request datagram. The number answered. */
static unsigned iocAnswer(SOCKET ioc, unsigned names)
{
    unsigned char in[4096], out[4096];
    unsigned answered = 0;

    while (answered < names) {
        struct sockaddr_in from;
        size_t offset = 0, used = 0;
        int got = gwTestReceive(ioc, in, sizeof in, &from, WAIT_SECONDS);

        if (got <= 0)
            break;
        while (offset < (size_t)got) {
            gwCaMessage m;
            gwCaSearch search;
            size_t step;

            if (gwCodecParseMessage(in + offset, (size_t)got - offset, (size_t)got, &m, &step)
                != GW_CODEC_OK)
                break;
            offset += step;
            if (m.header.command != CA_PROTO_SEARCH
                || gwCodecDecodeSearch(&m, &search) != GW_CODEC_OK)
                continue;
            used += gwCodecBuildSearchReply(out + used, sizeof out - used, IOC_TCP_PORT,
                                            GW_CA_ADDRESS_OF_SENDER, search.searchId, 13);
            answered++;
        }
        if (used)
            sendto(ioc, (const char *)out, used, 0, (struct sockaddr *)&from, sizeof from);
    }
    return answered;
}

static void sendToProxy(SOCKET libca, const unsigned char *buf, size_t len, unsigned short proxy)
{
    struct sockaddr_in to = gwTestAddress("127.0.0.1", proxy);

    if (sendto(libca, (const char *)buf, len, 0, (struct sockaddr *)&to, sizeof to) != (int)len)
        testAbort("sendto the proxy: %s", strerror(errno));
}

/* A datagram of libca's: VERSION, then a SEARCH per name, ids from firstId. */
static size_t libcaSearches(unsigned char *buf, size_t cap, const char *prefix, unsigned n,
                            unsigned firstId)
{
    size_t used = gwCodecBuildVersion(buf, cap, 0, 13, 0);
    unsigned i;

    for (i = 0; i < n; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s%02u", prefix, i);
        used += gwCodecBuildSearch(buf + used, cap - used, name, DONTREPLY, 13, firstId + i);
    }
    return used;
}

/* Answers to libca until `n` came or none comes within WAIT_SECONDS; each
 * one's id (firstId..firstId+n-1) is marked in seen[], the count of those
 * that name the IOC (its TCP port, 127.0.0.1) returned in *right. The
 * number of datagrams they came in is returned. */
static unsigned libcaAnswers(SOCKET libca, unsigned n, unsigned firstId, int *seen,
                             unsigned *right)
{
    unsigned char buf[4096];
    unsigned got = 0, datagrams = 0;

    *right = 0;
    while (got < n) {
        struct sockaddr_in from;
        size_t offset = 0;
        int len = gwTestReceive(libca, buf, sizeof buf, &from, WAIT_SECONDS);

        if (len <= 0)
            break;
        datagrams++;
        while (offset < (size_t)len) {
            gwCaMessage m;
            gwCaSearchReply reply;
            size_t step;

            if (gwCodecParseMessage(buf + offset, (size_t)len - offset, (size_t)len, &m, &step)
                != GW_CODEC_OK)
                break;
            offset += step;
            if (gwCodecDecodeSearchReply(&m, &reply) != GW_CODEC_OK
                || reply.searchId < firstId || reply.searchId >= firstId + n
                || seen[reply.searchId - firstId])
                continue;
            seen[reply.searchId - firstId] = 1;
            got++;
            if (reply.tcpPort == IOC_TCP_PORT && reply.serverAddress == INADDR_LOOPBACK)
                (*right)++;
        }
    }
    return datagrams;
}

/* A storm: 40 names searched and found, then libca searches for all 40 in
 * one datagram. The proxy may hold the last answer back (libca's round)
 * but must send it on its own: all 40 come, naming the IOC. */
static void testStormAnswersAllCome(gwUpSearch *search, SOCKET ioc, SOCKET libca,
                                    unsigned short proxy)
{
    unsigned char buf[4096];
    int seen[STORM_NAMES] = { 0 };
    unsigned i, right, datagrams;
    size_t len;

    for (i = 0; i < STORM_NAMES; i++) {
        char name[64];
        snprintf(name, sizeof name, "storm:%02u", i);
        gwUpSearchSend(search, name);
    }
    gwUpSearchFlush(search);
    testOk(iocAnswer(ioc, STORM_NAMES) == STORM_NAMES, "the IOC got one search per name");
    i = (unsigned)waitFound(STORM_NAMES);
    testOk(i, "all %d names reported found (%u)", STORM_NAMES, foundCount());

    len = libcaSearches(buf, sizeof buf, "storm:", STORM_NAMES, 1000);
    sendToProxy(libca, buf, len, proxy);
    datagrams = libcaAnswers(libca, STORM_NAMES, 1000, seen, &right);
    for (i = 0; i < STORM_NAMES && seen[i]; i++)
        ;
    testOk(i == STORM_NAMES, "libca got an answer for each of its %d searches, the held one "
           "too, with nothing else happening (%u datagrams)", STORM_NAMES, datagrams);
    testOk(right == STORM_NAMES, "each names the IOC's address and TCP port (%u of %d)", right,
           STORM_NAMES);
    testOk(!gwTestPending(ioc), "the IOC was not asked again");
}

/* libca searches for a name nobody searched for yet: the proxy searches
 * upstream; when the IOC answers, the name is reported found (the
 * provider makes channels then) BEFORE libca gets its answer, so that an
 * answer ending libca's round finds the new channels waiting. */
static void testFoundBeforeLibcaAnswered(SOCKET ioc, SOCKET libca, unsigned short proxy)
{
    unsigned char buf[512];
    int seen[1] = { 0 };
    unsigned before = foundCount(), right;
    char last[64];
    size_t len = libcaSearches(buf, sizeof buf, "late:", 1, 2000);

    sendToProxy(libca, buf, len, proxy);
    testOk(iocAnswer(ioc, 1) == 1, "libca's search for an unknown name went upstream");
    testOk1(waitFound(before + 1));
    foundLast(last, sizeof last);
    testOk(strcmp(last, "late:00") == 0, "the IOC's answer reported the name found (%s)", last);
    libcaAnswers(libca, 1, 2000, seen, &right);
    testOk(seen[0] && right == 1, "libca got its answer, naming the IOC");
    testOk(!found.libcaHadAnswer, "libca's answer went after the name was reported found");
}

#define GROUP "224.0.2.9"

/* A UDP socket bound to GROUP (any port), joined to it on lo. */
static SOCKET groupSocket(void)
{
    SOCKET s = gwTestUdpSocket(GROUP, 0);
    struct ip_mreq request;

    memset(&request, 0, sizeof request);
    request.imr_multiaddr.s_addr = inet_addr(GROUP);
    request.imr_interface.s_addr = htonl(INADDR_LOOPBACK);
    if (setsockopt(s, IPPROTO_IP, IP_ADD_MEMBERSHIP, (char *)&request, sizeof request) != 0)
        testAbort("join %s on lo: %s", GROUP, strerror(errno));
    return s;
}

/* EPICS_CA_ADDR_LIST names a group only: the own search reaches a member
 * on lo from 127.0.0.1, and the member's answer reports the name found. */
static void testMulticastSearchOnLoopback(SOCKET ioc)
{
    SOCKET member = groupSocket();
    gwUpSearch *search;
    unsigned char in[1024], out[64];
    struct sockaddr_in from;
    gwCaMessage m;
    gwCaSearch query;
    size_t step, offset = 0, used = 0;
    unsigned before = foundCount();
    int got;

    epicsEnvSet("EPICS_CA_ADDR_LIST", GROUP);
    search = gwUpSearchCreate(gwTestBoundPort(member), onFound, &found);
    if (!search)
        testAbort("cannot make the search for %s", GROUP);
    gwUpSearchSend(search, "mcast:x");
    gwUpSearchFlush(search);
    got = gwTestReceive(member, in, sizeof in, &from, WAIT_SECONDS);
    testOk(got > 0, "a member of %s on lo got the search", GROUP);
    testOk(got > 0 && from.sin_addr.s_addr == htonl(INADDR_LOOPBACK),
           "sent from 127.0.0.1 (%s)", got > 0 ? inet_ntoa(from.sin_addr) : "nothing");
    while (got > 0 && offset < (size_t)got
           && gwCodecParseMessage(in + offset, (size_t)got - offset, (size_t)got, &m, &step)
                  == GW_CODEC_OK) {
        offset += step;
        if (m.header.command == CA_PROTO_SEARCH && gwCodecDecodeSearch(&m, &query) == GW_CODEC_OK)
            used = gwCodecBuildSearchReply(out, sizeof out, IOC_TCP_PORT,
                                           GW_CA_ADDRESS_OF_SENDER, query.searchId, 13);
    }
    if (used)
        sendto(ioc, (const char *)out, used, 0, (struct sockaddr *)&from, sizeof from);
    testOk(used && waitFound(before + 1), "the member's answer reported the name found");
    gwUpSearchDestroy(search);
    epicsSocketDestroy(member);
}

MAIN(gwUpstreamSearchTest)
{
    SOCKET ioc, libca;
    gwUpSearch *search;
    unsigned short proxy;
    gwUpSearchCounts counts;

    (void)argc;
    (void)argv;
    if (!gwTestInNetns()) {
        testPlan(1);
        testSkip(1, "opens sockets: run inside scripts/netns run");
        return testDone();
    }
    testPlan(15);
    osiSockAttach();
    found.lock = epicsMutexMustCreate();
    found.libca = INVALID_SOCKET;
    ioc = gwTestUdpSocket("127.0.0.1", 0);
    libca = gwTestUdpSocket("127.0.0.1", 0);
    epicsEnvSet("EPICS_CA_ADDR_LIST", "127.0.0.1");
    epicsEnvSet("EPICS_CA_AUTO_ADDR_LIST", "NO");
    search = gwUpSearchCreate(gwTestBoundPort(ioc), onFound, &found);
    proxy = gwUpSearchProxyPort(search);
    testOk(search && proxy, "made, with a search proxy on port %u", proxy);
    if (!search || !proxy)
        testAbort("cannot go on without the search proxy");
    found.libca = libca;

    testStormAnswersAllCome(search, ioc, libca, proxy);
    testFoundBeforeLibcaAnswered(ioc, libca, proxy);

    gwUpSearchGetCounts(search, &counts);
    testOk(counts.libcaSearches == STORM_NAMES + 1 && counts.libcaAnswered == STORM_NAMES + 1,
           "libca's searches counted: %zu passed, %zu answered", counts.libcaSearches,
           counts.libcaAnswered);
    gwUpSearchDestroy(search);
    testMulticastSearchOnLoopback(ioc);
    epicsSocketDestroy(ioc);
    epicsSocketDestroy(libca);
    epicsMutexDestroy(found.lock);
    return testDone();
}
