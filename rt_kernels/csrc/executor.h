/* The graph executor: runs a compiled plan of kernel steps over a preallocated
 * buffer pool, fed from the control thread without locks.
 *
 * Threads (see ARCHITECTURE.md):
 *   audio    rt_executor_process() only.
 *   control  everything else; one control thread at a time (the Python
 *            Executor serialises its callers with a lock -- the audio side
 *            never waits on it).
 * Ownership: nodes, plans and parameter blocks are created and destroyed by
 * the control side.  The executor only borrows them; what the audio thread
 * has stopped using comes back through rt_executor_collect(). */
#ifndef RT_EXECUTOR_H
#define RT_EXECUTOR_H
#include <stdint.h>

/* cffi:begin */
/* ---- nodes: a kernel behind a small ops table ------------------------- */

/* How a kernel plugs into the executor.  `state` is the kernel's own struct
 * (or an adapter struct around it).  process follows the kernel convention
 * (in may equal out; any frame count incl. 0; block-size invariant).
 * set_param: audio-thread safe, no allocation; a value it cannot take returns
 * -1 and changes nothing.  latency must stay constant while the node is in a
 * plan.  destroy frees the state (called by rt_node_destroy). */
typedef struct rt_node_ops {
    const char *name;
    uint32_t (*process)(void *state, const float *const *in, float *const *out, uint32_t frames);
    void (*reset)(void *state);
    uint32_t (*latency)(const void *state);
    int (*set_param)(void *state, uint32_t param_id, double value);
    void (*destroy)(void *state);
} rt_node_ops;

typedef struct rt_node rt_node;

enum {
    /* Node-level parameter handled by the executor itself: 0 = active,
     * 1 = bypassed (output = input delayed by the node's latency).  The change
     * is a linear crossfade of bypass_fade_frames. */
    RT_PARAM_BYPASS = 0x7FFFFFFF,
    /* Executor-level parameter (event node = NULL): global dry/wet 0..1. */
    RT_EXEC_PARAM_INTENSITY = 0
};

/* Control thread.  Takes ownership of `state` (destroyed with ops->destroy,
 * also when creation fails).  node_id is a tag reported in telemetry.
 * max_block must match the executor's. */
rt_node *rt_node_create(const rt_node_ops *ops, void *state, uint32_t node_id, uint32_t channels,
                        uint32_t param_count, uint32_t max_block, uint32_t bypass_fade_frames);
void rt_node_destroy(rt_node *n);
/* Control thread, before the node is published in a plan.  ramp_frames > 0:
 * the executor ramps the parameter linearly (in its own units) over that time,
 * re-calling set_param every RT_RAMP_CHUNK frames; 0: the value is handed to the
 * kernel at once (jumps, or the kernel's own smoothing, e.g. rt_gain). */
int rt_node_set_smoothing(rt_node *n, uint32_t param_id, uint32_t ramp_frames);
/* Control thread, before the node is published: set a value directly (no ramp). */
int rt_node_init_param(rt_node *n, uint32_t param_id, double value);
/* The value the executor last gave the kernel (mid-ramp: the ramp's position). */
double rt_node_param_current(const rt_node *n, uint32_t param_id);
uint32_t rt_node_latency(const rt_node *n);
uint32_t rt_node_channels(const rt_node *n);
uint32_t rt_node_id(const rt_node *n);
void *rt_node_state(rt_node *n);
/* Not while the node is in a running plan. */
void rt_node_reset(rt_node *n);
/* Run one node standalone (tests and offline tools; same path as the plan). */
uint32_t rt_node_process(rt_node *n, const float *const *in, float *const *out, uint32_t frames);

/* ---- plans: ordered steps over a buffer pool --------------------------- */

typedef struct rt_plan rt_plan;
/* Control thread.  Buffer 0 receives the input block; `buffers` includes it. */
rt_plan *rt_plan_create(uint32_t channels, uint32_t max_block, uint32_t buffers, uint32_t max_steps);
void rt_plan_destroy(rt_plan *p);
/* Steps, executed in the order added.  Each returns 0, or -1 (bad index, wrong
 * channel count, too many steps). */
int rt_plan_add_node(rt_plan *p, rt_node *node, uint32_t in_buffer, uint32_t out_buffer);
int rt_plan_add_copy(rt_plan *p, uint32_t src_buffer, uint32_t dst_buffer);
int rt_plan_add_sum(rt_plan *p, uint32_t src_buffer, uint32_t dst_buffer);  /* dst += src */
/* Seal the plan: its output is out_buffer.  Tracks each buffer's latency
 * through the steps; returns the plan latency in frames, or -1 if a sum adds
 * two signals of different latency (missing delay compensation) or a buffer
 * is read before it is written. */
int64_t rt_plan_finish(rt_plan *p, uint32_t out_buffer);
uint32_t rt_plan_latency(const rt_plan *p);
uint32_t rt_plan_step_count(const rt_plan *p);

/* ---- parameter blocks: one consistent snapshot ------------------------ */

