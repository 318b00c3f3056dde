/* gwConformanceIoc.c - the in-process IOC of gwProviderConformanceTest
 * (see gwConformanceIoc.h). Uses the database's headers (dbAccess.h). */
#include <stdio.h>

#include <asDbLib.h>
#include <dbAccess.h>
#include <dbStaticLib.h>
#include <iocInit.h>

#include "gwConformanceIoc.h"

void gwLocalTest_registerRecordDeviceDriver(struct dbBase *pdbbase);

int gwConformanceIocStart(const char *dbd, const char *db, const char *macros,
                          const char *acf)
{
    if (dbLoadDatabase(dbd, NULL, NULL))
        return -1;
    gwLocalTest_registerRecordDeviceDriver(pdbbase);
    if (dbLoadRecords(db, macros))
        return -1;
    if (asSetSubstitutions(macros) || asSetFilename(acf))
        return -1;
    return iocInit() ? -1 : 0;
}

void gwConformanceIocStop(void)
{
    iocShutdown();
}
