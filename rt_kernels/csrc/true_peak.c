#include "true_peak.h"
#include "rt_common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TP_TAPS_PER_PHASE 32u
#define TP_KAISER_BETA 4.5

struct rt_true_peak {
    uint32_t channels;
    uint32_t factor;    /* L */
    uint32_t taps;      /* per phase: 32, or 1 at 1x */
    uint32_t latency;   /* input frames */
    uint32_t pos;       /* newest sample's index in each doubled history ring */
    float *coef;        /* taps * factor, tap-major: coef[k * L + p] */
    float *hist;        /* channels * 2 * taps: each ring stored twice, so the window is contiguous */
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
    st->hist = calloc((size_t)channels * 2 * st->taps, sizeof(float));
    st->max = calloc(channels, sizeof(double));
    st->last = calloc((size_t)channels * 2, sizeof(float));
    if (!st->coef || !st->hist || !st->max || !st->last) {
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
    free(st->max);
    free(st->last);
    free(st);
}

void rt_true_peak_reset(rt_true_peak *st)
{
    memset(st->hist, 0, sizeof(float) * st->channels * 2 * st->taps);
    memset(st->max, 0, sizeof(double) * st->channels);
    memset(st->last, 0, sizeof(float) * st->channels * 2);
    st->pos = 0;
}

uint32_t rt_true_peak_latency(const rt_true_peak *st) { return st->latency; }
uint32_t rt_true_peak_factor(const rt_true_peak *st) { return st->factor; }

/* The L interpolated values for one input frame.  The phase loop is innermost with a
 * constant trip count, so the compiler does the L sums side by side in vector registers;
 * four partial sums over interleaved taps break the add-latency chain.  (The order of
 * additions is fixed by this code, so results do not depend on the compiler's choices.) */
#define TP_KERNEL(NAME, L)                                                      \
    static inline void NAME(const float *restrict coef, const float *restrict w, uint32_t T, \
                            float *restrict out)                                \
    {                                                                           \
        float a0[L] = {0}, a1[L] = {0}, a2[L] = {0}, a3[L] = {0};               \
        for (uint32_t k = 0; k < T; k += 4) {                                   \
            const float *c = coef + k * (L);                                    \
            for (uint32_t p = 0; p < (L); p++) {                                \
                a0[p] += c[p] * w[k];                                           \
                a1[p] += c[(L) + p] * w[k + 1];                                 \
                a2[p] += c[2 * (L) + p] * w[k + 2];                             \
                a3[p] += c[3 * (L) + p] * w[k + 3];                             \
            }                                                                   \
        }                                                                       \
        for (uint32_t p = 0; p < (L); p++) out[p] = fabsf((a0[p] + a1[p]) + (a2[p] + a3[p])); \
    }
TP_KERNEL(interp_2, 2)
TP_KERNEL(interp_4, 4)
TP_KERNEL(interp_8, 8)

/* Peak of the parabola through three equally spaced points whose middle one is a local
 * maximum, capped at a1 / cos(pi / 2L): the most a sinusoid below fs/2 can rise between
 * two grid points. */
static inline float refine(float a0, float a1, float a2, float cap)
{
    float den = a0 - 2.0f * a1 + a2;
    if (!(den < 0.0f)) return a1;
    float diff = a0 - a2;
    float peak = a1 - diff * diff / (8.0f * den);
    return peak < a1 * cap ? peak : a1 * cap;
}

static uint32_t run(rt_true_peak *st, const float *const *in, float *const *env, int refined, uint32_t frames)
{
    const uint32_t T = st->taps, L = st->factor;
    const float cap = (float)(1.0 / cos(RT_PI / (2.0 * L)));
    uint32_t pos = st->pos;
    for (uint32_t ch = 0; ch < st->channels; ch++) {
        const float *x = in[ch];
        float *e = env ? env[ch] : NULL;
        float *ring = st->hist + (size_t)ch * 2 * T;
        float a0 = st->last[2 * ch], a1 = st->last[2 * ch + 1];
        double mx = st->max[ch];
        pos = st->pos;
        for (uint32_t n = 0; n < frames; n++) {
            pos = pos == 0 ? T - 1 : pos - 1;
            ring[pos] = ring[pos + T] = x[n];
            const float *w = ring + pos; /* w[k] = x[n - k] */
            float v[8];
            switch (L) {
            case 1: v[0] = fabsf(w[0]); break;
            case 2: interp_2(st->coef, w, T, v); break;
            case 4: interp_4(st->coef, w, T, v); break;
            default: interp_8(st->coef, w, T, v); break;
            }
            float peak = 0.0f, est = 0.0f;
            for (uint32_t p = 0; p < L; p++) {
                float a2 = v[p];
                if (a2 > peak) peak = a2;
                /* a1 is final now that its successor a2 is known */
                float f = (a1 >= a0 && a1 >= a2) ? refine(a0, a1, a2, cap) : a1;
                if (f > est) est = f;
                a0 = a1;
                a1 = a2;
            }
            if (e) e[n] = refined ? est : peak;
            if (peak > mx) mx = peak;
        }
        st->last[2 * ch] = a0;
        st->last[2 * ch + 1] = a1;
        st->max[ch] = mx;
    }
    st->pos = pos;
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
