/* gwServer.c - the CA server instance: start and stop, the TCP listeners,
 * the I/O loops, the circuit registry and the providers.
 *
 * Threads: start/stop on the iocsh thread (or an exit handler); accepts on
 * the first I/O loop; stuck-circuit checks on each loop's tick; reports on
 * any thread. One instance at a time is what gwIoc.c allows, but nothing
 * here is global.
 * Locks: server->lock guards the circuit list; it is taken before a
 * circuit's lock and never held while a provider or a circuit close runs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <addrList.h>
#include <envDefs.h>
#include <epicsAtomic.h>
#include <epicsMutex.h>

#include "gwBeacon.h"
#include "gwCircuit.h"
#include "gwCodec.h"
#include "gwLog.h"
#include "gwNameServer.h"
#include "gwProviderCall.h"
#include "gwServerPriv.h"
#include "gwText.h"

#define GW_SERVER_MAX_LISTENERS 8
#define GW_SERVER_ACCEPT_BURST 64   /* connections taken per wake-up and listener */
#define GW_CA_MAX_TCP 16384u

typedef struct gwLoopContext {
    gwServer *server;
    unsigned index;
} gwLoopContext;

struct gwServer {
    gwServerConfig config;
    gwProvider *providers[GW_SERVER_MAX_PROVIDERS];
    unsigned nProviders;
    gwIoLoop **loops;
    gwLoopContext *loopContexts;     /* one per loop: the loop's tick and stop argument */
    unsigned nLoops;
    gwIoTask watchTask;              /* registers the listeners on loop 0 */
    unsigned nextLoop;               /* accept loop only */
    SOCKET listeners[GW_SERVER_MAX_LISTENERS];
    unsigned nListeners;
    unsigned short tcpPort;
    size_t maxMessage;
    double stuckSeconds;
    epicsMutexId lock;
    ELLLIST circuits;                /* gwCircuit, guarded by lock */
    gwNameServer *names;
    gwBeacon *beacon;
    int paused;                      /* iocPause                        (lock) */
    int listening;                   /* listeners watched on loop 0 (loop 0 only) */
    int bound;                       /* the providers are bound (start/stop only) */
    gwServerCounters counters;
};

/* ---------------------------------------------------------------- providers */

#ifdef GW_LOCK_RULE_CHECK
__thread unsigned gwProviderCallbackDepth GW_TLS_INITIAL_EXEC;
#endif

/* Ask one provider about the queries not yet answered YES or ELSEWHERE. */
static void resolveWith(gwProvider *p, const gwClientIdentity *client,
                        gwExistsQuery *queries, unsigned count, gwProvider **providers)
{
    gwExistsQuery ask[GW_SERVER_RESOLVE_MAX];
    unsigned index[GW_SERVER_RESOLVE_MAX];
    unsigned i, n = 0;

    for (i = 0; i < count; i++) {
        if (queries[i].answer == GW_EXISTS_YES || queries[i].answer == GW_EXISTS_ELSEWHERE)
            continue;
        memset(&ask[n], 0, sizeof ask[n]);
        ask[n].pvName = queries[i].pvName;
        ask[n].answer = GW_EXISTS_NO;
        index[n++] = i;
    }
    if (!n)
        return;
    gwCallExists(p, client, ask, n);
    for (i = 0; i < n; i++) {
        gwExistsQuery *q = &queries[index[i]];
        switch (ask[i].answer) {
        case GW_EXISTS_YES:
        case GW_EXISTS_ELSEWHERE:
            *q = ask[i];
            if (providers)
                providers[index[i]] = p;
            break;
        case GW_EXISTS_PENDING:
            q->answer = GW_EXISTS_PENDING;
            break;
        case GW_EXISTS_NO:
            break;
        }
    }
}

void gwServerResolve(gwServer *server, const gwClientIdentity *client,
                     gwExistsQuery *queries, unsigned count, gwProvider **providers)
{
    unsigned i;

    if (count > GW_SERVER_RESOLVE_MAX)
        count = GW_SERVER_RESOLVE_MAX;  /* callers batch by the limit */
    for (i = 0; i < count; i++) {
        queries[i].answer = GW_EXISTS_NO;
        if (providers)
            providers[i] = NULL;
    }
    for (i = 0; i < server->nProviders; i++)
        resolveWith(server->providers[i], client, queries, count, providers);
}

