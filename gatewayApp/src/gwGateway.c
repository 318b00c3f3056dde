/* gwGateway.c - the gateway object: the CA server, its providers, their
 * configuration, the IOC life cycle, reports and counters (gwGateway.h).
 *
 * The providers are made when the server starts, in the order they are
 * asked: the IOC's own records first (a name that is a record is served
 * locally), every other name upstream.
 *
 * Threads: configure/stop/IOC hooks on one thread at a time; report and
 * counters on any thread.
 * Locks: gateway->lock (a leaf for everything but the server's and the
 * providers' start and stop, which run under it) guards the state below.
 * A report or a counter read takes a use of the running server under the
 * lock and works without it; stop waits until no use is left.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <epicsEvent.h>
#include <epicsMutex.h>
#include <errlog.h>

#include "gwGateway.h"
#include "gwLocal.h"
#include "gwLog.h"
#include "gwOptions.h"
#include "gwProviderCall.h"
#include "gwUpstream.h"

enum { GW_LOCAL_INDEX, GW_UPSTREAM_INDEX, GW_GATEWAY_PROVIDERS };

struct gwGateway {
    epicsMutexId lock;
    epicsEventId unused;        /* signalled when uses drops to 0 */
    int iocRunning;             /* the IOC has run (iocInit)          (lock) */
    int iocPaused;              /* iocPause, not yet iocRun           (lock) */
    int configured;             /* a configuration waits or runs      (lock) */
    gwServerConfig serverConfig;     /*                               (lock) */
    gwUpstreamConfig upstreamConfig; /*                               (lock) */
    gwServer *server;           /* running                            (lock) */
    gwProvider *providers[GW_GATEWAY_PROVIDERS]; /* while running     (lock) */
    unsigned uses;              /* reports and readers of the server  (lock) */
};

gwGateway *gwGatewayCreate(void)
{
    gwGateway *gateway = calloc(1, sizeof *gateway);

    if (!gateway)
        return NULL;
    gateway->lock = epicsMutexCreate();
    gateway->unused = epicsEventCreate(epicsEventEmpty);
    if (!gateway->lock || !gateway->unused) {
        if (gateway->lock)
            epicsMutexDestroy(gateway->lock);
        if (gateway->unused)
            epicsEventDestroy(gateway->unused);
        free(gateway);
        return NULL;
    }
    return gateway;
}

/* ---------------------------------------------------------------- start/stop */

static void destroyProviders(gwGateway *gateway)
{
    if (gateway->providers[GW_UPSTREAM_INDEX])
        gwUpstreamProviderDestroy(gateway->providers[GW_UPSTREAM_INDEX]);
    if (gateway->providers[GW_LOCAL_INDEX])
        gwLocalProviderDestroy(gateway->providers[GW_LOCAL_INDEX]);
    memset(gateway->providers, 0, sizeof gateway->providers);
}

static void clearConfiguration(gwGateway *gateway)
{
    gwServerConfigClear(&gateway->serverConfig);
    gwUpstreamConfigClear(&gateway->upstreamConfig);
    gateway->configured = 0;
}

/* Start the server with the configuration (lock held). */
static int startNow(gwGateway *gateway)
{
    gateway->providers[GW_LOCAL_INDEX] =
        gwLocalProviderCreate(gateway->serverConfig.ioThreads); /* 0: default */
    if (!gateway->providers[GW_LOCAL_INDEX]) {
        gwLog(GW_LOG_SERVER, GW_LOG_ERROR, "cannot serve the IOC's records");
        return -1;
    }
    gateway->providers[GW_UPSTREAM_INDEX] = gwUpstreamProviderCreate(&gateway->upstreamConfig);
    if (!gateway->providers[GW_UPSTREAM_INDEX]) {
        destroyProviders(gateway);
        gwLog(GW_LOG_SERVER, GW_LOG_ERROR, "cannot reach upstream IOCs");
        return -1;
    }
    gateway->server = gwServerStart(&gateway->serverConfig, gateway->providers,
                                    GW_GATEWAY_PROVIDERS);
    if (!gateway->server) {
        destroyProviders(gateway);
        gwLog(GW_LOG_SERVER, GW_LOG_ERROR, "the gateway did not start");
        return -1;
    }
    if (gateway->iocPaused)
        gwServerPause(gateway->server, 1);
    gwLog(GW_LOG_SERVER, GW_LOG_INFO, "serving Channel Access on TCP port %u",
          gwServerTcpPort(gateway->server));
    return 0;
}

/* Stop the server once nobody reads it (lock held, and held again on return). */
static void stopNow(gwGateway *gateway)
{
    while (gateway->uses) {
        epicsMutexUnlock(gateway->lock);
        epicsEventMustWait(gateway->unused);
        epicsMutexMustLock(gateway->lock);
    }
    if (gateway->server) {
        gwServerStop(gateway->server);
        gateway->server = NULL;
    }
    destroyProviders(gateway);
}

void gwGatewayStop(gwGateway *gateway)
{
    epicsMutexMustLock(gateway->lock);
    stopNow(gateway);
    if (gateway->configured)
        clearConfiguration(gateway);
    epicsMutexUnlock(gateway->lock);
}

void gwGatewayDestroy(gwGateway *gateway)
{
    if (!gateway)
        return;
    gwGatewayStop(gateway);
    epicsEventDestroy(gateway->unused);
    epicsMutexDestroy(gateway->lock);
    free(gateway);
}

/* ---------------------------------------------------------------- configuration */

