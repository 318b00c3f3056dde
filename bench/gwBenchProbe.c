/* gwBenchProbe.c - the CA client side of bench/gateway's latency, connect
 * and get figures (its fan-out figures use gwBenchClient monitor/put).
 *
 *   gwBenchProbe latency SECONDS RATE PV PUT_ADDRESS MONITOR_ADDRESS
 *       Two CA contexts: one subscribes DBR_DOUBLE / DBE_VALUE to PV at
 *       MONITOR_ADDRESS (an EPICS_CA_ADDR_LIST), the other puts to PV at
 *       PUT_ADDRESS, RATE puts per second for SECONDS. Each put writes a
 *       new sequence number; the monitor callback takes the arrival time of
 *       each number. Prints "latency sent S received R median_us M p90_us
 *       P p99_us Q max_us X" (put call to monitor callback, CLOCK_MONOTONIC).
 *       libca reads EPICS_CA_ADDR_LIST when a context creates its first
 *       channel, so the program sets it before each context's first channel.
 *
 *   gwBenchProbe connect N PREFIX SECONDS
 *       One context creates channels PREFIX000000 .. PREFIX<N-1> (six digits)
 *       with a connection callback. Prints "connected C of N seconds T" when
 *       all are connected or after SECONDS (then "timeout" follows), then
 *       holds the channels until a line or end of input on stdin (at most
 *       SECONDS more), destroys the context and prints "released".
 *
 *   gwBenchProbe get COUNT PV
 *       COUNT times: ca_array_get_callback(DBR_DOUBLE, 1) and a wait for its
 *       callback (after 10 unmeasured ones). Prints "get count C median_us M
 *       p90_us P p99_us Q max_us X" or fails on the first get without answer.
 *
 * Threads: callbacks run on libca's auxiliary threads (preemptive contexts)
 * and only store a time, bump an atomic counter or signal an event; the
 * main thread does the rest. The arrival times of the latency mode are
 * guarded by one epicsMutex. Every wait is bounded in time.
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

    if (address)
        epicsEnvSet("EPICS_CA_ADDR_LIST", address);
    status = ca_context_create(ca_enable_preemptive_callback);
    if (status == ECA_NORMAL)
        status = ca_create_channel(pv, NULL, NULL, CA_PRIORITY_DEFAULT, channel);
    if (status == ECA_NORMAL)
        status = ca_pend_io(PROBE_CONNECT_SECONDS);
    if (status != ECA_NORMAL) {
        fprintf(stderr, "gwBenchProbe: %s via %s: %s\n", pv, address ? address : "environment",
                ca_message(status));
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- latency */

typedef struct probeLatency {
    epicsMutexId lock;
    epicsEventId first;   /* signalled by the first update */
    int haveFirst;        /* guarded by lock */
    double firstValue;    /* guarded by lock */
    double base;          /* sequence number 0 is put as base; set before puts */
    size_t count;         /* number of puts planned */
    double *sent;         /* main thread only */
    double *arrived;      /* guarded by lock; 0: not (yet) arrived */
    size_t received;      /* guarded by lock */
} probeLatency;

static void onLatencyUpdate(struct event_handler_args args)
{
    probeLatency *run = args.usr;
    double now = monotonicSeconds(), value;

    if (args.status != ECA_NORMAL || !args.dbr)
        return;
    value = *(const dbr_double_t *)args.dbr;
    epicsMutexMustLock(run->lock);
    if (!run->haveFirst) {
        run->haveFirst = 1;
        run->firstValue = value;
        epicsEventSignal(run->first);
    } else if (value >= run->base && value < run->base + (double)run->count) {
        size_t index = (size_t)(value - run->base);
        if (run->arrived[index] == 0.0) {
            run->arrived[index] = now;
            run->received++;
        }
    }
    epicsMutexUnlock(run->lock);
}

/* Subscribe in a context of its own (left detached); wait for the first
 * update and derive the base of the sequence numbers from it. */
