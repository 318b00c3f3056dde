/* gwServerPriv.h - the server instance as its parts see it (gwServer.c,
 * gwCircuit*.c, gwNameServer.c, gwBeacon.c). Not for providers or iocsh
 * code.
 */
#ifndef INC_gwServerPriv_H
#define INC_gwServerPriv_H

#include <stddef.h>

#include "gwServer.h"

/* Event-path counters: updated with epicsAtomic, read by reports. */
typedef struct gwServerCounters {
    size_t circuitsAccepted;
    size_t requests;
    size_t bytesReceived;
    size_t bytesSent;
    size_t channelsCreated;
    size_t updatesReceived;   /* from providers */
    size_t updatesSent;       /* to clients */
    size_t updatesReplaced;   /* an unsent update overwritten by a newer one */
    size_t updatesDropped;    /* could not be encoded (too large, no memory) */
    size_t circuitSerial;     /* circuits made: each circuit's serial number */
} gwServerCounters;

struct gwCircuit;

/* Largest message a circuit accepts or sends (RSRV's rule: the larger of
 * 16 kB and EPICS_CA_MAX_ARRAY_BYTES plus an extended header). */
size_t gwServerMaxMessage(const gwServer *server);

/* Most queries one gwServerResolve call takes. */
#define GW_SERVER_RESOLVE_MAX 64u

/* Ask the providers in order about count (<= GW_SERVER_RESOLVE_MAX)
 * names for client: the first YES or ELSEWHERE wins; otherwise PENDING
 * when any provider said so, else NO. providers[i] (when providers is not
 * NULL) is the one that answered YES or ELSEWHERE, else NULL. Any server
 * thread; takes no server lock. */
void gwServerResolve(gwServer *server, const gwClientIdentity *client,
                     gwExistsQuery *queries, unsigned count, gwProvider **providers);
/* One name; *provider as above. */
gwExistsAnswer gwServerResolveOne(gwServer *server, const char *pvName,
                                  const gwClientIdentity *client, gwProvider **provider,
                                  struct sockaddr_in *where);
/* Tell every provider that a series of resolutions is over
 * (gwProviderOps.searchesDone). Any thread, no lock held. */
void gwServerSearchesDone(gwServer *server);

/* Circuit registry (any thread). */
void gwServerCircuitAdd(gwServer *server, struct gwCircuit *circuit);
void gwServerCircuitGone(gwServer *server, struct gwCircuit *circuit);

/* The counters of a server. */
gwServerCounters *gwServerGetCounters(gwServer *server);

/* Batched delivery of updates (gwCircuit.c), offered to providers through
 * the gwServerCallbacks table. */
void gwCircuitDeliveryHold(gwDeliveryBatch *batch);
void gwCircuitDeliveryRelease(gwDeliveryBatch *batch);

#endif /* INC_gwServerPriv_H */
