/* gwCommandMode.h - `gateway [options]`, the classic gateway's command
 * line (gwCommandMode.c), for the ready IOC's main().
 */
#ifndef INC_gwCommandMode_H
#define INC_gwCommandMode_H

#ifdef __cplusplus
extern "C" {
#endif

struct dbBase;

/* Run the gateway the options of argv[1..] describe, registering the
 * IOC's dbd with registerDriver. Returns the exit status when it ends
 * without the IOC running (-help, -version, a refused command line: 2,
 * a failure to start: 1); once the IOC runs it ends through epicsExit. */
int gwCommandMode(int argc, char *argv[], int (*registerDriver)(struct dbBase *));

#ifdef __cplusplus
}
#endif

#endif /* INC_gwCommandMode_H */
