/* gwLocal.c - the local provider: its life, its event contexts, its
 * channels, access rights and the threads that deliver and release things
 * (see gwLocal.h).
 *
 * Owns: the provider object, its event contexts (one dbEvent task each,
 * "gwLocalEvent<i>"), channels (attach gives each a context, round-robin;
 * detach), the asLib client of each channel, the deferred work run on a
 * channel's event task (rights changes, finished puts) and the reaper.
 *
 * Threads entering this file:
 * - the server's threads: exists, attach, detach, nativeType, nativeCount,
 *   rights, clientChanged, gwLocalProviderDestroy;
 * - asLib's callers (asInit on reload, the asCa task, clientChanged here)
 *   with asLib's lock held: gwLocalRightsChanged, which only queues on the
 *   channel's context;
 * - "gwLocalEvent<i>" (the dbEvent tasks): gwLocalLabor, which calls the
 *   server's rightsChanged and put completions of that context's channels;
 *   detach from inside any callback;
 * - "gwLocalReap": gwLocalReap, which releases graves.
 *
 * Locks: provider->lock and channel->identityLock (see gwLocalPriv.h for
 * what they protect and the order). The server is never called with a
 * provider lock held. A detach waits for a running rights or put delivery
 * of its channel on the channel's context (unless it runs inside it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <asDbLib.h>
#include <caerr.h>
#include <dbAccessDefs.h>
#include <epicsAtomic.h>
#include <epicsStdio.h>
#include <epicsString.h>
#include <special.h>

#include "gwLocal.h"
#include "gwLocalPriv.h"
#include "gwLog.h"

static const gwProviderOps gwLocalOps;

/* ---- helpers shared with gwLocalRead.c and gwLocalPut.c ---- */

unsigned gwLocalRightsOf(gwProviderChannel *channel)
{
    ASCLIENTPVT client = channel->asClient;
    unsigned rights = 0;

    if (!asActive || (client && asCheckGet(client)))
        rights |= GW_RIGHT_READ;
    if (dbChannelSpecial(channel->chan) != SPC_NOMOD &&
        (!asActive || (client && asCheckPut(client))))
        rights |= GW_RIGHT_WRITE;
    return rights;
}

/* On context's task: hold the server's sends back while more events are
 * queued; the extra labor posted here releases them should the last event
 * not reach gwLocalUpdate (cancelled, or dropped by a filter). */
void gwLocalHoldSends(gwLocalContext *context)
{
    gwLocalProvider *provider = context->provider;

    /* unbound (a provider used without a server): nothing to hold */
    if (!context->holding && provider->server) {
        context->holding = 1;
        provider->server->deliveryHold(provider->serverArg, &context->batch);
        db_post_extra_labor(context->events);
    }
}

/* On context's task (or once it has ended): send what was held back. */
void gwLocalReleaseSends(gwLocalContext *context)
{
    context->burst = 0;
    if (context->holding) {
        gwLocalProvider *provider = context->provider;
        context->holding = 0;
        provider->server->deliveryRelease(provider->serverArg, &context->batch);
    }
}

/* Is the caller the event task of context? */
int gwLocalOnContextTask(gwLocalContext *context)
{
    gwLocalProvider *provider = context->provider;
    epicsThreadId self = epicsThreadGetIdSelf();
    int yes;

    epicsMutexMustLock(provider->lock);
    yes = context->thread == self;
    epicsMutexUnlock(provider->lock);
    return yes;
}

/* Is the caller one of the provider's event tasks (inside a callback)? */
static int gwLocalOnAnyEventTask(gwLocalProvider *provider)
{
    epicsThreadId self = epicsThreadGetIdSelf();
    unsigned i;
    int yes = 0;

    epicsMutexMustLock(provider->lock);
    for (i = 0; i < provider->contextCount && !yes; i++)
        yes = provider->contexts[i].thread == self;
    epicsMutexUnlock(provider->lock);
    return yes;
}

/* Called by context's event task with provider->lock held, just before it
 * calls the server for channel. */
void gwLocalBeginDelivery(gwLocalContext *context, gwProviderChannel *channel)
{
    context->delivering = channel;
}

void gwLocalEndDelivery(gwLocalContext *context)
{
    epicsMutexMustLock(context->provider->lock);
    context->delivering = NULL;
    epicsMutexUnlock(context->provider->lock);
    epicsEventSignal(context->delivered);
}

