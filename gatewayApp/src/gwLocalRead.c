/* gwLocalRead.c - the local provider's reads: get() and subscriptions.
 *
 * Owns: subscriptions (gwProviderSubscription) and their scratch buffers;
 * the read itself, done as RSRV's read_reply does (zero-filled buffer,
 * channel filters run on a read log when the channel has any, count 0
 * meaning the current size).
 *
 * Threads entering this file:
 * - the server's threads: get (calls done before it returns), subscribe,
 *   cancel, enable;
 * - "gwLocalEvent<i>" (the dbEvent tasks): gwLocalUpdate, which calls the
 *   server's update callback (holding the server's sends back while Base
 *   has more events queued, see gwLocalPriv.h); a subscription's updates
 *   all come from the task of its channel's context; the server may cancel
 *   from inside them (this subscription or any other);
 * - "gwLocalReap": gwLocalSubscriptionBury, for subscriptions cancelled on
 *   their own context's task.
 *
 * Locks: provider->lock around the channel's list of subscriptions and
 * enable()'s change of the held flag; an update reads that flag as an
 * atomic and takes no provider lock.
 * db_cancel_event() waits for a running update of the subscription (Base
 * dbEvent.c: it waits while callBackInProgress, unless called on the task
 * of the event's context), so after cancel returns no update runs. On the
 * task of the subscription's own context it must not be called (it would
 * flag the wrong event as deleting itself), so there the subscription is
 * only disabled and flagged, and the reaper cancels and frees it. On
 * another context's task it is the ordinary, waiting cancel. Every waiting
 * cancel goes through gwLocalCancelEvent (one at a time per context: Base's
 * wait can lose a wakeup between two waiters, see gwLocalPriv.h).
 */
#include <stdlib.h>
#include <string.h>

#include <caerr.h>
#include <db_access.h>
#include <db_access_routines.h>
#include <db_convert.h>
#include <epicsAtomic.h>
#include <errlog.h>

#include "gwLocalPriv.h"

/* Gets of up to this many bytes use a buffer on the stack. */
#define GW_LOCAL_STACK_BYTES 512

static int gwLocalCanRead(gwProviderChannel *channel)
{
    return (gwLocalRightsOf(channel) & GW_RIGHT_READ) != 0;
}

/* PUT_ACKT and PUT_ACKS are requested too: the database refuses them and
 * the client gets ECA_GETFAIL with zeros, as from RSRV's read_reply. */
static int gwLocalReadableType(short dbrType)
{
    return dbrType >= 0 && dbrType <= LAST_BUFFER_TYPE;
}

/* Elements a buffer for a request of count must hold (count 0: the field's
 * full size, as read_reply sizes it; filters never make it larger). */
static long gwLocalCapacity(dbChannel *chan, unsigned long count)
{
    long elements = dbChannelElements(chan);

    if (count)
        return (long)count;
    if (dbChannelFinalElements(chan) > elements)
        elements = dbChannelFinalElements(chan);
    return elements > 0 ? elements : 1;
}

/* The common checks of get and subscribe: an ECA_* code. */
static int gwLocalCheckRead(gwProviderChannel *channel, short dbrType, unsigned long count)
{
    long native = dbChannelFinalElements(channel->chan);

    if (!gwLocalReadableType(dbrType))
        return ECA_BADTYPE;
    if (count > (unsigned long)(native > 0 ? native : 1))
        return ECA_BADCOUNT;
    return ECA_NORMAL;
}

/* Is dbrType a plain numeric request (DBR_SHORT, FLOAT, CHAR, LONG, DOUBLE)? */
static int gwLocalNumericRequest(short dbrType)
{
    return dbrType == DBR_SHORT || dbrType == DBR_FLOAT || dbrType == DBR_CHAR ||
           dbrType == DBR_LONG || dbrType == DBR_DOUBLE;
}

/* Can a read of dbrType from pfl go without the record lock? When the event
 * system copied a numeric scalar into the field log (dbfl_type_val) and a
 * plain numeric type is asked for, dbGet converts from the copy with a plain
 * cast and touches nothing of the record (no precision, units or enum
 * strings). Base's dbChannel_get_count locks the record even then, so each
 * update waited for the put or scan in progress. */
