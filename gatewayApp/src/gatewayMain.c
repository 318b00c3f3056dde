/* gatewayMain.c - main() of the ready-made gateway IOC.
 *
 * What the first argument is decides:
 * - none: the interactive iocsh;
 * - `-check [-pvlist FILE] [-access FILE]`: only validate the files and
 *   exit: 0 good, 1 an error (printed as FILE:LINE: reason), 2 a bad
 *   command line;
 * - another option (`-cip ...`): the classic gateway's command line
 *   (gwCommandMode.c);
 * - anything else: a startup script, then the interactive iocsh.
 * Leaves through epicsExit so exit handlers run.
 */
#include <stdio.h>
#include <string.h>

#include <epicsExit.h>
#include <epicsThread.h>
#include <iocsh.h>

#include "gwCommandLine.h"
#include "gwCommandMode.h"
#include "gwRules.h"

int gatewayIoc_registerRecordDeviceDriver(struct dbBase *pdbbase);

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
            return GW_COMMAND_LINE_BAD;
        }
    }
    if (!pvlist && !access) {
        fprintf(stderr, "usage: gateway -check [-pvlist FILE] [-access FILE]\n");
        return GW_COMMAND_LINE_BAD;
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
    if (argc >= 2 && argv[1][0] == '-') {
        status = gwCommandMode(argc, argv, gatewayIoc_registerRecordDeviceDriver);
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
