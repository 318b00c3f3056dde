/* gwCircuitChannel.c - the requests of a circuit: one small handler per CA
 * command, the channels and subscriptions they create, and the provider
 * callbacks that answer them.
 *
 * Threads: handlers run on the circuit's loop thread (gwCircuitDispatch).
 * Provider callbacks run on any thread; they only queue output and hand
 * work to the loop thread (channelTask) under the circuit lock.
 * Locks: circuit->lock as described in gwCircuit.c; never held while a
 * provider is called. Behaviour follows RSRV (camessage.c) where it says
 * what a server does; the comments name RSRV's choice where it matters.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <caerr.h>
#include <db_access.h>
#include <epicsAtomic.h>

#include "gwCircuitPriv.h"
#include "gwLog.h"

/* Puts of up to this many bytes convert their value on the stack. */
#define GW_PUT_STACK_BYTES 256u

/* A get in flight: everything the reply needs, owned by the callback. */
typedef struct gwPendingRequest {
    gwCircuit *circuit;
    gwCaHeader request;
} gwPendingRequest;

void gwCircuitLogBad(gwCircuit *c, const gwCaHeader *request, const char *why)
{
    char who[GW_CIRCUIT_WHO_SIZE];

    if (!gwLogEnabled(GW_LOG_CIRCUIT, GW_LOG_WARNING))
        return;
    gwCircuitWho(c, who, sizeof who);
    if (request)
        gwLogPrintPeer(GW_LOG_CIRCUIT, who, "closing the circuit: %s (command %u, type %u, count %u)",
                       why, request->command, request->dataType, request->count);
    else
        gwLogPrintPeer(GW_LOG_CIRCUIT, who, "closing the circuit: %s", why);
}

/* The channel of a server id, or NULL; with its rights when `rights` is
 * not NULL (one lock for both, on the path of every put). */
static gwServerChannel *findChannelRights(gwCircuit *c, epicsUInt32 sid, unsigned *rights)
{
    gwServerChannel *channel;

    epicsMutexMustLock(c->lock);
    channel = gwChannelIdsFind(&c->ids, sid);
    if (channel && channel->pending)
        channel = NULL;     /* the client cannot know its id yet */
    if (channel && rights)
        *rights = channel->rights;
    epicsMutexUnlock(c->lock);
    return channel;
}

static gwServerChannel *findChannel(gwCircuit *c, epicsUInt32 sid)
{
    return findChannelRights(c, sid, NULL);
}

/* RSRV answers an unknown channel id with ECA_INTERNAL and drops the
 * circuit; so do we (a correct client never does it). */
static int badChannel(gwCircuit *c, const gwCaHeader *request)
{
    gwCircuitQueueError(c, request, 0xffffffffu, ECA_INTERNAL, "Bad Resource ID");
    gwCircuitLogBad(c, request, "unknown channel id");
    return -1;
}

static unsigned channelRights(gwServerChannel *channel)
{
    unsigned rights;

    epicsMutexMustLock(channel->circuit->lock);
    rights = channel->rights;
    epicsMutexUnlock(channel->circuit->lock);
    return rights;
}

/* ---------------------------------------------------------------- simple commands */

static int onVersion(gwCircuit *c, const gwCaMessage *m)
{
    gwCaVersion version;

    if (gwCodecDecodeVersion(m, &version) != GW_CODEC_OK || version.priority > CA_PROTO_PRIORITY_MAX)
        return -1;
    epicsAtomicSetIntT(&c->minor, (int)version.minorVersion);
    epicsMutexMustLock(c->lock);
    c->identity.minorVersion = version.minorVersion;
    c->identity.priority = version.priority;
    epicsMutexUnlock(c->lock);
    return 0;
}

static int onEcho(gwCircuit *c, const gwCaMessage *m)
{
    unsigned char buf[GW_CA_HEADER_SIZE];

    (void)m;
    gwCircuitQueueBytes(c, buf, gwCodecBuildEcho(buf, sizeof buf));
    return 0;
}

static int onReadSync(gwCircuit *c, const gwCaMessage *m)
{
    unsigned char buf[GW_CA_HEADER_SIZE];

    gwCircuitQueueBytes(c, buf, gwCodecBuildReadSync(buf, sizeof buf, &m->header));
    return 0;
}

