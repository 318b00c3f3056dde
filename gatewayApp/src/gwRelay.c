/* gwRelay.c - the search relay (gwRelay.h): unicast searches to the host's
 * address go to every IOC of the host; their replies go back to the client
 * with each IOC's own TCP port. No data passes through the relay.
 *
 * Sockets, all owned by the one relay thread ("gwRelay"):
 * - a listener per listen address, bound to that unicast address and port
 *   with SO_REUSEADDR (the IOCs bind the wildcard address; the kernel gives
 *   a unicast datagram to the most specific socket, this one). Broadcasts
 *   to the host's subnet still reach the IOCs directly: a socket bound to
 *   a unicast address receives none.
 * - one forwarding socket (an ephemeral port, on 127.0.0.1 when every
 *   destination is on the host) that sends the searches to the forward
 *   destinations and receives the IOCs' replies. Multicast goes out on
 *   127.0.0.1 with TTL 1 and loopback on.
 *
 * A client datagram: VERSION gives the client's sequence number; each
 * SEARCH costs a token of the client's bucket (GW_RELAY_BUCKETS buckets by
 * address and port, a newcomer takes a full one) and of the global bucket,
 * gets a relay search id and a slot of the outstanding table, and is
 * re-encoded, DONT_REPLY, into a forwarded datagram of at most 1024 bytes
 * that starts with a VERSION carrying GW_RELAY_MARKER. Datagrams carrying
 * the marker (another relay's, or ours come back), datagrams from the
 * forwarding socket itself and malformed ones are dropped and counted.
 *
 * The outstanding table is a ring of GW_RELAY_OUTSTANDING slots indexed by
 * the low bits of the relay's search id (ids count up, so a new search
 * takes the slot of the oldest); a slot answers replies until it expires
 * (GW_RELAY_EXPIRE_SECONDS) and is not freed by a reply: every IOC that has
 * the name answers, and each answer is passed on. A reply whose id has no
 * live slot is dropped. So the relay's memory is fixed at start, whatever
 * the traffic.
 *
 * An IOC's reply datagram: each SEARCH reply goes to its client as
 * VERSION (the client's sequence number, when its minor version is 11 or
 * more) + SEARCH reply (the IOC's TCP port and minor version, the client's
 * search id, and the address "the sender's" (0xffffffff) when the IOC gave
 * that or a loopback address: the client then connects to the host
 * address it searched, where the IOC's TCP socket listens on the wildcard
 * address). Replies of one datagram for the same client share a datagram.
 *
 * Threads: gwRelayStart/Stop/Report from iocsh (one at a time, guarded by
 * a mutex); the relay thread holds no lock; counters are atomics.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <caProto.h>
#include <envDefs.h>
#include <errlog.h>
#include <epicsAtomic.h>
#include <epicsExit.h>
#include <epicsMutex.h>
#include <epicsStdio.h>
#include <epicsThread.h>
#include <epicsTime.h>
#include <osiSock.h>

#include "gwCodec.h"
#include "gwLog.h"
#include "gwMulticast.h"
#include "gwOsd.h"
#include "gwRelay.h"
#include "gwServerConfig.h"
#include "gwWakePipe.h"

#define GW_RELAY_LISTEN_MAX 16u
#define GW_RELAY_FORWARD_MAX 16u
#define GW_RELAY_RECEIVE_MAX 65536u
/* What one forwarded or reply datagram holds: RSRV's and libca's size. */
#define GW_RELAY_DATAGRAM_MAX 1024u
#define GW_RELAY_BUCKETS 1024u

typedef struct relayListener {
    SOCKET sock;
    struct sockaddr_in address;
    char where[32];
} relayListener;

/* A forwarded search waiting for its replies. */
typedef struct relaySearch {
    epicsUInt32 id;                 /* the relay's search id; 0: free */
    epicsUInt32 clientId;           /* the client's search id */
    epicsUInt32 sequence;           /* the client's datagram sequence number */
    epicsUInt16 clientMinor;
    unsigned char listener;         /* the listener it came in on */
    struct sockaddr_in client;
    epicsUInt64 expires;            /* epicsMonotonicGet() */
} relaySearch;

