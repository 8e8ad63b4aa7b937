#include "psy_analysis.h"
#include "psy_eq.h"
#include "rt_common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NB RT_PSY_EQ_BANDS

struct rt_psy_analysis {
    uint32_t channels;
    uint32_t n;             /* FFT size */
    uint32_t fill;          /* frames in the segment buffers */
    uint32_t active;
    double sample_rate;
    double psd_scale;       /* 2 / (fs * sum(w^2)): one-sided density from |X|^2 */
    uint64_t segments;      /* complete segments (per channel) */
    uint64_t frames_seen;
    double *sum_squares;    /* per channel, summed sample by sample (block-split invariant) */
    float *segment;         /* channels * n: the last n frames of each channel */
    double *window;         /* n: periodic Hann */
    double *re, *im;        /* n: FFT work */
    double *tw_re, *tw_im;  /* n: row len/2 .. len-1 holds exp(-2 pi j k / len), k < len/2 */
    uint32_t *bit_reverse;  /* n */
    uint32_t band_first[NB], band_count[NB]; /* bins of each band */
    double band_sum[NB];    /* sum over segments and channels of the band's |X|^2 */
};

/* Four doubles: one AVX register on x86-64-v3, two SSE2 ones on the baseline clone.
 * Every butterfly loop below runs k in steps of 4 (half >= 4: n >= 2048 here). */
typedef double pa_v4 __attribute__((vector_size(32)));
typedef double pa_v4u __attribute__((vector_size(32), aligned(8)));
#define LD(p) (*(const pa_v4u *)(p))
#define ST(p, v) (*(pa_v4u *)(p) = (v))

/* One radix-2 stage on one group of 2 half points: (k, k + half), twiddle w_k. */
static inline __attribute__((always_inline)) void one_stage(double *re, double *im, uint32_t half,
                                                            const double *wr, const double *wi)
{
    for (uint32_t k = 0; k < half; k += 4) {
        pa_v4 qr = LD(re + half + k), qi = LD(im + half + k), cr = LD(wr + k), ci = LD(wi + k);
        pa_v4 tr = qr * cr - qi * ci, ti = qr * ci + qi * cr, pr = LD(re + k), pi = LD(im + k);
        ST(re + half + k, pr - tr); ST(im + half + k, pi - ti);
        ST(re + k, pr + tr); ST(im + k, pi + ti);
    }
}

/* Stages len = 2 half and 2 len on one group of 4 half points: (k, k + half) and
 * (k + len, k + len + half) with a_k, then (k, k + len) with b_k and
 * (k + half, k + len + half) with b_{k + half}. */
static inline __attribute__((always_inline)) void two_stages(double *re, double *im, uint32_t half,
                                                             const double *ar, const double *ai,
                                                             const double *br, const double *bi)
{
    const uint32_t len = 2 * half;
    for (uint32_t k = 0; k < half; k += 4) {
        pa_v4 p0r = LD(re + k), p0i = LD(im + k), p1r = LD(re + k + half), p1i = LD(im + k + half);
        pa_v4 p2r = LD(re + k + len), p2i = LD(im + k + len);
        pa_v4 p3r = LD(re + k + len + half), p3i = LD(im + k + len + half);
        pa_v4 cr = LD(ar + k), ci = LD(ai + k);
        pa_v4 t1r = p1r * cr - p1i * ci, t1i = p1r * ci + p1i * cr;
        pa_v4 t3r = p3r * cr - p3i * ci, t3i = p3r * ci + p3i * cr;
        pa_v4 x0r = p0r + t1r, x0i = p0i + t1i, x1r = p0r - t1r, x1i = p0i - t1i;
        pa_v4 x2r = p2r + t3r, x2i = p2i + t3i, x3r = p2r - t3r, x3i = p2i - t3i;
        pa_v4 dr = LD(br + k), di = LD(bi + k), er = LD(br + k + half), ei = LD(bi + k + half);
        pa_v4 u2r = x2r * dr - x2i * di, u2i = x2r * di + x2i * dr;
        pa_v4 u3r = x3r * er - x3i * ei, u3i = x3r * ei + x3i * er;
        ST(re + k, x0r + u2r); ST(im + k, x0i + u2i);
        ST(re + k + len, x0r - u2r); ST(im + k + len, x0i - u2i);
        ST(re + k + half, x1r + u3r); ST(im + k + half, x1i + u3i);
        ST(re + k + len + half, x1r - u3r); ST(im + k + len + half, x1i - u3i);
    }
}
#undef LD
#undef ST

