/* gwUpstreamSearch.c - the upstream provider's name searches: its own,
 * and libca's, which pass through it.
 *
 * libca searches on a timer whose shortest period is 32 ms (its minimum
 * round-trip estimate), and a client searching through the gateway backs
 * off when its searches are not answered within its own round trip: a
 * client connecting thousands of PVs through the gateway was held to a
 * few dozen names per round. So when a new PV is made, the provider sends
 * one SEARCH of its own, at once, to the upstream address list; the first
 * IOC that answers makes the PV "found" (the provider then answers the
 * client's search, and holds the client's CREATE_CHAN until libca has
 * connected; see gwProvider.h deferred()).
 *
 * libca's own searches come here too (the search proxy): its address list
 * is this module's loopback socket (gwUpSearchProxyPort), so every name is
 * searched for upstream once, not twice, and libca learns where a PV is as
 * soon as the own search is answered. A SEARCH from libca for a name
 * already answered is answered at once with the IOC's address (the reply
 * names the IOC, so libca connects to it directly); for a name in flight
 * it is answered when the IOC answers; for any other name (libca searching
 * again after a disconnect, a beacon anomaly) it becomes an own search. A
 * name libca asks for again while its search is unanswered is searched
 * for again upstream (libca's retries, on its back-off, are the resends).
 * An own search nobody answers is sent again after GW_UPSEARCH_RESEND_FIRST
 * seconds, then after twice that, and so on, GW_UPSEARCH_ROUNDS times in
 * all (with the proxy the provider makes a PV's libca channel only when
 * an IOC has answered, so libca is not searching for it meanwhile), unless
 * the provider gives up first (gwUpSearchCancel, at the connect timeout).
 * Answers go to whoever sent the search (the proxy socket is on loopback:
 * libca, or another local process, which learns only what it asked for).
 *
 * libca starts its next round of searches at once only when the last
 * answer of a round comes while new channels wait; otherwise it waits for
 * its timer (up to 32 ms). So during a connect storm (GW_UPSEARCH_STORM or
 * more names found, or searched for by libca, per GW_UPSEARCH_HOLD_SECONDS)
 * the last answer of each datagram of libca's searches is held back when
 * none of libca's searches waits for an IOC (it may end the round), until
 * GW_UPSEARCH_HOLD_CHANNELS channels have been made for names found since
 * (the found callback makes them), for GW_UPSEARCH_HOLD_SECONDS at most,
 * or until the storm is over (see heldDue): libca's rounds then follow
 * each other without waiting for its timer, each with many names. An IOC's
 * answer to a name libca waits for goes to libca after the channels of
 * the names found with it are made, for the same reason. Outside a storm
 * nothing is held.
 *
 * Own searches are packed (VERSION, then SEARCH messages, at most
 * GW_UPSEARCH_DATAGRAM bytes) and sent by the caller when a datagram is
 * full or when the server's series of searches is over (gwUpSearchFlush),
 * else by the search's thread shortly after. Each search has an id, a
 * sequence number; searches are remembered for
 * GW_UPSEARCH_REMEMBER_SECONDS in a ring of GW_UPSEARCH_SLOTS slots
 * indexed by id (a search is forgotten when the id GW_UPSEARCH_SLOTS later
 * takes its slot) and in a table by name. An answered search is forgotten
 * when libca's search for it is answered (without the proxy: at once).
 * Replies and libca's datagrams are hostile input: parsed with the codec,
 * unknown ids ignored.
 *
 * A multicast group in the address list (224.0.0.0/4) is searched on
 * loopback: the socket's multicast interface is 127.0.0.1 (TTL 1, loop
 * on), so the searches stay on the host, every server of the host that
 * joined the group on lo hears them (RSRV with the group in
 * EPICS_CAS_INTF_ADDR_LIST and a route of the group to lo), and their
 * source, hence the IOCs' answers and the circuits to them, is 127.0.0.1,
 * not the address of another interface that may go away. Unicast and
 * broadcast destinations are not affected (see
 * documentation/several-iocs.md).
 *
 * Threads: one of its own ("gwUpSearch") receives on both sockets, sends
 * and forgets old searches. Lock: search->lock (a leaf: nothing else is
 * taken under it; the found callback runs without it), taken with
 * gwLockTake (gwLock.h): the name server's thread and this one take it
 * for each name of a storm.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <addrList.h>
#include <caProto.h>
#include <dbDefs.h>
#include <ellLib.h>
#include <epicsMutex.h>
#include <epicsThread.h>
#include <epicsTime.h>
#include <osiSock.h>

#include "gwCodec.h"
#include "gwLog.h"
#include "gwMulticast.h"
#include "gwNameTable.h"
#include "gwOsd.h"
#include "gwUpstreamSearch.h"
#include "gwWakePipe.h"
#include "gwLock.h"

#define GW_UPSEARCH_DATAGRAM 1024u
#define GW_UPSEARCH_SLOTS 16384u  /* a power of two */
#define GW_UPSEARCH_TABLE 16384   /* the by-name table's first size (it grows) */
#define GW_UPSEARCH_REMEMBER_SECONDS 10.0
#define GW_UPSEARCH_POLL_MS 1000
#define GW_UPSEARCH_RECEIVE 4096u
/* Searches nobody flushed leave this long after the first of them. */
#define GW_UPSEARCH_FLUSH_SECONDS 0.005
/* libca asking for a name whose own search is unanswered searches for it
 * upstream again if it was last sent this long ago. */
