/* gwCodecTest.c - unit test of the CA codec (gwCodec.c, gwCodecDbr.c).
 *
 * Pure: no sockets. Buffers handed to parsers are malloc'd to their exact
 * length so that AddressSanitizer (GW_SANITIZE=YES) catches any read past
 * the end.
 */
#include <stdlib.h>
#include <string.h>
#include <stddef.h>

#include <caProto.h>
#include <caerr.h>
#include <db_access.h>
#include <net_convert.h>
#include <epicsUnitTest.h>
#include <testMain.h>
#include <dbDefs.h>

#include "gwCodec.h"

#define MAX_PAYLOAD 16384u
#define BIG 200000u

typedef union alignedBuffer {
    double align;
    unsigned char bytes[BIG];
} alignedBuffer;

static alignedBuffer out, host, back;

static unsigned char *copyOf(const void *p, size_t n)
{
    unsigned char *c = malloc(n ? n : 1);
    memcpy(c, p, n);
    return c;
}

static gwCaHeader header(unsigned command, epicsUInt32 payloadSize, unsigned dataType,
                         epicsUInt32 count, epicsUInt32 p1, epicsUInt32 p2)
{
    gwCaHeader h;

    h.command = (epicsUInt16)command;
    h.payloadSize = payloadSize;
    h.dataType = (epicsUInt16)dataType;
    h.count = count;
    h.parameter1 = p1;
    h.parameter2 = p2;
    return h;
}

static int sameHeader(const gwCaHeader *a, const gwCaHeader *b)
{
    return a->command == b->command && a->payloadSize == b->payloadSize &&
           a->dataType == b->dataType && a->count == b->count &&
           a->parameter1 == b->parameter1 && a->parameter2 == b->parameter2;
}

/* ---- framing and request decoders ------------------------------------- */

static void testStatusText(void)
{
    int s, t, distinct = 1;

    for (s = GW_CODEC_OK; s <= GW_CODEC_BAD_BUFFER; s++)
        for (t = GW_CODEC_OK; t < s; t++)
            if (strcmp(gwCodecStatusText((gwCodecStatus)s),
                       gwCodecStatusText((gwCodecStatus)t)) == 0)
                distinct = 0;
    testOk(distinct, "every status has its own text");
    testOk(gwCodecStatusText((gwCodecStatus)99) != NULL, "an unknown status still has a text");
}

static const unsigned char createAbc[] = {
    0x00, 0x12, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x0d,
    'a', 'b', 'c', 0, 0, 0, 0, 0
};

/* WRITE, extended header: sid 1, ioid 2, two doubles 1.0 and 2.0. */
static const unsigned char writeExtended[] = {
    0x00, 0x04, 0xff, 0xff, 0x00, 0x06, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02,
    0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x02,
    0x3f, 0xf0, 0, 0, 0, 0, 0, 0,
    0x40, 0x00, 0, 0, 0, 0, 0, 0
};

static const unsigned char echoOnly[] = {
    0x00, 0x17, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
};

static void testParseExactBytes(void)
{
    gwCaMessage m;
    gwCaCreateChannel cc;
    gwCaChannelRequest w;
    double values[2];
    size_t used;
    gwCaHeader want = header(CA_PROTO_CREATE_CHAN, 8, 0, 0, 7, 13);

    testOk(gwCodecParseMessage(createAbc, sizeof createAbc, MAX_PAYLOAD, &m, &used) == GW_CODEC_OK
           && used == sizeof createAbc && m.headerSize == 16 && sameHeader(&m.header, &want),
           "CREATE_CHAN: header fields from hand-written bytes");
    testOk(gwCodecDecodeCreateChannel(&m, &cc) == GW_CODEC_OK && cc.name.length == 3 &&
           strcmp(cc.name.text, "abc") == 0 && cc.clientChannelId == 7 && cc.clientMinor == 13,
           "CREATE_CHAN: name \"abc\", cid 7, minor 13");
    want = header(CA_PROTO_WRITE, 16, DBR_DOUBLE, 2, 1, 2);
    testOk(gwCodecParseMessage(writeExtended, sizeof writeExtended, MAX_PAYLOAD, &m, &used) ==
           GW_CODEC_OK && used == sizeof writeExtended && m.headerSize == 24 &&
           sameHeader(&m.header, &want), "extended WRITE: real size and count from the u32 pair");
    testOk(gwCodecDecodeWrite(&m, &w) == GW_CODEC_OK &&
           gwCodecDecodeValue(&w, values, sizeof values) == GW_CODEC_OK &&
           values[0] == 1.0 && values[1] == 2.0, "extended WRITE: values 1.0 and 2.0");
}

static void testShortOne(const char *what, const unsigned char *msg, size_t n, size_t hlen)
{
    size_t len, used, hl;
    int messageOk = 1, headerOk = 1;
    gwCaMessage m;

    for (len = 0; len <= n; len++) {
        unsigned char *c = copyOf(msg, len);
        gwCodecStatus s = gwCodecParseMessage(c, len, MAX_PAYLOAD, &m, &used);
        gwCodecStatus h = gwCodecParseHeader(c, len, MAX_PAYLOAD, &m.header, &hl);
        if (s != (len < n ? GW_CODEC_NEED_MORE : GW_CODEC_OK))
            messageOk = 0;
        if (h != (len < hlen ? GW_CODEC_NEED_MORE : GW_CODEC_OK))
            headerOk = 0;
        free(c);
    }
    testOk(messageOk, "%s: NEED_MORE at every length below %u, OK at it", what, (unsigned)n);
    testOk(headerOk, "%s: header NEED_MORE below %u bytes", what, (unsigned)hlen);
}

static void testParseShortBuffers(void)
{
    testShortOne("CREATE_CHAN", createAbc, sizeof createAbc, 16);
    testShortOne("extended WRITE", writeExtended, sizeof writeExtended, 24);
    testShortOne("ECHO", echoOnly, sizeof echoOnly, 16);
}

typedef struct headerCase {
    const char *what;
    unsigned char bytes[24];
    size_t len;
    size_t maxPayload;
    gwCodecStatus expected;
} headerCase;

#define EXT_HDR(cmd, s0, s1, s2, s3, c0, c1, c2, c3) \
    { 0, cmd, 0xff, 0xff, 0, 6, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, s0, s1, s2, s3, c0, c1, c2, c3 }

static const headerCase headerCases[] = {
    {"payload 16 over limit 8", {0, 1, 0, 16}, 16, 8, GW_CODEC_TOO_LARGE},
    {"payload equal to the limit", {0, 1, 0, 16}, 16, 16, GW_CODEC_OK},
    {"payload 12, not a multiple of 8", {0, 1, 0, 12}, 16, MAX_PAYLOAD, GW_CODEC_BAD_SIZE},
    {"standard size 0xffff with count 1", {0, 1, 0xff, 0xff, 0, 6, 0, 1}, 16, (size_t)-1,
     GW_CODEC_BAD_SIZE},
    {"standard size 0xffff over the limit", {0, 1, 0xff, 0xff, 0, 6, 0, 1}, 16, MAX_PAYLOAD,
     GW_CODEC_TOO_LARGE},
    {"extended size 0xffffffff", EXT_HDR(4, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1), 24,
     MAX_PAYLOAD, GW_CODEC_TOO_LARGE},
    {"extended size 0xffffffff, no limit", EXT_HDR(4, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1), 24,
     (size_t)-1, GW_CODEC_BAD_SIZE},
    {"extended size 0xfffffff8", EXT_HDR(4, 0xff, 0xff, 0xff, 0xf8, 0xff, 0xff, 0xff, 0xff), 24,
     MAX_PAYLOAD, GW_CODEC_TOO_LARGE},
    {"extended size 12", EXT_HDR(4, 0, 0, 0, 12, 0, 0, 0, 1), 24, MAX_PAYLOAD,
     GW_CODEC_BAD_SIZE},
    {"extended size 0, count 5", EXT_HDR(4, 0, 0, 0, 0, 0, 0, 0, 5), 24, MAX_PAYLOAD,
     GW_CODEC_OK},
    {"unknown command 0xffff frames fine", {0xff, 0xff}, 16, MAX_PAYLOAD, GW_CODEC_OK},
};

