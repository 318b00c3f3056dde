/* gwChannelIds.h - the server ids of one circuit's channels.
 *
 * A server id is (turn << GW_CHANNEL_ID_SLOT_BITS) | (slot + 1): the slot
 * finds the channel at once, the turn (counting ids handed out) tells a
 * stale id from the id of the slot's next channel. Up to 16 M channels per
 * table. Not locked: the owner (the circuit) holds its lock around calls.
 */
#ifndef INC_gwChannelIds_H
#define INC_gwChannelIds_H

#include <epicsTypes.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GW_CHANNEL_ID_SLOT_BITS 24u
#define GW_CHANNEL_ID_SLOT_MASK ((1u << GW_CHANNEL_ID_SLOT_BITS) - 1u)

typedef struct gwChannelIdSlot {
    void *object;       /* NULL when free */
    epicsUInt32 id;
} gwChannelIdSlot;

typedef struct gwChannelIds {
    gwChannelIdSlot *slots;
    unsigned *freeSlots;    /* stack of free slots */
    unsigned cap, nFree;
    epicsUInt32 turn;
} gwChannelIds;

#define GW_CHANNEL_IDS_INIT { NULL, NULL, 0, 0, 0 }

/* Hand out an id for object (not NULL) into *id: 0, or -1 when the table
 * is full or memory is short. New slots are taken lowest first, freed ones
 * again most recent first. */
int gwChannelIdsAdd(gwChannelIds *ids, void *object, epicsUInt32 *id);
/* The object of id, or NULL for an id not handed out or removed. */
void *gwChannelIdsFind(const gwChannelIds *ids, epicsUInt32 id);
/* Forget id (an id not in the table is ignored). */
void gwChannelIdsRemove(gwChannelIds *ids, epicsUInt32 id);
/* Free the table's memory (the objects are the owner's). */
void gwChannelIdsFree(gwChannelIds *ids);

#ifdef __cplusplus
}
#endif

#endif /* INC_gwChannelIds_H */
