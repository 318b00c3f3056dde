/* gwProviderConformanceTest.c - the provider conformance checks
 * (gwConformance.c) against every provider the gateway has, and proof
 * that they would catch a provider that breaks the interface:
 *   local                 the local provider over an in-process IOC
 *                         (gwConformance.db with P=loc:);
 *   wrapper over local    a gwWrapper with a test policy in front of it
 *                         (alias "w:" -> "loc:", "secret" refused, user
 *                         "guest" read-only);
 *   mutants               that wrapper with one operation broken (a mask
 *                         bit dropped, rightsChanged dropped, put
 *                         completions dropped): their checks must fail;
 *   upstream              the upstream provider over libca to a softIoc
 *                         of the same records (P=up:, a separate process:
 *                         its names are not the in-process IOC's, so libca
 *                         goes over TCP), stopped at the end (disconnect);
 *   wrapper over upstream the test wrapper over another upstream provider
 *                         and softIoc.
 * Opens sockets: runs inside scripts/netns run (Linux: the softIoc is
 * killed with the test, PR_SET_PDEATHSIG). No plan up front (testPlan(0):
 * testDone gives the count to the harness), as a check that fails early
 * may skip the points that depend on it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <dbDefs.h>
#include <epicsStdio.h>
#include <epicsThread.h>
#include <epicsUnitTest.h>
#include <testMain.h>

#include "gwTestNetns.h"
#include "gwConformance.h"
#include "gwConformanceIoc.h"
#include "gwLocal.h"
#include "gwUpstream.h"
#include "gwRules.h"
#include "gwWrapper.h"

#ifndef GW_SOFTIOC
#error "GW_SOFTIOC (the path of the softIoc of Base) must be defined by the Makefile"
#endif

#define SOFTIOC_PORT_UPSTREAM 25301
#define SOFTIOC_PORT_WRAPPED  25302

extern char **environ;

static char dbPath[1024], acfPath[1024], dbdPath[1024];

/* ---------------------------------------------------------------- the softIoc */

typedef struct softIoc {
    pid_t pid;
    unsigned short port;
} softIoc;

static void envAdd(char **env, int *n, const char *name, const char *value)
{
    size_t size = strlen(name) + strlen(value) + 2;

    env[*n] = malloc(size);
    if (env[*n])
        epicsSnprintf(env[(*n)++], size, "%s=%s", name, value);
}

/* A child running Base's program `name` (in the directory of softIoc)
 * with argv, in the loopback environment with the servers' port `port`
 * (0: the default), its output into log. Its pid, or -1. It is killed
 * when the test ends (PR_SET_PDEATHSIG), and holds none of the test's
 * output: the test harness waits for the end of that. */
static pid_t spawn(const char *name, char *const argv[], unsigned short port, const char *log)
{
    char program[1024], portText[16];
    char *env[256];
    char *slash;
    int n = 0, i, fd;
    pid_t pid;

    epicsSnprintf(program, sizeof program, "%s", GW_SOFTIOC);
    slash = strrchr(program, '/');
    if (slash)
        epicsSnprintf(slash + 1, sizeof program - (size_t)(slash + 1 - program), "%s", name);
    for (i = 0; environ[i] && n < 240; i++) {
        if (strncmp(environ[i], "EPICS_CA", 8) != 0)
            env[n++] = environ[i];
    }
    if (port) {
        epicsSnprintf(portText, sizeof portText, "%u", port);
        envAdd(env, &n, "EPICS_CAS_SERVER_PORT", portText);
        envAdd(env, &n, "EPICS_CA_SERVER_PORT", portText);
    }
    envAdd(env, &n, "EPICS_CAS_INTF_ADDR_LIST", "127.0.0.1");
    envAdd(env, &n, "EPICS_CAS_AUTO_BEACON_ADDR_LIST", "NO");
    envAdd(env, &n, "EPICS_CAS_BEACON_ADDR_LIST", "127.255.255.255");
    envAdd(env, &n, "EPICS_CA_AUTO_ADDR_LIST", "NO");
    envAdd(env, &n, "EPICS_CA_ADDR_LIST", "127.0.0.1");
    env[n] = NULL;
    fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_RDONLY);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (null >= 0)
            dup2(null, 0);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execve(program, argv, env);
        _exit(127);
    }
    if (fd >= 0)
        close(fd);
    for (i = 0; i < n; i++) {
        if (strncmp(env[i], "EPICS_CA", 8) == 0)
            free(env[i]);
    }
    return pid;
}

