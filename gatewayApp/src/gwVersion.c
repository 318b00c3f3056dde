/* gwVersion.c - the module's version string and its one-line banner.
 *
 * Owns no state; no locks; any thread.
 */
#include <stdio.h>

#include <epicsVersion.h>

#include "gwVersion.h"

#define GW_STRINGIFY_(x) #x
#define GW_STRINGIFY(x) GW_STRINGIFY_(x)

const char *gwVersionString(void)
{
    return GW_STRINGIFY(GW_VERSION_MAJOR) "."
           GW_STRINGIFY(GW_VERSION_MINOR) "."
           GW_STRINGIFY(GW_VERSION_PATCH);
}

int gwVersionFormat(char *buf, size_t size)
{
    return snprintf(buf, size, "EPICS CA gateway %s (built against EPICS Base %s)",
                    gwVersionString(), EPICS_VERSION_SHORT);
}

int gwVersionAtLeast(int major, int minor, int patch)
{
    if (GW_VERSION_MAJOR != major)
        return GW_VERSION_MAJOR > major;
    if (GW_VERSION_MINOR != minor)
        return GW_VERSION_MINOR > minor;
    return GW_VERSION_PATCH >= patch;
}
