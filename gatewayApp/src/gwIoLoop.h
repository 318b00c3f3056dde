/* gwIoLoop.h - poll-based I/O threads: each loop owns many sockets.
 *
 * A loop is one thread running poll() over the sockets watched on it. The
 * server has a small fixed number of loops; circuits are spread over them.
 *
 * Threads: gwIoLoopWatch/Modify/Unwatch only on the loop's own thread (or
 * from a task running there). gwIoLoopPost from any thread. Create/Stop
 * from the thread that owns the loop object (server start/stop).
 */
#ifndef INC_gwIoLoop_H
#define INC_gwIoLoop_H

#include <ellLib.h>
#include <osiSock.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gwIoLoop gwIoLoop;

/* Readiness bits of gwIoLoopWatch/Modify and of a handler's events. */
#define GW_IO_READ  1
#define GW_IO_WRITE 2
#define GW_IO_ERROR 4   /* error or hang-up (handler only) */

/* Called on the loop thread when fd is ready, with GW_IO_* bits. */
typedef void gwIoHandler(void *arg, short revents);

/* A piece of work to run on a loop thread, posted from any thread. A task
 * that is already queued is not queued twice (posts coalesce). Embed it in
 * the object it works on; initialise with gwIoTaskInit. */
typedef struct gwIoTask {
    ELLNODE node;
    void (*run)(void *arg);
    void *arg;
    int queued;     /* which of the loop's lists it is in (gwIoLoop.c);
                       guarded by the loop's lock */
} gwIoTask;

void gwIoTaskInit(gwIoTask *task, void (*run)(void *arg), void *arg);

/* Start a loop thread. tick (may be NULL) runs on the loop about once a
 * second. NULL on failure. */
gwIoLoop *gwIoLoopCreate(const char *name, void (*tick)(void *arg), void *tickArg);

/* Run task on the loop's thread soon. Any thread. */
void gwIoLoopPost(gwIoLoop *loop, gwIoTask *task);
/* The same, for work that arrives in many small pieces from another
 * thread (e.g. one per upstream connection): the task runs within about
 * a millisecond, with whatever else was posted meanwhile, so the loop
 * wakes once for many. A later gwIoLoopPost of the task runs it at once. */
void gwIoLoopPostSoon(gwIoLoop *loop, gwIoTask *task);
/* Post without waking the loop, for a run of posts from one thread to a
 * few loops: gwIoLoopWake each loop after the run, so that a loop that
 * would wake at the first post (at once, under SCHED_FIFO) finds them all
 * and wakes once. Any thread. */
void gwIoLoopPostQuiet(gwIoLoop *loop, gwIoTask *task);
void gwIoLoopWake(gwIoLoop *loop);
/* Forget task if it is queued and has not started. Any thread. */
void gwIoLoopUnpost(gwIoLoop *loop, gwIoTask *task);

/* Watch fd for GW_IO_READ / GW_IO_WRITE. Loop thread only. 0 or -1. */
int gwIoLoopWatch(gwIoLoop *loop, SOCKET fd, short events,
                  gwIoHandler *handler, void *arg);
void gwIoLoopModify(gwIoLoop *loop, SOCKET fd, short events);
void gwIoLoopUnwatch(gwIoLoop *loop, SOCKET fd);

/* True when called on this loop's thread. */
int gwIoLoopIsSelf(const gwIoLoop *loop);

/* How often the loop has polled so far (any thread; statistics). */
size_t gwIoLoopPasses(gwIoLoop *loop);

/* Ask the loop to finish: stopTask (may be NULL) runs on the loop thread
 * first (it closes what the loop owns), then the thread exits. Waits for
 * the exit and frees the loop. Not from the loop thread itself. */
void gwIoLoopStop(gwIoLoop *loop, void (*stopTask)(void *arg), void *arg);

#ifdef __cplusplus
}
#endif

#endif /* INC_gwIoLoop_H */
