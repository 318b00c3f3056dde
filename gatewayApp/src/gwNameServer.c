/* gwNameServer.c - UDP name resolution: receive SEARCH datagrams, ask the
 * providers, answer the names served here.
 *
 * Sockets, one receive thread each ("gwNames"), all bound to config->port
 * with SO_REUSEADDR (several servers on a host share the port):
 * - one per unicast interface of config->interfaces (INADDR_ANY when
 *   none);
 * - for a specific unicast interface, a second one bound to the
 *   interface's broadcast address, because a socket bound to a unicast
 *   address receives no broadcasts (RSRV does the same on non-Windows).
 *   Loopback has no discoverable broadcast address; for a 127.x.y.z
 *   interface 127.255.255.255 is used (Linux routes it as lo's broadcast),
 *   so the gateway on 127.0.0.1 hears loopback broadcast searches.
 * - per multicast group of that list and per unicast interface (once,
 *   joined with INADDR_ANY, when there is none), one bound to group:port
 *   and joined to the group on that interface, with IP_MULTICAST_ALL off
 *   (Linux): it receives the group's datagrams that arrive on that
 *   interface only. Linux delivers a multicast datagram only to sockets
 *   bound to the group or to INADDR_ANY, never to one bound to a unicast
 *   address, so joining the group on the unicast socket (as RSRV in Base
 *   7.0.3.1 does) hears nothing when an interface is listed. The wildcard
 *   socket has IP_MULTICAST_ALL off too, so that it does not hear the
 *   groups again (or the groups other programs of the host joined).
 * Answers always leave through the interface's unicast socket.
 *
 * One datagram at a time, as RSRV's cast_server/camessage: the datagram is
 * walked message by message; VERSION sets the client's minor version and
 * sequence number; each SEARCH the providers answer YES gets a SEARCH
 * reply (TCP port, address 0xffffffff = "the sender's", search id, minor
 * 13); NO and PENDING get nothing (RSRV never sends NOT_FOUND over UDP,
 * even when asked to reply). A PENDING search is remembered for
 * GW_NAME_WAIT_SECONDS (at most GW_NAME_WAIT_MAX of them, the oldest go
 * first; a client's repeat replaces its earlier search): when
 * the provider settles the name (gwNameServerSettled, e.g. an IOC answered
 * the upstream provider's search) it serves it, and each waiting client
 * gets its reply at once instead of at its next search, as the classic
 * gateway's asynchronous exist test does. A name settled while its search
 * was on its way to the waiting list is caught by a count of settlings:
 * the search asks again only when one began meanwhile. Replies are packed
 * into datagrams of at most 1024 bytes (RSRV's MAX_UDP_SEND), each
 * starting with a VERSION that carries the request's sequence number when
 * the client's minor version is at least 11 (older clients get the replies
 * alone), and sent when full and at the end of the request. A message that cannot be parsed or is
 * not VERSION/SEARCH ends the processing of its datagram (replies gathered
 * before it are still sent), and is counted as malformed.
 *
 * Platform: waits with gwOsdPoll (gwOsd.h) on the socket and a wake pipe
 * that stops the receive threads.
 *
 * Threads: gwNameServerStart/Stop from the server's start/stop (iocsh
 * thread); the receive threads call gwServerResolve holding no lock, the
 * searches of one datagram as one batch;
 * gwNameServerSettled runs on the provider's thread.
 * Locks: waitLock guards the waiting searches only; nothing is called
 * with it held. It is taken with gwLockTake (gwLock.h): this thread and
 * the provider's take it for each pending name of a connect storm. The configuration is read-only while running, counters
 * are atomics, each thread owns its buffers.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <caProto.h>
#include <dbDefs.h>
#include <ellLib.h>
#include <epicsAtomic.h>
#include <epicsMutex.h>
#include <epicsStdio.h>
#include <epicsThread.h>
#include <epicsTime.h>
#include <osiSock.h>

#include "gwCodec.h"
#include "gwLog.h"
#include "gwMulticast.h"
#include "gwNameTable.h"
#include "gwNameServer.h"
#include "gwOsd.h"
#include "gwServerPriv.h"
#include "gwWakePipe.h"
#include "gwLock.h"

/* The largest UDP payload, so no datagram is ever cut. */
#define GW_NAME_RECEIVE_MAX 65536u
/* Reply datagrams: RSRV's MAX_UDP_SEND. */
#define GW_NAME_REPLY_MAX 1024u
/* Searches waiting for a pending name: how many, how long, hash size. */
#define GW_NAME_WAIT_MAX 4096u
#define GW_NAME_WAIT_SECONDS 30.0
#define GW_NAME_WAIT_BUCKETS 256u

