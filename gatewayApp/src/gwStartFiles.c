/* gwStartFiles.c - the texts of gateway.killer and gateway.restart, and
 * writing them (gwStartFiles.h).
 *
 * Every word of the command line is written single-quoted, so a path
 * with spaces or quotes starts the same program again.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gwStartFiles.h"
#include "gwVersion.h"

/* A word as the shell reads it back: 'it'\''s'. */
static void quoted(FILE *out, const char *word)
{
    fputc('\'', out);
    for (; *word; word++) {
        if (*word == '\'')
            fputs("'\\''", out);
        else
            fputc(*word, out);
    }
    fputc('\'', out);
}

static void commandLine(const gwStartFilesInfo *info, FILE *out)
{
    int i;

    quoted(out, info->program);
    for (i = 0; i < info->argc; i++) {
        fputc(' ', out);
        quoted(out, info->argv[i]);
    }
}

static void setting(FILE *out, const char *name, const char *value)
{
    fprintf(out, "# %-16s %s\n", name, value ? value : "(none)");
}

static void settings(const gwStartFilesInfo *info, FILE *out)
{
    char version[128], started[64];
    time_t t = time(NULL);
    struct tm local;

    gwVersionFormat(version, sizeof version);
    localtime_r(&t, &local);
    strftime(started, sizeof started, "%Y-%m-%d %H:%M:%S", &local);
    fprintf(out, "# %s\n", version);
    setting(out, "started", started);
    fprintf(out, "# %-16s ", "command line");
    commandLine(info, out);
    fputc('\n', out);
    setting(out, "started in", info->startDirectory);
    setting(out, "home", info->home);
    fprintf(out, "# %-16s %ld\n", "gateway pid", info->pid);
    if (info->supervisorPid)
        fprintf(out, "# %-16s %ld (server mode)\n", "supervisor pid", info->supervisorPid);
    else
        setting(out, "supervisor pid", "(not in server mode)");
    setting(out, "prefix", info->prefix);
    if (info->serverPort)
        fprintf(out, "# %-16s %u\n", "server port", info->serverPort);
    setting(out, "pvlist", info->pvlist);
    setting(out, "access", info->access);
    setting(out, "log", info->log);
    setting(out, "putlog", info->putlog);
    setting(out, "report", info->report);
    setting(out, "command", info->command);
}

void gwStartFilesKiller(const gwStartFilesInfo *info, FILE *out)
{
    long target = info->supervisorPid ? info->supervisorPid : info->pid;

    fprintf(out, "#!/bin/sh\n"
                 "# gateway.killer: run it to end the %s.\n",
            info->supervisorPid ? "supervisor (server mode) and its gateway" : "gateway");
    settings(info, out);
    fprintf(out, "#\n"
                 "# kill -USR1 %ld    run the command file\n"
                 "# kill -USR2 %ld    write the process variable report (report 2)\n"
                 "# kill %ld          end the gateway%s\n",
            info->pid, info->pid, info->pid,
            info->supervisorPid ? " (the supervisor starts a new one)" : "");
    if (info->supervisorPid)
        fprintf(out, "# kill %ld          end the supervisor and the gateway\n",
                info->supervisorPid);
    fprintf(out, "kill %ld\n", target);
}

void gwStartFilesRestart(const gwStartFilesInfo *info, FILE *out)
{
    fprintf(out, "#!/bin/sh\n");
    if (info->supervisorPid) {
        fprintf(out, "# gateway.restart: end the gateway pid %ld; its supervisor (pid %ld)\n"
                     "# starts a new one.\n"
                     "kill %ld\n", info->pid, info->supervisorPid, info->pid);
        return;
    }
    fprintf(out, "# gateway.restart: end the gateway pid %ld, wait for it, and start the\n"
                 "# same command line again.\n", info->pid);
    settings(info, out);
    fprintf(out, "kill %ld 2>/dev/null\n"
                 "i=0\n"
                 "while kill -0 %ld 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done\n"
                 "cd ", info->pid, info->pid);
    quoted(out, info->startDirectory);
    fprintf(out, " || exit 1\nnohup ");
    commandLine(info, out);
    fprintf(out, " </dev/null >/dev/null 2>&1 &\n");
}

static int writeScript(const char *directory, const char *name, const gwStartFilesInfo *info,
                       void (*text)(const gwStartFilesInfo *, FILE *))
{
    char path[1024], temporary[1100];
    FILE *out;
    int failed;

    snprintf(path, sizeof path, "%s/%s", directory, name);
    snprintf(temporary, sizeof temporary, "%s.%ld.new", path, info->pid);
    out = fopen(temporary, "w");
    if (!out)
        return -1;
    text(info, out);
    failed = ferror(out);
    if (fclose(out) != 0 || failed || chmod(temporary, 0755) != 0
        || rename(temporary, path) != 0) {
        int saved = errno;
        remove(temporary);
        errno = saved;
        return -1;
    }
    return 0;
}

int gwStartFilesWrite(const gwStartFilesInfo *info, const char *directory)
{
    if (writeScript(directory, "gateway.killer", info, gwStartFilesKiller) != 0
        || writeScript(directory, "gateway.restart", info, gwStartFilesRestart) != 0)
        return -1;
    return 0;
}
