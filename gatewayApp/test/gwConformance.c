/* gwConformance.c - the provider conformance checks (gwConformance.h): a
 * sink that plays the server's side of a provider (its gwServerCallbacks,
 * gwChannelEvents, value and put callbacks record what arrives), and the
 * checks, which call the provider only through gwProviderCall.h.
 *
 * Threads: the checks run on the caller's thread; the callbacks on the
 * provider's. Each sink has a lock (a leaf) and an event signalled at
 * every call; waits poll the sink's counters with a timeout. "Nothing
 * arrived" is shown by a sentinel that arrives after what must not (a
 * subscription made last on the same channel) and a short quiet time.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <caerr.h>
#include <alarm.h>
#include <dbDefs.h>
#include <db_access.h>
#include <epicsEvent.h>
#include <epicsMutex.h>
#include <epicsStdio.h>
#include <epicsThread.h>
#include <epicsTime.h>
#include <epicsUnitTest.h>

#include "gwConformance.h"
#include "gwProviderCall.h"

#define CONF_WAIT 15.0          /* seconds, for what must come */
#define CONF_WAIT_MUTANT 2.0    /* the same when failures are expected */
#define CONF_QUIET 0.25         /* seconds without what must not come */
#define CONF_SETTLED_MAX 64

typedef struct confRun {
    const gwConformanceTarget *target;
    const gwProvider *p;
    int expectFailure;
    unsigned failures;
    double wait;
    gwClientIdentity client;    /* user "conform" */
    gwClientIdentity guest;     /* user "guest" (read-only through a wrapper) */
} confRun;

static unsigned unexpectedDisconnects;  /* of targets that are not remote */
static int currentRemote;

/* ---------------------------------------------------------------- TAP */

void gwConformanceOk(int pass, const char *format, ...)
{
    va_list args;

    va_start(args, format);
    testOkV(pass, format, args);
    va_end(args);
}

static void confOk(confRun *run, int pass, const char *format, ...) EPICS_PRINTF_STYLE(3, 4);

static void confOk(confRun *run, int pass, const char *format, ...)
{
    char text[256];
    va_list args;

    va_start(args, format);
    epicsVsnprintf(text, sizeof text, format, args);
    va_end(args);
    if (!pass)
        run->failures++;
    if (run->expectFailure) {
        if (!pass)
            testDiag("%s (mutant): failed as it should: %s", run->target->label, text);
        return;
    }
    gwConformanceOk(pass, "%s: %s", run->target->label, text);
}

/* ---------------------------------------------------------------- the server's callbacks */

static struct {
    epicsMutexId lock;
    char settled[CONF_SETTLED_MAX][128];
    unsigned settledCount;
    int holdDepth;
    int holdUnbalanced;
} server;

static void onNamesSettled(void *arg, const char *const *pvNames, unsigned count)
{
    unsigned i;

    (void)arg;
    epicsMutexMustLock(server.lock);
    for (i = 0; i < count; i++) {
        strncpy(server.settled[server.settledCount % CONF_SETTLED_MAX], pvNames[i], 127);
        server.settledCount++;
    }
    epicsMutexUnlock(server.lock);
}

static void onBeaconAnomaly(void *arg)
{
    (void)arg;
}

static void onDeliveryHold(void *arg, gwDeliveryBatch *batch)
{
    (void)arg;
    (void)batch;
    epicsMutexMustLock(server.lock);
    server.holdDepth++;
    epicsMutexUnlock(server.lock);
}

static void onDeliveryRelease(void *arg, gwDeliveryBatch *batch)
{
    (void)arg;
    (void)batch;
    epicsMutexMustLock(server.lock);
    if (--server.holdDepth < 0) {
        server.holdUnbalanced = 1;
        server.holdDepth = 0;
    }
    epicsMutexUnlock(server.lock);
}

static const gwServerCallbacks confServerCallbacks = {
    .namesSettled = onNamesSettled,
    .beaconAnomaly = onBeaconAnomaly,
    .deliveryHold = onDeliveryHold,
    .deliveryRelease = onDeliveryRelease,
};

static int settledNamed(const char *name)
{
    unsigned i, n;
    int found = 0;

    epicsMutexMustLock(server.lock);
    n = server.settledCount < CONF_SETTLED_MAX ? server.settledCount : CONF_SETTLED_MAX;
    for (i = 0; i < n && !found; i++)
        found = strcmp(server.settled[i], name) == 0;
    epicsMutexUnlock(server.lock);
    return found;
}

/* ---------------------------------------------------------------- sinks */

typedef struct confSink confSink;
struct confSink {
    epicsMutexId lock;
    epicsEventId event;
    confRun *run;
    /* channel events */
    unsigned rightsCalls;
    unsigned rights;
    unsigned disconnects;
    unsigned connects;
    int connectedOk;
    unsigned writeFailures;
    /* values (gets and updates) */
    unsigned values;
    int status;
    short type;
    unsigned long count;
    int gotValue;
    union { double align; char bytes[1024]; } value; /* aligned for the DBR structs */
    /* put completions */
    unsigned puts;
    int putStatus;
    /* run once from inside the next value callback */
    void (*hook)(confSink *sink);
    unsigned hooksRan;
    unsigned hookBusy;          /* a hook is running now */
    gwProviderChannel *channel;
    gwProviderSubscription *sub;
};

