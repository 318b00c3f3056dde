/* gwBeaconWatch.c - notice upstream IOCs that start: listen to the beacons
 * the CA repeater forwards and report a server that is new or restarted.
 *
 * libca learns of a restarted IOC from its beacons too, but a channel whose
 * IOC went away waits for libca's disconnect governor (a 10 s tick) and
 * then backs off its searches, so a PV can stay disconnected for seconds
 * after its IOC is back. The upstream provider uses this watch to search
 * again at once for its disconnected PVs when an IOC starts.
 *
 * Like a libca context, the watch registers a UDP socket with the CA
 * repeater on 127.0.0.1 (EPICS_CA_REPEATER_PORT): REPEATER_REGISTER, again
 * every GW_WATCH_REGISTER_SECONDS (a restarted repeater forgets its
 * clients). The repeater forwards every beacon (RSRV_IS_UP: server port
 * in count, sequence number in parameter 1, server address in parameter
 * 2). A server whose beacon was not seen before, or whose sequence number
 * went back (a restart begins at 0), is reported through the callback.
 * Datagrams are hostile input: only whole 16-byte headers are read.
 *
 * Threads: one thread of its own ("gwBeaconWatch") receives and calls the
 * callback; start/stop from the provider's creator. No lock: the table of
 * servers belongs to the thread.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <epicsTypes.h>
#include <caProto.h>
#include <envDefs.h>
#include <epicsThread.h>
#include <epicsTime.h>
#include <osiSock.h>

#include "gwBeaconWatch.h"
#include "gwLog.h"
#include "gwOsd.h"
#include "gwWakePipe.h"

#define GW_WATCH_SERVERS_MAX 4096u
#define GW_WATCH_REGISTER_SECONDS 30.0
#define GW_WATCH_POLL_MS 1000

typedef struct gwWatchedServer {
    epicsUInt32 address;     /* network order */
    epicsUInt16 port;
    epicsUInt32 sequence;
} gwWatchedServer;

struct gwBeaconWatch {
    SOCKET sock;
    gwWakePipe wake;
    epicsThreadId thread;
    unsigned short repeaterPort;
    gwBeaconWatchFunc *func;
    void *arg;
    gwWatchedServer *servers;
    unsigned nServers;
};

static void registerWithRepeater(gwBeaconWatch *watch)
{
    caHdr message;
    struct sockaddr_in to;

    memset(&message, 0, sizeof message);
    message.m_cmmd = htons(REPEATER_REGISTER);
    message.m_available = htonl(INADDR_LOOPBACK);
    memset(&to, 0, sizeof to);
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons(watch->repeaterPort);
    /* No repeater yet is normal: libca starts one; the next try reaches it. */
    (void)sendto(watch->sock, (const char *)&message, sizeof message, 0,
                 (const struct sockaddr *)&to, sizeof to);
}

/* 1 when this beacon shows a server that is new or restarted. */
static int serverStarted(gwBeaconWatch *watch, epicsUInt32 address, epicsUInt16 port,
                         epicsUInt32 sequence)
{
    unsigned i;

    for (i = 0; i < watch->nServers; i++) {
        gwWatchedServer *s = &watch->servers[i];
        if (s->address == address && s->port == port) {
            int restarted = sequence < s->sequence;
            s->sequence = sequence;
            return restarted;
        }
    }
    if (watch->nServers == GW_WATCH_SERVERS_MAX)
        watch->nServers = 0;    /* forget them all: each counts as new once */
    watch->servers[watch->nServers].address = address;
    watch->servers[watch->nServers].port = port;
    watch->servers[watch->nServers].sequence = sequence;
    watch->nServers++;
    return 1;
}

static void handleDatagram(gwBeaconWatch *watch, const unsigned char *buf, size_t size)
{
    size_t offset;
    int started = 0;

    for (offset = 0; offset + sizeof(caHdr) <= size; offset += sizeof(caHdr)) {
        caHdr h;

        memcpy(&h, buf + offset, sizeof h);
        if (ntohs(h.m_cmmd) == CA_PROTO_RSRV_IS_UP && ntohs(h.m_postsize) == 0
            && serverStarted(watch, h.m_available, ntohs(h.m_count), ntohl(h.m_cid)))
            started = 1;
        if (ntohs(h.m_postsize) != 0)
            break;  /* only bare headers come from the repeater */
    }
    if (started)
        watch->func(watch->arg);
}

