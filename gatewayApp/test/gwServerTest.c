/* gwServerTest.c - the CA server (gwServer.c, gwCircuit*.c, gwIoLoop.c)
 * in-process with a fake provider, driven by a raw client on loopback.
 *
 * Proves what the IOC's records cannot show: a provider's asynchronous
 * completions, rights changes pushed as ACCESS_RIGHTS, SERVER_DISCONN when
 * a source goes away, EPICS_CA_MAX_ARRAY_BYTES on replies, EVENTS_OFF/ON
 * keeping the newest update, requests held at GW_CIRCUIT_MAX_REQUESTS
 * gets and puts at the provider, a bad priority closing the circuit, and a
 * clean stop.
 *
 * Opens sockets: runs only inside `scripts/netns run` (make runtests does
 * there); elsewhere it skips (GW_NETNS unset), or fails where it must run
 * (gwTestNetns.h).
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <caerr.h>
#include <db_access.h>
#include <epicsAtomic.h>
#include <epicsEvent.h>
#include <epicsMutex.h>
#include <epicsThread.h>
#include <epicsUnitTest.h>
#include <net_convert.h>
#include <osiSock.h>
#include <testMain.h>

#include "gwCodec.h"
#include "gwServer.h"
#include "gwTestNetns.h"

#define BIG_COUNT 100000u

/* ---------------------------------------------------------------- fake provider */

typedef struct fakeChannel {
    const gwChannelEvents *events;
    void *serverChannel;
    unsigned long count;
    unsigned rights;
    int deferred;                /* "slow:" names: attach finishes later */
    int holds;                   /* "hold:" names: puts wait in fake.held */
} fakeChannel;

typedef struct fakeSubscription {
    gwValueCallback *update;
    void *user;
} fakeSubscription;

/* A put with completion that a "hold:" channel keeps until the test ends it. */
typedef struct fakeHeldPut {
    gwPutCallback *done;
    void *user;
} fakeHeldPut;

static struct {
    epicsMutexId lock;
    fakeChannel *channel;        /* the last attached "fake:a" */
    fakeSubscription *subscription;
    double value;
    double lastPut;
    gwPutCallback *putDone;
    void *putUser;
    fakeChannel *slow;           /* the last attached "slow:" channel */
    int detached;                /* channels detached so far (epicsAtomic: the
                                  * I/O threads detach, the test reads) */
    fakeHeldPut held[256];       /* puts of "hold:" channels */
    int nHeld;                   /* waiting in held[] */
    int heldTotal;               /* taken so far */
    int binds, unbinds, bound;   /* bind/unbind calls; bind had a full table */
    int detachedAtUnbind;        /* channels detached before unbind */
} fake;

static gwExistsAnswer fakeExistsOne(const char *name)
{
    if (strncmp(name, "fake:", 5) == 0 || strncmp(name, "slow:", 5) == 0
        || strncmp(name, "hold:", 5) == 0)
        return GW_EXISTS_YES;
    if (strncmp(name, "relay:", 6) == 0)
        return GW_EXISTS_ELSEWHERE;
    return strcmp(name, "later") == 0 ? GW_EXISTS_PENDING : GW_EXISTS_NO;
}

static void fakeExists(void *self, const gwClientIdentity *client, gwExistsQuery *queries,
                       unsigned count)
{
    unsigned i;

    (void)self;
    (void)client;
    for (i = 0; i < count; i++) {
        queries[i].answer = fakeExistsOne(queries[i].pvName);
        if (queries[i].answer == GW_EXISTS_ELSEWHERE) {
            /* another server's: 127.0.0.9:6000 */
            queries[i].where.sin_family = AF_INET;
            queries[i].where.sin_addr.s_addr = htonl(0x7f000009u);
            queries[i].where.sin_port = htons(6000);
        }
    }
}

static void fakeBind(void *self, const gwServerCallbacks *callbacks, void *server)
{
    (void)self;
    epicsMutexMustLock(fake.lock);
    fake.binds++;
    fake.bound = callbacks && callbacks->namesSettled && callbacks->beaconAnomaly
                 && callbacks->deliveryHold && callbacks->deliveryRelease && server;
    epicsMutexUnlock(fake.lock);
}

