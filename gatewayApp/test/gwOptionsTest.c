/* gwOptionsTest.c - unit test of the option parser (gwOptions.c), of the
 * server configuration from the environment (gwServerConfig.c), and of
 * applying options to a configuration.
 *
 * Pure: no sockets (addresses are dotted numbers, so no name lookups; the
 * automatic beacon list is discovered later, by gwBeaconStart).
 * Every option kind is exercised through a test table; the gateway's own
 * table through gwOptionsParse*.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <ellLib.h>
#include <envDefs.h>
#include <epicsUnitTest.h>
#include <osiSock.h>
#include <testMain.h>

#include "gwOptions.h"
#include "gwServer.h"

/* A target with one option of every kind. */
typedef struct testTarget {
    char *text;       int textGiven;
    ELLLIST list;     int listGiven;
    unsigned short port; int portGiven;
    double seconds;   int secondsGiven;
    int count;        int countGiven;
    int flagGiven;
} testTarget;

#define TROW(f) offsetof(testTarget, f), offsetof(testTarget, f##Given)

static const gwOptionDescriptor testTable[] = {
    {"-text", GW_OPTION_STRING, TROW(text), 0, 0, "<text>", "a string"},
    {"-list", GW_OPTION_ADDRESSES, TROW(list), 0, 0, "<address ...>", "addresses"},
    {"-port", GW_OPTION_PORT, TROW(port), 0, 0, "<port>", "a port"},
    {"-seconds", GW_OPTION_DOUBLE, TROW(seconds), 0.1, 100, "<s>", "a double"},
    {"-count", GW_OPTION_INT, TROW(count), 1, 10, "<n>", "an int"},
    {"-flag", GW_OPTION_FLAG, 0, offsetof(testTarget, flagGiven), 0, 0, NULL, "a flag"},
};
#define TROWS (sizeof testTable / sizeof testTable[0])

static char error[GW_OPTIONS_ERROR_SIZE];

static int parse(testTarget *t, const char *line)
{
    error[0] = '\0';
    return gwOptionTableParseString(testTable, TROWS, t, line, error, sizeof error);
}

/* The i-th address of a list as "a.b.c.d:port". */
static const char *nth(const ELLLIST *list, int i)
{
    static char text[32];
    const ELLNODE *cur = ellNth((ELLLIST *)list, i + 1);

    if (!cur)
        return "(none)";
    ipAddrToDottedIP(&((const osiSockAddrNode *)cur)->addr.ia, text, sizeof text);
    return text;
}

static void testKinds(void)
{
    testTarget t;
    char *argv[] = {"-count", "3", "-flag", "-text", "hello world", "-port", "5070"};

    testDiag("every kind of option");
    memset(&t, 0, sizeof t);
    testOk1(parse(&t, "") == 0 && !t.textGiven && !t.listGiven && !t.flagGiven);
    testOk1(parse(&t, "   \t ") == 0 && !t.countGiven);
    testOk1(parse(&t, "-text abc -port 6000 -seconds 2.5 -count 7 -flag -list 127.0.0.1") == 0);
    testOk(t.textGiven && strcmp(t.text, "abc") == 0, "string: '%s'", t.text);
    testOk1(t.portGiven && t.port == 6000);
    testOk1(t.secondsGiven && t.seconds == 2.5);
    testOk1(t.countGiven && t.count == 7);
    testOk1(t.flagGiven == 1);
    testOk(t.listGiven && ellCount(&t.list) == 1 && strcmp(nth(&t.list, 0), "127.0.0.1:0") == 0,
           "list: %s", nth(&t.list, 0));
    testOk1(parse(&t, "-text last -count 0x0a") == 0 && strcmp(t.text, "last") == 0
            && t.count == 10);
    gwOptionTableClear(testTable, TROWS, &t);
    testOk1(!t.text && !t.textGiven && ellCount(&t.list) == 0 && !t.listGiven && !t.flagGiven
            && t.port == 0 && !t.portGiven);

    testDiag("argv: a value with spaces stays one value");
    testOk1(gwOptionTableParseArgv(testTable, TROWS, &t, 7, argv, error, sizeof error) == 0);
    testOk1(t.count == 3 && t.flagGiven && strcmp(t.text, "hello world") == 0 && t.port == 5070);
    gwOptionTableClear(testTable, TROWS, &t);
}

