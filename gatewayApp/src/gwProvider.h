/* gwProvider.h - the interface between the CA server and the sources of PVs.
 *
 * The server (gwServer.c, gwCircuit.c, gwNameServer.c) knows nothing of where
 * a PV comes from: it asks the providers registered with it, in order. The
 * local provider (gwLocal.c) serves the IOC's own records; the upstream
 * provider (the gateway proper) serves PVs of other IOCs.
 *
 * Values cross this interface in HOST byte order, laid out exactly as the
 * DBR type says (db_access.h: dbr_size_n(type, count) bytes). The server
 * converts to network order itself; a provider never does.
 *
 * Threads and locks:
 * - The server calls every operation from its own threads (I/O threads,
 *   name-resolution thread) and NEVER while holding a lock of its own, so a
 *   provider may call back into the server from inside an operation (a
 *   synchronous get calls `done` before it returns).
 * - A provider calls the server's callbacks (gwValueCallback, gwPutCallback,
 *   gwChannelEvents) from any thread, and never while holding a provider
 *   lock that one of its own operations would take: the server may call
 *   back into the provider from a callback (e.g. cancel from an update).
 * - After detach() / cancel() return, the provider makes no further call for
 *   that channel / subscription, and none is still running.
 */
#ifndef INC_gwProvider_H
#define INC_gwProvider_H

#include <stddef.h>

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
    GW_EXISTS_PENDING   /* may be here later: no answer now, the client repeats */
} gwExistsAnswer;

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

typedef struct gwProviderChannel gwProviderChannel;           /* a provider's, opaque */
typedef struct gwProviderSubscription gwProviderSubscription; /* a provider's, opaque */

typedef struct gwProviderOps {
    const char *name; /* for reports: "local", "upstream" */

    /* Is pvName served here for this client? Must not block. */
    gwExistsAnswer (*exists)(void *provider, const char *pvName,
                             const gwClientIdentity *client);

    /* Create the channel of one client. NULL when refused (the server then
     * sends CREATE_CH_FAIL). events/serverChannel are kept for callbacks.
     * See deferred() for a channel that is not ready yet. */
    gwProviderChannel *(*attach)(void *provider, const char *pvName,
                                 const gwClientIdentity *client,
                                 const gwChannelEvents *events, void *serverChannel);

    /* Release the channel. Its subscriptions are cancelled first by the
     * server. Outstanding gets and puts complete (or fail) before return. */
    void (*detach)(gwProviderChannel *channel);

    /* Native DBR type (DBR_STRING..DBR_DOUBLE) and element count. */
    short (*nativeType)(gwProviderChannel *channel);
    unsigned long (*nativeCount)(gwProviderChannel *channel);

    /* GW_RIGHT_* bits for this channel's client now. */
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

    /* Optional (NULL: never). 1 when attach() returned a channel whose
     * source is not connected yet (a PV found upstream whose connection is
     * still being made): the provider calls events->connected exactly
     * once, possibly before attach() returns, and until then the server
     * holds the client's CREATE_CHAN reply and calls nothing but detach()
     * and clientChanged(). The answer does not change for a channel. */
    int (*deferred)(gwProviderChannel *channel);

    /* Optional (NULL: nothing to do). The server has made a series of
     * exists() calls (the searches of one request datagram, a search over
     * TCP, a CREATE_CHAN whose name was PENDING): a provider that gathers
     * work started in exists() for a PENDING name (the upstream provider's
     * own searches) sends it now. Any server thread, no server lock held. */
    void (*searchesDone)(void *provider);
} gwProviderOps;

/* A provider instance as registered with the server. */
typedef struct gwProvider {
    const gwProviderOps *ops;
    void *self;   /* the first argument of exists() and attach() */
} gwProvider;

#ifdef __cplusplus
}
#endif

#endif /* INC_gwProvider_H */
