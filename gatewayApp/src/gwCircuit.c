/* gwCircuit.c - one TCP circuit of the CA server: its requests, channels,
 * subscriptions and output.
 *
 * Threads: the circuit's I/O loop thread reads and handles requests, and
 * closes the circuit. Provider callbacks (gets, puts, updates, rights
 * changes, disconnects) arrive on any thread and queue output; output is
 * sent by whichever thread takes the circuit's sender role (below).
 *
 * Locks: circuit->lock guards the output buffer, the sender role, the
 * ready list of subscriptions with an unsent update, the channel table and
 * lists, and the rights/disconnect work lists. It is taken after gwServer's
 * lock and before an I/O loop's lock, and it is never held while calling a
 * provider (providers call back into this file) nor during send(). No
 * other lock of this file exists; a thread never holds two circuits'
 * locks.
 *
 * Output: replies go into one byte buffer in order. A monitor update goes
 * there too while the circuit keeps up; once output backs up it goes into
 * its subscription's slot instead, where a newer update replaces an unsent
 * one (counted), so a slow client costs one value per subscription, never
 * a queue that grows with the event rate. Slots are copied into the byte
 * buffer only when it has drained, and requests are not read while it
 * holds more than the high-water mark: memory per circuit stays bounded.
 * Nor are they read while GW_CIRCUIT_MAX_REQUESTS gets and puts with
 * completion wait at providers (`inputHeld`); resumeTask reads on when
 * half of them are done.
 *
 * Sending: one thread at a time holds the sender role (`sending`): it
 * swaps the queued bytes into the wire buffer and sends from there without
 * the lock, so queueing never waits for a send(). A thread that queues
 * output while the socket is not blocked and nobody sends takes the role
 * itself (RSRV's event task sends too) for at most GW_CIRCUIT_SEND_TURNS
 * non-blocking send() calls; what is left then, a blocked socket and a
 * failure go to the loop (flushTask), which alone watches the socket and
 * sends without a limit. The socket is non-blocking, so no thread ever
 * waits for a client. A provider thread may hold its sends back during a
 * burst of updates (gwProvider.h, batched delivery): the circuits it queued to are kept in
 * its batch, each with a reference, and sent at the release.
 *
 * Life: the circuit is referenced by its loop (until gwCircuitClose) and
 * by each delivery batch that holds output of it back; the last reference
 * frees the memory. Close waits for a sender of another thread to finish
 * its send() before the socket is closed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <caerr.h>
#include <db_access.h>
#include <epicsAtomic.h>
#include <epicsMutex.h>
#include <epicsThread.h>

#include "gwCircuit.h"
#include "gwCodec.h"
#include "gwOsd.h"
#include "gwCircuitPriv.h"
#include "gwLog.h"
#include "gwText.h"

static epicsThreadPrivateId currentCircuit;
static epicsThreadPrivateId heldBatch;  /* the gwDeliveryBatch a thread holds */
static epicsThreadOnceId currentOnce = EPICS_THREAD_ONCE_INIT;

static void currentInit(void *unused)
{
    (void)unused;
    currentCircuit = epicsThreadPrivateCreate();
    heldBatch = epicsThreadPrivateCreate();
}

gwCircuit *gwCircuitCurrent(void)
{
    epicsThreadOnce(&currentOnce, currentInit, NULL);
    return epicsThreadPrivateGet(currentCircuit);
}

/* ---------------------------------------------------------------- output */

/* Room for n more bytes at the end of the output buffer (lock held). */
static unsigned char *outReserve(gwCircuit *c, size_t n)
{
    if (c->outHead > 0 && c->outHead == c->outLen)
        c->outHead = c->outLen = 0;
    if (c->outCap - c->outLen < n) {
        size_t used = c->outLen - c->outHead;
        size_t cap = c->outCap ? c->outCap : GW_CIRCUIT_OUT_CHUNK;
        unsigned char *more;
        if (c->outHead > 0) {
            memmove(c->out, c->out + c->outHead, used);
            c->outHead = 0;
            c->outLen = used;
        }
        while (cap - used < n)
            cap *= 2;
        if (cap != c->outCap) {
            more = realloc(c->out, cap);
            if (!more)
                return NULL;
            c->out = more;
            c->outCap = cap;
        }
    }
    return c->out + c->outLen;
}

static void outputQueued(gwCircuit *c);

