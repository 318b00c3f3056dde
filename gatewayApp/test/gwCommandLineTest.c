/* gwCommandLineTest.c - unit test of the `gateway` command line
 * (gwCommandLine.c), of the start files' texts (gwStartFiles.c) and of
 * the log's helpers (gwSupervisor.c: stamps, keeping old files).
 *
 * No sockets, no processes: files in a temporary directory only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <epicsUnitTest.h>
#include <testMain.h>

#include "gwCommandLine.h"
#include "gwLog.h"
#include "gwStartFiles.h"
#include "gwSupervisor.h"

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

static int parse(gwCommandLine *line, int argc, char **argv, const char *sport,
                 const char *home)
{
    return gwCommandLineParse(line, argc, argv, sport, home);
}

/* The words handed to gwStart, joined by spaces. */
static const char *gatewayWords(const gwCommandLine *line)
{
    static char text[512];
    int i;

    text[0] = '\0';
    for (i = 0; i < line->gatewayArgc; i++) {
        if (i)
            strcat(text, " ");
        strcat(text, line->gatewayArgv[i]);
    }
    return text;
}

static void testTypicalLine(void)
{
    char *argv[] = {"gateway", "-log", "gateway.log", "-cip", "127.0.0.1", "-sip",
                    "127.0.0.1", "-server", "-archive", "-no_cache"};
    gwCommandLine line;

    testDiag("the Users Guide's typical command line");
    testOk1(parse(&line, COUNT(argv), argv, NULL, NULL) == 0);
    testOk1(line.logGiven && strcmp(line.log, "gateway.log") == 0);
    testOk1(line.serverGiven);
    testOk1(line.gateway.archiveGiven && line.gateway.noCacheGiven);
    testOk1(line.gateway.clientAddressesGiven && line.gateway.serverInterfacesGiven);
    testOk(strcmp(gatewayWords(&line), "-cip 127.0.0.1 -sip 127.0.0.1 -archive -no_cache") == 0,
           "gwStart gets the gateway's options only: '%s'", gatewayWords(&line));
    testOk1(!line.prefixGiven && strcmp(gwCommandLinePrefix(&line), line.hostPrefix) == 0);
    testOk1(line.hostPrefix[0] != '\0');
    testOk1(gwCommandLineLogLevel(&line) == -1);
    gwCommandLineClear(&line);
}

static void testProgramOptions(void)
{
    char home[] = "/tmp";
    char *argv[] = {"gateway", "-debug", "50", "-home", home, "-prefix", "gw",
                    "-uid", "0", "-gid", "root", "-sport", "5070", "-ro", "-version",
                    "-help"};
    char *info[] = {"gateway", "-debug", "1"};
    gwCommandLine line;

    testDiag("the program's own options");
    testOk1(parse(&line, COUNT(argv), argv, NULL, NULL) == 0);
    testOk1(line.debugGiven && line.debug == 50);
    testOk1(gwCommandLineLogLevel(&line) == GW_LOG_DEBUG);
    testOk1(line.homeGiven && strcmp(line.home, "/tmp") == 0);
    testOk1(strcmp(gwCommandLinePrefix(&line), "gw") == 0);
    testOk1(line.uidGiven && line.userId == 0);
    testOk1(line.gidGiven && line.groupId == 0);
    testOk1(line.versionGiven && line.helpGiven);
    testOk(strcmp(gatewayWords(&line), "-sport 5070 -ro") == 0, "gwStart gets '%s'",
           gatewayWords(&line));
    gwCommandLineClear(&line);
    testOk1(parse(&line, COUNT(info), info, NULL, NULL) == 0
            && gwCommandLineLogLevel(&line) == GW_LOG_INFO);
    gwCommandLineClear(&line);
}

static void testHome(void)
{
    char *none[] = {"gateway"};
    char *given[] = {"gateway", "-home", "/"};
    gwCommandLine line;

    testDiag("-home and GATEWAY_HOME");
    testOk1(parse(&line, COUNT(none), none, NULL, "/tmp") == 0 && line.homeGiven
            && strcmp(line.home, "/tmp") == 0);
    gwCommandLineClear(&line);
    testOk1(parse(&line, COUNT(given), given, NULL, "/tmp") == 0 && strcmp(line.home, "/") == 0);
    gwCommandLineClear(&line);
    testOk1(parse(&line, COUNT(none), none, NULL, "/no/such/directory") != 0
            && strstr(line.error, "GATEWAY_HOME"));
    gwCommandLineClear(&line);
}

/* -cport P alone makes the server port P, as Channel Access does for the
 * classic gateway; -sport or EPICS_CAS_SERVER_PORT win. */
