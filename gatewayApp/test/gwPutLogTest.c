/* gwPutLogTest.c - the put log (gwPutLog.c): the exact text of a line for
 * every kind of value, the file (lines whole and in full from four threads
 * at once while the file is moved away twice), failures reported once and
 * writing resumed after them, and the log server's messages.
 *
 * The file parts work in a directory of their own under /tmp. The log
 * server part opens a TCP socket on 127.0.0.1: it runs only inside
 * scripts/netns run (gwTestNetns.h). Failure messages are caught with an
 * errlog listener (errlogFlush delivers them). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <db_access.h>
#include <epicsAtomic.h>
#include <epicsEvent.h>
#include <epicsMutex.h>
#include <epicsThread.h>
#include <epicsTime.h>
#include <epicsUnitTest.h>
#include <errlog.h>
#include <osiSock.h>
#include <testMain.h>

#include "gwPutLog.h"
#include "gwTestNetns.h"

#define LINE_MAX_TEST 70000
#define WRITERS 4
#define WRITES_EACH 2500
#define WAIT_SECONDS 10.0

/* The fixed time of the lines, and its text the way the log must write it
 * (local time, computed here with localtime_r and strftime). */
static epicsTimeStamp when = { 1000000000u, 123456789u };
static char whenFile[64], whenServer[64];

static void timeTexts(void)
{
    time_t t = (time_t)when.secPastEpoch + POSIX_TIME_AT_EPICS_EPOCH;
    struct tm local;
    char day[16], hours[16];

    localtime_r(&t, &local);
    strftime(whenFile, sizeof whenFile, "%b %d %H:%M:%S", &local);
    /* "%d-%b-%y %H:%M:%S", without the two-digit year strftime warns of */
    strftime(day, sizeof day, "%d-%b", &local);
    strftime(hours, sizeof hours, "%H:%M:%S", &local);
    snprintf(whenServer, sizeof whenServer, "%s-%02d %s", day, local.tm_year % 100, hours);
}

/* ---------------------------------------------------------------- errlog */

static epicsMutexId caughtLock;
static unsigned nCaught;
static char lastCaught[1024];

static void catchMessage(void *arg, const char *message)
{
    (void)arg;
    epicsMutexMustLock(caughtLock);
    nCaught++;
    strncpy(lastCaught, message, sizeof lastCaught - 1);
    lastCaught[strcspn(lastCaught, "\n")] = '\0';    /* one line: its newline goes */
    epicsMutexUnlock(caughtLock);
}

/* The messages caught so far (the last one in lastCaught). */
static unsigned caughtCount(void)
{
    unsigned n;

    errlogFlush();
    epicsMutexMustLock(caughtLock);
    n = nCaught;
    epicsMutexUnlock(caughtLock);
    return n;
}

/* ---------------------------------------------------------------- format */

static char line[LINE_MAX_TEST], expected[LINE_MAX_TEST];

/* The line of a put with the given values is exactly the expected one. */
static void checkLine(const char *what, const char *user, const char *host,
                      const gwPutLogValue *newValue, const gwPutLogValue *oldValue,
                      const char *expectUser, const char *expectHost,
                      const char *expectNew, const char *expectOld)
{
    size_t n = gwPutLogFormat(line, sizeof line, &when, user, host, "test:pv", newValue,
                              oldValue);
    int ok;

    snprintf(expected, sizeof expected, "%s %s@%s test:pv %s old=%s", whenFile, expectUser,
             expectHost, expectNew, expectOld);
    ok = strcmp(line, expected) == 0 && n == strlen(expected);
    testOk(ok, "%s", what);
    if (!ok && strlen(line) < 300) {
        testDiag("got      \"%s\" (%zu)", line, n);
        testDiag("expected \"%s\"", expected);
    }
}

static void checkValue(const char *what, const gwPutLogValue *newValue, const char *expectNew,
                       const gwPutLogValue *oldValue, const char *expectOld)
{
    checkLine(what, "alice", "opi1", newValue, oldValue, "alice", "opi1", expectNew, expectOld);
}