static int detachedSoFar(void)
{
    return epicsAtomicGetIntT(&fake.detached);
}

static void fakeUnbind(void *self)
{
    (void)self;
    epicsMutexMustLock(fake.lock);
    fake.unbinds++;
    fake.detachedAtUnbind = detachedSoFar();
    epicsMutexUnlock(fake.lock);
}

static gwProviderChannel *fakeAttach(void *self, const char *name, const gwClientIdentity *client,
                                     const gwChannelEvents *events, void *serverChannel)
{
    fakeChannel *ch = calloc(1, sizeof *ch);

    (void)self;
    (void)client;
    ch->events = events;
    ch->serverChannel = serverChannel;
    ch->count = strcmp(name, "fake:big") == 0 ? BIG_COUNT : 1;
    ch->rights = GW_RIGHT_READ | GW_RIGHT_WRITE;
    if (strcmp(name, "fake:a") == 0)
        fake.channel = ch;
    ch->holds = strncmp(name, "hold:", 5) == 0;
    if (strncmp(name, "slow:", 5) == 0) {
        ch->deferred = 1;
        fake.slow = ch;
        if (strcmp(name, "slow:early") == 0)   /* finished before attach returns */
            events->connected(serverChannel, 1);
    }
    return (gwProviderChannel *)ch;
}

static void fakeDetach(gwProviderChannel *channel)
{
    if ((fakeChannel *)channel == fake.channel)
        fake.channel = NULL;
    if ((fakeChannel *)channel == fake.slow)
        fake.slow = NULL;
    epicsAtomicIncrIntT(&fake.detached);
    free(channel);
}

static int fakeDeferred(gwProviderChannel *channel)
{
    return ((fakeChannel *)channel)->deferred;
}

static short fakeNativeType(gwProviderChannel *channel)
{
    (void)channel;
    return DBR_DOUBLE;
}

static unsigned long fakeNativeCount(gwProviderChannel *channel)
{
    return ((fakeChannel *)channel)->count;
}

static unsigned fakeRights(gwProviderChannel *channel)
{
    return ((fakeChannel *)channel)->rights;
}

static void fakeClientChanged(gwProviderChannel *channel, const gwClientIdentity *client)
{
    (void)channel;
    (void)client;
}

static int fakeGet(gwProviderChannel *channel, short type, unsigned long count,
                   gwValueCallback *done, void *user)
{
    fakeChannel *ch = (fakeChannel *)channel;
    size_t n = count ? count : ch->count;
    double *values = calloc(n, sizeof *values);

    if (type != DBR_DOUBLE || !values) {
        free(values);
        return ECA_BADTYPE;
    }
    values[0] = fake.value;
    done(user, ECA_NORMAL, type, n, values);
    free(values);
    return ECA_NORMAL;
}

static int fakePut(gwProviderChannel *channel, short type, unsigned long count,
                   const void *value, gwPutCallback *done, void *user)
{
    if (type != DBR_DOUBLE || count != 1)
        return ECA_BADTYPE;
    epicsMutexMustLock(fake.lock);
    if (((fakeChannel *)channel)->holds && done) {
        int full = fake.nHeld == (int)(sizeof fake.held / sizeof fake.held[0]);
        if (!full) {
            fake.held[fake.nHeld].done = done;
            fake.held[fake.nHeld++].user = user;
            fake.heldTotal++;
        }
        epicsMutexUnlock(fake.lock);
        return full ? ECA_PUTFAIL : ECA_NORMAL;
    }
    fake.lastPut = *(const double *)value;
    fake.putDone = done;   /* completed later, from the test thread */
    fake.putUser = user;
    epicsMutexUnlock(fake.lock);
    return ECA_NORMAL;
}