static void testQuoting(void)
{
    testTarget t;

    testDiag("quoting");
    memset(&t, 0, sizeof t);
    testOk1(parse(&t, "-text \"two words\"") == 0 && strcmp(t.text, "two words") == 0);
    testOk1(parse(&t, "-text 'single quoted'") == 0 && strcmp(t.text, "single quoted") == 0);
    testOk1(parse(&t, "-text 'say \"hi\"'") == 0 && strcmp(t.text, "say \"hi\"") == 0);
    testOk1(parse(&t, "-text a\"b c\"d") == 0 && strcmp(t.text, "ab cd") == 0);
    testOk1(parse(&t, "-text \"\"") == 0 && strcmp(t.text, "") == 0);
    testOk1(parse(&t, "-list \"127.0.0.1 127.0.0.2:6000\"") == 0 && ellCount(&t.list) == 2
            && strcmp(nth(&t.list, 1), "127.0.0.2:6000") == 0);
    testOk1(parse(&t, "-text \"open") == -1 && strstr(error, "unterminated") != NULL);
    testDiag("%s", error);
    gwOptionTableClear(testTable, TROWS, &t);
}

static void testLists(void)
{
    testTarget t;

    testDiag("address lists: commas, spaces, repetition, duplicates");
    memset(&t, 0, sizeof t);
    testOk1(parse(&t, "-list 127.0.0.1,127.0.0.2 -list \"127.0.0.3, 127.0.0.4\"") == 0);
    testOk(ellCount(&t.list) == 4, "4 addresses (%d)", ellCount(&t.list));
    testOk1(strcmp(nth(&t.list, 0), "127.0.0.1:0") == 0 && strcmp(nth(&t.list, 3), "127.0.0.4:0") == 0);
    testOk1(parse(&t, "-list 127.0.0.1") == 0 && ellCount(&t.list) == 4);
    testOk1(parse(&t, "-list 224.0.2.9") == 0 && ellCount(&t.list) == 5);
    gwOptionTableClear(testTable, TROWS, &t);
}

typedef struct errorCase {
    const char *line;
    const char *mustContain;
} errorCase;

static void testErrors(void)
{
    static const errorCase cases[] = {
        {"-bogus", "unknown option '-bogus'"},
        {"stray", "unexpected argument 'stray'"},
        {"-text", "-text: missing value"},
        {"-port", "-port: missing value"},
        {"-text -flag", "-text: missing value"},
        {"-port abc", "-port: 'abc' is not a port"},
        {"-port 0", "-port: '0'"},
        {"-port 65536", "-port: '65536'"},
        {"-port -5", "-port: '-5'"},
        {"-port 50x", "-port: '50x'"},
        {"-count 11", "-count: '11' is not an integer"},
        {"-count 0", "-count: '0'"},
        {"-count 1.5", "-count: '1.5'"},
        {"-count ''", "-count: ''"},
        {"-seconds 0", "-seconds: '0' is not a number"},
        {"-seconds nan", "-seconds: 'nan'"},
        {"-seconds 1e9", "-seconds: '1e9'"},
        {"-seconds 2s", "-seconds: '2s'"},
        {"-list 300.1.2.3", "-list: bad address '300.1.2.3'"},
        {"-list \"127.0.0.1 127.0.0.2:99999\"", "-list: bad address '127.0.0.2:99999'"},
        {"-list ''", "-list: no address given"},
        {"-list ' , '", "-list: no address given"},
        {"-flag -flag -count", "-count: missing value"},
    };
    size_t i;

    testDiag("every error names the option");
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        testTarget t;
        int status;

        memset(&t, 0, sizeof t);
        status = parse(&t, cases[i].line);
        testOk(status == -1 && strstr(error, cases[i].mustContain) != NULL,
               "%s -> %s", cases[i].line, error);
        gwOptionTableClear(testTable, TROWS, &t);
    }
}