#define GW_UPSEARCH_RESEND_SECONDS 0.02
/* An unanswered own search is sent again after this, then after twice
 * that, ... (the rounds end well within GW_UPSEARCH_REMEMBER_SECONDS). */
#define GW_UPSEARCH_RESEND_FIRST 0.03
#define GW_UPSEARCH_ROUNDS 8u
/* libca's last answer is held back until this many channels wait in libca
 * (made for found names since), or for this long at most. */
#define GW_UPSEARCH_HOLD_CHANNELS 256u
#define GW_UPSEARCH_HOLD_SECONDS 0.004
/* ... and only during a connect storm: at least this many names found, or
 * searched for by libca, within GW_UPSEARCH_HOLD_SECONDS. */
#define GW_UPSEARCH_STORM 32u
/* The storm is over when no own search is unanswered and none began for
 * this long: what is held goes then. */
#define GW_UPSEARCH_QUIET_SECONDS 0.0015
/* A reply to libca: header and the 8-byte payload (the minor version). */
#define GW_UPSEARCH_REPLY_SIZE (GW_CA_HEADER_SIZE + 8u)
#define GW_UPSEARCH_REPLIES (GW_UPSEARCH_RECEIVE / GW_CA_HEADER_SIZE)
#if GW_UPSEARCH_REPLIES > GW_UPSEARCH_FOUND_MAX
#error "one datagram's answers must fit one found call"
#endif
/* The oldest servers' replies name no server address: libca uses the
 * datagram's sender, here the proxy. Replies for libca say 4.8 at least. */
#define GW_UPSEARCH_MIN_SERVER_MINOR 8u

typedef struct gwUpSearchEntry {
    ELLNODE node;               /* in search->entries, oldest first */
    gwNameNode tableNode;       /* in search->names */
    unsigned id;
    epicsTimeStamp sent;        /* first sent: the age */
    epicsTimeStamp lastSent;
    ELLNODE resendNode;         /* in search->resend[round] until answered */
    unsigned round;             /* resends so far; GW_UPSEARCH_ROUNDS: in no list */
    int answered;               /* an IOC answered: server* are set */
    int libcaWaits;             /* libca searched (libcaCid, from libcaAt):
                                   answer it */
    epicsUInt32 libcaCid;
    struct sockaddr_in libcaAt;
    epicsUInt32 serverAddress;  /* host order */
    epicsUInt16 serverPort;
    epicsUInt16 serverMinor;
    char name[1];               /* allocated to length */
} gwUpSearchEntry;

struct gwUpSearch {
    SOCKET sock;                /* own searches and their replies */
    SOCKET proxy;               /* libca's searches; INVALID_SOCKET: none */
    unsigned short proxyPort;
    gwWakePipe wake;
    epicsThreadId thread;
    ELLLIST addresses;          /* osiSockAddrNode; const after create */
    gwUpSearchFound *found;
    void *arg;

    epicsMutexId lock;
    unsigned char out[GW_UPSEARCH_DATAGRAM]; /* the datagram being packed (lock) */
    size_t outLen;              /* 0: empty, else VERSION + searches (lock) */
    int woken;                  /* the thread was told of outLen (lock) */
    int stopping;               /* (lock) */
    gwUpSearchEntry **slots;    /* [id % GW_UPSEARCH_SLOTS] (lock) */
    gwNameTable names;          /* name -> the same entries (lock) */
    ELLLIST entries;            /* the same entries, oldest first (lock) */
    ELLLIST resend[GW_UPSEARCH_ROUNDS]; /* unanswered own searches by round,
                                   each by lastSent (lock) */
    unsigned nextId;            /* (lock) */
    size_t sent, answered, unanswered; /* (lock) */
    size_t libcaSearches, libcaAnswered; /* (lock) */
    size_t libcaWaiting;        /* entries whose libcaWaits is set (lock) */
    epicsTimeStamp lastNew;     /* when the last new own search began (lock) */

    /* the search thread's own */
    unsigned char held[GW_UPSEARCH_REPLY_SIZE]; /* libca's last answer, held back */
    struct sockaddr_in heldTo;
    int holding;
    epicsTimeStamp heldSince;
    unsigned madeSinceHeld;     /* names found (channels made) since */
    unsigned recentFound;       /* names found since recentSince */
    epicsTimeStamp recentSince;
    unsigned recentLibca;       /* libca's searches since recentLibcaSince */
    epicsTimeStamp recentLibcaSince;
    char *arena;                /* names reported in one found call */
    size_t arenaSize;
    unsigned char replies[GW_UPSEARCH_REPLIES * GW_UPSEARCH_REPLY_SIZE]; /* for libca */
    struct sockaddr_in repliesTo[GW_UPSEARCH_REPLIES]; /* where each goes */
};

/* The packed datagram, taken out to be sent without the lock (lock
 * held); its size, 0 when there is none. */
