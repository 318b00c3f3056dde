/* gwOptions.h - the option parser shared by `gwStart("<options>")` (iocsh)
 * and the classic-compatible `gateway` command line.
 *
 * Options use the classic CA gateway's names (-sip, -sport, -signore, ...);
 * options of our own are marked as extensions in the table and the
 * documentation. The parser is a table of descriptors: a new option is a
 * new row in gwOptions.c (and a field in gwOptions).
 *
 * Usage:
 *     gwOptions options = {0};      zero = nothing given
 *     if (gwOptionsParseString(&options, line) != 0)
 *         print options.error
 *     gwOptionsApplyToServerConfig(&options, &config);   after the environment
 *     gwOptionsApplyToUpstreamConfig(&options, &upstream); after the defaults
 *     gwOptionsClear(&options);
 *
 * Errors are reported in the caller's struct (gwOptions.error, or the
 * error buffer of the table functions) as one line naming the option; the
 * parser prints nothing. A value given twice replaces the first, except
 * address lists, which accumulate (-sip a -sip b = -sip "a b").
 *
 * No threads, no locks, no global state; a gwOptions belongs to its caller.
 */
#ifndef INC_gwOptions_H
#define INC_gwOptions_H

#include <stddef.h>
#include <stdio.h>

#include <ellLib.h>

#include "gwServer.h"
#include "gwUpstream.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GW_OPTIONS_ERROR_SIZE 200u

/* What the options said. A field counts only when its *Given flag is set. */
typedef struct gwOptions {
    /* server options */
    ELLLIST serverInterfaces;  /* -sip: osiSockAddrNode, port 0 = the server port */
    int serverInterfacesGiven;
    unsigned short serverPort; /* -sport */
    int serverPortGiven;
    ELLLIST serverIgnore;      /* -signore: osiSockAddrNode */
    int serverIgnoreGiven;
    int ioThreads;             /* -io_threads (extension) */
    int ioThreadsGiven;
    double sendTimeout;        /* -send_timeout (extension) */
    int sendTimeoutGiven;

    /* client (upstream) options */
    ELLLIST clientAddresses;   /* -cip: osiSockAddrNode, port 0 = the client port */
    int clientAddressesGiven;
    unsigned short clientPort; /* -cport */
    int clientPortGiven;
    double connectTimeout;     /* -connect_timeout */
    int connectTimeoutGiven;
    double inactiveTimeout;    /* -inactive_timeout */
    int inactiveTimeoutGiven;
    double deadTimeout;        /* -dead_timeout */
    int deadTimeoutGiven;
    double disconnectTimeout;  /* -disconnect_timeout */
    int disconnectTimeoutGiven;
    double reconnectInhibit;   /* -reconnect_inhibit */
    int reconnectInhibitGiven;
    char *mask;                /* -mask: letters v a l p */
    int maskGiven;
    int archiveGiven;          /* -archive */
    int noCacheGiven;          /* -no_cache */
    double cacheGets;          /* -cache_gets */
    int cacheGetsGiven;

    /* access rules */
    char *pvlist;              /* -pvlist */
    int pvlistGiven;
    char *access;              /* -access */
    int accessGiven;
    char *putlog;              /* -putlog */
    int putlogGiven;
    char *caputlog;            /* -caputlog host:port */
    int caputlogGiven;
    int readOnlyGiven;         /* -ro */
    char *report;              /* -report */
    int reportGiven;
    char *command;             /* -command */
    int commandGiven;
    int hostnameFromIpGiven;   /* -hostname_from_ip (extension) */

    char error[GW_OPTIONS_ERROR_SIZE]; /* the reason of the last failure */
} gwOptions;

/* Split line into words (spaces separate; "double" or 'single' quotes
 * group, and are removed) and parse them. 0, or -1 with options->error. */
int gwOptionsParseString(gwOptions *options, const char *line);
/* Parse argv[0..argc-1] (no program name). 0, or -1 with options->error. */
int gwOptionsParseArgv(gwOptions *options, int argc, char *const *argv);
/* Override config (filled from the environment) with the options given.
 * 0, or -1 (out of memory) with options->error. */
int gwOptionsApplyToServerConfig(gwOptions *options, gwServerConfig *config);
/* Override config (filled by gwUpstreamConfigDefaults) with the options
 * given. 0, or -1 (bad -mask, out of memory) with options->error. */
int gwOptionsApplyToUpstreamConfig(gwOptions *options, gwUpstreamConfig *config);
/* One line per option: name, argument, help. */
void gwOptionsUsage(FILE *out);
/* Free what the options hold and zero them. */
void gwOptionsClear(gwOptions *options);

/* ---- the table machinery, for another set of options (the `gateway`
 * command line adds rows that make no sense in gwStart) and for tests ---- */

typedef enum gwOptionKind {
    GW_OPTION_STRING,    /* char *, malloc'd copy; given twice: the last wins */
    GW_OPTION_ADDRESSES, /* ELLLIST of osiSockAddrNode, port 0 unless given; accumulates */
    GW_OPTION_PORT,      /* unsigned short, 1..65535 */
    GW_OPTION_DOUBLE,    /* double within [minimum, maximum] */
    GW_OPTION_INT,       /* int within [minimum, maximum] */
    GW_OPTION_FLAG       /* no value; the given flag is the value */
} gwOptionKind;

typedef struct gwOptionDescriptor {
    const char *name;     /* with its dash: "-sip" */
    gwOptionKind kind;
    size_t offset;        /* of the value in the target struct (unused for FLAG) */
    size_t givenOffset;   /* of the int set to 1 when the option is given */
    double minimum;       /* INT and DOUBLE only */
    double maximum;
    const char *argument; /* for usage: "<address ...>", NULL for a flag */
    const char *help;     /* one line */
} gwOptionDescriptor;

/* Parse words against a table into target. 0, or -1 with a message in
 * error[errorSize]. What was parsed before an error stays in target. */
int gwOptionTableParseArgv(const gwOptionDescriptor *table, size_t rows, void *target,
                           int argc, char *const *argv, char *error, size_t errorSize);
/* The same for one line, split as gwOptionsParseString says. */
int gwOptionTableParseString(const gwOptionDescriptor *table, size_t rows, void *target,
                             const char *line, char *error, size_t errorSize);
/* Free the STRING and ADDRESSES values of target and zero every row's fields. */
void gwOptionTableClear(const gwOptionDescriptor *table, size_t rows, void *target);
void gwOptionTableUsage(const gwOptionDescriptor *table, size_t rows, FILE *out);

/* The rows of gwOptions (offsets into gwOptions), for a larger struct
 * that starts with a gwOptions and adds rows of its own. */
const gwOptionDescriptor *gwOptionsTable(size_t *rows);

#ifdef __cplusplus
}
#endif

#endif /* INC_gwOptions_H */
