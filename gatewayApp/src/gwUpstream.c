/* gwUpstream.c - the upstream provider's PVs: the name table, the PV
 * states and their timeouts, client channels, the libca context and its
 * connection and access-rights callbacks, reports.
 *
 * The data path (gets, puts, subscriptions) is in gwUpstreamIo.c; the
 * objects and the lock order are described in gwUpstreamPriv.h.
 *
 * Threads:
 * - exists/attach/detach/... run on the server's threads;
 * - connection and access-rights callbacks on libca's threads;
 * - one timer thread of ours moves PVs through the timed states and frees
 *   the ones whose time is up;
 * - the own-search thread (gwUpstreamSearch.c) reports PVs an IOC has
 *   answered: a connecting PV that is found answers searches at once, and
 *   the client channels attached to it wait (deferred attach, see
 *   gwProvider.h) until libca has connected it, or fail at the connect
 *   timeout.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <caProto.h>
#include <cadef.h>
#include <caerr.h>
#include <dbDefs.h>
#include <envDefs.h>
#include <epicsAtomic.h>
#include <epicsStdio.h>
#include <epicsString.h>

#include "gwBeaconWatch.h"
#include "gwLog.h"
#include "gwText.h"
#include "gwUpstreamPriv.h"
#include "gwUpstreamSearch.h"
#include "gwLock.h"

const char *const gwPvStateNames[GW_PV_STATES] = {
    "connecting", "inactive", "active", "disconnected", "dead"
};

#define GW_UPSTREAM_TICK_MAX 1.0
#define GW_UPSTREAM_TICK_MIN 0.02
#define GW_UPSTREAM_TABLE_SIZE 65536
#define GW_UPSTREAM_PROBE_NAME "gateway:upstream:address-list-probe"
/* A disconnected PV searches again at most this often. */
#define GW_UPSTREAM_RESEARCH_SECONDS 1.0
#define GW_UPSTREAM_RESEARCH_TICK 0.1

/* ---------------------------------------------------------------- configuration */

void gwUpstreamConfigDefaults(gwUpstreamConfig *config)
{
    memset(config, 0, sizeof *config);
    config->connectTimeout = GW_UPSTREAM_CONNECT_TIMEOUT;
    config->inactiveTimeout = GW_UPSTREAM_INACTIVE_TIMEOUT;
    config->deadTimeout = GW_UPSTREAM_DEAD_TIMEOUT;
    config->disconnectTimeout = GW_UPSTREAM_DISCONNECT_TIMEOUT;
    config->reconnectInhibit = GW_UPSTREAM_RECONNECT_INHIBIT;
    config->getCacheTime = GW_UPSTREAM_GET_CACHE_TIME;
    config->defaultMask = GW_EVENT_VALUE | GW_EVENT_ALARM;
}

void gwUpstreamConfigClear(gwUpstreamConfig *config)
{
    free(config->addressList);
    config->addressList = NULL;
}

int gwUpstreamParseMask(const char *text, unsigned *mask)
{
    unsigned m = 0;

    for (; text && *text; text++) {
        switch (*text) {
        case 'v': m |= GW_EVENT_VALUE; break;
        case 'a': m |= GW_EVENT_ALARM; break;
        case 'l': m |= GW_EVENT_LOG; break;
        case 'p': m |= GW_EVENT_PROPERTY; break;
        default: return -1;
        }
    }
    if (!m)
        return -1;
    *mask = m;
    return 0;
}

/* ---------------------------------------------------------------- libca context */

struct ca_client_context *gwUpstreamUseContext(gwUpstream *up)
{
    struct ca_client_context *current = ca_current_context();

    if (current == up->ca)
        return up->ca;
    if (current)
        ca_detach_context();
    ca_attach_context(up->ca);
    return current;
}

void gwUpstreamLeaveContext(gwUpstream *up, struct ca_client_context *previous)
{
    if (previous == up->ca)
        return;     /* the thread keeps it: the next call is cheap */
    ca_detach_context();
    if (previous)
        ca_attach_context(previous);
}

typedef struct savedVariable {
    const char *name;
    char *value;    /* NULL: was not set */
} savedVariable;

static void save(savedVariable *saved, const char *name)
{
    const char *old = getenv(name);

    saved->name = name;
    saved->value = old ? epicsStrDup(old) : NULL;
}

static void restore(savedVariable *saved)
{
    if (!saved->name)
        return;
    if (saved->value)
        epicsEnvSet(saved->name, saved->value);
    else
        epicsEnvUnset(saved->name);
    free(saved->value);
}

/* The IOC of an exception's channel ("upstream" without one), into buf. */
static const char *exceptionPeer(chid channel, char *buf, unsigned size)
{
    if (!channel)
        return "upstream";
    ca_get_host_name(channel, buf, size);
    return buf;
}

/* libca's exceptions: a failed plain write goes back to its client (see
 * gwUpWrite); the others are logged, as libca's default handler would. */
static void exceptionHandler(struct exception_handler_args args)
{
    gwPv *pv = args.chid ? ca_puser(args.chid) : NULL;
    char peer[128];

    if (args.op == CA_OP_PUT && pv) {
        gwUpstreamWriteFailed(pv, (short)args.type, (unsigned long)args.count, (int)args.stat);
        return;
    }
    /* the IOC's doing, mostly: rate-limited as a peer's message */
    gwLogPeer(GW_LOG_UPSTREAM, GW_LOG_WARNING, exceptionPeer(args.chid, peer, sizeof peer),
              "CA exception: %s (%s)%s%s", ca_message((long)args.stat),
              args.ctx ? args.ctx : "", pv ? " on " : "", pv ? pv->name : "");
}

static void searchAnswered(void *arg, const char **names, unsigned count);
static int openChannel(gwUpstream *up, gwPv *pv);

/* Made on a thread of this priority: libca gives its own threads (timer,
 * UDP, circuits) priorities just above the creating thread's. Made from
 * iocsh's thread they would be the lowest in the IOC and, where the IOC
 * runs with real-time scheduling, starve behind the server's threads. */
#define GW_UPSTREAM_CA_PRIORITY epicsThreadPriorityCAServerLow

/* EPICS_CA_NAME_SERVERS names at least one server (libca searches them
 * over TCP too). */
