/* gwLog.h - the gateway's log messages: named areas, each with a level
 * an operator sets at run time (iocsh gwLogLevel), and rate-limited
 * messages about misbehaving peers (gwLog.c).
 *
 * A message of an area is printed when its level is at most the area's
 * level (error < warning < info < debug), through Base's errlog, as one
 * line "gateway <area>: <text>". gwLog and gwLogPeer test the level with
 * one atomic read before anything is formatted: they may sit on hot paths.
 * Formats carry no trailing newline (one is added).
 *
 * gwLogPeer is for messages a peer causes (a malformed message, a protocol
 * error, a bad datagram): the text starts with the peer (address:port, and
 * user@host when known), and the messages of one area pass a token bucket
 * (GW_LOG_PEER_BURST messages, one more every GW_LOG_PEER_PERIOD /
 * GW_LOG_PEER_BURST seconds); the first one printed after some were
 * dropped says how many.
 *
 * Any thread may call anything here; no lock of the caller is taken.
 */
#ifndef INC_gwLog_H
#define INC_gwLog_H

#include <epicsAtomic.h>
#include <epicsTypes.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gwLogArea {
    GW_LOG_SERVER,      /* the CA server: start, stop, listening, I/O loops, configuration */
    GW_LOG_CIRCUIT,     /* client circuits (TCP): protocol errors, stuck clients */
    GW_LOG_NAMES,       /* the UDP name server: search datagrams */
    GW_LOG_BEACON,      /* the server's beacons */
    GW_LOG_UPSTREAM,    /* the upstream provider: libca, upstream channels and beacons */
    GW_LOG_SEARCH,      /* the upstream provider's own searches and search proxy */
    GW_LOG_LOCAL,       /* the local provider: the IOC's own records */
    GW_LOG_RELAY,       /* the search relay (gwRelay) */
    GW_LOG_AREAS
} gwLogArea;

typedef enum gwLogLevel {
    GW_LOG_ERROR,
    GW_LOG_WARNING,
    GW_LOG_INFO,
    GW_LOG_DEBUG,
    GW_LOG_LEVELS
} gwLogLevel;

/* Token bucket of the peer messages of each area. */
#define GW_LOG_PEER_BURST 10u
#define GW_LOG_PEER_PERIOD 10.0

#if defined(__GNUC__)
#define GW_LOG_PRINTF(a, b) __attribute__((format(__printf__, a, b)))
#else
#define GW_LOG_PRINTF(a, b)
#endif

/* The level of each area (atomic; read through gwLogEnabled). */
extern int gwLogLevels[GW_LOG_AREAS];

#define gwLogEnabled(area, level) \
    ((int)(level) <= epicsAtomicGetIntT(&gwLogLevels[(area)]))

/* gwLog(area, level, format, ...) */
#define gwLog(area, level, ...) \
    do { \
        if (gwLogEnabled(area, level)) \
            gwLogPrint((area), __VA_ARGS__); \
    } while (0)

/* gwLogPeer(area, level, peerText, format, ...) */
#define gwLogPeer(area, level, peer, ...) \
    do { \
        if (gwLogEnabled(area, level)) \
            gwLogPrintPeer((area), (peer), __VA_ARGS__); \
    } while (0)

/* What the macros call once the level passed (no level test of their own). */
void gwLogPrint(gwLogArea area, const char *format, ...) GW_LOG_PRINTF(2, 3);
void gwLogPrintPeer(gwLogArea area, const char *peer, const char *format, ...)
    GW_LOG_PRINTF(3, 4);

/* Levels by area. */
gwLogLevel gwLogGetLevel(gwLogArea area);
void gwLogSetLevel(gwLogArea area, gwLogLevel level);
/* The defaults of every area again. */
void gwLogResetLevels(void);

/* Names ("server", ..., "warning", ...): NULL when out of range; the
 * area or level of a name (exact, lower case), -1 when there is none. */
const char *gwLogAreaName(gwLogArea area);
const char *gwLogLevelName(gwLogLevel level);
int gwLogAreaFind(const char *name);
int gwLogLevelFind(const char *name);

/* Set the level of the area named (or of every area for "all") to the
 * level named; 0, or -1 when a name is unknown (nothing is changed). */
int gwLogSetByName(const char *area, const char *level);

/* A token bucket: `burst` tokens, refilled at burst per `period` seconds.
 * Zero-initialised it is full. gwLogBucketTake takes a token at `now`
 * (nanoseconds of a monotonic clock): 1 when there was one, and then
 * *dropped is the number refused since the last success (and reset);
 * 0 when there was none (the refusal is counted). Not locked: the caller
 * serialises. */
typedef struct gwLogBucket {
    double tokens;
    epicsUInt64 last;
    unsigned dropped;
    int started;
} gwLogBucket;

int gwLogBucketTake(gwLogBucket *bucket, unsigned burst, double period,
                    epicsUInt64 now, unsigned *dropped);

#ifdef __cplusplus
}
#endif

#endif /* INC_gwLog_H */
