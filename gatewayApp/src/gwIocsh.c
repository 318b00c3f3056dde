/* gwIocsh.c - the module's iocsh commands and their registration.
 *
 * Each command checks its arguments, prints its own usage when called
 * wrongly, and hands the work to the file that owns it. Entered from the
 * iocsh thread only; takes no locks of its own.
 */
#include <stdio.h>
#include <string.h>

#include <epicsExport.h>
#include <errlog.h>
#include <iocsh.h>

#include "gwIoc.h"
#include "gwLog.h"
#include "gwOptions.h"
#include "gwRelay.h"
#include "gwVersion.h"

#ifdef IOCSHFUNCDEF_HAS_USAGE
#define GW_USAGE(text) , text
#else
#define GW_USAGE(text)
#endif

static void gwVersionCall(const iocshArgBuf *args)
{
    char line[128];

    (void)args;
    gwVersionFormat(line, sizeof line);
    printf("%s\n", line);
}

static const iocshFuncDef gwVersionDef = {
    "gwVersion", 0, NULL
    GW_USAGE("gwVersion\n"
             "  Print the gateway module's version and the EPICS Base it was built against.\n")
};

static const iocshArg gwStartArg0 = { "options", iocshArgString };
static const iocshArg *const gwStartArgs[] = { &gwStartArg0 };
static const iocshFuncDef gwStartDef = {
    "gwStart", 1, gwStartArgs
    GW_USAGE("gwStart \"<options>\"\n"
             "  Start the gateway's CA server (at iocInit when called before it).\n"
             "  Options use the classic gateway's names, e.g. \"-sip 127.0.0.1 -sport 5070\".\n")
};

static void gwStartCall(const iocshArgBuf *args)
{
    int status = gwIocStart(args[0].sval, 0, NULL);

    if (status == GW_IOC_BAD_OPTIONS) {
        printf("usage: gwStart \"<options>\"; options:\n");
        gwOptionsUsage(stdout);
    }
    if (status != 0)
        iocshSetError(1);
}

static const iocshFuncDef gwStopDef = {
    "gwStop", 0, NULL
    GW_USAGE("gwStop\n"
             "  Stop the gateway's CA server and close every client circuit.\n")
};

static void gwStopCall(const iocshArgBuf *args)
{
    (void)args;
    gwIocStop();
}

static const iocshArg gwReportArg0 = { "level", iocshArgInt };
static const iocshArg *const gwReportArgs[] = { &gwReportArg0 };
static const iocshFuncDef gwReportDef = {
    "gwReport", 1, gwReportArgs
    GW_USAGE("gwReport [level]\n"
             "  Print the gateway's state: 0 one line, 1 clients, 2 channels,\n"
             "  3 the access rules too.\n")
};

static void gwReportCall(const iocshArgBuf *args)
{
    unsigned level = args[0].ival < 0 ? 0u : (unsigned)args[0].ival;

    gwIocReport(level);
    gwRelayReport(stdout, level);
}

static const iocshArg gwRelayArg0 = { "listen", iocshArgString };
static const iocshArg gwRelayArg1 = { "forward", iocshArgString };
static const iocshArg gwRelayArg2 = { "rate", iocshArgDouble };
static const iocshArg *const gwRelayArgs[] = { &gwRelayArg0, &gwRelayArg1, &gwRelayArg2 };
static const iocshFuncDef gwRelayDef = {
    "gwRelay", 3, gwRelayArgs
    GW_USAGE("gwRelay \"<listen addresses>\" [\"<forward addresses>\"] [rate]\n"
             "  Start the search relay: unicast searches to the listen addresses (this\n"
             "  host's own, port 5064 by default) go to the forward addresses (default\n"
             "  127.255.255.255), where every IOC of the host answers; the answers go\n"
             "  back with each IOC's own TCP port. rate: names/s per client (0: 5000).\n")
};

static void gwRelayCall(const iocshArgBuf *args)
{
    if (!args[0].sval || !*args[0].sval) {
        printf("usage: gwRelay \"<listen addresses>\" [\"<forward addresses>\"] [rate]\n"
               "  e.g. gwRelay \"<this host's address> 127.0.0.1\" \"127.255.255.255\"\n");
        iocshSetError(1);
        return;
    }
    if (gwRelayStart(args[0].sval, args[1].sval, args[2].dval) != 0)
        iocshSetError(1);
}

static const iocshFuncDef gwRelayStopDef = {
    "gwRelayStop", 0, NULL
    GW_USAGE("gwRelayStop\n"
             "  Stop the search relay.\n")
};

