/* gwRules.c - the gateway's access rules (gwRules.h): the pvlist in force,
 * the asLib client of each client channel, the put log, and the policy
 * hooks of the wrappers that apply them (gwWrapper.h).
 *
 * Per client channel (gwRulesChannel): the rule's ASG (an asLib member)
 * and ASL, an asLib client with the channel's user and host, the rights
 * asLib gives it (kept by asLib's callback, read by the rights hook
 * without a lock of asLib's), and whether its writes are trapped.
 *
 * Threads and locks (order):
 *   rules->recheckLock (gwRulesRecheck, gwRulesUnwrap)
 *   -> a wrapper's list lock (its recheck)
 *   -> channel->lock (its user and host strings)
 *   -> asLib's lock (asAddClient, asChangeClient, asChangeGroup; asLib
 *      calls rightsFromAsLib with it held)
 *   -> a wrapper channel's lock (gwWrapperRightsChanged) -> the server's.
 *   rules->lock (the pvlist in force and its users, the wrappers, the
 *   flags) and rules->putLogLock (the put log, held while a line is
 *   written) are leaves.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <asDbLib.h>
#include <asLib.h>
#include <epicsAtomic.h>
#include <epicsMutex.h>
#include <epicsStdio.h>
#include <epicsString.h>
#include <epicsTime.h>
#include <epicsVersion.h>
#include <errlog.h>
#include <osiSock.h>

#include "gwLog.h"
#include "gwPutLog.h"
#include "gwPvList.h"
#include "gwRules.h"
#include "gwWrapper.h"

#define GW_RULES_WRAPPERS_MAX 8
#define GW_RULES_HOST_SIZE 256
#define GW_RULES_RESOLVED_MAX 256     /* the -hostname_from_ip cache */
#define GW_RULES_RESOLVED_SECONDS 600

/* A pvlist and how many matches use it now. */
typedef struct gwRulesList {
    gwPvList *list;
    size_t users;            /* (rules->lock); the one in force counts one */
} gwRulesList;

typedef struct gwRulesResolved {
    unsigned long address;   /* host order; 0 = empty */
    epicsTimeStamp when;
    char name[GW_RULES_HOST_SIZE];
} gwRulesResolved;

struct gwRules {
    epicsMutexId lock;
    epicsMutexId recheckLock;
    epicsMutexId putLogLock;
    gwRulesList *current;                      /* (lock) */
    char *pvListPath;                          /* NULL: default (lock) */
    char *accessPath;                          /* as last given (lock) */
    gwProvider *wrappers[GW_RULES_WRAPPERS_MAX]; /* (lock) */
    int readOnly;                              /* atomic */
    int fromIp;                                /* atomic */
    gwPutLog *putLog;                          /* (putLogLock); atomic read */
    char *putLogPath, *putLogServer;           /* (putLogLock) */
    gwRulesResolved resolved[GW_RULES_RESOLVED_MAX]; /* (lock) */
};

typedef struct gwRulesChannel {
    gwRules *rules;
    gwWrapperChannel *handle;
    epicsMutexId lock;
    char *user;              /* what asLib was given (lock) */
    char *host;
    char *asg;               /* asLib keeps the pointer: freed after the member */
    int asl;
    ASMEMBERPVT member;      /* NULL without access security */
    ASCLIENTPVT client;
    int asRights;            /* GW_RIGHT_* from asLib (atomic) */
} gwRulesChannel;

/* ---------------------------------------------------------------- the pvlist in force */

static gwRulesList *takeList(gwRules *rules)
{
    gwRulesList *ref;

    epicsMutexMustLock(rules->lock);
    ref = rules->current;
    ref->users++;
    epicsMutexUnlock(rules->lock);
    return ref;
}

static void giveList(gwRules *rules, gwRulesList *ref)
{
    int last;

    epicsMutexMustLock(rules->lock);
    last = --ref->users == 0;
    epicsMutexUnlock(rules->lock);
    if (last) {
        gwPvListFree(ref->list);
        free(ref);
    }
}