typedef struct relayBucket {
    epicsUInt32 address;            /* network order; 0 with port 0: unused */
    epicsUInt16 port;
    double tokens;
    epicsUInt64 last;
} relayBucket;

typedef struct gwRelay {
    unsigned nListeners;
    relayListener listeners[GW_RELAY_LISTEN_MAX];
    unsigned nForward;
    struct sockaddr_in forward[GW_RELAY_FORWARD_MAX];
    SOCKET forwardSock;
    struct sockaddr_in forwardAddress;  /* where it is bound */
    gwWakePipe wake;
    epicsThreadId thread;
    epicsEventId done;
    double rate;                    /* names per second per client */

    /* relay thread only */
    epicsUInt32 nextId;
    epicsUInt32 sequence;
    relaySearch *outstanding;       /* GW_RELAY_OUTSTANDING */
    relayBucket *buckets;           /* GW_RELAY_BUCKETS */
    relayBucket global;
    unsigned char *receive;         /* GW_RELAY_RECEIVE_MAX */

    /* counters (atomic) */
    size_t datagrams, names, forwarded, limited, looped, malformed;
    size_t replies, repliesSent, unknownReplies, evicted, sendErrors;
    size_t live;                    /* outstanding slots in use, last seen */
} gwRelay;

static epicsMutexId relayLock;     /* start/stop/report */
static gwRelay *theRelay;
static int exitRegistered;

/* ---- rate limit ---------------------------------------------------------- */

static int takeToken(relayBucket *bucket, double rate, epicsUInt64 now)
{
    double burst = 2.0 * rate;

    if (bucket->last) {
        bucket->tokens += (double)(now - bucket->last) * 1e-9 * rate;
        if (bucket->tokens > burst)
            bucket->tokens = burst;
    } else {
        bucket->tokens = burst;
    }
    bucket->last = now;
    if (bucket->tokens < 1.0)
        return 0;
    bucket->tokens -= 1.0;
    return 1;
}

static relayBucket *bucketOf(gwRelay *relay, const struct sockaddr_in *client)
{
    epicsUInt32 h = ntohl(client->sin_addr.s_addr) * 2654435761u ^ ntohs(client->sin_port);
    relayBucket *bucket = &relay->buckets[(h ^ (h >> 16)) % GW_RELAY_BUCKETS];

    if (bucket->address != client->sin_addr.s_addr || bucket->port != client->sin_port) {
        bucket->address = client->sin_addr.s_addr;
        bucket->port = client->sin_port;
        bucket->last = 0;   /* a newcomer starts with a full bucket */
    }
    return bucket;
}

/* ---- forwarding searches -------------------------------------------------- */

typedef struct relayForward {
    gwRelay *relay;
    union {
        double align;
        unsigned char bytes[GW_RELAY_DATAGRAM_MAX];
    } out;
    size_t used;
} relayForward;

static void forwardReset(relayForward *f)
{
    /* VERSION with the relay's sequence number and, in parameter 2, its marker */
    gwCaHeader version = { CA_PROTO_VERSION, 0, GW_CA_SEQUENCE_VALID, GW_CA_MINOR_VERSION,
                           ++f->relay->sequence, GW_RELAY_MARKER };

    f->used = gwCodecWriteHeader(f->out.bytes, sizeof f->out.bytes, &version,
                                 GW_CA_MINOR_VERSION);
}

static void forwardSend(relayForward *f)
{
    gwRelay *relay = f->relay;
    unsigned i;

    if (f->used <= GW_CA_HEADER_SIZE)
        return;
    for (i = 0; i < relay->nForward; i++) {
        if (sendto(relay->forwardSock, (const char *)f->out.bytes, f->used, 0,
                   (const struct sockaddr *)&relay->forward[i], sizeof relay->forward[i]) < 0) {
            char text[64];

            epicsSocketConvertErrnoToString(text, sizeof text);
            if (epicsAtomicIncrSizeT(&relay->sendErrors) == 1)
                gwLog(GW_LOG_RELAY, GW_LOG_WARNING, "cannot forward searches: %s", text);
        }
    }
    forwardReset(f);
}

