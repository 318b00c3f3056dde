/* gwUpstreamSearch.c - the upstream provider's own name searches.
 *
 * libca searches on a timer whose shortest period is 32 ms (its minimum
 * round-trip estimate), and a client searching through the gateway backs
 * off when its searches are not answered within its own round trip: a
 * client connecting thousands of PVs through the gateway was held to a
 * few dozen names per round. So when a new PV is made, the provider also
 * sends one SEARCH of its own, at once, to the same addresses libca uses;
 * the first IOC that answers makes the PV "found" (the provider then
 * answers the client's search, and holds the client's CREATE_CHAN until
 * libca has connected; see gwProvider.h deferred()). libca's own search
 * goes on as before: a lost datagram only means the slower path.
 *
 * Searches are packed (VERSION, then SEARCH messages, at most
 * GW_UPSEARCH_DATAGRAM bytes) and sent by the caller when a datagram is
 * full or when the server's series of searches is over
 * (gwUpSearchFlush), else by the search's thread shortly after. Each search has an id,
 * a sequence number; the names of searches not yet answered are
 * remembered for GW_UPSEARCH_REMEMBER_SECONDS in a ring of
 * GW_UPSEARCH_SLOTS slots indexed by id (a search is forgotten when the
 * id GW_UPSEARCH_SLOTS later takes its slot), to turn an answer's id back
 * into a name. Replies are hostile input: parsed with the codec, unknown
 * ids ignored.
 *
 * Threads: one of its own ("gwUpSearch") receives, sends and forgets old
 * searches. Lock: search->lock (a leaf: nothing else is taken under it;
 * the found callback runs without it).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include <addrList.h>
#include <caProto.h>
#include <dbDefs.h>
#include <ellLib.h>
#include <epicsMutex.h>
#include <epicsThread.h>
#include <epicsTime.h>
#include <errlog.h>
#include <osiSock.h>

#include "gwCodec.h"
#include "gwUpstreamSearch.h"
#include "gwWakePipe.h"

#define GW_UPSEARCH_DATAGRAM 1024u
#define GW_UPSEARCH_SLOTS 16384u  /* a power of two */
#define GW_UPSEARCH_REMEMBER_SECONDS 10.0
#define GW_UPSEARCH_POLL_MS 1000
#define GW_UPSEARCH_RECEIVE 4096u
/* Searches nobody flushed leave this long after the first of them. */
#define GW_UPSEARCH_FLUSH_SECONDS 0.005

typedef struct gwUpSearchEntry {
    ELLNODE node;               /* in search->entries, oldest first */
    unsigned id;
    epicsTimeStamp sent;
    char name[1];               /* allocated to length */
} gwUpSearchEntry;