static void sinkInit(confSink *sink, confRun *run)
{
    memset(sink, 0, sizeof *sink);
    sink->lock = epicsMutexMustCreate();
    sink->event = epicsEventMustCreate(epicsEventEmpty);
    sink->run = run;
}

static void sinkClear(confSink *sink)
{
    epicsMutexDestroy(sink->lock);
    epicsEventDestroy(sink->event);
}

static unsigned sinkGet(confSink *sink, const unsigned *field)
{
    unsigned value;

    epicsMutexMustLock(sink->lock);
    value = *field;
    epicsMutexUnlock(sink->lock);
    return value;
}

/* Wait until *field >= atLeast: 1, or 0 after `seconds`. */
static int sinkWait(confSink *sink, const unsigned *field, unsigned atLeast, double seconds)
{
    epicsTimeStamp start, now;

    epicsTimeGetCurrent(&start);
    while (sinkGet(sink, field) < atLeast) {
        epicsTimeGetCurrent(&now);
        if (epicsTimeDiffInSeconds(&now, &start) > seconds)
            return 0;
        epicsEventWaitWithTimeout(sink->event, 0.05);
    }
    return 1;
}

static void onValue(void *user, int status, short type, unsigned long count, const void *value)
{
    confSink *sink = user;
    void (*hook)(confSink *);

    epicsMutexMustLock(sink->lock);
    sink->values++;
    sink->status = status;
    sink->type = type;
    sink->count = count;
    sink->gotValue = value != NULL;
    memset(sink->value.bytes, 0, sizeof sink->value.bytes);
    if (value) {
        size_t size = dbr_size_n(type, count);
        if (size > sizeof sink->value.bytes)
            size = sizeof sink->value.bytes;
        memcpy(sink->value.bytes, value, size);
    }
    hook = sink->hook;
    sink->hook = NULL;
    sink->hookBusy = hook != NULL;
    epicsMutexUnlock(sink->lock);
    if (hook) {
        hook(sink);
        epicsMutexMustLock(sink->lock);
        sink->hookBusy = 0;
        sink->hooksRan++;
        epicsMutexUnlock(sink->lock);
    }
    epicsEventSignal(sink->event);
}

static void onPut(void *user, int status)
{
    confSink *sink = user;

    epicsMutexMustLock(sink->lock);
    sink->puts++;
    sink->putStatus = status;
    epicsMutexUnlock(sink->lock);
    epicsEventSignal(sink->event);
}

static void onRights(void *serverChannel, unsigned rights)
{
    confSink *sink = serverChannel;

    epicsMutexMustLock(sink->lock);
    sink->rightsCalls++;
    sink->rights = rights;
    epicsMutexUnlock(sink->lock);
    epicsEventSignal(sink->event);
}

static void onDisconnected(void *serverChannel)
{
    confSink *sink = serverChannel;

    epicsMutexMustLock(sink->lock);
    sink->disconnects++;
    if (!currentRemote)
        unexpectedDisconnects++;
    epicsMutexUnlock(sink->lock);
    epicsEventSignal(sink->event);
}

static void onWriteFailed(void *serverChannel, short dbrType, unsigned long count, int status)
{
    confSink *sink = serverChannel;

    (void)dbrType;
    (void)count;
    (void)status;
    epicsMutexMustLock(sink->lock);
    sink->writeFailures++;
    epicsMutexUnlock(sink->lock);
    epicsEventSignal(sink->event);
}

static void onConnected(void *serverChannel, int ok)
{
    confSink *sink = serverChannel;

    epicsMutexMustLock(sink->lock);
    sink->connects++;
    sink->connectedOk = ok;
    epicsMutexUnlock(sink->lock);
    epicsEventSignal(sink->event);
}

static const gwChannelEvents confEvents = {
    .rightsChanged = onRights,
    .disconnected = onDisconnected,
    .writeFailed = onWriteFailed,
    .connected = onConnected,
};

/* The double of the last value (a DBR_DOUBLE or one of its compound types). */
static double sinkDouble(confSink *sink)
{
    double value;

    epicsMutexMustLock(sink->lock);
    memcpy(&value, sink->value.bytes + dbr_value_offset[sink->type], sizeof value);
    epicsMutexUnlock(sink->lock);
    return value;
}

/* ---------------------------------------------------------------- helpers */

static void nameOf(const confRun *run, const char *suffix, char *name, size_t size)
{
    epicsSnprintf(name, size, "%s%s", run->target->prefix, suffix);
}

static void identityInit(gwClientIdentity *client, const char *user)
{
    memset(client, 0, sizeof *client);
    client->user = user;
    client->host = "localhost";
    client->peer = "127.0.0.1:40000";
    client->address.sin_family = AF_INET;
    client->address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    client->address.sin_port = htons(40000);
    client->minorVersion = 13;
}

/* exists until YES (PENDING: namesSettled must name it), then attach and,
 * when deferred, wait for connected. The channel is sink->channel; NULL
 * on failure (with a failed check). */
