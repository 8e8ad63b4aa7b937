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
static void design(float *coef, uint32_t L, uint32_t T)
{
    if (L == 1) {
        coef[0] = 1.0f;
        return;
    }
    const uint32_t n = L * T, c = n / 2, m = n - 1; /* m: window length over taps 1..n-1 */
    const double i0_beta = bessel_i0(TP_KAISER_BETA);
    double *h = malloc(sizeof(double) * n);
    if (!h) return;
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
        double w = bessel_i0(TP_KAISER_BETA * sqrt(fmax(0.0, 1.0 - r * r))) / i0_beta;
        h[i] = sinc * w;
    }
    for (uint32_t p = 0; p < L; p++) {
        double sum = 0.0;
        for (uint32_t k = 0; k < T; k++) sum += h[k * L + p];
        for (uint32_t k = 0; k < T; k++) coef[k * L + p] = (float)(h[k * L + p] / sum);
    }
    free(h);
}

rt_true_peak *rt_true_peak_create_factor(uint32_t channels, double sample_rate, uint32_t factor)
{
    if (channels == 0 || !(sample_rate > 0.0) || !isfinite(sample_rate)) return NULL;
    if (factor != 1 && factor != 2 && factor != 4 && factor != 8) return NULL;
    rt_true_peak *st = calloc(1, sizeof *st);
    if (!st) return NULL;
    st->channels = channels;
    st->factor = factor;
    st->taps = factor == 1 ? 1 : TP_TAPS_PER_PHASE;
    st->latency = st->taps / 2;
    st->coef = calloc((size_t)st->taps * factor, sizeof(float));
    st->hist = calloc((size_t)channels * 2 * st->taps, sizeof(float));
    st->max = calloc(channels, sizeof(double));
    if (!st->coef || !st->hist || !st->max) {
        rt_true_peak_destroy(st);
        return NULL;
    }
    design(st->coef, factor, st->taps);
    return st;
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
    free(st);
}

void rt_true_peak_reset(rt_true_peak *st)
{
    memset(st->hist, 0, sizeof(float) * st->channels * 2 * st->taps);
    memset(st->max, 0, sizeof(double) * st->channels);
    st->pos = 0;
}

uint32_t rt_true_peak_latency(const rt_true_peak *st) { return st->latency; }
uint32_t rt_true_peak_factor(const rt_true_peak *st) { return st->factor; }

/* Push one sample and return max_p |y_p|: the L interpolated values for this frame.
 * The phase loop is innermost with a constant trip count, so the compiler can do the
 * L sums side by side in vector registers without reordering any one sum. */
#define TP_KERNEL(NAME, L)                                                      \
    static inline float NAME(const float *restrict coef, const float *restrict w, uint32_t T) \
    {                                                                           \
        float acc[L] = {0};                                                     \
        for (uint32_t k = 0; k < T; k++)                                        \
            for (uint32_t p = 0; p < (L); p++) acc[p] += coef[k * (L) + p] * w[k]; \
        float m = 0.0f;                                                         \
        for (uint32_t p = 0; p < (L); p++) {                                    \
            float a = fabsf(acc[p]);                                            \
            if (a > m) m = a;                                                   \
        }                                                                       \
        return m;                                                               \
    }
TP_KERNEL(peak_of_2, 2)
TP_KERNEL(peak_of_4, 4)
TP_KERNEL(peak_of_8, 8)

static uint32_t run(rt_true_peak *st, const float *const *in, float *const *env, uint32_t frames)
{
    const uint32_t T = st->taps, L = st->factor;
    uint32_t pos = st->pos;
    for (uint32_t ch = 0; ch < st->channels; ch++) {
        const float *x = in[ch];
        float *e = env ? env[ch] : NULL;
        float *ring = st->hist + (size_t)ch * 2 * T;
        double mx = st->max[ch];
        pos = st->pos;
        for (uint32_t n = 0; n < frames; n++) {
            pos = pos == 0 ? T - 1 : pos - 1;
            ring[pos] = ring[pos + T] = x[n];
            const float *w = ring + pos; /* w[k] = x[n - k] */
            float peak;
            switch (L) {
            case 1: peak = fabsf(w[0]); break;
            case 2: peak = peak_of_2(st->coef, w, T); break;
            case 4: peak = peak_of_4(st->coef, w, T); break;
            default: peak = peak_of_8(st->coef, w, T); break;
            }
            if (e) e[n] = peak;
            if (peak > mx) mx = peak;
        }
        st->max[ch] = mx;
    }
    st->pos = pos;
    return frames;
}

uint32_t rt_true_peak_process(rt_true_peak *st, const float *const *in, uint32_t frames)
{
    return run(st, in, NULL, frames);
}

uint32_t rt_true_peak_envelope(rt_true_peak *st, const float *const *in, float *const *env, uint32_t frames)
{
    return run(st, in, env, frames);
}

double rt_true_peak_max(const rt_true_peak *st, uint32_t ch)
{
    return ch < st->channels ? st->max[ch] : 0.0;
}

void rt_true_peak_clear(rt_true_peak *st) { memset(st->max, 0, sizeof(double) * st->channels); }
