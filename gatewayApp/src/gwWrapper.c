/* gwWrapper.c - a provider in front of another one (gwWrapper.h): every
 * operation goes on to the inner provider through gwProviderCall.h, after
 * the policy has renamed, refused or narrowed; every callback of the inner
 * provider comes back through the wrapper's own tables (gwServerCallbacks
 * and gwChannelEvents) on to the server.
 *
 * Threads: the operations run on the server's threads; the interposed
 * callbacks on the inner provider's, possibly with its locks held (the
 * lock rule of gwProvider.h: they only call the server's callbacks).
 * Locks: w->lock (the pending aliases, the list of channels) and each
 * channel's lock (its identity and the rights last told), held while the
 * server's rightsChanged runs (which calls no provider) so that the
 * rights told arrive in order. Order: w->lock (in gwWrapperRecheck,
 * around the channel policy's recheck, which may take asLib's lock) ->
 * asLib's lock (its callbacks call gwWrapperRightsChanged) -> a
 * channel's lock -> the server's leaf locks. No lock is held while the
 * inner provider is called, nor a channel's lock while the channel
 * policy's open, close, clientChanged or logPut run.
 */
#include <stdlib.h>
#include <string.h>

#include <caerr.h>
#include <db_access.h>
#include <dbDefs.h>
#include <ellLib.h>
#include <epicsAtomic.h>
#include <epicsMutex.h>
#include <epicsString.h>

#include "gwProviderCall.h"
#include "gwText.h"
#include "gwWrapper.h"

#define GW_RIGHTS_UNTOLD (~0u)

typedef struct gwWrapper {
    gwProvider provider;          /* what the server holds */
    gwProvider inner;
    gwWrapperPolicy policy;
    char *name;
    const gwServerCallbacks *server; /* set by bind before the inner's bind */
    void *serverArg;
    epicsMutexId lock;
    ELLLIST pending;              /* gwWrapperAlias, oldest first (lock) */
    ELLLIST channelList;          /* gwProviderChannel.listNode, attached (lock) */
    size_t channels, searches, searchesRefused, putsRefused; /* atomic */
} gwWrapper;

/* A renamed name the inner provider answered PENDING. */
typedef struct gwWrapperAlias {
    ELLNODE node;
    char *innerName;
    char *clientName;
} gwWrapperAlias;

struct gwProviderChannel {
    ELLNODE listNode;             /* in w->channelList once attached (w->lock) */
    gwWrapper *w;
    gwProviderChannel *inner;
    const gwChannelEvents *events;
    void *serverChannel;
    char *pvName;                 /* the client's name */
    char *innerName;              /* the inner provider's name for it */
    void *state;                  /* the channel policy's */
    int dropped;                  /* a recheck disconnected it (w->lock) */
    int deferred;                 /* const after attach: the inner attach is deferred */
    int connectedCalled;          /* the inner provider told connected (lock) */
    int failOnConnect;            /* a recheck refused it before that (lock) */
    epicsMutexId lock;
    const gwClientIdentity *client;  /* (lock) */
    unsigned innerRights;         /* the inner provider's rights, last known (lock) */
    unsigned told;                /* rights last told or answered (lock) */
};

struct gwProviderSubscription {
    gwProviderChannel *channel;
    gwProviderSubscription *inner;
};

/* ---------------------------------------------------------------- policy */

/* The inner name of pvName into buffer: buffer, pvName itself, or NULL
 * when the alias does not fit. */
static const char *innerNameOf(gwWrapper *w, const char *pvName, char *buffer)
{
    if (!w->policy.rename || !w->policy.rename(w->policy.arg, pvName, buffer,
                                               GW_WRAPPER_NAME_SIZE))
        return pvName;
    if (memchr(buffer, '\0', GW_WRAPPER_NAME_SIZE) == NULL)
        return NULL;
    return buffer;
}

static int allowed(gwWrapper *w, const char *pvName, const gwClientIdentity *client)
{
    if (!w->policy.allow || w->policy.allow(w->policy.arg, pvName, client))
        return 1;
    epicsAtomicIncrSizeT(&w->searchesRefused);
    return 0;
}

/* The client's rights from the inner ones (channel->lock held). */
static unsigned narrowed(gwProviderChannel *channel, unsigned rights)
{
    gwWrapper *w = channel->w;

    if (w->policy.channel && w->policy.channel->rights)
        return w->policy.channel->rights(w->policy.arg, channel->state, rights);
    if (!w->policy.narrowRights)
        return rights;
    return w->policy.narrowRights(w->policy.arg, channel->pvName, channel->client, rights);
}

