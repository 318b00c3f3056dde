/* gwCircuit.h - one TCP circuit of the CA server.
 *
 * A circuit belongs to one I/O loop for its whole life: the loop thread
 * reads and handles its requests, sends its output and closes it. Provider
 * callbacks (get completions, monitor updates, rights changes) come from
 * any thread and only queue output under the circuit's lock.
 */
#ifndef INC_gwCircuit_H
#define INC_gwCircuit_H

#include <ellLib.h>
#include <osiSock.h>
#include <epicsTime.h>

#include "gwIoLoop.h"
#include "gwServer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gwCircuit gwCircuit;

/* Take over an accepted socket and start serving it on loop (the socket
 * is registered from the loop thread). NULL (socket closed) on failure. */
gwCircuit *gwCircuitCreate(gwServer *server, gwIoLoop *loop, SOCKET sock,
                           const struct sockaddr_in *peer);

/* Close the circuit: cancel its subscriptions, detach its channels, close
 * the socket, tell the server (gwServerCircuitGone) and free it. Loop
 * thread only. */
void gwCircuitClose(gwCircuit *circuit);

/* The stuck-circuit sweep, on a loop's thread: 1 when the circuit is
 * served by the calling thread's loop and, with now given, its output has
 * been stuck longer than stuckSeconds (now NULL: every circuit of the
 * loop, for the stop). Also passes on, once a second, the counts of
 * updates still unsent. */
int gwCircuitSweepCheck(gwCircuit *circuit, const epicsTimeStamp *now, double stuckSeconds);
/* Close a circuit the sweep found stuck, saying so in the log. Loop thread. */
void gwCircuitCloseStuck(gwCircuit *circuit, double stuckSeconds);

/* The server's list of circuits (gwServerCircuitAdd) links them through a
 * node of the circuit (server lock). */
ELLNODE *gwCircuitListNode(gwCircuit *circuit);
gwCircuit *gwCircuitOfListNode(ELLNODE *node);

/* Counts for reports and statistics (any thread). */
unsigned gwCircuitChannelCount(gwCircuit *circuit);
/* One circuit's traffic since it was accepted (any thread; takes no lock
 * the event path takes). */
void gwCircuitTraffic(gwCircuit *circuit, gwServerClient *out);
struct gwText;
/* Append the circuit's report lines to text (its lock held meanwhile). */
void gwCircuitReport(gwCircuit *circuit, struct gwText *text, unsigned level);

/* The circuit whose request the calling thread is handling, or NULL
 * (for dbServer's client identification). */
gwCircuit *gwCircuitCurrent(void);
/* "user@host" of a circuit into buf. */
void gwCircuitDescribe(gwCircuit *circuit, char *buf, size_t size);
/* Who is at the other end, for log messages: "address:port", followed by
 * " (user@host)" once the client has named itself; into buf, returned. */
#define GW_CIRCUIT_WHO_SIZE 192u
const char *gwCircuitWho(gwCircuit *circuit, char *buf, size_t size);

#ifdef __cplusplus
}
#endif

#endif /* INC_gwCircuit_H */
