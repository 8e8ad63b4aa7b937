#include "limiter.h"
#include "rt_common.h"
#include "true_peak.h"

#include <float.h>
#include <stdatomic.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LOOKAHEAD_MS_MIN 0.5
#define LOOKAHEAD_MS_MAX 10.0
#define CEILING_DB_MIN (-60.0)
#define CEILING_DB_MAX 0.0
#define RELEASE_MS_MIN 1.0
#define RELEASE_MS_MAX 5000.0
/* The detector: 4x at every rate (full-band content at 96 kHz has inter-sample peaks
 * too), 64 taps per phase with Kaiser beta 9 (a sharper transition at fs/2 than the
 * meter's 32-tap filter: a limiter pins many peaks at the ceiling, so the near-Nyquist
 * part of them matters), and the parabola-refined envelope (true_peak.h). */
#define TP_FACTOR 4u
#define TP_TAPS 64u
#define TP_BETA 9.0
#define TP_FLAT_MAX 8u        /* K: frames of flat gain either side of a peak (true-peak mode) */
#define CHUNK 256u            /* frames per internal pass (scratch size); not a processing unit */
#define Q_ONE 1099511627776.0 /* 2^40: fixed-point unit of the averaged gain */
#define R_MARGIN (1.0 - 1e-12)
#define AUTO_DENSITY_MS 500.0
#define AUTO_RECOVERED 0.999  /* gain counted as recovered (-0.009 dB) */

struct rt_limiter {
    uint32_t channels;
    double sample_rate;
    uint32_t max_lookahead;   /* frames, fixed at create */
    uint32_t lookahead;       /* D */
    uint32_t flat;            /* K */
    uint32_t hold_len;        /* H + 1 = D + K + 1 */
    uint32_t box_len;         /* A = D + 1 - K */
    uint32_t det_latency;     /* 0, or true-peak latency + 1 */
    uint32_t latency;         /* D + det_latency */

    double ceiling;           /* linear */
    float ceiling_f;          /* largest float <= ceiling */
    double release_ms;
    double rate_slow, rate_fast, rate_density;
    int auto_release;
    int true_peak;

    /* audio delay line: channels * delay_len, planar */
    float *delay;
    uint32_t delay_len, delay_w;
    /* r(t) for the last D+1 frames */
    double *r_ring;
    uint32_t r_len, r_w;
    /* monotonic deque of (r, t), ring of capacity dq_cap */
    double *dq_v;
    uint64_t *dq_t;
    uint32_t dq_cap, dq_head, dq_count;
    /* box average */
    int64_t *box;
    int64_t box_sum;
    uint32_t box_cap, box_w;
    double box_scale;         /* 1 / (box_len * 2^40) */
    double env;               /* release stage e(t) */
    double density;           /* auto release: fraction of time limiting */
    uint64_t t;               /* frames pushed through the detector */

    /* true-peak detector */
    rt_true_peak *tp;
    float *scratch;           /* channels * CHUNK: sanitized input */
    float *tp_env;            /* channels * CHUNK */
    float **scratch_ptr, **tp_env_ptr; /* channel pointers into the two */
    float tp_prev[2];         /* detector values of the last two frames (3-wide max) */

    double gain_last, gain_min;
    uint64_t clamps, nonfinite;
    /* Copies for other threads (relaxed atomics; the fields above belong to the audio
     * thread): the gain of the last frame, and the lowest gain since the last take. */
    _Atomic double shared_gain_last, shared_gain_min_take;
};

static float float_at_or_below(double v)
{
    float f = (float)v;
    if ((double)f > v) f = nextafterf(f, 0.0f);
    return f;
}

static double release_rate(double ms, double fs) { return 1.0 - exp(-1000.0 / (ms * fs)); }

static uint32_t lookahead_frames(double ms, double fs)
{
    long d = lround(ms * 0.001 * fs);
    return d < 1 ? 1u : (uint32_t)d;
}

static void configure(rt_limiter *st, uint32_t lookahead)
{
    st->lookahead = lookahead;
    st->flat = st->true_peak ? (lookahead / 2 < TP_FLAT_MAX ? lookahead / 2 : TP_FLAT_MAX) : 0;
    st->hold_len = lookahead + st->flat + 1;
    st->box_len = lookahead + 1 - st->flat;
    st->latency = lookahead + st->det_latency;
    st->box_scale = 1.0 / ((double)st->box_len * Q_ONE);
}