typedef struct rt_param_block rt_param_block;
rt_param_block *rt_param_block_create(uint32_t count);
void rt_param_block_destroy(rt_param_block *b);
/* node NULL addresses the executor (RT_EXEC_PARAM_*). */
int rt_param_block_set(rt_param_block *b, uint32_t index, rt_node *node, uint32_t param_id, double value);
/* Apply at absolute executor frame `frame` (frames processed since create or
 * reset) instead of at the start of the next block. */
void rt_param_block_schedule(rt_param_block *b, uint64_t frame);

/* ---- telemetry --------------------------------------------------------- */

typedef struct rt_node_telemetry {
    uint32_t node_id;
    uint32_t latency_frames;
    float peak_last;        /* max |output| over channels in the last block */
    float peak_hold;        /* max |output| since the last clear */
    uint64_t cost_ns_last;  /* CLOCK_MONOTONIC time of the node in the last block */
    uint64_t cost_ns_total;
    uint64_t frames;        /* frames the node has processed */
} rt_node_telemetry;

typedef struct rt_telemetry {
    uint64_t frames;            /* executor frame counter */
    uint64_t blocks;            /* internal blocks run */
    uint64_t nonfinite_blocks;  /* blocks silenced by the non-finite guard */
    uint64_t plan_swaps;        /* plans taken over by the audio thread */
    uint64_t param_blocks;      /* parameter blocks applied */
    uint64_t late_param_blocks; /* scheduled for a frame already past: applied at once */
    uint64_t cost_ns_last;      /* whole rt_executor_process call */
    double dsp_load;            /* cost / duration of the frames processed, 1 = all
                                   of real time; rises at once, decays slowly */
    uint32_t latency_frames;    /* of the running plan */
    uint32_t node_count;        /* valid entries in the node array */
    double intensity;           /* current (mid-ramp) dry/wet */
    float peak_last;            /* executor output */
    float peak_hold;
} rt_telemetry;

/* ---- the executor ------------------------------------------------------ */

typedef struct rt_executor rt_executor;
/* Control thread.  queue_capacity bounds the objects in flight (published
 * parameter blocks + pending scheduled blocks + plans); max_latency_frames
 * bounds a plan's latency (the intensity dry path is preallocated for it).
 * intensity: the starting dry/wet (0..1), in effect from the first frame. */
rt_executor *rt_executor_create(uint32_t channels, double sample_rate, uint32_t max_block,
                                uint32_t max_latency_frames, uint32_t queue_capacity,
                                uint32_t max_telemetry_nodes, double intensity_ramp_ms, double intensity);
/* Not while the audio thread runs.  Does not free plans, nodes or blocks. */
void rt_executor_destroy(rt_executor *ex);

/* AUDIO THREAD.  Any frame count; in and out are planar channel pointers
 * (`channels` each); out may be the same buffers as in.  Returns frames. */
uint32_t rt_executor_process(rt_executor *ex, const float *const *in, float *const *out, uint32_t frames);
/* AUDIO THREAD, between two rt_executor_process calls: apply a snapshot the
 * control side prepared but did not publish (handed over through a source's own
 * ring, e.g. the player's track-boundary markers), so it takes effect exactly at
 * the next frame; or drop one without applying it.  Either way the block comes
 * back through rt_executor_collect(). */
void rt_executor_apply_now(rt_executor *ex, rt_param_block *block);
void rt_executor_drop(rt_executor *ex, rt_param_block *block);

/* Control thread, lock-free against the audio thread. */
/* Queue a snapshot; returns 0, or -1 if the queue is full (collect, retry). */
int rt_executor_publish(rt_executor *ex, rt_param_block *block);
/* Publish a sealed plan (one atomic pointer exchange).  Returns 0; -1 if the
 * plan's channels, max_block or latency do not fit the executor.  If a plan
 * published earlier was never picked up by the audio thread, it is returned in
 * *displaced (the caller frees it); otherwise *displaced is NULL. */
int rt_executor_swap_plan(rt_executor *ex, rt_plan *plan, rt_plan **displaced);
/* One object the audio thread no longer uses (an rt_plan* or rt_param_block*
 * previously handed in), or NULL.  Call until NULL; free what comes back. */
void *rt_executor_collect(rt_executor *ex);
/* Consistent copy of the telemetry as of the end of the last
 * rt_executor_process call (double-buffered seqlock); up to node_capacity node
 * records.  Returns the number of node records, or -1 if no consistent copy
 * could be made (the audio thread kept overwriting it). */
int rt_executor_read_telemetry(rt_executor *ex, rt_telemetry *dst, rt_node_telemetry *nodes, uint32_t node_capacity);
void rt_executor_clear_peaks(rt_executor *ex);
/* Frames processed (atomic). */
uint64_t rt_executor_frames(const rt_executor *ex);
uint32_t rt_executor_latency(const rt_executor *ex);
/* Not while the audio thread runs: frame counter to 0, history of the running
 * plan's nodes and of the dry path cleared, pending scheduled blocks retired. */
void rt_executor_reset(rt_executor *ex);
void rt_executor_set_timing(rt_executor *ex, int enabled);
/* cffi:end */

#define RT_RAMP_CHUNK 16
#endif