static void watchRun(void *arg)
{
    gwBeaconWatch *watch = arg;
    unsigned char buf[1024];
    epicsTimeStamp registered;
    gwOsdPollFd fds[2];

    registerWithRepeater(watch);
    epicsTimeGetCurrent(&registered);
    fds[0].fd = watch->sock;
    fds[0].events = GW_OSD_IN;
    fds[1].fd = watch->wake.read;
    fds[1].events = GW_OSD_IN;
    for (;;) {
        epicsTimeStamp now;
        int n;

        fds[0].revents = fds[1].revents = 0;
        n = gwOsdPoll(fds, 2, GW_WATCH_POLL_MS);
        if (n < 0 && errno != EINTR)
            break;
        if (fds[1].revents)
            break;
        if (n > 0 && (fds[0].revents & GW_OSD_IN)) {
            int got;
            while ((got = recv(watch->sock, (char *)buf, sizeof buf, 0)) > 0)
                handleDatagram(watch, buf, (size_t)got);
        }
        epicsTimeGetCurrent(&now);
        if (epicsTimeDiffInSeconds(&now, &registered) >= GW_WATCH_REGISTER_SECONDS) {
            registerWithRepeater(watch);
            registered = now;
        }
    }
}

gwBeaconWatch *gwBeaconWatchStart(gwBeaconWatchFunc *func, void *arg)
{
    gwBeaconWatch *watch = calloc(1, sizeof *watch);
    struct sockaddr_in any;
    epicsThreadOpts options = EPICS_THREAD_OPTS_INIT;

    if (!watch)
        return NULL;
    watch->sock = INVALID_SOCKET;
    watch->wake = GW_WAKE_PIPE_CLOSED;
    watch->func = func;
    watch->arg = arg;
    watch->repeaterPort = envGetInetPortConfigParam(&EPICS_CA_REPEATER_PORT,
                                                    (unsigned short)CA_REPEATER_PORT);
    watch->servers = calloc(GW_WATCH_SERVERS_MAX, sizeof *watch->servers);
    watch->sock = epicsSocketCreate(AF_INET, SOCK_DGRAM, IPPROTO_UDP);
    if (!watch->servers || watch->sock == INVALID_SOCKET || gwWakePipeOpen(&watch->wake) != 0)
        goto fail;
    memset(&any, 0, sizeof any);
    any.sin_family = AF_INET;
    any.sin_addr.s_addr = htonl(INADDR_ANY);
    any.sin_port = 0;
    if (bind(watch->sock, (struct sockaddr *)&any, sizeof any) != 0)
        goto fail;
    {
        osiSockIoctl_t yes = 1;
        socket_ioctl(watch->sock, FIONBIO, &yes);
    }
    options.priority = epicsThreadPriorityLow;
    options.stackSize = epicsThreadGetStackSize(epicsThreadStackSmall);
    options.joinable = 1;
    watch->thread = epicsThreadCreateOpt("gwBeaconWatch", watchRun, watch, &options);
    if (!watch->thread)
        goto fail;
    return watch;

fail:
    gwLog(GW_LOG_UPSTREAM, GW_LOG_WARNING,
          "cannot watch upstream beacons; reconnects wait for libca");
    gwBeaconWatchStop(watch);
    return NULL;
}

void gwBeaconWatchStop(gwBeaconWatch *watch)
{
    if (!watch)
        return;
    if (watch->thread) {
        gwWakePipeSignal(&watch->wake);
        epicsThreadMustJoin(watch->thread);
    }
    if (watch->sock != INVALID_SOCKET)
        epicsSocketDestroy(watch->sock);
    gwWakePipeClose(&watch->wake);
    free(watch->servers);
    free(watch);
}
