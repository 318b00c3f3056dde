/* gwIoLoopTest.c - gwIoLoop.c's tasks: gwIoLoopPostSoon gathers work
 * posted in many pieces into one run, a later gwIoLoopPost runs it at
 * once, gwIoLoopUnpost takes it back (also from the round being run),
 * quiet posts run after gwIoLoopWake, and a stopping loop runs what is
 * still waiting. The loop thread is held busy by a blocking task while the
 * posts are made, so what runs when does not depend on timing.
 *
 * No sockets (the loop's wake-up is a pipe): runs anywhere.
 */
#include <stdlib.h>

#include <epicsEvent.h>
#include <epicsMutex.h>
#include <epicsThread.h>
#include <epicsUnitTest.h>
#include <testMain.h>

#include "gwIoLoop.h"

#define WAIT_SECONDS 5.0
/* Long against the soon delay (about a millisecond): a task that would
 * run has run by then. */
#define SETTLE_SECONDS 0.05

typedef struct counter {
    gwIoTask task;
    epicsMutexId lock;
    epicsEventId ran;
    unsigned runs;
} counter;

static void countRun(void *arg)
{
    counter *c = arg;

    epicsMutexMustLock(c->lock);
    c->runs++;
    epicsMutexUnlock(c->lock);
    epicsEventSignal(c->ran);
}

static unsigned runsOf(counter *c)
{
    unsigned n;

    epicsMutexMustLock(c->lock);
    n = c->runs;
    epicsMutexUnlock(c->lock);
    return n;
}

static void counterInit(counter *c)
{
    gwIoTaskInit(&c->task, countRun, c);
    c->lock = epicsMutexMustCreate();
    c->ran = epicsEventMustCreate(epicsEventEmpty);
    c->runs = 0;
}

static void counterClear(counter *c)
{
    epicsMutexDestroy(c->lock);
    epicsEventDestroy(c->ran);
}

/* A task that keeps the loop thread until released. */
typedef struct blocker {
    gwIoTask task;
    epicsEventId started, release;
} blocker;

static void blockRun(void *arg)
{
    blocker *b = arg;

    epicsEventSignal(b->started);
    epicsEventMustWait(b->release);
}

static void block(gwIoLoop *loop, blocker *b)
{
    gwIoLoopPost(loop, &b->task);
    epicsEventMustWait(b->started);
}

/* A task that takes another back (as a circuit closing in one of its tasks
 * takes back its others, which may wait in the same round). */
typedef struct unposter {
    gwIoTask task;
    gwIoLoop *loop;
    gwIoTask *victim;
} unposter;

static void unpostRun(void *arg)
{
    unposter *u = arg;

    gwIoLoopUnpost(u->loop, u->victim);
}

MAIN(gwIoLoopTest)
{
    gwIoLoop *loop;
    blocker b;
    counter c;
    unsigned i;

    (void)argc;
    (void)argv;
    testPlan(11);
    gwIoTaskInit(&b.task, blockRun, &b);
    b.started = epicsEventMustCreate(epicsEventEmpty);
    b.release = epicsEventMustCreate(epicsEventEmpty);
    counterInit(&c);
    loop = gwIoLoopCreate("gwIoLoopTest", NULL, NULL);
    testOk1(loop != NULL);
    if (!loop)
        return testDone();

    testDiag("a task posted for soon runs");
    gwIoLoopPostSoon(loop, &c.task);
    epicsEventWaitWithTimeout(c.ran, WAIT_SECONDS);
    testOk(runsOf(&c) == 1, "it ran (%u times)", runsOf(&c));

    testDiag("twenty posts for soon while the loop is busy: one run");
    block(loop, &b);
    for (i = 0; i < 20; i++)
        gwIoLoopPostSoon(loop, &c.task);
    epicsEventSignal(b.release);
    epicsEventWaitWithTimeout(c.ran, WAIT_SECONDS);
    epicsThreadSleep(SETTLE_SECONDS);
    testOk(runsOf(&c) == 2, "one more run (%u in all)", runsOf(&c));

    testDiag("posted for soon, then posted: it runs, once");
    block(loop, &b);
    gwIoLoopPostSoon(loop, &c.task);
    gwIoLoopPost(loop, &c.task);
    epicsEventSignal(b.release);
    epicsEventWaitWithTimeout(c.ran, WAIT_SECONDS);
    epicsThreadSleep(SETTLE_SECONDS);
    testOk(runsOf(&c) == 3, "one more run (%u in all)", runsOf(&c));

    testDiag("posted for soon, then taken back: it does not run");
    block(loop, &b);
    gwIoLoopPostSoon(loop, &c.task);
    gwIoLoopUnpost(loop, &c.task);
    epicsEventSignal(b.release);
    epicsThreadSleep(SETTLE_SECONDS);
    testOk(runsOf(&c) == 3, "no run (%u in all)", runsOf(&c));
    gwIoLoopPostSoon(loop, &c.task);
    epicsEventWaitWithTimeout(c.ran, WAIT_SECONDS);
    testOk(runsOf(&c) == 4, "posted again, it runs (%u in all)", runsOf(&c));

    testDiag("a task takes back another of the same round: it does not run");
    {
        unposter u;

        gwIoTaskInit(&u.task, unpostRun, &u);
        u.loop = loop;
        u.victim = &c.task;
        block(loop, &b);
        gwIoLoopPost(loop, &u.task);
        gwIoLoopPost(loop, &c.task);
        epicsEventSignal(b.release);
        epicsThreadSleep(SETTLE_SECONDS);
        testOk(runsOf(&c) == 4, "no run (%u in all)", runsOf(&c));
        gwIoLoopPost(loop, &c.task);
        gwIoLoopPost(loop, &u.task);    /* after: nothing to take back */
        epicsEventWaitWithTimeout(c.ran, WAIT_SECONDS);
        epicsThreadSleep(SETTLE_SECONDS);
        testOk(runsOf(&c) == 5, "posted again, it runs: the lists are whole (%u in all)",
               runsOf(&c));
    }

    testDiag("a quiet post to an idle loop runs after the wake");
    gwIoLoopPostQuiet(loop, &c.task);
    gwIoLoopWake(loop);
    epicsEventWaitWithTimeout(c.ran, WAIT_SECONDS);
    testOk(runsOf(&c) == 6, "it ran (%u in all)", runsOf(&c));

    testDiag("twenty quiet posts while the loop is busy, one wake: one run");
    block(loop, &b);
    for (i = 0; i < 20; i++)
        gwIoLoopPostQuiet(loop, &c.task);
    gwIoLoopWake(loop);
    epicsEventSignal(b.release);
    epicsEventWaitWithTimeout(c.ran, WAIT_SECONDS);
    epicsThreadSleep(SETTLE_SECONDS);
    testOk(runsOf(&c) == 7, "one more run (%u in all)", runsOf(&c));

    testDiag("a stopping loop runs what waits for soon");
    block(loop, &b);
    gwIoLoopPostSoon(loop, &c.task);
    epicsEventSignal(b.release);
    gwIoLoopStop(loop, NULL, NULL);
    testOk(runsOf(&c) == 8, "it ran before the loop ended (%u in all)", runsOf(&c));

    counterClear(&c);
    epicsEventDestroy(b.started);
    epicsEventDestroy(b.release);
    return testDone();
}