static int onEventsOff(gwCircuit *c, const gwCaMessage *m)
{
    (void)m;
    epicsMutexMustLock(c->lock);
    c->eventsOff = 1;
    epicsMutexUnlock(c->lock);
    return 0;
}

static int onEventsOn(gwCircuit *c, const gwCaMessage *m)
{
    (void)m;
    epicsMutexMustLock(c->lock);
    c->eventsOff = 0;
    gwIoLoopPost(c->loop, &c->flushTask);
    epicsMutexUnlock(c->lock);
    return 0;
}

/* CLIENT_NAME and HOST_NAME: new identity, rights re-evaluated. */
static int onName(gwCircuit *c, const gwCaMessage *m)
{
    gwCaString name;
    gwServerChannel *channel;
    char *copy, *old;

    if (gwCodecDecodeClientName(m, &name) != GW_CODEC_OK) {
        gwCircuitLogBad(c, &m->header, "bad client or host name");
        return -1;
    }
    copy = malloc(name.length + 1);
    if (!copy)
        return -1;
    memcpy(copy, name.text, name.length + 1);
    epicsMutexMustLock(c->lock);
    if (m->header.command == CA_PROTO_CLIENT_NAME) {
        old = c->user;
        c->identity.user = c->user = copy;
    }
    else {
        old = c->host;
        c->identity.host = c->host = copy;
    }
    epicsMutexUnlock(c->lock);
    gwCircuitSetName(c);
    /* channels are created and destroyed only on this thread */
    for (channel = (gwServerChannel *)ellFirst(&c->channelList); channel;
         channel = (gwServerChannel *)ellNext(&channel->node))
        if (channel->providerChannel)
            gwCallClientChanged(channel->provider, channel->providerChannel, &c->identity);
    free(old);
    return 0;
}

/* Search over TCP (clients with EPICS_CA_NAME_SERVERS). */
static int onSearch(gwCircuit *c, const gwCaMessage *m)
{
    gwCaSearch search;
    unsigned char buf[GW_CA_HEADER_SIZE + 8];
    struct sockaddr_in where;
    size_t n = 0;

    if (gwCodecDecodeSearch(m, &search) != GW_CODEC_OK)
        return 0;  /* RSRV ignores an empty name */
    switch (gwServerResolveOne(c->server, search.name.text, &c->identity, NULL, &where)) {
    case GW_EXISTS_YES:
        n = gwCodecBuildSearchReply(buf, sizeof buf, gwServerTcpPort(c->server),
                                    GW_CA_ADDRESS_OF_SENDER, search.searchId,
                                    GW_CA_MINOR_VERSION);
        break;
    case GW_EXISTS_ELSEWHERE:
        n = gwCodecBuildSearchReply(buf, sizeof buf, ntohs(where.sin_port),
                                    ntohl(where.sin_addr.s_addr), search.searchId,
                                    GW_CA_MINOR_VERSION);
        break;
    case GW_EXISTS_NO:
        if (search.replyWanted)
            n = gwCodecBuildNotFound(buf, sizeof buf, search.replyFlag,
                                     (epicsUInt16)search.clientMinor, search.searchId);
        break;
    case GW_EXISTS_PENDING:
        break;
    }
    gwServerSearchesDone(c->server);
    gwCircuitQueueBytes(c, buf, n);
    return 0;
}

/* ---------------------------------------------------------------- channels */

static void rightsChanged(void *serverChannel, unsigned rights);
static void sourceGone(void *serverChannel);
static void writeFailed(void *serverChannel, short dbrType, unsigned long count, int status);
static void attachFinished(void *serverChannel, int ok);

static const gwChannelEvents channelEvents = {
    .rightsChanged = rightsChanged,
    .disconnected = sourceGone,
    .writeFailed = writeFailed,
    .connected = attachFinished,
};

static void queueAccessRights(gwCircuit *c, gwServerChannel *channel, unsigned rights)
{
    unsigned char buf[GW_CA_HEADER_SIZE];

    gwCircuitQueueBytes(c, buf, gwCodecBuildAccessRights(buf, sizeof buf, channel->cid, rights));
}

