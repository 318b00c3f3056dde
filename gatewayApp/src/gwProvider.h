/* gwProvider.h - the interface between the CA server and the sources of PVs,
 * both ways.
 *
 * The server (gwServer.c, gwCircuit*.c, gwNameServer.c) knows nothing of
 * where a PV comes from: it asks the providers registered with it, in
 * order. The local provider (gwLocal.c) serves the IOC's own records; the
 * upstream provider (gwUpstream.c) serves PVs of other IOCs; a wrapper
 * (gwWrapper.c) sits in front of another provider and may rename, refuse
 * or narrow rights per client. Nothing passes between the server and a
 * provider except through this file: the server calls gwProviderOps, and
 * a provider calls the server through the gwServerCallbacks table it is
 * given at registration (bind) and the callbacks it is given with each
 * request (gwChannelEvents, gwValueCallback, gwPutCallback).
 *
 * Values cross this interface in HOST byte order, laid out exactly as the
 * DBR type says (db_access.h: dbr_size_n(type, count) bytes). The server
 * converts to network order itself; a provider never does.
 *
 * THE LOCK RULE (both sides rely on it; the server asserts it in debug
 * builds, see gwProviderCall.h):
 * - The server never calls into a provider from inside one of that
 *   provider's callbacks. A callback only queues work (under the server's
 *   own leaf locks) and returns; what follows from it (a detach after a
 *   disconnect, enable after a rights change) runs later on a server
 *   thread. So a provider may call any callback with its own locks held
 *   (the upstream provider delivers with its PV's lock held, which is what
 *   makes cancel() and detach() wait for a delivery in progress).
 * - The server calls every operation from its own threads and never while
 *   holding a lock of its own, so an operation may call back into the
 *   server (a synchronous get calls `done` before it returns).
 * - After detach() / cancel() return, the provider makes no further call
 *   for that channel / subscription, and none is still running. After
 *   unbind() returns, it makes no call of the gwServerCallbacks table.
 *
 * Operation tables are written with designated initialisers; optional
 * entries are left out (NULL).
 */
#ifndef INC_gwProvider_H
#define INC_gwProvider_H

#include <stddef.h>
#include <stdio.h>

#include <osiSock.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Access rights bits, as in the ACCESS_RIGHTS message. */
#define GW_RIGHT_READ  1u
#define GW_RIGHT_WRITE 2u

/* The event mask bits of EVENT_ADD (DBE_VALUE, DBE_LOG, DBE_ALARM, DBE_PROPERTY). */
#define GW_EVENT_VALUE    1u
#define GW_EVENT_LOG      2u
#define GW_EVENT_ALARM    4u
#define GW_EVENT_PROPERTY 8u

typedef enum gwExistsAnswer {
    GW_EXISTS_NO = 0,   /* not here: stay silent (or NOT_FOUND when asked to reply) */
    GW_EXISTS_YES,      /* here: answer the search; attach will succeed (usually) */
    GW_EXISTS_PENDING,  /* may be here later: no answer now, the client repeats */
    GW_EXISTS_ELSEWHERE /* served by another server, at `where`: the search is
                           answered with that address and port, and the client
                           connects there (the search relay); attach fails */
} gwExistsAnswer;

/* One name of a batch of searches (the SEARCH messages of one datagram, a
 * search over TCP, the name of a CREATE_CHAN). The server sets pvName and
 * answer = GW_EXISTS_NO; a provider sets answer (and where, for
 * GW_EXISTS_ELSEWHERE, in network order) of the queries it serves. */
typedef struct gwExistsQuery {
    const char *pvName;
    gwExistsAnswer answer;
    struct sockaddr_in where;
} gwExistsQuery;

/* Who is asking. The server owns the strings; they stay valid until the
 * channel is detached or clientChanged() is called with a new identity. */
typedef struct gwClientIdentity {
    const char *user;           /* CLIENT_NAME; "" when the client sent none */
    const char *host;           /* HOST_NAME; "" when the client sent none */
    const char *peer;           /* "a.b.c.d:port" of the client's socket */
    struct sockaddr_in address; /* the same, as an address */
    unsigned minorVersion;      /* the client's CA minor protocol version */
    unsigned priority;          /* the circuit's priority, 0..99 */
} gwClientIdentity;

/* ---------------------------------------------------------------- server -> provider callbacks */

/* The server's side of one attached channel. A provider calls these when
 * the client's rights change, the source of the channel goes away (the
 * server then sends SERVER_DISCONN and detaches), a plain write (put()
 * without done) that put() accepted failed later at the source (the
 * server then sends the client the ERROR a failed WRITE gets, as RSRV
 * does for a write it cannot do), or a deferred attach (see deferred())
 * has finished: ok 1, the channel is usable; ok 0, it failed (the server
 * then sends CREATE_CH_FAIL and detaches). */
