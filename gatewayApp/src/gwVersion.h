/* gwVersion.h - the module's version and the Base it was built against.
 *
 * Pure functions, callable from any thread at any time.
 */
#ifndef INC_gwVersion_H
#define INC_gwVersion_H

#include <stddef.h>

#define GW_VERSION_MAJOR 0
#define GW_VERSION_MINOR 1
#define GW_VERSION_PATCH 0

#ifdef __cplusplus
extern "C" {
#endif

/* "MAJOR.MINOR.PATCH" of this module; a static string. */
const char *gwVersionString(void);

/* One line for people: module version and the EPICS Base it was built
 * against. Writes at most size bytes including the terminating NUL (never
 * overflows; truncates) and returns the length the full line needs, like
 * snprintf. buf may be NULL when size is 0. */
int gwVersionFormat(char *buf, size_t size);

/* Non-zero when this module's version is at least major.minor.patch. */
int gwVersionAtLeast(int major, int minor, int patch);

#ifdef __cplusplus
}
#endif

#endif /* INC_gwVersion_H */
