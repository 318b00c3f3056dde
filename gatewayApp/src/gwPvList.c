/* gwPvList.c - the pvlist: parsing the rules, matching names against
 * them, and the per-name cache (see gwPvList.h).
 *
 * Owns a parsed list: its rules, their compiled patterns (PCRE2, JIT when
 * it compiles), their resolved hosts and the cache of name-only answers.
 * Parsing runs on the caller's thread and shares nothing. Matching runs
 * on any thread: the rules are read-only once parsed; patterns are
 * matched outside any lock, with match data allocated for the call. The
 * cache is guarded by cacheLock, a leaf lock: under it only the name
 * table (gwNameTable.c), malloc and free are called.
 *
 * What is cached for a name does not depend on the client: the ALLOW
 * list's hit (and the expanded real name), the DENY list's hit, and the
 * DENY FROM rules whose pattern matches (or, when more match than an
 * entry keeps, a flag to evaluate the DENY FROM list in full). The
 * client's address is checked against those on every call.
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netdb.h>
#include <pcre2.h>

#include <compilerDependencies.h>
#include <dbDefs.h>
#include <epicsMutex.h>
#include <epicsString.h>
#include <osiSock.h>

#include "gwNameTable.h"
#include "gwPvList.h"

#define GW_PVLIST_LINE_MAX 4096                     /* bytes, without the line end */
#define GW_PVLIST_WORDS_MAX (GW_PVLIST_LINE_MAX / 2 + 1)
#define GW_PVLIST_FILE_MAX (16u * 1024u * 1024u)
#define GW_PVLIST_CACHED_DENY_FROM 8                /* DENY FROM hits one entry keeps */
#define GW_PVLIST_CACHE_BUCKETS 1024                /* to start with: the table grows */
#define GW_PVLIST_GROUPS 9                          /* \1 .. \9 */
#define GW_PVLIST_QUOTE 80                          /* of a word quoted in a message */

typedef struct gwPvListHost {
    char *name;                 /* as written */
    size_t addressCount;
    struct in_addr *addresses;  /* every IPv4 address it resolved to */
} gwPvListHost;

typedef struct gwPvListRule {
    gwPvListRuleKind kind;      /* ALLOW, ALIAS, DENY or DENY_FROM */
    int line;
    int inverted;               /* the pattern began with '!' */
    char *pattern;              /* as written, '!' included */
    pcre2_code *code;           /* of the pattern without its '!' */
    char *realName;             /* ALIAS: the real name as written; else NULL */
    char *asg;                  /* "DEFAULT" when none was given */
    int asl;
    size_t hostCount;           /* DENY_FROM */
    gwPvListHost *hosts;
} gwPvListRule;

/* The name-only part of an answer. Rule numbers index list->rules. */
typedef struct gwPvListAnswer {
    int allowRule;              /* the ALLOW list's hit, -1 none */
    int denyRule;               /* the DENY list's hit, -1 none */
    int realNameTooLong;        /* the hit's alias did not fit GW_PVLIST_NAME_SIZE */
    int denyFromAll;            /* more DENY FROM hits than kept: evaluate them all */
    int denyFromCount;
    int denyFrom[GW_PVLIST_CACHED_DENY_FROM]; /* the DENY FROM hits, in search order */
} gwPvListAnswer;

typedef struct gwPvListCacheEntry {
    gwNameNode node;
    struct gwPvListCacheEntry *nextEntry;   /* every entry, to clear them */
    gwPvListAnswer answer;
    const char *realName;       /* the alias expanded, or NULL */
    char strings[];             /* the name, then the real name */
} gwPvListCacheEntry;

struct gwPvList {
    char *source;
    gwPvListOrder order;
    size_t ruleCount;
    gwPvListRule *rules;        /* in file order */
    /* The three lists, each as rule numbers in search order (last line first). */
    size_t denyFromCount, denyCount, allowCount;
    int *denyFrom, *deny, *allow;
    epicsMutexId cacheLock;     /* guards the rest */
    gwNameTable cache;          /* buckets NULL until the first entry */
    gwPvListCacheEntry *cacheEntries;
    size_t cacheCount;
};

/* The state of one parse. */
typedef struct gwPvListParser {
    gwPvList *list;
    size_t ruleCapacity;
    const char *source;
    int line;
    char *error;
    size_t errorSize;
    char *buffer;               /* the current line, words NUL-terminated in it */
    char **words;
} gwPvListParser;

/* ---- Parsing ---------------------------------------------------------- */

static int fail(gwPvListParser *parser, const char *format, ...) EPICS_PRINTF_STYLE(2, 3);