/* In-place radix-2 decimation-in-time FFT (forward, unscaled) of n = 2^m points whose
 * input is already in bit-reversed order (load_segment).  The first two stages (twiddles 1 and -j) run as
 * one multiplication-free radix-4 pass; later stages go two per pass and read their
 * twiddles from a contiguous row of the table (tw_*[len/2 + k] = exp(-2 pi j k / len)), so the inner
 * loop is unit-stride on every array, four butterflies at a time (RT_HOT_CLONES). */
RT_HOT_CLONES
static void fft(const rt_psy_analysis *a, double *restrict re, double *restrict im)
{
    const uint32_t n = a->n;
    uint32_t len = 2;
    if (n >= 4) {
        for (uint32_t s = 0; s < n; s += 4) {
            /* two length-2 butterflies, then the length-4 one with twiddles 1 and -j */
            double r0 = re[s] + re[s + 1], i0 = im[s] + im[s + 1];
            double r1 = re[s] - re[s + 1], i1 = im[s] - im[s + 1];
            double r2 = re[s + 2] + re[s + 3], i2 = im[s + 2] + im[s + 3];
            double r3 = re[s + 2] - re[s + 3], i3 = im[s + 2] - im[s + 3];
            re[s] = r0 + r2; im[s] = i0 + i2;
            re[s + 2] = r0 - r2; im[s + 2] = i0 - i2;
            re[s + 1] = r1 + i3; im[s + 1] = i1 - r3; /* (r3 + j i3) * -j = i3 - j r3 */
            re[s + 3] = r1 - i3; im[s + 3] = i1 + r3;
        }
        len = 8;
    }
    /* Two stages per pass over the data (len and 2 len), halving the memory traffic. */
    for (; 2 * len <= n; len <<= 2)
        for (uint32_t start = 0; start < n; start += 2 * len)
            two_stages(re + start, im + start, len >> 1, a->tw_re + (len >> 1), a->tw_im + (len >> 1),
                       a->tw_re + len, a->tw_im + len);
    if (len <= n) /* one stage left */
        for (uint32_t start = 0; start < n; start += len)
            one_stage(re + start, im + start, len >> 1, a->tw_re + (len >> 1), a->tw_im + (len >> 1));
}

/* Add the pair's power per band.  With two real signals packed as z = x + j y,
 * X_k = (Z_k + conj Z_{n-k}) / 2 and Y_k = (Z_k - conj Z_{n-k}) / 2j, so
 * |X_k|^2 + |Y_k|^2 = (|Z_k|^2 + |Z_{n-k}|^2) / 2: the pooled power needs no unpacking
 * (with y = 0 it is |X_k|^2, Z being Hermitian). */
static void accumulate(rt_psy_analysis *a)
{
    const uint32_t n = a->n;
    const double *re = a->re, *im = a->im;
    for (uint32_t b = 0; b < a->active; b++) {
        double s = 0.0;
        const uint32_t first = a->band_first[b], end = first + a->band_count[b];
        for (uint32_t k = first; k < end; k++) /* bands never hold bin 0, so n - k < n */
            s += re[k] * re[k] + im[k] * im[k] + re[n - k] * re[n - k] + im[n - k] * im[n - k];
        a->band_sum[b] += 0.5 * s;
    }
}

/* Windowed segment(s) into the FFT buffers, already in bit-reversed order (the FFT's
 * permutation pass folded into this copy). */
static void load_segment(rt_psy_analysis *a, const float *x, const float *y)
{
    const uint32_t n = a->n;
    const uint32_t *rev = a->bit_reverse;
    const double *w = a->window;
    double *re = a->re, *im = a->im;
    if (y) {
        for (uint32_t i = 0; i < n; i++) {
            re[rev[i]] = w[i] * x[i];
            im[rev[i]] = w[i] * y[i];
        }
    } else {
        for (uint32_t i = 0; i < n; i++) {
            re[rev[i]] = w[i] * x[i];
            im[rev[i]] = 0.0;
        }
    }
}

static void run_segment(rt_psy_analysis *a)
{
    const uint32_t n = a->n;
    for (uint32_t ch = 0; ch < a->channels; ch += 2) {
        const float *x = a->segment + (size_t)ch * n;
        load_segment(a, x, ch + 1 < a->channels ? x + n : NULL);
        fft(a, a->re, a->im);
        accumulate(a);
    }
    a->segments++;
    /* 50 % overlap: keep the second half as the next segment's first half. */
    for (uint32_t ch = 0; ch < a->channels; ch++)
        memmove(a->segment + (size_t)ch * n, a->segment + (size_t)ch * n + n / 2, sizeof(float) * (n / 2));
    a->fill = n / 2;
}

