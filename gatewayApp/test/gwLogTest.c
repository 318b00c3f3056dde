/* gwLogTest.c - the log areas and their levels (gwLog.c): filtering per
 * area before formatting, setting by name, bad names and levels refused,
 * the token bucket of peer messages and the count of suppressed ones.
 *
 * The lines are caught with an errlog listener (errlogFlush delivers them). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <epicsMutex.h>
#include <epicsThread.h>
#include <epicsUnitTest.h>
#include <errlog.h>
#include <testMain.h>

#include "gwLog.h"

#define CAUGHT_MAX 200

static epicsMutexId caughtLock;
static char *caught[CAUGHT_MAX];
static unsigned nCaught;

static void listener(void *arg, const char *message)
{
    (void)arg;
    epicsMutexMustLock(caughtLock);
    if (nCaught < CAUGHT_MAX && (caught[nCaught] = strdup(message)) != NULL) {
        size_t length = strlen(caught[nCaught]);
        if (length && caught[nCaught][length - 1] == '\n')
            caught[nCaught][length - 1] = '\0';    /* one line: its newline goes */
        nCaught++;
    }
    epicsMutexUnlock(caughtLock);
}

/* Forget what was caught so far. */
static void clearCaught(void)
{
    unsigned i;

    errlogFlush();
    epicsMutexMustLock(caughtLock);
    for (i = 0; i < nCaught; i++)
        free(caught[i]);
    nCaught = 0;
    epicsMutexUnlock(caughtLock);
}

/* The lines caught since clearCaught. */
static unsigned caughtCount(void)
{
    unsigned n;

    errlogFlush();
    epicsMutexMustLock(caughtLock);
    n = nCaught;
    epicsMutexUnlock(caughtLock);
    return n;
}

/* The last line caught without its newline, or "" (valid until clearCaught). */
static const char *lastCaught(void)
{
    const char *last = "";

    errlogFlush();
    epicsMutexMustLock(caughtLock);
    if (nCaught)
        last = caught[nCaught - 1];
    epicsMutexUnlock(caughtLock);
    return last;
}

static void testDefaults(void)
{
    unsigned i;

    testOk(gwLogGetLevel(GW_LOG_SERVER) == GW_LOG_INFO, "server starts at info (its start-up lines)");
    for (i = 0; i < GW_LOG_AREAS; i++)
        if (i != GW_LOG_SERVER && gwLogGetLevel((gwLogArea)i) != GW_LOG_WARNING)
            break;
    testOk(i == GW_LOG_AREAS, "every other area starts at warning");
}

static void testNames(void)
{
    static const char *const names[] = {
        "server", "circuit", "names", "beacon", "upstream", "search", "local", "relay"
    };
    unsigned i;
    int ok = 1;

    testOk(GW_LOG_AREAS == sizeof names / sizeof names[0], "%u areas", (unsigned)GW_LOG_AREAS);
    for (i = 0; i < GW_LOG_AREAS; i++)
        ok = ok && gwLogAreaFind(names[i]) == (int)i
                && strcmp(gwLogAreaName((gwLogArea)i), names[i]) == 0;
    testOk(ok, "each area is found by its name and named by it");
    testOk(gwLogLevelFind("error") == GW_LOG_ERROR && gwLogLevelFind("warning") == GW_LOG_WARNING
           && gwLogLevelFind("info") == GW_LOG_INFO && gwLogLevelFind("debug") == GW_LOG_DEBUG,
           "the four levels are found by name");
    testOk(gwLogAreaFind("all") == -1 && gwLogAreaFind("Server") == -1 && gwLogAreaFind("") == -1
           && gwLogAreaFind(NULL) == -1, "no area called all, Server, empty or NULL");
    testOk(gwLogLevelFind("warn") == -1 && gwLogLevelFind("2") == -1 && gwLogLevelFind(NULL) == -1,
           "no level called warn, 2 or NULL");
    testOk(gwLogAreaName(GW_LOG_AREAS) == NULL && gwLogLevelName(GW_LOG_LEVELS) == NULL,
           "no names out of range");
}

