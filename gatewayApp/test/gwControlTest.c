/* gwControlTest.c - unit test of the report file, the command file, the
 * control thread and its signals (gwControl.c, gwGateway.c), and of the
 * statistics thread (gwStats.c), on a gateway object that is not serving
 * (no sockets).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <epicsEvent.h>
#include <epicsThread.h>
#include <epicsUnitTest.h>
#include <testMain.h>

#include "gwControl.h"
#include "gwGateway.h"
#include "gwStats.h"

static char reportPath[1100];

/* How many times "report N: " headers are in the report file. */
static int headers(unsigned kind)
{
    char line[512], want[32];
    int n = 0;
    FILE *in = fopen(reportPath, "r");

    if (!in)
        return 0;
    snprintf(want, sizeof want, "report %u: ", kind);
    while (fgets(line, sizeof line, in))
        if (strncmp(line, "==== ", 5) == 0 && strstr(line, want))
            n++;
    fclose(in);
    return n;
}

static int fileHas(const char *text)
{
    char line[512];
    int found = 0;
    FILE *in = fopen(reportPath, "r");

    if (!in)
        return 0;
    while (!found && fgets(line, sizeof line, in))
        found = strstr(line, text) != NULL;
    fclose(in);
    return found;
}

/* Wait (at most 5 s) until report kind has been written `count` times. */
static int waitHeaders(unsigned kind, int count)
{
    int i;

    for (i = 0; i < 100 && headers(kind) < count; i++)
        epicsThreadSleep(0.05);
    return headers(kind);
}

static void writeFile(const char *path, const char *text)
{
    FILE *out = fopen(path, "w");

    if (out) {
        fputs(text, out);
        fclose(out);
    }
}

static void testReportFile(gwGateway *gateway)
{
    testDiag("reports to the file");
    testOk1(gwGatewayReportToFile(gateway, 1) == 0);
    testOk(headers(1) == 1, "report 1 has its header");
    testOk(fileHas("report 1: virtual connections ===="), "... with its title");
    testOk(fileHas("gateway: not running"), "the report says the gateway does not run");
    testOk1(gwGatewayReportToFile(gateway, 3) == 0);
    testOk(fileHas("report 3: access security ===="), "report 3 has its header");
    testOk(gwGatewayReportToFile(gateway, 0) == -1, "there is no report 0");
    testOk(gwGatewayReportToFile(gateway, 4) == -1, "nor report 4");
    testOk(headers(1) == 1 && headers(3) == 1, "nothing else was written");
}

static void testCommandFile(gwGateway *gateway)
{
    testDiag("the command file");
    testOk(gwGatewayRunCommandFile(gateway) == -1, "no command file: an error");
    writeFile("gateway.command", "# reports\n\nR1\n  r2  \nbogus\nR3\nR4\nAS\n");
    testOk(gwGatewayRunCommandFile(gateway) == -1, "an unknown line makes it fail");
    testOk(headers(1) == 2 && headers(2) == 1 && headers(3) == 2,
           "... and every good line ran (R1, r2, R3)");
    writeFile("gateway.command", "R2\nAS\n");
    testOk(gwGatewayRunCommandFile(gateway) == 0, "a good file runs");
    testOk(headers(2) == 2, "... its report");
}

typedef struct waiter {
    epicsEventId done;
    int status;
} waiter;

static void requestDone(gwControlRequest *request, int status)
{
    waiter *w = request->user;

    w->status = status;
    epicsEventSignal(w->done);
}

static void testControl(gwGateway *gateway)
{
    gwControlAction action;
    gwControlRequest request;
    waiter w;
    int before = headers(1);

    testDiag("the control thread");
    testOk(gwControlLookup("report1Flag", &action) == 0 && action == GW_CONTROL_REPORT1,
           "report1Flag is report 1");
    testOk(gwControlLookup("quitServerFlag", &action) == 0
           && action == GW_CONTROL_QUIT_SERVER, "quitServerFlag");
    testOk(gwControlLookup("report9Flag", &action) == -1, "no report9Flag");
    w.done = epicsEventCreate(epicsEventEmpty);
    w.status = 99;
    memset(&request, 0, sizeof request);
    request.action = GW_CONTROL_REPORT1;
    request.done = requestDone;
    request.user = &w;
    testOk1(gwGatewayRequest(gateway, &request) == 0);
    testOk(epicsEventWaitWithTimeout(w.done, 5.0) == epicsEventWaitOK && w.status == 0,
           "done is called with status 0");
    testOk(headers(1) == before + 1, "report 1 was written before done");
    request.action = GW_CONTROL_COMMAND_FILE;
    writeFile("gateway.command", "nonsense\n");
    testOk1(gwGatewayRequest(gateway, &request) == 0);
    testOk(epicsEventWaitWithTimeout(w.done, 5.0) == epicsEventWaitOK && w.status == -1,
           "a failing action's status reaches done");
    epicsEventDestroy(w.done);

    testDiag("signals");
    testOk1(gwGatewayCatchSignals(gateway) == 0);
    before = headers(2);
    raise(SIGUSR2);
    testOk(waitHeaders(2, before + 1) == before + 1, "SIGUSR2 writes report 2");
    writeFile("gateway.command", "R3\nR1\n");
    before = headers(3);
    raise(SIGUSR1);
    testOk(waitHeaders(3, before + 1) == before + 1, "SIGUSR1 runs the command file");
}