static int usesNameServers(void)
{
    const char *servers = envGetConfigParamPtr(&EPICS_CA_NAME_SERVERS);

    return servers && strspn(servers, " \t") != strlen(servers);
}

/* The context's making, on its own thread (see above); up->wake is
 * signalled when it is done. The own searches read the upstream address
 * list first; then, when they can pass libca's searches through, libca's
 * list is their loopback socket (the caller restores the environment). */
static void contextInit(void *arg)
{
    gwUpstream *up = arg;
    const gwUpstreamConfig *config = &up->config;
    chid probe;
    unsigned short proxy;
    int status;

    up->search = gwUpSearchCreate(
        config->port ? config->port
                     : envGetInetPortConfigParam(&EPICS_CA_SERVER_PORT,
                                                 (unsigned short)CA_SERVER_PORT),
        searchAnswered, up);
    proxy = gwUpSearchProxyPort(up->search);
    /* With name servers libca may find PVs the own UDP searches cannot:
     * it searches for every new PV at once, as without the proxy. */
    up->searchFirst = proxy != 0 && !usesNameServers();
    if (proxy) {
        char list[32];
        epicsSnprintf(list, sizeof list, "127.0.0.1:%u", proxy);
        epicsEnvSet("EPICS_CA_ADDR_LIST", list);
        epicsEnvSet("EPICS_CA_AUTO_ADDR_LIST", "NO");
    }
    status = ca_context_create(ca_enable_preemptive_callback);
    if (status != ECA_NORMAL) {
        gwLog(GW_LOG_UPSTREAM, GW_LOG_ERROR,
              "cannot create the upstream CA context: %s", ca_message(status));
        gwUpSearchDestroy(up->search);
        up->search = NULL;
        up->searchFirst = 0;
        epicsEventSignal(up->wake);
        return;
    }
    up->ca = ca_current_context();
    ca_add_exception_event(exceptionHandler, NULL);
    if (ca_create_channel(GW_UPSTREAM_PROBE_NAME, NULL, NULL, CA_PRIORITY_DEFAULT,
                          &probe) == ECA_NORMAL)
        ca_clear_channel(probe);
    ca_detach_context();
    epicsEventSignal(up->wake);
}

/* A preemptive context that searches where the configuration says (into
 * up->ca; NULL on failure). libca reads EPICS_CA_SERVER_PORT when the
 * context is made and the address list when it makes its UDP side, at the
 * first channel: both are set just for that moment (a probe channel makes
 * the UDP side), so the IOC's own CA links and servers keep the IOC's
 * environment. The own searches read the same list in the same moment
 * (up->search), and libca is given theirs (see contextInit). */
static void createContext(gwUpstream *up)
{
    const gwUpstreamConfig *config = &up->config;
    savedVariable saved[3];
    char port[16];

    memset(saved, 0, sizeof saved);
    save(&saved[0], "EPICS_CA_ADDR_LIST");
    save(&saved[1], "EPICS_CA_AUTO_ADDR_LIST");
    save(&saved[2], "EPICS_CA_SERVER_PORT");
    if (config->addressList) {
        epicsEnvSet("EPICS_CA_ADDR_LIST", config->addressList);
        epicsEnvSet("EPICS_CA_AUTO_ADDR_LIST", "NO");
    }
    if (config->port) {
        epicsSnprintf(port, sizeof port, "%u", config->port);
        epicsEnvSet("EPICS_CA_SERVER_PORT", port);
    }
    /* Not a joinable thread: Base 7.0.3.1 crashes joining a thread that
     * made a CA context. up->wake is not used by anyone else yet. */
    if (epicsThreadCreate("gwUpstreamInit", GW_UPSTREAM_CA_PRIORITY,
                          epicsThreadGetStackSize(epicsThreadStackMedium), contextInit, up))
        epicsEventMustWait(up->wake);
    restore(&saved[0]);
    restore(&saved[1]);
    restore(&saved[2]);
}

static void destroyContext(struct ca_client_context *context)
{
    struct ca_client_context *previous = ca_current_context();

    if (previous)
        ca_detach_context();
    ca_attach_context(context);
    ca_context_destroy();
    if (previous)
        ca_attach_context(previous);
}

/* ---------------------------------------------------------------- states (up->lock) */

static void setState(gwUpstream *up, gwPv *pv, gwPvState state)
{
    ellDelete(&up->states[pv->state], &pv->stateNode);
    pv->state = state;
    epicsTimeGetCurrent(&pv->since);
    ellAdd(&up->states[state], &pv->stateNode);
}

/* hash: gwNameHash(name), computed before up->lock was taken. */
static gwPv *findPv(gwUpstream *up, const char *name, unsigned hash)
{
    gwNameNode *node = gwNameTableFind(&up->table, name, hash);

    return node ? CONTAINER(node, gwPv, tableNode) : NULL;
}

/* Out of the table and the state lists (up->lock); the caller frees it. */
static void unlinkPv(gwUpstream *up, gwPv *pv)
{
    ellDelete(&up->states[pv->state], &pv->stateNode);
    gwNameTableRemove(&up->table, &pv->tableNode);
    if (pv->pollListed) {
        ellDelete(&up->polled, &pv->pollNode);
        pv->pollListed = 0;
    }
    pv->removed = 1;
}

/* After unlinkPv, without any lock: no callback runs once the channel is
 * cleared, then what is left goes. */
static void freePv(gwUpstream *up, gwPv *pv)
{
    unsigned monitors;

    if (pv->chan) {
        struct ca_client_context *previous = gwUpstreamUseContext(up);
        ca_clear_channel(pv->chan);
        ca_flush_io();  /* libca only queues the CLEAR_CHANNEL */
        gwUpstreamLeaveContext(up, previous);
    }
    /* Nobody else can reach the PV now: no lock. */
    monitors = gwUpstreamFreeRequests(pv);
    if (monitors)
        gwUpstreamCountMonitors(up, -(int)monitors);
    epicsMutexDestroy(pv->lock);
    free(pv);
}

/* ---------------------------------------------------------------- libca callbacks */

static unsigned upstreamRights(chid chan)
{
    return (ca_read_access(chan) ? GW_RIGHT_READ : 0u)
         | (ca_write_access(chan) ? GW_RIGHT_WRITE : 0u);
}

/* A reconnect: start the server's beacon anomaly unless one was started
 * within the reconnect-inhibit time (up->lock held). */
