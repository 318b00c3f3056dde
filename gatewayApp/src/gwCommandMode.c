/* gwCommandMode.c - `gateway [options]`: the classic gateway's command
 * line runs an IOC that is only a gateway (gwCommandMode.h).
 *
 * In order: parse (a bad line is refused before anything starts), go to
 * the home directory, become the supervisor (-server) or start the log
 * writer (-log), then the IOC: the module's dbd, db/gateway.db with the
 * prefix, gwStart with the gateway's options, iocInit; then the start
 * files (gateway.killer, gateway.restart), then the user and group
 * (-gid, -uid) once every socket is bound. The main thread then only
 * waits: the IOC ends by epicsExit from the control thread (quitFlag,
 * quitServerFlag, SIGTERM/SIGINT/SIGHUP).
 *
 * Runs on the main thread, before and while the IOC's threads start;
 * state: none beyond the parsed command line it owns.
 */
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dbAccess.h>
#include <dbStaticLib.h>
#include <epicsExit.h>
#include <epicsThread.h>
#include <errlog.h>
#include <iocInit.h>

#include "gwCommandLine.h"
#include "gwCommandMode.h"
#include "gwControl.h"
#include "gwIoc.h"
#include "gwLog.h"
#include "gwStartFiles.h"
#include "gwSupervisor.h"
#include "gwVersion.h"

/* Seconds between the end of a supervised gateway and the next start. */
#define GW_RESTART_DELAY 0.5

/* The module's top directory: the program is <top>/bin/<arch>/gateway. */
static int findTop(const char *program, char *top, size_t size)
{
    char path[PATH_MAX];
    int up;

    snprintf(path, sizeof path, "%s", program);
    for (up = 0; up < 3; up++) {
        char *slash = strrchr(path, '/');
        if (!slash)
            return -1;
        *slash = '\0';
    }
    snprintf(top, size, "%s", path);
    return 0;
}

static int exists(const char *path)
{
    struct stat info;

    return stat(path, &info) == 0;
}

static unsigned serverPort(const gwCommandLine *line)
{
    const char *text = getenv("EPICS_CAS_SERVER_PORT");

    if (line->gateway.serverPortGiven)
        return line->gateway.serverPort;
    if (line->sportWord[0])
        return line->gateway.clientPort;
    if (!text || !*text)
        text = getenv("EPICS_CA_SERVER_PORT");
    return text && atoi(text) > 0 ? (unsigned)atoi(text) : 5064u;
}

static void writeStartFiles(const gwCommandLine *line, int argc, char *argv[],
                            const char *program, const char *startDirectory)
{
    gwStartFilesInfo info;
    char home[PATH_MAX];
    const char *supervisor = getenv(GW_SUPERVISOR_PID_ENV);

    memset(&info, 0, sizeof info);
    if (!getcwd(home, sizeof home))
        strcpy(home, ".");
    info.program = program;
    info.argc = argc - 1;
    info.argv = argv + 1;
    info.startDirectory = startDirectory;
    info.home = home;
    info.pid = (long)getpid();
    info.supervisorPid = supervisor ? atol(supervisor) : 0;
    info.prefix = gwCommandLinePrefix(line);
    info.serverPort = serverPort(line);
    info.pvlist = line->gateway.pvlistGiven ? line->gateway.pvlist : NULL;
    info.access = line->gateway.accessGiven ? line->gateway.access : NULL;
    info.log = line->logGiven ? line->log : NULL;
    info.putlog = line->gateway.putlogGiven ? line->gateway.putlog : NULL;
    info.report = line->gateway.reportGiven ? line->gateway.report : "gateway.report";
    info.command = line->gateway.commandGiven ? line->gateway.command : "gateway.command";
    if (gwStartFilesWrite(&info, ".") != 0)
        errlogPrintf("gateway: cannot write gateway.killer and gateway.restart in %s: %s\n",
                     home, strerror(errno));
}

