/* gwLocal.h - the local provider: the IOC's own records, served through the
 * provider interface (gwProvider.h) to the gateway's CA server, as RSRV
 * serves them, without a thread per client.
 *
 * Who may call what, from which thread:
 * - gwLocalProviderCreate(eventTasks): once the database runs, i.e. after
 *   iocInit (from st.cmd after iocInit, or an initHook at
 *   initHookAfterIocRunning). It starts the provider's threads: eventTasks
 *   database event contexts, each with its task "gwLocalEvent0",
 *   "gwLocalEvent1", ... (0: GW_LOCAL_DEFAULT_EVENT_TASKS; the gateway
 *   passes its server's number of I/O threads), which deliver every
 *   asynchronous callback to the server, and "gwLocalReap" (releases
 *   subscriptions and channels the server gave up from inside a callback).
 *   Each attached channel is given one event context, round-robin. Returns
 *   NULL (after printing why) when the database is not loaded or a thread
 *   cannot start.
 * - The server calls the operations (gwProviderOps) from its own threads as
 *   gwProvider.h says. Operations on ONE channel (and its subscriptions)
 *   are not called concurrently with that channel's detach().
 * - gwLocalProviderDestroy(): from any thread except the provider's own
 *   (not from inside a callback), before iocShutdown. Channels still
 *   attached are detached first (their subscriptions cancelled, their
 *   outstanding puts completed with ECA_PUTFAIL); then its threads stop.
 *
 * What the server sees:
 * - exists() is YES for every name dbChannelTest() accepts: "rec",
 *   "rec.FIELD", with channel filters ("rec.VAL{\"arr\":{\"s\":1}}").
 * - nativeType()/nativeCount() are what RSRV puts into CREATE_CHAN:
 *   dbChannelFinalCAType() and dbChannelFinalElements() (after filters).
 * - get() is synchronous: done() is called before get() returns, on the
 *   calling thread. A count above the elements the field holds now (a
 *   waveform's NORD) is padded with zeros, as RSRV does; a count above
 *   nativeCount is refused (RSRV would pad that too, libca refuses it
 *   before sending). Count 0 delivers the current size (DBR_CLASS_NAME, whose
 *   count the database ignores, then reports the field's element count,
 *   as RSRV's header would).
 * - Updates, put completions and rightsChanged() of a channel arrive on
 *   the event task of the channel's context, one at a time and in order,
 *   never with a provider lock held; callbacks of channels on different
 *   contexts run in parallel. The server may call any operation from
 *   inside them (cancel, enable, detach included). They may arrive BEFORE
 *   the operation that caused them returns: the first update before
 *   subscribe() returns, a put's done() before put() returns,
 *   rightsChanged() before attach() returns (when the rules change
 *   meanwhile) -- the server's object must be ready to receive them before
 *   it calls. Cancelling or detaching a channel of ANOTHER context from
 *   inside a callback waits for that context's running callback of it (as
 *   from any other thread), so two callbacks must not do that to each
 *   other (the server cancels and detaches from its I/O threads only).
 * - rights() is asCheckGet / asCheckPut of the channel's asLib client;
 *   SPC_NOMOD fields are never writable (as RSRV's rsrvCheckPut). With
 *   asCheckClientIP set the host asLib sees is the client's IP address.
 *   clientChanged() gives asLib the new names (asChangeClient);
 *   rightsChanged() follows asynchronously when the rights really changed.
 * - Subscriptions are always enabled at subscribe(); without read access
 *   each update carries ECA_NORDACCESS and a NULL value (RSRV sends the
 *   same status). enable(0) holds updates (db_event_disable, and queued
 *   ones are dropped); enable(1) releases them and, if they were held,
 *   delivers the current value at once (as RSRV does on regained access).
 * - cancel() returns when no update of the subscription runs or will run
 *   (db_cancel_event waits for a running one). detach() returns when no
 *   call for the channel runs or will run: its left-over subscriptions
 *   are cancelled, running puts with completion are cancelled
 *   (dbNotifyCancel) and completed with ECA_PUTFAIL, finished ones are
 *   completed with their status -- done() is called by detach itself.
 * - Status codes: get: ECA_BADTYPE (type < 0, > DBR_CLASS_NAME, or
 *   DBR_PUT_ACKT/ACKS), ECA_BADCOUNT (count > nativeCount), ECA_NORDACCESS,
 *   ECA_ALLOCMEM; done() gets ECA_GETFAIL with a NULL value when the
 *   database read fails. put: ECA_BADTYPE (not a writable type: 0..34,
 *   DBR_PUT_ACKT, DBR_PUT_ACKS), ECA_BADCOUNT (0 or > the field's
 *   elements), ECA_NOWTACCESS, ECA_ALLOCMEM, ECA_PUTFAIL (plain write
 *   refused by the database); a put with completion reports ECA_NORMAL or
 *   ECA_PUTFAIL through done(). subscribe: as get, and ECA_BADMASK for a
 *   mask of 0 or above 0xff; ECA_GETFAIL in an update as for get.
 * - Writes go through asTrapWriteWithData/asTrapWriteAfter (caPutLog sees
 *   them) with the value as its plain DBR type (a DBR_TIME_DOUBLE put is
 *   logged, and written, as its DBR_DOUBLE value).
 */
#ifndef INC_gwLocal_H
#define INC_gwLocal_H

#include "gwProvider.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Event contexts when gwLocalProviderCreate() is given 0: the server's
 * default number of I/O threads. */
#define GW_LOCAL_DEFAULT_EVENT_TASKS 2

/* Create the local provider with eventTasks event contexts (0: the
 * default; see above). The caller owns the result and releases it with
 * gwLocalProviderDestroy(). */
gwProvider *gwLocalProviderCreate(unsigned eventTasks);

/* Release everything the provider holds. NULL is ignored. */
void gwLocalProviderDestroy(gwProvider *provider);

#ifdef __cplusplus
}
#endif

#endif /* INC_gwLocal_H */