/* "source:line: reason" into the caller's buffer; always -1. */
static int fail(gwPvListParser *parser, const char *format, ...)
{
    va_list args;
    int n;

    if (parser->errorSize == 0)
        return -1;
    n = snprintf(parser->error, parser->errorSize, "%s:%d: ", parser->source, parser->line);
    if (n >= 0 && (size_t)n < parser->errorSize) {
        va_start(args, format);
        vsnprintf(parser->error + n, parser->errorSize - (size_t)n, format, args);
        va_end(args);
    }
    return -1;
}

static int isKeyword(const char *word, const char *keyword)
{
    return epicsStrCaseCmp(word, keyword) == 0;
}

static int isAllowKeyword(const char *word)
{
    return isKeyword(word, "ALLOW") || isKeyword(word, "PATTERN") || isKeyword(word, "PV");
}

static int isRuleKeyword(const char *word)
{
    return isAllowKeyword(word) || isKeyword(word, "ALIAS") || isKeyword(word, "DENY");
}

static int isSeparator(char c)
{
    return c == ' ' || c == '\t' || c == ',' || c == '\r';
}

/* Split the line (copied to parser->buffer) into words; a '#' where a word
 * would start ends the line. The number of words. */
static size_t splitWords(gwPvListParser *parser, const char *line, size_t length)
{
    char *p = parser->buffer, *end = parser->buffer + length;
    size_t count = 0;

    memcpy(parser->buffer, line, length);
    *end = '\0';
    for (;;) {
        while (p < end && isSeparator(*p))
            p++;
        if (p == end || *p == '#')
            return count;
        parser->words[count++] = p;
        while (p < end && !isSeparator(*p))
            p++;
        *p++ = '\0';
        if (p > end)
            return count;
    }
}

static void freeRule(gwPvListRule *rule)
{
    size_t i;

    free(rule->pattern);
    pcre2_code_free(rule->code);
    free(rule->realName);
    free(rule->asg);
    for (i = 0; i < rule->hostCount; i++) {
        free(rule->hosts[i].name);
        free(rule->hosts[i].addresses);
    }
    free(rule->hosts);
}

/* A new rule at the end of the list, zeroed but for its kind and line. */
static gwPvListRule *addRule(gwPvListParser *parser, gwPvListRuleKind kind)
{
    gwPvList *list = parser->list;
    gwPvListRule *rule;

    if (list->ruleCount == parser->ruleCapacity) {
        size_t capacity = parser->ruleCapacity ? parser->ruleCapacity * 2 : 16;
        gwPvListRule *rules = realloc(list->rules, capacity * sizeof *rules);
        if (!rules) {
            fail(parser, "out of memory");
            return NULL;
        }
        list->rules = rules;
        parser->ruleCapacity = capacity;
    }
    rule = &list->rules[list->ruleCount++];
    memset(rule, 0, sizeof *rule);
    rule->kind = kind;
    rule->line = parser->line;
    rule->asl = 1;
    return rule;
}

static char *copyWord(gwPvListParser *parser, const char *word)
{
    char *copy = epicsStrDup(word);

    if (!copy)
        fail(parser, "out of memory");
    return copy;
}

/* The rule's pattern compiled (anchored at both ends, JIT if it can). */
static int compilePattern(gwPvListParser *parser, gwPvListRule *rule, const char *pattern)
{
    const char *regex = pattern;
    int code;
    PCRE2_SIZE offset;

    rule->pattern = copyWord(parser, pattern);
    if (!rule->pattern)
        return -1;
    if (regex[0] == '!') {
        rule->inverted = 1;
        regex++;
    }
    rule->code = pcre2_compile((PCRE2_SPTR)regex, strlen(regex), PCRE2_ANCHORED | PCRE2_ENDANCHORED,
                               &code, &offset, NULL);
    if (!rule->code) {
        PCRE2_UCHAR message[256];
        if (pcre2_get_error_message(code, message, sizeof message) < 0)
            strcpy((char *)message, "unknown error");
        return fail(parser, "bad pattern \"%.*s\": %s at offset %lu", GW_PVLIST_QUOTE, pattern,
                    (const char *)message, (unsigned long)offset);
    }
    (void)pcre2_jit_compile(rule->code, PCRE2_JIT_COMPLETE); /* the interpreter otherwise */
    return 0;
}

/* The real name's \N refer to groups the pattern has. The real name is read
 * as matching reads it (expandAlias): a backslash and the next byte go
 * together. */
