/* gwLocalTest.c - unit test of the local provider (gwLocal.c, gwLocalRead.c,
 * gwLocalPut.c) against an in-process IOC (dbUnitTest, no CA server).
 *
 * The test plays the CA server: it calls the provider's operations and
 * records what comes back in "sinks". Waits are epicsEvent waits with a
 * generous timeout; "nothing arrived" is proven by a later update of a
 * sentinel that the event task delivers after the one that must not come
 * (a sentinel on the same event context, subscribed after).
 *
 * The main provider has one event context, so every sentinel shares its
 * task; the tests of several contexts make their own providers, where
 * attach's round-robin makes the n-th channel's context n modulo the
 * count, and the thread a callback comes from ("gwLocalEvent<i>") shows
 * the context.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <asLib.h>
#include <asTrapWrite.h>
#include <caerr.h>
#include <db_access.h>
#include <db_access_routines.h>
#include <dbChannel.h>
#include <epicsEvent.h>
#include <epicsMutex.h>
#include <epicsThread.h>
#include <epicsTime.h>
#include <epicsUnitTest.h>
#include <testMain.h>

#include "gwLocal.h"
#include "gwLocalTestIoc.h"

#define WAIT_SECONDS 20.0

static gwProvider *provider;
static const gwProviderOps *ops;

/* ---- the fake server's side ---- */

typedef struct gwTestSink gwTestSink;
struct gwTestSink {
    epicsMutexId lock;
    epicsEventId event;
    unsigned calls;          /* values, put completions or rights changes */
    int status;
    short type;
    unsigned long count;
    int gotValue;            /* value was not NULL */
    unsigned rights;
    char value[2048];        /* the last value (first bytes) */
    void (*hook)(gwTestSink *sink); /* run once from the next value callback */
    gwProviderChannel *channel;
    gwProviderSubscription *subscription;
    int hookRan;
    gwTestSink *watched;     /* a hook's other sink: its calls when the hook ended */
    unsigned watchedCalls;
    char thread[32];         /* the thread of the last call */
};

static void sinkInit(gwTestSink *sink)
{
    memset(sink, 0, sizeof *sink);
    sink->lock = epicsMutexMustCreate();
    sink->event = epicsEventMustCreate(epicsEventEmpty);
}

static void sinkClear(gwTestSink *sink)
{
    epicsMutexDestroy(sink->lock);
    epicsEventDestroy(sink->event);
}

/* A field of the sink read under its lock: the provider's thread may be
 * writing it (a later call, a subscription's next update), and a test
 * message's arguments may be read before the wait of its condition. */
#define GW_SINK_READER(name, type, field)    \
    static type name(gwTestSink *sink)       \
    {                                        \
        type value;                          \
        epicsMutexMustLock(sink->lock);      \
        value = sink->field;                 \
        epicsMutexUnlock(sink->lock);        \
        return value;                        \
    }

GW_SINK_READER(sinkCalls, unsigned, calls)          /* calls so far */
GW_SINK_READER(sinkCount, unsigned long, count)     /* elements of the last value */
GW_SINK_READER(sinkStatus, int, status)             /* status of the last call */
GW_SINK_READER(sinkRights, unsigned, rights)        /* of the last rightsChanged() */

static void onValue(void *user, int status, short type, unsigned long count, const void *value)
{
    gwTestSink *sink = user;
    void (*hook)(gwTestSink *) = NULL;

    epicsMutexMustLock(sink->lock);
    sink->calls++;
    strncpy(sink->thread, epicsThreadGetNameSelf(), sizeof sink->thread - 1);
    sink->status = status;
    sink->type = type;
    sink->count = count;
    sink->gotValue = value != NULL;
    memset(sink->value, 0, sizeof sink->value);
    if (value) {
        size_t size = dbr_size_n(type, count);
        memcpy(sink->value, value, size < sizeof sink->value ? size : sizeof sink->value);
    }
    hook = sink->hook;
    sink->hook = NULL;
    epicsMutexUnlock(sink->lock);
    if (hook) {
        hook(sink);
        epicsMutexMustLock(sink->lock);
        sink->hookRan = 1;
        epicsMutexUnlock(sink->lock);
    }
    epicsEventSignal(sink->event);
}

static void onPut(void *user, int status)
{
    gwTestSink *sink = user;

    epicsMutexMustLock(sink->lock);
    sink->calls++;
    strncpy(sink->thread, epicsThreadGetNameSelf(), sizeof sink->thread - 1);
    sink->status = status;
    epicsMutexUnlock(sink->lock);
    epicsEventSignal(sink->event);
}

static void onRights(void *serverChannel, unsigned rights)
{
    gwTestSink *sink = serverChannel;

    epicsMutexMustLock(sink->lock);
    sink->calls++;
    strncpy(sink->thread, epicsThreadGetNameSelf(), sizeof sink->thread - 1);
    sink->rights = rights;
    epicsMutexUnlock(sink->lock);
    epicsEventSignal(sink->event);
}

static void onDisconnected(void *serverChannel)
{
    (void)serverChannel;
    testFail("disconnected() called");
}

static void onWriteFailed(void *serverChannel, short dbrType, unsigned long count, int status)
{
    (void)serverChannel;
    testFail("writeFailed(%d, %lu, %d) called: local writes fail at once", dbrType, count,
             status);
}

static const gwChannelEvents channelEvents = { onRights, onDisconnected, onWriteFailed, NULL };

/* The double of the last value (DBR_DOUBLE or its compound types). */
static double sinkDouble(gwTestSink *sink)
{
    double value;

    epicsMutexMustLock(sink->lock);
    memcpy(&value, sink->value + dbr_value_offset[sink->type], sizeof value);
    epicsMutexUnlock(sink->lock);
    return value;
}

/* Did the last call come from the thread named `name`? */
static int sinkThreadIs(gwTestSink *sink, const char *name)
{
    int yes;

    epicsMutexMustLock(sink->lock);
    yes = strcmp(sink->thread, name) == 0;
    epicsMutexUnlock(sink->lock);
    return yes;
}

/* Wait until the sink saw at least `calls` calls. */
static int sinkWaitCalls(gwTestSink *sink, unsigned calls)
{
    epicsTimeStamp start, now;

    epicsTimeGetCurrent(&start);
    while (sinkCalls(sink) < calls) {
        epicsTimeGetCurrent(&now);
        if (epicsTimeDiffInSeconds(&now, &start) > WAIT_SECONDS)
            return 0;
        epicsEventWaitWithTimeout(sink->event, 1.0);
    }
    return 1;
}

/* Wait until the sink's hook has run (and returned). */
static int sinkWaitHook(gwTestSink *sink)
{
    epicsTimeStamp start, now;
    int ran = 0;

    epicsTimeGetCurrent(&start);
    while (!ran) {
        epicsMutexMustLock(sink->lock);
        ran = sink->hookRan;
        epicsMutexUnlock(sink->lock);
        epicsTimeGetCurrent(&now);
        if (!ran && epicsTimeDiffInSeconds(&now, &start) > WAIT_SECONDS)
            return 0;
        if (!ran)
            epicsEventWaitWithTimeout(sink->event, 0.1);
    }
    return 1;
}

