/* gwIoc.c - the gateway inside an IOC: the one gateway object of the IOC,
 * the iocsh commands' entry points, and the IOC's server registration.
 *
 * The gateway registers with the IOC as a server (dbRegisterServer) when
 * the dbd is loaded, so `dbsr`, client attribution and iocInit's run,
 * pause and run-again calls (iocInit, iocPause, iocRun) include it.
 * gwStart before iocInit keeps the configuration and the server starts
 * when the IOC runs; gwStart after iocInit starts at once.
 *
 * State: one pointer, to the gateway object (gwGateway.h), made at
 * registration and never freed while the IOC lives (the exit handler
 * stops it). Threads: gwStart/gwStop on the iocsh thread; run/pause hooks
 * on the iocInit thread; report/stats/client from any thread. No lock of
 * its own: the gateway object has one.
 */
#include <stdio.h>

#include <dbServer.h>
#include <epicsExit.h>
#include <errlog.h>

#include "gwGateway.h"
#include "gwIoc.h"
#include "gwLog.h"

static gwGateway *theGateway;

gwGateway *gwIocGateway(void)
{
    return theGateway;
}

int gwIocStart(const char *options, int argc, char *const *argv)
{
    int status;

    if (!theGateway) {
        errlogPrintf("gwStart: the gateway is not registered (gateway.dbd not loaded?)\n");
        return -1;
    }
    status = gwGatewayConfigure(theGateway, options, argc, argv);
    if (status == 0 && gwGatewayCatchSignals(theGateway) != 0)
        gwLog(GW_LOG_SERVER, GW_LOG_WARNING, "SIGUSR1 and SIGUSR2 will not make reports");
    return status == GW_GATEWAY_BAD_OPTIONS ? GW_IOC_BAD_OPTIONS : status;
}

void gwIocStop(void)
{
    if (theGateway)
        gwGatewayStop(theGateway);
}

void gwIocReport(unsigned level)
{
    if (theGateway)
        gwGatewayReport(theGateway, stdout, level);
    else
        printf("gateway: not registered\n");
}

/* ---------------------------------------------------------------- dbServer */

static void serverRun(void)
{
    gwGatewayIocRunning(theGateway);
}

static void serverPause(void)
{
    gwGatewayIocPause(theGateway);
}

static void serverStats(unsigned *channels, unsigned *clients)
{
    gwGatewayStats(theGateway, channels, clients);
}

static int serverClient(char *buf, size_t size)
{
    return gwServerCurrentClient(buf, size);
}

static void exitHandler(void *unused)
{
    (void)unused;
    gwIocStop();
}

static dbServer gatewayServer = {
    ELLNODE_INIT,
    "gateway",
    gwIocReport,
    serverStats,
    serverClient,
    NULL,   /* init: nothing before the database runs */
    serverRun,
    serverPause,
    NULL,   /* stop: the exit handler stops the gateway */
};

void gwIocRegister(void)
{
    if (theGateway)
        return;
    theGateway = gwGatewayCreate();
    if (!theGateway) {
        gwLog(GW_LOG_SERVER, GW_LOG_ERROR, "out of memory for the gateway object");
        return;
    }
    if (dbRegisterServer(&gatewayServer) != 0)
        gwLog(GW_LOG_SERVER, GW_LOG_ERROR, "cannot register with the IOC (dbRegisterServer)");
    epicsAtExit(exitHandler, NULL);
}