static int anomalyDue(gwUpstream *up)
{
    epicsTimeStamp now;

    epicsTimeGetCurrent(&now);
    if (up->anomalySent && epicsTimeDiffInSeconds(&now, &up->lastAnomaly)
                               < up->config.reconnectInhibit)
        return 0;
    up->anomalySent = 1;
    up->lastAnomaly = now;
    return 1;
}

/* The bound server's callbacks, for a call made after up->lock is
 * released (which unbind waits for): NULL when unbound (up->lock held). */
static const gwServerCallbacks *hooksEnter(gwUpstream *up, void **arg)
{
    if (!up->server)
        return NULL;
    *arg = up->serverArg;
    up->hookCalls++;
    return up->server;
}

static void hooksLeave(gwUpstream *up)
{
    int idle;

    gwLockTake(up->lock);
    idle = --up->hookCalls == 0 && !up->server;
    epicsMutexUnlock(up->lock);
    if (idle)
        epicsEventSignal(up->hooksIdle);
}

/* The rights of one client channel now (pv->lock held): the upstream
 * IOC's for the gateway. Rules that narrow them per client sit in a
 * wrapper in front of this provider (gwProvider.h). */
static unsigned channelRightsNow(const gwProviderChannel *channel)
{
    return channel->pv->rights;
}

/* Tell a client channel its rights if they changed (pv->lock held). */
static void tellRights(gwProviderChannel *channel)
{
    unsigned rights = channelRightsNow(channel);

    if (rights != channel->rights) {
        channel->rights = rights;
        channel->events->rightsChanged(channel->serverChannel, rights);
    }
}

/* Tell the channels attached while the PV was connecting how their attach
 * ended (pv->lock held): ok, they join the PV's channels. */
static void finishWaiting(gwPv *pv, int ok)
{
    gwProviderChannel *channel;

    while ((channel = (gwProviderChannel *)ellGet(&pv->waiting)) != NULL) {
        if (ok) {
            channel->waiting = 0;
            channel->rights = pv->rights;
            ellAdd(&pv->channels, &channel->node);
        }
        else {
            channel->waiting = 2;
        }
        channel->events->connected(channel->serverChannel, ok);
    }
}

static void connectionUp(gwUpstream *up, gwPv *pv, chid chan)
{
    const gwServerCallbacks *hooks = NULL;
    void *arg = NULL;
    int anomaly = 0, connected = 0, settle = 0;
    char server[128];
    unsigned serverHash;

    ca_get_host_name(chan, server, sizeof server);
    serverHash = gwNameHash(server);

    epicsMutexMustLock(pv->lock);
    pv->nativeType = ca_field_type(chan);
    pv->nativeCount = ca_element_count(chan);
    pv->rights = upstreamRights(chan);
    {
        gwProviderChannel *channel;
        for (channel = (gwProviderChannel *)ellFirst(&pv->channels); channel;
             channel = (gwProviderChannel *)ellNext(&channel->node))
            tellRights(channel);
    }
    epicsMutexUnlock(pv->lock);

    gwLockTake(up->lock);
    if (!pv->removed && !pv->researching
        && (pv->state == GW_PV_CONNECTING || pv->state == GW_PV_DEAD
            || pv->state == GW_PV_DISCONNECTED)) {
        /* searches for a found PV were answered then, none wait now: a
         * first connection of a found PV needs no hook (and no second turn
         * of up->lock, which thousands of connections at once contend) */
        settle = pv->state != GW_PV_CONNECTING || !pv->found;
        hooks = settle ? hooksEnter(up, &arg) : NULL;
        anomaly = hooks && pv->state != GW_PV_CONNECTING && anomalyDue(up);
        setState(up, pv, pv->channelCount ? GW_PV_ACTIVE : GW_PV_INACTIVE);
        pv->serverHash = serverHash;
        pv->everConnected = 1;
        connected = 1;
    }
    epicsMutexUnlock(up->lock);
    if (!connected)
        return;
    /* The PV cannot be freed meanwhile: that waits for this callback. */
    epicsMutexMustLock(pv->lock);
    finishWaiting(pv, 1);
    epicsMutexUnlock(pv->lock);
    if (!hooks)
        return;
    if (anomaly)
        hooks->beaconAnomaly(arg);
    if (settle) {
        const char *name = pv->name;
        hooks->namesSettled(arg, &name, 1);
    }
    hooksLeave(up);
}

/* IOCs answered the own searches for names (search thread): those PVs
 * still connecting answer searches from now on, and (searching first)
 * get their upstream channel now, libca's search for it being answered
 * from the own search's answer. names[] may be reordered. */
static void searchAnswered(void *arg, const char **names, unsigned count)
{
    gwUpstream *up = arg;
    const gwServerCallbacks *hooks = NULL;
    void *hooksArg = NULL;
    gwPv *open[GW_UPSEARCH_FOUND_MAX];
    unsigned hashes[GW_UPSEARCH_FOUND_MAX];
    unsigned i, n = 0, nOpen = 0;

    if (count > NELEMENTS(hashes))
        count = NELEMENTS(hashes);  /* gwUpSearch reports no more */
    for (i = 0; i < count; i++)
        hashes[i] = gwNameHash(names[i]);
    gwLockTake(up->lock);
    for (i = 0; i < count; i++) {
        gwPv *pv = findPv(up, names[i], hashes[i]);
        if (pv && pv->state == GW_PV_CONNECTING && !pv->found) {
            pv->found = 1;
            names[n++] = names[i];  /* the ones whose searches may wait */
            if (!pv->opening && !pv->chan && nOpen < NELEMENTS(open)) {
                pv->opening = 1;    /* not freed meanwhile */
                open[nOpen++] = pv;
            }
        }
    }
    if (n)
        hooks = hooksEnter(up, &hooksArg);
    epicsMutexUnlock(up->lock);
    if (hooks) {
        hooks->namesSettled(hooksArg, names, n);
        hooksLeave(up);
    }
    /* after the answers: the clients' searches do not wait for libca */
    for (i = 0; i < nOpen; i++) {
        int status = openChannel(up, open[i]);
        if (status != ECA_NORMAL)
            gwLog(GW_LOG_UPSTREAM, GW_LOG_WARNING,
                  "cannot connect %s upstream: %s", open[i]->name,
                  ca_message(status));
    }
    if (!nOpen)
        return;
    gwLockTake(up->lock);
    for (i = 0; i < nOpen; i++)
        open[i]->opening = 0;
    epicsMutexUnlock(up->lock);
}