static int latencySubscribe(probeLatency *run, const char *pv, const char *address,
                            struct ca_client_context **context)
{
    chid channel;
    evid subscription;
    int status;

    if (connectOne(address, pv, &channel) != 0)
        return -1;
    *context = ca_current_context();
    status = ca_create_subscription(DBR_DOUBLE, 1, channel, DBE_VALUE, onLatencyUpdate, run,
                                    &subscription);
    if (status == ECA_NORMAL)
        status = ca_flush_io();
    ca_detach_context();
    if (status != ECA_NORMAL) {
        fprintf(stderr, "gwBenchProbe: subscribe %s: %s\n", pv, ca_message(status));
        return -1;
    }
    if (epicsEventWaitWithTimeout(run->first, PROBE_CONNECT_SECONDS) != epicsEventWaitOK) {
        fprintf(stderr, "gwBenchProbe: no first update of %s\n", pv);
        return -1;
    }
    epicsMutexMustLock(run->lock);
    run->base = floor(run->firstValue) + 1.0;
    if (run->base < 1.0)
        run->base = 1.0;
    epicsMutexUnlock(run->lock);
    return 0;
}

/* Put the sequence at rate puts per second through the current context. */
static int latencyPut(probeLatency *run, chid channel, double rate)
{
    double start = monotonicSeconds();
    size_t k;

    for (k = 0; k < run->count; k++) {
        double due = start + (double)k / rate, now, value = run->base + (double)k;
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

/* Wait (bounded) until every put has arrived; print the distribution. */
static void latencyReport(probeLatency *run)
{
    double deadline = monotonicSeconds() + PROBE_DRAIN_SECONDS;
    double *latency = malloc((run->count ? run->count : 1) * sizeof *latency);
    size_t k, n = 0, received;

    for (;;) {
        epicsMutexMustLock(run->lock);
        received = run->received;
        epicsMutexUnlock(run->lock);
        if (received == run->count || monotonicSeconds() > deadline)
            break;
        epicsThreadSleep(0.01);
    }
    if (!latency)
        return;
    epicsMutexMustLock(run->lock);
    for (k = 0; k < run->count; k++)
        if (run->arrived[k] != 0.0)
            latency[n++] = run->arrived[k] - run->sent[k];
    epicsMutexUnlock(run->lock);
    printf("latency sent %zu received %zu ", run->count, n);
    printDistribution(latency, n);
    free(latency);
}

static int latencyMode(double seconds, double rate, const char *pv, const char *putAddress,
                       const char *monitorAddress)
{
    probeLatency run;
    struct ca_client_context *monitorContext = NULL;
    chid putChannel;
    int failed;

    memset(&run, 0, sizeof run);
    run.count = (size_t)(seconds * rate);
    run.lock = epicsMutexMustCreate();
    run.first = epicsEventMustCreate(epicsEventEmpty);
    run.sent = calloc(run.count, sizeof *run.sent);
    run.arrived = calloc(run.count, sizeof *run.arrived);
    failed = !run.sent || !run.arrived;
    if (!failed)
        failed = latencySubscribe(&run, pv, monitorAddress, &monitorContext) != 0;
    if (!failed)
        failed = connectOne(putAddress, pv, &putChannel) != 0;
    if (!failed)
        failed = latencyPut(&run, putChannel, rate) != 0;
    if (!failed)
        latencyReport(&run);
    if (ca_current_context())
        ca_context_destroy();
    if (monitorContext) {
        ca_attach_context(monitorContext);
        ca_context_destroy();
    }
    free(run.sent);
    free(run.arrived);
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

static int connectMode(size_t n, const char *prefix, double seconds)
{
    chid *channels = calloc(n, sizeof *channels);
    double start, elapsed;
    size_t connected = 0;
    int failed;

    if (!channels || ca_context_create(ca_enable_preemptive_callback) != ECA_NORMAL) {
        free(channels);
        return 1;
    }
    start = monotonicSeconds();
    failed = connectCreate(channels, n, prefix) != 0;
    while (!failed && monotonicSeconds() - start < seconds) {
        connected = epicsAtomicGetSizeT(&connectedChannels);
        if (connected == n)
            break;
        epicsThreadSleep(0.002);
    }
    elapsed = monotonicSeconds() - start;
    connected = epicsAtomicGetSizeT(&connectedChannels);
    printf("connected %zu of %zu seconds %.3f%s\n", connected, n, elapsed,
           connected == n ? "" : " timeout");
    fflush(stdout);
    if (!failed)
        waitForInput(seconds);
    ca_context_destroy();
    free(channels);
    printf("released\n");
    return failed || connected != n ? 1 : 0;
}

/* ---------------------------------------------------------------- get */

static void onGet(struct event_handler_args args)
{
    if (args.status == ECA_NORMAL)
        epicsEventSignal((epicsEventId)args.usr);
}

/* One get and the wait for its answer; the round trip in seconds, or -1. */
static double getOnce(chid channel, epicsEventId done)
{
    double start = monotonicSeconds();
    int status = ca_array_get_callback(DBR_DOUBLE, 1, channel, onGet, done);

    if (status == ECA_NORMAL)
        status = ca_flush_io();
    if (status != ECA_NORMAL) {
        fprintf(stderr, "gwBenchProbe: get: %s\n", ca_message(status));
        return -1.0;
    }
    if (epicsEventWaitWithTimeout(done, PROBE_ANSWER_SECONDS) != epicsEventWaitOK) {
        fprintf(stderr, "gwBenchProbe: no answer to a get after %.0f s\n", PROBE_ANSWER_SECONDS);
        return -1.0;
    }
    return monotonicSeconds() - start;
}

static int getMode(size_t count, const char *pv)
{
    double *samples = calloc(count, sizeof *samples);
    epicsEventId done = epicsEventMustCreate(epicsEventEmpty);
    chid channel;
    size_t i;
    int failed = !samples || connectOne(NULL, pv, &channel) != 0;

    for (i = 0; i < PROBE_WARMUP_GETS && !failed; i++)
        failed = getOnce(channel, done) < 0.0;
    for (i = 0; i < count && !failed; i++)
        failed = (samples[i] = getOnce(channel, done)) < 0.0;
    if (!failed) {
        printf("get count %zu ", count);
        printDistribution(samples, count);
    }
    if (ca_current_context())
        ca_context_destroy();
    epicsEventDestroy(done);
    free(samples);
    return failed ? 1 : 0;
}

/* ---------------------------------------------------------------- main */

static int usage(void)
{
    fprintf(stderr, "usage: gwBenchProbe latency SECONDS RATE PV PUT_ADDRESS MONITOR_ADDRESS\n"
                    "       gwBenchProbe connect N PREFIX SECONDS\n"
                    "       gwBenchProbe get COUNT PV\n");
    return 2;
}

int main(int argc, char *argv[])
{
    if (argc == 7 && strcmp(argv[1], "latency") == 0) {
        double seconds = atof(argv[2]), rate = atof(argv[3]);
        if (seconds <= 0.0 || seconds > 3600.0 || rate <= 0.0
                || seconds * rate > PROBE_MAX_SAMPLES)
            return usage();
        return latencyMode(seconds, rate, argv[4], argv[5], argv[6]);
    }
    if (argc == 5 && strcmp(argv[1], "connect") == 0) {
        long n = atol(argv[2]);
        double seconds = atof(argv[4]);
        if (n < 1 || n > PROBE_MAX_CHANNELS || seconds <= 0.0 || seconds > 3600.0)
            return usage();
        return connectMode((size_t)n, argv[3], seconds);
    }
    if (argc == 4 && strcmp(argv[1], "get") == 0) {
        long count = atol(argv[2]);
        if (count < 1 || count > 10000000)
            return usage();
        return getMode((size_t)count, argv[3]);
    }
    return usage();
}
