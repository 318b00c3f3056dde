/* gwNameTableTest.c - the table of objects by name (gwNameTable.c): finds
 * what was added, through growth and removals, and nothing else. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dbDefs.h>
#include <epicsUnitTest.h>
#include <testMain.h>

#include "gwNameTable.h"

#define TEST_NAMES 5000

typedef struct testObject {
    int tag;
    gwNameNode node;
    char name[32];
} testObject;

static testObject objects[TEST_NAMES];

static testObject *find(const gwNameTable *table, const char *name)
{
    gwNameNode *node = gwNameTableFind(table, name, gwNameHash(name));

    return node ? CONTAINER(node, testObject, node) : NULL;
}

/* 1 when every object whose tag is set is found as itself, and no other. */
static int allFound(const gwNameTable *table)
{
    int i;

    for (i = 0; i < TEST_NAMES; i++) {
        testObject *found = find(table, objects[i].name);
        if (objects[i].tag ? found != &objects[i] : found != NULL)
            return 0;
    }
    return 1;
}

MAIN(gwNameTableTest)
{
    gwNameTable table, empty;
    size_t firstBuckets;
    int i, removed = 0;

    (void)argc;
    (void)argv;
    testPlan(12);

    memset(&empty, 0, sizeof empty);
    testOk(gwNameTableFind(&empty, "x", gwNameHash("x")) == NULL, "a zeroed table finds nothing");

    testOk1(gwNameTableInit(&table, 20) == 0);
    firstBuckets = table.mask + 1;
    testOk(firstBuckets == 32, "20 buckets asked for: %zu made (a power of two)", firstBuckets);
    testOk(gwNameHash("pv:a") != gwNameHash("pv:b"), "names that differ hash apart");

    for (i = 0; i < TEST_NAMES; i++) {
        sprintf(objects[i].name, "test:pv:%05d", i);
        objects[i].tag = 1;
        gwNameTableAdd(&table, &objects[i].node, objects[i].name, gwNameHash(objects[i].name));
    }
    testOk(table.count == TEST_NAMES, "%d names in (%zu counted)", TEST_NAMES, table.count);
    testOk(table.mask + 1 >= TEST_NAMES, "it grew: %zu buckets", table.mask + 1);
    testOk(allFound(&table), "each name finds its own object after growing");
    testOk(find(&table, "test:pv:99999") == NULL && find(&table, "") == NULL
               && find(&table, "test:pv:0000") == NULL,
           "names never added are not found (a prefix of one neither)");

    for (i = 0; i < TEST_NAMES; i += 3) {
        gwNameTableRemove(&table, &objects[i].node);
        objects[i].tag = 0;
        removed++;
    }
    testOk(table.count == (size_t)(TEST_NAMES - removed), "%d removed, %zu left", removed,
           table.count);
    testOk(allFound(&table), "the removed are gone, the others still found");

    for (i = 0; i < TEST_NAMES; i += 3) {
        objects[i].tag = 1;
        gwNameTableAdd(&table, &objects[i].node, objects[i].name, gwNameHash(objects[i].name));
    }
    testOk(allFound(&table) && table.count == TEST_NAMES, "added again, all found");

    gwNameTableClear(&table);
    testOk(table.buckets == NULL && table.count == 0
               && gwNameTableFind(&table, "test:pv:00001", gwNameHash("test:pv:00001")) == NULL,
           "cleared: empty");
    return testDone();
}