typedef struct gwChannelEvents {
    void (*rightsChanged)(void *serverChannel, unsigned rights);
    void (*disconnected)(void *serverChannel);
    void (*writeFailed)(void *serverChannel, short dbrType, unsigned long count,
                        int ecaStatus);
    void (*connected)(void *serverChannel, int ok);
} gwChannelEvents;

/* Completion of a get and each update of a subscription. ecaStatus is an
 * ECA_* code (caerr.h). On ECA_NORMAL, value points to dbr_size_n(dbrType,
 * count) bytes in host order, valid only during the call; count is the
 * number of elements actually delivered (for a request with count 0, the
 * current size). On failure value is NULL and count is the count asked for. */
typedef void gwValueCallback(void *user, int ecaStatus, short dbrType,
                             unsigned long count, const void *value);

/* Completion of a put with notification: ECA_NORMAL or the failure. */
typedef void gwPutCallback(void *user, int ecaStatus);

/* Batched delivery: "more updates follow at once on this thread, send
 * later". Without it the server sends each update as soon as it is
 * queued: on the calling thread when the circuit's output is idle, else
 * through the circuit's I/O loop. A provider that knows more updates are
 * about to follow on the same thread (Base's dbEvent tells its callbacks
 * whether events remain queued) holds the sends back with deliveryHold,
 * so that a burst leaves in few send() calls, as RSRV's event task does,
 * and calls deliveryRelease at the latest when the thread runs out of
 * updates. Both on the delivering thread; the batch (zero-initialised,
 * owned by the provider, e.g. one per event task) is that thread's while
 * held. Meanwhile the thread calls the other callbacks as usual and never
 * waits for anything the server does. A thread that must get back to its
 * own input quickly (libca's receive thread) sets loopsSend: the held
 * circuits then go to their I/O loops at the release, so sending runs in
 * parallel with receiving. A provider that never holds is served the same. */
#define GW_DELIVERY_BATCH_MAX 64

typedef struct gwDeliveryBatch {
    int loopsSend;                           /* provider's: 1 = never send on
                                                the delivering thread */
    unsigned count;                          /* server's */
    void *circuits[GW_DELIVERY_BATCH_MAX];   /* server's, opaque */
} gwDeliveryBatch;

/* What the server offers every provider, handed over by bind(). Any
 * provider thread, with or without provider locks held (the lock rule). */
typedef struct gwServerCallbacks {
    /* Names the provider answered PENDING are settled (it serves them now,
     * to any client): the searches waiting for them are answered. */
    void (*namesSettled)(void *server, const char *const *pvNames, unsigned count);
    /* Start the beacon anomaly sequence (fast beacons: clients search
     * again at once), e.g. an upstream IOC came back. */
    void (*beaconAnomaly)(void *server);
    void (*deliveryHold)(void *server, gwDeliveryBatch *batch);
    void (*deliveryRelease)(void *server, gwDeliveryBatch *batch);
} gwServerCallbacks;

/* ---------------------------------------------------------------- provider operations */

typedef struct gwProviderChannel gwProviderChannel;           /* a provider's, opaque */
typedef struct gwProviderSubscription gwProviderSubscription; /* a provider's, opaque */

/* What a provider counts, for reports and the statistics records: a plain
 * struct filled without blocking the event path (atomics, or a lock the
 * event path does not take). Fields a provider has no meaning for are 0. */
typedef struct gwProviderCounters {
    unsigned long pvs;              /* PV objects (upstream: one per name) */
    unsigned long connecting;       /* upstream states of the Users Guide */
    unsigned long inactive;
    unsigned long active;
    unsigned long disconnected;
    unsigned long dead;
    unsigned long channels;         /* client channels attached now */
    unsigned long subscriptions;    /* upstream: subscriptions made upstream */
    unsigned long updates;          /* values delivered (updates and gets) */
    unsigned long searches;         /* names asked (exists) */
    unsigned long searchesRefused;  /* names refused by a rule (wrappers) */
    unsigned long puts;             /* puts accepted */
    unsigned long putsRefused;      /* puts refused (rights, rules) */
    unsigned long events;           /* upstream: subscription updates received,
                                       once per upstream subscription */
    unsigned long getReplies;       /* upstream: get replies received */
    unsigned long servers;          /* upstream: IOCs (servers) of the connected PVs */
} gwProviderCounters;

/* A PV and how many updates it had (the busiest op). */
#define GW_PV_ACTIVITY_NAME_SIZE 128u
typedef struct gwPvActivity {
    char name[GW_PV_ACTIVITY_NAME_SIZE]; /* cut when longer */
    unsigned long events;
} gwPvActivity;