/* ACCESS_RIGHTS, then the CREATE_CHAN reply, queued together (one send). */
static void queueCreateReply(gwCircuit *c, gwServerChannel *channel, unsigned rights)
{
    unsigned char buf[GW_CA_HEADER_SIZE + GW_CA_EXTENDED_HEADER_SIZE];
    const gwProvider *provider = channel->provider;
    unsigned long count = gwCallNativeCount(provider, channel->providerChannel);
    size_t n = gwCodecBuildAccessRights(buf, sizeof buf, channel->cid, rights);

    if (gwCircuitMinor(c) < GW_CA_MINOR_EXTENDED && count >= 0xffff)
        count = 0xfffe; /* as RSRV: old clients cannot take more */
    n += gwCodecBuildCreateChannelReply(
        buf + n, sizeof buf - n, (epicsUInt16)gwCallNativeType(provider, channel->providerChannel),
        (epicsUInt32)count, channel->cid, channel->sid, gwCircuitMinor(c));
    gwCircuitQueueBytes(c, buf, n);
}

static void queueCreateFail(gwCircuit *c, epicsUInt32 cid)
{
    unsigned char buf[GW_CA_HEADER_SIZE];

    gwCircuitQueueBytes(c, buf, gwCodecBuildCreateChannelFail(buf, sizeof buf, cid));
}

static gwServerChannel *newChannel(gwCircuit *c, const gwCaCreateChannel *create,
                                   gwProvider *provider)
{
    gwServerChannel *channel = calloc(1, sizeof *channel + create->name.length);

    if (!channel)
        return NULL;
    channel->circuit = c;
    channel->cid = create->clientChannelId;
    channel->provider = provider;
    memcpy(channel->name, create->name.text, create->name.length + 1);
    ellInit(&channel->subscriptions);
    epicsMutexMustLock(c->lock);
    if (gwChannelIdsAdd(&c->ids, channel, &channel->sid) != 0) {
        epicsMutexUnlock(c->lock);
        free(channel);
        return NULL;
    }
    ellAdd(&c->channelList, &channel->node);
    epicsAtomicIncrIntT(&c->channelCount);
    epicsMutexUnlock(c->lock);
    return channel;
}

/* The channel is attached and ready: ACCESS_RIGHTS, then the reply. */
static void answerCreate(gwCircuit *c, gwServerChannel *channel)
{
    unsigned rights = gwCallRights(channel->provider, channel->providerChannel);

    epicsMutexMustLock(c->lock);
    channel->rights = rights;
    channel->pending = 0;
    epicsMutexUnlock(c->lock);
    epicsAtomicIncrSizeT(&gwServerGetCounters(c->server)->channelsCreated);
    queueCreateReply(c, channel, rights);
}

static int onCreateChannel(gwCircuit *c, const gwCaMessage *m)
{
    gwCaCreateChannel create;
    gwProvider *provider = NULL;
    gwServerChannel *channel;
    gwProviderChannel *pch;
    gwExistsAnswer found;

    if (gwCodecDecodeCreateChannel(m, &create) != GW_CODEC_OK) {
        if (m->header.payloadSize <= 1)
            return 0;  /* RSRV ignores an empty name */
        queueCreateFail(c, m->header.parameter1);
        return 0;
    }
    epicsAtomicSetIntT(&c->minor, (int)create.clientMinor);
    epicsMutexMustLock(c->lock);
    c->identity.minorVersion = create.clientMinor;
    epicsMutexUnlock(c->lock);
    found = gwServerResolveOne(c->server, create.name.text, &c->identity, &provider, NULL);
    if (found == GW_EXISTS_PENDING)
        gwServerSearchesDone(c->server);    /* a search began: it goes now */
    if (found != GW_EXISTS_YES || !(channel = newChannel(c, &create, provider))) {
        queueCreateFail(c, create.clientChannelId);
        return 0;
    }
    pch = gwCallAttach(provider, channel->name, &c->identity, &channelEvents, channel);
    if (!pch) {
        gwCircuitChannelDestroy(c, channel);
        queueCreateFail(c, create.clientChannelId);
        return 0;
    }
    channel->providerChannel = pch;
    if (gwCallDeferred(provider, pch)) {
        /* the reply waits for attachFinished (handled on this thread) */
        epicsMutexMustLock(c->lock);
        channel->pending = 1;
        epicsMutexUnlock(c->lock);
        return 0;
    }
    answerCreate(c, channel);
    return 0;
}

