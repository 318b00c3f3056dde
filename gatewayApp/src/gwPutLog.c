/* gwPutLog.c - the put log (gwPutLog.h): the text of one put, the file it
 * is appended to (created again at its path when moved away or removed),
 * and the messages to a log server through Base's logClient.
 *
 * Threads: any thread writes. Each log has one mutex, held by
 * gwPutLogWrite around the whole line (the check of the path, the write(),
 * the counters and logClientSend) and by gwPutLogGetCounters. Under it only
 * Base's logClient is entered, which takes its own mutex and calls nothing
 * back: for the gateway the log's mutex is a leaf. Failures are handed to
 * errlogPrintf after the mutex is given back.
 *
 * The file is handled with POSIX calls (open, stat, fstat, write, close):
 * Unix only, like the rest of the gateway's I/O.
 */
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <db_access.h>
#include <epicsMutex.h>
#include <epicsTime.h>
#include <epicsTypes.h>
#include <errlog.h>
#include <logClient.h>
#include <osiSock.h>

#include "gwPutLog.h"

/* C11's digits that always read back as the same float and double. */
#ifndef FLT_DECIMAL_DIG
#define FLT_DECIMAL_DIG 9
#endif
#ifndef DBL_DECIMAL_DIG
#define DBL_DECIMAL_DIG 17
#endif

/* The longest text of one value, ",..." of a cut array included. */
#define GW_PUT_LOG_VALUE_MAX 32000u
/* The longest line, its newline included (file and log server). */
#define GW_PUT_LOG_LINE_MAX 65536u
/* The longest text of one array element: a string of MAX_STRING_SIZE
 * control characters, each written \xHH. */
#define GW_PUT_LOG_ELEMENT_MAX (4u * MAX_STRING_SIZE + 1u)
/* The longest errlog message about a failure. */
#define GW_PUT_LOG_REPORT_MAX 512u

static const char gwPutLogMore[] = ",...";
static const char gwPutLogFileTime[] = "%b %d %H:%M:%S";
static const char gwPutLogServerTime[] = "%d-%b-%y %H:%M:%S";

struct gwPutLog {
    epicsMutexId lock;
    char *path;                /* NULL: no file */
    int fd;                    /* -1: closed (the last open failed) */
    dev_t device;              /* of fd: the path still names it? */
    ino_t inode;
    int reported;              /* a failure was reported, no line written since */
    logClientId server;        /* NULL: no log server */
    char *line;                /* [GW_PUT_LOG_LINE_MAX + 1], under lock */
    gwPutLogCounters counters; /* under lock */
};

/* ---------------------------------------------------------------- text */

/* A bounded text: bytes[size] holds what fits, NUL-terminated; length
 * counts all that was appended (it may pass size - 1). */
typedef struct gwPutLogText {
    char *bytes;
    size_t size;
    size_t length;
} gwPutLogText;

static void textAppend(gwPutLogText *text, const char *bytes, size_t length)
{
    if (text->size > 0 && text->length < text->size - 1) {
        size_t room = text->size - 1 - text->length;
        size_t n = length < room ? length : room;
        memcpy(text->bytes + text->length, bytes, n);
        text->bytes[text->length + n] = '\0';
    }
    text->length += length;
}

static void textAppendString(gwPutLogText *text, const char *string)
{
    textAppend(text, string, strlen(string));
}

/* At most limit bytes of raw into out[GW_PUT_LOG_ELEMENT_MAX], stopping at
 * a NUL; control characters are written \xHH so that no value or name can
 * break a line. Returns the length written. */
static size_t escapeInto(char *out, const char *raw, size_t limit)
{
    static const char hex[] = "0123456789abcdef";
    size_t i, n = 0;

    for (i = 0; i < limit && raw[i] != '\0'; i++) {
        unsigned char c = (unsigned char)raw[i];
        if (c < 0x20 || c == 0x7f) {
            out[n++] = '\\';
            out[n++] = 'x';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 0xf];
        } else {
            out[n++] = (char)c;
        }
    }
    out[n] = '\0';
    return n;
}

/* A name (user, host, PV), escaped; NULL or "": fallback. */
static void textAppendName(gwPutLogText *text, const char *name, const char *fallback)
{
    char piece[GW_PUT_LOG_ELEMENT_MAX];

    if (!name || !*name) {
        textAppendString(text, fallback);
        return;
    }
    while (*name) {
        size_t taken = strnlen(name, MAX_STRING_SIZE);
        textAppend(text, piece, escapeInto(piece, name, taken));
        name += taken;
    }
}

