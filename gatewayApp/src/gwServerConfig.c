/* gwServerConfig.c - the server's settings from the EPICS_CAS_* / EPICS_CA_*
 * environment, and the address-list helpers that gwOptions.c shares.
 *
 * Reads the environment as RSRV does (caservertask.c rsrv_init and
 * rsrv_build_addr_lists, online_notify.c), with these differences:
 * - a bad value is an error (-1 and a message naming the variable), not a
 *   silent fallback to the default, so gwStart refuses to start;
 * - EPICS_CAS_BEACON_ADDR_LIST and EPICS_CAS_AUTO_BEACON_ADDR_LIST fall back
 *   to EPICS_CA_ADDR_LIST and EPICS_CA_AUTO_ADDR_LIST when unset, as the
 *   portable CA server (and so the classic gateway) does;
 * - ports 1..65535 are accepted (RSRV wants more than 5000).
 * The broadcast addresses of the automatic beacon list are discovered by
 * gwBeaconStart, when the interface list (after the options) is final.
 *
 * Called from the iocsh thread; no threads, no locks, no global state.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <addrList.h>
#include <caProto.h>
#include <ellLib.h>
#include <envDefs.h>
#include <epicsStdio.h>
#include <epicsStdlib.h>
#include <epicsString.h>
#include <osiSock.h>

#include "gwLog.h"
#include "gwServerConfig.h"

#define GW_DEFAULT_MAX_ARRAY_BYTES 16384ul
#define GW_DEFAULT_BEACON_PERIOD 15.0

/* Longest address token: a host name with ":port". */
#define GW_ADDRESS_TOKEN_MAX 256u

static int isSeparator(char c)
{
    return c == ',' || isspace((unsigned char)c);
}

int gwServerConfigParseAddresses(ELLLIST *list, const char *text,
                                 unsigned short defaultPort, const char *what,
                                 char *error, size_t errorSize)
{
    ELLLIST parsed = ELLLIST_INIT;
    const char *p = text ? text : "";

    for (;;) {
        char token[GW_ADDRESS_TOKEN_MAX];
        struct sockaddr_in address;
        osiSockAddrNode *node;
        size_t length = 0;

        while (*p && isSeparator(*p))
            p++;
        if (!*p)
            break;
        while (p[length] && !isSeparator(p[length]))
            length++;
        if (length >= sizeof token) {
            epicsSnprintf(error, errorSize, "%s: address too long: '%.40s...'", what, p);
            ellFree(&parsed);
            return -1;
        }
        memcpy(token, p, length);
        token[length] = '\0';
        p += length;
        if (aToIPAddr(token, defaultPort, &address) != 0) {
            epicsSnprintf(error, errorSize, "%s: bad address '%s'", what, token);
            ellFree(&parsed);
            return -1;
        }
        node = calloc(1, sizeof *node);
        if (!node) {
            epicsSnprintf(error, errorSize, "%s: out of memory", what);
            ellFree(&parsed);
            return -1;
        }
        node->addr.ia = address;
        ellAdd(&parsed, &node->node);
    }
    removeDuplicateAddresses(list, &parsed, 1);
    return 0;
}

int gwServerConfigParsePort(const char *text, unsigned short *port)
{
    unsigned long value;

    if (!text || epicsParseULong(text, &value, 10, NULL) != 0)
        return -1;
    if (value < 1 || value > 65535)
        return -1;
    *port = (unsigned short)value;
    return 0;
}

int gwServerConfigCopyAddresses(ELLLIST *dst, const ELLLIST *src,
                                unsigned short defaultPort)
{
    ELLLIST copy = ELLLIST_INIT;
    const ELLNODE *cur;

    for (cur = ellFirst(src); cur; cur = ellNext(cur)) {
        osiSockAddrNode *node = calloc(1, sizeof *node);

        if (!node) {
            ellFree(&copy);
            return -1;
        }
        node->addr = ((const osiSockAddrNode *)cur)->addr;
        if (node->addr.ia.sin_port == 0)
            node->addr.ia.sin_port = htons(defaultPort);
        ellAdd(&copy, &node->node);
    }
    ellConcat(dst, &copy);
    return 0;
}

/* The value of the first of preferred/fallback that is set (NULL if none). */
static const ENV_PARAM *chooseParam(const ENV_PARAM *preferred, const ENV_PARAM *fallback)
{
    if (envGetConfigParamPtr(preferred) || !fallback)
        return preferred;
    return fallback;
}

static int envPort(const ENV_PARAM *preferred, const ENV_PARAM *fallback,
                   unsigned short defaultPort, unsigned short *port)
{
    const ENV_PARAM *param = chooseParam(preferred, fallback);
    const char *text = envGetConfigParamPtr(param);

    if (!text) {
        *port = defaultPort;
        return 0;
    }
    if (gwServerConfigParsePort(text, port) != 0) {
        gwLog(GW_LOG_SERVER, GW_LOG_ERROR,
              "%s='%s' is not a port number (1..65535)", param->name, text);
        return -1;
    }
    return 0;
}