static void cancelSubscription(gwCircuit *c, gwSubscription *sub)
{
    if (sub->providerSubscription)
        gwCallCancel(sub->channel->provider, sub->providerSubscription);
    epicsMutexMustLock(c->lock);
    gwCircuitSlotDrop(c, sub);
    ellDelete(&sub->channel->subscriptions, &sub->node);
    c->subscriptionCount--;
    epicsMutexUnlock(c->lock);
    free(sub->slot);
    free(sub);
}

void gwCircuitChannelDestroy(gwCircuit *c, gwServerChannel *channel)
{
    gwSubscription *sub;

    while ((sub = (gwSubscription *)ellFirst(&channel->subscriptions)))
        cancelSubscription(c, sub);
    if (channel->providerChannel) {
        gwCallDetach(channel->provider, channel->providerChannel);
        channel->providerChannel = NULL;
    }
    epicsMutexMustLock(c->lock);
    if (channel->onWork)
        ellDelete(channel->onWork == 1 ? &c->rightsWork : &c->goneWork, &channel->workNode);
    if (channel->connectResult)
        ellDelete(&c->connectWork, &channel->connectNode);
    gwChannelIdsRemove(&c->ids, channel->sid);
    ellDelete(&c->channelList, &channel->node);
    epicsAtomicDecrIntT(&c->channelCount);
    epicsMutexUnlock(c->lock);
    free(channel);
}

static int onClearChannel(gwCircuit *c, const gwCaMessage *m)
{
    gwCaClearChannel clear;
    gwServerChannel *channel;
    unsigned char buf[GW_CA_HEADER_SIZE];

    if (gwCodecDecodeClearChannel(m, &clear) != GW_CODEC_OK)
        return -1;
    channel = findChannel(c, clear.serverChannelId);
    if (!channel)
        return badChannel(c, &m->header);
    gwCircuitChannelDestroy(c, channel);
    gwCircuitQueueBytes(c, buf, gwCodecBuildClearChannel(buf, sizeof buf, clear.serverChannelId,
                                                         clear.clientChannelId));
    return 0;
}

/* ---------------------------------------------------------------- provider callbacks */

/* Rights changed (any thread): hand the channel to the loop thread. */
static void rightsChanged(void *serverChannel, unsigned rights)
{
    gwServerChannel *channel = serverChannel;
    gwCircuit *c = channel->circuit;

    GW_CALLBACK_ENTER();
    (void)rights;
    epicsMutexMustLock(c->lock);
    if (!channel->onWork) {
        channel->onWork = 1;
        ellAdd(&c->rightsWork, &channel->workNode);
        gwIoLoopPost(c->loop, &c->channelTask);
    }
    epicsMutexUnlock(c->lock);
    GW_CALLBACK_LEAVE();
}

/* The source went away (any thread): the loop thread tells the client
 * and drops the channel. */
static void sourceGone(void *serverChannel)
{
    gwServerChannel *channel = serverChannel;
    gwCircuit *c = channel->circuit;

    GW_CALLBACK_ENTER();
    epicsMutexMustLock(c->lock);
    if (!channel->gone) {
        channel->gone = 1;
        if (channel->onWork == 1)
            ellDelete(&c->rightsWork, &channel->workNode);
        channel->onWork = 2;
        ellAdd(&c->goneWork, &channel->workNode);
        gwIoLoopPost(c->loop, &c->channelTask);
    }
    epicsMutexUnlock(c->lock);
    GW_CALLBACK_LEAVE();
}

/* A deferred attach finished (any thread, possibly before attach returned
 * on the loop thread): the loop thread answers the CREATE_CHAN. */