/* Wait until the last value of a double subscription is `value`. */
static int sinkWaitDouble(gwTestSink *sink, double value)
{
    epicsTimeStamp start, now;

    epicsTimeGetCurrent(&start);
    while (sinkCalls(sink) == 0 || sinkDouble(sink) != value) {
        epicsTimeGetCurrent(&now);
        if (epicsTimeDiffInSeconds(&now, &start) > WAIT_SECONDS)
            return 0;
        epicsEventWaitWithTimeout(sink->event, 1.0);
    }
    return 1;
}

static gwClientIdentity identityOf(const char *user)
{
    gwClientIdentity client;

    memset(&client, 0, sizeof client);
    client.user = user;
    client.host = "testhost";
    client.peer = "127.0.0.1:40000";
    client.address.sin_family = AF_INET;
    client.address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    client.minorVersion = 13;
    return client;
}

static gwProviderChannel *attachAs(const char *name, const char *user, gwTestSink *rights)
{
    gwClientIdentity client = identityOf(user);

    return ops->attach(provider->self, name, &client, &channelEvents, rights);
}

static gwProviderSubscription *subscribe(gwProviderChannel *channel, short type,
                                         unsigned long count, unsigned mask, gwTestSink *sink)
{
    int status = -1;
    gwProviderSubscription *subscription =
        ops->subscribe(channel, type, count, mask, onValue, sink, &status);

    if (!subscription || status != ECA_NORMAL)
        testDiag("subscribe failed: %s", ca_message(status));
    return subscription;
}

static int putDouble(gwProviderChannel *channel, double value, gwTestSink *done)
{
    return ops->put(channel, DBR_DOUBLE, 1, &value, done ? onPut : NULL, done);
}

/* ---- asTrapWrite listener (what caPutLog would see) ---- */

static struct {
    unsigned before, after;
    char user[64];
    int dbrType;
    double value;
} trapSeen;
static epicsMutexId trapLock;

static void trapListener(asTrapWriteMessage *message, int after)
{
    epicsMutexMustLock(trapLock);
    if (after) {
        trapSeen.after++;
    } else {
        trapSeen.before++;
        strncpy(trapSeen.user, message->userid, sizeof trapSeen.user - 1);
        trapSeen.dbrType = message->dbrType;
        if (message->dbrType == DBR_DOUBLE && message->data)
            memcpy(&trapSeen.value, message->data, sizeof trapSeen.value);
    }
    epicsMutexUnlock(trapLock);
}

/* ---- tests ---- */

static void testExists(void)
{
    static const struct { const char *name; gwExistsAnswer answer; } cases[] = {
        { "gw:ao", GW_EXISTS_YES },
        { "gw:ao.EGU", GW_EXISTS_YES },
        { "gw:wfd.VAL{\"arr\":{\"s\":1}}", GW_EXISTS_YES },
        { "nosuch", GW_EXISTS_NO },
        { "gw:ao.NOSUCH", GW_EXISTS_NO },
    };
    gwClientIdentity client = identityOf("alice");
    size_t i;

    gwExistsQuery queries[sizeof cases / sizeof cases[0]];

    memset(queries, 0, sizeof queries);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
        queries[i].pvName = cases[i].name;
    ops->exists(provider->self, &client, queries, (unsigned)i);   /* one batch */
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
        testOk(queries[i].answer == cases[i].answer,
               "exists(%s) is %s", cases[i].name, cases[i].answer ? "YES" : "NO");
}

static void testNative(void)
{
    static const struct { const char *name; short type; unsigned long count; } cases[] = {
        { "gw:ao", DBR_DOUBLE, 1 },
        { "gw:ai", DBR_DOUBLE, 1 },
        { "gw:lo", DBR_LONG, 1 },
        { "gw:so", DBR_STRING, 1 },
        { "gw:mbbo", DBR_ENUM, 1 },
        { "gw:bo", DBR_ENUM, 1 },
        { "gw:wfd", DBR_DOUBLE, 10 },
        { "gw:wfc", DBR_CHAR, 32 },
        { "gw:calc", DBR_DOUBLE, 1 },
        { "gw:ao.EGU", DBR_STRING, 1 },
        { "gw:wfd.VAL{\"arr\":{\"s\":1,\"e\":3}}", DBR_DOUBLE, 3 },
    };
    gwTestSink rights;
    size_t i;

    sinkInit(&rights);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gwProviderChannel *channel = attachAs(cases[i].name, "alice", &rights);
        short type = channel ? ops->nativeType(channel) : -1;
        unsigned long count = channel ? ops->nativeCount(channel) : 0;

        testOk(channel && type == cases[i].type && count == cases[i].count,
               "attach %s: native %s x %lu (expected %s x %lu)", cases[i].name,
               type >= 0 ? dbr_type_to_text(type) : "none", count,
               dbr_type_to_text(cases[i].type), cases[i].count);
        if (channel)
            ops->detach(channel);
    }
    testOk(attachAs("nosuch", "alice", &rights) == NULL, "attach of an unknown name is refused");
    testOk(sinkCalls(&rights) == 0, "no rights change reported while attaching");
    sinkClear(&rights);
}

/* get(type, count) equals dbChannel_get_count on our own channel, asked for
 * the same number of elements (count 0: all of them, as RSRV's read_reply
 * does); expectedCount is the count the record holds. DBR_CLASS_NAME leaves
 * the count as asked, in RSRV too. */
static void testGetMatches(gwProviderChannel *channel, dbChannel *chan, short type,
                           unsigned long count, long expectedCount)
{
    static char expected[2048];
    gwTestSink sink;
    long n = count ? (long)count : (long)ops->nativeCount(channel);
    int status;

    sinkInit(&sink);
    memset(expected, 0, sizeof expected);
    dbChannel_get_count(chan, type, expected, &n, NULL);
    if (type != DBR_CLASS_NAME && n != expectedCount)
        testDiag("dbChannel_get_count gave %ld elements, not %ld", n, expectedCount);
    status = ops->get(channel, type, count, onValue, &sink);
    testOk(status == ECA_NORMAL && sink.calls == 1 && sinkStatus(&sink) == ECA_NORMAL &&
           sink.count == (unsigned long)n &&
           (type == DBR_CLASS_NAME || n == expectedCount) &&
           memcmp(sink.value, expected, dbr_size_n(type, n)) == 0,
           "get %s x %lu of %s: %s, %lu element(s), bytes as dbChannel_get_count",
           dbr_type_to_text(type), count, dbChannelName(chan), ca_message(status), sink.count);
    sinkClear(&sink);
}

static void testGetEveryType(const char *name, unsigned long count, long expectedCount)
{
    gwTestSink rights;
    gwProviderChannel *channel;
    dbChannel *chan = dbChannel_create(name);
    short type;

    sinkInit(&rights);
    channel = attachAs(name, "alice", &rights);
    if (!channel || !chan)
        testAbort("cannot attach %s", name);
    for (type = 0; type <= LAST_BUFFER_TYPE; type++) {
        if (type != DBR_PUT_ACKT && type != DBR_PUT_ACKS)
            testGetMatches(channel, chan, type, count, expectedCount);
    }
    ops->detach(channel);
    dbChannelDelete(chan);
    sinkClear(&rights);
}

