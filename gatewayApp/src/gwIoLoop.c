/* gwIoLoop.c - poll-based I/O threads (the platform's wait, gwOsd.h, and a
 * self-pipe, gwWakePipe.h, for wake-ups).
 *
 * Owns: one thread per loop, its poll set, its queue of posted tasks.
 * Threads: the loop thread runs handlers, tasks and the tick; any thread
 * may post tasks.
 * Locks: loop->lock guards the task queue, the `queued` flags and the
 * wakePending, stopping and sleeping flags; it
 * is innermost (taken while a circuit lock is held) and never held while
 * running a handler or a task.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <epicsAtomic.h>
#include <epicsEvent.h>
#include <epicsMutex.h>
#include <epicsThread.h>
#include <epicsTime.h>

#include "gwIoLoop.h"
#include "gwLog.h"
#include "gwOsd.h"
#include "gwWakePipe.h"

/* How long a task posted for soon may wait for others to run with it. */
#define GW_IO_SOON_SECONDS 0.001

/* gwIoTask.queued: where the task waits. */
enum {
    GW_IO_TASK_IDLE = 0,     /* in no list */
    GW_IO_TASK_QUEUED,       /* loop->tasks */
    GW_IO_TASK_SOON,         /* loop->soonTasks */
    GW_IO_TASK_RUNNING       /* loop->running: runs in this round */
};

typedef struct gwIoWatch {
    SOCKET fd;
    short events;
    gwIoHandler *handler;
    void *arg;
} gwIoWatch;

struct gwIoLoop {
    char name[32];
    EpicsAtomicPtrT thread;  /* epicsThreadId, atomic: the loop thread sets it
                              * first thing (gwIoLoopIsSelf on any thread) */
    epicsMutexId lock;
    ELLLIST tasks;           /* gwIoTask, guarded by lock */
    ELLLIST soonTasks;       /* gwIoTask posted with PostSoon (lock) */
    ELLLIST running;         /* taken by runTasks, not started (lock) */
    int soonArmed;           /* soonTasks run at soonDue (lock) */
    epicsTimeStamp soonDue;  /* (lock) */
    gwWakePipe wake;
    int wakePending;         /* a byte is in the pipe; guarded by lock */
    int sleeping;            /* the thread is in (or about to enter) a
                              * waiting poll(); guarded by lock */
    int stopping;            /* guarded by lock */
    void (*stopTask)(void *);
    void *stopArg;
    epicsEventId exited;
    void (*tick)(void *);
    void *tickArg;
    size_t passes;           /* atomic: poll() calls made (statistics) */
    /* loop thread only: */
    gwIoWatch *watches;
    size_t nWatches, capWatches;
    gwOsdPollFd *pollSet;
    size_t capPollSet;
};

void gwIoTaskInit(gwIoTask *task, void (*run)(void *arg), void *arg)
{
    memset(task, 0, sizeof *task);
    task->run = run;
    task->arg = arg;
}

/* Make the loop thread look at its tasks (loop->lock held). A loop that
 * is not sleeping checks them before it polls again: no pipe write. */
static void wake(gwIoLoop *loop)
{
    if (loop->sleeping && !loop->wakePending) {
        gwWakePipeSignal(&loop->wake);
        loop->wakePending = 1;
    }
}

/* The list a task is queued in (lock held); NULL when it is in none. */
static ELLLIST *queueOf(gwIoLoop *loop, const gwIoTask *task)
{
    switch (task->queued) {
    case GW_IO_TASK_QUEUED:  return &loop->tasks;
    case GW_IO_TASK_SOON:    return &loop->soonTasks;
    case GW_IO_TASK_RUNNING: return &loop->running;
    default:                 return NULL;
    }
}