/* With provider->lock held: return once the channel's event task is not
 * calling the server for channel. Per context only one thread waits at a
 * time (only the detach of the channel that context delivers now waits),
 * so one binary event per context suffices; a stale signal only costs a
 * re-check. */
static void gwLocalWaitDelivery(gwLocalProvider *provider, gwProviderChannel *channel)
{
    gwLocalContext *context = channel->context;

    while (context->delivering == channel) {
        if (gwLocalOnContextTask(context)) {
            context->delivering = NULL; /* detached from inside its own callback */
            break;
        }
        epicsMutexUnlock(provider->lock);
        epicsEventMustWait(context->delivered);
        epicsMutexMustLock(provider->lock);
    }
}

/* db_cancel_event() of an event of context, NOT on context's own task: it
 * waits for a running callback of the event. One such wait per context at
 * a time (see gwLocalPriv.h on pflush_sem). */
void gwLocalCancelEvent(gwLocalContext *context, dbEventSubscription event)
{
    epicsMutexMustLock(context->cancelLock);
    db_cancel_event(event);
    epicsMutexUnlock(context->cancelLock);
}

void gwLocalBury(gwLocalProvider *provider, gwLocalGrave *grave)
{
    epicsMutexMustLock(provider->lock);
    ellAdd(&provider->graves, &grave->node);
    epicsMutexUnlock(provider->lock);
    epicsEventSignal(provider->reapWake);
}

/* ---- threads ---- */

static void gwLocalEventStart(void *arg)
{
    gwLocalContext *context = arg;

    epicsMutexMustLock(context->provider->lock);
    context->thread = epicsThreadGetIdSelf();
    epicsMutexUnlock(context->provider->lock);
}

/* Deliver one rights change queued on context; 0 when none was queued. */
static int gwLocalDeliverRights(gwLocalContext *context)
{
    gwLocalProvider *provider = context->provider;
    gwProviderChannel *channel;
    const gwChannelEvents *events;
    void *serverChannel;
    unsigned rights;
    ELLNODE *node;

    epicsMutexMustLock(provider->lock);
    node = ellGet(&context->rightsQueue);
    if (!node) {
        epicsMutexUnlock(provider->lock);
        return 0;
    }
    channel = CONTAINER(node, gwProviderChannel, rightsNode);
    channel->rightsQueued = 0;
    rights = gwLocalRightsOf(channel);
    if (rights == channel->reportedRights) {
        epicsMutexUnlock(provider->lock);
        return 1;
    }
    channel->reportedRights = rights;
    events = channel->events;
    serverChannel = channel->serverChannel;
    gwLocalBeginDelivery(context, channel);
    epicsMutexUnlock(provider->lock);

    events->rightsChanged(serverChannel, rights);
    gwLocalEndDelivery(context);
    return 1;
}

/* The extra-labor function of an event context (its event task). */
static void gwLocalLabor(void *arg)
{
    gwLocalContext *context = arg;

    gwLocalReleaseSends(context);
    while (gwLocalDeliverRights(context))
        ;
    gwLocalDeliverPuts(context);
}

static void gwLocalReap(void *arg)
{
    gwLocalProvider *provider = arg;

    for (;;) {
        ELLNODE *node;
        int stop;

        epicsMutexMustLock(provider->lock);
        node = ellGet(&provider->graves);
        stop = provider->reapStop;
        epicsMutexUnlock(provider->lock);
        if (node) {
            gwLocalGrave *grave = CONTAINER(node, gwLocalGrave, node);
            grave->bury(grave);
        } else if (stop) {
            break;
        } else {
            epicsEventMustWait(provider->reapWake);
        }
    }
}

/* ---- access rights ---- */

/* asLib's callback, asLib's lock held: queue the channel for its event
 * task, which tells the server if the rights really changed. */
static void gwLocalRightsChanged(ASCLIENTPVT client, asClientStatus status)
{
    gwProviderChannel *channel = asGetClientPvt(client);
    gwLocalProvider *provider;
    int queued = 0;

    if (!channel || status != asClientCOAR)
        return;
    provider = channel->provider;
    epicsMutexMustLock(provider->lock);
    if (channel->attached && !channel->rightsQueued) {
        channel->rightsQueued = 1;
        ellAdd(&channel->context->rightsQueue, &channel->rightsNode);
        queued = 1;
    }
    epicsMutexUnlock(provider->lock);
    if (queued)
        db_post_extra_labor(channel->context->events);
}