static void testParseErrors(void)
{
    size_t i, hl;
    gwCaHeader h;

    for (i = 0; i < NELEMENTS(headerCases); i++) {
        const headerCase *c = &headerCases[i];
        unsigned char *b = copyOf(c->bytes, c->len);
        gwCodecStatus s = gwCodecParseHeader(b, c->len, c->maxPayload, &h, &hl);
        testOk(s == c->expected, "header %s: %s", c->what, gwCodecStatusText(s));
        free(b);
    }
}

static void testCheckRequest(void)
{
    static const unsigned accepted[] = {0, 1, 2, 4, 6, 8, 9, 10, 12, 15, 18, 19, 20, 21, 23};
    unsigned command, i;

    for (command = 0; command <= 30; command++) {
        gwCaHeader h = header(command, 0, 0, 0, 0, 0);
        int want = 0;
        for (i = 0; i < NELEMENTS(accepted); i++)
            want |= accepted[i] == command;
        testOk((gwCodecCheckRequest(&h) == GW_CODEC_OK) == want, "command %u %s", command,
               want ? "accepted" : "refused");
    }
    {
        gwCaHeader h = header(0xffff, 0, 0, 0, 0, 0);
        testOk(gwCodecCheckRequest(&h) == GW_CODEC_BAD_COMMAND, "command 0xffff refused");
    }
}

typedef enum decoder {
    D_VERSION, D_SEARCH, D_CREATE, D_NAME, D_READ, D_EVENT_ADD, D_EVENT_CANCEL, D_WRITE, D_CLEAR
} decoder;

typedef struct decodeCase {
    const char *what;
    unsigned command;
    unsigned dataType;
    epicsUInt32 count;
    const char *payload;
    size_t payloadSize;
    decoder which;
    unsigned minor;
    gwCodecStatus expected;
} decodeCase;

#define Z8 "\0\0\0\0\0\0\0\0"
#define MASK5 "\0\0\0\0\0\0\0\0\0\0\0\0\0\5\0\0"

static const decodeCase decodeCases[] = {
    {"VERSION", 0, 0, 13, "", 0, D_VERSION, 13, GW_CODEC_OK},
    {"SEARCH abc", 6, DOREPLY, 13, "abc\0\0\0\0", 8, D_SEARCH, 13, GW_CODEC_OK},
    {"SEARCH empty payload", 6, DOREPLY, 13, "", 0, D_SEARCH, 13, GW_CODEC_BAD_NAME},
    {"SEARCH zero-length name", 6, DOREPLY, 13, Z8, 8, D_SEARCH, 13, GW_CODEC_BAD_NAME},
    {"SEARCH unterminated name", 6, DOREPLY, 13, "abcdefgh", 8, D_SEARCH, 13, GW_CODEC_BAD_NAME},
    {"CREATE_CHAN abc", 18, 0, 0, "abc\0\0\0\0", 8, D_CREATE, 13, GW_CODEC_OK},
    {"CREATE_CHAN empty payload", 18, 0, 0, "", 0, D_CREATE, 13, GW_CODEC_BAD_NAME},
    {"CREATE_CHAN zero-length name", 18, 0, 0, Z8, 8, D_CREATE, 13, GW_CODEC_BAD_NAME},
    {"CREATE_CHAN unterminated", 18, 0, 0, "abcdefgh", 8, D_CREATE, 13, GW_CODEC_BAD_NAME},
    {"CLIENT_NAME empty payload", 20, 0, 0, "", 0, D_NAME, 13, GW_CODEC_OK},
    {"CLIENT_NAME empty string", 20, 0, 0, Z8, 8, D_NAME, 13, GW_CODEC_OK},
    {"CLIENT_NAME joe", 20, 0, 0, "joe\0\0\0\0", 8, D_NAME, 13, GW_CODEC_OK},
    {"CLIENT_NAME unterminated", 20, 0, 0, "joejoejo", 8, D_NAME, 13, GW_CODEC_BAD_NAME},
    {"HOST_NAME ioc1", 21, 0, 0, "ioc1\0\0\0", 8, D_NAME, 13, GW_CODEC_OK},
    {"HOST_NAME unterminated", 21, 0, 0, "ioc1ioc1", 8, D_NAME, 13, GW_CODEC_BAD_NAME},
    {"READ_NOTIFY double", 15, DBR_DOUBLE, 1, "", 0, D_READ, 13, GW_CODEC_OK},
    {"READ_NOTIFY CLASS_NAME", 15, DBR_CLASS_NAME, 1, "", 0, D_READ, 13, GW_CODEC_OK},
    {"READ_NOTIFY type 39", 15, 39, 1, "", 0, D_READ, 13, GW_CODEC_BAD_TYPE},
    {"READ_NOTIFY type 0xffff", 15, 0xffff, 1, "", 0, D_READ, 13, GW_CODEC_BAD_TYPE},
    {"READ_NOTIFY PUT_ACKT (as RSRV: GETFAIL reply)", 15, DBR_PUT_ACKT, 1, "", 0, D_READ, 13, GW_CODEC_OK},
    {"READ_NOTIFY PUT_ACKS (as RSRV: GETFAIL reply)", 15, DBR_PUT_ACKS, 1, "", 0, D_READ, 13, GW_CODEC_OK},
    {"READ_NOTIFY count 0, minor 12", 15, DBR_DOUBLE, 0, "", 0, D_READ, 12, GW_CODEC_BAD_COUNT},
    {"READ_NOTIFY count 0, minor 13", 15, DBR_DOUBLE, 0, "", 0, D_READ, 13, GW_CODEC_OK},
    {"EVENT_ADD mask 5", 1, DBR_TIME_DOUBLE, 1, MASK5, 16, D_EVENT_ADD, 13, GW_CODEC_OK},
    {"EVENT_ADD 8-byte payload", 1, DBR_DOUBLE, 1, MASK5, 8, D_EVENT_ADD, 13,
     GW_CODEC_SHORT_PAYLOAD},
    {"EVENT_ADD no payload", 1, DBR_DOUBLE, 1, "", 0, D_EVENT_ADD, 13, GW_CODEC_SHORT_PAYLOAD},
    {"EVENT_ADD type 39", 1, 39, 1, MASK5, 16, D_EVENT_ADD, 13, GW_CODEC_BAD_TYPE},
    {"EVENT_ADD count 0, minor 4", 1, DBR_DOUBLE, 0, MASK5, 16, D_EVENT_ADD, 4,
     GW_CODEC_BAD_COUNT},
    {"EVENT_CANCEL any type", 2, 0xffff, 1, "", 0, D_EVENT_CANCEL, 13, GW_CODEC_OK},
    {"WRITE double", 4, DBR_DOUBLE, 1, Z8, 8, D_WRITE, 13, GW_CODEC_OK},
    {"WRITE 2 doubles in 8 bytes", 4, DBR_DOUBLE, 2, Z8, 8, D_WRITE, 13, GW_CODEC_BAD_COUNT},
    {"WRITE count 0", 4, DBR_DOUBLE, 0, Z8, 8, D_WRITE, 13, GW_CODEC_BAD_COUNT},
    {"WRITE STSACK_STRING", 4, DBR_STSACK_STRING, 1, Z8, 8, D_WRITE, 13, GW_CODEC_BAD_TYPE},
    {"WRITE CLASS_NAME", 4, DBR_CLASS_NAME, 1, Z8, 8, D_WRITE, 13, GW_CODEC_BAD_TYPE},
    {"WRITE type 39", 4, 39, 1, Z8, 8, D_WRITE, 13, GW_CODEC_BAD_TYPE},
    {"WRITE PUT_ACKT", 4, DBR_PUT_ACKT, 1, Z8, 8, D_WRITE, 13, GW_CODEC_OK},
    {"WRITE short string", 4, DBR_STRING, 1, "abc\0\0\0\0", 8, D_WRITE, 13, GW_CODEC_OK},
    {"WRITE short unterminated string", 4, DBR_STRING, 1, "abcdefgh", 8, D_WRITE, 13,
     GW_CODEC_BAD_COUNT},
    {"WRITE string, no payload", 4, DBR_STRING, 1, "", 0, D_WRITE, 13, GW_CODEC_BAD_COUNT},
    {"WRITE 2 strings in 8 bytes", 4, DBR_STRING, 2, "abc\0\0\0\0", 8, D_WRITE, 13,
     GW_CODEC_BAD_COUNT},
    {"WRITE_NOTIFY 2 longs", 19, DBR_LONG, 2, Z8, 8, D_WRITE, 13, GW_CODEC_OK},
    {"WRITE_NOTIFY 3 longs in 8 bytes", 19, DBR_LONG, 3, Z8, 8, D_WRITE, 13, GW_CODEC_BAD_COUNT},
    {"CLEAR_CHANNEL", 12, 0, 0, "", 0, D_CLEAR, 13, GW_CODEC_OK},
    {"VERSION decoder given ECHO", 23, 0, 0, "", 0, D_VERSION, 13, GW_CODEC_BAD_COMMAND},
    {"SEARCH decoder given CREATE_CHAN", 18, 0, 0, "abc\0\0\0\0", 8, D_SEARCH, 13,
     GW_CODEC_BAD_COMMAND},
    {"CREATE_CHAN decoder given SEARCH", 6, 5, 13, "abc\0\0\0\0", 8, D_CREATE, 13,
     GW_CODEC_BAD_COMMAND},
    {"name decoder given SEARCH", 6, 5, 13, "abc\0\0\0\0", 8, D_NAME, 13, GW_CODEC_BAD_COMMAND},
    {"READ decoder given READ (3)", 3, DBR_DOUBLE, 1, "", 0, D_READ, 13, GW_CODEC_BAD_COMMAND},
    {"EVENT_ADD decoder given CANCEL", 2, 6, 1, MASK5, 16, D_EVENT_ADD, 13,
     GW_CODEC_BAD_COMMAND},
    {"EVENT_CANCEL decoder given ADD", 1, 6, 1, MASK5, 16, D_EVENT_CANCEL, 13,
     GW_CODEC_BAD_COMMAND},
    {"WRITE decoder given READ_NOTIFY", 15, 6, 1, Z8, 8, D_WRITE, 13, GW_CODEC_BAD_COMMAND},
    {"CLEAR decoder given SERVER_DISCONN", 27, 0, 0, "", 0, D_CLEAR, 13, GW_CODEC_BAD_COMMAND},
};

