/* gwBeacon.c - beacons (RSRV_IS_UP) and the beacon anomaly sequence.
 *
 * One thread ("gwBeacon") sends a beacon to every destination, then waits:
 * 0.02 s after start, doubling after each beacon up to beaconPeriod, as
 * RSRV's online_notify.c does. gwBeaconAnomaly wakes the thread, which
 * sends at once and starts the doubling again from 0.02 s, so clients
 * that lost the server search again soon.
 *
 * A beacon carries minor version 13, the server's TCP port, a sequence
 * number counting up from 0 (wrapping), and address 0 ("use the sender's
 * address"), as RSRV sends it.
 *
 * Destinations: config->beaconAddresses, plus, when
 * config->autoBeaconAddresses, the broadcast addresses of the interfaces
 * listened on (of all interfaces when the list is empty or 0.0.0.0), like
 * RSRV's rsrv_build_addr_lists; duplicates removed, beaconPort where an
 * address has no port.
 *
 * Threads: gwBeaconStart/Stop from the server's start/stop; gwBeaconAnomaly
 * from any thread. beacon->lock guards `restart` and `stopping`; it is a
 * leaf lock (nothing else is taken or called while holding it).
 */
#include <stdlib.h>
#include <string.h>

#include <addrList.h>
#include <ellLib.h>
#include <envDefs.h>
#include <epicsEvent.h>
#include <epicsMutex.h>
#include <epicsThread.h>
#include <osiSock.h>

#include "gwCodec.h"
#include "gwBeacon.h"
#include "gwLog.h"
#include "gwServerPriv.h"

#define GW_BEACON_FIRST_DELAY 0.02

struct gwBeacon {
    SOCKET socket;
    ELLLIST destinations;     /* osiSockAddrNode, owned */
    int *lastErrors;          /* one per destination: errno of its last failed send */
    double period;
    epicsUInt16 tcpPort;
    epicsUInt32 sequence;     /* beacon thread only */
    epicsThreadId thread;
    epicsEventId wake;
    epicsMutexId lock;
    int restart;              /* lock: an anomaly asked for the fast sequence */
    int stopping;             /* lock */
    int paused;               /* lock: iocPause, no beacons */
};

static void sendBeacons(gwBeacon *beacon)
{
    unsigned char message[GW_CA_HEADER_SIZE];
    size_t size = gwCodecBuildBeacon(message, sizeof message, GW_CA_MINOR_VERSION,
                                     beacon->tcpPort, beacon->sequence, 0);
    const ELLNODE *cur;
    unsigned i;

    for (cur = ellFirst(&beacon->destinations), i = 0; cur; cur = ellNext(cur), i++) {
        const osiSockAddr *to = &((const osiSockAddrNode *)cur)->addr;
        char name[32];

        if (sendto(beacon->socket, (const char *)message, size, 0, &to->sa, sizeof to->ia) < 0) {
            int error = SOCKERRNO;

            if (error != beacon->lastErrors[i]) {
                char text[64];

                epicsSocketConvertErrnoToString(text, sizeof text);
                ipAddrToDottedIP(&to->ia, name, sizeof name);
                gwLog(GW_LOG_BEACON, GW_LOG_WARNING, "beacon to %s failed: %s", name, text);
            }
            beacon->lastErrors[i] = error;
        } else if (beacon->lastErrors[i]) {
            ipAddrToDottedIP(&to->ia, name, sizeof name);
            gwLog(GW_LOG_BEACON, GW_LOG_WARNING, "beacon to %s works again", name);
            beacon->lastErrors[i] = 0;
        }
    }
    beacon->sequence++;
}

static void beaconRun(void *arg)
{
    gwBeacon *beacon = arg;
    double delay = GW_BEACON_FIRST_DELAY;

    int paused = 0;

    for (;;) {
        int stopping, restart;

        if (!paused)
            sendBeacons(beacon);
        epicsEventWaitWithTimeout(beacon->wake, delay);
        epicsMutexMustLock(beacon->lock);
        stopping = beacon->stopping;
        restart = beacon->restart || (paused && !beacon->paused);
        paused = beacon->paused;
        beacon->restart = 0;
        epicsMutexUnlock(beacon->lock);
        if (stopping)
            break;
        if (restart)
            delay = GW_BEACON_FIRST_DELAY;
        else if (delay < beacon->period)
            delay = delay * 2.0 < beacon->period ? delay * 2.0 : beacon->period;
    }
}

/* ---- start and stop ----------------------------------------------------- */

static int openSocket(gwBeacon *beacon)
{
    int yes = 1;
    osiSockOptMcastLoop_t loop = 1;
    osiSockOptMcastTTL_t ttl = 1;
    long configuredTtl;

    beacon->socket = epicsSocketCreate(AF_INET, SOCK_DGRAM, 0);
    if (beacon->socket == INVALID_SOCKET) {
        gwLog(GW_LOG_BEACON, GW_LOG_ERROR, "cannot create the beacon socket");
        return -1;
    }
    if (setsockopt(beacon->socket, SOL_SOCKET, SO_BROADCAST, (char *)&yes, sizeof yes) != 0) {
        gwLog(GW_LOG_BEACON, GW_LOG_ERROR, "cannot enable broadcasts on the beacon socket");
        return -1;
    }
    /* Multicast beacons, as RSRV: loop back to this host, EPICS_CA_MCAST_TTL hops. */
    if (envGetLongConfigParam(&EPICS_CA_MCAST_TTL, &configuredTtl) == 0
        && configuredTtl > 0 && configuredTtl < 256)
        ttl = (osiSockOptMcastTTL_t)configuredTtl;
    if (setsockopt(beacon->socket, IPPROTO_IP, IP_MULTICAST_LOOP, (char *)&loop, sizeof loop) != 0
        || setsockopt(beacon->socket, IPPROTO_IP, IP_MULTICAST_TTL, (char *)&ttl, sizeof ttl) != 0)
        gwLog(GW_LOG_BEACON, GW_LOG_ERROR, "cannot set the multicast options of the beacon socket");
    return 0;
}