static int isMarked(const gwCaMessage *m)
{
    return m->header.command == CA_PROTO_VERSION && m->header.parameter2 == GW_RELAY_MARKER;
}

/* One search of a client: a slot, a token, a place in the datagram. */
static void forwardSearch(relayForward *f, const gwCaSearch *search, unsigned listener,
                          const struct sockaddr_in *client, epicsUInt32 sequence,
                          relayBucket *bucket, epicsUInt64 now)
{
    gwRelay *relay = f->relay;
    unsigned char message[GW_CA_HEADER_SIZE + GW_CA_NAME_MAX + 8u];
    relaySearch *slot;
    size_t n;
    epicsUInt32 id;

    epicsAtomicIncrSizeT(&relay->names);
    if (!takeToken(bucket, relay->rate, now) || !takeToken(&relay->global, 4.0 * relay->rate, now)) {
        epicsAtomicIncrSizeT(&relay->limited);
        return;
    }
    id = ++relay->nextId;
    if (id == 0)
        id = ++relay->nextId;
    n = gwCodecBuildSearch(message, sizeof message, search->name.text, DONTREPLY,
                           (epicsUInt16)search->clientMinor, id);
    if (n == 0) {
        epicsAtomicIncrSizeT(&relay->malformed);
        return;
    }
    slot = &relay->outstanding[id % GW_RELAY_OUTSTANDING];
    if (slot->id && slot->expires > now)
        epicsAtomicIncrSizeT(&relay->evicted);
    slot->id = id;
    slot->clientId = search->searchId;
    slot->sequence = sequence;
    slot->clientMinor = (epicsUInt16)search->clientMinor;
    slot->listener = (unsigned char)listener;
    slot->client = *client;
    slot->expires = now + (epicsUInt64)(GW_RELAY_EXPIRE_SECONDS * 1e9);
    if (f->used + n > sizeof f->out.bytes)
        forwardSend(f);
    memcpy(f->out.bytes + f->used, message, n);
    f->used += n;
    epicsAtomicIncrSizeT(&relay->forwarded);
}

static void clientDatagram(gwRelay *relay, unsigned listener, const unsigned char *buf,
                           size_t len, const struct sockaddr_in *client)
{
    relayForward f;
    relayBucket *bucket = bucketOf(relay, client);
    epicsUInt64 now = epicsMonotonicGet();
    epicsUInt32 sequence = 0;
    size_t offset = 0;

    f.relay = relay;
    forwardReset(&f);
    while (offset < len) {
        gwCaMessage m;
        size_t used;
        gwCaSearch search;
        gwCaVersion version;

        if (gwCodecParseMessage(buf + offset, len - offset, GW_RELAY_RECEIVE_MAX, &m, &used)
            != GW_CODEC_OK) {
            epicsAtomicIncrSizeT(&relay->malformed);
            break;
        }
        if (m.header.command == CA_PROTO_VERSION) {
            if (gwCodecDecodeVersion(&m, &version) != GW_CODEC_OK) {
                epicsAtomicIncrSizeT(&relay->malformed);
                break;
            }
            if (isMarked(&m)) {
                epicsAtomicIncrSizeT(&relay->looped);
                return;     /* nothing of a relayed datagram goes out again */
            }
            sequence = version.minorVersion >= GW_CA_MINOR_SEQUENCE ? version.sequence : 0;
        } else if (m.header.command == CA_PROTO_SEARCH) {
            if (gwCodecDecodeSearch(&m, &search) != GW_CODEC_OK
                || search.clientMinor < GW_CA_MINOR_SUPPORTED) {
                epicsAtomicIncrSizeT(&relay->malformed);
                break;
            }
            forwardSearch(&f, &search, listener, client, sequence, bucket, now);
        } else {
            epicsAtomicIncrSizeT(&relay->malformed);
            break;
        }
        offset += used;
    }
    forwardSend(&f);
}

