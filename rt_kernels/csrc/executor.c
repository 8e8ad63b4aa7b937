/* The graph executor.  Read top to bottom: nodes, plans, parameter blocks,
 * the executor's control side, then the audio path (rt_executor_process). */
#include "executor.h"
#include "delay.h"
#include "mix.h"
#include "spsc_ring.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <time.h>

/* ------------------------------------------------------------------------ */
/* nodes                                                                    */

typedef struct {
    double current;       /* value last handed to the kernel */
    double target;
    double step;          /* per ramp step */
    uint32_t ramp_frames; /* 0: hand values over at once */
    uint32_t remaining;   /* ramp steps left */
} param_slot;

struct rt_node {
    const rt_node_ops *ops;
    void *state;
    uint32_t id, channels, param_count, max_block, latency;
    param_slot *params;
    uint32_t ramping;      /* slots with remaining > 0 */
    uint32_t ramp_phase;   /* frames until the next ramp step */
    /* bypass: output = wet * (1 - f) + dry * f, f = fade_count / fade_frames */
    uint32_t fade_frames;
    uint32_t fade_count;
    int bypass_target;
    rt_delay *dry_delay;   /* latency > 0: the dry path is delayed to match */
    float *dry_pool;
    float **dry;           /* channels pointers into dry_pool */
    const float **in_off;  /* scratch channel-pointer arrays for sub-blocks */
    float **out_off;
    /* telemetry: written by the audio thread only */
    float peak_last, peak_hold;
    uint64_t cost_last, cost_total, frames;
};

static int node_fail(const rt_node_ops *ops, void *state)
{
    if (ops && ops->destroy && state) ops->destroy(state);
    return 0;
}

rt_node *rt_node_create(const rt_node_ops *ops, void *state, uint32_t node_id, uint32_t channels,
                        uint32_t param_count, uint32_t max_block, uint32_t bypass_fade_frames)
{
    if (!ops || !state || !ops->process || !ops->latency || channels == 0 || channels > 64 || max_block == 0 ||
        param_count > 4096) {
        node_fail(ops, state);
        return NULL;
    }
    rt_node *n = calloc(1, sizeof *n);
    if (!n) {
        node_fail(ops, state);
        return NULL;
    }
    n->ops = ops;
    n->state = state;
    n->id = node_id;
    n->channels = channels;
    n->param_count = param_count;
    n->max_block = max_block;
    n->latency = ops->latency(state);
    n->fade_frames = bypass_fade_frames;
    n->params = calloc(param_count ? param_count : 1, sizeof *n->params);
    n->dry_pool = calloc((size_t)channels * max_block, sizeof(float));
    n->dry = calloc(channels, sizeof(float *));
    n->in_off = calloc(channels, sizeof(float *));
    n->out_off = calloc(channels, sizeof(float *));
    if (n->latency > 0) n->dry_delay = rt_delay_create(channels, n->latency, n->latency);
    if (!n->params || !n->dry_pool || !n->dry || !n->in_off || !n->out_off || (n->latency > 0 && !n->dry_delay)) {
        rt_node_destroy(n);
        return NULL;
    }
    for (uint32_t ch = 0; ch < channels; ch++) n->dry[ch] = n->dry_pool + (size_t)ch * max_block;
    return n;
}

void rt_node_destroy(rt_node *n)
{
    if (!n) return;
    if (n->ops->destroy) n->ops->destroy(n->state);
    rt_delay_destroy(n->dry_delay);
    free(n->params);
    free(n->dry_pool);
    free(n->dry);
    free(n->in_off);
    free(n->out_off);
    free(n);
}

int rt_node_set_smoothing(rt_node *n, uint32_t param_id, uint32_t ramp_frames)
{
    if (param_id >= n->param_count) return -1;
    n->params[param_id].ramp_frames = ramp_frames;
    return 0;
}

int rt_node_init_param(rt_node *n, uint32_t param_id, double value)
{
    if (param_id == RT_PARAM_BYPASS) {
        n->bypass_target = value >= 0.5;
        n->fade_count = n->bypass_target ? n->fade_frames : 0;
        return 0;
    }
    if (param_id >= n->param_count || !isfinite(value)) return -1;
    param_slot *s = &n->params[param_id];
    if (s->remaining) n->ramping--;
    s->current = s->target = value;
    s->remaining = 0;
    return n->ops->set_param ? n->ops->set_param(n->state, param_id, value) : -1;
}

