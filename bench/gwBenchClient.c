/* gwBenchClient.c - the CA client side of the benchmark (bench/run).
 *
 *   gwBenchClient monitor N SECONDS PV
 *       N simulated clients, each its own CA context (so its own TCP
 *       circuit), each subscribing DBR_DOUBLE / DBE_VALUE to PV. Prints
 *       "ready N" once every client has its first update, then answers each
 *       line "mark" on stdin with "mark TOTAL" (events received so far by all
 *       clients). Ends after SECONDS, or at end of input, printing the total
 *       and the per-client minimum and maximum.
 *
 *   gwBenchClient put SECONDS PV [RATE]
 *       Puts an incrementing DBR_DOUBLE to PV with ca_put for SECONDS: as
 *       fast as libca accepts them (libca blocks the caller when the server
 *       does not read), or RATE puts per second (paced every millisecond).
 *       Prints "start" when it begins and "puts P seconds S" after a final
 *       round trip (a get) has made sure the server read them.
 *
 * Threads: monitor callbacks run on libca's auxiliary threads (preemptive
 * contexts) and only increment an atomic counter; the main thread reads
 * stdin and the counters. POSIX poll() on stdin (benchmark, Linux only).
 * Every wait is bounded in time; the program always ends by itself.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cadef.h>
#include <epicsAtomic.h>
#include <epicsThread.h>
#include <epicsTime.h>

#define BENCH_CONNECT_SECONDS 10.0
#define BENCH_MAX_CLIENTS 1000
#define BENCH_FLUSH_EVERY 64u
#define BENCH_PACE_SECONDS 0.001

typedef struct benchClient {
    struct ca_client_context *context;
    chid channel;
    evid subscription;
    size_t events;   /* atomic: updates received */
    size_t errors;   /* atomic: updates with a status other than ECA_NORMAL */
} benchClient;

static double secondsSince(const epicsTimeStamp *start)
{
    epicsTimeStamp now;

    epicsTimeGetCurrent(&now);
    return epicsTimeDiffInSeconds(&now, start);
}

static void onUpdate(struct event_handler_args args)
{
    benchClient *client = args.usr;

    if (args.status == ECA_NORMAL)
        epicsAtomicIncrSizeT(&client->events);
    else
        epicsAtomicIncrSizeT(&client->errors);
}

/* Create client's context, channel and subscription; the context is left
 * detached from the calling thread. 0 or -1. */
static int clientStart(benchClient *client, const char *pv)
{
    int status = ca_context_create(ca_enable_preemptive_callback);

    if (status != ECA_NORMAL) {
        fprintf(stderr, "gwBenchClient: ca_context_create: %s\n", ca_message(status));
        return -1;
    }
    client->context = ca_current_context();
    status = ca_create_channel(pv, NULL, NULL, CA_PRIORITY_DEFAULT, &client->channel);
    if (status == ECA_NORMAL)
        status = ca_pend_io(BENCH_CONNECT_SECONDS);
    if (status == ECA_NORMAL)
        status = ca_create_subscription(DBR_DOUBLE, 1, client->channel, DBE_VALUE,
                                        onUpdate, client, &client->subscription);
    if (status == ECA_NORMAL)
        status = ca_flush_io();
    ca_detach_context();
    if (status != ECA_NORMAL) {
        fprintf(stderr, "gwBenchClient: %s: %s\n", pv, ca_message(status));
        return -1;
    }
    return 0;
}

static void clientStop(benchClient *client)
{
    if (!client->context)
        return;
    ca_attach_context(client->context);
    ca_context_destroy();
    client->context = NULL;
}

static size_t totalEvents(benchClient *clients, int n, size_t *least, size_t *most)
{
    size_t total = 0;
    int i;

    *least = (size_t)-1;
    *most = 0;
    for (i = 0; i < n; i++) {
        size_t events = epicsAtomicGetSizeT(&clients[i].events);
        total += events;
        if (events < *least)
            *least = events;
        if (events > *most)
            *most = events;
    }
    return total;
}

/* Wait until every client has its first update. 0 or -1 (timeout). */
static int waitFirstUpdates(benchClient *clients, int n)
{
    epicsTimeStamp start;
    size_t least, most;

    epicsTimeGetCurrent(&start);
    while (secondsSince(&start) < BENCH_CONNECT_SECONDS) {
        totalEvents(clients, n, &least, &most);
        if (least > 0)
            return 0;
        epicsThreadSleep(0.01);
    }
    return -1;
}

/* Answer "mark" lines on stdin until end of input or the deadline. */
static void answerMarks(benchClient *clients, int n, const epicsTimeStamp *start,
                        double seconds)
{
    char line[64];
    size_t least, most;

    for (;;) {
        double left = seconds - secondsSince(start);
        struct pollfd in = { STDIN_FILENO, POLLIN, 0 };
        int ready;
        if (left <= 0)
            return;
        ready = poll(&in, 1, (int)(left * 1000.0) + 1);
        if (ready < 0)
            return;
        if (ready == 0)
            continue;
        if (!fgets(line, sizeof line, stdin))
            return;
        if (strncmp(line, "mark", 4) == 0) {
            printf("mark %zu\n", totalEvents(clients, n, &least, &most));
            fflush(stdout);
        }
    }
}

