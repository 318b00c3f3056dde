/* devGwStats.c - device support of the gateway's records (db/gateway.db):
 * statistics (ai, stringin, waveform: DTYP "Gateway Stats") and control
 * flags (bo: DTYP "Gateway Control").
 *
 * INP/OUT is "@<name>": the figure (gwStats.h), "version", a top list, or
 * the flag (gwControl.h). Figures come from the IOC's gateway's
 * statistics (gwIocGateway, gwGatewayStatistics), never from the event
 * path: a read copies a value under the statistics' leaf lock. The
 * records scan "I/O Intr": the statistics thread's listener asks for the
 * counts' scan each second and for the rates' (and top lists') scan at the
 * end of each interval.
 *
 * A flag written 1 queues its action for the control thread and completes
 * asynchronously (PACT) when the action is done; the record then reads 0.
 * A write of 0 does nothing.
 *
 * Threads: init on iocInit's thread; reads and writes on the scan and
 * callback threads; the flags' completion from the control thread
 * (callbackRequestProcessCallback). No lock of its own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <alarm.h>
#include <errlog.h>
#include <callback.h>
#include <dbAccess.h>
#include <dbScan.h>
#include <devSup.h>
#include <epicsExport.h>
#include <epicsVersion.h>
#include <epicsThread.h>
#include <recGbl.h>
#include <recSup.h>

#include <aiRecord.h>
#include <boRecord.h>
#include <stringinRecord.h>
#include <waveformRecord.h>

#include "gwControl.h"
#include "gwGateway.h"
#include "gwIoc.h"
#include "gwStats.h"
#include "gwVersion.h"

static IOSCANPVT countsScan, ratesScan;
static epicsThreadOnceId gwScanOnce = EPICS_THREAD_ONCE_INIT;

static void countsReady(void *unused)
{
    (void)unused;
    scanIoRequest(countsScan);
}

static void ratesReady(void *unused)
{
    (void)unused;
    scanIoRequest(ratesScan);
}

static void gwScanInit(void *unused)
{
    gwGateway *gateway = gwIocGateway();

    (void)unused;
    scanIoInit(&countsScan);
    scanIoInit(&ratesScan);
    if (gateway)
        gwStatsListen(gwGatewayStatistics(gateway), countsReady, ratesReady, NULL);
}

static gwStats *statistics(void)
{
    gwGateway *gateway = gwIocGateway();

    return gateway ? gwGatewayStatistics(gateway) : NULL;
}

/* The name of an INST_IO link ("@name"), or NULL when it is another link. */
static const char *linkName(const DBLINK *link)
{
    if (link->type != INST_IO || !link->value.instio.string)
        return NULL;
    return link->value.instio.string;
}

/* A record whose link names nothing known: it stays in alarm (PACT set, as
 * devSup does for records it cannot serve). */
static long badLink(dbCommon *prec, const char *what)
{
    errlogPrintf("%s: %s\n", prec->name, what);
    prec->pact = TRUE;
    return S_db_badField;
}

/* What an ai or waveform record reads: its figure's or list's id. */
typedef struct gwIdDpvt {
    int id;
} gwIdDpvt;

static long setId(dbCommon *prec, int id)
{
    gwIdDpvt *dpvt = malloc(sizeof *dpvt);

    if (!dpvt)
        return badLink(prec, "out of memory");
    dpvt->id = id;
    prec->dpvt = dpvt;
    return 0;
}

/* ---------------------------------------------------------------- ai */

static long aiInitRecord(dbCommon *common)
{
    aiRecord *prec = (aiRecord *)common;
    const char *name = linkName(&prec->inp);
    gwStatId id;

    epicsThreadOnce(&gwScanOnce, gwScanInit, NULL);
    if (!name || gwStatsLookup(name, &id) != 0)
        return badLink(common, "INP is not @<a gateway statistic> (documentation/statistics.md)");
    if (setId(common, (int)id) != 0)
        return S_db_badField;
    if (id == GW_STAT_FD && prec->hihi == 0.0 && prec->high == 0.0) {
        /* alarms near the process's limit unless the database sets them */
        double limit = gwStatsFdLimit();
        if (limit > 0.0) {
            prec->high = 0.8 * limit;
            prec->hihi = 0.9 * limit;
            if (prec->hopr < limit)
                prec->hopr = limit;
        }
    }
    return 0;
}

static long aiIoint(int cmd, dbCommon *common, IOSCANPVT *ppvt)
{
    gwIdDpvt *dpvt = common->dpvt;

    (void)cmd;
    if (!dpvt)
        return -1;
    *ppvt = dpvt->id >= GW_STAT_FIRST_RATE ? ratesScan : countsScan;
    return 0;
}

static long aiRead(aiRecord *prec)
{
    gwIdDpvt *dpvt = prec->dpvt;
    gwStats *stats = statistics();

    if (!dpvt || !stats) {
        recGblSetSevr(prec, READ_ALARM, INVALID_ALARM);
        return 2;
    }
    prec->val = gwStatsValue(stats, (gwStatId)dpvt->id);
    prec->udf = FALSE;
    return 2;   /* VAL set: no conversion */
}

static struct {
    long number;
    DEVSUPFUN report, init, initRecord, getIoint, read, specialLinconv;
} devGwStatsAi = { 6, NULL, NULL, (DEVSUPFUN)aiInitRecord, (DEVSUPFUN)aiIoint,
                   (DEVSUPFUN)aiRead, NULL };
