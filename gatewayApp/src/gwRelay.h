/* gwRelay.h - the search relay: makes every soft IOC of a host reachable
 * by unicast name searches, without passing any data (gwRelay.c).
 *
 * Several IOCs on one host share UDP port 5064; the kernel gives a unicast
 * datagram to one of them only. The relay binds the host's own address(es)
 * on that port (a specific address wins the unicast over the IOCs'
 * wildcard sockets), forwards each search to where every local IOC hears
 * it (the loopback broadcast 127.255.255.255, or a loopback multicast
 * group), and sends every IOC's reply back to the client with that IOC's
 * TCP port and the address the client searched, so the client's circuit
 * goes to the IOC directly.
 *
 * One relay per process, started and stopped from iocsh (gwRelay,
 * gwRelayStop) or the code below; independent of the gateway's server.
 * Threads: one ("gwRelay") owns the sockets and tables; start/stop/report
 * from any one thread at a time (iocsh); the report reads counters only.
 */
#ifndef INC_gwRelay_H
#define INC_gwRelay_H

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Names forwarded per second for one client (address and port) when not
 * given, and the burst it may send at once (twice that). All clients
 * together: four times a client's. */
#define GW_RELAY_DEFAULT_RATE 5000.0
/* Searches remembered for their replies (the oldest are forgotten first)
 * and for how long. */
#define GW_RELAY_OUTSTANDING 8192u
#define GW_RELAY_EXPIRE_SECONDS 3.0
/* The VERSION of every datagram the relay forwards carries this in its
 * last word: a relay drops datagrams that carry it (two relays never loop). */
#define GW_RELAY_MARKER 0x47575259u

/* Start the relay: listen on `listen` ("addr[:port] ...", specific unicast
 * addresses of this host, default port EPICS_CA_SERVER_PORT or 5064), and
 * forward to `forward` (default "127.255.255.255"; broadcast, multicast
 * group or unicast addresses, default port the same). rate: names per
 * second per client, 0 for GW_RELAY_DEFAULT_RATE. A running relay is
 * stopped first. 0, or -1 with the reason printed (nothing started). */
int gwRelayStart(const char *listen, const char *forward, double rate);
/* Stop it (nothing when none runs). Also at process exit. */
void gwRelayStop(void);
/* 1 when it runs. */
int gwRelayIsRunning(void);
/* Print its report: level 0 one line, 1 its sockets and counters.
 * Nothing when none runs. */
void gwRelayReport(FILE *out, unsigned level);

#ifdef __cplusplus
}
#endif

#endif /* INC_gwRelay_H */