static int checkRealName(gwPvListParser *parser, const gwPvListRule *rule)
{
    const char *p = rule->realName;
    uint32_t groups = 0;

    if (pcre2_pattern_info(rule->code, PCRE2_INFO_CAPTURECOUNT, &groups) != 0)
        return fail(parser, "cannot count the groups of \"%.*s\"", GW_PVLIST_QUOTE, rule->pattern);
    for (; *p; p++) {
        if (p[0] != '\\' || p[1] == '\0')
            continue;
        p++;
        if (*p < '1' || *p > '9')
            continue;
        if (rule->inverted)
            return fail(parser, "\\%c in the real name of an inverted pattern (it has no groups)",
                        *p);
        if ((uint32_t)(*p - '0') > groups)
            return fail(parser, "\\%c in the real name but the pattern has %u group%s", *p,
                        (unsigned)groups, groups == 1 ? "" : "s");
    }
    return 0;
}

/* [<asg> [<asl>]] from words[0..count); more is an error. */
static int parseAccess(gwPvListParser *parser, gwPvListRule *rule, char **words, size_t count,
                       const char *form)
{
    if (count > 2)
        return fail(parser, "extra words after %s: \"%.*s\"", form, GW_PVLIST_QUOTE, words[2]);
    if (count > 0 && strlen(words[0]) >= GW_PVLIST_ASG_SIZE)
        return fail(parser, "access security group name longer than %d characters: "
                    "\"%.*s...\"", GW_PVLIST_ASG_SIZE - 1, GW_PVLIST_QUOTE, words[0]);
    rule->asg = copyWord(parser, count > 0 ? words[0] : "DEFAULT");
    if (!rule->asg)
        return -1;
    if (count > 1) {
        if (strcmp(words[1], "0") != 0 && strcmp(words[1], "1") != 0)
            return fail(parser, "bad access security level \"%.*s\" (0 or 1)", GW_PVLIST_QUOTE,
                        words[1]);
        rule->asl = words[1][0] - '0';
    }
    return 0;
}

static int addAddress(gwPvListHost *host, struct in_addr address)
{
    struct in_addr *addresses;
    size_t i;

    for (i = 0; i < host->addressCount; i++)
        if (host->addresses[i].s_addr == address.s_addr)
            return 0;
    addresses = realloc(host->addresses, (host->addressCount + 1) * sizeof *addresses);
    if (!addresses)
        return -1;
    addresses[host->addressCount++] = address;
    host->addresses = addresses;
    return 0;
}

/* Every IPv4 address of the host (a dotted address as it is). */
static int resolveHost(gwPvListParser *parser, gwPvListHost *host)
{
    struct addrinfo hints, *found = NULL, *each;
    struct in_addr address;
    int status;

    if (inet_pton(AF_INET, host->name, &address) == 1)
        return addAddress(host, address) == 0 ? 0 : fail(parser, "out of memory");
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    status = getaddrinfo(host->name, NULL, &hints, &found);
    if (status != 0)
        return fail(parser, "host \"%.*s\" does not resolve: %s", GW_PVLIST_QUOTE, host->name,
                    status == EAI_SYSTEM ? strerror(errno) : gai_strerror(status));
    for (each = found; each; each = each->ai_next) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(void *)each->ai_addr;
        if (each->ai_family != AF_INET || !in)
            continue;
        if (addAddress(host, in->sin_addr) != 0) {
            freeaddrinfo(found);
            return fail(parser, "out of memory");
        }
    }
    freeaddrinfo(found);
    if (host->addressCount == 0)
        return fail(parser, "host \"%.*s\" has no IPv4 address", GW_PVLIST_QUOTE, host->name);
    return 0;
}

static int parseHosts(gwPvListParser *parser, gwPvListRule *rule, char **words, size_t count)
{
    size_t i;

    rule->hosts = calloc(count, sizeof *rule->hosts);
    if (!rule->hosts)
        return fail(parser, "out of memory");
    for (i = 0; i < count; i++) {
        gwPvListHost *host = &rule->hosts[rule->hostCount++];
        host->name = copyWord(parser, words[i]);
        if (!host->name || resolveHost(parser, host) != 0)
            return -1;
    }
    return 0;
}

/* <pattern> DENY [FROM] [<host> ...] */
static int parseDeny(gwPvListParser *parser, char **words, size_t count)
{
    size_t first = 2;
    gwPvListRule *rule;

    if (count > 2 && isKeyword(words[2], "FROM"))
        first = 3;
    rule = addRule(parser, count > first ? GW_PVLIST_DENY_FROM : GW_PVLIST_DENY);
    if (!rule)
        return -1;
    rule->asg = copyWord(parser, "DEFAULT");
    if (!rule->asg || compilePattern(parser, rule, words[0]) != 0)
        return -1;
    return count > first ? parseHosts(parser, rule, words + first, count - first) : 0;
}