/* softIoc serving gwConformance.db with P=up: on loopback at port. */
static int softIocStart(softIoc *ioc, unsigned short port)
{
    char *argv[] = { "softIoc", "-S", "-m", "P=up:", "-a", acfPath, "-d", dbPath, NULL };
    char log[64];
    pid_t pid;

    epicsSnprintf(log, sizeof log, "gwProviderConformanceTest-%u.log", port);
    pid = spawn("softIoc", argv, port, log);
    if (pid < 0)
        return -1;
    ioc->pid = pid;
    ioc->port = port;
    testDiag("softIoc %ld serves P=up: on port %u (log %s)", (long)pid, port, log);
    return 0;
}

static void softIocStop(void *arg)
{
    softIoc *ioc = arg;
    int status;

    if (ioc->pid <= 0)
        return;
    kill(ioc->pid, SIGKILL);   /* its sockets close: the upstream side sees it go */
    while (waitpid(ioc->pid, &status, 0) < 0 && errno == EINTR)
        ;
    ioc->pid = 0;
}

static gwProvider *upstreamCreate(unsigned short port)
{
    static char loopback[] = "127.0.0.1";
    gwUpstreamConfig config;
    gwProvider *provider;

    gwUpstreamConfigDefaults(&config);
    config.addressList = loopback;
    config.port = port;
    config.connectTimeout = 5.0;
    /* DBE_LOG stays DBE_LOG (without -archive it is widened to DBE_VALUE,
     * as the classic gateway does, which a conformance check would see) */
    config.archive = 1;
    provider = gwUpstreamProviderCreate(&config);
    return provider;
}

/* ---------------------------------------------------------------- the test wrapper's policy */

static int aliasRename(void *arg, const char *pvName, char *innerName, size_t size)
{
    const char *innerPrefix = arg;

    if (strncmp(pvName, "w:", 2) != 0)
        return 0;
    epicsSnprintf(innerName, size, "%s%s", innerPrefix, pvName + 2);
    return 1;
}

static int allowNotSecret(void *arg, const char *pvName, const gwClientIdentity *client)
{
    (void)arg;
    (void)client;
    return strstr(pvName, "secret") == NULL;
}

static unsigned guestReads(void *arg, const char *pvName, const gwClientIdentity *client,
                           unsigned rights)
{
    (void)arg;
    (void)pvName;
    return strcmp(client->user, "guest") == 0 ? rights & GW_RIGHT_READ : rights;
}

static gwProvider *testWrapper(const gwProvider *inner, const char *innerPrefix)
{
    gwWrapperPolicy policy;

    memset(&policy, 0, sizeof policy);
    policy.name = "test wrapper";
    policy.arg = (void *)innerPrefix;
    policy.rename = aliasRename;
    policy.allow = allowNotSecret;
    policy.narrowRights = guestReads;
    return gwWrapperCreate(inner, &policy);
}

/* ---------------------------------------------------------------- mutants */

/* The wrapper's operations with one broken; channel operations get no
 * provider argument, so the broken ones reach the real ones through these
 * (one mutant at a time). */
static const gwProviderOps *realOps;
static unsigned droppedBit;
static const gwChannelEvents *serverEvents;

static gwProviderSubscription *dropBitSubscribe(gwProviderChannel *channel, short dbrType,
                                                unsigned long count, unsigned mask,
                                                gwValueCallback *update, void *user,
                                                int *ecaStatus)
{
    mask &= ~droppedBit;
    if (!mask)
        mask = droppedBit == GW_EVENT_VALUE ? GW_EVENT_LOG : GW_EVENT_VALUE;
    return realOps->subscribe(channel, dbrType, count, mask, update, user, ecaStatus);
}