static void attachFinished(void *serverChannel, int ok)
{
    gwServerChannel *channel = serverChannel;
    gwCircuit *c = channel->circuit;

    GW_CALLBACK_ENTER();
    epicsMutexMustLock(c->lock);
    if (!channel->connectResult) {
        channel->connectResult = ok ? 1 : -1;
        ellAdd(&c->connectWork, &channel->connectNode);
        /* connections come one callback at a time, thousands in a storm:
         * their replies are gathered, the loop wakes once for many */
        gwIoLoopPostSoon(c->loop, &c->channelTask);
    }
    epicsMutexUnlock(c->lock);
    GW_CALLBACK_LEAVE();
}

/* A plain write failed at the source (any thread, channel attached): the
 * client gets the ERROR RSRV sends for a failed WRITE, quoting the request
 * as the client sent it (server id, client id), which is how libca finds
 * the channel for its exception. */
static void writeFailed(void *serverChannel, short dbrType, unsigned long count, int status)
{
    gwServerChannel *channel = serverChannel;
    gwCaHeader request;

    GW_CALLBACK_ENTER();
    memset(&request, 0, sizeof request);
    request.command = CA_PROTO_WRITE;
    request.dataType = (epicsUInt16)dbrType;
    request.count = (epicsUInt32)count;
    request.payloadSize = (epicsUInt32)gwCodecDbrSize(dbrType, count);
    request.parameter1 = channel->sid;
    request.parameter2 = channel->cid;
    gwCircuitQueueError(channel->circuit, &request, channel->cid, status, channel->name);
    GW_CALLBACK_LEAVE();
}

/* Apply new rights: tell the client; updates stop without read access
 * (the client gets one ECA_NORDACCESS update, as from RSRV). */
static void applyRights(gwCircuit *c, gwServerChannel *channel)
{
    const gwProvider *provider = channel->provider;
    unsigned rights = gwCallRights(provider, channel->providerChannel);
    unsigned before;
    gwSubscription *sub;

    epicsMutexMustLock(c->lock);
    before = channel->rights;
    channel->rights = rights;
    epicsMutexUnlock(c->lock);
    if (rights == before)
        return;
    queueAccessRights(c, channel, rights);
    if (!((rights ^ before) & GW_RIGHT_READ))
        return;
    for (sub = (gwSubscription *)ellFirst(&channel->subscriptions); sub;
         sub = (gwSubscription *)ellNext(&sub->node)) {
        if (!(rights & GW_RIGHT_READ)) {
            epicsMutexMustLock(c->lock);
            gwCircuitSlotStore(c, sub, ECA_NORDACCESS, (short)sub->request.dataType,
                               sub->request.count, NULL);
            epicsMutexUnlock(c->lock);
        }
        if (sub->providerSubscription)
            gwCallEnable(provider, sub->providerSubscription, (rights & GW_RIGHT_READ) != 0);
    }
}

/* The source went away: tell the client, forget the channel. */
static void dropGone(gwCircuit *c, gwServerChannel *channel)
{
    unsigned char buf[GW_CA_HEADER_SIZE];
    size_t n = gwCodecBuildServerDisconnect(buf, sizeof buf, channel->cid);

    gwCircuitChannelDestroy(c, channel);
    gwCircuitQueueBytes(c, buf, n);
}

/* Deferred attaches first: a channel is answered before it can be
 * reported gone or its rights changed. */
static void finishAttaches(gwCircuit *c)
{
    for (;;) {
        gwServerChannel *channel = NULL;
        ELLNODE *node;
        int ok = 0;

        epicsMutexMustLock(c->lock);
        node = ellGet(&c->connectWork);
        if (node) {
            channel = CONTAINER(node, gwServerChannel, connectNode);
            ok = channel->connectResult > 0;
            channel->connectResult = 0;     /* off the list */
            if (!channel->pending)
                channel = NULL;     /* a provider that broke its word: ignore */
        }
        epicsMutexUnlock(c->lock);
        if (!node)
            return;
        if (!channel)
            continue;
        if (ok) {
            answerCreate(c, channel);
        }
        else {
            epicsUInt32 cid = channel->cid;
            gwCircuitChannelDestroy(c, channel);
            queueCreateFail(c, cid);
        }
    }
}

