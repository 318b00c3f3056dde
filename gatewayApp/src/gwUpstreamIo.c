/* gwUpstreamIo.c - the upstream provider's data path: gets (from the cache
 * or merged upstream requests), puts, and subscriptions shared by
 * (DBR type, count, event mask) with their cached last value.
 *
 * The gateway never converts a value: an upstream request is made with
 * exactly the client's type and count, so the IOC converts and the bytes
 * a client gets are the IOC's.
 *
 * Threads: the operations run on the server's threads, the libca callbacks
 * (eventCallback, getCallback, putCallback) on libca's. Objects and lock
 * order: gwUpstreamPriv.h.
 */
#include <stdlib.h>
#include <string.h>

#include <cadef.h>
#include <caerr.h>
#include <db_access.h>
#include <dbDefs.h>
#include <epicsAtomic.h>

#include "gwLock.h"
#include "gwOsd.h"
#include "gwUpstreamPriv.h"

static void unlinkMonitor(gwPv *pv, gwUpMonitor *monitor);
static void releaseMonitor(gwUpstream *up, gwUpMonitor *monitor);
static int startMonitor(gwPv *pv, gwUpMonitor *monitor, gwProviderSubscription *own);

/* ---------------------------------------------------------------- masks and cache */

unsigned gwUpstreamEffectiveMask(const gwUpstreamConfig *config, unsigned mask)
{
    if (mask == 0 || mask == (GW_EVENT_VALUE | GW_EVENT_ALARM))
        mask = config->defaultMask;
    /* Without -archive an archiver's DBE_LOG gets value updates, as from
     * the classic gateway; with it, the IOC's archive deadband. */
    if (!config->archive && (mask & GW_EVENT_LOG))
        mask = (mask & ~GW_EVENT_LOG) | GW_EVENT_VALUE;
    return mask;
}

/* The events a subscription's mask must bring for its cache to answer a
 * get of the type: every change the type shows; the value; the alarm for
 * STS/TIME/STSACK; the properties (limits, units, strings) too for
 * GR/CTRL. */
static unsigned eventsShown(short type)
{
    if (dbr_type_is_plain(type))
        return GW_EVENT_VALUE;
    if (dbr_type_is_GR(type) || dbr_type_is_CTRL(type))
        return GW_EVENT_VALUE | GW_EVENT_ALARM | GW_EVENT_PROPERTY;
    return GW_EVENT_VALUE | GW_EVENT_ALARM;
}

/* Does a subscription's cache hold what a get of (type, count) would read
 * now? */
static int cacheAnswers(const gwUpMonitor *monitor, short type, unsigned long count)
{
    unsigned need;

    if (monitor->type != type || monitor->count != count || !monitor->hasValue
        || monitor->unconfirmed || monitor->status != ECA_NORMAL)
        return 0;
    if (type == DBR_CLASS_NAME)
        return 1;
    need = eventsShown(type);
    return (monitor->mask & need) == need;
}

/* ---------------------------------------------------------------- gets */

/* Do two readings of (type, count) say the same: status, severity, time
 * stamp and value? The bytes the IOC leaves undefined (alignment pads,
 * string bytes after the NUL) are not compared; limits, units and enum
 * strings change only with a DBE_PROPERTY update, which the cache gets. */
static int sameReading(short type, unsigned long count, const void *a, const void *b)
{
    const char *x = a, *y = b;
    size_t head = 0, i;

    if (type > DBR_CTRL_DOUBLE)
        return memcmp(a, b, dbr_size_n(type, count)) == 0;
    if (dbr_type_is_TIME(type))
        head = 12;  /* status, severity, stamp: the same offsets in every dbr_time_* */
    else if (!dbr_type_is_plain(type))
        head = 4;   /* status, severity */
    if (memcmp(x, y, head) != 0)
        return 0;
    x += dbr_value_offset[type];
    y += dbr_value_offset[type];
    if (dbr_type_is_STRING(type)) {
        for (i = 0; i < count; i++)
            if (strncmp(x + i * MAX_STRING_SIZE, y + i * MAX_STRING_SIZE, MAX_STRING_SIZE) != 0)
                return 0;
        return 1;
    }
    return memcmp(x, y, count * dbr_value_size[type]) == 0;
}

/* A get sent after the last put came back with no put in flight (pv->lock
 * held): the caches of its type and count that hold the same reading are
 * current again (gwUpMonitor.unconfirmed). */
static void confirmCaches(gwPv *pv, const gwUpGet *get, const struct event_handler_args *args)
{
    gwUpMonitor *monitor;

    if (get->writeEpoch != pv->writeEpoch || pv->writesInFlight)
        return;
    for (monitor = (gwUpMonitor *)ellFirst(&pv->monitors); monitor;
         monitor = (gwUpMonitor *)ellNext(&monitor->node)) {
        if (monitor->unconfirmed && monitor->type == args->type && monitor->count == get->count
            && monitor->hasValue && monitor->status == ECA_NORMAL
            && monitor->valueCount == (unsigned long)args->count && monitor->value
            && sameReading(monitor->type, monitor->valueCount, monitor->value, args->dbr))
            monitor->unconfirmed = 0;
    }
}