static gwCodecStatus runDecoder(decoder which, const gwCaMessage *m, unsigned minor)
{
    gwCaVersion v;
    gwCaSearch s;
    gwCaCreateChannel c;
    gwCaString n;
    gwCaChannelRequest r;
    gwCaClearChannel cl;

    switch (which) {
    case D_VERSION:      return gwCodecDecodeVersion(m, &v);
    case D_SEARCH:       return gwCodecDecodeSearch(m, &s);
    case D_CREATE:       return gwCodecDecodeCreateChannel(m, &c);
    case D_NAME:         return gwCodecDecodeClientName(m, &n);
    case D_READ:         return gwCodecDecodeRead(m, minor, &r);
    case D_EVENT_ADD:    return gwCodecDecodeEventAdd(m, minor, &r);
    case D_EVENT_CANCEL: return gwCodecDecodeEventCancel(m, &r);
    case D_WRITE:        return gwCodecDecodeWrite(m, &r);
    case D_CLEAR:        return gwCodecDecodeClearChannel(m, &cl);
    }
    return GW_CODEC_OK;
}

/* A message around an exact-size heap copy of the payload. */
static gwCaMessage messageOf(const gwCaHeader *h, const void *payload)
{
    gwCaMessage m;

    m.header = *h;
    m.headerSize = 16;
    m.payload = copyOf(payload, h->payloadSize);
    return m;
}

static void testDecoders(void)
{
    size_t i;
    gwCaMessage m;
    gwCaSearch s;
    gwCaChannelRequest r;
    gwCaHeader h;

    for (i = 0; i < NELEMENTS(decodeCases); i++) {
        const decodeCase *c = &decodeCases[i];
        gwCodecStatus st;
        h = header(c->command, (epicsUInt32)c->payloadSize, c->dataType, c->count, 42, 43);
        m = messageOf(&h, c->payload);
        st = runDecoder(c->which, &m, c->minor);
        testOk(st == c->expected, "decode %s: %s", c->what, gwCodecStatusText(st));
        free((void *)m.payload);
    }
    h = header(CA_PROTO_SEARCH, 8, DOREPLY, 12, 99, 100);
    m = messageOf(&h, "pv:1\0\0\0");
    testOk(gwCodecDecodeSearch(&m, &s) == GW_CODEC_OK && s.replyWanted && s.replyFlag == DOREPLY
           && s.clientMinor == 12 && s.searchId == 100 && strcmp(s.name.text, "pv:1") == 0 &&
           s.name.length == 4, "SEARCH fields: DOREPLY, minor 12, id from parameter 2, name");
    free((void *)m.payload);
    h = header(CA_PROTO_EVENT_ADD, 16, DBR_TIME_DOUBLE, 5, 7, 8);
    m = messageOf(&h, MASK5);
    testOk(gwCodecDecodeEventAdd(&m, 13, &r) == GW_CODEC_OK && r.eventMask == 5 &&
           r.dataType == DBR_TIME_DOUBLE && r.count == 5 && r.serverChannelId == 7 &&
           r.requestId == 8 && r.value == NULL, "EVENT_ADD fields: mask 5 at offset 12");
    free((void *)m.payload);
    h = header(CA_PROTO_WRITE_NOTIFY, 8, DBR_LONG, 2, 7, 8);
    m = messageOf(&h, Z8);
    testOk(gwCodecDecodeWrite(&m, &r) == GW_CODEC_OK && r.value == m.payload &&
           r.valueSize == 8 && r.serverChannelId == 7 && r.requestId == 8,
           "WRITE_NOTIFY fields: value view of the payload");
    free((void *)m.payload);
}

static void nameCase(unsigned command, size_t length, gwCodecStatus expected)
{
    size_t size = CA_MESSAGE_ALIGN(length + 1u);
    char *payload = calloc(1, size);
    gwCaHeader h = header(command, (epicsUInt32)size, DOREPLY, 13, 1, 2);
    gwCaMessage m;
    gwCodecStatus s;

    memset(payload, 'n', length);
    m = messageOf(&h, payload);
    s = runDecoder(command == CA_PROTO_SEARCH ? D_SEARCH :
                   command == CA_PROTO_CREATE_CHAN ? D_CREATE : D_NAME, &m, 13);
    testOk(s == expected, "command %u, name of %u characters: %s", command, (unsigned)length,
           gwCodecStatusText(s));
    free(payload);
    free((void *)m.payload);
}