void gwCircuitChannelWork(void *arg)
{
    gwCircuit *c = arg;

    finishAttaches(c);
    for (;;) {
        gwServerChannel *channel = NULL;
        ELLNODE *node;
        int kind = 2;
        epicsMutexMustLock(c->lock);
        node = ellFirst(&c->goneWork);
        if (!node) {
            node = ellFirst(&c->rightsWork);
            kind = 1;
        }
        if (node) {
            ellDelete(kind == 2 ? &c->goneWork : &c->rightsWork, node);
            channel = CONTAINER(node, gwServerChannel, workNode);
            channel->onWork = 0;
        }
        epicsMutexUnlock(c->lock);
        if (!channel)
            return;
        if (kind == 2)
            dropGone(c, channel);
        else if (channel->providerChannel) {
            applyRights(c, channel);
        }
    }
}

/* ---------------------------------------------------------------- gets */

static void getDone(void *user, int status, short type, unsigned long count, const void *value)
{
    gwPendingRequest *pending = user;

    GW_CALLBACK_ENTER();
    gwCircuitQueueRead(pending->circuit, &pending->request, status, type, count, value);
    gwCircuitRequestDone(pending->circuit);
    free(pending);
    GW_CALLBACK_LEAVE();
}

static int onRead(gwCircuit *c, const gwCaMessage *m)
{
    gwCaChannelRequest read;
    gwServerChannel *channel;
    gwPendingRequest *pending;
    int status;

    if (gwCodecDecodeRead(m, gwCircuitMinor(c), &read) != GW_CODEC_OK) {
        gwCircuitLogBad(c, &m->header, "bad read request");
        return -1;   /* RSRV: INVALID_DB_REQ drops the circuit */
    }
    channel = findChannel(c, read.serverChannelId);
    if (!channel)
        return badChannel(c, &m->header);
    if (!(channelRights(channel) & GW_RIGHT_READ)) {
        gwCircuitQueueRead(c, &m->header, ECA_NORDACCESS, (short)read.dataType, read.count, NULL);
        return 0;
    }
    pending = malloc(sizeof *pending);
    if (!pending) {
        gwCircuitQueueError(c, &m->header, channel->cid, ECA_ALLOCMEM, channel->name);
        return 0;
    }
    pending->circuit = c;
    pending->request = m->header;
    gwCircuitRequestStarted(c);
    status = gwCallGet(channel->provider, channel->providerChannel, (short)read.dataType,
                                         read.count, getDone, pending);
    if (status != ECA_NORMAL) {
        gwCircuitRequestDone(c);
        free(pending);
        gwCircuitQueueRead(c, &m->header, status, (short)read.dataType, read.count, NULL);
    }
    return 0;
}

/* ---------------------------------------------------------------- puts */

static void queueWriteNotifyReply(gwCircuit *c, const gwCaHeader *request, int status)
{
    unsigned char buf[GW_CA_EXTENDED_HEADER_SIZE];

    gwCircuitQueueBytes(c, buf, gwCodecBuildWriteNotifyReply(
        buf, sizeof buf, request->dataType, request->count, (epicsUInt32)status,
        request->parameter2, gwCircuitMinor(c)));
}

static void putDone(void *user, int status)
{
    gwPendingRequest *pending = user;

    GW_CALLBACK_ENTER();
    queueWriteNotifyReply(pending->circuit, &pending->request, status);
    gwCircuitRequestDone(pending->circuit);
    free(pending);
    GW_CALLBACK_LEAVE();
}

/* Room for the value of a small put on the stack. */
typedef union gwPutBuffer {
    double align;
    unsigned char bytes[GW_PUT_STACK_BYTES];
} gwPutBuffer;

/* Convert a put's value to host order: into local when it fits, else into
 * a buffer that freeValue() releases. NULL and *status set on failure. */
static void *hostValue(const gwCaChannelRequest *put, gwPutBuffer *local, int *status)
{
    size_t size = gwCodecDbrSize(put->dataType, put->count);
    void *value = !size ? NULL : size <= sizeof local->bytes ? local->bytes : malloc(size);

    *status = ECA_NORMAL;
    if (!value) {
        *status = size ? ECA_ALLOCMEM : ECA_BADTYPE;
        return NULL;
    }
    if (gwCodecDecodeValue(put, value, size) != GW_CODEC_OK) {
        if (value != local->bytes)
            free(value);
        *status = ECA_BADTYPE;
        return NULL;
    }
    return value;
}