typedef struct gwNameListener {
    gwNameServer *names;
    SOCKET socket;      /* receives */
    SOCKET replySocket; /* sends the answers: the interface's unicast socket */
    char where[48];     /* the bound address (and group's interface), for messages */
    epicsThreadId thread;
    int lastSendError;  /* errno of the last failed send, 0 after a success;
                         * epicsAtomic: the listener and gwNameServerSettled's
                         * callers both send */
} gwNameListener;

struct gwNameServer {
    gwServer *server;
    const gwServerConfig *config;
    epicsUInt16 tcpPort;
    gwWakePipe wake;           /* signalled once by gwNameServerStop */
    unsigned nListeners;
    gwNameListener *listeners; /* 2 per interface and 1 per group and
                                  interface at most */
    size_t datagrams, ignored, malformed, searches, answered, replyDatagrams;
    size_t settles;            /* gwNameServerSettled calls begun (atomic) */
    int paused;                /* iocPause: searches dropped (atomic) */

    epicsMutexId waitLock;     /* the waiting searches: */
    ELLLIST waitBuckets[GW_NAME_WAIT_BUCKETS]; /* gwSearchWait by name hash */
    ELLLIST waitAge;           /* gwSearchWait.ageNode, oldest first */
};

/* A search whose name was pending, waiting for the provider to settle it. */
typedef struct gwSearchWait {
    ELLNODE node;              /* in its bucket */
    ELLNODE ageNode;           /* in waitAge */
    gwNameListener *listener;
    struct sockaddr_in peer;
    unsigned clientMinor;
    epicsUInt32 sequence;
    epicsUInt32 searchId;
    epicsTimeStamp since;
    char name[1];              /* allocated to its length */
} gwSearchWait;

/* The answers to one request datagram, as they are gathered. */
typedef struct gwSearchBatch {
    gwNameListener *listener;
    struct sockaddr_in peer;
    char peerText[32];
    unsigned clientMinor;  /* from the request's VERSION, 0 = unknown */
    epicsUInt32 sequence;
    /* searches read but not yet resolved: offered to the providers as one
     * batch (same client minor version), names inside the receive buffer */
    unsigned nQueries;
    unsigned queryMinor;
    gwExistsQuery queries[GW_SERVER_RESOLVE_MAX];
    epicsUInt32 searchIds[GW_SERVER_RESOLVE_MAX];
    size_t used;           /* bytes in reply, the VERSION placeholder included */
    union {
        double align;      /* the codec's builders want 8-byte alignment */
        unsigned char bytes[GW_NAME_REPLY_MAX];
    } reply;
} gwSearchBatch;

/* ---- replies ------------------------------------------------------------ */

static void batchReset(gwSearchBatch *batch)
{
    batch->used = GW_CA_HEADER_SIZE; /* room for the VERSION, filled at send */
}

static void batchSend(gwSearchBatch *batch)
{
    gwNameListener *listener = batch->listener;
    const unsigned char *start = batch->reply.bytes;
    size_t size = batch->used;
    int status;

    if (batch->used <= GW_CA_HEADER_SIZE)
        return;
    if (batch->clientMinor >= GW_CA_MINOR_SEQUENCE) {
        gwCodecBuildVersion(batch->reply.bytes, GW_CA_HEADER_SIZE, GW_CA_SEQUENCE_VALID,
                            GW_CA_MINOR_VERSION, batch->sequence);
    } else {
        start += GW_CA_HEADER_SIZE;
        size -= GW_CA_HEADER_SIZE;
    }
    status = sendto(listener->replySocket, (const char *)start, size, 0,
                    (const struct sockaddr *)&batch->peer, sizeof batch->peer);
    if (status < 0) {
        int error = SOCKERRNO;

        if (error != epicsAtomicGetIntT(&listener->lastSendError)) {
            char text[64];

            epicsSocketConvertErrnoToString(text, sizeof text);
            gwLog(GW_LOG_NAMES, GW_LOG_WARNING,
                  "search reply from %s to %s failed: %s",
                  listener->where, batch->peerText, text);
        }
        epicsAtomicSetIntT(&listener->lastSendError, error);
    } else {
        epicsAtomicSetIntT(&listener->lastSendError, 0);
        epicsAtomicIncrSizeT(&listener->names->replyDatagrams);
    }
    batchReset(batch);
}

/* A reply naming a server: this one (where NULL: the TCP port here, the
 * address the client sent to) or another (the relay's answer). */
