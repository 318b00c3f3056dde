/* gwSupervisor.c - the log writer and server mode's supervisor of the
 * `gateway` program (gwSupervisor.h).
 *
 * The log: the gateway's stdout and stderr (errlog writes there) are a
 * pipe; its reader stamps each line with the time its first byte came and
 * writes the line with one write(2), so lines of different writers do not
 * mix and nothing the gateway wrote before it crashed is lost.
 *
 * The supervisor: one loop that starts the gateway (fork; the child
 * returns to the caller), then waits in poll(2) for log data and for
 * signals (a self-pipe written by the handlers) and reaps the child with
 * waitpid. A signal to end is passed on as SIGTERM, then SIGKILL after
 * GW_STOP_GRACE seconds; SIGUSR1/SIGUSR2 are passed on. The times of the
 * last ends decide whether to start again.
 *
 * Single-threaded processes; the static signal pipe is the only state
 * shared with the handlers.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "gwSupervisor.h"

#define GW_STOP_GRACE 10.0
#define GW_LINE_MAX 4096u

/* ---------------------------------------------------------------- time */

static double now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

void gwSupervisorStamp(char *out, unsigned size)
{
    struct timespec t;
    struct tm local;
    char seconds[24];

    clock_gettime(CLOCK_REALTIME, &t);
    localtime_r(&t.tv_sec, &local);
    strftime(seconds, sizeof seconds, "%Y-%m-%d %H:%M:%S", &local);
    snprintf(out, size, "%s.%03ld ", seconds, t.tv_nsec / 1000000L);
}

/* ---------------------------------------------------------------- lines */

typedef struct lineWriter {
    int fd;                     /* where the stamped lines go */
    char stamp[32];             /* of the line being gathered */
    char line[GW_LINE_MAX];
    size_t used;
} lineWriter;

static void writeAll(int fd, const char *data, size_t n)
{
    while (n > 0) {
        ssize_t written = write(fd, data, n);
        if (written < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        data += written;
        n -= (size_t)written;
    }
}

/* Write the line gathered so far, with its stamp and a newline. */
static void flushLine(lineWriter *w)
{
    char out[sizeof w->stamp + GW_LINE_MAX + 1];
    size_t stamp = strlen(w->stamp);

    if (w->used == 0)
        return;
    memcpy(out, w->stamp, stamp);
    memcpy(out + stamp, w->line, w->used);
    if (w->line[w->used - 1] != '\n')
        out[stamp + w->used++] = '\n';
    writeAll(w->fd, out, stamp + w->used);
    w->used = 0;
}

static void take(lineWriter *w, const char *data, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (w->used == 0)
            gwSupervisorStamp(w->stamp, sizeof w->stamp);
        w->line[w->used++] = data[i];
        if (data[i] == '\n' || w->used == sizeof w->line)
            flushLine(w);
    }
}

/* A line of the supervisor's own, after whatever a child left unfinished. */
static void say(lineWriter *w, const char *format, ...)
{
    char text[512];
    va_list args;
    int n;

    va_start(args, format);
    n = vsnprintf(text, sizeof text - 1, format, args);
    va_end(args);
    if (n < 0)
        return;
    if ((size_t)n > sizeof text - 2)
        n = (int)sizeof text - 2;
    text[n++] = '\n';
    flushLine(w);
    take(w, text, (size_t)n);
}

/* Read what the pipe has (non-blocking); 0 at its end, else 1. */
static int drain(int fd, lineWriter *w)
{
    char buffer[4096];

    for (;;) {
        ssize_t n = read(fd, buffer, sizeof buffer);
        if (n > 0)
            take(w, buffer, (size_t)n);
        else if (n == 0)
            return 0;
        else if (errno != EINTR)
            return 1;
    }
}

static int openLog(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

/* stdout and stderr of this process to the write end of a log pipe. */
static void logTo(int fd)
{
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    setvbuf(stdout, NULL, _IOLBF, 0);
}

static void setName(const char *name)
{
#ifdef __linux__
    prctl(PR_SET_NAME, name, 0, 0, 0);
#else
    (void)name;
#endif
}

/* ---------------------------------------------------------------- old files */

int gwSupervisorKeepOld(const char *path, char *renamed, unsigned size)
{
    struct stat info;
    char name[1024], stamp[24];
    time_t t = time(NULL);
    struct tm local;
    int n;

    if (!path || stat(path, &info) != 0 || info.st_size == 0)
        return 0;
    localtime_r(&t, &local);
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &local);
    snprintf(name, sizeof name, "%s.%s", path, stamp);
    for (n = 2; access(name, F_OK) == 0 && n < 1000; n++)
        snprintf(name, sizeof name, "%s.%s-%d", path, stamp, n);
    if (access(name, F_OK) == 0 || rename(path, name) != 0)
        return -1;
    if (renamed && size)
        snprintf(renamed, size, "%s", name);
    return 0;
}

/* ---------------------------------------------------------------- log writer */

