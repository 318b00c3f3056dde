/* gwRawCaClient.c - a minimal Channel Access client that prints raw bytes.
 *
 * Test tool of the fidelity tests (test/test_fidelity.py): it speaks the CA
 * protocol directly over one TCP connection (no libca, no name search) and
 * prints every reply it is interested in as one line with the header fields
 * and the payload in hex, so two servers can be compared byte for byte.
 *
 *   gwRawCaClient get HOST:PORT PV TYPES COUNTS
 *   gwRawCaClient monitor HOST:PORT PV TYPE COUNT MASK NUPDATES TIMEOUT
 *
 * Single-threaded; everything read from the socket is bounds-checked.
 * Exit status: 0 done, 1 usage, 2 protocol error, lost connection or
 * timeout, 3 the server refused the channel.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <caProto.h>
#include <epicsTime.h>
#include <epicsTypes.h>
#include <osiSock.h>

#define GW_MINOR_VERSION 13u
#define GW_HEADER_SIZE 16u
#define GW_EXTENDED_HEADER_SIZE 24u
#define GW_MAX_PAYLOAD (64u * 1024u * 1024u)
#define GW_REQUEST_TIMEOUT 5.0
#define GW_MAX_LIST 64
#define GW_LAST_READ_TYPE 38
#define GW_EXIT_USAGE 1
#define GW_EXIT_PROTOCOL 2
#define GW_EXIT_NO_CHANNEL 3

/* One message as read from the stream; payload points into the buffer of
 * the connection and is valid until the next read. */
typedef struct gwMessage {
    unsigned command;
    unsigned dataType;
    epicsUInt32 count;
    epicsUInt32 p1;
    epicsUInt32 p2;
    epicsUInt32 payloadSize;
    int extended;
    const unsigned char *payload;
} gwMessage;

/* The TCP circuit and its receive buffer (buffer owned, freed by close). */
typedef struct gwConnection {
    SOCKET sock;
    unsigned char *buffer;
    size_t capacity;
    size_t filled;
    size_t consumed;
} gwConnection;

/* The channel the commands work on. */
typedef struct gwChannel {
    const char *name;
    epicsUInt32 cid;
    epicsUInt32 sid;
    unsigned nativeType;
    epicsUInt32 nativeCount;
} gwChannel;

static void fail(const char *format, ...)
{
    va_list args;

    va_start(args, format);
    fprintf(stderr, "gwRawCaClient: ");
    vfprintf(stderr, format, args);
    fprintf(stderr, "\n");
    va_end(args);
}

static double secondsNow(void)
{
    return epicsMonotonicGet() * 1e-9;
}

static epicsUInt16 getU16(const unsigned char *p)
{
    return (epicsUInt16)((p[0] << 8) | p[1]);
}

static epicsUInt32 getU32(const unsigned char *p)
{
    return ((epicsUInt32)p[0] << 24) | ((epicsUInt32)p[1] << 16) |
           ((epicsUInt32)p[2] << 8) | (epicsUInt32)p[3];
}

static unsigned char *putU16(unsigned char *p, epicsUInt16 value)
{
    p[0] = (unsigned char)(value >> 8);
    p[1] = (unsigned char)value;
    return p + 2;
}

static unsigned char *putU32(unsigned char *p, epicsUInt32 value)
{
    p[0] = (unsigned char)(value >> 24);
    p[1] = (unsigned char)(value >> 16);
    p[2] = (unsigned char)(value >> 8);
    p[3] = (unsigned char)value;
    return p + 4;
}

/* ------------------------------------------------------------ connection */

