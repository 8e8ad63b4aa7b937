#ifndef TP_TEMPLATE /* the file proper; the vector kernels are at the end */
#include "true_peak.h"
#include "cpu_level.h"
#include "rt_common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#define TP_TAPS_PER_PHASE 32u
#define TP_KAISER_BETA 4.5
#define TP_CHUNK 256u /* frames per internal pass (scratch size); not a processing unit */
#define TP_PAD 64u    /* >= a chunk rounded up to whole FIR time blocks (64, 24 or 16 frames), minus TP_CHUNK */
#define TP_ROW (TP_CHUNK + TP_PAD + 8u)
#define TP_SHORT 8u   /* central taps per phase of the cheap second skip test */
#define TP_SHORT2 16u /* ... and of its second stage (bounded envelope) */

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi" /* 32-byte vectors: only in always-inlined helpers */
#endif

typedef void (*tp_chunk_fn)(rt_true_peak *st, uint32_t ch, const float *x, float *e, int refined, uint32_t n);
typedef void (*tp_bounded_fn)(rt_true_peak *st, uint32_t ch, const float *x, float *e, float thr1, double thr_pt,
                              uint32_t n);
static void pick_kernels(rt_true_peak *st);

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
    float *prev;        /* per channel: the input sample just before its hist */
    unsigned char *stale; /* per channel: `last` not computed: 1 process skipped it, 2 bounded (<= thr_pt) */
    double skip_bound;  /* >= any computed |interpolated value| / max |input| over its window */
    double short_err;   /* >= (computed |y| - computed |y_short|) / max |input| (TP_SHORT taps) */
    double short_err2;  /* the same for TP_SHORT2 taps */
    float *fix;         /* scratch, T + 16: one vector of frames for a `last` computed late (bounded) */
    tp_chunk_fn chunk;  /* the vector kernels for this machine */
    tp_bounded_fn bounded;
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

/* E for the second skip test with S central taps (see its use in create). */
static double outer_bound(const rt_true_peak *st, uint32_t S, double l1)
{
    const uint32_t T = st->taps, L = st->factor;
    double outer = 0.0;
    for (uint32_t p = 0; p < L; p++) {
        double sum = 0.0;
        for (uint32_t k = 0; k < T; k++)
            if (k + S / 2 < T / 2 || k >= T / 2 + S / 2) sum += fabs((double)st->coef[k * L + p]);
        if (sum > outer) outer = sum;
    }
    return outer + 2.0 * (double)(T + S + 8) * 0x1p-24 * l1;
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
    st->prev = calloc(channels, sizeof(float));
    st->stale = calloc(channels, 1);
    st->fix = calloc((size_t)st->taps + 16, sizeof(float));
    if (!st->coef || !st->hist || !st->lin || !st->rows || !st->pk || !st->max || !st->last || !st->prev
        || !st->stale || !st->fix) {
        rt_true_peak_destroy(st);
        return NULL;
    }
    if (design(st->coef, factor, st->taps, kaiser_beta) != 0) {
        rt_true_peak_destroy(st);
        return NULL;
    }
    /* Bound for skipping in rt_true_peak_process: an interpolated value is a float32 dot
     * product of T taps of one phase with T input samples, so its computed magnitude is
     * at most (1 + gamma_T) * sum_k |c_k| * max|x| with gamma_T = T u / (1 - T u),
     * u = 2^-24 (Higham, Accuracy and Stability, 3.1; with or without FMA).  Phase 0 is
     * the input itself (sum 1).  The margin 2 (T + 4) u covers gamma_T and the double
     * rounding of the bound and of its product with max|x|. */
    double l1 = 1.0;
    for (uint32_t p = 0; p < factor; p++) {
        double sum = 0.0;
        for (uint32_t k = 0; k < st->taps; k++) sum += fabs((double)st->coef[k * factor + p]);
        if (sum > l1) l1 = sum;
    }
    st->skip_bound = l1 * (1.0 + 2.0 * (double)(st->taps + 4) * 0x1p-24);
    /* Second test: y = y_short + y_outer, y_short over the TP_SHORT central taps (which
     * hold phase 0's unit impulse), so |computed y| <= |computed y_short| + E max|x| with
     * E = max_p sum_outer |c| + (gamma_S + gamma_T) * sum |c| (same rounding argument). */
    st->short_err = outer_bound(st, TP_SHORT, l1);
    st->short_err2 = outer_bound(st, TP_SHORT2, l1);
    pick_kernels(st);
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
    free(st->prev);
    free(st->stale);
    free(st->fix);
    free(st);
}

void rt_true_peak_reset(rt_true_peak *st)
{
    memset(st->hist, 0, sizeof(float) * st->channels * st->taps);
    memset(st->max, 0, sizeof(double) * st->channels);
    memset(st->last, 0, sizeof(float) * st->channels * 2);
    memset(st->prev, 0, sizeof(float) * st->channels);
    memset(st->stale, 0, st->channels);
}

uint32_t rt_true_peak_latency(const rt_true_peak *st) { return st->latency; }
uint32_t rt_true_peak_factor(const rt_true_peak *st) { return st->factor; }

/* The vector kernels (the TP_TEMPLATE part at the end of this file), instantiated twice:
 * 8 lanes for x86-64-v3 (AVX2 + FMA), 4 lanes (SSE2 / NEON) for anything else, chosen at
 * create time.  NV (vectors per FIR block) gives (L-1) * NV independent accumulators:
 * enough to cover the add latency, few enough to stay in the 16 registers (measured).
 * The two may differ by rounding (FMA); on one machine the results are fixed. */
#define TP_TEMPLATE 1
#define TP_W 4
#define TP_SFX _base
#define TP_TARGET
#define TP_NV2 8
#define TP_NV4 3
#define TP_NV8 1
#include "true_peak.c"
#undef TP_W
#undef TP_SFX
#undef TP_TARGET
#undef TP_NV2
#undef TP_NV4
#undef TP_NV8
#if defined(__x86_64__) && defined(__GNUC__)
#define TP_HAVE_V3 1
#define TP_W 8
#define TP_SFX _v3
#define TP_TARGET __attribute__((target("arch=x86-64-v3")))
#define TP_NV2 8
#define TP_NV4 3
#define TP_NV8 2
#include "true_peak.c"
#endif

