/* gwTestUdp.c - UDP helpers of the socket unit tests (see gwTestUdp.h). */
#include <errno.h>
#include <poll.h>
#include <string.h>

#include <epicsUnitTest.h>

#include "gwTestUdp.h"

struct sockaddr_in gwTestAddress(const char *dotted, unsigned short port)
{
    struct sockaddr_in a;

    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = inet_addr(dotted);
    return a;
}

SOCKET gwTestUdpSocket(const char *dotted, unsigned short port)
{
    struct sockaddr_in a = gwTestAddress(dotted, port);
    SOCKET s = epicsSocketCreate(AF_INET, SOCK_DGRAM, 0);
    int yes = 1;

    if (s == INVALID_SOCKET)
        testAbort("socket: %s", strerror(errno));
    setsockopt(s, SOL_SOCKET, SO_BROADCAST, (char *)&yes, sizeof yes);
    if (bind(s, (struct sockaddr *)&a, sizeof a) != 0)
        testAbort("bind %s:%u: %s", dotted, port, strerror(errno));
    return s;
}

unsigned short gwTestBoundPort(SOCKET s)
{
    struct sockaddr_in a;
    osiSocklen_t n = sizeof a;

    getsockname(s, (struct sockaddr *)&a, &n);
    return ntohs(a.sin_port);
}

int gwTestReceive(SOCKET s, void *buf, size_t cap, struct sockaddr_in *from, double seconds)
{
    struct pollfd p;
    struct sockaddr_in sender;
    osiSocklen_t n = sizeof sender;

    p.fd = s;
    p.events = POLLIN;
    p.revents = 0;
    if (poll(&p, 1, (int)(seconds * 1000)) != 1)
        return -1;
    return recvfrom(s, (char *)buf, cap, 0, (struct sockaddr *)(from ? from : &sender), &n);
}

int gwTestPending(SOCKET s)
{
    struct pollfd p;

    p.fd = s;
    p.events = POLLIN;
    p.revents = 0;
    return poll(&p, 1, 0) == 1;
}