static void batchAddReplyAt(gwSearchBatch *batch, epicsUInt32 searchId,
                            const struct sockaddr_in *where)
{
    gwNameServer *names = batch->listener->names;
    epicsUInt16 port = where ? ntohs(where->sin_port) : names->tcpPort;
    epicsUInt32 address = where ? ntohl(where->sin_addr.s_addr) : GW_CA_ADDRESS_OF_SENDER;
    size_t n = gwCodecBuildSearchReply(batch->reply.bytes + batch->used,
                                       sizeof batch->reply.bytes - batch->used, port,
                                       address, searchId, GW_CA_MINOR_VERSION);
    if (n == 0) {
        batchSend(batch);
        n = gwCodecBuildSearchReply(batch->reply.bytes + batch->used,
                                    sizeof batch->reply.bytes - batch->used, port,
                                    address, searchId, GW_CA_MINOR_VERSION);
    }
    batch->used += n;
    epicsAtomicIncrSizeT(&names->answered);
}

static void batchAddSearchReply(gwSearchBatch *batch, epicsUInt32 searchId)
{
    batchAddReplyAt(batch, searchId, NULL);
}

/* Who asks, as far as a UDP search tells: no user or host name. */
static void searchIdentity(gwClientIdentity *identity, const struct sockaddr_in *peer,
                           const char *peerText, unsigned clientMinor)
{
    memset(identity, 0, sizeof *identity);
    identity->user = "";
    identity->host = "";
    identity->peer = peerText;
    identity->address = *peer;
    identity->minorVersion = clientMinor;
}

/* ---- searches waiting for a pending name --------------------------------- */

static unsigned nameHash(const char *name)
{
    return gwNameHash(name) % GW_NAME_WAIT_BUCKETS;
}

static int sameSearch(const gwSearchWait *w, const gwSearchBatch *batch, const char *name,
                      epicsUInt32 searchId)
{
    return w->searchId == searchId && w->listener == batch->listener
        && w->peer.sin_addr.s_addr == batch->peer.sin_addr.s_addr
        && w->peer.sin_port == batch->peer.sin_port && strcmp(w->name, name) == 0;
}

static void waitUnlink(gwNameServer *names, gwSearchWait *w)
{
    ellDelete(&names->waitBuckets[nameHash(w->name)], &w->node);
    ellDelete(&names->waitAge, &w->ageNode);
}

/* The remembered search of this client, name and id, taken out of the
 * lists; NULL when there is none (waitLock held). */
static gwSearchWait *waitFind(gwNameServer *names, const gwSearchBatch *batch, const char *name,
                              epicsUInt32 searchId)
{
    gwSearchWait *w;

    for (w = (gwSearchWait *)ellFirst(&names->waitBuckets[nameHash(name)]); w;
         w = (gwSearchWait *)ellNext(&w->node)) {
        if (sameSearch(w, batch, name, searchId)) {
            waitUnlink(names, w);
            return w;
        }
    }
    return NULL;
}

/* Remember a pending search (a repeat refreshes it). 1 when remembered. */
static int waitAdd(gwSearchBatch *batch, const char *name, epicsUInt32 searchId)
{
    gwNameServer *names = batch->listener->names;
    ELLLIST *bucket = &names->waitBuckets[nameHash(name)];
    size_t length = strlen(name);
    epicsTimeStamp now;
    gwSearchWait *w;
    ELLNODE *oldest;

    epicsTimeGetCurrent(&now);
    gwLockTake(names->waitLock);
    while ((oldest = ellFirst(&names->waitAge)) != NULL
           && (ellCount(&names->waitAge) >= (int)GW_NAME_WAIT_MAX
               || epicsTimeDiffInSeconds(&now, &CONTAINER(oldest, gwSearchWait, ageNode)->since)
                      > GW_NAME_WAIT_SECONDS)) {
        w = CONTAINER(oldest, gwSearchWait, ageNode);
        waitUnlink(names, w);
        free(w);
    }
    w = waitFind(names, batch, name, searchId);   /* a repeat: refreshed */
    if (!w)
        w = malloc(sizeof *w + length);
    if (w) {
        w->listener = batch->listener;
        w->peer = batch->peer;
        w->clientMinor = batch->clientMinor;
        w->sequence = batch->sequence;
        w->searchId = searchId;
        w->since = now;
        memcpy(w->name, name, length + 1);
        ellAdd(bucket, &w->node);
        ellAdd(&names->waitAge, &w->ageNode);
    }
    epicsMutexUnlock(names->waitLock);
    return w != NULL;
}

/* Take one remembered search back. 1 when it was still there. */
static int waitTake(gwNameServer *names, const gwSearchBatch *batch, const char *name,
                    epicsUInt32 searchId)
{
    gwSearchWait *w;

    gwLockTake(names->waitLock);
    w = waitFind(names, batch, name, searchId);
    epicsMutexUnlock(names->waitLock);
    free(w);
    return w != NULL;
}

