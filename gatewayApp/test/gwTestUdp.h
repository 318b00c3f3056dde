/* gwTestUdp.h - UDP helpers of the unit tests that open sockets on
 * loopback (gwNameServerTest, gwUpstreamSearchTest): bind, bound port,
 * a bounded receive. Failures to make a socket abort the test
 * (testAbort). Test threads only. */
#ifndef INC_gwTestUdp_H
#define INC_gwTestUdp_H

#include <stddef.h>

#include <osiSock.h>

/* The IPv4 address dotted:port. */
struct sockaddr_in gwTestAddress(const char *dotted, unsigned short port);
/* A UDP socket bound to dotted:port (port 0: any), broadcasts allowed. */
SOCKET gwTestUdpSocket(const char *dotted, unsigned short port);
/* The port a socket is bound to. */
unsigned short gwTestBoundPort(SOCKET s);
/* One datagram (its sender in *from unless NULL): its length, or -1 when
 * none comes within `seconds` (a bound, not a measurement). */
int gwTestReceive(SOCKET s, void *buf, size_t cap, struct sockaddr_in *from, double seconds);
/* Is a datagram waiting already? (No waiting.) */
int gwTestPending(SOCKET s);

#endif /* INC_gwTestUdp_H */
