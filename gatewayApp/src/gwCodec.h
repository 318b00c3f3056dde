/* gwCodec.h - Channel Access message codec: parse and build every message
 * a CA server receives or sends, and the SEARCH exchange of a client (the
 * upstream provider's own name searches, gwUpstreamSearch.c).
 *
 * Pure, thread-agnostic code (issue 4): no sockets, threads, locks, global
 * state, allocation or printing. Any thread may call any function at any
 * time; the caller owns every buffer it passes in. Functions report
 * problems as gwCodecStatus codes (parsers/decoders) or as a written size
 * of 0 (builders).
 *
 * For developers, a server's receive loop looks like this:
 *
 *     gwCaMessage m;
 *     size_t used;
 *     gwCodecStatus s = gwCodecParseMessage(buf, len, maxPayload, &m, &used);
 *     if (s == GW_CODEC_NEED_MORE)   -> read more bytes, call again
 *     else if (s != GW_CODEC_OK)     -> the stream is unparseable: close it
 *     else switch (m.header.command) -> gwCodecDecodeXxx(&m, ...), then
 *                                       drop `used` bytes and loop
 *
 * A decoder error (bad type, bad name, ...) concerns one message only; the
 * stream stays in step, so the server answers with ERROR or a failure
 * reply and goes on. Decoded strings and values point into the caller's
 * receive buffer and live as long as it does.
 *
 * Builders write one message into buf (capacity cap) and return its size
 * in bytes, or 0 when it does not fit, an argument is invalid, or the
 * message needs the extended header and the client's minor version is
 * below 9. They never write past cap. Data-carrying builders need buf
 * 8-byte aligned (malloc'd buffers are; every message is a multiple of 8
 * bytes, so messages appended one after another stay aligned).
 *
 * Rules a server author must know:
 * - Framing refuses payloads over maxPayload and payload sizes that are
 *   not a multiple of 8 (RSRV and libca do too); both end the stream. The
 *   extended header is accepted for any size.
 * - PV names (SEARCH, CREATE_CHAN) must be 1..GW_CA_NAME_MAX characters
 *   with their NUL inside the payload; CLIENT_NAME/HOST_NAME may be empty
 *   (even an empty payload), else NUL-terminated, at most
 *   GW_CA_CLIENT_NAME_MAX characters. Nothing is truncated silently.
 * - Reads and subscriptions: any DBR type but PUT_ACKT/PUT_ACKS; count 0
 *   only from clients with minor version >= 13. Whether the count fits
 *   the channel or the buffers is the server's check
 *   (gwCodecDataReplySize, ECA_BADCOUNT / ECA_TOLARGE).
 * - Writes: DBR types 0..PUT_ACKS (not STSACK_STRING, CLASS_NAME), count
 *   >= 1, payload at least dbr_size_n(type, count); one DBR_STRING may
 *   come shorter (libca sends just the string and its NUL).
 * - Strings in DBRs the codec writes (replies and decoded puts) have
 *   zeros after their NUL and always a NUL; see gwCodecDbr.c.
 * - EVENT_ADD masks are passed on as sent; a mask of 0 is the server's
 *   to refuse.
 */
#ifndef INC_gwCodec_H
#define INC_gwCodec_H

#include <stddef.h>

#include <epicsTypes.h>
#include <caProto.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The CA minor protocol version this codec speaks (Base's libca and RSRV
 * use 13, CA_MINOR_PROTOCOL_REVISION, which no installed header defines). */
#define GW_CA_MINOR_VERSION 13u
/* Oldest client minor version that understands the extended header. */
#define GW_CA_MINOR_EXTENDED 9u
/* Oldest client minor version that may ask for count 0 (current size). */
#define GW_CA_MINOR_COUNT_ZERO 13u
/* Oldest client RSRV answers (CA_MINIMUM_SUPPORTED_VERSION) and the one
 * from which UDP VERSION carries a sequence number (CA_V411). */
#define GW_CA_MINOR_SUPPORTED 4u
#define GW_CA_MINOR_SEQUENCE 11u
/* UDP VERSION data type meaning "parameter 1 is a sequence number". */
#define GW_CA_SEQUENCE_VALID 1u

#define GW_CA_HEADER_SIZE 16u
#define GW_CA_EXTENDED_HEADER_SIZE 24u
/* Longest PV name in characters, NUL excluded (Base's caProto.h limit). */
#define GW_CA_NAME_MAX unreasonablePVNameSize
/* Longest CLIENT_NAME / HOST_NAME in characters (RSRV: 512 with NUL). */
#define GW_CA_CLIENT_NAME_MAX 511u
/* Longer ERROR message texts are cut to this many characters. */
#define GW_CA_ERROR_TEXT_MAX 255u
/* EVENT_ADD payload: three floats, the u16 mask, a u16 pad. */
#define GW_CA_EVENT_ADD_PAYLOAD 16u
#define GW_CA_EVENT_MASK_OFFSET 12u
/* SEARCH reply "use the address the reply came from". */
#define GW_CA_ADDRESS_OF_SENDER 0xffffffffu