static void testFiltering(void)
{
    int evaluated = 0;

    gwLogResetLevels();
    clearCaught();
    gwLogSetLevel(GW_LOG_CIRCUIT, GW_LOG_ERROR);
    gwLog(GW_LOG_CIRCUIT, GW_LOG_WARNING, "hidden %d", ++evaluated);
    testOk(caughtCount() == 0, "a warning is not printed at level error");
    testOk(evaluated == 0, "and its arguments are not evaluated");
    gwLog(GW_LOG_CIRCUIT, GW_LOG_ERROR, "shown %d", 1);
    testOk(caughtCount() == 1 && strcmp(lastCaught(), "gateway circuit: shown 1") == 0,
           "an error is printed as one line with its area: '%s'", lastCaught());
    gwLog(GW_LOG_NAMES, GW_LOG_WARNING, "other area");
    testOk(caughtCount() == 2 && strstr(lastCaught(), "gateway names: other area"),
           "other areas keep their own level");
    gwLogSetLevel(GW_LOG_CIRCUIT, GW_LOG_DEBUG);
    gwLog(GW_LOG_CIRCUIT, GW_LOG_DEBUG, "detail");
    testOk(caughtCount() == 3 && strstr(lastCaught(), "detail"), "debug is printed at debug");
    gwLog(GW_LOG_NAMES, GW_LOG_INFO, "not at warning");
    testOk(caughtCount() == 3, "info is not printed at warning");
    gwLog(GW_LOG_SERVER, GW_LOG_INFO, "line\nwith\tcontrols");
    testOk(strcmp(lastCaught(), "gateway server: line?with?controls") == 0,
           "control characters are replaced: one line per message");
    gwLogResetLevels();
}