static gwRulesList *newRef(gwPvList *list)
{
    gwRulesList *ref = calloc(1, sizeof *ref);

    if (!ref) {
        gwPvListFree(list);
        return NULL;
    }
    ref->list = list;
    ref->users = 1;
    return ref;
}

/* Put list in force (it takes the reference of ref). */
static void installList(gwRules *rules, gwRulesList *ref, const char *path)
{
    gwRulesList *old;
    char *copy = path ? epicsStrDup(path) : NULL;

    epicsMutexMustLock(rules->lock);
    old = rules->current;
    rules->current = ref;
    free(rules->pvListPath);
    rules->pvListPath = copy;
    epicsMutexUnlock(rules->lock);
    if (old)
        giveList(rules, old);
}

static void matchName(gwRules *rules, const char *name, const struct sockaddr_in *address,
                      gwPvListMatch *match)
{
    gwRulesList *ref = takeList(rules);

    gwPvListMatchName(ref->list, name, address, match);
    giveList(rules, ref);
}

/* ---------------------------------------------------------------- hosts */

static void lowercase(char *text)
{
    for (; *text; text++)
        *text = (char)tolower((unsigned char)*text);
}

static void dotted(const struct sockaddr_in *address, char *buffer, size_t size)
{
    unsigned long ip = ntohl(address->sin_addr.s_addr);

    epicsSnprintf(buffer, size, "%lu.%lu.%lu.%lu", (ip >> 24) & 0xff, (ip >> 16) & 0xff,
                  (ip >> 8) & 0xff, ip & 0xff);
}

/* The name the client's address resolves to (cached), or its dotted form. */
static void resolvedName(gwRules *rules, const struct sockaddr_in *address, char *buffer,
                         size_t size)
{
    unsigned long ip = ntohl(address->sin_addr.s_addr);
    gwRulesResolved *slot = &rules->resolved[(ip ^ (ip >> 8) ^ (ip >> 16)) %
                                             GW_RULES_RESOLVED_MAX];
    epicsTimeStamp now;
    char name[GW_RULES_HOST_SIZE];
    int found = 0;

    epicsTimeGetCurrent(&now);
    epicsMutexMustLock(rules->lock);
    if (ip && slot->address == ip
        && epicsTimeDiffInSeconds(&now, &slot->when) < GW_RULES_RESOLVED_SECONDS) {
        epicsSnprintf(buffer, size, "%s", slot->name);
        found = 1;
    }
    epicsMutexUnlock(rules->lock);
    if (found)
        return;
    /* ipAddrToHostName falls back to nothing when there is no name */
    if (ipAddrToHostName(&address->sin_addr, name, sizeof name) == 0 || !name[0])
        dotted(address, name, sizeof name);
    lowercase(name);
    epicsMutexMustLock(rules->lock);
    slot->address = ip;
    slot->when = now;
    epicsSnprintf(slot->name, sizeof slot->name, "%s", name);
    epicsMutexUnlock(rules->lock);
    epicsSnprintf(buffer, size, "%s", name);
}

/* The host asLib sees for the client. Caller frees. */
static char *hostOf(gwRules *rules, const gwClientIdentity *client)
{
    char host[GW_RULES_HOST_SIZE];

    if (epicsAtomicGetIntT(&rules->fromIp))
        resolvedName(rules, &client->address, host, sizeof host);
    else if (asCheckClientIP)
        dotted(&client->address, host, sizeof host);
    else {
        epicsSnprintf(host, sizeof host, "%s", client->host ? client->host : "");
        lowercase(host);
    }
    return epicsStrDup(host);
}

/* ---------------------------------------------------------------- the name hooks */

static int rulesAllow(void *arg, const char *pvName, const gwClientIdentity *client)
{
    gwPvListMatch match;

    matchName(arg, pvName, client ? &client->address : NULL, &match);
    return match.allowed;
}