static void testPlainTypes(void)
{
    dbr_string_t s1 = "hello world", s2 = "";
    dbr_short_t sh1 = -5, sh2 = 32767;
    dbr_long_t l1 = -2147483647 - 1, l2 = 2147483647;
    dbr_float_t f1 = 0.1f, f2 = 1.0f / 3.0f, f3 = -2.0f, f4 = 1.5e-3f;
    dbr_double_t d1 = 0.1, d2 = 1.0 / 3.0, d3 = 1e300, d4 = 123456789012.0, d5 = -0.0;
    dbr_double_t dinf = HUGE_VAL, dminf = -HUGE_VAL;
    dbr_enum_t e1 = 3, e2 = 65535;
    dbr_char_t c1 = 200, c2 = 0;
    gwPutLogValue v1 = { DBR_STRING, 1, s1 }, v2 = { DBR_STRING, 1, s2 };

    checkValue("string, and an empty string", &v1, "hello world", &v2, "");
    v1 = (gwPutLogValue){ DBR_SHORT, 1, &sh1 };
    v2 = (gwPutLogValue){ DBR_SHORT, 1, &sh2 };
    checkValue("short", &v1, "-5", &v2, "32767");
    v1 = (gwPutLogValue){ DBR_LONG, 1, &l1 };
    v2 = (gwPutLogValue){ DBR_LONG, 1, &l2 };
    checkValue("long, its extremes", &v1, "-2147483648", &v2, "2147483647");
    v1 = (gwPutLogValue){ DBR_FLOAT, 1, &f1 };
    v2 = (gwPutLogValue){ DBR_FLOAT, 1, &f2 };
    checkValue("float: the shortest text that reads back", &v1, "0.1", &v2, "0.33333334");
    v1 = (gwPutLogValue){ DBR_FLOAT, 1, &f3 };
    v2 = (gwPutLogValue){ DBR_FLOAT, 1, &f4 };
    checkValue("float: integral, small", &v1, "-2", &v2, "0.0015");
    v1 = (gwPutLogValue){ DBR_DOUBLE, 1, &d1 };
    v2 = (gwPutLogValue){ DBR_DOUBLE, 1, &d2 };
    checkValue("double: the shortest text that reads back", &v1, "0.1", &v2,
               "0.3333333333333333");
    v1 = (gwPutLogValue){ DBR_DOUBLE, 1, &d3 };
    v2 = (gwPutLogValue){ DBR_DOUBLE, 1, &d4 };
    checkValue("double: large, integral", &v1, "1e+300", &v2, "123456789012");
    v1 = (gwPutLogValue){ DBR_DOUBLE, 1, &dinf };
    v2 = (gwPutLogValue){ DBR_DOUBLE, 1, &dminf };
    checkValue("double: infinities", &v1, "inf", &v2, "-inf");
    v1 = (gwPutLogValue){ DBR_DOUBLE, 1, &d5 };
    checkValue("double: negative zero", &v1, "-0", &v2, "-inf");
    v1 = (gwPutLogValue){ DBR_ENUM, 1, &e1 };
    v2 = (gwPutLogValue){ DBR_ENUM, 1, &e2 };
    checkValue("enum: its index", &v1, "3", &v2, "65535");
    v1 = (gwPutLogValue){ DBR_CHAR, 1, &c1 };
    v2 = (gwPutLogValue){ DBR_CHAR, 1, &c2 };
    checkValue("char: unsigned, as a number", &v1, "200", &v2, "0");
}

static void testArrays(void)
{
    dbr_string_t strings[3] = { "a", "b c", "" };
    dbr_short_t shorts[4] = { 1, -2, 3, -32768 };
    dbr_double_t doubles[3] = { 1.0, 2.5, -3.0 };
    dbr_char_t chars[3] = { 'A', 'B', 0 };
    dbr_long_t longs[2] = { 10, 20 };
    gwPutLogValue v1 = { DBR_STRING, 3, strings }, v2 = { DBR_SHORT, 4, shorts };

    checkValue("arrays of strings and shorts, in full, ',' between", &v1, "a,b c,", &v2,
               "1,-2,3,-32768");
    v1 = (gwPutLogValue){ DBR_DOUBLE, 3, doubles };
    v2 = (gwPutLogValue){ DBR_CHAR, 3, chars };
    checkValue("arrays of doubles and chars", &v1, "1,2.5,-3", &v2, "65,66,0");
    v1 = (gwPutLogValue){ DBR_LONG, 0, longs };
    v2 = (gwPutLogValue){ DBR_LONG, 2, longs };
    checkValue("an empty array: nothing", &v1, "", &v2, "10,20");
}

/* Buffers of the STS/TIME/GR/CTRL types with room for a few elements. */
static double buffer1[128], buffer2[128];