static void testLongNames(void)
{
    nameCase(CA_PROTO_SEARCH, GW_CA_NAME_MAX, GW_CODEC_OK);
    nameCase(CA_PROTO_SEARCH, GW_CA_NAME_MAX + 1, GW_CODEC_BAD_NAME);
    nameCase(CA_PROTO_CREATE_CHAN, GW_CA_NAME_MAX, GW_CODEC_OK);
    nameCase(CA_PROTO_CREATE_CHAN, GW_CA_NAME_MAX + 1, GW_CODEC_BAD_NAME);
    nameCase(CA_PROTO_HOST_NAME, GW_CA_CLIENT_NAME_MAX, GW_CODEC_OK);
    nameCase(CA_PROTO_CLIENT_NAME, GW_CA_CLIENT_NAME_MAX + 1, GW_CODEC_BAD_NAME);
}

/* ---- builders --------------------------------------------------------- */

static const unsigned char accessRightsBytes[] = {
    0x00, 0x16, 0, 0, 0, 0, 0, 0, 0x01, 0x02, 0x03, 0x04, 0, 0, 0, 0x03
};
static const unsigned char searchReplyBytes[] = {
    0x00, 0x06, 0x00, 0x08, 0x13, 0xc8, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0x05,
    0x00, 0x0d, 0, 0, 0, 0, 0, 0
};
static const unsigned char beaconBytes[] = {
    0x00, 0x0d, 0, 0, 0x00, 0x0d, 0x13, 0xc8, 0, 0, 0, 0x07, 0x7f, 0, 0, 0x01
};
static const unsigned char versionBytes[] = {
    0, 0, 0, 0, 0, 0, 0, 0x0d, 0, 0, 0, 0, 0, 0, 0, 0
};
static const unsigned char createReplyBytes[] = {
    0x00, 0x12, 0, 0, 0x00, 0x06, 0x00, 0x01, 0, 0, 0, 0x07, 0, 0, 0, 0x2a
};
static const unsigned char createReplyExtendedBytes[] = {
    0x00, 0x12, 0xff, 0xff, 0x00, 0x06, 0x00, 0x00, 0, 0, 0, 0x07, 0, 0, 0, 0x2a,
    0, 0, 0, 0, 0x00, 0x01, 0x86, 0xa0
};
static const unsigned char readReplyBytes[] = {
    0x00, 0x0f, 0x00, 0x08, 0x00, 0x06, 0x00, 0x01, 0, 0, 0, 0x01, 0, 0, 0, 0x2a,
    0x3f, 0xf0, 0, 0, 0, 0, 0, 0
};

static int sameBytes(size_t n, const void *want, size_t wantSize)
{
    return n == wantSize && memcmp(out.bytes, want, wantSize) == 0;
}

static void testBuildExactBytes(void)
{
    double one = 1.0;
    gwCaDataReply r = {DBR_DOUBLE, 1, ECA_NORMAL, 42, NULL};
    size_t n;

    r.value = &one;
    n = gwCodecBuildAccessRights(out.bytes, BIG, 0x01020304u, 3);
    testOk(sameBytes(n, accessRightsBytes, sizeof accessRightsBytes), "ACCESS_RIGHTS bytes");
    n = gwCodecBuildSearchReply(out.bytes, BIG, 5064, GW_CA_ADDRESS_OF_SENDER, 5, 13);
    testOk(sameBytes(n, searchReplyBytes, sizeof searchReplyBytes), "SEARCH reply bytes");
    n = gwCodecBuildBeacon(out.bytes, BIG, 13, 5064, 7, 0x7f000001u);
    testOk(sameBytes(n, beaconBytes, sizeof beaconBytes), "RSRV_IS_UP bytes");
    n = gwCodecBuildVersion(out.bytes, BIG, 0, 13, 0);
    testOk(sameBytes(n, versionBytes, sizeof versionBytes), "VERSION bytes");
    n = gwCodecBuildCreateChannelReply(out.bytes, BIG, DBR_DOUBLE, 1, 7, 42, 13);
    testOk(sameBytes(n, createReplyBytes, sizeof createReplyBytes), "CREATE_CHAN reply bytes");
    n = gwCodecBuildCreateChannelReply(out.bytes, BIG, DBR_DOUBLE, 100000, 7, 42, 13);
    testOk(sameBytes(n, createReplyExtendedBytes, sizeof createReplyExtendedBytes),
           "CREATE_CHAN reply with count 100000: extended header bytes");
    n = gwCodecBuildReadNotifyReply(out.bytes, BIG, &r, 13);
    testOk(sameBytes(n, readReplyBytes, sizeof readReplyBytes), "READ_NOTIFY reply 1.0 bytes");
}

#define BUILDERS 17

static const gwCaHeader readSyncRequest = {CA_PROTO_READ_SYNC, 0, 1, 2, 3, 4};
static const gwCaHeader createRequest = {CA_PROTO_CREATE_CHAN, 8, 0, 0, 7, 13};

/* Builder number i into buf; its expected header in *want. */
static size_t buildNth(int i, void *buf, size_t cap, gwCaHeader *want)
{
    gwCaChannelRequest cancel = {DBR_DOUBLE, 1, 42, 3, 0, NULL, 0};
    gwCaDataReply read = {DBR_DOUBLE, 2, ECA_NORMAL, 42, NULL};
    gwCaDataReply event = {DBR_TIME_SHORT, 1, ECA_NORMAL, 3, NULL};

    read.value = host.bytes;
    event.value = host.bytes;
    switch (i) {
    case 0:
        *want = header(0, 0, 5, 13, 77, 0);
        return gwCodecBuildVersion(buf, cap, 5, 13, 77);
    case 1:
        *want = header(6, 8, 5064, 0, 0x0a000001u, 9);
        return gwCodecBuildSearchReply(buf, cap, 5064, 0x0a000001u, 9, 13);
    case 2:
        *want = header(14, 0, DOREPLY, 13, 9, 9);
        return gwCodecBuildNotFound(buf, cap, DOREPLY, 13, 9);
    case 3:
        *want = header(22, 0, 0, 0, 7, 3);
        return gwCodecBuildAccessRights(buf, cap, 7, 3);
    case 4:
        *want = header(18, 0, DBR_DOUBLE, 10, 7, 42);
        return gwCodecBuildCreateChannelReply(buf, cap, DBR_DOUBLE, 10, 7, 42, 13);
    case 5:
        *want = header(18, 0, DBR_CHAR, 100000, 7, 42);
        return gwCodecBuildCreateChannelReply(buf, cap, DBR_CHAR, 100000, 7, 42, 13);
    case 6:
        *want = header(26, 0, 0, 0, 7, 0);
        return gwCodecBuildCreateChannelFail(buf, cap, 7);
    case 7:
        *want = header(19, 0, DBR_LONG, 3, ECA_NORMAL, 9);
        return gwCodecBuildWriteNotifyReply(buf, cap, DBR_LONG, 3, ECA_NORMAL, 9, 13);
    case 8:
        *want = header(1, 0, DBR_DOUBLE, 1, 42, 3);
        return gwCodecBuildEventCancelReply(buf, cap, &cancel, 13);
    case 9:
        *want = header(23, 0, 0, 0, 0, 0);
        return gwCodecBuildEcho(buf, cap);
    case 10:
        *want = readSyncRequest;
        return gwCodecBuildReadSync(buf, cap, &readSyncRequest);
    case 11:
        *want = header(12, 0, 0, 0, 42, 7);
        return gwCodecBuildClearChannel(buf, cap, 42, 7);
    case 12:
        *want = header(27, 0, 0, 0, 7, 0);
        return gwCodecBuildServerDisconnect(buf, cap, 7);
    case 13:
        *want = header(13, 0, 13, 5064, 99, 0x7f000001u);
        return gwCodecBuildBeacon(buf, cap, 13, 5064, 99, 0x7f000001u);
    case 14:
        *want = header(11, 24, 0, 0, 7, ECA_BADTYPE);
        return gwCodecBuildError(buf, cap, &createRequest, 7, ECA_BADTYPE, "bad");
    case 15:
        *want = header(15, 16, DBR_DOUBLE, 2, ECA_NORMAL, 42);
        return gwCodecBuildReadNotifyReply(buf, cap, &read, 13);
    default:
        *want = header(1, 16, DBR_TIME_SHORT, 1, ECA_NORMAL, 3);
        return gwCodecBuildEventAddReply(buf, cap, &event, 13);
    }
}

