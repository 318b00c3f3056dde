/* gwConformanceIoc.h - the in-process IOC of gwProviderConformanceTest
 * (kept apart: the database's DBR_* codes and Channel Access's share
 * names). A full iocInit (not the isolated one of dbUnitTest), so that
 * asLib's INPA inputs reach the IOC's own records. */
#ifndef INC_gwConformanceIoc_H
#define INC_gwConformanceIoc_H

/* Load dbd, the records of db with macros, the access file acf with the
 * same macros, and iocInit. Paths absolute. 0 on success. */
int gwConformanceIocStart(const char *dbd, const char *db, const char *macros,
                          const char *acf);
void gwConformanceIocStop(void);

#endif /* INC_gwConformanceIoc_H */