static void testStructuredTypes(void)
{
    struct dbr_time_double *td = (struct dbr_time_double *)buffer1;
    struct dbr_ctrl_long *cl = (struct dbr_ctrl_long *)buffer2;
    struct dbr_time_short *ts;
    struct dbr_ctrl_enum *ce;
    struct dbr_sts_string *ss;
    struct dbr_gr_float *gf;
    struct dbr_sts_char *sc;
    struct dbr_time_string *tstr;
    struct dbr_stsack_string *sa;
    dbr_short_t *shorts;
    dbr_put_ackt_t ackt = 1;
    dbr_put_acks_t acks = 2;
    dbr_class_name_t className = "ai";
    gwPutLogValue v1 = { DBR_TIME_DOUBLE, 1, td }, v2 = { DBR_CTRL_LONG, 1, cl };

    memset(buffer1, 0x55, sizeof buffer1);
    memset(buffer2, 0x55, sizeof buffer2);
    td->status = 3;
    td->severity = 2;
    td->stamp = when;
    td->value = 42.5;
    cl->upper_disp_limit = 100;
    cl->lower_disp_limit = -100;
    cl->value = 7;
    checkValue("TIME_DOUBLE and CTRL_LONG: the value part only", &v1, "42.5", &v2, "7");

    memset(buffer1, 0x55, sizeof buffer1);
    memset(buffer2, 0, sizeof buffer2);
    ts = (struct dbr_time_short *)buffer1;
    ts->status = 1;
    shorts = dbr_value_ptr(ts, DBR_TIME_SHORT);
    shorts[0] = 4;
    shorts[1] = -5;
    shorts[2] = 6;
    ce = (struct dbr_ctrl_enum *)buffer2;
    ce->no_str = 3;
    strcpy(ce->strs[2], "High");
    ce->value = 2;
    v1 = (gwPutLogValue){ DBR_TIME_SHORT, 3, ts };
    v2 = (gwPutLogValue){ DBR_CTRL_ENUM, 1, ce };
    checkValue("TIME_SHORT array, CTRL_ENUM: the index", &v1, "4,-5,6", &v2, "2");

    memset(buffer1, 0x55, sizeof buffer1);
    memset(buffer2, 0x55, sizeof buffer2);
    ss = (struct dbr_sts_string *)buffer1;
    strcpy(ss->value, "sts");
    gf = (struct dbr_gr_float *)buffer2;
    gf->precision = 3;
    gf->value = 2.25f;
    v1 = (gwPutLogValue){ DBR_STS_STRING, 1, ss };
    v2 = (gwPutLogValue){ DBR_GR_FLOAT, 1, gf };
    checkValue("STS_STRING, GR_FLOAT", &v1, "sts", &v2, "2.25");

    memset(buffer1, 0x55, sizeof buffer1);
    memset(buffer2, 0x55, sizeof buffer2);
    sc = (struct dbr_sts_char *)buffer1;
    sc->value = 9;
    tstr = (struct dbr_time_string *)buffer2;
    strcpy(tstr->value, "time string");
    v1 = (gwPutLogValue){ DBR_STS_CHAR, 1, sc };
    v2 = (gwPutLogValue){ DBR_TIME_STRING, 1, tstr };
    checkValue("STS_CHAR, TIME_STRING", &v1, "9", &v2, "time string");

    v1 = (gwPutLogValue){ DBR_PUT_ACKT, 1, &ackt };
    v2 = (gwPutLogValue){ DBR_PUT_ACKS, 1, &acks };
    checkValue("PUT_ACKT and PUT_ACKS as numbers", &v1, "1", &v2, "2");

    memset(buffer1, 0x55, sizeof buffer1);
    sa = (struct dbr_stsack_string *)buffer1;
    strcpy(sa->value, "acked");
    v1 = (gwPutLogValue){ DBR_STSACK_STRING, 1, sa };
    v2 = (gwPutLogValue){ DBR_CLASS_NAME, 1, className };
    checkValue("STSACK_STRING and CLASS_NAME as strings", &v1, "acked", &v2, "ai");
}

