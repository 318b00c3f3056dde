/* gwLocalPut.c - the local provider's writes: plain WRITE and put with
 * completion (WRITE_NOTIFY), as RSRV's write_action / write_notify_action.
 *
 * Owns: outstanding puts with completion (gwLocalPutRequest): a copy of the value
 * and of the client's user and host names, the processNotify, and the
 * asTrapWrite handle that caPutLog-like listeners get back after the write.
 *
 * Threads entering this file:
 * - the server's threads: gwLocalPutRequest; detach (gwLocalCompletePuts);
 * - Base's callback threads (or the putting thread, when the record
 *   completes at once): gwLocalPutCallback, gwLocalPutDone, which only
 *   queue the finished put for the event task of the channel's context;
 * - "gwLocalEvent<i>": gwLocalDeliverPuts, which calls the server's done
 *   for the puts of that context's channels.
 *
 * Locks: channel->identityLock while a plain write runs (asTrapWrite keeps
 * the user/host pointers until asTrapWriteAfter); provider->lock around the
 * put lists and states, never across a call out.
 *
 * A put's life: RUNNING (in dbNotify, on channel->puts) -> QUEUED (also on
 * the channel's context->putQueue) -> delivered by that context's event
 * task and freed. When the
 * channel is detached: running puts are cancelled (dbNotifyCancel waits for
 * a callback in progress) and get ECA_PUTFAIL; all the channel's puts are
 * completed by detach itself (FINISHED), before it returns.
 */
#include <stdlib.h>
#include <string.h>

#include <caerr.h>
#include <db_access.h>
#include <db_access_routines.h>
#include <epicsAtomic.h>
#include <errlog.h>

#include "gwLocalPriv.h"

typedef enum gwLocalPutState {
    GW_LOCAL_PUT_RUNNING,
    GW_LOCAL_PUT_QUEUED,
    GW_LOCAL_PUT_FINISHED
} gwLocalPutState;

typedef struct gwLocalPutRequest {
    ELLNODE channelNode;          /* in channel->puts until delivered */
    ELLNODE queueNode;            /* in context->putQueue when QUEUED */
    processNotify notify;
    gwProviderChannel *channel;
    gwPutCallback *done;
    void *user;
    void *asWritePvt;             /* from asTrapWriteWithData */
    const char *userName;         /* in this block, after the value */
    const char *hostName;
    short dbrType;                /* a plain or DBR_PUT_ACK* type */
    long count;
    gwLocalPutState state;
    int ecaStatus;
    double value[];               /* dbr_size_n(dbrType, count) bytes, then the names */
} gwLocalPutRequest;

static int gwLocalWritableType(short dbrType)
{
    return (dbrType >= 0 && dbrType <= DBR_CTRL_DOUBLE) || dbrType == DBR_PUT_ACKT ||
           dbrType == DBR_PUT_ACKS;
}

/* The plain type whose values a writable dbrType carries (a DBR_TIME_DOUBLE
 * put writes its value as a DBR_DOUBLE one), and where they start. */
static short gwLocalPlainType(short dbrType, const void *value, const void **start)
{
    if (dbrType > DBR_CTRL_DOUBLE) {
        *start = value;
        return dbrType;
    }
    *start = (const char *)value + dbr_value_offset[dbrType];
    return (short)(dbrType % (LAST_TYPE + 1));
}

static int gwLocalCheckPut(gwProviderChannel *channel, short dbrType, unsigned long count)
{
    long elements = dbChannelElements(channel->chan);

    if (!gwLocalWritableType(dbrType))
        return ECA_BADTYPE;
    if (count == 0 || count > (unsigned long)(elements > 0 ? elements : 1))
        return ECA_BADCOUNT;
    if (!(gwLocalRightsOf(channel) & GW_RIGHT_WRITE))
        return ECA_NOWTACCESS;
    return ECA_NORMAL;
}

static int gwLocalPutPlain(gwProviderChannel *channel, short dbrType, long count,
                           const void *value)
{
    const void *start;
    short plainType = gwLocalPlainType(dbrType, value, &start);
    void *asWritePvt;
    int status;

    epicsMutexMustLock(channel->identityLock);
    asWritePvt = asTrapWriteWithData(channel->asClient, channel->user, channel->host,
                                     channel->chan, plainType, count, (void *)start);
    status = dbChannel_put(channel->chan, dbrType, value, count);
    if (asWritePvt)
        asTrapWriteAfterWrite(asWritePvt);
    epicsMutexUnlock(channel->identityLock);
    return status < 0 ? ECA_PUTFAIL : ECA_NORMAL;
}

/* dbNotify's put callback (record locked). */
static int gwLocalPutCallback(processNotify *notify, notifyPutType type)
{
    gwLocalPutRequest *put = notify->usrPvt;

    if (notify->status == notifyCanceled)
        return 0;
    return db_put_process(notify, type, put->dbrType, put->value, (int)put->count);
}

/* dbNotify's done callback: queue the put for the channel's event task,
 * unless the channel is being detached (detach completes it). */
static void gwLocalPutDone(processNotify *notify)
{
    gwLocalPutRequest *put = notify->usrPvt;
    gwLocalProvider *provider = put->channel->provider;
    gwLocalContext *context = put->channel->context;
    int queued = 0;

    epicsMutexMustLock(provider->lock);
    put->ecaStatus = notify->status == notifyOK ? ECA_NORMAL : ECA_PUTFAIL;
    if (put->channel->closing) {
        put->state = GW_LOCAL_PUT_FINISHED;
    } else {
        put->state = GW_LOCAL_PUT_QUEUED;
        ellAdd(&context->putQueue, &put->queueNode);
        queued = 1;
    }
    epicsMutexUnlock(provider->lock);
    if (queued)
        db_post_extra_labor(context->events);
}