/* <pattern> ALLOW [<asg> [<asl>]] (or PATTERN, PV) */
static int parseAllow(gwPvListParser *parser, char **words, size_t count)
{
    gwPvListRule *rule = addRule(parser, GW_PVLIST_ALLOW);

    if (!rule || parseAccess(parser, rule, words + 2, count - 2, "ALLOW <asg> <asl>") != 0)
        return -1;
    return compilePattern(parser, rule, words[0]);
}

/* <pattern> ALIAS <real-name> [<asg> [<asl>]] */
static int parseAlias(gwPvListParser *parser, char **words, size_t count)
{
    gwPvListRule *rule;

    if (count < 3)
        return fail(parser, "missing real name after ALIAS");
    rule = addRule(parser, GW_PVLIST_ALIAS);
    if (!rule || parseAccess(parser, rule, words + 3, count - 3, "ALIAS <real-name> <asg> <asl>") != 0)
        return -1;
    rule->realName = copyWord(parser, words[2]);
    if (!rule->realName || compilePattern(parser, rule, words[0]) != 0)
        return -1;
    return checkRealName(parser, rule);
}

/* EVALUATION ORDER ALLOW, DENY | DENY, ALLOW */
static int parseOrder(gwPvListParser *parser, char **words, size_t count)
{
    if (count == 4 && isKeyword(words[2], "ALLOW") && isKeyword(words[3], "DENY"))
        parser->list->order = GW_PVLIST_ALLOW_DENY;
    else if (count == 4 && isKeyword(words[2], "DENY") && isKeyword(words[3], "ALLOW"))
        parser->list->order = GW_PVLIST_DENY_ALLOW;
    else
        return fail(parser, "bad EVALUATION ORDER (ALLOW, DENY or DENY, ALLOW)");
    return 0;
}

static int parseWords(gwPvListParser *parser, char **words, size_t count)
{
    if (count == 0)
        return 0;
    if (count >= 2 && isKeyword(words[0], "EVALUATION") && isKeyword(words[1], "ORDER"))
        return parseOrder(parser, words, count);
    if (count == 1)
        return isRuleKeyword(words[0])
                   ? fail(parser, "missing pattern before %s", words[0])
                   : fail(parser, "missing keyword after \"%.*s\"", GW_PVLIST_QUOTE, words[0]);
    if (isAllowKeyword(words[1]))
        return parseAllow(parser, words, count);
    if (isKeyword(words[1], "ALIAS"))
        return parseAlias(parser, words, count);
    if (isKeyword(words[1], "DENY"))
        return parseDeny(parser, words, count);
    return fail(parser, "unknown keyword \"%.*s\" (ALLOW, ALIAS, DENY, PATTERN or PV)",
                GW_PVLIST_QUOTE, words[1]);
}

/* One line, its end ("\n", "\r\n" or the end of the text) not included. */
static int parseLine(gwPvListParser *parser, const char *line, size_t length)
{
    if (length > 0 && line[length - 1] == '\r')
        length--;
    if (length > GW_PVLIST_LINE_MAX)
        return fail(parser, "line longer than %d bytes", GW_PVLIST_LINE_MAX);
    if (memchr(line, '\0', length))
        return fail(parser, "NUL byte in the line");
    return parseWords(parser, parser->words, splitWords(parser, line, length));
}

/* The rule numbers of one kind (two for the ALLOW list), last line first. */
static int *searchList(const gwPvList *list, gwPvListRuleKind kind, gwPvListRuleKind also,
                       size_t *count)
{
    int *numbers = malloc((list->ruleCount ? list->ruleCount : 1) * sizeof *numbers);
    size_t i = list->ruleCount;

    *count = 0;
    if (!numbers)
        return NULL;
    while (i-- > 0)
        if (list->rules[i].kind == kind || list->rules[i].kind == also)
            numbers[(*count)++] = (int)i;
    return numbers;
}

static int finishList(gwPvListParser *parser)
{
    gwPvList *list = parser->list;

    list->denyFrom = searchList(list, GW_PVLIST_DENY_FROM, GW_PVLIST_DENY_FROM,
                                &list->denyFromCount);
    list->deny = searchList(list, GW_PVLIST_DENY, GW_PVLIST_DENY, &list->denyCount);
    list->allow = searchList(list, GW_PVLIST_ALLOW, GW_PVLIST_ALIAS, &list->allowCount);
    list->cacheLock = epicsMutexCreate();
    if (!list->denyFrom || !list->deny || !list->allow || !list->cacheLock)
        return fail(parser, "out of memory");
    return 0;
}

static int parseText(gwPvListParser *parser, const char *text, size_t length)
{
    size_t at = 0;

    if (!text && length > 0)
        return fail(parser, "no text");
    while (at < length) {
        const char *end = memchr(text + at, '\n', length - at);
        size_t lineLength = end ? (size_t)(end - (text + at)) : length - at;
        parser->line++;
        if (parseLine(parser, text + at, lineLength) != 0)
            return -1;
        at += lineLength + (end ? 1 : 0);
    }
    return finishList(parser);
}

