#include "node_adapters.h"
#include "biquad.h"
#include "dc_blocker.h"
#include "delay.h"
#include "gain.h"
#include "level_meter.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- biquad: keeps each section's parameters so one can change at a time */

typedef struct {
    rt_biquad *bq;
    uint32_t sections;
    double params[]; /* sections * 5 */
} biquad_node;

void *rt_biquad_node_state_create(uint32_t channels, uint32_t sections, double sample_rate)
{
    if (sections == 0 || sections > 256) return NULL;
    biquad_node *b = calloc(1, sizeof *b + sizeof(double) * 5u * sections);
    if (!b) return NULL;
    b->bq = rt_biquad_create(channels, sections, sample_rate);
    if (!b->bq) {
        free(b);
        return NULL;
    }
    b->sections = sections;
    for (uint32_t s = 0; s < sections; s++) {
        double *p = b->params + 5u * s;
        p[0] = RT_BQ_PEAKING;
        p[1] = 1000.0;
        p[2] = 0.7071067811865476;
        p[3] = 0.0;
        p[4] = 0.0;
    }
    return b;
}

static uint32_t biquad_process(void *st, const float *const *in, float *const *out, uint32_t frames)
{
    return rt_biquad_process(((biquad_node *)st)->bq, in, out, frames);
}
static void biquad_reset(void *st) { rt_biquad_reset(((biquad_node *)st)->bq); }
static uint32_t biquad_latency(const void *st) { return rt_biquad_latency(((const biquad_node *)st)->bq); }
static void biquad_destroy(void *st)
{
    biquad_node *b = st;
    rt_biquad_destroy(b->bq);
    free(b);
}

/* Stores the value even when this combination has no valid design (e.g. while
 * a snapshot is half applied); the next value that completes a valid
 * combination redesigns the section.  Returns the design's result. */
static int biquad_set_param(void *st, uint32_t id, double value)
{
    biquad_node *b = st;
    uint32_t s = id / 5u, k = id % 5u;
    if (s >= b->sections || !isfinite(value)) return -1;
    double *p = b->params + 5u * s;
    p[k] = k == 0 ? floor(value + 0.5) : value;
    return rt_biquad_set_section(b->bq, s, (int)p[0], p[1], p[2], p[3], p[4]);
}

static const rt_node_ops biquad_ops = {"biquad", biquad_process, biquad_reset, biquad_latency, biquad_set_param,
                                       biquad_destroy};
const rt_node_ops *rt_biquad_node_ops(void) { return &biquad_ops; }

/* ---- gain: the kernel's own per-sample ramp does the smoothing */

static uint32_t gain_process(void *st, const float *const *in, float *const *out, uint32_t frames)
{
    return rt_gain_process(st, in, out, frames);
}
static void gain_reset(void *st) { rt_gain_reset(st); }
static uint32_t gain_latency(const void *st) { return rt_gain_latency(st); }
static int gain_set_param(void *st, uint32_t id, double value)
{
    if (id != 0 || !isfinite(value)) return -1;
    rt_gain_set_linear(st, pow(10.0, value / 20.0));
    return 0;
}
static void gain_destroy(void *st) { rt_gain_destroy(st); }
static const rt_node_ops gain_ops = {"gain", gain_process, gain_reset, gain_latency, gain_set_param, gain_destroy};
const rt_node_ops *rt_gain_node_ops(void) { return &gain_ops; }

/* ---- dc blocker */

static uint32_t dc_process(void *st, const float *const *in, float *const *out, uint32_t frames)
{
    return rt_dc_blocker_process(st, in, out, frames);
}
static void dc_reset(void *st) { rt_dc_blocker_reset(st); }
static uint32_t dc_latency(const void *st) { return rt_dc_blocker_latency(st); }
static void dc_destroy(void *st) { rt_dc_blocker_destroy(st); }
static const rt_node_ops dc_ops = {"dc_blocker", dc_process, dc_reset, dc_latency, NULL, dc_destroy};
const rt_node_ops *rt_dc_blocker_node_ops(void) { return &dc_ops; }

/* ---- delay */

static uint32_t delay_process(void *st, const float *const *in, float *const *out, uint32_t frames)
{
    return rt_delay_process(st, in, out, frames);
}
static void delay_reset(void *st) { rt_delay_reset(st); }
static uint32_t delay_latency(const void *st) { return rt_delay_latency(st); }
static void delay_destroy(void *st) { rt_delay_destroy(st); }
static const rt_node_ops delay_ops = {"delay", delay_process, delay_reset, delay_latency, NULL, delay_destroy};
const rt_node_ops *rt_delay_node_ops(void) { return &delay_ops; }

/* ---- level meter: a sink, so the node passes its input through */

typedef struct {
    rt_level_meter *meter;
    uint32_t channels;
} meter_node;

void *rt_level_meter_node_state_create(uint32_t channels, double sample_rate, double window_ms)
{
    meter_node *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->meter = rt_level_meter_create(channels, sample_rate, window_ms);
    if (!m->meter) {
        free(m);
        return NULL;
    }
    m->channels = channels;
    return m;
}

rt_level_meter *rt_level_meter_node_meter(void *state) { return ((meter_node *)state)->meter; }

static uint32_t meter_process(void *st, const float *const *in, float *const *out, uint32_t frames)
{
    meter_node *m = st;
    rt_level_meter_process(m->meter, in, frames);
    for (uint32_t ch = 0; ch < m->channels; ch++)
        if (out[ch] != in[ch]) memcpy(out[ch], in[ch], sizeof(float) * frames);
    return frames;
}
static void meter_reset(void *st) { rt_level_meter_reset(((meter_node *)st)->meter); }
static uint32_t meter_latency(const void *st) { return rt_level_meter_latency(((const meter_node *)st)->meter); }
static void meter_destroy(void *st)
{
    meter_node *m = st;
    rt_level_meter_destroy(m->meter);
    free(m);
}
static const rt_node_ops meter_ops = {"level_meter", meter_process, meter_reset, meter_latency, NULL, meter_destroy};
const rt_node_ops *rt_level_meter_node_ops(void) { return &meter_ops; }