void rt_limiter_reset(rt_limiter *st)
{
    memset(st->delay, 0, sizeof(float) * st->channels * st->delay_len);
    st->delay_w = 0;
    for (uint32_t i = 0; i < st->r_len; i++) st->r_ring[i] = 1.0;
    st->r_w = 0;
    st->dq_head = st->dq_count = 0;
    for (uint32_t i = 0; i < st->box_cap; i++) st->box[i] = (int64_t)Q_ONE;
    st->box_sum = (int64_t)Q_ONE * st->box_len;
    st->box_w = 0;
    st->env = 1.0;
    st->density = 0.0;
    st->t = 0;
    st->tp_prev[0] = st->tp_prev[1] = 0.0f;
    if (st->tp) rt_true_peak_reset(st->tp);
    st->gain_last = st->gain_min = 1.0;
    atomic_store_explicit(&st->shared_gain_last, 1.0, memory_order_relaxed);
    atomic_store_explicit(&st->shared_gain_min_take, 1.0, memory_order_relaxed);
}

rt_limiter *rt_limiter_create(uint32_t channels, double sample_rate, double lookahead_ms,
                              double ceiling_db, double release_ms, int auto_release, int true_peak)
{
    if (channels == 0 || !(sample_rate >= 1000.0 && sample_rate <= 1e6)) return NULL;
    if (!(lookahead_ms >= LOOKAHEAD_MS_MIN && lookahead_ms <= LOOKAHEAD_MS_MAX)) return NULL;
    if (!(ceiling_db >= CEILING_DB_MIN && ceiling_db <= CEILING_DB_MAX)) return NULL;
    if (!(release_ms >= RELEASE_MS_MIN && release_ms <= RELEASE_MS_MAX)) return NULL;
    rt_limiter *st = calloc(1, sizeof *st);
    if (!st) return NULL;
    st->channels = channels;
    st->sample_rate = sample_rate;
    st->true_peak = true_peak != 0;
    st->max_lookahead = lookahead_frames(LOOKAHEAD_MS_MAX, sample_rate);
    if (st->true_peak) {
        st->tp = rt_true_peak_create_design(channels, sample_rate, TP_FACTOR, TP_TAPS, TP_BETA);
        st->scratch = calloc((size_t)channels * CHUNK, sizeof(float));
        st->tp_env = calloc((size_t)channels * CHUNK, sizeof(float));
        if (!st->tp || !st->scratch || !st->tp_env) goto fail;
        st->det_latency = rt_true_peak_latency(st->tp) + 1;
    } else {
        st->scratch = calloc((size_t)channels * CHUNK, sizeof(float));
        if (!st->scratch) goto fail;
    }
    st->scratch_ptr = calloc(channels, sizeof(float *));
    st->tp_env_ptr = calloc(channels, sizeof(float *));
    if (!st->scratch_ptr || !st->tp_env_ptr) goto fail;
    for (uint32_t ch = 0; ch < channels; ch++) {
        st->scratch_ptr[ch] = st->scratch + (size_t)ch * CHUNK;
        if (st->tp_env) st->tp_env_ptr[ch] = st->tp_env + (size_t)ch * CHUNK;
    }
    st->delay_len = st->max_lookahead + st->det_latency + 1;
    st->r_len = st->max_lookahead + 1;
    st->dq_cap = st->max_lookahead + TP_FLAT_MAX + 2;
    st->box_cap = st->max_lookahead + 1;
    st->delay = calloc((size_t)channels * st->delay_len, sizeof(float));
    st->r_ring = calloc(st->r_len, sizeof(double));
    st->dq_v = calloc(st->dq_cap, sizeof(double));
    st->dq_t = calloc(st->dq_cap, sizeof(uint64_t));
    st->box = calloc(st->box_cap, sizeof(int64_t));
    if (!st->delay || !st->r_ring || !st->dq_v || !st->dq_t || !st->box) goto fail;
    st->auto_release = auto_release != 0;
    rt_limiter_set_ceiling_db(st, ceiling_db);
    rt_limiter_set_release_ms(st, release_ms);
    st->rate_density = release_rate(AUTO_DENSITY_MS, sample_rate);
    configure(st, lookahead_frames(lookahead_ms, sample_rate));
    if (st->lookahead > st->max_lookahead) goto fail;
    rt_limiter_reset(st);
    return st;
fail:
    rt_limiter_destroy(st);
    return NULL;
}

void rt_limiter_destroy(rt_limiter *st)
{
    if (!st) return;
    rt_true_peak_destroy(st->tp);
    free(st->scratch);
    free(st->tp_env);
    free(st->scratch_ptr);
    free(st->tp_env_ptr);
    free(st->delay);
    free(st->r_ring);
    free(st->dq_v);
    free(st->dq_t);
    free(st->box);
    free(st);
}