static size_t takeDatagram(gwUpSearch *search, unsigned char *copy)
{
    size_t n = search->outLen;

    memcpy(copy, search->out, n);
    search->outLen = 0;
    return n;
}

/* Send a datagram to every address (no lock: the list is const). */
static void sendDatagram(gwUpSearch *search, const unsigned char *bytes, size_t n)
{
    osiSockAddrNode *node;

    if (!n)
        return;
    for (node = (osiSockAddrNode *)ellFirst(&search->addresses); node;
         node = (osiSockAddrNode *)ellNext(&node->node))
        (void)sendto(search->sock, (const char *)bytes, (int)n, 0,
                     &node->addr.sa, sizeof node->addr.ia);
}

/* Answers for libca, in datagrams of at most GW_UPSEARCH_DATAGRAM bytes
 * (no lock; `to` is a copy). */
static void sendReplies(gwUpSearch *search, const struct sockaddr_in *to,
                        const unsigned char *bytes, size_t n)
{
    const size_t most = GW_UPSEARCH_DATAGRAM / GW_UPSEARCH_REPLY_SIZE * GW_UPSEARCH_REPLY_SIZE;

    while (n > 0) {
        size_t part = n < most ? n : most;
        (void)sendto(search->proxy, (const char *)bytes, (int)part, 0,
                     (const struct sockaddr *)to, sizeof *to);
        bytes += part;
        n -= part;
    }
}

/* Out of the resend rounds (lock held). */
static void leaveRounds(gwUpSearch *search, gwUpSearchEntry *entry)
{
    if (entry->round < GW_UPSEARCH_ROUNDS)
        ellDelete(&search->resend[entry->round], &entry->resendNode);
    entry->round = GW_UPSEARCH_ROUNDS;
}

static double resendDelay(unsigned round)
{
    return GW_UPSEARCH_RESEND_FIRST * (double)(1u << round);
}

/* The oldest entry of a resend round, NULL when it is empty (lock held). */
static gwUpSearchEntry *roundHead(gwUpSearch *search, unsigned round)
{
    ELLNODE *node = ellFirst(&search->resend[round]);

    return node ? (gwUpSearchEntry *)((char *)node - offsetof(gwUpSearchEntry, resendNode))
                : NULL;
}

/* Send the answer held back for libca, if any (search thread). */
static void releaseHeld(gwUpSearch *search)
{
    if (search->holding) {
        search->holding = 0;
        sendReplies(search, &search->heldTo, search->held, sizeof search->held);
    }
}

/* Count n of something in a window of GW_UPSEARCH_HOLD_SECONDS; 1 when
 * the window holds GW_UPSEARCH_STORM or more. */
static int stormCount(unsigned *count, epicsTimeStamp *since, const epicsTimeStamp *now,
                      unsigned n)
{
    if (epicsTimeDiffInSeconds(now, since) > GW_UPSEARCH_HOLD_SECONDS) {
        *since = *now;
        *count = 0;
    }
    *count += n;
    return *count >= GW_UPSEARCH_STORM;
}

/* Answers for libca's searches (search thread): all but the last go now,
 * with the one held before. The last is held (see the top) when it may
 * end libca's round (none of libca's searches waits for an IOC: `waiting`
 * counts them) during a connect storm (names found, or searched for by
 * libca, fast). */
static void answerLibca(gwUpSearch *search, const struct sockaddr_in *to,
                        const unsigned char *bytes, size_t n, unsigned searches,
                        size_t waiting)
{
    epicsTimeStamp now;
    int libcaStorm, foundStorm;

    epicsTimeGetCurrent(&now);
    libcaStorm = stormCount(&search->recentLibca, &search->recentLibcaSince, &now, searches);
    foundStorm = stormCount(&search->recentFound, &search->recentSince, &now, 0);
    releaseHeld(search);
    if (n < GW_UPSEARCH_REPLY_SIZE || waiting || !(libcaStorm || foundStorm)) {
        sendReplies(search, to, bytes, n);
        return;
    }
    sendReplies(search, to, bytes, n - GW_UPSEARCH_REPLY_SIZE);
    memcpy(search->held, bytes + n - GW_UPSEARCH_REPLY_SIZE, sizeof search->held);
    search->heldTo = *to;
    search->holding = 1;
    search->madeSinceHeld = 0;
    search->heldSince = now;
}

/* Is the held answer due (search thread)? When enough channels wait in
 * libca for a round of their own; after GW_UPSEARCH_HOLD_SECONDS; or when
 * some channels wait, no own search is unanswered and none began for
 * GW_UPSEARCH_QUIET_SECONDS (more can come only from new client searches:
 * the storm is over, or the clients are slow). Without channels waiting
 * the answer is held on: libca would end its round with nothing to
 * search and wait for its timer. *left: seconds to the next check. */
