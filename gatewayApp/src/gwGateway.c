/* gwGateway.c - the gateway object: the CA server, its providers, their
 * configuration, the IOC life cycle, reports and counters (gwGateway.h).
 *
 * The providers are made when the server starts, in the order they are
 * asked: the IOC's own records first (a name that is a record is served
 * locally), every other name upstream; each behind a wrapper of the
 * access rules (gwRules.h), which the gateway owns for its whole life.
 *
 * Threads: configure/stop/IOC hooks on one thread at a time; report and
 * counters on any thread.
 * Locks: gateway->lock (a leaf for everything but the server's and the
 * providers' start and stop, which run under it) guards the state below.
 * A report or a counter read takes a use of the running server under the
 * lock and works without it; stop waits until no use is left.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <asLib.h>
#include <dbDefs.h>
#include <epicsEvent.h>
#include <epicsMutex.h>
#include <epicsString.h>
#include <epicsTime.h>
#include <errlog.h>

#include "gwGateway.h"
#include "gwLocal.h"
#include "gwLog.h"
#include "gwOptions.h"
#include "gwProviderCall.h"
#include "gwRules.h"
#include "gwControl.h"
#include "gwStats.h"
#include "gwText.h"
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
    gwProvider *inner[GW_GATEWAY_PROVIDERS];     /* while running     (lock) */
    gwProvider *providers[GW_GATEWAY_PROVIDERS]; /* the rules' wrappers of
                                                    inner, what the server asks */
    gwRules *rules;             /* const after create */
    gwStats *stats;             /* const after create */
    gwControl *control;         /* const after create */
    char reportFile[1024];      /* -report, absolute                  (lock) */
    char commandFile[1024];     /* -command, absolute                 (lock) */
    unsigned uses;              /* reports and readers of the server  (lock) */
};

/* path into buf[size], made absolute with the working directory now (so
 * a later cd of the st.cmd does not move it). */
static void setPath(char *buf, size_t size, const char *path)
{
    char cwd[1024];
    size_t n, length = strlen(path);

    if (path[0] != '/' && getcwd(cwd, sizeof cwd)
        && (n = strlen(cwd)) + 1 + length < size) {
        memcpy(buf, cwd, n);
        buf[n] = '/';
        memcpy(buf + n + 1, path, length + 1);
    }
    else
        snprintf(buf, size, "%s", path);
}

