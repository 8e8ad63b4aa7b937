#include "mastering_nodes.h"
#include "compressor.h"
#include "correlation.h"
#include "limiter.h"
#include "loudness.h"
#include "psy_eq.h"
#include "soft_clipper.h"
#include "stereo_width.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void pass_through(uint32_t channels, const float *const *in, float *const *out, uint32_t frames)
{
    for (uint32_t ch = 0; ch < channels; ch++)
        if (out[ch] != in[ch]) memcpy(out[ch], in[ch], sizeof(float) * frames);
}

/* ---- compressor: keeps detector and rms_ms together (one kernel setter takes both) */

typedef struct {
    rt_compressor *c;
} compressor_node;

void *rt_compressor_node_state_create(uint32_t channels, double sample_rate)
{
    /* The facade's defaults (rt_kernels/dynamics.py); Node.bind sets every value next. */
    const rt_compressor_params p = {-20.0, 4.0, 6.0, 10.0, 100.0, 0.0, 0, RT_CMP_DETECT_PEAK, 10.0, RT_CMP_LINK_MAX};
    compressor_node *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    n->c = rt_compressor_create(channels, sample_rate, &p);
    if (!n->c) {
        free(n);
        return NULL;
    }
    return n;
}

static uint32_t cmp_process(void *st, const float *const *in, float *const *out, uint32_t frames)
{
    return rt_compressor_process(((compressor_node *)st)->c, in, out, frames);
}
static void cmp_reset(void *st) { rt_compressor_reset(((compressor_node *)st)->c); }
static uint32_t cmp_latency(const void *st) { return rt_compressor_latency(((const compressor_node *)st)->c); }
static void cmp_destroy(void *st)
{
    rt_compressor_destroy(((compressor_node *)st)->c);
    free(st);
}
static int cmp_set_param(void *st, uint32_t id, double v)
{
    rt_compressor *c = ((compressor_node *)st)->c;
    if (!isfinite(v)) return -1;
    rt_compressor_params p;
    switch (id) {
    case 0: return rt_compressor_set_threshold_db(c, v);
    case 1: return rt_compressor_set_ratio(c, v);
    case 2: return rt_compressor_set_knee_db(c, v);
    case 3: return rt_compressor_set_attack_ms(c, v);
    case 4: return rt_compressor_set_release_ms(c, v);
    case 5: return rt_compressor_set_makeup_db(c, v);
    case 6:
        if (v != 0.0 && v != 1.0) return -1;
        return rt_compressor_set_auto_makeup(c, (int)v);
    case 7:
        if (v != floor(v)) return -1;
        return rt_compressor_set_link(c, (int)v);
    case 8:
        if (v != floor(v)) return -1;
        rt_compressor_get_params(c, &p);
        return rt_compressor_set_detector(c, (int)v, p.rms_ms);
    case 9:
        rt_compressor_get_params(c, &p);
        return rt_compressor_set_detector(c, p.detector, v);
    default: return -1;
    }
}
static const rt_node_ops cmp_ops = {"compressor", cmp_process, cmp_reset, cmp_latency, cmp_set_param, cmp_destroy};
const rt_node_ops *rt_compressor_node_ops(void) { return &cmp_ops; }
rt_compressor *rt_compressor_node_kernel(void *state) { return ((compressor_node *)state)->c; }

/* ---- limiter */

static uint32_t lim_process(void *st, const float *const *in, float *const *out, uint32_t frames)
{
    return rt_limiter_process(st, in, out, frames);
}
static void lim_reset(void *st) { rt_limiter_reset(st); }
static uint32_t lim_latency(const void *st) { return rt_limiter_latency(st); }
static void lim_destroy(void *st) { rt_limiter_destroy(st); }
static int lim_set_param(void *st, uint32_t id, double v)
{
    if (!isfinite(v)) return -1;
    switch (id) {
    case 0: return rt_limiter_set_ceiling_db(st, v);
    case 1: return rt_limiter_set_release_ms(st, v);
    case 2:
        if (v != 0.0 && v != 1.0) return -1;
        rt_limiter_set_auto_release(st, (int)v);
        return 0;
    default: return -1;
    }
}
static const rt_node_ops lim_ops = {"limiter", lim_process, lim_reset, lim_latency, lim_set_param, lim_destroy};
const rt_node_ops *rt_limiter_node_ops(void) { return &lim_ops; }

/* ---- psy_eq: one solve per process call, however many bands changed */

typedef struct {
    rt_psy_eq *eq;
    int dirty;
    double gains_db[RT_PSY_EQ_BANDS];
} psy_eq_node;

void *rt_psy_eq_node_state_create(uint32_t channels, double sample_rate, double ramp_ms)
{
    psy_eq_node *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    n->eq = rt_psy_eq_create(channels, sample_rate, ramp_ms);
    if (!n->eq) {
        free(n);
        return NULL;
    }
    return n;
}