static int heldDue(gwUpSearch *search, const epicsTimeStamp *now, double *left)
{
    double held = epicsTimeDiffInSeconds(now, &search->heldSince);
    double quiet;
    size_t unanswered;

    *left = GW_UPSEARCH_HOLD_SECONDS - held;
    if (search->madeSinceHeld >= GW_UPSEARCH_HOLD_CHANNELS || *left <= 0)
        return 1;
    gwLockTake(search->lock);
    unanswered = search->unanswered;
    quiet = epicsTimeDiffInSeconds(now, &search->lastNew);
    epicsMutexUnlock(search->lock);
    if (unanswered || !search->madeSinceHeld)
        return 0;
    if (quiet >= GW_UPSEARCH_QUIET_SECONDS)
        return 1;
    if (GW_UPSEARCH_QUIET_SECONDS - quiet < *left)
        *left = GW_UPSEARCH_QUIET_SECONDS - quiet;
    return 0;
}

static int sameAddress(const struct sockaddr_in *a, const struct sockaddr_in *b)
{
    return a->sin_addr.s_addr == b->sin_addr.s_addr && a->sin_port == b->sin_port;
}

/* The first n answers of search->replies, each to its repliesTo, those
 * to one address together (no lock; search thread). */
static void sendRepliesTo(gwUpSearch *search, unsigned n)
{
    unsigned i = 0;

    while (i < n) {
        unsigned j = i + 1;
        while (j < n && sameAddress(&search->repliesTo[j], &search->repliesTo[i]))
            j++;
        sendReplies(search, &search->repliesTo[i], search->replies + i * GW_UPSEARCH_REPLY_SIZE,
                    (j - i) * GW_UPSEARCH_REPLY_SIZE);
        i = j;
    }
}

/* hash: gwNameHash(name), computed before the lock was taken. */
static gwUpSearchEntry *findEntry(gwUpSearch *search, const char *name, unsigned hash)
{
    gwNameNode *found = gwNameTableFind(&search->names, name, hash);

    return found ? CONTAINER(found, gwUpSearchEntry, tableNode) : NULL;
}

static void forget(gwUpSearch *search, gwUpSearchEntry *entry)
{
    if (search->slots[entry->id % GW_UPSEARCH_SLOTS] == entry)
        search->slots[entry->id % GW_UPSEARCH_SLOTS] = NULL;
    ellDelete(&search->entries, &entry->node);
    leaveRounds(search, entry);
    if (entry->libcaWaits)
        search->libcaWaiting--;
    gwNameTableRemove(&search->names, &entry->tableNode);
    if (!entry->answered)
        search->unanswered--;
    free(entry);
}

/* Forget searches older than the remembering time (lock held). */
static void forgetOld(gwUpSearch *search, const epicsTimeStamp *now)
{
    gwUpSearchEntry *entry;

    while ((entry = (gwUpSearchEntry *)ellFirst(&search->entries)) != NULL
           && epicsTimeDiffInSeconds(now, &entry->sent) >= GW_UPSEARCH_REMEMBER_SECONDS)
        forget(search, entry);
}

/* A search for a name, in no list yet (no lock needed); NULL when out of
 * memory. */
static gwUpSearchEntry *allocEntry(const char *name, size_t length)
{
    gwUpSearchEntry *entry = calloc(1, sizeof *entry + length);

    if (entry) {
        memcpy(entry->name, name, length);
        entry->name[length] = '\0';
    }
    return entry;
}

/* A new search (from allocEntry; its name not in the table) goes into
 * the ring and the table (lock held; hash = gwNameHash of its name), and
 * into the resend rounds if `resent`; not sent yet. */
static void addEntry(gwUpSearch *search, gwUpSearchEntry *entry, unsigned hash,
                     const epicsTimeStamp *now, int resent)
{
    gwUpSearchEntry *old;

    entry->sent = entry->lastSent = *now;
    search->lastNew = *now;
    entry->id = search->nextId++;
    gwNameTableAdd(&search->names, &entry->tableNode, entry->name, hash);
    old = search->slots[entry->id % GW_UPSEARCH_SLOTS];
    if (old)
        forget(search, old);    /* GW_UPSEARCH_SLOTS searches ago */
    search->slots[entry->id % GW_UPSEARCH_SLOTS] = entry;
    ellAdd(&search->entries, &entry->node);
    entry->round = GW_UPSEARCH_ROUNDS;
    if (resent) {
        entry->round = 0;
        ellAdd(&search->resend[0], &entry->resendNode);
    }
    search->unanswered++;
}

/* Pack a SEARCH for entry (lock held). A datagram that was full is copied
 * to `full` (its size returned, else 0) for the caller to send without
 * the lock; *wake is set when the thread must be told. */
static size_t packSearch(gwUpSearch *search, gwUpSearchEntry *entry, unsigned char *full,
                         int *wake)
{
    unsigned char message[GW_CA_HEADER_SIZE + GW_CA_NAME_MAX + 8u];
    size_t fullLen = 0;
    size_t n = gwCodecBuildSearch(message, sizeof message, entry->name, DONTREPLY,
                                  (epicsUInt16)GW_CA_MINOR_VERSION, entry->id);

    if (n == 0)
        return 0;
    if (search->outLen + n > sizeof search->out)
        fullLen = takeDatagram(search, full);
    if (!search->outLen)
        search->outLen = gwCodecBuildVersion(search->out, sizeof search->out, 0,
                                             (epicsUInt16)GW_CA_MINOR_VERSION, 0);
    memcpy(search->out + search->outLen, message, n);
    search->outLen += n;
    search->sent++;
    if (!search->woken) {
        search->woken = 1;
        *wake = 1;
    }
    return fullLen;
}

