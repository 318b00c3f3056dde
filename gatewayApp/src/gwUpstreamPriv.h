/* gwUpstreamPriv.h - the upstream provider's objects, shared by
 * gwUpstream.c (PV table, states, timeouts, channels, reports) and
 * gwUpstreamIo.c (gets, puts, subscriptions and their libca callbacks).
 *
 * Objects:
 *   gwUpstream                the provider: one libca context, the PV table
 *    └ gwPv                   one per PV name: one upstream channel (chid)
 *       ├ gwProviderChannel   one per client channel attached to the PV
 *       ├ gwUpMonitor         one per (type, count, mask): one upstream
 *       │  │                  subscription and its cached last value
 *       │  └ gwProviderSubscription  one per client subscription
 *       ├ gwUpGet             one per (type, count) get in flight upstream,
 *       │  └ gwUpWaiter       with the client gets merged into it
 *       └ gwUpPut             one per put with completion in flight
 *
 * Locks, in this order (never the other way round):
 *   1. up->lock    the PV table, the state lists, and of each PV: state,
 *                  since, channelCount, removed. Not on the event path.
 *                  Taken with gwLockTake (gwLock.h): every new name of a
 *                  connect storm takes it on several threads.
 *   2. pv->lock    everything else of one PV: its channels, monitors (and
 *                  their caches and subscriptions), gets, puts, the native
 *                  type/count and rights. The event path takes only this.
 * The own searches' lock (gwUpstreamSearch.c) is a leaf taken under
 * either (gwUpSearchCancel at the connect timeout); their thread calls the
 * provider (searchAnswered) without it.
 * libca's callback lock (held while any libca callback of the context
 * runs) comes before both: callbacks take our locks. So no libca call that
 * waits for callbacks (ca_clear_channel, ca_clear_subscription) and no
 * libca request that may wait for a full send queue (get, put,
 * subscription create) is made while holding up->lock or pv->lock; only
 * ca_create_channel (which takes libca's own mutex only) is.
 * The server's callbacks (update, done, disconnected, rightsChanged,
 * connected) are called with pv->lock held (connected(ok = 0), from the
 * timer thread's connect timeout, with up->lock too). The lock rule of
 * gwProvider.h allows it: they take only the circuit's lock and never call
 * back into a provider, and holding pv->lock is what makes cancel() and
 * detach() wait for a delivery in progress. Of the server's table
 * (gwServerCallbacks), namesSettled and beaconAnomaly are called with no
 * lock of ours held, between hooksEnter and hooksLeave, which unbind waits
 * for; deliveryHold/deliveryRelease by the update callback, which reads
 * the table atomically (it stays bound while a client subscription is).
 * A cancel from inside an update of the same monitor (pv->lock held by
 * that thread already) only marks the subscription (`delivering`,
 * `cancelled`); eventCallback frees it after its loop.
 */
#ifndef INC_gwUpstreamPriv_H
#define INC_gwUpstreamPriv_H

#include <stdio.h>

#include <cadef.h>
#include <ellLib.h>
#include <epicsEvent.h>
#include <epicsMutex.h>
#include <epicsThread.h>
#include <epicsTime.h>
#include "gwNameTable.h"
#include "gwUpstream.h"

typedef enum gwPvState {
    GW_PV_CONNECTING = 0,
    GW_PV_INACTIVE,
    GW_PV_ACTIVE,
    GW_PV_DISCONNECTED,
    GW_PV_DEAD,
    GW_PV_STATES
} gwPvState;

typedef struct gwUpstream gwUpstream;
typedef struct gwPv gwPv;

typedef struct gwUpMonitor {
    ELLNODE node;              /* in pv->monitors */
    gwPv *pv;
    short type;
    unsigned long count;       /* as asked upstream: 0 = current size */
    unsigned mask;
    evid id;                   /* NULL until ca_create_subscription returned */
    int creating;              /* ca_create_subscription is running */
    int unlinked;              /* out of pv->monitors: deliver nothing more */
    int delivering;            /* eventCallback is delivering (pv->lock held):
                                  a cancel from inside an update only marks */
    int stale;                 /* a put went upstream since the cached update:
                                  peek gives nothing until an update arrives
                                  with no put in flight */
    int unconfirmed;           /* a put went upstream since: no get is
                                  answered from the cache until one sent
                                  upstream after the put, answered with no
                                  put in flight, read the bytes the cache
                                  holds (an update posted before the put can
                                  arrive after its answer; updates of one
                                  subscription come in order, so later ones
                                  are newer) */
    ELLLIST subs;              /* gwProviderSubscription */
    int polled;                /* held for gets (config getCacheTime): kept
                                  with no client subscription until no get
                                  has used it for that long (timer thread) */
    size_t pollGets;           /* gets that used it                       */
    size_t pollSeen;           /* pollGets at the timer's last look       */
    epicsTimeStamp pollIdleSince; /* when the timer saw pollGets change   */
    epicsTimeStamp lastEvent;  /* of the previous update (pv->lock): a
                                  burst or a steady rate (eventCallback) */
    /* the cache: the last update */
    int hasValue;
    int status;                /* ECA_* of the last update */
    unsigned long valueCount;
    void *value;               /* dbr_size_n(type, valueCount) bytes, host order */
    size_t capacity;
} gwUpMonitor;

