/* gwOptions.c - the option table of gwStart / `gateway` and the table-driven
 * parser (see gwOptions.h).
 *
 * Pure: no threads, no locks, no global state besides the constant table;
 * nothing is printed except by the usage functions.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <ellLib.h>
#include <epicsStdio.h>
#include <epicsStdlib.h>
#include <osiSock.h>

#include "gwOptions.h"

#define ROW(field) offsetof(gwOptions, field), offsetof(gwOptions, field##Given)

static const gwOptionDescriptor gwOptionTable[] = {
    /* server options */
    {"-sip", GW_OPTION_ADDRESSES, ROW(serverInterfaces), 0, 0, "<address ...>",
     "interfaces (and multicast groups) the server listens on; default: all"},
    {"-sport", GW_OPTION_PORT, ROW(serverPort), 0, 0, "<port>",
     "server UDP and TCP port; default: EPICS_CAS_SERVER_PORT or 5064"},
    {"-signore", GW_OPTION_ADDRESSES, ROW(serverIgnore), 0, 0, "<address ...>",
     "ignore searches from these addresses; default: EPICS_CAS_IGNORE_ADDR_LIST"},
    {"-io_threads", GW_OPTION_INT, ROW(ioThreads), 1, 64, "<n>",
     "(extension) number of server I/O threads for the TCP circuits; default: 2"},
    {"-send_timeout", GW_OPTION_DOUBLE, ROW(sendTimeout), 1, 86400, "<seconds>",
     "(extension) close a client circuit that has read nothing for this long; default: 30"},
    /* client (upstream) options */
    {"-cip", GW_OPTION_ADDRESSES, ROW(clientAddresses), 0, 0, "<address ...>",
     "where to search for upstream PVs (EPICS_CA_ADDR_LIST, no automatic list); "
     "default: the EPICS_CA_* environment"},
    {"-cport", GW_OPTION_PORT, ROW(clientPort), 0, 0, "<port>",
     "upstream server port (EPICS_CA_SERVER_PORT); default: the environment's or 5064"},
    {"-connect_timeout", GW_OPTION_DOUBLE, ROW(connectTimeout), 0.01, 1e7, "<seconds>",
     "a PV not connected after this long is dead; default: 1"},
    {"-inactive_timeout", GW_OPTION_DOUBLE, ROW(inactiveTimeout), 0.01, 1e9, "<seconds>",
     "drop a connected PV without clients after this long; default: 7200"},
    {"-dead_timeout", GW_OPTION_DOUBLE, ROW(deadTimeout), 0.01, 1e9, "<seconds>",
     "drop a dead PV after this long; default: 120"},
    {"-disconnect_timeout", GW_OPTION_DOUBLE, ROW(disconnectTimeout), 0.01, 1e9, "<seconds>",
     "drop a disconnected PV after this long; default: 7200"},
    {"-reconnect_inhibit", GW_OPTION_DOUBLE, ROW(reconnectInhibit), 0, 1e9, "<seconds>",
     "at most one beacon anomaly for reconnecting PVs in this time; default: 300"},
    {"-mask", GW_OPTION_STRING, ROW(mask), 0, 0, "<v|a|l|p ...>",
     "event mask for clients asking for the default (value and alarm); default: va"},
    {"-archive", GW_OPTION_FLAG, 0, offsetof(gwOptions, archiveGiven), 0, 0, NULL,
     "keep archivers' DBE_LOG subscriptions apart (archive deadband)"},
    {"-no_cache", GW_OPTION_FLAG, 0, offsetof(gwOptions, noCacheGiven), 0, 0, NULL,
     "forward every get upstream instead of answering from a subscription's cache"},
    {"-cache_gets", GW_OPTION_DOUBLE, ROW(cacheGets), 0, 1e7, "<seconds>",
     "(extension) a PV read twice within this time keeps an upstream subscription "
     "that answers its gets until none has come for this long; 0: never; default: 10"},
    /* access rules */
    {"-pvlist", GW_OPTION_STRING, ROW(pvlist), 0, 0, "<file>",
     "the names served, their aliases and access groups; default: .* ALLOW"},
    {"-access", GW_OPTION_STRING, ROW(access), 0, 0, "<file>",
     "the access security file (the IOC's); default: none, every PV read-only"},
    {"-putlog", GW_OPTION_STRING, ROW(putlog), 0, 0, "<file>",
     "log the puts whose access rule has TRAPWRITE to this file"},
    {"-caputlog", GW_OPTION_STRING, ROW(caputlog), 0, 0, "<host:port>",
     "send the logged puts to this log server too (caPutLog's format)"},
    {"-report", GW_OPTION_STRING, ROW(report), 0, 0, "<file>",
     "append reports (report flags, SIGUSR2, gwReportFile) here; default gateway.report"},
    {"-command", GW_OPTION_STRING, ROW(command), 0, 0, "<file>",
     "the command file (lines R1 R2 R3 AS) commandFlag and SIGUSR1 run; default gateway.command"},
    {"-ro", GW_OPTION_FLAG, 0, offsetof(gwOptions, readOnlyGiven), 0, 0, NULL,
     "every PV read-only, whatever the access file says"},
    {"-hostname_from_ip", GW_OPTION_FLAG, 0, offsetof(gwOptions, hostnameFromIpGiven), 0, 0,
     NULL, "(extension) access rules see the host name of the client's address, "
     "not the one it claims"},
};