static void connectionDown(gwUpstream *up, gwPv *pv)
{
    gwProviderChannel *channel;
    gwUpMonitor *monitor;

    gwLockTake(up->lock);
    if (!pv->removed && !pv->researching
        && (pv->state == GW_PV_ACTIVE || pv->state == GW_PV_INACTIVE)) {
        setState(up, pv, GW_PV_DISCONNECTED);
        /* Search again at once rather than after libca's disconnect
         * governor (up to 10 s): the timer thread makes a new channel. */
        memset(&pv->lastSearch, 0, sizeof pv->lastSearch);
        up->searchWanted = 1;
        epicsEventSignal(up->wake);
    }
    epicsMutexUnlock(up->lock);

    /* Every client channel is told; the server detaches them. */
    epicsMutexMustLock(pv->lock);
    for (monitor = (gwUpMonitor *)ellFirst(&pv->monitors); monitor;
         monitor = (gwUpMonitor *)ellNext(&monitor->node))
        monitor->hasValue = 0;
    for (channel = (gwProviderChannel *)ellFirst(&pv->channels); channel;
         channel = (gwProviderChannel *)ellNext(&channel->node))
        channel->events->disconnected(channel->serverChannel);
    epicsMutexUnlock(pv->lock);
}

static void connectionHandler(struct connection_handler_args args)
{
    gwPv *pv = ca_puser(args.chid);

    if (!pv)
        return;
    if (args.op == CA_OP_CONN_UP)
        connectionUp(pv->up, pv, args.chid);
    else
        connectionDown(pv->up, pv);
}

static void rightsHandler(struct access_rights_handler_args args)
{
    gwPv *pv = ca_puser(args.chid);
    gwProviderChannel *channel;

    if (!pv)
        return;
    epicsMutexMustLock(pv->lock);
    pv->rights = (args.ar.read_access ? GW_RIGHT_READ : 0u)
               | (args.ar.write_access ? GW_RIGHT_WRITE : 0u);
    for (channel = (gwProviderChannel *)ellFirst(&pv->channels); channel;
         channel = (gwProviderChannel *)ellNext(&channel->node))
        tellRights(channel);
    epicsMutexUnlock(pv->lock);
}

/* The PV's upstream channel, searching from now on. On failure pv->chan
 * is NULL (a half-made channel never searched: no callback came). */
static int openChannel(gwUpstream *up, gwPv *pv)
{
    struct ca_client_context *previous = gwUpstreamUseContext(up);
    int status = ca_create_channel(pv->name, connectionHandler, pv, CA_PRIORITY_DEFAULT,
                                   &pv->chan);

    /* No ca_flush_io: a new channel has nothing queued on a circuit (libca
     * searches on its own timer), and each flush is one more turn of
     * libca's mutex, which its circuit threads need too. */
    if (status == ECA_NORMAL)
        status = ca_replace_access_rights_event(pv->chan, rightsHandler);
    if (status != ECA_NORMAL && pv->chan) {
        ca_clear_channel(pv->chan);
        pv->chan = NULL;
    }
    gwUpstreamLeaveContext(up, previous);
    return status;
}

/* A new PV, in no table yet (no lock: made before up->lock is taken,
 * which thousands of new names a second would otherwise hold through
 * their allocations). NULL when out of memory. */
static gwPv *newPv(gwUpstream *up, const char *name)
{
    size_t length = strlen(name);
    gwPv *pv = calloc(1, sizeof *pv + length);

    if (!pv)
        return NULL;
    pv->lock = epicsMutexCreate();
    if (!pv->lock) {
        free(pv);
        return NULL;
    }
    pv->up = up;
    memcpy(pv->name, name, length + 1);
    ellInit(&pv->channels);
    ellInit(&pv->waiting);
    ellInit(&pv->monitors);
    ellInit(&pv->gets);
    ellInit(&pv->puts);
    ellInit(&pv->writes);
    pv->state = GW_PV_CONNECTING;
    return pv;
}

/* A PV newPv made that never went into the table. */
static void discardPv(gwPv *pv)
{
    epicsMutexDestroy(pv->lock);
    free(pv);
}

/* The new PV goes into the table, connecting (up->lock held; its name is
 * not in the table). 0, or -1 when its channel cannot be made (then it is
 * out of the table again, for discardPv). */
static int installPv(gwUpstream *up, gwPv *pv, unsigned hash)
{
    gwNameTableAdd(&up->table, &pv->tableNode, pv->name, hash);
    epicsTimeGetCurrent(&pv->since);
    pv->lastSearch = pv->since;
    ellAdd(&up->states[GW_PV_CONNECTING], &pv->stateNode);
    if (up->searchFirst)
        return 0;       /* the channel comes when an IOC answers */
    if (openChannel(up, pv) != ECA_NORMAL) {
        unlinkPv(up, pv);
        return -1;
    }
    return 0;
}

/* The answer for a name in the table, or for any name when stopping: 1
 * and *answer; 0 when the name is not in the table (up->lock held). */
static int knownAnswer(gwUpstream *up, const char *pvName, unsigned hash,
                       gwExistsAnswer *answer)
{
    gwPv *pv = up->stopping ? NULL : findPv(up, pvName, hash);

    *answer = GW_EXISTS_NO;
    if (up->stopping)
        return 1;
    if (!pv)
        return 0;
    if (pv->state == GW_PV_CONNECTING && pv->found)
        *answer = GW_EXISTS_YES;        /* attach is deferred until connected */
    else if (pv->state == GW_PV_CONNECTING || pv->state == GW_PV_DISCONNECTED)
        *answer = GW_EXISTS_PENDING;    /* no answer now; waiting searches
                                           are answered when it connects */
    else if (pv->state == GW_PV_ACTIVE || pv->state == GW_PV_INACTIVE)
        *answer = GW_EXISTS_YES;
    return 1;
}

/* ---------------------------------------------------------------- provider operations */