static void testUnknowns(void)
{
    dbr_long_t l = 5;
    char unterminated[48];
    char expect40[41];
    gwPutLogValue v1 = { DBR_LONG, 1, &l }, unknown = { DBR_LONG, 1, NULL };
    gwPutLogValue bad1 = { -1, 1, &l }, bad2 = { LAST_BUFFER_TYPE + 1, 1, &l };
    gwPutLogValue bad3 = { 1000, 1, &l };

    checkValue("old value not known: ?", &v1, "5", &unknown, "?");
    checkValue("no old value at all: ?", &v1, "5", NULL, "?");
    checkValue("bad DBR types -1 and 39: ?", &bad1, "?", &bad2, "?");
    checkValue("bad DBR type 1000: ?", &bad3, "?", &v1, "5");
    checkLine("user and host NULL: unknown", NULL, NULL, &v1, &v1, "unknown", "unknown", "5",
              "5");
    checkLine("user and host empty: unknown", "", "", &v1, &v1, "unknown", "unknown", "5", "5");

    memset(unterminated, 'x', sizeof unterminated);
    memset(expect40, 'x', 40);
    expect40[40] = '\0';
    v1 = (gwPutLogValue){ DBR_STRING, 1, unterminated };
    checkValue("a string of 40 bytes without NUL: its 40 bytes", &v1, expect40, &v1, expect40);

    strcpy(unterminated, "two\nlines\r\x7f");
    checkLine("control characters in values and names: \\xHH, never a line break",
              "ev\nil", "h\tost", &v1, NULL, "ev\\x0ail", "h\\x09ost",
              "two\\x0alines\\x0d\\x7f", "?");
}

/* 4000 longs of 9 digits: 3200 of them, ',' between, make 31999 bytes. */
static dbr_long_t manyLongs[4000];
static char expectLongs[40000];

static void expectManyLongs(unsigned long n, int cut)
{
    unsigned long i;
    size_t at = 0;

    for (i = 0; i < n; i++)
        at += (size_t)sprintf(expectLongs + at, "%s123456789", i ? "," : "");
    if (cut)
        strcpy(expectLongs + at, ",...");
}

static void testOverlong(void)
{
    unsigned long i;
    dbr_long_t one = 1;
    gwPutLogValue many = { DBR_LONG, 3200, manyLongs }, small = { DBR_LONG, 1, &one };
    size_t full, n;

    for (i = 0; i < 4000; i++)
        manyLongs[i] = 123456789;
    expectManyLongs(3200, 0);
    checkValue("an array of 31999 bytes of text: in full", &many, expectLongs, &small, "1");
    many.count = 3201;
    expectManyLongs(3199, 1);
    checkValue("one element more: cut after 3199, ',...' (32000 bytes at most)", &many,
               expectLongs, &small, "1");
    many.count = (unsigned long)-1;
    checkValue("a count of ULONG_MAX over a buffer of 4000: cut the same, nothing past read",
               &many, expectLongs, &many, expectLongs);

    full = gwPutLogFormat(line, sizeof line, &when, "u", "h", "test:pv", &small, &small);
    n = gwPutLogFormat(expected, 10, &when, "u", "h", "test:pv", &small, &small);
    testOk(n == full && strlen(expected) == 9 && strncmp(expected, line, 9) == 0,
           "a short buffer: cut at size - 1, the full length returned (%zu)", n);
    testOk(gwPutLogFormat(NULL, 0, &when, "u", "h", "test:pv", &small, &small) == full,
           "no buffer: the length only");
    n = gwPutLogFormat(line, sizeof line, NULL, "u", "h", "test:pv", &small, &small);
    testOk(n == full && line[3] == ' ' && line[6] == ' ' && line[9] == ':' && line[15] == ' ',
           "no time given: now, in the same format (\"%.15s\")", line);
}

/* ---------------------------------------------------------------- files */

static char directory[64];

/* The whole file in a malloc'ed string, or NULL. */
static char *readFile(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *bytes = NULL;
    long size;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0
            && (bytes = malloc((size_t)size + 1)) != NULL) {
        if (fread(bytes, 1, (size_t)size, f) != (size_t)size) {
            free(bytes);
            bytes = NULL;
        } else {
            bytes[size] = '\0';
        }
    }
    fclose(f);
    return bytes;
}

