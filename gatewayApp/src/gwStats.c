/* gwStats.c - the gateway's statistics: the sampling thread, the figures
 * it publishes, and the process figures (CPU, fds, load) it reads from
 * the platform (gwStats.h).
 *
 * Each second the thread reads the gateway's counters once and publishes
 * the counts; when the interval is over it publishes the rates (the
 * counters' change divided by the time it took) and the top lists. The
 * counters are cumulative, so a slow sample loses nothing: the next
 * interval is simply longer.
 *
 * Process figures: CPU time of all threads (CLOCK_PROCESS_CPUTIME_ID),
 * the entries of /proc/self/fd (Linux; 0 elsewhere), RLIMIT_NOFILE, and
 * getloadavg().
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <epicsEvent.h>
#include <epicsExport.h>
#include <epicsMutex.h>
#include <epicsThread.h>
#include <epicsTime.h>

#include "gwGateway.h"
#include "gwLog.h"
#include "gwStats.h"

double gwStatsInterval = 10.0;
epicsExportAddress(double, gwStatsInterval);

#define GW_STATS_MAX_CLIENTS 4096u  /* clients looked at per interval */

static const char *const statNames[GW_STATS] = {
    "vctotal", "pvtotal", "connected", "active", "inactive", "unconnected",
    "connecting", "disconnected", "dead", "fd", "fdLimit", "clients", "iocs",
    "subscriptions", "queueFill", "replaced", "searchesDenied", "puts",
    "putsRefused", "uptime",
    "clientEventRate", "clientPostRate", "existTestRate", "loopRate", "cpuFract",
    "load", "serverEventRate", "serverPostRate", "replacedRate", "bytesInRate",
    "bytesOutRate",
};

static const char *const textNames[GW_STAT_TEXTS] = {
    "topClientsBytes", "topClientsReplaced", "topPvs",
};

/* The cumulative counters a rate is the change of, at one moment. */
typedef struct gwStatsSample {
    epicsTimeStamp when;
    double cpuSeconds;
    double clientEvents, clientPosts, searches, loopPasses, serverPosts, serverEvents,
           replaced, bytesIn, bytesOut;
} gwStatsSample;

struct gwStats {
    struct gwGateway *gateway;   /* const */
    epicsMutexId lock;
    double value[GW_STATS];                      /* lock */
    char text[GW_STAT_TEXTS][GW_STATS_TEXT_SIZE]; /* lock */
    void (*counts)(void *arg);                   /* lock */
    void (*rates)(void *arg);
    void *arg;
    /* the thread's own */
    epicsEventId wake;
    epicsEventId exited;
    int stopping;                /* lock */
    int started;                 /* lock */
    int wasRunning;
    epicsTimeStamp runningSince;
    gwStatsSample last;          /* at the start of the interval */
    gwServerClient *clients, *previous;  /* this interval's and the last one's */
    unsigned nClients, nPrevious;
    char work[GW_STAT_TEXTS][GW_STATS_TEXT_SIZE]; /* the lists being made */
};

/* The index of name in names[0..n-1], or -1. */
static int indexOf(const char *const *names, unsigned n, const char *name)
{
    unsigned i;

    for (i = 0; i < n; i++)
        if (strcmp(name, names[i]) == 0)
            return (int)i;
    return -1;
}

int gwStatsLookup(const char *name, gwStatId *id)
{
    int i = indexOf(statNames, GW_STATS, name);

    if (i < 0)
        return -1;
    *id = (gwStatId)i;
    return 0;
}

int gwStatsLookupText(const char *name, gwStatTextId *id)
{
    int i = indexOf(textNames, GW_STAT_TEXTS, name);

    if (i < 0)
        return -1;
    *id = (gwStatTextId)i;
    return 0;
}

const char *gwStatsName(gwStatId id)
{
    return (unsigned)id < GW_STATS ? statNames[id] : "?";
}

/* ---------------------------------------------------------------- the process */

static double processCpuSeconds(void)
{
    struct timespec t;

    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t) != 0)
        return 0.0;
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Open file descriptors (the directory's own not counted); 0 if unknown. */
static unsigned openFds(void)
{
    DIR *dir = opendir("/proc/self/fd");
    struct dirent *entry;
    unsigned n = 0;

    if (!dir)
        return 0;
    while ((entry = readdir(dir)) != NULL)
        if (entry->d_name[0] != '.')
            n++;
    closedir(dir);
    return n ? n - 1 : 0;
}

double gwStatsFdLimit(void)
{
    struct rlimit limit;

    if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY)
        return 0.0;
    return (double)limit.rlim_cur;
}