/* Tell the server the rights when they changed (channel->lock held). */
static void tellRights(gwProviderChannel *channel, unsigned rights)
{
    if (rights == channel->told)
        return;
    channel->told = rights;
    channel->events->rightsChanged(channel->serverChannel, rights);
}

/* ---------------------------------------------------------------- pending aliases */

static void rememberAlias(gwWrapper *w, const char *innerName, const char *clientName)
{
    gwWrapperAlias *alias;

    epicsMutexMustLock(w->lock);
    for (alias = (gwWrapperAlias *)ellFirst(&w->pending); alias;
         alias = (gwWrapperAlias *)ellNext(&alias->node)) {
        if (strcmp(alias->clientName, clientName) == 0)
            break;
    }
    if (!alias) {
        alias = calloc(1, sizeof *alias);
        if (alias) {
            alias->innerName = epicsStrDup(innerName);
            alias->clientName = epicsStrDup(clientName);
            ellAdd(&w->pending, &alias->node);
        }
    }
    if (ellCount(&w->pending) > GW_WRAPPER_PENDING_MAX) {
        gwWrapperAlias *oldest = (gwWrapperAlias *)ellGet(&w->pending);
        free(oldest->innerName);
        free(oldest->clientName);
        free(oldest);
    }
    epicsMutexUnlock(w->lock);
}

/* ---------------------------------------------------------------- server callbacks, interposed */

/* The inner names settled, as the client names that wait for them: each
 * remembered alias of it, and the name itself unless it is renamed. */
static void wrNamesSettled(void *self, const char *const *pvNames, unsigned count)
{
    gwWrapper *w = self;
    char buffer[GW_WRAPPER_NAME_SIZE];
    ELLLIST found = ELLLIST_INIT;
    gwWrapperAlias *alias;
    const char **names;
    unsigned i, n = 0;

    epicsMutexMustLock(w->lock);
    for (i = 0; i < count; i++) {
        alias = (gwWrapperAlias *)ellFirst(&w->pending);
        while (alias) {
            gwWrapperAlias *next = (gwWrapperAlias *)ellNext(&alias->node);
            if (strcmp(alias->innerName, pvNames[i]) == 0) {
                ellDelete(&w->pending, &alias->node);
                ellAdd(&found, &alias->node);
            }
            alias = next;
        }
    }
    epicsMutexUnlock(w->lock);

    names = malloc((count + (unsigned)ellCount(&found)) * sizeof *names + 1);
    if (names) {
        for (i = 0; i < count; i++) {
            if (innerNameOf(w, pvNames[i], buffer) == pvNames[i])
                names[n++] = pvNames[i];
        }
        for (alias = (gwWrapperAlias *)ellFirst(&found); alias;
             alias = (gwWrapperAlias *)ellNext(&alias->node))
            names[n++] = alias->clientName;
        if (n)
            w->server->namesSettled(w->serverArg, names, n);
        free(names);
    }
    while ((alias = (gwWrapperAlias *)ellGet(&found)) != NULL) {
        free(alias->innerName);
        free(alias->clientName);
        free(alias);
    }
}

static void wrBeaconAnomaly(void *self)
{
    gwWrapper *w = self;

    w->server->beaconAnomaly(w->serverArg);
}

static void wrDeliveryHold(void *self, gwDeliveryBatch *batch)
{
    gwWrapper *w = self;

    w->server->deliveryHold(w->serverArg, batch);
}

static void wrDeliveryRelease(void *self, gwDeliveryBatch *batch)
{
    gwWrapper *w = self;

    w->server->deliveryRelease(w->serverArg, batch);
}

static const gwServerCallbacks wrapperServerCallbacks = {
    .namesSettled = wrNamesSettled,
    .beaconAnomaly = wrBeaconAnomaly,
    .deliveryHold = wrDeliveryHold,
    .deliveryRelease = wrDeliveryRelease,
};

/* ---------------------------------------------------------------- channel events, interposed */

static void wrRightsChanged(void *serverChannel, unsigned rights)
{
    gwProviderChannel *channel = serverChannel;

    epicsMutexMustLock(channel->lock);
    channel->innerRights = rights;
    tellRights(channel, narrowed(channel, rights));
    epicsMutexUnlock(channel->lock);
}