static int gwLocalReadUnlocked(short dbrType, const db_field_log *pfl)
{
    return pfl && pfl->type == dbfl_type_val && gwLocalNumericRequest(dbrType) &&
           pfl->field_type >= (short)dbDBRoldToDBFnew[DBR_CHAR] &&
           pfl->field_type <= (short)dbDBRoldToDBFnew[DBR_DOUBLE];
}

/* Read into buffer (zero-filled by the caller): as read_reply, with a read
 * log through the filter chains when the event system gave none. *count is
 * the capacity in, the elements read out. Returns <0 on failure. */
static int gwLocalRead(dbChannel *chan, short dbrType, void *buffer, long *count,
                       db_field_log *pfl)
{
    int localLog = 0;
    int status;

    if (gwLocalReadUnlocked(dbrType, pfl)) {
        long noOptions = 0;
        return dbChannelGet(chan, (short)dbDBRoldToDBFnew[dbrType], buffer, &noOptions,
                            count, pfl) ? -1 : 0;
    }

    if (!pfl && (ellCount(&chan->pre_chain) || ellCount(&chan->post_chain))) {
        pfl = db_create_read_log(chan);
        if (pfl) {
            localLog = 1;
            pfl = dbChannelRunPreChain(chan, pfl);
            pfl = dbChannelRunPostChain(chan, pfl);
        }
    }
    status = dbChannel_get_count(chan, dbrType, buffer, count, pfl);
    if (localLog && pfl)
        db_delete_field_log(pfl);
    return status;
}

int gwLocalGet(gwProviderChannel *channel, short dbrType, unsigned long count,
               gwValueCallback *done, void *user)
{
    union { double align; char bytes[GW_LOCAL_STACK_BYTES]; } local;
    long capacity, elements;
    size_t size;
    void *buffer;
    int status = gwLocalCheckRead(channel, dbrType, count);

    if (status != ECA_NORMAL)
        return status;
    if (!gwLocalCanRead(channel))
        return ECA_NORDACCESS;
    capacity = gwLocalCapacity(channel->chan, count);
    size = dbr_size_n(dbrType, capacity);
    buffer = size <= sizeof local.bytes ? local.bytes : malloc(size);
    if (!buffer)
        return ECA_ALLOCMEM;
    memset(buffer, 0, size);
    elements = capacity;
    if (gwLocalRead(channel->chan, dbrType, buffer, &elements, NULL) < 0)
        done(user, ECA_GETFAIL, dbrType, count, NULL);
    else
        done(user, ECA_NORMAL, dbrType, count ? count : (unsigned long)elements, buffer);
    if (buffer != local.bytes)
        free(buffer);
    return ECA_NORMAL;
}

/* One update of a subscription to the server. */
static void gwLocalDeliver(gwProviderSubscription *subscription, struct dbChannel *chan,
                           db_field_log *pfl)
{
    long elements = subscription->capacity;
    int status;

    if (!gwLocalCanRead(subscription->channel)) {
        subscription->update(subscription->user, ECA_NORDACCESS, subscription->dbrType,
                             subscription->count, NULL);
        return;
    }
    memset(subscription->data, 0, subscription->size);
    epicsAtomicIncrSizeT(&subscription->channel->context->updates);
    status = gwLocalRead(chan, subscription->dbrType, subscription->data, &elements, pfl);
    if (status < 0)
        subscription->update(subscription->user, ECA_GETFAIL, subscription->dbrType,
                             subscription->count, NULL);
    else
        subscription->update(subscription->user, ECA_NORMAL, subscription->dbrType,
                             subscription->count ? subscription->count
                                                 : (unsigned long)elements,
                             subscription->data);
}

/* The dbEvent callback (the task of the channel's context). While more
 * events are queued the server's sends are held back, so that a burst
 * leaves in few send() calls (as RSRV's read_reply flushes only when
 * eventsRemaining is 0); after a long burst the task pauses
 * (GW_LOCAL_BURST_PAUSE, gwLocalPriv.h). */