static double loadAverage(void)
{
    double load[1];

    return getloadavg(load, 1) == 1 ? load[0] : 0.0;
}

/* ---------------------------------------------------------------- sampling */

static void takeSample(const gwGatewayCounters *n, gwStatsSample *s)
{
    epicsTimeGetCurrent(&s->when);
    s->cpuSeconds = processCpuSeconds();
    s->clientEvents = (double)n->upstream.events + (double)n->upstream.getReplies
                    + (double)n->local.updates;
    s->clientPosts = (double)n->upstream.events;
    s->searches = (double)n->server.searches;
    s->loopPasses = (double)n->server.loopPasses;
    s->serverPosts = (double)n->server.updatesReceived;
    s->serverEvents = (double)n->server.updatesSent;
    s->replaced = (double)n->server.updatesReplaced;
    s->bytesIn = (double)n->server.bytesReceived;
    s->bytesOut = (double)n->server.bytesSent;
}

static unsigned fullestQueue(gwStats *stats)
{
    unsigned i, fill = 0;

    for (i = 0; i < stats->nClients && i < GW_STATS_MAX_CLIENTS; i++)
        if (stats->clients[i].fill > fill)
            fill = stats->clients[i].fill;
    return fill;
}

static void sampleCounts(gwStats *stats, const gwGatewayCounters *n, double *v)
{
    const gwProviderCounters *up = &n->upstream, *local = &n->local;
    epicsTimeStamp now;

    epicsTimeGetCurrent(&now);
    if (n->running && !stats->wasRunning)
        stats->runningSince = now;
    stats->wasRunning = n->running;
    stats->nClients = gwGatewayGetClients(stats->gateway, stats->clients, GW_STATS_MAX_CLIENTS);
    v[GW_STAT_VCTOTAL] = n->server.channels;
    v[GW_STAT_PVTOTAL] = (double)up->pvs;
    v[GW_STAT_CONNECTED] = (double)(up->active + up->inactive);
    v[GW_STAT_ACTIVE] = (double)up->active;
    v[GW_STAT_INACTIVE] = (double)up->inactive;
    v[GW_STAT_UNCONNECTED] = (double)(up->connecting + up->disconnected + up->dead);
    v[GW_STAT_CONNECTING] = (double)up->connecting;
    v[GW_STAT_DISCONNECTED] = (double)up->disconnected;
    v[GW_STAT_DEAD] = (double)up->dead;
    v[GW_STAT_FD] = openFds();
    v[GW_STAT_FD_LIMIT] = gwStatsFdLimit();
    v[GW_STAT_CLIENTS] = n->server.clients;
    v[GW_STAT_IOCS] = (double)up->servers;
    v[GW_STAT_SUBSCRIPTIONS] = (double)up->subscriptions;
    v[GW_STAT_QUEUE_FILL] = fullestQueue(stats);
    v[GW_STAT_REPLACED] = (double)n->server.updatesReplaced;
    v[GW_STAT_SEARCHES_DENIED] = (double)(up->searchesRefused + local->searchesRefused);
    v[GW_STAT_PUTS] = (double)(up->puts + local->puts);
    v[GW_STAT_PUTS_REFUSED] = (double)(up->putsRefused + local->putsRefused);
    v[GW_STAT_UPTIME] = n->running ? epicsTimeDiffInSeconds(&now, &stats->runningSince) : 0.0;
}

static void sampleRates(const gwStatsSample *a, const gwStatsSample *b, double *v)
{
    double dt = epicsTimeDiffInSeconds(&b->when, &a->when);

    if (dt <= 0.0)
        return;
    v[GW_STAT_CLIENT_EVENT_RATE] = (b->clientEvents - a->clientEvents) / dt;
    v[GW_STAT_CLIENT_POST_RATE] = (b->clientPosts - a->clientPosts) / dt;
    v[GW_STAT_EXIST_TEST_RATE] = (b->searches - a->searches) / dt;
    v[GW_STAT_LOOP_RATE] = (b->loopPasses - a->loopPasses) / dt;
    v[GW_STAT_CPU_FRACT] = (b->cpuSeconds - a->cpuSeconds) / dt;
    v[GW_STAT_LOAD] = loadAverage();
    v[GW_STAT_SERVER_EVENT_RATE] = (b->serverEvents - a->serverEvents) / dt;
    v[GW_STAT_SERVER_POST_RATE] = (b->serverPosts - a->serverPosts) / dt;
    v[GW_STAT_REPLACED_RATE] = (b->replaced - a->replaced) / dt;
    v[GW_STAT_BYTES_IN_RATE] = (b->bytesIn - a->bytesIn) / dt;
    v[GW_STAT_BYTES_OUT_RATE] = (b->bytesOut - a->bytesOut) / dt;
    /* a counter that went back (the server was restarted) is no rate */
    {
        unsigned i;
        for (i = GW_STAT_FIRST_RATE; i < GW_STATS; i++)
            if (v[i] < 0.0)
                v[i] = 0.0;
    }
}

