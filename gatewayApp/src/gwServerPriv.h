/* gwServerPriv.h - the server instance as its parts see it (gwServer.c,
 * gwCircuit*.c). Not for providers or iocsh code.
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
} gwServerCounters;

struct gwCircuit;

/* Largest message a circuit accepts or sends (RSRV's rule: the larger of
 * 16 kB and EPICS_CA_MAX_ARRAY_BYTES plus an extended header). */
size_t gwServerMaxMessage(const gwServer *server);

/* Circuit registry (any thread). */
void gwServerCircuitAdd(gwServer *server, struct gwCircuit *circuit);
void gwServerCircuitGone(gwServer *server, struct gwCircuit *circuit);

/* The counters of a server. */
gwServerCounters *gwServerGetCounters(gwServer *server);

#endif /* INC_gwServerPriv_H */