/* Queue a task to run now (lock held): 1 if it was not queued yet. */
static int queueNow(gwIoLoop *loop, gwIoTask *task)
{
    if (task->queued == GW_IO_TASK_SOON) {
        ellDelete(&loop->soonTasks, &task->node);   /* now, not soon */
        task->queued = GW_IO_TASK_IDLE;
    }
    if (task->queued != GW_IO_TASK_IDLE)
        return 0;
    task->queued = GW_IO_TASK_QUEUED;
    ellAdd(&loop->tasks, &task->node);
    return 1;
}

void gwIoLoopPost(gwIoLoop *loop, gwIoTask *task)
{
    epicsMutexMustLock(loop->lock);
    if (queueNow(loop, task))
        wake(loop);
    epicsMutexUnlock(loop->lock);
}

void gwIoLoopPostQuiet(gwIoLoop *loop, gwIoTask *task)
{
    epicsMutexMustLock(loop->lock);
    queueNow(loop, task);
    epicsMutexUnlock(loop->lock);
}

void gwIoLoopWake(gwIoLoop *loop)
{
    epicsMutexMustLock(loop->lock);
    if (ellCount(&loop->tasks))
        wake(loop);
    epicsMutexUnlock(loop->lock);
}

void gwIoLoopPostSoon(gwIoLoop *loop, gwIoTask *task)
{
    epicsMutexMustLock(loop->lock);
    if (task->queued == GW_IO_TASK_IDLE) {
        task->queued = GW_IO_TASK_SOON;
        ellAdd(&loop->soonTasks, &task->node);
        if (!loop->soonArmed) {
            loop->soonArmed = 1;
            epicsTimeGetCurrent(&loop->soonDue);
            epicsTimeAddSeconds(&loop->soonDue, GW_IO_SOON_SECONDS);
            wake(loop); /* a sleeping loop learns when to wake */
        }
    }
    epicsMutexUnlock(loop->lock);
}

void gwIoLoopUnpost(gwIoLoop *loop, gwIoTask *task)
{
    ELLLIST *queue;

    epicsMutexMustLock(loop->lock);
    queue = queueOf(loop, task);
    if (queue)
        ellDelete(queue, &task->node);
    task->queued = GW_IO_TASK_IDLE;
    epicsMutexUnlock(loop->lock);
}

static gwIoWatch *findWatch(gwIoLoop *loop, SOCKET fd)
{
    size_t i;

    for (i = 0; i < loop->nWatches; i++)
        if (loop->watches[i].fd == fd)
            return &loop->watches[i];
    return NULL;
}

int gwIoLoopWatch(gwIoLoop *loop, SOCKET fd, short events,
                  gwIoHandler *handler, void *arg)
{
    gwIoWatch *w;

    if (loop->nWatches == loop->capWatches) {
        size_t cap = loop->capWatches ? 2 * loop->capWatches : 16;
        gwIoWatch *more = realloc(loop->watches, cap * sizeof *more);
        if (!more)
            return -1;
        loop->watches = more;
        loop->capWatches = cap;
    }
    w = &loop->watches[loop->nWatches++];
    w->fd = fd;
    w->events = events;
    w->handler = handler;
    w->arg = arg;
    return 0;
}

void gwIoLoopModify(gwIoLoop *loop, SOCKET fd, short events)
{
    gwIoWatch *w = findWatch(loop, fd);

    if (w)
        w->events = events;
}

void gwIoLoopUnwatch(gwIoLoop *loop, SOCKET fd)
{
    gwIoWatch *w = findWatch(loop, fd);

    if (w) {
        /* keep the order: later watches move down one */
        size_t index = (size_t)(w - loop->watches);
        memmove(w, w + 1, (loop->nWatches - index - 1) * sizeof *w);
        loop->nWatches--;
    }
}

int gwIoLoopIsSelf(const gwIoLoop *loop)
{
    return (EpicsAtomicPtrT)epicsThreadGetIdSelf() == epicsAtomicGetPtrT(&loop->thread);
}

/* Move a list's tasks to the running list (lock held). */
static void takeForRunning(gwIoLoop *loop, ELLLIST *from)
{
    gwIoTask *task;

    while ((task = (gwIoTask *)ellGet(from)) != NULL) {
        task->queued = GW_IO_TASK_RUNNING;
        ellAdd(&loop->running, &task->node);
    }
}