/* ---------------------------------------------------------------- top lists */

typedef struct gwRanked {
    const gwServerClient *client;
    double rate;
} gwRanked;

static int byRate(const void *a, const void *b)
{
    double x = ((const gwRanked *)a)->rate, y = ((const gwRanked *)b)->rate;

    return x < y ? 1 : x > y ? -1 : 0;
}

/* The client's entry of the last interval (both lists sorted by serial). */
static const gwServerClient *previousOf(gwStats *stats, unsigned long serial)
{
    unsigned lo = 0, hi = stats->nPrevious;

    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        if (stats->previous[mid].serial < serial)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < stats->nPrevious && stats->previous[lo].serial == serial
               ? &stats->previous[lo] : NULL;
}

static int bySerial(const void *a, const void *b)
{
    unsigned long x = ((const gwServerClient *)a)->serial;
    unsigned long y = ((const gwServerClient *)b)->serial;

    return x < y ? -1 : x > y;
}

/* One list of clients ranked by the rate of one counter into text. */
static void rankClients(gwStats *stats, gwRanked *ranked, double dt, int replaced,
                        char *text, size_t size)
{
    unsigned i, n = 0;
    size_t used = 0;

    for (i = 0; i < stats->nClients; i++) {
        const gwServerClient *c = &stats->clients[i], *p = previousOf(stats, c->serial);
        unsigned long now = replaced ? c->updatesReplaced : c->bytesSent;
        unsigned long before = p ? (replaced ? p->updatesReplaced : p->bytesSent) : 0;
        if (now > before) {
            ranked[n].client = c;
            ranked[n++].rate = (double)(now - before) / dt;
        }
    }
    qsort(ranked, n, sizeof *ranked, byRate);
    text[0] = '\0';
    for (i = 0; i < n && i < GW_STATS_TOP && used + 1 < size; i++) {
        int w = snprintf(text + used, size - used, "%s %s %.1f %s\n",
                         ranked[i].client->name, ranked[i].client->peer, ranked[i].rate,
                         replaced ? "replaced/s" : "B/s");
        if (w < 0 || (size_t)w >= size - used) {
            text[used] = '\0';   /* whole lines only */
            break;
        }
        used += (size_t)w;
    }
}

static void rankPvs(gwStats *stats, double dt, char *text, size_t size)
{
    gwPvActivity top[GW_STATS_TOP];
    unsigned i, n = gwGatewayBusiest(stats->gateway, top, GW_STATS_TOP);
    size_t used = 0;

    text[0] = '\0';
    for (i = 0; i < n; i++) {
        int w = snprintf(text + used, size - used, "%s %.1f updates/s\n", top[i].name,
                         (double)top[i].events / dt);
        if (w < 0 || (size_t)w >= size - used) {
            text[used] = '\0';
            break;
        }
        used += (size_t)w;
    }
}

/* The top lists of this interval (dt seconds long) into texts. */
static void rankAll(gwStats *stats, double dt, char texts[GW_STAT_TEXTS][GW_STATS_TEXT_SIZE])
{
    gwRanked *ranked = malloc((stats->nClients + 1) * sizeof *ranked);
    gwServerClient *swap;

    qsort(stats->clients, stats->nClients, sizeof *stats->clients, bySerial);
    if (ranked && dt > 0.0) {
        rankClients(stats, ranked, dt, 0, texts[GW_STAT_TOP_CLIENTS_BYTES], GW_STATS_TEXT_SIZE);
        rankClients(stats, ranked, dt, 1, texts[GW_STAT_TOP_CLIENTS_REPLACED],
                    GW_STATS_TEXT_SIZE);
    }
    free(ranked);
    rankPvs(stats, dt > 0.0 ? dt : 1.0, texts[GW_STAT_TOP_PVS], GW_STATS_TEXT_SIZE);
    /* this interval's clients are the next one's previous */
    swap = stats->previous;
    stats->previous = stats->clients;
    stats->clients = swap;
    stats->nPrevious = stats->nClients;
    stats->nClients = 0;
}

/* ---------------------------------------------------------------- the thread */

static double intervalNow(void)
{
    double interval = gwStatsInterval;

    if (!(interval >= 1.0))
        return 1.0;
    return interval > 3600.0 ? 3600.0 : interval;
}

