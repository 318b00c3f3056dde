/* gwMulticast.c - multicast addresses and sending to groups on loopback
 * (gwMulticast.h). */
#include "gwMulticast.h"

int gwIsMulticast(epicsUInt32 address)
{
    return ntohl(address) >> 28 == 0xeu;
}

int gwListHasMulticast(const ELLLIST *addresses)
{
    const ELLNODE *cur;

    for (cur = ellFirst(addresses); cur; cur = ellNext(cur)) {
        const osiSockAddr *a = &((const osiSockAddrNode *)cur)->addr;

        if (a->ia.sin_family == AF_INET && gwIsMulticast(a->ia.sin_addr.s_addr))
            return 1;
    }
    return 0;
}

int gwMulticastOnLoopback(SOCKET sock)
{
    struct in_addr loopback;
    unsigned char ttl = 1, loop = 1;

    loopback.s_addr = htonl(INADDR_LOOPBACK);
    if (setsockopt(sock, IPPROTO_IP, IP_MULTICAST_IF, (char *)&loopback, sizeof loopback) != 0
        || setsockopt(sock, IPPROTO_IP, IP_MULTICAST_TTL, (char *)&ttl, sizeof ttl) != 0
        || setsockopt(sock, IPPROTO_IP, IP_MULTICAST_LOOP, (char *)&loop, sizeof loop) != 0)
        return -1;
    return 0;
}
