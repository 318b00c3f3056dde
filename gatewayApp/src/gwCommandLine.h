/* gwCommandLine.h - the classic gateway's command line (`gateway -cip ...
 * -server`): its options, their checks and what they mean before anything
 * starts (gwCommandLine.c).
 *
 * The options are gwStart's (gwOptions.h, parsed by the same table) and
 * the rows that only a program can honour: -debug -log -home -server
 * -prefix -uid -gid -help -version. Parsing checks every value (a -uid
 * name must exist, -home must be a directory) so that a bad command line
 * is refused before a process is forked.
 *
 * Pure apart from the user and group lookups and the directory check; no
 * threads, no locks, no global state. Nothing is printed except by
 * gwCommandLineUsage.
 */
#ifndef INC_gwCommandLine_H
#define INC_gwCommandLine_H

#include <stdio.h>
#include <sys/types.h>

#include "gwOptions.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Exit status of a refused command line (and of -check's usage errors). */
#define GW_COMMAND_LINE_BAD 2

typedef struct gwCommandLine {
    gwOptions gateway;     /* first: gwStart's rows address it */
    int debug;             /* -debug 0..100 */
    int debugGiven;
    char *log;             /* -log <file> */
    int logGiven;
    char *home;            /* -home <directory>, else GATEWAY_HOME */
    int homeGiven;
    int serverGiven;       /* -server */
    char *prefix;          /* -prefix; default: the host name */
    int prefixGiven;
    char *uid;             /* -uid <number|name> */
    int uidGiven;
    char *gid;             /* -gid <number|name> */
    int gidGiven;
    int helpGiven;         /* -help */
    int versionGiven;      /* -version */

    /* what parsing worked out */
    uid_t userId;          /* when uidGiven */
    gid_t groupId;         /* when gidGiven */
    char hostPrefix[64];   /* the default prefix when -prefix is not given */

    /* the words for gwStart: every option of gwOptions, as given, and
     * "-sport P" added when -cport P is given alone (see gwCommandLineParse);
     * pointers into argv, or into sportWord */
    int gatewayArgc;
    char **gatewayArgv;
    char sportWord[8];

    char error[GW_OPTIONS_ERROR_SIZE];
} gwCommandLine;

/* Parse argv[1..argc-1] (argv[0] is the program). env_sport: the value of
 * EPICS_CAS_SERVER_PORT (NULL: not set); env_home: GATEWAY_HOME.
 * -cport P without -sport and without EPICS_CAS_SERVER_PORT makes the
 * server port P too, as Channel Access makes it for the classic gateway.
 * 0, or -1 with line->error (one line, naming the option). */
int gwCommandLineParse(gwCommandLine *line, int argc, char *const *argv,
                       const char *envServerPort, const char *envHome);
/* The statistics records' prefix: -prefix, else the host name. */
const char *gwCommandLinePrefix(const gwCommandLine *line);
/* The log level -debug asks for every area: -1 (leave them), or a gwLogLevel. */
int gwCommandLineLogLevel(const gwCommandLine *line);
/* The usage text: the synopsis and one line per option. */
void gwCommandLineUsage(FILE *out, const char *program);
void gwCommandLineClear(gwCommandLine *line);

#ifdef __cplusplus
}
#endif

#endif /* INC_gwCommandLine_H */