static void testFileLines(void)
{
    char path[128], all[1024];
    dbr_double_t d = 1.25, old = 0.5;
    gwPutLogValue v1 = { DBR_DOUBLE, 1, &d }, v2 = { DBR_DOUBLE, 1, &old };
    gwPutLogCounters counters;
    gwPutLog *log;
    char *text;
    size_t n;

    snprintf(path, sizeof path, "%s/lines.log", directory);
    log = gwPutLogOpen(path, NULL, NULL, 0);
    testOk(log != NULL, "a put log at %s", path);
    if (!log)
        return;
    all[0] = '\0';
    gwPutLogWrite(log, &when, "alice", "opi1", "a:pv", &v1, &v2);
    gwPutLogWrite(log, &when, NULL, "opi2", "b:pv", &v2, NULL);
    gwPutLogWrite(log, &when, "carol", "opi3", "c:pv", &v1, &v1);
    n = strlen(all);
    gwPutLogFormat(all + n, sizeof all - n, &when, "alice", "opi1", "a:pv", &v1, &v2);
    strcat(all, "\n");
    n = strlen(all);
    gwPutLogFormat(all + n, sizeof all - n, &when, NULL, "opi2", "b:pv", &v2, NULL);
    strcat(all, "\n");
    n = strlen(all);
    gwPutLogFormat(all + n, sizeof all - n, &when, "carol", "opi3", "c:pv", &v1, &v1);
    strcat(all, "\n");
    snprintf(expected, sizeof expected,
             "%s alice@opi1 a:pv 1.25 old=0.5\n%s unknown@opi2 b:pv 0.5 old=?\n"
             "%s carol@opi3 c:pv 1.25 old=1.25\n", whenFile, whenFile, whenFile);
    text = readFile(path);
    testOk(text && strcmp(text, expected) == 0 && strcmp(all, expected) == 0,
           "three lines in the file, as gwPutLogFormat gives them, each with its newline");
    if (text && strcmp(text, expected) != 0)
        testDiag("file: \"%s\"", text);
    free(text);
    gwPutLogGetCounters(log, &counters);
    testOk(counters.lines == 3 && counters.failures == 0 && counters.reopens == 0
           && counters.sent == 0, "counters: 3 lines, no failure, no reopen, nothing sent");
    gwPutLogClose(log);

    log = gwPutLogOpen(path, NULL, NULL, 0);
    gwPutLogWrite(log, &when, "dave", "opi4", "d:pv", &v1, &v2);
    gwPutLogClose(log);
    text = readFile(path);
    testOk(text && strncmp(text, expected, strlen(expected)) == 0
           && strstr(text + strlen(expected), " dave@opi4 d:pv 1.25 old=0.5\n") != NULL,
           "opened again: appended after the old lines");
    free(text);
    unlink(path);
}

typedef struct writer {
    gwPutLog *log;
    unsigned id;
    epicsEventId done;
} writer;

static int renamesDone;

static void writeMany(void *arg)
{
    writer *w = arg;
    char user[16], host[16], pv[32];
    dbr_long_t value, old;
    gwPutLogValue v1 = { DBR_LONG, 1, &value }, v2 = { DBR_LONG, 1, &old };
    int i;

    snprintf(user, sizeof user, "user%u", w->id);
    snprintf(host, sizeof host, "host%u", w->id);
    snprintf(pv, sizeof pv, "test:pv%u", w->id);
    for (i = 0; i < WRITES_EACH; i++) {
        /* past a gate only after the rename: lines always follow each one */
        while ((i == 1000 && epicsAtomicGetIntT(&renamesDone) < 1)
                || (i == 2000 && epicsAtomicGetIntT(&renamesDone) < 2))
            epicsThreadSleep(0.001);
        value = i;
        old = i - 1;
        gwPutLogWrite(w->log, &when, user, host, pv, &v1, &v2);
    }
    epicsEventMustTrigger(w->done);
}

/* Wait (WAIT_SECONDS at most) until the log has written at least n lines. */
static int waitLines(gwPutLog *log, unsigned long n)
{
    gwPutLogCounters counters;
    double waited = 0;

    for (;;) {
        gwPutLogGetCounters(log, &counters);
        if (counters.lines >= n)
            return 1;
        if (waited > WAIT_SECONDS)
            return 0;
        epicsThreadSleep(0.0002);
        waited += 0.0002;
    }
}

static unsigned char seen[WRITERS][WRITES_EACH];

/* Check every line of text: well-formed, of one writer, seen once. Returns
 * the lines, or -1 when one is not well-formed (diagnosed). */
static long parseLines(const char *text, const char *name)
{
    size_t timeLength = strlen(whenFile);
    long lines = 0;

    while (*text) {
        const char *end = strchr(text, '\n');
        unsigned t, t2, t3;
        long value, old;
        int used = -1;

        if (!end) {
            testDiag("%s: a line without its newline at the end", name);
            return -1;
        }
        if ((size_t)(end - text) <= timeLength || strncmp(text, whenFile, timeLength) != 0
                || sscanf(text + timeLength, " user%u@host%u test:pv%u %ld old=%ld%n", &t, &t2,
                          &t3, &value, &old, &used) != 5
                || used != (int)(end - text - (long)timeLength)
                || t != t2 || t != t3 || t >= WRITERS || value < 0 || value >= WRITES_EACH
                || old != value - 1 || seen[t][value]) {
            testDiag("%s: bad or repeated line \"%.*s\"", name, (int)(end - text), text);
            return -1;
        }
        seen[t][value] = 1;
        lines++;
        text = end + 1;
    }
    return lines;
}

