/* gwConformance.h - the provider conformance checks: what every provider
 * (gwProvider.h) must do, run against any provider through its operations
 * (gwProviderCall.h), with the test playing the server (a sink records
 * every callback; waits have timeouts). gwProviderConformanceTest runs them
 * against the local provider, the upstream provider and a wrapper over
 * each, and against mutant wrappers that must fail them.
 *
 * The target serves the records of gwConformance.db under its prefix
 * ("loc:ai", "up:ai", ...), with the rules of gwConformance.acf. The
 * checks and their TAP points run on the calling thread; the sink's
 * callbacks on the provider's threads. One target at a time.
 */
#ifndef INC_gwConformance_H
#define INC_gwConformance_H

#include <compilerDependencies.h>

#include "gwProvider.h"

typedef struct gwConformanceTarget {
    const char *label;            /* in each test point's text */
    const gwProvider *provider;
    const char *prefix;           /* of the record names */
    /* 1: the source can go away (stopSource), and a channel must then be
     * told `disconnected`; 0: it never is, during the whole run. */
    int remote;
    void (*stopSource)(void *arg);
    void *stopArg;
    /* 1: detach (and cancel) from inside the provider's own callbacks is
     * supported (the local provider); 0: only cancel from inside an update
     * (the upstream provider: gwUpstream.h), and detach is checked from
     * another thread while a callback runs instead. */
    int detachInCallback;
    /* 1: a gwWrapper made by gwProviderConformanceTest (alias "w:" ->
     * the inner prefix, "secret" names refused, user "guest" read-only):
     * the checks of its policy run too. */
    int wrapped;
} gwConformanceTarget;

/* The groups of checks. */
#define GW_CONFORM_ATTACH     0x001u  /* exists, attach, native type/count, detach */
#define GW_CONFORM_GETS       0x002u  /* DBR_STRING/DOUBLE/LONG/TIME/CTRL gets */
#define GW_CONFORM_PUTS       0x004u  /* plain, with completion, slow completion */
#define GW_CONFORM_MASKS      0x008u  /* every mask bit alone and combined */
#define GW_CONFORM_RIGHTS     0x010u  /* rights changes told and answered */
#define GW_CONFORM_CALLBACKS  0x020u  /* cancel/detach from inside callbacks */
#define GW_CONFORM_COUNTERS   0x040u  /* counters and report */
#define GW_CONFORM_POLICY     0x080u  /* the wrapper's alias, refusal, narrowing */
#define GW_CONFORM_DISCONNECT 0x100u  /* last: stops a remote source */
#define GW_CONFORM_ALL        0x1ffu

/* Run the checks of `groups` against the target. expectFailure 0: each
 * check is a TAP point. expectFailure 1: no TAP point, failures are only
 * counted (and shown as diagnostics), waits are shorter. The provider is
 * bound to the test's server callbacks for the run and unbound after.
 * Returns the number of failed checks. */
unsigned gwConformanceRun(const gwConformanceTarget *target, unsigned groups,
                          int expectFailure);

/* A TAP point of the caller's (testOk with a format). */
void gwConformanceOk(int pass, const char *format, ...) EPICS_PRINTF_STYLE(2, 3);

#endif /* INC_gwConformance_H */