static void getCallback(struct event_handler_args args)
{
    gwUpGet *get = args.usr;
    gwPv *pv = get->pv;
    gwUpWaiter *waiter;
    int ok = args.status == ECA_NORMAL && args.dbr;

    epicsAtomicIncrSizeT(&pv->up->getReplies);
    epicsMutexMustLock(pv->lock);
    ellDelete(&pv->gets, &get->node);
    if (ok)
        confirmCaches(pv, get, &args);
    while ((waiter = (gwUpWaiter *)ellGet(&get->waiters)) != NULL) {
        if (ok)
            waiter->done(waiter->user, ECA_NORMAL, (short)args.type, args.count, args.dbr);
        else
            waiter->done(waiter->user, args.status, get->type, get->count, NULL);
        free(waiter);
    }
    epicsMutexUnlock(pv->lock);
    free(get);
}

/* Any subscription's cache that follows the value; no traffic. */
int gwUpstreamPeek(gwProviderChannel *channel, gwValueCallback *done, void *user)
{
    gwPv *pv = channel->pv;
    gwUpMonitor *monitor;
    int status = ECA_GETFAIL;

    epicsMutexMustLock(pv->lock);
    for (monitor = (gwUpMonitor *)ellFirst(&pv->monitors); monitor;
         monitor = (gwUpMonitor *)ellNext(&monitor->node)) {
        if (monitor->hasValue && !monitor->stale && monitor->status == ECA_NORMAL
            && (monitor->mask & GW_EVENT_VALUE) && monitor->type != DBR_CLASS_NAME) {
            done(user, ECA_NORMAL, monitor->type, monitor->valueCount, monitor->value);
            status = ECA_NORMAL;
            break;
        }
    }
    epicsMutexUnlock(pv->lock);
    return status;
}

/* ---------------------------------------------------------------- subscriptions for gets */

/* A monitor in pv->monitors whose upstream subscription is about to be
 * made (pv->lock held); NULL with no memory. */
static gwUpMonitor *newMonitor(gwPv *pv, short type, unsigned long count, unsigned mask)
{
    gwUpMonitor *monitor = calloc(1, sizeof *monitor);

    if (!monitor)
        return NULL;
    monitor->pv = pv;
    monitor->type = type;
    monitor->count = count;
    monitor->mask = mask;
    monitor->creating = 1;
    /* its first update may be read before a put in flight is done */
    monitor->stale = monitor->unconfirmed = pv->writesInFlight != 0;
    ellAdd(&pv->monitors, &monitor->node);
    return monitor;
}

/* A PV polled by gets (the same type and count read twice within
 * config.getCacheTime) gets a subscription of its own, the poll
 * subscription, with the mask its cache needs (and the client default's
 * value and alarm, so that a camonitor of the same type shares it): the
 * polling clients are then answered from its cache, as from any client
 * subscription's. The timer thread cancels it once no get has used it
 * for getCacheTime and no client subscription has joined it. Not for
 * DBR_STSACK_STRING and DBR_CLASS_NAME (not followed by subscriptions),
 * nor without read access upstream. */

static unsigned pollMask(short type)
{
    return eventsShown(type) | GW_EVENT_VALUE | GW_EVENT_ALARM;
}

/* A get used a subscription's cache, or wants one (pv->lock held): it is
 * held for gets from now on; 1 when the PV must be put in up->polled. */
static int usedForGets(gwUpMonitor *monitor)
{
    int first = !monitor->polled;

    monitor->polled = 1;
    monitor->pollGets++;
    return first;
}

/* After pv->lock: the timer thread looks at the PV's poll subscriptions. */
static void listPolled(gwPv *pv)
{
    gwUpstream *up = pv->up;

    gwLockTake(up->lock);
    if (!pv->pollListed && !pv->removed) {
        ellAdd(&up->polled, &pv->pollNode);
        pv->pollListed = 1;
    }
    epicsMutexUnlock(up->lock);
}

/* A get the caches could not answer (pv->lock held): the poll subscription
 * to make now, if this PV is being polled (NULL if not). *list: the PV must
 * be put in up->polled. */
