/* gwIocsh.c - the module's iocsh commands and their registration.
 *
 * Each command checks its arguments, prints its own usage when called
 * wrongly, and hands the work to the file that owns it. Entered from the
 * iocsh thread only; takes no locks of its own.
 */
#include <stdio.h>

#include <epicsExport.h>
#include <iocsh.h>

#include "gwVersion.h"

#ifdef IOCSHFUNCDEF_HAS_USAGE
#define GW_USAGE(text) , text
#else
#define GW_USAGE(text)
#endif

static void gwVersionCall(const iocshArgBuf *args)
{
    char line[128];

    (void)args;
    gwVersionFormat(line, sizeof line);
    printf("%s\n", line);
}

static const iocshFuncDef gwVersionDef = {
    "gwVersion", 0, NULL
    GW_USAGE("gwVersion\n"
             "  Print the gateway module's version and the EPICS Base it was built against.\n")
};

static void gwIocshRegister(void)
{
    iocshRegister(&gwVersionDef, gwVersionCall);
}

epicsExportRegistrar(gwIocshRegister);
