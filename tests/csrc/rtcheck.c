/* LD_PRELOAD real-time checker (built by tests/test_jack_backend.py).
 *
 * Counts calls to malloc, calloc, realloc, free, pthread_mutex_lock,
 * PyGILState_Ensure and PyEval_RestoreThread made inside the audio callback:
 * the JACK glue calls rtcheck_enter()/rtcheck_leave() (weak symbols, defined
 * only here) around its callback body, which marks the thread for that time.
 * Calls on the same thread outside the bracket (libjack's own cycle loop) are
 * counted separately.  Read the counts with rtcheck_counts(). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

enum { C_MALLOC, C_CALLOC, C_REALLOC, C_FREE, C_MUTEX, C_GIL_ENSURE, C_RESTORE_THREAD, C_N };

static __thread int in_callback __attribute__((tls_model("initial-exec")));
static __thread int audio_thread __attribute__((tls_model("initial-exec")));
static atomic_ulong inside[C_N], outside[C_N], brackets;

void rtcheck_enter(void)
{
    in_callback = 1;
    audio_thread = 1;
}

void rtcheck_leave(void)
{
    in_callback = 0;
    atomic_fetch_add_explicit(&brackets, 1, memory_order_relaxed);
}

/* dst[0..C_N-1]: inside the callback; dst[C_N..2*C_N-1]: elsewhere on a thread
 * that has run the callback; dst[2*C_N]: callbacks seen. */
void rtcheck_counts(unsigned long *dst)
{
    for (int i = 0; i < C_N; i++) {
        dst[i] = atomic_load(&inside[i]);
        dst[C_N + i] = atomic_load(&outside[i]);
    }
    dst[2 * C_N] = atomic_load(&brackets);
}

static inline void note(int which)
{
    if (in_callback)
        atomic_fetch_add_explicit(&inside[which], 1, memory_order_relaxed);
    else if (audio_thread)
        atomic_fetch_add_explicit(&outside[which], 1, memory_order_relaxed);
}

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

void *malloc(size_t n)
{
    note(C_MALLOC);
    return __libc_malloc(n);
}

void *calloc(size_t a, size_t b)
{
    note(C_CALLOC);
    return __libc_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
    note(C_REALLOC);
    return __libc_realloc(p, n);
}

void free(void *p)
{
    note(C_FREE);
    __libc_free(p);
}

/* Resolved before main (single-threaded): until then a lock is not needed,
 * and dlsym itself may lock. */
static int (*real_mutex_lock)(pthread_mutex_t *);
static int (*real_gil_ensure)(void);
static void (*real_restore_thread)(void *);

__attribute__((constructor)) static void rtcheck_init(void)
{
    real_mutex_lock = (int (*)(pthread_mutex_t *))dlsym(RTLD_NEXT, "pthread_mutex_lock");
    real_gil_ensure = (int (*)(void))dlsym(RTLD_NEXT, "PyGILState_Ensure");
    real_restore_thread = (void (*)(void *))dlsym(RTLD_NEXT, "PyEval_RestoreThread");
}

int pthread_mutex_lock(pthread_mutex_t *m)
{
    note(C_MUTEX);
    return real_mutex_lock ? real_mutex_lock(m) : 0;
}

/* PyGILState_STATE is an enum (an int). */
int PyGILState_Ensure(void)
{
    note(C_GIL_ENSURE);
    return real_gil_ensure();
}

void PyEval_RestoreThread(void *tstate)
{
    note(C_RESTORE_THREAD);
    real_restore_thread(tstate);
}