/* Does the batch answer the same request datagram as this search? */
static int sameRequest(const gwSearchBatch *batch, const gwSearchWait *w)
{
    return batch->listener == w->listener && batch->sequence == w->sequence
        && batch->clientMinor == w->clientMinor
        && batch->peer.sin_addr.s_addr == w->peer.sin_addr.s_addr
        && batch->peer.sin_port == w->peer.sin_port;
}

void gwNameServerSettled(gwNameServer *names, const char *const *settledNames, unsigned count)
{
    ELLLIST settled = ELLLIST_INIT;
    gwSearchBatch batch;
    gwSearchWait *w;
    unsigned i;

    if (!names || !count)
        return;
    epicsAtomicIncrSizeT(&names->settles);  /* before the waiting ones are looked at */
    gwLockTake(names->waitLock);
    for (i = 0; i < count; i++) {
        w = (gwSearchWait *)ellFirst(&names->waitBuckets[nameHash(settledNames[i])]);
        while (w) {
            gwSearchWait *next = (gwSearchWait *)ellNext(&w->node);
            if (strcmp(w->name, settledNames[i]) == 0) {
                waitUnlink(names, w);
                ellAdd(&settled, &w->node);
            }
            w = next;
        }
    }
    epicsMutexUnlock(names->waitLock);

    /* The provider serves the names now: no need to ask it again. Searches
     * of one request datagram come one after another (the names are
     * settled in the order they were asked for): their answers share
     * datagrams again. */
    batch.listener = NULL;
    while ((w = (gwSearchWait *)ellGet(&settled)) != NULL) {
        if (!batch.listener || !sameRequest(&batch, w)) {
            int samePeer = batch.listener && batch.peer.sin_addr.s_addr == w->peer.sin_addr.s_addr
                && batch.peer.sin_port == w->peer.sin_port;
            if (batch.listener)
                batchSend(&batch);
            batch.listener = w->listener;
            batch.peer = w->peer;
            if (!samePeer)
                ipAddrToDottedIP(&w->peer, batch.peerText, sizeof batch.peerText);
            batch.clientMinor = w->clientMinor;
            batch.sequence = w->sequence;
            batchReset(&batch);
        }
        batchAddSearchReply(&batch, w->searchId);
        free(w);
    }
    if (batch.listener)
        batchSend(&batch);
}

/* ---- requests ----------------------------------------------------------- */

/* A search whose name is pending waits for it; if it was settled
 * meanwhile (a settling that began before the search waited may have
 * missed it), it is answered now. */
static void searchPending(gwSearchBatch *batch, const gwClientIdentity *identity,
                          const char *name, epicsUInt32 searchId, size_t settles)
{
    gwNameServer *names = batch->listener->names;

    if (waitAdd(batch, name, searchId)
        && epicsAtomicGetSizeT(&names->settles) != settles
        && gwServerResolveOne(names->server, name, identity, NULL, NULL) == GW_EXISTS_YES
        && waitTake(names, batch, name, searchId))
        batchAddSearchReply(batch, searchId);
}

static const char *answerText(gwExistsAnswer answer)
{
    switch (answer) {
    case GW_EXISTS_YES:       return "served here";
    case GW_EXISTS_ELSEWHERE: return "served elsewhere";
    case GW_EXISTS_PENDING:   return "pending";
    case GW_EXISTS_NO:        return "not served";
    }
    return "?";
}

/* Offer the searches read so far to the providers, and answer them. */
static void resolveQueries(gwSearchBatch *batch)
{
    gwNameServer *names = batch->listener->names;
    gwClientIdentity identity;
    size_t settles = epicsAtomicGetSizeT(&names->settles);
    unsigned i;

    if (!batch->nQueries)
        return;
    searchIdentity(&identity, &batch->peer, batch->peerText, batch->queryMinor);
    gwServerResolve(names->server, &identity, batch->queries, batch->nQueries, NULL);
    for (i = 0; i < batch->nQueries; i++) {
        const gwExistsQuery *q = &batch->queries[i];
        gwLog(GW_LOG_NAMES, GW_LOG_DEBUG, "%s: search for %s: %s", batch->peerText, q->pvName,
              answerText(q->answer));
        switch (q->answer) {
        case GW_EXISTS_YES:
            batchAddSearchReply(batch, batch->searchIds[i]);
            break;
        case GW_EXISTS_ELSEWHERE:
            batchAddReplyAt(batch, batch->searchIds[i], &q->where);
            break;
        case GW_EXISTS_PENDING:
            searchPending(batch, &identity, q->pvName, batch->searchIds[i], settles);
            break;
        case GW_EXISTS_NO:
            break;
        }
    }
    batch->nQueries = 0;
}

