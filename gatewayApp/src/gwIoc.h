/* gwIoc.h - the gateway inside an IOC (gwIoc.c): the IOC's one gateway
 * object and what the iocsh commands call. All from the iocsh thread,
 * except gwIocReport and gwIocGateway (any thread).
 */
#ifndef INC_gwIoc_H
#define INC_gwIoc_H

#include "gwGateway.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Register with the IOC (once, from the dbd registrar, before iocInit):
 * makes the gateway object. */
void gwIocRegister(void);

/* The IOC's gateway object (NULL before gwIocRegister): the one accessor
 * of iocsh commands, statistics records, reports and the command line. */
gwGateway *gwIocGateway(void);

/* Start the server with classic-gateway options: the words of options
 * ("-sip 127.0.0.1 -sport 5070", may be NULL), then argv[0..argc-1].
 * Before iocInit it starts when the IOC runs. 0, or -1 /
 * GW_IOC_BAD_OPTIONS with the reason printed and nothing left started. */
#define GW_IOC_BAD_OPTIONS (-2)
int gwIocStart(const char *options, int argc, char *const *argv);

/* Stop the server and release everything it holds. */
void gwIocStop(void);

/* Print the gateway's report to stdout. */
void gwIocReport(unsigned level);

#ifdef __cplusplus
}
#endif

#endif /* INC_gwIoc_H */