static gwLocalPutRequest *gwLocalPutCreate(gwProviderChannel *channel, short dbrType, long count,
                                    const void *value, gwPutCallback *done, void *user)
{
    const void *start;
    short plainType = gwLocalPlainType(dbrType, value, &start);
    size_t size = dbr_size_n(plainType, count);
    size_t userSize, hostSize;
    gwLocalPutRequest *put;
    char *names;

    epicsMutexMustLock(channel->identityLock);
    userSize = strlen(channel->user) + 1;
    hostSize = strlen(channel->host) + 1;
    put = calloc(1, sizeof *put + size + userSize + hostSize);
    if (put) {
        names = (char *)put->value + size;
        memcpy(names, channel->user, userSize);
        memcpy(names + userSize, channel->host, hostSize);
        put->userName = names;
        put->hostName = names + userSize;
    }
    epicsMutexUnlock(channel->identityLock);
    if (!put)
        return NULL;
    memcpy(put->value, start, size);
    put->channel = channel;
    put->done = done;
    put->user = user;
    put->dbrType = plainType;
    put->count = count;
    put->state = GW_LOCAL_PUT_RUNNING;
    put->notify.requestType = putProcessRequest;
    put->notify.chan = channel->chan;
    put->notify.putCallback = gwLocalPutCallback;
    put->notify.doneCallback = gwLocalPutDone;
    put->notify.usrPvt = put;
    return put;
}

static int gwLocalPutNotify(gwProviderChannel *channel, short dbrType, long count,
                            const void *value, gwPutCallback *done, void *user)
{
    gwLocalProvider *provider = channel->provider;
    gwLocalPutRequest *put = gwLocalPutCreate(channel, dbrType, count, value, done, user);

    if (!put)
        return ECA_ALLOCMEM;
    put->asWritePvt = asTrapWriteWithData(channel->asClient, put->userName, put->hostName,
                                          channel->chan, put->dbrType, count, put->value);
    epicsMutexMustLock(provider->lock);
    ellAdd(&channel->puts, &put->channelNode);
    epicsMutexUnlock(provider->lock);
    dbProcessNotify(&put->notify);
    return ECA_NORMAL;
}

int gwLocalPut(gwProviderChannel *channel, short dbrType, unsigned long count,
               const void *value, gwPutCallback *done, void *user)
{
    int status = gwLocalCheckPut(channel, dbrType, count);

    if (status != ECA_NORMAL) {
        if (status == ECA_NOWTACCESS)
            epicsAtomicIncrSizeT(&channel->provider->putsRefused);
        return status;
    }
    epicsAtomicIncrSizeT(&channel->provider->puts);
    if (!done)
        return gwLocalPutPlain(channel, dbrType, (long)count, value);
    return gwLocalPutNotify(channel, dbrType, (long)count, value, done, user);
}

/* Tell the server and free: dbNotifyCancel first, because dbNotify still
 * touches the processNotify after the done callback returned (it returns at
 * once when dbNotify is through with it). */
static void gwLocalPutFinish(gwLocalPutRequest *put)
{
    dbNotifyCancel(&put->notify);
    if (put->asWritePvt)
        asTrapWriteAfterWrite(put->asWritePvt);
    put->done(put->user, put->ecaStatus);
    free(put);
}

/* context's event task: deliver every put queued on it. */
void gwLocalDeliverPuts(gwLocalContext *context)
{
    gwLocalProvider *provider = context->provider;

    for (;;) {
        ELLNODE *node;
        gwLocalPutRequest *put;

        epicsMutexMustLock(provider->lock);
        node = ellGet(&context->putQueue);
        if (!node) {
            epicsMutexUnlock(provider->lock);
            return;
        }
        put = CONTAINER(node, gwLocalPutRequest, queueNode);
        ellDelete(&put->channel->puts, &put->channelNode);
        gwLocalBeginDelivery(context, put->channel);
        epicsMutexUnlock(provider->lock);

        gwLocalPutFinish(put);
        gwLocalEndDelivery(context);
    }
}

/* Detach: complete every put of the channel before it goes. The list is
 * stable meanwhile: the server puts nothing during detach, and with
 * `closing` set no put is queued, so its event task takes none away. */
void gwLocalCompletePuts(gwProviderChannel *channel)
{
    gwLocalProvider *provider = channel->provider;
    ELLLIST finished = ELLLIST_INIT;
    ELLNODE *node;

    epicsMutexMustLock(provider->lock);
    channel->closing = 1;
    for (node = ellFirst(&channel->puts); node; node = ellNext(node)) {
        gwLocalPutRequest *put = CONTAINER(node, gwLocalPutRequest, channelNode);
        if (put->state == GW_LOCAL_PUT_QUEUED) {
            ellDelete(&channel->context->putQueue, &put->queueNode);
            put->state = GW_LOCAL_PUT_FINISHED;
        }
    }
    epicsMutexUnlock(provider->lock);

    for (node = ellFirst(&channel->puts); node; node = ellNext(node)) {
        gwLocalPutRequest *put = CONTAINER(node, gwLocalPutRequest, channelNode);
        dbNotifyCancel(&put->notify); /* returns at once when finished */
        epicsMutexMustLock(provider->lock);
        if (put->state == GW_LOCAL_PUT_RUNNING) {
            put->state = GW_LOCAL_PUT_FINISHED;
            put->ecaStatus = ECA_PUTFAIL;
        }
        epicsMutexUnlock(provider->lock);
    }

    epicsMutexMustLock(provider->lock);
    ellConcat(&finished, &channel->puts);
    epicsMutexUnlock(provider->lock);
    while ((node = ellGet(&finished)) != NULL)
        gwLocalPutFinish(CONTAINER(node, gwLocalPutRequest, channelNode));
}