double rt_node_param_current(const rt_node *n, uint32_t param_id)
{
    if (param_id == RT_PARAM_BYPASS) return n->bypass_target;
    return param_id < n->param_count ? n->params[param_id].current : NAN;
}

uint32_t rt_node_latency(const rt_node *n) { return n->latency; }
uint32_t rt_node_channels(const rt_node *n) { return n->channels; }
uint32_t rt_node_id(const rt_node *n) { return n->id; }
void *rt_node_state(rt_node *n) { return n->state; }

/* Audio thread: history cleared, parameters (and ramps' targets) kept. */
static void node_reset(rt_node *n)
{
    if (n->ops->reset) n->ops->reset(n->state);
    if (n->dry_delay) rt_delay_reset(n->dry_delay);
    for (uint32_t i = 0; i < n->param_count; i++) {
        param_slot *s = &n->params[i];
        if (s->remaining) {
            s->remaining = 0;
            s->current = s->target;
            if (n->ops->set_param) n->ops->set_param(n->state, i, s->current);
        }
    }
    n->ramping = 0;
    n->ramp_phase = 0;
    n->fade_count = n->bypass_target ? n->fade_frames : 0;
}

void rt_node_reset(rt_node *n) { node_reset(n); }

/* Audio thread: one parameter value arrives. */
static void node_apply(rt_node *n, uint32_t param_id, double value)
{
    if (!isfinite(value)) return;
    if (param_id == RT_PARAM_BYPASS) {
        n->bypass_target = value >= 0.5;
        return;
    }
    if (param_id >= n->param_count) return;
    param_slot *s = &n->params[param_id];
    if (s->ramp_frames == 0 || !n->ops->set_param) {
        if (s->remaining) n->ramping--;
        s->remaining = 0;
        s->current = s->target = value;
        if (n->ops->set_param) n->ops->set_param(n->state, param_id, value);
        return;
    }
    if (value == s->target) return;
    uint32_t steps = (s->ramp_frames + RT_RAMP_CHUNK - 1) / RT_RAMP_CHUNK;
    s->target = value;
    s->step = (value - s->current) / (double)steps;
    if (!s->remaining) {
        if (n->ramping == 0) n->ramp_phase = 0; /* first step lands on this very frame */
        n->ramping++;
    }
    s->remaining = steps;
}

static void node_step_ramps(rt_node *n)
{
    for (uint32_t i = 0; i < n->param_count && n->ramping; i++) {
        param_slot *s = &n->params[i];
        if (!s->remaining) continue;
        s->remaining--;
        s->current = s->remaining ? s->current + s->step : s->target;
        if (!s->remaining) n->ramping--;
        n->ops->set_param(n->state, i, s->current);
    }
}

/* The kernel over `frames`, split at ramp steps while a ramp runs.  The
 * split points are counted from the ramp's start, never from block edges. */
static void node_run_kernel(rt_node *n, const float *const *in, float *const *out, uint32_t frames)
{
    if (!n->ramping) {
        n->ops->process(n->state, in, out, frames);
        return;
    }
    uint32_t done = 0;
    while (done < frames) {
        uint32_t m = frames - done;
        if (n->ramping) {
            if (n->ramp_phase == 0) {
                node_step_ramps(n);
                n->ramp_phase = RT_RAMP_CHUNK;
            }
            if (n->ramping && m > n->ramp_phase) m = n->ramp_phase;
        }
        for (uint32_t ch = 0; ch < n->channels; ch++) {
            n->in_off[ch] = in[ch] + done;
            n->out_off[ch] = out[ch] + done;
        }
        n->ops->process(n->state, n->in_off, n->out_off, m);
        n->ramp_phase = m < n->ramp_phase ? n->ramp_phase - m : 0;
        done += m;
    }
}

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Largest |x| as float bits (finite values order like integers); a result
 * >= 0x7f800000 means Inf or NaN was present.  With the sign bit cleared the
 * bits compare correctly as int32, which SSE2 can do (pcmpgtd), so this
 * vectorises; a float max would not without -ffast-math. */
