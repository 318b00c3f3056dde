/* gwVersionTest.c - unit test of the version helper (gwVersion.c). */
#include <stdio.h>
#include <string.h>

#include <epicsUnitTest.h>
#include <epicsVersion.h>
#include <testMain.h>

#include "gwVersion.h"

static void testVersionString(void)
{
    char expected[32];

    sprintf(expected, "%d.%d.%d", GW_VERSION_MAJOR, GW_VERSION_MINOR, GW_VERSION_PATCH);
    testOk(strcmp(gwVersionString(), expected) == 0,
           "gwVersionString() \"%s\" matches the header's numbers \"%s\"",
           gwVersionString(), expected);
}

static void testFormatFull(void)
{
    char line[128];
    int need = gwVersionFormat(line, sizeof line);

    testOk(need > 0 && (size_t)need == strlen(line), "full line returned, length %d", need);
    testOk(strstr(line, gwVersionString()) != NULL, "line names the module version: %s", line);
    testOk(strstr(line, EPICS_VERSION_SHORT) != NULL, "line names the Base version %s",
           EPICS_VERSION_SHORT);
}

static void testFormatTruncates(void)
{
    char small[8];
    int need;

    memset(small, 'x', sizeof small);
    need = gwVersionFormat(small, 5);
    testOk(need > 5, "needed length %d reported past a 5-byte buffer", need);
    testOk(small[4] == '\0' && strlen(small) == 4, "truncated to 4 characters and a NUL");
    testOk(small[5] == 'x', "nothing written past the given size");
    testOk(gwVersionFormat(NULL, 0) == need, "size 0 with NULL only measures");
}

static void testAtLeast(void)
{
    testOk1(gwVersionAtLeast(GW_VERSION_MAJOR, GW_VERSION_MINOR, GW_VERSION_PATCH));
    testOk1(gwVersionAtLeast(GW_VERSION_MAJOR, GW_VERSION_MINOR, GW_VERSION_PATCH - 1));
    testOk1(!gwVersionAtLeast(GW_VERSION_MAJOR, GW_VERSION_MINOR, GW_VERSION_PATCH + 1));
    testOk1(!gwVersionAtLeast(GW_VERSION_MAJOR, GW_VERSION_MINOR + 1, 0));
    testOk1(!gwVersionAtLeast(GW_VERSION_MAJOR + 1, 0, 0));
    testOk1(gwVersionAtLeast(GW_VERSION_MAJOR - 1, 99, 99));
}

MAIN(gwVersionTest)
{
    (void)argc; /* MAIN() names them; this test takes no arguments */
    (void)argv;
    testPlan(14);
    testVersionString();
    testFormatFull();
    testFormatTruncates();
    testAtLeast();
    return testDone();
}