static void freeValue(void *value, gwPutBuffer *local)
{
    if (value != local->bytes)
        free(value);
}

static int onWrite(gwCircuit *c, const gwCaMessage *m)
{
    gwCaChannelRequest put;
    gwServerChannel *channel;
    gwPutBuffer local;
    unsigned rights = 0;
    void *value;
    int status;

    channel = findChannelRights(c, m->header.parameter1, &rights);
    if (!channel)
        return badChannel(c, &m->header);
    if (gwCodecDecodeWrite(m, &put) != GW_CODEC_OK) {
        gwCircuitQueueError(c, &m->header, channel->cid, ECA_BADTYPE, channel->name);
        return -1;
    }
    if (!(rights & GW_RIGHT_WRITE)) {
        gwCircuitQueueError(c, &m->header, channel->cid, ECA_NOWTACCESS, channel->name);
        return 0;
    }
    value = hostValue(&put, &local, &status);
    if (value) {
        status = gwCallPut(channel->provider, channel->providerChannel, (short)put.dataType,
                                             put.count, value, NULL, NULL);
        freeValue(value, &local);
    }
    if (status != ECA_NORMAL)
        gwCircuitQueueError(c, &m->header, channel->cid, status, channel->name);
    return 0;
}

static int onWriteNotify(gwCircuit *c, const gwCaMessage *m)
{
    gwCaChannelRequest put;
    gwServerChannel *channel;
    gwPendingRequest *pending;
    gwPutBuffer local;
    unsigned rights = 0;
    void *value;
    int status;

    channel = findChannelRights(c, m->header.parameter1, &rights);
    if (!channel)
        return badChannel(c, &m->header);
    if (gwCodecDecodeWrite(m, &put) != GW_CODEC_OK) {
        queueWriteNotifyReply(c, &m->header, ECA_BADTYPE);
        return m->header.dataType > LAST_BUFFER_TYPE ? -1 : 0;
    }
    if (!(rights & GW_RIGHT_WRITE)) {
        queueWriteNotifyReply(c, &m->header, ECA_NOWTACCESS);
        return 0;
    }
    value = hostValue(&put, &local, &status);
    pending = value ? malloc(sizeof *pending) : NULL;
    if (pending) {
        pending->circuit = c;
        pending->request = m->header;
        gwCircuitRequestStarted(c);
        status = gwCallPut(channel->provider, channel->providerChannel, (short)put.dataType,
                                             put.count, value, putDone, pending);
        if (status != ECA_NORMAL) {
            gwCircuitRequestDone(c);
            free(pending);
        }
    }
    else if (value) {
        status = ECA_ALLOCMEM;
    }
    if (value)
        freeValue(value, &local);
    if (status != ECA_NORMAL)
        queueWriteNotifyReply(c, &m->header, status);
    return 0;
}

/* ---------------------------------------------------------------- subscriptions */

/* An update (any thread). Without read access the client gets zeros and
 * ECA_NORDACCESS instead, as RSRV's read_reply does. */
static void subscriptionUpdate(void *user, int status, short type, unsigned long count,
                               const void *value)
{
    gwSubscription *sub = user;
    gwCircuit *c = sub->channel->circuit;

    GW_CALLBACK_ENTER();
    epicsMutexMustLock(c->lock);
    c->counts.updatesReceived++;
    if (!(sub->channel->rights & GW_RIGHT_READ)) {
        status = ECA_NORDACCESS;
        type = (short)sub->request.dataType;
        count = sub->request.count;
    }
    gwCircuitSlotStore(c, sub, status, type, count, value);
    epicsMutexUnlock(c->lock);
    GW_CALLBACK_LEAVE();
}