void gwCircuitQueueBytes(gwCircuit *c, const void *bytes, size_t n)
{
    unsigned char *at;

    if (!n)
        return;
    epicsMutexMustLock(c->lock);
    at = outReserve(c, n);
    if (at) {
        memcpy(at, bytes, n);
        c->outLen += n;
        outputQueued(c);
    }
    epicsMutexUnlock(c->lock);
}

void gwCircuitQueueError(gwCircuit *c, const gwCaHeader *request, epicsUInt32 cid,
                         int status, const char *text)
{
    unsigned char buf[GW_CIRCUIT_CONTROL_MAX];

    gwCircuitQueueBytes(c, buf, gwCodecBuildError(buf, sizeof buf, request, cid,
                                                  (epicsUInt32)status, text));
}

/* Build a data reply (READ_NOTIFY, or EVENT_ADD for a slot); value NULL:
 * zeros. Returns the size, or 0 when it cannot be built. */
static size_t buildData(unsigned char *buf, size_t cap, epicsUInt16 command,
                        const gwCaDataReply *reply, unsigned minor)
{
    if (command == CA_PROTO_READ_NOTIFY)
        return gwCodecBuildReadNotifyReply(buf, cap, reply, minor);
    return gwCodecBuildEventAddReply(buf, cap, reply, minor);
}

/* Size of a data reply, or 0 when it is over the circuit's limit. */
static size_t dataReplySize(gwCircuit *c, epicsUInt16 type, epicsUInt32 count)
{
    size_t size = gwCodecDataReplySize(type, count, gwCircuitMinor(c));

    if (size > c->maxMessage)
        return 0;
    return size;
}

/* Fill a data reply; its wire size, or 0 when over the circuit's limit. */
static size_t describeReply(gwCircuit *c, gwCaDataReply *reply, int status, short type,
                            unsigned long count, epicsUInt32 requestId, const void *value)
{
    reply->dataType = (epicsUInt16)type;
    reply->count = (epicsUInt32)count;
    reply->status = (epicsUInt32)status;
    reply->requestId = requestId;
    reply->value = status == ECA_NORMAL ? value : NULL;
    return dataReplySize(c, reply->dataType, reply->count);
}

void gwCircuitQueueRead(gwCircuit *c, const gwCaHeader *request, int status,
                        short type, unsigned long count, const void *value)
{
    gwCaDataReply reply;
    unsigned char *at;
    size_t size = describeReply(c, &reply, status, type, count, request->parameter2, value);

    if (!size) {
        gwCircuitQueueError(c, request, 0xffffffffu, ECA_TOLARGE,
                            "reply over EPICS_CA_MAX_ARRAY_BYTES");
        return;
    }
    epicsMutexMustLock(c->lock);
    at = outReserve(c, size);
    if (at && (size = buildData(at, size, CA_PROTO_READ_NOTIFY, &reply, gwCircuitMinor(c))) != 0) {
        c->outLen += size;
        outputQueued(c);
    }
    epicsMutexUnlock(c->lock);
}

/* Queue an update (lock held). While the circuit keeps up, the update goes
 * straight into the byte buffer, so a client that reads sees every one, as
 * from RSRV. Once output backs up (socket blocked, buffer over a chunk,
 * events off) or this subscription already waits in its slot, it goes into
 * the slot, replacing an unsent one: memory stays bounded. */
static void slotStore(gwCircuit *c, gwSubscription *sub, int status, short type,
                      unsigned long count, const void *value)
{
    gwServerCounters *counters = &c->counts;
    gwCaDataReply reply;
    unsigned char *at;
    size_t size = describeReply(c, &reply, status, type, count, sub->id, value);

    if (size && !sub->ready && !c->eventsOff && !c->blocked
        && c->outLen - c->outHead < GW_CIRCUIT_OUT_CHUNK && (at = outReserve(c, size))
        && (size = buildData(at, size, CA_PROTO_EVENT_ADD, &reply, gwCircuitMinor(c))) != 0) {
        c->outLen += size;
        counters->updatesSent++;
        outputQueued(c);
        return;
    }
    if (size > sub->slotCap) {
        unsigned char *more = realloc(sub->slot, size);
        if (!more)
            size = 0;
        else {
            sub->slot = more;
            sub->slotCap = size;
        }
    }
    if (size)
        size = buildData(sub->slot, sub->slotCap, CA_PROTO_EVENT_ADD, &reply, gwCircuitMinor(c));
    if (!size) {
        counters->updatesDropped++;
        return;
    }
    if (sub->slotLen)
        counters->updatesReplaced++;
    sub->slotLen = size;
    if (!sub->ready) {
        sub->ready = 1;
        ellAdd(&c->ready, &sub->readyNode);
    }
    if (!c->eventsOff)
        outputQueued(c);
}

