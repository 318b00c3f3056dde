/* gwCodecFuzz.c - libFuzzer target for the CA codec (issue 4).
 *
 * Treats the input as a byte stream from a client: parses message after
 * message, runs the decoder for each command, converts WRITE values to
 * host order, and builds the replies a server would send. Every built
 * message must parse back to the header it was built from; any difference
 * aborts, so libFuzzer reports it with the input. No sockets, no state
 * between inputs. Built and run by scripts/fuzz.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <caProto.h>
#include <caerr.h>
#include <db_access.h>

#include "gwCodec.h"

#define FUZZ_MAX_PAYLOAD 0x20000u
#define FUZZ_BUFFER (FUZZ_MAX_PAYLOAD + 64u)

typedef union fuzzBuffer {
    double align;
    unsigned char bytes[FUZZ_BUFFER];
} fuzzBuffer;

static fuzzBuffer hostValue, reply;

/* A message the codec built must parse back whole, with this header. */
static void checkBuilt(size_t n, const gwCaHeader *want)
{
    gwCaMessage m;
    size_t used;

    if (n == 0)
        return;
    if (gwCodecParseMessage(reply.bytes, n, FUZZ_MAX_PAYLOAD, &m, &used) != GW_CODEC_OK ||
        used != n || m.header.command != want->command ||
        m.header.dataType != want->dataType || m.header.count != want->count ||
        m.header.parameter1 != want->parameter1 || m.header.parameter2 != want->parameter2)
        abort();
}

static gwCaHeader expect(unsigned command, unsigned dataType, epicsUInt32 count,
                         epicsUInt32 p1, epicsUInt32 p2)
{
    gwCaHeader h = {0, 0, 0, 0, 0, 0};

    h.command = (epicsUInt16)command;
    h.dataType = (epicsUInt16)dataType;
    h.count = count;
    h.parameter1 = p1;
    h.parameter2 = p2;
    return h;
}

static void dataReply(unsigned command, const gwCaChannelRequest *r, const void *value,
                      unsigned minor)
{
    gwCaDataReply d;
    gwCaHeader want = expect(command, r->dataType, r->count, ECA_NORMAL, r->requestId);
    size_t need = gwCodecDataReplySize(r->dataType, r->count, minor), n;

    d.dataType = r->dataType;
    d.count = r->count;
    d.status = ECA_NORMAL;
    d.requestId = r->requestId;
    d.value = value;
    if (need == 0 || need > FUZZ_MAX_PAYLOAD)
        return;
    n = command == CA_PROTO_READ_NOTIFY ? gwCodecBuildReadNotifyReply(reply.bytes, need, &d, minor)
                                        : gwCodecBuildEventAddReply(reply.bytes, need, &d, minor);
    if (n != need)
        abort();
    checkBuilt(n, &want);
}

static void onRead(const gwCaMessage *m, unsigned minor)
{
    gwCaChannelRequest r;
    gwCodecStatus s = m->header.command == CA_PROTO_READ_NOTIFY
                          ? gwCodecDecodeRead(m, minor, &r)
                          : gwCodecDecodeEventAdd(m, minor, &r);

    if (s == GW_CODEC_OK)
        dataReply(m->header.command, &r, NULL, minor);
}

static void onWrite(const gwCaMessage *m)
{
    gwCaChannelRequest w;
    gwCaHeader want;
    size_t n;

    if (gwCodecDecodeWrite(m, &w) != GW_CODEC_OK)
        return;
    if (gwCodecDbrSize(w.dataType, w.count) > sizeof hostValue.bytes)
        return;
    if (gwCodecDecodeValue(&w, hostValue.bytes, sizeof hostValue.bytes) != GW_CODEC_OK)
        abort();
    if (gwCodecTypeIsReadable(w.dataType))
        dataReply(CA_PROTO_READ_NOTIFY, &w, hostValue.bytes, GW_CA_MINOR_VERSION);
    want = expect(CA_PROTO_WRITE_NOTIFY, w.dataType, w.count, ECA_NORMAL, w.requestId);
    n = gwCodecBuildWriteNotifyReply(reply.bytes, sizeof reply.bytes, w.dataType, w.count,
                                     ECA_NORMAL, w.requestId, GW_CA_MINOR_VERSION);
    checkBuilt(n, &want);
}