void gwWrapperRightsChanged(gwWrapperChannel *channel)
{
    epicsMutexMustLock(channel->lock);
    if (channel->told != GW_RIGHTS_UNTOLD)
        tellRights(channel, narrowed(channel, channel->innerRights));
    epicsMutexUnlock(channel->lock);
}

static void wrDisconnected(void *serverChannel)
{
    gwProviderChannel *channel = serverChannel;

    channel->events->disconnected(channel->serverChannel);
}

static void wrWriteFailed(void *serverChannel, short dbrType, unsigned long count,
                          int ecaStatus)
{
    gwProviderChannel *channel = serverChannel;

    channel->events->writeFailed(channel->serverChannel, dbrType, count, ecaStatus);
}

/* A channel a recheck refused while its attach was still deferred fails
 * now (CREATE_CH_FAIL), as if the source had not connected. */
static void wrConnected(void *serverChannel, int ok)
{
    gwProviderChannel *channel = serverChannel;

    epicsMutexMustLock(channel->lock);
    channel->connectedCalled = 1;
    if (channel->failOnConnect)
        ok = 0;
    epicsMutexUnlock(channel->lock);
    channel->events->connected(channel->serverChannel, ok);
}

static const gwChannelEvents wrapperChannelEvents = {
    .rightsChanged = wrRightsChanged,
    .disconnected = wrDisconnected,
    .writeFailed = wrWriteFailed,
    .connected = wrConnected,
};

/* ---------------------------------------------------------------- operations */

static void wrBind(void *self, const gwServerCallbacks *callbacks, void *server)
{
    gwWrapper *w = self;

    w->server = callbacks;
    w->serverArg = server;
    gwCallBind(&w->inner, &wrapperServerCallbacks, w);
}

/* After the inner unbind returns it calls none of the wrapper's table. */
static void wrUnbind(void *self)
{
    gwWrapper *w = self;

    gwCallUnbind(&w->inner);
    w->server = NULL;
    w->serverArg = NULL;
}

/* The queries still unanswered and allowed go on, renamed; their answers
 * (and addresses) come back into the server's queries. */
static void wrExists(void *self, const gwClientIdentity *client, gwExistsQuery *queries,
                     unsigned count)
{
    gwWrapper *w = self;
    size_t nameSize = w->policy.rename ? GW_WRAPPER_NAME_SIZE : 0; /* for aliases */
    gwExistsQuery *inner = malloc(count * (sizeof *inner + nameSize) + 1);
    unsigned *index = malloc(count * sizeof *index + 1);
    char *buffers = (char *)(inner + count);
    unsigned i, n = 0;

    if (!inner || !index) {
        free(inner);
        free(index);
        return;     /* NO: the client searches again */
    }
    epicsAtomicAddSizeT(&w->searches, count);
    for (i = 0; i < count; i++) {
        const char *name;
        if (queries[i].answer != GW_EXISTS_NO || !allowed(w, queries[i].pvName, client))
            continue;
        name = innerNameOf(w, queries[i].pvName, buffers + (size_t)n * nameSize);
        if (!name)
            continue;
        memset(&inner[n], 0, sizeof inner[n]);
        inner[n].pvName = name;
        inner[n].answer = GW_EXISTS_NO;
        index[n++] = i;
    }
    if (n)
        gwCallExists(&w->inner, client, inner, n);
    for (i = 0; i < n; i++) {
        gwExistsQuery *query = &queries[index[i]];
        query->answer = inner[i].answer;
        query->where = inner[i].where;
        if (inner[i].answer == GW_EXISTS_PENDING && inner[i].pvName != query->pvName)
            rememberAlias(w, inner[i].pvName, query->pvName);
    }
    free(inner);
    free(index);
}

static void wrSearchesDone(void *self)
{
    gwWrapper *w = self;

    gwCallSearchesDone(&w->inner);
}

static void freeChannel(gwProviderChannel *channel)
{
    if (channel->lock)
        epicsMutexDestroy(channel->lock);
    free(channel->pvName);
    free(channel->innerName);
    free(channel);
}

static void closeState(gwProviderChannel *channel)
{
    const gwWrapperChannelPolicy *policy = channel->w->policy.channel;

    if (policy && policy->close && channel->state)
        policy->close(channel->w->policy.arg, channel->state);
    channel->state = NULL;
}

/* The wrapper's channel is ready before the inner attach: the inner
 * provider may call its events before attach returns. */
