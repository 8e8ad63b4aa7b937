/* Test-only process functions for tests/test_jack_backend.py (built by the
 * tests with gcc -shared; never part of the product).  Signature:
 * uint32_t fn(void *ctx, const float *const *in, float *const *out, uint32_t frames). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* out[c] = gain * in[c] delayed by `delay` frames (a per-channel ring). */
typedef struct tp_gain_delay {
    uint32_t channels, delay, pos;
    _Atomic float gain;
    float *line; /* channels * delay */
} tp_gain_delay;

tp_gain_delay *tp_gain_delay_create(uint32_t channels, uint32_t delay, float gain)
{
    tp_gain_delay *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->channels = channels;
    g->delay = delay;
    atomic_init(&g->gain, gain);
    g->line = calloc((size_t)channels * (delay ? delay : 1), sizeof(float));
    return g;
}

void tp_gain_delay_set_gain(tp_gain_delay *g, float gain) { atomic_store_explicit(&g->gain, gain, memory_order_relaxed); }

void tp_gain_delay_destroy(tp_gain_delay *g)
{
    if (g) free(g->line);
    free(g);
}

uint32_t tp_gain_delay_process(void *ctx, const float *const *in, float *const *out, uint32_t frames)
{
    tp_gain_delay *g = ctx;
    float gain = atomic_load_explicit(&g->gain, memory_order_relaxed);
    uint32_t pos = g->pos;
    for (uint32_t c = 0; c < g->channels; c++) {
        float *line = g->line + (size_t)c * (g->delay ? g->delay : 1);
        pos = g->pos;
        for (uint32_t i = 0; i < frames; i++) {
            float x = in[c][i];
            if (g->delay) {
                float y = line[pos];
                line[pos] = x;
                x = y;
                if (++pos == g->delay) pos = 0;
            }
            out[c][i] = gain * x;
        }
    }
    g->pos = pos;
    return frames;
}

/* Busy-waits spin_ns on every call (plus spin_once_ns once), then writes silence. */
typedef struct tp_spin {
    uint32_t channels;
    _Atomic uint64_t spin_ns, spin_once_ns;
} tp_spin;

tp_spin *tp_spin_create(uint32_t channels)
{
    tp_spin *s = calloc(1, sizeof *s);
    if (s) s->channels = channels;
    return s;
}

void tp_spin_set(tp_spin *s, uint64_t spin_ns, uint64_t spin_once_ns)
{
    atomic_store(&s->spin_ns, spin_ns);
    atomic_store(&s->spin_once_ns, spin_once_ns);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint32_t tp_spin_process(void *ctx, const float *const *in, float *const *out, uint32_t frames)
{
    tp_spin *s = ctx;
    uint64_t t = now_ns() + atomic_load(&s->spin_ns) + atomic_exchange(&s->spin_once_ns, 0);
    while (now_ns() < t) {
    }
    for (uint32_t c = 0; c < s->channels; c++) memset(out[c], 0, frames * sizeof(float));
    return frames;
}

/* Deliberately wrong: allocates, frees and locks on the audio thread.
 * ctx points to a uint32_t channel count. */
static pthread_mutex_t bad_mutex = PTHREAD_MUTEX_INITIALIZER;

uint32_t tp_bad_process(void *ctx, const float *const *in, float *const *out, uint32_t frames)
{
    uint32_t channels = *(const uint32_t *)ctx;
    float *scratch = malloc(frames * sizeof(float));
    pthread_mutex_lock(&bad_mutex);
    for (uint32_t c = 0; c < channels; c++) {
        if (scratch) memcpy(scratch, in[c], frames * sizeof(float));
        memcpy(out[c], scratch ? scratch : in[c], frames * sizeof(float));
    }
    pthread_mutex_unlock(&bad_mutex);
    free(scratch);
    return frames;
}
