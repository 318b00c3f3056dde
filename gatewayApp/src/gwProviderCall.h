/* gwProviderCall.h - how the server calls a provider, and the check of
 * gwProvider.h's lock rule.
 *
 * Every call from the server (and from a wrapper to the provider it
 * wraps) into a provider goes through these functions: each asserts that
 * the calling thread is not inside a callback of a provider, then calls
 * the operation of gwProviderOps. The server marks every entry point it
 * gives a provider (gwChannelEvents, gwValueCallback, gwPutCallback, the
 * gwServerCallbacks table) with GW_CALLBACK_ENTER / GW_CALLBACK_LEAVE.
 *
 * The check is compiled in unless NDEBUG is defined (EPICS builds do not
 * define it); it costs a thread-local counter. Header only: any thread.
 */
#ifndef INC_gwProviderCall_H
#define INC_gwProviderCall_H

#include <assert.h>

#include <caerr.h>

#include "gwProvider.h"

#if !defined(NDEBUG) && defined(__GNUC__)
#define GW_LOCK_RULE_CHECK 1
/* Callbacks of providers the calling thread is inside now (gwServer.c).
 * initial-exec: a plain %fs-relative access on every update rather than a
 * __tls_get_addr call (the library is loaded with the IOC, and 4 bytes fit
 * the static TLS glibc keeps for libraries loaded later too). */
#define GW_TLS_INITIAL_EXEC __attribute__((tls_model("initial-exec")))
extern __thread unsigned gwProviderCallbackDepth GW_TLS_INITIAL_EXEC;
#define GW_CALLBACK_ENTER() (gwProviderCallbackDepth++)
#define GW_CALLBACK_LEAVE() (gwProviderCallbackDepth--)
#define GW_ASSERT_NOT_IN_CALLBACK() \
    assert(gwProviderCallbackDepth == 0 && "a provider was called from its callback")
#else
#define GW_CALLBACK_ENTER() ((void)0)
#define GW_CALLBACK_LEAVE() ((void)0)
#define GW_ASSERT_NOT_IN_CALLBACK() ((void)0)
#endif

static inline void gwCallBind(const gwProvider *p, const gwServerCallbacks *callbacks,
                              void *server)
{
    GW_ASSERT_NOT_IN_CALLBACK();
    if (p->ops->bind)
        p->ops->bind(p->self, callbacks, server);
}

static inline void gwCallUnbind(const gwProvider *p)
{
    GW_ASSERT_NOT_IN_CALLBACK();
    if (p->ops->unbind)
        p->ops->unbind(p->self);
}

static inline void gwCallExists(const gwProvider *p, const gwClientIdentity *client,
                                gwExistsQuery *queries, unsigned count)
{
    GW_ASSERT_NOT_IN_CALLBACK();
    p->ops->exists(p->self, client, queries, count);
}

static inline void gwCallSearchesDone(const gwProvider *p)
{
    GW_ASSERT_NOT_IN_CALLBACK();
    if (p->ops->searchesDone)
        p->ops->searchesDone(p->self);
}

static inline gwProviderChannel *gwCallAttach(const gwProvider *p, const char *pvName,
                                              const gwClientIdentity *client,
                                              const gwChannelEvents *events,
                                              void *serverChannel)
{
    GW_ASSERT_NOT_IN_CALLBACK();
    return p->ops->attach(p->self, pvName, client, events, serverChannel);
}

static inline int gwCallDeferred(const gwProvider *p, gwProviderChannel *channel)
{
    GW_ASSERT_NOT_IN_CALLBACK();
    return p->ops->deferred ? p->ops->deferred(channel) : 0;
}

static inline void gwCallDetach(const gwProvider *p, gwProviderChannel *channel)
{
    GW_ASSERT_NOT_IN_CALLBACK();
    p->ops->detach(channel);
}

static inline short gwCallNativeType(const gwProvider *p, gwProviderChannel *channel)
{
    GW_ASSERT_NOT_IN_CALLBACK();
    return p->ops->nativeType(channel);
}

static inline unsigned long gwCallNativeCount(const gwProvider *p, gwProviderChannel *channel)
{
    GW_ASSERT_NOT_IN_CALLBACK();
    return p->ops->nativeCount(channel);
}

static inline unsigned gwCallRights(const gwProvider *p, gwProviderChannel *channel)
{
    GW_ASSERT_NOT_IN_CALLBACK();
    return p->ops->rights(channel);
}

static inline void gwCallClientChanged(const gwProvider *p, gwProviderChannel *channel,
                                       const gwClientIdentity *client)
{
    GW_ASSERT_NOT_IN_CALLBACK();
    p->ops->clientChanged(channel, client);
}

static inline int gwCallGet(const gwProvider *p, gwProviderChannel *channel, short dbrType,
                            unsigned long count, gwValueCallback *done, void *user)
{
    GW_ASSERT_NOT_IN_CALLBACK();
    return p->ops->get(channel, dbrType, count, done, user);
}

static inline int gwCallPut(const gwProvider *p, gwProviderChannel *channel, short dbrType,
                            unsigned long count, const void *value, gwPutCallback *done,
                            void *user)
{
    GW_ASSERT_NOT_IN_CALLBACK();
    return p->ops->put(channel, dbrType, count, value, done, user);
}

/* ECA_GETFAIL when the provider has no peek. */
static inline int gwCallPeek(const gwProvider *p, gwProviderChannel *channel,
                             gwValueCallback *done, void *user)
{
    GW_ASSERT_NOT_IN_CALLBACK();
    if (!p->ops->peek)
        return ECA_GETFAIL;
    return p->ops->peek(channel, done, user);
}

static inline gwProviderSubscription *gwCallSubscribe(const gwProvider *p,
                                                      gwProviderChannel *channel,
                                                      short dbrType, unsigned long count,
                                                      unsigned mask, gwValueCallback *update,
                                                      void *user, int *ecaStatus)
{
    GW_ASSERT_NOT_IN_CALLBACK();
    return p->ops->subscribe(channel, dbrType, count, mask, update, user, ecaStatus);
}

static inline void gwCallCancel(const gwProvider *p, gwProviderSubscription *subscription)
{
    GW_ASSERT_NOT_IN_CALLBACK();
    p->ops->cancel(subscription);
}

static inline void gwCallEnable(const gwProvider *p, gwProviderSubscription *subscription,
                                int enabled)
{
    GW_ASSERT_NOT_IN_CALLBACK();
    p->ops->enable(subscription, enabled);
}

static inline void gwCallReport(const gwProvider *p, FILE *out, unsigned level)
{
    GW_ASSERT_NOT_IN_CALLBACK();
    if (p->ops->report)
        p->ops->report(p->self, out, level);
}

static inline void gwCallCounters(const gwProvider *p, gwProviderCounters *counters)
{
    GW_ASSERT_NOT_IN_CALLBACK();
    if (p->ops->counters)
        p->ops->counters(p->self, counters);
}

static inline unsigned gwCallBusiest(const gwProvider *p, gwPvActivity *out, unsigned max)
{
    GW_ASSERT_NOT_IN_CALLBACK();
    return p->ops->busiest ? p->ops->busiest(p->self, out, max) : 0u;
}

#endif /* INC_gwProviderCall_H */