/* Run the tasks queued now (not those they post: those run next round),
 * and the ones posted for soon when their time has come (or `all`). They
 * wait in loop->running, where gwIoLoopUnpost can still take them out
 * (a task may close a circuit whose other tasks are waiting there). */
static void runTasks(gwIoLoop *loop, int all)
{
    gwIoTask *task;
    epicsTimeStamp now;

    epicsMutexMustLock(loop->lock);
    takeForRunning(loop, &loop->tasks);
    if (loop->soonArmed) {
        epicsTimeGetCurrent(&now);
        if (all || epicsTimeDiffInSeconds(&now, &loop->soonDue) >= 0) {
            takeForRunning(loop, &loop->soonTasks);
            loop->soonArmed = 0;
        }
    }
    if (loop->wakePending) {
        gwWakePipeDrain(&loop->wake);
        loop->wakePending = 0;
    }
    epicsMutexUnlock(loop->lock);

    for (;;) {
        epicsMutexMustLock(loop->lock);
        task = (gwIoTask *)ellGet(&loop->running);
        if (task)
            task->queued = GW_IO_TASK_IDLE;
        epicsMutexUnlock(loop->lock);
        if (!task)
            break;
        task->run(task->arg);
    }
}

static short toPoll(short events)
{
    return (short)(((events & GW_IO_READ) ? GW_OSD_IN : 0) | ((events & GW_IO_WRITE) ? GW_OSD_OUT : 0));
}

static short fromPoll(short revents)
{
    return (short)(((revents & GW_OSD_IN) ? GW_IO_READ : 0) | ((revents & GW_OSD_OUT) ? GW_IO_WRITE : 0) |
                   ((revents & (GW_OSD_FAILED)) ? GW_IO_ERROR : 0));
}

static int buildPollSet(gwIoLoop *loop)
{
    size_t i, n = loop->nWatches + 1;

    if (n > loop->capPollSet) {
        gwOsdPollFd *more = realloc(loop->pollSet, n * sizeof *more);
        if (!more)
            return -1;
        loop->pollSet = more;
        loop->capPollSet = n;
    }
    loop->pollSet[0].fd = loop->wake.read;
    loop->pollSet[0].events = GW_OSD_IN;
    for (i = 0; i < loop->nWatches; i++) {
        loop->pollSet[i + 1].fd = loop->watches[i].fd;
        loop->pollSet[i + 1].events = toPoll(loop->watches[i].events);
        loop->pollSet[i + 1].revents = 0;
    }
    return (int)n;
}

/* Dispatch ready sockets. A handler may unwatch any fd, so look each one
 * up again before calling it. */
static void dispatch(gwIoLoop *loop, int n)
{
    int i;

    for (i = 1; i < n; i++) {
        short revents = loop->pollSet[i].revents;
        gwIoWatch *w;
        if (!revents)
            continue;
        w = findWatch(loop, loop->pollSet[i].fd);
        if (w)
            w->handler(w->arg, fromPoll(revents));
    }
}

static int isStopping(gwIoLoop *loop)
{
    int stopping;

    epicsMutexMustLock(loop->lock);
    stopping = loop->stopping;
    epicsMutexUnlock(loop->lock);
    return stopping;
}

/* The poll() timeout in ms: 0 when tasks are queued (posted while the loop
 * was awake, without a wake-up byte), else until the tasks for soon are
 * due, else up to the next tick. From here to the end of poll() the loop
 * counts as sleeping. */
static int pollTimeout(gwIoLoop *loop)
{
    int timeout;

    epicsMutexMustLock(loop->lock);
    timeout = ellCount(&loop->tasks) || loop->stopping ? 0 : 1000;
    if (timeout && loop->soonArmed) {
        epicsTimeStamp now;
        double left;
        epicsTimeGetCurrent(&now);
        left = epicsTimeDiffInSeconds(&loop->soonDue, &now);
        timeout = left <= 0 ? 0 : (int)(left * 1000.0) + 1;
    }
    loop->sleeping = timeout != 0;
    epicsMutexUnlock(loop->lock);
    return timeout;
}