gwGateway *gwGatewayCreate(void)
{
    gwGateway *gateway = calloc(1, sizeof *gateway);

    if (!gateway)
        return NULL;
    gateway->lock = epicsMutexCreate();
    gateway->unused = epicsEventCreate(epicsEventEmpty);
    gateway->rules = gwRulesCreate();
    gateway->stats = gwStatsCreate(gateway);
    gateway->control = gwControlCreate(gateway);
    setPath(gateway->reportFile, sizeof gateway->reportFile, "gateway.report");
    setPath(gateway->commandFile, sizeof gateway->commandFile, "gateway.command");
    if (!gateway->lock || !gateway->unused || !gateway->rules || !gateway->stats
        || !gateway->control) {
        gwControlDestroy(gateway->control);
        gwStatsDestroy(gateway->stats);
        gwRulesDestroy(gateway->rules);
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
    unsigned i;

    for (i = 0; i < GW_GATEWAY_PROVIDERS; i++)
        gwRulesUnwrap(gateway->rules, gateway->providers[i]);
    if (gateway->inner[GW_UPSTREAM_INDEX])
        gwUpstreamProviderDestroy(gateway->inner[GW_UPSTREAM_INDEX]);
    if (gateway->inner[GW_LOCAL_INDEX])
        gwLocalProviderDestroy(gateway->inner[GW_LOCAL_INDEX]);
    memset(gateway->providers, 0, sizeof gateway->providers);
    memset(gateway->inner, 0, sizeof gateway->inner);
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
    unsigned i;

    gateway->inner[GW_LOCAL_INDEX] =
        gwLocalProviderCreate(gateway->serverConfig.ioThreads); /* 0: default */
    if (!gateway->inner[GW_LOCAL_INDEX]) {
        gwLog(GW_LOG_SERVER, GW_LOG_ERROR, "cannot serve the IOC's records");
        return -1;
    }
    gateway->inner[GW_UPSTREAM_INDEX] = gwUpstreamProviderCreate(&gateway->upstreamConfig);
    if (!gateway->inner[GW_UPSTREAM_INDEX]) {
        destroyProviders(gateway);
        gwLog(GW_LOG_SERVER, GW_LOG_ERROR, "cannot reach upstream IOCs");
        return -1;
    }
    for (i = 0; i < GW_GATEWAY_PROVIDERS; i++) {
        gateway->providers[i] = gwRulesWrap(gateway->rules, gateway->inner[i]);
        if (!gateway->providers[i]) {
            destroyProviders(gateway);
            gwLog(GW_LOG_SERVER, GW_LOG_ERROR, "out of memory for the access rules");
            return -1;
        }
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
    gwControlDestroy(gateway->control);
    gwStatsDestroy(gateway->stats);
    gwRulesDestroy(gateway->rules);
    epicsEventDestroy(gateway->unused);
    epicsMutexDestroy(gateway->lock);
    free(gateway);
}

/* ---------------------------------------------------------------- configuration */

/* Parse the options into the two configurations. 0, -1 or GW_GATEWAY_BAD_OPTIONS.
 * What gwStart says about its own arguments (here and in
 * gwGatewayConfigure) is the command's answer, not a log message: it is
 * printed whatever the log levels. */
/* What the options say of the access rules and the report and command
 * files (strings malloc'd, NULL: not given). */
typedef struct gwRulesOptions {
    char *pvlist, *access, *putlog, *caputlog, *report, *command;
    int readOnly, hostnameFromIp;
} gwRulesOptions;

static void clearRulesOptions(gwRulesOptions *rules)
{
    free(rules->pvlist);
    free(rules->access);
    free(rules->putlog);
    free(rules->caputlog);
    free(rules->report);
    free(rules->command);
    memset(rules, 0, sizeof *rules);
}

static void takeRulesOptions(gwOptions *parsed, gwRulesOptions *rules)
{
    rules->pvlist = parsed->pvlistGiven ? parsed->pvlist : NULL;
    rules->access = parsed->accessGiven ? parsed->access : NULL;
    rules->putlog = parsed->putlogGiven ? parsed->putlog : NULL;
    rules->caputlog = parsed->caputlogGiven ? parsed->caputlog : NULL;
    rules->report = parsed->reportGiven ? parsed->report : NULL;
    rules->command = parsed->commandGiven ? parsed->command : NULL;
    parsed->report = parsed->command = NULL;
    parsed->reportGiven = parsed->commandGiven = 0;
    parsed->pvlist = parsed->access = parsed->putlog = parsed->caputlog = NULL;
    parsed->pvlistGiven = parsed->accessGiven = parsed->putlogGiven = 0;
    parsed->caputlogGiven = 0;
    rules->readOnly = parsed->readOnlyGiven;
    rules->hostnameFromIp = parsed->hostnameFromIpGiven;
}

/* Install the rules the options give (lock held). 0 or -1 (printed). */
static int applyRulesOptions(gwGateway *gateway, const gwRulesOptions *options)
{
    gwRulesSetReadOnly(gateway->rules, options->readOnly);
    gwRulesSetHostnameFromIp(gateway->rules, options->hostnameFromIp);
    if (options->pvlist && gwRulesLoadPvList(gateway->rules, options->pvlist) != 0)
        return -1;
    if (options->access
        && gwRulesLoadAccess(gateway->rules, options->access, gateway->iocRunning) != 0)
        return -1;
    if ((options->putlog || options->caputlog)
        && gwRulesSetPutLog(gateway->rules, options->putlog, options->caputlog) != 0)
        return -1;
    return 0;
}

static int parseOptions(const char *options, int argc, char *const *argv,
                        gwServerConfig *server, gwUpstreamConfig *upstream,
                        gwRulesOptions *rules)
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
        takeRulesOptions(&parsed, rules);
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
    gwRulesOptions rules;
    int status;

    memset(&server, 0, sizeof server);
    memset(&rules, 0, sizeof rules);
    gwUpstreamConfigDefaults(&upstream);
    status = parseOptions(options, argc, argv, &server, &upstream, &rules);
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
    else if (applyRulesOptions(gateway, &rules) != 0) {
        gwServerConfigClear(&server);
        gwUpstreamConfigClear(&upstream);
        status = -1;
    }
    else {
        /* relative names: to the working directory of gwStart */
        setPath(gateway->reportFile, sizeof gateway->reportFile,
                rules.report ? rules.report : "gateway.report");
        setPath(gateway->commandFile, sizeof gateway->commandFile,
                rules.command ? rules.command : "gateway.command");
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
    clearRulesOptions(&rules);
    return status;
}

/* ---------------------------------------------------------------- IOC life cycle */

void gwGatewayIocRunning(gwGateway *gateway)
{
    if (gwStatsStart(gateway->stats) != 0)
        gwLog(GW_LOG_SERVER, GW_LOG_ERROR, "cannot start the statistics thread");
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
    if (level >= 3)
        gwRulesReport(gateway->rules, out);
}

/* ---------------------------------------------------------------- reports to the file */

static const char *const reportTitles[] = {
    NULL, "virtual connections", "process variables", "access security",
};

static void printTopLists(gwGateway *gateway, FILE *out)
{
    static const struct { gwStatTextId id; const char *title; } lists[] = {
        { GW_STAT_TOP_CLIENTS_BYTES, "clients sending the most bytes" },
        { GW_STAT_TOP_CLIENTS_REPLACED, "clients with the most replaced updates (slow)" },
        { GW_STAT_TOP_PVS, "PVs with the most updates" },
    };
    char text[GW_STATS_TEXT_SIZE];
    unsigned i;

    fprintf(out, "over the last statistics interval (%.0f s):\n", gwStatsInterval);
    for (i = 0; i < NELEMENTS(lists); i++) {
        char *line, *next;
        gwStatsText(gateway->stats, lists[i].id, text, sizeof text);
        fprintf(out, "  %s:%s\n", lists[i].title, text[0] ? "" : " none");
        for (line = text; *line; line = next) {
            next = strchr(line, '\n');
            next = next ? next + 1 : line + strlen(line);
            fprintf(out, "    %.*s", (int)(next - line), line);
        }
    }
}

void gwGatewayReportKind(gwGateway *gateway, FILE *out, unsigned kind)
{
    gwServer *server;
    unsigned i;

    if (kind == 3) {
        gwRulesReport(gateway->rules, out);
        return;
    }
    server = use(gateway);
    if (!server) {
        fprintf(out, "gateway: not running\n");
        return;
    }
    if (kind == 1) {
        gwServerReport(server, out, 2);
        printTopLists(gateway, out);
    }
    else {
        gwServerReport(server, out, 0);
        for (i = 0; i < GW_GATEWAY_PROVIDERS; i++)
            gwCallReport(gateway->providers[i], out, 2);
    }
    release(gateway);
}

int gwGatewayReportToFile(gwGateway *gateway, unsigned kind)
{
    char path[sizeof gateway->reportFile], when[64];
    epicsTimeStamp now;
    FILE *out;

    if (kind < 1 || kind > 3) {
        errlogPrintf("gateway: no report %u (1 virtual connections, 2 process "
                     "variables, 3 access security)\n", kind);
        return -1;
    }
    epicsMutexMustLock(gateway->lock);
    memcpy(path, gateway->reportFile, sizeof path);
    epicsMutexUnlock(gateway->lock);
    out = fopen(path, "a");
    if (!out) {
        errlogPrintf("gateway: cannot open the report file %s: %s\n", path, strerror(errno));
        return -1;
    }
    epicsTimeGetCurrent(&now);
    epicsTimeToStrftime(when, sizeof when, "%Y-%m-%d %H:%M:%S.%03f", &now);
    fprintf(out, "==== %s report %u: %s ====\n", when, kind, reportTitles[kind]);
    gwGatewayReportKind(gateway, out, kind);
    fprintf(out, "\n");
    if (fclose(out) != 0) {
        errlogPrintf("gateway: cannot write the report file %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* One line of the command file (blanks and comments skipped). 0 or -1. */
static int runCommand(gwGateway *gateway, const char *path, unsigned number, char *line)
{
    char *end;

    while (*line == ' ' || *line == '\t')
        line++;
    end = line + strlen(line);
    while (end > line && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' '
                          || end[-1] == '\t'))
        *--end = '\0';
    if (!*line || *line == '#')
        return 0;
    if ((line[0] == 'R' || line[0] == 'r') && line[1] >= '1' && line[1] <= '3' && !line[2])
        return gwGatewayReportToFile(gateway, (unsigned)(line[1] - '0'));
    if (epicsStrCaseCmp(line, "AS") == 0)
        return gwGatewayNewAs(gateway);
    errlogPrintf("%s:%u: unknown command '%.40s' (R1, R2, R3 or AS)\n", path, number, line);
    return -1;
}

int gwGatewayRunCommandFile(gwGateway *gateway)
{
    char path[sizeof gateway->commandFile], line[256];
    unsigned number = 0;
    int status = 0;
    FILE *in;

    epicsMutexMustLock(gateway->lock);
    memcpy(path, gateway->commandFile, sizeof path);
    epicsMutexUnlock(gateway->lock);
    in = fopen(path, "r");
    if (!in) {
        errlogPrintf("gateway: cannot open the command file %s: %s\n", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof line, in)) {
        number++;
        if (!strchr(line, '\n') && !feof(in)) {
            int c;
            errlogPrintf("%s:%u: line too long\n", path, number);
            while ((c = fgetc(in)) != EOF && c != '\n')
                ;
            status = -1;
            continue;
        }
        if (runCommand(gateway, path, number, line) != 0)
            status = -1;
    }
    fclose(in);
    return status;
}

int gwGatewayRequest(gwGateway *gateway, gwControlRequest *request)
{
    return gwControlAsk(gateway->control, request);
}

int gwGatewayCatchSignals(gwGateway *gateway)
{
    return gwControlCatchSignals(gateway->control);
}

/* ---------------------------------------------------------------- access rules */

/* The rules changed: clients search again at once for what they miss. */
static void rulesChanged(gwGateway *gateway)
{
    gwServer *server = use(gateway);

    if (!server)
        return;
    gwServerBeaconAnomaly(server);
    release(gateway);
}

int gwGatewayLoadPvList(gwGateway *gateway, const char *path)
{
    if (gwRulesLoadPvList(gateway->rules, path) != 0)
        return -1;
    rulesChanged(gateway);
    return 0;
}

int gwGatewayLoadAccess(gwGateway *gateway, const char *path)
{
    int running;

    epicsMutexMustLock(gateway->lock);
    running = gateway->iocRunning;
    epicsMutexUnlock(gateway->lock);
    if (gwRulesLoadAccess(gateway->rules, path, running) != 0)
        return -1;
    if (running)
        rulesChanged(gateway);
    return 0;
}

int gwGatewayNewAs(gwGateway *gateway)
{
    char path[1024];
    int status = 0;

    gwRulesPvListFile(gateway->rules, path, sizeof path);
    if (path[0] && gwRulesLoadPvList(gateway->rules, path) != 0)
        status = -1;
    if (asActive && gwGatewayLoadAccess(gateway, NULL) != 0)
        status = -1;
    rulesChanged(gateway);
    return status;
}

int gwGatewayPutLog(gwGateway *gateway, const char *path, const char *server)
{
    return gwRulesSetPutLog(gateway->rules, path, server);
}

void gwGatewayAsTest(gwGateway *gateway, const char *name, const char *user,
                     const char *host, FILE *out)
{
    gwRulesProbe(gateway->rules, name, user, host, out);
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

unsigned gwGatewayGetClients(gwGateway *gateway, gwServerClient *out, unsigned max)
{
    gwServer *server = use(gateway);
    unsigned n;

    if (!server)
        return 0;
    n = gwServerGetClients(server, out, max);
    release(gateway);
    return n;
}

unsigned gwGatewayBusiest(gwGateway *gateway, gwPvActivity *out, unsigned max)
{
    gwServer *server = use(gateway);
    unsigned i, n = 0;

    if (!server)
        return 0;
    for (i = 0; i < GW_GATEWAY_PROVIDERS && n < max; i++)
        n += gwCallBusiest(gateway->providers[i], out + n, max - n);
    release(gateway);
    return n;
}

struct gwStats *gwGatewayStatistics(gwGateway *gateway)
{
    return gateway->stats;
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