static int connectionOpen(gwConnection *conn, const char *address)
{
    struct sockaddr_in peer;
    char text[64];

    memset(conn, 0, sizeof *conn);
    conn->sock = INVALID_SOCKET;
    if (aToIPAddr(address, CA_SERVER_PORT, &peer) != 0) {
        fail("bad address \"%s\" (expected HOST:PORT)", address);
        return -1;
    }
    conn->sock = epicsSocketCreate(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    if (conn->sock == INVALID_SOCKET) {
        epicsSocketConvertErrnoToString(text, sizeof text);
        fail("cannot create a socket: %s", text);
        return -1;
    }
    if (connect(conn->sock, (struct sockaddr *)&peer, sizeof peer) != 0) {
        epicsSocketConvertErrnoToString(text, sizeof text);
        fail("cannot connect to %s: %s", address, text);
        return -1;
    }
    conn->capacity = 64u * 1024u;
    conn->buffer = malloc(conn->capacity);
    if (!conn->buffer) {
        fail("out of memory");
        return -1;
    }
    return 0;
}

static void connectionClose(gwConnection *conn)
{
    if (conn->sock != INVALID_SOCKET)
        epicsSocketDestroy(conn->sock);
    free(conn->buffer);
    conn->buffer = NULL;
}

static int connectionSend(gwConnection *conn, const unsigned char *data, size_t size)
{
    while (size > 0) {
        int sent = send(conn->sock, (const char *)data, (int)size, 0);
        if (sent <= 0) {
            char text[64];
            epicsSocketConvertErrnoToString(text, sizeof text);
            fail("send failed: %s", text);
            return -1;
        }
        data += sent;
        size -= (size_t)sent;
    }
    return 0;
}

/* Send one message; the header is extended when size or count need it. */
static int sendMessage(gwConnection *conn, unsigned command, unsigned dataType,
                       epicsUInt32 count, epicsUInt32 p1, epicsUInt32 p2,
                       const void *payload, epicsUInt32 payloadSize)
{
    epicsUInt32 padded = CA_MESSAGE_ALIGN(payloadSize);
    int extended = padded >= 0xffffu || count >= 0xffffu;
    size_t headerSize = extended ? GW_EXTENDED_HEADER_SIZE : GW_HEADER_SIZE;
    unsigned char *message = calloc(1, headerSize + padded);
    unsigned char *p = message;
    int status;

    if (!message) {
        fail("out of memory");
        return -1;
    }
    p = putU16(p, (epicsUInt16)command);
    p = putU16(p, extended ? 0xffffu : (epicsUInt16)padded);
    p = putU16(p, (epicsUInt16)dataType);
    p = putU16(p, extended ? 0u : (epicsUInt16)count);
    p = putU32(p, p1);
    p = putU32(p, p2);
    if (extended) {
        p = putU32(p, padded);
        p = putU32(p, count);
    }
    if (payloadSize > 0)
        memcpy(p, payload, payloadSize);
    status = connectionSend(conn, message, headerSize + padded);
    free(message);
    return status;
}

static int sendString(gwConnection *conn, unsigned command, epicsUInt32 p1, epicsUInt32 p2,
                      const char *text)
{
    return sendMessage(conn, command, 0, 0, p1, p2, text, (epicsUInt32)strlen(text) + 1u);
}

/* Make room for `need` more bytes after the ones not yet consumed. */
static int connectionReserve(gwConnection *conn, size_t need)
{
    size_t kept = conn->filled - conn->consumed;

    memmove(conn->buffer, conn->buffer + conn->consumed, kept);
    conn->filled = kept;
    conn->consumed = 0;
    if (kept + need > conn->capacity) {
        unsigned char *bigger = realloc(conn->buffer, kept + need);
        if (!bigger) {
            fail("out of memory for a %lu byte message", (unsigned long)(kept + need));
            return -1;
        }
        conn->buffer = bigger;
        conn->capacity = kept + need;
    }
    return 0;
}

/* Read until `want` unconsumed bytes are buffered or the deadline passes. */
static int connectionFill(gwConnection *conn, size_t want, double deadline)
{
    if (conn->filled - conn->consumed >= want)
        return 0;
    if (connectionReserve(conn, want) != 0)
        return -1;
    while (conn->filled < want) {
        double left = deadline - secondsNow();
        struct timeval wait;
        fd_set readable;
        int ready, got;

        if (left <= 0)
            return 1;
        wait.tv_sec = (long)left;
        wait.tv_usec = (long)((left - (double)wait.tv_sec) * 1e6);
        FD_ZERO(&readable);
        FD_SET(conn->sock, &readable);
        ready = select((int)conn->sock + 1, &readable, NULL, NULL, &wait);
        if (ready < 0 && SOCKERRNO == SOCK_EINTR)
            continue;
        if (ready < 0) {
            fail("select failed");
            return -1;
        }
        if (ready == 0)
            continue;
        got = recv(conn->sock, (char *)conn->buffer + conn->filled,
                   (int)(conn->capacity - conn->filled), 0);
        if (got <= 0) {
            fail("the server closed the connection");
            return -1;
        }
        conn->filled += (size_t)got;
    }
    return 0;
}

/* Next message: 0 read, 1 deadline passed, -1 error. */
static int readMessage(gwConnection *conn, gwMessage *msg, double deadline)
{
    const unsigned char *h;
    size_t headerSize = GW_HEADER_SIZE;
    int status = connectionFill(conn, GW_HEADER_SIZE, deadline);

    if (status != 0)
        return status;
    h = conn->buffer + conn->consumed;
    msg->command = getU16(h);
    msg->payloadSize = getU16(h + 2);
    msg->dataType = getU16(h + 4);
    msg->count = getU16(h + 6);
    msg->p1 = getU32(h + 8);
    msg->p2 = getU32(h + 12);
    msg->extended = msg->payloadSize == 0xffffu && msg->count == 0;
    if (msg->extended) {
        headerSize = GW_EXTENDED_HEADER_SIZE;
        status = connectionFill(conn, headerSize, deadline);
        if (status != 0)
            return status;
        h = conn->buffer + conn->consumed;
        msg->payloadSize = getU32(h + 16);
        msg->count = getU32(h + 20);
    }
    if (msg->payloadSize > GW_MAX_PAYLOAD) {
        fail("command %u announces a %lu byte payload (limit %lu)", msg->command,
             (unsigned long)msg->payloadSize, (unsigned long)GW_MAX_PAYLOAD);
        return -1;
    }
    status = connectionFill(conn, headerSize + msg->payloadSize, deadline);
    if (status != 0)
        return status;
    msg->payload = conn->buffer + conn->consumed + headerSize;
    conn->consumed += headerSize + msg->payloadSize;
    return 0;
}

/* ------------------------------------------------------------ printing */

static void printHeaderAndPayload(const gwMessage *msg)
{
    epicsUInt32 i;

    printf(" cmd=%u dtype=%u hcount=%lu p1=%lu ext=%d size=%lu data=", msg->command,
           msg->dataType, (unsigned long)msg->count, (unsigned long)msg->p1, msg->extended,
           (unsigned long)msg->payloadSize);
    for (i = 0; i < msg->payloadSize; i++)
        printf("%02x", msg->payload[i]);
    printf("\n");
}

/* An ERROR message: the offending request's header, then a message. */
static void printError(const char *pv, const gwMessage *msg)
{
    epicsUInt32 textStart = msg->payloadSize >= GW_HEADER_SIZE ? GW_HEADER_SIZE : 0;
    epicsUInt32 end = textStart;

    if (textStart && getU16(msg->payload + 2) == 0xffffu && getU16(msg->payload + 6) == 0 &&
        msg->payloadSize >= GW_EXTENDED_HEADER_SIZE)
        textStart = end = GW_EXTENDED_HEADER_SIZE;
    while (end < msg->payloadSize && msg->payload[end] != '\0')
        end++;
    printf("error pv=%s status=%lu request_cmd=%u message=\"%.*s\"\n", pv,
           (unsigned long)msg->p2, textStart ? getU16(msg->payload) : 0u,
           (int)(end - textStart), (const char *)msg->payload + textStart);
}

/* The io id (p2) of the request an ERROR message quotes; 0 when none. */
static epicsUInt32 errorRequestId(const gwMessage *msg)
{
    return msg->payloadSize >= GW_HEADER_SIZE ? getU32(msg->payload + 12) : 0u;
}

static void printUnexpected(const char *pv, const gwMessage *msg)
{
    printf("unexpected pv=%s", pv);
    printHeaderAndPayload(msg);
}

/* ------------------------------------------------------------ protocol */

static int sayHello(gwConnection *conn)
{
    if (sendMessage(conn, CA_PROTO_VERSION, 0, GW_MINOR_VERSION, 0, 0, NULL, 0) != 0)
        return -1;
    if (sendString(conn, CA_PROTO_CLIENT_NAME, 0, 0, "gwRawCaClient") != 0)
        return -1;
    return sendString(conn, CA_PROTO_HOST_NAME, 0, 0, "localhost");
}

/* Create the channel: 0 connected, GW_EXIT_NO_CHANNEL refused, or
 * GW_EXIT_PROTOCOL. */
static int channelCreate(gwConnection *conn, gwChannel *chan)
{
    double deadline = secondsNow() + GW_REQUEST_TIMEOUT;
    int haveRights = 0, rights = 0;
    gwMessage msg;

    if (sendString(conn, CA_PROTO_CREATE_CHAN, chan->cid, GW_MINOR_VERSION, chan->name) != 0)
        return GW_EXIT_PROTOCOL;
    for (;;) {
        int status = readMessage(conn, &msg, deadline);
        if (status != 0) {
            if (status > 0)
                fail("no reply to CREATE_CHAN %s within %.0f s", chan->name,
                     GW_REQUEST_TIMEOUT);
            return GW_EXIT_PROTOCOL;
        }
        if (msg.command == CA_PROTO_VERSION)
            continue;
        if (msg.command == CA_PROTO_ACCESS_RIGHTS && msg.p1 == chan->cid) {
            haveRights = 1;
            rights = (int)msg.p2;
        } else if (msg.command == CA_PROTO_CREATE_CHAN && msg.p1 == chan->cid) {
            chan->sid = msg.p2;
            chan->nativeType = msg.dataType;
            chan->nativeCount = msg.count;
            printf("channel pv=%s type=%u count=%lu rights=%d%s\n", chan->name,
                   chan->nativeType, (unsigned long)chan->nativeCount, rights,
                   haveRights ? "" : " no_access_rights_before_reply");
            return 0;
        } else if (msg.command == CA_PROTO_CREATE_CH_FAIL && msg.p1 == chan->cid) {
            printf("channel pv=%s failed\n", chan->name);
            return GW_EXIT_NO_CHANNEL;
        } else if (msg.command == CA_PROTO_ERROR) {
            printError(chan->name, &msg);
        } else {
            printUnexpected(chan->name, &msg);
        }
    }
}

/* Wait for the message that answers a request: command `reply` with p2 ==
 * id, or an ERROR quoting that id (printed). 0 answered (msg filled, or
 * msg->command == CA_PROTO_ERROR), -1 error or timeout. */
static int awaitReply(gwConnection *conn, const gwChannel *chan, unsigned reply,
                      epicsUInt32 id, const char *what, gwMessage *msg)
{
    double deadline = secondsNow() + GW_REQUEST_TIMEOUT;

    for (;;) {
        int status = readMessage(conn, msg, deadline);
        if (status != 0) {
            if (status > 0)
                fail("no reply to %s of %s within %.0f s", what, chan->name,
                     GW_REQUEST_TIMEOUT);
            return -1;
        }
        if (msg->command == reply && msg->p2 == id)
            return 0;
        if (msg->command == CA_PROTO_ERROR && errorRequestId(msg) == id) {
            printError(chan->name, msg);
            return 0;
        }
        if (msg->command == CA_PROTO_ERROR)
            printError(chan->name, msg);
        else if (msg->command != CA_PROTO_ACCESS_RIGHTS && msg->command != CA_PROTO_VERSION)
            printUnexpected(chan->name, msg);
    }
}

static int channelClear(gwConnection *conn, const gwChannel *chan)
{
    gwMessage msg;

    if (sendMessage(conn, CA_PROTO_CLEAR_CHANNEL, 0, 0, chan->sid, chan->cid, NULL, 0) != 0)
        return -1;
    if (awaitReply(conn, chan, CA_PROTO_CLEAR_CHANNEL, chan->cid, "CLEAR_CHANNEL", &msg) != 0)
        return -1;
    if (msg.command == CA_PROTO_CLEAR_CHANNEL)
        printf("cleared pv=%s\n", chan->name);
    return 0;
}

static int readOne(gwConnection *conn, const gwChannel *chan, unsigned type,
                   epicsUInt32 count, epicsUInt32 ioid)
{
    gwMessage msg;

    if (sendMessage(conn, CA_PROTO_READ_NOTIFY, type, count, chan->sid, ioid, NULL, 0) != 0)
        return -1;
    if (awaitReply(conn, chan, CA_PROTO_READ_NOTIFY, ioid, "READ_NOTIFY", &msg) != 0)
        return -1;
    if (msg.command == CA_PROTO_READ_NOTIFY) {
        printf("read pv=%s type=%u count=%lu", chan->name, type, (unsigned long)count);
        printHeaderAndPayload(&msg);
    }
    return 0;
}

/* ------------------------------------------------------------ arguments */

static int parseNumber(const char *text, unsigned long max, unsigned long *value)
{
    char *end;

    errno = 0;
    *value = strtoul(text, &end, 10);
    return errno == 0 && end != text && *end == '\0' && *value <= max ? 0 : -1;
}

/* TYPES: "all" (0..34, 37, 38) or numbers separated by commas. */
static int parseTypes(const char *text, unsigned *types, int *n)
{
    char copy[512];
    char *item, *save;
    unsigned long value;

    *n = 0;
    if (strcmp(text, "all") == 0) {
        for (value = 0; value <= GW_LAST_READ_TYPE; value++)
            if (value != 35 && value != 36)
                types[(*n)++] = (unsigned)value;
        return 0;
    }
    if (strlen(text) >= sizeof copy)
        return -1;
    strcpy(copy, text);
    for (item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        if (*n >= GW_MAX_LIST || parseNumber(item, 0xffffu, &value) != 0)
            return -1;
        types[(*n)++] = (unsigned)value;
    }
    return *n > 0 ? 0 : -1;
}

/* COUNTS: numbers or "n" (the native count) separated by commas. */
static int parseCounts(const char *text, epicsUInt32 native, epicsUInt32 *counts, int *n)
{
    char copy[512];
    char *item, *save;
    unsigned long value;

    *n = 0;
    if (strlen(text) >= sizeof copy)
        return -1;
    strcpy(copy, text);
    for (item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        if (*n >= GW_MAX_LIST)
            return -1;
        if (strcmp(item, "n") == 0)
            value = native;
        else if (parseNumber(item, 0xffffffffu, &value) != 0)
            return -1;
        counts[(*n)++] = (epicsUInt32)value;
    }
    return *n > 0 ? 0 : -1;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: gwRawCaClient get HOST:PORT PV TYPES COUNTS\n"
            "       gwRawCaClient monitor HOST:PORT PV TYPE COUNT MASK NUPDATES TIMEOUT\n"
            "  TYPES   \"all\" (0..34,37,38) or a list like 0,14,34\n"
            "  COUNTS  a list like 0,1,n (n: the channel's native count)\n"
            "  MASK    event mask: 1 VALUE, 2 LOG, 4 ALARM, 8 PROPERTY (sums allowed)\n"
            "  TIMEOUT seconds to wait for NUPDATES updates\n");
}

