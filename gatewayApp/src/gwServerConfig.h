/* gwServerConfig.h - the settings of one CA server instance and their
 * parsing (gwServerConfig.c): from the EPICS_CAS_* / EPICS_CA_* environment
 * the way RSRV reads it, and address lists and ports from option text.
 *
 * No threads, no locks, no global state: a gwServerConfig belongs to its
 * caller until gwServerStart takes its lists over.
 */
#ifndef INC_gwServerConfig_H
#define INC_gwServerConfig_H

#include <stddef.h>

#include <ellLib.h>

#ifdef __cplusplus
extern "C" {
#endif

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

#ifdef __cplusplus
}
#endif

#endif /* INC_gwServerConfig_H */