static uint32_t peq_process(void *st, const float *const *in, float *const *out, uint32_t frames)
{
    psy_eq_node *n = st;
    if (n->dirty) {
        rt_psy_eq_set_gains_db(n->eq, n->gains_db);  /* every stored value was checked */
        n->dirty = 0;
    }
    return rt_psy_eq_process(n->eq, in, out, frames);
}
static void peq_reset(void *st)
{
    psy_eq_node *n = st;
    if (n->dirty) {
        rt_psy_eq_set_gains_db_now(n->eq, n->gains_db);
        n->dirty = 0;
    }
    rt_psy_eq_reset(n->eq);
}
static uint32_t peq_latency(const void *st) { return rt_psy_eq_latency(((const psy_eq_node *)st)->eq); }
static void peq_destroy(void *st)
{
    rt_psy_eq_destroy(((psy_eq_node *)st)->eq);
    free(st);
}
static int peq_set_param(void *st, uint32_t id, double v)
{
    psy_eq_node *n = st;
    if (id >= RT_PSY_EQ_BANDS || !(v >= -RT_PSY_EQ_MAX_COMMAND_DB && v <= RT_PSY_EQ_MAX_COMMAND_DB)) return -1;
    if (n->gains_db[id] != v) {
        n->gains_db[id] = v;
        n->dirty = 1;
    }
    return 0;
}
static const rt_node_ops peq_ops = {"psy_eq", peq_process, peq_reset, peq_latency, peq_set_param, peq_destroy};
const rt_node_ops *rt_psy_eq_node_ops(void) { return &peq_ops; }

/* ---- stereo width */

enum { SW_XOVERS = RT_SW_MAX_BANDS - 1 };

typedef struct {
    rt_stereo_width *sw;
    uint32_t bands;
    int xover_dirty;
    double sample_rate;
    double xover[SW_XOVERS];   /* commanded (all three; the first bands - 1 used) */
} stereo_width_node;

static const double sw_default_xover[SW_XOVERS] = {250.0, 4000.0, 10000.0};

void *rt_stereo_width_node_state_create(uint32_t channels, double sample_rate, uint32_t bands, double ramp_ms)
{
    if (channels != 2 || bands < 1 || bands > RT_SW_MAX_BANDS) return NULL;
    stereo_width_node *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    memcpy(n->xover, sw_default_xover, sizeof n->xover);
    n->sw = rt_stereo_width_create(2, sample_rate, bands, bands > 1 ? n->xover : NULL, ramp_ms);
    if (!n->sw) {
        free(n);
        return NULL;
    }
    n->bands = bands;
    n->sample_rate = sample_rate;
    return n;
}

static int sw_used_increasing(const stereo_width_node *n)
{
    for (uint32_t i = 1; i + 1 < n->bands; i++)
        if (!(n->xover[i] > n->xover[i - 1])) return 0;
    return 1;
}

static void sw_apply_xovers(stereo_width_node *n)
{
    if (n->xover_dirty && sw_used_increasing(n)) {
        if (n->bands > 1) rt_stereo_width_set_crossovers(n->sw, n->xover, n->bands - 1);
        n->xover_dirty = 0;
    }
}

static uint32_t sw_process(void *st, const float *const *in, float *const *out, uint32_t frames)
{
    stereo_width_node *n = st;
    sw_apply_xovers(n);
    return rt_stereo_width_process(n->sw, in, out, frames);
}
static void sw_reset(void *st)
{
    stereo_width_node *n = st;
    sw_apply_xovers(n);
    rt_stereo_width_reset(n->sw);
}
static uint32_t sw_latency(const void *st) { return rt_stereo_width_latency(((const stereo_width_node *)st)->sw); }
static void sw_destroy(void *st)
{
    rt_stereo_width_destroy(((stereo_width_node *)st)->sw);
    free(st);
}
static int sw_set_param(void *st, uint32_t id, double v)
{
    stereo_width_node *n = st;
    if (!isfinite(v)) return -1;
    if (id < SW_XOVERS) {
        if (!(v >= 20.0 && v <= 0.45 * n->sample_rate)) return -1;
        if (n->xover[id] != v) {
            n->xover[id] = v;
            if (id + 1 < n->bands) n->xover_dirty = 1;
        }
        return id + 1 < n->bands && !sw_used_increasing(n) ? -1 : 0;
    }
    if (id < SW_XOVERS + RT_SW_MAX_BANDS) {
        uint32_t band = id - SW_XOVERS;
        if (!(v >= 0.0 && v <= 2.0)) return -1;
        return band < n->bands ? rt_stereo_width_set_width(n->sw, band, v) : 0;
    }
    if (id == SW_XOVERS + RT_SW_MAX_BANDS) {
        if (!(v == 0.0 || (v >= 20.0 && v <= 1000.0))) return -1;
        return rt_stereo_width_set_mono_bass(n->sw, v);
    }
    return -1;
}
static const rt_node_ops sw_ops = {"stereo_width", sw_process, sw_reset, sw_latency, sw_set_param, sw_destroy};
const rt_node_ops *rt_stereo_width_node_ops(void) { return &sw_ops; }