static void testBuildRoundTrips(void)
{
    int i;

    memset(host.bytes, 0, 64);
    for (i = 0; i < BUILDERS; i++) {
        gwCaHeader want;
        gwCaMessage m;
        size_t used = 0, n = buildNth(i, out.bytes, BIG, &want);
        unsigned char *c = copyOf(out.bytes, n);
        gwCodecStatus s = gwCodecParseMessage(c, n, MAX_PAYLOAD, &m, &used);
        testOk(n > 0 && s == GW_CODEC_OK && used == n && sameHeader(&m.header, &want),
               "builder %d (command %u): %u bytes parse back to the same header", i,
               want.command, (unsigned)n);
        free(c);
    }
}

static void testBuildCapacity(void)
{
    int i;

    for (i = 0; i < BUILDERS; i++) {
        gwCaHeader want;
        size_t cap, k, full = buildNth(i, out.bytes, BIG, &want);
        int ok = full > 0;
        for (cap = 0; cap < full && ok; cap++) {
            memset(out.bytes, 0x5a, full + 8);
            ok = buildNth(i, out.bytes, cap, &want) == 0;
            for (k = 0; k < full + 8 && ok; k++)
                ok = out.bytes[k] == 0x5a;
        }
        testOk(ok, "builder %d: 0 and nothing written for every capacity below %u", i,
               (unsigned)full);
    }
}

static void testBuildRefusals(void)
{
    gwCaChannelRequest cancel = {DBR_CHAR, 70000, 42, 3, 0, NULL, 0};
    gwCaHeader bigSync = {CA_PROTO_READ_SYNC, 0, 0, 70000, 0, 0};
    gwCaDataReply r = {DBR_DOUBLE, 10000, ECA_NORMAL, 1, NULL};

    testOk(gwCodecBuildCreateChannelReply(out.bytes, BIG, DBR_CHAR, 100000, 1, 2, 8) == 0,
           "CREATE_CHAN reply with count 100000 refused for minor 8");
    testOk(gwCodecBuildCreateChannelReply(out.bytes, BIG, DBR_CHAR, 0xffff, 1, 2, 8) == 16,
           "CREATE_CHAN reply with count 0xffff fits the standard header for minor 8");
    testOk(gwCodecBuildWriteNotifyReply(out.bytes, BIG, DBR_CHAR, 70000, 1, 2, 8) == 0,
           "WRITE_NOTIFY reply with count 70000 refused for minor 8");
    testOk(gwCodecBuildEventCancelReply(out.bytes, BIG, &cancel, 8) == 0,
           "EVENT_CANCEL reply with count 70000 refused for minor 8");
    testOk(gwCodecBuildReadNotifyReply(out.bytes, BIG, &r, 8) == 0 &&
           gwCodecDataReplySize(DBR_DOUBLE, 10000, 8) == 0,
           "READ_NOTIFY reply of 80000 bytes refused for minor 8");
    testOk(gwCodecBuildReadSync(out.bytes, BIG, &bigSync) == 0,
           "READ_SYNC echo with a count over 0xffff refused");
}

static void testErrorMessage(void)
{
    gwCaHeader big = {CA_PROTO_WRITE, 80000, DBR_DOUBLE, 10000, 1, 2};
    unsigned char wire[24];
    char longText[1000];
    gwCaMessage m;
    gwCaHeader embedded;
    size_t used, hl, n;

    n = gwCodecBuildError(out.bytes, BIG, &createRequest, 7, ECA_BADTYPE, "bad thing");
    gwCodecWriteHeader(wire, sizeof wire, &createRequest, 13);
    testOk(gwCodecParseMessage(out.bytes, n, MAX_PAYLOAD, &m, &used) == GW_CODEC_OK &&
           m.header.payloadSize == 32 && memcmp(m.payload, wire, 16) == 0 &&
           strcmp((const char *)m.payload + 16, "bad thing") == 0 &&
           memcmp(m.payload + 25, Z8, 7) == 0,
           "ERROR: request header, NUL-terminated text, zero padding");
    n = gwCodecBuildError(out.bytes, BIG, &big, 7, ECA_TOLARGE, "too large");
    testOk(gwCodecParseMessage(out.bytes, n, MAX_PAYLOAD, &m, &used) == GW_CODEC_OK &&
           gwCodecParseHeader(m.payload, 24, BIG, &embedded, &hl) == GW_CODEC_OK && hl == 24 &&
           sameHeader(&embedded, &big) && strcmp((const char *)m.payload + 24, "too large") == 0,
           "ERROR: an extended request header is embedded in its extended form");
    memset(longText, 'e', sizeof longText - 1);
    longText[sizeof longText - 1] = '\0';
    n = gwCodecBuildError(out.bytes, BIG, &createRequest, 7, ECA_INTERNAL, longText);
    testOk(gwCodecParseMessage(out.bytes, n, MAX_PAYLOAD, &m, &used) == GW_CODEC_OK &&
           strlen((const char *)m.payload + 16) == GW_CA_ERROR_TEXT_MAX &&
           m.header.payloadSize == CA_MESSAGE_ALIGN(16 + GW_CA_ERROR_TEXT_MAX + 1),
           "ERROR: a 999-character text is cut to %u", GW_CA_ERROR_TEXT_MAX);
    n = gwCodecBuildError(out.bytes, BIG, &createRequest, 7, ECA_INTERNAL, NULL);
    testOk(n == 16 + 24 && out.bytes[16 + 16] == 0, "ERROR without a text: empty text");
}

/* ---- DBR payloads ----------------------------------------------------- */

static const size_t unitsAt[LAST_BUFFER_TYPE + 1] = {
    [DBR_GR_SHORT] = offsetof(struct dbr_gr_short, units),
    [DBR_GR_FLOAT] = offsetof(struct dbr_gr_float, units),
    [DBR_GR_CHAR] = offsetof(struct dbr_gr_char, units),
    [DBR_GR_LONG] = offsetof(struct dbr_gr_long, units),
    [DBR_GR_DOUBLE] = offsetof(struct dbr_gr_double, units),
    [DBR_CTRL_SHORT] = offsetof(struct dbr_ctrl_short, units),
    [DBR_CTRL_FLOAT] = offsetof(struct dbr_ctrl_float, units),
    [DBR_CTRL_CHAR] = offsetof(struct dbr_ctrl_char, units),
    [DBR_CTRL_LONG] = offsetof(struct dbr_ctrl_long, units),
    [DBR_CTRL_DOUBLE] = offsetof(struct dbr_ctrl_double, units),
};