static inline uint32_t peak_bits(const float *x, uint32_t frames, uint32_t peak)
{
    int32_t m = (int32_t)peak;
    for (uint32_t i = 0; i < frames; i++) {
        int32_t u;
        memcpy(&u, &x[i], sizeof u);
        u &= 0x7fffffff;
        m = u > m ? u : m;
    }
    return (uint32_t)m;
}

static inline float bits_to_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Audio thread, frames <= max_block: dry path, kernel, bypass crossfade, meter. */
static void node_run(rt_node *n, const float *const *in, float *const *out, uint32_t frames, int timing)
{
    uint64_t t0 = timing ? now_ns() : 0;
    int fading = n->fade_count != 0 || n->bypass_target;
    const float *const *dry = (const float *const *)n->dry;
    if (n->dry_delay) {
        rt_delay_process(n->dry_delay, in, n->dry, frames);
    } else if (fading) {
        for (uint32_t ch = 0; ch < n->channels; ch++) memcpy(n->dry[ch], in[ch], sizeof(float) * frames);
    }
    node_run_kernel(n, in, out, frames);
    if (fading) {
        const uint32_t full = n->fade_frames;
        uint32_t i = 0;
        while (i < frames) {
            uint32_t c = n->fade_count;
            if (n->bypass_target && c >= full) {
                for (uint32_t ch = 0; ch < n->channels; ch++)
                    memcpy(out[ch] + i, dry[ch] + i, sizeof(float) * (frames - i));
                break;
            }
            if (!n->bypass_target && c == 0) break; /* fully active: out is the kernel's */
            c = n->bypass_target ? c + 1 : c - 1;
            n->fade_count = c;
            const double f = (double)c / (double)full;
            for (uint32_t ch = 0; ch < n->channels; ch++)
                out[ch][i] = (float)((double)out[ch][i] * (1.0 - f) + (double)dry[ch][i] * f);
            i++;
        }
    }
    if (timing) {
        uint32_t peak = 0;
        for (uint32_t ch = 0; ch < n->channels; ch++) peak = peak_bits(out[ch], frames, peak);
        n->peak_last = bits_to_float(peak);
        if (!(n->peak_last <= n->peak_hold)) n->peak_hold = n->peak_last;
        uint64_t dt = now_ns() - t0;
        n->cost_last = dt;
        n->cost_total += dt;
    }
    n->frames += frames;
}

uint32_t rt_node_process(rt_node *n, const float *const *in, float *const *out, uint32_t frames)
{
    const float *ip[64];
    float *op[64];
    uint32_t done = 0;
    while (done < frames) {
        uint32_t m = frames - done < n->max_block ? frames - done : n->max_block;
        for (uint32_t ch = 0; ch < n->channels; ch++) {
            ip[ch] = in[ch] + done;
            op[ch] = out[ch] + done;
        }
        node_run(n, ip, op, m, 0);
        done += m;
    }
    return frames;
}

/* ------------------------------------------------------------------------ */
/* plans                                                                    */

enum { STEP_NODE, STEP_COPY, STEP_SUM };

typedef struct {
    uint32_t kind, a, b;
    rt_node *node;
} rt_step;

struct rt_plan {
    uint32_t channels, max_block, buffers, max_steps, step_count, out_buffer, latency;
    int sealed;
    rt_step *steps;
    float *pool;        /* buffers * channels * max_block */
    float **ptrs;       /* buffers * channels channel pointers */
    rt_node **nodes;    /* distinct nodes, in step order */
    uint32_t node_count;
};

rt_plan *rt_plan_create(uint32_t channels, uint32_t max_block, uint32_t buffers, uint32_t max_steps)
{
    if (channels == 0 || channels > 64 || max_block == 0 || buffers == 0 || buffers > 1024 || max_steps > 65536)
        return NULL;
    rt_plan *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->channels = channels;
    p->max_block = max_block;
    p->buffers = buffers;
    p->max_steps = max_steps;
    p->steps = calloc(max_steps ? max_steps : 1, sizeof *p->steps);
    p->nodes = calloc(max_steps ? max_steps : 1, sizeof *p->nodes);
    p->pool = calloc((size_t)buffers * channels * max_block, sizeof(float));
    p->ptrs = calloc((size_t)buffers * channels, sizeof(float *));
    if (!p->steps || !p->nodes || !p->pool || !p->ptrs) {
        rt_plan_destroy(p);
        return NULL;
    }
    for (size_t i = 0; i < (size_t)buffers * channels; i++) p->ptrs[i] = p->pool + i * max_block;
    return p;
}

