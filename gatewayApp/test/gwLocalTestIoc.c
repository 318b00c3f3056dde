/* gwLocalTestIoc.c - the in-process IOC of gwLocalTest (see gwLocalTestIoc.h).
 * Uses the database's DBR_* codes (dbAccess.h). */
#include <stdio.h>

#include <asDbLib.h>
#include <dbAccess.h>
#include <dbStaticLib.h>
#include <dbUnitTest.h>
#include <epicsUnitTest.h>

#include "gwLocalTestIoc.h"

void gwLocalTest_registerRecordDeviceDriver(struct dbBase *pdbbase);

void gwTestIocStart(const char *acf)
{
    testdbPrepare();
    testdbReadDatabase("gwLocalTest.dbd", NULL, NULL);
    gwLocalTest_registerRecordDeviceDriver(pdbbase);
    testdbReadDatabase("gwLocalTest.db", NULL, NULL);
    asSetFilename(acf);
    testIocInitOk();
}

void gwTestIocStop(void)
{
    testIocShutdownOk();
    asSetFilename(NULL);
    testdbCleanup();
}

void gwTestPutDouble(const char *pv, double value)
{
    testdbPutFieldOk(pv, DBR_DOUBLE, value);
}

void gwTestPutString(const char *pv, const char *value)
{
    testdbPutFieldOk(pv, DBR_STRING, value);
}

double gwTestGetDouble(const char *pv)
{
    DBADDR addr;
    double value = -1.0;
    long count = 1;

    if (dbNameToAddr(pv, &addr) || dbGetField(&addr, DBR_DOUBLE, &value, NULL, &count, NULL))
        testDiag("cannot read %s", pv);
    return value;
}