static int monitorMode(int n, double seconds, const char *pv)
{
    benchClient *clients = calloc((size_t)n, sizeof *clients);
    epicsTimeStamp start;
    size_t total, least, most, errors = 0;
    int i, failed = 0;

    if (!clients)
        return 1;
    epicsTimeGetCurrent(&start);
    for (i = 0; i < n && !failed; i++)
        failed = clientStart(&clients[i], pv) != 0;
    if (!failed && waitFirstUpdates(clients, n) != 0) {
        fprintf(stderr, "gwBenchClient: not every client had its first update after %.0f s\n",
                BENCH_CONNECT_SECONDS);
        failed = 1;
    }
    if (!failed) {
        printf("ready %d\n", n);
        fflush(stdout);
        answerMarks(clients, n, &start, seconds);
    }
    total = totalEvents(clients, n, &least, &most);
    for (i = 0; i < n; i++) {
        errors += epicsAtomicGetSizeT(&clients[i].errors);
        clientStop(&clients[i]);
    }
    printf("total %zu min %zu max %zu errors %zu\n", total, least, most, errors);
    free(clients);
    return failed ? 1 : 0;
}

/* How many puts may be made in this round: BENCH_FLUSH_EVERY when not
 * paced; else what the rate allows by now (0: sleep a little first). */
static unsigned putsAllowed(double rate, const epicsTimeStamp *start, unsigned long puts)
{
    double due;

    if (rate <= 0.0)
        return BENCH_FLUSH_EVERY;
    due = rate * secondsSince(start) - (double)puts;
    if (due < 1.0) {
        epicsThreadSleep(BENCH_PACE_SECONDS);
        return 0;
    }
    return due < BENCH_FLUSH_EVERY ? (unsigned)due : BENCH_FLUSH_EVERY;
}

static int putMode(double seconds, const char *pv, double rate)
{
    epicsTimeStamp start;
    double value = 0.0, check = 0.0, elapsed;
    unsigned long puts = 0;
    chid channel;
    int status;

    status = ca_context_create(ca_disable_preemptive_callback);
    if (status == ECA_NORMAL)
        status = ca_create_channel(pv, NULL, NULL, CA_PRIORITY_DEFAULT, &channel);
    if (status == ECA_NORMAL)
        status = ca_pend_io(BENCH_CONNECT_SECONDS);
    if (status != ECA_NORMAL) {
        fprintf(stderr, "gwBenchClient: %s: %s\n", pv, ca_message(status));
        return 1;
    }
    printf("start\n");
    fflush(stdout);
    epicsTimeGetCurrent(&start);
    do {
        unsigned i, allowed = putsAllowed(rate, &start, puts);
        for (i = 0; i < allowed && status == ECA_NORMAL; i++) {
            value += 1.0;
            status = ca_put(DBR_DOUBLE, channel, &value);
            puts++;
        }
        if (status == ECA_NORMAL && allowed)
            status = ca_flush_io();
    } while (status == ECA_NORMAL && secondsSince(&start) < seconds);
    if (status == ECA_NORMAL)
        status = ca_get(DBR_DOUBLE, channel, &check);
    if (status == ECA_NORMAL)
        status = ca_pend_io(BENCH_CONNECT_SECONDS);
    elapsed = secondsSince(&start);
    ca_context_destroy();
    if (status != ECA_NORMAL) {
        fprintf(stderr, "gwBenchClient: put to %s: %s\n", pv, ca_message(status));
        return 1;
    }
    printf("puts %lu seconds %.3f last %.0f\n", puts, elapsed, check);
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: gwBenchClient monitor N SECONDS PV\n"
                    "       gwBenchClient put SECONDS PV [RATE]\n");
    return 2;
}

int main(int argc, char *argv[])
{
    if (argc == 5 && strcmp(argv[1], "monitor") == 0) {
        int n = atoi(argv[2]);
        double seconds = atof(argv[3]);
        if (n < 1 || n > BENCH_MAX_CLIENTS || seconds <= 0.0 || seconds > 3600.0)
            return usage();
        return monitorMode(n, seconds, argv[4]);
    }
    if ((argc == 4 || argc == 5) && strcmp(argv[1], "put") == 0) {
        double seconds = atof(argv[2]);
        double rate = argc == 5 ? atof(argv[4]) : 0.0;
        if (seconds <= 0.0 || seconds > 3600.0 || rate < 0.0)
            return usage();
        return putMode(seconds, argv[3], rate);
    }
    return usage();
}
