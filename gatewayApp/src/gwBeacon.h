/* gwBeacon.h - the CA server's beacons (gwBeacon.c).
 *
 * Sends RSRV_IS_UP to every beacon address every beaconPeriod, starting
 * with the fast sequence (0.02 s, doubling up to the period). Own thread.
 * Start/stop from the server's start/stop; anomaly and pause from any
 * thread.
 */
#ifndef INC_gwBeacon_H
#define INC_gwBeacon_H

#include "gwServer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gwBeacon gwBeacon;

gwBeacon *gwBeaconStart(gwServer *server);
/* Start the fast sequence again (upstream reconnects, access reloads). */
void gwBeaconAnomaly(gwBeacon *beacon);
/* Paused (iocPause) no beacon is sent, as RSRV sends none; 0 resumes
 * with the fast sequence. */
void gwBeaconPause(gwBeacon *beacon, int paused);
void gwBeaconStop(gwBeacon *beacon);

#ifdef __cplusplus
}
#endif

#endif /* INC_gwBeacon_H */