static void testPortInterplay(void)
{
    char *cport[] = {"gateway", "-cport", "5066"};
    char *both[] = {"gateway", "-cport", "5066", "-sport", "5070"};
    gwCommandLine line;

    testDiag("-cport and -sport");
    testOk1(parse(&line, COUNT(cport), cport, NULL, NULL) == 0);
    testOk(strcmp(gatewayWords(&line), "-cport 5066 -sport 5066") == 0, "-cport alone: '%s'",
           gatewayWords(&line));
    gwCommandLineClear(&line);
    testOk1(parse(&line, COUNT(cport), cport, "5080", NULL) == 0);
    testOk(strcmp(gatewayWords(&line), "-cport 5066") == 0,
           "with EPICS_CAS_SERVER_PORT: '%s'", gatewayWords(&line));
    gwCommandLineClear(&line);
    testOk1(parse(&line, COUNT(both), both, NULL, NULL) == 0);
    testOk(strcmp(gatewayWords(&line), "-cport 5066 -sport 5070") == 0, "with -sport: '%s'",
           gatewayWords(&line));
    gwCommandLineClear(&line);
}

static void refused(const char *reason, int argc, char **argv, const char *expect)
{
    gwCommandLine line;
    int status = parse(&line, argc, argv, NULL, NULL);

    testOk(status != 0 && strstr(line.error, expect) && !strchr(line.error, '\n'),
           "%s: refused with one line '%s'", reason, line.error);
    gwCommandLineClear(&line);
}

static void testRefused(void)
{
    char *unknown[] = {"gateway", "-bogus"};
    char *missing[] = {"gateway", "-cip", "-sip", "127.0.0.1"};
    char *last[] = {"gateway", "-pvlist"};
    char *word[] = {"gateway", "-server", "extra"};
    char *port[] = {"gateway", "-sport", "0"};
    char *seconds[] = {"gateway", "-connect_timeout", "soon"};
    char *debug[] = {"gateway", "-debug", "101"};
    char *user[] = {"gateway", "-uid", "no-such-user-here"};
    char *group[] = {"gateway", "-gid", "no-such-group-here"};
    char *home[] = {"gateway", "-home", "/no/such/directory"};
    char *mask[] = {"gateway", "-mask", "vx"};
    char *prefix[] = {"gateway", "-prefix", ""};

    testDiag("bad command lines");
    refused("an unknown option", COUNT(unknown), unknown, "unknown option '-bogus'");
    refused("the guide's -cip without its list", COUNT(missing), missing, "-cip: missing value");
    refused("a value missing at the end", COUNT(last), last, "-pvlist: missing value");
    refused("a word that is no option", COUNT(word), word, "unexpected argument 'extra'");
    refused("port 0", COUNT(port), port, "-sport");
    refused("a time that is no number", COUNT(seconds), seconds, "-connect_timeout");
    refused("-debug beyond 100", COUNT(debug), debug, "-debug");
    refused("an unknown user", COUNT(user), user, "-uid");
    refused("an unknown group", COUNT(group), group, "-gid");
    refused("no such home", COUNT(home), home, "-home");
    refused("a bad mask", COUNT(mask), mask, "-mask");
    refused("an empty prefix", COUNT(prefix), prefix, "-prefix");
}

/* Every option of the Users Guide, and the newer -ro and -caputlog, is
 * in the usage text. */
static void testUsage(void)
{
    static const char *const names[] = {
        "-debug", "-pvlist", "-access", "-log", "-command", "-putlog", "-report", "-home",
        "-sip", "-signore", "-cip", "-sport", "-cport", "-connect_timeout",
        "-inactive_timeout", "-dead_timeout", "-disconnect_timeout", "-reconnect_inhibit",
        "-server", "-mask", "-prefix", "-uid", "-gid", "-archive", "-no_cache", "-ro",
        "-caputlog", "-help", "-version"};
    char text[8192];
    FILE *out = tmpfile();
    size_t n;
    int i, all = 1;

    testDiag("usage");
    gwCommandLineUsage(out, "gateway");
    rewind(out);
    n = fread(text, 1, sizeof text - 1, out);
    text[n] = '\0';
    fclose(out);
    for (i = 0; i < COUNT(names); i++) {
        char row[40];
        sprintf(row, "  %s ", names[i]);
        if (!strstr(text, row)) {
            testDiag("missing from the usage: %s", names[i]);
            all = 0;
        }
    }
    testOk(all, "the usage lists all %d options of the guide", COUNT(names));
}

static char *text(void (*write)(const gwStartFilesInfo *, FILE *), const gwStartFilesInfo *info)
{
    static char buffer[8192];
    FILE *out = tmpfile();
    size_t n;

    write(info, out);
    rewind(out);
    n = fread(buffer, 1, sizeof buffer - 1, out);
    buffer[n] = '\0';
    fclose(out);
    return buffer;
}

/* The lines that are not comments. */
static const char *commands(const char *script)
{
    static char out[4096];
    const char *p = script;

    out[0] = '\0';
    while (*p) {
        const char *end = strchr(p, '\n');
        size_t n = end ? (size_t)(end - p + 1) : strlen(p);
        if (*p != '#' && strlen(out) + n < sizeof out)
            strncat(out, p, n);
        p += n;
    }
    return out;
}