static void testGatewayOptions(void)
{
    gwOptions options;
    gwServerConfig config;
    char *argv[] = {"-sport", "6064", "-sip", "127.0.0.1,224.0.2.9", "-io_threads", "4"};

    testDiag("the gateway's server options");
    memset(&options, 0, sizeof options);
    testOk1(gwOptionsParseString(&options, "-sip 127.0.0.1 -sip \"127.0.0.2:7000 224.0.2.9\""
                                           " -sport 5100 -signore 127.1.1.1,127.1.1.2 -io_threads 3") == 0);
    testOk1(options.serverInterfacesGiven && ellCount(&options.serverInterfaces) == 3);
    testOk1(options.serverPortGiven && options.serverPort == 5100);
    testOk1(options.serverIgnoreGiven && ellCount(&options.serverIgnore) == 2);
    testOk1(options.ioThreadsGiven && options.ioThreads == 3);

    memset(&config, 0, sizeof config);
    config.port = 5064;
    config.ioThreads = GW_SERVER_DEFAULT_IO_THREADS;
    gwServerConfigParseAddresses(&config.interfaces, "127.9.9.9", 5064, "test", error, sizeof error);
    gwServerConfigParseAddresses(&config.beaconAddresses, "127.9.9.255", 5065, "test", error,
                                 sizeof error);
    testOk1(gwOptionsApplyToServerConfig(&options, &config) == 0);
    testOk1(config.port == 5100 && config.ioThreads == 3);
    testOk(ellCount(&config.interfaces) == 3 && strcmp(nth(&config.interfaces, 0), "127.0.0.1:5100") == 0
           && strcmp(nth(&config.interfaces, 1), "127.0.0.2:7000") == 0,
           "interfaces replaced, server port where none given: %s", nth(&config.interfaces, 0));
    testOk1(ellCount(&config.ignoreAddresses) == 2
            && strcmp(nth(&config.ignoreAddresses, 1), "127.1.1.2:0") == 0);
    testOk1(ellCount(&config.beaconAddresses) == 1);
    gwServerConfigClear(&config);
    gwOptionsClear(&options);
    testOk1(!options.serverInterfacesGiven && ellCount(&options.serverInterfaces) == 0
            && !options.serverPortGiven && !options.ioThreadsGiven);

    testDiag("options not given leave the configuration alone");
    memset(&config, 0, sizeof config);
    config.port = 5064;
    config.ioThreads = 2;
    gwServerConfigParseAddresses(&config.interfaces, "127.9.9.9", 5064, "test", error, sizeof error);
    testOk1(gwOptionsApplyToServerConfig(&options, &config) == 0);
    testOk1(config.port == 5064 && config.ioThreads == 2 && ellCount(&config.interfaces) == 1);
    gwServerConfigClear(&config);

    testOk1(gwOptionsParseArgv(&options, 6, argv) == 0 && options.serverPort == 6064
            && ellCount(&options.serverInterfaces) == 2 && options.ioThreads == 4);
    gwOptionsClear(&options);

    testOk1(gwOptionsParseString(&options, "-sport 70000") == -1
            && strstr(options.error, "-sport") != NULL);
    testDiag("%s", options.error);
    testOk1(gwOptionsParseString(&options, "-io_threads 0") == -1
            && strstr(options.error, "-io_threads") != NULL);
    testOk1(gwOptionsParseString(&options, "-sip") == -1
            && strstr(options.error, "-sip: missing value") != NULL);
    testOk1(gwOptionsParseString(&options, "-frobnicate 1") == -1
            && strstr(options.error, "unknown option '-frobnicate'") != NULL);
    gwOptionsClear(&options);
    testOk1(options.error[0] == '\0');

    {
        FILE *f = tmpfile();
        char text[2048];
        size_t n = 0;

        if (f) {
            gwOptionsUsage(f);
            rewind(f);
            n = fread(text, 1, sizeof text - 1, f);
            fclose(f);
        }
        text[n] = '\0';
        testOk(strstr(text, "-sip <address ...>") && strstr(text, "-sport <port>")
               && strstr(text, "-signore") && strstr(text, "-io_threads <n>")
               && strstr(text, "-cip <address ...>") && strstr(text, "-no_cache")
               && strstr(text, "(extension)"), "usage lists every option");
    }
}