static void testGetClassName(void)
{
    gwTestSink rights, sink;
    gwProviderChannel *channel;

    sinkInit(&rights);
    sinkInit(&sink);
    channel = attachAs("gw:calc", "alice", &rights);
    ops->get(channel, DBR_CLASS_NAME, 1, onValue, &sink);
    testOk(sink.calls == 1 && strcmp(sink.value, "calc") == 0,
           "DBR_CLASS_NAME of gw:calc is \"%s\"", sink.value);
    ops->detach(channel);
    sinkClear(&sink);
    sinkClear(&rights);
}

static void testGetErrors(void)
{
    static const struct { const char *name; short type; unsigned long count; int status; } cases[] = {
        { "gw:ao", LAST_BUFFER_TYPE + 1, 1, ECA_BADTYPE },
        { "gw:ao", -1, 1, ECA_BADTYPE },
        { "gw:ao", DBR_DOUBLE, 2, ECA_BADCOUNT },
        { "gw:wfd", DBR_DOUBLE, 11, ECA_BADCOUNT },
    };
    gwTestSink rights, sink;
    size_t i;

    sinkInit(&rights);
    sinkInit(&sink);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gwProviderChannel *channel = attachAs(cases[i].name, "alice", &rights);
        int status = ops->get(channel, cases[i].type, cases[i].count, onValue, &sink);

        testOk(status == cases[i].status, "get type %d x %lu of %s: %s", cases[i].type,
               cases[i].count, cases[i].name, ca_message(status));
        ops->detach(channel);
    }
    testOk(sink.calls == 0, "no done() for a refused get");
    for (i = 0; i < 2; i++) {
        /* as RSRV's read_reply: the database refuses, the client gets ECA_GETFAIL */
        short type = i ? DBR_PUT_ACKS : DBR_PUT_ACKT;
        gwProviderChannel *channel = attachAs("gw:ao", "alice", &rights);
        int status = ops->get(channel, type, 1, onValue, &sink);
        testOk(status == ECA_NORMAL && sink.calls == i + 1 && sinkStatus(&sink) == ECA_GETFAIL &&
               !sink.gotValue, "get of write-only type %d: done() with ECA_GETFAIL", type);
        ops->detach(channel);
    }
    sinkClear(&sink);
    sinkClear(&rights);
}

/* gw:wfd holds 4 elements: larger counts are padded with zeros, smaller cut. */
static void testGetCounts(void)
{
    gwTestSink rights, sink;
    gwProviderChannel *channel;
    double values[8];

    sinkInit(&rights);
    sinkInit(&sink);
    channel = attachAs("gw:wfd", "alice", &rights);
    ops->get(channel, DBR_DOUBLE, 8, onValue, &sink);
    memcpy(values, sink.value, sizeof values);
    testOk(sink.count == 8 && values[3] == 4.0 && values[4] == 0.0 && values[7] == 0.0,
           "get 8 of 4 elements: count %lu, [3]=%g, [4..7] zero", sink.count, values[3]);
    ops->get(channel, DBR_DOUBLE, 2, onValue, &sink);
    memcpy(values, sink.value, 2 * sizeof values[0]);
    testOk(sink.count == 2 && values[0] == 1.0 && values[1] == 2.0,
           "get 2 of 4 elements: count %lu, %g %g", sink.count, values[0], values[1]);
    ops->detach(channel);
    sinkClear(&sink);
    sinkClear(&rights);
}

static void testPutWaveform(void)
{
    static const double values[4] = { 1.0, 2.0, 3.0, 4.0 };
    gwTestSink rights;
    gwProviderChannel *channel;
    int status;

    sinkInit(&rights);
    channel = attachAs("gw:wfd", "alice", &rights);
    status = ops->put(channel, DBR_DOUBLE, 4, values, NULL, NULL);
    testOk(status == ECA_NORMAL, "put of 4 doubles into gw:wfd: %s", ca_message(status));
    ops->detach(channel);
    sinkClear(&rights);
}

static void testPutPlain(void)
{
    struct dbr_time_double timed;
    dbr_string_t text = "7.25"; /* whole DBR_STRINGs, as the server passes them */
    dbr_string_t x = "x";
    gwTestSink rights;
    gwProviderChannel *channel, *name;
    int status;

    sinkInit(&rights);
    channel = attachAs("gw:ao", "alice", &rights);
    epicsMutexMustLock(trapLock);
    memset(&trapSeen, 0, sizeof trapSeen);
    epicsMutexUnlock(trapLock);
    status = putDouble(channel, 12.5, NULL);
    testOk(status == ECA_NORMAL && gwTestGetDouble("gw:ao") == 12.5,
           "put DBR_DOUBLE 12.5: %s, record has %g", ca_message(status),
           gwTestGetDouble("gw:ao"));
    epicsMutexMustLock(trapLock);
    testOk(trapSeen.before == 1 && trapSeen.after == 1 && strcmp(trapSeen.user, "alice") == 0 &&
           trapSeen.dbrType == DBR_DOUBLE && trapSeen.value == 12.5,
           "asTrapWrite listener saw the put: before %u after %u by \"%s\" type %d value %g",
           trapSeen.before, trapSeen.after, trapSeen.user, trapSeen.dbrType, trapSeen.value);
    epicsMutexUnlock(trapLock);
    status = ops->put(channel, DBR_STRING, 1, text, NULL, NULL);
    testOk(status == ECA_NORMAL && gwTestGetDouble("gw:ao") == 7.25,
           "put DBR_STRING \"7.25\": %s", ca_message(status));
    memset(&timed, 0, sizeof timed);
    timed.value = 3.0;
    status = ops->put(channel, DBR_TIME_DOUBLE, 1, &timed, NULL, NULL);
    testOk(status == ECA_NORMAL && gwTestGetDouble("gw:ao") == 3.0,
           "put DBR_TIME_DOUBLE 3: %s", ca_message(status));
    epicsMutexMustLock(trapLock);
    testOk(trapSeen.dbrType == DBR_DOUBLE && trapSeen.value == 3.0,
           "asTrapWrite listener saw the value of the DBR_TIME_DOUBLE put as DBR_DOUBLE");
    epicsMutexUnlock(trapLock);
    testOk(ops->put(channel, DBR_CLASS_NAME, 1, x, NULL, NULL) == ECA_BADTYPE,
           "put DBR_CLASS_NAME is ECA_BADTYPE");
    testOk(ops->put(channel, LAST_BUFFER_TYPE + 2, 1, &timed, NULL, NULL) == ECA_BADTYPE,
           "put of an unknown type is ECA_BADTYPE");
    testOk(ops->put(channel, DBR_DOUBLE, 0, &timed, NULL, NULL) == ECA_BADCOUNT,
           "put of 0 elements is ECA_BADCOUNT");
    testOk(ops->put(channel, DBR_DOUBLE, 2, &timed, NULL, NULL) == ECA_BADCOUNT,
           "put of 2 elements into a scalar is ECA_BADCOUNT");
    ops->detach(channel);

    name = attachAs("gw:ao.NAME", "alice", &rights);
    testOk(ops->rights(name) == GW_RIGHT_READ, "gw:ao.NAME (SPC_NOMOD) is read-only");
    testOk(ops->put(name, DBR_STRING, 1, x, NULL, NULL) == ECA_NOWTACCESS,
           "put to gw:ao.NAME is ECA_NOWTACCESS");
    ops->detach(name);
    sinkClear(&rights);
}