gwExistsAnswer gwServerResolveOne(gwServer *server, const char *pvName,
                                  const gwClientIdentity *client, gwProvider **provider,
                                  struct sockaddr_in *where)
{
    gwExistsQuery query;

    memset(&query, 0, sizeof query);
    query.pvName = pvName;
    gwServerResolve(server, client, &query, 1, provider);
    if (where && query.answer == GW_EXISTS_ELSEWHERE)
        *where = query.where;
    return query.answer;
}

void gwServerSearchesDone(gwServer *server)
{
    unsigned i;

    for (i = 0; i < server->nProviders; i++)
        gwCallSearchesDone(server->providers[i]);
}

/* ---- the callbacks table every provider is given (gwProvider.h) ---- */

static void callbackNamesSettled(void *arg, const char *const *pvNames, unsigned count)
{
    gwServer *server = arg;

    GW_CALLBACK_ENTER();
    gwNameServerSettled(server->names, pvNames, count);
    GW_CALLBACK_LEAVE();
}

static void callbackBeaconAnomaly(void *arg)
{
    gwServer *server = arg;

    GW_CALLBACK_ENTER();
    gwBeaconAnomaly(server->beacon);
    GW_CALLBACK_LEAVE();
}

void gwServerBeaconAnomaly(gwServer *server)
{
    gwBeaconAnomaly(server->beacon);
}

static void callbackDeliveryHold(void *arg, gwDeliveryBatch *batch)
{
    (void)arg;
    GW_CALLBACK_ENTER();
    gwCircuitDeliveryHold(batch);
    GW_CALLBACK_LEAVE();
}

static void callbackDeliveryRelease(void *arg, gwDeliveryBatch *batch)
{
    (void)arg;
    GW_CALLBACK_ENTER();
    gwCircuitDeliveryRelease(batch);
    GW_CALLBACK_LEAVE();
}

static const gwServerCallbacks serverCallbacks = {
    .namesSettled = callbackNamesSettled,
    .beaconAnomaly = callbackBeaconAnomaly,
    .deliveryHold = callbackDeliveryHold,
    .deliveryRelease = callbackDeliveryRelease,
};

const gwServerConfig *gwServerGetConfig(const gwServer *server)
{
    return &server->config;
}

unsigned short gwServerTcpPort(const gwServer *server)
{
    return server->tcpPort;
}

size_t gwServerMaxMessage(const gwServer *server)
{
    return server->maxMessage;
}

gwServerCounters *gwServerGetCounters(gwServer *server)
{
    return &server->counters;
}

/* ---------------------------------------------------------------- circuits */

void gwServerCircuitAdd(gwServer *server, gwCircuit *circuit)
{
    epicsMutexMustLock(server->lock);
    ellAdd(&server->circuits, gwCircuitListNode(circuit));
    epicsMutexUnlock(server->lock);
    epicsAtomicIncrSizeT(&server->counters.circuitsAccepted);
}

void gwServerCircuitGone(gwServer *server, gwCircuit *circuit)
{
    epicsMutexMustLock(server->lock);
    ellDelete(&server->circuits, gwCircuitListNode(circuit));
    epicsMutexUnlock(server->lock);
}

/* Close the circuits of the loop this runs on that match (loop thread). The
 * loop is the one of the calling thread, not server->loops[]: a loop's
 * tick may run before gwServerStart has stored the loop there. */
static void closeCircuitsOf(gwServer *server, const epicsTimeStamp *stuckAt)
{
    for (;;) {
        gwCircuit *victim = NULL, *c;
        epicsMutexMustLock(server->lock);
        for (c = gwCircuitOfListNode(ellFirst(&server->circuits)); c && !victim;
             c = gwCircuitOfListNode(ellNext(gwCircuitListNode(c))))
            if (gwCircuitSweepCheck(c, stuckAt, server->stuckSeconds))
                victim = c;
        epicsMutexUnlock(server->lock);
        if (!victim)
            return;
        if (stuckAt)
            gwCircuitCloseStuck(victim, server->stuckSeconds);
        else
            gwCircuitClose(victim);
    }
}

static void loopTick(void *arg)
{
    gwLoopContext *context = arg;
    epicsTimeStamp now;

    epicsTimeGetCurrent(&now);
    closeCircuitsOf(context->server, &now);
}