/* x86-64-v3 kernels from level 3 up (the 16-lane AVX-512 build was measured no faster:
 * the FIR is bound by FMA throughput, the same on this class of machine). */
static void pick_kernels(rt_true_peak *st)
{
#ifdef TP_HAVE_V3
    if (rt_cpu_level() >= 3) {
        st->chunk = tp_chunk_v3;
        st->bounded = tp_bounded_v3;
        return;
    }
#endif
    st->chunk = tp_chunk_base;
    st->bounded = tp_bounded_base;
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
            st->chunk(st, ch, in[ch] + off, e ? e + off : NULL, refined, n);
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

/* Thresholds of the bounded envelope (see the header and tp_bounded):
 *   thr_pt: every interpolated point <= thr_pt  =>  its refined value <= threshold.  A
 *     refined value is at most fl(a1 * cap) for its middle point a1 (cap >= 1, float), so
 *     threshold / (cap (1 + 2^-22)) is safe;
 *   thr1: every |x| < thr1 over a block's window  =>  every computed |point| < thr_pt
 *     (skip_bound, as in process, includes the float32 rounding margins). */
uint32_t rt_true_peak_envelope_bounded(rt_true_peak *st, const float *const *in, float *const *env,
                                       double threshold, uint32_t frames)
{
    if (st->factor == 1 || !(threshold >= 0.0)) return run(st, in, env, 1, frames);
    const double cap = (double)(float)(1.0 / cos(RT_PI / (2.0 * st->factor)));
    const double thr_pt = threshold / (cap * (1.0 + 0x1p-22));
    const double t1 = thr_pt / st->skip_bound * (1.0 - 0x1p-50);
    float thr1 = t1 > 3.0e38 ? INFINITY : (float)t1;
    if ((double)thr1 > t1) thr1 = nextafterf(thr1, 0.0f);
    for (uint32_t ch = 0; ch < st->channels; ch++)
        for (uint32_t off = 0; off < frames; off += TP_CHUNK) {
            uint32_t n = frames - off < TP_CHUNK ? frames - off : TP_CHUNK;
            st->bounded(st, ch, in[ch] + off, env[ch] + off, thr1, thr_pt, n);
        }
    return frames;
}

double rt_true_peak_max(const rt_true_peak *st, uint32_t ch)
{
    return ch < st->channels ? st->max[ch] : 0.0;
}

void rt_true_peak_clear(rt_true_peak *st) { memset(st->max, 0, sizeof(double) * st->channels); }


/* ---- rt_true_peak_process_bounded (for the loudness meter) -------------------------- */

#include "cpu_level.h"
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

typedef int32_t tp_v4i __attribute__((vector_size(16)));

/* Keeps channel ch's history as tp_chunk keeps it for frames it computes nothing of (and
 * marks `last` stale: the refined envelope recomputes it from prev and hist). */
static void tp_keep(rt_true_peak *st, uint32_t ch, const float *x, uint32_t frames)
{
    const uint32_t T = st->taps;
    float *hist = st->hist + (size_t)ch * (T - 1);
    if (frames >= T - 1) {
        st->prev[ch] = frames >= T ? x[frames - T] : hist[T - 2];
        memcpy(hist, x + frames - (T - 1), sizeof(float) * (T - 1));
    } else {
        st->prev[ch] = hist[frames - 1];
        memmove(hist, hist + frames, sizeof(float) * (T - 1 - frames));
        memcpy(hist + (T - 1 - frames), x, sizeof(float) * frames);
    }
    st->stale[ch] = 1;
}

#if defined(__x86_64__) && defined(__GNUC__)
#define TP_SCREEN 16u       /* outputs per group of tp_screen_v4 */
#define TP_SCREEN_SPAN 512u /* frames screened at once (a bit per group: <= 64 groups) */
/* Which groups of TP_SCREEN outputs (frames 16 g .. 16 g + 15 of lin + T - 1, lin holding
 * the T - 1 samples before) may raise the maximum mx: bit g clear only when, for every
 * output of the group, |y_short| + short_err * W < mx, W the largest |x| in the group's
 * window and y_short the TP_SHORT central taps (with phase 0, x itself), computed here.
 * That is tp_chunk's second test, and its argument holds as it is: short_err covers the
 * rounding of both the full FIR and an 8-tap one (this one: float, fused); the threshold
 * mx / (1 + 2^-20) - short_err (1 + 2^-20) W, rounded down to float and computed in float
 * with one rounding, stays below mx - short_err W (the margins exceed that rounding, also
 * for the underflow of values below 1e-37: mx >= 1e-30 here).  NaN never raises the
 * maximum and is left out of both |y_short| and W (vrangeps returns the other operand). */
__attribute__((target("arch=x86-64-v4"), always_inline))
static inline uint64_t tp_screen_tl(const rt_true_peak *st, const float *lin, uint32_t n, double mx, const uint32_t T,
                                    const uint32_t L)
{
    const uint32_t k0 = T / 2 - TP_SHORT / 2;
    const float *coef = st->coef;
    const double limd = mx / (1.0 + 0x1p-20), ed = st->short_err * (1.0 + 0x1p-20);
    float limf = (float)limd, ef = (float)ed;
    if ((double)limf > limd) limf = nextafterf(limf, 0.0f);
    if ((double)ef < ed) ef = nextafterf(ef, INFINITY);
    const __m512 lim = _mm512_set1_ps(limf), e = _mm512_set1_ps(ef);
    uint64_t need = 0;
    for (uint32_t g = 0; TP_SCREEN * g < n; g++) {
        const float *w = lin + TP_SCREEN * g, *xg = w + T - 1;
        __m512 wm = _mm512_loadu_ps(w); /* max |x| over w[0 .. T + 15), in whole vectors */
        for (uint32_t j = TP_SCREEN; j < T + TP_SCREEN - 1; j += TP_SCREEN) wm = _mm512_range_ps(wm, _mm512_loadu_ps(w + j), 0x0b);
        const __m512 thr = _mm512_fnmadd_ps(e, _mm512_set1_ps(_mm512_reduce_max_ps(_mm512_abs_ps(wm))), lim);
        __m512 xv[TP_SHORT];
        for (uint32_t q = 0; q < TP_SHORT; q++) xv[q] = _mm512_loadu_ps(xg - k0 - q);
        __m512 ys = _mm512_abs_ps(_mm512_loadu_ps(xg - T / 2));
        for (uint32_t p = 1; p < L; p++) {
            __m512 acc = _mm512_mul_ps(_mm512_set1_ps(coef[k0 * L + p]), xv[0]);
            for (uint32_t q = 1; q < TP_SHORT; q++) acc = _mm512_fmadd_ps(_mm512_set1_ps(coef[(k0 + q) * L + p]), xv[q], acc);
            ys = _mm512_range_ps(ys, acc, 0x0b);
        }
        if (_mm512_cmp_ps_mask(ys, thr, _CMP_LT_OQ) != 0xffff) need |= 1ull << g;
        /* material whose every group may raise the maximum (a steady tone at it): the
         * screen would only add to tp_chunk's work, so give up early */
        if (g == 3 && need == 0xf) return ~0ull;
    }
    return need;
}

/* tp_screen_tl for the default design (32 taps per phase), one body per factor; 0 for
 * another design: screen nothing. */
__attribute__((target("arch=x86-64-v4")))
static uint64_t tp_screen_v4(const rt_true_peak *st, const float *lin, uint32_t n, double mx)
{
    if (st->taps != TP_TAPS_PER_PHASE) return ~0ull;
    switch (st->factor) {
    case 2: return tp_screen_tl(st, lin, n, mx, TP_TAPS_PER_PHASE, 2);
    case 4: return tp_screen_tl(st, lin, n, mx, TP_TAPS_PER_PHASE, 4);
    default: return tp_screen_tl(st, lin, n, mx, TP_TAPS_PER_PHASE, 8);
    }
}
#endif

/* rt_true_peak_process for a caller that has already read the input (the loudness meter
 * finds max |x| per channel in the pass that K-weights it).  Per channel:
 *   - the bound and the history below tp_chunk's first threshold (thr, the largest float
 *     <= max / skip_bound): no window of these frames holds a sample >= thr, so none of
 *     their interpolated values can raise the maximum (tp_chunk's argument); only the
 *     history is kept (tp_keep);
 *   - else, with AVX-512 (rt_cpu_level() 4), tp_screen_v4 finds the groups of 16 outputs
 *     that may raise it, and only those go through tp_chunk (the others: tp_keep);
 *   - else everything goes through tp_chunk, as in process.
 * Every interpolated value computed is tp_chunk's, whatever range it is computed in (its
 * arithmetic does not depend on the block split), and the values skipped cannot raise the
 * maximum, so the maxima are those of rt_true_peak_process, bit for bit.  NaN samples may
 * be left out of the bound: an interpolated value with a NaN in its window is NaN and
 * never raises the maximum, and the others are bounded by the finite samples. */
uint32_t rt_true_peak_process_bounded(rt_true_peak *st, const float *const *in, uint32_t frames, const float *bound)
{
#if defined(__x86_64__) && defined(__GNUC__)
    const int screen = rt_cpu_level() >= 4;
#endif
    for (uint32_t ch = 0; ch < st->channels && frames > 0; ch++) {
        const float *x = in[ch];
        const float b = bound[ch];
        const double mx = st->max[ch];
        if (st->factor == 1) {
            if (mx > 0.0 && b <= mx) { /* the points are the samples: keep the last two */
                st->last[2 * ch] = frames >= 2 ? fabsf(x[frames - 2]) : st->last[2 * ch + 1];
                st->last[2 * ch + 1] = fabsf(x[frames - 1]);
            } else {
                run_1x(st, ch, x, NULL, 0, frames);
            }
            continue;
        }
        const uint32_t T = st->taps;
        if (mx > 0.0) {
            /* tp_chunk's threshold: the largest float <= thr (thr > 0: one step down) */
            const double thr = mx / st->skip_bound;
            float thrf = (float)thr;
            if ((double)thrf > thr) {
                uint32_t bits;
                memcpy(&bits, &thrf, sizeof bits);
                bits--;
                memcpy(&thrf, &bits, sizeof bits);
            }
            if (b < thrf) { /* (false for a NaN bound) */
                /* the history's largest magnitude as bits (NaN above all: no skipping), four
                 * at a time (T - 1 = 4 m + 3) */
                const float *hist = st->hist + (size_t)ch * (T - 1);
                tp_v4i hv = {0, 0, 0, 0};
                uint32_t k = 0;
                for (; k + 4 < T; k += 4) {
                    tp_v4i v;
                    memcpy(&v, hist + k, sizeof v);
                    v &= 0x7fffffff;
                    const tp_v4i gt = v > hv;
                    hv = (v & gt) | (hv & ~gt);
                }
                int32_t hb = 0, tb;
                for (uint32_t q = 0; q < 4; q++) hb = hv[q] > hb ? hv[q] : hb;
                for (; k + 1 < T; k++) {
                    int32_t v;
                    memcpy(&v, hist + k, sizeof v);
                    hb = (v & 0x7fffffff) > hb ? v & 0x7fffffff : hb;
                }
                memcpy(&tb, &thrf, sizeof tb);
                if (hb < tb) {
                    tp_keep(st, ch, x, frames);
                    continue;
                }
            }
        }
#if defined(__x86_64__) && defined(__GNUC__)
        if (screen && st->max[ch] >= 1e-30) {
            for (uint32_t off = 0; off < frames; off += TP_SCREEN_SPAN) {
                const uint32_t n = frames - off < TP_SCREEN_SPAN ? frames - off : TP_SCREEN_SPAN;
                /* history and frames, then zeros for the last group's loads */
                float lin[128 + TP_SCREEN_SPAN + 2 * TP_SCREEN];
                memcpy(lin, st->hist + (size_t)ch * (T - 1), sizeof(float) * (T - 1));
                memcpy(lin + T - 1, x + off, sizeof(float) * n);
                memset(lin + T - 1 + n, 0, sizeof(float) * 2 * TP_SCREEN);
                uint64_t need = tp_screen_v4(st, lin, n, st->max[ch]);
                uint32_t cur = 0; /* frames up to here are done */
                while (need) {
                    const uint32_t g0 = (uint32_t)__builtin_ctzll(need), run = (uint32_t)__builtin_ctzll(~(need >> g0));
                    const uint32_t s = TP_SCREEN * g0, e = TP_SCREEN * (g0 + run) < n ? TP_SCREEN * (g0 + run) : n;
                    if (s > cur) tp_keep(st, ch, x + off + cur, s - cur);
                    for (uint32_t c = s; c < e; c += TP_CHUNK)
                        st->chunk(st, ch, x + off + c, NULL, 0, e - c < TP_CHUNK ? e - c : TP_CHUNK);
                    cur = e;
                    need &= ~(((2ull << (run - 1)) - 1) << g0);
                }
                if (cur < n) tp_keep(st, ch, x + off + cur, n - cur);
            }
            continue;
        }
#endif
        for (uint32_t off = 0; off < frames; off += TP_CHUNK)
            st->chunk(st, ch, x + off, NULL, 0, frames - off < TP_CHUNK ? frames - off : TP_CHUNK);
    }
    return frames;
}

#else /* TP_TEMPLATE: the vector kernels, included twice by the part above */

/* TP_W floats per vector; names get the suffix TP_SFX, functions the attribute TP_TARGET. */
#define TP_CAT_(a, b) a##b
#define TP_CAT(a, b) TP_CAT_(a, b)
#define TP_N(name) TP_CAT(name, TP_SFX)
#define TP_VF TP_N(tp_vf)
#define TP_VI TP_N(tp_vi)
#define TP_VFU TP_N(tp_vfu)
#define TP_INLINE static inline __attribute__((always_inline)) TP_TARGET
#define tp_splat TP_N(tp_splat)
#define tp_abs TP_N(tp_abs)
#define tp_load TP_N(tp_load)
#define tp_store TP_N(tp_store)
#define tp_sel TP_N(tp_sel)
#define tp_max TP_N(tp_max)
#define tp_any TP_N(tp_any)
#define fir_2 TP_N(fir_2)
#define fir_4 TP_N(fir_4)
#define fir_8 TP_N(fir_8)
#define fir1_2 TP_N(fir1_2)
#define fir1_4 TP_N(fir1_4)
#define fir1_8 TP_N(fir1_8)
#define firs_2 TP_N(firs_2)
#define firs_4 TP_N(firs_4)
#define firs_8 TP_N(firs_8)
#define firs16_2 TP_N(firs16_2)
#define firs16_4 TP_N(firs16_4)
#define firs16_8 TP_N(firs16_8)
#define tp_reduce TP_N(tp_reduce)
#define tp_wmax TP_N(tp_wmax)

typedef float TP_VF __attribute__((vector_size(4 * TP_W)));
typedef int32_t TP_VI __attribute__((vector_size(4 * TP_W)));
typedef float TP_VFU __attribute__((vector_size(4 * TP_W), aligned(4))); /* unaligned load/store */

TP_INLINE TP_VF tp_splat(float v) { return v - (TP_VF){0}; } /* a broadcast; v - 0 is v */
TP_INLINE TP_VF tp_abs(TP_VF v) { return (TP_VF)((TP_VI)v & 0x7fffffff); }
TP_INLINE TP_VF tp_load(const float *p) { return *(const TP_VFU *)p; }
TP_INLINE void tp_store(float *p, TP_VF v) { *(TP_VFU *)p = v; }
/* m ? a : b, lane by lane (m: all ones or all zeros per lane) */
TP_INLINE TP_VF tp_sel(TP_VI m, TP_VF a, TP_VF b) { return (TP_VF)(((TP_VI)a & m) | ((TP_VI)b & ~m)); }
TP_INLINE TP_VF tp_max(TP_VF a, TP_VF b) { return tp_sel(a > b, a, b); }
/* Any lane nonzero. */
TP_INLINE int tp_any(TP_VI m)
{
    union { TP_VI v; uint64_t q[TP_W / 2]; } u = {m};
    uint64_t r = 0;
    for (uint32_t i = 0; i < TP_W / 2; i++) r |= u.q[i];
    return r != 0;
}

/* The FIR, with time in the vector dimension: for NV * W consecutive frames at once,
 * y_p[i] = sum_k coef[k * L + p] * x[i - k] for the phases p = 1..L-1, one accumulator
 * per output, taps added in order k = 0..T-1 (each output's arithmetic is the same
 * whichever lane or block it falls in, so results do not depend on the block split).
 * Phase 0 is a unit impulse at tap T/2 (design()), so y_0[i] = x[i - T/2] exactly.
 * x points at the chunk's first frame in the contiguous history-plus-chunk buffer;
 * nr is the frame count rounded up to NV * W (the extra lanes are computed and unused).
 * |y_p[i]| goes to rows[p * TP_ROW + 1 + i]. */
#define TP_FIR(NAME, L, NV)                                                             \
    TP_INLINE void NAME(const float *restrict coef, const float *restrict x, uint32_t T, \
                            uint32_t nr, float *restrict rows, const unsigned char *skip) \
    {                                                                                   \
        for (uint32_t i0 = 0; i0 < nr; i0 += TP_W * (NV)) {                                \
            if (skip && skip[i0 / (TP_W * (NV))]) continue; /* rows left stale */       \
            TP_VF acc[(L) - 1][NV];                                                    \
            for (uint32_t p = 0; p + 1 < (L); p++)                                      \
                for (uint32_t v = 0; v < (NV); v++) acc[p][v] = tp_splat(0.0f);         \
            for (uint32_t k = 0; k < T; k++) {                                          \
                TP_VF xv[NV];                                                          \
                for (uint32_t v = 0; v < (NV); v++) xv[v] = tp_load(x + i0 + TP_W * v - k); \
                const float *c = coef + k * (L);                                        \
                for (uint32_t p = 0; p + 1 < (L); p++)  /* scalar * vector: a broadcast */ \
                    for (uint32_t v = 0; v < (NV); v++) acc[p][v] += c[p + 1] * xv[v];  \
            }                                                                           \
            for (uint32_t v = 0; v < (NV); v++) {                                       \
                tp_store(rows + 1 + i0 + TP_W * v, tp_abs(tp_load(x + i0 + TP_W * v - T / 2))); \
                for (uint32_t p = 0; p + 1 < (L); p++)                                  \
                    tp_store(rows + (size_t)(p + 1) * TP_ROW + 1 + i0 + TP_W * v, tp_abs(acc[p][v])); \
            }                                                                           \
        }                                                                               \
    }
TP_FIR(fir_2, 2, TP_NV2)
TP_FIR(fir_4, 4, TP_NV4)
TP_FIR(fir_8, 8, TP_NV8)
/* One vector of frames (same per-output arithmetic): a lone frame's values computed late. */
TP_FIR(fir1_2, 2, 1)
TP_FIR(fir1_4, 4, 1)
TP_FIR(fir1_8, 8, 1)

/* The same FIR over the S central taps only (k = T/2 - S/2 .. T/2 + S/2 - 1), for the
 * NV * W frames of one block at x: returns the largest |value| over those frames and all
 * L phases (phase 0, x[i - T/2], is among those taps: its value is exact). */
#define TP_FIRS(NAME, L, NV) TP_FIRS_S(NAME, L, NV, TP_SHORT)
#define TP_FIRS_S(NAME, L, NV, S)                                                       \
    TP_INLINE float NAME(const float *restrict coef, const float *restrict x, uint32_t T) \
    {                                                                                   \
        TP_VF acc[(L) - 1][NV];                                                        \
        for (uint32_t p = 0; p + 1 < (L); p++)                                          \
            for (uint32_t v = 0; v < (NV); v++) acc[p][v] = tp_splat(0.0f);             \
        for (uint32_t k = T / 2 - (S) / 2; k < T / 2 + (S) / 2; k++) {                  \
            TP_VF xv[NV];                                                              \
            for (uint32_t v = 0; v < (NV); v++) xv[v] = tp_load(x + TP_W * v - k);     \
            const float *c = coef + k * (L);                                            \
            for (uint32_t p = 0; p + 1 < (L); p++)                                      \
                for (uint32_t v = 0; v < (NV); v++) acc[p][v] += c[p + 1] * xv[v];      \
        }                                                                               \
        TP_VF mv = tp_splat(0.0f);                                                     \
        for (uint32_t v = 0; v < (NV); v++) {                                           \
            mv = tp_max(tp_abs(tp_load(x + TP_W * v - T / 2)), mv);                     \
            for (uint32_t p = 0; p + 1 < (L); p++) mv = tp_max(tp_abs(acc[p][v]), mv);  \
        }                                                                               \
        float m = 0.0f;                                                                 \
        for (uint32_t j = 0; j < TP_W; j++) m = mv[j] > m ? mv[j] : m;                  \
        return m;                                                                       \
    }
TP_FIRS(firs_2, 2, TP_NV2)
TP_FIRS(firs_4, 4, TP_NV4)
TP_FIRS(firs_8, 8, TP_NV8)
TP_FIRS_S(firs16_2, 2, TP_NV2, TP_SHORT2)
TP_FIRS_S(firs16_4, 4, TP_NV4, TP_SHORT2)
TP_FIRS_S(firs16_8, 8, TP_NV8, TP_SHORT2)

/* The interpolated points in time order are z(i*L + p) = rows[p][1 + i]; slot 0 of each
 * row holds the previous frame.  For each frame i, writes peak[i] = max_p z(i*L + p) and,
 * if refined, est[i] = max_p of the refined value of the point before z(i*L + p), that
 * point being final once z(i*L + p) exists.  A point that is a local maximum of |y| counts
 * as the peak of the parabola through it and its two neighbours, capped at 1/cos(pi/2L)
 * times the point (the most a sinusoid below fs/2 can rise between two grid points).
 * Computed for nrw frames (the frame count rounded up to W). */
TP_INLINE void tp_reduce(const float *rows, uint32_t L, uint32_t nrw, int refined, float cap,
                             float *restrict peak, float *restrict est)
{
    const TP_VF capv = tp_splat(cap), two = tp_splat(2.0f), eight = tp_splat(8.0f), zero = tp_splat(0.0f);
    for (uint32_t i = 0; i < nrw; i += TP_W) {
        TP_VF pk = zero, es = zero;
        for (uint32_t p = 0; p < L; p++) {
            TP_VF a2 = tp_load(rows + (size_t)p * TP_ROW + 1 + i);
            pk = tp_max(a2, pk);
            if (!refined) continue;
            TP_VF a1 = p >= 1 ? tp_load(rows + (size_t)(p - 1) * TP_ROW + 1 + i)
                               : tp_load(rows + (size_t)(L - 1) * TP_ROW + i);
            TP_VF a0 = p >= 2 ? tp_load(rows + (size_t)(p - 2) * TP_ROW + 1 + i)
                      : p == 1 ? tp_load(rows + (size_t)(L - 1) * TP_ROW + i)
                               : tp_load(rows + (size_t)(L - 2) * TP_ROW + i);
            TP_VF den = (a0 - two * a1) + a2;
            TP_VF diff = a0 - a2;
            TP_VF top = a1 - diff * diff / (eight * den); /* lanes with den >= 0 are not used */
            TP_VF lim = a1 * capv;
            TP_VF f = tp_sel(top < lim, top, lim);
            f = tp_sel((a1 >= a0) & (a1 >= a2) & (den < zero), f, a1);
            es = tp_max(f, es);
        }
        tp_store(peak + i, pk);
        if (refined) tp_store(est + i, es);
    }
}

/* One channel, one chunk of n (1..TP_CHUNK) frames, factor L >= 2. */
TP_TARGET static void TP_N(tp_chunk)(rt_true_peak *st, uint32_t ch, const float *x, float *e, int refined, uint32_t n)
{
    const uint32_t T = st->taps, L = st->factor;
    float *lin = st->lin, *hist = st->hist + (size_t)ch * (T - 1), *rows = st->rows;
    const uint32_t tb = TP_W * (L == 2 ? TP_NV2 : L == 4 ? TP_NV4 : TP_NV8); /* <= TP_PAD + TP_CHUNK after rounding */
    const uint32_t nr = (n + tb - 1) / tb * tb;
    if (refined && st->stale[ch]) {
        /* process() skipped the previous chunk's last block: compute that frame's values
         * now, by the same FIR (same arithmetic in any lane), from prev and hist. */
        lin[0] = st->prev[ch];
        memcpy(lin + 1, hist, sizeof(float) * (T - 1));
        memset(lin + T, 0, sizeof(float) * (tb - 1));
        switch (L) {
        case 2: fir_2(st->coef, lin + T - 1, T, tb, rows, NULL); break;
        case 4: fir_4(st->coef, lin + T - 1, T, tb, rows, NULL); break;
        default: fir_8(st->coef, lin + T - 1, T, tb, rows, NULL); break;
        }
        st->last[2 * ch] = rows[(size_t)(L - 2) * TP_ROW + 1];
        st->last[2 * ch + 1] = rows[(size_t)(L - 1) * TP_ROW + 1];
        st->stale[ch] = 0;
    }
    memcpy(lin, hist, sizeof(float) * (T - 1));
    memcpy(lin + T - 1, x, sizeof(float) * n);
    memset(lin + T - 1 + n, 0, sizeof(float) * (nr - n));
    memcpy(hist, lin + n, sizeof(float) * (T - 1));
    st->prev[ch] = lin[n - 1];
    /* Maximum only (process): a FIR block whose every interpolated value is provably
     * below the running maximum is not computed (its rows are left stale and not read).
     * When the block holding the chunk's last frame is skipped, `last` is marked stale and
     * computed when a refined envelope needs it.  See the header. */
    unsigned char skipv[(TP_CHUNK + TP_PAD) / TP_W + 1];
    const unsigned char *skip = NULL;
    if (!e && st->max[ch] > 0.0) {
        /* A sample is "hot" unless |x| < thr, thr the largest float <= max / bound; a block
         * whose window holds no hot sample has every |y| <= bound * max|x| < max.  The test
         * is on the bits of |x| (same order as the values; NaN counts as hot). */
        const double thr = st->max[ch] / st->skip_bound;
        float thrf = (float)thr;
        if ((double)thrf > thr) thrf = nextafterf(thrf, 0.0f);
        const int32_t thr_bits = thrf > 0.0f ? (int32_t)(union { float f; int32_t i; }){thrf}.i : 0;
        const TP_VI tb_v = (TP_VI){0} + thr_bits;
        const uint32_t win = tb + T - 1; /* lin[b * tb .. b * tb + win) feeds block b */
        /* the whole chunk first: lin[0 .. n + T - 1) */
        const uint32_t all = n + T - 1;
        TP_VI hot = (TP_VI){0};
        uint32_t j = 0;
        for (; j + TP_W <= all; j += TP_W) hot |= ((TP_VI)tp_load(lin + j) & 0x7fffffff) >= tb_v;
        if (j < all) hot |= ((TP_VI)tp_load(lin + all - TP_W) & 0x7fffffff) >= tb_v;
        if (!tp_any(hot)) {
            st->stale[ch] = 1; /* nothing computed: the maximum stands */
            return;
        }
        int any = 0;
        for (uint32_t b = 0; b * tb < n; b++) {
            const float *w = lin + (size_t)b * tb;
            hot = (TP_VI){0};
            for (j = 0; j + TP_W <= win; j += TP_W) hot |= ((TP_VI)tp_load(w + j) & 0x7fffffff) >= tb_v;
            if (j < win) hot |= ((TP_VI)tp_load(w + win - TP_W) & 0x7fffffff) >= tb_v;
            skipv[b] = !tp_any(hot);
            if (!skipv[b] && T > TP_SHORT) {
                /* second test: the central taps computed, the rest bounded */
                TP_VF mv = tp_splat(0.0f);
                for (j = 0; j + TP_W <= win; j += TP_W) mv = tp_max(tp_abs(tp_load(w + j)), mv);
                if (j < win) mv = tp_max(tp_abs(tp_load(w + win - TP_W)), mv);
                float wm = 0.0f;
                for (uint32_t q = 0; q < TP_W; q++) wm = mv[q] > wm ? mv[q] : wm;
                const float *xb = lin + T - 1 + (size_t)b * tb;
                float ys = L == 2 ? firs_2(st->coef, xb, T) : L == 4 ? firs_4(st->coef, xb, T) : firs_8(st->coef, xb, T);
                if (((double)ys + st->short_err * (double)wm) * (1.0 + 0x1p-40) < st->max[ch]) skipv[b] = 1;
            }
            any |= skipv[b];
        }
        if (any) skip = skipv;
    }
    switch (L) {
    case 2: fir_2(st->coef, lin + T - 1, T, nr, rows, skip); break;
    case 4: fir_4(st->coef, lin + T - 1, T, nr, rows, skip); break;
    default: fir_8(st->coef, lin + T - 1, T, nr, rows, skip); break;
    }
    if (!e) {
        /* Maximum only: straight from the rows of the blocks computed (exact in any order;
         * NaN never wins a comparison, as in tp_reduce). */
        TP_VF mv = tp_splat(0.0f);
        float m = 0.0f;
        for (uint32_t i0 = 0; i0 < n; i0 += tb) {
            if (skip && skip[i0 / tb]) continue;
            const uint32_t end = n - i0 < tb ? n : i0 + tb;
            for (uint32_t p = 0; p < L; p++) {
                const float *r = rows + (size_t)p * TP_ROW + 1;
                uint32_t i = i0;
                for (; i + TP_W <= end; i += TP_W) mv = tp_max(tp_load(r + i), mv);
                for (; i < end; i++) m = r[i] > m ? r[i] : m;
            }
        }
        for (uint32_t j = 0; j < TP_W; j++) m = mv[j] > m ? mv[j] : m;
        st->stale[ch] = skip && skip[(n - 1) / tb];
        if (!st->stale[ch]) {
            st->last[2 * ch] = rows[(size_t)(L - 2) * TP_ROW + n];
            st->last[2 * ch + 1] = rows[(size_t)(L - 1) * TP_ROW + n];
        }
        if (m > st->max[ch]) st->max[ch] = m;
        return;
    }
    rows[(size_t)(L - 2) * TP_ROW] = st->last[2 * ch];
    rows[(size_t)(L - 1) * TP_ROW] = st->last[2 * ch + 1];
    float *peak = st->pk, *est = st->pk + TP_ROW;
    const float cap = (float)(1.0 / cos(RT_PI / (2.0 * L)));
    tp_reduce(rows, L, (n + TP_W - 1) / TP_W * TP_W, refined, cap, peak, est);
    st->last[2 * ch] = rows[(size_t)(L - 2) * TP_ROW + n];
    st->last[2 * ch + 1] = rows[(size_t)(L - 1) * TP_ROW + n];
    st->stale[ch] = 0;
    /* running max (exact in any order): W lanes at a time, then the last partial group */
    TP_VF mv = tp_splat(0.0f);
    uint32_t i = 0;
    for (; i + TP_W <= n; i += TP_W) mv = tp_max(tp_load(peak + i), mv);
    float m = 0.0f;
    for (uint32_t j = 0; j < TP_W; j++) m = mv[j] > m ? mv[j] : m;
    for (; i < n; i++) m = peak[i] > m ? peak[i] : m;
    if (m > st->max[ch]) st->max[ch] = m;
    if (e) memcpy(e, refined ? est : peak, sizeof(float) * n);
}


/* Largest |x| over x[0 .. m) (m >= TP_W; the input is finite).  One max instruction where
 * there is one (tp_max's select is four). */
#if defined(__x86_64__) && defined(__GNUC__) && TP_W == 8
#define tp_fmax(a, b) ((TP_VF)_mm256_max_ps((__m256)(a), (__m256)(b)))
#elif defined(__x86_64__) && defined(__GNUC__) && TP_W == 4
#define tp_fmax(a, b) ((TP_VF)_mm_max_ps((__m128)(a), (__m128)(b)))
#else
#define tp_fmax(a, b) tp_max(a, b)
#endif
TP_INLINE float tp_wmax(const float *x, uint32_t m)
{
    TP_VF mv = tp_abs(tp_load(x));
    uint32_t j = TP_W;
    for (; j + TP_W <= m; j += TP_W) mv = tp_fmax(tp_abs(tp_load(x + j)), mv);
    if (j < m) mv = tp_fmax(tp_abs(tp_load(x + m - TP_W)), mv);
#if TP_W == 8
    mv = tp_fmax(mv, __builtin_shuffle(mv, (TP_VI){4, 5, 6, 7, 0, 1, 2, 3}));
    mv = tp_fmax(mv, __builtin_shuffle(mv, (TP_VI){2, 3, 0, 1, 6, 7, 4, 5}));
    mv = tp_fmax(mv, __builtin_shuffle(mv, (TP_VI){1, 0, 3, 2, 5, 4, 7, 6}));
    return mv[0];
#elif TP_W == 4
    mv = tp_fmax(mv, __builtin_shuffle(mv, (TP_VI){2, 3, 0, 1}));
    mv = tp_fmax(mv, __builtin_shuffle(mv, (TP_VI){1, 0, 3, 2}));
    return mv[0];
#else
    float w = 0.0f;
    for (uint32_t q = 0; q < TP_W; q++) w = mv[q] > w ? mv[q] : w;
    return w;
#endif
}

/* One channel, one chunk of n (1..TP_CHUNK) frames, factor L >= 2: the refined envelope,
 * exact where it may exceed the threshold (rt_true_peak_envelope_bounded).
 *
 * Per FIR block (tb frames), from its input window (tb + T - 1 samples): the block is
 * "bounded" when every computed |point| in it is provably < thr_pt, by the first test
 * (every |x| < thr1) or the second (TP_SHORT, then TP_SHORT2 central taps computed, the
 * rest bounded, as in process).  A bounded block's FIR is not computed: its phase-0 points are |x|
 * (exact), the others 0; every point is then <= thr_pt (exact or not), so every refined
 * value made from a bounded middle point is <= the threshold, whatever its neighbours.
 * An exact refined value needs exact neighbours only for a middle point in an exact block:
 * its neighbours lie in the same block, or are the last point of the previous block (the
 * phase 0 of the next one is exact anyway).  So when block b + 1 is exact and b is
 * bounded, the last vector of b is computed too; across chunks, `last` is marked stale and
 * computed when the next chunk's first block is exact.  The refinement (tp_reduce) runs on
 * the exact blocks and on the first vector of a bounded block that follows an exact one
 * (its first frame holds the refined value of that block's last point); the other frames
 * of a bounded block get |x| at phase 0 (<= thr_pt <= threshold).  Values are written where exact by
 * the same arithmetic as tp_chunk's, so they equal the refined envelope's bit for bit. */
TP_TARGET static void TP_N(tp_bounded)(rt_true_peak *st, uint32_t ch, const float *x, float *e, float thr1,
                                       double thr_pt, uint32_t n)
{
    const uint32_t T = st->taps, L = st->factor;
    float *lin = st->lin, *hist = st->hist + (size_t)ch * (T - 1), *rows = st->rows;
    const uint32_t tb = TP_W * (L == 2 ? TP_NV2 : L == 4 ? TP_NV4 : TP_NV8);
    const uint32_t nr = (n + tb - 1) / tb * tb, nb = nr / tb, win = tb + T - 1;
    const uint32_t valid = nr + T - 1, padded = (valid + TP_W - 1) / TP_W * TP_W; /* <= T + TP_CHUNK + TP_PAD */
    memcpy(lin, hist, sizeof(float) * (T - 1));
    memcpy(lin + T - 1, x, sizeof(float) * n);
    memset(lin + T - 1 + n, 0, sizeof(float) * (padded - (T - 1 + n)));

    /* Block b's window lin[b tb, b tb + win) lies in the segs segments of tb samples from
     * segment b: its max |x| is read (as a bound: a superset) from the segment maxima. */
    const uint32_t segs = (win + tb - 1) / tb, nseg = (padded + tb - 1) / tb;
    float segmax[(TP_CHUNK + TP_PAD + 128) / 4 + 2]; /* tb >= 4, T <= 128 */
    for (uint32_t q = 0; q < nseg; q++) {
        const uint32_t lo = q * tb, hi = lo + tb < padded ? lo + tb : padded;
        segmax[q] = tp_wmax(lin + lo, hi - lo);
    }
    /* sliding maximum over segs segments: spans of 2^k by doubling, then two of them */
    uint32_t span = 1;
    for (; 2 * span <= segs; span *= 2)
        for (uint32_t q = 0; q < nseg; q++) {
            const float a = q + span < nseg ? segmax[q + span] : 0.0f;
            segmax[q] = a > segmax[q] ? a : segmax[q];
        }
    unsigned char bnd[(TP_CHUNK + TP_PAD) / TP_W + 1];
    int any_exact = 0;
    for (uint32_t b = 0; b < nb; b++) {
        const float a = b + segs - span < nseg ? segmax[b + segs - span] : 0.0f;
        const float wm = a > segmax[b] ? a : segmax[b];
        int ok = wm < thr1;
        if (!ok && T > TP_SHORT && (double)wm * st->short_err2 < thr_pt) {
            /* The second test, with 8 then 16 central taps; it cannot pass when the
             * block's phase-0 points (|x|, exact, among those taps' values) with the outer
             * taps' bound already reach thr_pt. */
            const float *xb = lin + T - 1 + (size_t)b * tb;
            const double p0 = (double)tp_wmax(xb - T / 2, tb);
            if (p0 + (double)wm * st->short_err < thr_pt) {
                float ys = L == 2 ? firs_2(st->coef, xb, T) : L == 4 ? firs_4(st->coef, xb, T) : firs_8(st->coef, xb, T);
                ok = ((double)ys + st->short_err * (double)wm) * (1.0 + 0x1p-40) < thr_pt;
            }
            if (!ok && T > TP_SHORT2 && p0 + (double)wm * st->short_err2 < thr_pt) {
                float ys = L == 2 ? firs16_2(st->coef, xb, T) : L == 4 ? firs16_4(st->coef, xb, T) : firs16_8(st->coef, xb, T);
                ok = ((double)ys + st->short_err2 * (double)wm) * (1.0 + 0x1p-40) < thr_pt;
            }
        }
        bnd[b] = (unsigned char)ok;
        any_exact |= !ok;
    }

    if (st->stale[ch] == 1 || (st->stale[ch] == 2 && !bnd[0])) {
        /* The previous frame's points were not computed: by process (skipped below the
         * running maximum: not known to be bounded), or by this function (bounded, needed
         * exact only as a neighbour in an exact block).  Compute them from the sample
         * before the history and the history (the old one: lin holds it). */
        float *f = st->fix;
        f[0] = st->prev[ch];
        memcpy(f + 1, lin, sizeof(float) * (T - 1));
        memset(f + T, 0, sizeof(float) * (TP_W - 1));
        switch (L) {
        case 2: fir1_2(st->coef, f + T - 1, T, TP_W, rows, NULL); break;
        case 4: fir1_4(st->coef, f + T - 1, T, TP_W, rows, NULL); break;
        default: fir1_8(st->coef, f + T - 1, T, TP_W, rows, NULL); break;
        }
        st->last[2 * ch] = rows[(size_t)(L - 2) * TP_ROW + 1];
        st->last[2 * ch + 1] = rows[(size_t)(L - 1) * TP_ROW + 1];
        st->stale[ch] = 0;
    }
    memcpy(hist, lin + n, sizeof(float) * (T - 1));
    st->prev[ch] = lin[n - 1];

    if (any_exact) {
        switch (L) {
        case 2: fir_2(st->coef, lin + T - 1, T, nr, rows, bnd); break;
        case 4: fir_4(st->coef, lin + T - 1, T, nr, rows, bnd); break;
        default: fir_8(st->coef, lin + T - 1, T, nr, rows, bnd); break;
        }
        for (uint32_t b = 0; b + 1 < nb; b++) {
            if (!bnd[b] || bnd[b + 1]) continue;
            const uint32_t j = b * tb + tb - TP_W; /* the last vector of a bounded block before an exact one */
            switch (L) {
            case 2: fir1_2(st->coef, lin + T - 1 + j, T, TP_W, rows + j, NULL); break;
            case 4: fir1_4(st->coef, lin + T - 1 + j, T, TP_W, rows + j, NULL); break;
            default: fir1_8(st->coef, lin + T - 1 + j, T, TP_W, rows + j, NULL); break;
            }
        }
    }
    rows[(size_t)(L - 2) * TP_ROW] = st->last[2 * ch];
    rows[(size_t)(L - 1) * TP_ROW] = st->last[2 * ch + 1];

    float *peak = st->pk, *est = st->pk + TP_ROW;
    const float cap = (float)(1.0 / cos(RT_PI / (2.0 * L)));
    for (uint32_t b = 0; b * tb < n; b++) {
        const uint32_t i0 = b * tb, m = n - i0 < tb ? (n - i0 + TP_W - 1) / TP_W * TP_W : tb;
        if (!bnd[b]) {
            tp_reduce(rows + i0, L, m, 1, cap, peak + i0, est + i0);
            continue;
        }
        for (uint32_t v = 0; v < m; v += TP_W) /* |x| at phase 0 */
            tp_store(est + i0 + v, tp_abs(tp_load(lin + T - 1 + i0 + v - T / 2)));
        if (b > 0 ? !bnd[b - 1] : !st->stale[ch]) {
            /* The first frame holds the refined value of the previous (exact) point. */
            tp_store(rows + 1 + i0, tp_load(est + i0));
            for (uint32_t p = 1; p < L; p++) tp_store(rows + (size_t)p * TP_ROW + 1 + i0, tp_splat(0.0f));
            tp_reduce(rows + i0, L, TP_W, 1, cap, peak + i0, est + i0);
        }
    }
    if (bnd[nb - 1]) {
        st->last[2 * ch] = st->last[2 * ch + 1] = 0.0f; /* placeholders <= thr_pt */
        st->stale[ch] = 2;
    } else {
        st->last[2 * ch] = rows[(size_t)(L - 2) * TP_ROW + n];
        st->last[2 * ch + 1] = rows[(size_t)(L - 1) * TP_ROW + n];
        st->stale[ch] = 0;
    }
    memcpy(e, est, sizeof(float) * n);
}

#undef TP_CAT_
#undef TP_CAT
#undef TP_N
#undef TP_VF
#undef TP_VI
#undef TP_VFU
#undef TP_INLINE
#undef tp_splat
#undef tp_abs
#undef tp_load
#undef tp_store
#undef tp_sel
#undef tp_max
#undef tp_any
#undef fir_2
#undef fir_4
#undef fir_8
#undef fir1_2
#undef fir1_4
#undef fir1_8
#undef firs_2
#undef firs_4
#undef firs_8
#undef firs16_2
#undef firs16_4
#undef firs16_8
#undef tp_reduce
#undef tp_wmax
#undef tp_fmax
#endif /* TP_TEMPLATE */
