/* gwCircuitPriv.h - what gwCircuit.c (I/O, output) and gwCircuitChannel.c
 * (requests, channels, subscriptions) share. Not for other files.
 *
 * Field ownership: "loop" fields are touched only on the circuit's loop
 * thread; "lock" fields only with circuit->lock held; "const" fields are
 * set at creation.
 */
#ifndef INC_gwCircuitPriv_H
#define INC_gwCircuitPriv_H

#include <stddef.h>

#include <ellLib.h>
#include <epicsAtomic.h>
#include <epicsEvent.h>
#include <dbDefs.h>
#include <epicsMutex.h>
#include <epicsTime.h>

#include "gwChannelIds.h"
#include "gwCircuit.h"
#include "gwCodec.h"
#include "gwIoLoop.h"
#include "gwProviderCall.h"
#include "gwServerPriv.h"


/* Output buffer growth step and the mark above which requests are not read. */
#define GW_CIRCUIT_OUT_CHUNK (64u * 1024u)
#define GW_CIRCUIT_HIGH_WATER (256u * 1024u)
#define GW_CIRCUIT_IN_CHUNK (16u * 1024u)
/* Gets and puts with completion of one circuit at its providers at most.
 * At this many the circuit's requests are not read until half of them are
 * done: RSRV blocks a client's thread the same way behind a busy put, and
 * a local put's completion costs one callbackRequest on Base's cbLow ring,
 * where a lost one would leave dbNotifyCancel waiting for ever. */
#define GW_CIRCUIT_MAX_REQUESTS 64u
/* Output a held delivery (gwDelivery.h) lets pile up before sending anyway. */
#define GW_CIRCUIT_HOLD_MAX (16u * 1024u)
/* send() calls a thread other than the loop makes per turn as the sender. */
#define GW_CIRCUIT_SEND_TURNS 4u
/* A released delivery batch of more circuits than this is sent by their
 * loops (in parallel with the delivering thread), not by that thread. */
#define GW_DELIVERY_SEND_HERE_MAX 8u
/* Largest reply without DBR data (ERROR with its text). */
#define GW_CIRCUIT_CONTROL_MAX (GW_CA_HEADER_SIZE + GW_CA_EXTENDED_HEADER_SIZE + \
                                GW_CA_ERROR_TEXT_MAX + 8u)

typedef struct gwServerChannel gwServerChannel;

typedef struct gwSubscription {
    ELLNODE node;              /* in channel->subscriptions (lock) */
    ELLNODE readyNode;         /* in circuit->ready while `ready` (lock) */
    gwServerChannel *channel;  /* const */
    gwProviderSubscription *providerSubscription; /* loop */
    gwCaHeader request;        /* const: the EVENT_ADD, for errors and the cancel reply */
    epicsUInt32 id;            /* const: the client's subscription id */
    int ready;                 /* lock */
    unsigned char *slot;       /* lock: the unsent update, a whole message */
    size_t slotLen, slotCap;   /* lock */
} gwSubscription;

struct gwServerChannel {
    ELLNODE node;              /* in circuit->channelList (lock) */
    ELLNODE workNode;          /* in rightsWork or goneWork (lock) */
    int onWork;                /* lock: 1 rights work, 2 gone work */
    ELLNODE connectNode;       /* in connectWork while connectResult (lock) */
    int connectResult;         /* lock: on connectWork: 1 attach ok, -1 failed */
    int pending;               /* lock: deferred, no CREATE_CHAN reply yet */
    gwCircuit *circuit;        /* const */
    epicsUInt32 sid, cid;      /* const */
    gwProvider *provider;      /* const */
    gwProviderChannel *providerChannel; /* loop; NULL once detached */
    unsigned rights;           /* lock: as last told to the client */
    int gone;                  /* lock: the source went away */
    ELLLIST subscriptions;     /* lock for the list; entries created/freed on loop */
    char name[1];              /* const; allocated to length */
};