/* Each returns NULL to go on with the datagram, or why it stops there. */
static const char *handleVersion(gwSearchBatch *batch, const gwCaMessage *m)
{
    gwCaVersion version;

    if (gwCodecDecodeVersion(m, &version) != GW_CODEC_OK)
        return "bad VERSION";
    if (version.minorVersion < GW_CA_MINOR_SUPPORTED)
        return "VERSION of a CA client too old";
    resolveQueries(batch);  /* the searches before it are answered as they came */
    batch->clientMinor = version.minorVersion;
    batch->sequence = version.minorVersion >= GW_CA_MINOR_SEQUENCE ? version.sequence : 0;
    return NULL;
}

static const char *handleSearch(gwSearchBatch *batch, const gwCaMessage *m)
{
    gwNameServer *names = batch->listener->names;
    gwCaSearch search;
    gwExistsQuery *q;

    if (gwCodecDecodeSearch(m, &search) != GW_CODEC_OK)
        return "bad SEARCH";
    if (search.clientMinor < GW_CA_MINOR_SUPPORTED)
        return "SEARCH of a CA client too old";
    epicsAtomicIncrSizeT(&names->searches);
    if (batch->nQueries == GW_SERVER_RESOLVE_MAX
        || (batch->nQueries && batch->queryMinor != search.clientMinor))
        resolveQueries(batch);
    batch->queryMinor = search.clientMinor;
    q = &batch->queries[batch->nQueries];
    memset(q, 0, sizeof *q);
    /* The name is NUL-terminated inside the receive buffer (codec rule). */
    q->pvName = search.name.text;
    batch->searchIds[batch->nQueries++] = search.searchId;
    return NULL;
}

static void handleDatagram(gwNameListener *listener, const unsigned char *buf, size_t len,
                           const struct sockaddr_in *peer)
{
    gwNameServer *names = listener->names;
    gwSearchBatch batch;
    size_t offset = 0;
    const char *why = len > 0 ? NULL : "empty datagram";
    char command[24] = "";

    batch.listener = listener;
    batch.peer = *peer;
    ipAddrToDottedIP(peer, batch.peerText, sizeof batch.peerText);
    batch.clientMinor = 0;
    batch.sequence = 0;
    batch.nQueries = 0;
    batch.queryMinor = 0;
    batchReset(&batch);

    while (!why && offset < len) {
        gwCaMessage m;
        size_t used;
        gwCodecStatus status = gwCodecParseMessage(buf + offset, len - offset, len, &m, &used);

        if (status != GW_CODEC_OK) {
            why = gwCodecStatusText(status);
            break;
        }
        snprintf(command, sizeof command, " (command %u)", m.header.command);
        switch (m.header.command) {
        case CA_PROTO_VERSION: why = handleVersion(&batch, &m); break;
        case CA_PROTO_SEARCH:  why = handleSearch(&batch, &m); break;
        default:               why = "neither VERSION nor SEARCH"; break;
        }
        if (!why)
            offset += used;
    }
    if (why) {
        epicsAtomicIncrSizeT(&names->malformed);
        gwLogPeer(GW_LOG_NAMES, GW_LOG_WARNING, batch.peerText,
                  "malformed datagram of %zu bytes: %s at byte %zu%s; rest ignored",
                  len, why, offset, command);
    }
    resolveQueries(&batch);
    gwServerSearchesDone(names->server);
    batchSend(&batch);
}

static int isIgnored(const gwServerConfig *config, const struct sockaddr_in *peer)
{
    const ELLNODE *cur;

    for (cur = ellFirst(&config->ignoreAddresses); cur; cur = ellNext(cur)) {
        if (((const osiSockAddrNode *)cur)->addr.ia.sin_addr.s_addr == peer->sin_addr.s_addr)
            return 1;
    }
    return 0;
}

/* Read every datagram waiting on the (non-blocking) socket. */
static void receiveAll(gwNameListener *listener, unsigned char *buf)
{
    gwNameServer *names = listener->names;

    for (;;) {
        struct sockaddr_in peer;
        osiSocklen_t peerSize = sizeof peer;
        int n = recvfrom(listener->socket, (char *)buf, GW_NAME_RECEIVE_MAX, 0,
                         (struct sockaddr *)&peer, &peerSize);

        if (n < 0) {
            int error = SOCKERRNO;

            if (error != SOCK_EWOULDBLOCK && error != SOCK_EINTR) {
                char text[64];

                epicsSocketConvertErrnoToString(text, sizeof text);
                gwLog(GW_LOG_NAMES, GW_LOG_ERROR,
                      "UDP receive on %s failed: %s", listener->where, text);
            }
            return;
        }
        epicsAtomicIncrSizeT(&names->datagrams);
        if (peer.sin_family != AF_INET || isIgnored(names->config, &peer)
            || epicsAtomicGetIntT(&names->paused)) {
            epicsAtomicIncrSizeT(&names->ignored);
            continue;
        }
        handleDatagram(listener, buf, (size_t)n, &peer);
    }
}