static gwUpMonitor *pollSubscription(gwPv *pv, short type, unsigned long count, int *list)
{
    gwUpstream *up = pv->up;
    unsigned mask = pollMask(type);
    gwUpMonitor *monitor;
    epicsTimeStamp now;
    int again;

    if (up->config.getCacheTime <= 0 || type > DBR_CTRL_DOUBLE
        || !(pv->rights & GW_RIGHT_READ) || count > pv->nativeCount)
        return NULL;
    for (monitor = (gwUpMonitor *)ellFirst(&pv->monitors); monitor;
         monitor = (gwUpMonitor *)ellNext(&monitor->node)) {
        if (monitor->type == type && monitor->count == count && monitor->mask == mask) {
            /* there (no value yet, or stale): keep it for these gets */
            *list = usedForGets(monitor);
            return NULL;
        }
    }
    epicsTimeGetCurrent(&now);
    again = pv->lastGetType == type && pv->lastGetCount == count
            && epicsTimeDiffInSeconds(&now, &pv->lastGetTime) < up->config.getCacheTime;
    pv->lastGetType = type;
    pv->lastGetCount = count;
    pv->lastGetTime = now;
    if (!again)
        return NULL;
    monitor = newMonitor(pv, type, count, mask);
    if (monitor)        /* else the get goes upstream all the same */
        *list = usedForGets(monitor);
    return monitor;
}

void gwUpstreamExpirePolls(gwUpstream *up, const epicsTimeStamp *now, ELLLIST *idle)
{
    ELLNODE *node = ellFirst(&up->polled);

    while (node) {
        ELLNODE *nextNode = ellNext(node);
        gwPv *pv = CONTAINER(node, gwPv, pollNode);
        gwUpMonitor *monitor;
        int holding = 0;

        epicsMutexMustLock(pv->lock);
        monitor = (gwUpMonitor *)ellFirst(&pv->monitors);
        while (monitor) {
            gwUpMonitor *next = (gwUpMonitor *)ellNext(&monitor->node);
            if (monitor->polled) {
                if (monitor->creating || monitor->pollGets != monitor->pollSeen) {
                    monitor->pollSeen = monitor->pollGets;
                    monitor->pollIdleSince = *now;
                    holding = 1;
                }
                else if (epicsTimeDiffInSeconds(now, &monitor->pollIdleSince)
                         < up->config.getCacheTime) {
                    holding = 1;
                }
                else {
                    monitor->polled = 0;
                    if (ellCount(&monitor->subs) == 0) {
                        unlinkMonitor(pv, monitor);
                        ellAdd(idle, &monitor->node);
                    }
                }
            }
            monitor = next;
        }
        epicsMutexUnlock(pv->lock);
        if (!holding) {
            ellDelete(&up->polled, &pv->pollNode);
            pv->pollListed = 0;
        }
        node = nextNode;
    }
}

void gwUpstreamDropPolls(gwPv *pv, ELLLIST *idle)
{
    gwUpMonitor *monitor, *next;

    epicsMutexMustLock(pv->lock);
    for (monitor = (gwUpMonitor *)ellFirst(&pv->monitors); monitor; monitor = next) {
        next = (gwUpMonitor *)ellNext(&monitor->node);
        if (ellCount(&monitor->subs) == 0 && !monitor->creating) {
            monitor->polled = 0;
            unlinkMonitor(pv, monitor);
            ellAdd(idle, &monitor->node);
        }
    }
    epicsMutexUnlock(pv->lock);
}

void gwUpstreamReleaseIdle(gwUpstream *up, ELLLIST *idle)
{
    gwUpMonitor *monitor;

    while ((monitor = (gwUpMonitor *)ellGet(idle)) != NULL)
        releaseMonitor(up, monitor);
}

/* ---------------------------------------------------------------- gets upstream */

/* A get the caches do not answer goes upstream, merged into one of the
 * same (type, count) in flight sent after the last put, or sent (called
 * with pv->lock held; releases it). When it cannot be sent, its waiters
 * (the merged ones too) hear of the failure, all but `waiter`, whose
 * caller is told by the status returned. */
static int forward(gwPv *pv, short type, unsigned long count, gwUpWaiter *waiter)
{
    gwUpstream *up = pv->up;
    struct ca_client_context *previous;
    gwUpGet *get;
    int status;

    for (get = (gwUpGet *)ellFirst(&pv->gets); get; get = (gwUpGet *)ellNext(&get->node)) {
        if (get->type == type && get->count == count && get->writeEpoch == pv->writeEpoch) {
            ellAdd(&get->waiters, &waiter->node);   /* merged */
            epicsMutexUnlock(pv->lock);
            return ECA_NORMAL;
        }
    }
    get = calloc(1, sizeof *get);
    if (!get) {
        epicsMutexUnlock(pv->lock);
        free(waiter);
        return ECA_ALLOCMEM;
    }
    get->pv = pv;
    get->type = type;
    get->count = count;
    get->writeEpoch = pv->writeEpoch;
    ellAdd(&get->waiters, &waiter->node);
    ellAdd(&pv->gets, &get->node);
    epicsMutexUnlock(pv->lock);

    previous = gwUpstreamUseContext(up);
    status = ca_array_get_callback(type, count, pv->chan, getCallback, get);
    if (status == ECA_NORMAL)
        ca_flush_io();
    gwUpstreamLeaveContext(up, previous);
    if (status == ECA_NORMAL)
        return ECA_NORMAL;

    epicsAtomicIncrSizeT(&up->getReplies);
    epicsMutexMustLock(pv->lock);
    ellDelete(&pv->gets, &get->node);
    ellDelete(&get->waiters, &waiter->node);
    free(waiter);
    while ((waiter = (gwUpWaiter *)ellGet(&get->waiters)) != NULL) {
        waiter->done(waiter->user, status, type, count, NULL);
        free(waiter);
    }
    epicsMutexUnlock(pv->lock);
    free(get);
    return status;
}

