/* gwBenchProbe.c - the CA client side of bench/gateway's latency, connect
 * and get figures (its fan-out figures use gwBenchClient monitor/put).
 *
 *   gwBenchProbe latency SECONDS RATE PV PUT_ADDRESS MONITOR_ADDRESS...
 *       One CA context per MONITOR_ADDRESS (an EPICS_CA_ADDR_LIST, at most 8)
 *       subscribes DBR_DOUBLE / DBE_VALUE to PV there; another context puts
 *       to PV at PUT_ADDRESS, RATE puts per second for SECONDS. Each put
 *       writes a new sequence number; each monitor callback takes the
 *       arrival time of each number (CLOCK_MONOTONIC). Prints per monitor I
 *       "latency I sent S received R median_us M p90_us P p99_us Q max_us X"
 *       (put call to arrival) and, for I > 0, "added I pairs N median_us ..."
 *       (arrival at monitor I minus arrival at monitor 0, put by put).
 *       libca reads EPICS_CA_ADDR_LIST when a context creates its first
 *       channel, so the program sets it before each context's first channel.
 *
 *   gwBenchProbe connect N PREFIX SECONDS
 *       One context creates channels PREFIX000000 .. PREFIX<N-1> (six digits)
 *       with a connection callback. Prints "connected C of N seconds T half
 *       H p90 X p99 Y" (when all, half, 90 % and 99 % were connected; -1:
 *       never) when all are connected or after SECONDS (then "timeout"), then
 *       holds the channels until a line or end of input on stdin (at most
 *       SECONDS more), destroys the context and prints "released". With
 *       GW_BENCH_TIMELINE=FILE in the environment it also appends to FILE,
 *       each time the count changes (polled every 2 ms), "SECONDS COUNT",
 *       and "end" at the end: when the connections came.
 *
 *   gwBenchProbe get COUNT PV ADDRESS...
 *       One context per ADDRESS (at most 8) connects PV there; then round
 *       robin over the contexts, COUNT times each: ca_array_get_callback
 *       (DBR_DOUBLE, 1) and a wait for its callback (after 10 unmeasured
 *       rounds), so every target sees the same machine load. Prints per
 *       context I "get I count C median_us M p90_us P p99_us Q max_us X", or
 *       fails on the first get without answer.
 *
 *   gwBenchProbe gets SECONDS OUTSTANDING PV ADDRESS
 *       One context connects PV at ADDRESS and keeps OUTSTANDING
 *       ca_array_get_callback(DBR_DOUBLE, 1) in flight for SECONDS: each
 *       answer's callback sends the next get (one ca_flush_io per answer).
 *       Prints "gets N seconds S per_s R errors E" (answers counted after
 *       the first 0.5 s; E: answers that were not ECA_NORMAL).
 *
 * Threads: callbacks run on libca's auxiliary threads (preemptive contexts)
 * and only store a time, bump an atomic counter or signal an event; the
 * main thread does the rest, attaching to one context at a time. The
 * arrival times of the latency mode are guarded by one epicsMutex. Every
 * wait is bounded in time.
 */
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cadef.h>
#include <envDefs.h>
#include <epicsAtomic.h>
#include <epicsEvent.h>
#include <epicsMutex.h>
#include <epicsThread.h>
#include <epicsTime.h>

#define PROBE_CONNECT_SECONDS 10.0
#define PROBE_ANSWER_SECONDS 5.0
#define PROBE_DRAIN_SECONDS 2.0
#define PROBE_WARMUP_GETS 10
#define PROBE_MAX_SAMPLES 10000000.0
#define PROBE_MAX_CHANNELS 1000000
#define PROBE_NAME_SIZE 128
#define PROBE_MAX_TARGETS 8

/* ---------------------------------------------------------------- helpers */

static double monotonicSeconds(void)
{
    return (double)epicsMonotonicGet() * 1e-9;
}

static int compareDoubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* The p-quantile (0 < p <= 1) of n sorted values, nearest rank. */
static double quantile(const double *sorted, size_t n, double p)
{
    size_t rank = (size_t)ceil(p * (double)n);

    if (n == 0)
        return NAN;
    return sorted[rank ? rank - 1 : 0];
}

