/* gwBeaconWatch.h - a callback when an upstream CA server starts (a beacon
 * from a server not seen before, or one whose beacon count restarted), seen
 * through the CA repeater. See gwBeaconWatch.c. */
#ifndef INC_gwBeaconWatch_H
#define INC_gwBeaconWatch_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gwBeaconWatch gwBeaconWatch;

/* Called on the watch's own thread, at most once per received datagram. */
typedef void gwBeaconWatchFunc(void *arg);

/* NULL (with a message) when it cannot be started; the gateway works
 * without it, only reconnects are slower. */
gwBeaconWatch *gwBeaconWatchStart(gwBeaconWatchFunc *func, void *arg);
/* After return the callback is not running and will not run. */
void gwBeaconWatchStop(gwBeaconWatch *watch);

#ifdef __cplusplus
}
#endif

#endif /* INC_gwBeaconWatch_H */
