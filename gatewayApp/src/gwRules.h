/* gwRules.h - the gateway's access rules: the pvlist, access security and
 * put logging, as a policy of wrappers in front of the providers
 * (gwRules.c).
 *
 * One gwRules belongs to the gateway object and lives as long as it: the
 * pvlist, the put log and the flags survive a gwStop/gwStart. Each
 * provider the server asks is wrapped (gwRulesWrap) so that every client
 * sees only the names the pvlist serves it, under their aliases, with the
 * rights the access file gives the rule's ASG/ASL for the client's user
 * and host (read-only without an access file, or with -ro), and every
 * write whose rule has TRAPWRITE is logged.
 *
 * An IOC has one asLib: the gateway's access file is the IOC's access
 * security file (asSetFilename before iocInit; asInit reloads it).
 *
 * Threads: loads, reloads, wrap/unwrap and reports from the iocsh or
 * record-processing threads, one at a time; the policy hooks on the
 * server's threads and asLib's.
 * Locks: rules->lock (the pvlist in force and its users, the wrappers,
 * the put log) is a leaf, never held while a wrapper, asLib or a file is
 * called; per channel, asLib's lock is taken by asLib only.
 */
#ifndef INC_gwRules_H
#define INC_gwRules_H

#include <stdio.h>

#include "gwProvider.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gwRules gwRules;

/* Rules with the default pvlist (".* ALLOW"), no put log, no flags. */
gwRules *gwRulesCreate(void);
/* No wrapper may be left (gwRulesUnwrap first). NULL is ignored. */
void gwRulesDestroy(gwRules *rules);

/* Read and install a pvlist (NULL: the default). 0; -1 with the reason
 * printed as "gwLoadPvList: FILE:LINE: reason", the rules in force kept.
 * Existing channels are re-checked (gwRulesRecheck) when installed. */
int gwRulesLoadPvList(gwRules *rules, const char *path);
/* The file of the pvlist in force, "" for the default (copied to buffer). */
void gwRulesPvListFile(gwRules *rules, char *buffer, size_t size);

/* The access file. Before iocInit: asSetFilename(path). After: with
 * access security active, switch to path (NULL: the same file) and
 * reload it; without it, refused (asLib is turned on at iocInit only).
 * A file that does not parse is reported as "gwLoadAccess: FILE:LINE:
 * reason" and asLib keeps the rules in force. 0 or -1. */
int gwRulesLoadAccess(gwRules *rules, const char *path, int iocRunning);

/* The put log: file and/or log server "host:port" (both NULL: none). 0,
 * or -1 with the reason printed (the previous log kept). */
int gwRulesSetPutLog(gwRules *rules, const char *path, const char *server);

/* -ro: every channel read-only. -hostname_from_ip: asLib's host is the
 * name the client's address resolves to, not the one it claims. Take
 * effect for existing channels at the next recheck. */
void gwRulesSetReadOnly(gwRules *rules, int readOnly);
void gwRulesSetHostnameFromIp(gwRules *rules, int fromIp);

/* A wrapper over inner with these rules (NULL when out of memory), and
 * its end (after the server is stopped: no channel left). */
gwProvider *gwRulesWrap(gwRules *rules, const gwProvider *inner);
void gwRulesUnwrap(gwRules *rules, gwProvider *wrapper);

/* Apply the rules in force to every channel of every wrapper: names no
 * longer served are disconnected, rights asked again. The number of
 * channels disconnected. */
unsigned gwRulesRecheck(gwRules *rules);

/* Report 3: the flags, the pvlist rules and the access file's groups. */
void gwRulesReport(gwRules *rules, FILE *out);

/* The policy probe: what may user on host do with name? (gwAsTest). host
 * is a name or dotted address; it is resolved for DENY FROM. */
void gwRulesProbe(gwRules *rules, const char *name, const char *user, const char *host,
                  FILE *out);

/* Check mode: parse the pvlist and load the access file in this process
 * (which then exits: asLib's rules are replaced). Errors printed as
 * FILE:LINE: reason. 0 when both (those given) are good, else -1. */
int gwRulesCheckFiles(const char *pvlist, const char *access, FILE *out);

#ifdef __cplusplus
}
#endif

#endif /* INC_gwRules_H */
