/* gwDelivery.h - an optional hint from a provider's delivering thread to
 * the server: "more updates follow at once on this thread, send later".
 *
 * Without it the server sends each update (gwValueCallback) as soon as it
 * is queued: on the calling thread when the circuit's output is idle (the
 * thread takes the sender role for a few non-blocking send() calls), else
 * through the circuit's I/O loop. A provider that knows more updates are
 * about to follow on the same thread (Base's dbEvent tells its callbacks
 * whether events remain queued) may hold the sends back, so that a burst
 * of updates leaves in few send() calls, as RSRV's event task does.
 *
 * Threads: both calls on the delivering thread itself; the batch is that
 * thread's while held (the provider owns the storage, e.g. one per event
 * task). Between gwDeliveryHold and gwDeliveryRelease the thread calls the
 * server's callbacks as usual, and never blocks waiting for anything the
 * server does (a held update stays unsent until the release, or until its
 * circuit has GW_CIRCUIT_HOLD_MAX bytes queued). Release soon: at the
 * latest when the thread runs out of updates to deliver.
 *
 * A thread that must get back to its own input quickly (the upstream
 * provider's libca receive thread: the next update is already waiting in
 * its socket) sets loopsSend: the held circuits then go to their I/O loops
 * at the release, so sending runs in parallel with receiving.
 *
 * The semantics of gwProvider.h do not change: a provider that never
 * holds is served exactly as before.
 */
#ifndef INC_gwDelivery_H
#define INC_gwDelivery_H

#ifdef __cplusplus
extern "C" {
#endif

/* Circuits one batch remembers; with more, the batch sends early. */
#define GW_DELIVERY_BATCH_MAX 64

typedef struct gwDeliveryBatch {
    int loopsSend;                           /* provider's: 1 = never send on
                                                the delivering thread, hand
                                                every circuit to its I/O loop */
    unsigned count;                          /* server's */
    void *circuits[GW_DELIVERY_BATCH_MAX];   /* server's, opaque */
} gwDeliveryBatch;

/* From now on, updates delivered on this thread are queued into their
 * circuits' output and remembered in batch (zero-initialised storage the
 * caller owns, not held by another thread). */
void gwDeliveryHold(gwDeliveryBatch *batch);

/* Send what the thread held back, and stop holding. */
void gwDeliveryRelease(gwDeliveryBatch *batch);

#ifdef __cplusplus
}
#endif

#endif /* INC_gwDelivery_H */