static void testPutNotifyOne(const char *name, short type, const void *value,
                             const char *check, double expected)
{
    gwTestSink rights, done;
    gwProviderChannel *channel;
    int status;

    sinkInit(&rights);
    sinkInit(&done);
    channel = attachAs(name, "alice", &rights);
    status = ops->put(channel, type, 1, value, onPut, &done);
    testOk(status == ECA_NORMAL && sinkWaitCalls(&done, 1) && sinkStatus(&done) == ECA_NORMAL &&
           gwTestGetDouble(check) == expected,
           "put %s with completion to %s: %s, done %s, %s is %g", dbr_type_to_text(type), name,
           ca_message(status), ca_message(sinkStatus(&done)), check, gwTestGetDouble(check));
    ops->detach(channel);
    testOk(sinkCalls(&done) == 1, "exactly one completion");
    sinkClear(&done);
    sinkClear(&rights);
}

static void testPutNotify(void)
{
    double value = 4.5, slow = 7.0;
    struct dbr_time_double timed;
    dbr_string_t two = "two"; /* a whole DBR_STRING, as the server passes it */

    memset(&timed, 0, sizeof timed);
    timed.value = 8.0;
    testPutNotifyOne("gw:ao", DBR_DOUBLE, &value, "gw:ao", 4.5);
    testPutNotifyOne("gw:ao", DBR_TIME_DOUBLE, &timed, "gw:ao", 8.0);
    testPutNotifyOne("gw:mbbo", DBR_STRING, two, "gw:mbbo", 2.0);
    testPutNotifyOne("gw:slow.A", DBR_DOUBLE, &slow, "gw:slow", 7.0);
}

/* Detach while the record is still processing (ODLY 1 s): done comes, with
 * ECA_PUTFAIL, before detach returns. */
static void testDetachCompletesPuts(void)
{
    gwTestSink rights, done, barrier;
    gwProviderChannel *channel;
    int status;

    sinkInit(&rights);
    sinkInit(&done);
    sinkInit(&barrier);
    channel = attachAs("gw:slow.A", "alice", &rights);
    status = putDouble(channel, 9.0, &done);
    testOk(status == ECA_NORMAL, "put with completion to the slow record: %s", ca_message(status));
    ops->detach(channel);
    testOk(sinkCalls(&done) == 1 && sinkStatus(&done) == ECA_PUTFAIL,
           "detach completed the outstanding put: %u call(s), %s", sinkCalls(&done),
           ca_message(sinkStatus(&done)));

    /* The record finishes its delay; a second put waits behind it. */
    channel = attachAs("gw:slow.A", "alice", &rights);
    putDouble(channel, 10.0, &barrier);
    testOk(sinkWaitCalls(&barrier, 1) && sinkStatus(&barrier) == ECA_NORMAL &&
           gwTestGetDouble("gw:slow") == 10.0,
           "the next put with completion to the slow record completes: %s",
           ca_message(sinkStatus(&barrier)));
    ops->detach(channel);
    sinkClear(&barrier);
    sinkClear(&done);
    sinkClear(&rights);
}

static void getStsack(gwProviderChannel *channel, struct dbr_stsack_string *value)
{
    gwTestSink sink;

    sinkInit(&sink);
    ops->get(channel, DBR_STSACK_STRING, 1, onValue, &sink);
    memcpy(value, sink.value, sizeof *value);
    sinkClear(&sink);
}

static void testAcknowledge(void)
{
    struct dbr_stsack_string status;
    dbr_put_acks_t acks = 3;     /* INVALID: acknowledges any severity */
    dbr_put_ackt_t ackt = 0;
    gwTestSink rights, done;
    gwProviderChannel *channel;
    int ret;

    sinkInit(&rights);
    sinkInit(&done);
    gwTestPutDouble("gw:alarm", 60.0);
    channel = attachAs("gw:alarm", "alice", &rights);
    getStsack(channel, &status);
    testOk(status.severity == 2 && status.acks >= 2 && status.ackt == 1,
           "gw:alarm in MAJOR alarm: severity %u acks %u ackt %u", status.severity,
           status.acks, status.ackt);
    ret = ops->put(channel, DBR_PUT_ACKS, 1, &acks, NULL, NULL);
    getStsack(channel, &status);
    testOk(ret == ECA_NORMAL && status.acks == 0, "put DBR_PUT_ACKS: %s, acks now %u",
           ca_message(ret), status.acks);
    ret = ops->put(channel, DBR_PUT_ACKT, 1, &ackt, onPut, &done);
    testOk(ret == ECA_NORMAL && sinkWaitCalls(&done, 1) && sinkStatus(&done) == ECA_NORMAL,
           "put DBR_PUT_ACKT with completion: %s, done %s", ca_message(ret),
           ca_message(sinkStatus(&done)));
    getStsack(channel, &status);
    testOk(status.ackt == 0, "ackt now %u", status.ackt);
    ops->detach(channel);
    sinkClear(&done);
    sinkClear(&rights);
}

/* One mask: the first update at once, no update for `quiet`, one for `loud`. */
static void testMask(const char *name, unsigned mask, double quiet, double loud)
{
    gwTestSink rights, sink;
    gwProviderChannel *channel;
    gwProviderSubscription *subscription;

    sinkInit(&rights);
    sinkInit(&sink);
    gwTestPutDouble(name, 0.0); /* settle the alarm state (UDF) */
    channel = attachAs(name, "alice", &rights);
    subscription = subscribe(channel, DBR_TIME_DOUBLE, 1, mask, &sink);
    testOk(subscription && sinkWaitCalls(&sink, 1) && sinkStatus(&sink) == ECA_NORMAL &&
           sinkDouble(&sink) == 0.0, "mask %u on %s: first update at once", mask, name);
    gwTestPutDouble(name, quiet);
    gwTestPutDouble(name, loud);
    testOk(sinkWaitDouble(&sink, loud) && sinkCalls(&sink) == 2,
           "mask %u: no update for %g, one for %g (%u updates)", mask, quiet, loud,
           sinkCalls(&sink));
    ops->cancel(subscription);
    ops->detach(channel);
    sinkClear(&sink);
    sinkClear(&rights);
}

static void testAlarmMask(void)
{
    gwTestSink rights, sink;
    gwProviderChannel *channel;
    gwProviderSubscription *subscription;
    struct dbr_time_double value;

    sinkInit(&rights);
    sinkInit(&sink);
    gwTestPutDouble("gw:malarm", 0.0);
    channel = attachAs("gw:malarm", "alice", &rights);
    subscription = subscribe(channel, DBR_TIME_DOUBLE, 1, GW_EVENT_ALARM, &sink);
    testOk(subscription && sinkWaitCalls(&sink, 1), "DBE_ALARM: first update at once");
    gwTestPutDouble("gw:malarm", 1.0);
    gwTestPutDouble("gw:malarm", 7.0);
    sinkWaitCalls(&sink, 2);
    memcpy(&value, sink.value, sizeof value);
    testOk(sinkCalls(&sink) == 2 && value.severity == 1 && value.value == 7.0,
           "DBE_ALARM: one update, for the MINOR alarm at 7 (severity %d value %g)",
           value.severity, value.value);
    ops->cancel(subscription);
    ops->detach(channel);
    sinkClear(&sink);
    sinkClear(&rights);
}