static void ignoreRights(void *serverChannel, unsigned rights)
{
    (void)serverChannel;
    (void)rights;
}

static void passDisconnected(void *serverChannel)
{
    serverEvents->disconnected(serverChannel);
}

static void passWriteFailed(void *serverChannel, short dbrType, unsigned long count, int status)
{
    serverEvents->writeFailed(serverChannel, dbrType, count, status);
}

static void passConnected(void *serverChannel, int ok)
{
    serverEvents->connected(serverChannel, ok);
}

static const gwChannelEvents noRightsEvents = {
    .rightsChanged = ignoreRights,
    .disconnected = passDisconnected,
    .writeFailed = passWriteFailed,
    .connected = passConnected,
};

static gwProviderChannel *noRightsAttach(void *self, const char *pvName,
                                         const gwClientIdentity *client,
                                         const gwChannelEvents *events, void *serverChannel)
{
    serverEvents = events;
    return realOps->attach(self, pvName, client, &noRightsEvents, serverChannel);
}

static int noCompletionPut(gwProviderChannel *channel, short dbrType, unsigned long count,
                           const void *value, gwPutCallback *done, void *user)
{
    (void)done;
    (void)user;
    return realOps->put(channel, dbrType, count, value, NULL, NULL);
}

typedef enum { MUTANT_MASK, MUTANT_RIGHTS, MUTANT_COMPLETION } mutantKind;

/* The checks of `groups` against the wrapper with one operation broken
 * must fail. */
static void runMutant(const gwProvider *wrapper, mutantKind kind, unsigned bit,
                      unsigned groups, const char *what)
{
    gwProviderOps ops = *wrapper->ops;
    gwProvider mutant;
    gwConformanceTarget target;
    unsigned failures;

    realOps = wrapper->ops;
    droppedBit = bit;
    if (kind == MUTANT_MASK)
        ops.subscribe = dropBitSubscribe;
    else if (kind == MUTANT_RIGHTS)
        ops.attach = noRightsAttach;
    else
        ops.put = noCompletionPut;
    mutant.ops = &ops;
    mutant.self = wrapper->self;
    memset(&target, 0, sizeof target);
    target.label = what;
    target.provider = &mutant;
    target.prefix = "w:";
    target.detachInCallback = 1;
    target.wrapped = 1;
    failures = gwConformanceRun(&target, groups, 1);
    gwConformanceOk(failures > 0, "the checks catch a %s (%u failures)", what, failures);
}

/* ---------------------------------------------------------------- main */

static void pathOf(char *path, size_t size, const char *cwd, const char *file)
{
    epicsSnprintf(path, size, "%s/%s", cwd, file);
}