static gwProviderChannel *confAttach(confRun *run, const char *suffix, confSink *sink,
                                     const gwClientIdentity *client)
{
    char name[128];
    gwExistsQuery query;
    epicsTimeStamp start, now;
    int pending = 0;
    gwProviderChannel *channel;

    nameOf(run, suffix, name, sizeof name);
    epicsTimeGetCurrent(&start);
    for (;;) {
        memset(&query, 0, sizeof query);
        query.pvName = name;
        query.answer = GW_EXISTS_NO;
        gwCallExists(run->p, client, &query, 1);
        gwCallSearchesDone(run->p);
        if (query.answer == GW_EXISTS_YES)
            break;
        if (query.answer == GW_EXISTS_PENDING)
            pending = 1;
        epicsTimeGetCurrent(&now);
        if (epicsTimeDiffInSeconds(&now, &start) > CONF_WAIT) {
            confOk(run, 0, "exists(%s) answers YES (answer %d)", name, (int)query.answer);
            return NULL;
        }
        epicsThreadSleep(0.02);
    }
    confOk(run, !pending || settledNamed(name),
           "exists(%s) YES%s", name, pending ? " after PENDING, which namesSettled named" : "");
    channel = gwCallAttach(run->p, name, client, &confEvents, sink);
    if (!channel) {
        confOk(run, 0, "attach(%s)", name);
        return NULL;
    }
    sink->channel = channel;
    if (gwCallDeferred(run->p, channel)) {
        int came = sinkWait(sink, &sink->connects, 1, CONF_WAIT);
        confOk(run, came && sink->connectedOk && sinkGet(sink, &sink->connects) == 1,
               "attach(%s) deferred: connected(1) exactly once", name);
    }
    else {
        confOk(run, sinkGet(sink, &sink->connects) == 0, "attach(%s) at once: no connected()",
               name);
    }
    return channel;
}

static void confDetach(confRun *run, confSink *sink)
{
    if (sink->channel)
        gwCallDetach(run->p, sink->channel);
    sink->channel = NULL;
}

/* A put with completion of one double; waits for it. 1 when it completed
 * with ECA_NORMAL. */
static int putDoubleWait(confRun *run, confSink *sink, double value)
{
    unsigned before = sinkGet(sink, &sink->puts);
    int status = gwCallPut(run->p, sink->channel, DBR_DOUBLE, 1, &value, onPut, sink);

    if (status != ECA_NORMAL)
        return 0;
    if (!sinkWait(sink, &sink->puts, before + 1, run->wait))
        return 0;
    return sink->putStatus == ECA_NORMAL;
}

static int putStringWait(confRun *run, confSink *sink, const char *text)
{
    dbr_string_t value;
    unsigned before = sinkGet(sink, &sink->puts);

    memset(value, 0, sizeof value);
    strncpy(value, text, sizeof value - 1);
    if (gwCallPut(run->p, sink->channel, DBR_STRING, 1, value, onPut, sink) != ECA_NORMAL)
        return 0;
    return sinkWait(sink, &sink->puts, before + 1, run->wait) && sink->putStatus == ECA_NORMAL;
}

/* A get; waits for its single completion. */
static int getWait(confRun *run, confSink *sink, short type, unsigned long count)
{
    unsigned before = sinkGet(sink, &sink->values);
    int status = gwCallGet(run->p, sink->channel, type, count, onValue, sink);

    if (status != ECA_NORMAL)
        return 0;
    if (!sinkWait(sink, &sink->values, before + 1, run->wait))
        return 0;
    epicsThreadSleep(0.05);
    return sinkGet(sink, &sink->values) == before + 1 && sink->status == ECA_NORMAL
           && sink->gotValue && sink->type == type;
}

/* ---------------------------------------------------------------- attach */

static void checkAttach(confRun *run)
{
    confSink ai, wf, so;
    gwExistsQuery query;
    char name[128];
    int i, yes = 0;

    sinkInit(&ai, run);
    sinkInit(&wf, run);
    sinkInit(&so, run);
    if (confAttach(run, "ai", &ai, &run->client)) {
        confOk(run, gwCallNativeType(run->p, ai.channel) == DBR_DOUBLE, "ai is DBR_DOUBLE");
        confOk(run, gwCallNativeCount(run->p, ai.channel) == 1, "ai has 1 element");
        confOk(run, gwCallRights(run->p, ai.channel) == (GW_RIGHT_READ | GW_RIGHT_WRITE),
               "ai is readable and writable");
    }
    if (confAttach(run, "wf", &wf, &run->client)) {
        confOk(run, gwCallNativeType(run->p, wf.channel) == DBR_DOUBLE, "wf is DBR_DOUBLE");
        confOk(run, gwCallNativeCount(run->p, wf.channel) == 8, "wf has 8 elements");
    }
    if (confAttach(run, "so", &so, &run->client))
        confOk(run, gwCallNativeType(run->p, so.channel) == DBR_STRING, "so is DBR_STRING");
    /* a name nobody serves is never YES */
    nameOf(run, "nothere", name, sizeof name);
    for (i = 0; i < 10; i++) {
        memset(&query, 0, sizeof query);
        query.pvName = name;
        gwCallExists(run->p, &run->client, &query, 1);
        gwCallSearchesDone(run->p);
        yes |= query.answer == GW_EXISTS_YES;
        epicsThreadSleep(0.05);
    }
    confOk(run, !yes, "exists(%s) is never YES", name);
    confDetach(run, &ai);
    confDetach(run, &wf);
    confDetach(run, &so);
    sinkClear(&ai);
    sinkClear(&wf);
    sinkClear(&so);
}