static void testPropertyMask(void)
{
    gwTestSink rights, sink;
    gwProviderChannel *channel;
    gwProviderSubscription *subscription;
    struct dbr_ctrl_double value;

    sinkInit(&rights);
    sinkInit(&sink);
    gwTestPutDouble("gw:mprop", 0.0);
    channel = attachAs("gw:mprop", "alice", &rights);
    subscription = subscribe(channel, DBR_CTRL_DOUBLE, 1, GW_EVENT_PROPERTY, &sink);
    testOk(subscription && sinkWaitCalls(&sink, 1), "DBE_PROPERTY: first update at once");
    gwTestPutDouble("gw:mprop", 3.0);
    gwTestPutDouble("gw:mprop.HOPR", 20.0);
    sinkWaitCalls(&sink, 2);
    memcpy(&value, sink.value, sizeof value);
    testOk(sinkCalls(&sink) == 2 && value.upper_disp_limit == 20.0,
           "DBE_PROPERTY: none for VAL, one for HOPR (upper_disp_limit %g)",
           value.upper_disp_limit);
    gwTestPutString("gw:mprop.EGU", "cm");
    sinkWaitCalls(&sink, 3);
    memcpy(&value, sink.value, sizeof value);
    testOk(sinkCalls(&sink) == 3 && strcmp(value.units, "cm") == 0,
           "DBE_PROPERTY: one for EGU (units \"%s\")", value.units);
    ops->cancel(subscription);
    ops->detach(channel);
    sinkClear(&sink);
    sinkClear(&rights);
}

static void testWaveformSubscription(void)
{
    static const double six[6] = { 6, 5, 4, 3, 2, 1 };
    gwTestSink rights, sink, filtered;
    gwProviderChannel *channel, *window;
    gwProviderSubscription *subscription, *windowed;
    double values[3];

    sinkInit(&rights);
    sinkInit(&sink);
    sinkInit(&filtered);
    channel = attachAs("gw:wfd", "alice", &rights);
    subscription = subscribe(channel, DBR_DOUBLE, 0, GW_EVENT_VALUE, &sink);
    testOk(subscription && sinkWaitCalls(&sink, 1) && sinkCount(&sink) == 4,
           "waveform, count 0: first update has the current 4 elements (%lu)",
           sinkCount(&sink));
    ops->put(channel, DBR_DOUBLE, 6, six, NULL, NULL);
    testOk(sinkWaitCalls(&sink, 2) && sinkCount(&sink) == 6 && sinkDouble(&sink) == 6.0,
           "waveform, count 0: update after a put of 6 has 6 elements (%lu)",
           sinkCount(&sink));
    window = attachAs("gw:wfd.VAL{\"arr\":{\"s\":1,\"e\":3}}", "alice", &rights);
    windowed = subscribe(window, DBR_DOUBLE, 0, GW_EVENT_VALUE, &filtered);
    sinkWaitCalls(&filtered, 1);
    epicsMutexMustLock(filtered.lock);
    memcpy(values, filtered.value, sizeof values);
    epicsMutexUnlock(filtered.lock);
    testOk(sinkCount(&filtered) == 3 && values[0] == 5.0 && values[2] == 3.0,
           "arr filter [1..3]: %lu elements %g %g %g", sinkCount(&filtered), values[0],
           values[1], values[2]);
    ops->cancel(windowed);
    ops->detach(window);
    ops->cancel(subscription);
    ops->detach(channel);
    sinkClear(&filtered);
    sinkClear(&sink);
    sinkClear(&rights);
}

static void cancelItself(gwTestSink *sink)
{
    ops->cancel(sink->subscription);
}

static void cancelAndDetach(gwTestSink *sink)
{
    ops->cancel(sink->subscription);
    ops->detach(sink->channel);
}

/* cancel, enable(0/1) and cancel from inside an update, proven against a
 * sentinel subscription on the same record. */
static void testCancelAndHold(void)
{
    gwTestSink rights, sentinel, cancelled, held, suicide, gone;
    gwProviderChannel *channel, *other;
    gwProviderSubscription *watch, *sub;

    sinkInit(&rights);
    sinkInit(&sentinel);
    sinkInit(&cancelled);
    sinkInit(&held);
    sinkInit(&suicide);
    sinkInit(&gone);
    gwTestPutDouble("gw:mval", 100.0);
    channel = attachAs("gw:mval", "alice", &rights);
    watch = subscribe(channel, DBR_TIME_DOUBLE, 1, GW_EVENT_VALUE, &sentinel);
    sub = subscribe(channel, DBR_TIME_DOUBLE, 1, GW_EVENT_VALUE, &cancelled);
    sinkWaitCalls(&cancelled, 1);
    ops->cancel(sub);
    gwTestPutDouble("gw:mval", 110.0);
    gwTestPutDouble("gw:mval", 120.0);
    testOk(sinkWaitDouble(&sentinel, 120.0) && sinkCalls(&cancelled) == 1,
           "no update after cancel (%u)", sinkCalls(&cancelled));

    sub = subscribe(channel, DBR_TIME_DOUBLE, 1, GW_EVENT_VALUE, &held);
    sinkWaitCalls(&held, 1);
    ops->enable(sub, 0);
    gwTestPutDouble("gw:mval", 130.0);
    gwTestPutDouble("gw:mval", 140.0);
    testOk(sinkWaitDouble(&sentinel, 140.0) && sinkCalls(&held) == 1,
           "no update while held (%u)", sinkCalls(&held));
    ops->enable(sub, 1);
    testOk(sinkWaitCalls(&held, 2) && sinkDouble(&held) == 140.0,
           "released: the current value arrives at once (%g)", sinkDouble(&held));
    ops->cancel(sub);

    /* Hooks are armed after the first update: updates may come before
     * subscribe() returns. */
    suicide.subscription = subscribe(channel, DBR_TIME_DOUBLE, 1, GW_EVENT_VALUE, &suicide);
    sinkWaitCalls(&suicide, 1);
    epicsMutexMustLock(suicide.lock);
    suicide.hook = cancelItself;
    epicsMutexUnlock(suicide.lock);
    gwTestPutDouble("gw:mval", 150.0);
    gwTestPutDouble("gw:mval", 160.0);
    testOk(sinkWaitDouble(&sentinel, 160.0) && sinkCalls(&suicide) == 2 && suicide.hookRan,
           "cancel from inside its own update: no update after (%u)", sinkCalls(&suicide));

    other = attachAs("gw:mval", "alice", &rights);
    gone.channel = other;
    gone.subscription = subscribe(other, DBR_TIME_DOUBLE, 1, GW_EVENT_VALUE, &gone);
    sinkWaitCalls(&gone, 1);
    epicsMutexMustLock(gone.lock);
    gone.hook = cancelAndDetach;
    epicsMutexUnlock(gone.lock);
    gwTestPutDouble("gw:mval", 170.0);
    gwTestPutDouble("gw:mval", 180.0);
    testOk(sinkWaitDouble(&sentinel, 180.0) && sinkCalls(&gone) == 2 && gone.hookRan,
           "cancel and detach from inside an update: no update after (%u)", sinkCalls(&gone));

    ops->cancel(watch);
    ops->detach(channel);
    sinkClear(&gone);
    sinkClear(&suicide);
    sinkClear(&held);
    sinkClear(&cancelled);
    sinkClear(&sentinel);
    sinkClear(&rights);
}