struct gwUpSearch {
    SOCKET sock;
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
    ELLLIST entries;            /* the same entries, oldest first (lock) */
    unsigned nextId;            /* (lock) */
    size_t sent, answered;      /* (lock) */
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

/* Out of the ring and the age list (lock held); the caller frees it. */
static void unlinkEntry(gwUpSearch *search, gwUpSearchEntry *entry)
{
    search->slots[entry->id % GW_UPSEARCH_SLOTS] = NULL;
    ellDelete(&search->entries, &entry->node);
}

static void forget(gwUpSearch *search, gwUpSearchEntry *entry)
{
    unlinkEntry(search, entry);
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

void gwUpSearchSend(gwUpSearch *search, const char *name)
{
    size_t length = strlen(name);
    gwUpSearchEntry *entry;
    unsigned char message[GW_CA_HEADER_SIZE + GW_CA_NAME_MAX + 8u];
    unsigned char full[GW_UPSEARCH_DATAGRAM];
    size_t n, fullLen = 0;
    gwUpSearchEntry *old;
    int wake = 0;

    if (!search || !ellCount(&search->addresses))
        return;
    entry = malloc(sizeof *entry + length);
    if (!entry)
        return;
    epicsTimeGetCurrent(&entry->sent);
    memcpy(entry->name, name, length + 1);
    epicsMutexMustLock(search->lock);
    entry->id = search->nextId++;
    n = gwCodecBuildSearch(message, sizeof message, name, DONTREPLY,
                           (epicsUInt16)GW_CA_MINOR_VERSION, entry->id);
    if (search->stopping || n == 0) {
        epicsMutexUnlock(search->lock);
        free(entry);
        return;
    }
    old = search->slots[entry->id % GW_UPSEARCH_SLOTS];
    if (old)
        forget(search, old);    /* GW_UPSEARCH_SLOTS searches ago */
    search->slots[entry->id % GW_UPSEARCH_SLOTS] = entry;
    ellAdd(&search->entries, &entry->node);
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
        wake = 1;
    }
    epicsMutexUnlock(search->lock);
    sendDatagram(search, full, fullLen);
    if (wake)
        gwWakePipeSignal(&search->wake);
}

void gwUpSearchFlush(gwUpSearch *search)
{
    unsigned char datagram[GW_UPSEARCH_DATAGRAM];
    size_t n;

    if (!search)
        return;
    epicsMutexMustLock(search->lock);
    n = takeDatagram(search, datagram);
    epicsMutexUnlock(search->lock);
    sendDatagram(search, datagram, n);
}

/* The answers in one datagram: each known id found once, all reported in
 * one call. The entries leave the table and are freed after the call. */
static void handleReplies(gwUpSearch *search, const unsigned char *buf, size_t len)
{
    gwUpSearchEntry *found[GW_UPSEARCH_RECEIVE / GW_CA_HEADER_SIZE];
    const char *names[GW_UPSEARCH_RECEIVE / GW_CA_HEADER_SIZE];
    unsigned n = 0, i;
    size_t offset = 0;

    epicsMutexMustLock(search->lock);
    while (offset < len && n < NELEMENTS(found)) {
        gwCaMessage m;
        gwCaSearchReply reply;
        gwUpSearchEntry *entry;
        size_t used;

        if (gwCodecParseMessage(buf + offset, len - offset, len, &m, &used) != GW_CODEC_OK)
            break;
        offset += used;
        if (gwCodecDecodeSearchReply(&m, &reply) != GW_CODEC_OK)
            continue;
        entry = search->slots[reply.searchId % GW_UPSEARCH_SLOTS];
        if (!entry || entry->id != reply.searchId)
            continue;   /* unknown, forgotten, or answered already */
        unlinkEntry(search, entry);
        search->answered++;
        names[n] = entry->name;
        found[n++] = entry;
    }
    epicsMutexUnlock(search->lock);
    if (n)
        search->found(search->arg, names, n);
    for (i = 0; i < n; i++)
        free(found[i]);
}

static void searchRun(void *arg)
{
    gwUpSearch *search = arg;
    unsigned char *buf = malloc(GW_UPSEARCH_RECEIVE);
    unsigned char datagram[GW_UPSEARCH_DATAGRAM];
    struct pollfd fds[2];
    epicsTimeStamp flushAt;     /* searches told of leave then */
    int flushDue = 0;

    if (!buf)
        return;
    fds[0].fd = search->sock;
    fds[0].events = POLLIN;
    fds[1].fd = search->wake.read;
    fds[1].events = POLLIN;
    for (;;) {
        epicsTimeStamp now;
        size_t outLen = 0;
        int n, stopping, timeout = GW_UPSEARCH_POLL_MS;

        if (flushDue) {
            double left;
            epicsTimeGetCurrent(&now);
            left = epicsTimeDiffInSeconds(&flushAt, &now);
            timeout = left > 0 ? (int)(left * 1000.0) + 1 : 0;
        }
        fds[0].revents = fds[1].revents = 0;
        n = poll(fds, 2, timeout);
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
        epicsMutexMustLock(search->lock);
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
        if (n > 0 && (fds[0].revents & POLLIN)) {
            int got;
            while ((got = recv(search->sock, (char *)buf, GW_UPSEARCH_RECEIVE, 0)) > 0)
                handleReplies(search, buf, (size_t)got);
        }
    }
    free(buf);
}

gwUpSearch *gwUpSearchCreate(unsigned short port, gwUpSearchFound *found, void *arg)
{
    gwUpSearch *search = calloc(1, sizeof *search);
    struct sockaddr_in any;
    epicsThreadOpts options = EPICS_THREAD_OPTS_INIT;
    int yes = 1;

    if (!search)
        return NULL;
    search->sock = INVALID_SOCKET;
    search->wake = GW_WAKE_PIPE_CLOSED;
    search->found = found;
    search->arg = arg;
    ellInit(&search->addresses);
    ellInit(&search->entries);
    search->lock = epicsMutexCreate();
    search->slots = calloc(GW_UPSEARCH_SLOTS, sizeof *search->slots);
    search->sock = epicsSocketCreate(AF_INET, SOCK_DGRAM, IPPROTO_UDP);
    if (!search->lock || !search->slots || search->sock == INVALID_SOCKET
        || gwWakePipeOpen(&search->wake) != 0)
        goto fail;
    memset(&any, 0, sizeof any);
    any.sin_family = AF_INET;
    any.sin_addr.s_addr = htonl(INADDR_ANY);
    if (bind(search->sock, (struct sockaddr *)&any, sizeof any) != 0
        || setsockopt(search->sock, SOL_SOCKET, SO_BROADCAST, (char *)&yes, sizeof yes) != 0)
        goto fail;
    fcntl(search->sock, F_SETFL, fcntl(search->sock, F_GETFL) | O_NONBLOCK);
    configureChannelAccessAddressList(&search->addresses, search->sock, port);
    options.priority = epicsThreadPriorityCAServerLow;
    options.stackSize = epicsThreadGetStackSize(epicsThreadStackSmall);
    options.joinable = 1;
    search->thread = epicsThreadCreateOpt("gwUpSearch", searchRun, search, &options);
    if (!search->thread)
        goto fail;
    return search;

fail:
    errlogPrintf("gateway: cannot search upstream on its own; searches wait for libca\n");
    gwUpSearchDestroy(search);
    return NULL;
}

void gwUpSearchDestroy(gwUpSearch *search)
{
    gwUpSearchEntry *entry;

    if (!search)
        return;
    if (search->thread) {
        epicsMutexMustLock(search->lock);
        search->stopping = 1;
        epicsMutexUnlock(search->lock);
        gwWakePipeSignal(&search->wake);
        epicsThreadMustJoin(search->thread);
    }
    while ((entry = (gwUpSearchEntry *)ellFirst(&search->entries)) != NULL)
        forget(search, entry);
    ellFree(&search->addresses);
    free(search->slots);
    if (search->sock != INVALID_SOCKET)
        epicsSocketDestroy(search->sock);
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
    epicsMutexMustLock(search->lock);
    counts->sent = search->sent;
    counts->answered = search->answered;
    counts->waiting = (size_t)ellCount(&search->entries);
    epicsMutexUnlock(search->lock);
    counts->addresses = (unsigned)ellCount(&search->addresses);
}