gwPvList *gwPvListParse(const char *text, size_t length, const char *source, char *error,
                        size_t errorSize)
{
    gwPvListParser parser;
    int status = -1;

    memset(&parser, 0, sizeof parser);
    parser.source = source ? source : "";
    parser.error = error;
    parser.errorSize = error ? errorSize : 0;
    if (parser.errorSize > 0)
        error[0] = '\0';
    parser.list = calloc(1, sizeof *parser.list);
    parser.buffer = malloc(GW_PVLIST_LINE_MAX + 1);
    parser.words = malloc(GW_PVLIST_WORDS_MAX * sizeof *parser.words);
    if (parser.list)
        parser.list->source = epicsStrDup(parser.source);
    if (!parser.list || !parser.list->source || !parser.buffer || !parser.words)
        fail(&parser, "out of memory");
    else
        status = parseText(&parser, text, length);
    free(parser.buffer);
    free(parser.words);
    if (status != 0) {
        gwPvListFree(parser.list);
        return NULL;
    }
    return parser.list;
}

/* The whole file into *text (malloc'd, *length bytes): 0, or an errno
 * value; EFBIG when it is larger than GW_PVLIST_FILE_MAX. */
static int readFile(FILE *file, char **text, size_t *length)
{
    size_t capacity = 0, n;
    char *bytes = NULL;

    *text = NULL;
    *length = 0;
    for (;;) {
        if (*length == capacity) {
            char *bigger;
            if (capacity > GW_PVLIST_FILE_MAX) {
                free(bytes);
                return EFBIG;
            }
            capacity = capacity ? capacity * 2 : 65536;
            if (capacity > GW_PVLIST_FILE_MAX)
                capacity = GW_PVLIST_FILE_MAX + 1;
            bigger = realloc(bytes, capacity);
            if (!bigger) {
                free(bytes);
                return ENOMEM;
            }
            bytes = bigger;
        }
        n = fread(bytes + *length, 1, capacity - *length, file);
        *length += n;
        if (n == 0)
            break;
    }
    if (ferror(file)) {
        free(bytes);
        return errno ? errno : EIO;
    }
    *text = bytes;
    return 0;
}

gwPvList *gwPvListLoad(const char *path, char *error, size_t errorSize)
{
    FILE *file;
    char *text;
    size_t length;
    gwPvList *list;
    int status;

    if (!error)
        errorSize = 0;
    if (!path) {
        if (errorSize > 0)
            snprintf(error, errorSize, "(no path): no file");
        return NULL;
    }
    errno = 0;
    file = fopen(path, "rb");
    if (!file) {
        if (errorSize > 0)
            snprintf(error, errorSize, "%s: %s", path, strerror(errno));
        return NULL;
    }
    errno = 0;
    status = readFile(file, &text, &length);
    fclose(file);
    if (status == 0 && length > GW_PVLIST_FILE_MAX) {
        free(text);
        status = EFBIG;
    }
    if (status != 0) {
        if (errorSize > 0 && status == EFBIG)
            snprintf(error, errorSize, "%s: larger than %u MiB", path,
                     GW_PVLIST_FILE_MAX / (1024u * 1024u));
        else if (errorSize > 0)
            snprintf(error, errorSize, "%s: %s", path, strerror(status));
        return NULL;
    }
    list = gwPvListParse(text, length, path, error, errorSize);
    free(text);
    return list;
}

gwPvList *gwPvListDefault(void)
{
    static const char rule[] = ".* ALLOW";
    gwPvList *list = gwPvListParse(rule, sizeof rule - 1, "", NULL, 0);

    if (list)
        list->rules[0].line = 0;
    return list;
}

static void cacheClear(gwPvList *list)
{
    while (list->cacheEntries) {
        gwPvListCacheEntry *entry = list->cacheEntries;
        list->cacheEntries = entry->nextEntry;
        free(entry);
    }
    list->cacheCount = 0;
    gwNameTableClear(&list->cache);
}

void gwPvListFree(gwPvList *list)
{
    size_t i;

    if (!list)
        return;
    for (i = 0; i < list->ruleCount; i++)
        freeRule(&list->rules[i]);
    free(list->rules);
    free(list->denyFrom);
    free(list->deny);
    free(list->allow);
    cacheClear(list);
    if (list->cacheLock)
        epicsMutexDestroy(list->cacheLock);
    free(list->source);
    free(list);
}

/* ---- Matching --------------------------------------------------------- */

/* 1: the rule's pattern matches the whole name, 0: it does not, -1: PCRE2
 * could not tell (its match limit, out of memory). */