static void testStartFiles(void)
{
    char *args[] = {"-cip", "127.0.0.1", "-prefix", "it's"};
    gwStartFilesInfo info;
    const char *s;

    testDiag("gateway.killer and gateway.restart");
    memset(&info, 0, sizeof info);
    info.program = "/opt/gw/bin/linux-x86_64/gateway";
    info.argc = COUNT(args);
    info.argv = args;
    info.startDirectory = "/srv/start";
    info.home = "/srv/home";
    info.pid = 4321;
    info.prefix = "it's";
    info.serverPort = 5064;
    info.pvlist = "gateway.pvlist";

    s = text(gwStartFilesKiller, &info);
    testOk1(strncmp(s, "#!/bin/sh\n", 10) == 0);
    testOk(strcmp(commands(s), "kill 4321\n") == 0, "without a supervisor the killer kills "
           "the gateway: '%.*s'", (int)strcspn(commands(s), "\n"), commands(s));
    testOk1(strstr(s, "# kill -USR1 4321") && strstr(s, "# kill -USR2 4321"));
    testOk1(strstr(s, "gateway.pvlist") && strstr(s, "5064") && strstr(s, "/srv/home"));
    testOk1(strstr(s, "'-prefix' 'it'\\''s'") != NULL);
    s = text(gwStartFilesRestart, &info);
    testOk1(strstr(commands(s), "kill 4321") != NULL);
    testOk1(strstr(commands(s), "cd '/srv/start'") != NULL);
    testOk1(strstr(commands(s), "nohup '/opt/gw/bin/linux-x86_64/gateway' '-cip' '127.0.0.1' "
                   "'-prefix' 'it'\\''s'") != NULL);

    info.supervisorPid = 1234;
    s = text(gwStartFilesKiller, &info);
    testOk(strcmp(commands(s), "kill 1234\n") == 0, "in server mode the killer kills the "
           "supervisor: '%.*s'", (int)strcspn(commands(s), "\n"), commands(s));
    testOk1(strstr(s, "# kill 4321") != NULL);
    s = text(gwStartFilesRestart, &info);
    testOk(strcmp(commands(s), "kill 4321\n") == 0, "in server mode restart kills the "
           "gateway only: '%.*s'", (int)strcspn(commands(s), "\n"), commands(s));
}

static int fileHas(const char *path, const char *content)
{
    char buffer[256];
    FILE *in = fopen(path, "r");
    size_t n;

    if (!in)
        return 0;
    n = fread(buffer, 1, sizeof buffer - 1, in);
    buffer[n] = '\0';
    fclose(in);
    return strcmp(buffer, content) == 0;
}

static void writeFile(const char *path, const char *content)
{
    FILE *out = fopen(path, "w");

    if (out) {
        fputs(content, out);
        fclose(out);
    }
}

static void testKeepOld(void)
{
    char directory[] = "/tmp/gwCommandLineTestXXXXXX";
    char path[128], first[256], second[256], empty[128];
    struct stat info;

    testDiag("old logs are renamed, never overwritten");
    if (!mkdtemp(directory)) {
        testAbort("no temporary directory");
        return;
    }
    sprintf(path, "%s/gateway.log", directory);
    sprintf(empty, "%s/empty.log", directory);
    testOk1(gwSupervisorKeepOld(path, first, sizeof first) == 0 && stat(path, &info) != 0);
    writeFile(empty, "");
    first[0] = '\0';
    testOk1(gwSupervisorKeepOld(empty, first, sizeof first) == 0 && first[0] == '\0'
            && stat(empty, &info) == 0);
    writeFile(path, "one\n");
    first[0] = second[0] = '\0';
    testOk1(gwSupervisorKeepOld(path, first, sizeof first) == 0 && stat(path, &info) != 0);
    testOk(strncmp(first, path, strlen(path)) == 0 && first[strlen(path)] == '.'
           && strlen(first) == strlen(path) + 16, "renamed to %s", first);
    writeFile(path, "two\n");
    testOk1(gwSupervisorKeepOld(path, second, sizeof second) == 0);
    testOk(strcmp(first, second) != 0, "a second one in the same second: %s", second);
    testOk1(fileHas(first, "one\n") && fileHas(second, "two\n"));
    remove(first);
    remove(second);
    remove(empty);
    rmdir(directory);
}

static void testStamp(void)
{
    char stamp[32];
    int y, mo, d, h, mi, s, ms;
    char end;

    testDiag("the stamp of a log line");
    gwSupervisorStamp(stamp, sizeof stamp);
    testOk(strlen(stamp) == 24 && sscanf(stamp, "%4d-%2d-%2d %2d:%2d:%2d.%3d%c", &y, &mo, &d,
                                         &h, &mi, &s, &ms, &end) == 8 && end == ' ',
           "'%s'", stamp);
}

MAIN(gwCommandLineTest)
{
    testPlan(0);
    testTypicalLine();
    testProgramOptions();
    testHome();
    testPortInterplay();
    testRefused();
    testUsage();
    testStartFiles();
    testKeepOld();
    testStamp();
    return testDone();
}