/* ---- soft clipper: one setter takes both values */

typedef struct {
    rt_soft_clipper *s;
    double ceiling_db, knee_db;
} soft_clipper_node;

void *rt_soft_clipper_node_state_create(uint32_t channels)
{
    soft_clipper_node *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    n->ceiling_db = -1.0;
    n->knee_db = 6.0;
    n->s = rt_soft_clipper_create(channels, n->ceiling_db, n->knee_db);
    if (!n->s) {
        free(n);
        return NULL;
    }
    return n;
}
static uint32_t sc_process(void *st, const float *const *in, float *const *out, uint32_t frames)
{
    return rt_soft_clipper_process(((soft_clipper_node *)st)->s, in, out, frames);
}
static void sc_reset(void *st) { rt_soft_clipper_reset(((soft_clipper_node *)st)->s); }
static uint32_t sc_latency(const void *st) { return rt_soft_clipper_latency(((const soft_clipper_node *)st)->s); }
static void sc_destroy(void *st)
{
    rt_soft_clipper_destroy(((soft_clipper_node *)st)->s);
    free(st);
}
static int sc_set_param(void *st, uint32_t id, double v)
{
    soft_clipper_node *n = st;
    double c = n->ceiling_db, k = n->knee_db;
    if (id == 0) c = v;
    else if (id == 1) k = v;
    else return -1;
    if (rt_soft_clipper_set_params(n->s, c, k) != 0) return -1;
    n->ceiling_db = c;
    n->knee_db = k;
    return 0;
}
static const rt_node_ops sc_ops = {"soft_clipper", sc_process, sc_reset, sc_latency, sc_set_param, sc_destroy};
const rt_node_ops *rt_soft_clipper_node_ops(void) { return &sc_ops; }

/* ---- loudness meter: a sink, passes its input through */

typedef struct {
    rt_loudness *m;
    uint32_t channels;
} loudness_node;

void *rt_loudness_node_state_create(uint32_t channels, double sample_rate, const double *weights, int true_peak)
{
    loudness_node *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    n->m = rt_loudness_create(channels, sample_rate, weights, true_peak);
    if (!n->m) {
        free(n);
        return NULL;
    }
    n->channels = channels;
    return n;
}
rt_loudness *rt_loudness_node_meter(void *state) { return ((loudness_node *)state)->m; }
static uint32_t ld_process(void *st, const float *const *in, float *const *out, uint32_t frames)
{
    loudness_node *n = st;
    rt_loudness_process(n->m, in, frames);
    pass_through(n->channels, in, out, frames);
    return frames;
}
static void ld_reset(void *st) { rt_loudness_reset(((loudness_node *)st)->m); }
static uint32_t ld_latency(const void *st) { return 0; }  /* pass-through: the meter's own latency is not on the audio path */
static void ld_destroy(void *st)
{
    rt_loudness_destroy(((loudness_node *)st)->m);
    free(st);
}
static const rt_node_ops ld_ops = {"loudness_meter", ld_process, ld_reset, ld_latency, NULL, ld_destroy};
const rt_node_ops *rt_loudness_node_ops(void) { return &ld_ops; }

/* ---- correlation meter: a sink, passes its input through */

typedef struct {
    rt_correlation *m;
} correlation_node;

void *rt_correlation_node_state_create(uint32_t channels, double sample_rate, double window_ms)
{
    if (channels != 2) return NULL;
    correlation_node *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    n->m = rt_correlation_create(2, sample_rate, window_ms);
    if (!n->m) {
        free(n);
        return NULL;
    }
    return n;
}
rt_correlation *rt_correlation_node_meter(void *state) { return ((correlation_node *)state)->m; }
static uint32_t cr_process(void *st, const float *const *in, float *const *out, uint32_t frames)
{
    rt_correlation_process(((correlation_node *)st)->m, in, frames);
    pass_through(2, in, out, frames);
    return frames;
}
static void cr_reset(void *st) { rt_correlation_reset(((correlation_node *)st)->m); }
static uint32_t cr_latency(const void *st) { return 0; }
static void cr_destroy(void *st)
{
    rt_correlation_destroy(((correlation_node *)st)->m);
    free(st);
}
static const rt_node_ops cr_ops = {"correlation_meter", cr_process, cr_reset, cr_latency, NULL, cr_destroy};
const rt_node_ops *rt_correlation_node_ops(void) { return &cr_ops; }