static int patternMatches(const gwPvListRule *rule, const char *name, size_t length,
                          pcre2_match_data *data, int *groups)
{
    int rc = pcre2_match(rule->code, (PCRE2_SPTR)name, length, 0, 0, data, NULL);

    /* The JIT's stack (32 KiB on the machine stack) is too small for some
     * patterns on long names: the interpreter's frames are on the heap. */
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
        rc = pcre2_match(rule->code, (PCRE2_SPTR)name, length, 0, PCRE2_NO_JIT, data, NULL);
    if (groups)
        *groups = rc;
    if (rc == PCRE2_ERROR_NOMATCH)
        return rule->inverted;
    if (rc < 0)
        return -1;
    return !rule->inverted;
}

/* The rule's real name for this match into out[GW_PVLIST_NAME_SIZE]: \1 ..
 * \9 are the groups (an unset one is empty), any other backslash and the
 * byte after it are kept. rc is pcre2_match's (0: every pair of the match
 * data is filled). 0, or -1 when it does not fit. */
static int expandAlias(const gwPvListRule *rule, const char *name, pcre2_match_data *data, int rc,
                       char *out)
{
    const PCRE2_SIZE *ovector = pcre2_get_ovector_pointer(data);
    uint32_t pairs = pcre2_get_ovector_count(data);
    const char *p = rule->realName;
    size_t used = 0;

    while (*p) {
        const char *piece = p;
        size_t n = 1;
        if (p[0] == '\\' && p[1] >= '1' && p[1] <= '9') {
            uint32_t group = (uint32_t)(p[1] - '0');
            n = 0;
            if (rc >= 0 && group < pairs && (rc == 0 || group < (uint32_t)rc) &&
                ovector[2 * group] != PCRE2_UNSET && ovector[2 * group + 1] > ovector[2 * group]) {
                piece = name + ovector[2 * group];
                n = ovector[2 * group + 1] - ovector[2 * group];
            }
            p += 2;
        } else if (p[0] == '\\' && p[1] != '\0') {
            n = 2;
            p += 2;
        } else {
            p++;
        }
        if (n >= GW_PVLIST_NAME_SIZE - used) {
            out[0] = '\0';
            return -1;
        }
        memcpy(out + used, piece, n);
        used += n;
    }
    out[used] = '\0';
    return 0;
}

/* The first hit of a list of rule numbers; -1 none, -2 PCRE2 failed. */
static int firstHit(const gwPvList *list, const int *numbers, size_t count, const char *name,
                    size_t length, pcre2_match_data *data, int *groups)
{
    size_t i;

    for (i = 0; i < count; i++) {
        int hit = patternMatches(&list->rules[numbers[i]], name, length, data, groups);
        if (hit != 0)
            return hit > 0 ? numbers[i] : -2;
    }
    return -1;
}

/* The name-only answer, computed; realName[GW_PVLIST_NAME_SIZE] gets the
 * alias expanded. 0, or -1 when PCRE2 failed (nothing to cache). */
static int answerName(const gwPvList *list, const char *name, size_t length,
                      gwPvListAnswer *answer, char *realName)
{
    pcre2_match_data *data = pcre2_match_data_create(GW_PVLIST_GROUPS + 1, NULL);
    int groups = 0, status = -1;
    size_t i;

    memset(answer, 0, sizeof *answer);
    realName[0] = '\0';
    if (!data)
        return -1;
    answer->allowRule = firstHit(list, list->allow, list->allowCount, name, length, data, &groups);
    if (answer->allowRule == -2)
        goto done;
    if (answer->allowRule >= 0 && list->rules[answer->allowRule].kind == GW_PVLIST_ALIAS)
        answer->realNameTooLong =
            expandAlias(&list->rules[answer->allowRule], name, data, groups, realName) != 0;
    answer->denyRule = firstHit(list, list->deny, list->denyCount, name, length, data, NULL);
    if (answer->denyRule == -2)
        goto done;
    for (i = 0; i < list->denyFromCount; i++) {
        int hit = patternMatches(&list->rules[list->denyFrom[i]], name, length, data, NULL);
        if (hit < 0)
            goto done;
        if (hit == 0)
            continue;
        if (answer->denyFromCount == GW_PVLIST_CACHED_DENY_FROM) {
            answer->denyFromAll = 1;
            break;
        }
        answer->denyFrom[answer->denyFromCount++] = list->denyFrom[i];
    }
    status = 0;
done:
    pcre2_match_data_free(data);
    return status;
}

static int hostsHave(const gwPvListRule *rule, const struct sockaddr_in *client)
{
    size_t i, j;

    for (i = 0; i < rule->hostCount; i++)
        for (j = 0; j < rule->hosts[i].addressCount; j++)
            if (rule->hosts[i].addresses[j].s_addr == client->sin_addr.s_addr)
                return 1;
    return 0;
}

