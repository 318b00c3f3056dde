/* gwIoc.h - the gateway inside an IOC (gwIoc.c): what the iocsh commands
 * call. All from the iocsh thread, except gwIocReport (any thread).
 */
#ifndef INC_gwIoc_H
#define INC_gwIoc_H

#ifdef __cplusplus
extern "C" {
#endif

/* Register with the IOC (once, from the dbd registrar, before iocInit). */
void gwIocRegister(void);

/* Start the server with classic-gateway options ("-sip 127.0.0.1 -sport
 * 5070"); before iocInit it starts when the IOC runs. 0, or -1 /
 * GW_IOC_BAD_OPTIONS with the reason printed and nothing left started. */
#define GW_IOC_BAD_OPTIONS (-2)
int gwIocStart(const char *options);

/* Stop the server and release everything it holds. */
void gwIocStop(void);

/* Print the server's report. */
void gwIocReport(unsigned level);

#ifdef __cplusplus
}
#endif

#endif /* INC_gwIoc_H */