static void testThreadsAndRotation(void)
{
    char path[128], moved1[140], moved2[140], name[16];
    writer writers[WRITERS];
    gwPutLogCounters counters;
    const char *paths[3];
    long total = 0, lines;
    gwPutLog *log;
    unsigned i, t;
    int ok = 1, missing = 0;

    snprintf(path, sizeof path, "%s/many.log", directory);
    snprintf(moved1, sizeof moved1, "%s.1", path);
    snprintf(moved2, sizeof moved2, "%s.2", path);
    log = gwPutLogOpen(path, NULL, NULL, 0);
    testOk(log != NULL, "a put log for %u threads", WRITERS);
    if (!log)
        return;
    for (i = 0; i < WRITERS; i++) {
        writers[i].log = log;
        writers[i].id = i;
        writers[i].done = epicsEventMustCreate(epicsEventEmpty);
        snprintf(name, sizeof name, "writer%u", i);
        epicsThreadMustCreate(name, epicsThreadPriorityMedium,
                              epicsThreadGetStackSize(epicsThreadStackMedium), writeMany,
                              &writers[i]);
    }
    testOk(waitLines(log, WRITERS * WRITES_EACH / 4) && rename(path, moved1) == 0,
           "a quarter written: the file is moved away (rename) while they write");
    epicsAtomicSetIntT(&renamesDone, 1);
    testOk(waitLines(log, WRITERS * WRITES_EACH * 6 / 10) && rename(path, moved2) == 0,
           "six tenths written: moved away again");
    epicsAtomicSetIntT(&renamesDone, 2);
    for (i = 0; i < WRITERS; i++) {
        if (epicsEventWaitWithTimeout(writers[i].done, 60.0) != epicsEventOK)
            ok = 0;
        epicsEventDestroy(writers[i].done);
    }
    testOk(ok, "the %u writers are done", WRITERS);
    gwPutLogGetCounters(log, &counters);
    gwPutLogClose(log);
    testOk(counters.lines == WRITERS * WRITES_EACH && counters.failures == 0
           && counters.reopens == 2, "counters: %lu lines, %lu failures, %lu reopens",
           counters.lines, counters.failures, counters.reopens);

    paths[0] = moved1;
    paths[1] = moved2;
    paths[2] = path;
    memset(seen, 0, sizeof seen);
    for (i = 0; i < 3 && ok; i++) {
        char *text = readFile(paths[i]);
        lines = text ? parseLines(text, paths[i]) : -1;
        testDiag("%s: %ld lines", paths[i], lines);
        ok = lines > 0;
        total += lines;
        free(text);
    }
    for (t = 0; t < WRITERS; t++)
        for (i = 0; i < WRITES_EACH; i++)
            missing += !seen[t][i];
    testOk(ok && total == WRITERS * WRITES_EACH && missing == 0,
           "the three files hold %ld well-formed lines, each put once, none missing (%d)",
           total, missing);
    unlink(moved1);
    unlink(moved2);
    unlink(path);
}