static gwProviderSubscription *fakeSubscribe(gwProviderChannel *channel, short type,
                                             unsigned long count, unsigned mask,
                                             gwValueCallback *update, void *user, int *status)
{
    fakeSubscription *sub = calloc(1, sizeof *sub);

    (void)channel;
    (void)count;
    (void)mask;
    sub->update = update;
    sub->user = user;
    fake.subscription = sub;
    *status = ECA_NORMAL;
    update(user, ECA_NORMAL, type, 1, &fake.value);
    return (gwProviderSubscription *)sub;
}

static void fakeCancel(gwProviderSubscription *subscription)
{
    if ((fakeSubscription *)subscription == fake.subscription)
        fake.subscription = NULL;
    free(subscription);
}

static void fakeEnable(gwProviderSubscription *subscription, int enabled)
{
    (void)subscription;
    (void)enabled;
}

static const gwProviderOps fakeOps = {
    .name = "fake",
    .bind = fakeBind,
    .unbind = fakeUnbind,
    .exists = fakeExists,
    .attach = fakeAttach,
    .deferred = fakeDeferred,
    .detach = fakeDetach,
    .nativeType = fakeNativeType,
    .nativeCount = fakeNativeCount,
    .rights = fakeRights,
    .clientChanged = fakeClientChanged,
    .get = fakeGet,
    .put = fakePut,
    .subscribe = fakeSubscribe,
    .cancel = fakeCancel,
    .enable = fakeEnable,
};

/* ---------------------------------------------------------------- raw client */

typedef struct client {
    SOCKET sock;
    unsigned char buf[1 << 20];
    size_t len;
} client;

static void clientSend(client *c, const void *bytes, size_t n)
{
    send(c->sock, bytes, n, 0);
}

static void sendHeader(client *c, epicsUInt16 command, epicsUInt16 type, epicsUInt32 count,
                       epicsUInt32 p1, epicsUInt32 p2, const void *payload, size_t size)
{
    unsigned char out[64];
    gwCaHeader h;
    size_t n;

    h.command = command;
    h.payloadSize = (epicsUInt32)CA_MESSAGE_ALIGN(size);
    h.dataType = type;
    h.count = count;
    h.parameter1 = p1;
    h.parameter2 = p2;
    n = gwCodecWriteHeader(out, sizeof out, &h, GW_CA_MINOR_VERSION);
    memset(out + n, 0, h.payloadSize);
    if (payload)
        memcpy(out + n, payload, size);
    clientSend(c, out, n + h.payloadSize);
}

/* The next message (waiting up to the socket timeout); 0 on success. */
static int nextMessage(client *c, gwCaMessage *m, unsigned char *payload, size_t cap)
{
    for (;;) {
        size_t used;
        int n;
        if (gwCodecParseMessage(c->buf, c->len, sizeof c->buf, m, &used) == GW_CODEC_OK) {
            size_t copy = m->header.payloadSize < cap ? m->header.payloadSize : cap;
            memcpy(payload, m->payload, copy);
            memmove(c->buf, c->buf + used, c->len - used);
            c->len -= used;
            m->payload = payload;
            return 0;
        }
        n = recv(c->sock, (char *)c->buf + c->len, sizeof c->buf - c->len, 0);
        if (n <= 0)
            return -1;
        c->len += (size_t)n;
    }
}

/* 1 when the server sent something within seconds. */
static int waitReadable(client *c, double seconds)
{
    struct pollfd fd;

    fd.fd = c->sock;
    fd.events = POLLIN;
    fd.revents = 0;
    return poll(&fd, 1, (int)(seconds * 1000)) > 0;
}

static int expectCommand(client *c, epicsUInt16 command, gwCaMessage *m, unsigned char *payload)
{
    if (nextMessage(c, m, payload, 64) != 0)
        return 0;
    if (m->header.command != command)
        testDiag("got command %u, expected %u", m->header.command, command);
    return m->header.command == command;
}

static double payloadDouble(const unsigned char *p)
{
    double value;

    caNetConvert(DBR_DOUBLE, p, &value, 0, 1);
    return value;
}