static int rulesRename(void *arg, const char *pvName, char *innerName, size_t size)
{
    gwPvListMatch match;

    matchName(arg, pvName, NULL, &match);
    if (!match.allowed || !match.aliased)
        return 0;
    epicsSnprintf(innerName, size, "%s", match.realName);
    return 1;
}

/* ---------------------------------------------------------------- the channel hooks */

static unsigned rightsOfClient(ASCLIENTPVT client)
{
    unsigned rights = 0;

    if (asCheckGet(client))
        rights |= GW_RIGHT_READ;
    if (asCheckPut(client))
        rights |= GW_RIGHT_WRITE;
    return rights;
}

/* asLib's callback, its lock held. */
static void rightsFromAsLib(ASCLIENTPVT client, asClientStatus status)
{
    gwRulesChannel *c = asGetClientPvt(client);

    if (!c || status != asClientCOAR)
        return;
    epicsAtomicSetIntT(&c->asRights, (int)rightsOfClient(client));
    gwWrapperRightsChanged(c->handle);
}

static void freeChannel(gwRulesChannel *c)
{
    if (c->client)
        asRemoveClient(&c->client);   /* no callback after this */
    if (c->member)
        asRemoveMember(&c->member);
    if (c->lock)
        epicsMutexDestroy(c->lock);
    free(c->user);
    free(c->host);
    free(c->asg);
    free(c);
}

/* Join asLib (with access security active). 0 or -1. */
static int joinAsLib(gwRulesChannel *c, const char *pvName)
{
    long status = asAddMember(&c->member, c->asg);

    if (status == 0)
        status = asAddClient(&c->client, c->member, c->asl, c->user, c->host);
    if (status == 0) {
        asPutClientPvt(c->client, c);
        status = asRegisterClientCallback(c->client, rightsFromAsLib);
    }
    if (status) {
        gwLog(GW_LOG_SERVER, GW_LOG_ERROR, "%s: no access security client (asLib status %ld)",
              pvName, status);
        return -1;
    }
    return 0;
}

static int rulesOpen(void *arg, const char *pvName, const char *innerName,
                     const gwClientIdentity *client, gwWrapperChannel *handle, void **state)
{
    gwRules *rules = arg;
    gwRulesChannel *c = calloc(1, sizeof *c);
    gwPvListMatch match;

    (void)innerName;
    if (!c)
        return -1;
    matchName(rules, pvName, &client->address, &match);
    c->rules = rules;
    c->handle = handle;
    c->lock = epicsMutexCreate();
    c->user = epicsStrDup(client->user ? client->user : "");
    c->host = hostOf(rules, client);
    c->asg = epicsStrDup(match.allowed ? match.asg : "DEFAULT");
    c->asl = match.allowed ? match.asl : 1;
    c->asRights = GW_RIGHT_READ;      /* without access security: read-only */
    if (!match.allowed || !c->lock || !c->user || !c->host || !c->asg
        || (asActive && joinAsLib(c, pvName) != 0)) {
        freeChannel(c);
        return -1;
    }
    *state = c;
    return 0;
}

static void rulesClose(void *arg, void *state)
{
    (void)arg;
    freeChannel(state);
}

static unsigned rulesRights(void *arg, void *state, unsigned innerRights)
{
    gwRules *rules = arg;
    gwRulesChannel *c = state;
    unsigned rights = innerRights & (unsigned)epicsAtomicGetIntT(&c->asRights);

    if (epicsAtomicGetIntT(&rules->readOnly))
        rights &= ~GW_RIGHT_WRITE;
    return rights;
}

static void rulesClientChanged(void *arg, void *state, const gwClientIdentity *client)
{
    gwRulesChannel *c = state;
    char *user = epicsStrDup(client->user ? client->user : "");
    char *host = hostOf(arg, client);
    char *oldUser, *oldHost;

    if (!user || !host) {
        free(user);
        free(host);
        return;
    }
    epicsMutexMustLock(c->lock);
    oldUser = c->user;
    oldHost = c->host;
    c->user = user;
    c->host = host;
    if (c->client)
        asChangeClient(c->client, c->asl, user, host);
    epicsMutexUnlock(c->lock);
    free(oldUser);
    free(oldHost);
}