typedef enum gwCodecStatus {
    GW_CODEC_OK = 0,
    GW_CODEC_NEED_MORE,      /* incomplete: wait for more bytes */
    GW_CODEC_TOO_LARGE,      /* payload over the caller's limit */
    GW_CODEC_BAD_SIZE,       /* payload size not a multiple of 8 */
    GW_CODEC_BAD_COMMAND,    /* command unknown or not for this decoder */
    GW_CODEC_BAD_TYPE,       /* DBR type invalid for this command */
    GW_CODEC_BAD_COUNT,      /* count not allowed or inconsistent with payload */
    GW_CODEC_BAD_NAME,       /* name empty, unterminated or too long */
    GW_CODEC_SHORT_PAYLOAD,  /* payload shorter than the command's fixed size */
    GW_CODEC_BAD_BUFFER      /* output buffer too small or misaligned */
} gwCodecStatus;

/* A CA header in host order, extended form already folded in. */
typedef struct gwCaHeader {
    epicsUInt16 command;
    epicsUInt32 payloadSize;
    epicsUInt16 dataType;
    epicsUInt32 count;
    epicsUInt32 parameter1;
    epicsUInt32 parameter2;
} gwCaHeader;

/* A whole received message: header plus a view of its payload. */
typedef struct gwCaMessage {
    gwCaHeader header;
    size_t headerSize;            /* 16, or 24 for the extended form */
    const unsigned char *payload; /* header.payloadSize bytes */
} gwCaMessage;

/* A string inside a payload: text[length] is its NUL. */
typedef struct gwCaString {
    const char *text;
    size_t length;
} gwCaString;

typedef struct gwCaVersion {
    epicsUInt16 priority;     /* TCP: circuit priority; UDP: sequence flag */
    epicsUInt32 minorVersion;
    epicsUInt32 sequence;     /* UDP search sequence number (parameter 1) */
} gwCaVersion;

typedef struct gwCaSearch {
    gwCaString name;
    int replyWanted;          /* the client sent DOREPLY */
    epicsUInt16 replyFlag;    /* as sent, for NOT_FOUND */
    epicsUInt32 clientMinor;
    epicsUInt32 searchId;
} gwCaSearch;

/* A SEARCH reply, as a client receives it. */
typedef struct gwCaSearchReply {
    epicsUInt16 tcpPort;
    epicsUInt32 serverAddress; /* host order; GW_CA_ADDRESS_OF_SENDER: the sender's */
    epicsUInt32 searchId;
    epicsUInt16 serverMinor;   /* 0 when the reply carries none */
} gwCaSearchReply;

typedef struct gwCaCreateChannel {
    gwCaString name;
    epicsUInt32 clientChannelId;
    epicsUInt32 clientMinor;
} gwCaCreateChannel;

/* READ_NOTIFY, EVENT_ADD, EVENT_CANCEL, WRITE, WRITE_NOTIFY. */
typedef struct gwCaChannelRequest {
    epicsUInt16 dataType;
    epicsUInt32 count;
    epicsUInt32 serverChannelId;
    epicsUInt32 requestId;    /* io id or subscription id */
    epicsUInt16 eventMask;    /* EVENT_ADD only, else 0 */
    const void *value;        /* WRITE*: network-order DBR, else NULL */
    size_t valueSize;         /* WRITE*: payload bytes, else 0 */
} gwCaChannelRequest;

typedef struct gwCaClearChannel {
    epicsUInt32 serverChannelId;
    epicsUInt32 clientChannelId;
} gwCaClearChannel;

/* A data-carrying reply (READ_NOTIFY or EVENT_ADD). */
typedef struct gwCaDataReply {
    epicsUInt16 dataType;
    epicsUInt32 count;
    epicsUInt32 status;       /* ECA_* code */
    epicsUInt32 requestId;    /* io id or subscription id */
    const void *value;        /* host-order DBR, or NULL for zeros */
} gwCaDataReply;

/* Short text for a status, never NULL. */
const char *gwCodecStatusText(gwCodecStatus status);

/* Framing. */
gwCodecStatus gwCodecParseHeader(const void *buf, size_t len,
    size_t maxPayload, gwCaHeader *out, size_t *headerLen);
gwCodecStatus gwCodecParseMessage(const void *buf, size_t len,
    size_t maxPayload, gwCaMessage *out, size_t *messageLen);
/* OK when a server accepts this command from a client, else BAD_COMMAND. */
gwCodecStatus gwCodecCheckRequest(const gwCaHeader *header);