#define GW_OPTION_ROWS (sizeof gwOptionTable / sizeof gwOptionTable[0])

/* ---- the table machinery ------------------------------------------------ */

static void *field(void *target, size_t offset)
{
    return (char *)target + offset;
}

static const gwOptionDescriptor *findRow(const gwOptionDescriptor *table, size_t rows,
                                         const char *name)
{
    size_t i;

    for (i = 0; i < rows; i++) {
        if (strcmp(table[i].name, name) == 0)
            return &table[i];
    }
    return NULL;
}

static int parseNumber(const gwOptionDescriptor *row, const char *text, void *value,
                       char *error, size_t errorSize)
{
    double d;
    long l;

    if (row->kind == GW_OPTION_INT) {
        if (epicsParseLong(text, &l, 0, NULL) != 0 || l < row->minimum || l > row->maximum) {
            epicsSnprintf(error, errorSize, "%s: '%s' is not an integer from %g to %g",
                          row->name, text, row->minimum, row->maximum);
            return -1;
        }
        *(int *)value = (int)l;
    } else {
        if (epicsParseDouble(text, &d, NULL) != 0 || !(d >= row->minimum && d <= row->maximum)) {
            epicsSnprintf(error, errorSize, "%s: '%s' is not a number from %g to %g",
                          row->name, text, row->minimum, row->maximum);
            return -1;
        }
        *(double *)value = d;
    }
    return 0;
}

static int parseValue(const gwOptionDescriptor *row, const char *text, void *target,
                      char *error, size_t errorSize)
{
    void *value = field(target, row->offset);
    char *copy;

    switch (row->kind) {
    case GW_OPTION_STRING:
        copy = malloc(strlen(text) + 1);
        if (!copy) {
            epicsSnprintf(error, errorSize, "%s: out of memory", row->name);
            return -1;
        }
        strcpy(copy, text);
        free(*(char **)value);
        *(char **)value = copy;
        return 0;
    case GW_OPTION_ADDRESSES:
        if (strspn(text, " \t\r\n,") == strlen(text)) {
            epicsSnprintf(error, errorSize, "%s: no address given", row->name);
            return -1;
        }
        return gwServerConfigParseAddresses(value, text, 0, row->name, error, errorSize);
    case GW_OPTION_PORT:
        if (gwServerConfigParsePort(text, value) != 0) {
            epicsSnprintf(error, errorSize, "%s: '%s' is not a port number (1..65535)",
                          row->name, text);
            return -1;
        }
        return 0;
    case GW_OPTION_DOUBLE:
    case GW_OPTION_INT:
        return parseNumber(row, text, value, error, errorSize);
    case GW_OPTION_FLAG:
        return 0;
    }
    return -1;
}

