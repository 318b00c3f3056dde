/* gatewayMain.c - main() of the ready-made gateway IOC.
 *
 * Runs the startup script given as the first argument, then the
 * interactive iocsh; leaves through epicsExit so exit handlers run.
 * `gateway -check [-pvlist FILE] [-access FILE]` only validates the
 * files and exits: 0 good, 1 an error (printed as FILE:LINE: reason),
 * 2 a bad command line.
 */
#include <stdio.h>
#include <string.h>

#include <epicsExit.h>
#include <epicsThread.h>
#include <iocsh.h>

#include "gwRules.h"

static int checkMode(int argc, char *argv[])
{
    const char *pvlist = NULL, *access = NULL;
    int i;

    for (i = 2; i < argc; i++) {
        if (strcmp(argv[i], "-pvlist") == 0 && i + 1 < argc)
            pvlist = argv[++i];
        else if (strcmp(argv[i], "-access") == 0 && i + 1 < argc)
            access = argv[++i];
        else {
            fprintf(stderr, "gateway -check: unexpected '%s'\n"
                    "usage: gateway -check [-pvlist FILE] [-access FILE]\n", argv[i]);
            return 2;
        }
    }
    if (!pvlist && !access) {
        fprintf(stderr, "usage: gateway -check [-pvlist FILE] [-access FILE]\n");
        return 2;
    }
    return gwRulesCheckFiles(pvlist, access, stdout) == 0 ? 0 : 1;
}

int main(int argc, char *argv[])
{
    int status = 0;

    if (argc >= 2 && strcmp(argv[1], "-check") == 0) {
        status = checkMode(argc, argv);
        fflush(stdout);
        epicsExit(status);
        return status;
    }
    if (argc >= 2) {
        status = iocsh(argv[1]);
        epicsThreadSleep(.2);
    }
    if (status == 0)
        status = iocsh(NULL);
    epicsExit(status ? 1 : 0);
    return 0;
}
