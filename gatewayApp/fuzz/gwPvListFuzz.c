/* gwPvListFuzz.c - libFuzzer target for the pvlist (gwPvList.c, issue 14).
 *
 * Parses the input as a pvlist. When it parses, it matches names taken
 * from the input (its words, its first line, a few fixed ones, one too
 * long) from no client and from two loopback addresses, on two lists
 * parsed from the same text whose caches are filled in different orders,
 * each name twice (a miss, then a hit). Every answer must keep the
 * header's promises (allowed only by ALLOW or ALIAS, a real name that is
 * the name or its alias and ends in NUL, DENY FROM only with a client, a
 * long name refused...) and be the same whatever the cache held; any
 * difference aborts, so libFuzzer reports the input. The report is
 * written to /dev/null. Built and run by scripts/fuzz --target pvlist.
 *
 * getaddrinfo is replaced here: no input makes the target look a host up
 * (only "localhost" resolves, to 127.0.0.1; dotted addresses never reach
 * it). No state is kept between inputs.
 */
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <osiSock.h>

#include "gwPvList.h"

#define FUZZ_NAMES 12
#define FUZZ_CLIENTS 3

typedef struct fuzzAddress {
    struct addrinfo info;
    struct sockaddr_in in;
} fuzzAddress;

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **result)
{
    fuzzAddress *address;

    (void)service;
    (void)hints;
    *result = NULL;
    if (!node || strcasecmp(node, "localhost") != 0)
        return EAI_NONAME;
    address = calloc(1, sizeof *address);
    if (!address)
        return EAI_MEMORY;
    address->in.sin_family = AF_INET;
    address->in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address->info.ai_family = AF_INET;
    address->info.ai_socktype = SOCK_STREAM;
    address->info.ai_addrlen = sizeof address->in;
    address->info.ai_addr = (struct sockaddr *)&address->in;
    *result = &address->info;
    return 0;
}

void freeaddrinfo(struct addrinfo *result)
{
    free(result); /* the fuzzAddress it begins */
}

static char names[FUZZ_NAMES][GW_PVLIST_NAME_SIZE + 8];
static size_t nameCount;

static void addName(const char *bytes, size_t length)
{
    if (nameCount == FUZZ_NAMES)
        return;
    if (length > GW_PVLIST_NAME_SIZE + 4)
        length = GW_PVLIST_NAME_SIZE + 4;
    memcpy(names[nameCount], bytes, length);
    names[nameCount][length] = '\0';
    nameCount++;
}

/* The names to ask: the input's words, its first line, and fixed ones. */
static void takeNames(const uint8_t *data, size_t size)
{
    static char tooLong[GW_PVLIST_NAME_SIZE + 1];
    const char *text = (const char *)data;
    size_t at = 0, line = 0;

    nameCount = 0;
    addName("", 0);
    addName("a", 1);
    memset(tooLong, 'a', GW_PVLIST_NAME_SIZE);
    addName(tooLong, GW_PVLIST_NAME_SIZE);
    while (line < size && text[line] != '\n')
        line++;
    addName(text, line);
    while (at < size && nameCount < FUZZ_NAMES) {
        size_t start;
        while (at < size && strchr(" \t,\r\n", text[at]) && text[at] != '\0')
            at++;
        start = at;
        while (at < size && !(strchr(" \t,\r\n", text[at]) && text[at] != '\0'))
            at++;
        if (at > start)
            addName(text + start, at - start);
    }
}

static void check(int ok)
{
    if (!ok)
        abort();
}

static int terminated(const char *s, size_t size)
{
    return memchr(s, '\0', size) != NULL;
}