static gwUpWaiter *newWaiter(gwProviderChannel *channel, gwValueCallback *done, void *user)
{
    gwUpWaiter *waiter = calloc(1, sizeof *waiter);

    if (waiter) {
        waiter->channel = channel;
        waiter->done = done;
        waiter->user = user;
    }
    return waiter;
}

int gwUpstreamGet(gwProviderChannel *channel, short dbrType, unsigned long count,
                  gwValueCallback *done, void *user)
{
    gwPv *pv = channel->pv;
    gwUpstream *up = pv->up;
    gwUpMonitor *monitor, *poll = NULL;
    gwUpWaiter *waiter;
    int status, list = 0;

    if (INVALID_DB_REQ(dbrType))
        return ECA_BADTYPE;
    waiter = newWaiter(channel, done, user);
    if (!waiter)
        return ECA_ALLOCMEM;

    epicsMutexMustLock(pv->lock);
    if (!up->config.noCache) {
        for (monitor = (gwUpMonitor *)ellFirst(&pv->monitors); monitor;
             monitor = (gwUpMonitor *)ellNext(&monitor->node)) {
            if (cacheAnswers(monitor, dbrType, count)) {
                done(user, ECA_NORMAL, dbrType, monitor->valueCount, monitor->value);
                if (up->config.getCacheTime > 0)
                    list = usedForGets(monitor);
                epicsMutexUnlock(pv->lock);
                free(waiter);
                if (list)
                    listPolled(pv);
                return ECA_NORMAL;
            }
        }
        poll = pollSubscription(pv, dbrType, count, &list);
    }
    status = forward(pv, dbrType, count, waiter);
    if (list)
        listPolled(pv);
    if (poll)
        startMonitor(pv, poll, NULL);
    return status;
}

/* ---------------------------------------------------------------- puts */

/* A put goes upstream (pv->lock held): reads must not be answered from
 * what was cached or asked before it, so that a client reading after its
 * own write sees the write (RSRV's order). inFlight: its answer or fence
 * will come back (putAnswered). */
static void putSent(gwPv *pv, int inFlight)
{
    gwUpMonitor *monitor;

    pv->writeEpoch++;
    if (inFlight)
        pv->writesInFlight++;
    for (monitor = (gwUpMonitor *)ellFirst(&pv->monitors); monitor;
         monitor = (gwUpMonitor *)ellNext(&monitor->node)) {
        monitor->stale = 1;
        monitor->unconfirmed = 1;
    }
}

static void putAnswered(gwPv *pv)
{
    if (pv->writesInFlight)
        pv->writesInFlight--;
}


static void putCallback(struct event_handler_args args)
{
    gwUpPut *put = args.usr;
    gwPv *pv = put->pv;

    epicsMutexMustLock(pv->lock);
    ellDelete(&pv->puts, &put->node);
    putAnswered(pv);
    if (put->channel)
        put->done(put->user, args.status);
    epicsMutexUnlock(pv->lock);
    free(put);
}

static void fenceCallback(struct event_handler_args args)
{
    gwUpWrite *write = args.usr;
    gwPv *pv = write->pv;

    epicsMutexMustLock(pv->lock);
    ellDelete(&pv->writes, &write->node);
    putAnswered(pv);
    epicsMutexUnlock(pv->lock);
    free(write);
}

void gwUpstreamWriteFailed(gwPv *pv, short dbrType, unsigned long count, int ecaStatus)
{
    gwUpWrite *write;

    epicsMutexMustLock(pv->lock);
    for (write = (gwUpWrite *)ellFirst(&pv->writes); write;
         write = (gwUpWrite *)ellNext(&write->node)) {
        if (!write->reported && write->type == dbrType && write->count == count) {
            write->reported = 1;
            if (write->channel)
                write->channel->events->writeFailed(write->channel->serverChannel, dbrType,
                                                    count, ecaStatus);
            break;
        }
    }
    epicsMutexUnlock(pv->lock);
}