/* The host name asLib sees: with asCheckClientIP the client's address (as
 * RSRV does), otherwise what the client said. Caller frees. */
static char *gwLocalHostOf(const gwClientIdentity *client)
{
    char text[24];
    unsigned long ip;

    if (!asCheckClientIP)
        return epicsStrDup(client->host ? client->host : "");
    ip = ntohl(client->address.sin_addr.s_addr);
    epicsSnprintf(text, sizeof text, "%lu.%lu.%lu.%lu", (ip >> 24) & 0xff,
                  (ip >> 16) & 0xff, (ip >> 8) & 0xff, ip & 0xff);
    return epicsStrDup(text);
}

static int gwLocalJoinAccess(gwProviderChannel *channel, const char *pvName)
{
    long status = asAddClient(&channel->asClient, asDbGetMemberPvt(channel->chan),
                              asDbGetAsl(channel->chan), channel->user, channel->host);

    if (status == S_asLib_asNotActive)
        return 0;
    if (status) {
        gwLog(GW_LOG_LOCAL, GW_LOG_ERROR, "%s: no asLib client (status %ld)", pvName, status);
        return -1;
    }
    asPutClientPvt(channel->asClient, channel);
    status = asRegisterClientCallback(channel->asClient, gwLocalRightsChanged);
    if (status && status != S_asLib_asNotActive) {
        gwLog(GW_LOG_LOCAL, GW_LOG_ERROR, "%s: no asLib callback (status %ld)", pvName, status);
        return -1;
    }
    return 0;
}

/* ---- channels ---- */

static void gwLocalChannelFree(gwProviderChannel *channel)
{
    if (channel->chan)
        dbChannelDelete(channel->chan);
    if (channel->identityLock)
        epicsMutexDestroy(channel->identityLock);
    free(channel->user);
    free(channel->host);
    free(channel);
}

static void gwLocalChannelBury(gwLocalGrave *grave)
{
    gwLocalChannelFree(CONTAINER(grave, gwProviderChannel, grave));
}

static void gwLocalExists(void *self, const gwClientIdentity *client,
                          gwExistsQuery *queries, unsigned count)
{
    gwLocalProvider *provider = self;
    unsigned i;

    (void)client;
    epicsAtomicAddSizeT(&provider->searches, count);
    for (i = 0; i < count; i++)
        if (dbChannelTest(queries[i].pvName) == 0)
            queries[i].answer = GW_EXISTS_YES;
}

static void gwLocalBind(void *self, const gwServerCallbacks *callbacks, void *server)
{
    gwLocalProvider *provider = self;

    provider->server = callbacks;
    provider->serverArg = server;
}

static void gwLocalUnbind(void *self)
{
    gwLocalProvider *provider = self;

    /* no channel is attached (the server detached them all): no event
     * task calls the server any more */
    provider->server = NULL;
    provider->serverArg = NULL;
}

static void gwLocalCounters(void *self, gwProviderCounters *counters)
{
    gwLocalProvider *provider = self;
    unsigned i;

    counters->channels = epicsAtomicGetSizeT(&provider->channelCount);
    counters->searches = epicsAtomicGetSizeT(&provider->searches);
    for (i = 0; i < provider->contextCount; i++)
        counters->updates += epicsAtomicGetSizeT(&provider->contexts[i].updates);
    counters->puts = epicsAtomicGetSizeT(&provider->puts);
    counters->putsRefused = epicsAtomicGetSizeT(&provider->putsRefused);
}

static void gwLocalReport(void *self, FILE *out, unsigned level)
{
    gwProviderCounters counters;

    if (level == 0)
        return;
    memset(&counters, 0, sizeof counters);
    gwLocalCounters(self, &counters);
    fprintf(out, "local: %lu channels to the IOC's records; %lu names asked, "
                 "%lu values delivered, %lu puts, %lu refused\n",
            counters.channels, counters.searches, counters.updates, counters.puts,
            counters.putsRefused);
}