struct gwProviderSubscription {
    ELLNODE node;              /* in monitor->subs */
    gwUpMonitor *monitor;
    gwValueCallback *update;
    void *user;
    int enabled;
    int cancelled;             /* cancelled from inside an update: freed by
                                  eventCallback after its delivery loop */
    int awaitingFirst;         /* its first value is being read upstream
                                  (gwUpMonitor.unconfirmed): no update yet */
};

struct gwProviderChannel {
    ELLNODE node;              /* in pv->channels, or pv->waiting while
                                  `waiting` is 1                 (pv->lock) */
    gwPv *pv;
    const gwChannelEvents *events;
    void *serverChannel;
    int deferred;              /* const: attached while the PV was connecting */
    int waiting;               /* 1 in pv->waiting, 0 in pv->channels, 2 in
                                  no list (its attach failed)    (pv->lock) */
    unsigned rights;           /* GW_RIGHT_* of this client channel, as
                                  last told to the server        (pv->lock) */
};

typedef struct gwUpWaiter {
    ELLNODE node;              /* in get->waiters */
    gwProviderChannel *channel;
    gwValueCallback *done;
    void *user;
} gwUpWaiter;

typedef struct gwUpGet {
    ELLNODE node;              /* in pv->gets */
    gwPv *pv;
    short type;
    unsigned long count;
    unsigned writeEpoch;       /* pv->writeEpoch when sent: a get that comes
                                  after a put never joins one sent before it */
    ELLLIST waiters;           /* gwUpWaiter */
} gwUpGet;

/* A plain write in flight: the IOC answers only a failure (an exception
 * in libca, naming the channel, type and count but not the request), so
 * each write is followed by a cheap get on the same channel, the fence:
 * replies come in order, so a failure arriving before the fence's reply
 * is this write's (or, with several clients writing the same PV with the
 * same type and count at once, one of theirs). */
typedef struct gwUpWrite {
    ELLNODE node;              /* in pv->writes, until the fence returns */
    gwPv *pv;
    gwProviderChannel *channel; /* NULL once the channel is detached */
    short type;
    unsigned long count;
    int reported;              /* its failure was passed on */
} gwUpWrite;

typedef struct gwUpPut {
    ELLNODE node;              /* in pv->puts */
    gwPv *pv;
    gwProviderChannel *channel; /* NULL once the channel is detached */
    gwPutCallback *done;
    void *user;
} gwUpPut;

struct gwPv {
    ELLNODE stateNode;         /* in up->states[state]           (up->lock) */
    gwNameNode tableNode;      /* in up->table                   (up->lock) */
    gwUpstream *up;
    gwPvState state;           /*                                (up->lock) */
    epicsTimeStamp since;      /* when it entered the state      (up->lock) */
    unsigned channelCount;     /*                                (up->lock) */
    int removed;               /* out of the table, being freed  (up->lock) */
    int everConnected;         /*                                (up->lock) */
    int found;                 /* an IOC answered the provider's own search
                                  while connecting               (up->lock) */
    int researching;           /* old channel being replaced: its
                                  callbacks are ignored          (up->lock) */
    int opening;               /* its first channel is being made outside
                                  the lock: not freed meanwhile  (up->lock) */
    epicsTimeStamp lastSearch; /* channel (re)created            (up->lock) */
    unsigned serverHash;       /* gwNameHash of the IOC's "host:port" at the
                                  last connection                (up->lock) */
    size_t events;             /* atomic: subscription updates received */
    size_t eventsSeen;         /* events at the last busiest() call (up->lock) */
    ELLNODE researchNode;      /* in one of the timer thread's own lists */
    ELLNODE pollNode;          /* in up->polled while pollListed (up->lock) */
    int pollListed;            /*                                (up->lock) */

    epicsMutexId lock;
    chid chan;                 /* set at creation (searching first: when an
                                  IOC answers, by the search thread, or when
                                  it dies unanswered, by the timer thread,
                                  while `opening`; NULL before); replaced
                                  only by the timer thread while no client
                                  channel is attached */
    short nativeType;          /* at the last connection         (pv->lock) */
    unsigned long nativeCount;
    unsigned rights;           /* GW_RIGHT_* upstream            (pv->lock) */
    ELLLIST channels;          /* gwProviderChannel              (pv->lock) */
    ELLLIST waiting;           /* gwProviderChannel attached while
                                  connecting, not yet told       (pv->lock) */
    ELLLIST monitors;          /* gwUpMonitor                    (pv->lock) */
    ELLLIST gets;              /* gwUpGet                        (pv->lock) */
    ELLLIST puts;              /* gwUpPut                        (pv->lock) */
    ELLLIST writes;            /* gwUpWrite                      (pv->lock) */
    unsigned writeEpoch;       /* puts sent so far               (pv->lock) */
    unsigned writesInFlight;   /* puts whose answer (or fence) is due (pv->lock) */
    short lastGetType;         /* the last get forwarded upstream: */
    unsigned long lastGetCount; /* a second one soon after with the same */
    epicsTimeStamp lastGetTime; /* type and count subscribes (pv->lock) */
    char name[1];              /* allocated to its length */
};