static void slotDrop(gwCircuit *c, gwSubscription *sub)
{
    if (sub->ready) {
        ellDelete(&c->ready, &sub->readyNode);
        sub->ready = 0;
    }
    sub->slotLen = 0;
}

/* Move queued updates into the byte buffer while it is small (lock held). */
static void drainSlots(gwCircuit *c)
{
    ELLNODE *node;

    if (c->eventsOff)
        return;
    while ((c->outLen - c->outHead) < GW_CIRCUIT_OUT_CHUNK && (node = ellGet(&c->ready))) {
        gwSubscription *sub = CONTAINER(node, gwSubscription, readyNode);
        unsigned char *at = outReserve(c, sub->slotLen);
        sub->ready = 0;
        if (!at) {
            ellInsert(&c->ready, NULL, node);
            sub->ready = 1;
            break;
        }
        memcpy(at, sub->slot, sub->slotLen);
        c->outLen += sub->slotLen;
        sub->slotLen = 0;
        c->counts.updatesSent++;
    }
}

/* Bytes queued and not yet sent (lock held). */
static size_t pendingBytes(const gwCircuit *c)
{
    return (c->outLen - c->outHead) + (c->wireLen - c->wireHead);
}

/* Make the queued bytes the wire buffer's by swapping the two buffers; the
 * wire buffer was empty and becomes the (empty) output buffer. Lock held. */
static void swapToWire(gwCircuit *c)
{
    unsigned char *buffer = c->wire;
    size_t cap = c->wireCap;

    c->wire = c->out;
    c->wireCap = c->outCap;
    c->wireHead = c->outHead;
    c->wireLen = c->outLen;
    c->out = buffer;
    c->outCap = cap;
    c->outHead = c->outLen = 0;
}

/* How full the client's queue is, in %, for statistics (lock held): the
 * share of its subscriptions with an update waiting to be sent, or the
 * bytes queued against the high-water mark, the larger. */
static void publishFill(gwCircuit *c)
{
    size_t bytes = pendingBytes(c);
    unsigned fill = bytes >= GW_CIRCUIT_HIGH_WATER ? 100u
                  : (unsigned)(bytes * 100u / GW_CIRCUIT_HIGH_WATER);
    unsigned waiting = (unsigned)ellCount(&c->ready);

    if (c->subscriptionCount && waiting) {
        unsigned share = waiting >= c->subscriptionCount ? 100u
                       : waiting * 100u / c->subscriptionCount;
        if (share > fill)
            fill = share;
    }
    epicsAtomicSetIntT(&c->fill, (int)fill);
}

/* Add the circuit's counts to the server's and clear them (lock held).
 * Done once per send, not per update: the threads that queue, send and
 * read would otherwise pass the cache line of the server's atomic
 * counters between them on every update. */
static void publishCounts(gwCircuit *c)
{
    gwServerCounters *server = gwServerGetCounters(c->server);
    gwServerCounters *counts = &c->counts;

    publishFill(c);
    if (counts->updatesSent)
        epicsAtomicAddSizeT(&c->totalUpdatesSent, counts->updatesSent);
    if (counts->updatesReplaced)
        epicsAtomicAddSizeT(&c->totalUpdatesReplaced, counts->updatesReplaced);
    if (counts->bytesSent)
        epicsAtomicAddSizeT(&c->totalBytesSent, counts->bytesSent);

    if (counts->updatesReceived)
        epicsAtomicAddSizeT(&server->updatesReceived, counts->updatesReceived);
    if (counts->updatesSent)
        epicsAtomicAddSizeT(&server->updatesSent, counts->updatesSent);
    if (counts->updatesReplaced)
        epicsAtomicAddSizeT(&server->updatesReplaced, counts->updatesReplaced);
    if (counts->updatesDropped)
        epicsAtomicAddSizeT(&server->updatesDropped, counts->updatesDropped);
    if (counts->bytesSent)
        epicsAtomicAddSizeT(&server->bytesSent, counts->bytesSent);
    memset(counts, 0, sizeof *counts);
}

/* Take the sender role and send what can be sent without blocking, in at
 * most `turns` send() calls (lock held; released around each send()).
 * Returns at once when another thread holds the role: it sends what was
 * queued meanwhile, or leaves it to the loop. -1 when the connection
 * failed. */