/* Parse the options into the two configurations. 0, -1 or GW_GATEWAY_BAD_OPTIONS.
 * What gwStart says about its own arguments (here and in
 * gwGatewayConfigure) is the command's answer, not a log message: it is
 * printed whatever the log levels. */
static int parseOptions(const char *options, int argc, char *const *argv,
                        gwServerConfig *server, gwUpstreamConfig *upstream)
{
    gwOptions parsed;
    int status = GW_GATEWAY_BAD_OPTIONS;

    memset(&parsed, 0, sizeof parsed);
    if (gwOptionsParseString(&parsed, options ? options : "") != 0
        || (argc > 0 && gwOptionsParseArgv(&parsed, argc, argv) != 0)
        || gwOptionsApplyToUpstreamConfig(&parsed, upstream) != 0) {
        errlogPrintf("gwStart: %s\n", parsed.error);
    }
    else if (gwServerConfigFromEnvironment(server) != 0
             || gwOptionsApplyToServerConfig(&parsed, server) != 0) {
        if (parsed.error[0])
            errlogPrintf("gwStart: %s\n", parsed.error);
        status = -1;
    }
    else {
        status = 0;
    }
    gwOptionsClear(&parsed);
    return status;
}

int gwGatewayConfigure(gwGateway *gateway, const char *options, int argc,
                       char *const *argv)
{
    gwServerConfig server;
    gwUpstreamConfig upstream;
    int status;

    memset(&server, 0, sizeof server);
    gwUpstreamConfigDefaults(&upstream);
    status = parseOptions(options, argc, argv, &server, &upstream);
    if (status != 0) {
        gwServerConfigClear(&server);
        gwUpstreamConfigClear(&upstream);
        return status;
    }
    epicsMutexMustLock(gateway->lock);
    if (gateway->configured) {
        errlogPrintf("gwStart: the gateway is already started; gwStop first\n");
        gwServerConfigClear(&server);
        gwUpstreamConfigClear(&upstream);
        status = -1;
    }
    else {
        gateway->serverConfig = server;
        gateway->upstreamConfig = upstream;
        gateway->configured = 1;
        if (!gateway->iocRunning)
            printf("gwStart: the gateway will start when the IOC runs (iocInit)\n");
        else if (startNow(gateway) != 0) {
            clearConfiguration(gateway);
            status = -1;
        }
    }
    epicsMutexUnlock(gateway->lock);
    return status;
}

/* ---------------------------------------------------------------- IOC life cycle */

void gwGatewayIocRunning(gwGateway *gateway)
{
    epicsMutexMustLock(gateway->lock);
    gateway->iocRunning = 1;
    gateway->iocPaused = 0;
    if (gateway->server)
        gwServerPause(gateway->server, 0);
    else if (gateway->configured && startNow(gateway) != 0)
        clearConfiguration(gateway);
    epicsMutexUnlock(gateway->lock);
}

void gwGatewayIocPause(gwGateway *gateway)
{
    epicsMutexMustLock(gateway->lock);
    gateway->iocPaused = 1;
    if (gateway->server)
        gwServerPause(gateway->server, 1);
    epicsMutexUnlock(gateway->lock);
}

/* ---------------------------------------------------------------- reading */

/* The running server, with a use taken (give it back with release), or NULL. */
static gwServer *use(gwGateway *gateway)
{
    gwServer *server;

    epicsMutexMustLock(gateway->lock);
    server = gateway->server;
    if (server)
        gateway->uses++;
    epicsMutexUnlock(gateway->lock);
    return server;
}

static void release(gwGateway *gateway)
{
    int idle;

    epicsMutexMustLock(gateway->lock);
    idle = --gateway->uses == 0;
    epicsMutexUnlock(gateway->lock);
    if (idle)
        epicsEventSignal(gateway->unused);
}

int gwGatewayIsRunning(gwGateway *gateway)
{
    int running;

    epicsMutexMustLock(gateway->lock);
    running = gateway->server != NULL;
    epicsMutexUnlock(gateway->lock);
    return running;
}

void gwGatewayReport(gwGateway *gateway, FILE *out, unsigned level)
{
    gwServer *server = use(gateway);
    unsigned i;

    if (!server) {
        int configured;
        epicsMutexMustLock(gateway->lock);
        configured = gateway->configured;
        epicsMutexUnlock(gateway->lock);
        fprintf(out, "gateway: not running%s\n",
                configured ? " (starts when the IOC runs)" : "");
        return;
    }
    gwServerReport(server, out, level);
    for (i = 0; i < GW_GATEWAY_PROVIDERS; i++)
        gwCallReport(gateway->providers[i], out, level);
    release(gateway);
}

void gwGatewayGetCounters(gwGateway *gateway, gwGatewayCounters *out)
{
    gwServer *server = use(gateway);

    memset(out, 0, sizeof *out);
    if (!server)
        return;
    out->running = 1;
    out->paused = gwServerIsPaused(server);
    gwServerGetStatistics(server, &out->server);
    gwCallCounters(gateway->providers[GW_LOCAL_INDEX], &out->local);
    gwCallCounters(gateway->providers[GW_UPSTREAM_INDEX], &out->upstream);
    release(gateway);
}

void gwGatewayStats(gwGateway *gateway, unsigned *channels, unsigned *clients)
{
    gwServer *server = use(gateway);
    gwServerStatistics statistics;

    memset(&statistics, 0, sizeof statistics);
    if (server) {
        gwServerGetStatistics(server, &statistics);
        release(gateway);
    }
    if (channels)
        *channels = statistics.channels;
    if (clients)
        *clients = statistics.clients;
}
