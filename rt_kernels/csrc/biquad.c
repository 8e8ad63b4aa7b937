#include "biquad.h"
#include "rt_common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Work is done in grid-aligned chunks of RT_BQ_CHUNK frames (aligned to the
 * absolute frame count, not to the caller's blocks); tiny state is flushed at
 * each grid point.  That keeps the output bit-identical for any block size. */
#define RT_BQ_CHUNK 128

struct rt_biquad {
    uint32_t channels;
    uint32_t sections;
    uint32_t grid_phase;  /* frames processed since the last grid point */
    double sample_rate;
    double *coeffs;       /* sections * 5: b0 b1 b2 a1 a2 */
    double *state;        /* per channel, per section: x1 x2 y1 y2 */
    double scratch[RT_BQ_CHUNK];
};

static const double identity[5] = {1.0, 0.0, 0.0, 0.0, 0.0};

int rt_biquad_design(int type, double fs, double f0, double q, double gain_db,
                     double shelf_slope, double c[5])
{
    if (!(fs > 0.0) || !isfinite(fs)) return -1;
    if (type == RT_BQ_IDENTITY) {
        memcpy(c, identity, sizeof identity);
        return 0;
    }
    if (!(f0 > 0.0) || !(f0 < 0.5 * fs)) return -1;
    if (!isfinite(gain_db) || fabs(gain_db) > 60.0) return -1;
    int shelf = (type == RT_BQ_LOW_SHELF || type == RT_BQ_HIGH_SHELF);
    if (shelf && shelf_slope != 0.0) {
        if (!(shelf_slope > 0.0) || !isfinite(shelf_slope)) return -1;
    } else if (!(q > 0.0) || !isfinite(q)) {
        return -1;
    }

    double A = pow(10.0, gain_db / 40.0);
    double w0 = 2.0 * RT_PI * f0 / fs;
    double cw = cos(w0), sw = sin(w0);
    double alpha;
    if (shelf && shelf_slope != 0.0) {
        double inner = (A + 1.0 / A) * (1.0 / shelf_slope - 1.0) + 2.0;
        if (!(inner >= 0.0)) return -1; /* slope too steep for this gain */
        alpha = 0.5 * sw * sqrt(inner);
    } else {
        alpha = sw / (2.0 * q);
    }
    double sa = 2.0 * sqrt(A) * alpha;
    double b0, b1, b2, a0, a1, a2;

    switch (type) {
    case RT_BQ_PEAKING:
        b0 = 1.0 + alpha * A; b1 = -2.0 * cw; b2 = 1.0 - alpha * A;
        a0 = 1.0 + alpha / A; a1 = -2.0 * cw; a2 = 1.0 - alpha / A;
        break;
    case RT_BQ_LOW_SHELF:
        b0 = A * ((A + 1.0) - (A - 1.0) * cw + sa);
        b1 = 2.0 * A * ((A - 1.0) - (A + 1.0) * cw);
        b2 = A * ((A + 1.0) - (A - 1.0) * cw - sa);
        a0 = (A + 1.0) + (A - 1.0) * cw + sa;
        a1 = -2.0 * ((A - 1.0) + (A + 1.0) * cw);
        a2 = (A + 1.0) + (A - 1.0) * cw - sa;
        break;
    case RT_BQ_HIGH_SHELF:
        b0 = A * ((A + 1.0) + (A - 1.0) * cw + sa);
        b1 = -2.0 * A * ((A - 1.0) + (A + 1.0) * cw);
        b2 = A * ((A + 1.0) + (A - 1.0) * cw - sa);
        a0 = (A + 1.0) - (A - 1.0) * cw + sa;
        a1 = 2.0 * ((A - 1.0) - (A + 1.0) * cw);
        a2 = (A + 1.0) - (A - 1.0) * cw - sa;
        break;
    case RT_BQ_LOW_PASS:
        b0 = 0.5 * (1.0 - cw); b1 = 1.0 - cw; b2 = b0;
        a0 = 1.0 + alpha; a1 = -2.0 * cw; a2 = 1.0 - alpha;
        break;
    case RT_BQ_HIGH_PASS:
        b0 = 0.5 * (1.0 + cw); b1 = -(1.0 + cw); b2 = b0;
        a0 = 1.0 + alpha; a1 = -2.0 * cw; a2 = 1.0 - alpha;
        break;
    case RT_BQ_BAND_PASS:
        b0 = alpha; b1 = 0.0; b2 = -alpha;
        a0 = 1.0 + alpha; a1 = -2.0 * cw; a2 = 1.0 - alpha;
        break;
    case RT_BQ_NOTCH:
        b0 = 1.0; b1 = -2.0 * cw; b2 = 1.0;
        a0 = 1.0 + alpha; a1 = -2.0 * cw; a2 = 1.0 - alpha;
        break;
    case RT_BQ_ALL_PASS:
        b0 = 1.0 - alpha; b1 = -2.0 * cw; b2 = 1.0 + alpha;
        a0 = 1.0 + alpha; a1 = -2.0 * cw; a2 = 1.0 - alpha;
        break;
    default:
        return -1;
    }
    double inv = 1.0 / a0;
    double out[5] = {b0 * inv, b1 * inv, b2 * inv, a1 * inv, a2 * inv};
    for (int i = 0; i < 5; i++)
        if (!isfinite(out[i])) return -1;
    memcpy(c, out, sizeof out);
    return 0;
}