/* A plain write and its fence (see gwUpWrite). */
static int plainWrite(gwProviderChannel *channel, short dbrType, unsigned long count,
                      const void *value)
{
    gwPv *pv = channel->pv;
    gwUpstream *up = pv->up;
    struct ca_client_context *previous;
    gwUpWrite *write = calloc(1, sizeof *write);
    int status, fenced = 0;

    if (!write)
        return ECA_ALLOCMEM;
    write->pv = pv;
    write->channel = channel;
    write->type = dbrType;
    write->count = count;
    epicsMutexMustLock(pv->lock);
    ellAdd(&pv->writes, &write->node);
    putSent(pv, 1);
    epicsMutexUnlock(pv->lock);

    previous = gwUpstreamUseContext(up);
    status = ca_array_put(dbrType, count, pv->chan, value);
    if (status == ECA_NORMAL) {
        fenced = ca_array_get_callback(DBR_CLASS_NAME, 1, pv->chan, fenceCallback, write)
                 == ECA_NORMAL;
        ca_flush_io();
    }
    gwUpstreamLeaveContext(up, previous);
    if (!fenced) {
        /* Not sent, or no fence (no read access upstream): a failure
         * reported later cannot be told apart, and is not passed on. */
        epicsMutexMustLock(pv->lock);
        ellDelete(&pv->writes, &write->node);
        putAnswered(pv);
        epicsMutexUnlock(pv->lock);
        free(write);
    }
    return status;
}

int gwUpstreamPut(gwProviderChannel *channel, short dbrType, unsigned long count,
                  const void *value, gwPutCallback *done, void *user)
{
    gwPv *pv = channel->pv;
    gwUpstream *up = pv->up;
    struct ca_client_context *previous;
    gwUpPut *put;
    int status;

    epicsAtomicIncrSizeT(&up->puts);
    if (!done)
        return plainWrite(channel, dbrType, count, value);
    put = calloc(1, sizeof *put);
    if (!put)
        return ECA_ALLOCMEM;
    put->pv = pv;
    put->channel = channel;
    put->done = done;
    put->user = user;
    epicsMutexMustLock(pv->lock);
    ellAdd(&pv->puts, &put->node);
    putSent(pv, 1);
    epicsMutexUnlock(pv->lock);

    previous = gwUpstreamUseContext(up);
    status = ca_array_put_callback(dbrType, count, pv->chan, value, putCallback, put);
    if (status == ECA_NORMAL)
        ca_flush_io();
    gwUpstreamLeaveContext(up, previous);
    if (status != ECA_NORMAL) {
        epicsMutexMustLock(pv->lock);
        ellDelete(&pv->puts, &put->node);
        putAnswered(pv);
        epicsMutexUnlock(pv->lock);
        free(put);
    }
    return status;
}

/* ---------------------------------------------------------------- subscriptions */

/* Keep the update as the cache (pv->lock held). On no memory the update is
 * still delivered, just not cached. */
static void cacheUpdate(gwUpMonitor *monitor, const struct event_handler_args *args)
{
    size_t size;

    if (!monitor->pv->writesInFlight)
        monitor->stale = 0;

    monitor->status = args->status;
    if (args->status != ECA_NORMAL || !args->dbr) {
        monitor->hasValue = 1;
        monitor->valueCount = monitor->count;
        return;
    }
    size = dbr_size_n(args->type, args->count);
    if (size > monitor->capacity) {
        void *bigger = realloc(monitor->value, size);
        if (!bigger) {
            monitor->hasValue = 0;
            return;
        }
        monitor->value = bigger;
        monitor->capacity = size;
    }
    memcpy(monitor->value, args->dbr, size);
    monitor->valueCount = args->count;
    monitor->hasValue = 1;
}

/* One update to one client subscription (pv->lock held); the caller
 * counts it in up->updates. */
static void deliver(gwProviderSubscription *sub, const gwUpMonitor *monitor, int status,
                    unsigned long count, const void *value)
{
    if (status == ECA_NORMAL && value)
        sub->update(sub->user, ECA_NORMAL, monitor->type, count, value);
    else
        sub->update(sub->user, status == ECA_NORMAL ? ECA_GETFAIL : status, monitor->type,
                    monitor->count, NULL);
}

/* The first update of a client subscription that joined a cache not
 * confirmed since a put: the value read upstream for it (pv->lock held,
 * from getCallback; or a failure: the cached value then). */
static void firstValue(void *user, int status, short type, unsigned long count,
                       const void *value)
{
    gwProviderSubscription *sub = user;
    gwUpMonitor *monitor = sub->monitor;

    (void)type;
    sub->awaitingFirst = 0;
    if (!sub->enabled || sub->cancelled)
        return;
    /* A cancel from inside this delivery only marks the subscription; the
     * monitor's next update (or the PV's end) frees it. */
    monitor->delivering = 1;
    if (status == ECA_NORMAL && value)
        deliver(sub, monitor, status, count, value);
    else if (monitor->hasValue)
        deliver(sub, monitor, monitor->status, monitor->valueCount, monitor->value);
    monitor->delivering = 0;
    epicsAtomicIncrSizeT(&monitor->pv->up->updates);
}