void rt_plan_destroy(rt_plan *p)
{
    if (!p) return;
    free(p->steps);
    free(p->nodes);
    free(p->pool);
    free(p->ptrs);
    free(p);
}

static int plan_add(rt_plan *p, uint32_t kind, rt_node *node, uint32_t a, uint32_t b)
{
    if (p->sealed || p->step_count >= p->max_steps || a >= p->buffers || b >= p->buffers) return -1;
    p->steps[p->step_count++] = (rt_step){kind, a, b, node};
    return 0;
}

int rt_plan_add_node(rt_plan *p, rt_node *node, uint32_t in_buffer, uint32_t out_buffer)
{
    if (!node || node->channels != p->channels || node->max_block != p->max_block) return -1;
    for (uint32_t i = 0; i < p->node_count; i++)
        if (p->nodes[i] == node) return -1; /* one state cannot run twice per block */
    if (plan_add(p, STEP_NODE, node, in_buffer, out_buffer) != 0) return -1;
    p->nodes[p->node_count++] = node;
    return 0;
}

int rt_plan_add_copy(rt_plan *p, uint32_t src, uint32_t dst) { return plan_add(p, STEP_COPY, NULL, src, dst); }
int rt_plan_add_sum(rt_plan *p, uint32_t src, uint32_t dst) { return plan_add(p, STEP_SUM, NULL, src, dst); }

int64_t rt_plan_finish(rt_plan *p, uint32_t out_buffer)
{
    if (p->sealed || out_buffer >= p->buffers) return -1;
    int64_t *lat = malloc(sizeof(int64_t) * p->buffers);
    if (!lat) return -1;
    for (uint32_t i = 0; i < p->buffers; i++) lat[i] = -1; /* not written yet */
    lat[0] = 0;
    int64_t result = 0;
    for (uint32_t s = 0; s < p->step_count && result == 0; s++) {
        const rt_step *st = &p->steps[s];
        if (lat[st->a] < 0) result = -1;
        else if (st->kind == STEP_NODE) lat[st->b] = lat[st->a] + st->node->latency;
        else if (st->kind == STEP_COPY) lat[st->b] = lat[st->a];
        else if (lat[st->b] != lat[st->a]) result = -1; /* summing misaligned signals */
    }
    if (result == 0 && (lat[out_buffer] < 0 || lat[out_buffer] > 0x7FFFFFFF)) result = -1;
    if (result == 0) {
        result = lat[out_buffer];
        p->latency = (uint32_t)result;
        p->out_buffer = out_buffer;
        p->sealed = 1;
    }
    free(lat);
    return result;
}

uint32_t rt_plan_latency(const rt_plan *p) { return p->latency; }
uint32_t rt_plan_step_count(const rt_plan *p) { return p->step_count; }

/* ------------------------------------------------------------------------ */
/* parameter blocks                                                         */

#define RT_APPLY_NOW UINT64_MAX

typedef struct {
    rt_node *node;
    uint32_t param_id;
    double value;
} rt_param_event;

struct rt_param_block {
    uint64_t frame;   /* RT_APPLY_NOW or an absolute executor frame */
    uint32_t count;
    rt_param_event events[];
};

rt_param_block *rt_param_block_create(uint32_t count)
{
    if (count > 65536) return NULL;
    rt_param_block *b = calloc(1, sizeof *b + sizeof(rt_param_event) * count);
    if (!b) return NULL;
    b->frame = RT_APPLY_NOW;
    b->count = count;
    return b;
}

void rt_param_block_destroy(rt_param_block *b) { free(b); }

int rt_param_block_set(rt_param_block *b, uint32_t index, rt_node *node, uint32_t param_id, double value)
{
    if (index >= b->count || !isfinite(value)) return -1;
    if (node && param_id != RT_PARAM_BYPASS && param_id >= node->param_count) return -1;
    if (!node && param_id != RT_EXEC_PARAM_INTENSITY) return -1;
    if (!node && !(value >= 0.0 && value <= 1.0)) return -1;
    b->events[index] = (rt_param_event){node, param_id, value};
    return 0;
}