static uint32_t state_stride(const rt_biquad *bq) { return 4u * bq->sections; }

rt_biquad *rt_biquad_create(uint32_t channels, uint32_t sections, double sample_rate)
{
    if (channels == 0 || sections == 0 || !(sample_rate > 0.0)) return NULL;
    rt_biquad *bq = calloc(1, sizeof *bq);
    if (!bq) return NULL;
    bq->channels = channels;
    bq->sections = sections;
    bq->sample_rate = sample_rate;
    bq->coeffs = malloc(sizeof(double) * 5u * sections);
    bq->state = calloc((size_t)channels * state_stride(bq), sizeof(double));
    if (!bq->coeffs || !bq->state) {
        rt_biquad_destroy(bq);
        return NULL;
    }
    for (uint32_t s = 0; s < sections; s++) memcpy(bq->coeffs + 5u * s, identity, sizeof identity);
    return bq;
}

void rt_biquad_destroy(rt_biquad *bq)
{
    if (!bq) return;
    free(bq->coeffs);
    free(bq->state);
    free(bq);
}

void rt_biquad_reset(rt_biquad *bq)
{
    memset(bq->state, 0, sizeof(double) * bq->channels * state_stride(bq));
    bq->grid_phase = 0;
}

int rt_biquad_set_section(rt_biquad *bq, uint32_t index, int type, double freq_hz,
                          double q, double gain_db, double shelf_slope)
{
    if (index >= bq->sections) return -1;
    return rt_biquad_design(type, bq->sample_rate, freq_hz, q, gain_db, shelf_slope, bq->coeffs + 5u * index);
}

int rt_biquad_set_coefficients(rt_biquad *bq, uint32_t index, const double c[5])
{
    if (index >= bq->sections) return -1;
    for (int i = 0; i < 5; i++)
        if (!isfinite(c[i])) return -1;
    memcpy(bq->coeffs + 5u * index, c, 5 * sizeof(double));
    return 0;
}

/* One section over a chunk, direct form I, in place on `buf`; h holds the
 * section's history x1 x2 y1 y2. */
static inline void section_run(const double *restrict c, double *restrict h, double *restrict buf, uint32_t n)
{
    const double b0 = c[0], b1 = c[1], b2 = c[2], a1 = c[3], a2 = c[4];
    double x1 = h[0], x2 = h[1], y1 = h[2], y2 = h[3];
    for (uint32_t i = 0; i < n; i++) {
        double x = buf[i];
        double y = (b0 * x + b1 * x1 + b2 * x2 - a2 * y2) - a1 * y1;
        x2 = x1; x1 = x;
        y2 = y1; y1 = y;
        buf[i] = y;
    }
    h[0] = x1; h[1] = x2; h[2] = y1; h[3] = y2;
}

uint32_t rt_biquad_process(rt_biquad *bq, const float *const *in, float *const *out, uint32_t frames)
{
    const uint32_t stride = state_stride(bq);
    uint32_t done = 0;
    while (done < frames) {
        uint32_t n = RT_BQ_CHUNK - bq->grid_phase;
        if (n > frames - done) n = frames - done;
        for (uint32_t ch = 0; ch < bq->channels; ch++) {
            double *st = bq->state + (size_t)ch * stride;
            const float *x = in[ch] + done;
            float *y = out[ch] + done;
            for (uint32_t i = 0; i < n; i++) bq->scratch[i] = x[i];
            for (uint32_t s = 0; s < bq->sections; s++)
                section_run(bq->coeffs + 5u * s, st + 4u * s, bq->scratch, n);
            for (uint32_t i = 0; i < n; i++) y[i] = (float)bq->scratch[i];
        }
        bq->grid_phase += n;
        done += n;
        if (bq->grid_phase == RT_BQ_CHUNK) {
            bq->grid_phase = 0;
            for (uint32_t i = 0; i < bq->channels * stride; i++) bq->state[i] = rt_flush_tiny(bq->state[i]);
        }
    }
    return frames;
}

uint32_t rt_biquad_latency(const rt_biquad *bq) { return 0; }

uint32_t rt_biquad_state_size(const rt_biquad *bq) { return bq->channels * state_stride(bq); }

void rt_biquad_read_state(const rt_biquad *bq, double *dest)
{
    memcpy(dest, bq->state, sizeof(double) * rt_biquad_state_size(bq));
}