static void statsThread(void *arg)
{
    gwStats *stats = arg;
    gwGatewayCounters counters;
    gwStatsSample now;
    double v[GW_STATS];
    char (*texts)[GW_STATS_TEXT_SIZE] = stats->work;
    int stopping = 0;

    gwGatewayGetCounters(stats->gateway, &counters);
    takeSample(&counters, &stats->last);
    rankAll(stats, 0.0, texts);   /* the PVs' and clients' starting counts */
    memset(v, 0, sizeof v);
    while (!stopping) {
        void (*counts)(void *), (*rates)(void *);
        void *listener;
        int ratesDue;

        epicsEventWaitWithTimeout(stats->wake, 1.0);
        gwGatewayGetCounters(stats->gateway, &counters);
        sampleCounts(stats, &counters, v);
        takeSample(&counters, &now);
        ratesDue = epicsTimeDiffInSeconds(&now.when, &stats->last.when) >= intervalNow() - 0.05;
        if (ratesDue) {
            sampleRates(&stats->last, &now, v);
            rankAll(stats, epicsTimeDiffInSeconds(&now.when, &stats->last.when), texts);
            stats->last = now;
        }
        epicsMutexMustLock(stats->lock);
        memcpy(stats->value, v, sizeof v);
        if (ratesDue)
            memcpy(stats->text, stats->work, sizeof stats->work);
        counts = stats->counts;
        rates = ratesDue ? stats->rates : NULL;
        listener = stats->arg;
        stopping = stats->stopping;
        epicsMutexUnlock(stats->lock);
        if (stopping)
            break;
        if (counts)
            counts(listener);
        if (rates)
            rates(listener);
    }
    epicsEventSignal(stats->exited);
}

gwStats *gwStatsCreate(struct gwGateway *gateway)
{
    gwStats *stats = calloc(1, sizeof *stats);

    if (!stats)
        return NULL;
    stats->gateway = gateway;
    stats->lock = epicsMutexCreate();
    stats->wake = epicsEventCreate(epicsEventEmpty);
    stats->exited = epicsEventCreate(epicsEventEmpty);
    stats->clients = calloc(GW_STATS_MAX_CLIENTS, sizeof *stats->clients);
    stats->previous = calloc(GW_STATS_MAX_CLIENTS, sizeof *stats->previous);
    if (!stats->lock || !stats->wake || !stats->exited || !stats->clients
        || !stats->previous) {
        gwStatsDestroy(stats);
        return NULL;
    }
    return stats;
}

int gwStatsStart(gwStats *stats)
{
    int status = 0;

    epicsMutexMustLock(stats->lock);
    if (!stats->started) {
        stats->started = epicsThreadCreate("gwStats", epicsThreadPriorityLow,
                                           epicsThreadGetStackSize(epicsThreadStackMedium),
                                           statsThread, stats) != NULL;
        status = stats->started ? 0 : -1;
    }
    epicsMutexUnlock(stats->lock);
    return status;
}

void gwStatsDestroy(gwStats *stats)
{
    int started;

    if (!stats)
        return;
    if (stats->lock) {
        epicsMutexMustLock(stats->lock);
        started = stats->started;
        stats->stopping = 1;
        epicsMutexUnlock(stats->lock);
        if (started) {
            epicsEventSignal(stats->wake);
            epicsEventMustWait(stats->exited);
        }
        epicsMutexDestroy(stats->lock);
    }
    if (stats->wake)
        epicsEventDestroy(stats->wake);
    if (stats->exited)
        epicsEventDestroy(stats->exited);
    free(stats->clients);
    free(stats->previous);
    free(stats);
}

double gwStatsValue(gwStats *stats, gwStatId id)
{
    double value = 0.0;

    if ((unsigned)id >= GW_STATS)
        return 0.0;
    epicsMutexMustLock(stats->lock);
    value = stats->value[id];
    epicsMutexUnlock(stats->lock);
    return value;
}

void gwStatsText(gwStats *stats, gwStatTextId id, char *buf, size_t size)
{
    if (size == 0)
        return;
    buf[0] = '\0';
    if ((unsigned)id >= GW_STAT_TEXTS)
        return;
    epicsMutexMustLock(stats->lock);
    snprintf(buf, size, "%s", stats->text[id]);
    epicsMutexUnlock(stats->lock);
}

void gwStatsListen(gwStats *stats, void (*counts)(void *arg), void (*rates)(void *arg),
                   void *arg)
{
    epicsMutexMustLock(stats->lock);
    stats->counts = counts;
    stats->rates = rates;
    stats->arg = arg;
    epicsMutexUnlock(stats->lock);
}