/* The DENY FROM rule that refuses the name to this client: its number, -1
 * none, -2 PCRE2 failed. */
static int denyFromHit(const gwPvList *list, const gwPvListAnswer *answer, const char *name,
                       size_t length, const struct sockaddr_in *client)
{
    pcre2_match_data *data;
    int found = -1, i;
    size_t n;

    if (!answer->denyFromAll) {
        for (i = 0; i < answer->denyFromCount; i++)
            if (hostsHave(&list->rules[answer->denyFrom[i]], client))
                return answer->denyFrom[i];
        return -1;
    }
    data = pcre2_match_data_create(1, NULL);
    if (!data)
        return -2;
    for (n = 0; n < list->denyFromCount && found == -1; n++) {
        const gwPvListRule *rule = &list->rules[list->denyFrom[n]];
        if (hostsHave(rule, client)) {
            int hit = patternMatches(rule, name, length, data, NULL);
            if (hit != 0)
                found = hit > 0 ? list->denyFrom[n] : -2;
        }
    }
    pcre2_match_data_free(data);
    return found;
}

/* A cached answer for the name: 1 (answer and realName filled), or 0. */
static int cacheGet(gwPvList *list, const char *name, unsigned hash, gwPvListAnswer *answer,
                    char *realName)
{
    gwNameNode *node;
    int found = 0;

    epicsMutexMustLock(list->cacheLock);
    node = gwNameTableFind(&list->cache, name, hash);
    if (node) {
        const gwPvListCacheEntry *entry = CONTAINER(node, gwPvListCacheEntry, node);
        *answer = entry->answer;
        if (entry->realName)
            strcpy(realName, entry->realName);
        else
            realName[0] = '\0';
        found = 1;
    }
    epicsMutexUnlock(list->cacheLock);
    return found;
}

/* Keep the answer for the name (when full, the cache starts again). */
static void cachePut(gwPvList *list, const char *name, size_t length, unsigned hash,
                     const gwPvListAnswer *answer, const char *realName)
{
    size_t realLength = realName[0] ? strlen(realName) + 1 : 0;
    gwPvListCacheEntry *entry = malloc(sizeof *entry + length + 1 + realLength);

    if (!entry)
        return;
    entry->answer = *answer;
    memcpy(entry->strings, name, length + 1);
    entry->realName = NULL;
    if (realLength) {
        memcpy(entry->strings + length + 1, realName, realLength);
        entry->realName = entry->strings + length + 1;
    }
    epicsMutexMustLock(list->cacheLock);
    if (list->cacheCount >= GW_PVLIST_CACHE_MAX)
        cacheClear(list);
    if (!list->cache.buckets)
        (void)gwNameTableInit(&list->cache, GW_PVLIST_CACHE_BUCKETS);
    if (list->cache.buckets && !gwNameTableFind(&list->cache, name, hash)) {
        gwNameTableAdd(&list->cache, &entry->node, entry->strings, hash);
        entry->nextEntry = list->cacheEntries;
        list->cacheEntries = entry;
        list->cacheCount++;
        entry = NULL;
    }
    epicsMutexUnlock(list->cacheLock);
    free(entry); /* not kept: another thread was first, or no table */
}

static void refuse(gwPvListMatch *match, gwPvListRuleKind kind, const gwPvListRule *rule)
{
    match->allowed = 0;
    match->kind = kind;
    match->line = rule ? rule->line : 0;
    snprintf(match->pattern, sizeof match->pattern, "%s", rule ? rule->pattern : "");
    match->asg[0] = '\0';
    match->asl = 0;
    match->aliased = 0;
    match->realName[0] = '\0';
}

/* The answer for this client: the DENY FROM list, then the order. */
static void decide(const gwPvList *list, const gwPvListAnswer *answer, const char *name,
                   size_t length, const struct sockaddr_in *client, gwPvListMatch *match)
{
    const gwPvListRule *rule;
    int denyFrom = client ? denyFromHit(list, answer, name, length, client) : -1;

    if (denyFrom != -1) {
        refuse(match, denyFrom >= 0 ? GW_PVLIST_DENY_FROM : GW_PVLIST_NONE,
               denyFrom >= 0 ? &list->rules[denyFrom] : NULL);
        return;
    }
    if (answer->allowRule < 0 || (answer->denyRule >= 0 && list->order == GW_PVLIST_ALLOW_DENY)) {
        if (answer->denyRule >= 0)
            refuse(match, GW_PVLIST_DENY, &list->rules[answer->denyRule]);
        else
            refuse(match, GW_PVLIST_NONE, NULL);
        return;
    }
    rule = &list->rules[answer->allowRule];
    if (answer->realNameTooLong) {
        refuse(match, GW_PVLIST_NONE, NULL);
        return;
    }
    match->allowed = 1;
    match->kind = rule->kind;
    match->line = rule->line;
    snprintf(match->pattern, sizeof match->pattern, "%s", rule->pattern);
    snprintf(match->asg, sizeof match->asg, "%s", rule->asg);
    match->asl = rule->asl;
    match->aliased = rule->kind == GW_PVLIST_ALIAS;
    if (!match->aliased)
        memcpy(match->realName, name, length + 1);
}

