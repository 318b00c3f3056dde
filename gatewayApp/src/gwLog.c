/* gwLog.c - the levels of the log areas, the formatting of one message
 * line, and the token buckets of peer messages (gwLog.h).
 *
 * Threads: any. The levels are atomics (set from iocsh, read everywhere);
 * the buckets share one mutex, a leaf taken only by gwLogPrintPeer for
 * the few peer messages that pass their level. Lines are handed to
 * errlogPrintf after the mutex is given back.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <epicsMutex.h>
#include <epicsStdio.h>
#include <epicsThread.h>
#include <epicsTime.h>
#include <errlog.h>

#include "gwLog.h"

/* The longest line printed (errlog cuts longer ones anyway). */
#define GW_LOG_LINE 400u

typedef struct gwLogAreaInfo {
    const char *name;
    gwLogLevel initial;     /* info where start-up lines users read are */
} gwLogAreaInfo;

static const gwLogAreaInfo areas[GW_LOG_AREAS] = {
    [GW_LOG_SERVER]   = { "server",   GW_LOG_INFO },
    [GW_LOG_CIRCUIT]  = { "circuit",  GW_LOG_WARNING },
    [GW_LOG_NAMES]    = { "names",    GW_LOG_WARNING },
    [GW_LOG_BEACON]   = { "beacon",   GW_LOG_WARNING },
    [GW_LOG_UPSTREAM] = { "upstream", GW_LOG_WARNING },
    [GW_LOG_SEARCH]   = { "search",   GW_LOG_WARNING },
    [GW_LOG_LOCAL]    = { "local",    GW_LOG_WARNING },
    [GW_LOG_RELAY]    = { "relay",    GW_LOG_WARNING },
};

static const char *const levelNames[GW_LOG_LEVELS] = {
    [GW_LOG_ERROR]   = "error",
    [GW_LOG_WARNING] = "warning",
    [GW_LOG_INFO]    = "info",
    [GW_LOG_DEBUG]   = "debug",
};

int gwLogLevels[GW_LOG_AREAS] = {
    [GW_LOG_SERVER]   = GW_LOG_INFO,
    [GW_LOG_CIRCUIT]  = GW_LOG_WARNING,
    [GW_LOG_NAMES]    = GW_LOG_WARNING,
    [GW_LOG_BEACON]   = GW_LOG_WARNING,
    [GW_LOG_UPSTREAM] = GW_LOG_WARNING,
    [GW_LOG_SEARCH]   = GW_LOG_WARNING,
    [GW_LOG_LOCAL]    = GW_LOG_WARNING,
    [GW_LOG_RELAY]    = GW_LOG_WARNING,
};

static gwLogBucket buckets[GW_LOG_AREAS];   /* bucketLock */
static epicsMutexId bucketLock;
static epicsThreadOnceId bucketOnce = EPICS_THREAD_ONCE_INIT;

static void bucketInit(void *arg)
{
    (void)arg;
    bucketLock = epicsMutexMustCreate();
}

/* ---------------------------------------------------------------- levels and names */

gwLogLevel gwLogGetLevel(gwLogArea area)
{
    return (gwLogLevel)epicsAtomicGetIntT(&gwLogLevels[area]);
}

void gwLogSetLevel(gwLogArea area, gwLogLevel level)
{
    epicsAtomicSetIntT(&gwLogLevels[area], (int)level);
}

void gwLogResetLevels(void)
{
    unsigned i;

    for (i = 0; i < GW_LOG_AREAS; i++)
        gwLogSetLevel((gwLogArea)i, areas[i].initial);
}

const char *gwLogAreaName(gwLogArea area)
{
    return (unsigned)area < GW_LOG_AREAS ? areas[area].name : NULL;
}

const char *gwLogLevelName(gwLogLevel level)
{
    return (unsigned)level < GW_LOG_LEVELS ? levelNames[level] : NULL;
}