/* ---- passing replies back ------------------------------------------------ */

typedef struct relayReply {
    gwRelay *relay;
    const relaySearch *to;          /* the client of what is gathered; NULL: none */
    union {
        double align;
        unsigned char bytes[GW_RELAY_DATAGRAM_MAX];
    } out;
    size_t used;
} relayReply;

static int sameClient(const relaySearch *a, const relaySearch *b)
{
    return a->listener == b->listener && a->client.sin_addr.s_addr == b->client.sin_addr.s_addr
        && a->client.sin_port == b->client.sin_port && a->sequence == b->sequence
        && a->clientMinor == b->clientMinor;
}

static void replySend(relayReply *r)
{
    gwRelay *relay = r->relay;
    const relaySearch *to = r->to;
    const unsigned char *start = r->out.bytes;
    size_t size = r->used;

    if (!to || r->used <= GW_CA_HEADER_SIZE) {
        r->to = NULL;
        return;
    }
    if (to->clientMinor >= GW_CA_MINOR_SEQUENCE) {
        gwCodecBuildVersion(r->out.bytes, GW_CA_HEADER_SIZE, GW_CA_SEQUENCE_VALID,
                            GW_CA_MINOR_VERSION, to->sequence);
    } else {
        start += GW_CA_HEADER_SIZE;
        size -= GW_CA_HEADER_SIZE;
    }
    if (sendto(relay->listeners[to->listener].sock, (const char *)start, size, 0,
               (const struct sockaddr *)&to->client, sizeof to->client) < 0) {
        char text[64];

        epicsSocketConvertErrnoToString(text, sizeof text);
        if (epicsAtomicIncrSizeT(&relay->sendErrors) == 1)
            gwLog(GW_LOG_RELAY, GW_LOG_WARNING, "cannot send a search reply: %s", text);
    } else {
        epicsAtomicIncrSizeT(&relay->repliesSent);
    }
    r->to = NULL;
    r->used = GW_CA_HEADER_SIZE;
}

static void passReply(relayReply *r, const gwCaSearchReply *reply, epicsUInt64 now)
{
    gwRelay *relay = r->relay;
    relaySearch *slot = &relay->outstanding[reply->searchId % GW_RELAY_OUTSTANDING];
    epicsUInt32 address = reply->serverAddress;
    unsigned char message[GW_CA_HEADER_SIZE + 8u];
    size_t n;

    if (reply->searchId == 0 || slot->id != reply->searchId || slot->expires <= now) {
        epicsAtomicIncrSizeT(&relay->unknownReplies);
        return;
    }
    if (address == GW_CA_ADDRESS_OF_SENDER || (address >> 24) == 127u || address == 0)
        address = GW_CA_ADDRESS_OF_SENDER;
    n = gwCodecBuildSearchReply(message, sizeof message, reply->tcpPort, address,
                                slot->clientId, reply->serverMinor);
    if (r->to && (!sameClient(r->to, slot) || r->used + n > sizeof r->out.bytes))
        replySend(r);
    r->to = slot;
    memcpy(r->out.bytes + r->used, message, n);
    r->used += n;
    epicsAtomicIncrSizeT(&relay->replies);
}

