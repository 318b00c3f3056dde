/* gwPvList.h - the pvlist: which names a client may see, under which real
 * name, with which access security group and level (gwPvList.c).
 *
 * A pure module: it parses the text of a pvlist file into an immutable
 * rule set and answers "what do the rules say of this name, asked from
 * this address?". It opens no socket, keeps no global state and knows
 * nothing of providers; the rules policy (gwRules.c) puts it in front of
 * the providers.
 *
 * The grammar is the classic gateway's (Users Guide, "Access Security"):
 *     # comment (to the end of the line; blank lines are ignored)
 *     EVALUATION ORDER ALLOW, DENY        (the default) or DENY, ALLOW
 *     <pattern> DENY
 *     <pattern> DENY [FROM] <host> ...    (DENY FROM with no host = DENY)
 *     <pattern> ALIAS <real-name> [<asg> [<asl>]]
 *     <pattern> ALLOW [<asg> [<asl>]]     (PATTERN and PV are synonyms)
 * Keywords in any case; words are separated by spaces, tabs or commas.
 * Patterns are PCRE2, matched against the whole name; a leading '!'
 * inverts one (it matches the names the rest does not). In <real-name>,
 * \1 .. \9 are the pattern's groups (an inverted pattern has none).
 * <asl> is 0 or 1; the defaults are DEFAULT and 1.
 *
 * Matching: there are three lists, DENY FROM, DENY and ALLOW (ALLOW and
 * ALIAS lines), each read from the bottom of the file up: within a list
 * the last matching line wins, so general rules go first.
 * - A DENY FROM line that matches the name and lists the client's address
 *   refuses the name, whatever the order.
 * - ALLOW, DENY: served when an ALLOW line matches and no DENY line does.
 * - DENY, ALLOW: served when an ALLOW line matches (a DENY line that also
 *   matches is overridden).
 * - Nothing matched in the ALLOW list: refused.
 * DENY FROM hosts are resolved when the file is parsed (every IPv4
 * address of the name; a dotted address as it is) and matched against
 * the client's IP address; a host that does not resolve is an error.
 *
 * Errors: a line that does not parse, a bad pattern, an unknown keyword,
 * a bad level, a \N beyond the pattern's groups or a host that does not
 * resolve make the whole file refused; the message says "source:line:
 * reason". Nothing is half-loaded.
 *
 * Threads: a parsed list is immutable except for its per-name cache
 * (its own leaf lock), so any number of threads may match at once. The
 * cache holds the name-only part of the answer for at most
 * GW_PVLIST_CACHE_MAX names (then it starts again empty); a new list (a
 * reload) starts with an empty cache.
 */
#ifndef INC_gwPvList_H
#define INC_gwPvList_H

#include <stddef.h>
#include <stdio.h>

#include <osiSock.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GW_PVLIST_NAME_SIZE 1024       /* the longest real name + 1 */
#define GW_PVLIST_ASG_SIZE 128         /* the longest group name + 1 */
#define GW_PVLIST_PATTERN_SIZE 256     /* of a pattern in a match (for people) */
#define GW_PVLIST_CACHE_MAX 65536
#define GW_PVLIST_ERROR_SIZE 512

typedef struct gwPvList gwPvList;

typedef enum gwPvListOrder {
    GW_PVLIST_ALLOW_DENY = 0,   /* the default */
    GW_PVLIST_DENY_ALLOW
} gwPvListOrder;

typedef enum gwPvListRuleKind {
    GW_PVLIST_NONE = 0,         /* no rule matched */
    GW_PVLIST_ALLOW,
    GW_PVLIST_ALIAS,
    GW_PVLIST_DENY,
    GW_PVLIST_DENY_FROM
} gwPvListRuleKind;

/* What the rules say of one name for one client. */
/* A match is a copy: it stays valid when the list is freed or replaced. */
typedef struct gwPvListMatch {
    int allowed;                /* 1: the name is served */
    gwPvListRuleKind kind;      /* the rule that decided: ALLOW/ALIAS when
                                   allowed; DENY, DENY_FROM or NONE when not */
    int line;                   /* its line in the file (0: none; the
                                   default list's rule is line 0 too) */
    char pattern[GW_PVLIST_PATTERN_SIZE]; /* its pattern as written ("!"
                                   included; cut when longer), or "" */
    char asg[GW_PVLIST_ASG_SIZE]; /* allowed: the rule's group, "DEFAULT" if none */
    int asl;                    /* allowed: the rule's level, 1 if none */
    int aliased;                /* allowed by an ALIAS line */
    char realName[GW_PVLIST_NAME_SIZE]; /* allowed: the name to use upstream
                                   (the alias expanded, or the name itself) */
} gwPvListMatch;

/* Parse text[0..length) (need not be NUL-terminated; a NUL byte is an
 * error); source names it in messages (a file name). NULL on any error,
 * with one line "source:line: reason" in error[errorSize] (errorSize 0:
 * no message). */
gwPvList *gwPvListParse(const char *text, size_t length, const char *source,
                        char *error, size_t errorSize);
/* Read and parse a file. NULL with "path: reason" or "path:line: reason". */
gwPvList *gwPvListLoad(const char *path, char *error, size_t errorSize);
/* The list in force without a pvlist: ".* ALLOW". NULL when out of memory. */
gwPvList *gwPvListDefault(void);
/* NULL is ignored. No match may be running on it. */
void gwPvListFree(gwPvList *list);

/* What the rules say of name asked from client (NULL: no address, DENY
 * FROM does not apply). A name longer than GW_PVLIST_NAME_SIZE - 1, or
 * an alias that expands beyond it, is refused (kind NONE). Any thread. */
void gwPvListMatchName(gwPvList *list, const char *name, const struct sockaddr_in *client,
                       gwPvListMatch *match);

gwPvListOrder gwPvListGetOrder(const gwPvList *list);
size_t gwPvListRuleCount(const gwPvList *list);   /* lines with a rule */
const char *gwPvListSource(const gwPvList *list); /* as given to parse; "" default */

/* The rules in force, for report 3: the source, the order, then the
 * DENY FROM, DENY and ALLOW lists in the order they are searched, one
 * rule per line with its line number, pattern, alias, group, level and
 * hosts (as written and as resolved). */
void gwPvListReport(const gwPvList *list, FILE *out);

#ifdef __cplusplus
}
#endif

#endif /* INC_gwPvList_H */