int gwLogToFile(const char *path)
{
    int fds[2], file;
    pid_t pid;

    file = openLog(path);
    if (file < 0) {
        fprintf(stderr, "gateway: -log: cannot open '%s': %s\n", path, strerror(errno));
        return -1;
    }
    if (pipe(fds) != 0) {
        fprintf(stderr, "gateway: -log: no pipe: %s\n", strerror(errno));
        close(file);
        return -1;
    }
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "gateway: -log: cannot start the log writer: %s\n", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        close(file);
        return -1;
    }
    if (pid == 0) {
        /* the writer: outlives a kill of the gateway's process group long
         * enough to write what the gateway wrote; ends at the pipe's end */
        static lineWriter writer;
        static const int ignored[] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGPIPE};
        unsigned i;

        for (i = 0; i < sizeof ignored / sizeof ignored[0]; i++)
            signal(ignored[i], SIG_IGN);
        setName("gateway-log");
        close(fds[1]);
        writer.fd = file;
        while (drain(fds[0], &writer))
            ;
        flushLine(&writer);
        _exit(0);
    }
    close(fds[0]);
    close(file);
    logTo(fds[1]);
    close(fds[1]);
    return 0;
}

/* ---------------------------------------------------------------- supervisor */

static int signalPipe[2] = {-1, -1};
static const int handled[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2};
#define HANDLED (sizeof handled / sizeof handled[0])

static void onSignal(int number)
{
    int saved = errno;
    unsigned char byte = (unsigned char)number;

    if (write(signalPipe[1], &byte, 1) < 0) {
        /* full: a byte is there already, the loop will look */
    }
    errno = saved;
}

static int nonBlocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);

    return flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0
        || fcntl(fd, F_SETFD, FD_CLOEXEC) != 0 ? -1 : 0;
}

typedef struct supervisor {
    const gwSupervisorConfig *config;
    lineWriter writer;
    int logPipe[2];             /* -1 without -log */
    double window;
    double ends[GW_SUPERVISOR_MAX_ENDS]; /* times of the last ends, a ring */
    unsigned endCount;
} supervisor;

static int catchSignals(void)
{
    struct sigaction action;
    unsigned i;

    if (pipe(signalPipe) != 0 || nonBlocking(signalPipe[0]) != 0
        || nonBlocking(signalPipe[1]) != 0)
        return -1;
    memset(&action, 0, sizeof action);
    action.sa_handler = onSignal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    for (i = 0; i < HANDLED; i++)
        if (sigaction(handled[i], &action, NULL) != 0)
            return -1;
    return 0;
}