uint32_t rt_limiter_latency(const rt_limiter *st) { return st->latency; }
uint32_t rt_limiter_lookahead_frames(const rt_limiter *st) { return st->lookahead; }

int rt_limiter_set_lookahead_ms(rt_limiter *st, double lookahead_ms)
{
    if (!(lookahead_ms >= LOOKAHEAD_MS_MIN && lookahead_ms <= LOOKAHEAD_MS_MAX)) return -1;
    uint32_t d = lookahead_frames(lookahead_ms, st->sample_rate);
    if (d > st->max_lookahead) return -1;
    configure(st, d);
    rt_limiter_reset(st);
    return 0;
}

int rt_limiter_set_ceiling_db(rt_limiter *st, double ceiling_db)
{
    if (!(ceiling_db >= CEILING_DB_MIN && ceiling_db <= CEILING_DB_MAX)) return -1;
    st->ceiling = pow(10.0, ceiling_db / 20.0);
    st->ceiling_f = float_at_or_below(st->ceiling);
    return 0;
}

int rt_limiter_set_release_ms(rt_limiter *st, double release_ms)
{
    if (!(release_ms >= RELEASE_MS_MIN && release_ms <= RELEASE_MS_MAX)) return -1;
    st->release_ms = release_ms;
    st->rate_slow = release_rate(release_ms, st->sample_rate);
    st->rate_fast = release_rate(release_ms / 4.0, st->sample_rate);
    return 0;
}

void rt_limiter_set_auto_release(rt_limiter *st, int on) { st->auto_release = on != 0; }

/* One frame of the gain computer: detector value d in, gain for the output frame out. */
static inline double gain_step(rt_limiter *st, double d)
{
    /* r = ceiling_f / d, rounded down so that |x| * r can never round above ceiling_f. */
    double r = d > (double)st->ceiling_f ? ((double)st->ceiling_f / d) * R_MARGIN : 1.0;
    const uint64_t t = st->t++;

    /* r(t - D), then store r(t) */
    uint32_t rd = st->r_w + st->r_len - st->lookahead;
    if (rd >= st->r_len) rd -= st->r_len;
    /* r_ring holds the last r_len values; slot r_w is the oldest */
    double r_delayed = st->r_ring[rd];
    st->r_ring[st->r_w] = r;
    if (++st->r_w == st->r_len) st->r_w = 0;
    /* r_delayed was read before the store: it is r(t - D) when D < r_len (see below). */

    /* sliding minimum over the last hold_len values */
    while (st->dq_count) {
        uint32_t back = st->dq_head + st->dq_count - 1;
        if (back >= st->dq_cap) back -= st->dq_cap;
        if (st->dq_v[back] < r) break;
        st->dq_count--;
    }
    uint32_t slot = st->dq_head + st->dq_count;
    if (slot >= st->dq_cap) slot -= st->dq_cap;
    st->dq_v[slot] = r;
    st->dq_t[slot] = t;
    st->dq_count++;
    while (st->dq_t[st->dq_head] + st->hold_len <= t) {
        if (++st->dq_head == st->dq_cap) st->dq_head = 0;
        st->dq_count--;
    }
    double h = st->dq_v[st->dq_head];

    /* release */
    double e = st->env;
    if (h < e) {
        e = h;
    } else {
        double rate = st->rate_slow;
        if (st->auto_release) rate = st->rate_fast + (st->rate_slow - st->rate_fast) * st->density;
        e += (h - e) * rate;
        if (e > h) e = h;
    }
    st->env = e;
    /* Auto release: the density rises while limiting and falls only once the gain has
     * recovered, so each recovery runs at the one rate chosen when it began. */
    if (h < 1.0)
        st->density += (1.0 - st->density) * st->rate_density;
    else if (e >= AUTO_RECOVERED)
        st->density = rt_flush_tiny(st->density - st->density * st->rate_density);

    /* attack: exact moving average of e over box_len frames */
    int64_t q = (int64_t)(e * Q_ONE); /* e >= 0: truncation rounds down */
    uint32_t bo = st->box_w + st->box_cap - st->box_len;
    if (bo >= st->box_cap) bo -= st->box_cap;
    st->box_sum += q - st->box[bo];
    st->box[st->box_w] = q;
    if (++st->box_w == st->box_cap) st->box_w = 0;
    double g = (double)st->box_sum * st->box_scale; /* rounding may lift g by an ulp: min() below */
    return g < r_delayed ? g : r_delayed;
}

