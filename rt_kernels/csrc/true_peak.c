#include "true_peak.h"
#include "rt_common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TP_TAPS_PER_PHASE 32u
#define TP_KAISER_BETA 4.5
#define TP_CHUNK 256u /* frames per internal pass (scratch size); not a processing unit */
#define TP_PAD 64u    /* >= a chunk rounded up to whole FIR time blocks (64, 24 or 16 frames), minus TP_CHUNK */
#define TP_ROW (TP_CHUNK + TP_PAD + 8u)

/* 8 floats: one AVX register, or two SSE registers in the baseline clone.  The helpers
 * taking and returning them are always inlined, so their (AVX-dependent) ABI never applies. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
typedef float tp_v8f __attribute__((vector_size(32)));
typedef int32_t tp_v8i __attribute__((vector_size(32)));
typedef float tp_v8f_u __attribute__((vector_size(32), aligned(4))); /* unaligned load/store */

struct rt_true_peak {
    uint32_t channels;
    uint32_t factor;    /* L */
    uint32_t taps;      /* per phase: T = 32, or 1 at 1x */
    uint32_t latency;   /* input frames */
    float *coef;        /* taps * factor, tap-major: coef[k * L + p] */
    float *hist;        /* channels * (T - 1): each channel's last T - 1 input samples, oldest first */
    float *lin;         /* scratch, T - 1 + TP_CHUNK + TP_PAD: history then the chunk, contiguous */
    float *rows;        /* scratch, L rows of TP_ROW: |y_p| per frame, slot 0 = previous frame */
    float *pk;          /* scratch, 2 * TP_ROW: per-frame peak and refined estimate */
    double *max;        /* per channel */
    float *last;        /* per channel: the last two |interpolated values| (for refinement) */
};

/* Modified Bessel function of the first kind, order 0 (power series; converges fast
 * for the beta used here). */
static double bessel_i0(double x)
{
    double sum = 1.0, term = 1.0, q = x * x / 4.0;
    for (int k = 1; k < 64; k++) {
        term *= q / ((double)k * (double)k);
        sum += term;
        if (term < 1e-17 * sum) break;
    }
    return sum;
}

/* Windowed-sinc prototype of length L*T (index 0 is zero; the rest is symmetric about
 * c = L*T/2), cut off at the input Nyquist frequency, split into L phases and each
 * phase normalized to unit DC gain.  Phase 0 is exactly a unit impulse at tap T/2. */
static int design(float *coef, uint32_t L, uint32_t T, double beta)
{
    if (L == 1) {
        coef[0] = 1.0f;
        return 0;
    }
    const uint32_t n = L * T, c = n / 2, m = n - 1; /* m: window length over taps 1..n-1 */
    const double i0_beta = bessel_i0(beta);
    double *h = malloc(sizeof(double) * n);
    if (!h) return -1;
    h[0] = 0.0;
    for (uint32_t i = 1; i < n; i++) {
        long d = (long)i - (long)c;
        double sinc;
        if (d % (long)L == 0) {
            sinc = d == 0 ? 1.0 : 0.0;  /* exact zeros: phase 0 is a pure delay */
        } else {
            double x = RT_PI * (double)d / (double)L;
            sinc = sin(x) / x;
        }
        double r = 2.0 * (double)(i - 1) / (double)(m - 1) - 1.0;
        double w = bessel_i0(beta * sqrt(fmax(0.0, 1.0 - r * r))) / i0_beta;
        h[i] = sinc * w;
    }
    for (uint32_t p = 0; p < L; p++) {
        double sum = 0.0;
        for (uint32_t k = 0; k < T; k++) sum += h[k * L + p];
        for (uint32_t k = 0; k < T; k++) coef[k * L + p] = (float)(h[k * L + p] / sum);
    }
    free(h);
    return 0;
}