/* ------------------------------------------------------------ commands */

static int commandGet(gwConnection *conn, gwChannel *chan, char **argv)
{
    unsigned types[GW_MAX_LIST];
    epicsUInt32 counts[GW_MAX_LIST];
    int nTypes, nCounts, t, c;
    epicsUInt32 ioid = 1;

    if (parseTypes(argv[0], types, &nTypes) != 0) {
        fail("bad TYPES \"%s\"", argv[0]);
        return GW_EXIT_USAGE;
    }
    if (parseCounts(argv[1], chan->nativeCount, counts, &nCounts) != 0) {
        fail("bad COUNTS \"%s\"", argv[1]);
        return GW_EXIT_USAGE;
    }
    for (t = 0; t < nTypes; t++)
        for (c = 0; c < nCounts; c++)
            if (readOne(conn, chan, types[t], counts[c], ioid++) != 0)
                return GW_EXIT_PROTOCOL;
    return channelClear(conn, chan) == 0 ? 0 : GW_EXIT_PROTOCOL;
}

/* Updates until `wanted` arrived or the deadline; 0, 1 timeout, -1 error. */
static int receiveUpdates(gwConnection *conn, const gwChannel *chan, epicsUInt32 subid,
                          unsigned long wanted, double deadline)
{
    unsigned long got = 0;
    gwMessage msg;

    while (got < wanted) {
        int status = readMessage(conn, &msg, deadline);
        if (status != 0)
            return status;
        if (msg.command == CA_PROTO_EVENT_ADD && msg.p2 == subid) {
            printf("update pv=%s n=%lu", chan->name, ++got);
            printHeaderAndPayload(&msg);
        } else if (msg.command == CA_PROTO_ERROR) {
            printError(chan->name, &msg);
        } else if (msg.command != CA_PROTO_ACCESS_RIGHTS && msg.command != CA_PROTO_VERSION) {
            printUnexpected(chan->name, &msg);
        }
    }
    return 0;
}

