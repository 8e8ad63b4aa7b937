#include "gain.h"

#include <math.h>
#include <stdlib.h>

struct rt_gain {
    uint32_t channels;
    uint32_t ramp_frames;
    uint32_t remaining;   /* frames left in the current ramp */
    double current;
    double target;
    double step;
};

rt_gain *rt_gain_create(uint32_t channels, double sample_rate, double ramp_ms, double initial_linear)
{
    if (channels == 0 || !(sample_rate > 0.0) || !(ramp_ms >= 0.0) || !isfinite(initial_linear)) return NULL;
    rt_gain *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->channels = channels;
    g->ramp_frames = (uint32_t)lround(ramp_ms * 0.001 * sample_rate);
    g->current = g->target = initial_linear;
    return g;
}

void rt_gain_destroy(rt_gain *g) { free(g); }

void rt_gain_reset(rt_gain *g)
{
    g->current = g->target;
    g->remaining = 0;
}

void rt_gain_set_linear(rt_gain *g, double linear)
{
    if (!isfinite(linear)) return;
    g->target = linear;
    if (g->ramp_frames == 0) {
        g->current = linear;
        g->remaining = 0;
        return;
    }
    g->remaining = g->ramp_frames;
    g->step = (linear - g->current) / (double)g->ramp_frames;
}

double rt_gain_current(const rt_gain *g) { return g->current; }
double rt_gain_target(const rt_gain *g) { return g->target; }

uint32_t rt_gain_process(rt_gain *g, const float *const *in, float *const *out, uint32_t frames)
{
    uint32_t i = 0;
    /* Ramp part: every channel sees the same gain on the same frame. */
    while (i < frames && g->remaining > 0) {
        g->remaining--;
        g->current = g->remaining ? g->current + g->step : g->target;
        for (uint32_t ch = 0; ch < g->channels; ch++) out[ch][i] = (float)(in[ch][i] * g->current);
        i++;
    }
    if (i < frames) {
        for (uint32_t ch = 0; ch < g->channels; ch++) {
            const float *x = in[ch];
            float *y = out[ch];
            if (g->current == 1.0) {
                if (x != y)
                    for (uint32_t n = i; n < frames; n++) y[n] = x[n];
            } else {
                for (uint32_t n = i; n < frames; n++) y[n] = (float)((double)x[n] * g->current);
            }
        }
    }
    return frames;
}

uint32_t rt_gain_latency(const rt_gain *g) { return 0; }