static gwExistsAnswer existsOne(gwUpstream *up, const char *pvName)
{
    unsigned hash = gwNameHash(pvName);
    gwExistsAnswer answer;
    gwPv *fresh;
    int known, created = 0;

    gwLockTake(up->lock);
    known = knownAnswer(up, pvName, hash, &answer);
    epicsMutexUnlock(up->lock);
    if (known)
        return answer;
    /* A new name: the PV is made outside the lock; another thread may
     * have put the name in meanwhile. */
    fresh = newPv(up, pvName);
    if (!fresh)
        return GW_EXISTS_NO;
    gwLockTake(up->lock);
    if (!knownAnswer(up, pvName, hash, &answer)) {
        created = installPv(up, fresh, hash) == 0;
        answer = created ? GW_EXISTS_PENDING : GW_EXISTS_NO;
    }
    epicsMutexUnlock(up->lock);
    if (!created) {
        discardPv(fresh);
        return answer;
    }
    /* libca searches on its timer; this goes out at once */
    gwUpSearchSend(up->search, pvName);
    return answer;
}

static void upExists(void *self, const gwClientIdentity *client, gwExistsQuery *queries,
                     unsigned count)
{
    gwUpstream *up = self;
    unsigned i;

    (void)client;
    epicsAtomicAddSizeT(&up->searches, count);
    for (i = 0; i < count; i++)
        queries[i].answer = existsOne(up, queries[i].pvName);
}

static void upBind(void *self, const gwServerCallbacks *callbacks, void *server)
{
    gwUpstream *up = self;

    gwLockTake(up->lock);
    up->serverArg = server;
    epicsAtomicSetPtrT((void **)&up->server, (void *)callbacks);
    epicsMutexUnlock(up->lock);
}

/* No call of the server's table runs once this returns: a running one is
 * waited for (hooksLeave signals the last). */
static void upUnbind(void *self)
{
    gwUpstream *up = self;

    gwLockTake(up->lock);
    epicsAtomicSetPtrT((void **)&up->server, NULL);
    while (up->hookCalls) {
        epicsMutexUnlock(up->lock);
        epicsEventMustWait(up->hooksIdle);
        gwLockTake(up->lock);
    }
    epicsMutexUnlock(up->lock);
}

static gwProviderChannel *upAttach(void *self, const char *pvName,
                                   const gwClientIdentity *client,
                                   const gwChannelEvents *events, void *serverChannel)
{
    gwUpstream *up = self;
    unsigned hash = gwNameHash(pvName);
    gwProviderChannel *channel = calloc(1, sizeof *channel);
    gwPv *pv;

    (void)client;
    if (!channel)
        return NULL;
    gwLockTake(up->lock);
    pv = up->stopping ? NULL : findPv(up, pvName, hash);
    if (pv && (pv->state == GW_PV_ACTIVE || pv->state == GW_PV_INACTIVE
               || pv->state == GW_PV_CONNECTING)) {
        channel->pv = pv;
        channel->events = events;
        channel->serverChannel = serverChannel;
        channel->deferred = channel->waiting = pv->state == GW_PV_CONNECTING;
        pv->channelCount++;
        epicsAtomicIncrSizeT(&up->channelCount);
        if (pv->state == GW_PV_INACTIVE)
            setState(up, pv, GW_PV_ACTIVE);
        epicsMutexMustLock(pv->lock);
        channel->rights = pv->rights;
        ellAdd(channel->waiting ? &pv->waiting : &pv->channels, &channel->node);
        epicsMutexUnlock(pv->lock);
    }
    else {
        pv = NULL;
    }
    epicsMutexUnlock(up->lock);
    if (!pv) {
        free(channel);
        return NULL;
    }
    return channel;
}

static void upDetach(gwProviderChannel *channel)
{
    gwPv *pv = channel->pv;
    gwUpstream *up = pv->up;

    epicsMutexMustLock(pv->lock);
    gwUpstreamFailRequests(pv, channel);
    if (channel->waiting != 2)
        ellDelete(channel->waiting ? &pv->waiting : &pv->channels, &channel->node);
    epicsMutexUnlock(pv->lock);

    gwLockTake(up->lock);
    pv->channelCount--;
    epicsAtomicDecrSizeT(&up->channelCount);
    if (!pv->channelCount && pv->state == GW_PV_ACTIVE)
        setState(up, pv, GW_PV_INACTIVE);
    epicsMutexUnlock(up->lock);
    free(channel);
}

static short upNativeType(gwProviderChannel *channel)
{
    gwPv *pv = channel->pv;
    short type;

    epicsMutexMustLock(pv->lock);
    type = pv->nativeType;
    epicsMutexUnlock(pv->lock);
    return type;
}

static unsigned long upNativeCount(gwProviderChannel *channel)
{
    gwPv *pv = channel->pv;
    unsigned long count;

    epicsMutexMustLock(pv->lock);
    count = pv->nativeCount;
    epicsMutexUnlock(pv->lock);
    return count;
}

static unsigned upRights(gwProviderChannel *channel)
{
    gwPv *pv = channel->pv;
    unsigned rights;

    epicsMutexMustLock(pv->lock);
    rights = channel->rights;
    epicsMutexUnlock(pv->lock);
    return rights;
}

static int upDeferred(gwProviderChannel *channel)
{
    return channel->deferred;
}

static void upSearchesDone(void *self)
{
    gwUpSearchFlush(((gwUpstream *)self)->search);
}

/* A new identity: the channel's rights are evaluated again, and the
 * server told when they changed. */
static void upClientChanged(gwProviderChannel *channel, const gwClientIdentity *client)
{
    gwPv *pv = channel->pv;

    (void)client;
    epicsMutexMustLock(pv->lock);
    if (channel->waiting == 0)
        tellRights(channel);
    epicsMutexUnlock(pv->lock);
}

static void upReport(void *self, FILE *out, unsigned level);
static void upCounters(void *self, gwProviderCounters *counters);
static unsigned upBusiest(void *self, gwPvActivity *out, unsigned max);

const gwProviderOps gwUpstreamOps = {
    .name = "upstream",
    .bind = upBind,
    .unbind = upUnbind,
    .exists = upExists,
    .searchesDone = upSearchesDone,
    .attach = upAttach,
    .deferred = upDeferred,
    .detach = upDetach,
    .nativeType = upNativeType,
    .nativeCount = upNativeCount,
    .rights = upRights,
    .clientChanged = upClientChanged,
    .get = gwUpstreamGet,
    .peek = gwUpstreamPeek,
    .put = gwUpstreamPut,
    .subscribe = gwUpstreamSubscribe,
    .cancel = gwUpstreamCancel,
    .enable = gwUpstreamEnable,
    .report = upReport,
    .counters = upCounters,
    .busiest = upBusiest,
};

