/* gwNameTable.c - a table of objects by name (see gwNameTable.h).
 *
 * Chained buckets, FNV-1a hashes. The buckets double when the table holds
 * more nodes than it has buckets, so chains stay short however many names
 * come. No locks, no threads: the owner's lock guards it.
 */
#include <stdlib.h>
#include <string.h>

#include "gwNameTable.h"

#define GW_NAME_TABLE_MIN 16u

unsigned gwNameHash(const char *name)
{
    unsigned h = 2166136261u;

    while (*name)
        h = (h ^ (unsigned char)*name++) * 16777619u;
    return h;
}

int gwNameTableInit(gwNameTable *table, size_t buckets)
{
    size_t n = GW_NAME_TABLE_MIN;

    while (n < buckets && n < ((size_t)-1 >> 1) / sizeof *table->buckets)
        n *= 2;
    table->buckets = calloc(n, sizeof *table->buckets);
    table->mask = table->buckets ? n - 1 : 0;
    table->count = 0;
    return table->buckets ? 0 : -1;
}

void gwNameTableClear(gwNameTable *table)
{
    free(table->buckets);
    table->buckets = NULL;
    table->mask = 0;
    table->count = 0;
}

gwNameNode *gwNameTableFind(const gwNameTable *table, const char *name, unsigned hash)
{
    gwNameNode *node;

    if (!table->buckets)
        return NULL;
    for (node = table->buckets[hash & table->mask]; node; node = node->next)
        if (node->hash == hash && strcmp(node->name, name) == 0)
            return node;
    return NULL;
}

/* Twice the buckets, every node moved; nothing changes when there is no
 * memory for them. */
static void grow(gwNameTable *table)
{
    size_t n = (table->mask + 1) * 2, i;
    gwNameNode **bigger;

    if (n > ((size_t)-1 >> 1) / sizeof *bigger)
        return;
    bigger = calloc(n, sizeof *bigger);
    if (!bigger)
        return;
    for (i = 0; i <= table->mask; i++) {
        gwNameNode *node = table->buckets[i];
        while (node) {
            gwNameNode *next = node->next;
            node->next = bigger[node->hash & (n - 1)];
            bigger[node->hash & (n - 1)] = node;
            node = next;
        }
    }
    free(table->buckets);
    table->buckets = bigger;
    table->mask = n - 1;
}

void gwNameTableAdd(gwNameTable *table, gwNameNode *node, const char *name, unsigned hash)
{
    gwNameNode **bucket;

    if (table->count >= table->mask + 1)
        grow(table);
    bucket = &table->buckets[hash & table->mask];
    node->name = name;
    node->hash = hash;
    node->next = *bucket;
    *bucket = node;
    table->count++;
}

void gwNameTableRemove(gwNameTable *table, gwNameNode *node)
{
    gwNameNode **link;

    for (link = &table->buckets[node->hash & table->mask]; *link; link = &(*link)->next) {
        if (*link == node) {
            *link = node->next;
            node->next = NULL;
            table->count--;
            return;
        }
    }
}
