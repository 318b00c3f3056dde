/* gwRelayTest.c - the search relay (gwRelay.c) between a stand-in client
 * and two stand-in IOCs on loopback: what it forwards (re-numbered,
 * DONT_REPLY, its marker), what it passes back (each IOC's port, the
 * client's search id and sequence number, "the sender's" address for a
 * loopback one), what it drops (malformed, relayed, unknown replies), and
 * the start-up refusals. Opens sockets: inside scripts/netns run only
 * (gwTestNetns.h). */
#include <string.h>

#include <epicsUnitTest.h>
#include <osiSock.h>
#include <testMain.h>

#include "gwRelay.h"
#include "gwTestNetns.h"
#include "gwTestUdp.h"

static unsigned get16(const unsigned char *p) { return (unsigned)p[0] << 8 | p[1]; }
static unsigned long get32(const unsigned char *p)
{
    return (unsigned long)p[0] << 24 | (unsigned long)p[1] << 16 | (unsigned long)p[2] << 8 | p[3];
}
static void put16(unsigned char *p, unsigned v) { p[0] = (unsigned char)(v >> 8); p[1] = (unsigned char)v; }
static void put32(unsigned char *p, unsigned long v)
{
    p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8); p[3] = (unsigned char)v;
}

static size_t header(unsigned char *p, unsigned command, unsigned size, unsigned type,
                     unsigned count, unsigned long p1, unsigned long p2)
{
    put16(p, command); put16(p + 2, size); put16(p + 4, type); put16(p + 6, count);
    put32(p + 8, p1); put32(p + 12, p2);
    return 16;
}

static size_t search(unsigned char *p, const char *name, unsigned long id)
{
    size_t len = strlen(name) + 1, padded = (len + 7) & ~(size_t)7;

    header(p, 6, (unsigned)padded, 5, 13, id, id);
    memset(p + 16, 0, padded);
    memcpy(p + 16, name, len - 1);
    return 16 + padded;
}

static size_t reply(unsigned char *p, unsigned port, unsigned long address, unsigned long id)
{
    header(p, 6, 8, port, 0, address, id);
    memset(p + 16, 0, 8);
    put16(p + 16, 13);
    return 24;
}

static void sendTo(SOCKET s, const void *buf, size_t len, const struct sockaddr_in *to)
{
    if (sendto(s, buf, len, 0, (const struct sockaddr *)to, sizeof *to) != (int)len)
        testAbort("sendto failed");
}