static void replyDatagram(gwRelay *relay, const unsigned char *buf, size_t len)
{
    relayReply r;
    epicsUInt64 now = epicsMonotonicGet();
    size_t offset = 0;

    r.relay = relay;
    r.to = NULL;
    r.used = GW_CA_HEADER_SIZE;
    while (offset < len) {
        gwCaMessage m;
        gwCaSearchReply reply;
        size_t used;

        if (gwCodecParseMessage(buf + offset, len - offset, GW_RELAY_RECEIVE_MAX, &m, &used)
            != GW_CODEC_OK) {
            epicsAtomicIncrSizeT(&relay->malformed);
            break;
        }
        if (m.header.command == CA_PROTO_SEARCH) {
            if (gwCodecDecodeSearchReply(&m, &reply) == GW_CODEC_OK)
                passReply(&r, &reply, now);
        } else if (m.header.command == CA_PROTO_VERSION) {
            if (isMarked(&m)) {
                /* our own forwarded searches, come back: a destination
                 * reaches the forwarding socket */
                epicsAtomicIncrSizeT(&relay->looped);
                return;
            }
        } else if (m.header.command != CA_PROTO_NOT_FOUND) {
            epicsAtomicIncrSizeT(&relay->malformed);
            break;
        }
        offset += used;
    }
    replySend(&r);
}

/* ---- the thread ------------------------------------------------------------ */

/* 1 when peer is the forwarding socket itself. */
static int isSelf(const gwRelay *relay, const struct sockaddr_in *peer)
{
    return peer->sin_port == relay->forwardAddress.sin_port
        && (peer->sin_addr.s_addr == relay->forwardAddress.sin_addr.s_addr
            || relay->forwardAddress.sin_addr.s_addr == htonl(INADDR_ANY));
}

static void receiveAll(gwRelay *relay, SOCKET sock, int listener)
{
    for (;;) {
        struct sockaddr_in peer;
        osiSocklen_t peerSize = sizeof peer;
        int n = recvfrom(sock, (char *)relay->receive, GW_RELAY_RECEIVE_MAX, 0,
                         (struct sockaddr *)&peer, &peerSize);

        if (n < 0) {
            int error = SOCKERRNO;

            if (error != SOCK_EWOULDBLOCK && error != SOCK_EINTR && error != SOCK_ECONNREFUSED) {
                char text[64];

                epicsSocketConvertErrnoToString(text, sizeof text);
                gwLog(GW_LOG_RELAY, GW_LOG_ERROR, "UDP receive failed: %s", text);
            }
            return;
        }
        if (peer.sin_family != AF_INET)
            continue;
        epicsAtomicIncrSizeT(&relay->datagrams);
        if (listener < 0)
            replyDatagram(relay, relay->receive, (size_t)n);
        else if (isSelf(relay, &peer))
            epicsAtomicIncrSizeT(&relay->looped);
        else
            clientDatagram(relay, (unsigned)listener, relay->receive, (size_t)n, &peer);
    }
}

static void countLive(gwRelay *relay)
{
    epicsUInt64 now = epicsMonotonicGet();
    size_t live = 0;
    unsigned i;

    for (i = 0; i < GW_RELAY_OUTSTANDING; i++)
        live += relay->outstanding[i].id && relay->outstanding[i].expires > now;
    epicsAtomicSetSizeT(&relay->live, live);
}

static void relayRun(void *arg)
{
    gwRelay *relay = arg;
    gwOsdPollFd fds[GW_RELAY_LISTEN_MAX + 2];
    unsigned i, n = 0;
    epicsUInt64 lastCount = 0;

    for (i = 0; i < relay->nListeners; i++) {
        fds[n].fd = relay->listeners[i].sock;
        fds[n++].events = GW_OSD_IN;
    }
    fds[n].fd = relay->forwardSock;
    fds[n++].events = GW_OSD_IN;
    fds[n].fd = relay->wake.read;
    fds[n++].events = GW_OSD_IN;
    for (;;) {
        epicsUInt64 now;

        for (i = 0; i < n; i++)
            fds[i].revents = 0;
        if (gwOsdPoll(fds, n, 1000) < 0) {
            if (errno == EINTR)
                continue;
            gwLog(GW_LOG_RELAY, GW_LOG_ERROR, "poll failed: %s", strerror(errno));
            break;
        }
        if (fds[n - 1].revents)
            break;
        /* replies first: they are what clients wait for */
        if (fds[n - 2].revents)
            receiveAll(relay, relay->forwardSock, -1);
        for (i = 0; i < relay->nListeners; i++) {
            if (fds[i].revents)
                receiveAll(relay, relay->listeners[i].sock, (int)i);
        }
        now = epicsMonotonicGet();
        if (now - lastCount > 1000000000u) {
            countLive(relay);
            lastCount = now;
        }
    }
    epicsEventSignal(relay->done);
}