int gwLogAreaFind(const char *name)
{
    unsigned i;

    for (i = 0; name && i < GW_LOG_AREAS; i++)
        if (strcmp(name, areas[i].name) == 0)
            return (int)i;
    return -1;
}

int gwLogLevelFind(const char *name)
{
    unsigned i;

    for (i = 0; name && i < GW_LOG_LEVELS; i++)
        if (strcmp(name, levelNames[i]) == 0)
            return (int)i;
    return -1;
}

int gwLogSetByName(const char *area, const char *level)
{
    int all = area && strcmp(area, "all") == 0;
    int which = all ? 0 : gwLogAreaFind(area);
    int to = gwLogLevelFind(level);
    unsigned i;

    if (which < 0 || to < 0)
        return -1;
    for (i = 0; i < GW_LOG_AREAS; i++)
        if (all || (int)i == which)
            gwLogSetLevel((gwLogArea)i, (gwLogLevel)to);
    return 0;
}

/* ---------------------------------------------------------------- rate limit */

int gwLogBucketTake(gwLogBucket *bucket, unsigned burst, double period,
                    epicsUInt64 now, unsigned *dropped)
{
    if (!bucket->started) {
        bucket->started = 1;
        bucket->tokens = burst;
        bucket->last = now;
    }
    else if (now > bucket->last) {
        bucket->tokens += (double)(now - bucket->last) * 1e-9 * burst / period;
        if (bucket->tokens > burst)
            bucket->tokens = burst;
        bucket->last = now;
    }
    if (bucket->tokens < 1.0) {
        bucket->dropped++;
        return 0;
    }
    bucket->tokens -= 1.0;
    *dropped = bucket->dropped;
    bucket->dropped = 0;
    return 1;
}

/* ---------------------------------------------------------------- output */

/* Peers choose some of the text (names, user@host): no control
 * characters reach the console, and the line is one line. */
static void makePrintable(char *text)
{
    for (; *text; text++)
        if ((unsigned char)*text < 0x20 || (unsigned char)*text == 0x7f)
            *text = '?';
}

static void emit(gwLogArea area, const char *peer, unsigned dropped,
                 const char *format, va_list args) GW_LOG_PRINTF(4, 0);

static void emit(gwLogArea area, const char *peer, unsigned dropped,
                 const char *format, va_list args)
{
    char line[GW_LOG_LINE], note[80] = "";
    size_t room, used;
    int n;

    if (dropped)
        epicsSnprintf(note, sizeof note, " [%u more %s messages about peers suppressed]",
                      dropped, gwLogAreaName(area));
    room = sizeof line - strlen(note);   /* the note is never cut */
    n = epicsSnprintf(line, room, "gateway %s: %s%s", gwLogAreaName(area),
                      peer ? peer : "", peer ? ": " : "");
    used = n > 0 ? (size_t)n : 0u;
    if (used < room) {
        n = epicsVsnprintf(line + used, room - used, format, args);
        used += n > 0 ? (size_t)n : 0u;
    }
    if (used >= room)
        strcpy(line + room - 4, "...");
    strcat(line, note);
    makePrintable(line);
    errlogPrintf("%s\n", line);
}

void gwLogPrint(gwLogArea area, const char *format, ...)
{
    va_list args;

    va_start(args, format);
    emit(area, NULL, 0, format, args);
    va_end(args);
}

void gwLogPrintPeer(gwLogArea area, const char *peer, const char *format, ...)
{
    va_list args;
    unsigned dropped = 0;
    int pass;

    epicsThreadOnce(&bucketOnce, bucketInit, NULL);
    epicsMutexMustLock(bucketLock);
    pass = gwLogBucketTake(&buckets[area], GW_LOG_PEER_BURST, GW_LOG_PEER_PERIOD,
                           epicsMonotonicGet(), &dropped);
    epicsMutexUnlock(bucketLock);
    if (!pass)
        return;
    va_start(args, format);
    emit(area, peer ? peer : "unknown peer", dropped, format, args);
    va_end(args);
}