/* The broadcast addresses that RSRV's automatic beacon list would hold. */
static void discoverBroadcasts(gwBeacon *beacon, const gwServerConfig *config, ELLLIST *out)
{
    const ELLNODE *cur;
    int specific = 0;
    osiSockAddr match;

    memset(&match, 0, sizeof match);
    match.ia.sin_family = AF_INET;
    for (cur = ellFirst(&config->interfaces); cur; cur = ellNext(cur)) {
        const osiSockAddr *a = &((const osiSockAddrNode *)cur)->addr;
        epicsUInt32 top = ntohl(a->ia.sin_addr.s_addr) >> 24;

        if (a->ia.sin_addr.s_addr == htonl(INADDR_ANY) || (top >= 224 && top <= 239))
            continue;
        specific = 1;
        match.ia.sin_addr = a->ia.sin_addr;
        osiSockDiscoverBroadcastAddresses(out, beacon->socket, &match);
    }
    if (!specific) {
        match.ia.sin_addr.s_addr = htonl(INADDR_ANY);
        osiSockDiscoverBroadcastAddresses(out, beacon->socket, &match);
    }
}

static int buildDestinations(gwBeacon *beacon, const gwServerConfig *config)
{
    ELLLIST all = ELLLIST_INIT;
    ELLNODE *cur;

    if (gwServerConfigCopyAddresses(&all, &config->beaconAddresses, config->beaconPort) != 0)
        return -1;
    if (config->autoBeaconAddresses)
        discoverBroadcasts(beacon, config, &all);
    for (cur = ellFirst(&all); cur; cur = ellNext(cur)) {
        osiSockAddrNode *node = (osiSockAddrNode *)cur;

        if (node->addr.ia.sin_port == 0)
            node->addr.ia.sin_port = htons(config->beaconPort);
    }
    removeDuplicateAddresses(&beacon->destinations, &all, 1);
    if (ellCount(&beacon->destinations) == 0)
        gwLog(GW_LOG_BEACON, GW_LOG_WARNING,
              "the beacon address list is empty; clients will not notice"
              " a restart of the gateway at once");
    beacon->lastErrors = calloc(ellCount(&beacon->destinations) + 1u, sizeof *beacon->lastErrors);
    return beacon->lastErrors ? 0 : -1;
}

gwBeacon *gwBeaconStart(gwServer *server)
{
    const gwServerConfig *config = gwServerGetConfig(server);
    gwBeacon *beacon = calloc(1, sizeof *beacon);
    epicsThreadOpts options = EPICS_THREAD_OPTS_INIT;

    if (!beacon) {
        gwLog(GW_LOG_BEACON, GW_LOG_ERROR, "no memory for the beacon sender");
        return NULL;
    }
    beacon->socket = INVALID_SOCKET;
    ellInit(&beacon->destinations);
    beacon->period = config->beaconPeriod > 0.0 ? config->beaconPeriod : 15.0;
    beacon->tcpPort = gwServerTcpPort(server);
    beacon->wake = epicsEventCreate(epicsEventEmpty);
    beacon->lock = epicsMutexCreate();
    options.priority = epicsThreadPriorityCAServerLow;
    options.stackSize = epicsThreadGetStackSize(epicsThreadStackSmall);
    options.joinable = 1;
    if (!beacon->wake || !beacon->lock || openSocket(beacon) != 0
        || buildDestinations(beacon, config) != 0
        || !(beacon->thread = epicsThreadCreateOpt("gwBeacon", beaconRun, beacon, &options))) {
        gwLog(GW_LOG_BEACON, GW_LOG_ERROR, "cannot start the beacon sender");
        gwBeaconStop(beacon);
        return NULL;
    }
    return beacon;
}

void gwBeaconAnomaly(gwBeacon *beacon)
{
    if (!beacon)
        return;
    epicsMutexMustLock(beacon->lock);
    beacon->restart = 1;
    epicsMutexUnlock(beacon->lock);
    epicsEventSignal(beacon->wake);
}

void gwBeaconStop(gwBeacon *beacon)
{
    if (!beacon)
        return;
    if (beacon->thread) {
        epicsMutexMustLock(beacon->lock);
        beacon->stopping = 1;
        epicsMutexUnlock(beacon->lock);
        epicsEventSignal(beacon->wake);
        epicsThreadMustJoin(beacon->thread);
    }
    if (beacon->socket != INVALID_SOCKET)
        epicsSocketDestroy(beacon->socket);
    ellFree(&beacon->destinations);
    free(beacon->lastErrors);
    if (beacon->wake)
        epicsEventDestroy(beacon->wake);
    if (beacon->lock)
        epicsMutexDestroy(beacon->lock);
    free(beacon);
}

void gwBeaconPause(gwBeacon *beacon, int paused)
{
    epicsMutexMustLock(beacon->lock);
    beacon->paused = paused != 0;
    epicsMutexUnlock(beacon->lock);
    epicsEventSignal(beacon->wake);
}