static void putText(unsigned char *field, size_t size, const char *text)
{
    memset(field, 0, size);
    strncpy((char *)field, text, size - 1);
}

/* A host DBR of (type, count) with patterned numbers and clean strings. */
static size_t makeHost(unsigned type, epicsUInt32 count, unsigned char *p)
{
    size_t i, size = dbr_size_n(type, count);

    for (i = 0; i < size; i++)
        p[i] = (unsigned char)(((i * 7u + 1u) & 0x3fu) | 1u);
    if (dbr_value_class[type] == dbr_class_string)
        for (i = 0; i < count; i++)
            putText(p + dbr_value_offset[type] + i * MAX_STRING_SIZE, MAX_STRING_SIZE, "v1");
    if (unitsAt[type])
        putText(p + unitsAt[type], MAX_UNITS_SIZE, "mm");
    if (type == DBR_GR_ENUM || type == DBR_CTRL_ENUM) {
        size_t strs = type == DBR_GR_ENUM ? offsetof(struct dbr_gr_enum, strs)
                                          : offsetof(struct dbr_ctrl_enum, strs);
        for (i = 0; i < MAX_ENUM_STATES; i++)
            putText(p + strs + i * MAX_ENUM_STRING_SIZE, MAX_ENUM_STRING_SIZE, "state");
    }
    return size;
}

static int allZero(const unsigned char *p, size_t n)
{
    while (n--)
        if (*p++)
            return 0;
    return 1;
}

static void testDbrSizes(void)
{
    static const epicsUInt32 counts[] = {0, 1, 2, 7, 100};
    unsigned type, i, readable = 1, writable = 1;

    for (type = 0; type <= LAST_BUFFER_TYPE; type++) {
        int ok = 1, r = type != DBR_PUT_ACKT && type != DBR_PUT_ACKS;
        for (i = 0; i < NELEMENTS(counts); i++) {
            /* PUT_ACKT/ACKS too: the size of a failed reply (zeros) */
            size_t want = 16 + CA_MESSAGE_ALIGN(dbr_size_n(type, counts[i]));
            ok &= gwCodecDbrSize(type, counts[i]) == dbr_size_n(type, counts[i]);
            ok &= gwCodecDataReplySize(type, counts[i], 13) == want;
        }
        testOk(ok, "type %u (%s): sizes agree with dbr_size_n", type, dbr_type_to_text((int)type));
        readable &= gwCodecTypeIsReadable(type) == r;
        writable &= gwCodecTypeIsWritable(type) == (type <= DBR_PUT_ACKS);
    }
    testOk(readable && writable && !gwCodecTypeIsReadable(39) && !gwCodecTypeIsWritable(39),
           "readable: all but PUT_ACKT/ACKS; writable: 0..PUT_ACKS");
    testOk(gwCodecDbrSize(39, 1) == 0 && gwCodecDbrSize(0xffff, 1) == 0 &&
           gwCodecDataReplySize(39, 1, 13) == 0, "types 39 and 0xffff have no size");
    testOk(gwCodecDbrSize(DBR_DOUBLE, 0xffffffffu) == (size_t)8 * 0xffffffffu &&
           gwCodecDataReplySize(DBR_DOUBLE, 0xffffffffu, 13) == 0,
           "count 0xffffffff: exact size, but no reply (over the u32 payload size)");
}

/* Build a READ_NOTIFY reply of (type, count); 1 when it is byte-identical
 * to caNetConvert's output, padded with zeros, and converts back. The
 * reference conversions run in place, as RSRV's do: Base 7.0.3.1 converts
 * DBR_STS_LONG and DBR_TIME_LONG arrays backwards between two buffers. */
static int replyRoundTrip(unsigned type, epicsUInt32 count)
{
    size_t size = makeHost(type, count, host.bytes), pad = CA_MESSAGE_ALIGN(size);
    gwCaDataReply r = {0, 0, ECA_NORMAL, 42, NULL};
    static alignedBuffer direct;
    gwCaMessage m;
    size_t used, n;
    int ok;

    r.dataType = (epicsUInt16)type;
    r.count = count;
    r.value = host.bytes;
    memset(out.bytes, 0xee, pad + 32);
    n = gwCodecBuildReadNotifyReply(out.bytes, BIG, &r, 13);
    ok = n == 16 + pad &&
         gwCodecParseMessage(out.bytes, n, MAX_PAYLOAD, &m, &used) == GW_CODEC_OK &&
         m.header.dataType == type && m.header.count == count && m.header.payloadSize == pad;
    memcpy(direct.bytes, host.bytes, size);
    ok = ok && caNetConvert(type, direct.bytes, direct.bytes, 1, count) == ECA_NORMAL &&
         memcmp(m.payload, direct.bytes, size) == 0 && allZero(m.payload + size, pad - size);
    memcpy(back.bytes, m.payload, size);
    ok = ok && caNetConvert(type, back.bytes, back.bytes, 0, count) == ECA_NORMAL &&
         memcmp(back.bytes, host.bytes, size) == 0;
    return ok;
}

static void testDbrReplyRoundTrips(void)
{
    unsigned type;

    for (type = 0; type <= LAST_BUFFER_TYPE; type++) {
        if (!gwCodecTypeIsReadable(type))
            continue;
        testOk(replyRoundTrip(type, 1) && replyRoundTrip(type, 3),
               "type %u (%s): reply with 1 and 3 elements converts back", type,
               dbr_type_to_text((int)type));
    }
}

/* A WRITE message carrying the network form of host.bytes. */
static size_t writeMessage(unsigned type, epicsUInt32 count, size_t size)
{
    gwCaHeader h = header(CA_PROTO_WRITE, (epicsUInt32)CA_MESSAGE_ALIGN(size), type, count, 1, 2);
    size_t hl = gwCodecWriteHeader(out.bytes, BIG, &h, 13);

    memset(out.bytes + hl, 0, h.payloadSize);
    memcpy(out.bytes + hl, host.bytes, size);
    caNetConvert(type, out.bytes + hl, out.bytes + hl, 1, count);
    return hl + h.payloadSize;
}

static int putRoundTrip(unsigned type, epicsUInt32 count)
{
    size_t size = makeHost(type, count, host.bytes);
    size_t n = writeMessage(type, count, size), used;
    unsigned char *c = copyOf(out.bytes, n);
    gwCaMessage m;
    gwCaChannelRequest w;
    int ok;

    memset(back.bytes, 0xee, size);
    ok = gwCodecParseMessage(c, n, MAX_PAYLOAD, &m, &used) == GW_CODEC_OK &&
         gwCodecDecodeWrite(&m, &w) == GW_CODEC_OK &&
         gwCodecDecodeValue(&w, back.bytes, size) == GW_CODEC_OK &&
         memcmp(back.bytes, host.bytes, size) == 0;
    free(c);
    return ok;
}

static void testDbrPutRoundTrips(void)
{
    unsigned type;

    for (type = 0; type <= DBR_PUT_ACKS; type++)
        testOk(putRoundTrip(type, 1) && putRoundTrip(type, 3),
               "type %u (%s): WRITE with 1 and 3 elements decodes to the host value", type,
               dbr_type_to_text((int)type));
}