/* The answer for libca's search of an answered entry, into buf. */
static size_t buildAnswer(const gwUpSearchEntry *entry, unsigned char *buf)
{
    epicsUInt16 minor = entry->serverMinor < GW_UPSEARCH_MIN_SERVER_MINOR
        ? (epicsUInt16)GW_UPSEARCH_MIN_SERVER_MINOR : entry->serverMinor;

    return gwCodecBuildSearchReply(buf, GW_UPSEARCH_REPLY_SIZE, entry->serverPort,
                                   entry->serverAddress, entry->libcaCid, minor);
}

void gwUpSearchSend(gwUpSearch *search, const char *name)
{
    unsigned char full[GW_UPSEARCH_DATAGRAM];
    size_t fullLen;
    gwUpSearchEntry *entry, *fresh;
    epicsTimeStamp now;
    unsigned hash;
    int wake = 0;

    if (!search || !ellCount(&search->addresses))
        return;
    /* made before the lock, which the search thread wants too */
    hash = gwNameHash(name);
    fresh = allocEntry(name, strlen(name));
    if (!fresh)
        return;
    epicsTimeGetCurrent(&now);
    gwLockTake(search->lock);
    entry = findEntry(search, name, hash);
    if (search->stopping || (entry && !entry->answered)) {
        epicsMutexUnlock(search->lock);
        free(fresh);
        return;                 /* stopping, or in flight */
    }
    if (entry)
        forget(search, entry);  /* an old answer: ask again */
    addEntry(search, fresh, hash, &now, 1);
    fullLen = packSearch(search, fresh, full, &wake);
    epicsMutexUnlock(search->lock);
    sendDatagram(search, full, fullLen);
    if (wake)
        gwWakePipeSignal(&search->wake);
}

void gwUpSearchCancel(gwUpSearch *search, const char *name)
{
    gwUpSearchEntry *entry;
    unsigned hash;

    if (!search)
        return;
    hash = gwNameHash(name);
    gwLockTake(search->lock);
    entry = findEntry(search, name, hash);
    if (entry && !entry->answered && !entry->libcaWaits)
        forget(search, entry);
    epicsMutexUnlock(search->lock);
}

void gwUpSearchFlush(gwUpSearch *search)
{
    unsigned char datagram[GW_UPSEARCH_DATAGRAM];
    size_t n;

    if (!search)
        return;
    gwLockTake(search->lock);
    n = takeDatagram(search, datagram);
    epicsMutexUnlock(search->lock);
    sendDatagram(search, datagram, n);
}

/* Room for `need` more bytes of names in the arena (search thread). */
static int arenaFits(gwUpSearch *search, size_t used, size_t need)
{
    char *bigger;
    size_t size = search->arenaSize ? search->arenaSize : 4096u;

    if (used + need <= search->arenaSize)
        return 1;
    while (size < used + need)
        size *= 2;
    bigger = realloc(search->arena, size);
    if (!bigger)
        return 0;
    search->arena = bigger;
    search->arenaSize = size;
    return 1;
}

/* A datagram that does not parse: who sent it, and where it went wrong. */
static void logMalformed(const struct sockaddr_in *from, const char *what, size_t len,
                         size_t offset, gwCodecStatus status)
{
    char peer[32];

    if (!gwLogEnabled(GW_LOG_SEARCH, GW_LOG_WARNING))
        return;
    ipAddrToDottedIP(from, peer, sizeof peer);
    gwLogPrintPeer(GW_LOG_SEARCH, peer, "malformed %s of %zu bytes: %s at byte %zu; rest ignored",
                   what, len, gwCodecStatusText(status), offset);
}

/* The answers in one datagram from an IOC: each unanswered id answered
 * once; the names reported in one call (copied: the entries may go
 * meanwhile), libca's waiting searches answered. */
