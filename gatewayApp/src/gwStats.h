/* gwStats.h - the gateway's statistics (gwStats.c): the figures the
 * statistics records publish, computed from the gateway's counters by one
 * thread of their own.
 *
 * Counts (PVs by state, channels, clients, fds, ...) are read once a
 * second; rates (updates, searches, bytes per second, cpuFract) are the
 * change of the counters over the statistics interval (gwStatsInterval
 * seconds, read at each interval's start), as are the top lists (the
 * clients sending the most bytes, those with the most replaced updates,
 * the PVs with the most updates).
 *
 * Threads: the statistics thread samples; any thread reads the figures
 * (gwStatsValue, gwStatsText) and is told of new ones by its listener.
 * Locks: stats->lock, a leaf, guards the published figures. Sampling
 * reads the gateway's counters (gwGatewayGetCounters and friends), which
 * take no lock of the event path; listeners are called with no lock held.
 */
#ifndef INC_gwStats_H
#define INC_gwStats_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct gwGateway;
typedef struct gwStats gwStats;

/* The figures; the names are the record names' last part ($(P):vctotal). */
typedef enum gwStatId {
    /* counts, read once a second */
    GW_STAT_VCTOTAL, GW_STAT_PVTOTAL, GW_STAT_CONNECTED, GW_STAT_ACTIVE,
    GW_STAT_INACTIVE, GW_STAT_UNCONNECTED, GW_STAT_CONNECTING,
    GW_STAT_DISCONNECTED, GW_STAT_DEAD, GW_STAT_FD, GW_STAT_FD_LIMIT,
    GW_STAT_CLIENTS, GW_STAT_IOCS, GW_STAT_SUBSCRIPTIONS, GW_STAT_QUEUE_FILL,
    GW_STAT_REPLACED, GW_STAT_SEARCHES_DENIED, GW_STAT_PUTS, GW_STAT_PUTS_REFUSED,
    GW_STAT_UPTIME,
    /* rates, over the statistics interval */
    GW_STAT_CLIENT_EVENT_RATE, GW_STAT_CLIENT_POST_RATE, GW_STAT_EXIST_TEST_RATE,
    GW_STAT_LOOP_RATE, GW_STAT_CPU_FRACT, GW_STAT_LOAD, GW_STAT_SERVER_EVENT_RATE,
    GW_STAT_SERVER_POST_RATE, GW_STAT_REPLACED_RATE, GW_STAT_BYTES_IN_RATE,
    GW_STAT_BYTES_OUT_RATE,
    GW_STATS
} gwStatId;
#define GW_STAT_FIRST_RATE GW_STAT_CLIENT_EVENT_RATE

/* The top lists: text, one line per entry, busiest first. */
typedef enum gwStatTextId {
    GW_STAT_TOP_CLIENTS_BYTES, GW_STAT_TOP_CLIENTS_REPLACED, GW_STAT_TOP_PVS,
    GW_STAT_TEXTS
} gwStatTextId;
#define GW_STATS_TOP 10u          /* entries of each list */
#define GW_STATS_TEXT_SIZE 2048u  /* bytes of each list, with its '\0' */

/* The statistics interval in seconds (iocsh variable gwStatsInterval,
 * default 10; values outside 1..3600 are taken as the nearest bound). */
extern double gwStatsInterval;

/* The figure or list of a name ("vctotal", "topPvs"): 0 and the id, or -1. */
int gwStatsLookup(const char *name, gwStatId *id);
int gwStatsLookupText(const char *name, gwStatTextId *id);
const char *gwStatsName(gwStatId id);

/* The process's file descriptor limit now (0: none or unknown). */
double gwStatsFdLimit(void);

/* Statistics of gateway; the thread starts with gwStatsStart. NULL: no memory. */
gwStats *gwStatsCreate(struct gwGateway *gateway);
/* Stop the thread (if started) and free. */
void gwStatsDestroy(gwStats *stats);
/* Start sampling (again a no-op). 0, or -1 when the thread cannot start. */
int gwStatsStart(gwStats *stats);

/* The latest value of a figure (0 before the first sample). Any thread. */
double gwStatsValue(gwStats *stats, gwStatId id);
/* The latest top list into buf ("" before the first interval). */
void gwStatsText(gwStats *stats, gwStatTextId id, char *buf, size_t size);

/* Who is told of new figures: counts() after each count sample, rates()
 * after each interval; called on the statistics thread with no lock held.
 * One listener per gwStats (a second call replaces it; NULL functions:
 * none). */
void gwStatsListen(gwStats *stats, void (*counts)(void *arg), void (*rates)(void *arg),
                   void *arg);

#ifdef __cplusplus
}
#endif

#endif /* INC_gwStats_H */
