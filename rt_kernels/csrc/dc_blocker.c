#include "dc_blocker.h"
#include "rt_common.h"

#include <math.h>
#include <stdlib.h>

struct rt_dc_blocker {
    uint32_t channels;
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
}

uint32_t rt_dc_blocker_process(rt_dc_blocker *d, const float *const *in, float *const *out, uint32_t frames)
{
    for (uint32_t ch = 0; ch < d->channels; ch++) {
        double x1 = d->x1[ch], y1 = d->y1[ch];
        const float *x = in[ch];
        float *y = out[ch];
        for (uint32_t n = 0; n < frames; n++) {
            double v = x[n];
            y1 = rt_flush_tiny(d->gain * (v - x1) + d->pole * y1);
            x1 = v;
            y[n] = (float)y1;
        }
        d->x1[ch] = x1;
        d->y1[ch] = y1;
    }
    return frames;
}

uint32_t rt_dc_blocker_latency(const rt_dc_blocker *d) { return 0; }