/* The first value of a subscription is no longer wanted (pv->lock held). */
static void dropFirstValue(gwPv *pv, gwProviderSubscription *sub)
{
    gwUpGet *get;

    if (!sub->awaitingFirst)
        return;
    for (get = (gwUpGet *)ellFirst(&pv->gets); get; get = (gwUpGet *)ellNext(&get->node)) {
        gwUpWaiter *waiter;
        for (waiter = (gwUpWaiter *)ellFirst(&get->waiters); waiter;
             waiter = (gwUpWaiter *)ellNext(&waiter->node)) {
            if (waiter->done == firstValue && waiter->user == sub) {
                ellDelete(&get->waiters, &waiter->node);
                free(waiter);
                sub->awaitingFirst = 0;
                return;
            }
        }
    }
}

/* The subscriptions cancelled from inside this update go, and the
 * monitor too when none is left (pv->lock held): 1 when the caller must
 * release the monitor after the lock. */
static int sweepCancelled(gwPv *pv, gwUpMonitor *monitor)
{
    gwProviderSubscription *sub = (gwProviderSubscription *)ellFirst(&monitor->subs);

    while (sub) {
        gwProviderSubscription *next = (gwProviderSubscription *)ellNext(&sub->node);
        if (sub->cancelled) {
            ellDelete(&monitor->subs, &sub->node);
            dropFirstValue(pv, sub);
            free(sub);
        }
        sub = next;
    }
    if (ellCount(&monitor->subs) || monitor->creating || monitor->unlinked || monitor->polled)
        return 0;
    unlinkMonitor(pv, monitor);
    return 1;
}

/* Updates of one subscription closer together than this are a burst: a
 * lone client's output is then held back for its I/O loop, so the updates
 * that follow at once leave together; slower ones are sent at once. */
#define GW_UP_BURST_SECONDS 0.0002

/* An update for more client subscriptions than this is handed to their
 * circuits' I/O loops: sent one by one on libca's receive thread, it would
 * keep that thread from reading the IOC for longer than updates come at a
 * machine's rates (100 clients: 0.7 ms of each ms at 1000 updates/s, and
 * the IOC then drops updates), where the loops send in parallel, one
 * wake-up each per update, and what piles up meanwhile leaves in one send.
 * Below it, sending here costs fewer wake-ups (bench/gateway, paced). */
#define GW_UP_LOOPS_SEND_MIN 32

/* Do libca's threads run under a real-time policy (an IOC with the rights
 * for SCHED_FIFO)? Then a loop woken by a hand-off runs at once and
 * contends with this thread for each circuit, so the hand-off for many
 * clients loses updates (paced 100 clients: 58 % delivered, against 100 %
 * sending here); they send here. Asked once, on the first update. */
static int threadsRealTime(gwUpstream *up)
{
    int known = epicsAtomicGetIntT(&up->realTime);

    if (!known) {
        known = gwOsdThreadRealTime() ? 2 : 1;
        epicsAtomicSetIntT(&up->realTime, known);
    }
    return known == 2;
}

/* Is this update part of a burst (pv->lock held)? */
static int inBurst(gwUpMonitor *monitor)
{
    epicsTimeStamp now;
    int burst;

    epicsTimeGetCurrent(&now);
    burst = epicsTimeDiffInSeconds(&now, &monitor->lastEvent) < GW_UP_BURST_SECONDS;
    monitor->lastEvent = now;
    return burst;
}

static void eventCallback(struct event_handler_args args)
{
    gwUpMonitor *monitor = args.usr;
    gwPv *pv = monitor->pv;
    gwProviderSubscription *sub;
    gwUpstream *up = pv->up;
    /* read without up->lock (not on the event path): set by bind before
     * any channel, cleared by unbind after the last client has gone */
    const gwServerCallbacks *server = epicsAtomicGetPtrT((void *const *)&up->server);
    gwDeliveryBatch batch;
    int held, subs, release = 0;
    size_t delivered = 0;

    /* libca's receive thread. One client in a burst of updates: queue and
     * let its I/O loop send, so updates that follow at once leave together
     * and this thread gets back to reading the IOC. Many clients
     * (GW_UP_LOOPS_SEND_MIN): queue for the loops too. One client at a
     * steady rate, or a few: send on this thread (the server's default):
     * handing every update to a loop costs a wake-up and a thread switch
     * each (paced 1000 updates/s, bench/gateway). */
    batch.loopsSend = 1;
    batch.count = 0;
    epicsMutexMustLock(pv->lock);
    subs = ellCount(&monitor->subs);
    held = server && ((subs > GW_UP_LOOPS_SEND_MIN && !threadsRealTime(up))
                      || inBurst(monitor));
    if (held)
        server->deliveryHold(up->serverArg, &batch);
    if (!monitor->unlinked) {
        cacheUpdate(monitor, &args);
        monitor->delivering = 1;
        for (sub = (gwProviderSubscription *)ellFirst(&monitor->subs); sub;
             sub = (gwProviderSubscription *)ellNext(&sub->node)) {
            if (sub->enabled && !sub->cancelled && !sub->awaitingFirst) {
                deliver(sub, monitor, args.status, args.count, args.dbr);
                delivered++;
            }
        }
        monitor->delivering = 0;
        release = sweepCancelled(pv, monitor);
    }
    epicsMutexUnlock(pv->lock);
    epicsAtomicIncrSizeT(&pv->events);  /* the PV's own cache line */
    epicsAtomicIncrSizeT(&up->events);
    if (delivered)   /* one atomic add per upstream update, not per client */
        epicsAtomicAddSizeT(&up->updates, delivered);
    if (held)
        server->deliveryRelease(up->serverArg, &batch);
    if (release)
        releaseMonitor(up, monitor); /* libca allows it from the callback */
}