MAIN(gwProviderConformanceTest)
{
    static const struct { unsigned bit; const char *name; } bits[] = {
        { GW_EVENT_VALUE, "wrapper that drops DBE_VALUE" },
        { GW_EVENT_LOG, "wrapper that drops DBE_LOG" },
        { GW_EVENT_ALARM, "wrapper that drops DBE_ALARM" },
        { GW_EVENT_PROPERTY, "wrapper that drops DBE_PROPERTY" },
    };
    char cwd[800];
    gwProvider *local, *wrapper, *upstream;
    gwConformanceTarget target;
    static char *repeaterArgv[] = { "caRepeater", NULL };
    softIoc ioc, repeater;
    unsigned i;

    (void)argc;
    (void)argv;
    testPlan(0);
    if (!gwTestInNetns()) {
        /* CA sockets and softIoc processes: only inside the namespace */
        testSkip(1, "opens sockets: run inside scripts/netns run");
        return testDone();
    }
    if (!getcwd(cwd, sizeof cwd))
        testAbort("getcwd failed");
    pathOf(dbdPath, sizeof dbdPath, cwd, "../O.Common/gwLocalTest.dbd");
    pathOf(dbPath, sizeof dbPath, cwd, "../gwConformance.db");
    pathOf(acfPath, sizeof acfPath, cwd, "../gwConformance.acf");

    /* libca's repeater, started here: one libca starts itself would keep
     * the test's output open after the test ends */
    repeater.pid = spawn("caRepeater", repeaterArgv, 0, "gwProviderConformanceTest-caRepeater.log");
    if (gwConformanceIocStart(dbdPath, dbPath, "P=loc:", acfPath))
        testAbort("the in-process IOC does not start");
    local = gwLocalProviderCreate(1);
    if (!local)
        testAbort("gwLocalProviderCreate failed");

    memset(&target, 0, sizeof target);
    target.label = "local";
    target.provider = local;
    target.prefix = "loc:";
    target.detachInCallback = 1;
    gwConformanceRun(&target, GW_CONFORM_ALL, 0);

    wrapper = testWrapper(local, "loc:");
    if (!wrapper)
        testAbort("gwWrapperCreate failed");
    target.label = "wrapper over local";
    target.provider = wrapper;
    target.prefix = "w:";
    target.wrapped = 1;
    gwConformanceRun(&target, GW_CONFORM_ALL, 0);

    for (i = 0; i < NELEMENTS(bits); i++)
        runMutant(wrapper, MUTANT_MASK, bits[i].bit, GW_CONFORM_MASKS, bits[i].name);
    runMutant(wrapper, MUTANT_RIGHTS, 0, GW_CONFORM_RIGHTS | GW_CONFORM_POLICY,
              "wrapper that drops rightsChanged");
    runMutant(wrapper, MUTANT_COMPLETION, 0, GW_CONFORM_PUTS,
              "wrapper that drops put completions");
    gwWrapperDestroy(wrapper);

    /* The access rules' wrapper (gwRules.c) with a pvlist that aliases
     * w:* to the records: every check but the test wrapper's own policy. */
    {
        static const char pvlist[] =
            ".* ALLOW\nw:(.*) ALIAS loc:\\1\n.*secret.* DENY\n";
        char listPath[900];
        gwRules *rules = gwRulesCreate();
        FILE *f;

        pathOf(listPath, sizeof listPath, cwd, "gwProviderConformanceTest.pvlist");
        f = fopen(listPath, "w");
        if (!rules || !f || fputs(pvlist, f) < 0 || fclose(f) != 0
            || gwRulesLoadPvList(rules, listPath) != 0)
            testAbort("cannot make the access rules");
        wrapper = gwRulesWrap(rules, local);
        if (!wrapper)
            testAbort("gwRulesWrap failed");
        target.label = "access rules over local";
        target.provider = wrapper;
        target.prefix = "w:";
        target.wrapped = 1;
        gwConformanceRun(&target, GW_CONFORM_ALL & ~GW_CONFORM_POLICY, 0);
        gwRulesUnwrap(rules, wrapper);
        gwRulesDestroy(rules);
    }

    if (softIocStart(&ioc, SOFTIOC_PORT_UPSTREAM))
        testAbort("cannot start softIoc");
    upstream = upstreamCreate(SOFTIOC_PORT_UPSTREAM);
    if (!upstream)
        testAbort("gwUpstreamProviderCreate failed");
    memset(&target, 0, sizeof target);
    target.label = "upstream";
    target.provider = upstream;
    target.prefix = "up:";
    target.remote = 1;
    target.stopSource = softIocStop;
    target.stopArg = &ioc;
    gwConformanceRun(&target, GW_CONFORM_ALL, 0);
    softIocStop(&ioc);
    gwUpstreamProviderDestroy(upstream);

    if (softIocStart(&ioc, SOFTIOC_PORT_WRAPPED))
        testAbort("cannot start softIoc");
    upstream = upstreamCreate(SOFTIOC_PORT_WRAPPED);
    wrapper = upstream ? testWrapper(upstream, "up:") : NULL;
    if (!wrapper)
        testAbort("cannot make the wrapper over upstream");
    target.label = "wrapper over upstream";
    target.provider = wrapper;
    target.prefix = "w:";
    target.wrapped = 1;
    gwConformanceRun(&target, GW_CONFORM_ALL, 0);
    softIocStop(&ioc);
    gwWrapperDestroy(wrapper);
    gwUpstreamProviderDestroy(upstream);

    softIocStop(&repeater);
    gwLocalProviderDestroy(local);
    gwConformanceIocStop();
    return testDone();
}
