#include "dc_blocker.h"
#include "rt_common.h"

#include <math.h>
#include <stdlib.h>

/* Tiny state is flushed on a grid of RT_DC_CHUNK frames aligned to the absolute
 * frame count (as biquad.c does), not per sample: a flush on the recursion chain
 * made the filter latency-bound (~7 ns per sample and channel).  Between grid
 * points the state can only decay by pole^RT_DC_CHUNK (pole >= exp(-pi), so at
 * worst from 1e-30 to ~1e-175: never a subnormal double); the float output is
 * flushed separately (off the recursion chain), so it is never subnormal either.
 * The output is bit-identical for any block split. */
#define RT_DC_CHUNK 128

struct rt_dc_blocker {
    uint32_t channels;
    uint32_t grid_phase; /* frames processed since the last grid point */
    double pole;      /* R = exp(-2 pi fc / fs) */
    double gain;      /* (1 + R) / 2: unity at Nyquist */
    double *x1, *y1;  /* per channel */
};

rt_dc_blocker *rt_dc_blocker_create(uint32_t channels, double sample_rate, double cutoff_hz)
{
    if (channels == 0 || !(sample_rate > 0.0) || !(cutoff_hz > 0.0 && cutoff_hz < 0.5 * sample_rate)) return NULL;
    rt_dc_blocker *d = calloc(1, sizeof *d + 2 * sizeof(double) * channels);
    if (!d) return NULL;
    d->channels = channels;
    d->pole = exp(-2.0 * RT_PI * cutoff_hz / sample_rate);
    d->gain = 0.5 * (1.0 + d->pole);
    d->x1 = (double *)(d + 1);
    d->y1 = d->x1 + channels;
    return d;
}

void rt_dc_blocker_destroy(rt_dc_blocker *d) { free(d); }

void rt_dc_blocker_reset(rt_dc_blocker *d)
{
    for (uint32_t ch = 0; ch < d->channels; ch++) d->x1[ch] = d->y1[ch] = 0.0;
    d->grid_phase = 0;
}

RT_HOT_CLONES
static void dc_run(const rt_dc_blocker *d, const float *x, float *y, uint32_t n, double *x1p, double *y1p)
{
    const double g = d->gain, r = d->pole;
    double x1 = *x1p, y1 = *y1p;
    for (uint32_t i = 0; i < n; i++) {
        double v = x[i];
        y1 = g * (v - x1) + r * y1;  /* the only loop-carried chain: one multiply-add */
        x1 = v;
        /* |y1| compared once: predictable whatever the sign (rt_flush_tiny's two
         * compares branch on the sign of the audio and mispredict half the time) */
        y[i] = fabs(y1) < RT_STATE_FLOOR ? 0.0f : (float)y1;
    }
    *x1p = x1;
    *y1p = y1;
}

uint32_t rt_dc_blocker_process(rt_dc_blocker *d, const float *const *in, float *const *out, uint32_t frames)
{
    uint32_t done = 0;
    while (done < frames) {
        uint32_t n = RT_DC_CHUNK - d->grid_phase;
        if (n > frames - done) n = frames - done;
        for (uint32_t ch = 0; ch < d->channels; ch++) dc_run(d, in[ch] + done, out[ch] + done, n, &d->x1[ch], &d->y1[ch]);
        done += n;
        d->grid_phase += n;
        if (d->grid_phase == RT_DC_CHUNK) {
            d->grid_phase = 0;
            for (uint32_t ch = 0; ch < d->channels; ch++) d->y1[ch] = rt_flush_tiny(d->y1[ch]);
        }
    }
    return frames;
}

uint32_t rt_dc_blocker_latency(const rt_dc_blocker *d) { return 0; }
