/* gwCodec.c - CA message framing, request decoders and the builders of
 * messages without DBR data (issue 4). DBR sizes, data replies and value
 * conversion are in gwCodecDbr.c.
 *
 * Pure, thread-agnostic code: no state, no locks, no allocation; any
 * thread. Every read is bounds-checked against the length the caller gave;
 * wire integers are assembled byte by byte (big-endian, no unaligned
 * access).
 */
#include <string.h>

#include <caProto.h>
#include <db_access.h>

#include "gwCodec.h"

#define EXTENDED_SIZE_MARK 0xffffu

static epicsUInt16 getU16(const unsigned char *p)
{
    return (epicsUInt16)((p[0] << 8) | p[1]);
}

static epicsUInt32 getU32(const unsigned char *p)
{
    return ((epicsUInt32)p[0] << 24) | ((epicsUInt32)p[1] << 16) |
           ((epicsUInt32)p[2] << 8) | (epicsUInt32)p[3];
}

static void putU16(unsigned char *p, epicsUInt32 v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static void putU32(unsigned char *p, epicsUInt32 v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

const char *gwCodecStatusText(gwCodecStatus status)
{
    switch (status) {
    case GW_CODEC_OK:            return "ok";
    case GW_CODEC_NEED_MORE:     return "incomplete message";
    case GW_CODEC_TOO_LARGE:     return "payload too large";
    case GW_CODEC_BAD_SIZE:      return "payload size not a multiple of 8";
    case GW_CODEC_BAD_COMMAND:   return "bad command";
    case GW_CODEC_BAD_TYPE:      return "bad DBR type";
    case GW_CODEC_BAD_COUNT:     return "bad element count";
    case GW_CODEC_BAD_NAME:      return "bad name";
    case GW_CODEC_SHORT_PAYLOAD: return "payload too short";
    case GW_CODEC_BAD_BUFFER:    return "output buffer too small or misaligned";
    }
    return "unknown codec status";
}

/* ---- framing ---------------------------------------------------------- */

gwCodecStatus gwCodecParseHeader(const void *buf, size_t len, size_t maxPayload,
                                 gwCaHeader *out, size_t *headerLen)
{
    const unsigned char *p = buf;
    epicsUInt32 size, count;
    size_t hlen = GW_CA_HEADER_SIZE;

    if (len < GW_CA_HEADER_SIZE)
        return GW_CODEC_NEED_MORE;
    size = getU16(p + 2);
    count = getU16(p + 6);
    if (size == EXTENDED_SIZE_MARK && count == 0) {
        hlen = GW_CA_EXTENDED_HEADER_SIZE;
        if (len < hlen)
            return GW_CODEC_NEED_MORE;
        size = getU32(p + 16);
        count = getU32(p + 20);
    }
    if (size > maxPayload)
        return GW_CODEC_TOO_LARGE;
    if (size % 8u != 0)
        return GW_CODEC_BAD_SIZE;
    out->command = getU16(p);
    out->payloadSize = size;
    out->dataType = getU16(p + 4);
    out->count = count;
    out->parameter1 = getU32(p + 8);
    out->parameter2 = getU32(p + 12);
    *headerLen = hlen;
    return GW_CODEC_OK;
}

gwCodecStatus gwCodecParseMessage(const void *buf, size_t len, size_t maxPayload,
                                  gwCaMessage *out, size_t *messageLen)
{
    size_t hlen;
    gwCodecStatus status = gwCodecParseHeader(buf, len, maxPayload, &out->header, &hlen);

    if (status != GW_CODEC_OK)
        return status;
    if (len - hlen < out->header.payloadSize)
        return GW_CODEC_NEED_MORE;
    out->headerSize = hlen;
    out->payload = (const unsigned char *)buf + hlen;
    *messageLen = hlen + out->header.payloadSize;
    return GW_CODEC_OK;
}

gwCodecStatus gwCodecCheckRequest(const gwCaHeader *header)
{
    switch (header->command) {
    case CA_PROTO_VERSION:
    case CA_PROTO_EVENT_ADD:
    case CA_PROTO_EVENT_CANCEL:
    case CA_PROTO_WRITE:
    case CA_PROTO_SEARCH:
    case CA_PROTO_EVENTS_OFF:
    case CA_PROTO_EVENTS_ON:
    case CA_PROTO_READ_SYNC:
    case CA_PROTO_CLEAR_CHANNEL:
    case CA_PROTO_READ_NOTIFY:
    case CA_PROTO_CREATE_CHAN:
    case CA_PROTO_WRITE_NOTIFY:
    case CA_PROTO_CLIENT_NAME:
    case CA_PROTO_HOST_NAME:
    case CA_PROTO_ECHO:
        return GW_CODEC_OK;
    default:
        return GW_CODEC_BAD_COMMAND;
    }
}

/* ---- request decoders ------------------------------------------------- */

/* A NUL-terminated string of at most maxLength characters at the start of
 * the payload; with allowEmpty, an empty payload is the empty string. */
static gwCodecStatus decodeString(const gwCaMessage *m, size_t maxLength, int allowEmpty,
                                  gwCaString *out)
{
    const unsigned char *nul;

    if (m->header.payloadSize == 0 && allowEmpty) {
        out->text = "";
        out->length = 0;
        return GW_CODEC_OK;
    }
    nul = memchr(m->payload, '\0', m->header.payloadSize);
    if (!nul)
        return GW_CODEC_BAD_NAME;
    out->text = (const char *)m->payload;
    out->length = (size_t)(nul - m->payload);
    if (out->length > maxLength || (out->length == 0 && !allowEmpty))
        return GW_CODEC_BAD_NAME;
    return GW_CODEC_OK;
}

gwCodecStatus gwCodecDecodeVersion(const gwCaMessage *m, gwCaVersion *out)
{
    if (m->header.command != CA_PROTO_VERSION)
        return GW_CODEC_BAD_COMMAND;
    out->priority = m->header.dataType;
    out->minorVersion = m->header.count;
    out->sequence = m->header.parameter1;
    return GW_CODEC_OK;
}

gwCodecStatus gwCodecDecodeSearch(const gwCaMessage *m, gwCaSearch *out)
{
    if (m->header.command != CA_PROTO_SEARCH)
        return GW_CODEC_BAD_COMMAND;
    out->replyFlag = m->header.dataType;
    out->replyWanted = m->header.dataType == DOREPLY;
    out->clientMinor = m->header.count;
    out->searchId = m->header.parameter2;
    return decodeString(m, GW_CA_NAME_MAX, 0, &out->name);
}

/* A server's answer to a search (what a client receives): the TCP port in
 * the data type field, the address in parameter 1, the search id in
 * parameter 2, the server's minor version in the first two payload bytes
 * (servers before 4.1 send no payload: 0). */
gwCodecStatus gwCodecDecodeSearchReply(const gwCaMessage *m, gwCaSearchReply *out)
{
    if (m->header.command != CA_PROTO_SEARCH)
        return GW_CODEC_BAD_COMMAND;
    out->tcpPort = m->header.dataType;
    out->serverAddress = m->header.parameter1;
    out->searchId = m->header.parameter2;
    out->serverMinor = m->header.payloadSize >= 2u
        ? (epicsUInt16)((m->payload[0] << 8) | m->payload[1]) : 0u;
    return GW_CODEC_OK;
}

gwCodecStatus gwCodecDecodeCreateChannel(const gwCaMessage *m, gwCaCreateChannel *out)
{
    if (m->header.command != CA_PROTO_CREATE_CHAN)
        return GW_CODEC_BAD_COMMAND;
    out->clientChannelId = m->header.parameter1;
    out->clientMinor = m->header.parameter2;
    return decodeString(m, GW_CA_NAME_MAX, 0, &out->name);
}

gwCodecStatus gwCodecDecodeClientName(const gwCaMessage *m, gwCaString *out)
{
    if (m->header.command != CA_PROTO_CLIENT_NAME && m->header.command != CA_PROTO_HOST_NAME)
        return GW_CODEC_BAD_COMMAND;
    return decodeString(m, GW_CA_CLIENT_NAME_MAX, 1, out);
}

static void channelRequest(const gwCaMessage *m, gwCaChannelRequest *out)
{
    out->dataType = m->header.dataType;
    out->count = m->header.count;
    out->serverChannelId = m->header.parameter1;
    out->requestId = m->header.parameter2;
    out->eventMask = 0;
    out->value = NULL;
    out->valueSize = 0;
}

/* Type and count of a read or subscription. Only a type beyond
 * LAST_BUFFER_TYPE is bad (RSRV's INVALID_DB_REQ); the source answers a
 * type it cannot read (PUT_ACKT, PUT_ACKS) with a failed reply. */
static gwCodecStatus checkReadable(const gwCaChannelRequest *r, unsigned clientMinor)
{
    if (r->dataType > LAST_BUFFER_TYPE)
        return GW_CODEC_BAD_TYPE;
    if (r->count == 0 && clientMinor < GW_CA_MINOR_COUNT_ZERO)
        return GW_CODEC_BAD_COUNT;
    return GW_CODEC_OK;
}

gwCodecStatus gwCodecDecodeRead(const gwCaMessage *m, unsigned clientMinor,
                                gwCaChannelRequest *out)
{
    if (m->header.command != CA_PROTO_READ_NOTIFY)
        return GW_CODEC_BAD_COMMAND;
    channelRequest(m, out);
    return checkReadable(out, clientMinor);
}

gwCodecStatus gwCodecDecodeEventAdd(const gwCaMessage *m, unsigned clientMinor,
                                    gwCaChannelRequest *out)
{
    if (m->header.command != CA_PROTO_EVENT_ADD)
        return GW_CODEC_BAD_COMMAND;
    channelRequest(m, out);
    if (m->header.payloadSize < GW_CA_EVENT_ADD_PAYLOAD)
        return GW_CODEC_SHORT_PAYLOAD;
    out->eventMask = getU16(m->payload + GW_CA_EVENT_MASK_OFFSET);
    return checkReadable(out, clientMinor);
}

gwCodecStatus gwCodecDecodeEventCancel(const gwCaMessage *m, gwCaChannelRequest *out)
{
    if (m->header.command != CA_PROTO_EVENT_CANCEL)
        return GW_CODEC_BAD_COMMAND;
    channelRequest(m, out);
    return GW_CODEC_OK;
}

gwCodecStatus gwCodecDecodeWrite(const gwCaMessage *m, gwCaChannelRequest *out)
{
    if (m->header.command != CA_PROTO_WRITE && m->header.command != CA_PROTO_WRITE_NOTIFY)
        return GW_CODEC_BAD_COMMAND;
    channelRequest(m, out);
    out->value = m->payload;
    out->valueSize = m->header.payloadSize;
    return gwCodecCheckValue(out->dataType, out->count, out->value, out->valueSize);
}

gwCodecStatus gwCodecDecodeClearChannel(const gwCaMessage *m, gwCaClearChannel *out)
{
    if (m->header.command != CA_PROTO_CLEAR_CHANNEL)
        return GW_CODEC_BAD_COMMAND;
    out->serverChannelId = m->header.parameter1;
    out->clientChannelId = m->header.parameter2;
    return GW_CODEC_OK;
}

/* ---- builders --------------------------------------------------------- */

size_t gwCodecWriteHeader(void *buf, size_t cap, const gwCaHeader *h, unsigned clientMinor)
{
    unsigned char *p = buf;
    int extended = h->payloadSize >= EXTENDED_SIZE_MARK || h->count > 0xffffu;
    size_t hlen = extended ? GW_CA_EXTENDED_HEADER_SIZE : GW_CA_HEADER_SIZE;

    if (cap < hlen || (extended && clientMinor < GW_CA_MINOR_EXTENDED))
        return 0;
    putU16(p, h->command);
    putU16(p + 2, extended ? EXTENDED_SIZE_MARK : h->payloadSize);
    putU16(p + 4, h->dataType);
    putU16(p + 6, extended ? 0 : h->count);
    putU32(p + 8, h->parameter1);
    putU32(p + 12, h->parameter2);
    if (extended) {
        putU32(p + 16, h->payloadSize);
        putU32(p + 20, h->count);
    }
    return hlen;
}

/* A header-only message that may need the extended form for its count. */
static size_t buildCounted(void *buf, size_t cap, epicsUInt16 command, epicsUInt16 dataType,
                           epicsUInt32 count, epicsUInt32 parameter1, epicsUInt32 parameter2,
                           unsigned clientMinor)
{
    gwCaHeader h;

    h.command = command;
    h.payloadSize = 0;
    h.dataType = dataType;
    h.count = count;
    h.parameter1 = parameter1;
    h.parameter2 = parameter2;
    return gwCodecWriteHeader(buf, cap, &h, clientMinor);
}

/* A header-only message in the standard form (a 16-bit count never needs
 * the extended one). */
static size_t buildPlain(void *buf, size_t cap, epicsUInt16 command, epicsUInt16 dataType,
                         epicsUInt16 count, epicsUInt32 parameter1, epicsUInt32 parameter2)
{
    return buildCounted(buf, cap, command, dataType, count, parameter1, parameter2, 0);
}

size_t gwCodecBuildVersion(void *buf, size_t cap, epicsUInt16 priority,
                           epicsUInt16 minorVersion, epicsUInt32 sequence)
{
    return buildPlain(buf, cap, CA_PROTO_VERSION, priority, minorVersion, sequence, 0);
}

size_t gwCodecBuildSearchReply(void *buf, size_t cap, epicsUInt16 tcpPort,
                               epicsUInt32 serverAddress, epicsUInt32 searchId,
                               epicsUInt16 serverMinor)
{
    unsigned char *p = buf;
    size_t n;

    if (cap < GW_CA_HEADER_SIZE + 8u)
        return 0;
    n = buildPlain(buf, cap, CA_PROTO_SEARCH, tcpPort, 0, serverAddress, searchId);
    putU16(p + 2, 8u);
    memset(p + n, 0, 8u);
    putU16(p + n, serverMinor);
    return n + 8u;
}

size_t gwCodecBuildSearch(void *buf, size_t cap, const char *name, epicsUInt16 replyFlag,
                          epicsUInt16 clientMinor, epicsUInt32 searchId)
{
    unsigned char *p = buf;
    size_t length = name ? strlen(name) : 0u;
    size_t payload = (length + 1u + 7u) & ~(size_t)7u;
    size_t n;

    if (length == 0 || length > GW_CA_NAME_MAX || cap < GW_CA_HEADER_SIZE + payload)
        return 0;
    n = buildPlain(buf, cap, CA_PROTO_SEARCH, replyFlag, clientMinor, searchId, searchId);
    putU16(p + 2, (epicsUInt32)payload);
    memset(p + n, 0, payload);
    memcpy(p + n, name, length);
    return n + payload;
}

size_t gwCodecBuildNotFound(void *buf, size_t cap, epicsUInt16 replyFlag,
                            epicsUInt16 clientMinor, epicsUInt32 searchId)
{
    return buildPlain(buf, cap, CA_PROTO_NOT_FOUND, replyFlag, clientMinor, searchId, searchId);
}

size_t gwCodecBuildAccessRights(void *buf, size_t cap, epicsUInt32 clientChannelId,
                                epicsUInt32 rights)
{
    return buildPlain(buf, cap, CA_PROTO_ACCESS_RIGHTS, 0, 0, clientChannelId, rights);
}

size_t gwCodecBuildCreateChannelReply(void *buf, size_t cap, epicsUInt16 dataType,
                                      epicsUInt32 count, epicsUInt32 clientChannelId,
                                      epicsUInt32 serverChannelId, unsigned clientMinor)
{
    return buildCounted(buf, cap, CA_PROTO_CREATE_CHAN, dataType, count, clientChannelId,
                        serverChannelId, clientMinor);
}

size_t gwCodecBuildCreateChannelFail(void *buf, size_t cap, epicsUInt32 clientChannelId)
{
    return buildPlain(buf, cap, CA_PROTO_CREATE_CH_FAIL, 0, 0, clientChannelId, 0);
}

size_t gwCodecBuildWriteNotifyReply(void *buf, size_t cap, epicsUInt16 dataType,
                                    epicsUInt32 count, epicsUInt32 status, epicsUInt32 ioId,
                                    unsigned clientMinor)
{
    return buildCounted(buf, cap, CA_PROTO_WRITE_NOTIFY, dataType, count, status, ioId,
                        clientMinor);
}

size_t gwCodecBuildEventCancelReply(void *buf, size_t cap, const gwCaChannelRequest *cancel,
                                    unsigned clientMinor)
{
    return buildCounted(buf, cap, CA_PROTO_EVENT_ADD, cancel->dataType, cancel->count,
                        cancel->serverChannelId, cancel->requestId, clientMinor);
}

size_t gwCodecBuildEcho(void *buf, size_t cap)
{
    return buildPlain(buf, cap, CA_PROTO_ECHO, 0, 0, 0, 0);
}

size_t gwCodecBuildReadSync(void *buf, size_t cap, const gwCaHeader *request)
{
    if (request->count > 0xffffu)
        return 0;
    return buildPlain(buf, cap, CA_PROTO_READ_SYNC, request->dataType,
                      (epicsUInt16)request->count, request->parameter1, request->parameter2);
}

size_t gwCodecBuildClearChannel(void *buf, size_t cap, epicsUInt32 serverChannelId,
                                epicsUInt32 clientChannelId)
{
    return buildPlain(buf, cap, CA_PROTO_CLEAR_CHANNEL, 0, 0, serverChannelId, clientChannelId);
}

size_t gwCodecBuildError(void *buf, size_t cap, const gwCaHeader *request,
                         epicsUInt32 clientChannelId, epicsUInt32 status, const char *message)
{
    unsigned char *p = buf;
    unsigned char copy[GW_CA_EXTENDED_HEADER_SIZE];
    size_t copyLen = gwCodecWriteHeader(copy, sizeof copy, request, GW_CA_MINOR_VERSION);
    size_t textLen;
    size_t payload;

    if (!message)
        message = "";
    textLen = strlen(message);
    if (textLen > GW_CA_ERROR_TEXT_MAX)
        textLen = GW_CA_ERROR_TEXT_MAX;
    payload = CA_MESSAGE_ALIGN(copyLen + textLen + 1u);
    if (cap < GW_CA_HEADER_SIZE + payload)
        return 0;
    buildPlain(buf, cap, CA_PROTO_ERROR, 0, 0, clientChannelId, status);
    putU16(p + 2, (epicsUInt32)payload);
    p += GW_CA_HEADER_SIZE;
    memcpy(p, copy, copyLen);
    memcpy(p + copyLen, message, textLen);
    memset(p + copyLen + textLen, 0, payload - copyLen - textLen);
    return GW_CA_HEADER_SIZE + payload;
}

size_t gwCodecBuildServerDisconnect(void *buf, size_t cap, epicsUInt32 clientChannelId)
{
    return buildPlain(buf, cap, CA_PROTO_SERVER_DISCONN, 0, 0, clientChannelId, 0);
}

size_t gwCodecBuildBeacon(void *buf, size_t cap, epicsUInt16 serverMinor, epicsUInt16 tcpPort,
                          epicsUInt32 sequence, epicsUInt32 serverAddress)
{
    return buildPlain(buf, cap, CA_PROTO_RSRV_IS_UP, serverMinor, tcpPort, sequence,
                      serverAddress);
}