/* In a new gateway: the signals as they were, stdout/stderr on the log. */
static void becomeGateway(supervisor *s, pid_t supervisorPid)
{
    char text[16];
    sigset_t none;
    unsigned i;

    for (i = 0; i < HANDLED; i++)
        signal(handled[i], SIG_DFL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    close(signalPipe[0]);
    close(signalPipe[1]);
    if (s->logPipe[1] >= 0) {
        close(s->logPipe[0]);
        logTo(s->logPipe[1]);
        close(s->logPipe[1]);
    }
    if (s->writer.fd > STDERR_FILENO)
        close(s->writer.fd);
    snprintf(text, sizeof text, "%ld", (long)supervisorPid);
    setenv(GW_SUPERVISOR_PID_ENV, text, 1);
}

/* Before each start: keep the old log and putlog under new names. */
static void keepOldFiles(supervisor *s)
{
    char renamed[1100];

    if (s->config->log) {
        renamed[0] = '\0';
        flushLine(&s->writer);
        if (s->writer.fd > STDERR_FILENO)
            close(s->writer.fd);
        if (gwSupervisorKeepOld(s->config->log, renamed, sizeof renamed) != 0)
            renamed[0] = '\0';
        s->writer.fd = openLog(s->config->log);
        if (s->writer.fd < 0)
            s->writer.fd = STDERR_FILENO;
        if (renamed[0])
            say(&s->writer, "gateway: the previous log is %s", renamed);
    }
    if (s->config->putlog) {
        renamed[0] = '\0';
        if (gwSupervisorKeepOld(s->config->putlog, renamed, sizeof renamed) != 0)
            say(&s->writer, "gateway: cannot rename the put log %s: %s", s->config->putlog,
                strerror(errno));
        else if (renamed[0])
            say(&s->writer, "gateway: the previous put log is %s", renamed);
    }
}

/* Signals that came: 1 when one asks the supervisor to end. */
static int takeSignals(supervisor *s, pid_t child)
{
    unsigned char bytes[64];
    ssize_t n, i;
    int end = 0;

    while ((n = read(signalPipe[0], bytes, sizeof bytes)) > 0)
        for (i = 0; i < n; i++) {
            int number = bytes[i];
            if (number == SIGUSR1 || number == SIGUSR2) {
                if (child > 0)
                    kill(child, number);
            }
            else if (number != SIGCHLD) {
                say(&s->writer, "gateway: the supervisor (pid %ld) got signal %d; it ends",
                    (long)getpid(), number);
                end = 1;
            }
        }
    return end;
}

/* Wait for the child to end; 1 when the supervisor was asked to end. */
static int watch(supervisor *s, pid_t child, int *status)
{
    int stopping = 0;
    double killAt = 0.0;

    for (;;) {
        struct pollfd fds[2];
        unsigned n = 0;

        fds[n].fd = signalPipe[0];
        fds[n++].events = POLLIN;
        if (s->logPipe[0] >= 0) {
            fds[n].fd = s->logPipe[0];
            fds[n++].events = POLLIN;
        }
        poll(fds, n, stopping ? 100 : 1000);
        if (s->logPipe[0] >= 0)
            drain(s->logPipe[0], &s->writer);
        if (takeSignals(s, child) && !stopping) {
            stopping = 1;
            killAt = now() + GW_STOP_GRACE;
            kill(child, SIGTERM);
        }
        if (waitpid(child, status, WNOHANG) == child) {
            if (s->logPipe[0] >= 0)
                drain(s->logPipe[0], &s->writer);
            return stopping;
        }
        if (stopping && killAt > 0.0 && now() > killAt) {
            say(&s->writer, "gateway: pid %ld did not end in %g s; killing it", (long)child,
                GW_STOP_GRACE);
            kill(child, SIGKILL);
            killAt = 0.0;
        }
    }
}

/* Wait delay seconds (the pause before a restart); 1 when asked to end. */
static int waitBeforeRestart(supervisor *s, double delay)
{
    double until = now() + delay;

    for (;;) {
        struct pollfd fd;
        double left = until - now();

        if (left <= 0.0)
            return 0;
        fd.fd = signalPipe[0];
        fd.events = POLLIN;
        poll(&fd, 1, (int)(left * 1000.0) + 1);
        if (takeSignals(s, 0))
            return 1;
    }
}

/* Record an end; the number of ends within the window, this one included. */
static unsigned countEnd(supervisor *s)
{
    double t = now();
    unsigned i, within = 0;

    s->ends[s->endCount++ % GW_SUPERVISOR_MAX_ENDS] = t;
    for (i = 0; i < GW_SUPERVISOR_MAX_ENDS && i < s->endCount; i++)
        if (t - s->ends[i] <= s->window)
            within++;
    return within;
}

static void describeEnd(supervisor *s, pid_t child, int status)
{
    if (WIFEXITED(status))
        say(&s->writer, "gateway: pid %ld exited with status %d", (long)child,
            WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        say(&s->writer, "gateway: pid %ld was killed by signal %d", (long)child,
            WTERMSIG(status));
    else
        say(&s->writer, "gateway: pid %ld ended (status 0x%x)", (long)child, status);
}

static void finish(supervisor *s, int code)
{
    flushLine(&s->writer);
    exit(code);
}

int gwSupervise(const gwSupervisorConfig *config)
{
    static supervisor s;
    const char *window = getenv(GW_SUPERVISOR_WINDOW_ENV);
    pid_t self = getpid();

    memset(&s, 0, sizeof s);
    s.config = config;
    s.writer.fd = STDERR_FILENO;
    s.logPipe[0] = s.logPipe[1] = -1;
    s.window = config->window > 0.0 ? config->window : GW_SUPERVISOR_WINDOW;
    if (window && atof(window) > 0.0)
        s.window = atof(window);
    if (catchSignals() != 0
        || (config->log && (pipe(s.logPipe) != 0 || nonBlocking(s.logPipe[0]) != 0))) {
        fprintf(stderr, "gateway: -server: cannot set up the supervisor: %s\n",
                strerror(errno));
        return -1;
    }
    if (s.logPipe[1] >= 0)
        fcntl(s.logPipe[1], F_SETFD, 0);
    for (;;) {
        pid_t child;
        int status = 0;
        unsigned within;

        keepOldFiles(&s);
        fflush(NULL);
        child = fork();
        if (child == 0) {
            becomeGateway(&s, self);
            return 0;
        }
        if (child < 0) {
            say(&s.writer, "gateway: cannot start a gateway: %s", strerror(errno));
            status = 1 << 8;
        }
        else {
            say(&s.writer, "gateway: the supervisor (pid %ld) started the gateway pid %ld",
                (long)self, (long)child);
            if (watch(&s, child, &status)) {
                describeEnd(&s, child, status);
                finish(&s, 0);
            }
            describeEnd(&s, child, status);
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) == GW_SUPERVISOR_EXIT_QUIT_SERVER) {
            say(&s.writer, "gateway: quitServerFlag: the supervisor ends too");
            finish(&s, 0);
        }
        within = countEnd(&s);
        if (within >= GW_SUPERVISOR_MAX_ENDS) {
            say(&s.writer, "gateway: %u ends within %g s; the supervisor stops", within,
                s.window);
            finish(&s, 1);
        }
        say(&s.writer, "gateway: starting a new one (end %u within %g s)", within, s.window);
        if (waitBeforeRestart(&s, config->restartDelay))
            finish(&s, 0);
    }
}
