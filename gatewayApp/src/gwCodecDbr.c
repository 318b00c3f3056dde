/* gwCodecDbr.c - the DBR part of the CA codec (issue 4): type checks,
 * overflow-safe DBR sizes, the data-carrying replies (READ_NOTIFY and
 * EVENT_ADD) and the network-to-host conversion of put values.
 *
 * Pure, thread-agnostic code: no state, no locks, no allocation; any
 * thread. Byte order is converted by Base's caNetConvert (libca), which
 * also swaps the structure fields of STS/TIME/GR/CTRL types; always in
 * place (see fillPayload).
 *
 * String hygiene: every string field of a DBR this file writes (values of
 * the string types, GR/CTRL units, enum state strings) has all bytes after
 * its first NUL set to zero, and a string without a NUL gets one in its
 * last byte. This holds for replies sent and for put values decoded.
 */
#include <stdint.h>
#include <string.h>

#include <caerr.h>
#include <db_access.h>
#include <net_convert.h>

#include "gwCodec.h"

#define EXTENDED_LIMIT 0xffffu

static const unsigned short unitsOffset[LAST_BUFFER_TYPE + 1] = {
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

static const unsigned short enumStringsOffset[LAST_BUFFER_TYPE + 1] = {
    [DBR_GR_ENUM] = offsetof(struct dbr_gr_enum, strs),
    [DBR_CTRL_ENUM] = offsetof(struct dbr_ctrl_enum, strs),
};

int gwCodecTypeIsReadable(unsigned dataType)
{
    return dataType <= LAST_BUFFER_TYPE && dataType != DBR_PUT_ACKT &&
           dataType != DBR_PUT_ACKS;
}

int gwCodecTypeIsWritable(unsigned dataType)
{
    return dataType <= DBR_PUT_ACKS;
}

size_t gwCodecDbrSize(unsigned dataType, epicsUInt32 count)
{
    size_t extra = count ? count - 1u : 0u;
    size_t base, element;

    if (dataType > LAST_BUFFER_TYPE)
        return 0;
    base = dbr_size[dataType];
    element = dbr_value_size[dataType];
    if (element != 0 && extra > (SIZE_MAX - base) / element)
        return 0;
    return base + extra * element;
}

size_t gwCodecDataReplySize(unsigned dataType, epicsUInt32 count, unsigned clientMinor)
{
    size_t data = gwCodecDbrSize(dataType, count);
    size_t payload;
    int extended;

    if (data == 0 || data > 0xffffffffu - 7u)
        return 0;
    payload = CA_MESSAGE_ALIGN(data);
    extended = payload >= EXTENDED_LIMIT || count > EXTENDED_LIMIT;
    if (extended && clientMinor < GW_CA_MINOR_EXTENDED)
        return 0;
    return payload + (extended ? GW_CA_EXTENDED_HEADER_SIZE : GW_CA_HEADER_SIZE);
}

/* Zero every byte after the first NUL; without a NUL, the last byte. */
static void terminateString(unsigned char *s, size_t size)
{
    unsigned char *nul = memchr(s, '\0', size);

    if (!nul)
        nul = s + size - 1u;
    memset(nul, 0, (size_t)(s + size - nul));
}

static void cleanStrings(unsigned dataType, epicsUInt32 count, unsigned char *dbr)
{
    epicsUInt32 i, n = count ? count : 1u;

    if (dbr_value_class[dataType] == dbr_class_string) {
        unsigned char *value = dbr + dbr_value_offset[dataType];
        for (i = 0; i < n; i++)
            terminateString(value + (size_t)i * MAX_STRING_SIZE, MAX_STRING_SIZE);
    }
    if (unitsOffset[dataType])
        terminateString(dbr + unitsOffset[dataType], MAX_UNITS_SIZE);
    if (enumStringsOffset[dataType]) {
        for (i = 0; i < MAX_ENUM_STATES; i++)
            terminateString(dbr + enumStringsOffset[dataType] + i * MAX_ENUM_STRING_SIZE,
                            MAX_ENUM_STRING_SIZE);
    }
}

static int isAligned(const void *p)
{
    return (uintptr_t)p % 8u == 0;
}

/* libca sends a single DBR_STRING put as just the string, its NUL and
 * padding (fewer than 40 bytes); that form is accepted too. */
gwCodecStatus gwCodecCheckValue(unsigned dataType, epicsUInt32 count, const void *value,
                                size_t valueSize)
{
    if (!gwCodecTypeIsWritable(dataType))
        return GW_CODEC_BAD_TYPE;
    if (count == 0)
        return GW_CODEC_BAD_COUNT;
    if (valueSize >= gwCodecDbrSize(dataType, count))
        return GW_CODEC_OK;
    if (dataType == DBR_STRING && count == 1 && valueSize > 0 &&
        memchr(value, '\0', valueSize))
        return GW_CODEC_OK;
    return GW_CODEC_BAD_COUNT;
}

gwCodecStatus gwCodecDecodeValue(const gwCaChannelRequest *put, void *dst, size_t dstSize)
{
    gwCodecStatus status = gwCodecCheckValue(put->dataType, put->count, put->value,
                                             put->valueSize);
    size_t need, have;

    if (status != GW_CODEC_OK)
        return status;
    need = gwCodecDbrSize(put->dataType, put->count);
    if (dstSize < need || !isAligned(dst))
        return GW_CODEC_BAD_BUFFER;
    have = put->valueSize < need ? put->valueSize : need;
    memcpy(dst, put->value, have);
    memset((unsigned char *)dst + have, 0, need - have);
    if (caNetConvert(put->dataType, dst, dst, 0, put->count) != ECA_NORMAL)
        return GW_CODEC_BAD_TYPE;
    cleanStrings(put->dataType, put->count, dst);
    return GW_CODEC_OK;
}

/* Copy the host value into the payload area and convert it there. In
 * place on purpose: Base 7.0.3.1's caNetConvert converts DBR_STS_LONG and
 * DBR_TIME_LONG arrays from destination to source when they differ (RSRV
 * and libca only ever convert in place). Padding fields of the DBR
 * structures (RISC_pad) pass through as the host value holds them. */
static int fillPayload(unsigned char *out, const gwCaDataReply *r, size_t payload)
{
    size_t data = gwCodecDbrSize(r->dataType, r->count);
    size_t copied = r->value ? data : 0;

    if (r->value && r->count == 0)
        copied = dbr_value_offset[r->dataType];
    if (copied)
        memcpy(out, r->value, copied);
    memset(out + copied, 0, payload - copied);
    if (caNetConvert(r->dataType, out, out, 1, r->count) != ECA_NORMAL)
        return 0;
    cleanStrings(r->dataType, r->count, out);
    return 1;
}

static size_t buildData(void *buf, size_t cap, epicsUInt16 command, const gwCaDataReply *r,
                        unsigned clientMinor)
{
    size_t total = gwCodecDataReplySize(r->dataType, r->count, clientMinor);
    size_t payload, hlen;
    gwCaHeader h;

    if (total == 0 || total > cap || !isAligned(buf) ||
        (r->value && !gwCodecTypeIsReadable(r->dataType)))
        return 0;  /* PUT_ACKT, PUT_ACKS: only a failed reply (zeros) */
    payload = CA_MESSAGE_ALIGN(gwCodecDbrSize(r->dataType, r->count));
    h.command = command;
    h.payloadSize = (epicsUInt32)payload;
    h.dataType = r->dataType;
    h.count = r->count;
    h.parameter1 = r->status;
    h.parameter2 = r->requestId;
    hlen = gwCodecWriteHeader(buf, cap, &h, clientMinor);
    if (hlen == 0 || !fillPayload((unsigned char *)buf + hlen, r, payload))
        return 0;
    return hlen + payload;
}

size_t gwCodecBuildReadNotifyReply(void *buf, size_t cap, const gwCaDataReply *reply,
                                   unsigned clientMinor)
{
    return buildData(buf, cap, CA_PROTO_READ_NOTIFY, reply, clientMinor);
}

size_t gwCodecBuildEventAddReply(void *buf, size_t cap, const gwCaDataReply *reply,
                                 unsigned clientMinor)
{
    return buildData(buf, cap, CA_PROTO_EVENT_ADD, reply, clientMinor);
}
