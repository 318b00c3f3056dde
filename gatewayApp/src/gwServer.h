/* gwServer.h - the CA server instance: configuration, providers, and the
 * internal interface between its parts.
 *
 * Parts (one file each):
 *   gwServer.c      start/stop, providers, circuit registry, dbRegisterServer
 *   gwIoLoop.c      the poll-based I/O threads (a small fixed number)
 *   gwCircuit.c     TCP circuits: requests, channels, subscriptions, queues
 *   gwNameServer.c  UDP name resolution (search requests and replies)
 *   gwBeacon.c      beacons and the beacon anomaly sequence
 *   gwOptions.c     the option parser shared by gwStart and `gateway`
 *
 * Who calls what: gwServerStart/gwServerStop from the iocsh thread (or an
 * exit handler); gwServerFindProvider from any server thread; the rest as
 * each function says.
 *
 * Lock order (outermost first): gwServer.lock, then one gwCircuit lock.
 * No server lock is held while calling a provider (see gwProvider.h).
 */
#ifndef INC_gwServer_H
#define INC_gwServer_H

#include <stddef.h>

#include <ellLib.h>
#include <epicsTypes.h>
#include <osiSock.h>

#include "gwProvider.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GW_SERVER_MAX_PROVIDERS 4
#define GW_SERVER_DEFAULT_IO_THREADS 2
#define GW_SERVER_DEFAULT_SEND_TIMEOUT 30.0

/* Settings of one server instance. Address lists are ELLLISTs of
 * osiSockAddrNode (addrList.h), addresses in network order. */
typedef struct gwServerConfig {
    ELLLIST interfaces;        /* where to listen: -sip / EPICS_CAS_INTF_ADDR_LIST;
                                  empty = INADDR_ANY; multicast entries = groups to join */
    unsigned short port;       /* -sport / EPICS_CAS_SERVER_PORT (UDP and TCP) */
    ELLLIST ignoreAddresses;   /* -signore / EPICS_CAS_IGNORE_ADDR_LIST */
    ELLLIST beaconAddresses;   /* EPICS_CAS_BEACON_ADDR_LIST, else EPICS_CA_ADDR_LIST */
    int autoBeaconAddresses;   /* EPICS_CAS_AUTO_BEACON_ADDR_LIST, else
                                  EPICS_CA_AUTO_ADDR_LIST: gwBeaconStart adds the
                                  broadcast addresses of the interfaces (of all
                                  interfaces when listening on INADDR_ANY) */
    unsigned short beaconPort; /* EPICS_CAS_BEACON_PORT / EPICS_CA_REPEATER_PORT */
    double beaconPeriod;       /* EPICS_CAS_BEACON_PERIOD, seconds */
    size_t maxArrayBytes;      /* EPICS_CA_MAX_ARRAY_BYTES */
    unsigned ioThreads;        /* number of I/O threads */
    double sendTimeout;        /* close a circuit whose output has not moved
                                  for this long, seconds (-send_timeout) */
} gwServerConfig;

typedef struct gwServer gwServer;
typedef struct gwNameServer gwNameServer;
typedef struct gwBeacon gwBeacon;

/* Fill config from the EPICS_CAS_* / EPICS_CA_* environment, the way
 * RSRV reads it. Returns 0, or -1 with a message printed. */
int gwServerConfigFromEnvironment(gwServerConfig *config);
/* Free the lists of a config. */
void gwServerConfigClear(gwServerConfig *config);
/* Append the addresses of text ("a.b.c.d[:port] host[:port] ...", separated
 * by spaces or commas) to list, duplicates removed; defaultPort (host
 * order) where an entry has none. Returns 0, or -1 with a message naming
 * `what` (e.g. "-sip", "EPICS_CAS_INTF_ADDR_LIST") in error[errorSize] and
 * list unchanged. Any thread. */
int gwServerConfigParseAddresses(ELLLIST *list, const char *text,
                                 unsigned short defaultPort, const char *what,
                                 char *error, size_t errorSize);
