/* gwText.c - a growing text buffer for reports (see gwText.h).
 * No threads, no locks of its own.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "gwText.h"

static const char cutNote[] = "...(report cut: out of memory)\n";

static int reserve(gwText *text, size_t more)
{
    size_t need = text->length + more + 1;
    size_t capacity = text->capacity ? text->capacity : 1024;
    char *bytes;

    if (need <= text->capacity)
        return 0;
    while (capacity < need)
        capacity *= 2;
    bytes = realloc(text->bytes, capacity);
    if (!bytes)
        return -1;
    text->bytes = bytes;
    text->capacity = capacity;
    return 0;
}

void gwTextPrintf(gwText *text, const char *format, ...)
{
    va_list args;
    int n;

    if (text->cut)
        return;
    va_start(args, format);
    n = vsnprintf(NULL, 0, format, args);
    va_end(args);
    if (n < 0)
        return;
    if (reserve(text, (size_t)n) != 0) {
        text->cut = 1;
        return;
    }
    va_start(args, format);
    vsnprintf(text->bytes + text->length, (size_t)n + 1, format, args);
    va_end(args);
    text->length += (size_t)n;
}

void gwTextFlush(gwText *text, FILE *out)
{
    if (text->length)
        fwrite(text->bytes, 1, text->length, out);
    if (text->cut)
        fputs(cutNote, out);
    fflush(out);
    free(text->bytes);
    text->bytes = NULL;
    text->length = text->capacity = 0;
    text->cut = 0;
}
