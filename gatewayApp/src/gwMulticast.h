/* gwMulticast.h - multicast addresses and sending to groups on loopback
 * (gwMulticast.c): used by the name server (which groups to join), the
 * upstream provider's searches and the search relay (which send to
 * groups of this host only). No state, any thread. */
#ifndef INC_gwMulticast_H
#define INC_gwMulticast_H

#include <ellLib.h>
#include <epicsTypes.h>
#include <osiSock.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when address (network order) is a multicast group, 224.0.0.0/4. */
int gwIsMulticast(epicsUInt32 address);
/* 1 when a list of osiSockAddrNode names a multicast group. */
int gwListHasMulticast(const ELLLIST *addresses);
/* Make sock send to groups through 127.0.0.1 with TTL 1 and loopback
 * on, so every server of this host that joined the group on lo hears it
 * and nothing leaves the host. 0, or -1 (SOCKERRNO tells why). */
int gwMulticastOnLoopback(SOCKET sock);

#ifdef __cplusplus
}
#endif

#endif /* INC_gwMulticast_H */