static void listenerRun(void *arg)
{
    gwNameListener *listener = arg;
    unsigned char *buf = malloc(GW_NAME_RECEIVE_MAX);
    gwOsdPollFd fds[2];

    if (!buf) {
        gwLog(GW_LOG_NAMES, GW_LOG_ERROR,
              "no memory for the UDP receive buffer of %s", listener->where);
        return;
    }
    fds[0].fd = listener->socket;
    fds[0].events = GW_OSD_IN;
    fds[1].fd = listener->names->wake.read;
    fds[1].events = GW_OSD_IN;
    for (;;) {
        fds[0].revents = fds[1].revents = 0;
        if (gwOsdPoll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            gwLog(GW_LOG_NAMES, GW_LOG_ERROR,
                  "poll on %s failed: %s", listener->where, strerror(errno));
            break;
        }
        if (fds[1].revents)
            break;
        if (fds[0].revents & GW_OSD_CLOSED) {
            gwLog(GW_LOG_NAMES, GW_LOG_ERROR,
                  "UDP socket of %s closed under its thread", listener->where);
            break;
        }
        if (fds[0].revents)
            receiveAll(listener, buf);
    }
    free(buf);
}

/* ---- start and stop ----------------------------------------------------- */

static int isMulticast(const osiSockAddr *address)
{
    return address->ia.sin_family == AF_INET && gwIsMulticast(address->ia.sin_addr.s_addr);
}

/* A UDP socket bound to address:port, non-blocking, shared (SO_REUSEADDR). */
static SOCKET openSocket(epicsUInt32 address, unsigned short port, char *where, size_t whereSize)
{
    struct sockaddr_in bound;
    SOCKET sock;
    osiSockIoctl_t yes = 1;

    memset(&bound, 0, sizeof bound);
    bound.sin_family = AF_INET;
    bound.sin_addr.s_addr = address;
    bound.sin_port = htons(port);
    ipAddrToDottedIP(&bound, where, whereSize);
    sock = epicsSocketCreate(AF_INET, SOCK_DGRAM, 0);
    if (sock == INVALID_SOCKET) {
        char text[64];

        epicsSocketConvertErrnoToString(text, sizeof text);
        gwLog(GW_LOG_NAMES, GW_LOG_ERROR, "cannot create a UDP socket for %s: %s", where, text);
        return INVALID_SOCKET;
    }
    epicsSocketEnableAddressUseForDatagramFanout(sock);
    if (bind(sock, (struct sockaddr *)&bound, sizeof bound) != 0
        || socket_ioctl(sock, FIONBIO, &yes) != 0) {
        char text[64];

        epicsSocketConvertErrnoToString(text, sizeof text);
        gwLog(GW_LOG_NAMES, GW_LOG_ERROR, "cannot bind the UDP name server to %s: %s", where, text);
        epicsSocketDestroy(sock);
        return INVALID_SOCKET;
    }
    return sock;
}

/* The broadcast address that reaches interfaceAddress (network order), or
 * INADDR_ANY when there is none. */
static epicsUInt32 broadcastAddressOf(SOCKET sock, epicsUInt32 interfaceAddress)
{
    ELLLIST found = ELLLIST_INIT;
    osiSockAddr match;
    const ELLNODE *cur;
    epicsUInt32 result = htonl(INADDR_ANY);

    memset(&match, 0, sizeof match);
    match.ia.sin_family = AF_INET;
    match.ia.sin_addr.s_addr = interfaceAddress;
    osiSockDiscoverBroadcastAddresses(&found, sock, &match);
    for (cur = ellFirst(&found); cur; cur = ellNext(cur)) {
        epicsUInt32 a = ((const osiSockAddrNode *)cur)->addr.ia.sin_addr.s_addr;

        if (a != interfaceAddress && a != htonl(INADDR_ANY)) {
            result = a;
            break;
        }
    }
    ellFree(&found);
    if (result == htonl(INADDR_ANY) && (ntohl(interfaceAddress) >> 24) == 127)
        result = htonl(0x7fffffffu); /* 127.255.255.255 */
    return result;
}

