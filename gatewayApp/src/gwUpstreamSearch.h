/* gwUpstreamSearch.h - the upstream provider's name searches: a UDP
 * SEARCH for a new PV sent at once, the name reported when an IOC
 * answers, and libca's searches passed through (the search proxy). See
 * gwUpstreamSearch.c. */
#ifndef INC_gwUpstreamSearch_H
#define INC_gwUpstreamSearch_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gwUpSearch gwUpSearch;

/* IOCs answered the searches for these names, in the order they were
 * searched for (on the search's own thread, no lock of the search held;
 * the array and names are valid during the call only, and the callee may
 * reorder the array). */
typedef void gwUpSearchFound(void *arg, const char **names, unsigned count);
/* The most names one call reports. */
#define GW_UPSEARCH_FOUND_MAX 256u

/* Make the socket and read the address list NOW, from EPICS_CA_ADDR_LIST
 * and EPICS_CA_AUTO_ADDR_LIST as they are set at this moment (the caller
 * sets them as for its libca context); searches go to `port` of each
 * address. NULL (with a message) when it cannot be made: the provider
 * then waits for libca's own searches. */
gwUpSearch *gwUpSearchCreate(unsigned short port, gwUpSearchFound *found, void *arg);
/* The loopback UDP port libca's address list should name so that its
 * searches pass through (127.0.0.1:port); 0 when there is none (libca
 * then searches the upstream address list itself). */
unsigned short gwUpSearchProxyPort(const gwUpSearch *search);
/* After return the callback is not running and will not run. */
void gwUpSearchDestroy(gwUpSearch *search);

/* Search for name soon: searches are packed into datagrams, sent by the
 * caller when a datagram is full or at gwUpSearchFlush, else by the
 * search's thread GW_UPSEARCH_FLUSH_SECONDS after the first one. Any
 * thread; never blocks for long. */
void gwUpSearchSend(gwUpSearch *search, const char *name);
/* Stop searching for name if nobody answered it yet (the PV is given up).
 * Any thread; search->lock is a leaf, so any lock may be held. */
void gwUpSearchCancel(gwUpSearch *search, const char *name);
/* Send the searches packed so far, now, on the calling thread (the
 * server's series of searches is over). */
void gwUpSearchFlush(gwUpSearch *search);

typedef struct gwUpSearchCounts {
    size_t sent;        /* names searched for */
    size_t answered;    /* names an IOC answered */
    size_t waiting;     /* names searched, not answered, still remembered */
    size_t libcaSearches; /* libca's searches that passed through */
    size_t libcaAnswered; /* of them answered (with an IOC's address) */
    unsigned addresses; /* destinations of each datagram */
} gwUpSearchCounts;

void gwUpSearchGetCounts(gwUpSearch *search, gwUpSearchCounts *counts);

#ifdef __cplusplus
}
#endif

#endif /* INC_gwUpstreamSearch_H */
