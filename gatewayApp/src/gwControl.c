/* gwControl.c - the control thread: actions asked for by flag records,
 * iocsh and signals, run one at a time (gwControl.h).
 *
 * Wake-ups: a POSIX semaphore, because sem_post is one of the few calls
 * a signal handler may make. Signals: blocked in the thread that asks for
 * them (and in every EPICS thread, which Base starts with signals
 * blocked), taken by a thread of their own with sigwait; a handler stays
 * installed for a thread that does not block them. Either sets a bit of
 * `signals` (atomic), which the control thread turns into actions. Requests come through a
 * list under control->lock. The thread starts with the first request or
 * gwControlCatchSignals, and runs until gwControlDestroy.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <epicsAtomic.h>
#include <epicsExit.h>
#include <epicsMutex.h>
#include <epicsThread.h>
#include <errlog.h>

#include "gwControl.h"
#include "gwGateway.h"
#include "gwLog.h"

static const char *const flagNames[GW_CONTROL_ACTIONS] = {
    "commandFlag", "report1Flag", "report2Flag", "report3Flag", "newAsFlag",
    "quitFlag", "quitServerFlag",
};

enum { GW_SIGNAL_USR1 = 1, GW_SIGNAL_USR2 = 2, GW_SIGNAL_END = 4 };

struct gwControl {
    struct gwGateway *gateway;  /* const */
    epicsMutexId lock;
    ELLLIST queue;              /* gwControlRequest            (lock) */
    int started, stopping;      /*                             (lock) */
    sem_t wake;
    int signals;                /* atomic: GW_SIGNAL_* seen */
    epicsEventId exited;
};

/* The control that takes the signals (atomic pointer). */
static void *signalTarget;
/* Set before the signals' thread starts (gwControlCatchEndSignals), then
 * read only: SIGTERM, SIGINT and SIGHUP end the gateway cleanly. */
static int catchEnd;
/* The last of those that came (atomic). */
static int endSignal;
/* The exit status quitServerFlag ends the process with. */
static int quitServerStatus;

int gwControlLookup(const char *flag, gwControlAction *action)
{
    unsigned i;

    for (i = 0; i < GW_CONTROL_ACTIONS; i++)
        if (strcmp(flag, flagNames[i]) == 0) {
            *action = (gwControlAction)i;
            return 0;
        }
    return -1;
}

/* ---------------------------------------------------------------- actions */

static int act(gwControl *control, gwControlAction action)
{
    switch (action) {
    case GW_CONTROL_COMMAND_FILE:
        return gwGatewayRunCommandFile(control->gateway);
    case GW_CONTROL_REPORT1:
        return gwGatewayReportToFile(control->gateway, 1);
    case GW_CONTROL_REPORT2:
        return gwGatewayReportToFile(control->gateway, 2);
    case GW_CONTROL_REPORT3:
        return gwGatewayReportToFile(control->gateway, 3);
    case GW_CONTROL_NEW_AS:
        return gwGatewayNewAs(control->gateway);
    default:
        return -1;
    }
}

static void quit(gwControlAction action)
{
    gwLog(GW_LOG_SERVER, GW_LOG_INFO, "%s: the gateway IOC ends",
          flagNames[action]);
    /* a moment for the flag's put to be answered and the log to be written */
    epicsThreadSleep(0.2);
    epicsExit(action == GW_CONTROL_QUIT_SERVER ? epicsAtomicGetIntT(&quitServerStatus) : 0);
}

void gwControlSetQuitServerStatus(int status)
{
    epicsAtomicSetIntT(&quitServerStatus, status);
}

static void handleSignals(gwControl *control)
{
    int seen = epicsAtomicGetIntT(&control->signals);

    if (!seen)
        return;
    /* clear exactly the bits handled (a signal may come meanwhile) */
    while (epicsAtomicCmpAndSwapIntT(&control->signals, seen, 0) != seen)
        seen = epicsAtomicGetIntT(&control->signals);
    if (seen & GW_SIGNAL_USR1)
        act(control, GW_CONTROL_COMMAND_FILE);
    if (seen & GW_SIGNAL_USR2)
        act(control, GW_CONTROL_REPORT2);
    if (seen & GW_SIGNAL_END) {
        errlogPrintf("gateway: ended by signal %d\n", epicsAtomicGetIntT(&endSignal));
        epicsThreadSleep(0.1);
        epicsExit(0);
    }
}

static void controlThread(void *arg)
{
    gwControl *control = arg;

    for (;;) {
        gwControlRequest *request;
        int stopping;

        while (sem_wait(&control->wake) != 0 && errno == EINTR)
            ;
        handleSignals(control);
        for (;;) {
            epicsMutexMustLock(control->lock);
            request = (gwControlRequest *)ellGet(&control->queue);
            stopping = control->stopping;
            epicsMutexUnlock(control->lock);
            if (!request)
                break;
            if (request->action == GW_CONTROL_QUIT
                || request->action == GW_CONTROL_QUIT_SERVER) {
                gwControlAction action = request->action;
                if (request->done)
                    request->done(request, 0);
                quit(action);
            }
            else {
                int status = act(control, request->action);
                if (request->done)
                    request->done(request, status);
            }
        }
        if (stopping)
            break;
    }
    epicsEventSignal(control->exited);
}

