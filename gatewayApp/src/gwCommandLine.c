/* gwCommandLine.c - the `gateway` command line: gwStart's option table
 * plus the program's own rows, parsed in one pass (gwCommandLine.h).
 *
 * The program's rows follow gwStart's in one table whose offsets are into
 * gwCommandLine, which starts with the gwOptions that gwStart's rows
 * address. Pure but for getpwnam/getgrnam, stat and gethostname.
 */
#include <grp.h>
#include <pwd.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <epicsStdio.h>
#include <epicsStdlib.h>

#include "gwCommandLine.h"
#include "gwLog.h"
#include "gwUpstream.h"

#define ROW(field) offsetof(gwCommandLine, field), offsetof(gwCommandLine, field##Given)
#define FLAG(field) 0, offsetof(gwCommandLine, field##Given)

static const gwOptionDescriptor programRows[] = {
    {"-debug", GW_OPTION_INT, ROW(debug), 0, 100, "<0..100>",
     "log detail: 0 the defaults, 1-49 info, 50-100 debug (every log area)"},
    {"-log", GW_OPTION_STRING, ROW(log), 0, 0, "<file>",
     "stdout, stderr and errlog to this file, every line timestamped"},
    {"-home", GW_OPTION_STRING, ROW(home), 0, 0, "<directory>",
     "work in this directory (else GATEWAY_HOME); relative files are there"},
    {"-server", GW_OPTION_FLAG, FLAG(server), 0, 0, NULL,
     "server mode: a supervisor restarts the gateway when it ends"},
    {"-prefix", GW_OPTION_STRING, ROW(prefix), 0, 0, "<string>",
     "prefix of the statistics records (<prefix>:vctotal); default: the host name"},
    {"-uid", GW_OPTION_STRING, ROW(uid), 0, 0, "<uid|user>",
     "run as this user once the sockets are bound"},
    {"-gid", GW_OPTION_STRING, ROW(gid), 0, 0, "<gid|group>",
     "run as this group once the sockets are bound"},
    {"-help", GW_OPTION_FLAG, FLAG(help), 0, 0, NULL, "print this text"},
    {"-version", GW_OPTION_FLAG, FLAG(version), 0, 0, NULL, "print the version"},
};

#define PROGRAM_ROWS (sizeof programRows / sizeof programRows[0])

/* gwStart's rows and the program's, in one table (built at the first
 * call, from the main thread before any other starts; gwStart's rows keep
 * their offsets: gwOptions is at offset 0 of gwCommandLine). */
static const gwOptionDescriptor *fullTable(size_t *rows)
{
    static gwOptionDescriptor table[64];
    static size_t count;
    size_t gatewayRows, i;
    const gwOptionDescriptor *gatewayTable;

    if (count) {
        *rows = count;
        return table;
    }
    gatewayTable = gwOptionsTable(&gatewayRows);
    if (gatewayRows + PROGRAM_ROWS > sizeof table / sizeof table[0])
        gatewayRows = sizeof table / sizeof table[0] - PROGRAM_ROWS;
    for (i = 0; i < gatewayRows; i++)
        table[i] = gatewayTable[i];
    for (i = 0; i < PROGRAM_ROWS; i++)
        table[gatewayRows + i] = programRows[i];
    count = gatewayRows + PROGRAM_ROWS;
    *rows = count;
    return table;
}

static const gwOptionDescriptor *gatewayRow(const char *word)
{
    size_t rows, i;
    const gwOptionDescriptor *table = gwOptionsTable(&rows);

    for (i = 0; i < rows; i++)
        if (strcmp(table[i].name, word) == 0)
            return &table[i];
    return NULL;
}

/* A user or group given as a number or a name. 0, or -1. */
static int lookUpId(const char *text, int user, unsigned long *id)
{
    long number;

    if (epicsParseLong(text, &number, 10, NULL) == 0) {
        if (number < 0)
            return -1;
        *id = (unsigned long)number;
        return 0;
    }
    if (user) {
        struct passwd *entry = getpwnam(text);
        if (!entry)
            return -1;
        *id = entry->pw_uid;
    } else {
        struct group *entry = getgrnam(text);
        if (!entry)
            return -1;
        *id = entry->gr_gid;
    }
    return 0;
}

static int isDirectory(const char *path)
{
    struct stat info;

    return stat(path, &info) == 0 && S_ISDIR(info.st_mode);
}