/* ---------------------------------------------------------------- gets */

static void checkGets(confRun *run)
{
    confSink ai, so;
    int ok;

    sinkInit(&ai, run);
    sinkInit(&so, run);
    if (confAttach(run, "ai", &ai, &run->client)) {
        /* write the known value first (an earlier target may have changed it) */
        confOk(run, putDoubleWait(run, &ai, 2.5), "ai put 2.5 completes");
        confOk(run, getWait(run, &ai, DBR_DOUBLE, 1) && sinkDouble(&ai) == 2.5,
               "get DBR_DOUBLE: 2.5, done once");
        /* the condition first: the message reads the value only after the wait */
        ok = getWait(run, &ai, DBR_STRING, 1) && strcmp(ai.value.bytes, "2.500") == 0;
        confOk(run, ok, "get DBR_STRING: \"2.500\" (PREC 3), done once (\"%s\")",
               ai.value.bytes);
        confOk(run, getWait(run, &ai, DBR_LONG, 1) && ai.count == 1, "get DBR_LONG, done once");
        if (getWait(run, &ai, DBR_TIME_DOUBLE, 1)) {
            const struct dbr_time_double *v = (const struct dbr_time_double *)ai.value.bytes;
            confOk(run, v->value == 2.5 && v->stamp.secPastEpoch != 0
                        && v->severity == NO_ALARM,
                   "get DBR_TIME_DOUBLE: 2.5, a time stamp, no alarm");
        }
        else {
            confOk(run, 0, "get DBR_TIME_DOUBLE");
        }
        if (getWait(run, &ai, DBR_CTRL_DOUBLE, 1)) {
            const struct dbr_ctrl_double *v = (const struct dbr_ctrl_double *)ai.value.bytes;
            confOk(run, v->value == 2.5 && strcmp(v->units, "V") == 0 && v->precision == 3
                        && v->upper_disp_limit == 100.0 && v->lower_disp_limit == -100.0,
                   "get DBR_CTRL_DOUBLE: value, units, precision, display limits");
        }
        else {
            confOk(run, 0, "get DBR_CTRL_DOUBLE");
        }
        confOk(run, gwCallGet(run->p, ai.channel, -1, 1, onValue, &ai) != ECA_NORMAL,
               "get of type -1 is refused");
    }
    if (confAttach(run, "so", &so, &run->client))
        confOk(run, getWait(run, &so, DBR_STRING, 1) && strcmp(so.value.bytes, "hello") == 0,
               "get DBR_STRING of so: \"hello\"");
    confDetach(run, &ai);
    confDetach(run, &so);
    sinkClear(&ai);
    sinkClear(&so);
}

/* ---------------------------------------------------------------- puts */

static void checkPuts(confRun *run)
{
    confSink lo, slow, done;
    epicsInt32 plain = 7;
    double value = 8.0, zero = 0.0;
    int status;

    sinkInit(&lo, run);
    sinkInit(&slow, run);
    sinkInit(&done, run);
    if (confAttach(run, "lo", &lo, &run->client)) {
        status = gwCallPut(run->p, lo.channel, DBR_LONG, 1, &plain, NULL, NULL);
        confOk(run, status == ECA_NORMAL, "plain put DBR_LONG 7: ECA_NORMAL");
        confOk(run, getWait(run, &lo, DBR_DOUBLE, 1) && sinkDouble(&lo) == 7.0,
               "a get after the plain put reads 7");
        status = gwCallPut(run->p, lo.channel, DBR_DOUBLE, 1, &value, onPut, &lo);
        confOk(run, status == ECA_NORMAL && sinkWait(&lo, &lo.puts, 1, run->wait)
                    && lo.putStatus == ECA_NORMAL,
               "put with completion DBR_DOUBLE 8: done with ECA_NORMAL");
        epicsThreadSleep(CONF_QUIET);
        confOk(run, sinkGet(&lo, &lo.puts) == 1, "its completion came exactly once");
        confOk(run, getWait(run, &lo, DBR_DOUBLE, 1) && sinkDouble(&lo) == 8.0,
               "a get after the completion reads 8");
    }
    if (confAttach(run, "slow.A", &slow, &run->client)
        && confAttach(run, "slowDone", &done, &run->client)) {
        /* slow writes A to slowDone only after its output delay: a
         * completion that did not wait for the processing finds it 0 */
        status = gwCallPut(run->p, done.channel, DBR_DOUBLE, 1, &zero, NULL, NULL);
        confOk(run, status == ECA_NORMAL && getWait(run, &done, DBR_DOUBLE, 1)
                    && sinkDouble(&done) == 0.0, "slowDone set to 0");
        value = 1.0;
        status = gwCallPut(run->p, slow.channel, DBR_DOUBLE, 1, &value, onPut, &slow);
        confOk(run, status == ECA_NORMAL && sinkWait(&slow, &slow.puts, 1, run->wait)
                    && slow.putStatus == ECA_NORMAL,
               "put with completion to a record with ODLY 0.5: ECA_NORMAL");
        confOk(run, getWait(run, &done, DBR_DOUBLE, 1) && sinkDouble(&done) == 1.0,
               "its completion came after the processing it waited for (slowDone 1)");
        epicsThreadSleep(CONF_QUIET);
        confOk(run, sinkGet(&slow, &slow.puts) == 1, "exactly once");
    }
    confOk(run, sinkGet(&lo, &lo.writeFailures) == 0 && sinkGet(&slow, &slow.writeFailures) == 0,
           "no writeFailed");
    confDetach(run, &lo);
    confDetach(run, &slow);
    confDetach(run, &done);
    sinkClear(&lo);
    sinkClear(&slow);
    sinkClear(&done);
}