static void gwRelayStopCall(const iocshArgBuf *args)
{
    (void)args;
    gwRelayStop();
}

static const iocshArg gwReportFileArg0 = { "report", iocshArgInt };
static const iocshArg *const gwReportFileArgs[] = { &gwReportFileArg0 };
static const iocshFuncDef gwReportFileDef = {
    "gwReportFile", 1, gwReportFileArgs
    GW_USAGE("gwReportFile report\n"
             "  Append a report to the report file (gwStart -report, default gateway.report):\n"
             "  1 virtual connections, 2 process variables, 3 access security.\n")
};

static void gwReportFileCall(const iocshArgBuf *args)
{
    gwGateway *gateway = gwIocGateway();

    if (args[0].ival < 1 || args[0].ival > 3) {
        printf("usage: gwReportFile 1|2|3 (virtual connections, process variables, "
               "access security)\n");
        iocshSetError(1);
        return;
    }
    if (!gateway || gwGatewayReportToFile(gateway, (unsigned)args[0].ival) != 0)
        iocshSetError(1);
}

static const iocshArg gwLogLevelArg0 = { "area", iocshArgString };
static const iocshArg gwLogLevelArg1 = { "level", iocshArgString };
static const iocshArg *const gwLogLevelArgs[] = { &gwLogLevelArg0, &gwLogLevelArg1 };
static const iocshFuncDef gwLogLevelDef = {
    "gwLogLevel", 2, gwLogLevelArgs
    GW_USAGE("gwLogLevel [area|all] [level]\n"
             "  Print or set the level of the gateway's log areas.\n"
             "  Areas: server circuit names beacon upstream search local relay (all: every one).\n"
             "  Levels: error warning info debug. No arguments: print every area's level.\n")
};

static void printLogLevel(unsigned area)
{
    printf("  %-9s %s\n", gwLogAreaName((gwLogArea)area),
           gwLogLevelName(gwLogGetLevel((gwLogArea)area)));
}

static void gwLogLevelUsage(void)
{
    unsigned i;

    printf("usage: gwLogLevel [area|all] [level]; areas:");
    for (i = 0; i < GW_LOG_AREAS; i++)
        printf(" %s", gwLogAreaName((gwLogArea)i));
    printf("; levels:");
    for (i = 0; i < GW_LOG_LEVELS; i++)
        printf(" %s", gwLogLevelName((gwLogLevel)i));
    printf("\n");
    iocshSetError(1);
}

static void gwLogLevelCall(const iocshArgBuf *args)
{
    const char *area = args[0].sval, *level = args[1].sval;
    int all = area && strcmp(area, "all") == 0;
    int which = area && !all ? gwLogAreaFind(area) : -1;
    unsigned i;

    if (area && !all && which < 0) {
        printf("gwLogLevel: unknown area '%s'\n", area);
        gwLogLevelUsage();
    }
    else if (level && gwLogSetByName(area, level) != 0) {
        printf("gwLogLevel: unknown level '%s'\n", level);
        gwLogLevelUsage();
    }
    else if (which >= 0) {
        printLogLevel((unsigned)which);
    }
    else {
        for (i = 0; i < GW_LOG_AREAS; i++)
            printLogLevel(i);
    }
}

/* ---- the access rules ---- */

static gwGateway *gatewayOrSay(const char *command)
{
    gwGateway *gateway = gwIocGateway();

    if (!gateway)
        printf("%s: the gateway is not registered with this IOC\n", command);
    return gateway;
}

static const iocshArg gwFileArg0 = { "file", iocshArgString };
static const iocshArg *const gwFileArgs[] = { &gwFileArg0 };
static const iocshFuncDef gwLoadPvListDef = {
    "gwLoadPvList", 1, gwFileArgs
    GW_USAGE("gwLoadPvList <file>\n"
             "  Install the pvlist (before or after gwStart). At run time the rules apply\n"
             "  to existing channels at once. A file with an error is refused whole and\n"
             "  the rules in force stay.\n")
};

static void gwLoadPvListCall(const iocshArgBuf *args)
{
    gwGateway *gateway = gatewayOrSay("gwLoadPvList");

    if (!args[0].sval || !args[0].sval[0]) {
        printf("usage: gwLoadPvList <file>\n");
        iocshSetError(1);
        return;
    }
    if (!gateway || gwGatewayLoadPvList(gateway, args[0].sval) != 0)
        iocshSetError(1);
}