static gwProviderChannel *gwLocalAttach(void *self, const char *pvName,
                                        const gwClientIdentity *client,
                                        const gwChannelEvents *events, void *serverChannel)
{
    gwLocalProvider *provider = self;
    gwProviderChannel *channel = calloc(1, sizeof *channel);
    size_t turn;

    if (!channel)
        return NULL;
    turn = epicsAtomicIncrSizeT(&provider->nextContext) - 1;
    channel->provider = provider;
    channel->context = &provider->contexts[turn % provider->contextCount];
    channel->events = events;
    channel->serverChannel = serverChannel;
    channel->grave.bury = gwLocalChannelBury;
    channel->chan = dbChannelCreate(pvName);
    if (!channel->chan || dbChannelOpen(channel->chan)) {
        gwLocalChannelFree(channel);
        return NULL;
    }
    channel->identityLock = epicsMutexCreate();
    channel->user = epicsStrDup(client->user ? client->user : "");
    channel->host = gwLocalHostOf(client);
    if (!channel->identityLock || gwLocalJoinAccess(channel, pvName)) {
        if (channel->asClient)
            asRemoveClient(&channel->asClient);
        gwLocalChannelFree(channel);
        return NULL;
    }
    epicsMutexMustLock(provider->lock);
    channel->attached = 1;
    channel->reportedRights = gwLocalRightsOf(channel);
    ellAdd(&provider->channels, &channel->node);
    epicsMutexUnlock(provider->lock);
    epicsAtomicIncrSizeT(&provider->channelCount);
    return channel;
}

static void gwLocalDetach(gwProviderChannel *channel)
{
    gwLocalProvider *provider = channel->provider;
    ELLNODE *node;
    int defer;

    /* Subscriptions the server left behind. */
    for (;;) {
        epicsMutexMustLock(provider->lock);
        node = ellFirst(&channel->subscriptions);
        epicsMutexUnlock(provider->lock);
        if (!node)
            break;
        gwLocalCancel(CONTAINER(node, gwProviderSubscription, node));
    }
    if (channel->asClient)
        asRemoveClient(&channel->asClient); /* no rights callback after this */
    gwLocalCompletePuts(channel);

    epicsMutexMustLock(provider->lock);
    channel->attached = 0;
    if (channel->rightsQueued) {
        ellDelete(&channel->context->rightsQueue, &channel->rightsNode);
        channel->rightsQueued = 0;
    }
    ellDelete(&provider->channels, &channel->node);
    epicsAtomicDecrSizeT(&provider->channelCount);
    gwLocalWaitDelivery(provider, channel);
    defer = gwLocalOnAnyEventTask(provider) || channel->pendingGraves > 0;
    epicsMutexUnlock(provider->lock);

    if (defer)
        gwLocalBury(provider, &channel->grave);
    else
        gwLocalChannelFree(channel);
}

static short gwLocalNativeType(gwProviderChannel *channel)
{
    return (short)dbChannelFinalCAType(channel->chan);
}

/* What the record holds now, in its native type (a synchronous read). */
static int gwLocalPeek(gwProviderChannel *channel, gwValueCallback *done, void *user)
{
    return gwLocalGet(channel, gwLocalNativeType(channel), 0, done, user);
}

static unsigned long gwLocalNativeCount(gwProviderChannel *channel)
{
    long count = dbChannelFinalElements(channel->chan);

    return count > 0 ? (unsigned long)count : 0;
}

static unsigned gwLocalRights(gwProviderChannel *channel)
{
    return gwLocalRightsOf(channel);
}

static void gwLocalClientChanged(gwProviderChannel *channel, const gwClientIdentity *client)
{
    char *user = epicsStrDup(client->user ? client->user : "");
    char *host = gwLocalHostOf(client);
    char *oldUser, *oldHost;

    epicsMutexMustLock(channel->identityLock);
    oldUser = channel->user;
    oldHost = channel->host;
    channel->user = user;
    channel->host = host;
    if (channel->asClient)
        asChangeClient(channel->asClient, asDbGetAsl(channel->chan), user, host);
    epicsMutexUnlock(channel->identityLock);
    free(oldUser);
    free(oldHost);
}

/* ---- the provider ---- */

static int gwLocalContextStart(gwLocalContext *context)
{
    char name[32];

    epicsSnprintf(name, sizeof name, "gwLocalEvent%u", context->index);
    context->delivered = epicsEventCreate(epicsEventEmpty);
    context->cancelLock = epicsMutexCreate();
    if (!context->delivered || !context->cancelLock)
        return -1;
    context->events = db_init_events();
    if (!context->events)
        return -1;
    if (db_add_extra_labor_event(context->events, gwLocalLabor, context) ||
        db_start_events(context->events, name, gwLocalEventStart, context,
                        epicsThreadPriorityCAServerLow)) {
        db_close_events(context->events);
        context->events = NULL;
        return -1;
    }
    return 0;
}