static gwProviderChannel *wrAttach(void *self, const char *pvName,
                                   const gwClientIdentity *client,
                                   const gwChannelEvents *events, void *serverChannel)
{
    gwWrapper *w = self;
    char buffer[GW_WRAPPER_NAME_SIZE];
    const char *name;
    gwProviderChannel *channel;

    if (!allowed(w, pvName, client))
        return NULL;
    name = innerNameOf(w, pvName, buffer);
    channel = calloc(1, sizeof *channel);
    if (!name || !channel) {
        free(channel);
        return NULL;
    }
    channel->w = w;
    channel->events = events;
    channel->serverChannel = serverChannel;
    channel->pvName = epicsStrDup(pvName);
    channel->innerName = epicsStrDup(name);
    channel->lock = epicsMutexCreate();
    channel->client = client;
    channel->innerRights = GW_RIGHT_READ | GW_RIGHT_WRITE;
    channel->told = GW_RIGHTS_UNTOLD;
    if (!channel->pvName || !channel->innerName || !channel->lock) {
        freeChannel(channel);
        return NULL;
    }
    if (w->policy.channel && w->policy.channel->open
        && w->policy.channel->open(w->policy.arg, pvName, name, client, channel,
                                   &channel->state) != 0) {
        freeChannel(channel);
        return NULL;
    }
    channel->inner = gwCallAttach(&w->inner, name, client, &wrapperChannelEvents, channel);
    if (!channel->inner) {
        closeState(channel);
        freeChannel(channel);
        return NULL;
    }
    channel->deferred = gwCallDeferred(&w->inner, channel->inner);
    epicsMutexMustLock(w->lock);
    ellAdd(&w->channelList, &channel->listNode);
    epicsMutexUnlock(w->lock);
    epicsAtomicIncrSizeT(&w->channels);
    return channel;
}

static int wrDeferred(gwProviderChannel *channel)
{
    return channel->deferred;
}

/* After the inner detach returns none of the channel's events runs. */
static void wrDetach(gwProviderChannel *channel)
{
    gwWrapper *w = channel->w;

    epicsMutexMustLock(w->lock);
    ellDelete(&w->channelList, &channel->listNode);
    epicsMutexUnlock(w->lock);
    gwCallDetach(&w->inner, channel->inner);
    closeState(channel);
    epicsAtomicDecrSizeT(&w->channels);
    freeChannel(channel);
}

static short wrNativeType(gwProviderChannel *channel)
{
    return gwCallNativeType(&channel->w->inner, channel->inner);
}

static unsigned long wrNativeCount(gwProviderChannel *channel)
{
    return gwCallNativeCount(&channel->w->inner, channel->inner);
}

/* The narrowed inner rights; the server knows them from now on. */
static unsigned wrRights(gwProviderChannel *channel)
{
    unsigned inner = gwCallRights(&channel->w->inner, channel->inner);
    unsigned rights;

    epicsMutexMustLock(channel->lock);
    channel->innerRights = inner;
    rights = narrowed(channel, inner);
    channel->told = rights;
    epicsMutexUnlock(channel->lock);
    return rights;
}

/* The inner provider re-evaluates (and may tell its change, narrowed on
 * the way); the policy re-evaluates too, with the new identity. */
static void wrClientChanged(gwProviderChannel *channel, const gwClientIdentity *client)
{
    gwWrapper *w = channel->w;
    unsigned inner;

    epicsMutexMustLock(channel->lock);
    channel->client = client;
    epicsMutexUnlock(channel->lock);
    if (w->policy.channel && w->policy.channel->clientChanged && channel->state)
        w->policy.channel->clientChanged(w->policy.arg, channel->state, client);
    gwCallClientChanged(&w->inner, channel->inner, client);
    inner = gwCallRights(&w->inner, channel->inner);
    epicsMutexMustLock(channel->lock);
    channel->innerRights = inner;
    if (channel->told != GW_RIGHTS_UNTOLD)
        tellRights(channel, narrowed(channel, inner));
    epicsMutexUnlock(channel->lock);
}

/* What the policy leaves of the channel's rights now. */
static unsigned rightsNow(gwProviderChannel *channel)
{
    unsigned inner;
    unsigned rights;

    if (!channel->w->policy.narrowRights
        && !(channel->w->policy.channel && channel->w->policy.channel->rights))
        return GW_RIGHT_READ | GW_RIGHT_WRITE;  /* the inner provider decides */
    inner = gwCallRights(&channel->w->inner, channel->inner);
    epicsMutexMustLock(channel->lock);
    channel->innerRights = inner;
    rights = narrowed(channel, inner);
    epicsMutexUnlock(channel->lock);
    return rights;
}