static void loopStop(void *arg)
{
    gwLoopContext *context = arg;
    gwServer *server = context->server;
    unsigned i;

    if (context->index == 0)
        for (i = 0; i < server->nListeners; i++)
            gwIoLoopUnwatch(server->loops[0], server->listeners[i]);
    closeCircuitsOf(server, NULL);
}

/* ---------------------------------------------------------------- listeners */

static void listenerWatchTask(void *arg);

static void onAccept(void *arg, short revents)
{
    gwServer *server = arg;
    unsigned i;

    (void)revents;
    if (gwServerIsPaused(server)) {
        /* paused since the listeners were last set: the watch task posted
         * by gwServerPause has not run yet; leave the client waiting now */
        listenerWatchTask(server);
        return;
    }
    for (i = 0; i < server->nListeners; i++) {
        unsigned burst;
        for (burst = 0; burst < GW_SERVER_ACCEPT_BURST; burst++) {
            osiSockAddr peer;
            osiSocklen_t len = sizeof peer;
            SOCKET sock = epicsSocketAccept(server->listeners[i], &peer.sa, &len);
            if (sock == INVALID_SOCKET)
                break;
            gwCircuitCreate(server, server->loops[server->nextLoop++ % server->nLoops], sock,
                            &peer.ia);
        }
    }
}

/* On loop 0: watch the listeners, or (paused) leave new connections
 * waiting in the backlog, as RSRV's paused listener does. */
static void listenerWatchTask(void *arg)
{
    gwServer *server = arg;
    short events;
    unsigned i;

    epicsMutexMustLock(server->lock);
    events = server->paused ? 0 : GW_IO_READ;
    epicsMutexUnlock(server->lock);
    for (i = 0; i < server->nListeners; i++) {
        if (!server->listening)
            gwIoLoopWatch(server->loops[0], server->listeners[i], events, onAccept, server);
        else
            gwIoLoopModify(server->loops[0], server->listeners[i], events);
    }
    server->listening = 1;
}

void gwServerPause(gwServer *server, int paused)
{
    epicsMutexMustLock(server->lock);
    server->paused = paused != 0;
    epicsMutexUnlock(server->lock);
    gwNameServerPause(server->names, paused);
    gwBeaconPause(server->beacon, paused);
    gwIoLoopPost(server->loops[0], &server->watchTask);
}

int gwServerIsPaused(const gwServer *server)
{
    gwServer *s = (gwServer *)server;
    int paused;

    epicsMutexMustLock(s->lock);
    paused = s->paused;
    epicsMutexUnlock(s->lock);
    return paused;
}

static void explainBindFailure(const osiSockAddr *addr, int error)
{
    char name[64];
    long rsrvPort = 0;

    ipAddrToDottedIP(&addr->ia, name, sizeof name);
    gwLog(GW_LOG_SERVER, GW_LOG_ERROR, "cannot listen on TCP %s: %s", name, strerror(error));
    if (error == EADDRINUSE) {
        if (envGetLongConfigParam(&EPICS_CAS_SERVER_PORT, &rsrvPort) != 0)
            envGetLongConfigParam(&EPICS_CA_SERVER_PORT, &rsrvPort);
        if (rsrvPort == ntohs(addr->ia.sin_port))
            gwLog(GW_LOG_SERVER, GW_LOG_ERROR,
                  "the IOC's own CA server (RSRV) already uses port %ld "
                  "(EPICS_CAS_SERVER_PORT); give gwStart another -sport, or move "
                  "RSRV with EPICS_CAS_SERVER_PORT", rsrvPort);
        else
            gwLog(GW_LOG_SERVER, GW_LOG_ERROR,
                  "another server holds that port; choose another -sport");
    }
}

