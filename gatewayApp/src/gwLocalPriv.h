/* gwLocalPriv.h - the local provider's objects, shared by gwLocal.c (the
 * provider, its event contexts, channels, access rights, the deferred-work
 * and reaper threads), gwLocalRead.c (get, subscriptions) and gwLocalPut.c
 * (put, put with completion). Not installed.
 *
 * Event contexts: the provider has a fixed number of database event
 * contexts (gwLocalContext, each with its own task "gwLocalEvent<i>"). A
 * channel is given one at attach, round-robin, and everything asynchronous
 * of the channel runs on that context's task: its subscriptions' updates,
 * its rights changes and its put completions (extra labor of the context).
 * So a channel's notifications come from one thread, in order; different
 * channels' notifications run in parallel. While Base says more events are
 * queued, the task holds the server's sends back (gwProvider.h) and
 * releases them with the last queued event, or in its next extra labor
 * (posted when the hold begins) should that event not reach a callback.
 * After a burst of at least GW_LOCAL_BURST_EVENTS events the task pauses
 * GW_LOCAL_BURST_PAUSE seconds before it takes the next one (below).
 *
 * Ownership:
 * - The provider owns its contexts (array `contexts`, fixed from creation
 *   to destruction) and its channels (list `channels`); the server holds
 *   a channel between attach() and detach().
 * - A channel owns its subscriptions and its outstanding puts.
 * - A subscription given up on its own context's task, or a channel given
 *   up on any event task, is handed to the reaper (list `graves`), which
 *   releases it: Base's db_cancel_event() must not be called on the task of
 *   the event's own context (it would mark the wrong event as deleting
 *   itself), and a dbChannel must outlive its events. On another context's
 *   task db_cancel_event() is an ordinary cancel (it waits for a running
 *   callback of the event, as on any other thread).
 * - Base 7.0.3.1's db_cancel_event() waits on ONE binary event per context
 *   (pflush_sem), signalled once per finished callback of a cancelled
 *   event: two threads waiting in it on the same context can lose a wakeup
 *   and one of them waits forever. So every waiting cancel of a context
 *   (gwLocalCancelEvent: the server's threads, other contexts' tasks, the
 *   reaper) holds the context's cancelLock.
 *
 * Locks (order: a channel's identityLock, then asLib's lock, then the
 * provider's lock; nothing is called while holding the provider's lock; a
 * context's cancelLock is held, alone, only around db_cancel_event()):
 * - provider->lock: channels, graves, every context's thread, rightsQueue,
 *   putQueue and delivering; each channel's subscriptions, puts,
 *   rightsQueued, reportedRights, closing, pendingGraves; each put's state;
 *   changes of a subscription's held flag (enable()).
 * - channel->identityLock: user, host (and asLib's copy of them).
 * - Atomics, read without a lock: a subscription's held flag (by every
 *   update, on the hot path); provider->nextContext (attach's counter).
 */
#ifndef INC_gwLocalPriv_H
#define INC_gwLocalPriv_H

#include <ellLib.h>
#include <epicsEvent.h>
#include <epicsMutex.h>
#include <epicsThread.h>
#include <asLib.h>
#include <dbChannel.h>
#include <dbEvent.h>
#include <dbNotify.h>

#include "gwProvider.h"

typedef struct gwLocalProvider gwLocalProvider;

/* Adaptive batching of a context's task. A burst of this many events means
 * records post faster than the task takes them: it then pauses this long
 * after sending, so that the next burst finds more events queued. Taken
 * one by one, each event would cost a wake-up of the task and a contended
 * hand-over of Base's event queue lock with the posting thread (a put
 * arriving at full speed, say). Measured with bench/run, one client
 * monitoring a record put at full speed: 0.65 M events/s at 2.3 CPU s per
 * million without the pause, 1.1 M at 1.25 with it. Paced updates come in
 * bursts of one and never pause; at high rates an update waits at most
 * this long longer. */
#define GW_LOCAL_BURST_EVENTS 16u
#define GW_LOCAL_BURST_PAUSE 20e-6

/* Something the reaper releases on its own thread. */
typedef struct gwLocalGrave {
    ELLNODE node;                               /* in provider->graves */
    void (*bury)(struct gwLocalGrave *grave);   /* releases the object */
} gwLocalGrave;