static void addListener(gwNameServer *names, SOCKET sock, SOCKET replySocket, const char *where)
{
    gwNameListener *listener = &names->listeners[names->nListeners++];

    listener->names = names;
    listener->socket = sock;
    listener->replySocket = replySocket;
    epicsSnprintf(listener->where, sizeof listener->where, "%s", where);
}

/* Off: a socket hears only the groups it joined itself, on the interface
 * it joined them on (Linux; elsewhere there is no such option and nothing
 * to do). */
static void hearOwnGroupsOnly(SOCKET sock, const char *where)
{
#ifdef IP_MULTICAST_ALL
    int off = 0;

    if (setsockopt(sock, IPPROTO_IP, IP_MULTICAST_ALL, (char *)&off, sizeof off) != 0) {
        char text[64];

        epicsSocketConvertErrnoToString(text, sizeof text);
        gwLog(GW_LOG_NAMES, GW_LOG_WARNING,
              "%s: cannot turn IP_MULTICAST_ALL off: %s", where, text);
    }
#else
    (void)sock;
    (void)where;
#endif
}

/* The socket of group (network order) on the interface interfaceAddress
 * (INADDR_ANY: where the route to the group goes), its answers sent
 * through replySocket. Returns 0, also when the group cannot be joined
 * there (a warning: the rest of the server works), or -1 after a message. */
static int openGroup(gwNameServer *names, epicsUInt32 group, epicsUInt32 interfaceAddress,
                     SOCKET replySocket)
{
    char where[48], bound[32], via[16];
    epicsUInt32 host = ntohl(interfaceAddress);
    struct ip_mreq request;
    SOCKET sock = openSocket(group, names->config->port, bound, sizeof bound);

    if (sock == INVALID_SOCKET)
        return -1;
    epicsSnprintf(via, sizeof via, "%u.%u.%u.%u", (unsigned)(host >> 24),
                  (unsigned)(host >> 16 & 0xffu), (unsigned)(host >> 8 & 0xffu),
                  (unsigned)(host & 0xffu));
    epicsSnprintf(where, sizeof where, "%s on %s", bound,
                  interfaceAddress == htonl(INADDR_ANY) ? "its route" : via);
    hearOwnGroupsOnly(sock, where);
    memset(&request, 0, sizeof request);
    request.imr_multiaddr.s_addr = group;
    request.imr_interface.s_addr = interfaceAddress;
    if (setsockopt(sock, IPPROTO_IP, IP_ADD_MEMBERSHIP, (char *)&request,
                   sizeof request) != 0) {
        char text[64];

        epicsSocketConvertErrnoToString(text, sizeof text);
        gwLog(GW_LOG_NAMES, GW_LOG_WARNING,
              "cannot join multicast group %s: %s", where, text);
        epicsSocketDestroy(sock);
        return 0;
    }
    addListener(names, sock, replySocket, where);
    return 0;
}

/* A socket per group of the interface list on the interface address. */
static int openGroups(gwNameServer *names, epicsUInt32 interfaceAddress, SOCKET replySocket)
{
    const ELLNODE *cur;

    for (cur = ellFirst(&names->config->interfaces); cur; cur = ellNext(cur)) {
        const osiSockAddr *group = &((const osiSockAddrNode *)cur)->addr;

        if (isMulticast(group)
            && openGroup(names, group->ia.sin_addr.s_addr, interfaceAddress, replySocket) != 0)
            return -1;
    }
    return 0;
}

/* The sockets of one interface. Returns 0, or -1 after a message. */
static int openInterface(gwNameServer *names, epicsUInt32 address)
{
    const gwServerConfig *config = names->config;
    char where[32];
    SOCKET unicast = openSocket(address, config->port, where, sizeof where);
    epicsUInt32 broadcast;

    if (unicast == INVALID_SOCKET)
        return -1;
    addListener(names, unicast, unicast, where);
    if (openGroups(names, address, unicast) != 0)
        return -1;
    if (address == htonl(INADDR_ANY)) {
        hearOwnGroupsOnly(unicast, where);
        return 0;
    }
    broadcast = broadcastAddressOf(unicast, address);
    if (broadcast == htonl(INADDR_ANY)) {
        gwLog(GW_LOG_NAMES, GW_LOG_WARNING,
              "no broadcast address found for %s; broadcast searches"
              " will not reach it", where);
        return 0;
    }
    {
        SOCKET sock = openSocket(broadcast, config->port, where, sizeof where);

        if (sock == INVALID_SOCKET)
            return -1;
        addListener(names, sock, unicast, where);
    }
    return 0;
}