/* Out of the PV's list: no more deliveries (pv->lock held). */
static void unlinkMonitor(gwPv *pv, gwUpMonitor *monitor)
{
    if (!monitor->unlinked) {
        ellDelete(&pv->monitors, &monitor->node);
        monitor->unlinked = 1;
    }
}

/* Without locks, once the monitor has no client subscription left. */
static void releaseMonitor(gwUpstream *up, gwUpMonitor *monitor)
{
    if (monitor->id) {
        struct ca_client_context *previous = gwUpstreamUseContext(up);
        ca_clear_subscription(monitor->id); /* waits for a callback running now */
        ca_flush_io();  /* libca only queues the EVENT_CANCEL */
        gwUpstreamLeaveContext(up, previous);
        gwUpstreamCountMonitors(up, -1);
    }
    free(monitor->value);
    free(monitor);
}

gwProviderSubscription *gwUpstreamSubscribe(gwProviderChannel *channel, short dbrType,
                                            unsigned long count, unsigned mask,
                                            gwValueCallback *update, void *user,
                                            int *ecaStatus)
{
    gwPv *pv = channel->pv;
    gwUpstream *up = pv->up;
    gwProviderSubscription *sub;
    gwUpMonitor *monitor;
    int created = 0;
    int status;

    mask = gwUpstreamEffectiveMask(&up->config, mask);
    if (INVALID_DB_REQ(dbrType)) {
        *ecaStatus = ECA_BADTYPE;
        return NULL;
    }
    sub = calloc(1, sizeof *sub);
    if (!sub) {
        *ecaStatus = ECA_ALLOCMEM;
        return NULL;
    }
    sub->update = update;
    sub->user = user;
    sub->enabled = 1;

    epicsMutexMustLock(pv->lock);
    if (count > pv->nativeCount) {
        epicsMutexUnlock(pv->lock);
        free(sub);
        *ecaStatus = ECA_BADCOUNT;
        return NULL;
    }
    for (monitor = (gwUpMonitor *)ellFirst(&pv->monitors); monitor;
         monitor = (gwUpMonitor *)ellNext(&monitor->node)) {
        if (monitor->type == dbrType && monitor->count == count && monitor->mask == mask)
            break;
    }
    if (!monitor) {
        monitor = newMonitor(pv, dbrType, count, mask);
        if (!monitor) {
            epicsMutexUnlock(pv->lock);
            free(sub);
            *ecaStatus = ECA_ALLOCMEM;
            return NULL;
        }
        created = 1;
    }
    sub->monitor = monitor;
    ellAdd(&monitor->subs, &sub->node);
    if (monitor->hasValue && monitor->unconfirmed) {
        /* A put went upstream since the cached update: the first value is
         * read upstream, after the put, as the IOC reads it for a new
         * subscription; updates wait for it (firstValue). */
        gwUpWaiter *waiter = newWaiter(channel, firstValue, sub);
        if (waiter) {
            sub->awaitingFirst = 1;
            if (forward(pv, dbrType, count, waiter) == ECA_NORMAL)
                return sub;
            epicsMutexMustLock(pv->lock);   /* not sent: the cached value */
            sub->awaitingFirst = 0;
        }
    }
    if (monitor->hasValue) { /* the key exists: its last value at once */
        deliver(sub, monitor, monitor->status, monitor->valueCount, monitor->value);
        epicsAtomicIncrSizeT(&up->updates);
    }
    epicsMutexUnlock(pv->lock);
    if (!created)
        return sub;
    status = startMonitor(pv, monitor, sub);
    if (status == ECA_NORMAL)
        return sub;
    free(sub);
    *ecaStatus = status;
    return NULL;
}