static void onName(const gwCaMessage *m)
{
    gwCaSearch s;
    gwCaCreateChannel c;
    gwCaHeader want;
    size_t n;

    if (m->header.command == CA_PROTO_SEARCH && gwCodecDecodeSearch(m, &s) == GW_CODEC_OK) {
        if (strlen(s.name.text) != s.name.length)
            abort();
        want = expect(CA_PROTO_NOT_FOUND, s.replyFlag, (epicsUInt16)s.clientMinor, s.searchId,
                      s.searchId);
        n = gwCodecBuildNotFound(reply.bytes, sizeof reply.bytes, s.replyFlag,
                                 (epicsUInt16)s.clientMinor, s.searchId);
        checkBuilt(n, &want);
        /* the same name searched for by the upstream provider */
        want = expect(CA_PROTO_SEARCH, DONTREPLY, GW_CA_MINOR_VERSION, s.searchId, s.searchId);
        n = gwCodecBuildSearch(reply.bytes, sizeof reply.bytes, s.name.text, DONTREPLY,
                               GW_CA_MINOR_VERSION, s.searchId);
        checkBuilt(n, &want);
    }
    if (m->header.command == CA_PROTO_SEARCH) {
        /* what an upstream IOC's answer is read with: any payload size */
        gwCaSearchReply r;
        if (gwCodecDecodeSearchReply(m, &r) != GW_CODEC_OK || r.searchId != m->header.parameter2
            || (m->header.payloadSize < 2u && r.serverMinor != 0))
            abort();
    }
    if (m->header.command == CA_PROTO_CREATE_CHAN &&
        gwCodecDecodeCreateChannel(m, &c) == GW_CODEC_OK) {
        if (strlen(c.name.text) != c.name.length)
            abort();
        want = expect(CA_PROTO_CREATE_CHAN, DBR_DOUBLE, m->header.count, c.clientChannelId, 1);
        n = gwCodecBuildCreateChannelReply(reply.bytes, sizeof reply.bytes, DBR_DOUBLE,
                                           m->header.count, c.clientChannelId, 1, c.clientMinor);
        checkBuilt(n, &want);
    }
}

static void onOther(const gwCaMessage *m)
{
    gwCaVersion v;
    gwCaString text;
    gwCaChannelRequest r;
    gwCaClearChannel cl;
    gwCaHeader want = expect(CA_PROTO_ERROR, 0, 0, 1, ECA_INTERNAL);

    checkBuilt(gwCodecBuildError(reply.bytes, sizeof reply.bytes, &m->header, 1, ECA_INTERNAL,
                                 gwCodecStatusText(gwCodecCheckRequest(&m->header))), &want);
    gwCodecDecodeVersion(m, &v);
    gwCodecDecodeClearChannel(m, &cl);
    if (gwCodecDecodeClientName(m, &text) == GW_CODEC_OK && strlen(text.text) != text.length)
        abort();
    if (gwCodecDecodeEventCancel(m, &r) == GW_CODEC_OK) {
        want = expect(CA_PROTO_EVENT_ADD, r.dataType, r.count, r.serverChannelId, r.requestId);
        checkBuilt(gwCodecBuildEventCancelReply(reply.bytes, sizeof reply.bytes, &r,
                                                GW_CA_MINOR_VERSION), &want);
    }
    if (m->header.command == CA_PROTO_READ_SYNC && m->header.count <= 0xffffu)
        checkBuilt(gwCodecBuildReadSync(reply.bytes, sizeof reply.bytes, &m->header),
                   &m->header);
}

/* The builders whose fields come from the server: feed them fuzzed ones. */
static void onAnyFields(const gwCaHeader *h)
{
    epicsUInt16 t = h->dataType, c = (epicsUInt16)h->count;
    epicsUInt32 p1 = h->parameter1, p2 = h->parameter2;
    gwCaHeader want = expect(CA_PROTO_VERSION, t, c, p1, 0);
    size_t cap = sizeof reply.bytes;

    checkBuilt(gwCodecBuildVersion(reply.bytes, cap, t, c, p1), &want);
    want = expect(CA_PROTO_SEARCH, t, 0, p1, p2);
    checkBuilt(gwCodecBuildSearchReply(reply.bytes, cap, t, p1, p2, c), &want);
    want = expect(CA_PROTO_ACCESS_RIGHTS, 0, 0, p1, p2);
    checkBuilt(gwCodecBuildAccessRights(reply.bytes, cap, p1, p2), &want);
    want = expect(CA_PROTO_CREATE_CH_FAIL, 0, 0, p1, 0);
    checkBuilt(gwCodecBuildCreateChannelFail(reply.bytes, cap, p1), &want);
    want = expect(CA_PROTO_ECHO, 0, 0, 0, 0);
    checkBuilt(gwCodecBuildEcho(reply.bytes, cap), &want);
    want = expect(CA_PROTO_CLEAR_CHANNEL, 0, 0, p1, p2);
    checkBuilt(gwCodecBuildClearChannel(reply.bytes, cap, p1, p2), &want);
    want = expect(CA_PROTO_SERVER_DISCONN, 0, 0, p1, 0);
    checkBuilt(gwCodecBuildServerDisconnect(reply.bytes, cap, p1), &want);
    want = expect(CA_PROTO_RSRV_IS_UP, t, c, p1, p2);
    checkBuilt(gwCodecBuildBeacon(reply.bytes, cap, t, c, p1, p2), &want);
}

static void onMessage(const gwCaMessage *m)
{
    switch (m->header.command) {
    case CA_PROTO_READ_NOTIFY:
    case CA_PROTO_EVENT_ADD:
        onRead(m, 8);
        onRead(m, GW_CA_MINOR_VERSION);
        break;
    case CA_PROTO_WRITE:
    case CA_PROTO_WRITE_NOTIFY:
        onWrite(m);
        break;
    case CA_PROTO_SEARCH:
    case CA_PROTO_CREATE_CHAN:
        onName(m);
        break;
    default:
        break;
    }
    onOther(m);
    onAnyFields(&m->header);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gwCaMessage m;
    size_t used;

    while (gwCodecParseMessage(data, size, FUZZ_MAX_PAYLOAD, &m, &used) == GW_CODEC_OK) {
        onMessage(&m);
        data += used;
        size -= used;
    }
    return 0;
}
