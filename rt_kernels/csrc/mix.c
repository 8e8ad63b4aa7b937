#include "mix.h"
#include "rt_common.h"

#include <math.h>
#include <stdlib.h>

struct rt_mix {
    uint32_t channels;
    uint32_t ramp_frames;
    uint32_t remaining;
    double current, target, step;
};

rt_mix *rt_mix_create(uint32_t channels, double sample_rate, double ramp_ms, double wet_amount)
{
    if (channels == 0 || !(sample_rate > 0.0) || !(ramp_ms >= 0.0)) return NULL;
    if (!(wet_amount >= 0.0 && wet_amount <= 1.0)) return NULL;
    rt_mix *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->channels = channels;
    m->ramp_frames = (uint32_t)lround(ramp_ms * 0.001 * sample_rate);
    m->current = m->target = wet_amount;
    return m;
}

void rt_mix_destroy(rt_mix *m) { free(m); }

void rt_mix_reset(rt_mix *m)
{
    m->current = m->target;
    m->remaining = 0;
}

void rt_mix_set_amount(rt_mix *m, double wet_amount)
{
    if (!(wet_amount >= 0.0 && wet_amount <= 1.0)) return;
    m->target = wet_amount;
    if (m->ramp_frames == 0) {
        m->current = wet_amount;
        m->remaining = 0;
        return;
    }
    m->remaining = m->ramp_frames;
    m->step = (wet_amount - m->current) / (double)m->ramp_frames;
}

double rt_mix_current(const rt_mix *m) { return m->current; }

uint32_t rt_mix_process(rt_mix *m, const float *const *dry, const float *const *wet,
                        float *const *out, uint32_t frames)
{
    for (uint32_t n = 0; n < frames; n++) {
        if (m->remaining > 0) {
            m->remaining--;
            m->current = m->remaining ? m->current + m->step : m->target;
        }
        const double w = m->current, d = 1.0 - w;
        for (uint32_t ch = 0; ch < m->channels; ch++)
            out[ch][n] = (float)((double)dry[ch][n] * d + (double)wet[ch][n] * w);
    }
    return frames;
}

uint32_t rt_mix_latency(const rt_mix *m) { return 0; }

struct rt_xfade {
    uint32_t channels;
    uint32_t length;    /* frames in the current fade */
    uint32_t elapsed;   /* frames of it done */
    int state;          /* 0: output a, 1: fading, 2: output b */
};

rt_xfade *rt_xfade_create(uint32_t channels)
{
    if (channels == 0) return NULL;
    rt_xfade *x = calloc(1, sizeof *x);
    if (x) x->channels = channels;
    return x;
}

void rt_xfade_destroy(rt_xfade *x) { free(x); }

void rt_xfade_reset(rt_xfade *x)
{
    x->state = 0;
    x->elapsed = x->length = 0;
}

void rt_xfade_start(rt_xfade *x, uint32_t length_frames)
{
    x->length = length_frames;
    x->elapsed = 0;
    x->state = length_frames ? 1 : 2;
}

double rt_xfade_position(const rt_xfade *x)
{
    if (x->state == 0) return 0.0;
    if (x->state == 2) return 1.0;
    return (double)x->elapsed / (double)x->length;
}

uint32_t rt_xfade_process(rt_xfade *x, const float *const *a, const float *const *b,
                          float *const *out, uint32_t frames)
{
    for (uint32_t n = 0; n < frames; n++) {
        if (x->state == 1) {
            /* Sample k of a fade of length L sits at p = (k + 0.5) / L, so the
             * fade is symmetric and neither end is skipped. */
            double p = ((double)x->elapsed + 0.5) / (double)x->length;
            double ga = cos(p * 0.5 * RT_PI), gb = sin(p * 0.5 * RT_PI);
            for (uint32_t ch = 0; ch < x->channels; ch++)
                out[ch][n] = (float)((double)a[ch][n] * ga + (double)b[ch][n] * gb);
            if (++x->elapsed == x->length) x->state = 2;
        } else {
            const float *const *src = x->state == 0 ? a : b;
            for (uint32_t ch = 0; ch < x->channels; ch++) out[ch][n] = src[ch][n];
        }
    }
    return frames;
}

uint32_t rt_xfade_latency(const rt_xfade *x) { return 0; }