static void testUpstreamOptions(void)
{
    gwOptions options;
    gwUpstreamConfig config;

    testDiag("the gateway's client (upstream) options");
    gwUpstreamConfigDefaults(&config);
    testOk1(config.connectTimeout == 1.0 && config.inactiveTimeout == 7200.0
            && config.deadTimeout == 120.0 && config.disconnectTimeout == 7200.0
            && config.reconnectInhibit == 300.0 && !config.addressList && !config.port
            && config.defaultMask == (GW_EVENT_VALUE | GW_EVENT_ALARM)
            && !config.archive && !config.noCache);

    memset(&options, 0, sizeof options);
    testOk1(gwOptionsParseString(&options, "-cip '127.0.0.1 127.255.255.255:5070' -cport 5066"
                                           " -connect_timeout 0.5 -inactive_timeout 10"
                                           " -dead_timeout 2 -disconnect_timeout 3"
                                           " -reconnect_inhibit 0 -mask vlp -archive -no_cache") == 0);
    testOk1(gwOptionsApplyToUpstreamConfig(&options, &config) == 0);
    testOk(config.addressList && strcmp(config.addressList, "127.0.0.1 127.255.255.255:5070") == 0,
           "-cip becomes an address list: '%s'", config.addressList ? config.addressList : "");
    testOk1(config.port == 5066 && config.connectTimeout == 0.5 && config.inactiveTimeout == 10.0
            && config.deadTimeout == 2.0 && config.disconnectTimeout == 3.0
            && config.reconnectInhibit == 0.0);
    testOk1(config.defaultMask == (GW_EVENT_VALUE | GW_EVENT_LOG | GW_EVENT_PROPERTY)
            && config.archive && config.noCache);
    gwUpstreamConfigClear(&config);
    gwOptionsClear(&options);
    testOk1(!options.clientAddressesGiven && !options.maskGiven && !options.mask
            && !options.archiveGiven);

    gwUpstreamConfigDefaults(&config);
    testOk1(gwOptionsParseString(&options, "-mask vx") == 0
            && gwOptionsApplyToUpstreamConfig(&options, &config) == -1
            && strstr(options.error, "-mask") != NULL);
    testDiag("%s", options.error);
    testOk1(config.defaultMask == (GW_EVENT_VALUE | GW_EVENT_ALARM));
    gwOptionsClear(&options);
    testOk1(gwOptionsParseString(&options, "-connect_timeout 0") == -1
            && strstr(options.error, "-connect_timeout") != NULL);
    testOk1(gwOptionsParseString(&options, "-cip") == -1
            && strstr(options.error, "-cip: missing value") != NULL);
    testOk1(gwOptionsParseString(&options, "-cip 127.0.0.300") == -1
            && strstr(options.error, "-cip") != NULL);
    testOk1(gwOptionsParseString(&options, "-archive 1") == -1);
    gwOptionsClear(&options);
    gwUpstreamConfigClear(&config);

    {
        unsigned mask = 0;
        testOk1(gwUpstreamParseMask("a", &mask) == 0 && mask == GW_EVENT_ALARM);
        testOk1(gwUpstreamParseMask("", &mask) == -1 && mask == GW_EVENT_ALARM);
    }
}

static const char *const environment[] = {
    "EPICS_CAS_SERVER_PORT", "EPICS_CA_SERVER_PORT", "EPICS_CAS_BEACON_PORT",
    "EPICS_CA_REPEATER_PORT", "EPICS_CAS_BEACON_PERIOD", "EPICS_CA_BEACON_PERIOD",
    "EPICS_CA_MAX_ARRAY_BYTES", "EPICS_CAS_INTF_ADDR_LIST", "EPICS_CAS_IGNORE_ADDR_LIST",
    "EPICS_CAS_BEACON_ADDR_LIST", "EPICS_CA_ADDR_LIST", "EPICS_CAS_AUTO_BEACON_ADDR_LIST",
    "EPICS_CA_AUTO_ADDR_LIST",
};

static void clearEnvironment(void)
{
    size_t i;

    for (i = 0; i < sizeof environment / sizeof environment[0]; i++)
        epicsEnvUnset(environment[i]);
}

typedef struct badSetting {
    const char *name;
    const char *value;
} badSetting;

