/* gwWrapper.h - a provider in front of another one (gwProvider.h: providers
 * stack). It sees every name, identity, attach, get, put and subscription
 * of the provider it wraps, may rename a client's name (an alias), refuse
 * a name to a client, or narrow a client channel's rights, and passes the
 * rest on unchanged: exists answers (ELSEWHERE and its address included),
 * deferred attaches, completions, the exact event mask, cancel, enable.
 * The pvlist and access rules are built on it; gwProviderConformanceTest
 * runs the provider conformance checks through it.
 *
 * Who may call what, from which thread:
 * - gwWrapperCreate / gwWrapperDestroy: any thread, not from a callback;
 *   destroy once the wrapper is unbound and no channel is attached. The
 *   inner provider outlives the wrapper and is not destroyed with it.
 * - The server calls the operations as gwProvider.h says; the wrapper
 *   calls the inner provider through gwProviderCall.h, on the same thread,
 *   with no lock of its own held.
 * - The policy's hooks run on the server's threads (exists, attach, rights,
 *   clientChanged, put) and on the inner provider's threads (its
 *   rightsChanged, with the inner provider's locks held): they must be
 *   quick, must not block and must not call a provider.
 *
 * Limits: allow() is asked at exists(), attach() and gwWrapperRecheck()
 * only (a client that changes its name keeps its channels; the rights are
 * asked again). The
 * names a renamed PENDING answer waits for are remembered for the inner
 * provider's namesSettled (mapped back to the client's names), at most
 * GW_WRAPPER_PENDING_MAX of them: beyond that the oldest is forgotten and
 * its search is answered at the client's next search instead.
 */
#ifndef INC_gwWrapper_H
#define INC_gwWrapper_H

#include <stddef.h>

#include "gwProvider.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GW_WRAPPER_NAME_SIZE 1024     /* the longest inner name + 1 */
#define GW_WRAPPER_PENDING_MAX 1024

typedef struct gwWrapperChannelPolicy gwWrapperChannelPolicy; /* below */

typedef struct gwWrapperPolicy {
    const char *name;  /* for reports; NULL: "wrapper" */
    void *arg;         /* the first argument of each hook */

    /* Optional (NULL: names pass unchanged). The inner provider's name for
     * a client's pvName: write it into innerName (size bytes) and return
     * 1, or return 0 to keep the name. */
    int (*rename)(void *arg, const char *pvName, char *innerName, size_t size);

    /* Optional (NULL: all allowed). 0 refuses the client's name: exists
     * answers NO and attach fails (counted as searchesRefused). */
    int (*allow)(void *arg, const char *pvName, const gwClientIdentity *client);

    /* Optional (NULL: the inner rights). The rights the client's channel
     * gets from the inner provider's `rights` (normally a subset). A put
     * without GW_RIGHT_WRITE is refused with ECA_NOWTACCESS (counted as
     * putsRefused), a get without GW_RIGHT_READ with ECA_NORDACCESS. */
    unsigned (*narrowRights)(void *arg, const char *pvName, const gwClientIdentity *client,
                             unsigned rights);

    /* Optional (NULL: no per-channel state). Copied with the policy. */
    const gwWrapperChannelPolicy *channel;
} gwWrapperPolicy;

/* ---- per-channel policies (the access rules): a policy may keep state
 * for each client channel, change its rights at any time, take part in a
 * recheck of every channel, and see each put the rights let through. ---- */

/* The wrapper's channel, as a policy sees it (gwWrapperRightsChanged). */
typedef struct gwProviderChannel gwWrapperChannel;

struct gwWrapperChannelPolicy {
    /* The client's channel to pvName (renamed innerName) is made, before
     * the inner attach: 0 and *state set, or non-zero to refuse it. The
     * policy may call gwWrapperRightsChanged(handle) from now on (calls
     * before the server has asked the rights are ignored). */
    int (*open)(void *arg, const char *pvName, const char *innerName,
                const gwClientIdentity *client, gwWrapperChannel *handle, void **state);
    /* The channel is gone (after the inner detach): no more
     * gwWrapperRightsChanged for its handle once close returns. */
    void (*close)(void *arg, void *state);
    /* The rights of the channel from the inner ones (instead of
     * gwWrapperPolicy.narrowRights). Under the channel's lock: quick, no
     * lock of asLib's or a provider's. */
    unsigned (*rights)(void *arg, void *state, unsigned innerRights);
    /* The client sent a new CLIENT_NAME or HOST_NAME (before the rights
     * are asked again). No wrapper lock held. */
    void (*clientChanged)(void *arg, void *state, const gwClientIdentity *client);
    /* gwWrapperRecheck: the rules may have changed. 1 keeps the channel
     * (its rights are asked again after), 0 disconnects it. The wrapper's
     * list lock is held: no call into the wrapper or a provider. */
    int (*recheck)(void *arg, void *state, const char *pvName,
                   const gwClientIdentity *client);
    /* Is a put on this channel logged? When 1 for an allowed put, the
     * wrapper reads the old value from the inner provider's peek (no
     * traffic) and, once the inner put has accepted the write, calls
     * logPut with both (old value NULL when unknown). */
    int (*tracesPut)(void *arg, void *state);
    void (*logPut)(void *arg, void *state, const gwClientIdentity *client,
                   const char *pvName, short dbrType, unsigned long count,
                   const void *value, short oldType, unsigned long oldCount,
                   const void *oldValue);
};

/* The policy's rights for handle's channel may have changed: ask them
 * again and tell the server when they did. Any thread, any lock of the
 * policy's or asLib's held (it takes the channel's leaf lock). */
void gwWrapperRightsChanged(gwWrapperChannel *handle);

/* Ask the policy about every attached channel again: a name no longer
 * allowed or renamed to another inner name, or one the channel policy's
 * recheck refuses, is disconnected (the server sends SERVER_DISCONN); the
 * rights of the others are asked again and told when they changed.
 * Returns the number of channels disconnected. Not from a callback. */
unsigned gwWrapperRecheck(gwProvider *wrapper);

/* A wrapper over inner with a copy of *policy (NULL: pass everything).
 * NULL when out of memory. */
gwProvider *gwWrapperCreate(const gwProvider *inner, const gwWrapperPolicy *policy);
/* NULL is ignored. */
void gwWrapperDestroy(gwProvider *wrapper);

#ifdef __cplusplus
}
#endif

#endif /* INC_gwWrapper_H */
