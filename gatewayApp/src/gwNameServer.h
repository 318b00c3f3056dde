/* gwNameServer.h - UDP name resolution of the CA server (gwNameServer.c).
 *
 * One UDP socket per configured interface (INADDR_ANY when none), bound to
 * the server's port with SO_REUSEADDR, joining the multicast groups of the
 * interface list; searches from the ignore list are dropped. The searches
 * of one datagram are offered to the providers as one batch; answers go
 * back to the sender, several per datagram. Runs its own thread(s).
 *
 * Who calls what: start/stop from the server's start/stop; settled and
 * pause from any thread, no lock held; counters from any thread.
 */
#ifndef INC_gwNameServer_H
#define INC_gwNameServer_H

#include "gwServer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gwNameServer gwNameServer;

gwNameServer *gwNameServerStart(gwServer *server);
void gwNameServerStop(gwNameServer *names);
/* A provider settled names it answered PENDING and now serves them (to
 * any client): the searches waiting for them are answered, the answers to
 * one client packed into as few datagrams as its searches came in. */
void gwNameServerSettled(gwNameServer *names, const char *const *settled, unsigned count);
/* Paused (iocPause), searches are received and dropped unanswered, as
 * RSRV's are; 0 answers them again. */
void gwNameServerPause(gwNameServer *names, int paused);

/* What the name server has seen so far (for reports and statistics). */
typedef struct gwNameServerCounters {
    unsigned long datagrams;   /* received, ignored ones included */
    unsigned long ignored;     /* dropped: source in ignoreAddresses, or paused */
    unsigned long malformed;   /* datagrams whose processing stopped at a bad message */
    unsigned long searches;    /* SEARCH messages decoded */
    unsigned long answered;    /* SEARCH replies sent */
    unsigned long replyDatagrams; /* reply datagrams sent */
} gwNameServerCounters;
/* The counters are read one by one, not as a snapshot. */
void gwNameServerGetCounters(const gwNameServer *names, gwNameServerCounters *out);

#ifdef __cplusplus
}
#endif

#endif /* INC_gwNameServer_H */