/* Start the thread once (lock held). 0 or -1. */
static int startThread(gwControl *control)
{
    if (control->started)
        return 0;
    if (!epicsThreadCreate("gwControl", epicsThreadPriorityLow,
                           epicsThreadGetStackSize(epicsThreadStackMedium),
                           controlThread, control))
        return -1;
    control->started = 1;
    return 0;
}

/* ---------------------------------------------------------------- life */

gwControl *gwControlCreate(struct gwGateway *gateway)
{
    gwControl *control = calloc(1, sizeof *control);

    if (!control)
        return NULL;
    control->gateway = gateway;
    control->lock = epicsMutexCreate();
    control->exited = epicsEventCreate(epicsEventEmpty);
    if (!control->lock || !control->exited || sem_init(&control->wake, 0, 0) != 0) {
        if (control->lock)
            epicsMutexDestroy(control->lock);
        if (control->exited)
            epicsEventDestroy(control->exited);
        free(control);
        return NULL;
    }
    ellInit(&control->queue);
    return control;
}

void gwControlDestroy(gwControl *control)
{
    int started;

    if (!control)
        return;
    epicsAtomicCmpAndSwapPtrT(&signalTarget, control, NULL);
    epicsMutexMustLock(control->lock);
    started = control->started;
    control->stopping = 1;
    epicsMutexUnlock(control->lock);
    if (started) {
        sem_post(&control->wake);
        epicsEventMustWait(control->exited);
    }
    sem_destroy(&control->wake);
    epicsEventDestroy(control->exited);
    epicsMutexDestroy(control->lock);
    free(control);
}

int gwControlAsk(gwControl *control, gwControlRequest *request)
{
    int status;

    epicsMutexMustLock(control->lock);
    status = control->stopping ? -1 : startThread(control);
    if (status == 0)
        ellAdd(&control->queue, &request->node);
    epicsMutexUnlock(control->lock);
    if (status == 0)
        sem_post(&control->wake);
    return status;
}

/* ---------------------------------------------------------------- signals */

/* SIGUSR1 or SIGUSR2 came: tell the target control (any thread, also a
 * signal handler: atomics and sem_post only). */
static void signalled(int number)
{
    gwControl *control = epicsAtomicGetPtrT(&signalTarget);
    int end = number != SIGUSR1 && number != SIGUSR2;

    if (end) {
        epicsAtomicSetIntT(&endSignal, number);
        if (!control)
            _exit(0);   /* nothing runs yet that could end cleanly */
    }
    if (control) {
        int bit = end ? GW_SIGNAL_END : number == SIGUSR1 ? GW_SIGNAL_USR1 : GW_SIGNAL_USR2;
        int seen = epicsAtomicGetIntT(&control->signals);
        while (epicsAtomicCmpAndSwapIntT(&control->signals, seen, seen | bit) != seen)
            seen = epicsAtomicGetIntT(&control->signals);
        sem_post(&control->wake);
    }
}

/* The signals the signals' thread takes. */
static void signalSet(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGUSR1);
    sigaddset(set, SIGUSR2);
    if (catchEnd) {
        sigaddset(set, SIGTERM);
        sigaddset(set, SIGINT);
        sigaddset(set, SIGHUP);
    }
}

void gwControlCatchEndSignals(void)
{
    sigset_t set;

    catchEnd = 1;
    signalSet(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

/* The signals' thread: takes them with sigwait, so they are handled at
 * once whatever the other threads are doing (the main thread may sit in
 * readline for hours). Runs for the life of the process. */
static void signalThread(void *unused)
{
    sigset_t set;
    int number;

    (void)unused;
    signalSet(&set);
    for (;;)
        if (sigwait(&set, &number) == 0)
            signalled(number);
}

static epicsThreadOnceId signalOnce = EPICS_THREAD_ONCE_INIT;
static int signalThreadStarted;

static void startSignalThread(void *unused)
{
    (void)unused;
    signalThreadStarted = epicsThreadCreate("gwSignals", epicsThreadPriorityLow,
                                            epicsThreadGetStackSize(epicsThreadStackSmall),
                                            signalThread, NULL) != NULL;
}

/* For a thread that has not blocked them (not one of EPICS's, nor the
 * one that called gwControlCatchSignals): the same, in the handler. */
static void onSignal(int number)
{
    int saved = errno;

    signalled(number);
    errno = saved;
}

int gwControlCatchSignals(gwControl *control)
{
    struct sigaction action;
    sigset_t set;
    int status;

    epicsMutexMustLock(control->lock);
    status = startThread(control);
    epicsMutexUnlock(control->lock);
    if (status != 0)
        return -1;
    epicsAtomicSetPtrT(&signalTarget, control);
    memset(&action, 0, sizeof action);
    action.sa_handler = onSignal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    if (sigaction(SIGUSR1, &action, NULL) != 0 || sigaction(SIGUSR2, &action, NULL) != 0) {
        gwLog(GW_LOG_SERVER, GW_LOG_ERROR, "cannot catch SIGUSR1 and SIGUSR2: %s",
              strerror(errno));
        return -1;
    }
    /* blocked here (the iocsh thread; EPICS's threads block them already)
     * and taken by the signals' thread */
    signalSet(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    epicsThreadOnce(&signalOnce, startSignalThread, NULL);
    if (!signalThreadStarted)
        gwLog(GW_LOG_SERVER, GW_LOG_WARNING, "no thread for SIGUSR1 and SIGUSR2: they are "
              "handled by whichever thread they reach");
    return 0;
}