static int sendSome(gwCircuit *c, unsigned turns)
{
    int result = 0;

    if (c->sending)
        return 0;
    c->sending = 1;
    while (turns > 0) {
        ssize_t n;
        int error;
        if (c->wireHead == c->wireLen) {
            c->wireHead = c->wireLen = 0;
            if (c->outHead == c->outLen)
                drainSlots(c);
            if (c->outHead == c->outLen) {
                c->outHead = c->outLen = 0;
                c->blocked = 0;
                break;
            }
            swapToWire(c);
        }
        turns--;
        epicsMutexUnlock(c->lock);
        n = send(c->sock, (const char *)c->wire + c->wireHead, c->wireLen - c->wireHead,
                 GW_OSD_SEND_FLAGS);
        error = SOCKERRNO;
        epicsMutexMustLock(c->lock);
        if (n > 0) {
            c->wireHead += (size_t)n;
            epicsTimeGetCurrent(&c->lastProgress);
            c->counts.bytesSent += (size_t)n;
            continue;
        }
        if (n < 0 && (error == SOCK_EWOULDBLOCK || error == SOCK_EINTR)) {
            if (!c->blocked) {
                c->blocked = 1;
                epicsTimeGetCurrent(&c->lastProgress);
            }
            break;
        }
        result = -1;
        break;
    }
    publishCounts(c);
    c->sending = 0;
    if (c->closing)
        epicsEventSignal(c->sendDone);
    return result;
}

/* Which poll events the circuit wants now (lock held). */
static short wantedEvents(gwCircuit *c)
{
    short events = 0;

    if (pendingBytes(c) < GW_CIRCUIT_HIGH_WATER && !c->inputHeld)
        events |= GW_IO_READ;
    if (c->blocked)
        events |= GW_IO_WRITE;
    return events;
}

/* Ask the loop to send and to watch the socket as needed (lock held). */
static void postFlush(gwCircuit *c)
{
    if (!c->closing)
        gwIoLoopPost(c->loop, &c->flushTask);
}

/* Send on the calling thread, which is not the circuit's loop, when
 * nothing stands in the way; hand the rest to the loop (lock held). */
static void sendHere(gwCircuit *c)
{
    if (c->closing || c->sending || c->blocked)
        return;  /* closed; the sender sends it; the loop waits for POLLOUT */
    if (sendSome(c, GW_CIRCUIT_SEND_TURNS) < 0)
        c->sendFailed = 1;
    if (c->sendFailed || (pendingBytes(c) && !c->blocked)
        || (!c->eventsOff && ellCount(&c->ready)) || wantedEvents(c) != c->watched)
        postFlush(c);
}

/* Keep c's output back in the thread's batch: 1, or 0 when the batch is
 * full (lock held). */
static int holdBack(gwCircuit *c, gwDeliveryBatch *batch)
{
    if (c->heldBy == batch)
        return 1;
    if (batch->count == GW_DELIVERY_BATCH_MAX)
        return 0;
    epicsAtomicIncrIntT(&c->references);
    batch->circuits[batch->count++] = c;
    c->heldBy = batch;
    return 1;
}

/* Output was queued (lock held): the loop sends it when this is the loop's
 * thread (it flushes after its work); a thread holding a delivery batch
 * keeps it back for a while; any other thread sends it now if it can. */
static void outputQueued(gwCircuit *c)
{
    gwDeliveryBatch *batch;

    if (c->closing)
        return;
    if (gwIoLoopIsSelf(c->loop)) {
        postFlush(c);
        return;
    }
    batch = epicsThreadPrivateGet(heldBatch);
    if (batch && c->outLen - c->outHead < GW_CIRCUIT_HOLD_MAX && holdBack(c, batch))
        return;
    if (batch && batch->loopsSend)
        postFlush(c);
    else
        sendHere(c);
}

static void circuitFree(gwCircuit *c)
{
    gwChannelIdsFree(&c->ids);
    epicsMutexDestroy(c->lock);
    epicsMutexDestroy(c->nameLock);
    epicsEventDestroy(c->sendDone);
    free(c->user);
    free(c->host);
    free(c->in);
    free(c->out);
    free(c->wire);
    free(c);
}

static void circuitRelease(gwCircuit *c)
{
    if (epicsAtomicDecrIntT(&c->references) == 0)
        circuitFree(c);
}

void gwCircuitDeliveryHold(gwDeliveryBatch *batch)
{
    epicsThreadOnce(&currentOnce, currentInit, NULL);
    epicsThreadPrivateSet(heldBatch, batch);
}

