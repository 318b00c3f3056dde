/* gwChannelIds.c - the server id table of gwChannelIds.h. */
#include <stdlib.h>

#include "gwChannelIds.h"

static int grow(gwChannelIds *ids)
{
    unsigned cap = ids->cap ? ids->cap * 2u : 16u, i;
    gwChannelIdSlot *slots;
    unsigned *freeSlots;

    if (cap > GW_CHANNEL_ID_SLOT_MASK)
        return -1;
    slots = realloc(ids->slots, cap * sizeof *slots);
    if (!slots)
        return -1;
    ids->slots = slots;
    freeSlots = realloc(ids->freeSlots, cap * sizeof *freeSlots);
    if (!freeSlots)
        return -1;
    ids->freeSlots = freeSlots;
    for (i = cap; i-- > ids->cap;) {
        ids->slots[i].object = NULL;
        ids->slots[i].id = 0;
        ids->freeSlots[ids->nFree++] = i;
    }
    ids->cap = cap;
    return 0;
}

int gwChannelIdsAdd(gwChannelIds *ids, void *object, epicsUInt32 *id)
{
    unsigned slot;

    if (!object || (!ids->nFree && grow(ids) != 0))
        return -1;
    slot = ids->freeSlots[--ids->nFree];
    ids->slots[slot].object = object;
    ids->slots[slot].id = (ids->turn++ << GW_CHANNEL_ID_SLOT_BITS) | (slot + 1u);
    *id = ids->slots[slot].id;
    return 0;
}

static gwChannelIdSlot *slotOf(const gwChannelIds *ids, epicsUInt32 id)
{
    unsigned slot = (id & GW_CHANNEL_ID_SLOT_MASK) - 1u;   /* 0 wraps: too big */

    if (slot >= ids->cap || !ids->slots[slot].object || ids->slots[slot].id != id)
        return NULL;
    return &ids->slots[slot];
}

void *gwChannelIdsFind(const gwChannelIds *ids, epicsUInt32 id)
{
    gwChannelIdSlot *slot = slotOf(ids, id);

    return slot ? slot->object : NULL;
}

void gwChannelIdsRemove(gwChannelIds *ids, epicsUInt32 id)
{
    gwChannelIdSlot *slot = slotOf(ids, id);

    if (!slot)
        return;
    slot->object = NULL;
    ids->freeSlots[ids->nFree++] = (unsigned)(slot - ids->slots);
}

void gwChannelIdsFree(gwChannelIds *ids)
{
    free(ids->slots);
    free(ids->freeSlots);
    *ids = (gwChannelIds)GW_CHANNEL_IDS_INIT;
}