/* EVENT_CANCEL: updates still in flight are printed as "late"; the reply
 * is an EVENT_ADD message with an empty payload. */
static int cancelSubscription(gwConnection *conn, const gwChannel *chan, unsigned type,
                              epicsUInt32 count, epicsUInt32 subid)
{
    double deadline = secondsNow() + GW_REQUEST_TIMEOUT;
    gwMessage msg;

    if (sendMessage(conn, CA_PROTO_EVENT_CANCEL, type, count, chan->sid, subid, NULL, 0) != 0)
        return -1;
    for (;;) {
        int status = readMessage(conn, &msg, deadline);
        if (status != 0) {
            if (status > 0)
                fail("no reply to EVENT_CANCEL of %s within %.0f s", chan->name,
                     GW_REQUEST_TIMEOUT);
            return -1;
        }
        if (msg.command == CA_PROTO_EVENT_ADD && msg.p2 == subid && msg.payloadSize == 0) {
            printf("cancelled pv=%s", chan->name);
            printHeaderAndPayload(&msg);
            return 0;
        }
        if (msg.command == CA_PROTO_EVENT_ADD && msg.p2 == subid) {
            printf("late pv=%s", chan->name);
            printHeaderAndPayload(&msg);
        } else if (msg.command == CA_PROTO_ERROR) {
            printError(chan->name, &msg);
        } else if (msg.command != CA_PROTO_ACCESS_RIGHTS && msg.command != CA_PROTO_VERSION) {
            printUnexpected(chan->name, &msg);
        }
    }
}

