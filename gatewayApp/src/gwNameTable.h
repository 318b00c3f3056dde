/* gwNameTable.h - a table of objects by name: a hash table whose nodes
 * live inside the objects (no allocation per entry), whose hash is
 * computed once, outside any lock, by the caller, and which doubles its
 * buckets as it fills. Used for the upstream PVs and the upstream
 * provider's own searches, where thousands of names are added and looked
 * up per second under a lock many threads want.
 *
 * Not thread-safe: the owner's lock guards the table. The names are the
 * objects' own (the table keeps a pointer) and must not change while the
 * node is in the table. The object of a node: CONTAINER(node, gwPv,
 * tableNode) (Base's dbDefs.h).
 */
#ifndef INC_gwNameTable_H
#define INC_gwNameTable_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gwNameNode {
    struct gwNameNode *next;    /* in its bucket */
    const char *name;
    unsigned hash;              /* gwNameHash(name) */
} gwNameNode;

typedef struct gwNameTable {
    gwNameNode **buckets;
    size_t mask;                /* buckets - 1 (a power of two) */
    size_t count;
} gwNameTable;

/* The hash of a name (any thread, no lock). */
unsigned gwNameHash(const char *name);

/* An empty table with about `buckets` buckets (rounded up to a power of
 * two): 0, or -1 when out of memory. The other calls need a table this
 * made (Find also works on a zeroed or cleared one). */
int gwNameTableInit(gwNameTable *table, size_t buckets);
/* Its buckets go; the nodes are the caller's. */
void gwNameTableClear(gwNameTable *table);

/* The node of that name (hash = gwNameHash(name)); NULL when none. */
gwNameNode *gwNameTableFind(const gwNameTable *table, const char *name, unsigned hash);
/* Put a node in (its name not in the table: the caller looked first).
 * name and hash are set here. Growing the table may fail for lack of
 * memory: the node is in the table all the same, in longer buckets. */
void gwNameTableAdd(gwNameTable *table, gwNameNode *node, const char *name, unsigned hash);
/* Take a node that is in the table out. */
void gwNameTableRemove(gwNameTable *table, gwNameNode *node);

#ifdef __cplusplus
}
#endif

#endif /* INC_gwNameTable_H */