static epicsEventId countsSeen, ratesSeen;

static void onCounts(void *arg)
{
    (void)arg;
    epicsEventSignal(countsSeen);
}

static void onRates(void *arg)
{
    (void)arg;
    epicsEventSignal(ratesSeen);
}

static void testStatistics(gwGateway *gateway)
{
    gwStats *stats = gwGatewayStatistics(gateway);
    gwStatId id;
    gwStatTextId text;
    char list[GW_STATS_TEXT_SIZE];

    testDiag("the statistics thread");
    testOk(gwStatsLookup("vctotal", &id) == 0 && id == GW_STAT_VCTOTAL, "vctotal");
    testOk(gwStatsLookup("bytesOutRate", &id) == 0 && id == GW_STAT_BYTES_OUT_RATE,
           "bytesOutRate");
    testOk(gwStatsLookup("nonsense", &id) == -1, "no such figure");
    testOk(gwStatsLookupText("topPvs", &text) == 0 && text == GW_STAT_TOP_PVS, "topPvs");
    testOk(gwStatsLookupText("vctotal", &text) == -1, "vctotal is no list");
    testOk(strcmp(gwStatsName(GW_STAT_CPU_FRACT), "cpuFract") == 0, "names");
    countsSeen = epicsEventCreate(epicsEventEmpty);
    ratesSeen = epicsEventCreate(epicsEventEmpty);
    gwStatsListen(stats, onCounts, onRates, NULL);
    gwStatsInterval = 1.0;
    testOk1(gwStatsStart(stats) == 0);
    testOk1(gwStatsStart(stats) == 0);
    testOk(epicsEventWaitWithTimeout(countsSeen, 5.0) == epicsEventWaitOK,
           "the counts come");
    testOk(epicsEventWaitWithTimeout(ratesSeen, 5.0) == epicsEventWaitOK,
           "the rates come");
    testOk(gwStatsValue(stats, GW_STAT_FD) > 2.0, "open fds counted (%g)",
           gwStatsValue(stats, GW_STAT_FD));
    testOk(gwStatsValue(stats, GW_STAT_FD_LIMIT) >= gwStatsValue(stats, GW_STAT_FD),
           "the fd limit (%g)", gwStatsValue(stats, GW_STAT_FD_LIMIT));
    testOk(gwStatsValue(stats, GW_STAT_CPU_FRACT) >= 0.0, "cpuFract (%g)",
           gwStatsValue(stats, GW_STAT_CPU_FRACT));
    testOk(gwStatsValue(stats, GW_STAT_VCTOTAL) == 0.0
           && gwStatsValue(stats, GW_STAT_UPTIME) == 0.0, "not serving: no channels, no uptime");
    testOk(gwStatsValue(stats, GW_STATS) == 0.0, "no such figure reads 0");
    gwStatsText(stats, GW_STAT_TOP_CLIENTS_BYTES, list, sizeof list);
    testOk(list[0] == '\0', "no clients, no list");
    gwStatsListen(stats, NULL, NULL, NULL);
}

MAIN(gwControlTest)
{
    char dir[] = "/tmp/gwControlTestXXXXXX";
    gwGateway *gateway;

    testPlan(41);
    if (!mkdtemp(dir) || chdir(dir) != 0)
        testAbort("no temporary directory");
    snprintf(reportPath, sizeof reportPath, "%s/gateway.report", dir);
    gateway = gwGatewayCreate();
    if (!gateway)
        testAbort("no gateway object");
    testReportFile(gateway);
    testCommandFile(gateway);
    testControl(gateway);
    testStatistics(gateway);
    gwGatewayDestroy(gateway);
    remove("gateway.command");
    remove(reportPath);
    if (chdir("/") == 0)
        rmdir(dir);
    return testDone();
}