/* The words of gwStart's options, in order, and -sport for a lone -cport. */
static int gatewayWords(gwCommandLine *line, int argc, char *const *argv,
                        const char *envServerPort)
{
    int i, n = 0;

    line->gatewayArgv = calloc((size_t)argc + 2u, sizeof *line->gatewayArgv);
    if (!line->gatewayArgv) {
        epicsSnprintf(line->error, sizeof line->error, "out of memory");
        return -1;
    }
    for (i = 1; i < argc; i++) {
        const gwOptionDescriptor *row = gatewayRow(argv[i]);
        const gwOptionDescriptor *all;
        size_t rows, r;

        if (row) {
            line->gatewayArgv[n++] = argv[i];
            if (row->kind != GW_OPTION_FLAG)
                line->gatewayArgv[n++] = argv[++i];
            continue;
        }
        /* a program row: skip its value */
        all = fullTable(&rows);
        for (r = 0; r < rows; r++)
            if (strcmp(all[r].name, argv[i]) == 0 && all[r].kind != GW_OPTION_FLAG)
                i++;
    }
    if (line->gateway.clientPortGiven && !line->gateway.serverPortGiven
        && !(envServerPort && *envServerPort)) {
        epicsSnprintf(line->sportWord, sizeof line->sportWord, "%u",
                      (unsigned)line->gateway.clientPort);
        line->gatewayArgv[n++] = (char *)"-sport";
        line->gatewayArgv[n++] = line->sportWord;
    }
    line->gatewayArgc = n;
    return 0;
}

int gwCommandLineParse(gwCommandLine *line, int argc, char *const *argv,
                       const char *envServerPort, const char *envHome)
{
    size_t rows;
    const gwOptionDescriptor *table = fullTable(&rows);
    unsigned long id;
    unsigned mask;

    memset(line, 0, sizeof *line);
    if (gwOptionTableParseArgv(table, rows, line, argc - 1, argv + 1, line->error,
                               sizeof line->error) != 0)
        return -1;
    if (line->gateway.maskGiven && gwUpstreamParseMask(line->gateway.mask, &mask) != 0) {
        epicsSnprintf(line->error, sizeof line->error,
                      "-mask: '%s' is not a mask of the letters v, a, l, p", line->gateway.mask);
        return -1;
    }
    if (line->uidGiven) {
        if (lookUpId(line->uid, 1, &id) != 0) {
            epicsSnprintf(line->error, sizeof line->error,
                          "-uid: '%s' is neither a user id nor a user name", line->uid);
            return -1;
        }
        line->userId = (uid_t)id;
    }
    if (line->gidGiven) {
        if (lookUpId(line->gid, 0, &id) != 0) {
            epicsSnprintf(line->error, sizeof line->error,
                          "-gid: '%s' is neither a group id nor a group name", line->gid);
            return -1;
        }
        line->groupId = (gid_t)id;
    }
    if (!line->homeGiven && envHome && *envHome) {
        line->home = malloc(strlen(envHome) + 1);
        if (!line->home) {
            epicsSnprintf(line->error, sizeof line->error, "out of memory");
            return -1;
        }
        strcpy(line->home, envHome);
        line->homeGiven = 1;
        if (!isDirectory(line->home)) {
            epicsSnprintf(line->error, sizeof line->error,
                          "GATEWAY_HOME: '%s' is not a directory", line->home);
            return -1;
        }
    }
    else if (line->homeGiven && !isDirectory(line->home)) {
        epicsSnprintf(line->error, sizeof line->error, "-home: '%s' is not a directory",
                      line->home);
        return -1;
    }
    if (line->prefixGiven && !*line->prefix) {
        epicsSnprintf(line->error, sizeof line->error, "-prefix: empty");
        return -1;
    }
    if (gethostname(line->hostPrefix, sizeof line->hostPrefix) != 0 || !line->hostPrefix[0])
        strcpy(line->hostPrefix, "gateway");
    line->hostPrefix[sizeof line->hostPrefix - 1] = '\0';
    return gatewayWords(line, argc, argv, envServerPort);
}

const char *gwCommandLinePrefix(const gwCommandLine *line)
{
    return line->prefixGiven ? line->prefix : line->hostPrefix;
}

int gwCommandLineLogLevel(const gwCommandLine *line)
{
    if (!line->debugGiven || line->debug == 0)
        return -1;
    return line->debug < 50 ? GW_LOG_INFO : GW_LOG_DEBUG;
}

void gwCommandLineUsage(FILE *out, const char *program)
{
    size_t rows;
    const gwOptionDescriptor *table = fullTable(&rows);

    fprintf(out, "usage: %s [options]       the classic gateway's command line\n"
                 "       %s st.cmd          an IOC's startup script, then its shell\n"
                 "       %s -check [-pvlist FILE] [-access FILE]\n"
                 "options:\n", program, program, program);
    gwOptionTableUsage(table, rows, out);
}

void gwCommandLineClear(gwCommandLine *line)
{
    size_t rows;
    const gwOptionDescriptor *table = fullTable(&rows);

    gwOptionTableClear(table, rows, line);
    free(line->gatewayArgv);
    memset(line, 0, sizeof *line);
}
