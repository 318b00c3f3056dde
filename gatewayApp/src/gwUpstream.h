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
    double getCacheTime;      /* seconds: a PV read twice within this time
                                 keeps an upstream subscription for its gets
                                 until none has come for this long; 0: never */
} gwUpstreamConfig;

#define GW_UPSTREAM_CONNECT_TIMEOUT     1.0
#define GW_UPSTREAM_INACTIVE_TIMEOUT 7200.0
#define GW_UPSTREAM_DEAD_TIMEOUT      120.0
#define GW_UPSTREAM_DISCONNECT_TIMEOUT 7200.0
#define GW_UPSTREAM_RECONNECT_INHIBIT 300.0
#define GW_UPSTREAM_GET_CACHE_TIME     10.0

/* The defaults of the Users Guide. */
void gwUpstreamConfigDefaults(gwUpstreamConfig *config);
void gwUpstreamConfigClear(gwUpstreamConfig *config);
/* Parse a classic -mask value ("va", "vlap", ...) into GW_EVENT_* bits.
 * 0 on success, -1 on an unknown letter or an empty mask. */
int gwUpstreamParseMask(const char *text, unsigned *mask);

/* What the provider tells the server, through the gwServerCallbacks
 * table bound to it (gwProvider.h), from libca's threads:
 * - beaconAnomaly: a PV reconnected after a loss (rate-limited by
 *   reconnectInhibit), so clients search again;
 * - namesSettled: PVs answered PENDING have been found or have connected
 *   (the provider serves them now): the waiting searches are answered;
 * - deliveryHold/Release around the updates of one libca callback.
 * Its report (level 1: the counts line and the own searches' counts; 2:
 * also one line per PV and per upstream subscription) and counters (the
 * PV states of the Users Guide) are operations of gwProviderOps.
 * Rights are per client channel: each channel is told its own rights
 * (rightsChanged) and rights() answers what it was told.
 * Its callbacks run with the PV's lock held (gwUpstreamPriv.h): a cancel
 * or detach from another thread waits for the delivery in progress. From
 * inside an update, cancel (of any subscription of the PV) is allowed;
 * detach from inside any of its callbacks is not (it would take the
 * provider's lock under the PV's, against the lock order) -- the server
 * never does either (the lock rule of gwProvider.h). */

/* Create the provider and its client context. NULL (with a message) on
 * failure. The configuration is copied. */
gwProvider *gwUpstreamProviderCreate(const gwUpstreamConfig *config);
/* Drop every PV and the client context. No channel may be attached, and
 * the provider is not bound to a server. */
void gwUpstreamProviderDestroy(gwProvider *provider);

#ifdef __cplusplus
}
#endif

#endif /* INC_gwUpstream_H */
