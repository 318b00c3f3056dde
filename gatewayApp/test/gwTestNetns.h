/* gwTestNetns.h - may a socket unit test open its sockets here? Used by
 * the socket tests (gwNameServerTest, gwServerTest, gwUpstreamSearchTest,
 * gwBeaconWatchTest, gwProviderConformanceTest, gwRelayTest) at the start of
 * main(), before anything else, and by gwPutLogTest before its log server
 * part (its file parts open no socket). Header only (static inline): nothing to
 * add to a test's sources.
 *
 * The tests open CA sockets, so they run only inside `scripts/netns run`
 * (which sets GW_NETNS). Elsewhere they skip, except where they are meant
 * to run and a skip would hide that they did not: with CI=true or
 * GW_REQUIRE_NETNS=1 (scripts/test exports it) they fail instead. */
#ifndef INC_gwTestNetns_H
#define INC_gwTestNetns_H

#include <stdlib.h>
#include <string.h>

#include <epicsUnitTest.h>

/* 1 inside the test namespace. 0 outside it: the caller skips its tests.
 * Outside it where sockets are required, the test bails out (fails). */
static inline int gwTestInNetns(void)
{
    const char *ci = getenv("CI"), *required = getenv("GW_REQUIRE_NETNS");

    if (getenv("GW_NETNS"))
        return 1;
    if ((ci && strcmp(ci, "true") == 0) || (required && strcmp(required, "1") == 0))
        testAbort("opens sockets: must run inside scripts/netns run here "
                  "(CI=true or GW_REQUIRE_NETNS=1), not skip");
    return 0;
}

#endif /* INC_gwTestNetns_H */
