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
 * GW_UPSEARCH_DATAGRAM bytes) and sent by the search's thread when it
 * wakes, or by the caller when a datagram is full. Each search has an id;
 * the names of searches not yet answered are remembered for
 * GW_UPSEARCH_REMEMBER_SECONDS, at most GW_UPSEARCH_MAX of them (the
 * oldest go first), to turn an answer's id back into a name. Replies are
 * hostile input: parsed with the codec, unknown ids ignored.
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
#include <unistd.h>

#include <addrList.h>
#include <bucketLib.h>
#include <caProto.h>
#include <ellLib.h>
#include <epicsMutex.h>
#include <epicsThread.h>
#include <epicsTime.h>
#include <errlog.h>
#include <osiSock.h>

#include "gwCodec.h"
#include "gwUpstreamSearch.h"

#define GW_UPSEARCH_DATAGRAM 1024u
#define GW_UPSEARCH_MAX 65536u
#define GW_UPSEARCH_REMEMBER_SECONDS 10.0
#define GW_UPSEARCH_POLL_MS 1000
#define GW_UPSEARCH_RECEIVE 4096u

typedef struct gwUpSearchEntry {
    ELLNODE node;               /* in search->entries, oldest first */
    unsigned id;                /* bucketLib keeps a pointer to it */
    epicsTimeStamp sent;
    char name[1];               /* allocated to length */
} gwUpSearchEntry;

struct gwUpSearch {
    SOCKET sock;
    int wakePipe[2];
    epicsThreadId thread;
    unsigned short port;
    ELLLIST addresses;          /* osiSockAddrNode; const after create */
    gwUpSearchFound *found;
    void *arg;

    epicsMutexId lock;
    unsigned char out[GW_UPSEARCH_DATAGRAM]; /* the datagram being packed (lock) */
    size_t outLen;              /* 0: empty, else VERSION + searches (lock) */
    int woken;                  /* the thread was woken for outLen (lock) */
    int stopping;               /* (lock) */
    BUCKET *ids;                /* id -> gwUpSearchEntry (lock) */
    ELLLIST entries;            /* (lock) */
    unsigned nextId;            /* (lock) */
    size_t sent, answered;      /* (lock) */
};

/* Send the packed datagram to every address (lock held). */
static void flush(gwUpSearch *search)
{
    osiSockAddrNode *node;

    if (!search->outLen)
        return;
    for (node = (osiSockAddrNode *)ellFirst(&search->addresses); node;
         node = (osiSockAddrNode *)ellNext(&node->node))
        (void)sendto(search->sock, (const char *)search->out, (int)search->outLen, 0,
                     &node->addr.sa, sizeof node->addr.ia);
    search->outLen = 0;
}

static void forget(gwUpSearch *search, gwUpSearchEntry *entry)
{
    bucketRemoveItemUnsignedId(search->ids, &entry->id);
    ellDelete(&search->entries, &entry->node);
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
    size_t n;
    int wake = 0;

    if (!search || !ellCount(&search->addresses))
        return;
    entry = malloc(sizeof *entry + length);
    if (!entry)
        return;
    epicsTimeGetCurrent(&entry->sent);
    memcpy(entry->name, name, length + 1);
    epicsMutexMustLock(search->lock);
    do {
        entry->id = search->nextId++;
    } while (bucketLookupItemUnsignedId(search->ids, &entry->id));
    n = gwCodecBuildSearch(message, sizeof message, name, DONTREPLY,
                           (epicsUInt16)GW_CA_MINOR_VERSION, entry->id);
    if (search->stopping || n == 0
        || bucketAddItemUnsignedId(search->ids, &entry->id, entry) != 0) {
        epicsMutexUnlock(search->lock);
        free(entry);
        return;
    }
    if ((unsigned)ellCount(&search->entries) >= GW_UPSEARCH_MAX)
        forget(search, (gwUpSearchEntry *)ellFirst(&search->entries));
    ellAdd(&search->entries, &entry->node);
    if (search->outLen + n > sizeof search->out)
        flush(search);
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
    if (wake) {
        const char byte = 0;
        /* a full pipe already wakes the thread */
        (void)!write(search->wakePipe[1], &byte, 1);
    }
}