int gwOptionTableParseArgv(const gwOptionDescriptor *table, size_t rows, void *target,
                           int argc, char *const *argv, char *error, size_t errorSize)
{
    int i;

    for (i = 0; i < argc; i++) {
        const gwOptionDescriptor *row = findRow(table, rows, argv[i]);

        if (!row) {
            if (argv[i][0] == '-')
                epicsSnprintf(error, errorSize, "unknown option '%s'", argv[i]);
            else
                epicsSnprintf(error, errorSize, "unexpected argument '%s' (not an option)",
                              argv[i]);
            return -1;
        }
        if (row->kind != GW_OPTION_FLAG) {
            if (i + 1 >= argc || findRow(table, rows, argv[i + 1])) {
                epicsSnprintf(error, errorSize, "%s: missing value %s", row->name,
                              row->argument ? row->argument : "");
                return -1;
            }
            i++;
            if (parseValue(row, argv[i], target, error, errorSize) != 0)
                return -1;
        }
        *(int *)field(target, row->givenOffset) = 1;
    }
    return 0;
}

/* Split line into words in place of a copy: words[] point into storage. */
static int splitWords(const char *line, char *storage, char **words, int *count,
                      char *error, size_t errorSize)
{
    const char *p = line;
    char *out = storage;

    *count = 0;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            p++;
        if (!*p)
            return 0;
        words[(*count)++] = out;
        while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            if (*p == '"' || *p == '\'') {
                const char quote = *p++;
                const char *end = strchr(p, quote);

                if (!end) {
                    epicsSnprintf(error, errorSize, "unterminated %c quote in '%s'", quote, line);
                    return -1;
                }
                memcpy(out, p, (size_t)(end - p));
                out += end - p;
                p = end + 1;
            } else {
                *out++ = *p++;
            }
        }
        *out++ = '\0';
    }
}

int gwOptionTableParseString(const gwOptionDescriptor *table, size_t rows, void *target,
                             const char *line, char *error, size_t errorSize)
{
    size_t length = line ? strlen(line) : 0;
    char *storage = malloc(length + 1);
    char **words = malloc((length / 2 + 1) * sizeof *words);
    int count, status = -1;

    if (!storage || !words)
        epicsSnprintf(error, errorSize, "out of memory");
    else if (splitWords(line ? line : "", storage, words, &count, error, errorSize) == 0)
        status = gwOptionTableParseArgv(table, rows, target, count, words, error, errorSize);
    free(words);
    free(storage);
    return status;
}

void gwOptionTableClear(const gwOptionDescriptor *table, size_t rows, void *target)
{
    size_t i;

    for (i = 0; i < rows; i++) {
        void *value = field(target, table[i].offset);

        if (table[i].kind == GW_OPTION_STRING) {
            free(*(char **)value);
            *(char **)value = NULL;
        } else if (table[i].kind == GW_OPTION_ADDRESSES) {
            ellFree((ELLLIST *)value);
            ellInit((ELLLIST *)value);
        } else if (table[i].kind == GW_OPTION_PORT) {
            *(unsigned short *)value = 0;
        } else if (table[i].kind == GW_OPTION_DOUBLE) {
            *(double *)value = 0.0;
        } else if (table[i].kind == GW_OPTION_INT) {
            *(int *)value = 0;
        }
        *(int *)field(target, table[i].givenOffset) = 0;
    }
}

void gwOptionTableUsage(const gwOptionDescriptor *table, size_t rows, FILE *out)
{
    size_t i;

    for (i = 0; i < rows; i++) {
        char head[48];

        epicsSnprintf(head, sizeof head, "%s %s", table[i].name,
                      table[i].argument ? table[i].argument : "");
        fprintf(out, "  %-30s %s\n", head, table[i].help);
    }
}

/* ---- the gateway's options ---------------------------------------------- */

int gwOptionsParseString(gwOptions *options, const char *line)
{
    return gwOptionTableParseString(gwOptionTable, GW_OPTION_ROWS, options, line,
                                    options->error, sizeof options->error);
}

int gwOptionsParseArgv(gwOptions *options, int argc, char *const *argv)
{
    return gwOptionTableParseArgv(gwOptionTable, GW_OPTION_ROWS, options, argc, argv,
                                  options->error, sizeof options->error);
}