uint32_t rt_limiter_process_gain(rt_limiter *st, const float *const *in, float *const *out,
                                 float *gain_out, uint32_t frames)
{
    const uint32_t C = st->channels;
    const float ceiling_f = st->ceiling_f;
    double gain_min = st->gain_min, g = st->gain_last, block_min = 1.0;
    for (uint32_t off = 0; off < frames; off += CHUNK) {
        const uint32_t n = frames - off < CHUNK ? frames - off : CHUNK;
        /* Copy (so out may alias in) and replace non-finite samples by 0. */
        for (uint32_t ch = 0; ch < C; ch++) {
            const float *x = in[ch] + off;
            float *s = st->scratch_ptr[ch];
            for (uint32_t i = 0; i < n; i++) {
                float v = x[i];
                if (!isfinite(v)) {
                    v = 0.0f;
                    st->nonfinite++;
                }
                s[i] = v;
            }
        }
        if (st->tp) rt_true_peak_envelope_refined(st->tp, (const float *const *)st->scratch_ptr, st->tp_env_ptr, n);
        for (uint32_t i = 0; i < n; i++) {
            double d;
            if (st->tp) {
                float v = 0.0f;
                for (uint32_t ch = 0; ch < C; ch++) {
                    float a = st->tp_env_ptr[ch][i];
                    if (a > v) v = a;
                }
                /* 3-wide max: covers the inter-sample intervals on both sides of a frame. */
                float m = v > st->tp_prev[0] ? v : st->tp_prev[0];
                if (st->tp_prev[1] > m) m = st->tp_prev[1];
                st->tp_prev[1] = st->tp_prev[0];
                st->tp_prev[0] = v;
                d = m;
            } else {
                float v = 0.0f;
                for (uint32_t ch = 0; ch < C; ch++) {
                    float a = fabsf(st->scratch_ptr[ch][i]);
                    if (a > v) v = a;
                }
                d = v;
            }
            g = gain_step(st, d);
            if (g < block_min) block_min = g;
            if (gain_out) gain_out[off + i] = (float)g;

            uint32_t rd = st->delay_w + st->delay_len - st->latency;
            if (rd >= st->delay_len) rd -= st->delay_len;
            for (uint32_t ch = 0; ch < C; ch++) {
                float *line = st->delay + (size_t)ch * st->delay_len;
                float xd = line[rd];
                line[st->delay_w] = st->scratch_ptr[ch][i];
                float y = (float)((double)xd * g);
                if (fabsf(y) > ceiling_f) {
                    y = copysignf(ceiling_f, xd);
                    st->clamps++;
                }
                if (fabsf(y) < FLT_MIN) y = 0.0f; /* no subnormal output, even without FTZ */
                out[ch][off + i] = y;
            }
            if (++st->delay_w == st->delay_len) st->delay_w = 0;
        }
    }
    if (block_min < gain_min) gain_min = block_min;
    st->gain_last = g;
    st->gain_min = gain_min;
    atomic_store_explicit(&st->shared_gain_last, g, memory_order_relaxed);
    double old = atomic_load_explicit(&st->shared_gain_min_take, memory_order_relaxed);
    while (block_min < old &&
           !atomic_compare_exchange_weak_explicit(&st->shared_gain_min_take, &old, block_min,
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
    return frames;
}

uint32_t rt_limiter_process(rt_limiter *st, const float *const *in, float *const *out, uint32_t frames)
{
    return rt_limiter_process_gain(st, in, out, NULL, frames);
}

static double to_db_reduction(double g) { return g > 0.0 ? -20.0 * log10(g) : INFINITY; }

double rt_limiter_gain_reduction_db(const rt_limiter *st) { return to_db_reduction(st->gain_last); }
double rt_limiter_max_gain_reduction_db(const rt_limiter *st) { return to_db_reduction(st->gain_min); }
void rt_limiter_clear_meter(rt_limiter *st) { st->gain_min = st->gain_last; }
double rt_limiter_gr_now_db(const rt_limiter *st)
{
    return to_db_reduction(atomic_load_explicit((_Atomic double *)&st->shared_gain_last, memory_order_relaxed));
}
double rt_limiter_gr_max_take_db(rt_limiter *st)
{
    return to_db_reduction(atomic_exchange_explicit(&st->shared_gain_min_take, 1.0, memory_order_relaxed));
}
uint64_t rt_limiter_clamp_count(const rt_limiter *st) { return st->clamps; }
uint64_t rt_limiter_nonfinite_count(const rt_limiter *st) { return st->nonfinite; }