static void awake(gwIoLoop *loop)
{
    epicsMutexMustLock(loop->lock);
    loop->sleeping = 0;
    epicsMutexUnlock(loop->lock);
}

static void loopThread(void *arg)
{
    gwIoLoop *loop = arg;
    epicsTimeStamp lastTick;

    epicsAtomicSetPtrT(&loop->thread, (EpicsAtomicPtrT)epicsThreadGetIdSelf());
    epicsTimeGetCurrent(&lastTick);
    while (!isStopping(loop)) {
        epicsTimeStamp now;
        int n = buildPollSet(loop);
        if (n < 0) {
            gwLog(GW_LOG_SERVER, GW_LOG_ERROR, "%s: out of memory for the poll set", loop->name);
            epicsThreadSleep(1.0);
            continue;
        }
        epicsAtomicIncrSizeT(&loop->passes);
        if (gwOsdPoll(loop->pollSet, n, pollTimeout(loop)) < 0 && errno != EINTR) {
            gwLog(GW_LOG_SERVER, GW_LOG_ERROR, "%s: poll failed: %s", loop->name, strerror(errno));
            epicsThreadSleep(0.1);
        }
        awake(loop);
        if (n > 0 && loop->pollSet[0].revents)
            runTasks(loop, 0);
        dispatch(loop, n);
        runTasks(loop, 0);
        epicsTimeGetCurrent(&now);
        if (loop->tick && epicsTimeDiffInSeconds(&now, &lastTick) >= 1.0) {
            lastTick = now;
            loop->tick(loop->tickArg);
        }
    }
    if (loop->stopTask)
        loop->stopTask(loop->stopArg);
    runTasks(loop, 1);
    epicsEventSignal(loop->exited);
}

static void destroy(gwIoLoop *loop)
{
    gwWakePipeClose(&loop->wake);
    if (loop->lock)
        epicsMutexDestroy(loop->lock);
    if (loop->exited)
        epicsEventDestroy(loop->exited);
    free(loop->watches);
    free(loop->pollSet);
    free(loop);
}

gwIoLoop *gwIoLoopCreate(const char *name, void (*tick)(void *arg), void *tickArg)
{
    gwIoLoop *loop = calloc(1, sizeof *loop);

    if (!loop)
        return NULL;
    loop->wake = GW_WAKE_PIPE_CLOSED;
    strncpy(loop->name, name, sizeof loop->name - 1);
    loop->tick = tick;
    loop->tickArg = tickArg;
    ellInit(&loop->tasks);
    ellInit(&loop->soonTasks);
    ellInit(&loop->running);
    loop->lock = epicsMutexCreate();
    loop->exited = epicsEventCreate(epicsEventEmpty);
    if (!loop->lock || !loop->exited || gwWakePipeOpen(&loop->wake) != 0) {
        destroy(loop);
        return NULL;
    }
    if (!epicsThreadCreate(loop->name, epicsThreadPriorityCAServerLow,
                           epicsThreadGetStackSize(epicsThreadStackMedium), loopThread, loop)) {
        destroy(loop);
        return NULL;
    }
    return loop;
}

void gwIoLoopStop(gwIoLoop *loop, void (*stopTask)(void *arg), void *arg)
{
    epicsMutexMustLock(loop->lock);
    loop->stopTask = stopTask;
    loop->stopArg = arg;
    loop->stopping = 1;
    wake(loop);
    epicsMutexUnlock(loop->lock);
    epicsEventMustWait(loop->exited);
    destroy(loop);
}

size_t gwIoLoopPasses(gwIoLoop *loop)
{
    return epicsAtomicGetSizeT(&loop->passes);
}