static void gwLocalUpdate(void *arg, struct dbChannel *chan, int eventsRemaining,
                          db_field_log *pfl)
{
    gwProviderSubscription *subscription = arg;
    gwLocalContext *context = subscription->channel->context;

    if (eventsRemaining)
        gwLocalHoldSends(context);
    context->burst++;
    if (!subscription->cancelled && !epicsAtomicGetIntT(&subscription->held))
        gwLocalDeliver(subscription, chan, pfl);
    if (!eventsRemaining) {
        int pause = context->burst >= GW_LOCAL_BURST_EVENTS;
        gwLocalReleaseSends(context);
        if (pause)
            epicsThreadSleep(GW_LOCAL_BURST_PAUSE);
    }
}

static void gwLocalSubscriptionBury(gwLocalGrave *grave)
{
    gwProviderSubscription *subscription = CONTAINER(grave, gwProviderSubscription, grave);
    gwLocalProvider *provider = subscription->channel->provider;

    gwLocalCancelEvent(subscription->channel->context, subscription->event);
    epicsMutexMustLock(provider->lock);
    subscription->channel->pendingGraves--;
    epicsMutexUnlock(provider->lock);
    free(subscription);
}

gwProviderSubscription *gwLocalSubscribe(gwProviderChannel *channel, short dbrType,
                                         unsigned long count, unsigned mask,
                                         gwValueCallback *update, void *user,
                                         int *ecaStatus)
{
    gwLocalProvider *provider = channel->provider;
    gwProviderSubscription *subscription;
    long capacity;
    size_t size;
    int status = gwLocalCheckRead(channel, dbrType, count);

    if (status == ECA_NORMAL && (mask == 0 || mask > 0xff))
        status = ECA_BADMASK;
    if (status != ECA_NORMAL) {
        *ecaStatus = status;
        return NULL;
    }
    capacity = gwLocalCapacity(channel->chan, count);
    size = dbr_size_n(dbrType, capacity);
    subscription = calloc(1, sizeof *subscription + size); /* the buffer follows */
    if (!subscription) {
        *ecaStatus = ECA_ALLOCMEM;
        return NULL;
    }
    subscription->grave.bury = gwLocalSubscriptionBury;
    subscription->channel = channel;
    subscription->update = update;
    subscription->user = user;
    subscription->dbrType = dbrType;
    subscription->count = count;
    subscription->capacity = capacity;
    subscription->size = size;
    subscription->event = db_add_event(channel->context->events, channel->chan, gwLocalUpdate,
                                       subscription, mask);
    if (!subscription->event) {
        free(subscription);
        *ecaStatus = ECA_ALLOCMEM;
        return NULL;
    }
    epicsMutexMustLock(provider->lock);
    ellAdd(&channel->subscriptions, &subscription->node);
    epicsMutexUnlock(provider->lock);
    db_post_single_event(subscription->event); /* the first update, at once */
    db_event_enable(subscription->event);
    *ecaStatus = ECA_NORMAL;
    return subscription;
}

void gwLocalCancel(gwProviderSubscription *subscription)
{
    gwProviderChannel *channel = subscription->channel;
    gwLocalProvider *provider = channel->provider;
    int onOwnTask = gwLocalOnContextTask(channel->context);

    epicsMutexMustLock(provider->lock);
    ellDelete(&channel->subscriptions, &subscription->node);
    if (onOwnTask)
        channel->pendingGraves++;
    epicsMutexUnlock(provider->lock);
    if (onOwnTask) {
        /* Inside a callback of the subscription's own event task: no update
         * from now on (the flag is read on this thread only); the reaper
         * cancels and frees. */
        subscription->cancelled = 1;
        db_event_disable(subscription->event);
        gwLocalBury(provider, &subscription->grave);
    } else {
        /* waits for a running update */
        gwLocalCancelEvent(channel->context, subscription->event);
        free(subscription);
    }
}

void gwLocalEnable(gwProviderSubscription *subscription, int enabled)
{
    gwLocalProvider *provider = subscription->channel->provider;
    int wasHeld;

    epicsMutexMustLock(provider->lock);
    wasHeld = subscription->held;
    epicsAtomicSetIntT(&subscription->held, !enabled);
    epicsMutexUnlock(provider->lock);
    if (enabled) {
        db_event_enable(subscription->event);
        if (wasHeld)
            db_post_single_event(subscription->event); /* the value now, as RSRV */
    } else {
        db_event_disable(subscription->event);
    }
}