static void testEnvironment(void)
{
    static const badSetting bad[] = {
        {"EPICS_CAS_SERVER_PORT", "abc"},
        {"EPICS_CAS_SERVER_PORT", "0"},
        {"EPICS_CA_SERVER_PORT", "70000"},
        {"EPICS_CAS_BEACON_PORT", "5065x"},
        {"EPICS_CAS_BEACON_PERIOD", "-1"},
        {"EPICS_CA_BEACON_PERIOD", "soon"},
        {"EPICS_CA_MAX_ARRAY_BYTES", "-5"},
        {"EPICS_CA_MAX_ARRAY_BYTES", "12abc"},
        {"EPICS_CAS_INTF_ADDR_LIST", "127.0.0.1 300.1.1.1"},
        {"EPICS_CAS_IGNORE_ADDR_LIST", "127.0.0.1:99999"},
        {"EPICS_CA_ADDR_LIST", "1.2.3.4:5x"},
        {"EPICS_CAS_AUTO_BEACON_ADDR_LIST", "maybe"},
    };
    gwServerConfig config;
    size_t i;

    testDiag("configuration from the environment: defaults");
    clearEnvironment();
    testOk1(gwServerConfigFromEnvironment(&config) == 0);
    testOk1(config.port == 5064 && config.beaconPort == 5065);
    testOk1(config.beaconPeriod == 15.0 && config.maxArrayBytes == 16384);
    testOk1(config.ioThreads == GW_SERVER_DEFAULT_IO_THREADS && config.autoBeaconAddresses == 1);
    testOk1(ellCount(&config.interfaces) == 0 && ellCount(&config.ignoreAddresses) == 0
            && ellCount(&config.beaconAddresses) == 0);
    gwServerConfigClear(&config);

    testDiag("EPICS_CA_* fallbacks");
    epicsEnvSet("EPICS_CA_SERVER_PORT", "6000");
    epicsEnvSet("EPICS_CA_REPEATER_PORT", "6010");
    epicsEnvSet("EPICS_CA_BEACON_PERIOD", "3");
    epicsEnvSet("EPICS_CA_ADDR_LIST", "127.0.0.255 127.0.1.255:7000");
    epicsEnvSet("EPICS_CA_AUTO_ADDR_LIST", "NO");
    epicsEnvSet("EPICS_CA_MAX_ARRAY_BYTES", "1000");
    testOk1(gwServerConfigFromEnvironment(&config) == 0);
    testOk1(config.port == 6000 && config.beaconPort == 6010 && config.beaconPeriod == 3.0);
    testOk(ellCount(&config.beaconAddresses) == 2
           && strcmp(nth(&config.beaconAddresses, 0), "127.0.0.255:6010") == 0
           && strcmp(nth(&config.beaconAddresses, 1), "127.0.1.255:7000") == 0,
           "beacons to EPICS_CA_ADDR_LIST: %s", nth(&config.beaconAddresses, 0));
    testOk1(config.autoBeaconAddresses == 0);
    testOk(config.maxArrayBytes == 16384, "EPICS_CA_MAX_ARRAY_BYTES rounded up to 16384");
    gwServerConfigClear(&config);

    testDiag("EPICS_CAS_* win");
    epicsEnvSet("EPICS_CAS_SERVER_PORT", "6001");
    epicsEnvSet("EPICS_CAS_BEACON_PORT", "6011");
    epicsEnvSet("EPICS_CAS_BEACON_PERIOD", "2.5");
    epicsEnvSet("EPICS_CAS_BEACON_ADDR_LIST", "127.0.2.255");
    epicsEnvSet("EPICS_CAS_AUTO_BEACON_ADDR_LIST", "yes");
    epicsEnvSet("EPICS_CAS_INTF_ADDR_LIST", "127.0.0.1 127.0.0.2:7000,224.0.2.9 127.0.0.1");
    epicsEnvSet("EPICS_CAS_IGNORE_ADDR_LIST", "127.1.1.1");
    epicsEnvSet("EPICS_CA_MAX_ARRAY_BYTES", "100000");
    testOk1(gwServerConfigFromEnvironment(&config) == 0);
    testOk1(config.port == 6001 && config.beaconPort == 6011 && config.beaconPeriod == 2.5);
    testOk1(ellCount(&config.beaconAddresses) == 1
            && strcmp(nth(&config.beaconAddresses, 0), "127.0.2.255:6011") == 0);
    testOk1(config.autoBeaconAddresses == 1 && config.maxArrayBytes == 100000);
    testOk(ellCount(&config.interfaces) == 3 && strcmp(nth(&config.interfaces, 0), "127.0.0.1:6001") == 0
           && strcmp(nth(&config.interfaces, 1), "127.0.0.2:7000") == 0
           && strcmp(nth(&config.interfaces, 2), "224.0.2.9:6001") == 0,
           "interfaces, duplicates removed");
    testOk1(ellCount(&config.ignoreAddresses) == 1
            && strcmp(nth(&config.ignoreAddresses, 0), "127.1.1.1:0") == 0);
    gwServerConfigClear(&config);

    testDiag("bad values are errors");
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        clearEnvironment();
        epicsEnvSet(bad[i].name, bad[i].value);
        memset(&config, 0x5a, sizeof config);
        testOk(gwServerConfigFromEnvironment(&config) == -1
               && ellCount(&config.interfaces) == 0 && ellCount(&config.beaconAddresses) == 0,
               "%s='%s' refused, lists empty", bad[i].name, bad[i].value);
    }
    clearEnvironment();
}

MAIN(gwOptionsTest)
{
    (void)argc; /* MAIN() names them; this test takes no arguments */
    (void)argv;
    testPlan(111);
    testKinds();
    testQuoting();
    testLists();
    testErrors();
    testGatewayOptions();
    testUpstreamOptions();
    testEnvironment();
    return testDone();
}