/* Request decoders: each checks the command, then the fields. */
gwCodecStatus gwCodecDecodeVersion(const gwCaMessage *m, gwCaVersion *out);
gwCodecStatus gwCodecDecodeSearch(const gwCaMessage *m, gwCaSearch *out);
gwCodecStatus gwCodecDecodeSearchReply(const gwCaMessage *m, gwCaSearchReply *out);
gwCodecStatus gwCodecDecodeCreateChannel(const gwCaMessage *m,
    gwCaCreateChannel *out);
gwCodecStatus gwCodecDecodeClientName(const gwCaMessage *m, gwCaString *out);
gwCodecStatus gwCodecDecodeRead(const gwCaMessage *m, unsigned clientMinor,
    gwCaChannelRequest *out);
gwCodecStatus gwCodecDecodeEventAdd(const gwCaMessage *m, unsigned clientMinor,
    gwCaChannelRequest *out);
gwCodecStatus gwCodecDecodeEventCancel(const gwCaMessage *m,
    gwCaChannelRequest *out);
gwCodecStatus gwCodecDecodeWrite(const gwCaMessage *m, gwCaChannelRequest *out);
gwCodecStatus gwCodecDecodeClearChannel(const gwCaMessage *m,
    gwCaClearChannel *out);

/* DBR helpers (gwCodecDbr.c). */
int gwCodecTypeIsReadable(unsigned dataType);
int gwCodecTypeIsWritable(unsigned dataType);
size_t gwCodecDbrSize(unsigned dataType, epicsUInt32 count);
gwCodecStatus gwCodecCheckValue(unsigned dataType, epicsUInt32 count,
    const void *value, size_t valueSize);
size_t gwCodecDataReplySize(unsigned dataType, epicsUInt32 count,
    unsigned clientMinor);
gwCodecStatus gwCodecDecodeValue(const gwCaChannelRequest *put,
    void *dst, size_t dstSize);
size_t gwCodecBuildReadNotifyReply(void *buf, size_t cap,
    const gwCaDataReply *reply, unsigned clientMinor);
size_t gwCodecBuildEventAddReply(void *buf, size_t cap,
    const gwCaDataReply *reply, unsigned clientMinor);

/* Builders of the messages without DBR data. */
size_t gwCodecWriteHeader(void *buf, size_t cap, const gwCaHeader *header,
    unsigned clientMinor);
size_t gwCodecBuildVersion(void *buf, size_t cap, epicsUInt16 priority,
    epicsUInt16 minorVersion, epicsUInt32 sequence);
size_t gwCodecBuildSearchReply(void *buf, size_t cap, epicsUInt16 tcpPort,
    epicsUInt32 serverAddress, epicsUInt32 searchId, epicsUInt16 serverMinor);
/* What a client sends (the upstream provider's own searches): SEARCH for
 * name (1..GW_CA_NAME_MAX characters) with the id in both parameters. */
size_t gwCodecBuildSearch(void *buf, size_t cap, const char *name, epicsUInt16 replyFlag,
    epicsUInt16 clientMinor, epicsUInt32 searchId);
size_t gwCodecBuildNotFound(void *buf, size_t cap, epicsUInt16 replyFlag,
    epicsUInt16 clientMinor, epicsUInt32 searchId);
size_t gwCodecBuildAccessRights(void *buf, size_t cap,
    epicsUInt32 clientChannelId, epicsUInt32 rights);
size_t gwCodecBuildCreateChannelReply(void *buf, size_t cap,
    epicsUInt16 dataType, epicsUInt32 count, epicsUInt32 clientChannelId,
    epicsUInt32 serverChannelId, unsigned clientMinor);
size_t gwCodecBuildCreateChannelFail(void *buf, size_t cap,
    epicsUInt32 clientChannelId);
size_t gwCodecBuildWriteNotifyReply(void *buf, size_t cap,
    epicsUInt16 dataType, epicsUInt32 count, epicsUInt32 status, epicsUInt32 ioId,
    unsigned clientMinor);
size_t gwCodecBuildEventCancelReply(void *buf, size_t cap,
    const gwCaChannelRequest *cancel, unsigned clientMinor);
size_t gwCodecBuildEcho(void *buf, size_t cap);
size_t gwCodecBuildReadSync(void *buf, size_t cap, const gwCaHeader *request);
size_t gwCodecBuildClearChannel(void *buf, size_t cap,
    epicsUInt32 serverChannelId, epicsUInt32 clientChannelId);
size_t gwCodecBuildError(void *buf, size_t cap, const gwCaHeader *request,
    epicsUInt32 clientChannelId, epicsUInt32 status, const char *message);
size_t gwCodecBuildServerDisconnect(void *buf, size_t cap,
    epicsUInt32 clientChannelId);
size_t gwCodecBuildBeacon(void *buf, size_t cap, epicsUInt16 serverMinor,
    epicsUInt16 tcpPort, epicsUInt32 sequence, epicsUInt32 serverAddress);

#ifdef __cplusplus
}
#endif

#endif /* INC_gwCodec_H */