static void testFailures(void)
{
    char sub[96], path[128], error[256];
    dbr_long_t value = 1;
    gwPutLogValue v = { DBR_LONG, 1, &value };
    gwPutLogCounters counters;
    unsigned before;
    gwPutLog *log;
    char *text;
    int i;

    snprintf(path, sizeof path, "%s/no/such/dir/put.log", directory);
    error[0] = '\0';
    testOk(gwPutLogOpen(path, NULL, error, sizeof error) == NULL
           && strstr(error, path) && strstr(error, strerror(ENOENT)),
           "cannot open: NULL, the reason given (\"%s\")", error);

    /* the disk is full */
    log = gwPutLogOpen("/dev/full", NULL, error, sizeof error);
    testOk(log != NULL, "a put log on /dev/full");
    if (log) {
        before = caughtCount();
        for (i = 0; i < 5; i++)
            gwPutLogWrite(log, &when, "u", "h", "test:pv", &v, &v);
        gwPutLogGetCounters(log, &counters);
        testOk(counters.failures == 5 && counters.lines == 0,
               "5 writes to a full disk: 5 failures, no line (%lu, %lu)", counters.failures,
               counters.lines);
        testOk(caughtCount() == before + 1 && strstr(lastCaught, "/dev/full")
               && strstr(lastCaught, strerror(ENOSPC)),
               "reported once, with the path and the reason: %s", lastCaught);
        gwPutLogClose(log);
    }

    /* the directory is removed under the open file, then made again */
    snprintf(sub, sizeof sub, "%s/sub", directory);
    snprintf(path, sizeof path, "%s/put.log", sub);
    mkdir(sub, 0755);
    log = gwPutLogOpen(path, NULL, error, sizeof error);
    testOk(log != NULL, "a put log in %s", sub);
    if (!log)
        return;
    gwPutLogWrite(log, &when, "u", "h", "test:pv", &v, &v);
    before = caughtCount();
    testOk(unlink(path) == 0 && rmdir(sub) == 0, "its file and directory removed");
    for (i = 0; i < 3; i++)
        gwPutLogWrite(log, &when, "u", "h", "test:pv", &v, &v);
    gwPutLogGetCounters(log, &counters);
    testOk(counters.lines == 1 && counters.failures == 3,
           "3 writes with nowhere to go: 3 failures (%lu lines, %lu failures)", counters.lines,
           counters.failures);
    testOk(caughtCount() == before + 1 && strstr(lastCaught, path)
           && strstr(lastCaught, strerror(ENOENT)),
           "reported once: %s", lastCaught);
    mkdir(sub, 0755);
    value = 2;
    gwPutLogWrite(log, &when, "u", "h", "test:pv", &v, &v);
    gwPutLogWrite(log, &when, "u", "h", "test:pv", &v, &v);
    gwPutLogGetCounters(log, &counters);
    text = readFile(path);
    snprintf(expected, sizeof expected, "%s u@h test:pv 2 old=2\n%s u@h test:pv 2 old=2\n",
             whenFile, whenFile);
    testOk(counters.lines == 3 && counters.failures == 3 && counters.reopens == 1 && text
           && strcmp(text, expected) == 0,
           "the directory back: writing resumes in a new file (%lu lines, %lu reopens)",
           counters.lines, counters.reopens);
    free(text);
    testOk(caughtCount() == before + 1, "no message when it works again");
    unlink(path);
    rmdir(sub);
    gwPutLogWrite(log, &when, "u", "h", "test:pv", &v, &v);
    testOk(caughtCount() == before + 2, "failing again after a line: reported again");
    gwPutLogClose(log);
}

/* ---------------------------------------------------------------- server */

static int waitReadable(SOCKET s, double seconds)
{
    fd_set readable;
    struct timeval timeout;

    FD_ZERO(&readable);
    FD_SET(s, &readable);
    timeout.tv_sec = (long)seconds;
    timeout.tv_usec = 0;
    return select((int)s + 1, &readable, NULL, NULL, &timeout) == 1;
}