static void textAppendTime(gwPutLogText *text, const char *format, const epicsTimeStamp *when)
{
    char stamp[64];
    size_t n = epicsTimeToStrftime(stamp, sizeof stamp, format, when);

    textAppend(text, n ? stamp : "?", n ? n : 1);
}

/* ---------------------------------------------------------------- values */

/* The shortest %g text of x that reads back as x (from the type's digits
 * up to the digits that always round-trip). */
static size_t formatDouble(char *out, double x)
{
    int precision;
    size_t n = 0;

    for (precision = DBL_DIG; precision <= DBL_DECIMAL_DIG; precision++) {
        n = (size_t)snprintf(out, GW_PUT_LOG_ELEMENT_MAX, "%.*g", precision, x);
        if (x != x || strtod(out, NULL) == x)
            break;
    }
    return n;
}

static size_t formatFloat(char *out, float x)
{
    int precision;
    size_t n = 0;

    for (precision = FLT_DIG; precision <= FLT_DECIMAL_DIG; precision++) {
        n = (size_t)snprintf(out, GW_PUT_LOG_ELEMENT_MAX, "%.*g", precision, (double)x);
        if (x != x || strtof(out, NULL) == x)
            break;
    }
    return n;
}

/* The text of one element of the given type into out; the element may be
 * unaligned. Returns its length. */
static size_t formatElement(char *out, epicsType type, const char *element)
{
    union {
        epicsUInt8 u8;
        epicsInt16 i16;
        epicsUInt16 u16;
        epicsInt32 i32;
        epicsFloat32 f32;
        epicsFloat64 f64;
    } v;

    switch (type) {
    case epicsOldStringT:
        return escapeInto(out, element, MAX_STRING_SIZE);
    case epicsUInt8T:
        memcpy(&v.u8, element, sizeof v.u8);
        return (size_t)snprintf(out, GW_PUT_LOG_ELEMENT_MAX, "%u", (unsigned)v.u8);
    case epicsInt16T:
        memcpy(&v.i16, element, sizeof v.i16);
        return (size_t)snprintf(out, GW_PUT_LOG_ELEMENT_MAX, "%d", (int)v.i16);
    case epicsUInt16T:
    case epicsEnum16T:
        memcpy(&v.u16, element, sizeof v.u16);
        return (size_t)snprintf(out, GW_PUT_LOG_ELEMENT_MAX, "%u", (unsigned)v.u16);
    case epicsInt32T:
        memcpy(&v.i32, element, sizeof v.i32);
        return (size_t)snprintf(out, GW_PUT_LOG_ELEMENT_MAX, "%ld", (long)v.i32);
    case epicsFloat32T:
        memcpy(&v.f32, element, sizeof v.f32);
        return formatFloat(out, v.f32);
    case epicsFloat64T:
        memcpy(&v.f64, element, sizeof v.f64);
        return formatDouble(out, v.f64);
    default:
        out[0] = '?';
        out[1] = '\0';
        return 1;
    }
}

/* The element type of a DBR type of db_access.h, or -1 when it has none
 * this file writes. */
static int elementType(short dbrType)
{
    if (!dbr_type_is_valid(dbrType))
        return -1;
    switch (DBR_XXXXToEpicsType[dbrType]) {
    case epicsOldStringT:
    case epicsUInt8T:
    case epicsInt16T:
    case epicsUInt16T:
    case epicsEnum16T:
    case epicsInt32T:
    case epicsFloat32T:
    case epicsFloat64T:
        return (int)DBR_XXXXToEpicsType[dbrType];
    default:
        return -1;
    }
}

/* One value: its elements separated by ',', in at most
 * GW_PUT_LOG_VALUE_MAX bytes. An element that does not fit, with room
 * kept for ",..." while more follow, ends the value with ",...": no
 * element past that one is read, whatever the count says. */