static int envBeaconPeriod(double *period)
{
    const ENV_PARAM *param = chooseParam(&EPICS_CAS_BEACON_PERIOD, &EPICS_CA_BEACON_PERIOD);
    const char *text = envGetConfigParamPtr(param);
    double value;

    if (!text) {
        *period = GW_DEFAULT_BEACON_PERIOD;
        return 0;
    }
    if (epicsParseDouble(text, &value, NULL) != 0 || !(value > 0.0) || value > 1e6) {
        gwLog(GW_LOG_SERVER, GW_LOG_ERROR,
              "%s='%s' is not a period in seconds (> 0)", param->name, text);
        return -1;
    }
    *period = value;
    return 0;
}

static int envMaxArrayBytes(size_t *bytes)
{
    const char *text = envGetConfigParamPtr(&EPICS_CA_MAX_ARRAY_BYTES);
    unsigned long value;

    if (!text) {
        *bytes = GW_DEFAULT_MAX_ARRAY_BYTES;
        return 0;
    }
    if (epicsParseULong(text, &value, 10, NULL) != 0 || value == 0 || value > 0x7fffffffUL) {
        gwLog(GW_LOG_SERVER, GW_LOG_ERROR,
              "EPICS_CA_MAX_ARRAY_BYTES='%s' is not a positive integer", text);
        return -1;
    }
    if (value < GW_DEFAULT_MAX_ARRAY_BYTES) {
        gwLog(GW_LOG_SERVER, GW_LOG_WARNING,
              "EPICS_CA_MAX_ARRAY_BYTES=%lu rounded up to %lu",
              value, GW_DEFAULT_MAX_ARRAY_BYTES);
        value = GW_DEFAULT_MAX_ARRAY_BYTES;
    }
    *bytes = value;
    return 0;
}

static int envBool(const ENV_PARAM *preferred, const ENV_PARAM *fallback, int defaultValue,
                   int *value)
{
    const ENV_PARAM *param = chooseParam(preferred, fallback);
    const char *text = envGetConfigParamPtr(param);

    if (!text)
        *value = defaultValue;
    else if (epicsStrCaseCmp(text, "YES") == 0)
        *value = 1;
    else if (epicsStrCaseCmp(text, "NO") == 0)
        *value = 0;
    else {
        gwLog(GW_LOG_SERVER, GW_LOG_ERROR, "%s='%s' is neither YES nor NO", param->name, text);
        return -1;
    }
    return 0;
}

static int envAddresses(ELLLIST *list, const ENV_PARAM *preferred, const ENV_PARAM *fallback,
                        unsigned short defaultPort)
{
    const ENV_PARAM *param = chooseParam(preferred, fallback);
    char error[160];

    if (gwServerConfigParseAddresses(list, envGetConfigParamPtr(param), defaultPort,
                                     param->name, error, sizeof error) != 0) {
        gwLog(GW_LOG_SERVER, GW_LOG_ERROR, "%s", error);
        return -1;
    }
    return 0;
}

int gwServerConfigFromEnvironment(gwServerConfig *config)
{
    memset(config, 0, sizeof *config);
    ellInit(&config->interfaces);
    ellInit(&config->ignoreAddresses);
    ellInit(&config->beaconAddresses);
    config->ioThreads = GW_SERVER_DEFAULT_IO_THREADS;
    config->sendTimeout = GW_SERVER_DEFAULT_SEND_TIMEOUT;

    if (envPort(&EPICS_CAS_SERVER_PORT, &EPICS_CA_SERVER_PORT, CA_SERVER_PORT, &config->port)
        || envPort(&EPICS_CAS_BEACON_PORT, &EPICS_CA_REPEATER_PORT, CA_REPEATER_PORT,
                   &config->beaconPort)
        || envBeaconPeriod(&config->beaconPeriod)
        || envMaxArrayBytes(&config->maxArrayBytes)
        || envBool(&EPICS_CAS_AUTO_BEACON_ADDR_LIST, &EPICS_CA_AUTO_ADDR_LIST, 1,
                   &config->autoBeaconAddresses)
        || envAddresses(&config->interfaces, &EPICS_CAS_INTF_ADDR_LIST, NULL, config->port)
        || envAddresses(&config->ignoreAddresses, &EPICS_CAS_IGNORE_ADDR_LIST, NULL, 0)
        || envAddresses(&config->beaconAddresses, &EPICS_CAS_BEACON_ADDR_LIST,
                        &EPICS_CA_ADDR_LIST, config->beaconPort)) {
        gwServerConfigClear(config);
        return -1;
    }
    return 0;
}

void gwServerConfigClear(gwServerConfig *config)
{
    ellFree(&config->interfaces);
    ellFree(&config->ignoreAddresses);
    ellFree(&config->beaconAddresses);
}
