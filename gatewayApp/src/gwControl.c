/* gwControl.c - the control thread: actions asked for by flag records,
 * iocsh and signals, run one at a time (gwControl.h).
 *
 * Wake-ups: a POSIX semaphore, because sem_post is one of the few calls
 * a signal handler may make; the handler also sets a bit of `signals`
 * (atomic), which the thread turns into actions. Requests come through a
 * list under control->lock. The thread starts with the first request or
 * gwControlCatchSignals, and runs until gwControlDestroy.
 */
#include <errno.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

enum { GW_SIGNAL_USR1 = 1, GW_SIGNAL_USR2 = 2 };

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
    epicsExit(0);
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

static void onSignal(int number)
{
    gwControl *control = epicsAtomicGetPtrT(&signalTarget);
    int saved = errno;

    if (control) {
        int bit = number == SIGUSR1 ? GW_SIGNAL_USR1 : GW_SIGNAL_USR2;
        int seen = epicsAtomicGetIntT(&control->signals);
        while (epicsAtomicCmpAndSwapIntT(&control->signals, seen, seen | bit) != seen)
            seen = epicsAtomicGetIntT(&control->signals);
        sem_post(&control->wake);   /* async-signal-safe */
    }
    errno = saved;
}

int gwControlCatchSignals(gwControl *control)
{
    struct sigaction action;
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
    return 0;
}