/* ---------------------------------------------------------------- masks */

/* The subscriptions of checkMasks; the last (every bit) is the sentinel. */
enum { M_VALUE, M_LOG, M_ALARM, M_PROPERTY, M_VALUE_ALARM, M_LOG_ALARM, M_ALL, M_COUNT };

static const struct {
    const char *name;
    unsigned mask;
    short type;
} maskSubs[M_COUNT] = {
    { "VALUE", GW_EVENT_VALUE, DBR_TIME_DOUBLE },
    { "LOG", GW_EVENT_LOG, DBR_TIME_DOUBLE },
    { "ALARM", GW_EVENT_ALARM, DBR_TIME_DOUBLE },
    { "PROPERTY", GW_EVENT_PROPERTY, DBR_CTRL_DOUBLE },
    { "VALUE|ALARM", GW_EVENT_VALUE | GW_EVENT_ALARM, DBR_TIME_DOUBLE },
    { "LOG|ALARM", GW_EVENT_LOG | GW_EVENT_ALARM, DBR_TIME_DOUBLE },
    { "all four", GW_EVENT_VALUE | GW_EVENT_LOG | GW_EVENT_ALARM | GW_EVENT_PROPERTY,
      DBR_TIME_DOUBLE },
};

#define B(m) (1u << (m))

/* From VAL 0, EGU "V", no alarm; the record has MDEL 1, ADEL 5, HIGH 50. */
static const struct {
    const char *what;
    double value;           /* or, with egu, a write of EGU */
    const char *egu;
    unsigned expect;        /* B(M_*) of the subscriptions that get an update */
} maskSteps[] = {
    { "VAL 3 (past MDEL, not ADEL)", 3, NULL,
      B(M_VALUE) | B(M_VALUE_ALARM) | B(M_ALL) },
    { "VAL 7 (past ADEL)", 7, NULL,
      B(M_VALUE) | B(M_LOG) | B(M_VALUE_ALARM) | B(M_LOG_ALARM) | B(M_ALL) },
    { "VAL 60 (HIGH alarm)", 60, NULL,
      B(M_VALUE) | B(M_LOG) | B(M_ALARM) | B(M_VALUE_ALARM) | B(M_LOG_ALARM) | B(M_ALL) },
    { "VAL 62 (past MDEL, alarm unchanged)", 62, NULL,
      B(M_VALUE) | B(M_VALUE_ALARM) | B(M_ALL) },
    { "EGU mV (a property)", 0, "mV", B(M_PROPERTY) | B(M_ALL) },
    { "VAL 10 (alarm cleared)", 10, NULL,
      B(M_VALUE) | B(M_LOG) | B(M_ALARM) | B(M_VALUE_ALARM) | B(M_LOG_ALARM) | B(M_ALL) },
};

static void checkMasks(confRun *run)
{
    confSink writer, egu, reader, subs[M_COUNT];
    unsigned before[M_COUNT];
    unsigned i, m;
    int status;

    sinkInit(&writer, run);
    sinkInit(&egu, run);
    sinkInit(&reader, run);
    for (m = 0; m < M_COUNT; m++)
        sinkInit(&subs[m], run);
    if (!confAttach(run, "dead", &writer, &run->client)
        || !confAttach(run, "dead.EGU", &egu, &run->client)
        || !confAttach(run, "dead", &reader, &run->client))
        goto done;
    confOk(run, putStringWait(run, &egu, "V") && putDoubleWait(run, &writer, 0.0),
           "masks: dead reset to 0 V");
    for (m = 0; m < M_COUNT; m++) {
        subs[m].sub = gwCallSubscribe(run->p, reader.channel, maskSubs[m].type, 1,
                                      maskSubs[m].mask, onValue, &subs[m], &status);
        if (!subs[m].sub) {
            confOk(run, 0, "subscribe %s (%d)", maskSubs[m].name, status);
            continue;
        }
        confOk(run, sinkWait(&subs[m], &subs[m].values, 1, run->wait)
                    && subs[m].status == ECA_NORMAL && sinkDouble(&subs[m]) == 0.0,
               "subscribe %s: the current value first", maskSubs[m].name);
    }
    epicsThreadSleep(CONF_QUIET);
    for (i = 0; i < NELEMENTS(maskSteps); i++) {
        for (m = 0; m < M_COUNT; m++)
            before[m] = sinkGet(&subs[m], &subs[m].values);
        if (maskSteps[i].egu)
            status = putStringWait(run, &egu, maskSteps[i].egu);
        else
            status = putDoubleWait(run, &writer, maskSteps[i].value);
        confOk(run, status, "%s: put completes", maskSteps[i].what);
        /* the sentinel (subscribed last) comes after the others of a post */
        sinkWait(&subs[M_ALL], &subs[M_ALL].values, before[M_ALL] + 1, run->wait);
        epicsThreadSleep(CONF_QUIET);
        for (m = 0; m < M_COUNT; m++) {
            unsigned got = sinkGet(&subs[m], &subs[m].values) - before[m];
            unsigned want = (maskSteps[i].expect & B(m)) ? 1 : 0;
            confOk(run, got == want, "%s: %s subscription got %u update(s), wants %u",
                   maskSteps[i].what, maskSubs[m].name, got, want);
        }
    }
    {
        const struct dbr_ctrl_double *v =
            (const struct dbr_ctrl_double *)subs[M_PROPERTY].value.bytes;
        epicsMutexMustLock(subs[M_PROPERTY].lock);
        confOk(run, strcmp(v->units, "mV") == 0, "the PROPERTY update carries EGU \"%s\"",
               v->units);
        epicsMutexUnlock(subs[M_PROPERTY].lock);
    }
    {
        const struct dbr_time_double *v =
            (const struct dbr_time_double *)subs[M_ALARM].value.bytes;
        epicsMutexMustLock(subs[M_ALARM].lock);
        confOk(run, v->severity == NO_ALARM && v->value == 10.0,
               "the last ALARM update: 10, no alarm");
        epicsMutexUnlock(subs[M_ALARM].lock);
    }
    for (m = 0; m < M_COUNT; m++) {
        if (subs[m].sub)
            gwCallCancel(run->p, subs[m].sub);
    }
    putStringWait(run, &egu, "V");
done:
    confDetach(run, &writer);
    confDetach(run, &egu);
    confDetach(run, &reader);
    sinkClear(&writer);
    sinkClear(&egu);
    sinkClear(&reader);
    for (m = 0; m < M_COUNT; m++)
        sinkClear(&subs[m]);
}