static void handleReplies(gwUpSearch *search, const unsigned char *buf, size_t len,
                          const struct sockaddr_in *from)
{
    size_t offsets[GW_UPSEARCH_REPLIES];
    const char *names[GW_UPSEARCH_REPLIES];
    size_t used = 0, offset = 0;
    unsigned n = 0, answers = 0, i;
    gwCodecStatus status = GW_CODEC_OK;

    gwLockTake(search->lock);
    while (offset < len && n < NELEMENTS(names)) {
        gwCaMessage m;
        gwCaSearchReply reply;
        gwUpSearchEntry *entry;
        size_t length, step;

        status = gwCodecParseMessage(buf + offset, len - offset, len, &m, &step);
        if (status != GW_CODEC_OK)
            break;
        offset += step;
        if (gwCodecDecodeSearchReply(&m, &reply) != GW_CODEC_OK)
            continue;
        entry = search->slots[reply.searchId % GW_UPSEARCH_SLOTS];
        if (!entry || entry->id != reply.searchId || entry->answered)
            continue;   /* unknown, forgotten, or answered already */
        length = strlen(entry->name) + 1u;
        if (!arenaFits(search, used, length))
            break;
        memcpy(search->arena + used, entry->name, length);
        offsets[n++] = used;
        used += length;
        entry->answered = 1;
        leaveRounds(search, entry);
        search->unanswered--;
        search->answered++;
        entry->serverAddress = reply.serverAddress != GW_CA_ADDRESS_OF_SENDER
            ? reply.serverAddress : ntohl(from->sin_addr.s_addr);
        entry->serverPort = reply.tcpPort;
        entry->serverMinor = reply.serverMinor;
        if (entry->libcaWaits) {
            buildAnswer(entry, search->replies + answers * GW_UPSEARCH_REPLY_SIZE);
            search->repliesTo[answers++] = entry->libcaAt;
            search->libcaAnswered++;
        }
        if (entry->libcaWaits || search->proxy == INVALID_SOCKET)
            forget(search, entry);  /* nothing more to answer */
    }
    epicsMutexUnlock(search->lock);
    if (status != GW_CODEC_OK)
        logMalformed(from, "search reply", len, offset, status);
    for (i = 0; i < n; i++)
        names[i] = search->arena + offsets[i];
    /* channels first: an answer that ends libca's round then finds them
     * waiting, and libca starts its next round at once */
    if (n)
        search->found(search->arg, names, n);
    sendRepliesTo(search, answers);
    if (n) {
        epicsTimeStamp now;
        epicsTimeGetCurrent(&now);
        stormCount(&search->recentFound, &search->recentSince, &now, n);
        search->madeSinceHeld += n;
        if (search->madeSinceHeld >= GW_UPSEARCH_HOLD_CHANNELS)
            releaseHeld(search);    /* libca searches for them at once */
    }
}

/* libca's searches (one datagram, on the proxy socket): answered from the
 * own searches, or searched for upstream. */
static void handleLibca(gwUpSearch *search, const unsigned char *buf, size_t len,
                        const struct sockaddr_in *from)
{
    unsigned char full[GW_UPSEARCH_DATAGRAM];
    unsigned char *answers = search->replies;
    size_t answersLen = 0, offset = 0;
    epicsTimeStamp now;
    unsigned searches = 0;
    size_t outstanding;
    int wake = 0;
    gwCodecStatus status = GW_CODEC_OK;

    epicsTimeGetCurrent(&now);
    while (offset < len && answersLen + GW_UPSEARCH_REPLY_SIZE <= sizeof search->replies) {
        gwCaMessage m;
        gwCaSearch request;
        gwUpSearchEntry *entry;
        size_t step, fullLen = 0;
        unsigned hash;

        status = gwCodecParseMessage(buf + offset, len - offset, len, &m, &step);
        if (status != GW_CODEC_OK)
            break;
        offset += step;
        if (m.header.command != CA_PROTO_SEARCH
            || gwCodecDecodeSearch(&m, &request) != GW_CODEC_OK)
            continue;   /* VERSION, or anything else: nothing to do */
        searches++;
        hash = gwNameHash(request.name.text);
        gwLockTake(search->lock);
        search->libcaSearches++;
        entry = findEntry(search, request.name.text, hash);
        if (entry && entry->answered) {
            entry->libcaCid = request.searchId;
            answersLen += buildAnswer(entry, answers + answersLen);
            search->libcaAnswered++;
            forget(search, entry);
        }
        else {
            if (!entry) {   /* libca's back-off resends this one */
                entry = allocEntry(request.name.text, request.name.length);
                if (entry) {
                    addEntry(search, entry, hash, &now, 0);
                    fullLen = packSearch(search, entry, full, &wake);
                }
            }
            else if (entry->round == GW_UPSEARCH_ROUNDS
                     && epicsTimeDiffInSeconds(&now, &entry->lastSent)
                            >= GW_UPSEARCH_RESEND_SECONDS) {
                entry->lastSent = now;
                fullLen = packSearch(search, entry, full, &wake);
            }
            if (entry) {
                if (!entry->libcaWaits)
                    search->libcaWaiting++;
                entry->libcaWaits = 1;
                entry->libcaCid = request.searchId;
                entry->libcaAt = *from;
            }
        }
        epicsMutexUnlock(search->lock);
        sendDatagram(search, full, fullLen);
    }
    if (status != GW_CODEC_OK)
        logMalformed(from, "search from libca", len, offset, status);
    /* what libca asked for upstream goes now: its round waits for it */
    gwLockTake(search->lock);
    offset = takeDatagram(search, full);
    outstanding = search->libcaWaiting;
    epicsMutexUnlock(search->lock);
    sendDatagram(search, full, offset);
    if (answersLen)
        answerLibca(search, from, answers, answersLen, searches, outstanding);
}

/* Send again the own searches whose round is over (search thread), a
 * datagram at a time; the seconds until the next one is due, or a
 * negative number when none waits. */
