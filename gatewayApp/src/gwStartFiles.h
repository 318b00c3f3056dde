/* gwStartFiles.h - gateway.killer and gateway.restart, the shell scripts
 * the `gateway` program writes where it works when a gateway starts
 * (gwStartFiles.c), as the classic gateway's Users Guide describes:
 *
 * gateway.killer: the settings as comments, the commands to run the
 * command file (kill -USR1), write the PV report (kill -USR2), end the
 * gateway and end the supervisor, commented, and one command that is run:
 * in server mode it ends the supervisor (and so the gateway), otherwise
 * the gateway. gateway.restart: in server mode it ends the gateway, which
 * the supervisor starts again; otherwise it ends the gateway, waits for
 * it, and starts the same command line again.
 *
 * Each file is written whole under a temporary name and renamed, so a
 * reader never sees half of one. No threads, no locks, no global state.
 */
#ifndef INC_gwStartFiles_H
#define INC_gwStartFiles_H

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gwStartFilesInfo {
    const char *program;          /* the program's absolute path */
    int argc;                     /* the command line, argv[0] excluded */
    char *const *argv;
    const char *startDirectory;   /* where the command line was given */
    const char *home;             /* where the gateway works (and the files are) */
    long pid;                     /* the gateway */
    long supervisorPid;           /* 0: not in server mode */
    const char *prefix;           /* of the statistics records */
    unsigned serverPort;          /* the CA server's port, 0: unknown */
    const char *pvlist, *access, *log, *putlog, *report, *command; /* NULL: none */
} gwStartFilesInfo;

/* The two texts, for tests: write them to out. */
void gwStartFilesKiller(const gwStartFilesInfo *info, FILE *out);
void gwStartFilesRestart(const gwStartFilesInfo *info, FILE *out);

/* Write gateway.killer and gateway.restart (mode 0755) in directory.
 * 0, or -1 with errno set. */
int gwStartFilesWrite(const gwStartFilesInfo *info, const char *directory);

#ifdef __cplusplus
}
#endif

#endif /* INC_gwStartFiles_H */
