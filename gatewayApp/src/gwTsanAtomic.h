/* gwTsanAtomic.h - epicsAtomic get/set that ThreadSanitizer can see.
 *
 * Only for the ThreadSanitizer build: configure/CONFIG_SITE passes
 * `-include gwTsanAtomic.h` to every C file of the module when
 * GW_SANITIZE=thread, so this comes before any Base header.
 *
 * Base 7.0.3.1's epicsAtomicDefault.h implements epicsAtomicGet* and
 * epicsAtomicSet* as a plain access next to a __sync_synchronize() fence.
 * That is atomic on the machines Base supports, but TSan does not model
 * fences: every such access reads as a data race. Defining the
 * EPICS_ATOMIC_GET_* / EPICS_ATOMIC_SET_* macros first makes
 * epicsAtomicDefault.h skip its versions, and the ones below use the
 * __atomic builtins TSan understands (sequentially consistent, as strong
 * as Base's fences). Increment, add and compare-and-swap already use
 * __sync builtins, which TSan understands, and are left to Base.
 *
 * Base itself is not rebuilt; nothing here changes the normal builds. */
#ifndef INC_gwTsanAtomic_H
#define INC_gwTsanAtomic_H

#include <stddef.h>

#define EPICS_ATOMIC_GET_INTT
#define EPICS_ATOMIC_GET_SIZET
#define EPICS_ATOMIC_GET_PTRT
#define EPICS_ATOMIC_SET_INTT
#define EPICS_ATOMIC_SET_SIZET
#define EPICS_ATOMIC_SET_PTRT

/* The same types as epicsAtomic.h's declarations (EpicsAtomicPtrT is
 * void *), so its later prototypes agree with these definitions. */
static inline int epicsAtomicGetIntT(const int *pTarget)
{
    return __atomic_load_n(pTarget, __ATOMIC_SEQ_CST);
}

static inline size_t epicsAtomicGetSizeT(const size_t *pTarget)
{
    return __atomic_load_n(pTarget, __ATOMIC_SEQ_CST);
}

static inline void *epicsAtomicGetPtrT(void *const *pTarget)
{
    return __atomic_load_n(pTarget, __ATOMIC_SEQ_CST);
}

static inline void epicsAtomicSetIntT(int *pTarget, int newValue)
{
    __atomic_store_n(pTarget, newValue, __ATOMIC_SEQ_CST);
}

static inline void epicsAtomicSetSizeT(size_t *pTarget, size_t newValue)
{
    __atomic_store_n(pTarget, newValue, __ATOMIC_SEQ_CST);
}

static inline void epicsAtomicSetPtrT(void **pTarget, void *newValue)
{
    __atomic_store_n(pTarget, newValue, __ATOMIC_SEQ_CST);
}

#endif /* INC_gwTsanAtomic_H */