/* ---------------------------------------------------------------- rights */

/* Wait until the sink was told `rights` in a call after the first `calls`. */
static int waitRights(confSink *sink, unsigned calls, unsigned rights, double seconds)
{
    epicsTimeStamp start, now;
    int told = 0;

    epicsTimeGetCurrent(&start);
    while (!told) {
        epicsMutexMustLock(sink->lock);
        told = sink->rightsCalls > calls && sink->rights == rights;
        epicsMutexUnlock(sink->lock);
        epicsTimeGetCurrent(&now);
        if (told || epicsTimeDiffInSeconds(&now, &start) > seconds)
            break;
        epicsEventWaitWithTimeout(sink->event, 0.05);
    }
    return told;
}

static int waitRightsAnswer(confRun *run, confSink *sink, unsigned rights)
{
    epicsTimeStamp start, now;

    epicsTimeGetCurrent(&start);
    do {
        if (gwCallRights(run->p, sink->channel) == rights)
            return 1;
        epicsThreadSleep(0.05);
        epicsTimeGetCurrent(&now);
    } while (epicsTimeDiffInSeconds(&now, &start) < run->wait);
    return 0;
}

static void checkRights(confRun *run)
{
    confSink wen, gated;
    const unsigned rw = GW_RIGHT_READ | GW_RIGHT_WRITE;
    double value = 5.0;
    unsigned calls;

    sinkInit(&wen, run);
    sinkInit(&gated, run);
    if (!confAttach(run, "wen", &wen, &run->client)
        || !confAttach(run, "gated", &gated, &run->client))
        goto done;
    confOk(run, putDoubleWait(run, &wen, 0.0), "rights: wen reset to 0");
    confOk(run, waitRightsAnswer(run, &gated, GW_RIGHT_READ), "gated is read-only (wen 0)");
    calls = sinkGet(&gated, &gated.rightsCalls);
    confOk(run, putDoubleWait(run, &wen, 1.0), "wen 1 completes");
    confOk(run, waitRights(&gated, calls, rw, run->wait),
           "rightsChanged(read|write) when the rule allows writes (%u)",
           sinkGet(&gated, &gated.rights));
    confOk(run, gwCallRights(run->p, gated.channel) == rw, "rights() answers read|write");
    confOk(run, gwCallPut(run->p, gated.channel, DBR_DOUBLE, 1, &value, onPut, &gated)
                    == ECA_NORMAL
                && sinkWait(&gated, &gated.puts, 1, run->wait) && gated.putStatus == ECA_NORMAL,
           "a put to gated completes");
    calls = sinkGet(&gated, &gated.rightsCalls);
    confOk(run, putDoubleWait(run, &wen, 0.0), "wen 0 completes");
    confOk(run, waitRights(&gated, calls, GW_RIGHT_READ, run->wait),
           "rightsChanged(read) when the rule forbids writes (%u)",
           sinkGet(&gated, &gated.rights));
    confOk(run, gwCallRights(run->p, gated.channel) == GW_RIGHT_READ, "rights() answers read");
done:
    confDetach(run, &wen);
    confDetach(run, &gated);
    sinkClear(&wen);
    sinkClear(&gated);
}

/* ---------------------------------------------------------------- calls from inside callbacks */

static void hookCancel(confSink *sink)
{
    gwCallCancel(sink->run->p, sink->sub);
    sink->sub = NULL;
}

static void hookCancelDetach(confSink *sink)
{
    gwCallCancel(sink->run->p, sink->sub);
    sink->sub = NULL;
    gwCallDetach(sink->run->p, sink->channel);
    sink->channel = NULL;
}