/* Sort the n samples (seconds) and print them as microseconds. */
static void printDistribution(double *samples, size_t n)
{
    qsort(samples, n, sizeof *samples, compareDoubles);
    printf("median_us %.1f p90_us %.1f p99_us %.1f max_us %.1f\n",
           1e6 * quantile(samples, n, 0.5), 1e6 * quantile(samples, n, 0.9),
           1e6 * quantile(samples, n, 0.99), 1e6 * quantile(samples, n, 1.0));
}

/* A context whose first channel, to pv, uses the given address list; the
 * channel connected (bounded wait). The context is left current. */
static int connectOne(const char *address, const char *pv, chid *channel)
{
    int status;

    epicsEnvSet("EPICS_CA_ADDR_LIST", address);
    status = ca_context_create(ca_enable_preemptive_callback);
    if (status == ECA_NORMAL)
        status = ca_create_channel(pv, NULL, NULL, CA_PRIORITY_DEFAULT, channel);
    if (status == ECA_NORMAL)
        status = ca_pend_io(PROBE_CONNECT_SECONDS);
    if (status != ECA_NORMAL) {
        fprintf(stderr, "gwBenchProbe: %s via %s: %s\n", pv, address, ca_message(status));
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- latency */

typedef struct probeLatency probeLatency;

typedef struct probeMonitor {
    probeLatency *run;
    struct ca_client_context *context;   /* main thread only */
    double *arrived;     /* guarded by run->lock; 0: not (yet) arrived */
    size_t received;     /* guarded by run->lock */
    int haveFirst;       /* guarded by run->lock */
    double firstValue;   /* guarded by run->lock */
} probeMonitor;

struct probeLatency {
    epicsMutexId lock;
    epicsEventId first;  /* signalled by each monitor's first update */
    double base;         /* guarded by lock: sequence number 0 is put as base */
    size_t count;        /* number of puts */
    double *sent;        /* main thread only */
    int monitors;
    probeMonitor monitor[PROBE_MAX_TARGETS];
};

static void onLatencyUpdate(struct event_handler_args args)
{
    probeMonitor *monitor = args.usr;
    probeLatency *run = monitor->run;
    double now = monotonicSeconds(), value;

    if (args.status != ECA_NORMAL || !args.dbr)
        return;
    value = *(const dbr_double_t *)args.dbr;
    epicsMutexMustLock(run->lock);
    if (!monitor->haveFirst) {
        monitor->haveFirst = 1;
        monitor->firstValue = value;
        epicsEventSignal(run->first);
    } else if (value >= run->base && value < run->base + (double)run->count) {
        size_t index = (size_t)(value - run->base);
        if (monitor->arrived[index] == 0.0) {
            monitor->arrived[index] = now;
            monitor->received++;
        }
    }
    epicsMutexUnlock(run->lock);
}

/* Subscribe in a context of its own (left detached). 0 or -1. */
static int latencySubscribe(probeMonitor *monitor, const char *pv, const char *address)
{
    chid channel;
    evid subscription;
    int status;

    if (connectOne(address, pv, &channel) != 0)
        return -1;
    monitor->context = ca_current_context();
    status = ca_create_subscription(DBR_DOUBLE, 1, channel, DBE_VALUE, onLatencyUpdate,
                                    monitor, &subscription);
    if (status == ECA_NORMAL)
        status = ca_flush_io();
    ca_detach_context();
    if (status != ECA_NORMAL) {
        fprintf(stderr, "gwBenchProbe: subscribe %s via %s: %s\n", pv, address,
                ca_message(status));
        return -1;
    }
    return 0;
}

/* Wait for every monitor's first update; start the sequence above all of
 * them. 0 or -1. */
static int latencyBase(probeLatency *run)
{
    double deadline = monotonicSeconds() + PROBE_CONNECT_SECONDS;
    int i, all = 0;

    while (!all && monotonicSeconds() < deadline) {
        epicsEventWaitWithTimeout(run->first, 0.1);
        epicsMutexMustLock(run->lock);
        for (i = 0, all = 1; i < run->monitors; i++)
            all = all && run->monitor[i].haveFirst;
        epicsMutexUnlock(run->lock);
    }
    if (!all) {
        fprintf(stderr, "gwBenchProbe: no first update on every monitor\n");
        return -1;
    }
    epicsMutexMustLock(run->lock);
    run->base = 1.0;
    for (i = 0; i < run->monitors; i++)
        if (floor(run->monitor[i].firstValue) + 1.0 > run->base)
            run->base = floor(run->monitor[i].firstValue) + 1.0;
    epicsMutexUnlock(run->lock);
    return 0;
}

/* Put the sequence at rate puts per second through the current context. */
static int latencyPut(probeLatency *run, chid channel, double rate)
{
    double start = monotonicSeconds(), base;
    size_t k;

    epicsMutexMustLock(run->lock);
    base = run->base;
    epicsMutexUnlock(run->lock);
    for (k = 0; k < run->count; k++) {
        double due = start + (double)k / rate, now, value = base + (double)k;
        int status;
        while ((now = monotonicSeconds()) < due)
            epicsThreadSleep(due - now);
        run->sent[k] = monotonicSeconds();
        status = ca_put(DBR_DOUBLE, channel, &value);
        if (status == ECA_NORMAL)
            status = ca_flush_io();
        if (status != ECA_NORMAL) {
            fprintf(stderr, "gwBenchProbe: put: %s\n", ca_message(status));
            return -1;
        }
    }
    return 0;
}

/* Wait (bounded) until every monitor has every put. */
static void latencyDrain(probeLatency *run)
{
    double deadline = monotonicSeconds() + PROBE_DRAIN_SECONDS;
    int i, all = 0;

    while (!all && monotonicSeconds() < deadline) {
        epicsThreadSleep(0.01);
        epicsMutexMustLock(run->lock);
        for (i = 0, all = 1; i < run->monitors; i++)
            all = all && run->monitor[i].received == run->count;
        epicsMutexUnlock(run->lock);
    }
}

/* Print monitor i's put-to-arrival distribution and, for i > 0, the
 * distribution of its arrival minus monitor 0's, sample by sample. */
static void latencyReport(probeLatency *run, int i, double *scratch)
{
    const double *arrived = run->monitor[i].arrived, *reference = run->monitor[0].arrived;
    size_t k, n = 0;

    for (k = 0; k < run->count; k++)
        if (arrived[k] != 0.0)
            scratch[n++] = arrived[k] - run->sent[k];
    printf("latency %d sent %zu received %zu ", i, run->count, n);
    printDistribution(scratch, n);
    if (i == 0)
        return;
    for (k = 0, n = 0; k < run->count; k++)
        if (arrived[k] != 0.0 && reference[k] != 0.0)
            scratch[n++] = arrived[k] - reference[k];
    printf("added %d pairs %zu ", i, n);
    printDistribution(scratch, n);
}

static void latencyFree(probeLatency *run)
{
    int i;

    if (ca_current_context())
        ca_context_destroy();
    for (i = 0; i < run->monitors; i++) {
        if (run->monitor[i].context) {
            ca_attach_context(run->monitor[i].context);
            ca_context_destroy();
        }
        free(run->monitor[i].arrived);
    }
    free(run->sent);
}

static int latencyMode(double seconds, double rate, const char *pv, const char *putAddress,
                       int monitors, char *const monitorAddresses[])
{
    probeLatency run;
    double *scratch;
    chid putChannel;
    int i, failed;

    memset(&run, 0, sizeof run);
    run.count = (size_t)(seconds * rate);
    run.base = HUGE_VAL;
    run.lock = epicsMutexMustCreate();
    run.first = epicsEventMustCreate(epicsEventEmpty);
    run.monitors = monitors;
    run.sent = calloc(run.count, sizeof *run.sent);
    scratch = calloc(run.count, sizeof *scratch);
    failed = !run.sent || !scratch;
    for (i = 0; i < monitors && !failed; i++) {
        run.monitor[i].run = &run;
        run.monitor[i].arrived = calloc(run.count, sizeof *run.monitor[i].arrived);
        failed = !run.monitor[i].arrived
            || latencySubscribe(&run.monitor[i], pv, monitorAddresses[i]) != 0;
    }
    if (!failed)
        failed = latencyBase(&run) != 0;
    if (!failed)
        failed = connectOne(putAddress, pv, &putChannel) != 0;
    if (!failed)
        failed = latencyPut(&run, putChannel, rate) != 0;
    if (!failed) {
        latencyDrain(&run);
        epicsMutexMustLock(run.lock);
        for (i = 0; i < monitors; i++)
            latencyReport(&run, i, scratch);
        epicsMutexUnlock(run.lock);
    }
    latencyFree(&run);
    free(scratch);
    return failed ? 1 : 0;
}

/* ---------------------------------------------------------------- connect */

static size_t connectedChannels;   /* atomic */

static void onConnection(struct connection_handler_args args)
{
    if (args.op == CA_OP_CONN_UP)
        epicsAtomicIncrSizeT(&connectedChannels);
    else
        epicsAtomicDecrSizeT(&connectedChannels);
}

/* Create the n channels; 0 or -1. */
static int connectCreate(chid *channels, size_t n, const char *prefix)
{
    char name[PROBE_NAME_SIZE];
    size_t i;

    for (i = 0; i < n; i++) {
        int status;
        snprintf(name, sizeof name, "%s%06zu", prefix, i);
        status = ca_create_channel(name, onConnection, NULL, CA_PRIORITY_DEFAULT, &channels[i]);
        if (status != ECA_NORMAL) {
            fprintf(stderr, "gwBenchProbe: create %s: %s\n", name, ca_message(status));
            return -1;
        }
    }
    ca_flush_io();
    return 0;
}

/* Wait for a line or end of input on stdin, at most seconds. */
static void waitForInput(double seconds)
{
    struct pollfd in = { STDIN_FILENO, POLLIN, 0 };
    char line[64];

    if (poll(&in, 1, (int)(seconds * 1000.0)) > 0 && !fgets(line, sizeof line, stdin))
        line[0] = '\0';
}

/* Poll the connection count until all n are connected or seconds have
 * passed; when[0..2]: when half, 90 % and 99 % were connected (or -1). */
static size_t connectWait(size_t n, double start, double seconds, double when[3])
{
    static const double shares[3] = { 0.5, 0.9, 0.99 };
    size_t connected = 0, last = 0;
    const char *timelinePath = getenv("GW_BENCH_TIMELINE");
    FILE *timeline = timelinePath ? fopen(timelinePath, "a") : NULL;
    int i;

    for (i = 0; i < 3; i++)
        when[i] = -1.0;
    while (monotonicSeconds() - start < seconds) {
        connected = epicsAtomicGetSizeT(&connectedChannels);
        if (timeline && connected != last) {
            fprintf(timeline, "%.4f %zu\n", monotonicSeconds() - start, connected);
            last = connected;
        }
        for (i = 0; i < 3; i++)
            if (when[i] < 0.0 && (double)connected >= shares[i] * (double)n)
                when[i] = monotonicSeconds() - start;
        if (connected == n)
            break;
        epicsThreadSleep(0.002);
    }
    if (timeline) {
        fprintf(timeline, "end\n");
        fclose(timeline);
    }
    return connected;
}

static int connectMode(size_t n, const char *prefix, double seconds)
{
    chid *channels = calloc(n, sizeof *channels);
    double start, elapsed, when[3] = { -1.0, -1.0, -1.0 };
    size_t connected = 0;
    int failed;

    if (!channels || ca_context_create(ca_enable_preemptive_callback) != ECA_NORMAL) {
        free(channels);
        return 1;
    }
    start = monotonicSeconds();
    failed = connectCreate(channels, n, prefix) != 0;
    if (!failed)
        connected = connectWait(n, start, seconds, when);
    elapsed = monotonicSeconds() - start;
    printf("connected %zu of %zu seconds %.3f half %.3f p90 %.3f p99 %.3f%s\n", connected, n,
           elapsed, when[0], when[1], when[2], connected == n ? "" : " timeout");
    fflush(stdout);
    if (!failed)
        waitForInput(seconds);
    ca_context_destroy();
    free(channels);
    printf("released\n");
    return failed || connected != n ? 1 : 0;
}

/* ---------------------------------------------------------------- get */

typedef struct probeTarget {
    struct ca_client_context *context;
    chid channel;
    double *samples;
} probeTarget;

static void onGet(struct event_handler_args args)
{
    if (args.status == ECA_NORMAL)
        epicsEventSignal((epicsEventId)args.usr);
}

/* One get through target's context and the wait for its answer; the round
 * trip in seconds, or -1. */
static double getOnce(probeTarget *target, epicsEventId done)
{
    double start, elapsed = -1.0;
    int status;

    ca_attach_context(target->context);
    start = monotonicSeconds();
    status = ca_array_get_callback(DBR_DOUBLE, 1, target->channel, onGet, done);
    if (status == ECA_NORMAL)
        status = ca_flush_io();
    if (status != ECA_NORMAL)
        fprintf(stderr, "gwBenchProbe: get: %s\n", ca_message(status));
    else if (epicsEventWaitWithTimeout(done, PROBE_ANSWER_SECONDS) != epicsEventWaitOK)
        fprintf(stderr, "gwBenchProbe: no answer to a get after %.0f s\n", PROBE_ANSWER_SECONDS);
    else
        elapsed = monotonicSeconds() - start;
    ca_detach_context();
    return elapsed;
}

/* The targets' contexts and channels (detached). 0 or -1. */
static int getConnect(probeTarget *targets, int n, const char *pv, char *const addresses[],
                      size_t count)
{
    int i;

    for (i = 0; i < n; i++) {
        int failed;
        targets[i].samples = calloc(count, sizeof *targets[i].samples);
        failed = !targets[i].samples || connectOne(addresses[i], pv, &targets[i].channel) != 0;
        if (ca_current_context()) {
            targets[i].context = ca_current_context();
            ca_detach_context();
        }
        if (failed)
            return -1;
    }
    return 0;
}

/* Gets round-robin over the targets: warm-up ones first, then count each. */
static int getRounds(probeTarget *targets, int n, size_t count, epicsEventId done)
{
    size_t k;
    int i;

    for (k = 0; k < PROBE_WARMUP_GETS; k++)
        for (i = 0; i < n; i++)
            if (getOnce(&targets[i], done) < 0.0)
                return -1;
    for (k = 0; k < count; k++)
        for (i = 0; i < n; i++)
            if ((targets[i].samples[k] = getOnce(&targets[i], done)) < 0.0)
                return -1;
    return 0;
}

static int getMode(size_t count, const char *pv, int n, char *const addresses[])
{
    probeTarget targets[PROBE_MAX_TARGETS];
    epicsEventId done = epicsEventMustCreate(epicsEventEmpty);
    int i, failed;

    memset(targets, 0, sizeof targets);
    failed = getConnect(targets, n, pv, addresses, count) != 0;
    if (!failed)
        failed = getRounds(targets, n, count, done) != 0;
    for (i = 0; i < n; i++) {
        if (!failed) {
            printf("get %d count %zu ", i, count);
            printDistribution(targets[i].samples, count);
        }
        if (targets[i].context) {
            ca_attach_context(targets[i].context);
            ca_context_destroy();
        }
        free(targets[i].samples);
    }
    epicsEventDestroy(done);
    return failed ? 1 : 0;
}

/* ---------------------------------------------------------------- gets */

typedef struct probeStream {
    chid channel;
    int stopping;           /* atomic: no new gets */
    size_t answers;         /* atomic */
    size_t errors;          /* atomic */
    size_t inFlight;        /* atomic */
} probeStream;

static void onStreamGet(struct event_handler_args args)
{
    probeStream *stream = args.usr;

    if (args.status == ECA_NORMAL)
        epicsAtomicIncrSizeT(&stream->answers);
    else
        epicsAtomicIncrSizeT(&stream->errors);
    if (!epicsAtomicGetIntT(&stream->stopping)
        && ca_array_get_callback(DBR_DOUBLE, 1, stream->channel, onStreamGet, stream)
               == ECA_NORMAL) {
        ca_flush_io();
        return;
    }
    epicsAtomicDecrSizeT(&stream->inFlight);
}

static int getsMode(double seconds, int outstanding, const char *pv, char *address)
{
    probeStream stream;
    size_t first, last;
    double t0, t1, deadline;
    int i, failed;

    memset(&stream, 0, sizeof stream);
    failed = connectOne(address, pv, &stream.channel) != 0;
    for (i = 0; !failed && i < outstanding; i++) {
        epicsAtomicIncrSizeT(&stream.inFlight);
        if (ca_array_get_callback(DBR_DOUBLE, 1, stream.channel, onStreamGet, &stream)
                != ECA_NORMAL) {
            epicsAtomicDecrSizeT(&stream.inFlight);
            failed = 1;
        }
    }
    if (!failed) {
        ca_flush_io();
        epicsThreadSleep(0.5);
        first = epicsAtomicGetSizeT(&stream.answers);
        t0 = monotonicSeconds();
        epicsThreadSleep(seconds);
        last = epicsAtomicGetSizeT(&stream.answers);
        t1 = monotonicSeconds();
        printf("gets %zu seconds %.3f per_s %.0f errors %zu\n", last - first, t1 - t0,
               (double)(last - first) / (t1 - t0), epicsAtomicGetSizeT(&stream.errors));
    }
    epicsAtomicSetIntT(&stream.stopping, 1);
    deadline = monotonicSeconds() + PROBE_ANSWER_SECONDS;
    while (epicsAtomicGetSizeT(&stream.inFlight) && monotonicSeconds() < deadline)
        epicsThreadSleep(0.01);
    if (ca_current_context())
        ca_context_destroy();
    return failed ? 1 : 0;
}

/* ---------------------------------------------------------------- main */

static int usage(void)
{
    fprintf(stderr, "usage: gwBenchProbe latency SECONDS RATE PV PUT_ADDRESS MONITOR_ADDRESS...\n"
                    "       gwBenchProbe connect N PREFIX SECONDS\n"
                    "       gwBenchProbe get COUNT PV ADDRESS...\n"
                    "       gwBenchProbe gets SECONDS OUTSTANDING PV ADDRESS\n"
                    "(at most %d addresses)\n", PROBE_MAX_TARGETS);
    return 2;
}

int main(int argc, char *argv[])
{
    if (argc >= 7 && argc <= 6 + PROBE_MAX_TARGETS && strcmp(argv[1], "latency") == 0) {
        double seconds = atof(argv[2]), rate = atof(argv[3]);
        if (seconds <= 0.0 || seconds > 3600.0 || rate <= 0.0
                || seconds * rate > PROBE_MAX_SAMPLES)
            return usage();
        return latencyMode(seconds, rate, argv[4], argv[5], argc - 6, argv + 6);
    }
    if (argc == 5 && strcmp(argv[1], "connect") == 0) {
        long n = atol(argv[2]);
        double seconds = atof(argv[4]);
        if (n < 1 || n > PROBE_MAX_CHANNELS || seconds <= 0.0 || seconds > 3600.0)
            return usage();
        return connectMode((size_t)n, argv[3], seconds);
    }
    if (argc >= 5 && argc <= 4 + PROBE_MAX_TARGETS && strcmp(argv[1], "get") == 0) {
        long count = atol(argv[2]);
        if (count < 1 || count > 10000000)
            return usage();
        return getMode((size_t)count, argv[3], argc - 4, argv + 4);
    }
    if (argc == 6 && strcmp(argv[1], "gets") == 0) {
        double seconds = atof(argv[2]);
        int outstanding = atoi(argv[3]);
        if (seconds <= 0.0 || seconds > 3600.0 || outstanding < 1 || outstanding > 1000)
            return usage();
        return getsMode(seconds, outstanding, argv[4], argv[5]);
    }
    return usage();
}
