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
    double *cos_table, *sin_table; /* n/2 twiddles */
    uint32_t *bit_reverse;  /* n */
    uint32_t band_first[NB], band_count[NB]; /* bins of each band */
    double band_sum[NB];    /* sum over segments and channels of the band's |X|^2 */
};

static void fft(const rt_psy_analysis *a, double *re, double *im)
{
    const uint32_t n = a->n;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t j = a->bit_reverse[i];
        if (j > i) {
            double t = re[i]; re[i] = re[j]; re[j] = t;
            t = im[i]; im[i] = im[j]; im[j] = t;
        }
    }
    for (uint32_t len = 2; len <= n; len <<= 1) {
        uint32_t half = len >> 1, stride = n / len;
        for (uint32_t start = 0; start < n; start += len) {
            for (uint32_t k = 0; k < half; k++) {
                double wr = a->cos_table[k * stride], wi = -a->sin_table[k * stride];
                uint32_t p = start + k, q = p + half;
                double tr = re[q] * wr - im[q] * wi, ti = re[q] * wi + im[q] * wr;
                re[q] = re[p] - tr; im[q] = im[p] - ti;
                re[p] += tr; im[p] += ti;
            }
        }
    }
}

/* Add |X_k|^2 of the spectrum of a real signal to the band sums.  With two real
 * signals packed as x + j y, X = (Z_k + conj Z_{n-k}) / 2, Y = (Z_k - conj Z_{n-k}) / 2j;
 * `which` 0 takes X, 1 takes Y. */
static void accumulate(rt_psy_analysis *a, int which)
{
    const uint32_t n = a->n;
    for (uint32_t b = 0; b < a->active; b++) {
        double s = 0.0;
        for (uint32_t k = a->band_first[b]; k < a->band_first[b] + a->band_count[b]; k++) {
            uint32_t m = n - k; /* bands never hold bin 0, so m < n */
            double zr = a->re[k], zi = a->im[k], cr = a->re[m], ci = -a->im[m];
            double xr, xi;
            if (which == 0) { xr = 0.5 * (zr + cr); xi = 0.5 * (zi + ci); }
            else { xr = 0.5 * (zi - ci); xi = -0.5 * (zr - cr); }
            s += xr * xr + xi * xi;
        }
        a->band_sum[b] += s;
    }
}

static void run_segment(rt_psy_analysis *a)
{
    const uint32_t n = a->n;
    for (uint32_t ch = 0; ch < a->channels; ch += 2) {
        const float *x = a->segment + (size_t)ch * n;
        const float *y = ch + 1 < a->channels ? x + n : NULL;
        for (uint32_t i = 0; i < n; i++) {
            a->re[i] = a->window[i] * x[i];
            a->im[i] = y ? a->window[i] * y[i] : 0.0;
        }
        fft(a, a->re, a->im);
        accumulate(a, 0);
        if (y) accumulate(a, 1);
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
    a->cos_table = malloc(sizeof(double) * (n / 2));
    a->sin_table = malloc(sizeof(double) * (n / 2));
    a->bit_reverse = malloc(sizeof(uint32_t) * n);
    if (!a->segment || !a->sum_squares || !a->window || !a->re || !a->im || !a->cos_table || !a->sin_table || !a->bit_reverse) {
        rt_psy_analysis_destroy(a);
        return NULL;
    }
    double energy = 0.0;
    for (uint32_t i = 0; i < n; i++) {
        a->window[i] = 0.5 - 0.5 * cos(2.0 * RT_PI * i / n); /* periodic Hann */
        energy += a->window[i] * a->window[i];
    }
    a->psd_scale = 2.0 / (sample_rate * energy);
    for (uint32_t k = 0; k < n / 2; k++) {
        a->cos_table[k] = cos(2.0 * RT_PI * k / n);
        a->sin_table[k] = sin(2.0 * RT_PI * k / n);
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
    free(a->cos_table); free(a->sin_table); free(a->bit_reverse);
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