typedef struct gwProviderOps {
    const char *name; /* for reports: "local", "upstream" */

    /* Registration (optional): the server hands over its callbacks before
     * it calls anything else; unbind (optional) before it forgets the
     * provider: after unbind returns, no callback of the table runs. A
     * provider is bound to one server at a time. */
    void (*bind)(void *provider, const gwServerCallbacks *callbacks, void *server);
    void (*unbind)(void *provider);

    /* Are these names served here for this client? Answer the queries
     * whose answer is still GW_EXISTS_NO (an earlier provider may have
     * answered the others). Must not block. */
    void (*exists)(void *provider, const gwClientIdentity *client,
                   gwExistsQuery *queries, unsigned count);

    /* Optional (NULL: nothing to do). The server has made a series of
     * exists() calls (one request datagram, a search over TCP, a
     * CREATE_CHAN whose name was PENDING): a provider that gathers work
     * started in exists() for a PENDING name (the upstream provider's own
     * searches) sends it now. */
    void (*searchesDone)(void *provider);

    /* Create the channel of one client. NULL when refused (the server then
     * sends CREATE_CH_FAIL). events/serverChannel are kept for callbacks.
     * See deferred() for a channel that is not ready yet. */
    gwProviderChannel *(*attach)(void *provider, const char *pvName,
                                 const gwClientIdentity *client,
                                 const gwChannelEvents *events, void *serverChannel);

    /* Optional (NULL: never). 1 when attach() returned a channel whose
     * source is not connected yet (a PV found upstream whose connection is
     * still being made): the provider calls events->connected exactly
     * once, possibly before attach() returns, and until then the server
     * holds the client's CREATE_CHAN reply and calls nothing but detach()
     * and clientChanged(). The answer does not change for a channel. */
    int (*deferred)(gwProviderChannel *channel);

    /* Release the channel. Its subscriptions are cancelled first by the
     * server. Outstanding gets and puts complete (or fail) before return. */
    void (*detach)(gwProviderChannel *channel);

    /* Native DBR type (DBR_STRING..DBR_DOUBLE) and element count. */
    short (*nativeType)(gwProviderChannel *channel);
    unsigned long (*nativeCount)(gwProviderChannel *channel);

    /* GW_RIGHT_* bits for this channel's client now (per client channel). */
    unsigned (*rights)(gwProviderChannel *channel);

    /* The client sent a new CLIENT_NAME or HOST_NAME: re-evaluate rights
     * (rightsChanged is called when they change). */
    void (*clientChanged)(gwProviderChannel *channel, const gwClientIdentity *client);

    /* Read dbrType x count (0 = current size). Returns ECA_NORMAL when done
     * will be called exactly once (possibly before get returns); otherwise
     * an ECA_* failure and done is not called. */
    int (*get)(gwProviderChannel *channel, short dbrType, unsigned long count,
               gwValueCallback *done, void *user);

    /* Write dbrType x count from value (host order). With done == NULL a
     * plain WRITE: the return value is its status, unless the provider
     * learns of the failure only later (a remote source), then it calls
     * events->writeFailed. With done, a put with completion: ECA_NORMAL
     * means done will be called exactly once. */
    int (*put)(gwProviderChannel *channel, short dbrType, unsigned long count,
               const void *value, gwPutCallback *done, void *user);

    /* Optional (NULL: never known). The value the provider holds now, in
     * whatever DBR type it holds it, without any traffic (the put log's
     * old value): ECA_NORMAL with done called before peek returns, or a
     * failure (nothing held: ECA_DISCONN, ECA_GETFAIL) and done not
     * called. Must not block. */
    int (*peek)(gwProviderChannel *channel, gwValueCallback *done, void *user);

    /* Subscribe to updates of dbrType x count (0 = current size) for the
     * GW_EVENT_* mask. The first update (the current value) is delivered
     * soon after, without waiting for a change. NULL and *ecaStatus set on
     * failure. */
    gwProviderSubscription *(*subscribe)(gwProviderChannel *channel, short dbrType,
                                         unsigned long count, unsigned mask,
                                         gwValueCallback *update, void *user,
                                         int *ecaStatus);

    /* Stop updates; after return none runs or will run. */
    void (*cancel)(gwProviderSubscription *subscription);

    /* Hold / release updates of a subscription (no read access): while
     * held, none is delivered. The server uses it as RSRV uses
     * db_event_disable / db_event_enable. */
    void (*enable)(gwProviderSubscription *subscription, int enabled);

    /* Optional. Print the provider's state to out: level 0 nothing, 1 a
     * summary, 2 and up one line per object. Written from a snapshot taken
     * under the provider's locks and printed after they are released. */
    void (*report)(void *provider, FILE *out, unsigned level);
    /* (optional) The at most max PVs with the most updates received since
     * the previous call, the busiest first: their number. One caller (the
     * statistics thread); must not block the event path. */
    unsigned (*busiest)(void *provider, gwPvActivity *out, unsigned max);

    /* Optional. Fill *counters (zeroed by the caller). Any thread. */
    void (*counters)(void *provider, gwProviderCounters *counters);
} gwProviderOps;

/* A provider instance as registered with the server. */
typedef struct gwProvider {
    const gwProviderOps *ops;
    void *self;   /* the first argument of bind(), exists(), attach(), ... */
} gwProvider;

#ifdef __cplusplus
}
#endif

#endif /* INC_gwProvider_H */
