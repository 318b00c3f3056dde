/* gwLocalPriv.h - the local provider's objects, shared by gwLocal.c (the
 * provider, channels, access rights, the deferred-work and reaper threads),
 * gwLocalRead.c (get, subscriptions) and gwLocalPut.c (put, put with
 * completion). Not installed.
 *
 * Ownership:
 * - The provider owns its channels (list `channels`); the server holds
 *   a channel between attach() and detach().
 * - A channel owns its subscriptions and its outstanding puts.
 * - A subscription or channel given up on the event thread is handed to the
 *   reaper (list `graves`), which releases it: Base's db_cancel_event() must
 *   not be called on the event task (it would mark the wrong event as
 *   deleting itself), and a dbChannel must outlive its events.
 *
 * Locks (order: a channel's identityLock, then asLib's lock, then the
 * provider's lock; nothing is called while holding the provider's lock):
 * - provider->lock: eventThread, channels, rightsQueue, putQueue, graves,
 *   delivering, each channel's subscriptions, puts, rightsQueued,
 *   reportedRights, closing, pendingGraves, each subscription's held flag,
 *   each put's state.
 * - channel->identityLock: user, host (and asLib's copy of them).
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

/* Something the reaper releases on its own thread. */
typedef struct gwLocalGrave {
    ELLNODE node;                               /* in provider->graves */
    void (*bury)(struct gwLocalGrave *grave);   /* releases the object */
} gwLocalGrave;

struct gwLocalProvider {
    gwProvider provider;          /* what the server registers: ops + self */
    dbEventCtx events;            /* the one event context (task "gwLocalEvent") */
    epicsThreadId eventThread;    /* the event task, set when it starts */
    epicsThreadId reaper;         /* thread "gwLocalReap", joinable */
    epicsEventId reapWake;        /* graves queued or stop requested */
    epicsEventId delivered;       /* the event task finished a delivery */
    epicsMutexId lock;            /* see the top of this file */
    ELLLIST channels;             /* gwProviderChannel.node */
    ELLLIST rightsQueue;          /* gwProviderChannel.rightsNode */
    ELLLIST putQueue;             /* gwLocalPutRequest.queueNode: finished, to deliver */
    ELLLIST graves;               /* gwLocalGrave.node */
    gwProviderChannel *delivering; /* channel of the callback now running */
    int reapStop;                 /* the reaper ends when graves is empty */
};

struct gwProviderChannel {
    ELLNODE node;                 /* in provider->channels */
    ELLNODE rightsNode;           /* in provider->rightsQueue when rightsQueued */
    gwLocalGrave grave;           /* for a teardown left to the reaper */
    gwLocalProvider *provider;
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
    gwLocalGrave grave;           /* for a cancel on the event thread */
    gwProviderChannel *channel;
    dbEventSubscription event;
    gwValueCallback *update;
    void *user;
    short dbrType;
    unsigned long count;          /* as requested; 0 = current size */
    long capacity;                /* elements the buffer holds */
    size_t size;                  /* bytes of data */
    int held;                     /* enable(0) holds updates */
    int cancelled;                /* event task only: no more updates */
    double data[];                /* scratch for one update (size bytes) */
};

/* gwLocal.c */
unsigned gwLocalRightsOf(gwProviderChannel *channel);
int gwLocalOnEventThread(gwLocalProvider *provider);
void gwLocalBeginDelivery(gwLocalProvider *provider, gwProviderChannel *channel);
void gwLocalEndDelivery(gwLocalProvider *provider);
void gwLocalBury(gwLocalProvider *provider, gwLocalGrave *grave);

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
void gwLocalDeliverPuts(gwLocalProvider *provider);
void gwLocalCompletePuts(gwProviderChannel *channel);

#endif /* INC_gwLocalPriv_H */