/* ---------------------------------------------------------------- timeouts */

/* The PVs of one state list whose time is up, oldest first (up->lock). */
static void expire(gwUpstream *up, gwPvState state, double timeout, const epicsTimeStamp *now,
                   ELLLIST *doomed, ELLLIST *toOpen)
{
    gwPv *pv;
    unsigned n = (unsigned)ellCount(&up->states[state]);

    while (n-- > 0 && (pv = (gwPv *)ellFirst(&up->states[state])) != NULL
           && epicsTimeDiffInSeconds(now, &pv->since) >= timeout) {
        if (state == GW_PV_CONNECTING) {
            setState(up, pv, GW_PV_DEAD);
            epicsMutexMustLock(pv->lock);
            finishWaiting(pv, 0);   /* their clients get CREATE_CH_FAIL */
            epicsMutexUnlock(pv->lock);
            if (!pv->opening && !pv->chan) {
                /* nobody answered the own searches: libca searches on
                 * (with its back-off), so the PV lives again if it
                 * appears, as with the classic gateway */
                gwUpSearchCancel(up->search, pv->name);
                pv->opening = 1;
                ellAdd(toOpen, &pv->researchNode);
            }
        }
        else if (pv->channelCount || pv->opening) {
            setState(up, pv, state); /* clients still leaving, or its
                                        channel being made: later */
        }
        else {
            unlinkPv(up, pv);
            ellAdd(doomed, &pv->stateNode);
        }
    }
}

/* The disconnected PVs to search for again now (up->lock held): no client
 * channel left, not searched within GW_UPSTREAM_RESEARCH_SECONDS. Leaves
 * searchWanted set while some must wait. */
static void collectResearch(gwUpstream *up, const epicsTimeStamp *now, ELLLIST *list)
{
    gwPv *pv;
    int later = 0;

    if (!up->searchWanted)
        return;
    for (pv = (gwPv *)ellFirst(&up->states[GW_PV_DISCONNECTED]); pv;
         pv = (gwPv *)ellNext(&pv->stateNode)) {
        if (pv->channelCount
            || epicsTimeDiffInSeconds(now, &pv->lastSearch) < GW_UPSTREAM_RESEARCH_SECONDS) {
            later = 1;
            continue;
        }
        pv->researching = 1;
        pv->lastSearch = *now;
        ellAdd(list, &pv->researchNode);
    }
    up->searchWanted = later;
}

/* A new upstream channel for a disconnected PV (timer thread, no lock):
 * it searches at once, where the old one waits for libca's governor. */
static void research(gwUpstream *up, gwPv *pv)
{
    struct ca_client_context *previous;
    ELLLIST idle = ELLLIST_INIT;
    int status;

    /* Subscriptions for gets (no client's: no channel is attached) go
     * first: clearing the channel frees them, and a new channel has none. */
    gwUpstreamDropPolls(pv, &idle);
    gwUpstreamReleaseIdle(up, &idle);
    previous = gwUpstreamUseContext(up);
    ca_clear_channel(pv->chan);     /* its callbacks are ignored and done */
    gwUpstreamLeaveContext(up, previous);
    pv->chan = NULL;
    gwLockTake(up->lock);
    pv->researching = 0;
    epicsMutexUnlock(up->lock);
    status = openChannel(up, pv);
    if (status != ECA_NORMAL) {
        gwLog(GW_LOG_UPSTREAM, GW_LOG_WARNING,
              "cannot search again for %s: %s", pv->name, ca_message(status));
        gwLockTake(up->lock);
        if (pv->state == GW_PV_DISCONNECTED)
            setState(up, pv, GW_PV_DEAD);   /* dropped after the dead timeout */
        epicsMutexUnlock(up->lock);
    }
}

/* Upstream channels for PVs that died unanswered (timer thread, no lock;
 * `opening` keeps them from being freed meanwhile). */
static void openDead(gwUpstream *up, ELLLIST *list)
{
    ELLNODE *node;

    while ((node = ellGet(list)) != NULL) {
        gwPv *pv = CONTAINER(node, gwPv, researchNode);
        int status = openChannel(up, pv);

        if (status != ECA_NORMAL)
            gwLog(GW_LOG_UPSTREAM, GW_LOG_WARNING,
                  "cannot search on for %s: %s", pv->name,
                  ca_message(status));
        gwLockTake(up->lock);
        pv->opening = 0;
        epicsMutexUnlock(up->lock);
    }
}

static void beaconStarted(void *arg)
{
    gwUpstream *up = arg;

    gwLockTake(up->lock);
    if (ellCount(&up->states[GW_PV_DISCONNECTED])) {
        up->searchWanted = 1;
        epicsEventSignal(up->wake);
    }
    epicsMutexUnlock(up->lock);
}

static double tickOf(const gwUpstreamConfig *config)
{
    double tick = config->connectTimeout;

    if (config->deadTimeout < tick)
        tick = config->deadTimeout;
    if (config->inactiveTimeout < tick)
        tick = config->inactiveTimeout;
    if (config->disconnectTimeout < tick)
        tick = config->disconnectTimeout;
    if (config->getCacheTime > 0 && config->getCacheTime < tick)
        tick = config->getCacheTime;
    tick /= 4.0;
    if (tick > GW_UPSTREAM_TICK_MAX)
        tick = GW_UPSTREAM_TICK_MAX;
    if (tick < GW_UPSTREAM_TICK_MIN)
        tick = GW_UPSTREAM_TICK_MIN;
    return tick;
}