/* One database event context and its task. */
typedef struct gwLocalContext {
    gwLocalProvider *provider;
    dbEventCtx events;            /* task "gwLocalEvent<index>" */
    epicsThreadId thread;         /* the event task, set when it starts */
    epicsEventId delivered;       /* the task finished a delivery */
    epicsMutexId cancelLock;      /* one waiting db_cancel_event() at a time */
    ELLLIST rightsQueue;          /* gwProviderChannel.rightsNode */
    ELLLIST putQueue;             /* gwLocalPutRequest.queueNode: finished, to deliver */
    gwProviderChannel *delivering; /* channel of the labor callback now running */
    gwDeliveryBatch batch;        /* its task only: sends held back during a burst */
    int holding;                  /* its task only: batch is held */
    unsigned burst;               /* its task only: events since the last release */
    size_t updates;               /* values its task delivered (atomic: written by
                                     the task only, so no line is shared) */
    unsigned index;
} gwLocalContext;

struct gwLocalProvider {
    gwProvider provider;          /* what the server registers: ops + self */
    gwLocalContext *contexts;     /* contextCount of them */
    unsigned contextCount;
    size_t nextContext;           /* attach counter (atomic): round-robin */
    epicsThreadId reaper;         /* thread "gwLocalReap", joinable */
    epicsEventId reapWake;        /* graves queued or stop requested */
    epicsMutexId lock;            /* see the top of this file */
    ELLLIST channels;             /* gwProviderChannel.node */
    ELLLIST graves;               /* gwLocalGrave.node */
    int reapStop;                 /* the reaper ends when graves is empty */
    /* the server it is bound to: set by bind before any channel is
     * attached, cleared by unbind after the last is detached */
    const gwServerCallbacks *server;
    void *serverArg;
    /* counters (atomic) */
    size_t channelCount, searches, puts, putsRefused; /* updates: per context */
};

struct gwProviderChannel {
    ELLNODE node;                 /* in provider->channels */
    ELLNODE rightsNode;           /* in context->rightsQueue when rightsQueued */
    gwLocalGrave grave;           /* for a teardown left to the reaper */
    gwLocalProvider *provider;
    gwLocalContext *context;      /* its event context, fixed at attach */
    dbChannel *chan;
    ASCLIENTPVT asClient;         /* NULL when access security is off */
    epicsMutexId identityLock;
    char *user;                   /* copies: asLib keeps the pointers */
    char *host;
    const gwChannelEvents *events;
    void *serverChannel;
    int attached;                 /* rights changes are reported */
    int closing;                  /* detach has begun: puts stay off putQueue */
    int rightsQueued;
    unsigned reportedRights;      /* as last told to the server */
    unsigned pendingGraves;       /* subscriptions the reaper still holds */
    ELLLIST subscriptions;        /* gwProviderSubscription.node */
    ELLLIST puts;                 /* gwLocalPutRequest.channelNode: outstanding */
};

struct gwProviderSubscription {
    ELLNODE node;                 /* in channel->subscriptions */
    gwLocalGrave grave;           /* for a cancel on its context's task */
    gwProviderChannel *channel;
    dbEventSubscription event;
    gwValueCallback *update;
    void *user;
    short dbrType;
    unsigned long count;          /* as requested; 0 = current size */
    long capacity;                /* elements the buffer holds */
    size_t size;                  /* bytes of data */
    int held;                     /* enable(0) holds updates; read atomically */
    int cancelled;                /* its context's task only: no more updates */
    double data[];                /* scratch for one update (size bytes) */
};

/* gwLocal.c */
unsigned gwLocalRightsOf(gwProviderChannel *channel);
void gwLocalHoldSends(gwLocalContext *context);
void gwLocalReleaseSends(gwLocalContext *context);
int gwLocalOnContextTask(gwLocalContext *context);
void gwLocalBeginDelivery(gwLocalContext *context, gwProviderChannel *channel);
void gwLocalEndDelivery(gwLocalContext *context);
void gwLocalBury(gwLocalProvider *provider, gwLocalGrave *grave);
void gwLocalCancelEvent(gwLocalContext *context, dbEventSubscription event);

/* gwLocalRead.c */
int gwLocalGet(gwProviderChannel *channel, short dbrType, unsigned long count,
               gwValueCallback *done, void *user);
gwProviderSubscription *gwLocalSubscribe(gwProviderChannel *channel, short dbrType,
                                         unsigned long count, unsigned mask,
                                         gwValueCallback *update, void *user,
                                         int *ecaStatus);
void gwLocalCancel(gwProviderSubscription *subscription);
void gwLocalEnable(gwProviderSubscription *subscription, int enabled);

/* gwLocalPut.c */
int gwLocalPut(gwProviderChannel *channel, short dbrType, unsigned long count,
               const void *value, gwPutCallback *done, void *user);
void gwLocalDeliverPuts(gwLocalContext *context);
void gwLocalCompletePuts(gwProviderChannel *channel);

#endif /* INC_gwLocalPriv_H */