static void testLongLine(void)
{
    char name[1000];

    memset(name, 'x', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    clearCaught();
    gwLog(GW_LOG_LOCAL, GW_LOG_ERROR, "%s", name);
    testOk(caughtCount() == 1 && strlen(lastCaught()) < 520
           && strcmp(lastCaught() + strlen(lastCaught()) - 3, "...") == 0, "a long message is cut, marked and one line");
}

static void testSetByName(void)
{
    unsigned i;
    int all = 1;

    gwLogResetLevels();
    testOk(gwLogSetByName("upstream", "debug") == 0 && gwLogGetLevel(GW_LOG_UPSTREAM) == GW_LOG_DEBUG,
           "gwLogSetByName(upstream, debug)");
    testOk(gwLogGetLevel(GW_LOG_SEARCH) == GW_LOG_WARNING, "changes no other area");
    testOk(gwLogSetByName("nosuch", "info") == -1, "an unknown area is refused");
    testOk(gwLogSetByName("upstream", "loud") == -1 && gwLogGetLevel(GW_LOG_UPSTREAM) == GW_LOG_DEBUG,
           "an unknown level is refused and changes nothing");
    testOk(gwLogSetByName("all", "bogus") == -1 && gwLogGetLevel(GW_LOG_SERVER) == GW_LOG_INFO,
           "all with an unknown level changes nothing");
    testOk(gwLogSetByName("upstream", NULL) == -1 && gwLogSetByName(NULL, "info") == -1,
           "missing names are refused");
    testOk(gwLogSetByName("all", "error") == 0, "gwLogSetByName(all, error)");
    for (i = 0; i < GW_LOG_AREAS; i++)
        all = all && gwLogGetLevel((gwLogArea)i) == GW_LOG_ERROR;
    testOk(all, "sets every area");
    gwLogResetLevels();
    testOk(gwLogGetLevel(GW_LOG_UPSTREAM) == GW_LOG_WARNING && gwLogGetLevel(GW_LOG_SERVER) == GW_LOG_INFO,
           "gwLogResetLevels restores the defaults");
}

#define SECOND 1000000000ull

static void testBucket(void)
{
    gwLogBucket bucket;
    unsigned dropped = 99, i, passed = 0;
    epicsUInt64 t0 = 5 * SECOND;

    memset(&bucket, 0, sizeof bucket);
    for (i = 0; i < 15; i++)
        passed += (unsigned)gwLogBucketTake(&bucket, 10, 10.0, t0, &dropped);
    testOk(passed == 10 && dropped == 0, "a burst of 15: 10 pass, the first with none dropped");
    testOk(!gwLogBucketTake(&bucket, 10, 10.0, t0 + SECOND / 2, &dropped),
           "half a refill period later: still refused");
    dropped = 99;
    passed = (unsigned)gwLogBucketTake(&bucket, 10, 10.0, t0 + SECOND + SECOND / 10, &dropped);
    testOk(passed && dropped == 6, "after a refill period one passes and says 6 were dropped (%u)",
           dropped);
    testOk(!gwLogBucketTake(&bucket, 10, 10.0, t0 + SECOND + SECOND / 5, &dropped),
           "then none again");
    passed = 0;
    for (i = 0; i < 30; i++)
        passed += (unsigned)gwLogBucketTake(&bucket, 10, 10.0, t0 + 1000 * SECOND, &dropped);
    testOk(passed == 10, "after a long quiet time the bucket holds one burst, not more (%u)", passed);
    testOk(!gwLogBucketTake(&bucket, 10, 10.0, t0, &dropped), "a clock going back adds nothing");
}

static void testPeerRateLimit(void)
{
    unsigned i, n;
    const char *line;

    gwLogResetLevels();
    clearCaught();
    gwLogPeer(GW_LOG_NAMES, GW_LOG_INFO, "127.0.0.21:5064", "filtered");
    testOk(caughtCount() == 0, "a peer message below the area's level is not printed");
    gwLogPeer(GW_LOG_NAMES, GW_LOG_WARNING, "127.0.0.21:5064 (joe@pc1)", "bad datagram %d", 0);
    testOk(caughtCount() == 1
           && strcmp(lastCaught(), "gateway names: 127.0.0.21:5064 (joe@pc1): bad datagram 0") == 0,
           "a peer message names the peer: '%s'", lastCaught());
    for (i = 1; i < 50; i++)
        gwLogPeer(GW_LOG_NAMES, GW_LOG_WARNING, "127.0.0.21:5064", "bad datagram %u", i);
    n = caughtCount();
    /* the bucket gains a token per second: a slow machine may let one more by */
    testOk(n >= GW_LOG_PEER_BURST && n <= GW_LOG_PEER_BURST + 2,
           "a flood of 50 prints about one burst (%u)", n);
    gwLog(GW_LOG_NAMES, GW_LOG_WARNING, "not about a peer");
    testOk(caughtCount() == n + 1, "messages not about peers are not limited");
    gwLogPeer(GW_LOG_CIRCUIT, GW_LOG_WARNING, "127.0.0.22:40000", "other area");
    testOk(caughtCount() == n + 2, "each area has its own bucket");
    epicsThreadSleep(GW_LOG_PEER_PERIOD / GW_LOG_PEER_BURST + 0.2);
    gwLogPeer(GW_LOG_NAMES, GW_LOG_WARNING, "127.0.0.23:5064", "after the flood");
    line = lastCaught();
    testOk(caughtCount() == n + 3 && strstr(line, "127.0.0.23:5064: after the flood") != NULL,
           "a refill later the next one is printed: '%s'", line);
    {
        unsigned suppressed = 0;
        const char *note = strstr(line, " [");
        int read = note && sscanf(note, " [%u more names messages about peers suppressed]",
                                  &suppressed) == 1;
        /* exact unless a token came back during the flood (n > burst) */
        testOk(read && (n == GW_LOG_PEER_BURST ? suppressed == 50 - n
                                               : suppressed > 0 && suppressed <= 50 - n),
               "and says how many were suppressed (%u of 50)", suppressed);
    }
    gwLogPeer(GW_LOG_LOCAL, GW_LOG_WARNING, NULL, "who?");
    testOk(strcmp(lastCaught(), "gateway local: unknown peer: who?") == 0,
           "a peer message without a peer says so");
}

MAIN(gwLogTest)
{
    (void)argc;
    (void)argv;
    testPlan(39);
    caughtLock = epicsMutexMustCreate();
    errlogInit2(64 * 1024, 512);
    errlogAddListener(listener, NULL);
    testDefaults();
    testNames();
    testFiltering();
    testLongLine();
    testSetByName();
    testBucket();
    testPeerRateLimit();
    errlogRemoveListeners(listener, NULL);
    clearCaught();
    return testDone();
}
