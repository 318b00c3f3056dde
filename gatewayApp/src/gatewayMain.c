/* gatewayMain.c - main() of the ready-made gateway IOC.
 *
 * Runs the startup script given as the first argument, then the
 * interactive iocsh; leaves through epicsExit so exit handlers run.
 */
#include <epicsExit.h>
#include <epicsThread.h>
#include <iocsh.h>

int main(int argc, char *argv[])
{
    int status = 0;

    if (argc >= 2) {
        status = iocsh(argv[1]);
        epicsThreadSleep(.2);
    }
    if (status == 0)
        status = iocsh(NULL);
    epicsExit(status ? 1 : 0);
    return 0;
}