rt_true_peak *rt_true_peak_create_design(uint32_t channels, double sample_rate, uint32_t factor,
                                         uint32_t taps_per_phase, double kaiser_beta)
{
    if (channels == 0 || !(sample_rate > 0.0) || !isfinite(sample_rate)) return NULL;
    if (factor != 1 && factor != 2 && factor != 4 && factor != 8) return NULL;
    if (taps_per_phase < 8 || taps_per_phase > 128 || taps_per_phase % 4) return NULL;
    if (!(kaiser_beta >= 0.0 && kaiser_beta <= 20.0)) return NULL;
    rt_true_peak *st = calloc(1, sizeof *st);
    if (!st) return NULL;
    st->channels = channels;
    st->factor = factor;
    st->taps = factor == 1 ? 1 : taps_per_phase;
    st->latency = st->taps / 2;
    st->coef = calloc((size_t)st->taps * factor, sizeof(float));
    st->hist = calloc((size_t)channels * st->taps, sizeof(float)); /* T - 1 used; >= 1 allocated */
    st->lin = calloc((size_t)st->taps + TP_CHUNK + TP_PAD, sizeof(float));
    st->rows = calloc((size_t)factor * TP_ROW, sizeof(float));
    st->pk = calloc((size_t)2 * TP_ROW, sizeof(float));
    st->max = calloc(channels, sizeof(double));
    st->last = calloc((size_t)channels * 2, sizeof(float));
    if (!st->coef || !st->hist || !st->lin || !st->rows || !st->pk || !st->max || !st->last) {
        rt_true_peak_destroy(st);
        return NULL;
    }
    if (design(st->coef, factor, st->taps, kaiser_beta) != 0) {
        rt_true_peak_destroy(st);
        return NULL;
    }
    return st;
}

rt_true_peak *rt_true_peak_create_factor(uint32_t channels, double sample_rate, uint32_t factor)
{
    return rt_true_peak_create_design(channels, sample_rate, factor, TP_TAPS_PER_PHASE, TP_KAISER_BETA);
}

rt_true_peak *rt_true_peak_create(uint32_t channels, double sample_rate)
{
    uint32_t factor = sample_rate < 96000.0 ? 4 : sample_rate < 192000.0 ? 2 : 1;
    return rt_true_peak_create_factor(channels, sample_rate, factor);
}

void rt_true_peak_destroy(rt_true_peak *st)
{
    if (!st) return;
    free(st->coef);
    free(st->hist);
    free(st->lin);
    free(st->rows);
    free(st->pk);
    free(st->max);
    free(st->last);
    free(st);
}

void rt_true_peak_reset(rt_true_peak *st)
{
    memset(st->hist, 0, sizeof(float) * st->channels * st->taps);
    memset(st->max, 0, sizeof(double) * st->channels);
    memset(st->last, 0, sizeof(float) * st->channels * 2);
}

uint32_t rt_true_peak_latency(const rt_true_peak *st) { return st->latency; }
uint32_t rt_true_peak_factor(const rt_true_peak *st) { return st->factor; }

static inline __attribute__((always_inline)) tp_v8f tp_splat(float v) { return v - (tp_v8f){0}; } /* a broadcast; v - 0 is v */
static inline __attribute__((always_inline)) tp_v8f tp_abs(tp_v8f v) { return (tp_v8f)((tp_v8i)v & 0x7fffffff); }
static inline __attribute__((always_inline)) tp_v8f tp_load(const float *p) { return *(const tp_v8f_u *)p; }
static inline __attribute__((always_inline)) void tp_store(float *p, tp_v8f v) { *(tp_v8f_u *)p = v; }
/* m ? a : b, lane by lane (m: all ones or all zeros per lane) */
static inline __attribute__((always_inline)) tp_v8f tp_sel(tp_v8i m, tp_v8f a, tp_v8f b) { return (tp_v8f)(((tp_v8i)a & m) | ((tp_v8i)b & ~m)); }
static inline __attribute__((always_inline)) tp_v8f tp_max(tp_v8f a, tp_v8f b) { return tp_sel(a > b, a, b); }

/* The FIR, with time in the vector dimension: for NV * 8 consecutive frames at once,
 * y_p[i] = sum_k coef[k * L + p] * x[i - k] for the phases p = 1..L-1, one accumulator
 * per output, taps added in order k = 0..T-1 (each output's arithmetic is the same
 * whichever lane or block it falls in, so results do not depend on the block split).
 * Phase 0 is a unit impulse at tap T/2 (design()), so y_0[i] = x[i - T/2] exactly.
 * x points at the chunk's first frame in the contiguous history-plus-chunk buffer;
 * nr is the frame count rounded up to NV * 8 (the extra lanes are computed and unused).
 * |y_p[i]| goes to rows[p * TP_ROW + 1 + i]. */