void gwPvListMatchName(gwPvList *list, const char *name, const struct sockaddr_in *client,
                       gwPvListMatch *match)
{
    gwPvListAnswer answer;
    size_t length = 0;
    unsigned hash;

    refuse(match, GW_PVLIST_NONE, NULL);
    if (!list || !name)
        return;
    while (length < GW_PVLIST_NAME_SIZE && name[length])
        length++;
    if (length >= GW_PVLIST_NAME_SIZE)
        return;
    hash = gwNameHash(name);
    if (!cacheGet(list, name, hash, &answer, match->realName)) {
        if (answerName(list, name, length, &answer, match->realName) != 0) {
            refuse(match, GW_PVLIST_NONE, NULL);
            return;
        }
        cachePut(list, name, length, hash, &answer, match->realName);
    }
    decide(list, &answer, name, length, client, match);
}

gwPvListOrder gwPvListGetOrder(const gwPvList *list)
{
    return list ? list->order : GW_PVLIST_ALLOW_DENY;
}

size_t gwPvListRuleCount(const gwPvList *list)
{
    return list ? list->ruleCount : 0;
}

const char *gwPvListSource(const gwPvList *list)
{
    return list ? list->source : "";
}

/* ---- Report ----------------------------------------------------------- */

static void reportRule(const gwPvListRule *rule, FILE *out)
{
    size_t i, j;

    fprintf(out, "  line %d: \"%s\"", rule->line, rule->pattern);
    switch (rule->kind) {
    case GW_PVLIST_ALIAS:
        fprintf(out, " ALIAS \"%s\" asg %s asl %d", rule->realName, rule->asg, rule->asl);
        break;
    case GW_PVLIST_ALLOW:
        fprintf(out, " ALLOW asg %s asl %d", rule->asg, rule->asl);
        break;
    case GW_PVLIST_DENY_FROM:
        fprintf(out, " DENY FROM");
        for (i = 0; i < rule->hostCount; i++) {
            const gwPvListHost *host = &rule->hosts[i];
            fprintf(out, " %s (", host->name);
            for (j = 0; j < host->addressCount; j++) {
                unsigned long a = ntohl(host->addresses[j].s_addr);
                fprintf(out, "%s%lu.%lu.%lu.%lu", j ? ", " : "", (a >> 24) & 0xff,
                        (a >> 16) & 0xff, (a >> 8) & 0xff, a & 0xff);
            }
            fprintf(out, ")");
        }
        break;
    default:
        fprintf(out, " DENY");
        break;
    }
    fprintf(out, "\n");
}

static void reportList(const gwPvList *list, const char *title, const int *numbers, size_t count,
                       FILE *out)
{
    size_t i;

    fprintf(out, "%s: %lu rule%s\n", title, (unsigned long)count, count == 1 ? "" : "s");
    for (i = 0; i < count; i++)
        reportRule(&list->rules[numbers[i]], out);
}

void gwPvListReport(const gwPvList *list, FILE *out)
{
    size_t cached;

    if (!list || !out)
        return;
    fprintf(out, "pvlist %s%s%s: %lu rule%s, evaluation order %s\n",
            list->source[0] ? "\"" : "", list->source[0] ? list->source : "(default)",
            list->source[0] ? "\"" : "", (unsigned long)list->ruleCount,
            list->ruleCount == 1 ? "" : "s",
            list->order == GW_PVLIST_ALLOW_DENY ? "ALLOW, DENY" : "DENY, ALLOW");
    reportList(list, "DENY FROM (first; last line first)", list->denyFrom, list->denyFromCount,
               out);
    reportList(list, "DENY (last line first)", list->deny, list->denyCount, out);
    reportList(list, "ALLOW and ALIAS (last line first)", list->allow, list->allowCount, out);
    epicsMutexMustLock(list->cacheLock);
    cached = list->cacheCount;
    epicsMutexUnlock(list->cacheLock);
    fprintf(out, "cache: %lu name%s (at most %d)\n", (unsigned long)cached, cached == 1 ? "" : "s",
            GW_PVLIST_CACHE_MAX);
}