static int openSockets(gwNameServer *names)
{
    const ELLLIST *interfaces = &names->config->interfaces;
    const ELLNODE *cur;
    unsigned unicasts = 0, wildcards = 0, groups = 0;

    for (cur = ellFirst(interfaces); cur; cur = ellNext(cur)) {
        const osiSockAddr *a = &((const osiSockAddrNode *)cur)->addr;

        if (isMulticast(a)) {
            groups++;
            continue;
        }
        unicasts++;
        wildcards += a->ia.sin_addr.s_addr == htonl(INADDR_ANY);
    }
    if (wildcards && unicasts > 1) {
        gwLog(GW_LOG_NAMES, GW_LOG_ERROR,
              "the server interface list cannot contain 0.0.0.0"
              " and other interfaces");
        return -1;
    }
    names->listeners = calloc((2u + groups) * (unicasts ? unicasts : 1u),
                              sizeof *names->listeners);
    if (!names->listeners)
        return -1;
    if (unicasts == 0)
        return openInterface(names, htonl(INADDR_ANY));
    for (cur = ellFirst(interfaces); cur; cur = ellNext(cur)) {
        const osiSockAddr *a = &((const osiSockAddrNode *)cur)->addr;

        if (!isMulticast(a) && openInterface(names, a->ia.sin_addr.s_addr) != 0)
            return -1;
    }
    return 0;
}

static int openWakePipe(gwNameServer *names)
{
    if (gwWakePipeOpen(&names->wake) != 0) {
        gwLog(GW_LOG_NAMES, GW_LOG_ERROR,
              "cannot create the name server's wake pipe: %s",
              strerror(errno));
        return -1;
    }
    return 0;
}

static int startThreads(gwNameServer *names)
{
    epicsThreadOpts options = EPICS_THREAD_OPTS_INIT;
    unsigned i;

    options.priority = epicsThreadPriorityCAServerLow;
    options.stackSize = epicsThreadGetStackSize(epicsThreadStackMedium);
    options.joinable = 1;
    for (i = 0; i < names->nListeners; i++) {
        gwNameListener *listener = &names->listeners[i];

        listener->thread = epicsThreadCreateOpt("gwNames", listenerRun, listener, &options);
        if (!listener->thread) {
            gwLog(GW_LOG_NAMES, GW_LOG_ERROR,
                  "cannot start the name server thread of %s",
                  listener->where);
            return -1;
        }
    }
    return 0;
}

gwNameServer *gwNameServerStart(gwServer *server)
{
    gwNameServer *names = calloc(1, sizeof *names);

    if (!names) {
        gwLog(GW_LOG_NAMES, GW_LOG_ERROR, "no memory for the name server");
        return NULL;
    }
    names->server = server;
    names->config = gwServerGetConfig(server);
    names->tcpPort = gwServerTcpPort(server);
    names->wake = GW_WAKE_PIPE_CLOSED;
    names->waitLock = epicsMutexCreate();
    if (!names->waitLock) {
        free(names);
        return NULL;
    }
    if (openWakePipe(names) != 0 || openSockets(names) != 0 || startThreads(names) != 0) {
        gwNameServerStop(names);
        return NULL;
    }
    return names;
}

void gwNameServerStop(gwNameServer *names)
{
    unsigned i;

    if (!names)
        return;
    gwWakePipeSignal(&names->wake);
    for (i = 0; i < names->nListeners; i++) {
        if (names->listeners[i].thread)
            epicsThreadMustJoin(names->listeners[i].thread);
    }
    for (i = 0; i < names->nListeners; i++)
        epicsSocketDestroy(names->listeners[i].socket);
    gwWakePipeClose(&names->wake);
    free(names->listeners);
    {
        ELLNODE *node;
        while ((node = ellGet(&names->waitAge)) != NULL)
            free(CONTAINER(node, gwSearchWait, ageNode));
    }
    epicsMutexDestroy(names->waitLock);
    free(names);
}

void gwNameServerGetCounters(const gwNameServer *names, gwNameServerCounters *out)
{
    gwNameServer *n = (gwNameServer *)names;

    out->datagrams = (unsigned long)epicsAtomicGetSizeT(&n->datagrams);
    out->ignored = (unsigned long)epicsAtomicGetSizeT(&n->ignored);
    out->malformed = (unsigned long)epicsAtomicGetSizeT(&n->malformed);
    out->searches = (unsigned long)epicsAtomicGetSizeT(&n->searches);
    out->answered = (unsigned long)epicsAtomicGetSizeT(&n->answered);
    out->replyDatagrams = (unsigned long)epicsAtomicGetSizeT(&n->replyDatagrams);
}

void gwNameServerPause(gwNameServer *names, int paused)
{
    epicsAtomicSetIntT(&names->paused, paused != 0);
}