static int onEventAdd(gwCircuit *c, const gwCaMessage *m)
{
    gwCaChannelRequest add;
    gwServerChannel *channel;
    gwSubscription *sub;
    int status = ECA_NORMAL;

    if (gwCodecDecodeEventAdd(m, gwCircuitMinor(c), &add) != GW_CODEC_OK) {
        gwCircuitLogBad(c, &m->header, "bad subscription request");
        return -1;   /* RSRV: INVALID_DB_REQ drops the circuit */
    }
    channel = findChannel(c, add.serverChannelId);
    if (!channel)
        return badChannel(c, &m->header);
    sub = calloc(1, sizeof *sub);
    if (!sub) {
        gwCircuitQueueError(c, &m->header, channel->cid, ECA_ALLOCMEM, channel->name);
        return 0;
    }
    sub->channel = channel;
    sub->request = m->header;
    sub->id = add.requestId;
    epicsMutexMustLock(c->lock);
    ellAdd(&channel->subscriptions, &sub->node);
    c->subscriptionCount++;
    epicsMutexUnlock(c->lock);
    sub->providerSubscription = gwCallSubscribe(channel->provider, 
        channel->providerChannel, (short)add.dataType, add.count, add.eventMask,
        subscriptionUpdate, sub, &status);
    if (!sub->providerSubscription) {
        gwCircuitQueueError(c, &m->header, channel->cid, status, channel->name);
        return 0;
    }
    if (!(channelRights(channel) & GW_RIGHT_READ))
        gwCallEnable(channel->provider, sub->providerSubscription, 0);
    return 0;
}

static int onEventCancel(gwCircuit *c, const gwCaMessage *m)
{
    gwCaChannelRequest cancel;
    gwServerChannel *channel;
    gwSubscription *sub;
    unsigned char buf[GW_CA_EXTENDED_HEADER_SIZE];

    if (gwCodecDecodeEventCancel(m, &cancel) != GW_CODEC_OK)
        return -1;
    channel = findChannel(c, cancel.serverChannelId);
    if (!channel)
        return badChannel(c, &m->header);
    for (sub = (gwSubscription *)ellFirst(&channel->subscriptions); sub;
         sub = (gwSubscription *)ellNext(&sub->node))
        if (sub->id == cancel.requestId)
            break;
    if (!sub) {
        gwCircuitQueueError(c, &m->header, channel->cid, ECA_BADMONID, channel->name);
        return -1;   /* as RSRV */
    }
    /* the reply repeats the EVENT_ADD's type and count, as RSRV's does */
    cancel.dataType = sub->request.dataType;
    cancel.count = sub->request.count;
    cancelSubscription(c, sub);
    gwCircuitQueueBytes(c, buf, gwCodecBuildEventCancelReply(buf, sizeof buf, &cancel,
                                                             gwCircuitMinor(c)));
    return 0;
}

/* ---------------------------------------------------------------- dispatch */

typedef int gwRequestHandler(gwCircuit *c, const gwCaMessage *m);

/* Indexed by command number; NULL for the commands a client does not send
 * (replies, obsolete requests). */
static gwRequestHandler *const handlers[CA_PROTO_LAST_CMMD + 1] = {
    [CA_PROTO_VERSION] = onVersion,
    [CA_PROTO_EVENT_ADD] = onEventAdd,
    [CA_PROTO_EVENT_CANCEL] = onEventCancel,
    [CA_PROTO_WRITE] = onWrite,
    [CA_PROTO_SEARCH] = onSearch,
    [CA_PROTO_EVENTS_OFF] = onEventsOff,
    [CA_PROTO_EVENTS_ON] = onEventsOn,
    [CA_PROTO_READ_SYNC] = onReadSync,
    [CA_PROTO_CLEAR_CHANNEL] = onClearChannel,
    [CA_PROTO_READ_NOTIFY] = onRead,
    [CA_PROTO_CREATE_CHAN] = onCreateChannel,
    [CA_PROTO_WRITE_NOTIFY] = onWriteNotify,
    [CA_PROTO_CLIENT_NAME] = onName,
    [CA_PROTO_HOST_NAME] = onName,
    [CA_PROTO_ECHO] = onEcho,
};

int gwCircuitDispatch(gwCircuit *c, const gwCaMessage *m)
{
    epicsUInt16 command = m->header.command;

    if (command <= CA_PROTO_LAST_CMMD && handlers[command])
        return handlers[command](c, m);
    /* obsolete or unknown: RSRV answers ECA_INTERNAL and drops the circuit */
    gwCircuitQueueError(c, &m->header, 0xffffffffu, ECA_INTERNAL,
                        "invalid (damaged?) request code from TCP");
    gwCircuitLogBad(c, &m->header, "invalid request code");
    return -1;
}