static void testDbrExtended(void)
{
    static const unsigned char head[] = {
        0x00, 0x0f, 0xff, 0xff, 0x00, 0x06, 0x00, 0x00, 0, 0, 0, 0x01, 0, 0, 0, 0x2a,
        0x00, 0x01, 0x38, 0x80, 0x00, 0x00, 0x27, 0x10
    };
    gwCaDataReply r = {DBR_DOUBLE, 10000, ECA_NORMAL, 42, NULL};
    gwCaMessage m;
    size_t n, used;

    r.value = host.bytes;
    memset(host.bytes, 0, 80000);
    n = gwCodecBuildReadNotifyReply(out.bytes, BIG, &r, 13);
    testOk(n == 24 + 80000 && memcmp(out.bytes, head, sizeof head) == 0 &&
           gwCodecDataReplySize(DBR_DOUBLE, 10000, 9) == n,
           "10000 doubles: extended header bytes, 80024 bytes in all");
    testOk(gwCodecParseMessage(out.bytes, n, BIG, &m, &used) == GW_CODEC_OK && used == n &&
           m.headerSize == 24 && m.header.count == 10000 && m.header.payloadSize == 80000,
           "10000 doubles: parse back");
    r.dataType = DBR_CHAR;
    r.count = 0xfff8;
    testOk(gwCodecBuildReadNotifyReply(out.bytes, BIG, &r, 8) == 16 + 0xfff8,
           "0xfff8 chars: standard header, allowed for minor 8");
    r.count = 0xfff9;
    testOk(gwCodecBuildReadNotifyReply(out.bytes, BIG, &r, 8) == 0 &&
           gwCodecBuildReadNotifyReply(out.bytes, BIG, &r, 9) == 24 + 0x10000,
           "0xfff9 chars: extended header, refused for minor 8");
    n = writeMessage(DBR_DOUBLE, 10000, makeHost(DBR_DOUBLE, 10000, host.bytes));
    {
        gwCaChannelRequest w;
        testOk(gwCodecParseMessage(out.bytes, n, BIG, &m, &used) == GW_CODEC_OK &&
               m.headerSize == 24 && gwCodecDecodeWrite(&m, &w) == GW_CODEC_OK &&
               gwCodecDecodeValue(&w, back.bytes, 80000) == GW_CODEC_OK &&
               memcmp(back.bytes, host.bytes, 80000) == 0,
               "extended WRITE of 10000 doubles decodes to the host value");
    }
}

/* Build a one-element reply of host.bytes; return its payload. */
static const unsigned char *replyPayload(unsigned type, epicsUInt32 count)
{
    gwCaDataReply r = {0, 0, ECA_NORMAL, 1, NULL};

    r.dataType = (epicsUInt16)type;
    r.count = count;
    r.value = host.bytes;
    if (gwCodecBuildReadNotifyReply(out.bytes, BIG, &r, 13) == 0)
        return NULL;
    return out.bytes + 16;
}

static int cleanString(const unsigned char *s, size_t size, const char *want)
{
    size_t n = strlen(want);
    return memcmp(s, want, n) == 0 && allZero(s + n, size - n);
}

static void testDbrStrings(void)
{
    const unsigned char *p;
    struct dbr_ctrl_double *cd = (struct dbr_ctrl_double *)host.bytes;
    struct dbr_gr_enum *ge = (struct dbr_gr_enum *)host.bytes;
    gwCaChannelRequest put = {DBR_STRING, 1, 1, 2, 0, NULL, 8};

    memset(host.bytes, 'x', 200);
    strcpy((char *)host.bytes, "abc");
    p = replyPayload(DBR_STRING, 1);
    testOk(p && cleanString(p, 40, "abc"), "DBR_STRING reply: bytes after the NUL are zero");
    memset(host.bytes, 'y', 200);
    p = replyPayload(DBR_STRING, 1);
    testOk(p && p[39] == 0 && memcmp(p, host.bytes, 39) == 0,
           "DBR_STRING reply without a NUL: last byte becomes the NUL");
    memset(host.bytes, 'x', 200);
    strcpy((char *)host.bytes + 12, "t1");
    strcpy((char *)host.bytes + 52, "t2");
    p = replyPayload(DBR_TIME_STRING, 2);
    testOk(p && cleanString(p + 12, 40, "t1") && cleanString(p + 52, 40, "t2"),
           "DBR_TIME_STRING reply, 2 elements: both cleaned");
    memset(host.bytes, 'x', sizeof *cd);
    strcpy(cd->units, "mm");
    p = replyPayload(DBR_CTRL_DOUBLE, 1);
    testOk(p && cleanString(p + offsetof(struct dbr_ctrl_double, units), 8, "mm"),
           "DBR_CTRL_DOUBLE reply: units cleaned");
    memset(host.bytes, 'x', sizeof *ge);
    strcpy(ge->strs[0], "off");
    strcpy(ge->strs[15], "on");
    p = replyPayload(DBR_GR_ENUM, 1);
    testOk(p && cleanString(p + offsetof(struct dbr_gr_enum, strs), 26, "off") &&
           cleanString(p + offsetof(struct dbr_gr_enum, strs) + 15 * 26, 26, "on") &&
           p[offsetof(struct dbr_gr_enum, strs) + 26 + 25] == 0,
           "DBR_GR_ENUM reply: enum strings cleaned");
    memset(host.bytes, 'x', 200);
    strcpy((char *)host.bytes, "aiRecord");
    p = replyPayload(DBR_CLASS_NAME, 1);
    testOk(p && cleanString(p, 40, "aiRecord"), "DBR_CLASS_NAME reply cleaned");
    put.value = "abc\0junk";
    memset(back.bytes, 0xee, 40);
    testOk(gwCodecDecodeValue(&put, back.bytes, 40) == GW_CODEC_OK &&
           cleanString(back.bytes, 40, "abc"), "short string put: 40 bytes, zeros after NUL");
    memset(host.bytes, 'z', 40);
    put.value = host.bytes;
    put.valueSize = 40;
    testOk(gwCodecDecodeValue(&put, back.bytes, 40) == GW_CODEC_OK && back.bytes[39] == 0 &&
           memcmp(back.bytes, host.bytes, 39) == 0, "unterminated string put gets a NUL");
}

/* Base 7.0.3.1's caNetConvert, given two buffers, converts DBR_STS_LONG
 * arrays backwards; the codec must still send the right bytes. */
static void testDbrStsLongArray(void)
{
    static const unsigned char want[] = {
        0, 3, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3
    };
    static const dbr_long_t values[3] = {1, 2, 3};
    struct dbr_sts_long *v = (struct dbr_sts_long *)host.bytes;
    unsigned char before[16];
    const unsigned char *p;

    v->status = 3;
    v->severity = 2;
    memcpy(host.bytes + dbr_value_offset[DBR_STS_LONG], values, sizeof values);
    memcpy(before, host.bytes, sizeof before);
    p = replyPayload(DBR_STS_LONG, 3);
    testOk(p && memcmp(p, want, sizeof want) == 0 && memcmp(before, host.bytes, 16) == 0,
           "DBR_STS_LONG reply of 3 elements: right bytes, host value untouched");
}