/* ---- start and stop ---------------------------------------------------- */

static SOCKET openUdp(const struct sockaddr_in *address, int shared, char *error,
                      size_t errorSize)
{
    SOCKET sock = epicsSocketCreate(AF_INET, SOCK_DGRAM, IPPROTO_UDP);
    osiSockIoctl_t yes = 1;
    char where[32], text[64];

    ipAddrToDottedIP(address, where, sizeof where);
    if (sock == INVALID_SOCKET) {
        epicsSocketConvertErrnoToString(text, sizeof text);
        epicsSnprintf(error, errorSize, "cannot create a UDP socket for %s: %s", where, text);
        return INVALID_SOCKET;
    }
    if (shared)
        epicsSocketEnableAddressUseForDatagramFanout(sock);
    if (bind(sock, (const struct sockaddr *)address, sizeof *address) != 0
        || socket_ioctl(sock, FIONBIO, &yes) != 0) {
        epicsSocketConvertErrnoToString(text, sizeof text);
        epicsSnprintf(error, errorSize, "cannot bind UDP %s: %s", where, text);
        epicsSocketDestroy(sock);
        return INVALID_SOCKET;
    }
    return sock;
}

static void relayFree(gwRelay *relay)
{
    unsigned i;

    for (i = 0; i < relay->nListeners; i++)
        epicsSocketDestroy(relay->listeners[i].sock);
    if (relay->forwardSock != INVALID_SOCKET)
        epicsSocketDestroy(relay->forwardSock);
    gwWakePipeClose(&relay->wake);
    if (relay->done)
        epicsEventDestroy(relay->done);
    free(relay->outstanding);
    free(relay->buckets);
    free(relay->receive);
    free(relay);
}

/* The listeners. 0, or -1 with error set. */
static int openListeners(gwRelay *relay, const ELLLIST *list, char *error, size_t errorSize)
{
    const ELLNODE *cur;

    for (cur = ellFirst(list); cur; cur = ellNext(cur)) {
        const struct sockaddr_in *a = &((const osiSockAddrNode *)cur)->addr.ia;
        epicsUInt32 host = ntohl(a->sin_addr.s_addr);
        relayListener *l;
        char where[32];

        ipAddrToDottedIP(a, where, sizeof where);
        if (host == INADDR_ANY || host == INADDR_BROADCAST || gwIsMulticast(a->sin_addr.s_addr)
            || (host & 0xffu) == 0xffu) {
            epicsSnprintf(error, errorSize,
                          "gwRelay listens on specific unicast addresses of this host, not %s",
                          where);
            return -1;
        }
        if (relay->nListeners == GW_RELAY_LISTEN_MAX) {
            epicsSnprintf(error, errorSize, "gwRelay: at most %u listen addresses",
                          GW_RELAY_LISTEN_MAX);
            return -1;
        }
        l = &relay->listeners[relay->nListeners];
        l->address = *a;
        epicsSnprintf(l->where, sizeof l->where, "%s", where);
        l->sock = openUdp(a, 1, error, errorSize);
        if (l->sock == INVALID_SOCKET)
            return -1;
        relay->nListeners++;
    }
    if (!relay->nListeners) {
        epicsSnprintf(error, errorSize, "gwRelay: no listen address given");
        return -1;
    }
    return 0;
}