/* ---- subscribe/cancel churn while the record changes ---- */

#define CHURN_ROUNDS 300

typedef struct gwTestChurn {
    int cancelled;          /* cancel() has returned */
} gwTestChurn;

static struct {
    epicsMutexId lock;
    unsigned updates;
    unsigned late;          /* updates after cancel() returned: must stay 0 */
    int stop;
    epicsEventId stopped;
} churn;

static void onChurnValue(void *user, int status, short type, unsigned long count,
                         const void *value)
{
    gwTestChurn *one = user;

    (void)status;
    (void)type;
    (void)count;
    (void)value;
    epicsMutexMustLock(churn.lock);
    churn.updates++;
    if (one->cancelled)
        churn.late++;
    epicsMutexUnlock(churn.lock);
}

static void churnWriter(void *arg)
{
    gwProviderChannel *channel = arg;
    double value = 1000.0;
    int stop = 0;

    while (!stop) {
        putDouble(channel, value += 10.0, NULL);
        epicsThreadSleep(0.0); /* yield: a load generator, not a timing */
        epicsMutexMustLock(churn.lock);
        stop = churn.stop;
        epicsMutexUnlock(churn.lock);
    }
    epicsEventSignal(churn.stopped);
}

static void testChurn(void)
{
    static gwTestChurn ones[CHURN_ROUNDS];
    gwTestSink rights;
    gwProviderChannel *channel, *writer;
    int i;

    sinkInit(&rights);
    churn.lock = epicsMutexMustCreate();
    churn.stopped = epicsEventMustCreate(epicsEventEmpty);
    channel = attachAs("gw:mval", "alice", &rights);
    writer = attachAs("gw:mval", "alice", &rights);
    epicsThreadMustCreate("gwChurn", epicsThreadPriorityMedium,
                          epicsThreadGetStackSize(epicsThreadStackSmall), churnWriter, writer);
    for (i = 0; i < CHURN_ROUNDS; i++) {
        int status;
        gwProviderSubscription *subscription = ops->subscribe(
            channel, DBR_TIME_DOUBLE, 1, GW_EVENT_VALUE, onChurnValue, &ones[i], &status);

        if (i % 3)
            epicsThreadSleep(0.0);
        ops->cancel(subscription);
        epicsMutexMustLock(churn.lock);
        ones[i].cancelled = 1;
        epicsMutexUnlock(churn.lock);
    }
    epicsMutexMustLock(churn.lock);
    churn.stop = 1;
    epicsMutexUnlock(churn.lock);
    epicsEventMustWait(churn.stopped);
    epicsMutexMustLock(churn.lock);
    testOk(churn.late == 0, "%d subscribe/cancel while the record changes: %u updates, "
           "%u after cancel", CHURN_ROUNDS, churn.updates, churn.late);
    epicsMutexUnlock(churn.lock);
    ops->detach(writer);
    ops->detach(channel);
    epicsEventDestroy(churn.stopped);
    epicsMutexDestroy(churn.lock);
    sinkClear(&rights);
}

static void testBadSubscription(void)
{
    gwTestSink rights, sink;
    gwProviderChannel *channel;
    int status = 0;

    sinkInit(&rights);
    sinkInit(&sink);
    channel = attachAs("gw:ao", "alice", &rights);
    testOk(!ops->subscribe(channel, LAST_BUFFER_TYPE + 1, 1, GW_EVENT_VALUE, onValue, &sink,
                           &status) && status == ECA_BADTYPE, "subscribe of a bad type: %s",
           ca_message(status));
    testOk(!ops->subscribe(channel, DBR_DOUBLE, 2, GW_EVENT_VALUE, onValue, &sink, &status) &&
           status == ECA_BADCOUNT, "subscribe of 2 elements of a scalar: %s",
           ca_message(status));
    testOk(!ops->subscribe(channel, DBR_DOUBLE, 1, 0, onValue, &sink, &status) &&
           status == ECA_BADMASK, "subscribe with an empty mask: %s", ca_message(status));
    ops->detach(channel);
    sinkClear(&sink);
    sinkClear(&rights);
}

static void testAccessRights(void)
{
    gwTestSink rights, done, sink, monitor;
    gwProviderChannel *writer, *reader, *none;
    gwProviderSubscription *subscription;
    gwClientIdentity client;

    sinkInit(&rights);
    sinkInit(&done);
    sinkInit(&sink);
    sinkInit(&monitor);
    writer = attachAs("gw:ao", "alice", &rights);
    reader = attachAs("gw:ao", "ro", &rights);
    testOk(ops->rights(writer) == (GW_RIGHT_READ | GW_RIGHT_WRITE), "alice reads and writes");
    testOk(ops->rights(reader) == GW_RIGHT_READ, "ro only reads");
    testOk(putDouble(reader, 1.0, NULL) == ECA_NOWTACCESS, "ro's put is ECA_NOWTACCESS");
    testOk(putDouble(reader, 1.0, &done) == ECA_NOWTACCESS && sinkCalls(&done) == 0,
           "ro's put with completion is ECA_NOWTACCESS, without done()");
    testOk(ops->get(reader, DBR_DOUBLE, 1, onValue, &sink) == ECA_NORMAL && sink.calls == 1,
           "ro's get works");

    client = identityOf("alice");
    ops->clientChanged(reader, &client);
    testOk(sinkWaitCalls(&rights, 1) &&
           sinkRights(&rights) == (GW_RIGHT_READ | GW_RIGHT_WRITE) &&
           ops->rights(reader) == sinkRights(&rights),
           "ro becomes alice: rightsChanged(read|write) (%u)", sinkRights(&rights));
    client = identityOf("ro");
    ops->clientChanged(reader, &client);
    testOk(sinkWaitCalls(&rights, 2) && sinkRights(&rights) == GW_RIGHT_READ,
           "alice becomes ro again: rightsChanged(read) (%u)", sinkRights(&rights));
    ops->detach(reader);
    ops->detach(writer);

    none = attachAs("gw:noread", "alice", &rights);
    testOk(ops->rights(none) == 0, "gw:noread (ASG NOREAD) gives no rights");
    testOk(ops->get(none, DBR_DOUBLE, 1, onValue, &sink) == ECA_NORDACCESS,
           "get without read access is ECA_NORDACCESS");
    subscription = subscribe(none, DBR_DOUBLE, 1, GW_EVENT_VALUE, &monitor);
    testOk(subscription && sinkWaitCalls(&monitor, 1) && sinkStatus(&monitor) == ECA_NORDACCESS &&
           !monitor.gotValue, "subscription without read access: ECA_NORDACCESS, no value");
    ops->cancel(subscription);
    ops->detach(none);
    testOk(sinkCalls(&rights) == 2, "no other rights change was reported");
    sinkClear(&monitor);
    sinkClear(&sink);
    sinkClear(&done);
    sinkClear(&rights);
}

/* ---- several event contexts ---- */

/* Four channels on a provider of three contexts: round-robin, so the first
 * and the fourth share gwLocalEvent0; each channel's updates, put
 * completions and rights changes come from its own context's task. */