/* What root may do that the IOC relies on after -uid: Base locks the
 * memory of a process that may use real-time scheduling (mlockall at
 * iocInit) and creates its threads SCHED_FIFO; as another user each new
 * thread (libca makes two per upstream IOC) needs locked memory within
 * that user's RLIMIT_MEMLOCK, and fails beyond it. Root raises the limits
 * of locked memory and real-time priority, so the gateway keeps the
 * scheduling and the memory lock it started with; where it may not (no
 * CAP_SYS_RESOURCE, as in many containers), the memory is unlocked once
 * the user is changed. 1 when it is to be unlocked. */
static int keepRealTime(void)
{
    struct rlimit unlimited = {RLIM_INFINITY, RLIM_INFINITY};
    struct rlimit priority = {99, 99};

    if (geteuid() != 0)
        return 0;
    setrlimit(RLIMIT_RTPRIO, &priority);   /* else Base's threads fall back to SCHED_OTHER */
    return setrlimit(RLIMIT_MEMLOCK, &unlimited) != 0;
}

/* -gid, then -uid (after which no other group could be taken). 0 or -1. */
static int dropPrivileges(const gwCommandLine *line)
{
    int unlock = line->uidGiven && keepRealTime();

    if (line->gidGiven) {
        if (geteuid() == 0 && setgroups(0, NULL) != 0) {
            errlogPrintf("gateway: -gid: cannot drop the supplementary groups: %s\n",
                         strerror(errno));
            return -1;
        }
        if (setgid(line->groupId) != 0) {
            errlogPrintf("gateway: -gid %s: %s\n", line->gid, strerror(errno));
            return -1;
        }
    }
    if (line->uidGiven) {
        if (setuid(line->userId) != 0) {
            errlogPrintf("gateway: -uid %s: %s\n", line->uid, strerror(errno));
            return -1;
        }
    }
    if (unlock && getuid() != 0 && munlockall() == 0)
        errlogPrintf("gateway: memory unlocked (RLIMIT_MEMLOCK cannot be raised for "
                     "uid %ld)\n", (long)getuid());
    if (line->gidGiven || line->uidGiven)
        errlogPrintf("gateway: now running as uid %ld gid %ld\n", (long)getuid(),
                     (long)getgid());
    return 0;
}

/* -access names a file for asSetFilename, which warns of relative
 * names: give it the absolute name (in the home directory). The word is
 * replaced in line->gatewayArgv; absolute holds it. */
static void absoluteAccess(gwCommandLine *line, char *absolute, size_t size)
{
    char here[PATH_MAX];
    int i;

    for (i = 0; i + 1 < line->gatewayArgc; i++)
        if (strcmp(line->gatewayArgv[i], "-access") == 0 && line->gatewayArgv[i + 1][0] != '/'
            && getcwd(here, sizeof here)) {
            snprintf(absolute, size, "%s/%s", here, line->gatewayArgv[i + 1]);
            line->gatewayArgv[i + 1] = absolute;
        }
}