rt_psy_analysis *rt_psy_analysis_create(uint32_t channels, double sample_rate)
{
    if (channels == 0 || !(sample_rate >= 8000.0) || !(sample_rate <= 384000.0)) return NULL;
    rt_psy_analysis *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->channels = channels;
    a->sample_rate = sample_rate;
    uint32_t n = 2;
    while (n < sample_rate / 4.0) n <<= 1;
    a->n = n;
    a->segment = calloc((size_t)channels * n, sizeof *a->segment);
    a->sum_squares = calloc(channels, sizeof *a->sum_squares);
    a->window = malloc(sizeof(double) * n);
    a->re = malloc(sizeof(double) * n);
    a->im = malloc(sizeof(double) * n);
    a->tw_re = malloc(sizeof(double) * n);
    a->tw_im = malloc(sizeof(double) * n);
    a->bit_reverse = malloc(sizeof(uint32_t) * n);
    if (!a->segment || !a->sum_squares || !a->window || !a->re || !a->im || !a->tw_re || !a->tw_im || !a->bit_reverse) {
        rt_psy_analysis_destroy(a);
        return NULL;
    }
    double energy = 0.0;
    for (uint32_t i = 0; i < n; i++) {
        a->window[i] = 0.5 - 0.5 * cos(2.0 * RT_PI * i / n); /* periodic Hann */
        energy += a->window[i] * a->window[i];
    }
    a->psd_scale = 2.0 / (sample_rate * energy);
    for (uint32_t half = 1; half < n; half <<= 1)
        for (uint32_t k = 0; k < half; k++) {
            a->tw_re[half + k] = cos(RT_PI * k / half);
            a->tw_im[half + k] = -sin(RT_PI * k / half);
        }
    uint32_t bits = 0;
    while ((1u << bits) < n) bits++;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t r = 0;
        for (uint32_t b = 0; b < bits; b++) r |= ((i >> b) & 1u) << (bits - 1 - b);
        a->bit_reverse[i] = r;
    }
    /* Bins k with k * fs / n in [lo, hi) belong to a band. */
    double edges[NB + 1], centres[NB], q[NB];
    rt_psy_eq_band_table(edges, centres, q);
    while (a->active < NB && edges[a->active + 1] < 0.5 * sample_rate) a->active++;
    for (uint32_t b = 0; b < a->active; b++) {
        uint32_t first = (uint32_t)ceil(edges[b] * n / sample_rate);
        uint32_t end = (uint32_t)ceil(edges[b + 1] * n / sample_rate);
        a->band_first[b] = first;
        a->band_count[b] = end - first;
    }
    return a;
}

void rt_psy_analysis_destroy(rt_psy_analysis *a)
{
    if (!a) return;
    free(a->segment); free(a->sum_squares); free(a->window); free(a->re); free(a->im);
    free(a->tw_re); free(a->tw_im); free(a->bit_reverse);
    free(a);
}

void rt_psy_analysis_reset(rt_psy_analysis *a)
{
    a->fill = 0;
    a->segments = 0;
    a->frames_seen = 0;
    memset(a->sum_squares, 0, sizeof(double) * a->channels);
    memset(a->band_sum, 0, sizeof a->band_sum);
}

uint32_t rt_psy_analysis_process(rt_psy_analysis *a, const float *const *in, uint32_t frames)
{
    uint32_t done = 0;
    while (done < frames) {
        uint32_t take = a->n - a->fill;
        if (take > frames - done) take = frames - done;
        for (uint32_t ch = 0; ch < a->channels; ch++) {
            const float *x = in[ch] + done;
            float *dst = a->segment + (size_t)ch * a->n + a->fill;
            double s = a->sum_squares[ch];
            for (uint32_t i = 0; i < take; i++) {
                dst[i] = x[i];
                s += (double)x[i] * x[i];
            }
            a->sum_squares[ch] = s;
        }
        a->fill += take;
        done += take;
        if (a->fill == a->n) run_segment(a);
    }
    a->frames_seen += frames;
    return frames;
}

uint32_t rt_psy_analysis_latency(const rt_psy_analysis *a) { return 0; }

uint32_t rt_psy_analysis_fft_size(const rt_psy_analysis *a) { return a->n; }

uint64_t rt_psy_analysis_band_psd(const rt_psy_analysis *a, double *dest)
{
    if (a->segments == 0) return 0;
    double per = a->psd_scale / ((double)a->segments * a->channels);
    for (uint32_t b = 0; b < NB; b++)
        dest[b] = b < a->active && a->band_count[b] ? a->band_sum[b] * per / a->band_count[b] : 0.0;
    return a->segments;
}

double rt_psy_analysis_mean_square(const rt_psy_analysis *a)
{
    if (!a->frames_seen) return 0.0;
    double total = 0.0;
    for (uint32_t ch = 0; ch < a->channels; ch++) total += a->sum_squares[ch];
    return total / ((double)a->frames_seen * a->channels);
}