/* What the header promises of any answer. */
static void checkMatch(const gwPvListMatch *m, const char *name, const struct sockaddr_in *client,
                       int lines)
{
    check(m->allowed == 0 || m->allowed == 1);
    check(m->pattern != NULL && m->asg != NULL);
    check(terminated(m->realName, sizeof m->realName));
    check(m->line >= 0 && m->line <= lines);
    if (strlen(name) >= GW_PVLIST_NAME_SIZE)
        check(!m->allowed && m->kind == GW_PVLIST_NONE);
    if (m->allowed) {
        check(m->kind == GW_PVLIST_ALLOW || m->kind == GW_PVLIST_ALIAS);
        check(m->aliased == (m->kind == GW_PVLIST_ALIAS));
        check(m->line >= 1 && m->pattern[0] != '\0' && m->asg[0] != '\0');
        check(m->asl == 0 || m->asl == 1);
        check(m->aliased || strcmp(m->realName, name) == 0);
    } else {
        check(m->kind == GW_PVLIST_NONE || m->kind == GW_PVLIST_DENY ||
              m->kind == GW_PVLIST_DENY_FROM);
        check(!m->aliased && m->realName[0] == '\0');
        check(m->kind != GW_PVLIST_NONE || (m->line == 0 && m->pattern[0] == '\0'));
        check(m->kind == GW_PVLIST_NONE || m->line >= 1);
        check(client || m->kind != GW_PVLIST_DENY_FROM);
    }
}

static int same(const gwPvListMatch *a, const gwPvListMatch *b)
{
    return a->allowed == b->allowed && a->kind == b->kind && a->line == b->line &&
           strcmp(a->pattern, b->pattern) == 0 && strcmp(a->asg, b->asg) == 0 &&
           a->asl == b->asl && a->aliased == b->aliased && strcmp(a->realName, b->realName) == 0;
}

static const struct sockaddr_in *client(int i)
{
    static struct sockaddr_in clients[FUZZ_CLIENTS];

    if (i == 0)
        return NULL;
    clients[i].sin_family = AF_INET;
    clients[i].sin_addr.s_addr = htonl(INADDR_LOOPBACK + (unsigned)(i - 1));
    return &clients[i];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static gwPvListMatch first[FUZZ_NAMES][FUZZ_CLIENTS];
    static FILE *sink;
    gwPvListMatch m;
    char error[GW_PVLIST_ERROR_SIZE];
    gwPvList *one, *two;
    int lines = 1, c;
    size_t i, n;

    for (i = 0; i < size; i++)
        lines += data[i] == '\n';
    one = gwPvListParse((const char *)data, size, "fuzz", error, sizeof error);
    if (!one) {
        check(strncmp(error, "fuzz:", 5) == 0 && terminated(error, sizeof error));
        return 0;
    }
    two = gwPvListParse((const char *)data, size, "fuzz", error, sizeof error);
    check(two != NULL && gwPvListRuleCount(one) == gwPvListRuleCount(two));
    check(gwPvListRuleCount(one) <= (size_t)lines);
    takeNames(data, size);

    /* List one: each name from no client, then the others, twice each. */
    for (n = 0; n < nameCount; n++) {
        for (c = 0; c < FUZZ_CLIENTS; c++) {
            memset(&first[n][c], 'x', sizeof first[n][c]); /* need not be initialised */
            gwPvListMatchName(one, names[n], client(c), &first[n][c]);
            checkMatch(&first[n][c], names[n], client(c), lines);
            memset(&m, 'x', sizeof m);
            gwPvListMatchName(one, names[n], client(c), &m);
            check(same(&m, &first[n][c]));
        }
    }
    /* List two: the names backwards, the clients the other way round. */
    for (n = nameCount; n-- > 0;) {
        for (c = FUZZ_CLIENTS; c-- > 0;) {
            memset(&m, 'x', sizeof m);
            gwPvListMatchName(two, names[n], client(c), &m);
            check(same(&m, &first[n][c]));
        }
    }
    if (!sink)
        sink = fopen("/dev/null", "w");
    if (sink)
        gwPvListReport(one, sink);
    gwPvListFree(one);
    gwPvListFree(two);
    return 0;
}
