/* gwPutLog.h - the put log: one line per logged write, to a file in the
 * classic gateway's format and, optionally, to a log server in caPutLog's
 * text format through Base's logClient (gwPutLog.c).
 *
 * File line (the classic gateway's, so existing parsers keep working):
 *     <Mon DD HH:MM:SS> <user>@<host> <PV> <new> old=<old>\n
 * with the local time of the put; an unknown user or host is written
 * "unknown" (an unknown PV name "?"). Values are written as caput/caget
 * show them: numbers with %g-style precision (integers as integers;
 * floats and doubles with the fewest digits, %.6g to %.9g and %.15g to
 * %.17g, that read back as the same value: 0.1, not 0.10000000000000001),
 * chars as unsigned numbers, enums (and DBR_PUT_ACKT/ACKS) as their index,
 * strings (and DBR_STSACK_STRING/DBR_CLASS_NAME) as they are, at most
 * MAX_STRING_SIZE bytes each; an array in full, its elements separated by
 * ',' (no spaces; an empty array is written as nothing); old=? when the
 * old value is not known, and ? for a type that is not one of db_access.h.
 * Control characters (below 0x20, and 0x7f) in values and names are
 * written \xHH, so that no put can break or forge a line.
 *
 * Bounds: the count is never trusted further than the text it makes. A
 * value is written in at most 32000 bytes: an array whose elements do not
 * fit ends, after the last that fits, with ",..." (no element past the
 * first that does not fit is read). A line is at most 64 KiB, its newline included; only names of
 * absurd length can make it longer, and it is then cut there.
 *
 * Log server message (caPutLog's default text format), same values:
 *     <DD-Mon-YY HH:MM:SS> <host> <user> <PV> new=<new> old=<old>\n
 * given to Base's logClient (logClientSend), which buffers and sends from
 * its own thread, connecting again every few seconds while the server is
 * away. Base 7.0.3.1's logClient has no destroy: gwPutLogClose flushes the
 * client and keeps it (idle) until Base closes it at exit. While the server
 * is away and logClient's 16 KiB buffer is full, Base drops each message
 * with a "messages ... are lost" line on stderr (its own, not errlog).
 *
 * The file is opened for appending and each line is one write() of the
 * whole line under the log's lock: lines are never interleaved or split
 * between writers. Before each line the path is checked: when the file
 * has been moved away or removed (logrotate), it is created again at the
 * path and the line goes there; nothing is lost. A failing write or open
 * (full disk, no permission) is reported once through errlog, and again
 * only after a line has been written since; the caller's put is never
 * held up or refused by the log.
 *
 * Threads: any thread may write; the log's lock is a leaf.
 */
#ifndef INC_gwPutLog_H
#define INC_gwPutLog_H

#include <stddef.h>

#include <epicsTime.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gwPutLog gwPutLog;

/* A put log writing to path (may be NULL: no file) and, when server is
 * not NULL, to the log server "host:port" (a name or dotted address).
 * NULL with the reason in error[errorSize] when the file cannot be opened
 * now or the server address does not parse or resolve. */
gwPutLog *gwPutLogOpen(const char *path, const char *server, char *error, size_t errorSize);
/* Flush and close. NULL is ignored. No write may be running. */
void gwPutLogClose(gwPutLog *log);

/* One value: a DBR type of db_access.h (plain, STS, TIME, GR or CTRL:
 * only the value part is written), its element count and the buffer in
 * host order. value NULL: unknown ("?"). */
typedef struct gwPutLogValue {
    short dbrType;
    unsigned long count;
    const void *value;
} gwPutLogValue;

/* Log one put. when NULL: now. user/host NULL or "": "unknown". */
void gwPutLogWrite(gwPutLog *log, const epicsTimeStamp *when, const char *user,
                   const char *host, const char *pvName, const gwPutLogValue *newValue,
                   const gwPutLogValue *oldValue);

/* The line gwPutLogWrite writes to the file, without the newline, into
 * buffer[size] (cut at size - 1 when longer); returns the full length.
 * For tests and for gwAsTest-style probes. */
size_t gwPutLogFormat(char *buffer, size_t size, const epicsTimeStamp *when,
                      const char *user, const char *host, const char *pvName,
                      const gwPutLogValue *newValue, const gwPutLogValue *oldValue);

/* Lines written to the file and failures since open (for reports). */
typedef struct gwPutLogCounters {
    unsigned long lines;
    unsigned long failures;
    unsigned long reopens;
    unsigned long sent;          /* messages given to the log server */
} gwPutLogCounters;
void gwPutLogGetCounters(gwPutLog *log, gwPutLogCounters *counters);

#ifdef __cplusplus
}
#endif

#endif /* INC_gwPutLog_H */