static int replaceAddresses(ELLLIST *dst, const ELLLIST *src, unsigned short defaultPort)
{
    ELLLIST copy = ELLLIST_INIT;

    if (gwServerConfigCopyAddresses(&copy, src, defaultPort) != 0)
        return -1;
    ellFree(dst);
    ellInit(dst);
    ellConcat(dst, &copy);
    return 0;
}

int gwOptionsApplyToServerConfig(gwOptions *options, gwServerConfig *config)
{
    if (options->serverPortGiven)
        config->port = options->serverPort;
    if (options->serverInterfacesGiven
        && replaceAddresses(&config->interfaces, &options->serverInterfaces, config->port) != 0) {
        epicsSnprintf(options->error, sizeof options->error, "-sip: out of memory");
        return -1;
    }
    if (options->serverIgnoreGiven
        && replaceAddresses(&config->ignoreAddresses, &options->serverIgnore, 0) != 0) {
        epicsSnprintf(options->error, sizeof options->error, "-signore: out of memory");
        return -1;
    }
    if (options->ioThreadsGiven)
        config->ioThreads = (unsigned)options->ioThreads;
    if (options->sendTimeoutGiven)
        config->sendTimeout = options->sendTimeout;
    return 0;
}

/* "a:port b" for EPICS_CA_ADDR_LIST; NULL on no memory. */
static char *addressListText(const ELLLIST *list)
{
    size_t size = (size_t)ellCount(list) * 24u + 1u;
    char *text = malloc(size);
    char *end = text;
    const osiSockAddrNode *node;

    if (!text)
        return NULL;
    *end = '\0';
    for (node = (const osiSockAddrNode *)ellFirst(list); node;
         node = (const osiSockAddrNode *)ellNext(&node->node)) {
        unsigned long a = ntohl(node->addr.ia.sin_addr.s_addr);
        unsigned port = ntohs(node->addr.ia.sin_port);
        end += sprintf(end, "%s%lu.%lu.%lu.%lu", end == text ? "" : " ",
                       (a >> 24) & 0xff, (a >> 16) & 0xff, (a >> 8) & 0xff, a & 0xff);
        if (port)
            end += sprintf(end, ":%u", port);
    }
    return text;
}

int gwOptionsApplyToUpstreamConfig(gwOptions *options, gwUpstreamConfig *config)
{
    if (options->clientAddressesGiven) {
        char *text = addressListText(&options->clientAddresses);
        if (!text) {
            epicsSnprintf(options->error, sizeof options->error, "-cip: out of memory");
            return -1;
        }
        free(config->addressList);
        config->addressList = text;
    }
    if (options->clientPortGiven)
        config->port = options->clientPort;
    if (options->connectTimeoutGiven)
        config->connectTimeout = options->connectTimeout;
    if (options->inactiveTimeoutGiven)
        config->inactiveTimeout = options->inactiveTimeout;
    if (options->deadTimeoutGiven)
        config->deadTimeout = options->deadTimeout;
    if (options->disconnectTimeoutGiven)
        config->disconnectTimeout = options->disconnectTimeout;
    if (options->reconnectInhibitGiven)
        config->reconnectInhibit = options->reconnectInhibit;
    if (options->maskGiven && gwUpstreamParseMask(options->mask, &config->defaultMask) != 0) {
        epicsSnprintf(options->error, sizeof options->error,
                      "-mask: '%s' is not a mask of the letters v, a, l, p", options->mask);
        return -1;
    }
    if (options->archiveGiven)
        config->archive = 1;
    if (options->noCacheGiven)
        config->noCache = 1;
    if (options->cacheGetsGiven)
        config->getCacheTime = options->cacheGets;
    return 0;
}

const gwOptionDescriptor *gwOptionsTable(size_t *rows)
{
    *rows = GW_OPTION_ROWS;
    return gwOptionTable;
}

void gwOptionsUsage(FILE *out)
{
    gwOptionTableUsage(gwOptionTable, GW_OPTION_ROWS, out);
}

void gwOptionsClear(gwOptions *options)
{
    gwOptionTableClear(gwOptionTable, GW_OPTION_ROWS, options);
    options->error[0] = '\0';
}