/* The IOC that is the gateway; returns only on failure (exit status). */
static int runGateway(gwCommandLine *line, const char *top, int argc, char *argv[],
                      const char *program, const char *startDirectory,
                      int (*registerDriver)(struct dbBase *))
{
    char dbd[PATH_MAX + 32], db[PATH_MAX + 32], macros[128], access[2 * PATH_MAX];
    int level = gwCommandLineLogLevel(line);
    gwGateway *gateway;

    /* the gateway's server is the only CA server, as the classic gateway's */
    setenv("EPICS_IOC_IGNORE_SERVERS", "rsrv", 1);
    gwControlCatchEndSignals();
    /* quitServerFlag: the supervisor, ours or systemd's, starts no other */
    gwControlSetQuitServerStatus(GW_SUPERVISOR_EXIT_QUIT_SERVER);
    if (level >= 0) {
        unsigned area;
        for (area = 0; area < GW_LOG_AREAS; area++)
            gwLogSetLevel((gwLogArea)area, (gwLogLevel)level);
    }
    snprintf(dbd, sizeof dbd, "%s/dbd/gatewayIoc.dbd", top);
    snprintf(db, sizeof db, "%s/db/gateway.db", top);
    snprintf(macros, sizeof macros, "P=%s", gwCommandLinePrefix(line));
    if (dbLoadDatabase(dbd, NULL, NULL) != 0 || registerDriver(pdbbase) != 0) {
        errlogPrintf("gateway: cannot load %s\n", dbd);
        return 1;
    }
    if (dbLoadRecords(db, macros) != 0) {
        errlogPrintf("gateway: cannot load %s with %s\n", db, macros);
        return 1;
    }
    absoluteAccess(line, access, sizeof access);
    if (gwIocStart(NULL, line->gatewayArgc, line->gatewayArgv) != 0)
        return 1;
    if (iocInit() != 0)
        return 1;
    gateway = gwIocGateway();
    if (!gateway || !gwGatewayIsRunning(gateway)) {
        errlogPrintf("gateway: the gateway's server did not start (see above)\n");
        return 1;
    }
    writeStartFiles(line, argc, argv, program, startDirectory);
    if (dropPrivileges(line) != 0)
        return 1;
    for (;;)
        epicsThreadSleep(3600.0);
}

int gwCommandMode(int argc, char *argv[], int (*registerDriver)(struct dbBase *))
{
    gwCommandLine line;
    char program[PATH_MAX], top[PATH_MAX], startDirectory[PATH_MAX];
    ssize_t n;
    int status;

    if (gwCommandLineParse(&line, argc, argv, getenv("EPICS_CAS_SERVER_PORT"),
                           getenv("GATEWAY_HOME")) != 0) {
        fprintf(stderr, "gateway: %s\n", line.error);
        gwCommandLineUsage(stderr, "gateway");
        gwCommandLineClear(&line);
        return GW_COMMAND_LINE_BAD;
    }
    if (line.helpGiven || line.versionGiven) {
        char version[128];
        gwVersionFormat(version, sizeof version);
        if (line.versionGiven)
            printf("%s\n", version);
        if (line.helpGiven)
            gwCommandLineUsage(stdout, "gateway");
        gwCommandLineClear(&line);
        return 0;
    }
    /* lines in the order they are written, also into a pipe or a file */
    setvbuf(stdout, NULL, _IOLBF, 0);
    n = readlink("/proc/self/exe", program, sizeof program - 1);
    if (n > 0)
        program[n] = '\0';
    else if (!realpath(argv[0], program))
        snprintf(program, sizeof program, "%s", argv[0]);
    if (!getcwd(startDirectory, sizeof startDirectory))
        strcpy(startDirectory, ".");
    if (findTop(program, top, sizeof top) != 0 || !exists(top)) {
        fprintf(stderr, "gateway: cannot tell the module's directory from %s\n", program);
        gwCommandLineClear(&line);
        return 1;
    }
    if (line.homeGiven && chdir(line.home) != 0) {
        fprintf(stderr, "gateway: -home %s: %s\n", line.home, strerror(errno));
        gwCommandLineClear(&line);
        return GW_COMMAND_LINE_BAD;
    }
    if (line.serverGiven) {
        gwSupervisorConfig config;
        memset(&config, 0, sizeof config);
        config.log = line.logGiven ? line.log : NULL;
        config.putlog = line.gateway.putlogGiven ? line.gateway.putlog : NULL;
        config.restartDelay = GW_RESTART_DELAY;
        if (gwSupervise(&config) != 0) {
            gwCommandLineClear(&line);
            return 1;
        }
    }
    else if (line.logGiven && gwLogToFile(line.log) != 0) {
        gwCommandLineClear(&line);
        return 1;
    }
    status = runGateway(&line, top, argc, argv, program, startDirectory, registerDriver);
    gwCommandLineClear(&line);
    return status;
}