static double resendDue(gwUpSearch *search)
{
    unsigned char full[GW_UPSEARCH_DATAGRAM];
    double next;
    int more = 1;

    while (more) {
        epicsTimeStamp now;
        size_t fullLen = 0;
        unsigned k;
        int wake = 0;

        epicsTimeGetCurrent(&now);
        next = -1.0;
        more = 0;
        gwLockTake(search->lock);
        for (k = 0; k < GW_UPSEARCH_ROUNDS && !fullLen; k++) {
            gwUpSearchEntry *entry;
            while (!fullLen && (entry = roundHead(search, k)) != NULL) {
                double left = resendDelay(k) - epicsTimeDiffInSeconds(&now, &entry->lastSent);
                if (left > 0) {
                    if (next < 0 || left < next)
                        next = left;
                    break;
                }
                leaveRounds(search, entry);
                if (k + 1 < GW_UPSEARCH_ROUNDS) {
                    entry->round = k + 1;
                    ellAdd(&search->resend[k + 1], &entry->resendNode);
                }
                entry->lastSent = now;
                fullLen = packSearch(search, entry, full, &wake);
            }
        }
        if (fullLen)
            more = 1;   /* a datagram was full: the rest after it is sent */
        else
            fullLen = takeDatagram(search, full);
        epicsMutexUnlock(search->lock);
        sendDatagram(search, full, fullLen);
    }
    return next;
}

/* Every datagram waiting on a (non-blocking) socket. */
static void receiveAll(gwUpSearch *search, SOCKET sock, unsigned char *buf)
{
    for (;;) {
        struct sockaddr_in from;
        osiSocklen_t fromSize = sizeof from;
        int got = recvfrom(sock, (char *)buf, GW_UPSEARCH_RECEIVE, 0,
                           (struct sockaddr *)&from, &fromSize);

        if (got <= 0)
            return;
        if (from.sin_family != AF_INET)
            continue;
        if (sock == search->proxy)
            handleLibca(search, buf, (size_t)got, &from);
        else
            handleReplies(search, buf, (size_t)got, &from);
    }
}

static void searchRun(void *arg)
{
    gwUpSearch *search = arg;
    unsigned char *buf = malloc(GW_UPSEARCH_RECEIVE);
    unsigned char datagram[GW_UPSEARCH_DATAGRAM];
    gwOsdPollFd fds[3];
    epicsTimeStamp flushAt;     /* searches told of leave then */
    int flushDue = 0;
    unsigned nfds = search->proxy != INVALID_SOCKET ? 3 : 2;

    if (!buf)
        return;
    fds[0].fd = search->sock;
    fds[1].fd = search->wake.read;
    fds[2].fd = search->proxy;
    fds[0].events = fds[1].events = fds[2].events = GW_OSD_IN;
    for (;;) {
        epicsTimeStamp now;
        size_t outLen = 0;
        int n, stopping, timeout = GW_UPSEARCH_POLL_MS;
        double resend = resendDue(search);

        if (resend >= 0 && resend * 1000.0 < timeout)
            timeout = (int)(resend * 1000.0) + 1;
        if (search->holding) {
            double left;
            epicsTimeGetCurrent(&now);
            if (heldDue(search, &now, &left))
                releaseHeld(search);
            else if ((int)(left * 1000.0) + 1 < timeout)
                timeout = (int)(left * 1000.0) + 1;
        }
        if (flushDue) {
            double left;
            epicsTimeGetCurrent(&now);
            left = epicsTimeDiffInSeconds(&flushAt, &now);
            n = left > 0 ? (int)(left * 1000.0) + 1 : 0;
            if (n < timeout)
                timeout = n;
        }
        fds[0].revents = fds[1].revents = fds[2].revents = 0;
        n = gwOsdPoll(fds, nfds, timeout);
        if (n < 0 && errno != EINTR)
            break;
        epicsTimeGetCurrent(&now);
        if (fds[1].revents) {
            gwWakePipeDrain(&search->wake);
            if (!flushDue) {
                flushAt = now;
                epicsTimeAddSeconds(&flushAt, GW_UPSEARCH_FLUSH_SECONDS);
                flushDue = 1;
            }
        }
        gwLockTake(search->lock);
        stopping = search->stopping;
        if (flushDue && epicsTimeDiffInSeconds(&now, &flushAt) >= 0) {
            flushDue = 0;
            search->woken = 0;
            outLen = takeDatagram(search, datagram);
        }
        forgetOld(search, &now);
        epicsMutexUnlock(search->lock);
        sendDatagram(search, datagram, outLen);
        if (stopping)
            break;
        if (n > 0 && (fds[0].revents & GW_OSD_IN))
            receiveAll(search, search->sock, buf);
        if (n > 0 && nfds > 2 && (fds[2].revents & GW_OSD_IN))
            receiveAll(search, search->proxy, buf);
    }
    free(buf);
}

/* Multicast searches leave on loopback (see the top of the file); done
 * only when the address list names a group. Failures are reported: the
 * searches then go where the kernel's route for the group says. */
static void scopeMulticastToLoopback(gwUpSearch *search)
{
    char text[64];

    if (!gwListHasMulticast(&search->addresses) || gwMulticastOnLoopback(search->sock) == 0)
        return;
    epicsSocketConvertErrnoToString(text, sizeof text);
    gwLog(GW_LOG_SEARCH, GW_LOG_WARNING,
          "cannot search multicast groups on loopback (127.0.0.1): %s", text);
}