static const iocshFuncDef gwLoadAccessDef = {
    "gwLoadAccess", 1, gwFileArgs
    GW_USAGE("gwLoadAccess [file]\n"
             "  The access security file (the IOC's): before iocInit, name it; after,\n"
             "  reload it (or switch to file). A file with an error is refused and the\n"
             "  rules in force stay.\n")
};

static void gwLoadAccessCall(const iocshArgBuf *args)
{
    gwGateway *gateway = gatewayOrSay("gwLoadAccess");

    if (!gateway || gwGatewayLoadAccess(gateway, args[0].sval) != 0)
        iocshSetError(1);
}

static const iocshFuncDef gwNewAsDef = {
    "gwNewAs", 0, NULL
    GW_USAGE("gwNewAs\n"
             "  Reload the pvlist and the access file (the classic gateway's newAsFlag).\n")
};

static void gwNewAsCall(const iocshArgBuf *args)
{
    gwGateway *gateway = gatewayOrSay("gwNewAs");

    (void)args;
    if (!gateway || gwGatewayNewAs(gateway) != 0)
        iocshSetError(1);
}

static const iocshArg gwPutLogArg1 = { "server", iocshArgString };
static const iocshArg *const gwPutLogArgs[] = { &gwFileArg0, &gwPutLogArg1 };
static const iocshFuncDef gwPutLogDef = {
    "gwPutLog", 2, gwPutLogArgs
    GW_USAGE("gwPutLog <file> [host:port]\n"
             "  Log the puts whose access rule has TRAPWRITE to file (\"\" for none) and\n"
             "  to the log server at host:port. No arguments: stop logging.\n")
};

static void gwPutLogCall(const iocshArgBuf *args)
{
    gwGateway *gateway = gatewayOrSay("gwPutLog");

    if (!gateway || gwGatewayPutLog(gateway, args[0].sval, args[1].sval) != 0)
        iocshSetError(1);
}

static const iocshArg gwAsTestArg0 = { "name", iocshArgString };
static const iocshArg gwAsTestArg1 = { "user", iocshArgString };
static const iocshArg gwAsTestArg2 = { "host", iocshArgString };
static const iocshArg *const gwAsTestArgs[] = { &gwAsTestArg0, &gwAsTestArg1, &gwAsTestArg2 };
static const iocshFuncDef gwAsTestDef = {
    "gwAsTest", 3, gwAsTestArgs
    GW_USAGE("gwAsTest <name> <user> <host>\n"
             "  What may user on host do with name: the pvlist rule, alias, access\n"
             "  group and level, rights and put logging.\n")
};

static void gwAsTestCall(const iocshArgBuf *args)
{
    gwGateway *gateway = gatewayOrSay("gwAsTest");

    if (!args[0].sval) {
        printf("usage: gwAsTest <name> <user> <host>\n");
        iocshSetError(1);
        return;
    }
    if (gateway)
        gwGatewayAsTest(gateway, args[0].sval, args[1].sval, args[2].sval, stdout);
}

/* errlog's own buffer (1280 bytes) holds about four messages of the
 * threads that cannot block; a burst of the gateway's would be lost.
 * Only the first initialisation counts: without effect when errlog is
 * running already. */
#define GW_ERRLOG_BUFFER (64u * 1024u)
#define GW_ERRLOG_MESSAGE 512u

static void gwIocshRegister(void)
{
    errlogInit2(GW_ERRLOG_BUFFER, GW_ERRLOG_MESSAGE);
    gwIocRegister();
    iocshRegister(&gwVersionDef, gwVersionCall);
    iocshRegister(&gwStartDef, gwStartCall);
    iocshRegister(&gwStopDef, gwStopCall);
    iocshRegister(&gwReportDef, gwReportCall);
    iocshRegister(&gwReportFileDef, gwReportFileCall);
    iocshRegister(&gwLogLevelDef, gwLogLevelCall);
    iocshRegister(&gwLoadPvListDef, gwLoadPvListCall);
    iocshRegister(&gwLoadAccessDef, gwLoadAccessCall);
    iocshRegister(&gwNewAsDef, gwNewAsCall);
    iocshRegister(&gwPutLogDef, gwPutLogCall);
    iocshRegister(&gwAsTestDef, gwAsTestCall);
    iocshRegister(&gwRelayDef, gwRelayCall);
    iocshRegister(&gwRelayStopDef, gwRelayStopCall);
}

epicsExportRegistrar(gwIocshRegister);