epicsExportAddress(dset, devGwStatsAi);

/* ---------------------------------------------------------------- stringin */

static long siInitRecord(dbCommon *common)
{
    stringinRecord *prec = (stringinRecord *)common;
    const char *name = linkName(&prec->inp);

    if (!name || strcmp(name, "version") != 0)
        return badLink(common, "INP is not @version");
    return 0;
}

static long siRead(stringinRecord *prec)
{
    /* "gateway 0.1.0 (EPICS Base 7.0.3.1)": fits the 40 characters of VAL */
    snprintf(prec->val, sizeof prec->val, "gateway %s (EPICS Base %s)", gwVersionString(),
             EPICS_VERSION_SHORT);
    prec->udf = FALSE;
    return 0;
}

static struct {
    long number;
    DEVSUPFUN report, init, initRecord, getIoint, read;
} devGwStatsSi = { 5, NULL, NULL, (DEVSUPFUN)siInitRecord, NULL, (DEVSUPFUN)siRead };
epicsExportAddress(dset, devGwStatsSi);

/* ---------------------------------------------------------------- waveform */

static long wfInitRecord(dbCommon *common)
{
    waveformRecord *prec = (waveformRecord *)common;
    const char *name = linkName(&prec->inp);
    gwStatTextId id;

    epicsThreadOnce(&gwScanOnce, gwScanInit, NULL);
    if (!name || gwStatsLookupText(name, &id) != 0)
        return badLink(common, "INP is not @<a gateway top list> (documentation/statistics.md)");
    if (prec->ftvl != menuFtypeCHAR && prec->ftvl != menuFtypeUCHAR)
        return badLink(common, "FTVL must be CHAR (the list is text)");
    return setId(common, (int)id);
}

static long wfIoint(int cmd, dbCommon *common, IOSCANPVT *ppvt)
{
    (void)cmd;
    if (!common->dpvt)
        return -1;
    *ppvt = ratesScan;
    return 0;
}

static long wfRead(waveformRecord *prec)
{
    gwIdDpvt *dpvt = prec->dpvt;
    gwStats *stats = statistics();
    char *text = prec->bptr;

    if (!dpvt || !stats || prec->nelm < 1) {
        recGblSetSevr(prec, READ_ALARM, INVALID_ALARM);
        return 0;
    }
    gwStatsText(stats, (gwStatTextId)dpvt->id, text, prec->nelm);
    prec->nord = (epicsUInt32)strlen(text) + 1;  /* with its '\0' */
    prec->udf = FALSE;
    return 0;
}

static struct {
    long number;
    DEVSUPFUN report, init, initRecord, getIoint, read;
} devGwStatsWf = { 5, NULL, NULL, (DEVSUPFUN)wfInitRecord, (DEVSUPFUN)wfIoint,
                   (DEVSUPFUN)wfRead };
epicsExportAddress(dset, devGwStatsWf);

/* ---------------------------------------------------------------- bo: the flags */

typedef struct gwFlagDpvt {
    gwControlRequest request;
    CALLBACK callback;
    int status;                /* the action's, for the second pass */
} gwFlagDpvt;

static long boInitRecord(dbCommon *common)
{
    boRecord *prec = (boRecord *)common;
    const char *name = linkName(&prec->out);
    gwFlagDpvt *dpvt;
    gwControlAction action;

    if (!name || gwControlLookup(name, &action) != 0)
        return badLink(common, "OUT is not @<a gateway flag> (documentation/statistics.md)");
    dpvt = calloc(1, sizeof *dpvt);
    if (!dpvt)
        return badLink(common, "out of memory");
    dpvt->request.action = action;
    dpvt->request.user = prec;
    prec->dpvt = dpvt;
    prec->val = 0;
    prec->udf = FALSE;
    return 2;   /* no RVAL to VAL conversion */
}

/* The action is over (control thread): the record's second pass. */
static void flagDone(gwControlRequest *request, int status)
{
    boRecord *prec = request->user;
    gwFlagDpvt *dpvt = prec->dpvt;

    dpvt->status = status;
    callbackRequestProcessCallback(&dpvt->callback, priorityLow, prec);
}

static long boWrite(boRecord *prec)
{
    gwFlagDpvt *dpvt = prec->dpvt;
    gwGateway *gateway = gwIocGateway();

    if (!dpvt)
        return -1;
    if (prec->pact) {
        /* second pass: done; the flag reads 0 again */
        if (dpvt->status != 0)
            recGblSetSevr(prec, WRITE_ALARM, MINOR_ALARM);
        prec->val = 0;
        prec->rval = 0;
        return 0;
    }
    if (prec->val == 0)
        return 0;
    dpvt->request.done = flagDone;
    prec->pact = TRUE;   /* before the control thread may complete it */
    if (!gateway || gwGatewayRequest(gateway, &dpvt->request) != 0) {
        prec->pact = FALSE;
        recGblSetSevr(prec, WRITE_ALARM, INVALID_ALARM);
        prec->val = 0;
    }
    return 0;
}

static struct {
    long number;
    DEVSUPFUN report, init, initRecord, getIoint, write;
} devGwControlBo = { 5, NULL, NULL, (DEVSUPFUN)boInitRecord, NULL, (DEVSUPFUN)boWrite };
epicsExportAddress(dset, devGwControlBo);