static void testContextsSpread(void)
{
    static const char *const tasks[4] = {
        "gwLocalEvent0", "gwLocalEvent1", "gwLocalEvent2", "gwLocalEvent0"
    };
    gwProvider *three = gwLocalProviderCreate(3);
    gwProvider *first = provider;
    gwTestSink rights, sinks[4], done;
    gwProviderChannel *channels[4];
    gwProviderSubscription *subscriptions[4];
    gwClientIdentity client;
    int i, all = 1;

    if (!three)
        testAbort("gwLocalProviderCreate(3) failed");
    provider = three;
    sinkInit(&rights);
    sinkInit(&done);
    gwTestPutDouble("gw:mval", 200.0);
    for (i = 0; i < 4; i++) {
        sinkInit(&sinks[i]);
        channels[i] = attachAs("gw:mval", "alice", &rights);
        subscriptions[i] = subscribe(channels[i], DBR_DOUBLE, 1, GW_EVENT_VALUE, &sinks[i]);
    }
    for (i = 0; i < 4; i++)
        testOk(sinkWaitCalls(&sinks[i], 1) && sinkThreadIs(&sinks[i], tasks[i]),
               "3 contexts: channel %d's first update comes from %s (%s)", i, tasks[i],
               sinks[i].thread);
    gwTestPutDouble("gw:mval", 210.0);
    for (i = 0; i < 4; i++)
        all = sinkWaitDouble(&sinks[i], 210.0) && all;
    testOk(all, "3 contexts: a change of the record reaches the channels on every context");

    putDouble(channels[1], 220.0, &done);
    testOk(sinkWaitCalls(&done, 1) && sinkStatus(&done) == ECA_NORMAL &&
           sinkThreadIs(&done, "gwLocalEvent1"),
           "a put's completion comes from its channel's context (%s)", done.thread);
    client = identityOf("ro");
    ops->clientChanged(channels[2], &client);
    testOk(sinkWaitCalls(&rights, 1) && sinkRights(&rights) == GW_RIGHT_READ &&
           sinkThreadIs(&rights, "gwLocalEvent2"),
           "a rights change comes from its channel's context (%s)", rights.thread);

    for (i = 0; i < 4; i++) {
        ops->cancel(subscriptions[i]);
        ops->detach(channels[i]);
        sinkClear(&sinks[i]);
    }
    gwLocalProviderDestroy(three);
    provider = first;
    sinkClear(&done);
    sinkClear(&rights);
}

/* A hook: cancel and detach a channel of the other context, then note how
 * many updates that channel's sink had seen. */
static void cancelAndDetachOther(gwTestSink *sink)
{
    ops->cancel(sink->subscription);
    ops->detach(sink->channel);
    sink->watchedCalls = sinkCalls(sink->watched);
}

/* Two contexts. Victims are subscribed before the sentinels, so a
 * sentinel's update of a change is queued behind the victim's on its
 * context. */
static void testContextsCancelInside(void)
{
    gwProvider *two = gwLocalProviderCreate(2);
    gwProvider *first = provider;
    gwTestSink rights, own[2], sentinel[2], target[2];
    gwProviderChannel *victim[2], *watch[2];
    gwProviderSubscription *watching[2];
    double value = 300.0;
    int i;

    if (!two)
        testAbort("gwLocalProviderCreate(2) failed");
    provider = two;
    sinkInit(&rights);
    gwTestPutDouble("gw:mval", value);
    for (i = 0; i < 2; i++) { /* contexts 0, 1, 0, 1 */
        sinkInit(&own[i]);
        victim[i] = attachAs("gw:mval", "alice", &rights);
        own[i].channel = victim[i];
        own[i].subscription = subscribe(victim[i], DBR_DOUBLE, 1, GW_EVENT_VALUE, &own[i]);
    }
    for (i = 0; i < 2; i++) {
        sinkInit(&sentinel[i]);
        watch[i] = attachAs("gw:mval", "alice", &rights);
        watching[i] = subscribe(watch[i], DBR_DOUBLE, 1, GW_EVENT_VALUE, &sentinel[i]);
    }
    for (i = 0; i < 2; i++) {
        sinkWaitCalls(&own[i], 1);
        epicsMutexMustLock(own[i].lock);
        own[i].hook = cancelAndDetach;
        epicsMutexUnlock(own[i].lock);
    }
    gwTestPutDouble("gw:mval", value += 10.0);
    gwTestPutDouble("gw:mval", value += 10.0);
    testOk(sinkWaitDouble(&sentinel[0], value) && sinkWaitDouble(&sentinel[1], value) &&
           sinkCalls(&own[0]) == 2 && own[0].hookRan && sinkThreadIs(&own[0], "gwLocalEvent0") &&
           sinkCalls(&own[1]) == 2 && own[1].hookRan && sinkThreadIs(&own[1], "gwLocalEvent1"),
           "2 contexts: cancel and detach from inside its own update, on each context: "
           "no update after (%u, %u)", sinkCalls(&own[0]), sinkCalls(&own[1]));

    /* From inside an update on context i, cancel and detach a channel of
     * the other context j while it receives updates: cancel waits for its
     * running update, none comes after. A late sentinel on context j,
     * subscribed after it, proves it. */
    for (i = 0; i < 2; i++) {
        gwTestSink *hooked = &own[i], late;
        gwProviderChannel *channels[4];
        int j = 1 - i, k;

        sinkClear(hooked);
        sinkInit(hooked);
        sinkInit(&target[j]);
        sinkInit(&late);
        for (k = 0; k < 4; k++) /* contexts 0, 1, 0, 1 */
            channels[k] = attachAs("gw:mval", "alice", &rights);
        ops->detach(channels[2 + i]);
        hooked->channel = channels[j];
        hooked->watched = &target[j];
        subscribe(channels[i], DBR_DOUBLE, 1, GW_EVENT_VALUE, hooked);
        hooked->subscription = subscribe(channels[j], DBR_DOUBLE, 1, GW_EVENT_VALUE, &target[j]);
        subscribe(channels[2 + j], DBR_DOUBLE, 1, GW_EVENT_VALUE, &late);
        sinkWaitCalls(hooked, 1);
        sinkWaitCalls(&target[j], 1);
        sinkWaitCalls(&late, 1);
        epicsMutexMustLock(hooked->lock);
        hooked->hook = cancelAndDetachOther;
        epicsMutexUnlock(hooked->lock);
        gwTestPutDouble("gw:mval", value += 10.0);
        testOk(sinkWaitHook(hooked) && sinkThreadIs(hooked, i ? "gwLocalEvent1" : "gwLocalEvent0"),
               "from inside an update on context %d, cancel and detach a channel of "
               "context %d", i, j);
        gwTestPutDouble("gw:mval", value += 10.0);
        gwTestPutDouble("gw:mval", value += 10.0);
        testOk(sinkWaitDouble(&late, value) && sinkWaitDouble(hooked, value) &&
               sinkCalls(&target[j]) == hooked->watchedCalls,
               "... no update of it after (%u at the cancel, %u now)", hooked->watchedCalls,
               sinkCalls(&target[j]));
        ops->detach(channels[i]);     /* cancels the hooked subscription */
        ops->detach(channels[2 + j]); /* and the late sentinel's */
        sinkClear(&late);
        sinkClear(&target[j]);
    }

    for (i = 0; i < 2; i++) {
        ops->cancel(watching[i]);
        ops->detach(watch[i]);
        sinkClear(&sentinel[i]);
        sinkClear(&own[i]);
    }
    gwLocalProviderDestroy(two);
    provider = first;
    sinkClear(&rights);
}

