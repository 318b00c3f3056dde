/* gwServer.h - the CA server instance: start and stop, its providers, the
 * IOC life cycle (pause/run), reports and counters.
 *
 * Parts (one file each, each with a header of its own):
 *   gwServer.c        start/stop, providers, circuit registry, pause/run
 *   gwServerConfig.c  settings from the environment and option text
 *   gwIoLoop.c        the poll-based I/O threads (a small fixed number)
 *   gwCircuit*.c      TCP circuits: requests, channels, subscriptions, queues
 *   gwNameServer.c    UDP name resolution (search requests and replies)
 *   gwBeacon.c        beacons and the beacon anomaly sequence
 *
 * Who calls what: gwServerStart/gwServerStop/gwServerPause from one thread
 * at a time (the gateway object's owner: iocsh, iocInit's hooks, an exit
 * handler); the rest from any thread as each function says.
 *
 * Lock order (outermost first): gwServer.lock, then one gwCircuit lock.
 * No server lock is held while calling a provider (gwProvider.h).
 */
#ifndef INC_gwServer_H
#define INC_gwServer_H

#include <stddef.h>
#include <stdio.h>

#include "gwProvider.h"
#include "gwServerConfig.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GW_SERVER_MAX_PROVIDERS 4

typedef struct gwServer gwServer;

/* Create and start a server (takes over config's lists). The providers are
 * asked in the order given; each is bound to the server (bind) before the
 * first client can come. NULL, with the reason printed, on failure (for
 * example when the port is taken by the IOC's own RSRV). */
gwServer *gwServerStart(gwServerConfig *config, gwProvider *const *providers,
                        unsigned nProviders);
/* Stop everything the server started, unbind the providers and free it. */
void gwServerStop(gwServer *server);

/* Pause (1) or run (0): paused, no new circuit is accepted, searches are
 * not answered and no beacon is sent; circuits already open go on, as
 * with RSRV under iocPause. */
void gwServerPause(gwServer *server, int paused);
int gwServerIsPaused(const gwServer *server);
/* Start the beacon anomaly sequence (clients search again at once), e.g.
 * after the access rules changed. Any thread. */
void gwServerBeaconAnomaly(gwServer *server);

/* The configuration in force (read-only after start). */
const gwServerConfig *gwServerGetConfig(const gwServer *server);
/* The TCP port actually listened on (host order). */
unsigned short gwServerTcpPort(const gwServer *server);

/* What the server counts (for reports and the statistics records): a
 * snapshot of atomics and the circuit list, never blocking the event path. */
typedef struct gwServerStatistics {
    unsigned clients;          /* circuits open now */
    unsigned channels;         /* client channels now */
    unsigned long circuitsAccepted;
    unsigned long requests;
    unsigned long bytesReceived;
    unsigned long bytesSent;
    unsigned long channelsCreated;
    unsigned long updatesReceived;   /* from providers */
    unsigned long updatesSent;       /* to clients */
    unsigned long updatesReplaced;   /* an unsent update overwritten by a newer one */
    unsigned long updatesDropped;    /* could not be encoded (too large, no memory) */
    unsigned long searchDatagrams;   /* UDP datagrams received */
    unsigned long searches;          /* SEARCH messages over UDP */
    unsigned long searchesAnswered;
    unsigned long loopPasses;        /* poll() calls of all I/O loops */
} gwServerStatistics;
/* Any thread; takes only the server's lock, which the event path never takes. */
void gwServerGetStatistics(gwServer *server, gwServerStatistics *out);

/* One client circuit's traffic since it was accepted (statistics). */
#define GW_SERVER_CLIENT_NAME_SIZE 128u
typedef struct gwServerClient {
    unsigned long serial;            /* unique among the server's circuits */
    char name[GW_SERVER_CLIENT_NAME_SIZE]; /* "user@host" ("@address" before it says) */
    char peer[64];                   /* "address:port" */
    unsigned channels;
    unsigned long updatesSent;
    unsigned long updatesReplaced;   /* updates overwritten before they were sent */
    unsigned long bytesSent;
    unsigned long bytesReceived;
    unsigned fill;                   /* % of its queue in use (gwCircuitTraffic) */
} gwServerClient;
/* The traffic of at most max clients into out; the number of clients now
 * (may be more than max). Any thread; takes no lock of the event path. */
unsigned gwServerGetClients(gwServer *server, gwServerClient *out, unsigned max);

/* Print a report to out (level 0: one line; 1: counters and circuits; 2:
 * channels), from a snapshot: nothing is printed with a lock held. */
void gwServerReport(gwServer *server, FILE *out, unsigned level);

/* "user@host" of the client whose request the calling thread is handling
 * (any server's), for the IOC's client identification (dbServer, asTrap
 * listeners): 0, or -1 when the thread handles no client's request. */
int gwServerCurrentClient(char *buf, size_t size);

#ifdef __cplusplus
}
#endif

#endif /* INC_gwServer_H */