struct gwCircuit {
    ELLNODE node;              /* in the server's list (server lock) */
    gwServer *server;          /* const */
    gwIoLoop *loop;            /* const */
    SOCKET sock;               /* const */
    char peer[64];             /* const */
    size_t maxMessage;         /* const: largest message in or out */
    epicsMutexId lock;
    int references;            /* atomic: the loop's, plus one per delivery batch */
    gwIoTask startTask, flushTask, channelTask, resumeTask;
    /* identity: changed on the loop thread under lock */
    gwClientIdentity identity;
    char *user, *host;
    int minor;                 /* atomic (gwCircuitMinor): the loop sets it
                                * (VERSION), any delivering thread reads it */
    /* input: loop */
    unsigned char *in;
    size_t inLen, inCap, drain;
    unsigned requests;         /* lock: gets and puts with completion at providers */
    int inputHeld;             /* lock (read on the loop): requests reached the
                                * limit; resumeTask reads on when half are done */
    /* output: lock */
    unsigned char *out;
    size_t outHead, outLen, outCap;
    /* bytes being sent: the buffer belongs to the sender (the thread that
     * set `sending`), which sends from it without the lock; the counts
     * change under lock */
    unsigned char *wire;
    size_t wireHead, wireLen, wireCap;
    int sending;               /* a thread holds the sender role */
    int sendFailed;            /* send() failed: the loop closes the circuit */
    epicsEventId sendDone;     /* a sender finished while closing */
    void *heldBy;              /* the delivery batch last holding output back */
    short watched;             /* GW_IO_* events the loop watches now */
    gwServerCounters counts;   /* lock: not yet added to the server's (see
                                * publishCounts in gwCircuit.c) */
    ELLLIST ready;             /* gwSubscription with an unsent update */
    int eventsOff;
    int blocked;               /* the socket would block with output pending */
    epicsTimeStamp lastProgress;
    int closing;
    gwChannelIds ids;          /* lock: the channels by server id */
    ELLLIST channelList;
    ELLLIST rightsWork;        /* channels whose rights changed */
    ELLLIST goneWork;          /* channels whose source went away */
    ELLLIST connectWork;       /* deferred channels whose attach finished */
    unsigned subscriptionCount; /* lock: client subscriptions of its channels */
    /* statistics, read by gwCircuitTraffic without the lock (the event
     * path's); written with epicsAtomic, mostly by publishCounts */
    unsigned long serial;      /* const: the server's count of circuits at accept */
    int channelCount;          /* atomic: channels in channelList */
    size_t totalUpdatesSent, totalUpdatesReplaced, totalBytesSent, totalBytesReceived;
    int fill;                  /* atomic: % (see gwCircuitTraffic) */
    epicsMutexId nameLock;     /* leaf, never taken by the event path: name */
    char name[GW_SERVER_CLIENT_NAME_SIZE]; /* "user@host" (nameLock) */
};

/* The client's CA minor version (any thread). */
static inline unsigned gwCircuitMinor(gwCircuit *c)
{
    return (unsigned)epicsAtomicGetIntT(&c->minor);
}

/* gwCircuit.c */
void gwCircuitQueueBytes(gwCircuit *c, const void *bytes, size_t n);
void gwCircuitQueueError(gwCircuit *c, const gwCaHeader *request, epicsUInt32 cid,
                         int status, const char *text);
void gwCircuitQueueRead(gwCircuit *c, const gwCaHeader *request, int status,
                        short type, unsigned long count, const void *value);
void gwCircuitSlotStore(gwCircuit *c, gwSubscription *sub, int status, short type,
                        unsigned long count, const void *value); /* lock held */
void gwCircuitSlotDrop(gwCircuit *c, gwSubscription *sub);      /* lock held */
void gwCircuitLogBad(gwCircuit *c, const gwCaHeader *request, const char *why);
void gwCircuitRequestStarted(gwCircuit *c);  /* loop: a get or put-notify goes to a provider */
void gwCircuitRequestDone(gwCircuit *c);     /* any thread: and its completion came */

/* The client named itself: the name kept for statistics (loop). */
void gwCircuitSetName(gwCircuit *c);

/* gwCircuitChannel.c */
int gwCircuitDispatch(gwCircuit *c, const gwCaMessage *m);  /* loop; -1: close */
void gwCircuitChannelWork(void *circuit);                   /* loop task */
void gwCircuitChannelDestroy(gwCircuit *c, gwServerChannel *channel); /* loop */

#endif /* INC_gwCircuitPriv_H */
