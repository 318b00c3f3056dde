/* gwControl.h - the gateway's control actions (gwControl.c): reports to
 * the report file, the command file, reloading the rules and quitting, run
 * one at a time on a thread of their own, asked for by the control flag
 * records, by iocsh and by the signals SIGUSR1 (the command file) and
 * SIGUSR2 (report 2); for the `gateway` program also SIGTERM, SIGINT and
 * SIGHUP (a clean end).
 *
 * Threads: any thread asks (gwControlAsk), a signal handler too; the
 * control thread acts and calls the requester's `done` there.
 * Locks: control->lock, a leaf, guards the queue of requests; no lock is
 * held while an action runs.
 */
#ifndef INC_gwControl_H
#define INC_gwControl_H

#include <ellLib.h>

#ifdef __cplusplus
extern "C" {
#endif

struct gwGateway;
typedef struct gwControl gwControl;

typedef enum gwControlAction {
    GW_CONTROL_COMMAND_FILE,   /* run the command file (commandFlag, SIGUSR1) */
    GW_CONTROL_REPORT1,        /* append report 1 to the report file */
    GW_CONTROL_REPORT2,        /* ... report 2 (also SIGUSR2) */
    GW_CONTROL_REPORT3,        /* ... report 3 */
    GW_CONTROL_NEW_AS,         /* reload the pvlist and the access file */
    GW_CONTROL_QUIT,           /* end the IOC: epicsExit(0) */
    GW_CONTROL_QUIT_SERVER,    /* the same; under a supervisor it ends that too */
    GW_CONTROL_ACTIONS
} gwControlAction;

/* The action of a flag record's name ("report1Flag"): 0 and it, or -1. */
int gwControlLookup(const char *flag, gwControlAction *action);

/* A request: the caller's memory, untouched by the caller from
 * gwControlAsk until done() is called. */
typedef struct gwControlRequest {
    ELLNODE node;
    gwControlAction action;
    void (*done)(struct gwControlRequest *request, int status); /* may be NULL */
    void *user;
} gwControlRequest;

gwControl *gwControlCreate(struct gwGateway *gateway);
void gwControlDestroy(gwControl *control);

/* Queue a request; done(request, 0 or -1) runs on the control thread
 * once the action is over (for the quit actions: before the IOC ends).
 * 0, or -1 (the control thread cannot start): done is not called. */
int gwControlAsk(gwControl *control, gwControlRequest *request);

/* From now on SIGUSR1 runs the command file and SIGUSR2 writes report 2
 * of this control's gateway (one gateway per process takes the signals;
 * the last call wins). 0 or -1. */
int gwControlCatchSignals(gwControl *control);

/* The `gateway` program's choices, made before the IOC starts:
 * - SIGTERM, SIGINT and SIGHUP end the process cleanly (epicsExit(0),
 *   with a log line) instead of at once; call from the main thread
 *   before any thread starts, and before gwControlCatchSignals;
 * - the exit status of quitServerFlag (0 unless a supervisor waits for
 *   GW_SUPERVISOR_EXIT_QUIT_SERVER). */
void gwControlCatchEndSignals(void);
void gwControlSetQuitServerStatus(int status);

#ifdef __cplusplus
}
#endif

#endif /* INC_gwControl_H */