static int wrGet(gwProviderChannel *channel, short dbrType, unsigned long count,
                 gwValueCallback *done, void *user)
{
    if (!(rightsNow(channel) & GW_RIGHT_READ))
        return ECA_NORDACCESS;
    return gwCallGet(&channel->w->inner, channel->inner, dbrType, count, done, user);
}

/* The old value of a logged put, copied out of the inner provider's peek. */
typedef struct gwWrapperOld {
    short type;
    unsigned long count;
    void *value;
} gwWrapperOld;

static void keepOld(void *user, int ecaStatus, short dbrType, unsigned long count,
                    const void *value)
{
    gwWrapperOld *old = user;
    size_t size;

    if (ecaStatus != ECA_NORMAL || !value || old->value)
        return;
    size = dbr_size_n(dbrType, count);
    old->value = malloc(size ? size : 1);
    if (!old->value)
        return;
    memcpy(old->value, value, size);
    old->type = dbrType;
    old->count = count;
}

static int wrPut(gwProviderChannel *channel, short dbrType, unsigned long count,
                 const void *value, gwPutCallback *done, void *user)
{
    gwWrapper *w = channel->w;
    const gwWrapperChannelPolicy *policy = w->policy.channel;
    gwWrapperOld old = { 0, 0, NULL };
    const gwClientIdentity *client;
    int traced, status;

    if (!(rightsNow(channel) & GW_RIGHT_WRITE)) {
        epicsAtomicIncrSizeT(&w->putsRefused);
        return ECA_NOWTACCESS;
    }
    traced = policy && policy->tracesPut && policy->logPut && channel->state
             && policy->tracesPut(w->policy.arg, channel->state);
    if (traced)
        (void)gwCallPeek(&w->inner, channel->inner, keepOld, &old);
    status = gwCallPut(&w->inner, channel->inner, dbrType, count, value, done, user);
    if (traced && status == ECA_NORMAL) {
        epicsMutexMustLock(channel->lock);
        client = channel->client;
        epicsMutexUnlock(channel->lock);
        policy->logPut(w->policy.arg, channel->state, client, channel->pvName, dbrType,
                       count, value, old.type, old.count, old.value);
    }
    free(old.value);
    return status;
}

/* Updates go from the inner provider straight to the server's callback. */
static gwProviderSubscription *wrSubscribe(gwProviderChannel *channel, short dbrType,
                                           unsigned long count, unsigned mask,
                                           gwValueCallback *update, void *user,
                                           int *ecaStatus)
{
    gwProviderSubscription *sub = calloc(1, sizeof *sub);

    if (!sub) {
        *ecaStatus = ECA_ALLOCMEM;
        return NULL;
    }
    sub->channel = channel;
    sub->inner = gwCallSubscribe(&channel->w->inner, channel->inner, dbrType, count, mask,
                                 update, user, ecaStatus);
    if (!sub->inner) {
        free(sub);
        return NULL;
    }
    return sub;
}

static void wrCancel(gwProviderSubscription *sub)
{
    gwCallCancel(&sub->channel->w->inner, sub->inner);
    free(sub);
}

static void wrEnable(gwProviderSubscription *sub, int enabled)
{
    gwCallEnable(&sub->channel->w->inner, sub->inner, enabled);
}

static int wrPeek(gwProviderChannel *channel, gwValueCallback *done, void *user)
{
    if (!(rightsNow(channel) & GW_RIGHT_READ))
        return ECA_NORDACCESS;
    return gwCallPeek(&channel->w->inner, channel->inner, done, user);
}

static void wrCounters(void *self, gwProviderCounters *counters)
{
    gwWrapper *w = self;

    gwCallCounters(&w->inner, counters);
    counters->searchesRefused += epicsAtomicGetSizeT(&w->searchesRefused);
    counters->putsRefused += epicsAtomicGetSizeT(&w->putsRefused);
}

static unsigned wrBusiest(void *self, gwPvActivity *out, unsigned max)
{
    gwWrapper *w = self;

    return gwCallBusiest(&w->inner, out, max);
}