static void textAppendValue(gwPutLogText *text, const gwPutLogValue *value)
{
    char piece[GW_PUT_LOG_ELEMENT_MAX + 1];
    const char *element;
    unsigned long i;
    size_t used = 0, size;
    int type;

    if (!value || !value->value || (type = elementType(value->dbrType)) < 0) {
        textAppendString(text, "?");
        return;
    }
    /* dbr_value_ptr, without casting away const */
    element = (const char *)value->value + dbr_value_offset[value->dbrType];
    size = dbr_value_size[value->dbrType];
    for (i = 0; i < value->count; i++, element += size) {
        size_t n = 0, reserve = i + 1 < value->count ? sizeof gwPutLogMore - 1 : 0;
        if (i > 0)
            piece[n++] = ',';
        n += formatElement(piece + n, (epicsType)type, element);
        if (used + n + reserve > GW_PUT_LOG_VALUE_MAX) {
            textAppendString(text, gwPutLogMore);
            return;
        }
        textAppend(text, piece, n);
        used += n;
    }
}

/* ---------------------------------------------------------------- lines */

size_t gwPutLogFormat(char *buffer, size_t size, const epicsTimeStamp *when,
                      const char *user, const char *host, const char *pvName,
                      const gwPutLogValue *newValue, const gwPutLogValue *oldValue)
{
    gwPutLogText text = { buffer, buffer ? size : 0, 0 };
    epicsTimeStamp now;

    if (text.size)
        buffer[0] = '\0';
    if (!when) {
        epicsTimeGetCurrent(&now);
        when = &now;
    }
    textAppendTime(&text, gwPutLogFileTime, when);
    textAppendString(&text, " ");
    textAppendName(&text, user, "unknown");
    textAppendString(&text, "@");
    textAppendName(&text, host, "unknown");
    textAppendString(&text, " ");
    textAppendName(&text, pvName, "?");
    textAppendString(&text, " ");
    textAppendValue(&text, newValue);
    textAppendString(&text, " old=");
    textAppendValue(&text, oldValue);
    return text.length;
}

/* The log server's message (caPutLog's text format), without newline. */
static size_t formatServerMessage(char *buffer, size_t size, const epicsTimeStamp *when,
                                  const char *user, const char *host, const char *pvName,
                                  const gwPutLogValue *newValue, const gwPutLogValue *oldValue)
{
    gwPutLogText text = { buffer, size, 0 };

    buffer[0] = '\0';
    textAppendTime(&text, gwPutLogServerTime, when);
    textAppendString(&text, " ");
    textAppendName(&text, host, "unknown");
    textAppendString(&text, " ");
    textAppendName(&text, user, "unknown");
    textAppendString(&text, " ");
    textAppendName(&text, pvName, "?");
    textAppendString(&text, " new=");
    textAppendValue(&text, newValue);
    textAppendString(&text, " old=");
    textAppendValue(&text, oldValue);
    return text.length;
}

/* The line in log->line ends with its newline (cut to the longest line). */
static size_t endLine(gwPutLog *log, size_t length)
{
    if (length > GW_PUT_LOG_LINE_MAX - 1)
        length = GW_PUT_LOG_LINE_MAX - 1;
    log->line[length++] = '\n';
    log->line[length] = '\0';
    return length;
}

/* ---------------------------------------------------------------- file */