static void hookDetach(confSink *sink)
{
    gwCallDetach(sink->run->p, sink->channel);
    sink->channel = NULL;
}

static void hookBlock(confSink *sink)
{
    (void)sink;
    epicsThreadSleep(0.5);
}

/* Subscribe VALUE on sink's channel and wait for the first update. */
static int subscribeTick(confRun *run, confSink *sink)
{
    int status;

    sink->sub = gwCallSubscribe(run->p, sink->channel, DBR_DOUBLE, 1, GW_EVENT_VALUE, onValue,
                                sink, &status);
    return sink->sub && sinkWait(sink, &sink->values, 1, run->wait);
}

/* An update whose hook does `hook`: it runs, and no update follows. */
static void insideUpdate(confRun *run, confSink *writer, double *tick, const char *what,
                         void (*hook)(confSink *))
{
    confSink sink;
    unsigned values;

    sinkInit(&sink, run);
    if (!confAttach(run, "tick", &sink, &run->client) || !subscribeTick(run, &sink)) {
        confOk(run, 0, "%s: a subscription to tick", what);
        confDetach(run, &sink);
        sinkClear(&sink);
        return;
    }
    epicsMutexMustLock(sink.lock);
    sink.hook = hook;
    epicsMutexUnlock(sink.lock);
    putDoubleWait(run, writer, ++*tick);
    confOk(run, sinkWait(&sink, &sink.hooksRan, 1, run->wait), "%s: returned", what);
    values = sinkGet(&sink, &sink.values);
    putDoubleWait(run, writer, ++*tick);
    epicsThreadSleep(CONF_QUIET);
    confOk(run, sinkGet(&sink, &sink.values) == values, "%s: no update after it", what);
    if (sink.sub)
        gwCallCancel(run->p, sink.sub);
    confDetach(run, &sink);
    sinkClear(&sink);
}

static void checkCallbacks(confRun *run)
{
    confSink writer, sink;
    double tick = 0.0, waited;
    int returnedAfter;

    sinkInit(&writer, run);
    if (!confAttach(run, "tick", &writer, &run->client)) {
        sinkClear(&writer);
        return;
    }
    putDoubleWait(run, &writer, tick);
    insideUpdate(run, &writer, &tick, "cancel from inside an update", hookCancel);
    if (run->target->detachInCallback) {
        insideUpdate(run, &writer, &tick, "cancel and detach from inside an update",
                     hookCancelDetach);
        sinkInit(&sink, run);
        if (confAttach(run, "tick", &sink, &run->client)) {
            sink.hook = hookDetach;
            confOk(run, gwCallGet(run->p, sink.channel, DBR_DOUBLE, 1, onValue, &sink)
                            == ECA_NORMAL
                        && sinkWait(&sink, &sink.hooksRan, 1, run->wait) && !sink.channel,
                   "detach from inside a get's completion returned");
        }
        confDetach(run, &sink);
        sinkClear(&sink);
    }
    /* every provider: a cancel from another thread waits for the update
     * running now, and none follows it (gwProvider.h's lock rule) */
    sinkInit(&sink, run);
    if (confAttach(run, "tick", &sink, &run->client) && subscribeTick(run, &sink)) {
        unsigned values;
        epicsMutexMustLock(sink.lock);
        sink.hook = hookBlock;
        epicsMutexUnlock(sink.lock);
        tick += 1.0;
        gwCallPut(run->p, writer.channel, DBR_DOUBLE, 1, &tick, NULL, NULL);
        for (waited = 0.0; waited < run->wait && !sinkGet(&sink, &sink.hookBusy)
                           && !sinkGet(&sink, &sink.hooksRan); waited += 0.01)
            epicsThreadSleep(0.01);
        gwCallCancel(run->p, sink.sub);
        sink.sub = NULL;
        returnedAfter = sinkGet(&sink, &sink.hooksRan) == 1;
        confOk(run, returnedAfter, "cancel from another thread waited for the running update");
        values = sinkGet(&sink, &sink.values);
        putDoubleWait(run, &writer, ++tick);
        epicsThreadSleep(CONF_QUIET);
        confOk(run, sinkGet(&sink, &sink.values) == values, "no update after cancel returned");
    }
    else {
        confOk(run, 0, "a subscription to tick");
    }
    confDetach(run, &sink);
    sinkClear(&sink);
    confDetach(run, &writer);
    sinkClear(&writer);
}

/* ---------------------------------------------------------------- counters and report */

static void checkCounters(confRun *run)
{
    confSink ai;
    gwProviderCounters counters;
    FILE *out;
    char line[256] = "";
    long size;

    sinkInit(&ai, run);
    if (confAttach(run, "ai", &ai, &run->client)) {
        memset(&counters, 0, sizeof counters);
        gwCallCounters(run->p, &counters);
        confOk(run, counters.channels >= 1, "counters: %lu channels attached",
               counters.channels);
        out = tmpfile();
        if (out) {
            gwCallReport(run->p, out, 1);
            size = ftell(out);
            rewind(out);
            if (!fgets(line, sizeof line, out))
                line[0] = '\0';
            fclose(out);
            confOk(run, size > 0, "report(1) writes %ld bytes", size);
            if (run->target->wrapped)
                confOk(run, strstr(line, " over ") != NULL,
                       "the wrapper's own line comes first: %s", line);
        }
    }
    confDetach(run, &ai);
    sinkClear(&ai);
}

