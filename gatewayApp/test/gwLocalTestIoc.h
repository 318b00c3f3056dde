/* gwLocalTestIoc.h - the in-process IOC of gwLocalTest: start, stop, and
 * dbpf-style writes. Kept apart from gwLocalTest.c because the database's
 * DBR_* codes (dbAccess.h) and Channel Access's (db_access.h) share names. */
#ifndef INC_gwLocalTestIoc_H
#define INC_gwLocalTestIoc_H

/* Load gwLocalTest.dbd and gwLocalTest.db, use the access file acf
 * (absolute path), iocInit. */
void gwTestIocStart(const char *acf);
void gwTestIocStop(void);

/* testdbPutFieldOk with a double or a string (one test point each). */
void gwTestPutDouble(const char *pv, double value);
void gwTestPutString(const char *pv, const char *value);

/* The record's field, read with dbGetField as a double. */
double gwTestGetDouble(const char *pv);

#endif /* INC_gwLocalTestIoc_H */