struct gwUpstream {
    gwProvider provider;       /* ops and self: what the server holds */
    gwUpstreamConfig config;
    struct ca_client_context *ca;

    epicsMutexId lock;
    gwNameTable table;         /* name -> gwPv (tableNode) */
    ELLLIST states[GW_PV_STATES]; /* each ordered by since */
    unsigned monitorCount;     /* upstream subscriptions     (up->lock) */
    ELLLIST polled;            /* gwPv (pollNode) that may hold a
                                  subscription for gets      (up->lock) */

    epicsThreadId timer;
    epicsEventId wake;
    epicsEventId timerExited;
    int stopping;              /*                            (up->lock) */
    int searchWanted;          /* disconnected PVs should search again now:
                                  one was lost, or an IOC started (up->lock) */
    struct gwBeaconWatch *watch;
    struct gwUpSearch *search; /* the own searches; NULL: libca's only */
    int searchFirst;           /* const after create: libca's searches pass
                                  through the own searches, no name servers
                                  are set, and a new PV gets its channel
                                  when an IOC answers the own search (else
                                  at once)                               */

    const gwServerCallbacks *server; /* bound server's table: set atomically under
                                        up->lock, read atomically by updates */
    void *serverArg;
    unsigned hookCalls;        /* calls of its table running now (up->lock) */
    epicsEventId hooksIdle;    /* signalled when hookCalls drops to 0 */
    /* counters (atomic) */
    size_t searches, updates, puts, putsRefused, channelCount;
    size_t events, getReplies;
    epicsTimeStamp lastAnomaly;
    int anomalySent;
    int realTime;              /* atomic: libca's threads under SCHED_FIFO or
                                  SCHED_RR: 2, not: 1, not asked yet: 0 */
};

extern const gwProviderOps gwUpstreamOps;
extern const char *const gwPvStateNames[GW_PV_STATES];

/* gwUpstream.c */
/* Make the calling thread use the provider's libca context; returns what
 * to give back to gwUpstreamLeaveContext. */
struct ca_client_context *gwUpstreamUseContext(gwUpstream *up);
void gwUpstreamLeaveContext(gwUpstream *up, struct ca_client_context *previous);
void gwUpstreamCountMonitors(gwUpstream *up, int delta);

/* gwUpstreamIo.c: the data operations of gwUpstreamOps */
/* The cached value of a value subscription, if any (gwProviderOps.peek). */
int gwUpstreamPeek(gwProviderChannel *channel, gwValueCallback *done, void *user);
int gwUpstreamGet(gwProviderChannel *channel, short dbrType, unsigned long count,
                  gwValueCallback *done, void *user);
int gwUpstreamPut(gwProviderChannel *channel, short dbrType, unsigned long count,
                  const void *value, gwPutCallback *done, void *user);
gwProviderSubscription *gwUpstreamSubscribe(gwProviderChannel *channel, short dbrType,
                                            unsigned long count, unsigned mask,
                                            gwValueCallback *update, void *user,
                                            int *ecaStatus);
void gwUpstreamCancel(gwProviderSubscription *subscription);
void gwUpstreamEnable(gwProviderSubscription *subscription, int enabled);
/* libca reported a failed plain write on the PV's channel (libca thread). */
void gwUpstreamWriteFailed(gwPv *pv, short dbrType, unsigned long count, int ecaStatus);
/* Fail the gets and puts of a channel being detached (pv->lock held). */
void gwUpstreamFailRequests(gwPv *pv, gwProviderChannel *channel);
/* Free what is left of a PV's requests and monitors once libca makes no
 * more callbacks for it (after ca_clear_channel); returns the number of
 * upstream subscriptions that went with the channel. */
unsigned gwUpstreamFreeRequests(gwPv *pv);
/* The mask an upstream subscription is made with for a client's mask. */
unsigned gwUpstreamEffectiveMask(const gwUpstreamConfig *config, unsigned mask);
/* The timer thread's look at the PVs holding subscriptions for gets
 * (up->lock held; takes each pv->lock): the subscriptions no get has used
 * for config.getCacheTime and no client holds are unlinked into `idle`,
 * and PVs left with none leave up->polled. */
void gwUpstreamExpirePolls(gwUpstream *up, const epicsTimeStamp *now, ELLLIST *idle);
/* Before a PV's channel is replaced (no client channel attached): its
 * subscriptions held for gets are unlinked into `idle` (takes pv->lock),
 * to be cancelled before the channel is cleared, which would free them. */
void gwUpstreamDropPolls(gwPv *pv, ELLLIST *idle);
/* Cancel the subscriptions gwUpstreamExpirePolls collected (no lock). */
void gwUpstreamReleaseIdle(gwUpstream *up, ELLLIST *idle);

#endif /* INC_gwUpstreamPriv_H */