static int commandMonitor(gwConnection *conn, gwChannel *chan, char **argv)
{
    unsigned long type, count, mask, wanted, seconds;
    unsigned char request[16];
    epicsUInt32 subid = 1;
    int status;

    if (parseNumber(argv[0], 0xffffu, &type) || parseNumber(argv[1], 0xffffffffu, &count) ||
        parseNumber(argv[2], 0xffffu, &mask) || parseNumber(argv[3], 1000000u, &wanted) ||
        parseNumber(argv[4], 3600u, &seconds)) {
        usage();
        return GW_EXIT_USAGE;
    }
    memset(request, 0, sizeof request);
    putU16(request + 12, (epicsUInt16)mask);
    if (sendMessage(conn, CA_PROTO_EVENT_ADD, (unsigned)type, (epicsUInt32)count, chan->sid,
                    subid, request, sizeof request) != 0)
        return GW_EXIT_PROTOCOL;
    printf("subscribed pv=%s type=%lu count=%lu mask=%lu\n", chan->name, type, count, mask);
    status = receiveUpdates(conn, chan, subid, wanted, secondsNow() + (double)seconds);
    if (status < 0)
        return GW_EXIT_PROTOCOL;
    if (status > 0)
        printf("timeout pv=%s after %lu s\n", chan->name, seconds);
    if (cancelSubscription(conn, chan, (unsigned)type, (epicsUInt32)count, subid) != 0 ||
        channelClear(conn, chan) != 0)
        return GW_EXIT_PROTOCOL;
    return status > 0 ? GW_EXIT_PROTOCOL : 0;
}

int main(int argc, char **argv)
{
    gwConnection conn;
    gwChannel chan;
    int isGet, status;

    isGet = argc == 6 && strcmp(argv[1], "get") == 0;
    if (!isGet && !(argc == 9 && strcmp(argv[1], "monitor") == 0)) {
        usage();
        return GW_EXIT_USAGE;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!osiSockAttach()) {
        fail("cannot initialise sockets");
        return GW_EXIT_PROTOCOL;
    }
    memset(&chan, 0, sizeof chan);
    chan.name = argv[3];
    chan.cid = 1;
    if (connectionOpen(&conn, argv[2]) != 0 || sayHello(&conn) != 0)
        status = GW_EXIT_PROTOCOL;
    else
        status = channelCreate(&conn, &chan);
    if (status == 0)
        status = isGet ? commandGet(&conn, &chan, argv + 4)
                       : commandMonitor(&conn, &chan, argv + 4);
    connectionClose(&conn);
    osiSockRelease();
    return status;
}