/* The answers in one datagram: each known id found once. */
static void handleReplies(gwUpSearch *search, const unsigned char *buf, size_t len)
{
    size_t offset = 0;

    while (offset < len) {
        gwCaMessage m;
        gwCaSearchReply reply;
        gwUpSearchEntry *entry;
        char name[GW_CA_NAME_MAX + 1];
        size_t used;
        unsigned id;

        if (gwCodecParseMessage(buf + offset, len - offset, len, &m, &used) != GW_CODEC_OK)
            return;
        offset += used;
        if (gwCodecDecodeSearchReply(&m, &reply) != GW_CODEC_OK)
            continue;
        id = reply.searchId;
        name[0] = '\0';
        epicsMutexMustLock(search->lock);
        entry = bucketLookupItemUnsignedId(search->ids, &id);
        if (entry) {
            strncpy(name, entry->name, sizeof name - 1);
            name[sizeof name - 1] = '\0';
            forget(search, entry);
            search->answered++;
        }
        epicsMutexUnlock(search->lock);
        if (name[0])
            search->found(search->arg, name);
    }
}

static void searchRun(void *arg)
{
    gwUpSearch *search = arg;
    unsigned char *buf = malloc(GW_UPSEARCH_RECEIVE);
    struct pollfd fds[2];

    if (!buf)
        return;
    fds[0].fd = search->sock;
    fds[0].events = POLLIN;
    fds[1].fd = search->wakePipe[0];
    fds[1].events = POLLIN;
    for (;;) {
        epicsTimeStamp now;
        int n, stopping;

        fds[0].revents = fds[1].revents = 0;
        n = poll(fds, 2, GW_UPSEARCH_POLL_MS);
        if (n < 0 && errno != EINTR)
            break;
        if (fds[1].revents) {
            char drain[64];
            (void)!read(search->wakePipe[0], drain, sizeof drain);
        }
        epicsTimeGetCurrent(&now);
        epicsMutexMustLock(search->lock);
        stopping = search->stopping;
        search->woken = 0;
        flush(search);
        forgetOld(search, &now);
        epicsMutexUnlock(search->lock);
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
    search->wakePipe[0] = search->wakePipe[1] = -1;
    search->port = port;
    search->found = found;
    search->arg = arg;
    ellInit(&search->addresses);
    ellInit(&search->entries);
    search->lock = epicsMutexCreate();
    search->ids = bucketCreate(1024);
    search->sock = epicsSocketCreate(AF_INET, SOCK_DGRAM, IPPROTO_UDP);
    if (!search->lock || !search->ids || search->sock == INVALID_SOCKET
        || pipe(search->wakePipe) != 0)
        goto fail;
    memset(&any, 0, sizeof any);
    any.sin_family = AF_INET;
    any.sin_addr.s_addr = htonl(INADDR_ANY);
    if (bind(search->sock, (struct sockaddr *)&any, sizeof any) != 0
        || setsockopt(search->sock, SOL_SOCKET, SO_BROADCAST, (char *)&yes, sizeof yes) != 0)
        goto fail;
    fcntl(search->sock, F_SETFL, fcntl(search->sock, F_GETFL) | O_NONBLOCK);
    fcntl(search->wakePipe[0], F_SETFL, fcntl(search->wakePipe[0], F_GETFL) | O_NONBLOCK);
    fcntl(search->wakePipe[1], F_SETFL, fcntl(search->wakePipe[1], F_GETFL) | O_NONBLOCK);
    fcntl(search->wakePipe[0], F_SETFD, FD_CLOEXEC);
    fcntl(search->wakePipe[1], F_SETFD, FD_CLOEXEC);
    configureChannelAccessAddressList(&search->addresses, search->sock, port);
    options.priority = epicsThreadPriorityMedium;
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
        const char byte = 0;
        epicsMutexMustLock(search->lock);
        search->stopping = 1;
        epicsMutexUnlock(search->lock);
        while (write(search->wakePipe[1], &byte, 1) < 0 && errno == EINTR)
            ;
        epicsThreadMustJoin(search->thread);
    }
    while ((entry = (gwUpSearchEntry *)ellFirst(&search->entries)) != NULL)
        forget(search, entry);
    ellFree(&search->addresses);
    if (search->ids)
        bucketFree(search->ids);
    if (search->sock != INVALID_SOCKET)
        epicsSocketDestroy(search->sock);
    if (search->wakePipe[0] >= 0)
        close(search->wakePipe[0]);
    if (search->wakePipe[1] >= 0)
        close(search->wakePipe[1]);
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