#define TP_FIR(NAME, L, NV)                                                             \
    static inline __attribute__((always_inline)) void NAME(const float *restrict coef, const float *restrict x, uint32_t T, \
                            uint32_t nr, float *restrict rows)                          \
    {                                                                                   \
        for (uint32_t i0 = 0; i0 < nr; i0 += 8 * (NV)) {                                \
            tp_v8f acc[(L) - 1][NV];                                                    \
            for (uint32_t p = 0; p + 1 < (L); p++)                                      \
                for (uint32_t v = 0; v < (NV); v++) acc[p][v] = tp_splat(0.0f);         \
            for (uint32_t k = 0; k < T; k++) {                                          \
                tp_v8f xv[NV];                                                          \
                for (uint32_t v = 0; v < (NV); v++) xv[v] = tp_load(x + i0 + 8 * v - k); \
                const float *c = coef + k * (L);                                        \
                for (uint32_t p = 0; p + 1 < (L); p++)  /* scalar * vector: a broadcast */ \
                    for (uint32_t v = 0; v < (NV); v++) acc[p][v] += c[p + 1] * xv[v];  \
            }                                                                           \
            for (uint32_t v = 0; v < (NV); v++) {                                       \
                tp_store(rows + 1 + i0 + 8 * v, tp_abs(tp_load(x + i0 + 8 * v - T / 2))); \
                for (uint32_t p = 0; p + 1 < (L); p++)                                  \
                    tp_store(rows + (size_t)(p + 1) * TP_ROW + 1 + i0 + 8 * v, tp_abs(acc[p][v])); \
            }                                                                           \
        }                                                                               \
    }
/* NV: enough independent accumulators ((L-1) * NV, 7 to 14) to cover the FMA latency,
 * few enough to stay in the 16 AVX registers (measured). */
TP_FIR(fir_2, 2, 8)
TP_FIR(fir_4, 4, 3)
TP_FIR(fir_8, 8, 2)

/* The interpolated points in time order are z(i*L + p) = rows[p][1 + i]; slot 0 of each
 * row holds the previous frame.  For each frame i, writes peak[i] = max_p z(i*L + p) and,
 * if refined, est[i] = max_p of the refined value of the point before z(i*L + p), that
 * point being final once z(i*L + p) exists.  A point that is a local maximum of |y| counts
 * as the peak of the parabola through it and its two neighbours, capped at 1/cos(pi/2L)
 * times the point (the most a sinusoid below fs/2 can rise between two grid points).
 * Computed for nr8 frames (the frame count rounded up to 8). */
static inline __attribute__((always_inline)) void tp_reduce(const float *rows, uint32_t L, uint32_t nr8, int refined, float cap,
                             float *restrict peak, float *restrict est)
{
    const tp_v8f capv = tp_splat(cap), two = tp_splat(2.0f), eight = tp_splat(8.0f), zero = tp_splat(0.0f);
    for (uint32_t i = 0; i < nr8; i += 8) {
        tp_v8f pk = zero, es = zero;
        for (uint32_t p = 0; p < L; p++) {
            tp_v8f a2 = tp_load(rows + (size_t)p * TP_ROW + 1 + i);
            pk = tp_max(a2, pk);
            if (!refined) continue;
            tp_v8f a1 = p >= 1 ? tp_load(rows + (size_t)(p - 1) * TP_ROW + 1 + i)
                               : tp_load(rows + (size_t)(L - 1) * TP_ROW + i);
            tp_v8f a0 = p >= 2 ? tp_load(rows + (size_t)(p - 2) * TP_ROW + 1 + i)
                      : p == 1 ? tp_load(rows + (size_t)(L - 1) * TP_ROW + i)
                               : tp_load(rows + (size_t)(L - 2) * TP_ROW + i);
            tp_v8f den = (a0 - two * a1) + a2;
            tp_v8f diff = a0 - a2;
            tp_v8f top = a1 - diff * diff / (eight * den); /* lanes with den >= 0 are not used */
            tp_v8f lim = a1 * capv;
            tp_v8f f = tp_sel(top < lim, top, lim);
            f = tp_sel((a1 >= a0) & (a1 >= a2) & (den < zero), f, a1);
            es = tp_max(f, es);
        }
        tp_store(peak + i, pk);
        if (refined) tp_store(est + i, es);
    }
}