/* The forwarding socket and its destinations. 0, or -1 with error set. */
static int openForward(gwRelay *relay, const ELLLIST *list, char *error, size_t errorSize)
{
    const ELLNODE *cur;
    struct sockaddr_in here;
    osiSocklen_t size = sizeof here;
    int local = 1;
    int yes = 1;

    for (cur = ellFirst(list); cur; cur = ellNext(cur)) {
        const struct sockaddr_in *a = &((const osiSockAddrNode *)cur)->addr.ia;
        epicsUInt32 host = ntohl(a->sin_addr.s_addr);

        if (relay->nForward == GW_RELAY_FORWARD_MAX) {
            epicsSnprintf(error, errorSize, "gwRelay: at most %u forward addresses",
                          GW_RELAY_FORWARD_MAX);
            return -1;
        }
        if (!gwIsMulticast(a->sin_addr.s_addr) && host >> 24 != 127u)
            local = 0;
        relay->forward[relay->nForward++] = *a;
    }
    memset(&here, 0, sizeof here);
    here.sin_family = AF_INET;
    here.sin_addr.s_addr = htonl(local ? INADDR_LOOPBACK : INADDR_ANY);
    relay->forwardSock = openUdp(&here, 0, error, errorSize);
    if (relay->forwardSock == INVALID_SOCKET)
        return -1;
    if (setsockopt(relay->forwardSock, SOL_SOCKET, SO_BROADCAST, (char *)&yes, sizeof yes) != 0
        || (gwListHasMulticast(list) && gwMulticastOnLoopback(relay->forwardSock) != 0)) {
        char text[64];

        epicsSocketConvertErrnoToString(text, sizeof text);
        epicsSnprintf(error, errorSize, "gwRelay: cannot set up the forwarding socket: %s", text);
        return -1;
    }
    if (getsockname(relay->forwardSock, (struct sockaddr *)&here, &size) != 0) {
        epicsSnprintf(error, errorSize, "gwRelay: getsockname failed");
        return -1;
    }
    relay->forwardAddress = here;
    return 0;
}

static void atExit(void *arg)
{
    (void)arg;
    gwRelayStop();
}

static void stopLocked(void)
{
    gwRelay *relay = theRelay;

    if (!relay)
        return;
    theRelay = NULL;
    gwWakePipeSignal(&relay->wake);
    epicsEventMustWait(relay->done);
    relayFree(relay);
}

static void makeLock(void *arg)
{
    (void)arg;
    relayLock = epicsMutexMustCreate();
}

static void lockRelay(void)
{
    static epicsThreadOnceId once = EPICS_THREAD_ONCE_INIT;

    epicsThreadOnce(&once, makeLock, NULL);
    epicsMutexMustLock(relayLock);
}

void gwRelayStop(void)
{
    lockRelay();
    stopLocked();
    epicsMutexUnlock(relayLock);
}

int gwRelayIsRunning(void)
{
    int running;

    lockRelay();
    running = theRelay != NULL;
    epicsMutexUnlock(relayLock);
    return running;
}

