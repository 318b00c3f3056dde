/* gwText.h - a growing text buffer, for reports written under a lock and
 * printed after it (gwText.c).
 *
 * A gwText belongs to its caller; no locks, any thread. Out of memory, the
 * text ends with "...(report cut: out of memory)" instead of failing.
 */
#ifndef INC_gwText_H
#define INC_gwText_H

#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gwText {
    char *bytes;      /* NUL-terminated when length > 0 */
    size_t length;
    size_t capacity;
    int cut;          /* an append failed: nothing more is appended */
} gwText;

#define GW_TEXT_INIT { NULL, 0, 0, 0 }

#if defined(__GNUC__)
#define GW_TEXT_PRINTF(a, b) __attribute__((format(__printf__, a, b)))
#else
#define GW_TEXT_PRINTF(a, b)
#endif

/* Append formatted text. */
void gwTextPrintf(gwText *text, const char *format, ...) GW_TEXT_PRINTF(2, 3);
/* Write the text to out, then free it (the text is empty again). */
void gwTextFlush(gwText *text, FILE *out);

#ifdef __cplusplus
}
#endif

#endif /* INC_gwText_H */