/* The rule of the name now: a new group or level moves the asLib client. */
static int rulesRecheck(void *arg, void *state, const char *pvName,
                        const gwClientIdentity *client)
{
    gwRulesChannel *c = state;
    gwPvListMatch match;
    char *oldAsg = NULL;

    matchName(arg, pvName, &client->address, &match);
    if (!match.allowed)
        return 0;
    epicsMutexMustLock(c->lock);
    if (strcmp(match.asg, c->asg) != 0) {
        char *asg = epicsStrDup(match.asg);
        if (asg) {
            if (c->member)
                asChangeGroup(&c->member, asg);
            oldAsg = c->asg;
            c->asg = asg;
        }
    }
    if (match.asl != c->asl) {
        c->asl = match.asl;
        if (c->client)
            asChangeClient(c->client, c->asl, c->user, c->host);
    }
    epicsMutexUnlock(c->lock);
    free(oldAsg);
    return 1;
}

static int rulesTracesPut(void *arg, void *state)
{
    gwRules *rules = arg;
    gwRulesChannel *c = state;

    return asActive && c->client && c->client->trapMask
           && epicsAtomicGetPtrT((void **)&rules->putLog) != NULL;
}

static void rulesLogPut(void *arg, void *state, const gwClientIdentity *client,
                        const char *pvName, short dbrType, unsigned long count,
                        const void *value, short oldType, unsigned long oldCount,
                        const void *oldValue)
{
    gwRules *rules = arg;
    gwRulesChannel *c = state;
    gwPutLogValue now = { dbrType, count, value };
    gwPutLogValue old = { oldType, oldCount, oldValue };
    char user[GW_RULES_HOST_SIZE], host[GW_RULES_HOST_SIZE];

    (void)client;
    epicsMutexMustLock(c->lock);
    epicsSnprintf(user, sizeof user, "%s", c->user);
    epicsSnprintf(host, sizeof host, "%s", c->host);
    epicsMutexUnlock(c->lock);
    epicsMutexMustLock(rules->putLogLock);
    if (rules->putLog)
        gwPutLogWrite(rules->putLog, NULL, user, host, pvName, &now, &old);
    epicsMutexUnlock(rules->putLogLock);
}

static const gwWrapperChannelPolicy rulesChannelPolicy = {
    .open = rulesOpen,
    .close = rulesClose,
    .rights = rulesRights,
    .clientChanged = rulesClientChanged,
    .recheck = rulesRecheck,
    .tracesPut = rulesTracesPut,
    .logPut = rulesLogPut,
};

/* ---------------------------------------------------------------- life */

gwRules *gwRulesCreate(void)
{
    gwRules *rules = calloc(1, sizeof *rules);
    gwPvList *list = gwPvListDefault();

    if (!rules || !list) {
        free(rules);
        gwPvListFree(list);
        return NULL;
    }
    rules->lock = epicsMutexCreate();
    rules->recheckLock = epicsMutexCreate();
    rules->putLogLock = epicsMutexCreate();
    rules->current = newRef(list);
    if (!rules->lock || !rules->recheckLock || !rules->putLogLock || !rules->current) {
        gwRulesDestroy(rules);
        return NULL;
    }
    return rules;
}

void gwRulesDestroy(gwRules *rules)
{
    if (!rules)
        return;
    if (rules->current)
        giveList(rules, rules->current);
    gwPutLogClose(rules->putLog);
    free(rules->putLogPath);
    free(rules->putLogServer);
    free(rules->pvListPath);
    free(rules->accessPath);
    if (rules->lock)
        epicsMutexDestroy(rules->lock);
    if (rules->recheckLock)
        epicsMutexDestroy(rules->recheckLock);
    if (rules->putLogLock)
        epicsMutexDestroy(rules->putLogLock);
    free(rules);
}