static void timerThread(void *arg)
{
    gwUpstream *up = arg;
    const gwUpstreamConfig *config = &up->config;
    double tick = tickOf(config);

    for (;;) {
        ELLLIST doomed = ELLLIST_INIT;
        ELLLIST again = ELLLIST_INIT;
        ELLLIST toOpen = ELLLIST_INIT;
        ELLLIST idle = ELLLIST_INIT;
        epicsTimeStamp now;
        ELLNODE *node;
        gwPv *pv;
        int soon;

        gwLockTake(up->lock);
        if (up->stopping) {
            epicsMutexUnlock(up->lock);
            break;
        }
        epicsTimeGetCurrent(&now);
        expire(up, GW_PV_CONNECTING, config->connectTimeout, &now, &doomed, &toOpen);
        expire(up, GW_PV_DEAD, config->deadTimeout, &now, &doomed, &toOpen);
        expire(up, GW_PV_INACTIVE, config->inactiveTimeout, &now, &doomed, &toOpen);
        expire(up, GW_PV_DISCONNECTED, config->disconnectTimeout, &now, &doomed, &toOpen);
        gwUpstreamExpirePolls(up, &now, &idle);   /* of PVs not doomed */
        collectResearch(up, &now, &again);
        soon = up->searchWanted;
        epicsMutexUnlock(up->lock);

        gwUpstreamReleaseIdle(up, &idle);

        while ((pv = (gwPv *)ellGet(&doomed)) != NULL)
            freePv(up, pv);
        while ((node = ellGet(&again)) != NULL)
            research(up, CONTAINER(node, gwPv, researchNode));
        openDead(up, &toOpen);
        epicsEventWaitWithTimeout(up->wake, soon && tick > GW_UPSTREAM_RESEARCH_TICK
                                                ? GW_UPSTREAM_RESEARCH_TICK : tick);
    }
    epicsEventSignal(up->timerExited);
}

/* ---------------------------------------------------------------- life */

gwProvider *gwUpstreamProviderCreate(const gwUpstreamConfig *config)
{
    gwUpstream *up = calloc(1, sizeof *up);
    int i;

    if (!up)
        return NULL;
    up->config = *config;
    up->config.addressList = config->addressList ? epicsStrDup(config->addressList) : NULL;
    for (i = 0; i < GW_PV_STATES; i++)
        ellInit(&up->states[i]);
    ellInit(&up->polled);
    up->lock = epicsMutexCreate();
    up->wake = epicsEventCreate(epicsEventEmpty);
    up->timerExited = epicsEventCreate(epicsEventEmpty);
    up->hooksIdle = epicsEventCreate(epicsEventEmpty);
    if (up->lock)
        gwNameTableInit(&up->table, GW_UPSTREAM_TABLE_SIZE);
    if (!up->lock || !up->wake || !up->timerExited || !up->hooksIdle || !up->table.buckets)
        goto fail;
    createContext(up);
    if (!up->ca)
        goto fail;
    up->provider.ops = &gwUpstreamOps;
    up->provider.self = up;
    up->timer = epicsThreadCreate("gwUpstreamTimer", epicsThreadPriorityLow,
                                  epicsThreadGetStackSize(epicsThreadStackSmall),
                                  timerThread, up);
    if (!up->timer) {
        destroyContext(up->ca);
        goto fail;
    }
    up->watch = gwBeaconWatchStart(beaconStarted, up); /* optional */
    return &up->provider;

fail:
    gwLog(GW_LOG_UPSTREAM, GW_LOG_ERROR, "cannot create the upstream provider");
    gwUpSearchDestroy(up->search);
    gwNameTableClear(&up->table);
    if (up->timerExited)
        epicsEventDestroy(up->timerExited);
    if (up->hooksIdle)
        epicsEventDestroy(up->hooksIdle);
    if (up->wake)
        epicsEventDestroy(up->wake);
    if (up->lock)
        epicsMutexDestroy(up->lock);
    free(up->config.addressList);
    free(up);
    return NULL;
}

void gwUpstreamProviderDestroy(gwProvider *provider)
{
    gwUpstream *up;
    ELLLIST doomed = ELLLIST_INIT;
    gwPv *pv;
    int i;

    if (!provider)
        return;
    up = provider->self;
    gwBeaconWatchStop(up->watch);
    gwUpSearchDestroy(up->search);
    gwLockTake(up->lock);
    up->stopping = 1;
    epicsMutexUnlock(up->lock);
    epicsEventSignal(up->wake);
    epicsEventMustWait(up->timerExited);

    gwLockTake(up->lock);
    for (i = 0; i < GW_PV_STATES; i++) {
        while ((pv = (gwPv *)ellFirst(&up->states[i])) != NULL) {
            unlinkPv(up, pv);
            ellAdd(&doomed, &pv->stateNode);
        }
    }
    epicsMutexUnlock(up->lock);
    while ((pv = (gwPv *)ellGet(&doomed)) != NULL)
        freePv(up, pv);

    destroyContext(up->ca);
    gwNameTableClear(&up->table);
    epicsEventDestroy(up->timerExited);
    epicsEventDestroy(up->wake);
    epicsEventDestroy(up->hooksIdle);
    epicsMutexDestroy(up->lock);
    free(up->config.addressList);
    free(up);
}

void gwUpstreamCountMonitors(gwUpstream *up, int delta)
{
    gwLockTake(up->lock);
    up->monitorCount += (unsigned)delta;
    epicsMutexUnlock(up->lock);
}

/* ---------------------------------------------------------------- reports */

static int compareUnsigned(const void *a, const void *b)
{
    unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;

    return x < y ? -1 : x > y;
}

/* How many IOCs serve the connected PVs (up->lock held): their servers'
 * hashes, sorted, counted once each. */
static unsigned long countServers(gwUpstream *up)
{
    int states[] = { GW_PV_ACTIVE, GW_PV_INACTIVE };
    size_t n = (size_t)ellCount(&up->states[GW_PV_ACTIVE])
             + (size_t)ellCount(&up->states[GW_PV_INACTIVE]);
    unsigned *hashes, i, k = 0;
    unsigned long servers = 0;
    gwPv *pv;

    if (n == 0 || !(hashes = malloc(n * sizeof *hashes)))
        return n ? 1 : 0;
    for (i = 0; i < NELEMENTS(states); i++)
        for (pv = (gwPv *)ellFirst(&up->states[states[i]]); pv;
             pv = (gwPv *)ellNext(&pv->stateNode))
            hashes[k++] = pv->serverHash;
    qsort(hashes, k, sizeof *hashes, compareUnsigned);
    for (i = 0; i < k; i++)
        if (i == 0 || hashes[i] != hashes[i - 1])
            servers++;
    free(hashes);
    return servers;
}

