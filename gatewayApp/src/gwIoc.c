/* gwIoc.c - the gateway inside an IOC: gwStart/gwStop, the IOC's server
 * registration, and the life of the running server.
 *
 * The gateway registers with the IOC as a server (dbRegisterServer) when
 * the dbd is loaded, so `dbsr`, client attribution and iocInit's run/stop
 * calls include it. gwStart before iocInit keeps the configuration and the
 * server starts when the IOC runs; gwStart after iocInit starts at once.
 *
 * Threads: gwStart/gwStop on the iocsh thread; run/stop hooks on the
 * iocInit thread; report/stats/client from any thread.
 * Locks: gwIocLock guards the state below; it is held while the server
 * starts or stops (nothing the server does takes it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dbServer.h>
#include <epicsExit.h>
#include <epicsMutex.h>
#include <epicsThread.h>
#include <errlog.h>

#include "gwCircuit.h"
#include "gwIoc.h"
#include "gwLocal.h"
#include "gwOptions.h"
#include "gwServer.h"
#include "gwUpstream.h"

static epicsMutexId gwIocLock;
static int iocRunning;            /* the IOC has run (dbServer run hook) */
static int startWanted;           /* gwStart was called and not gwStop */
static gwServerConfig wantedConfig;
static gwUpstreamConfig wantedUpstream;
static gwServer *running;
static gwProvider *localProvider;
static gwProvider *upstreamProvider;

static void anomaly(void *server)
{
    gwServerBeaconAnomaly(server);
}

static void settled(void *server, const char *const *pvNames, unsigned count)
{
    gwServerNameSettled(server, pvNames, count);
}

static const gwUpstreamHooks upstreamHooks = { anomaly, settled };

static void destroyProviders(void)
{
    if (upstreamProvider) {
        gwUpstreamProviderDestroy(upstreamProvider);
        upstreamProvider = NULL;
    }
    if (localProvider) {
        gwLocalProviderDestroy(localProvider);
        localProvider = NULL;
    }
}

/* Start the server with the wanted configuration (lock held). The IOC's
 * own records come first: a name that is a record is served locally,
 * every other name upstream. */
static int startNow(void)
{
    gwProvider *providers[2];

    localProvider = gwLocalProviderCreate(wantedConfig.ioThreads); /* 0: default */
    if (!localProvider) {
        errlogPrintf("gwStart: cannot serve the IOC's records\n");
        return -1;
    }
    upstreamProvider = gwUpstreamProviderCreate(&wantedUpstream);
    if (!upstreamProvider) {
        destroyProviders();
        errlogPrintf("gwStart: cannot reach upstream IOCs\n");
        return -1;
    }
    providers[0] = localProvider;
    providers[1] = upstreamProvider;
    running = gwServerStart(&wantedConfig, providers, 2);
    if (!running) {
        destroyProviders();
        errlogPrintf("gwStart: the gateway did not start\n");
        return -1;
    }
    gwUpstreamSetHooks(upstreamProvider, &upstreamHooks, running);
    printf("gwStart: serving Channel Access on TCP port %u\n", gwServerTcpPort(running));
    return 0;
}

static void stopNow(void)
{
    if (upstreamProvider)
        gwUpstreamSetHooks(upstreamProvider, NULL, NULL);
    if (running) {
        gwServerStop(running);
        running = NULL;
    }
    destroyProviders();
}

static void clearWanted(void)
{
    gwServerConfigClear(&wantedConfig);
    gwUpstreamConfigClear(&wantedUpstream);
}

int gwIocStart(const char *options)
{
    gwOptions parsed;
    gwServerConfig config;
    gwUpstreamConfig upstream;
    int status = -1;

    memset(&parsed, 0, sizeof parsed);
    memset(&config, 0, sizeof config);
    gwUpstreamConfigDefaults(&upstream);
    if (gwOptionsParseString(&parsed, options ? options : "") != 0) {
        errlogPrintf("gwStart: %s\n", parsed.error);
        gwOptionsClear(&parsed);
        return GW_IOC_BAD_OPTIONS;
    }
    if (gwOptionsApplyToUpstreamConfig(&parsed, &upstream) != 0) {
        errlogPrintf("gwStart: %s\n", parsed.error);
        gwOptionsClear(&parsed);
        gwUpstreamConfigClear(&upstream);
        return GW_IOC_BAD_OPTIONS;
    }
    if (gwServerConfigFromEnvironment(&config) != 0
        || gwOptionsApplyToServerConfig(&parsed, &config) != 0) {
        if (parsed.error[0])
            errlogPrintf("gwStart: %s\n", parsed.error);
        gwOptionsClear(&parsed);
        gwServerConfigClear(&config);
        gwUpstreamConfigClear(&upstream);
        return -1;
    }
    gwOptionsClear(&parsed);
    epicsMutexMustLock(gwIocLock);
    if (startWanted) {
        errlogPrintf("gwStart: the gateway is already started; gwStop first\n");
        gwServerConfigClear(&config);
        gwUpstreamConfigClear(&upstream);
    }
    else {
        wantedConfig = config;
        wantedUpstream = upstream;
        startWanted = 1;
        status = 0;
        if (iocRunning && startNow() != 0) {
            startWanted = 0;
            status = -1;
        }
        else if (!iocRunning) {
            printf("gwStart: the gateway will start when the IOC runs (iocInit)\n");
        }
        if (status != 0)
            clearWanted();
    }
    epicsMutexUnlock(gwIocLock);
    return status;
}

void gwIocStop(void)
{
    epicsMutexMustLock(gwIocLock);
    stopNow();
    if (startWanted)
        clearWanted();
    startWanted = 0;
    epicsMutexUnlock(gwIocLock);
}

void gwIocReport(unsigned level)
{
    epicsMutexMustLock(gwIocLock);
    if (running) {
        gwServerReport(running, level);
        if (upstreamProvider)
            gwUpstreamReport(upstreamProvider, level, stdout);
    }
    else
        printf("gateway: not running%s\n",
               startWanted ? " (starts when the IOC runs)" : "");
    epicsMutexUnlock(gwIocLock);
}

/* ---------------------------------------------------------------- dbServer */

static void serverRun(void)
{
    epicsMutexMustLock(gwIocLock);
    iocRunning = 1;
    if (startWanted && !running && startNow() != 0) {
        startWanted = 0;
        clearWanted();
    }
    epicsMutexUnlock(gwIocLock);
}

static void serverStats(unsigned *channels, unsigned *clients)
{
    if (channels)
        *channels = 0;
    if (clients)
        *clients = 0;
    epicsMutexMustLock(gwIocLock);
    if (running)
        gwServerStats(running, channels, clients);
    epicsMutexUnlock(gwIocLock);
}

static int serverClient(char *buf, size_t size)
{
    gwCircuit *circuit = gwCircuitCurrent();

    if (!circuit)
        return -1;
    gwCircuitDescribe(circuit, buf, size);
    return 0;
}

static void exitHandler(void *unused)
{
    (void)unused;
    gwIocStop();
}

static dbServer gatewayServer;

void gwIocRegister(void)
{
    if (gwIocLock)
        return;
    gwIocLock = epicsMutexMustCreate();
    gatewayServer.name = "gateway";
    gatewayServer.report = gwIocReport;
    gatewayServer.stats = serverStats;
    gatewayServer.client = serverClient;
    gatewayServer.run = serverRun;
    if (dbRegisterServer(&gatewayServer) != 0)
        errlogPrintf("gateway: cannot register with the IOC (dbRegisterServer)\n");
    epicsAtExit(exitHandler, NULL);
}
