/* gwGateway.h - the gateway object: one instance owns the CA server, its
 * providers (the IOC's records, the upstream IOCs), their configuration
 * and the way to their counters (gwGateway.c).
 *
 * Everything that acts on the gateway reaches it through this object:
 * the iocsh commands and the IOC's server hooks (gwIoc.c, through
 * gwIocGateway()), the statistics records, reports and the `gateway`
 * command line.
 *
 * Life: configured (gwGatewayConfigure) -> started when the IOC runs
 * (gwGatewayIocRunning), or at once when it already runs -> paused and
 * resumed with the IOC (gwGatewayIocPause) -> stopped (gwGatewayStop),
 * after which it may be configured again.
 *
 * Threads: configure/stop/IOC hooks from one thread at a time (iocsh,
 * iocInit, an exit handler); report and counters from any thread.
 * Locks: gateway->lock guards the state; it is held while the server
 * starts or stops (nothing the server or a provider does takes it) and
 * never while printing: a report holds a use count instead, which stop
 * waits for.
 */
#ifndef INC_gwGateway_H
#define INC_gwGateway_H

#include <stdio.h>

#include "gwProvider.h"
#include "gwServer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gwGateway gwGateway;

/* Status of gwGatewayConfigure when the options do not parse (the usage
 * text is then worth printing). */
#define GW_GATEWAY_BAD_OPTIONS (-2)

/* An idle gateway: not configured, not running. NULL when out of memory. */
gwGateway *gwGatewayCreate(void);
/* Stop it and free it. */
void gwGatewayDestroy(gwGateway *gateway);

/* Take the classic gateway's options: first the words of `options` (may
 * be NULL), then argv[0..argc-1] (no program name; argc may be 0). The
 * server starts at once when the IOC runs, else when it does. 0; -1 (the
 * reason printed: already started, cannot start) or
 * GW_GATEWAY_BAD_OPTIONS (the reason printed), nothing left started. */
int gwGatewayConfigure(gwGateway *gateway, const char *options, int argc,
                       char *const *argv);

/* The IOC runs (iocInit, iocRun): start when configured, resume when paused. */
void gwGatewayIocRunning(gwGateway *gateway);
/* iocPause: the server takes no new circuit, answers no search, sends no
 * beacon, as RSRV when paused. */
void gwGatewayIocPause(gwGateway *gateway);

/* Stop the server and the providers, forget the configuration. */
void gwGatewayStop(gwGateway *gateway);

/* 1 when the server runs now (paused included). */
int gwGatewayIsRunning(gwGateway *gateway);

/* Print the gateway's report: level 0 one line, 1 clients and the
 * providers' summaries, 2 channels and PVs, 3 the access rules too. */
void gwGatewayReport(gwGateway *gateway, FILE *out, unsigned level);

/* What the gateway counts now: the server's statistics and each
 * provider's counters. Any thread; never blocks the event path. */
typedef struct gwGatewayCounters {
    int running;                     /* the server runs */
    int paused;                      /* ... and is paused */
    gwServerStatistics server;
    gwProviderCounters local;        /* the IOC's own records */
    gwProviderCounters upstream;     /* the upstream IOCs' PVs */
} gwGatewayCounters;
void gwGatewayGetCounters(gwGateway *gateway, gwGatewayCounters *out);
/* The traffic of at most max clients (gwServerGetClients); their number
 * (0 when not running). Any thread. */
unsigned gwGatewayGetClients(gwGateway *gateway, gwServerClient *out, unsigned max);
/* The busiest PVs since the previous call (gwProviderOps.busiest), upstream
 * and local; their number. The statistics thread only. */
unsigned gwGatewayBusiest(gwGateway *gateway, gwPvActivity *out, unsigned max);
/* The gateway's statistics (gwStats.h): made with the gateway, sampled
 * from the IOC's start on. */
struct gwStats *gwGatewayStatistics(gwGateway *gateway);

/* ---- reports, the command file, control actions (gwControl.h) ---- */

/* Print report kind: 1 virtual connections (clients, their traffic and
 * channels, the top lists), 2 process variables (by provider, each PV and
 * its state), 3 access security (the rules in force). */
void gwGatewayReportKind(gwGateway *gateway, FILE *out, unsigned kind);
/* Append report kind to the report file (-report, default gateway.report)
 * after a header line "==== <date time> report N: <title> ====".
 * 0, or -1 with the reason printed. */
int gwGatewayReportToFile(gwGateway *gateway, unsigned kind);
/* Run the command file (-command, default gateway.command): lines R1, R2,
 * R3 (reports to the file) and AS (gwGatewayNewAs); blank lines and
 * comments (#) skipped; an unknown line is reported (FILE:LINE) and the
 * others still run. 0, or -1 when a line or the file failed. */
int gwGatewayRunCommandFile(gwGateway *gateway);
struct gwControlRequest;
/* Queue a control action for the gateway's control thread (gwControl.h). */
int gwGatewayRequest(gwGateway *gateway, struct gwControlRequest *request);
/* SIGUSR1 runs the command file, SIGUSR2 writes report 2, from now on. */
int gwGatewayCatchSignals(gwGateway *gateway);

/* ---- the access rules (gwRules.h), kept across stop and start ---- */

/* Install the pvlist of path (NULL: ".* ALLOW"); existing channels are
 * re-checked and the beacon anomaly starts. 0, or -1 with the error
 * printed (FILE:LINE: reason) and the rules in force kept. */
int gwGatewayLoadPvList(gwGateway *gateway, const char *path);
/* The access file (the IOC's): before iocInit its name, after it a reload
 * (of path, NULL: of the same file). 0 or -1 as above. */
int gwGatewayLoadAccess(gwGateway *gateway, const char *path);
/* Reload the pvlist and the access file (the classic newAsFlag). */
int gwGatewayNewAs(gwGateway *gateway);
/* The put log: a file and/or a log server "host:port" (both NULL: none). */
int gwGatewayPutLog(gwGateway *gateway, const char *path, const char *server);
/* What may user on host do with name (gwAsTest)? Printed to out. */
void gwGatewayAsTest(gwGateway *gateway, const char *name, const char *user,
                     const char *host, FILE *out);

/* For dbServer's stats: channels and clients now (0 when not running). */
void gwGatewayStats(gwGateway *gateway, unsigned *channels, unsigned *clients);

#ifdef __cplusplus
}
#endif

#endif /* INC_gwGateway_H */