void rt_param_block_schedule(rt_param_block *b, uint64_t frame) { b->frame = frame; }

/* ------------------------------------------------------------------------ */
/* executor                                                                 */

struct rt_executor {
    uint32_t channels, max_block, max_latency, queue_capacity, max_tel_nodes;
    double sample_rate;
    rt_spsc_ring commands;          /* control -> audio: rt_param_block* */
    rt_spsc_ring retired;           /* audio -> control: plans and blocks */
    _Atomic(rt_plan *) next_plan;   /* control publishes, audio takes */
    rt_plan *plan;                  /* audio-owned: the running plan */
    rt_param_block **pending;       /* scheduled, sorted by frame (FIFO on ties) */
    uint32_t pending_count;
    rt_delay *dry_delay;            /* intensity dry path, delayed by the plan latency */
    float *dry_pool;
    float **dry;
    rt_mix *mix;
    double intensity_target;
    const float **in_off;
    float **out_off;
    int timing;
    _Atomic uint64_t frames;
    atomic_uint latency;
    atomic_uint clear_peaks_request;
    unsigned clear_peaks_seen;
    rt_telemetry stats;             /* audio-owned working copy */
    /* Published copies: two slots, each under its own seqlock; the writer fills
     * the slot readers are not directed to, then points `tel_index` at it, so a
     * reader has a whole publish period to copy before its slot is touched. */
    atomic_uint tel_index;
    atomic_uint seq[2];
    rt_telemetry tel[2];
    rt_node_telemetry *tel_nodes[2];
};

rt_executor *rt_executor_create(uint32_t channels, double sample_rate, uint32_t max_block,
                                uint32_t max_latency_frames, uint32_t queue_capacity,
                                uint32_t max_telemetry_nodes, double intensity_ramp_ms, double intensity)
{
    if (channels == 0 || channels > 64 || !(sample_rate > 0.0) || !isfinite(sample_rate) || max_block == 0 ||
        max_block > (1u << 20) || queue_capacity == 0 || queue_capacity > (1u << 20) ||
        max_telemetry_nodes > 65536 || !(intensity_ramp_ms >= 0.0) || !isfinite(intensity_ramp_ms) ||
        !(intensity >= 0.0 && intensity <= 1.0))
        return NULL;
    rt_executor *ex = calloc(1, sizeof *ex);
    if (!ex) return NULL;
    ex->channels = channels;
    ex->sample_rate = sample_rate;
    ex->max_block = max_block;
    ex->max_latency = max_latency_frames;
    ex->queue_capacity = queue_capacity;
    ex->max_tel_nodes = max_telemetry_nodes;
    ex->timing = 1;
    ex->intensity_target = intensity;
    atomic_init(&ex->next_plan, NULL);
    atomic_init(&ex->frames, 0);
    atomic_init(&ex->latency, 0);
    atomic_init(&ex->clear_peaks_request, 0);
    atomic_init(&ex->tel_index, 0);
    atomic_init(&ex->seq[0], 0);
    atomic_init(&ex->seq[1], 0);
    int ok = rt_spsc_ring_init(&ex->commands, queue_capacity) == 0;
    ok = ok && rt_spsc_ring_init(&ex->retired, 2 * queue_capacity + 4) == 0;
    ex->pending = calloc(queue_capacity, sizeof *ex->pending);
    ex->dry_delay = rt_delay_create(channels, max_latency_frames, 0);
    ex->dry_pool = calloc((size_t)channels * max_block, sizeof(float));
    ex->dry = calloc(channels, sizeof(float *));
    ex->in_off = calloc(channels, sizeof(float *));
    ex->out_off = calloc(channels, sizeof(float *));
    ex->mix = rt_mix_create(channels, sample_rate, intensity_ramp_ms, intensity);
    for (int k = 0; k < 2; k++) ex->tel_nodes[k] = calloc(max_telemetry_nodes ? max_telemetry_nodes : 1, sizeof(rt_node_telemetry));
    if (!ok || !ex->pending || !ex->dry_delay || !ex->dry_pool || !ex->dry || !ex->in_off || !ex->out_off ||
        !ex->mix || !ex->tel_nodes[0] || !ex->tel_nodes[1]) {
        rt_executor_destroy(ex);
        return NULL;
    }
    for (uint32_t ch = 0; ch < channels; ch++) ex->dry[ch] = ex->dry_pool + (size_t)ch * max_block;
    ex->stats.intensity = intensity;
    return ex;
}