static void setNonBlocking(SOCKET sock)
{
    osiSockIoctl_t yes = 1;

    socket_ioctl(sock, FIONBIO, &yes);
}

/* The loopback socket libca searches through; INVALID_SOCKET when it
 * cannot be made (libca then searches upstream itself). */
static SOCKET openProxy(unsigned short *port)
{
    SOCKET sock = epicsSocketCreate(AF_INET, SOCK_DGRAM, IPPROTO_UDP);
    struct sockaddr_in here;
    osiSocklen_t size = sizeof here;

    if (sock == INVALID_SOCKET)
        return sock;
    memset(&here, 0, sizeof here);
    here.sin_family = AF_INET;
    here.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(sock, (struct sockaddr *)&here, sizeof here) != 0
        || getsockname(sock, (struct sockaddr *)&here, &size) != 0) {
        epicsSocketDestroy(sock);
        return INVALID_SOCKET;
    }
    setNonBlocking(sock);
    *port = ntohs(here.sin_port);
    return sock;
}

gwUpSearch *gwUpSearchCreate(unsigned short port, gwUpSearchFound *found, void *arg)
{
    gwUpSearch *search = calloc(1, sizeof *search);
    struct sockaddr_in any;
    epicsThreadOpts options = EPICS_THREAD_OPTS_INIT;
    int yes = 1;
    unsigned i;

    if (!search)
        return NULL;
    search->sock = search->proxy = INVALID_SOCKET;
    search->wake = GW_WAKE_PIPE_CLOSED;
    search->found = found;
    search->arg = arg;
    ellInit(&search->addresses);
    ellInit(&search->entries);
    for (i = 0; i < GW_UPSEARCH_ROUNDS; i++)
        ellInit(&search->resend[i]);
    search->lock = epicsMutexCreate();
    search->slots = calloc(GW_UPSEARCH_SLOTS, sizeof *search->slots);
    gwNameTableInit(&search->names, GW_UPSEARCH_TABLE);
    search->sock = epicsSocketCreate(AF_INET, SOCK_DGRAM, IPPROTO_UDP);
    if (!search->lock || !search->slots || !search->names.buckets
        || search->sock == INVALID_SOCKET
        || gwWakePipeOpen(&search->wake) != 0)
        goto fail;
    memset(&any, 0, sizeof any);
    any.sin_family = AF_INET;
    any.sin_addr.s_addr = htonl(INADDR_ANY);
    if (bind(search->sock, (struct sockaddr *)&any, sizeof any) != 0
        || setsockopt(search->sock, SOL_SOCKET, SO_BROADCAST, (char *)&yes, sizeof yes) != 0)
        goto fail;
    setNonBlocking(search->sock);
    configureChannelAccessAddressList(&search->addresses, search->sock, port);
    scopeMulticastToLoopback(search);
    if (ellCount(&search->addresses))
        search->proxy = openProxy(&search->proxyPort);
    options.priority = epicsThreadPriorityCAServerLow;
    /* medium: the found callback makes libca channels */
    options.stackSize = epicsThreadGetStackSize(epicsThreadStackMedium);
    options.joinable = 1;
    search->thread = epicsThreadCreateOpt("gwUpSearch", searchRun, search, &options);
    if (!search->thread)
        goto fail;
    return search;

fail:
    gwLog(GW_LOG_SEARCH, GW_LOG_WARNING,
          "cannot search upstream on its own; searches wait for libca");
    gwUpSearchDestroy(search);
    return NULL;
}

unsigned short gwUpSearchProxyPort(const gwUpSearch *search)
{
    return search && search->proxy != INVALID_SOCKET ? search->proxyPort : 0;
}

void gwUpSearchDestroy(gwUpSearch *search)
{
    gwUpSearchEntry *entry;

    if (!search)
        return;
    if (search->thread) {
        gwLockTake(search->lock);
        search->stopping = 1;
        epicsMutexUnlock(search->lock);
        gwWakePipeSignal(&search->wake);
        epicsThreadMustJoin(search->thread);
    }
    while ((entry = (gwUpSearchEntry *)ellFirst(&search->entries)) != NULL)
        forget(search, entry);
    ellFree(&search->addresses);
    free(search->slots);
    gwNameTableClear(&search->names);
    free(search->arena);
    if (search->sock != INVALID_SOCKET)
        epicsSocketDestroy(search->sock);
    if (search->proxy != INVALID_SOCKET)
        epicsSocketDestroy(search->proxy);
    gwWakePipeClose(&search->wake);
    if (search->lock)
        epicsMutexDestroy(search->lock);
    free(search);
}

void gwUpSearchGetCounts(gwUpSearch *search, gwUpSearchCounts *counts)
{
    memset(counts, 0, sizeof *counts);
    if (!search)
        return;
    gwLockTake(search->lock);
    counts->sent = search->sent;
    counts->answered = search->answered;
    counts->waiting = search->unanswered;
    counts->libcaSearches = search->libcaSearches;
    counts->libcaAnswered = search->libcaAnswered;
    epicsMutexUnlock(search->lock);
    counts->addresses = (unsigned)ellCount(&search->addresses);
}