static void clientConnect(client *c, unsigned short port)
{
    osiSockAddr addr;
    struct timeval timeout = { 5, 0 };

    memset(c, 0, sizeof *c);
    memset(&addr, 0, sizeof addr);
    addr.ia.sin_family = AF_INET;
    addr.ia.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.ia.sin_port = htons(port);
    c->sock = epicsSocketCreate(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    setsockopt(c->sock, SOL_SOCKET, SO_RCVTIMEO, (char *)&timeout, sizeof timeout);
    testOk(connect(c->sock, &addr.sa, sizeof addr.ia) == 0, "client connects");
}

/* VERSION, names, CREATE_CHAN name; returns the server channel id (0: failed). */
static epicsUInt32 createChannel(client *c, const char *name, epicsUInt32 cid, unsigned *rights,
                                 epicsUInt32 *count)
{
    gwCaMessage m;
    unsigned char p[64];

    sendHeader(c, CA_PROTO_CREATE_CHAN, 0, 0, cid, GW_CA_MINOR_VERSION, name, strlen(name) + 1);
    if (nextMessage(c, &m, p, sizeof p) != 0)
        return 0;
    if (m.header.command == CA_PROTO_CREATE_CH_FAIL)
        return 0;
    *rights = m.header.parameter2;
    if (!expectCommand(c, CA_PROTO_CREATE_CHAN, &m, p))
        return 0;
    *count = m.header.count;
    return m.header.parameter2;
}

/* ---------------------------------------------------------------- tests */

static gwServer *startServer(void)
{
    gwServerConfig config;
    gwProvider provider = { &fakeOps, NULL };
    static gwProvider keep;
    gwProvider *providers[1];
    osiSockAddrNode *node = calloc(1, sizeof *node);

    keep = provider;
    providers[0] = &keep;
    memset(&config, 0, sizeof config);
    ellInit(&config.interfaces);
    ellInit(&config.ignoreAddresses);
    ellInit(&config.beaconAddresses);
    node->addr.ia.sin_family = AF_INET;
    node->addr.ia.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ellAdd(&config.interfaces, &node->node);
    config.port = 0;               /* any free port */
    config.beaconPort = 5065;
    config.beaconPeriod = 15;
    config.maxArrayBytes = 16384;
    config.ioThreads = 2;
    config.sendTimeout = 30;
    return gwServerStart(&config, providers, 1);
}

static void testConversation(unsigned short port)
{
    client *c = calloc(1, sizeof *c);
    gwCaMessage m;
    unsigned char p[64];
    unsigned rights = 0;
    epicsUInt32 count = 0, sid;

    clientConnect(c, port);
    testOk(expectCommand(c, CA_PROTO_VERSION, &m, p), "the server speaks first: VERSION");
    sendHeader(c, CA_PROTO_VERSION, 0, GW_CA_MINOR_VERSION, 0, 0, NULL, 0);
    sendHeader(c, CA_PROTO_CLIENT_NAME, 0, 0, 0, 0, "tester", 7);

    testOk(createChannel(c, "nosuch", 1, &rights, &count) == 0, "unknown name: CREATE_CH_FAIL");
    sid = createChannel(c, "fake:a", 2, &rights, &count);
    testOk(sid != 0 && rights == 3 && count == 1, "fake:a: rights %u, count %u", rights, count);

    fake.value = 3.5;
    sendHeader(c, CA_PROTO_READ_NOTIFY, DBR_DOUBLE, 1, sid, 77, NULL, 0);
    testOk(expectCommand(c, CA_PROTO_READ_NOTIFY, &m, p) && m.header.parameter2 == 77 &&
           m.header.parameter1 == ECA_NORMAL && payloadDouble(p) == 3.5, "read gives 3.5");

    sendHeader(c, CA_PROTO_EVENT_ADD, DBR_DOUBLE, 1, sid, 5, "\0\0\0\0\0\0\0\0\0\0\0\0\0\1\0\0", 16);
    testOk(expectCommand(c, CA_PROTO_EVENT_ADD, &m, p) && payloadDouble(p) == 3.5,
           "subscription: first update at once");
    fake.value = 4.5;
    fake.subscription->update(fake.subscription->user, ECA_NORMAL, DBR_DOUBLE, 1, &fake.value);
    testOk(expectCommand(c, CA_PROTO_EVENT_ADD, &m, p) && payloadDouble(p) == 4.5,
           "an update from the provider's thread arrives");

    sendHeader(c, CA_PROTO_EVENTS_OFF, 0, 0, 0, 0, NULL, 0);
    sendHeader(c, CA_PROTO_ECHO, 0, 0, 0, 0, NULL, 0);
    testOk(expectCommand(c, CA_PROTO_ECHO, &m, p), "EVENTS_OFF handled (its ECHO came back)");
    for (fake.value = 10; fake.value <= 12; fake.value++)
        fake.subscription->update(fake.subscription->user, ECA_NORMAL, DBR_DOUBLE, 1, &fake.value);
    sendHeader(c, CA_PROTO_EVENTS_ON, 0, 0, 0, 0, NULL, 0);
    sendHeader(c, CA_PROTO_ECHO, 0, 0, 0, 0, NULL, 0);
    testOk(expectCommand(c, CA_PROTO_EVENT_ADD, &m, p), "after EVENTS_ON an update comes");
    testDiag("first update after EVENTS_ON: %g", payloadDouble(p));
    testOk(payloadDouble(p) == 12, "only the newest update of the held ones is sent");
    testOk(expectCommand(c, CA_PROTO_ECHO, &m, p), "then the ECHO reply: nothing else queued");

    sendHeader(c, CA_PROTO_WRITE_NOTIFY, DBR_DOUBLE, 1, sid, 9, NULL, 0);
    {
        double v = 6.25;
        unsigned char net[8];
        caNetConvert(DBR_DOUBLE, &v, net, 1, 1);
        sendHeader(c, CA_PROTO_WRITE_NOTIFY, DBR_DOUBLE, 1, sid, 9, net, 8);
    }
    testOk(expectCommand(c, CA_PROTO_WRITE_NOTIFY, &m, p), "a put with a short payload is refused");
    sendHeader(c, CA_PROTO_ECHO, 0, 0, 0, 0, NULL, 0);
    testOk(expectCommand(c, CA_PROTO_ECHO, &m, p), "the put waits for its completion");
    epicsMutexMustLock(fake.lock);
    testOk(fake.lastPut == 6.25 && fake.putDone != NULL, "the provider got 6.25");
    fake.putDone(fake.putUser, ECA_NORMAL);
    epicsMutexUnlock(fake.lock);
    testOk(expectCommand(c, CA_PROTO_WRITE_NOTIFY, &m, p) && m.header.parameter1 == ECA_NORMAL &&
           m.header.parameter2 == 9, "completion arrives with ECA_NORMAL and the io id");

    fake.channel->rights = GW_RIGHT_READ;
    fake.channel->events->rightsChanged(fake.channel->serverChannel, GW_RIGHT_READ);
    testOk(expectCommand(c, CA_PROTO_ACCESS_RIGHTS, &m, p) && m.header.parameter2 == 1 &&
           m.header.parameter1 == 2, "rights change: ACCESS_RIGHTS read only");
    fake.channel->rights = 0;
    fake.channel->events->rightsChanged(fake.channel->serverChannel, 0);
    testOk(expectCommand(c, CA_PROTO_ACCESS_RIGHTS, &m, p) && m.header.parameter2 == 0,
           "rights change: ACCESS_RIGHTS none");
    testOk(expectCommand(c, CA_PROTO_EVENT_ADD, &m, p) && m.header.parameter1 == ECA_NORDACCESS,
           "the subscription gets one ECA_NORDACCESS update");

    fake.channel->events->disconnected(fake.channel->serverChannel);
    testOk(expectCommand(c, CA_PROTO_SERVER_DISCONN, &m, p) && m.header.parameter1 == 2,
           "the source goes away: SERVER_DISCONN for client channel 2");
    testOk(fake.channel == NULL && fake.subscription == NULL,
           "the channel was detached and its subscription cancelled");

    sid = createChannel(c, "fake:big", 3, &rights, &count);
    testOk(sid != 0 && count == BIG_COUNT, "fake:big: count %u", count);
    sendHeader(c, CA_PROTO_READ_NOTIFY, DBR_DOUBLE, BIG_COUNT, sid, 78, NULL, 0);
    testOk(expectCommand(c, CA_PROTO_ERROR, &m, p) && m.header.parameter2 == ECA_TOLARGE,
           "a reply over EPICS_CA_MAX_ARRAY_BYTES: ERROR ECA_TOLARGE");
    sendHeader(c, CA_PROTO_READ_NOTIFY, DBR_DOUBLE, 100, sid, 79, NULL, 0);
    testOk(expectCommand(c, CA_PROTO_READ_NOTIFY, &m, p) && m.header.count == 100,
           "a smaller read of the same channel works");

    epicsSocketDestroy(c->sock);
    free(c);
}

/* Deferred attaches: the CREATE_CHAN reply (or CREATE_CH_FAIL) comes when
 * the provider says the attach finished, not before. */
static void testDeferredAttach(unsigned short port)
{
    client *c = calloc(1, sizeof *c);
    gwCaMessage m;
    unsigned char p[64];
    unsigned rights = 0;
    epicsUInt32 count = 0, sid;
    int detached = detachedSoFar();

    clientConnect(c, port);
    expectCommand(c, CA_PROTO_VERSION, &m, p);
    sendHeader(c, CA_PROTO_VERSION, 0, GW_CA_MINOR_VERSION, 0, 0, NULL, 0);

    sendHeader(c, CA_PROTO_CREATE_CHAN, 0, 0, 10, GW_CA_MINOR_VERSION, "slow:ok", 8);
    sendHeader(c, CA_PROTO_ECHO, 0, 0, 0, 0, NULL, 0);
    testOk(expectCommand(c, CA_PROTO_ECHO, &m, p),
           "deferred attach: no reply to CREATE_CHAN yet (the ECHO after it comes first)");
    testOk(fake.slow != NULL, "the provider holds the deferred channel");
    if (!fake.slow)
        goto out;
    fake.slow->events->connected(fake.slow->serverChannel, 1);
    testOk(expectCommand(c, CA_PROTO_ACCESS_RIGHTS, &m, p) && m.header.parameter1 == 10
           && m.header.parameter2 == 3, "attach finished: ACCESS_RIGHTS for client channel 10");
    testOk(expectCommand(c, CA_PROTO_CREATE_CHAN, &m, p) && m.header.parameter1 == 10
           && m.header.parameter2 != 0, "then the CREATE_CHAN reply");
    sid = m.header.parameter2;
    fake.value = 7.5;
    sendHeader(c, CA_PROTO_READ_NOTIFY, DBR_DOUBLE, 1, sid, 80, NULL, 0);
    testOk(expectCommand(c, CA_PROTO_READ_NOTIFY, &m, p) && payloadDouble(p) == 7.5,
           "the channel reads");

    detached = detachedSoFar();
    sendHeader(c, CA_PROTO_CREATE_CHAN, 0, 0, 11, GW_CA_MINOR_VERSION, "slow:fail", 10);
    sendHeader(c, CA_PROTO_ECHO, 0, 0, 0, 0, NULL, 0);
    expectCommand(c, CA_PROTO_ECHO, &m, p);
    fake.slow->events->connected(fake.slow->serverChannel, 0);
    testOk(expectCommand(c, CA_PROTO_CREATE_CH_FAIL, &m, p) && m.header.parameter1 == 11,
           "attach failed: CREATE_CH_FAIL for client channel 11");
    testOk(detachedSoFar() == detached + 1, "and the failed channel was detached");

    sid = createChannel(c, "slow:early", 12, &rights, &count);
    testOk(sid != 0 && rights == 3, "an attach that finished before attach returned is answered");

    detached = detachedSoFar();
    sendHeader(c, CA_PROTO_CREATE_CHAN, 0, 0, 13, GW_CA_MINOR_VERSION, "slow:never", 11);
    sendHeader(c, CA_PROTO_ECHO, 0, 0, 0, 0, NULL, 0);
    expectCommand(c, CA_PROTO_ECHO, &m, p);
out:
    epicsSocketDestroy(c->sock);
    free(c);
    /* the circuit closes: every channel goes, the one still waiting too */
    epicsThreadSleep(0.5);
    testOk(detachedSoFar() >= detached + 3, "closing the circuit detaches the waiting channel too "
           "(%d channels detached)", detachedSoFar() - detached);
}

/* 200 puts with completion at once: the server hands the provider no more
 * than GW_CIRCUIT_MAX_REQUESTS (64) before some complete, reads on as they
 * do, and answers all of them in order. */
static void testRequestLimit(unsigned short port)
{
    client *c = calloc(1, sizeof *c);
    gwCaMessage m;
    unsigned char p[64];
    unsigned rights = 0;
    epicsUInt32 count = 0, sid, i;
    int most, completed = 0, inOrder = 1, echoes = 0, tries;

    clientConnect(c, port);
    expectCommand(c, CA_PROTO_VERSION, &m, p);
    sendHeader(c, CA_PROTO_VERSION, 0, GW_CA_MINOR_VERSION, 0, 0, NULL, 0);
    sid = createChannel(c, "hold:a", 20, &rights, &count);
    for (i = 0; i < 200; i++) {
        double v = i;
        unsigned char net[8];
        caNetConvert(DBR_DOUBLE, &v, net, 1, 1);
        sendHeader(c, CA_PROTO_WRITE_NOTIFY, DBR_DOUBLE, 1, sid, 1000 + i, net, 8);
    }
    sendHeader(c, CA_PROTO_ECHO, 0, 0, 0, 0, NULL, 0);
    epicsThreadSleep(0.5);
    epicsMutexMustLock(fake.lock);
    most = fake.nHeld;
    epicsMutexUnlock(fake.lock);
    testOk(most > 0 && most <= 64, "200 puts sent, %d reached the provider before one completed "
           "(at most 64)", most);
    for (tries = 0; completed < 200 && tries < 1000; tries++) {
        int n, k;
        fakeHeldPut take[256];
        epicsMutexMustLock(fake.lock);
        n = fake.nHeld;
        memcpy(take, fake.held, (size_t)n * sizeof take[0]);
        fake.nHeld = 0;
        epicsMutexUnlock(fake.lock);
        for (k = 0; k < n; k++)
            take[k].done(take[k].user, ECA_NORMAL);
        completed += n;
        if (!n)
            epicsThreadSleep(0.01);
    }
    testOk(completed == 200, "completing them reads on: all 200 puts reached the provider (%d)",
           completed);
    /* the ECHO is answered once it is read, among the later completions */
    for (i = 0; i < 200 && inOrder && nextMessage(c, &m, p, sizeof p) == 0;) {
        if (m.header.command == CA_PROTO_ECHO && !echoes++)
            continue;
        inOrder = m.header.command == CA_PROTO_WRITE_NOTIFY && m.header.parameter2 == 1000 + i
                  && m.header.parameter1 == ECA_NORMAL;
        i += inOrder;
    }
    testOk(i == 200, "200 completions, in order (%u)", i);
    testOk(echoes == 1 || (echoes == 0 && expectCommand(c, CA_PROTO_ECHO, &m, p)),
           "and the reply to the ECHO sent after the puts");
    epicsSocketDestroy(c->sock);
    free(c);
}

static void testBadPriority(unsigned short port)
{
    client *c = calloc(1, sizeof *c);
    gwCaMessage m;
    unsigned char p[64];

    clientConnect(c, port);
    expectCommand(c, CA_PROTO_VERSION, &m, p);
    sendHeader(c, CA_PROTO_VERSION, 100, GW_CA_MINOR_VERSION, 0, 0, NULL, 0);
    testOk(nextMessage(c, &m, p, sizeof p) != 0, "priority 100: the circuit is closed");
    epicsSocketDestroy(c->sock);
    free(c);
}

/* A search over TCP (a client with EPICS_CA_NAME_SERVERS): a name served
 * here is answered with this server's port, one a provider says is served
 * elsewhere with that server's address and port, an unknown one with
 * NOT_FOUND when the client asks for it. */
static void testSearchOverTcp(unsigned short port)
{
    client *c = calloc(1, sizeof *c);
    gwCaMessage m;
    unsigned char p[64];

    clientConnect(c, port);
    testOk(expectCommand(c, CA_PROTO_VERSION, &m, p), "search client: VERSION first");
    sendHeader(c, CA_PROTO_VERSION, 0, GW_CA_MINOR_VERSION, 0, 0, NULL, 0);
    sendHeader(c, CA_PROTO_SEARCH, DOREPLY, GW_CA_MINOR_VERSION, 31, 31, "fake:a\0\0", 8);
    testOk(expectCommand(c, CA_PROTO_SEARCH, &m, p) && m.header.parameter2 == 31
           && m.header.dataType == port && m.header.parameter1 == 0xffffffffu,
           "served here: this server's port, the sender's address");
    sendHeader(c, CA_PROTO_SEARCH, DOREPLY, GW_CA_MINOR_VERSION, 32, 32, "relay:b\0", 8);
    testOk(expectCommand(c, CA_PROTO_SEARCH, &m, p) && m.header.parameter2 == 32
           && m.header.dataType == 6000 && m.header.parameter1 == 0x7f000009u,
           "served elsewhere: that server's address and port (127.0.0.9:6000)");
    sendHeader(c, CA_PROTO_SEARCH, DOREPLY, GW_CA_MINOR_VERSION, 33, 33, "nosuch\0\0", 8);
    testOk(expectCommand(c, CA_PROTO_NOT_FOUND, &m, p) && m.header.parameter2 == 33,
           "unknown, reply wanted: NOT_FOUND");
    epicsSocketDestroy(c->sock);
    free(c);
}

/* iocPause: a new client is not taken while paused; resumed, it is. */
static void testPause(gwServer *server)
{
    client *c = calloc(1, sizeof *c);
    gwCaMessage m;
    unsigned char p[64];
    gwServerStatistics before, paused;

    gwServerGetStatistics(server, &before);
    gwServerPause(server, 1);
    testOk1(gwServerIsPaused(server));
    clientConnect(c, gwServerTcpPort(server));
    /* a bound wait for what must not come: no false failure possible */
    testOk(!waitReadable(c, 0.5), "paused: the new circuit is not served");
    gwServerGetStatistics(server, &paused);
    testOk(paused.circuitsAccepted == before.circuitsAccepted,
           "paused: no circuit accepted (%lu before, %lu now)", before.circuitsAccepted,
           paused.circuitsAccepted);
    gwServerPause(server, 0);
    testOk(expectCommand(c, CA_PROTO_VERSION, &m, p), "resumed: the waiting client is served");
    epicsSocketDestroy(c->sock);
    free(c);
}

MAIN(gwServerTest)
{
    gwServer *server;

    (void)argc;
    (void)argv;
    testPlan(53);
    if (!gwTestInNetns()) {
        testSkip(53, "opens sockets: run inside scripts/netns run");
        return testDone();
    }
    osiSockAttach();
    fake.lock = epicsMutexMustCreate();
    server = startServer();
    testOk(server != NULL, "server starts on port %u", server ? gwServerTcpPort(server) : 0);
    if (!server)
        return testDone();
    testOk(fake.binds == 1 && fake.bound, "the provider was bound once, with the whole table");
    testConversation(gwServerTcpPort(server));
    testDeferredAttach(gwServerTcpPort(server));
    testRequestLimit(gwServerTcpPort(server));
    testBadPriority(gwServerTcpPort(server));
    testSearchOverTcp(gwServerTcpPort(server));
    testPause(server);
    {
        int detached;
        epicsMutexMustLock(fake.lock);
        detached = detachedSoFar();
        epicsMutexUnlock(fake.lock);
        gwServerStop(server);
        testOk(fake.unbinds == 1 && fake.detachedAtUnbind >= detached,
               "stop: unbound once, after the channels were detached");
    }
    epicsMutexDestroy(fake.lock);
    return testDone();
}