/* The loops a batch's circuits were posted to quietly (at most a few). */
typedef struct postedLoops {
    unsigned count;
    gwIoLoop *loops[GW_DELIVERY_BATCH_MAX];
} postedLoops;

/* Post c's flush without waking its loop yet (lock held). */
static void postFlushQuiet(gwCircuit *c, postedLoops *posted)
{
    unsigned i;

    if (c->closing)
        return;
    gwIoLoopPostQuiet(c->loop, &c->flushTask);
    for (i = 0; i < posted->count && posted->loops[i] != c->loop; i++)
        ;
    if (i == posted->count)
        posted->loops[posted->count++] = c->loop;
}

void gwCircuitDeliveryRelease(gwDeliveryBatch *batch)
{
    postedLoops posted;
    unsigned i;

    epicsThreadOnce(&currentOnce, currentInit, NULL);
    epicsThreadPrivateSet(heldBatch, NULL);
    posted.count = 0;
    for (i = 0; i < batch->count; i++) {
        gwCircuit *c = batch->circuits[i];
        epicsMutexMustLock(c->lock);
        if (c->heldBy == batch)
            c->heldBy = NULL;
        if (batch->loopsSend || batch->count > GW_DELIVERY_SEND_HERE_MAX
            || gwIoLoopIsSelf(c->loop))
            postFlushQuiet(c, &posted);
        else
            sendHere(c);
        epicsMutexUnlock(c->lock);
    }
    /* Each loop wakes once, with all of its circuits queued. The batch's
     * references keep the circuits (and so their loops) until here. */
    for (i = 0; i < posted.count; i++)
        gwIoLoopWake(posted.loops[i]);
    for (i = 0; i < batch->count; i++)
        circuitRelease(batch->circuits[i]);
    batch->count = 0;
}

/* The loop's flush: send without a turn limit, watch the socket for what
 * the circuit needs now, close it when sending failed. */
static void flushTask(void *arg)
{
    gwCircuit *c = arg;
    int failed, changed = 0;
    short events = 0;

    epicsMutexMustLock(c->lock);
    if (!c->sendFailed && sendSome(c, (unsigned)-1) < 0)
        c->sendFailed = 1;
    failed = c->sendFailed;
    if (!failed) {
        events = wantedEvents(c);
        changed = events != c->watched;
        c->watched = events;
    }
    epicsMutexUnlock(c->lock);
    if (failed)
        gwCircuitClose(c);
    else if (changed)
        gwIoLoopModify(c->loop, c->sock, events);
}

/* ---------------------------------------------------------------- input */

static int receive(gwCircuit *c)
{
    ssize_t n;

    if (c->inCap - c->inLen < GW_CIRCUIT_IN_CHUNK / 2) {
        /* never more than the largest message plus a chunk: what is left
         * after handleInput is always less than one message */
        size_t cap = c->inCap ? c->inCap * 2 : GW_CIRCUIT_IN_CHUNK;
        if (cap > c->maxMessage + GW_CIRCUIT_IN_CHUNK)
            cap = c->maxMessage + GW_CIRCUIT_IN_CHUNK;
        if (cap > c->inCap) {
            unsigned char *more = realloc(c->in, cap);
            if (!more)
                return -1;
            c->in = more;
            c->inCap = cap;
        }
        if (c->inLen == c->inCap)
            return -1;
    }
    n = recv(c->sock, (char *)c->in + c->inLen, c->inCap - c->inLen, 0);
    if (n > 0) {
        c->inLen += (size_t)n;
        epicsAtomicAddSizeT(&gwServerGetCounters(c->server)->bytesReceived, (size_t)n);
        epicsAtomicAddSizeT(&c->totalBytesReceived, (size_t)n);
        return 1;
    }
    if (n < 0 && (SOCKERRNO == SOCK_EWOULDBLOCK || SOCKERRNO == SOCK_EINTR))
        return 0;
    return -1; /* closed by the peer, or failed */
}

/* A request over the size limit: tell the client, skip its bytes. */
static size_t refuseLarge(gwCircuit *c, const unsigned char *at, size_t avail)
{
    gwCaHeader header;
    size_t headerLen;
    size_t total;

    gwCodecParseHeader(at, avail, (size_t)-1, &header, &headerLen);
    gwCircuitQueueError(c, &header, 0xffffffffu, ECA_TOLARGE,
                        "request over EPICS_CA_MAX_ARRAY_BYTES");
    total = headerLen + header.payloadSize;
    if (total <= avail)
        return total;
    c->drain = total - avail;
    return avail;
}

