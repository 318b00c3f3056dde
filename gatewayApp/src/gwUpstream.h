/* gwUpstream.h - the upstream provider: PVs of other IOCs, reached with
 * one Channel Access client context (libca), one upstream channel per PV
 * name however many clients use it.
 *
 * Each PV has the states of the classic gateway's Users Guide:
 *   connecting    created by a search; the search gets no answer yet
 *   inactive      connected upstream, no client channel
 *   active        connected upstream, one or more client channels
 *   disconnected  was connected; the upstream IOC went away
 *   dead          did not connect within the connect timeout; searches
 *                 get no answer (the upstream channel keeps searching and
 *                 the PV comes back to life when it connects)
 * Dead PVs are dropped after the dead timeout, inactive ones after the
 * inactive timeout, disconnected ones after the disconnect timeout.
 *
 * Client subscriptions with the same (DBR type, count, event mask) share
 * one upstream subscription made with exactly that key; its last value is
 * cached and answers gets of the same (type, count).
 */
#ifndef INC_gwUpstream_H
#define INC_gwUpstream_H

#include <stdio.h>

#include <ellLib.h>

#include "gwProvider.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gwUpstreamConfig {
    char *addressList;        /* EPICS_CA_ADDR_LIST for upstream; NULL: the environment's */
    unsigned short port;      /* EPICS_CA_SERVER_PORT for upstream; 0: the environment's */
    double connectTimeout;    /* seconds; defaults below */
    double inactiveTimeout;
    double deadTimeout;
    double disconnectTimeout;
    double reconnectInhibit;
    unsigned defaultMask;     /* GW_EVENT_* used for a client's DBE_VALUE|DBE_ALARM */
    int archive;              /* keep DBE_LOG subscriptions separate */
    int noCache;              /* forward every get */
} gwUpstreamConfig;

#define GW_UPSTREAM_CONNECT_TIMEOUT     1.0
#define GW_UPSTREAM_INACTIVE_TIMEOUT 7200.0
#define GW_UPSTREAM_DEAD_TIMEOUT      120.0
#define GW_UPSTREAM_DISCONNECT_TIMEOUT 7200.0
#define GW_UPSTREAM_RECONNECT_INHIBIT 300.0

/* The defaults of the Users Guide. */
void gwUpstreamConfigDefaults(gwUpstreamConfig *config);
void gwUpstreamConfigClear(gwUpstreamConfig *config);
/* Parse a classic -mask value ("va", "vlap", ...) into GW_EVENT_* bits.
 * 0 on success, -1 on an unknown letter or an empty mask. */
int gwUpstreamParseMask(const char *text, unsigned *mask);

/* What the provider tells the server (gwIoc.c wires them):
 * - anomaly: a PV reconnected after a loss (rate-limited by
 *   reconnectInhibit): start the beacon anomaly so clients search again;
 * - settled: PVs answered PENDING have been found or have connected (the
 *   provider serves them now): answer the searches waiting for them.
 * Called from libca's threads without provider locks. */
typedef struct gwUpstreamHooks {
    void (*anomaly)(void *arg);
    void (*settled)(void *arg, const char *const *pvNames, unsigned count);
} gwUpstreamHooks;

/* Create the provider and its client context. NULL (with a message) on
 * failure. The configuration is copied. */
gwProvider *gwUpstreamProviderCreate(const gwUpstreamConfig *config);
/* Set (or with NULL, remove) the server hooks. Removing waits until no
 * hook call is running, so the server may go away afterwards. */
void gwUpstreamSetHooks(gwProvider *provider, const gwUpstreamHooks *hooks, void *arg);
/* Drop every PV and the client context. No channel may be attached. */
void gwUpstreamProviderDestroy(gwProvider *provider);

typedef struct gwUpstreamCounts {
    unsigned connecting, inactive, active, disconnected, dead;
    unsigned upstreamSubscriptions; /* over all PVs */
} gwUpstreamCounts;

void gwUpstreamGetCounts(gwProvider *provider, gwUpstreamCounts *counts);
/* Level 0: nothing; 1: the counts line and the own searches' counts; 2:
 * also one line per PV and one per upstream subscription (type, count,
 * mask, clients). */
void gwUpstreamReport(gwProvider *provider, unsigned level, FILE *out);

#ifdef __cplusplus
}
#endif

#endif /* INC_gwUpstream_H */