/* One channel, one chunk of n (1..TP_CHUNK) frames, factor L >= 2. */
RT_HOT_CLONES
static void tp_chunk(rt_true_peak *st, uint32_t ch, const float *x, float *e, int refined, uint32_t n)
{
    const uint32_t T = st->taps, L = st->factor;
    const float cap = (float)(1.0 / cos(RT_PI / (2.0 * L)));
    float *lin = st->lin, *hist = st->hist + (size_t)ch * (T - 1), *rows = st->rows;
    const uint32_t tb = L == 2 ? 64 : L == 4 ? 24 : 16; /* 8 * NV of fir_2/4/8 */
    const uint32_t nr = (n + tb - 1) / tb * tb;
    memcpy(lin, hist, sizeof(float) * (T - 1));
    memcpy(lin + T - 1, x, sizeof(float) * n);
    memset(lin + T - 1 + n, 0, sizeof(float) * (nr - n));
    memcpy(hist, lin + n, sizeof(float) * (T - 1));
    switch (L) {
    case 2: fir_2(st->coef, lin + T - 1, T, nr, rows); break;
    case 4: fir_4(st->coef, lin + T - 1, T, nr, rows); break;
    default: fir_8(st->coef, lin + T - 1, T, nr, rows); break;
    }
    rows[(size_t)(L - 2) * TP_ROW] = st->last[2 * ch];
    rows[(size_t)(L - 1) * TP_ROW] = st->last[2 * ch + 1];
    float *peak = st->pk, *est = st->pk + TP_ROW;
    tp_reduce(rows, L, (n + 7) / 8 * 8, refined, cap, peak, est);
    st->last[2 * ch] = rows[(size_t)(L - 2) * TP_ROW + n];
    st->last[2 * ch + 1] = rows[(size_t)(L - 1) * TP_ROW + n];
    /* running max (exact in any order): 8 lanes at a time, then the last partial group */
    tp_v8f mv = tp_splat(0.0f);
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8) mv = tp_max(tp_load(peak + i), mv);
    float m = 0.0f;
    for (uint32_t j = 0; j < 8; j++) m = mv[j] > m ? mv[j] : m;
    for (; i < n; i++) m = peak[i] > m ? peak[i] : m;
    if (m > st->max[ch]) st->max[ch] = m;
    if (e) memcpy(e, refined ? est : peak, sizeof(float) * n);
}

/* Peak of the parabola through three equally spaced points whose middle one is a local
 * maximum, capped at a1 / cos(pi / 2L) (scalar form of tp_reduce's, for 1x). */
static inline float refine(float a0, float a1, float a2, float cap)
{
    float den = a0 - 2.0f * a1 + a2;
    if (!(den < 0.0f)) return a1;
    float diff = a0 - a2;
    float peak = a1 - diff * diff / (8.0f * den);
    return peak < a1 * cap ? peak : a1 * cap;
}

/* 1x: the points are the samples themselves. */
static void run_1x(rt_true_peak *st, uint32_t ch, const float *x, float *e, int refined, uint32_t frames)
{
    const float capx = (float)(1.0 / cos(RT_PI / 2.0)); /* as before: huge, i.e. no cap */
    float a0 = st->last[2 * ch], a1 = st->last[2 * ch + 1];
    double mx = st->max[ch];
    for (uint32_t n = 0; n < frames; n++) {
        float a2 = fabsf(x[n]);
        float f = (a1 >= a0 && a1 >= a2) ? refine(a0, a1, a2, capx) : a1;
        if (e) e[n] = refined ? f : a2;
        if (a2 > mx) mx = a2;
        a0 = a1;
        a1 = a2;
    }
    st->last[2 * ch] = a0;
    st->last[2 * ch + 1] = a1;
    st->max[ch] = mx;
}

static uint32_t run(rt_true_peak *st, const float *const *in, float *const *env, int refined, uint32_t frames)
{
    for (uint32_t ch = 0; ch < st->channels; ch++) {
        float *e = env ? env[ch] : NULL;
        if (st->factor == 1) {
            run_1x(st, ch, in[ch], e, refined, frames);
            continue;
        }
        for (uint32_t off = 0; off < frames; off += TP_CHUNK) {
            uint32_t n = frames - off < TP_CHUNK ? frames - off : TP_CHUNK;
            tp_chunk(st, ch, in[ch] + off, e ? e + off : NULL, refined, n);
        }
    }
    return frames;
}

uint32_t rt_true_peak_process(rt_true_peak *st, const float *const *in, uint32_t frames)
{
    return run(st, in, NULL, 0, frames);
}

uint32_t rt_true_peak_envelope(rt_true_peak *st, const float *const *in, float *const *env, uint32_t frames)
{
    return run(st, in, env, 0, frames);
}

uint32_t rt_true_peak_envelope_refined(rt_true_peak *st, const float *const *in, float *const *env, uint32_t frames)
{
    return run(st, in, env, 1, frames);
}

double rt_true_peak_max(const rt_true_peak *st, uint32_t ch)
{
    return ch < st->channels ? st->max[ch] : 0.0;
}

void rt_true_peak_clear(rt_true_peak *st) { memset(st->max, 0, sizeof(double) * st->channels); }