/* Handle the complete messages in the input buffer. -1: close. */
static int handleInput(gwCircuit *c)
{
    size_t pos = 0, requests = 0;
    int result = 0;

    if (c->drain) {
        size_t skip = c->drain < c->inLen ? c->drain : c->inLen;
        c->drain -= skip;
        pos = skip;
    }
    epicsThreadPrivateSet(currentCircuit, c);
    while (result == 0 && pos < c->inLen && !c->closing
           && !epicsAtomicGetIntT(&c->inputHeld)) {
        gwCaMessage m;
        size_t used;
        gwCodecStatus s = gwCodecParseMessage(c->in + pos, c->inLen - pos,
                                              c->maxMessage - GW_CA_EXTENDED_HEADER_SIZE,
                                              &m, &used);
        if (s == GW_CODEC_NEED_MORE)
            break;
        if (s == GW_CODEC_TOO_LARGE) {
            pos += refuseLarge(c, c->in + pos, c->inLen - pos);
            continue;
        }
        if (s != GW_CODEC_OK) {
            gwCircuitLogBad(c, NULL, gwCodecStatusText(s));
            result = -1;
            break;
        }
        requests++;
        result = gwCircuitDispatch(c, &m);
        pos += used;
    }
    epicsAtomicAddSizeT(&gwServerGetCounters(c->server)->requests, requests);
    epicsThreadPrivateSet(currentCircuit, NULL);
    memmove(c->in, c->in + pos, c->inLen - pos);
    c->inLen -= pos;
    return result;
}

static void onSocket(void *arg, short revents)
{
    gwCircuit *c = arg;
    int status = 0;

    if (revents & GW_IO_READ) {
        /* a hold leaves whole requests in the buffer: those go first, and
         * nothing is read while the hold lasts */
        if (c->inLen && !epicsAtomicGetIntT(&c->inputHeld))
            status = handleInput(c);
        if (status == 0 && !epicsAtomicGetIntT(&c->inputHeld)) {
            status = receive(c);
            if (status > 0)
                status = handleInput(c);
        }
    }
    else if (revents & GW_IO_ERROR) {
        status = -1;
    }
    if (status < 0 || c->closing) {
        gwCircuitClose(c);
        return;
    }
    flushTask(c);
}

/* Requests were held at GW_CIRCUIT_MAX_REQUESTS and half are done: handle
 * what was left in the input buffer, then watch the socket again. */
static void resumeTask(void *arg)
{
    gwCircuit *c = arg;

    if (c->closing || handleInput(c) < 0 || c->closing) {
        gwCircuitClose(c);
        return;
    }
    flushTask(c);
}

static void startTask(void *arg)
{
    gwCircuit *c = arg;
    short events;

    epicsMutexMustLock(c->lock);
    events = c->watched = wantedEvents(c);
    epicsMutexUnlock(c->lock);
    if (gwIoLoopWatch(c->loop, c->sock, events, onSocket, c) != 0) {
        gwLog(GW_LOG_CIRCUIT, GW_LOG_ERROR, "cannot watch the circuit of %s", c->peer);
        gwCircuitClose(c);
        return;
    }
    gwLog(GW_LOG_CIRCUIT, GW_LOG_INFO, "%s: circuit open", c->peer);
}

/* ---------------------------------------------------------------- life */