/* Its own line, then the inner provider's report. */
static void wrReport(void *self, FILE *out, unsigned level)
{
    gwWrapper *w = self;
    gwText text = GW_TEXT_INIT;
    int pending;

    if (level == 0)
        return;
    epicsMutexMustLock(w->lock);
    pending = ellCount(&w->pending);
    epicsMutexUnlock(w->lock);
    gwTextPrintf(&text, "%s over %s: %zu channels, %zu names asked, %zu refused, "
                 "%zu puts refused, %d aliases pending\n",
                 w->name, w->inner.ops->name, epicsAtomicGetSizeT(&w->channels),
                 epicsAtomicGetSizeT(&w->searches), epicsAtomicGetSizeT(&w->searchesRefused),
                 epicsAtomicGetSizeT(&w->putsRefused), pending);
    gwTextFlush(&text, out);
    gwCallReport(&w->inner, out, level);
}

static const gwProviderOps gwWrapperOps = {
    .name = "wrapper",
    .bind = wrBind,
    .unbind = wrUnbind,
    .exists = wrExists,
    .searchesDone = wrSearchesDone,
    .attach = wrAttach,
    .deferred = wrDeferred,
    .detach = wrDetach,
    .nativeType = wrNativeType,
    .nativeCount = wrNativeCount,
    .rights = wrRights,
    .clientChanged = wrClientChanged,
    .get = wrGet,
    .put = wrPut,
    .peek = wrPeek,
    .subscribe = wrSubscribe,
    .cancel = wrCancel,
    .enable = wrEnable,
    .report = wrReport,
    .counters = wrCounters,
    .busiest = wrBusiest,
};

/* ---------------------------------------------------------------- recheck */

/* Keep the channel under the rules now? (w->lock held) */
static int stillAllowed(gwWrapper *w, gwProviderChannel *channel,
                        const gwClientIdentity *client)
{
    char buffer[GW_WRAPPER_NAME_SIZE];
    const char *name;

    if (w->policy.allow && !w->policy.allow(w->policy.arg, channel->pvName, client))
        return 0;
    name = innerNameOf(w, channel->pvName, buffer);
    if (!name || strcmp(name, channel->innerName) != 0)
        return 0;
    if (w->policy.channel && w->policy.channel->recheck && channel->state)
        return w->policy.channel->recheck(w->policy.arg, channel->state, channel->pvName,
                                          client);
    return 1;
}

unsigned gwWrapperRecheck(gwProvider *provider)
{
    gwWrapper *w = provider->self;
    gwProviderChannel *channel;
    const gwClientIdentity *client;
    ELLNODE *node;
    unsigned dropped = 0;

    GW_ASSERT_NOT_IN_CALLBACK();
    epicsMutexMustLock(w->lock);
    for (node = ellFirst(&w->channelList); node; node = ellNext(node)) {
        channel = CONTAINER(node, gwProviderChannel, listNode);
        if (channel->dropped)
            continue;
        epicsMutexMustLock(channel->lock);
        client = channel->client;
        epicsMutexUnlock(channel->lock);
        if (!stillAllowed(w, channel, client)) {
            int waiting;
            channel->dropped = 1;
            dropped++;
            epicsMutexMustLock(channel->lock);
            waiting = channel->deferred && !channel->connectedCalled;
            if (waiting)
                channel->failOnConnect = 1;   /* its reply is still held */
            epicsMutexUnlock(channel->lock);
            if (!waiting)
                channel->events->disconnected(channel->serverChannel);
            continue;
        }
        gwWrapperRightsChanged(channel);
    }
    epicsMutexUnlock(w->lock);
    return dropped;
}

/* ---------------------------------------------------------------- life */

gwProvider *gwWrapperCreate(const gwProvider *inner, const gwWrapperPolicy *policy)
{
    gwWrapper *w = calloc(1, sizeof *w);

    if (!w)
        return NULL;
    w->inner = *inner;
    if (policy)
        w->policy = *policy;
    w->name = epicsStrDup(w->policy.name ? w->policy.name : "wrapper");
    w->lock = epicsMutexCreate();
    if (!w->name || !w->lock) {
        if (w->lock)
            epicsMutexDestroy(w->lock);
        free(w->name);
        free(w);
        return NULL;
    }
    w->policy.name = w->name;
    ellInit(&w->pending);
    ellInit(&w->channelList);
    w->provider.ops = &gwWrapperOps;
    w->provider.self = w;
    return &w->provider;
}

void gwWrapperDestroy(gwProvider *provider)
{
    gwWrapper *w;
    gwWrapperAlias *alias;

    if (!provider)
        return;
    w = provider->self;
    while ((alias = (gwWrapperAlias *)ellGet(&w->pending)) != NULL) {
        free(alias->innerName);
        free(alias->clientName);
        free(alias);
    }
    epicsMutexDestroy(w->lock);
    free(w->name);
    free(w);
}