/* Two threads attach, subscribe, cancel (or leave the subscription to
 * detach) and detach channels, spread over two contexts, while the record
 * changes as fast as a third thread can write it. */
typedef struct gwTestChurner {
    gwTestChurn ones[CHURN_ROUNDS];
    epicsEventId done;
} gwTestChurner;

static void churnChannels(void *arg)
{
    gwTestChurner *churner = arg;
    gwTestSink rights;
    int i;

    sinkInit(&rights);
    for (i = 0; i < CHURN_ROUNDS; i++) {
        int status;
        gwProviderChannel *channel = attachAs("gw:mval", "alice", &rights);
        gwProviderSubscription *subscription = ops->subscribe(
            channel, DBR_TIME_DOUBLE, 1, GW_EVENT_VALUE, onChurnValue, &churner->ones[i], &status);

        if (i % 3)
            epicsThreadSleep(0.0);
        if (i % 4)
            ops->cancel(subscription);
        ops->detach(channel); /* cancels the subscription when it is left */
        epicsMutexMustLock(churn.lock);
        churner->ones[i].cancelled = 1;
        epicsMutexUnlock(churn.lock);
    }
    sinkClear(&rights);
    epicsEventSignal(churner->done);
}

static void testContextsChurn(void)
{
    static gwTestChurner churners[2];
    gwProvider *two = gwLocalProviderCreate(2);
    gwProvider *first = provider;
    gwTestSink rights;
    gwProviderChannel *writer;
    int i;

    if (!two)
        testAbort("gwLocalProviderCreate(2) failed");
    provider = two;
    sinkInit(&rights);
    memset(&churn, 0, sizeof churn);
    churn.lock = epicsMutexMustCreate();
    churn.stopped = epicsEventMustCreate(epicsEventEmpty);
    /* Below the event tasks: with real-time scheduling three busy threads
     * above them would starve them on a small machine. */
    writer = attachAs("gw:mval", "alice", &rights);
    epicsThreadMustCreate("gwChurn", epicsThreadPriorityLow,
                          epicsThreadGetStackSize(epicsThreadStackSmall), churnWriter, writer);
    for (i = 0; i < 2; i++) {
        memset(churners[i].ones, 0, sizeof churners[i].ones);
        churners[i].done = epicsEventMustCreate(epicsEventEmpty);
        epicsThreadMustCreate(i ? "gwChurn1" : "gwChurn0", epicsThreadPriorityLow,
                              epicsThreadGetStackSize(epicsThreadStackSmall), churnChannels,
                              &churners[i]);
    }
    for (i = 0; i < 2; i++) {
        epicsEventMustWait(churners[i].done);
        epicsEventDestroy(churners[i].done);
    }
    epicsMutexMustLock(churn.lock);
    churn.stop = 1;
    epicsMutexUnlock(churn.lock);
    epicsEventMustWait(churn.stopped);
    epicsMutexMustLock(churn.lock);
    testOk(churn.late == 0, "2 contexts, 2 threads x %d attach/subscribe/cancel/detach while "
           "the record changes: %u updates, %u after cancel", CHURN_ROUNDS, churn.updates,
           churn.late);
    epicsMutexUnlock(churn.lock);
    ops->detach(writer);
    gwLocalProviderDestroy(two);
    provider = first;
    epicsEventDestroy(churn.stopped);
    epicsMutexDestroy(churn.lock);
    sinkClear(&rights);
}

/* A provider of the default two contexts destroyed with channels, subscriptions on
 * both contexts and an outstanding put left: everything is released (ASan
 * checks), the put completes. */
static void testDestroyReleases(void)
{
    gwTestSink rights, sink, slowSink, done, again;
    gwProvider *second = gwLocalProviderCreate(0); /* the default: 2 */
    gwProvider *first = provider;
    gwProviderChannel *channel, *slow;

    sinkInit(&rights);
    sinkInit(&sink);
    sinkInit(&slowSink);
    sinkInit(&done);
    provider = second;
    channel = attachAs("gw:ao", "alice", &rights);       /* context 0 */
    subscribe(channel, DBR_DOUBLE, 1, GW_EVENT_VALUE, &sink);
    slow = attachAs("gw:slow.A", "alice", &rights);      /* context 1 */
    subscribe(slow, DBR_DOUBLE, 1, GW_EVENT_VALUE, &slowSink);
    testOk(sinkWaitCalls(&sink, 1) && sinkWaitCalls(&slowSink, 1) &&
           sinkThreadIs(&sink, "gwLocalEvent0") && sinkThreadIs(&slowSink, "gwLocalEvent1"),
           "the provider to destroy has subscriptions on both contexts (%s, %s)", sink.thread,
           slowSink.thread);
    putDouble(slow, 11.0, &done);
    gwLocalProviderDestroy(second);
    testOk(sinkCalls(&done) == 1 && sinkStatus(&done) == ECA_PUTFAIL,
           "destroy completed the outstanding put (%s)", ca_message(sinkStatus(&done)));
    provider = first;
    gwLocalProviderDestroy(NULL);
    testPass("destroy(NULL) is harmless");

    /* let the slow record finish before the IOC stops */
    sinkInit(&again);
    slow = attachAs("gw:slow.A", "alice", &rights);
    putDouble(slow, 12.0, &again);
    testOk(sinkWaitCalls(&again, 1), "slow record idle again");
    ops->detach(slow);
    sinkClear(&again);
    sinkClear(&done);
    sinkClear(&slowSink);
    sinkClear(&sink);
    sinkClear(&rights);
}

MAIN(gwLocalTest)
{
    char acf[1024];
    asTrapWriteId listener;

    (void)argc;
    (void)argv;
    testPlan(213);
    if (!getcwd(acf, sizeof acf - 32))
        testAbort("getcwd failed");
    strcat(acf, "/../gwLocalTest.acf");
    gwTestIocStart(acf);
    provider = gwLocalProviderCreate(1);
    if (!provider)
        testAbort("gwLocalProviderCreate failed");
    ops = provider->ops;
    testOk(strcmp(ops->name, "local") == 0, "provider \"%s\" created", ops->name);
    trapLock = epicsMutexMustCreate();
    listener = asTrapWriteRegisterListener(trapListener);

    testExists();
    testNative();
    testPutWaveform();
    testGetEveryType("gw:ao", 1, 1);
    testGetEveryType("gw:wfd", 0, 4);
    testGetClassName();
    testGetErrors();
    testGetCounts();
    testPutPlain();
    testPutNotify();
    testDetachCompletesPuts();
    testAcknowledge();
    testMask("gw:mval", GW_EVENT_VALUE, 0.5, 2.0);
    testMask("gw:mlog", GW_EVENT_LOG, 4.0, 10.0);
    testAlarmMask();
    testPropertyMask();
    testWaveformSubscription();
    testCancelAndHold();
    testChurn();
    testBadSubscription();
    testAccessRights();
    testContextsSpread();
    testContextsCancelInside();
    testContextsChurn();
    testDestroyReleases();

    asTrapWriteUnregisterListener(listener);
    epicsMutexDestroy(trapLock);
    gwLocalProviderDestroy(provider);
    gwTestIocStop();
    return testDone();
}