int gwRelayStart(const char *listen, const char *forward, double rate)
{
    ELLLIST listenList = ELLLIST_INIT, forwardList = ELLLIST_INIT;
    unsigned short port = envGetInetPortConfigParam(&EPICS_CA_SERVER_PORT, CA_SERVER_PORT);
    char error[200] = "";
    gwRelay *relay = NULL;
    int status = -1;

    if (!(rate >= 0.0) || !isfinite(rate)) {
        epicsSnprintf(error, sizeof error, "gwRelay: the rate must be a number of names "
                      "per second, 0 for %g", GW_RELAY_DEFAULT_RATE);
        goto done;
    }
    if (!forward || !*forward)
        forward = "127.255.255.255";
    if (gwServerConfigParseAddresses(&listenList, listen ? listen : "", port, "gwRelay listen list", error,
                  sizeof error) != 0
        || gwServerConfigParseAddresses(&forwardList, forward, port, "gwRelay forward list", error,
                     sizeof error) != 0)
        goto done;
    if (!ellCount(&forwardList)) {
        epicsSnprintf(error, sizeof error, "gwRelay: no forward address given");
        goto done;
    }
    lockRelay();
    stopLocked();
    relay = calloc(1, sizeof *relay);
    if (!relay || !(relay->outstanding = calloc(GW_RELAY_OUTSTANDING, sizeof *relay->outstanding))
        || !(relay->buckets = calloc(GW_RELAY_BUCKETS, sizeof *relay->buckets))
        || !(relay->receive = malloc(GW_RELAY_RECEIVE_MAX))) {
        epicsSnprintf(error, sizeof error, "gwRelay: out of memory");
        goto unlock;
    }
    relay->forwardSock = INVALID_SOCKET;
    relay->wake = GW_WAKE_PIPE_CLOSED;
    relay->rate = rate > 0.0 ? rate : GW_RELAY_DEFAULT_RATE;
    if (openListeners(relay, &listenList, error, sizeof error) != 0
        || openForward(relay, &forwardList, error, sizeof error) != 0)
        goto unlock;
    if (gwWakePipeOpen(&relay->wake) != 0 || !(relay->done = epicsEventCreate(epicsEventEmpty))) {
        epicsSnprintf(error, sizeof error, "gwRelay: cannot make its wake-up pipe");
        goto unlock;
    }
    relay->thread = epicsThreadCreate("gwRelay", epicsThreadPriorityCAServerHigh,
                                      epicsThreadGetStackSize(epicsThreadStackMedium),
                                      relayRun, relay);
    if (!relay->thread) {
        epicsSnprintf(error, sizeof error, "gwRelay: cannot start its thread");
        goto unlock;
    }
    theRelay = relay;
    relay = NULL;
    status = 0;
    if (!exitRegistered) {
        exitRegistered = 1;
        epicsAtExit(atExit, NULL);
    }
unlock:
    epicsMutexUnlock(relayLock);
done:
    if (relay)
        relayFree(relay);
    ellFree(&listenList);
    ellFree(&forwardList);
    if (status != 0)
        errlogPrintf("%s\n", error);
    else
        gwRelayReport(stdout, 0);
    return status;
}

void gwRelayReport(FILE *out, unsigned level)
{
    gwRelay *relay;
    unsigned i;
    char where[32];

    lockRelay();
    relay = theRelay;
    if (!relay) {
        epicsMutexUnlock(relayLock);
        return;
    }
    fprintf(out, "relay: listening on");
    for (i = 0; i < relay->nListeners; i++)
        fprintf(out, " %s", relay->listeners[i].where);
    fprintf(out, ", forwarding to");
    for (i = 0; i < relay->nForward; i++) {
        ipAddrToDottedIP(&relay->forward[i], where, sizeof where);
        fprintf(out, " %s", where);
    }
    fprintf(out, "\n");
    if (level) {
        ipAddrToDottedIP(&relay->forwardAddress, where, sizeof where);
        fprintf(out, "  forwarding socket %s, %g names/s per client, %g in all\n", where,
                relay->rate, 4.0 * relay->rate);
        fprintf(out, "  datagrams %zu, names %zu, forwarded %zu, rate-limited %zu, "
                "looped %zu, malformed %zu\n",
                epicsAtomicGetSizeT(&relay->datagrams), epicsAtomicGetSizeT(&relay->names),
                epicsAtomicGetSizeT(&relay->forwarded), epicsAtomicGetSizeT(&relay->limited),
                epicsAtomicGetSizeT(&relay->looped), epicsAtomicGetSizeT(&relay->malformed));
        fprintf(out, "  replies passed %zu in %zu datagrams, unknown or late %zu, "
                "send errors %zu\n",
                epicsAtomicGetSizeT(&relay->replies), epicsAtomicGetSizeT(&relay->repliesSent),
                epicsAtomicGetSizeT(&relay->unknownReplies),
                epicsAtomicGetSizeT(&relay->sendErrors));
        fprintf(out, "  outstanding searches %zu of %u (%.0f s), evicted before expiry %zu\n",
                epicsAtomicGetSizeT(&relay->live), GW_RELAY_OUTSTANDING,
                GW_RELAY_EXPIRE_SECONDS, epicsAtomicGetSizeT(&relay->evicted));
    }
    epicsMutexUnlock(relayLock);
}
