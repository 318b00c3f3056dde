/* gwRulesTest.c - unit test of the access rules (gwRules.c) and the
 * wrapper's per-channel policy (gwWrapper.c) in front of the local
 * provider of an in-process IOC (no CA sockets): names served and
 * refused, aliases, rights per user from the access file, rights told
 * when the client changes its name, puts refused and logged with the old
 * value, a pvlist reload that disconnects a channel, a broken pvlist
 * that changes nothing, -ro, and the policy probe.
 *
 * The test plays the CA server: it calls the wrapper's operations and
 * records what its channel events tell.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <caerr.h>
#include <db_access.h>
#include <epicsMutex.h>
#include <epicsStdio.h>
#include <epicsUnitTest.h>
#include <testMain.h>

#include "gwConformanceIoc.h"
#include "gwLocal.h"
#include "gwProviderCall.h"
#include "gwRules.h"

/* ---- the fake server's side ---- */

typedef struct testChannel {
    epicsMutexId lock;
    gwClientIdentity who;
    gwProviderChannel *channel;
    unsigned rightsTold;       /* rightsChanged calls */
    unsigned rights;           /* the last told */
    unsigned disconnects;
} testChannel;

static void onRights(void *serverChannel, unsigned rights)
{
    testChannel *t = serverChannel;

    epicsMutexMustLock(t->lock);
    t->rightsTold++;
    t->rights = rights;
    epicsMutexUnlock(t->lock);
}

static void onDisconnected(void *serverChannel)
{
    testChannel *t = serverChannel;

    epicsMutexMustLock(t->lock);
    t->disconnects++;
    epicsMutexUnlock(t->lock);
}

static void onWriteFailed(void *serverChannel, short type, unsigned long count, int status)
{
    (void)serverChannel;
    (void)type;
    (void)count;
    testFail("writeFailed(%d)", status);
}

static void onConnected(void *serverChannel, int ok)
{
    (void)serverChannel;
    (void)ok;
}

static const gwChannelEvents events = {
    .rightsChanged = onRights,
    .disconnected = onDisconnected,
    .writeFailed = onWriteFailed,
    .connected = onConnected,
};

static void noSettled(void *server, const char *const *names, unsigned count)
{
    (void)server;
    (void)names;
    (void)count;
}

static void noAnomaly(void *server)
{
    (void)server;
}

static void noBatch(void *server, gwDeliveryBatch *batch)
{
    (void)server;
    (void)batch;
}

static const gwServerCallbacks serverCallbacks = {
    .namesSettled = noSettled,
    .beaconAnomaly = noAnomaly,
    .deliveryHold = noBatch,
    .deliveryRelease = noBatch,
};

static gwProvider *wrapper;

static void identity(gwClientIdentity *who, const char *user, const char *host)
{
    memset(who, 0, sizeof *who);
    who->user = user;
    who->host = host;
    who->peer = "127.0.0.1:40000";
    who->address.sin_family = AF_INET;
    who->address.sin_addr.s_addr = htonl(0x7f000001);
    who->minorVersion = 13;
}

static gwExistsAnswer existsFor(const char *name)
{
    gwClientIdentity who;
    gwExistsQuery query;

    identity(&who, "bob", "office");
    memset(&query, 0, sizeof query);
    query.pvName = name;
    gwCallExists(wrapper, &who, &query, 1);
    return query.answer;
}

/* Attach as user and ask the rights, as the server does. */
static testChannel *attachAs(const char *name, const char *user, const char *host)
{
    testChannel *t = calloc(1, sizeof *t);

    t->lock = epicsMutexMustCreate();
    identity(&t->who, user, host);
    t->channel = gwCallAttach(wrapper, name, &t->who, &events, t);
    if (t->channel)
        t->rights = gwCallRights(wrapper, t->channel);
    return t;
}

static void detach(testChannel *t)
{
    if (t->channel)
        gwCallDetach(wrapper, t->channel);
    epicsMutexDestroy(t->lock);
    free(t);
}

static unsigned told(testChannel *t, unsigned *rights)
{
    unsigned n;

    epicsMutexMustLock(t->lock);
    n = t->rightsTold;
    *rights = t->rights;
    epicsMutexUnlock(t->lock);
    return n;
}

typedef struct readBack {
    int status;
    double value;
} readBack;

static void gotDouble(void *user, int status, short type, unsigned long count,
                      const void *value)
{
    readBack *r = user;

    (void)count;
    r->status = status;
    if (status == ECA_NORMAL && type == DBR_DOUBLE)
        r->value = *(const double *)value;
}

static double readDouble(testChannel *t)
{
    readBack r = { -1, -1 };

    testOk1(gwCallGet(wrapper, t->channel, DBR_DOUBLE, 1, gotDouble, &r) == ECA_NORMAL);
    return r.value;
}