static SOCKET openListener(osiSockAddr *addr)
{
    SOCKET sock = epicsSocketCreate(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    osiSockIoctl_t yes = 1;

    if (sock == INVALID_SOCKET)
        return sock;
    epicsSocketEnableAddressReuseDuringTimeWaitState(sock);
    if (bind(sock, &addr->sa, sizeof addr->ia) != 0 || listen(sock, 128) != 0) {
        int error = SOCKERRNO;
        epicsSocketDestroy(sock);
        explainBindFailure(addr, error);
        return INVALID_SOCKET;
    }
    socket_ioctl(sock, FIONBIO, &yes);
    return sock;
}

/* One listener per unicast interface (INADDR_ANY when none is given). */
static int openListeners(gwServer *server)
{
    osiSockAddrNode *node;
    osiSockAddr addr;

    memset(&addr, 0, sizeof addr);
    addr.ia.sin_family = AF_INET;
    addr.ia.sin_port = htons(server->config.port);
    for (node = (osiSockAddrNode *)ellFirst(&server->config.interfaces); node;
         node = (osiSockAddrNode *)ellNext(&node->node)) {
        if (IN_MULTICAST(ntohl(node->addr.ia.sin_addr.s_addr)))
            continue;
        if (server->nListeners == GW_SERVER_MAX_LISTENERS)
            break;
        addr.ia.sin_addr = node->addr.ia.sin_addr;
        server->listeners[server->nListeners] = openListener(&addr);
        if (server->listeners[server->nListeners] == INVALID_SOCKET)
            return -1;
        server->nListeners++;
    }
    if (server->nListeners == 0) {
        addr.ia.sin_addr.s_addr = htonl(INADDR_ANY);
        server->listeners[0] = openListener(&addr);
        if (server->listeners[0] == INVALID_SOCKET)
            return -1;
        server->nListeners = 1;
    }
    {
        osiSockAddr bound;
        osiSocklen_t len = sizeof bound;
        getsockname(server->listeners[0], &bound.sa, &len);
        server->tcpPort = ntohs(bound.ia.sin_port);
    }
    return 0;
}

void gwServerGetStatistics(gwServer *server, gwServerStatistics *out)
{
    const gwServerCounters *n = &server->counters;
    gwNameServerCounters names;
    gwCircuit *c;
    unsigned i;

    memset(out, 0, sizeof *out);
    epicsMutexMustLock(server->lock);
    for (c = gwCircuitOfListNode(ellFirst(&server->circuits)); c;
         c = gwCircuitOfListNode(ellNext(gwCircuitListNode(c)))) {
        out->clients++;
        out->channels += gwCircuitChannelCount(c);
    }
    epicsMutexUnlock(server->lock);
    out->circuitsAccepted = epicsAtomicGetSizeT(&n->circuitsAccepted);
    out->requests = epicsAtomicGetSizeT(&n->requests);
    out->bytesReceived = epicsAtomicGetSizeT(&n->bytesReceived);
    out->bytesSent = epicsAtomicGetSizeT(&n->bytesSent);
    out->channelsCreated = epicsAtomicGetSizeT(&n->channelsCreated);
    out->updatesReceived = epicsAtomicGetSizeT(&n->updatesReceived);
    out->updatesSent = epicsAtomicGetSizeT(&n->updatesSent);
    out->updatesReplaced = epicsAtomicGetSizeT(&n->updatesReplaced);
    out->updatesDropped = epicsAtomicGetSizeT(&n->updatesDropped);
    for (i = 0; i < server->nLoops; i++)
        out->loopPasses += gwIoLoopPasses(server->loops[i]);
    if (server->names) {
        gwNameServerGetCounters(server->names, &names);
        out->searchDatagrams = names.datagrams;
        out->searches = names.searches;
        out->searchesAnswered = names.answered;
    }
}

/* ---------------------------------------------------------------- start/stop */

static void stopLoops(gwServer *server)
{
    unsigned i;

    for (i = 0; i < server->nLoops; i++)
        if (server->loops[i]) {
            gwIoLoopStop(server->loops[i], loopStop, &server->loopContexts[i]);
            server->loops[i] = NULL;
        }
}

static void destroy(gwServer *server)
{
    unsigned i;

    stopLoops(server);
    for (i = 0; i < server->nListeners; i++)
        epicsSocketDestroy(server->listeners[i]);
    gwServerConfigClear(&server->config);
    if (server->lock)
        epicsMutexDestroy(server->lock);
    free(server->loops);
    free(server->loopContexts);
    free(server);
}

static int startLoops(gwServer *server)
{
    unsigned i;
    unsigned n = server->config.ioThreads ? server->config.ioThreads : GW_SERVER_DEFAULT_IO_THREADS;

    server->loops = calloc(n, sizeof *server->loops);
    server->loopContexts = calloc(n, sizeof *server->loopContexts);
    if (!server->loops || !server->loopContexts)
        return -1;
    for (i = 0; i < n; i++) {
        char name[32];
        sprintf(name, "gwIo%u", i);
        server->loopContexts[i].server = server;
        server->loopContexts[i].index = i;
        server->loops[i] = gwIoLoopCreate(name, loopTick, &server->loopContexts[i]);
        if (!server->loops[i])
            return -1;
        server->nLoops++;
    }
    return 0;
}

gwServer *gwServerStart(gwServerConfig *config, gwProvider *const *providers,
                        unsigned nProviders)
{
    gwServer *server;
    unsigned i;

    if (nProviders > GW_SERVER_MAX_PROVIDERS || !(server = calloc(1, sizeof *server)))
        return NULL;
    server->config = *config;
    ellInit(&config->interfaces);
    ellInit(&config->ignoreAddresses);
    ellInit(&config->beaconAddresses);
    memcpy(server->providers, providers, nProviders * sizeof *providers);
    server->nProviders = nProviders;
    server->maxMessage = server->config.maxArrayBytes + GW_CA_EXTENDED_HEADER_SIZE;
    if (server->maxMessage < GW_CA_MAX_TCP)
        server->maxMessage = GW_CA_MAX_TCP;
    server->stuckSeconds = server->config.sendTimeout > 0 ? server->config.sendTimeout
                                                          : GW_SERVER_DEFAULT_SEND_TIMEOUT;
    ellInit(&server->circuits);
    server->lock = epicsMutexCreate();
    if (!server->lock || openListeners(server) != 0 || startLoops(server) != 0) {
        destroy(server);
        return NULL;
    }
    server->names = gwNameServerStart(server);
    server->beacon = gwBeaconStart(server);
    if (!server->names || !server->beacon) {
        gwServerStop(server);
        return NULL;
    }
    for (i = 0; i < server->nProviders; i++)
        gwCallBind(server->providers[i], &serverCallbacks, server);
    server->bound = 1;
    gwIoTaskInit(&server->watchTask, listenerWatchTask, server);
    gwIoLoopPost(server->loops[0], &server->watchTask);
    return server;
}

void gwServerStop(gwServer *server)
{
    unsigned i;

    /* circuits first: every channel is detached before the providers are
     * let go; the name server and beacons outlive the providers' last
     * callback (unbind waits for it) */
    stopLoops(server);
    if (server->bound)
        for (i = 0; i < server->nProviders; i++)
            gwCallUnbind(server->providers[i]);
    if (server->names)
        gwNameServerStop(server->names);
    if (server->beacon)
        gwBeaconStop(server->beacon);
    destroy(server);
}

void gwServerReport(gwServer *server, FILE *out, unsigned level)
{
    gwServerStatistics n;
    gwText text = GW_TEXT_INIT;
    gwCircuit *c;

    gwServerGetStatistics(server, &n);
    gwTextPrintf(&text, "gateway CA server on TCP port %u: %u clients, %u channels, "
                 "%u I/O threads%s\n",
                 server->tcpPort, n.clients, n.channels, server->nLoops,
                 gwServerIsPaused(server) ? " (paused)" : "");
    if (level > 0) {
        gwTextPrintf(&text, "  updates: %lu received, %lu sent, %lu replaced, %lu dropped; "
                     "%lu requests, %lu bytes in, %lu bytes out\n",
                     n.updatesReceived, n.updatesSent, n.updatesReplaced, n.updatesDropped,
                     n.requests, n.bytesReceived, n.bytesSent);
        epicsMutexMustLock(server->lock);
        for (c = gwCircuitOfListNode(ellFirst(&server->circuits)); c;
             c = gwCircuitOfListNode(ellNext(gwCircuitListNode(c))))
            gwCircuitReport(c, &text, level);
        epicsMutexUnlock(server->lock);
    }
    gwTextFlush(&text, out);
}

unsigned gwServerGetClients(gwServer *server, gwServerClient *out, unsigned max)
{
    gwCircuit *c;
    unsigned n = 0;

    epicsMutexMustLock(server->lock);
    for (c = gwCircuitOfListNode(ellFirst(&server->circuits)); c;
         c = gwCircuitOfListNode(ellNext(gwCircuitListNode(c))), n++)
        if (n < max)
            gwCircuitTraffic(c, &out[n]);
    epicsMutexUnlock(server->lock);
    return n;
}

int gwServerCurrentClient(char *buf, size_t size)
{
    gwCircuit *circuit = gwCircuitCurrent();

    if (!circuit)
        return -1;
    gwCircuitDescribe(circuit, buf, size);
    return 0;
}