/* Parse a port number 1..65535. Returns 0, or -1 leaving *port alone. */
int gwServerConfigParsePort(const char *text, unsigned short *port);
/* Copy the nodes of src to the end of dst; port 0 becomes defaultPort.
 * Returns 0, or -1 when out of memory (dst unchanged). */
int gwServerConfigCopyAddresses(ELLLIST *dst, const ELLLIST *src,
                                unsigned short defaultPort);

/* Create and start a server (takes over config's lists). The providers are
 * asked in the order given. NULL, with the reason printed, on failure (for
 * example when the port is taken by the IOC's own RSRV). */
gwServer *gwServerStart(gwServerConfig *config, gwProvider *const *providers,
                        unsigned nProviders);
/* Stop everything the server started and free it. */
void gwServerStop(gwServer *server);

/* Ask the providers in order whether pvName exists for client. On YES,
 * *provider (if given) is the one that said so. Any server thread; takes
 * no server lock. */
gwExistsAnswer gwServerFindProvider(gwServer *server, const char *pvName,
                                    const gwClientIdentity *client,
                                    gwProvider **provider);

/* The configuration in force (read-only after start). */
const gwServerConfig *gwServerGetConfig(const gwServer *server);
/* The TCP port actually listened on (network order is NOT used: host order). */
unsigned short gwServerTcpPort(const gwServer *server);

/* Number of channels and clients (circuits) now. Any thread. */
void gwServerStats(gwServer *server, unsigned *channels, unsigned *clients);

/* Start the beacon anomaly sequence (fast beacons, so clients search
 * again at once). Any thread. */
void gwServerBeaconAnomaly(gwServer *server);
/* Names a provider answered PENDING are settled (it serves them now):
 * answer the waiting searches (gwNameServerSettled). Any thread, no
 * provider lock held. */
void gwServerNameSettled(gwServer *server, const char *const *names, unsigned count);

/* Tell every provider that a series of exists() calls is over
 * (gwProviderOps.searchesDone). Any thread, no lock held. */
void gwServerSearchesDone(gwServer *server);

/* Print a report (level 0: one line; 1: circuits; 2: channels). */
void gwServerReport(const gwServer *server, unsigned level);

/* ---- name resolution (gwNameServer.c) ----
 * One UDP socket per configured interface (INADDR_ANY when none), bound to
 * config->port with SO_REUSEADDR, joining the multicast groups of the
 * interface list; searches from ignoreAddresses are dropped. Answers go
 * back to the sender, several per datagram. Runs its own thread(s). */
gwNameServer *gwNameServerStart(gwServer *server);
void gwNameServerStop(gwNameServer *names);
/* A provider settled names it answered PENDING and now serves them (to
 * any client): the searches waiting for them are answered, the answers to
 * one client packed into as few datagrams as its searches came in. Any
 * thread, no lock. */
void gwNameServerSettled(gwNameServer *names, const char *const *settled, unsigned count);

/* What the name server has seen so far (for reports and statistics). */
typedef struct gwNameServerCounters {
    unsigned long datagrams;   /* received, ignored ones included */
    unsigned long ignored;     /* dropped: source in ignoreAddresses */
    unsigned long malformed;   /* datagrams whose processing stopped at a bad message */
    unsigned long searches;    /* SEARCH messages decoded */
    unsigned long answered;    /* SEARCH replies sent */
    unsigned long replyDatagrams; /* reply datagrams sent */
} gwNameServerCounters;
/* Any thread; the counters are read one by one, not as a snapshot. */
void gwNameServerGetCounters(const gwNameServer *names, gwNameServerCounters *out);

/* ---- beacons (gwBeacon.c) ----
 * Sends RSRV_IS_UP to every beacon address every beaconPeriod, starting
 * with the fast sequence (0.02 s, doubling up to the period). */
gwBeacon *gwBeaconStart(gwServer *server);
/* Start the fast sequence again (upstream reconnects, access reloads). Any thread. */
void gwBeaconAnomaly(gwBeacon *beacon);
void gwBeaconStop(gwBeacon *beacon);

#ifdef __cplusplus
}
#endif

#endif /* INC_gwServer_H */