gwCircuit *gwCircuitCreate(gwServer *server, gwIoLoop *loop, SOCKET sock,
                           const struct sockaddr_in *peer)
{
    gwCircuit *c = calloc(1, sizeof *c);
    osiSockIoctl_t yes = 1;
    int flag = 1;

    epicsThreadOnce(&currentOnce, currentInit, NULL);
    if (!c || !(c->lock = epicsMutexCreate()) || !(c->nameLock = epicsMutexCreate())
           || !(c->sendDone = epicsEventCreate(epicsEventEmpty))) {
        if (c && c->lock)
            epicsMutexDestroy(c->lock);
        if (c && c->nameLock)
            epicsMutexDestroy(c->nameLock);
        if (c && c->sendDone)
            epicsEventDestroy(c->sendDone);
        free(c);
        epicsSocketDestroy(sock);
        return NULL;
    }
    socket_ioctl(sock, FIONBIO, &yes);
    setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, (char *)&flag, sizeof flag);
    setsockopt(sock, SOL_SOCKET, SO_KEEPALIVE, (char *)&flag, sizeof flag);
    c->references = 1;
    c->server = server;
    c->loop = loop;
    c->sock = sock;
    c->identity.address = *peer;
    ipAddrToDottedIP(peer, c->peer, sizeof c->peer);
    c->identity.peer = c->peer;
    c->identity.user = c->user = calloc(1, 1);
    c->identity.host = c->host = calloc(1, 1);
    snprintf(c->name, sizeof c->name, "@%s", c->peer);
    c->serial = (unsigned long)epicsAtomicIncrSizeT(&gwServerGetCounters(server)->circuitSerial);
    c->maxMessage = gwServerMaxMessage(server);
    ellInit(&c->channelList);
    ellInit(&c->ready);
    ellInit(&c->rightsWork);
    ellInit(&c->goneWork);
    ellInit(&c->connectWork);
    gwIoTaskInit(&c->startTask, startTask, c);
    gwIoTaskInit(&c->flushTask, flushTask, c);
    gwIoTaskInit(&c->channelTask, gwCircuitChannelWork, c);
    gwIoTaskInit(&c->resumeTask, resumeTask, c);
    epicsTimeGetCurrent(&c->lastProgress);
    gwServerCircuitAdd(server, c);
    {
        /* the server speaks first, as RSRV does (name-server clients wait for it) */
        unsigned char version[GW_CA_HEADER_SIZE];
        gwCircuitQueueBytes(c, version, gwCodecBuildVersion(version, sizeof version, 0,
                                                             GW_CA_MINOR_VERSION, 0));
    }
    gwIoLoopPost(loop, &c->startTask);
    return c;
}

void gwCircuitClose(gwCircuit *c)
{
    gwServerChannel *channel;
    char who[GW_CIRCUIT_WHO_SIZE];

    gwLog(GW_LOG_CIRCUIT, GW_LOG_INFO, "%s: circuit closed (%u channels)",
          gwCircuitWho(c, who, sizeof who), gwCircuitChannelCount(c));

    epicsMutexMustLock(c->lock);
    if (!c->sendFailed)
        sendSome(c, (unsigned)-1);  /* best effort: an ERROR explaining the close may be queued */
    c->closing = 1;
    while (c->sending) {
        /* another thread is in send(): the socket stays open until it is back */
        epicsMutexUnlock(c->lock);
        epicsEventMustWait(c->sendDone);
        epicsMutexMustLock(c->lock);
    }
    epicsMutexUnlock(c->lock);
    gwIoLoopUnwatch(c->loop, c->sock);
    while ((channel = (gwServerChannel *)ellFirst(&c->channelList)))
        gwCircuitChannelDestroy(c, channel);
    epicsMutexMustLock(c->lock);
    publishCounts(c);  /* no update comes any more */
    epicsMutexUnlock(c->lock);
    gwIoLoopUnpost(c->loop, &c->startTask);
    gwIoLoopUnpost(c->loop, &c->flushTask);
    gwIoLoopUnpost(c->loop, &c->channelTask);
    gwIoLoopUnpost(c->loop, &c->resumeTask);
    epicsSocketDestroy(c->sock);
    gwServerCircuitGone(c->server, c);
    circuitRelease(c);
}

int gwCircuitSweepCheck(gwCircuit *c, const epicsTimeStamp *now, double stuckSeconds)
{
    int stuck;

    if (!gwIoLoopIsSelf(c->loop))
        return 0;
    if (!now)
        return 1;
    epicsMutexMustLock(c->lock);
    publishCounts(c);  /* the counts of updates still unsent, once a second */
    stuck = c->blocked && epicsTimeDiffInSeconds(now, &c->lastProgress) > stuckSeconds;
    epicsMutexUnlock(c->lock);
    return stuck;
}

void gwCircuitCloseStuck(gwCircuit *c, double stuckSeconds)
{
    if (gwLogEnabled(GW_LOG_CIRCUIT, GW_LOG_WARNING)) {
        char who[GW_CIRCUIT_WHO_SIZE];
        gwLogPrintPeer(GW_LOG_CIRCUIT, gwCircuitWho(c, who, sizeof who),
                       "closing the circuit: it has not read for %.0f s", stuckSeconds);
    }
    gwCircuitClose(c);
}

ELLNODE *gwCircuitListNode(gwCircuit *c)
{
    return &c->node;
}

gwCircuit *gwCircuitOfListNode(ELLNODE *node)
{
    return node ? CONTAINER(node, gwCircuit, node) : NULL;
}

unsigned gwCircuitChannelCount(gwCircuit *c)
{
    return (unsigned)epicsAtomicGetIntT(&c->channelCount);
}