gwProvider *gwRulesWrap(gwRules *rules, const gwProvider *inner)
{
    gwWrapperPolicy policy;
    gwProvider *wrapper;
    unsigned i;

    memset(&policy, 0, sizeof policy);
    policy.name = "rules";
    policy.arg = rules;
    policy.rename = rulesRename;
    policy.allow = rulesAllow;
    policy.channel = &rulesChannelPolicy;
    wrapper = gwWrapperCreate(inner, &policy);
    if (!wrapper)
        return NULL;
    epicsMutexMustLock(rules->lock);
    for (i = 0; i < GW_RULES_WRAPPERS_MAX && rules->wrappers[i]; i++)
        ;
    if (i < GW_RULES_WRAPPERS_MAX)
        rules->wrappers[i] = wrapper;
    epicsMutexUnlock(rules->lock);
    if (i == GW_RULES_WRAPPERS_MAX) {
        gwWrapperDestroy(wrapper);
        return NULL;
    }
    return wrapper;
}

void gwRulesUnwrap(gwRules *rules, gwProvider *wrapper)
{
    unsigned i;

    if (!wrapper)
        return;
    epicsMutexMustLock(rules->recheckLock);
    epicsMutexMustLock(rules->lock);
    for (i = 0; i < GW_RULES_WRAPPERS_MAX; i++) {
        if (rules->wrappers[i] == wrapper)
            rules->wrappers[i] = NULL;
    }
    epicsMutexUnlock(rules->lock);
    epicsMutexUnlock(rules->recheckLock);
    gwWrapperDestroy(wrapper);
}

unsigned gwRulesRecheck(gwRules *rules)
{
    gwProvider *wrappers[GW_RULES_WRAPPERS_MAX];
    unsigned i, dropped = 0;

    epicsMutexMustLock(rules->recheckLock);
    epicsMutexMustLock(rules->lock);
    memcpy(wrappers, rules->wrappers, sizeof wrappers);
    epicsMutexUnlock(rules->lock);
    for (i = 0; i < GW_RULES_WRAPPERS_MAX; i++) {
        if (wrappers[i])
            dropped += gwWrapperRecheck(wrappers[i]);
    }
    epicsMutexUnlock(rules->recheckLock);
    return dropped;
}

/* ---------------------------------------------------------------- loading */

int gwRulesLoadPvList(gwRules *rules, const char *path)
{
    char error[GW_PVLIST_ERROR_SIZE];
    gwPvList *list;
    gwRulesList *ref;
    unsigned dropped;

    list = path && path[0] ? gwPvListLoad(path, error, sizeof error) : gwPvListDefault();
    if (!list) {
        errlogPrintf("gwLoadPvList: %s; the rules in force stay\n",
                     path && path[0] ? error : "out of memory");
        return -1;
    }
    ref = newRef(list);
    if (!ref) {
        errlogPrintf("gwLoadPvList: out of memory; the rules in force stay\n");
        return -1;
    }
    printf("gwLoadPvList: %s: %zu rules, order %s\n", path && path[0] ? path : "(default)",
           gwPvListRuleCount(list),
           gwPvListGetOrder(list) == GW_PVLIST_DENY_ALLOW ? "DENY, ALLOW" : "ALLOW, DENY");
    installList(rules, ref, path && path[0] ? path : NULL);
    dropped = gwRulesRecheck(rules);
    if (dropped)
        printf("gwLoadPvList: %u channels no longer allowed were disconnected\n", dropped);
    return 0;
}

void gwRulesPvListFile(gwRules *rules, char *buffer, size_t size)
{
    epicsMutexMustLock(rules->lock);
    epicsSnprintf(buffer, size, "%s", rules->pvListPath ? rules->pvListPath : "");
    epicsMutexUnlock(rules->lock);
}

/* asLib's messages ("<reason> at line <n>") while a file is read. */
#define GW_RULES_MESSAGES 8
typedef struct gwRulesCapture {
    epicsMutexId lock;
    unsigned count;
    char messages[GW_RULES_MESSAGES][200];
} gwRulesCapture;

