/* gwSupervisor.h - the `gateway` program's processes (gwSupervisor.c):
 * the log writer that timestamps every line of -log, and server mode's
 * supervisor that restarts the gateway when it ends.
 *
 * Both fork, so both are called before any thread exists (before the IOC
 * starts); POSIX only. The supervisor and the log writer never start EPICS
 * threads: they are plain processes around the gateway.
 */
#ifndef INC_gwSupervisor_H
#define INC_gwSupervisor_H

#ifdef __cplusplus
extern "C" {
#endif

/* Exit status of a gateway that was asked to end its supervisor too
 * (quitServerFlag). */
#define GW_SUPERVISOR_EXIT_QUIT_SERVER 3
/* The environment variable a supervised gateway finds its supervisor in. */
#define GW_SUPERVISOR_PID_ENV "GATEWAY_SUPERVISOR_PID"
/* Test only: the restart window in seconds instead of 600. */
#define GW_SUPERVISOR_WINDOW_ENV "GATEWAY_TEST_RESTART_WINDOW"
/* Ends of the gateway within the window that stop the supervisor. */
#define GW_SUPERVISOR_MAX_ENDS 11
#define GW_SUPERVISOR_WINDOW 600.0

typedef struct gwSupervisorConfig {
    const char *log;      /* -log file, or NULL: the supervisor's stderr */
    const char *putlog;   /* -putlog file renamed at each start, or NULL */
    double window;        /* seconds; <= 0: GW_SUPERVISOR_WINDOW */
    double restartDelay;  /* seconds between an end and the next start */
} gwSupervisorConfig;

/* Server mode. Returns in each gateway process (0), with stdout and
 * stderr on the log; the calling process becomes the supervisor and never
 * returns from here (it exits: 0 when asked to end, 1 when the gateway
 * ended too often). -1: nothing could be started (errno-style reason
 * printed on stderr). */
int gwSupervise(const gwSupervisorConfig *config);

/* Outside server mode: stdout and stderr of this process go, line by line
 * and timestamped, to path (appended), through a writer process that ends
 * when this process has ended. 0, or -1 (printed on stderr). */
int gwLogToFile(const char *path);

/* Rename path, if it exists and is not empty, to path.YYYYmmdd-HHMMSS
 * (path.YYYYmmdd-HHMMSS-N when that exists). 0 (renamed or nothing to
 * rename) or -1. The new name in renamed (size bytes) when renamed. */
int gwSupervisorKeepOld(const char *path, char *renamed, unsigned size);

/* The timestamp that starts every line of the log: "YYYY-MM-DD
 * HH:MM:SS.mmm " (local time), in out (at least 25 bytes). */
void gwSupervisorStamp(char *out, unsigned size);

#ifdef __cplusplus
}
#endif

#endif /* INC_gwSupervisor_H */