/* ---------------------------------------------------------------- the wrapper's policy */

static void checkPolicy(confRun *run)
{
    confSink guest, refused;
    gwProviderCounters counters;
    gwExistsQuery query;
    char name[128];
    double value = 1.0;
    const unsigned rw = GW_RIGHT_READ | GW_RIGHT_WRITE;
    unsigned calls;

    sinkInit(&guest, run);
    sinkInit(&refused, run);
    nameOf(run, "secret", name, sizeof name);
    memset(&query, 0, sizeof query);
    query.pvName = name;
    gwCallExists(run->p, &run->client, &query, 1);
    confOk(run, query.answer == GW_EXISTS_NO, "policy: exists(%s) is NO", name);
    refused.channel = gwCallAttach(run->p, name, &run->client, &confEvents, &refused);
    confOk(run, refused.channel == NULL, "policy: attach(%s) fails", name);
    confDetach(run, &refused);
    if (confAttach(run, "ai", &guest, &run->guest)) {
        confOk(run, gwCallRights(run->p, guest.channel) == GW_RIGHT_READ,
               "policy: guest may only read ai");
        confOk(run, gwCallPut(run->p, guest.channel, DBR_DOUBLE, 1, &value, NULL, NULL)
                        == ECA_NOWTACCESS,
               "policy: guest's put is refused with ECA_NOWTACCESS");
        calls = sinkGet(&guest, &guest.rightsCalls);
        gwCallClientChanged(run->p, guest.channel, &run->client);
        confOk(run, waitRights(&guest, calls, rw, run->wait),
               "policy: guest becomes conform: rightsChanged(read|write)");
        confOk(run, gwCallRights(run->p, guest.channel) == rw, "policy: rights() follows");
        calls = sinkGet(&guest, &guest.rightsCalls);
        gwCallClientChanged(run->p, guest.channel, &run->guest);
        confOk(run, waitRights(&guest, calls, GW_RIGHT_READ, run->wait),
               "policy: and back to guest: rightsChanged(read)");
    }
    memset(&counters, 0, sizeof counters);
    gwCallCounters(run->p, &counters);
    confOk(run, counters.searchesRefused >= 2 && counters.putsRefused >= 1,
           "policy: counted %lu names and %lu puts refused", counters.searchesRefused,
           counters.putsRefused);
    confDetach(run, &guest);
    sinkClear(&guest);
    sinkClear(&refused);
}

/* ---------------------------------------------------------------- disconnect */

static void checkDisconnect(confRun *run)
{
    confSink ai;

    if (!run->target->remote) {
        confOk(run, unexpectedDisconnects == 0, "the source never disconnected");
        return;
    }
    sinkInit(&ai, run);
    if (confAttach(run, "ai", &ai, &run->client) && subscribeTick(run, &ai)) {
        run->target->stopSource(run->target->stopArg);
        confOk(run, sinkWait(&ai, &ai.disconnects, 1, CONF_WAIT),
               "the source went away: disconnected");
        gwCallCancel(run->p, ai.sub);
        ai.sub = NULL;
    }
    confDetach(run, &ai);
    sinkClear(&ai);
}

/* ---------------------------------------------------------------- the run */

unsigned gwConformanceRun(const gwConformanceTarget *target, unsigned groups,
                          int expectFailure)
{
    confRun run;

    memset(&run, 0, sizeof run);
    run.target = target;
    run.p = target->provider;
    run.expectFailure = expectFailure;
    run.wait = expectFailure ? CONF_WAIT_MUTANT : CONF_WAIT;
    identityInit(&run.client, "conform");
    identityInit(&run.guest, "guest");
    if (!server.lock)
        server.lock = epicsMutexMustCreate();
    currentRemote = target->remote;
    if (!expectFailure)
        testDiag("conformance of %s (%s)", target->label, run.p->ops->name);
    gwCallBind(run.p, &confServerCallbacks, &server);
    if (groups & GW_CONFORM_ATTACH)
        checkAttach(&run);
    if (groups & GW_CONFORM_GETS)
        checkGets(&run);
    if (groups & GW_CONFORM_PUTS)
        checkPuts(&run);
    if (groups & GW_CONFORM_MASKS)
        checkMasks(&run);
    if (groups & GW_CONFORM_RIGHTS)
        checkRights(&run);
    if (groups & GW_CONFORM_CALLBACKS)
        checkCallbacks(&run);
    if (groups & GW_CONFORM_COUNTERS)
        checkCounters(&run);
    if ((groups & GW_CONFORM_POLICY) && target->wrapped)
        checkPolicy(&run);
    if (groups & GW_CONFORM_DISCONNECT)
        checkDisconnect(&run);
    epicsMutexMustLock(server.lock);
    if (!expectFailure)
        confOk(&run, !server.holdUnbalanced && server.holdDepth == 0,
               "deliveryHold and deliveryRelease balanced");
    server.holdUnbalanced = 0;
    server.holdDepth = 0;
    epicsMutexUnlock(server.lock);
    gwCallUnbind(run.p);
    return run.failures;
}
