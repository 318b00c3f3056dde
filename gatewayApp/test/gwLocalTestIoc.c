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

/* Base's iocInit and iocShutdown, each called from a function of its own:
 * ThreadSanitizer records only the call sites of instrumented code, so a
 * report about locks Base takes inside them names gwTestIocStart or
 * gwTestIocStop only this way (test/tsan.supp). */
static __attribute__((noinline)) void iocInitInBase(void)
{
    testIocInitOk();
}

static __attribute__((noinline)) void iocShutdownInBase(void)
{
    testIocShutdownOk();
}

void gwTestIocStart(const char *acf)
{
    testdbPrepare();
    testdbReadDatabase("gwLocalTest.dbd", NULL, NULL);
    gwLocalTest_registerRecordDeviceDriver(pdbbase);
    testdbReadDatabase("gwLocalTest.db", NULL, NULL);
    asSetFilename(acf);
    iocInitInBase();
}

void gwTestIocStop(void)
{
    iocShutdownInBase();
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