static int gwLocalStartThreads(gwLocalProvider *provider)
{
    epicsThreadOpts options = EPICS_THREAD_OPTS_INIT;
    unsigned i;

    for (i = 0; i < provider->contextCount; i++) {
        if (gwLocalContextStart(&provider->contexts[i]))
            return -1;
    }
    options.priority = epicsThreadPriorityLow;
    options.stackSize = epicsThreadGetStackSize(epicsThreadStackSmall);
    options.joinable = 1;
    provider->reaper = epicsThreadCreateOpt("gwLocalReap", gwLocalReap, provider, &options);
    return provider->reaper ? 0 : -1;
}

static void gwLocalProviderFree(gwLocalProvider *provider)
{
    unsigned i;

    if (provider->reaper) {
        epicsMutexMustLock(provider->lock);
        provider->reapStop = 1;
        epicsMutexUnlock(provider->lock);
        epicsEventSignal(provider->reapWake);
        epicsThreadMustJoin(provider->reaper);
    }
    for (i = 0; provider->contexts && i < provider->contextCount; i++) {
        gwLocalContext *context = &provider->contexts[i];

        if (context->events)
            db_close_events(context->events);  /* joins the task */
        /* a hold begun just before the task was told to exit: its labor
         * never ran; release here, the task is gone */
        gwLocalReleaseSends(context);
        if (context->delivered)
            epicsEventDestroy(context->delivered);
        if (context->cancelLock)
            epicsMutexDestroy(context->cancelLock);
    }
    free(provider->contexts);
    if (provider->reapWake)
        epicsEventDestroy(provider->reapWake);
    if (provider->lock)
        epicsMutexDestroy(provider->lock);
    free(provider);
}

gwProvider *gwLocalProviderCreate(unsigned eventTasks)
{
    gwLocalProvider *provider;
    unsigned i;

    if (!pdbbase || !interruptAccept) {
        gwLog(GW_LOG_LOCAL, GW_LOG_ERROR, "the database is not running (call after iocInit)");
        return NULL;
    }
    provider = calloc(1, sizeof *provider);
    if (!provider)
        return NULL;
    provider->provider.ops = &gwLocalOps;
    provider->provider.self = provider;
    provider->contextCount = eventTasks ? eventTasks : GW_LOCAL_DEFAULT_EVENT_TASKS;
    provider->contexts = calloc(provider->contextCount, sizeof *provider->contexts);
    for (i = 0; provider->contexts && i < provider->contextCount; i++) {
        provider->contexts[i].provider = provider;
        provider->contexts[i].index = i;
    }
    provider->lock = epicsMutexCreate();
    provider->reapWake = epicsEventCreate(epicsEventEmpty);
    if (!provider->contexts || !provider->lock || !provider->reapWake ||
        gwLocalStartThreads(provider)) {
        gwLog(GW_LOG_LOCAL, GW_LOG_ERROR, "cannot start the provider's threads");
        gwLocalProviderFree(provider);
        return NULL;
    }
    return &provider->provider;
}

void gwLocalProviderDestroy(gwProvider *handle)
{
    gwLocalProvider *provider;
    ELLNODE *node;

    if (!handle)
        return;
    provider = handle->self;
    for (;;) {
        epicsMutexMustLock(provider->lock);
        node = ellFirst(&provider->channels);
        epicsMutexUnlock(provider->lock);
        if (!node)
            break;
        gwLocalDetach(CONTAINER(node, gwProviderChannel, node));
    }
    gwLocalProviderFree(provider);
}

static const gwProviderOps gwLocalOps = {
    .name = "local",
    .bind = gwLocalBind,
    .unbind = gwLocalUnbind,
    .exists = gwLocalExists,
    .attach = gwLocalAttach,
    .detach = gwLocalDetach,
    .nativeType = gwLocalNativeType,
    .nativeCount = gwLocalNativeCount,
    .rights = gwLocalRights,
    .clientChanged = gwLocalClientChanged,
    .get = gwLocalGet,
    .peek = gwLocalPeek,
    .put = gwLocalPut,
    .subscribe = gwLocalSubscribe,
    .cancel = gwLocalCancel,
    .enable = gwLocalEnable,
    .report = gwLocalReport,
    .counters = gwLocalCounters,
    /* deferred: records are there or not; searchesDone: nothing gathered */
};
