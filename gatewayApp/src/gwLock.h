/* gwLock.h - taking a lock that many threads want for a short time.
 *
 * The PV table's lock, the own searches' lock and the name server's list
 * of waiting searches are each held for well under a microsecond, but by
 * several threads thousands of times a second during a connect storm. A
 * thread that finds one taken and goes to sleep on it costs two system
 * calls and two context switches, far more than the wait: so
 * gwLockTake() tries again a few hundred times (about ten microseconds)
 * before it blocks like epicsMutexMustLock(). Measured: a quarter less
 * gateway CPU per 10 000 new PVs (documentation/performance.md).
 *
 * Any thread; the lock is an ordinary epicsMutex (recursive, released
 * with epicsMutexUnlock).
 */
#ifndef INC_gwLock_H
#define INC_gwLock_H

#include <epicsMutex.h>

#define GW_LOCK_SPINS 400

static inline void gwLockPause(void)
{
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    __builtin_ia32_pause();
#elif defined(__GNUC__) && defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static inline void gwLockTake(epicsMutexId lock)
{
    int i;

    for (i = 0; i < GW_LOCK_SPINS; i++) {
        if (epicsMutexTryLock(lock) == epicsMutexLockOK)
            return;
        gwLockPause();
    }
    epicsMutexMustLock(lock);
}

#endif /* INC_gwLock_H */