static void testDbrEdges(void)
{
    gwCaDataReply r = {DBR_CTRL_DOUBLE, 1, ECA_NORMAL, 1, NULL};
    gwCaChannelRequest put = {DBR_DOUBLE, 2, 1, 2, 0, NULL, 16};
    static alignedBuffer first;
    size_t n;

    r.value = host.bytes;
    makeHost(DBR_CTRL_DOUBLE, 1, host.bytes);
    memset(out.bytes, 0xaa, 256);
    n = gwCodecBuildReadNotifyReply(out.bytes, BIG, &r, 13);
    memcpy(first.bytes, out.bytes, n);
    memset(out.bytes, 0x55, 256);
    testOk(n > 0 && gwCodecBuildReadNotifyReply(out.bytes, BIG, &r, 13) == n &&
           memcmp(first.bytes, out.bytes, n) == 0,
           "same reply whatever the buffer held before (no stale bytes)");
    r.value = NULL;
    r.status = ECA_GETFAIL;
    n = gwCodecBuildReadNotifyReply(out.bytes, BIG, &r, 13);
    testOk(n == 16 + CA_MESSAGE_ALIGN(sizeof(struct dbr_ctrl_double)) &&
           allZero(out.bytes + 16, n - 16) && out.bytes[11] == (ECA_GETFAIL & 0xff),
           "no value: zero payload, status in parameter 1");
    r.dataType = DBR_TIME_DOUBLE;
    r.count = 0;
    r.status = ECA_NORMAL;
    r.value = host.bytes;
    makeHost(DBR_TIME_DOUBLE, 1, host.bytes);
    n = gwCodecBuildReadNotifyReply(out.bytes, BIG, &r, 13);
    testOk(n == 16 + 24 && out.bytes[7] == 0 && out.bytes[6] == 0 &&
           allZero(out.bytes + 16 + 16, 8) && !allZero(out.bytes + 16, 16),
           "count 0: one zeroed element, status and time converted");
    r.count = 1;
    testOk(gwCodecBuildReadNotifyReply(out.bytes + 4, BIG - 4, &r, 13) == 0,
           "misaligned output buffer refused");
    r.dataType = DBR_PUT_ACKT;
    testOk(gwCodecBuildReadNotifyReply(out.bytes, BIG, &r, 13) == 0,
           "PUT_ACKT reply with a value refused (not readable)");
    r.value = NULL;
    r.status = ECA_GETFAIL;
    n = gwCodecBuildReadNotifyReply(out.bytes, BIG, &r, 13);
    testOk(n == 16 + 8 && allZero(out.bytes + 16, 8) && out.bytes[11] == (ECA_GETFAIL & 0xff),
           "PUT_ACKT failed reply: zeros and ECA_GETFAIL, as RSRV's read_reply");
    r.value = host.bytes;
    r.status = ECA_NORMAL;
    r.dataType = 39;
    testOk(gwCodecBuildEventAddReply(out.bytes, BIG, &r, 13) == 0, "type 39 reply refused");
    put.value = Z8 Z8;
    testOk(gwCodecDecodeValue(&put, back.bytes, 15) == GW_CODEC_BAD_BUFFER,
           "put decode into 15 bytes for 2 doubles: BAD_BUFFER");
    testOk(gwCodecDecodeValue(&put, back.bytes + 4, 16) == GW_CODEC_BAD_BUFFER,
           "put decode into a misaligned buffer: BAD_BUFFER");
    put.dataType = DBR_CLASS_NAME;
    testOk(gwCodecDecodeValue(&put, back.bytes, 100) == GW_CODEC_BAD_TYPE,
           "put decode of CLASS_NAME: BAD_TYPE");
    put.dataType = DBR_DOUBLE;
    put.count = 0;
    testOk(gwCodecDecodeValue(&put, back.bytes, 100) == GW_CODEC_BAD_COUNT,
           "put decode of count 0: BAD_COUNT");
    testOk(gwCodecCheckValue(DBR_STRING, 1, NULL, 0) == GW_CODEC_BAD_COUNT,
           "no value at all for one string: BAD_COUNT");
}

/* The client side of a search: what the upstream provider sends and the
 * IOC's answer, including hostile answers. */
static void testClientSearch(void)
{
    unsigned char buf[128];
    char longName[GW_CA_NAME_MAX + 2];
    gwCaMessage m;
    gwCaSearch s;
    gwCaSearchReply r;
    gwCaHeader h;
    size_t n, used;

    n = gwCodecBuildSearch(buf, sizeof buf, "pv:1", DONTREPLY, 13, 77);
    testOk(n == 24 && gwCodecParseMessage(buf, n, 1024, &m, &used) == GW_CODEC_OK && used == n
           && gwCodecDecodeSearch(&m, &s) == GW_CODEC_OK && !s.replyWanted
           && s.searchId == 77 && m.header.parameter1 == 77 && s.clientMinor == 13
           && strcmp(s.name.text, "pv:1") == 0, "SEARCH request round trip: padded to 8, id twice");
    n = gwCodecBuildSearch(buf, sizeof buf, "1234567", DONTREPLY, 13, 1);
    testOk(n == 24, "a 7-character name and its NUL fill 8 bytes exactly");
    n = gwCodecBuildSearch(buf, sizeof buf, "12345678", DONTREPLY, 13, 1);
    testOk(n == 32, "an 8-character name needs 16");
    testOk(gwCodecBuildSearch(buf, sizeof buf, "", DONTREPLY, 13, 1) == 0
           && gwCodecBuildSearch(buf, sizeof buf, NULL, DONTREPLY, 13, 1) == 0,
           "SEARCH for an empty or missing name: refused");
    memset(longName, 'x', sizeof longName - 1);
    longName[sizeof longName - 1] = '\0';
    testOk(gwCodecBuildSearch(buf, sizeof buf, longName, DONTREPLY, 13, 1) == 0,
           "SEARCH for a name over the limit: refused");
    testOk(gwCodecBuildSearch(buf, 23, "pv:1", DONTREPLY, 13, 1) == 0,
           "SEARCH into a buffer one byte short: refused");

    n = gwCodecBuildSearchReply(buf, sizeof buf, 5066, GW_CA_ADDRESS_OF_SENDER, 77, 13);
    testOk(gwCodecParseMessage(buf, n, 1024, &m, &used) == GW_CODEC_OK
           && gwCodecDecodeSearchReply(&m, &r) == GW_CODEC_OK && r.tcpPort == 5066
           && r.serverAddress == GW_CA_ADDRESS_OF_SENDER && r.searchId == 77 && r.serverMinor == 13,
           "SEARCH reply round trip: port, address, id, minor version");
    h = header(CA_PROTO_SEARCH, 0, 5064, 0, 0x7f000001u, 9);
    m = messageOf(&h, "");
    testOk(gwCodecDecodeSearchReply(&m, &r) == GW_CODEC_OK && r.serverMinor == 0 && r.searchId == 9
           && r.serverAddress == 0x7f000001u, "SEARCH reply without payload (old server): minor 0");
    free((void *)m.payload);
    h = header(CA_PROTO_NOT_FOUND, 0, DOREPLY, 13, 9, 9);
    m = messageOf(&h, "");
    testOk(gwCodecDecodeSearchReply(&m, &r) == GW_CODEC_BAD_COMMAND,
           "NOT_FOUND is not a SEARCH reply");
    free((void *)m.payload);
}

MAIN(gwCodecTest)
{
    (void)argc; /* MAIN() names them; this test takes no arguments */
    (void)argv;
    testPlan(318);
    testStatusText();
    testParseExactBytes();
    testParseShortBuffers();
    testParseErrors();
    testCheckRequest();
    testDecoders();
    testClientSearch();
    testLongNames();
    testBuildExactBytes();
    testBuildRoundTrips();
    testBuildCapacity();
    testBuildRefusals();
    testErrorMessage();
    testDbrSizes();
    testDbrReplyRoundTrips();
    testDbrPutRoundTrips();
    testDbrExtended();
    testDbrStrings();
    testDbrStsLongArray();
    testDbrEdges();
    return testDone();
}