static void upCounters(void *self, gwProviderCounters *counters)
{
    gwUpstream *up = self;

    /* up->lock is not on the event path (gwUpstreamPriv.h) */
    gwLockTake(up->lock);
    counters->servers = countServers(up);
    counters->connecting = (unsigned long)ellCount(&up->states[GW_PV_CONNECTING]);
    counters->inactive = (unsigned long)ellCount(&up->states[GW_PV_INACTIVE]);
    counters->active = (unsigned long)ellCount(&up->states[GW_PV_ACTIVE]);
    counters->disconnected = (unsigned long)ellCount(&up->states[GW_PV_DISCONNECTED]);
    counters->dead = (unsigned long)ellCount(&up->states[GW_PV_DEAD]);
    counters->subscriptions = up->monitorCount;
    epicsMutexUnlock(up->lock);
    counters->pvs = counters->connecting + counters->inactive + counters->active
                  + counters->disconnected + counters->dead;
    counters->channels = epicsAtomicGetSizeT(&up->channelCount);
    counters->searches = epicsAtomicGetSizeT(&up->searches);
    counters->updates = epicsAtomicGetSizeT(&up->updates);
    counters->events = epicsAtomicGetSizeT(&up->events);
    counters->getReplies = epicsAtomicGetSizeT(&up->getReplies);
    counters->puts = epicsAtomicGetSizeT(&up->puts);
    counters->putsRefused = epicsAtomicGetSizeT(&up->putsRefused);
}

/* Put pv into the list top[0..*n-1] (busiest first, at most max). */
static void rank(gwPvActivity *top, unsigned *n, unsigned max, const gwPv *pv,
                 unsigned long events)
{
    unsigned i;

    if (*n == max && top[max - 1].events >= events)
        return;
    i = *n < max ? (*n)++ : max - 1;
    while (i > 0 && top[i - 1].events < events) {
        top[i] = top[i - 1];
        i--;
    }
    snprintf(top[i].name, sizeof top[i].name, "%s", pv->name);
    top[i].events = events;
}

static unsigned upBusiest(void *self, gwPvActivity *out, unsigned max)
{
    gwUpstream *up = self;
    int states[] = { GW_PV_ACTIVE, GW_PV_INACTIVE };
    unsigned i, n = 0;
    gwPv *pv;

    if (max == 0)
        return 0;
    gwLockTake(up->lock);
    for (i = 0; i < NELEMENTS(states); i++)
        for (pv = (gwPv *)ellFirst(&up->states[states[i]]); pv;
             pv = (gwPv *)ellNext(&pv->stateNode)) {
            size_t events = epicsAtomicGetSizeT(&pv->events);
            unsigned long delta = (unsigned long)(events - pv->eventsSeen);
            pv->eventsSeen = events;
            if (delta)
                rank(out, &n, max, pv, delta);
        }
    epicsMutexUnlock(up->lock);
    return n;
}

static void maskText(unsigned mask, char *text)
{
    char *p = text;

    if (mask & GW_EVENT_VALUE)
        *p++ = 'v';
    if (mask & GW_EVENT_ALARM)
        *p++ = 'a';
    if (mask & GW_EVENT_LOG)
        *p++ = 'l';
    if (mask & GW_EVENT_PROPERTY)
        *p++ = 'p';
    *p = '\0';
}

/* One PV's lines into text (up->lock held: its state; pv->lock taken). */
static void reportPv(gwPv *pv, const epicsTimeStamp *now, gwText *text)
{
    gwUpMonitor *monitor;

    epicsMutexMustLock(pv->lock);
    gwTextPrintf(text, "  %s %s %.1f s, %u clients, %s[%lu]%s%s\n", pv->name,
                 gwPvStateNames[pv->state], epicsTimeDiffInSeconds(now, &pv->since),
                 pv->channelCount,
                 pv->everConnected ? dbr_type_to_text(pv->nativeType) : "-",
                 pv->everConnected ? pv->nativeCount : 0ul,
                 (pv->rights & GW_RIGHT_READ) ? " read" : "",
                 (pv->rights & GW_RIGHT_WRITE) ? " write" : "");
    for (monitor = (gwUpMonitor *)ellFirst(&pv->monitors); monitor;
         monitor = (gwUpMonitor *)ellNext(&monitor->node)) {
        char mask[8];
        maskText(monitor->mask, mask);
        gwTextPrintf(text, "    subscription %s count %lu mask %s: %d clients%s%s\n",
                     dbr_type_to_text(monitor->type), monitor->count, mask,
                     ellCount(&monitor->subs), monitor->polled ? ", held for gets" : "",
                     monitor->hasValue ? ", cached" : "");
    }
    epicsMutexUnlock(pv->lock);
}

/* Written into a text under the locks, printed after them. */
static void upReport(void *self, FILE *out, unsigned level)
{
    gwUpstream *up = self;
    gwProviderCounters counts;
    gwText text = GW_TEXT_INIT;
    epicsTimeStamp now;
    int i;

    if (level == 0)
        return;
    memset(&counts, 0, sizeof counts);
    upCounters(up, &counts);
    gwTextPrintf(&text, "upstream: %lu PVs: %lu connecting, %lu active, %lu inactive, "
                 "%lu disconnected, %lu dead; %lu upstream subscriptions; %lu IOCs\n",
                 counts.pvs, counts.connecting, counts.active, counts.inactive,
                 counts.disconnected, counts.dead, counts.subscriptions, counts.servers);
    if (up->search) {
        gwUpSearchCounts searches;
        gwUpSearchGetCounts(up->search, &searches);
        gwTextPrintf(&text, "upstream searches of its own: %zu sent, %zu answered, "
                     "%zu waiting (to %u addresses); libca's: %zu passed through "
                     "127.0.0.1:%u, %zu answered\n",
                     searches.sent, searches.answered, searches.waiting, searches.addresses,
                     searches.libcaSearches, gwUpSearchProxyPort(up->search),
                     searches.libcaAnswered);
    }
    if (level >= 2) {
        epicsTimeGetCurrent(&now);
        gwLockTake(up->lock);
        for (i = 0; i < GW_PV_STATES; i++) {
            gwPv *pv;
            for (pv = (gwPv *)ellFirst(&up->states[i]); pv;
                 pv = (gwPv *)ellNext(&pv->stateNode))
                reportPv(pv, &now, &text);
        }
        epicsMutexUnlock(up->lock);
    }
    gwTextFlush(&text, out);
}
