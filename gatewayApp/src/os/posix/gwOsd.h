/* gwOsd.h - what the gateway needs of the platform beyond libCom (POSIX).
 *
 * Waiting on several sockets at once (poll), sending on a socket whose
 * peer has gone without a SIGPIPE, and whether a thread runs under a
 * real-time scheduling policy. Base's build finds this file in
 * os/posix/ for every POSIX target; a port to another platform supplies its
 * own os/<class>/gwOsd.h (and gwWakePipe.c) with the same names.
 */
#ifndef INC_gwOsd_H
#define INC_gwOsd_H

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>

/* One entry of a wait set: fd, the events asked (GW_OSD_IN/OUT) and the
 * events that came (revents, with GW_OSD_FAILED for errors and hang-ups). */
typedef struct pollfd gwOsdPollFd;

#define GW_OSD_IN     POLLIN
#define GW_OSD_OUT    POLLOUT
#define GW_OSD_FAILED (POLLERR | POLLHUP | POLLNVAL)
#define GW_OSD_CLOSED POLLNVAL   /* the fd was closed (a stop request) */

/* Wait up to timeoutMs (-1: for ever) for the events of n entries; the
 * number ready, 0 on time-out, -1 with errno set (EINTR: try again). */
static inline int gwOsdPoll(gwOsdPollFd *fds, unsigned n, int timeoutMs)
{
    return poll(fds, (nfds_t)n, timeoutMs);
}

/* Flags for send(): no SIGPIPE when the peer has closed. */
#define GW_OSD_SEND_FLAGS MSG_NOSIGNAL

/* Does the calling thread run under a real-time policy (SCHED_FIFO or
 * SCHED_RR, as Base's threads do in an IOC with the rights for them)? */
static inline int gwOsdThreadRealTime(void)
{
    struct sched_param param;
    int policy;

    if (pthread_getschedparam(pthread_self(), &policy, &param) != 0)
        return 0;
    return policy == SCHED_FIFO || policy == SCHED_RR;
}

#endif /* INC_gwOsd_H */