static int writeFile(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

static int fileHas(const char *path, const char *text)
{
    char buffer[4096];
    size_t n;
    FILE *f = fopen(path, "r");

    if (!f)
        return 0;
    n = fread(buffer, 1, sizeof buffer - 1, f);
    fclose(f);
    buffer[n] = '\0';
    return strstr(buffer, text) != NULL;
}

static const char pvlist1[] =
    "# general rules first\n"
    ".* ALLOW RO\n"
    "loc:lo ALLOW ADMIN\n"
    "a:(.*) ALIAS loc:\\1 ADMIN\n"
    "loc:so DENY\n";
static const char pvlist2[] =
    ".* ALLOW RO\n"
    "loc:lo DENY\n";
static const char pvlistBroken[] =
    ".* ALLOW\n"
    "loc:(ai ALLOW\n";

MAIN(gwRulesTest)
{
    char cwd[700], dbd[800], db[800], acf[800], list1[800], list2[800], broken[800];
    char putLog[800], probe[800];
    gwRules *rules;
    gwProvider *local;
    testChannel *ai, *loBob, *loAlice, *alias;
    unsigned rights, before;
    dbr_long_t value;
    FILE *out;

    (void)argc;
    (void)argv;
    testPlan(0);
    if (!getcwd(cwd, sizeof cwd))
        testAbort("getcwd failed");
    epicsSnprintf(dbd, sizeof dbd, "%s/../O.Common/gwLocalTest.dbd", cwd);
    epicsSnprintf(db, sizeof db, "%s/../gwConformance.db", cwd);
    epicsSnprintf(acf, sizeof acf, "%s/../gwRulesTest.acf", cwd);
    epicsSnprintf(list1, sizeof list1, "%s/gwRulesTest-1.pvlist", cwd);
    epicsSnprintf(list2, sizeof list2, "%s/gwRulesTest-2.pvlist", cwd);
    epicsSnprintf(broken, sizeof broken, "%s/gwRulesTest-broken.pvlist", cwd);
    epicsSnprintf(putLog, sizeof putLog, "%s/gwRulesTest.putlog", cwd);
    epicsSnprintf(probe, sizeof probe, "%s/gwRulesTest.probe", cwd);
    remove(putLog);
    if (writeFile(list1, pvlist1) || writeFile(list2, pvlist2) || writeFile(broken, pvlistBroken))
        testAbort("cannot write the pvlists");
    if (gwConformanceIocStart(dbd, db, "P=loc:", acf))
        testAbort("the in-process IOC does not start");
    local = gwLocalProviderCreate(1);
    rules = gwRulesCreate();
    if (!local || !rules)
        testAbort("no provider or rules");
    wrapper = gwRulesWrap(rules, local);
    if (!wrapper)
        testAbort("gwRulesWrap failed");
    gwCallBind(wrapper, &serverCallbacks, NULL);

    testDiag("names: the pvlist decides, bottom-up");
    testOk(gwRulesLoadPvList(rules, list1) == 0, "the pvlist loads");
    testOk1(existsFor("loc:ai") == GW_EXISTS_YES);
    testOk(existsFor("loc:so") == GW_EXISTS_NO, "a DENY line refuses loc:so");
    testOk(existsFor("a:ai") == GW_EXISTS_YES, "the alias a:ai is served (loc:ai)");
    testOk(existsFor("nothing:here") == GW_EXISTS_NO, "a name no provider has");
    ai = attachAs("loc:so", "alice", "adminpc");
    testOk(ai->channel == NULL, "attach of a denied name fails");
    detach(ai);

    testDiag("rights: the rule's group with the client's user");
    ai = attachAs("loc:ai", "alice", "adminpc");
    testOk(ai->channel && ai->rights == GW_RIGHT_READ, "loc:ai (RO) read-only even for alice: %u",
           ai->rights);
    value = 7;
    testOk(gwCallPut(wrapper, ai->channel, DBR_LONG, 1, &value, NULL, NULL) == ECA_NOWTACCESS,
           "a put on a read-only channel is refused with ECA_NOWTACCESS");
    testOk(readDouble(ai) == 2.5, "and the record keeps its value");
    loBob = attachAs("loc:lo", "bob", "office");
    loAlice = attachAs("loc:lo", "alice", "AdminPC");
    testOk(loBob->channel && loBob->rights == GW_RIGHT_READ, "loc:lo (ADMIN) for bob: read");
    testOk(loAlice->channel && loAlice->rights == (GW_RIGHT_READ | GW_RIGHT_WRITE),
           "loc:lo (ADMIN) for alice: read and write");
    alias = attachAs("a:lo", "alice", "adminpc");
    testOk(alias->channel && alias->rights == (GW_RIGHT_READ | GW_RIGHT_WRITE),
           "the alias a:lo has its rule's group (ADMIN): alice writes");
    testOk(alias->channel && readDouble(alias) == 42, "a:lo reads loc:lo's value");

    testDiag("put logging: TRAPWRITE rules, the old value from the provider");
    testOk(gwRulesSetPutLog(rules, putLog, NULL) == 0, "the put log opens");
    value = 43;
    testOk(gwCallPut(wrapper, loAlice->channel, DBR_LONG, 1, &value, NULL, NULL) == ECA_NORMAL,
           "alice's put is done");
    testOk(fileHas(putLog, " alice@adminpc loc:lo 43 old=42\n"),
           "and logged with the host lowercased and the old value");
    value = 44;
    testOk(gwCallPut(wrapper, alias->channel, DBR_LONG, 1, &value, NULL, NULL) == ECA_NORMAL,
           "a put through the alias is done");
    testOk(fileHas(putLog, " alice@adminpc a:lo 44 old=43\n"),
           "and logged under the name the client used");
    value = 45;
    testOk(gwCallPut(wrapper, loBob->channel, DBR_LONG, 1, &value, NULL, NULL) == ECA_NOWTACCESS,
           "bob's put is refused");
    testOk(!fileHas(putLog, " 45 "), "and not logged");

    testDiag("a new client name: the rights are told");
    before = told(loBob, &rights);
    identity(&loBob->who, "alice", "office");
    gwCallClientChanged(wrapper, loBob->channel, &loBob->who);
    testOk(told(loBob, &rights) > before && rights == (GW_RIGHT_READ | GW_RIGHT_WRITE),
           "bob's channel, now alice's, is told read and write (%u)", rights);
    testOk(gwCallRights(wrapper, loBob->channel) == (GW_RIGHT_READ | GW_RIGHT_WRITE),
           "and answers them");

    testDiag("-ro: read-only whatever the access file says");
    gwRulesSetReadOnly(rules, 1);
    before = told(loAlice, &rights);
    gwRulesRecheck(rules);
    testOk(told(loAlice, &rights) > before && rights == GW_RIGHT_READ,
           "alice's channel is told read-only (%u)", rights);
    testOk(gwCallPut(wrapper, loAlice->channel, DBR_LONG, 1, &value, NULL, NULL) == ECA_NOWTACCESS,
           "and her put is refused");
    gwRulesSetReadOnly(rules, 0);
    gwRulesRecheck(rules);
    told(loAlice, &rights);
    testOk(rights == (GW_RIGHT_READ | GW_RIGHT_WRITE), "and writes again without -ro");

    testDiag("probe");
    out = fopen(probe, "w");
    if (out) {
        gwRulesProbe(rules, "a:lo", "alice", "127.0.0.1", out);
        gwRulesProbe(rules, "loc:so", "alice", "127.0.0.1", out);
        fclose(out);
    }
    testOk(fileHas(probe, "  rule: line 4 \"a:(.*)\" ALIAS\n  served: yes\n  alias: loc:lo\n"
                          "  asg: ADMIN asl: 1\n  rights: read,write\n  put logging: yes\n"),
           "gwAsTest a:lo alice: the alias rule, ADMIN, read,write, logged");
    testOk(fileHas(probe, "  rule: line 5 \"loc:so\" DENY\n  served: no\n"),
           "gwAsTest loc:so: the DENY rule, not served");

    testDiag("reloads: broken files change nothing; a denied name is disconnected");
    testOk(gwRulesLoadPvList(rules, broken) == -1, "a broken pvlist is refused");
    testOk(existsFor("loc:so") == GW_EXISTS_NO && existsFor("a:ai") == GW_EXISTS_YES,
           "and the rules in force stay");
    epicsMutexMustLock(loAlice->lock);
    before = loAlice->disconnects;
    epicsMutexUnlock(loAlice->lock);
    testOk(gwRulesLoadPvList(rules, list2) == 0, "a pvlist that denies loc:lo loads");
    testOk(loAlice->disconnects == before + 1 && loBob->disconnects == 1,
           "both channels of loc:lo are disconnected");
    testOk(alias->disconnects == 1, "the alias a:lo, no longer served, too");
    testOk(ai->disconnects == 0, "loc:ai stays");
    gwRulesRecheck(rules);
    testOk(loAlice->disconnects == before + 1, "a second recheck does not tell it again");
    testOk(existsFor("loc:lo") == GW_EXISTS_NO && existsFor("loc:so") == GW_EXISTS_YES,
           "new searches follow the new rules");

    detach(ai);
    detach(loBob);
    detach(loAlice);
    detach(alias);
    gwCallUnbind(wrapper);
    gwRulesUnwrap(rules, wrapper);
    gwRulesDestroy(rules);
    gwLocalProviderDestroy(local);
    gwConformanceIocStop();
    return testDone();
}
