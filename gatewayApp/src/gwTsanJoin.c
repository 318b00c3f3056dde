/* gwTsanJoin.c - a pthread_join for the ThreadSanitizer build only
 * (GW_SANITIZE=thread; gatewayApp/src/Makefile links it into the gateway
 * IOC, the program the integration tests run, and gatewayApp/test/Makefile
 * into gwProviderConformanceTest, which runs libca in-process).
 *
 * Base 7.0.3.1's epicsThreadMustJoin on the calling thread itself (libca's
 * circuit receive thread does it when it destroys its circuit: tcpiiu's
 * destructor waits for its own thread) calls pthread_join, gets EDEADLK,
 * and detaches the thread instead. GCC 12's TSan runtime forgets the
 * thread in its pthread_join interceptor before the join fails, and its
 * pthread_detach interceptor then dies on a CHECK ("tid < kMaxTid"),
 * killing the gateway whenever an upstream circuit closes.
 *
 * Defined in the executable, this pthread_join comes before TSan's in
 * symbol lookup, so libCom's calls reach it: a join of the calling thread
 * fails with EDEADLK at once, as glibc's does, without TSan seeing it;
 * every other join goes on to TSan's interceptor (and glibc). Nothing of
 * this is in the normal or ASan builds. */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>

typedef int gwJoinFunction(pthread_t thread, void **result);

/* The next pthread_join (TSan's); looked up once, atomically: any thread. */
static gwJoinFunction *nextJoin(void)
{
    static gwJoinFunction *next;
    gwJoinFunction *found = __atomic_load_n(&next, __ATOMIC_ACQUIRE);

    if (!found) {
        void *symbol = dlsym(RTLD_NEXT, "pthread_join");

        memcpy(&found, &symbol, sizeof found);
        __atomic_store_n(&next, found, __ATOMIC_RELEASE);
    }
    return found;
}

int pthread_join(pthread_t thread, void **result)
{
    if (pthread_equal(thread, pthread_self()))
        return EDEADLK;
    return nextJoin()(thread, result);
}