static void captureMessage(void *arg, const char *message)
{
    gwRulesCapture *capture = arg;

    epicsMutexMustLock(capture->lock);
    if (capture->count < GW_RULES_MESSAGES && strstr(message, " at line ")) {
        char *line = capture->messages[capture->count++];
        size_t length;
        epicsSnprintf(line, sizeof capture->messages[0], "%s", message);
        length = strlen(line);
        while (length && (line[length - 1] == '\n' || line[length - 1] == '\r'))
            line[--length] = '\0';
    }
    epicsMutexUnlock(capture->lock);
}

/* Print asLib's captured errors as "who: FILE:LINE: reason". */
static void printCaptured(FILE *out, const char *who, const char *file,
                          gwRulesCapture *capture)
{
    unsigned i;

    for (i = 0; i < capture->count; i++) {
        char *at = strstr(capture->messages[i], " at line ");
        int line = atoi(at + strlen(" at line "));
        *at = '\0';
        fprintf(out, "%s: %s:%d: %s\n", who, file, line, capture->messages[i]);
    }
    if (capture->count == 0)
        fprintf(out, "%s: %s: not loaded (cannot be read, or asLib refused it)\n", who, file);
}

/* Run load (asInit or asInitFile) with asLib's messages captured. */
static long loadCaptured(long (*load)(void *), void *arg, gwRulesCapture *capture)
{
    long status;

    memset(capture, 0, sizeof *capture);
    capture->lock = epicsMutexMustCreate();
    errlogFlush();
    errlogAddListener(captureMessage, capture);
    status = load(arg);
    errlogFlush();
    errlogRemoveListeners(captureMessage, capture);
    epicsMutexDestroy(capture->lock);
    return status;
}

/* Base before 7.0.4: asInit after iocInit never returns (asCaStop joins
 * the asCa thread, which does not end). A reload there reads the file
 * with asInitFile, as asInit does once asCa has let go of the INPx
 * channels: safe only when the rules in force have no INPx, whose
 * channels point into the rules asInitFile frees. INPx of the new rules
 * stay unconnected (their CALC rules grant nothing) until the IOC starts
 * again. */
#if EPICS_VERSION_INT < VERSION_INT(7, 0, 4, 0)
#define GW_RULES_ASINIT_HANGS 1
#else
#define GW_RULES_ASINIT_HANGS 0
#endif

/* Do the access rules in force read INPx PVs? (asLib's lists, read
 * without its lock: only reloads change them, and they run here.) */
static int rulesHaveInputs(void)
{
    const ASG *asg;

    if (!pasbase)
        return 0;
    for (asg = (const ASG *)ellFirst(&pasbase->asgList); asg;
         asg = (const ASG *)ellNext(&asg->node)) {
        if (ellCount(&asg->inpList) > 0)
            return 1;
    }
    return 0;
}

static long runAsInit(void *arg)
{
    if (GW_RULES_ASINIT_HANGS)
        return asInitFile(arg, NULL);
    return asInit();
}

static long runAsInitFile(void *arg)
{
    return asInitFile(arg, NULL);
}

