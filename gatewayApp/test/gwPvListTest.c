/* gwPvListTest.c - the pvlist (gwPvList.c): what the rules say of names,
 * table-driven; the texts refused and the line and reason said; the
 * default list, loading a file, the report; the cache (the same answers
 * on a miss and a hit, across clients, when it wraps, from four threads).
 *
 * No traffic: clients and hosts are 127.x addresses and "localhost"
 * (/etc/hosts). The one host that must not resolve is looked up only
 * inside scripts/netns run, where DNS fails at once; elsewhere those
 * cases are skipped (gwTestNetns.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <dbDefs.h>
#include <epicsEvent.h>
#include <epicsThread.h>
#include <epicsUnitTest.h>
#include <osiSock.h>
#include <testMain.h>

#include "gwPvList.h"
#include "gwTestNetns.h"

/* ---- What the rules say: the table ------------------------------------ */

typedef struct matchCase {
    const char *text;
    const char *name;
    const char *client;         /* dotted address, or NULL */
    int allowed;
    gwPvListRuleKind kind;
    int line;
    const char *realName;
    const char *asg;
    int asl;
} matchCase;

#define YES(text, name, client, kind, line, real, asg, asl) \
    { text, name, client, 1, GW_PVLIST_##kind, line, real, asg, asl }
#define NO(text, name, client, kind, line) \
    { text, name, client, 0, GW_PVLIST_##kind, line, "", "", 0 }

/* Long names, filled in by fillLongNames(). */
static char name500[501], name600[601], name1021[1022], name1022[1023], name1023[1024],
    name1024[1025], twice500[1001], prefixed1021[1024], alternating1023[1024];

#define DENY_FROM_TEN \
    ".* ALLOW\n" \
    ".* DENY FROM 127.0.0.10\n.* DENY FROM 127.0.0.11\n.* DENY FROM 127.0.0.12\n" \
    ".* DENY FROM 127.0.0.13\n.* DENY FROM 127.0.0.14\n.* DENY FROM 127.0.0.15\n" \
    ".* DENY FROM 127.0.0.16\n.* DENY FROM 127.0.0.17\n.* DENY FROM 127.0.0.18\n" \
    ".* DENY FROM 127.0.0.19\n"

#define ORDER_DA "EVALUATION ORDER DENY, ALLOW\n.* DENY\nok:.* ALLOW\n"
#define ORDER_AD "EVALUATION ORDER ALLOW, DENY\n.* DENY\nok:.* ALLOW\n"
#define BOTTOM_UP ".* ALLOW G1 0\nab.* ALLOW G2 1\n"
#define GENERAL_LAST "ab.* ALLOW G2 1\n.* ALLOW G1 0\n"
#define DENY_FROM_ONE ".* ALLOW\nx.* DENY FROM 127.0.0.2\n"
#define DENY_FROM_TWO ".* ALLOW\nx.* DENY FROM 127.0.0.2\nx1 deny from 127.0.0.2, 127.0.0.3\n"
#define GROUPS_NINE "(a)(b)(c)(d)(e)(f)(g)(h)(i) ALIAS \\9\\8\\7\\6\\5\\4\\3\\2\\1"

static const matchCase matchCases[] = {
    /* Whole-name matching. */
    YES(".* ALLOW", "a:b", NULL, ALLOW, 1, "a:b", "DEFAULT", 1),
    YES("ab ALLOW", "ab", NULL, ALLOW, 1, "ab", "DEFAULT", 1),
    NO("ab ALLOW", "abc", NULL, NONE, 0),
    NO("ab ALLOW", "xab", NULL, NONE, 0),
    NO("ab ALLOW", "", NULL, NONE, 0),
    YES("a|ab ALLOW", "ab", NULL, ALLOW, 1, "ab", "DEFAULT", 1),
    YES("[a-z]+:\\d{2} ALLOW", "ab:12", NULL, ALLOW, 1, "ab:12", "DEFAULT", 1),
    NO("[a-z]+:\\d{2} ALLOW", "ab:123", NULL, NONE, 0),
    NO("", "x", NULL, NONE, 0),
    NO("# only a comment\n\n   \n\t\n", "x", NULL, NONE, 0),
    /* The evaluation order, both ways. */
    YES(".* ALLOW\nsecret.* DENY", "open:x", NULL, ALLOW, 1, "open:x", "DEFAULT", 1),
    NO(".* ALLOW\nsecret.* DENY", "secret:x", NULL, DENY, 2),
    YES(ORDER_DA, "ok:1", NULL, ALLOW, 3, "ok:1", "DEFAULT", 1),
    NO(ORDER_DA, "no:1", NULL, DENY, 2),
    NO(ORDER_AD, "ok:1", NULL, DENY, 2),
    NO(ORDER_AD, "no:1", NULL, DENY, 2),
    NO("evaluation order allow,deny\nok:.* ALLOW\nok:x DENY", "ok:x", NULL, DENY, 3),
    YES("Evaluation Order Deny Allow\nok:x DENY\nok:.* ALLOW", "ok:x", NULL, ALLOW, 3, "ok:x",
        "DEFAULT", 1),
    NO("EVALUATION ORDER DENY, ALLOW\nEVALUATION ORDER ALLOW, DENY\nx DENY\nx ALLOW", "x", NULL,
       DENY, 3),
    NO("EVALUATION ORDER DENY, ALLOW\nx DENY", "x", NULL, DENY, 2),
    /* Bottom-up: the last matching line of a list wins. */
    YES(BOTTOM_UP, "abc", NULL, ALLOW, 2, "abc", "G2", 1),
    YES(BOTTOM_UP, "zz", NULL, ALLOW, 1, "zz", "G1", 0),
    YES(GENERAL_LAST, "abc", NULL, ALLOW, 2, "abc", "G1", 0),
    NO("a.* DENY\nab.* DENY\n.* ALLOW", "abc", NULL, DENY, 2),
    NO(".* ALLOW\na.* DENY\nab.* DENY", "abx", NULL, DENY, 3),
    YES("x(.*) ALIAS y\\1\n.* ALLOW", "x1", NULL, ALLOW, 2, "x1", "DEFAULT", 1),
    YES(".* ALLOW\nx(.*) ALIAS y\\1", "x1", NULL, ALIAS, 2, "y1", "DEFAULT", 1),
    /* Keywords in any case; PATTERN and PV. */
    YES("x.* PATTERN", "x1", NULL, ALLOW, 1, "x1", "DEFAULT", 1),
    YES("x.* PV grp", "x1", NULL, ALLOW, 1, "x1", "grp", 1),
    YES("x.* pv grp 0", "x1", NULL, ALLOW, 1, "x1", "grp", 0),
    YES("x.* allow", "x1", NULL, ALLOW, 1, "x1", "DEFAULT", 1),
    YES("x.* Allow G 0", "x1", NULL, ALLOW, 1, "x1", "G", 0),
    NO("x.* deny\n.* ALLOW", "x1", NULL, DENY, 1),
    YES("x.* aLiAs y", "x1", NULL, ALIAS, 1, "y", "DEFAULT", 1),
    /* Comments, commas, tabs, CR LF. */
    YES("x.* ALLOW # a comment", "x1", NULL, ALLOW, 1, "x1", "DEFAULT", 1),
    YES("x.* ALLOW G #1", "x1", NULL, ALLOW, 1, "x1", "G", 1),
    YES("x.*,ALLOW,G,0", "x1", NULL, ALLOW, 1, "x1", "G", 0),
    YES("  \t x.*\tALLOW\t\tG  1  ", "x1", NULL, ALLOW, 1, "x1", "G", 1),
    NO("# x.* ALLOW\ny ALLOW", "x1", NULL, NONE, 0),
    YES("x#y ALLOW", "x#y", NULL, ALLOW, 1, "x#y", "DEFAULT", 1),
    NO(".* ALLOW\r\ny DENY\r\n", "y", NULL, DENY, 2),
    YES(".* ALLOW G\r\n", "a", NULL, ALLOW, 1, "a", "G", 1),
    /* Aliases and their groups. */
    YES("old:(.*) ALIAS new:\\1", "old:x", NULL, ALIAS, 1, "new:x", "DEFAULT", 1),
    YES(GROUPS_NINE, "abcdefghi", NULL, ALIAS, 1, "ihgfedcba", "DEFAULT", 1),
    YES("(x)|(y) ALIAS [\\1][\\2]", "y", NULL, ALIAS, 1, "[][y]", "DEFAULT", 1),
    YES("a(.*) ALIAS b\\0\\\\1", "aZ", NULL, ALIAS, 1, "b\\0\\\\1", "DEFAULT", 1),
    YES("a(.*) ALIAS x\\1 GA 0", "abc", NULL, ALIAS, 1, "xbc", "GA", 0),
    YES("a(.*) ALIAS x\\1", "a", NULL, ALIAS, 1, "x", "DEFAULT", 1),
    YES("a(.*) ALIAS x\\1\\", "ab", NULL, ALIAS, 1, "xb\\", "DEFAULT", 1),
    NO("a(.*) ALIAS x\\1\n.* DENY", "abc", NULL, DENY, 2),
    YES("!a.* ALIAS other", "b", NULL, ALIAS, 1, "other", "DEFAULT", 1),
    YES("(.*) ALIAS \\1\\1", name500, NULL, ALIAS, 1, twice500, "DEFAULT", 1),
    NO("(.*) ALIAS \\1\\1", name600, NULL, NONE, 0),
    YES("(.*) ALIAS p:\\1", name1021, NULL, ALIAS, 1, prefixed1021, "DEFAULT", 1),
    NO("(.*) ALIAS p:\\1", name1022, NULL, NONE, 0),
    /* Inverted patterns. */
    YES("!secret.* ALLOW", "open", NULL, ALLOW, 1, "open", "DEFAULT", 1),
    NO("!secret.* ALLOW", "secret:1", NULL, NONE, 0),
    NO(".* ALLOW\n!ok.* DENY", "bad", NULL, DENY, 2),
    YES(".* ALLOW\n!ok.* DENY", "ok1", NULL, ALLOW, 1, "ok1", "DEFAULT", 1),
    YES("! ALLOW", "x", NULL, ALLOW, 1, "x", "DEFAULT", 1),
    NO("! ALLOW", "", NULL, NONE, 0),
    /* DENY FROM. */
    NO(DENY_FROM_ONE, "x1", "127.0.0.2", DENY_FROM, 2),
    YES(DENY_FROM_ONE, "x1", "127.0.0.3", ALLOW, 1, "x1", "DEFAULT", 1),
    YES(DENY_FROM_ONE, "x1", NULL, ALLOW, 1, "x1", "DEFAULT", 1),
    YES(DENY_FROM_ONE, "y1", "127.0.0.2", ALLOW, 1, "y1", "DEFAULT", 1),
    NO(".* ALLOW\nx.* DENY FROM localhost", "x1", "127.0.0.1", DENY_FROM, 2),
    YES(".* ALLOW\nx.* DENY FROM localhost", "x1", "127.0.0.2", ALLOW, 1, "x1", "DEFAULT", 1),
    NO(".* ALLOW\nx.* DENY 127.0.0.5 127.0.0.6", "x1", "127.0.0.6", DENY_FROM, 2),
    NO(".* ALLOW\nx.* DENY FROM", "x1", "127.0.0.9", DENY, 2),
    NO(".* ALLOW\nx.* DENY FROM", "x1", NULL, DENY, 2),
    NO("EVALUATION ORDER DENY, ALLOW\nx.* DENY FROM 127.0.0.2\nx.* ALLOW", "x1", "127.0.0.2",
       DENY_FROM, 2),
    NO("x.* DENY FROM 127.0.0.2\n.* ALLOW", "x1", "127.0.0.2", DENY_FROM, 1),
    NO(DENY_FROM_TWO, "x1", "127.0.0.2", DENY_FROM, 3),
    NO(DENY_FROM_TWO, "x2", "127.0.0.2", DENY_FROM, 2),
    NO(DENY_FROM_TWO, "x1", "127.0.0.3", DENY_FROM, 3),
    YES(DENY_FROM_TWO, "x2", "127.0.0.3", ALLOW, 1, "x2", "DEFAULT", 1),
    NO(DENY_FROM_TEN, "any", "127.0.0.10", DENY_FROM, 2),
    NO(DENY_FROM_TEN, "any", "127.0.0.11", DENY_FROM, 3),
    NO(DENY_FROM_TEN, "any", "127.0.0.19", DENY_FROM, 11),
    YES(DENY_FROM_TEN, "any", "127.0.0.20", ALLOW, 1, "any", "DEFAULT", 1),
    NO(".* ALLOW\n!x.* DENY FROM 127.0.0.2", "y", "127.0.0.2", DENY_FROM, 2),
    YES(".* ALLOW\n!x.* DENY FROM 127.0.0.2", "x", "127.0.0.2", ALLOW, 1, "x", "DEFAULT", 1),
    /* Long names. */
    YES(".* ALLOW", name1023, NULL, ALLOW, 1, name1023, "DEFAULT", 1),
    NO(".* ALLOW", name1024, NULL, NONE, 0),
    YES("(.*) ALIAS \\1", name1023, NULL, ALIAS, 1, name1023, "DEFAULT", 1),
    /* Too deep for the JIT's stack: the interpreter answers. */
    YES("((a)|(b))*c? ALLOW", alternating1023, NULL, ALLOW, 1, alternating1023, "DEFAULT", 1),
    YES("((a)|(b))*c DENY\n.* ALLOW", alternating1023, NULL, ALLOW, 2, alternating1023, "DEFAULT",
        1),
    NO(".* ALLOW\n((a)|(b))* DENY", alternating1023, NULL, DENY, 2),
};

static void fillLongNames(void)
{
    int i;

    memset(name500, 'a', 500);
    memset(name600, 'b', 600);
    memset(name1021, 'c', 1021);
    memset(name1022, 'd', 1022);
    memset(name1023, 'e', 1023);
    memset(name1024, 'f', 1024);
    memcpy(twice500, name500, 500);
    memcpy(twice500 + 500, name500, 500);
    memcpy(prefixed1021, "p:", 2);
    memcpy(prefixed1021 + 2, name1021, 1021);
    for (i = 0; i < 1023; i++)
        alternating1023[i] = (i & 1) ? 'a' : 'b';
}

static struct sockaddr_in *address(const char *dotted, struct sockaddr_in *in)
{
    if (!dotted)
        return NULL;
    memset(in, 0, sizeof *in);
    in->sin_family = AF_INET;
    in->sin_port = htons(5064);
    if (inet_pton(AF_INET, dotted, &in->sin_addr) != 1)
        testAbort("bad address %s in a case", dotted);
    return in;
}

/* The first word of line `line` of text (for the pattern a match names). */
static void patternOfLine(const char *text, int line, char *out, size_t size)
{
    size_t n = 0;

    out[0] = '\0';
    if (line <= 0)
        return;
    while (--line > 0 && (text = strchr(text, '\n')) != NULL)
        text++;
    if (!text)
        return;
    text += strspn(text, " \t,");
    while (n + 1 < size && text[n] && !strchr(" \t,\r\n", text[n])) {
        out[n] = text[n];
        n++;
    }
    out[n] = '\0';
}

static int sameMatch(const gwPvListMatch *a, const gwPvListMatch *b)
{
    return a->allowed == b->allowed && a->kind == b->kind && a->line == b->line &&
           strcmp(a->pattern, b->pattern) == 0 && strcmp(a->asg, b->asg) == 0 &&
           a->asl == b->asl && a->aliased == b->aliased && strcmp(a->realName, b->realName) == 0;
}

static int expected(const matchCase *c, const gwPvListMatch *m)
{
    char pattern[GW_PVLIST_NAME_SIZE];

    patternOfLine(c->text, c->line, pattern, sizeof pattern);
    return m->allowed == c->allowed && m->kind == c->kind && m->line == c->line &&
           strcmp(m->pattern, pattern) == 0 && strcmp(m->realName, c->realName) == 0 &&
           strcmp(m->asg, c->asg) == 0 && m->asl == c->asl &&
           m->aliased == (c->kind == GW_PVLIST_ALIAS);
}

static void showMatch(const char *what, const gwPvListMatch *m)
{
    testDiag("%s: allowed %d kind %d line %d pattern \"%.40s\" asg \"%s\" asl %d aliased %d "
             "realName \"%.60s\"", what, m->allowed, (int)m->kind, m->line, m->pattern, m->asg,
             m->asl, m->aliased, m->realName);
}

/* One case: the answer on a fresh list (a miss), asked again (a hit), and
 * on another fresh list after the name was asked by another client. */
static void testCase(size_t index, const matchCase *c)
{
    struct sockaddr_in in, other;
    const struct sockaddr_in *client = address(c->client, &in);
    char error[GW_PVLIST_ERROR_SIZE];
    gwPvList *list = gwPvListParse(c->text, strlen(c->text), "case", error, sizeof error);
    gwPvList *second = gwPvListParse(c->text, strlen(c->text), "case", error, sizeof error);
    static gwPvListMatch first, again, afterOther, scratch;
    int ok;

    /* The caller's match need not be initialised: no NUL anywhere. */
    memset(&first, 'x', sizeof first);
    memset(&again, 'x', sizeof again);
    memset(&afterOther, 'x', sizeof afterOther);
    memset(&scratch, 'x', sizeof scratch);
    if (!list || !second) {
        testFail("case %lu: the text does not parse: %s", (unsigned long)index, error);
        gwPvListFree(list);
        gwPvListFree(second);
        return;
    }
    gwPvListMatchName(list, c->name, client, &first);
    gwPvListMatchName(list, c->name, client, &again);
    gwPvListMatchName(second, c->name, client ? NULL : address("127.0.0.2", &other), &scratch);
    gwPvListMatchName(second, c->name, client, &afterOther);
    ok = expected(c, &first) && sameMatch(&first, &again) && sameMatch(&first, &afterOther);
    testOk(ok, "case %lu: \"%.30s\" %s: allowed %d kind %d line %d \"%.30s\"",
           (unsigned long)index, c->name, c->client ? c->client : "-", c->allowed, (int)c->kind,
           c->line, c->realName);
    if (!ok) {
        showMatch("first", &first);
        showMatch("again", &again);
        showMatch("after another client", &afterOther);
    }
    gwPvListFree(list);
    gwPvListFree(second);
}

/* ---- Texts refused ----------------------------------------------------- */

typedef struct badCase {
    const char *text;
    size_t length;              /* 0: strlen(text) */
    int line;
    const char *reason;         /* a part of the message after "case:LINE: " */
    int resolves;               /* looks up a host that does not resolve: netns only */
} badCase;

static char longLine[5000 + 8];

static const badCase badCases[] = {
    { "x ALLOW\ny", 0, 2, "missing keyword", 0 },
    { "ALLOW", 0, 1, "missing pattern", 0 },
    { "x FOO", 0, 1, "unknown keyword \"FOO\"", 0 },
    { "x ALLOW g 2", 0, 1, "level \"2\"", 0 },
    { "x PV g 5", 0, 1, "level \"5\"", 0 },
    { "x ALLOW g 1 extra", 0, 1, "extra words", 0 },
    { "x ALLOW, g, 1, 2", 0, 1, "extra words", 0 },
    { "x ALIAS", 0, 1, "missing real name", 0 },
    { "x ALIAS y g 1 extra", 0, 1, "extra words", 0 },
    { "x alias y g 01", 0, 1, "level \"01\"", 0 },
    { "(a ALLOW", 0, 1, "missing closing parenthesis at offset 2", 0 },
    { ".* ALLOW\n*x ALLOW", 0, 2, "bad pattern \"*x\": quantifier does not follow", 0 },
    { "a(?<n ALLOW", 0, 1, "bad pattern", 0 },
    { "x(.) ALIAS \\2", 0, 1, "\\2 in the real name but the pattern has 1 group", 0 },
    { "x ALIAS y\\1", 0, 1, "\\1 in the real name but the pattern has 0 groups", 0 },
    { "!x(.) ALIAS \\1", 0, 1, "inverted", 0 },
    { "EVALUATION ORDER ALLOW", 0, 1, "EVALUATION ORDER", 0 },
    { "EVALUATION ORDER ALLOW, ALLOW", 0, 1, "EVALUATION ORDER", 0 },
    { "EVALUATION ORDER ALLOW DENY extra", 0, 1, "EVALUATION ORDER", 0 },
    { "# c\nEVALUATION ORDER", 0, 2, "EVALUATION ORDER", 0 },
    { "x ALLOW\ny\0 ALLOW", 16, 2, "NUL", 0 },
    { longLine, 0, 1, "longer than 4096", 0 },
    { "x ALLOW\r\ny FOO\r\n", 0, 2, "unknown keyword \"FOO\"", 0 },
    { "# c\n.* ALLOW\n\nx DENYX", 0, 4, "unknown keyword \"DENYX\"", 0 },
    { "x DENY FROM 127.0.0.1, 300.1.1.1.1", 0, 1, "host \"300.1.1.1.1\"", 1 },
    { "\n\n x DENY FROM no-such-host.invalid", 0, 3, "host \"no-such-host.invalid\" does not "
      "resolve", 1 },
    { "x DENY 127.0.0.1 no-such-host.invalid", 0, 1, "does not resolve", 1 },
};

static void testBad(size_t index, const badCase *c)
{
    char error[GW_PVLIST_ERROR_SIZE], prefix[32];
    size_t length = c->length ? c->length : strlen(c->text);
    gwPvList *list;
    int ok;

    if (c->resolves && !gwTestInNetns()) {
        testSkip(1, "looks a host up: only inside scripts/netns run");
        return;
    }
    list = gwPvListParse(c->text, length, "case", error, sizeof error);
    sprintf(prefix, "case:%d: ", c->line);
    ok = !list && strncmp(error, prefix, strlen(prefix)) == 0 && strstr(error, c->reason);
    testOk(ok, "bad %lu refused: %s", (unsigned long)index, error);
    if (!ok)
        testDiag("wanted \"%s...%s\"", prefix, c->reason);
    gwPvListFree(list);
}

/* ---- The default list, files, the report ------------------------------ */

static void testDefault(void)
{
    gwPvList *list = gwPvListDefault();
    gwPvListMatch m;

    testOk(list && gwPvListRuleCount(list) == 1 && strcmp(gwPvListSource(list), "") == 0 &&
               gwPvListGetOrder(list) == GW_PVLIST_ALLOW_DENY,
           "the default list: one rule, no source, ALLOW, DENY");
    gwPvListMatchName(list, "any:name", NULL, &m);
    testOk(m.allowed && m.kind == GW_PVLIST_ALLOW && m.line == 0 && strcmp(m.pattern, ".*") == 0 &&
               strcmp(m.realName, "any:name") == 0 && strcmp(m.asg, "DEFAULT") == 0 && m.asl == 1,
           "it allows any name by \".*\" at line 0, DEFAULT 1");
    gwPvListFree(list);
    gwPvListFree(NULL);
    gwPvListMatchName(NULL, "x", NULL, &m);
    testOk(!m.allowed && m.kind == GW_PVLIST_NONE, "no list: refused");
}

static void testAccessors(void)
{
    static const char text[] = "EVALUATION ORDER DENY, ALLOW\n# c\n.* ALLOW\nx DENY\n";
    char error[GW_PVLIST_ERROR_SIZE] = "unchanged";
    gwPvList *list = gwPvListParse(text, sizeof text - 1, "my.pvlist", error, sizeof error);

    testOk(list && gwPvListRuleCount(list) == 2 && gwPvListGetOrder(list) == GW_PVLIST_DENY_ALLOW &&
               strcmp(gwPvListSource(list), "my.pvlist") == 0 && error[0] == '\0',
           "two rules, DENY, ALLOW, the source as given, no message");
    gwPvListFree(list);
    testOk(gwPvListParse("x FOO", 5, "s", NULL, 0) == NULL &&
               gwPvListParse("x FOO", 5, "s", error, 0) == NULL && strcmp(error, "") == 0,
           "refused without a message buffer");
    testOk(gwPvListParse("x FOO", 5, "source", error, 6) == NULL && strcmp(error, "sourc") == 0,
           "a short message buffer is cut and terminated");
    list = gwPvListParse("x ALLOW\ny FOO", 7, "s", error, sizeof error);
    testOk(list && gwPvListRuleCount(list) == 1, "the length bounds the text (the bad line "
           "after it is not read: %s)", list ? "one rule" : error);
    gwPvListFree(list);
    list = gwPvListParse("x ALLOW", 1, "s", error, sizeof error);
    testOk(!list && strstr(error, "s:1: missing keyword") == error, "\"x\" alone: %s", error);
}

static int writeFile(const char *path, const char *text, size_t length)
{
    FILE *file = fopen(path, "wb");
    int ok = file && fwrite(text, 1, length, file) == length;

    if (file && fclose(file) != 0)
        ok = 0;
    return ok;
}

static void testLoad(void)
{
    static const char good[] = "# a file\n.* ALLOW\nsecret.* DENY\n";
    static const char bad[] = ".* ALLOW\nx BAD\n";
    char path[] = "/tmp/gwPvListTest.XXXXXX";
    char error[GW_PVLIST_ERROR_SIZE], want[GW_PVLIST_ERROR_SIZE + 64];
    gwPvListMatch m;
    gwPvList *list;
    int fd = mkstemp(path);
    char *big;

    if (fd < 0)
        testAbort("mkstemp failed");
    close(fd);
    testOk(writeFile(path, good, sizeof good - 1), "a pvlist file written");
    list = gwPvListLoad(path, error, sizeof error);
    gwPvListMatchName(list, "secret:1", NULL, &m);
    testOk(list && strcmp(gwPvListSource(list), path) == 0 && gwPvListRuleCount(list) == 2 &&
               m.kind == GW_PVLIST_DENY && m.line == 3,
           "loaded: the source is the path, secret:1 refused by line 3");
    gwPvListFree(list);

    writeFile(path, bad, sizeof bad - 1);
    sprintf(want, "%s:2: unknown keyword", path);
    testOk(gwPvListLoad(path, error, sizeof error) == NULL && strstr(error, want) == error,
           "a bad file: %s", error);

    big = malloc(16u * 1024u * 1024u + 1);
    if (!big)
        testAbort("no memory");
    memset(big, '\n', 16u * 1024u * 1024u + 1);
    writeFile(path, big, 16u * 1024u * 1024u);
    list = gwPvListLoad(path, error, sizeof error);
    testOk(list && gwPvListRuleCount(list) == 0, "16 MiB of blank lines are read");
    gwPvListFree(list);
    writeFile(path, big, 16u * 1024u * 1024u + 1);
    sprintf(want, "%s: larger than 16 MiB", path);
    testOk(gwPvListLoad(path, error, sizeof error) == NULL && strcmp(error, want) == 0,
           "a byte more is refused: %s", error);
    free(big);

    remove(path);
    sprintf(want, "%s: No such file or directory", path);
    testOk(gwPvListLoad(path, error, sizeof error) == NULL && strcmp(error, want) == 0,
           "a missing file: %s", error);
    testOk(gwPvListLoad("/tmp", error, sizeof error) == NULL &&
               strcmp(error, "/tmp: Is a directory") == 0,
           "a directory: %s", error);
}

static void testReport(void)
{
    static const char text[] = "EVALUATION ORDER DENY, ALLOW\n.* ALLOW\n"
                               "old:(.*) ALIAS new:\\1 GW 0\nx.* DENY\n"
                               "y.* DENY FROM 127.0.0.7 localhost\n";
    char error[GW_PVLIST_ERROR_SIZE], report[4096];
    gwPvList *list = gwPvListParse(text, sizeof text - 1, "r.pvlist", error, sizeof error);
    gwPvListMatch m;
    FILE *out = tmpfile();
    size_t n;

    if (!list || !out)
        testAbort("report: %s", list ? "no tmpfile" : error);
    gwPvListMatchName(list, "a", NULL, &m);
    gwPvListReport(list, out);
    rewind(out);
    n = fread(report, 1, sizeof report - 1, out);
    report[n] = '\0';
    fclose(out);
    testOk(strstr(report, "pvlist \"r.pvlist\": 4 rules, evaluation order DENY, ALLOW\n") != NULL,
           "report: the source, the rules, the order");
    testOk(strstr(report, "  line 5: \"y.*\" DENY FROM 127.0.0.7 (127.0.0.7) localhost "
                          "(127.0.0.1)\n") != NULL,
           "report: DENY FROM with its hosts as written and resolved");
    testOk(strstr(report, "  line 3: \"old:(.*)\" ALIAS \"new:\\1\" asg GW asl 0\n") != NULL &&
               strstr(report, "  line 4: \"x.*\" DENY\n") != NULL,
           "report: an alias with its group and level, a DENY");
    testOk(strstr(report, "ALIAS \"new") < strstr(report, "line 2: \".*\" ALLOW asg DEFAULT asl 1"),
           "report: the ALLOW list last line first");
    testOk(strstr(report, "cache: 1 name") != NULL, "report: the cache holds the one name asked");
    testDiag("report:\n%s", report);
    gwPvListFree(list);
}

/* ---- The cache --------------------------------------------------------- */

static const char cacheText[] = ".* ALLOW\n"
                                "mt:.*7 DENY\n"
                                "mt:(\\d)(\\d*)5 ALIAS real:\\2:\\1 G 0\n"
                                "mt:.*3 DENY FROM 127.0.0.1\n";

#define CACHE_NAMES (GW_PVLIST_CACHE_MAX + 4500)

typedef struct shortMatch {
    signed char allowed, kind, aliased, asl;
    short line;
    char realName[24];
} shortMatch;

static shortMatch *expectedNone, *expectedLocal; /* [CACHE_NAMES]: no client, 127.0.0.1 */
static struct sockaddr_in localClient;

static void cacheName(int i, char *name)
{
    sprintf(name, "mt:%06d", i);
}

static void shorten(const gwPvListMatch *m, shortMatch *s)
{
    memset(s, 0, sizeof *s); /* compared whole, padding and all */
    s->allowed = (signed char)m->allowed;
    s->kind = (signed char)m->kind;
    s->aliased = (signed char)m->aliased;
    s->asl = (signed char)m->asl;
    s->line = (short)m->line;
    snprintf(s->realName, sizeof s->realName, "%.*s", (int)sizeof s->realName - 1, m->realName);
}

static int sameShort(const shortMatch *a, const shortMatch *b)
{
    return memcmp(a, b, sizeof *a) == 0;
}

static gwPvList *cacheList(void)
{
    char error[GW_PVLIST_ERROR_SIZE];
    gwPvList *list = gwPvListParse(cacheText, sizeof cacheText - 1, "cache", error, sizeof error);

    if (!list)
        testAbort("cache list: %s", error);
    return list;
}

/* Every name asked once of a fresh list per client (each answer computed,
 * the cache wrapping as they come); then asked again, in reverse order
 * and alternating clients, of one list whose cache fills and wraps. */
static void testCacheWraps(void)
{
    gwPvList *none = cacheList(), *local = cacheList(), *both = cacheList();
    gwPvListMatch m;
    char name[32];
    int i, differ = 0, allowed = 0, aliased = 0, denied = 0, deniedFrom = 0;
    size_t reported;
    FILE *out;
    char line[256];

    memset(expectedNone, 0, CACHE_NAMES * sizeof *expectedNone);
    memset(expectedLocal, 0, CACHE_NAMES * sizeof *expectedLocal);
    for (i = 0; i < CACHE_NAMES; i++) {
        cacheName(i, name);
        gwPvListMatchName(none, name, NULL, &m);
        shorten(&m, &expectedNone[i]);
        gwPvListMatchName(local, name, &localClient, &m);
        shorten(&m, &expectedLocal[i]);
        allowed += m.allowed;
        aliased += m.aliased;
        denied += m.kind == GW_PVLIST_DENY;
        deniedFrom += m.kind == GW_PVLIST_DENY_FROM;
    }
    testOk(allowed > 0 && aliased > 0 && denied > 0 && deniedFrom > 0,
           "the names meet every rule: %d allowed (%d aliased), %d DENY, %d DENY FROM", allowed,
           aliased, denied, deniedFrom);
    cacheName(12345, name);
    testOk(strcmp(expectedLocal[12345].realName, "real:1234:0") == 0 && expectedLocal[12345].asl == 0,
           "%s is served as %s, level %d", name, expectedLocal[12345].realName,
           expectedLocal[12345].asl);

    for (i = CACHE_NAMES - 1; i >= 0; i--) {
        shortMatch s;
        cacheName(i, name);
        gwPvListMatchName(both, name, (i & 1) ? &localClient : NULL, &m);
        shorten(&m, &s);
        differ += !sameShort(&s, (i & 1) ? &expectedLocal[i] : &expectedNone[i]);
        gwPvListMatchName(both, name, (i & 1) ? NULL : &localClient, &m);
        shorten(&m, &s);
        differ += !sameShort(&s, (i & 1) ? &expectedNone[i] : &expectedLocal[i]);
    }
    testOk(differ == 0, "%d names, twice each, both clients: %d answers differ from the uncached",
           CACHE_NAMES, differ);

    out = tmpfile();
    if (!out)
        testAbort("no tmpfile");
    gwPvListReport(both, out);
    rewind(out);
    reported = (size_t)-1;
    while (fgets(line, sizeof line, out)) {
        unsigned long n;
        if (sscanf(line, "cache: %lu name", &n) == 1)
            reported = n;
    }
    fclose(out);
    testOk(reported == (size_t)(CACHE_NAMES - GW_PVLIST_CACHE_MAX),
           "the cache wrapped: %lu names after %d (at most %d)", (unsigned long)reported,
           CACHE_NAMES, GW_PVLIST_CACHE_MAX);
    gwPvListFree(none);
    gwPvListFree(local);
    gwPvListFree(both);
}

typedef struct lookupThread {
    gwPvList *list;
    int index;
    int differ;
    int asked;
    epicsEventId done;
} lookupThread;

#define LOOKUP_THREADS 4

static void lookupRun(void *arg)
{
    lookupThread *t = arg;
    gwPvListMatch m;
    shortMatch s;
    char name[32];
    int n, round;

    for (round = 0; round < 2; round++) {
        for (n = 0; n < CACHE_NAMES; n++) {
            /* Each thread its own order: a different start, forwards or back. */
            int i = (t->index & 1) ? (n + t->index * 7919) % CACHE_NAMES
                                   : (CACHE_NAMES - 1 - (n + t->index * 104729) % CACHE_NAMES);
            int useLocal = (i + t->index + round) & 1;
            cacheName(i, name);
            gwPvListMatchName(t->list, name, useLocal ? &localClient : NULL, &m);
            shorten(&m, &s);
            t->differ += !sameShort(&s, useLocal ? &expectedLocal[i] : &expectedNone[i]);
            t->asked++;
        }
    }
    epicsEventMustTrigger(t->done);
}

static void testCacheThreads(void)
{
    gwPvList *list = cacheList();
    lookupThread threads[LOOKUP_THREADS];
    int i, differ = 0, asked = 0;

    for (i = 0; i < LOOKUP_THREADS; i++) {
        threads[i].list = list;
        threads[i].index = i;
        threads[i].differ = 0;
        threads[i].asked = 0;
        threads[i].done = epicsEventMustCreate(epicsEventEmpty);
        epicsThreadMustCreate("pvlistLookup", epicsThreadPriorityMedium,
                              epicsThreadGetStackSize(epicsThreadStackMedium), lookupRun,
                              &threads[i]);
    }
    for (i = 0; i < LOOKUP_THREADS; i++) {
        epicsEventMustWait(threads[i].done);
        epicsEventDestroy(threads[i].done);
        differ += threads[i].differ;
        asked += threads[i].asked;
    }
    testOk(asked == LOOKUP_THREADS * 2 * CACHE_NAMES && differ == 0,
           "%d threads, %d lookups of one list (the cache wrapping under them): %d differ from "
           "the single-threaded answers", LOOKUP_THREADS, asked, differ);
    gwPvListFree(list);
}

MAIN(gwPvListTest)
{
    size_t i;

    (void)argc;
    (void)argv;
    testPlan((int)(NELEMENTS(matchCases) + NELEMENTS(badCases)) + 3 + 5 + 7 + 5 + 4 + 1);
    fillLongNames();
    memset(longLine, 'a', 5000);
    strcpy(longLine + 5000, " ALLOW");
    address("127.0.0.1", &localClient);
    expectedNone = calloc(CACHE_NAMES, sizeof *expectedNone);
    expectedLocal = calloc(CACHE_NAMES, sizeof *expectedLocal);
    if (!expectedNone || !expectedLocal)
        testAbort("no memory");

    for (i = 0; i < NELEMENTS(matchCases); i++)
        testCase(i, &matchCases[i]);
    for (i = 0; i < NELEMENTS(badCases); i++)
        testBad(i, &badCases[i]);
    testDefault();
    testAccessors();
    testLoad();
    testReport();
    testCacheWraps();
    testCacheThreads();

    free(expectedNone);
    free(expectedLocal);
    return testDone();
}