/* Make the upstream subscription of a monitor just added to pv->monitors
 * (`creating`), without locks. On failure the monitor leaves the PV: `own`
 * (the caller's, or NULL) is taken off it, the client subscriptions that
 * joined meanwhile hear of the failure (and stay on the dead monitor until
 * cancelled). Returns the ECA status. */
static int startMonitor(gwPv *pv, gwUpMonitor *monitor, gwProviderSubscription *own)
{
    gwUpstream *up = pv->up;
    struct ca_client_context *previous;
    gwProviderSubscription *other;
    evid id = NULL;
    int status, release = 0;

    previous = gwUpstreamUseContext(up);
    status = ca_create_subscription(monitor->type, monitor->count, pv->chan, monitor->mask,
                                    eventCallback, monitor, &id);
    if (status == ECA_NORMAL)
        ca_flush_io();
    gwUpstreamLeaveContext(up, previous);

    epicsMutexMustLock(pv->lock);
    monitor->creating = 0;
    if (status == ECA_NORMAL) {
        monitor->id = id;
        /* a poll subscription whose clients came and went meanwhile stays
         * for the timer thread; a client's always has its caller's */
    }
    else {
        unlinkMonitor(pv, monitor);
        monitor->polled = 0;
        if (own)
            ellDelete(&monitor->subs, &own->node);
        for (other = (gwProviderSubscription *)ellFirst(&monitor->subs); other;
             other = (gwProviderSubscription *)ellNext(&other->node))
            other->update(other->user, status, monitor->type, monitor->count, NULL);
        release = ellCount(&monitor->subs) == 0;
    }
    epicsMutexUnlock(pv->lock);
    if (status == ECA_NORMAL)
        gwUpstreamCountMonitors(up, 1);
    else if (release)
        releaseMonitor(up, monitor);
    return status;
}

void gwUpstreamCancel(gwProviderSubscription *sub)
{
    gwUpMonitor *monitor = sub->monitor;
    gwPv *pv = monitor->pv;
    int release = 0;

    epicsMutexMustLock(pv->lock);
    if (monitor->delivering) {
        /* From inside an update of this monitor (this thread holds
         * pv->lock): its delivery loop still walks the list. */
        sub->cancelled = 1;
        epicsMutexUnlock(pv->lock);
        return;
    }
    ellDelete(&monitor->subs, &sub->node);
    dropFirstValue(pv, sub);
    if (ellCount(&monitor->subs) == 0 && !monitor->creating && !monitor->polled) {
        unlinkMonitor(pv, monitor);
        release = 1;
    }
    epicsMutexUnlock(pv->lock);
    if (release)
        releaseMonitor(pv->up, monitor);
    free(sub);
}

void gwUpstreamEnable(gwProviderSubscription *sub, int enabled)
{
    gwPv *pv = sub->monitor->pv;

    epicsMutexMustLock(pv->lock);
    sub->enabled = enabled;
    epicsMutexUnlock(pv->lock);
}

/* ---------------------------------------------------------------- channel and PV end */

void gwUpstreamFailRequests(gwPv *pv, gwProviderChannel *channel)
{
    gwUpGet *get;
    gwUpPut *put;
    gwUpWrite *write;

    for (get = (gwUpGet *)ellFirst(&pv->gets); get; get = (gwUpGet *)ellNext(&get->node)) {
        gwUpWaiter *waiter = (gwUpWaiter *)ellFirst(&get->waiters);
        while (waiter) {
            gwUpWaiter *next = (gwUpWaiter *)ellNext(&waiter->node);
            if (waiter->channel == channel) {
                ellDelete(&get->waiters, &waiter->node);
                waiter->done(waiter->user, ECA_GETFAIL, get->type, get->count, NULL);
                free(waiter);
            }
            waiter = next;
        }
    }
    for (put = (gwUpPut *)ellFirst(&pv->puts); put; put = (gwUpPut *)ellNext(&put->node)) {
        if (put->channel == channel) {
            put->done(put->user, ECA_PUTFAIL);
            put->channel = NULL;
        }
    }
    for (write = (gwUpWrite *)ellFirst(&pv->writes); write;
         write = (gwUpWrite *)ellNext(&write->node)) {
        if (write->channel == channel)
            write->channel = NULL;
    }
}

unsigned gwUpstreamFreeRequests(gwPv *pv)
{
    unsigned monitors = 0;
    gwUpMonitor *monitor;
    gwUpGet *get;
    ELLNODE *node;

    while ((get = (gwUpGet *)ellGet(&pv->gets)) != NULL) {
        ellFree(&get->waiters);
        free(get);
    }
    ellFree(&pv->puts);
    ellFree(&pv->writes);
    while ((monitor = (gwUpMonitor *)ellGet(&pv->monitors)) != NULL) {
        if (monitor->id)
            monitors++;
        while ((node = ellGet(&monitor->subs)) != NULL)
            free(node);
        free(monitor->value);
        free(monitor);
    }
    return monitors;
}