void rt_executor_destroy(rt_executor *ex)
{
    if (!ex) return;
    if (ex->commands.slots) rt_spsc_ring_free(&ex->commands);
    if (ex->retired.slots) rt_spsc_ring_free(&ex->retired);
    free(ex->pending);
    rt_delay_destroy(ex->dry_delay);
    free(ex->dry_pool);
    free(ex->dry);
    free(ex->in_off);
    free(ex->out_off);
    rt_mix_destroy(ex->mix);
    free(ex->tel_nodes[0]);
    free(ex->tel_nodes[1]);
    free(ex);
}

/* --- control side -------------------------------------------------------- */

int rt_executor_publish(rt_executor *ex, rt_param_block *block)
{
    if (!block) return -1;
    return rt_spsc_ring_push(&ex->commands, block);
}

int rt_executor_swap_plan(rt_executor *ex, rt_plan *plan, rt_plan **displaced)
{
    if (displaced) *displaced = NULL;
    if (!plan || !plan->sealed || plan->channels != ex->channels || plan->max_block != ex->max_block ||
        plan->latency > ex->max_latency)
        return -1;
    /* acq_rel: the plan's contents are visible to the audio thread before the
     * pointer is, and a displaced plan is safely ours again. */
    rt_plan *old = atomic_exchange_explicit(&ex->next_plan, plan, memory_order_acq_rel);
    if (displaced) *displaced = old;
    return 0;
}

void *rt_executor_collect(rt_executor *ex) { return rt_spsc_ring_pop(&ex->retired); }

int rt_executor_read_telemetry(rt_executor *ex, rt_telemetry *dst, rt_node_telemetry *nodes, uint32_t node_capacity)
{
    for (int attempt = 0; attempt < 100000; attempt++) {
        unsigned k = atomic_load_explicit(&ex->tel_index, memory_order_acquire);
        unsigned s1 = atomic_load_explicit(&ex->seq[k], memory_order_acquire);
        if (!(s1 & 1u)) {
            *dst = ex->tel[k];
            uint32_t n = dst->node_count < node_capacity ? dst->node_count : node_capacity;
            if (n > ex->max_tel_nodes) n = ex->max_tel_nodes;
            if (nodes && n) memcpy(nodes, ex->tel_nodes[k], sizeof *nodes * n);
            atomic_thread_fence(memory_order_acquire);
            unsigned s2 = atomic_load_explicit(&ex->seq[k], memory_order_relaxed);
            if (s1 == s2) return (int)n;
        }
        if (attempt % 64 == 63) sched_yield(); /* control thread: let the writer finish */
    }
    return -1;
}

void rt_executor_clear_peaks(rt_executor *ex)
{
    atomic_fetch_add_explicit(&ex->clear_peaks_request, 1u, memory_order_relaxed);
}

uint64_t rt_executor_frames(const rt_executor *ex)
{
    return atomic_load_explicit(&((rt_executor *)ex)->frames, memory_order_relaxed);
}

uint32_t rt_executor_latency(const rt_executor *ex)
{
    return atomic_load_explicit(&((rt_executor *)ex)->latency, memory_order_relaxed);
}

void rt_executor_set_timing(rt_executor *ex, int enabled) { ex->timing = enabled != 0; }

static void retire(rt_executor *ex, void *object)
{
    /* Cannot fail while the control side keeps at most queue_capacity objects
     * in flight (the ring holds twice that). */
    rt_spsc_ring_push(&ex->retired, object);
}

static void reset_history(rt_executor *ex)
{
    if (ex->plan)
        for (uint32_t i = 0; i < ex->plan->node_count; i++) node_reset(ex->plan->nodes[i]);
    rt_delay_reset(ex->dry_delay);
    rt_mix_reset(ex->mix);
}

void rt_executor_reset(rt_executor *ex)
{
    reset_history(ex);
    for (uint32_t i = 0; i < ex->pending_count; i++) retire(ex, ex->pending[i]);
    ex->pending_count = 0;
    atomic_store_explicit(&ex->frames, 0, memory_order_relaxed);
    ex->stats.frames = 0;
}