MAIN(gwRelayTest)
{
    unsigned char buf[2048], out[2048];
    SOCKET client, ioc1, ioc2, probe;
    struct sockaddr_in relayAt, relayFrom, from;
    unsigned short port;
    char listen[64], forward[96];
    unsigned long id1 = 0, id2 = 0;
    size_t n;
    int got;

    (void)argc;
    (void)argv;
    if (!gwTestInNetns()) {
        testPlan(1);
        testSkip(1, "opens sockets: run inside scripts/netns run");
        return testDone();
    }
    testPlan(26);
    osiSockAttach();

    testDiag("start-up refusals");
    testOk(gwRelayStart("0.0.0.0", NULL, 0) != 0, "the wildcard address is refused");
    testOk(gwRelayStart("224.0.2.9", NULL, 0) != 0, "a multicast group is refused");
    testOk(gwRelayStart("", NULL, 0) != 0, "an empty listen list is refused");
    testOk(gwRelayStart("127.0.0.2", NULL, -1.0) != 0, "a negative rate is refused");
    testOk(gwRelayStart("127.0.0.2:bad", NULL, 0) != 0, "a bad port is refused");
    testOk(!gwRelayIsRunning(), "nothing runs after a refusal");

    probe = gwTestUdpSocket("127.0.0.2", 0);
    port = gwTestBoundPort(probe);
    epicsSocketDestroy(probe);
    ioc1 = gwTestUdpSocket("127.0.0.1", 0);
    ioc2 = gwTestUdpSocket("127.0.0.1", 0);
    client = gwTestUdpSocket("127.0.0.3", 0);
    sprintf(listen, "127.0.0.2:%u", port);
    sprintf(forward, "127.0.0.1:%u 127.0.0.1:%u", gwTestBoundPort(ioc1), gwTestBoundPort(ioc2));
    testOk(gwRelayStart(listen, forward, 0) == 0, "the relay starts (%s -> %s)", listen, forward);
    relayAt = gwTestAddress("127.0.0.2", port);

    testDiag("a client's searches are forwarded to every destination");
    n = header(buf, 0, 0, 0, 13, 77, 0);
    n += search(buf + n, "a:b", 11);
    n += search(buf + n, "c:d", 12);
    sendTo(client, buf, n, &relayAt);
    got = gwTestReceive(ioc1, out, sizeof out, &relayFrom, 5.0);
    testOk(got == 16 + 24 + 24, "IOC 1 got one datagram of VERSION + 2 SEARCH (%d bytes)", got);
    if (got == 64) {
        testOk(get16(out) == 0 && get32(out + 12) == GW_RELAY_MARKER,
               "it starts with a VERSION carrying the relay's marker");
        id1 = get32(out + 28);
        id2 = get32(out + 52);
        testOk(get16(out + 16) == 6 && get16(out + 20) == 5 && strcmp((char *)out + 32, "a:b") == 0
               && get32(out + 24) == id1,
               "SEARCH a:b, DONT_REPLY, one id in both parameters (%lu)", id1);
        testOk(strcmp((char *)out + 56, "c:d") == 0 && id2 != id1 && id1 && id2,
               "SEARCH c:d with another id (%lu)", id2);
    } else {
        testSkip(3, "no forwarded datagram");
    }
    got = gwTestReceive(ioc2, out, sizeof out, NULL, 5.0);
    testOk(got == 64, "IOC 2 got the same datagram");

    testDiag("every IOC's reply goes back to the client");
    n = header(buf, 0, 0, 1, 13, 999, 0);
    n += reply(buf + n, 4321, 0xffffffffu, id1);
    sendTo(ioc1, buf, n, &relayFrom);
    got = gwTestReceive(client, out, sizeof out, &from, 5.0);
    testOk(got == 16 + 24, "the client got VERSION + 1 reply (%d bytes)", got);
    testOk(from.sin_addr.s_addr == relayAt.sin_addr.s_addr && from.sin_port == relayAt.sin_port,
           "from the address and port it searched");
    testOk(got == 40 && get16(out) == 0 && get32(out + 8) == 77,
           "the VERSION carries the client's sequence number");
    testOk(got == 40 && get16(out + 16) == 6 && get16(out + 20) == 4321
           && get32(out + 24) == 0xffffffffu && get32(out + 28) == 11 && get16(out + 32) == 13,
           "the reply: IOC 1's port, the sender's address, the client's search id 11");
    n = header(buf, 0, 0, 1, 13, 5, 0);
    n += reply(buf + n, 4322, 0x7f000001u, id1);
    n += reply(buf + n, 4323, 0x0a010203u, id2);
    sendTo(ioc2, buf, n, &relayFrom);
    got = gwTestReceive(client, out, sizeof out, NULL, 5.0);
    testOk(got == 16 + 24 + 24, "IOC 2's two replies came in one datagram (%d bytes)", got);
    testOk(got == 64 && get16(out + 20) == 4322 && get32(out + 24) == 0xffffffffu
           && get32(out + 28) == 11,
           "a loopback address becomes the sender's, the same name answered twice");
    testOk(got == 64 && get16(out + 44) == 4323 && get32(out + 48) == 0x0a010203u
           && get32(out + 52) == 12,
           "another IOC's own address passes through, for search id 12");

    testDiag("what is dropped");
    n = header(buf, 0, 0, 1, 13, 5, 0);
    n += reply(buf + n, 4324, 0xffffffffu, id2 + 1000);
    sendTo(ioc1, buf, n, &relayFrom);
    testOk(gwTestReceive(client, out, sizeof out, NULL, 0.3) < 0,
           "a reply with an unknown search id goes nowhere");
    n = header(buf, 6, 4000, 5, 13, 1, 1);
    sendTo(client, buf, n, &relayAt);
    testOk(gwTestReceive(ioc1, out, sizeof out, NULL, 0.3) < 0,
           "a SEARCH whose payload is longer than the datagram is not forwarded");
    n = header(buf, 6, 8, 5, 13, 1, 1);
    memcpy(buf + n, "12345678", 8);
    sendTo(client, buf, n + 8, &relayAt);
    testOk(gwTestReceive(ioc1, out, sizeof out, NULL, 0.3) < 0,
           "a name without its NUL is not forwarded");
    n = header(buf, 0, 0, 1, 13, 1, GW_RELAY_MARKER);
    n += search(buf + n, "a:b", 13);
    sendTo(client, buf, n, &relayAt);
    testOk(gwTestReceive(ioc1, out, sizeof out, NULL, 0.3) < 0,
           "a datagram another relay forwarded is not forwarded again");
    n = search(buf, "e:f", 14);
    sendTo(client, buf, n, &relayAt);
    got = gwTestReceive(ioc1, out, sizeof out, NULL, 5.0);
    testOk(got == 16 + 24 && strcmp((char *)out + 32, "e:f") == 0,
           "and a good search after them still is");

    gwRelayStop();
    testOk(!gwRelayIsRunning(), "gwRelayStop stops it");
    sendTo(client, buf, n, &relayAt);
    testOk(gwTestReceive(ioc1, out, sizeof out, NULL, 0.3) < 0, "nothing is forwarded after stop");
    epicsSocketDestroy(client);
    epicsSocketDestroy(ioc1);
    epicsSocketDestroy(ioc2);
    return testDone();
}