int gwRulesLoadAccess(gwRules *rules, const char *path, int iocRunning)
{
    gwRulesCapture capture;
    char *previous, *now;
    long status;

    if (!iocRunning) {
        if (!path || !path[0]) {
            errlogPrintf("gwLoadAccess: which file? (before iocInit a file must be given)\n");
            return -1;
        }
        asSetFilename(path);
        epicsMutexMustLock(rules->lock);
        free(rules->accessPath);
        rules->accessPath = epicsStrDup(path);
        epicsMutexUnlock(rules->lock);
        return 0;
    }
    if (!asActive) {
        errlogPrintf("gwLoadAccess: access security is not active in this IOC: give the "
                     "access file before iocInit (gwStart -access, or asSetFilename)\n");
        return -1;
    }
    epicsMutexMustLock(rules->lock);
    previous = rules->accessPath ? epicsStrDup(rules->accessPath) : NULL;
    epicsMutexUnlock(rules->lock);
    now = path && path[0] ? epicsStrDup(path) : previous ? epicsStrDup(previous) : NULL;
    if (GW_RULES_ASINIT_HANGS && (!now || rulesHaveInputs())) {
        errlogPrintf("gwLoadAccess: %s; the access rules in force stay\n",
                     !now ? "name the file (gwLoadAccess FILE): with this EPICS Base the "
                            "file given to asSetFilename cannot be read again at run time"
                          : "the rules in force read INPx PVs, which this EPICS Base "
                            "(before 7.0.4) cannot let go of at run time; restart the IOC "
                            "to load the new file");
        free(previous);
        free(now);
        return -1;
    }
    if (path && path[0])
        asSetFilename(path);
    status = loadCaptured(runAsInit, now, &capture);
    if (status) {
        printCaptured(stderr, "gwLoadAccess", now ? now : "the access file", &capture);
        errlogPrintf("gwLoadAccess: the access rules in force stay\n");
        if (path && path[0] && previous)
            asSetFilename(previous);      /* the next reload reads the good file */
        free(previous);
        free(now);
        return -1;
    }
    printf("gwLoadAccess: %s loaded\n", now ? now : "the access file");
    if (GW_RULES_ASINIT_HANGS && rulesHaveInputs())
        errlogPrintf("gwLoadAccess: the new rules read INPx PVs: with this EPICS Base "
                     "(before 7.0.4) they are connected when the IOC starts again; until "
                     "then their CALC rules grant nothing\n");
    epicsMutexMustLock(rules->lock);
    free(rules->accessPath);
    rules->accessPath = now;
    epicsMutexUnlock(rules->lock);
    free(previous);
    gwRulesRecheck(rules);
    return 0;
}

int gwRulesCheckFiles(const char *pvlist, const char *access, FILE *out)
{
    int status = 0;

    if (pvlist && pvlist[0]) {
        char error[GW_PVLIST_ERROR_SIZE];
        gwPvList *list = gwPvListLoad(pvlist, error, sizeof error);
        if (list) {
            fprintf(out, "%s: %zu rules, good\n", pvlist, gwPvListRuleCount(list));
            gwPvListFree(list);
        }
        else {
            fprintf(out, "%s\n", error);
            status = -1;
        }
    }
    if (access && access[0]) {
        gwRulesCapture capture;
        if (loadCaptured(runAsInitFile, (void *)access, &capture) != 0) {
            printCaptured(out, "access file", access, &capture);
            status = -1;
        }
        else {
            fprintf(out, "%s: good\n", access);
        }
    }
    return status;
}

int gwRulesSetPutLog(gwRules *rules, const char *path, const char *server)
{
    char error[300];
    gwPutLog *log = NULL, *old;

    if (path && !path[0])
        path = NULL;
    if (server && !server[0])
        server = NULL;
    if ((path || server) && !(log = gwPutLogOpen(path, server, error, sizeof error))) {
        errlogPrintf("gwPutLog: %s; the put log in force stays\n", error);
        return -1;
    }
    epicsMutexMustLock(rules->putLogLock);
    old = rules->putLog;
    epicsAtomicSetPtrT((void **)&rules->putLog, log);
    free(rules->putLogPath);
    free(rules->putLogServer);
    rules->putLogPath = path ? epicsStrDup(path) : NULL;
    rules->putLogServer = server ? epicsStrDup(server) : NULL;
    epicsMutexUnlock(rules->putLogLock);
    gwPutLogClose(old);
    return 0;
}

void gwRulesSetReadOnly(gwRules *rules, int readOnly)
{
    epicsAtomicSetIntT(&rules->readOnly, readOnly != 0);
}

void gwRulesSetHostnameFromIp(gwRules *rules, int fromIp)
{
    epicsAtomicSetIntT(&rules->fromIp, fromIp != 0);
}

/* ---------------------------------------------------------------- reports */