/* --- audio side ---------------------------------------------------------- */

static void apply_block(rt_executor *ex, rt_param_block *b)
{
    for (uint32_t i = 0; i < b->count; i++) {
        const rt_param_event *e = &b->events[i];
        if (e->node) {
            node_apply(e->node, e->param_id, e->value);
        } else if (e->param_id == RT_EXEC_PARAM_INTENSITY) {
            ex->intensity_target = e->value;
            rt_mix_set_amount(ex->mix, e->value);
        }
    }
    ex->stats.param_blocks++;
    retire(ex, b);
}

void rt_executor_apply_now(rt_executor *ex, rt_param_block *block) { apply_block(ex, block); }
void rt_executor_drop(rt_executor *ex, rt_param_block *block) { retire(ex, block); }

static void drain_commands(rt_executor *ex, uint64_t now)
{
    rt_param_block *b;
    while ((b = rt_spsc_ring_pop(&ex->commands)) != NULL) {
        if (b->frame == RT_APPLY_NOW) {
            apply_block(ex, b);
            continue;
        }
        if (b->frame < now) ex->stats.late_param_blocks++;
        if (ex->pending_count >= ex->queue_capacity) { /* only if the control side over-fills */
            apply_block(ex, b);
            continue;
        }
        uint32_t i = ex->pending_count++;
        while (i > 0 && ex->pending[i - 1]->frame > b->frame) {
            ex->pending[i] = ex->pending[i - 1];
            i--;
        }
        ex->pending[i] = b;
    }
}

static void take_plan(rt_executor *ex)
{
    if (atomic_load_explicit(&ex->next_plan, memory_order_relaxed) == NULL) return;
    rt_plan *p = atomic_exchange_explicit(&ex->next_plan, NULL, memory_order_acq_rel);
    if (!p) return;
    if (ex->plan) retire(ex, ex->plan);
    ex->plan = p;
    rt_delay_set_frames(ex->dry_delay, p->latency);
    atomic_store_explicit(&ex->latency, p->latency, memory_order_relaxed);
    ex->stats.plan_swaps++;
}