void gwCircuitTraffic(gwCircuit *c, gwServerClient *out)
{
    memset(out, 0, sizeof *out);
    out->serial = c->serial;
    epicsMutexMustLock(c->nameLock);
    snprintf(out->name, sizeof out->name, "%s", c->name);
    epicsMutexUnlock(c->nameLock);
    snprintf(out->peer, sizeof out->peer, "%s", c->peer);
    out->channels = gwCircuitChannelCount(c);
    out->updatesSent = epicsAtomicGetSizeT(&c->totalUpdatesSent);
    out->updatesReplaced = epicsAtomicGetSizeT(&c->totalUpdatesReplaced);
    out->bytesSent = epicsAtomicGetSizeT(&c->totalBytesSent);
    out->bytesReceived = epicsAtomicGetSizeT(&c->totalBytesReceived);
    out->fill = (unsigned)epicsAtomicGetIntT(&c->fill);
}

void gwCircuitSetName(gwCircuit *c)
{
    epicsMutexMustLock(c->nameLock);
    snprintf(c->name, sizeof c->name, "%s@%s", c->user, c->host[0] ? c->host : c->peer);
    epicsMutexUnlock(c->nameLock);
}

void gwCircuitDescribe(gwCircuit *c, char *buf, size_t size)
{
    epicsMutexMustLock(c->lock);
    snprintf(buf, size, "%s@%s", c->user, c->host[0] ? c->host : c->peer);
    epicsMutexUnlock(c->lock);
}

const char *gwCircuitWho(gwCircuit *c, char *buf, size_t size)
{
    epicsMutexMustLock(c->lock);
    if (c->user[0] || c->host[0])
        snprintf(buf, size, "%s (%s@%s)", c->peer, c->user, c->host);
    else
        snprintf(buf, size, "%s", c->peer);
    epicsMutexUnlock(c->lock);
    return buf;
}

void gwCircuitReport(gwCircuit *c, gwText *text, unsigned level)
{
    gwServerChannel *ch;

    epicsMutexMustLock(c->lock);
    publishFill(c);
    gwTextPrintf(text, "  client %s@%s (%s) minor %u priority %u: %d channels, "
                 "%zu events sent, %zu replaced, %zu bytes out, %zu bytes in, "
                 "%d%% queue, %zu bytes queued%s\n",
                 c->user, c->host, c->peer, gwCircuitMinor(c), c->identity.priority,
                 ellCount(&c->channelList),
                 epicsAtomicGetSizeT(&c->totalUpdatesSent) + c->counts.updatesSent,
                 epicsAtomicGetSizeT(&c->totalUpdatesReplaced) + c->counts.updatesReplaced,
                 epicsAtomicGetSizeT(&c->totalBytesSent) + c->counts.bytesSent,
                 epicsAtomicGetSizeT(&c->totalBytesReceived),
                 epicsAtomicGetIntT(&c->fill), pendingBytes(c),
                 c->eventsOff ? ", events off" : "");
    if (level > 1) {
        for (ch = (gwServerChannel *)ellFirst(&c->channelList); ch;
             ch = (gwServerChannel *)ellNext(&ch->node))
            gwTextPrintf(text, "    %s (sid %u, %d subscriptions, rights %u)\n", ch->name, ch->sid,
                   ellCount(&ch->subscriptions), ch->rights);
    }
    epicsMutexUnlock(c->lock);
}

/* ---------------------------------------------------------------- hooks for gwCircuitChannel.c */

void gwCircuitRequestStarted(gwCircuit *c)
{
    epicsMutexMustLock(c->lock);
    if (++c->requests >= GW_CIRCUIT_MAX_REQUESTS)
        epicsAtomicSetIntT(&c->inputHeld, 1);
    epicsMutexUnlock(c->lock);
}

void gwCircuitRequestDone(gwCircuit *c)
{
    epicsMutexMustLock(c->lock);
    c->requests--;
    if (c->inputHeld && c->requests <= GW_CIRCUIT_MAX_REQUESTS / 2) {
        epicsAtomicSetIntT(&c->inputHeld, 0);
        if (!c->closing)
            gwIoLoopPost(c->loop, &c->resumeTask);
    }
    epicsMutexUnlock(c->lock);
}

void gwCircuitSlotStore(gwCircuit *c, gwSubscription *sub, int status, short type,
                        unsigned long count, const void *value)
{
    slotStore(c, sub, status, type, count, value);
}

void gwCircuitSlotDrop(gwCircuit *c, gwSubscription *sub)
{
    slotDrop(c, sub);
}