void gwRulesReport(gwRules *rules, FILE *out)
{
    gwRulesList *ref = takeList(rules);
    char access[300];
    char putLog[600];

    epicsMutexMustLock(rules->lock);
    epicsSnprintf(access, sizeof access, "%s", rules->accessPath ? rules->accessPath : "");
    epicsMutexUnlock(rules->lock);
    epicsMutexMustLock(rules->putLogLock);
    epicsSnprintf(putLog, sizeof putLog, "%s%s%s", rules->putLogPath ? rules->putLogPath : "",
                  rules->putLogServer ? " server " : "",
                  rules->putLogServer ? rules->putLogServer : "");
    epicsMutexUnlock(rules->putLogLock);
    fprintf(out, "Access rules:\n");
    fprintf(out, "  read-only (-ro): %s\n", epicsAtomicGetIntT(&rules->readOnly) ? "yes" : "no");
    fprintf(out, "  host names from IP addresses (-hostname_from_ip): %s\n",
            epicsAtomicGetIntT(&rules->fromIp) ? "yes" : "no");
    fprintf(out, "  put log: %s\n", putLog[0] ? putLog : "none");
    gwPvListReport(ref->list, out);
    giveList(rules, ref);
    if (asActive) {
        fprintf(out, "Access file %s:\n", access[0] ? access : "(set with asSetFilename)");
        asDumpFP(out, NULL, NULL, 0);
    }
    else {
        fprintf(out, "No access file: every client may read, none may write.\n");
    }
}

void gwRulesProbe(gwRules *rules, const char *name, const char *user, const char *host,
                  FILE *out)
{
    gwPvListMatch match;
    struct sockaddr_in address;
    int haveAddress;
    unsigned rights = 0;
    int traced = 0;
    char lowHost[GW_RULES_HOST_SIZE];

    name = name ? name : "";
    user = user ? user : "";
    host = host ? host : "";
    memset(&address, 0, sizeof address);
    haveAddress = host[0] && aToIPAddr(host, 0, &address) == 0;
    matchName(rules, name, haveAddress ? &address : NULL, &match);
    fprintf(out, "gwAsTest %s user %s host %s:\n", name, user, host);
    if (match.kind == GW_PVLIST_NONE)
        fprintf(out, "  rule: none\n");
    else
        fprintf(out, "  rule: line %d \"%s\" %s\n", match.line, match.pattern,
                match.kind == GW_PVLIST_ALLOW ? "ALLOW" : match.kind == GW_PVLIST_ALIAS ? "ALIAS"
                : match.kind == GW_PVLIST_DENY ? "DENY" : "DENY FROM");
    fprintf(out, "  served: %s\n", match.allowed ? "yes" : "no");
    if (!match.allowed)
        return;
    if (match.aliased)
        fprintf(out, "  alias: %s\n", match.realName);
    fprintf(out, "  asg: %s asl: %d\n", match.asg, match.asl);
    epicsSnprintf(lowHost, sizeof lowHost, "%s", host);
    lowercase(lowHost);
    if (asActive) {
        ASMEMBERPVT member = NULL;
        ASCLIENTPVT client = NULL;
        if (asAddMember(&member, match.asg) == 0
            && asAddClient(&client, member, match.asl, user, lowHost) == 0) {
            rights = rightsOfClient(client);
            traced = client->trapMask != 0;
        }
        if (client)
            asRemoveClient(&client);
        if (member)
            asRemoveMember(&member);
    }
    else {
        rights = GW_RIGHT_READ;
    }
    if (epicsAtomicGetIntT(&rules->readOnly))
        rights &= ~GW_RIGHT_WRITE;
    fprintf(out, "  rights: %s\n", rights == (GW_RIGHT_READ | GW_RIGHT_WRITE) ? "read,write"
            : rights == GW_RIGHT_READ ? "read" : rights == GW_RIGHT_WRITE ? "write" : "none");
    fprintf(out, "  put logging: %s\n",
            traced && (rights & GW_RIGHT_WRITE) && epicsAtomicGetPtrT((void **)&rules->putLog)
            ? "yes" : "no");
}