static void publish_telemetry(rt_executor *ex)
{
    unsigned k = 1u - atomic_load_explicit(&ex->tel_index, memory_order_relaxed);
    unsigned s = atomic_load_explicit(&ex->seq[k], memory_order_relaxed);
    atomic_store_explicit(&ex->seq[k], s + 1u, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    ex->tel[k] = ex->stats;
    uint32_t n = 0;
    if (ex->plan) {
        for (uint32_t i = 0; i < ex->plan->node_count && n < ex->max_tel_nodes; i++, n++) {
            const rt_node *node = ex->plan->nodes[i];
            ex->tel_nodes[k][n] = (rt_node_telemetry){node->id, node->latency, node->peak_last, node->peak_hold,
                                                      node->cost_last, node->cost_total, node->frames};
        }
    }
    ex->tel[k].node_count = n;
    atomic_store_explicit(&ex->seq[k], s + 2u, memory_order_release);
    atomic_store_explicit(&ex->tel_index, k, memory_order_release);
}

static void run_block(rt_executor *ex, uint32_t offset, uint32_t n)
{
    const uint32_t C = ex->channels;
    rt_plan *p = ex->plan;
    for (uint32_t ch = 0; ch < C; ch++) {
        ex->out_off[ch] = ex->out_off[ch] + offset;
        ex->in_off[ch] = ex->in_off[ch] + offset;
    }
    const float *const *in = ex->in_off;
    float *const *out = ex->out_off;

    /* Intensity dry path first: in may alias out. */
    rt_delay_process(ex->dry_delay, in, ex->dry, n);

    const float *const *wet = in;
    if (p && p->step_count) {
        float **buf0 = p->ptrs;
        for (uint32_t ch = 0; ch < C; ch++) memcpy(buf0[ch], in[ch], sizeof(float) * n);
        for (uint32_t s = 0; s < p->step_count; s++) {
            const rt_step *st = &p->steps[s];
            float **a = p->ptrs + (size_t)st->a * C, **b = p->ptrs + (size_t)st->b * C;
            if (st->kind == STEP_NODE) {
                node_run(st->node, (const float *const *)a, b, n, ex->timing);
            } else if (st->kind == STEP_COPY) {
                for (uint32_t ch = 0; ch < C; ch++) memcpy(b[ch], a[ch], sizeof(float) * n);
            } else {
                for (uint32_t ch = 0; ch < C; ch++) {
                    const float *x = a[ch];
                    float *y = b[ch];
                    for (uint32_t i = 0; i < n; i++) y[i] += x[i];
                }
            }
        }
        wet = (const float *const *)(p->ptrs + (size_t)p->out_buffer * C);
    } else if (p) {
        wet = (const float *const *)(p->ptrs + (size_t)p->out_buffer * C);
        for (uint32_t ch = 0; ch < C; ch++) memcpy(p->ptrs[ch], in[ch], sizeof(float) * n);
    }

    const double now = rt_mix_current(ex->mix);
    if (now == ex->intensity_target && (now == 0.0 || now == 1.0)) {
        /* Settled at an end: copy, so intensity 0 is the delayed input bit for bit. */
        const float *const *src = now == 0.0 ? (const float *const *)ex->dry : wet;
        for (uint32_t ch = 0; ch < C; ch++)
            if (out[ch] != src[ch]) memcpy(out[ch], src[ch], sizeof(float) * n);
    } else {
        rt_mix_process(ex->mix, (const float *const *)ex->dry, wet, out, n);
    }
    ex->stats.intensity = rt_mix_current(ex->mix);

    /* Live-path guard: nothing non-finite leaves the executor. */
    uint32_t peak = 0;
    for (uint32_t ch = 0; ch < C; ch++) peak = peak_bits(out[ch], n, peak);
    if (peak >= 0x7f800000u) {
        for (uint32_t ch = 0; ch < C; ch++) memset(out[ch], 0, sizeof(float) * n);
        reset_history(ex);
        ex->stats.nonfinite_blocks++;
        peak = 0;
    }
    ex->stats.peak_last = bits_to_float(peak);
    if (!(ex->stats.peak_last <= ex->stats.peak_hold)) ex->stats.peak_hold = ex->stats.peak_last;
}

uint32_t rt_executor_process(rt_executor *ex, const float *const *in, float *const *out, uint32_t frames)
{
    uint64_t t0 = ex->timing ? now_ns() : 0;
    uint64_t now = atomic_load_explicit(&ex->frames, memory_order_relaxed);
    unsigned clear = atomic_load_explicit(&ex->clear_peaks_request, memory_order_relaxed);
    if (clear != ex->clear_peaks_seen) {
        ex->clear_peaks_seen = clear;
        ex->stats.peak_hold = 0.0f;
        if (ex->plan)
            for (uint32_t i = 0; i < ex->plan->node_count; i++) ex->plan->nodes[i]->peak_hold = 0.0f;
    }
    uint32_t done = 0;
    do {
        drain_commands(ex, now);
        take_plan(ex);
        while (ex->pending_count && ex->pending[0]->frame <= now) {
            rt_param_block *b = ex->pending[0];
            memmove(ex->pending, ex->pending + 1, sizeof *ex->pending * --ex->pending_count);
            apply_block(ex, b);
        }
        uint32_t n = frames - done;
        if (n > ex->max_block) n = ex->max_block;
        if (ex->pending_count && ex->pending[0]->frame - now < n) n = (uint32_t)(ex->pending[0]->frame - now);
        if (n == 0) break;
        for (uint32_t ch = 0; ch < ex->channels; ch++) {
            ex->in_off[ch] = in[ch];
            ex->out_off[ch] = out[ch];
        }
        run_block(ex, done, n);
        done += n;
        now += n;
        ex->stats.blocks++;
        ex->stats.frames = now;
        atomic_store_explicit(&ex->frames, now, memory_order_relaxed);
    } while (done < frames);
    if (ex->timing && frames) {
        ex->stats.cost_ns_last = now_ns() - t0;
        /* Ardour-style load: up at once, down with a ~20-call time constant. */
        double load = (double)ex->stats.cost_ns_last * ex->sample_rate / (1e9 * (double)frames);
        double prev = ex->stats.dsp_load;
        ex->stats.dsp_load = load > prev ? load : prev + 0.05 * (load - prev);
    }
    ex->stats.latency_frames = ex->plan ? ex->plan->latency : 0;
    publish_telemetry(ex);
    return frames;
}