static void testServer(void)
{
    struct sockaddr_in address;
    osiSocklen_t size = sizeof address;
    char server[32], received[2048], error[256];
    dbr_string_t s1 = "on", s2 = "off";
    dbr_double_t doubles[2] = { 1.5, -2.0 };
    gwPutLogValue v1 = { DBR_STRING, 1, s1 }, v2 = { DBR_STRING, 1, s2 };
    gwPutLogValue a = { DBR_DOUBLE, 2, doubles };
    gwPutLogCounters counters;
    size_t length = 0;
    SOCKET listener, peer = INVALID_SOCKET;
    gwPutLog *log;
    int newlines = 0, ok;
    const char *p;

    error[0] = '\0';
    testOk(gwPutLogOpen(NULL, "127.0.0.1", error, sizeof error) == NULL && error[0],
           "a server without port: refused (\"%s\")", error);
    error[0] = '\0';
    testOk(gwPutLogOpen(NULL, "127.0.0.1:", error, sizeof error) == NULL && error[0],
           "a server with an empty port: refused (\"%s\")", error);

    listener = epicsSocketCreate(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    memset(&address, 0, sizeof address);
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok = listener != INVALID_SOCKET
         && bind(listener, (struct sockaddr *)&address, sizeof address) == 0
         && listen(listener, 4) == 0
         && getsockname(listener, (struct sockaddr *)&address, &size) == 0;
    testOk(ok, "a stand-in log server on 127.0.0.1:%u", ntohs(address.sin_port));
    snprintf(server, sizeof server, "127.0.0.1:%u", ntohs(address.sin_port));
    log = gwPutLogOpen(NULL, server, error, sizeof error);
    testOk(log != NULL, "a put log to %s only (%s)", server, log ? "" : error);
    if (!log) {
        epicsSocketDestroy(listener);
        return;
    }
    gwPutLogWrite(log, &when, "alice", "opi1", "test:pv1", &v1, &v2);
    gwPutLogWrite(log, &when, NULL, "opi2", "test:pv2", &a, NULL);
    gwPutLogWrite(log, &when, "ca\nrol", "opi3", "test:pv3", &v2, &v1);
    gwPutLogGetCounters(log, &counters);
    testOk(counters.sent == 3 && counters.lines == 0,
           "3 messages given to the server, no file line (%lu, %lu)", counters.sent,
           counters.lines);
    gwPutLogClose(log);   /* flushes */

    if (waitReadable(listener, WAIT_SECONDS))
        peer = accept(listener, NULL, NULL);
    testOk(peer != INVALID_SOCKET, "the log client connected");
    while (peer != INVALID_SOCKET && newlines < 3 && length < sizeof received - 1
           && waitReadable(peer, WAIT_SECONDS)) {
        int n = recv(peer, received + length, (int)(sizeof received - 1 - length), 0);
        if (n <= 0)
            break;
        length += (size_t)n;
        received[length] = '\0';
        for (newlines = 0, p = received; (p = strchr(p, '\n')) != NULL; p++)
            newlines++;
    }
    received[length] = '\0';
    snprintf(expected, sizeof expected,
             "%s opi1 alice test:pv1 new=on old=off\n"
             "%s opi2 unknown test:pv2 new=1.5,-2 old=?\n"
             "%s opi3 ca\\x0arol test:pv3 new=off old=on\n",
             whenServer, whenServer, whenServer);
    testOk(strcmp(received, expected) == 0,
           "the server got the 3 messages in caPutLog's format, each ending with a newline");
    if (strcmp(received, expected) != 0) {
        testDiag("got      \"%s\"", received);
        testDiag("expected \"%s\"", expected);
    }
    if (peer != INVALID_SOCKET)
        epicsSocketDestroy(peer);
    epicsSocketDestroy(listener);
}

/* A log server that is not there: the log opens, puts are not held up. */
static void testServerAway(void)
{
    struct sockaddr_in address;
    osiSocklen_t size = sizeof address;
    char server[32], error[256] = "";
    dbr_long_t value = 3;
    gwPutLogValue v = { DBR_LONG, 1, &value };
    gwPutLogCounters counters;
    epicsTimeStamp start, end;
    SOCKET closed = epicsSocketCreate(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    gwPutLog *log;
    int i;

    /* a loopback port that was just free: nobody listens there */
    memset(&address, 0, sizeof address);
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (closed == INVALID_SOCKET || bind(closed, (struct sockaddr *)&address, sizeof address) != 0
            || getsockname(closed, (struct sockaddr *)&address, &size) != 0)
        testAbort("cannot find a free loopback port");
    epicsSocketDestroy(closed);
    snprintf(server, sizeof server, "127.0.0.1:%u", ntohs(address.sin_port));
    log = gwPutLogOpen(NULL, server, error, sizeof error);
    testOk(log != NULL, "nobody at %s: the log opens anyway (%s)", server, log ? "" : error);
    if (!log)
        return;
    epicsTimeGetCurrent(&start);
    for (i = 0; i < 5; i++)
        gwPutLogWrite(log, &when, "u", "h", "test:pv", &v, &v);
    epicsTimeGetCurrent(&end);
    gwPutLogGetCounters(log, &counters);
    testOk(counters.sent == 5 && epicsTimeDiffInSeconds(&end, &start) < 1.0,
           "5 puts given to it at once (%.3f s), counted (%lu)",
           epicsTimeDiffInSeconds(&end, &start), counters.sent);
    gwPutLogClose(log);
}

MAIN(gwPutLogTest)
{
    (void)argc;
    (void)argv;
    testPlan(64);
    timeTexts();
    caughtLock = epicsMutexMustCreate();
    errlogAddListener(catchMessage, NULL);
    strcpy(directory, "/tmp/gwPutLogTest.XXXXXX");
    if (!mkdtemp(directory))
        testAbort("cannot make a directory under /tmp: %s", strerror(errno));
    testDiag("time of the lines: \"%s\" (file), \"%s\" (server)", whenFile, whenServer);

    testPlainTypes();
    testArrays();
    testStructuredTypes();
    testUnknowns();
    testOverlong();
    testFileLines();
    testThreadsAndRotation();
    testFailures();
    rmdir(directory);

    if (!gwTestInNetns()) {
        testSkip(9, "opens sockets: run inside scripts/netns run");
        return testDone();
    }
    osiSockAttach();
    testServer();
    testServerAway();
    return testDone();
}
