/* gwChannelIdsTest.c - the server ids of a circuit's channels
 * (gwChannelIds.c): an id finds its object and nothing else, through
 * growth, removal and reuse of slots; stale and malformed ids find nothing. */
#include <stdlib.h>

#include <epicsUnitTest.h>
#include <testMain.h>

#include "gwChannelIds.h"

#define TEST_OBJECTS 1000

static int objects[TEST_OBJECTS];
static epicsUInt32 ids[TEST_OBJECTS];

static int allFound(const gwChannelIds *table, int from, int to)
{
    int i;

    for (i = from; i < to; i++)
        if (gwChannelIdsFind(table, ids[i]) != &objects[i])
            return 0;
    return 1;
}

MAIN(gwChannelIdsTest)
{
    gwChannelIds table = GW_CHANNEL_IDS_INIT;
    epicsUInt32 stale, fresh, dummy;
    int i, added = 0, distinct = 1;

    (void)argc;
    (void)argv;
    testPlan(13);

    testOk(gwChannelIdsFind(&table, 1) == NULL, "an empty table finds nothing");
    testOk(gwChannelIdsAdd(&table, NULL, &dummy) != 0, "a NULL object is refused");
    for (i = 0; i < TEST_OBJECTS; i++)
        added += gwChannelIdsAdd(&table, &objects[i], &ids[i]) == 0;
    testOk(added == TEST_OBJECTS, "%d objects get ids (the table grows)", added);
    for (i = 1; i < TEST_OBJECTS; i++)
        distinct &= ids[i] != ids[i - 1] && ids[i] != 0;
    testOk(distinct, "the ids differ from each other and from 0");
    testOk(allFound(&table, 0, TEST_OBJECTS), "every id finds its object");

    stale = ids[10];
    gwChannelIdsRemove(&table, stale);
    testOk(gwChannelIdsFind(&table, stale) == NULL, "a removed id finds nothing");
    testOk(allFound(&table, 0, 10) && allFound(&table, 11, TEST_OBJECTS),
           "the other ids still find theirs");
    testOk(gwChannelIdsAdd(&table, &objects[10], &fresh) == 0
           && (fresh & GW_CHANNEL_ID_SLOT_MASK) == (stale & GW_CHANNEL_ID_SLOT_MASK),
           "the freed slot is taken again");
    testOk(fresh != stale && gwChannelIdsFind(&table, stale) == NULL
           && gwChannelIdsFind(&table, fresh) == &objects[10],
           "with a new id: the stale one still finds nothing");
    gwChannelIdsRemove(&table, stale);
    testOk(gwChannelIdsFind(&table, fresh) == &objects[10],
           "removing the stale id again changes nothing");

    testOk(gwChannelIdsFind(&table, 0) == NULL
           && gwChannelIdsFind(&table, GW_CHANNEL_ID_SLOT_MASK) == NULL
           && gwChannelIdsFind(&table, 0xffffffffu) == NULL,
           "ids of no slot or a slot out of range find nothing");

    for (i = 0; i < TEST_OBJECTS; i++)
        gwChannelIdsRemove(&table, i == 10 ? fresh : ids[i]);
    testOk(gwChannelIdsFind(&table, fresh) == NULL && gwChannelIdsFind(&table, ids[0]) == NULL,
           "after removing all, nothing is found");
    gwChannelIdsFree(&table);
    testOk(table.cap == 0 && table.slots == NULL, "freed");
    return testDone();
}
