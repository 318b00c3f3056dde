/* gwBeaconWatchTest.c - the beacon watch (gwBeaconWatch.c) against a
 * stand-in CA repeater: it registers, and reports a server that is new or
 * whose beacon count went back, and nothing else; malformed datagrams are
 * ignored; stop leaves no thread running.
 *
 * Opens loopback sockets: run inside scripts/netns run (make runtests does).
 */
#include <poll.h>
#include <string.h>

#include <epicsTypes.h>
#include <caProto.h>
#include <envDefs.h>
#include <epicsAtomic.h>
#include <epicsStdio.h>
#include <epicsThread.h>
#include <epicsUnitTest.h>
#include <osiSock.h>
#include <testMain.h>

#include "gwTestNetns.h"
#include "gwBeaconWatch.h"

#define WAIT_SECONDS 10.0

static size_t started;

static void onStarted(void *arg)
{
    (void)arg;
    epicsAtomicIncrSizeT(&started);
}

/* Wait (bounded) until the count reaches want; then make sure it stays. */
static size_t countAfter(size_t want)
{
    double waited = 0.0;

    while (epicsAtomicGetSizeT(&started) < want && waited < WAIT_SECONDS) {
        epicsThreadSleep(0.01);
        waited += 0.01;
    }
    epicsThreadSleep(0.1);
    return epicsAtomicGetSizeT(&started);
}

static void beacon(SOCKET repeater, const struct sockaddr_in *watcher, epicsUInt32 address,
                   epicsUInt16 port, epicsUInt32 sequence)
{
    caHdr h;

    memset(&h, 0, sizeof h);
    h.m_cmmd = htons(CA_PROTO_RSRV_IS_UP);
    h.m_dataType = htons(13);
    h.m_count = htons(port);
    h.m_cid = htonl(sequence);
    h.m_available = htonl(address);
    sendto(repeater, (const char *)&h, sizeof h, 0, (const struct sockaddr *)watcher,
           sizeof *watcher);
}

MAIN(gwBeaconWatchTest)
{
    SOCKET repeater;
    struct sockaddr_in a, watcher;
    osiSocklen_t size = sizeof a;
    char port[16];
    caHdr reg;
    struct pollfd p;
    gwBeaconWatch *watch;
    size_t n;

    (void)argc;
    (void)argv;
    testPlan(11);
    if (!gwTestInNetns()) {
        testSkip(11, "opens sockets: run inside scripts/netns run");
        return testDone();
    }
    osiSockAttach();

    repeater = epicsSocketCreate(AF_INET, SOCK_DGRAM, IPPROTO_UDP);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    testOk1(bind(repeater, (struct sockaddr *)&a, sizeof a) == 0
            && getsockname(repeater, (struct sockaddr *)&a, &size) == 0);
    epicsSnprintf(port, sizeof port, "%u", ntohs(a.sin_port));
    epicsEnvSet("EPICS_CA_REPEATER_PORT", port);
    testDiag("stand-in repeater on 127.0.0.1:%s", port);

    watch = gwBeaconWatchStart(onStarted, NULL);
    testOk(watch != NULL, "watch started");
    if (!watch)
        testAbort("cannot go on");

    p.fd = repeater;
    p.events = POLLIN;
    p.revents = 0;
    size = sizeof watcher;
    memset(&reg, 0, sizeof reg);
    testOk(poll(&p, 1, (int)(WAIT_SECONDS * 1000)) == 1
           && recvfrom(repeater, (char *)&reg, sizeof reg, 0, (struct sockaddr *)&watcher, &size)
                  == (int)sizeof reg
           && ntohs(reg.m_cmmd) == REPEATER_REGISTER
           && ntohl(reg.m_available) == INADDR_LOOPBACK,
           "the watch registers with the repeater");

    beacon(repeater, &watcher, 0x7f000001u, 5070, 0);
    testOk(countAfter(1) == 1, "a new server is reported");
    beacon(repeater, &watcher, 0x7f000001u, 5070, 1);
    beacon(repeater, &watcher, 0x7f000001u, 5070, 2);
    testOk(countAfter(2) == 1, "its next beacons are not");
    beacon(repeater, &watcher, 0x7f000001u, 5071, 7);
    testOk(countAfter(2) == 2, "another port on the same host is another server");
    beacon(repeater, &watcher, 0x7f000001u, 5070, 0);
    testOk(countAfter(3) == 3, "a beacon count that went back is a restart");

    {
        unsigned char junk[40];
        caHdr h;

        memset(junk, 0xff, sizeof junk);
        sendto(repeater, (const char *)junk, 7, 0, (struct sockaddr *)&watcher, sizeof watcher);
        sendto(repeater, (const char *)junk, sizeof junk, 0, (struct sockaddr *)&watcher,
               sizeof watcher);
        memset(&h, 0, sizeof h);
        h.m_cmmd = htons(CA_PROTO_RSRV_IS_UP);
        h.m_postsize = htons(8);    /* a beacon never has a payload */
        h.m_count = htons(6000);
        sendto(repeater, (const char *)&h, sizeof h, 0, (struct sockaddr *)&watcher,
               sizeof watcher);
        sendto(repeater, (const char *)&h, 0, 0, (struct sockaddr *)&watcher, sizeof watcher);
        testOk(countAfter(4) == 3, "short, junk, payload-carrying and empty datagrams: nothing");
    }
    {
        caHdr two[2];

        memset(two, 0, sizeof two);
        two[0].m_cmmd = htons(REPEATER_CONFIRM);
        two[1].m_cmmd = htons(CA_PROTO_RSRV_IS_UP);
        two[1].m_count = htons(6001);
        two[1].m_available = htonl(0x7f000002u);
        sendto(repeater, (const char *)two, sizeof two, 0, (struct sockaddr *)&watcher,
               sizeof watcher);
        testOk(countAfter(4) == 4, "a beacon after another header in one datagram counts");
    }

    gwBeaconWatchStop(watch);
    n = epicsAtomicGetSizeT(&started);
    beacon(repeater, &watcher, 0x7f000003u, 5080, 0);
    epicsThreadSleep(0.2);
    testOk(epicsAtomicGetSizeT(&started) == n, "after stop: no callback");
    epicsSocketDestroy(repeater);

    /* the stand-in repeater is closed: nobody there, start still works */
    watch = gwBeaconWatchStart(onStarted, NULL);
    testOk(watch != NULL, "no repeater listening: the watch starts anyway");
    gwBeaconWatchStop(watch);
    return testDone();
}
