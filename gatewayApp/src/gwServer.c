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
#include <errlog.h>

#include "gwCircuitPriv.h"
#include "gwServerPriv.h"

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
    gwServerCounters counters;
};

/* ---------------------------------------------------------------- providers */

gwExistsAnswer gwServerFindProvider(gwServer *server, const char *pvName,
                                    const gwClientIdentity *client, gwProvider **provider)
{
    gwExistsAnswer answer = GW_EXISTS_NO;
    unsigned i;

    for (i = 0; i < server->nProviders; i++) {
        gwProvider *p = server->providers[i];
        gwExistsAnswer a = p->ops->exists(p->self, pvName, client);
        if (a == GW_EXISTS_YES) {
            if (provider)
                *provider = p;
            return a;
        }
        if (a == GW_EXISTS_PENDING)
            answer = a;
    }
    return answer;
}

void gwServerSearchesDone(gwServer *server)
{
    unsigned i;

    for (i = 0; i < server->nProviders; i++) {
        gwProvider *p = server->providers[i];
        if (p->ops->searchesDone)
            p->ops->searchesDone(p->self);
    }
}

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
    ellAdd(&server->circuits, &circuit->node);
    epicsMutexUnlock(server->lock);
    epicsAtomicIncrSizeT(&server->counters.circuitsAccepted);
}

void gwServerCircuitGone(gwServer *server, gwCircuit *circuit)
{
    epicsMutexMustLock(server->lock);
    ellDelete(&server->circuits, &circuit->node);
    epicsMutexUnlock(server->lock);
}

/* Close the circuits of one loop that match (loop thread). */
static void closeCircuitsOf(gwServer *server, gwIoLoop *loop, const epicsTimeStamp *stuckAt)
{
    for (;;) {
        gwCircuit *victim = NULL, *c;
        epicsMutexMustLock(server->lock);
        for (c = (gwCircuit *)ellFirst(&server->circuits); c && !victim;
             c = (gwCircuit *)ellNext(&c->node))
            if (c->loop == loop && (!stuckAt || gwCircuitIsStuck(c, stuckAt, server->stuckSeconds)))
                victim = c;
        epicsMutexUnlock(server->lock);
        if (!victim)
            return;
        if (stuckAt)
            errlogPrintf("gateway: closing the circuit of %s: it has not read for %.0f s\n",
                         victim->peer, server->stuckSeconds);
        gwCircuitClose(victim);
    }
}

static void loopTick(void *arg)
{
    gwLoopContext *context = arg;
    epicsTimeStamp now;

    epicsTimeGetCurrent(&now);
    closeCircuitsOf(context->server, context->server->loops[context->index], &now);
}

static void loopStop(void *arg)
{
    gwLoopContext *context = arg;
    gwServer *server = context->server;
    unsigned i;

    if (context->index == 0)
        for (i = 0; i < server->nListeners; i++)
            gwIoLoopUnwatch(server->loops[0], server->listeners[i]);
    closeCircuitsOf(server, server->loops[context->index], NULL);
}

/* ---------------------------------------------------------------- listeners */

static void onAccept(void *arg, short revents)
{
    gwServer *server = arg;
    unsigned i;

    (void)revents;
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

static void listenerWatchTask(void *arg)
{
    gwServer *server = arg;
    unsigned i;

    for (i = 0; i < server->nListeners; i++)
        gwIoLoopWatch(server->loops[0], server->listeners[i], GW_IO_READ, onAccept, server);
}

static void explainBindFailure(const osiSockAddr *addr, int error)
{
    char name[64];
    long rsrvPort = 0;

    ipAddrToDottedIP(&addr->ia, name, sizeof name);
    errlogPrintf("gwStart: cannot listen on TCP %s: %s\n", name, strerror(error));
    if (error == EADDRINUSE) {
        if (envGetLongConfigParam(&EPICS_CAS_SERVER_PORT, &rsrvPort) != 0)
            envGetLongConfigParam(&EPICS_CA_SERVER_PORT, &rsrvPort);
        if (rsrvPort == ntohs(addr->ia.sin_port))
            errlogPrintf("gwStart: the IOC's own CA server (RSRV) already uses port %ld "
                         "(EPICS_CAS_SERVER_PORT); give gwStart another -sport, or move "
                         "RSRV with EPICS_CAS_SERVER_PORT\n", rsrvPort);
        else
            errlogPrintf("gwStart: another server holds that port; choose another -sport\n");
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

void gwServerStats(gwServer *server, unsigned *channels, unsigned *clients)
{
    unsigned nChannels = 0, nClients = 0;
    gwCircuit *c;

    epicsMutexMustLock(server->lock);
    for (c = (gwCircuit *)ellFirst(&server->circuits); c; c = (gwCircuit *)ellNext(&c->node)) {
        nClients++;
        nChannels += gwCircuitChannelCount(c);
    }
    epicsMutexUnlock(server->lock);
    if (channels)
        *channels = nChannels;
    if (clients)
        *clients = nClients;
}

/* ---------------------------------------------------------------- start/stop */

static void destroy(gwServer *server)
{
    unsigned i;

    for (i = 0; i < server->nLoops; i++)
        if (server->loops[i])
            gwIoLoopStop(server->loops[i], loopStop, &server->loopContexts[i]);
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
    gwIoTaskInit(&server->watchTask, listenerWatchTask, server);
    gwIoLoopPost(server->loops[0], &server->watchTask);
    server->names = gwNameServerStart(server);
    server->beacon = gwBeaconStart(server);
    if (!server->names || !server->beacon) {
        gwServerStop(server);
        return NULL;
    }
    return server;
}

void gwServerStop(gwServer *server)
{
    if (server->names)
        gwNameServerStop(server->names);
    if (server->beacon)
        gwBeaconStop(server->beacon);
    destroy(server);
}

void gwServerBeaconAnomaly(gwServer *server)
{
    gwBeaconAnomaly(server->beacon);
}

void gwServerNameSettled(gwServer *server, const char *const *names, unsigned count)
{
    gwNameServerSettled(server->names, names, count);
}

void gwServerReport(const gwServer *server, unsigned level)
{
    gwServer *s = (gwServer *)server;
    const gwServerCounters *n = &s->counters;
    gwCircuit *c;

    printf("gateway CA server on TCP port %u: %d clients, %u I/O threads\n",
           s->tcpPort, ellCount(&s->circuits), s->nLoops);
    if (level == 0)
        return;
    printf("  updates: %zu received, %zu sent, %zu replaced, %zu dropped; "
           "%zu requests, %zu bytes in, %zu bytes out\n",
           epicsAtomicGetSizeT(&n->updatesReceived), epicsAtomicGetSizeT(&n->updatesSent),
           epicsAtomicGetSizeT(&n->updatesReplaced), epicsAtomicGetSizeT(&n->updatesDropped),
           epicsAtomicGetSizeT(&n->requests), epicsAtomicGetSizeT(&n->bytesReceived),
           epicsAtomicGetSizeT(&n->bytesSent));
    epicsMutexMustLock(s->lock);
    for (c = (gwCircuit *)ellFirst(&s->circuits); c; c = (gwCircuit *)ellNext(&c->node))
        gwCircuitReport(c, level);
    epicsMutexUnlock(s->lock);
}