/* Open the path for appending; 0 or the errno. */
static int fileOpen(gwPutLog *log)
{
    struct stat status;
    int fd = open(log->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    int error;

    if (fd < 0)
        return errno;
    if (fstat(fd, &status) != 0) {
        error = errno;
        close(fd);
        return error;
    }
    log->fd = fd;
    log->device = status.st_dev;
    log->inode = status.st_ino;
    return 0;
}

/* Is the open file still the one at the path? If not (moved away,
 * removed, or the last open failed), open the path again. 0 or the
 * errno of the open. */
static int fileCheck(gwPutLog *log)
{
    struct stat status;
    int error;

    if (log->fd >= 0) {
        if (stat(log->path, &status) == 0 && status.st_dev == log->device
                && status.st_ino == log->inode)
            return 0;
        close(log->fd);
        log->fd = -1;
    }
    error = fileOpen(log);
    if (error == 0)
        log->counters.reopens++;
    return error;
}

/* All of bytes[length] in write() calls; 0 or the errno. */
static int fileWrite(int fd, const char *bytes, size_t length)
{
    while (length > 0) {
        ssize_t n = write(fd, bytes, length);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno;
        if (n == 0)
            return EIO;
        bytes += n;
        length -= (size_t)n;
    }
    return 0;
}

/* Append log->line[length] to the file, counting it. A failure is put in
 * report[GW_PUT_LOG_REPORT_MAX] when none has been reported since the last
 * line written. */
static void fileWriteLine(gwPutLog *log, size_t length, char *report)
{
    const char *what = "open";
    int error = fileCheck(log);

    if (error == 0) {
        what = "write to";
        error = fileWrite(log->fd, log->line, length);
    }
    if (error == 0) {
        log->counters.lines++;
        log->reported = 0;
        return;
    }
    log->counters.failures++;
    if (!log->reported) {
        log->reported = 1;
        snprintf(report, GW_PUT_LOG_REPORT_MAX, "put log: cannot %s %s: %s (lines are lost "
                 "until it works again)", what, log->path, strerror(error));
    }
}

/* ---------------------------------------------------------------- the log */

static void setError(char *error, size_t errorSize, const char *reason, const char *what,
                     const char *detail)
{
    if (error && errorSize)
        snprintf(error, errorSize, "%s %s%s%s", reason, what, detail ? ": " : "",
                 detail ? detail : "");
}

/* The log server's address from "host:port", or -1. */
static int serverAddress(const char *server, struct sockaddr_in *address)
{
    memset(address, 0, sizeof *address);
    if (!strchr(server, ':') || aToIPAddr(server, 0, address) != 0 || address->sin_port == 0)
        return -1;
    return 0;
}

gwPutLog *gwPutLogOpen(const char *path, const char *server, char *error, size_t errorSize)
{
    struct sockaddr_in address;
    gwPutLog *log;
    int status;

    if (server && serverAddress(server, &address) != 0) {
        setError(error, errorSize, "bad log server address", server, "not host:port");
        return NULL;
    }
    log = calloc(1, sizeof *log);
    if (!log || !(log->line = malloc(GW_PUT_LOG_LINE_MAX + 1))
            || !(log->lock = epicsMutexCreate())
            || (path && !(log->path = strdup(path)))) {
        setError(error, errorSize, "put log:", "out of memory", NULL);
        gwPutLogClose(log);
        return NULL;
    }
    log->fd = -1;
    if (path && (status = fileOpen(log)) != 0) {
        setError(error, errorSize, "cannot open put log", path, strerror(status));
        gwPutLogClose(log);
        return NULL;
    }
    if (server && !(log->server = logClientCreate(address.sin_addr, ntohs(address.sin_port)))) {
        setError(error, errorSize, "cannot create the log client for", server, NULL);
        gwPutLogClose(log);
        return NULL;
    }
    return log;
}

void gwPutLogClose(gwPutLog *log)
{
    if (!log)
        return;
    /* Base 7.0.3.1's logClient has no destroy: the client stays, idle,
     * until Base closes it at exit. */
    if (log->server)
        logClientFlush(log->server);
    if (log->fd >= 0)
        close(log->fd);
    if (log->lock)
        epicsMutexDestroy(log->lock);
    free(log->path);
    free(log->line);
    free(log);
}

void gwPutLogWrite(gwPutLog *log, const epicsTimeStamp *when, const char *user,
                   const char *host, const char *pvName, const gwPutLogValue *newValue,
                   const gwPutLogValue *oldValue)
{
    char report[GW_PUT_LOG_REPORT_MAX];
    epicsTimeStamp now;
    size_t length;

    if (!log)
        return;
    if (!when) {
        epicsTimeGetCurrent(&now);
        when = &now;
    }
    report[0] = '\0';
    epicsMutexMustLock(log->lock);
    if (log->path) {
        length = gwPutLogFormat(log->line, GW_PUT_LOG_LINE_MAX, when, user, host, pvName,
                                newValue, oldValue);
        fileWriteLine(log, endLine(log, length), report);
    }
    if (log->server) {
        length = formatServerMessage(log->line, GW_PUT_LOG_LINE_MAX, when, user, host, pvName,
                                     newValue, oldValue);
        endLine(log, length);
        logClientSend(log->server, log->line);
        log->counters.sent++;
    }
    epicsMutexUnlock(log->lock);
    if (report[0])
        errlogPrintf("%s\n", report);
}

void gwPutLogGetCounters(gwPutLog *log, gwPutLogCounters *counters)
{
    if (!log) {
        memset(counters, 0, sizeof *counters);
        return;
    }
    epicsMutexMustLock(log->lock);
    *counters = log->counters;
    epicsMutexUnlock(log->lock);
}
