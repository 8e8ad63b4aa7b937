/* The JACK host glue: a C process callback that runs a published process
 * function on the port buffers, plus the other JACK callbacks (buffer size,
 * sample rate, latency, xrun, shutdown, freewheel) and lock-free telemetry.
 *
 * Threads:
 *   audio         the JACK process callback (on_process in jack_host.c):
 *                 no allocation, no locks, no Python, no I/O, no waiting.
 *   notification  JACK's other callbacks (xrun, latency, shutdown, sample
 *                 rate, freewheel): set atomics only.
 *   control       every rt_jack_* function below, one control thread at a
 *                 time (the Python JackBackend serialises its callers).
 *
 * The JACK client itself is opened, and its ports registered, by JACK-Client
 * on the control side; rt_jack_host_attach() installs our C callbacks on it
 * before activation.  Both use the same libjack in the process. */
#ifndef RT_JACK_HOST_H
#define RT_JACK_HOST_H
#include <stdint.h>
#include <stddef.h>

/* cffi:begin */
typedef struct _jack_client jack_client_t;
typedef struct _jack_port jack_port_t;

/* What the audio callback runs: planar float32 channel pointers, `frames`
 * each; returns the frames written (anything short is zero-filled).  The
 * graph executor's rt_executor_process has this shape with ctx = executor. */
typedef uint32_t (*rt_process_fn)(void *ctx, const float *const *in, float *const *out, uint32_t frames);

typedef struct rt_jack_stats {
    uint64_t callbacks;          /* process callbacks run since attach / reset */
    uint64_t frames;             /* frames processed */
    uint64_t xruns;              /* JACK xrun notifications */
    uint64_t short_blocks;       /* process fn returned fewer frames than asked */
    uint64_t process_swaps;      /* process functions taken over by the audio thread */
    uint64_t cost_ns_last;       /* duration of the last callback */
    uint64_t cost_ns_max;
    uint64_t cost_ns_p50;        /* upper edge of the histogram bucket (<= 3.2 % above) */
    uint64_t cost_ns_p99;
    uint64_t timed_callbacks;    /* callbacks in the histogram (freewheel ones are not) */
    double dsp_load;             /* callback time / period, fast attack, slow decay */
    uint32_t period_frames;      /* current JACK buffer size */
    uint32_t sample_rate;
    uint32_t latency_frames;     /* what the latency callback adds on our ports */
    uint32_t buffer_size_changes;
    uint32_t sample_rate_changes;
    int freewheel;               /* 1 while JACK freewheels */
    int shut_down;               /* 1 once the server has gone away */
    int has_process;             /* 1 if the running process fn is non-NULL */
} rt_jack_stats;

typedef struct rt_jack_host rt_jack_host;

/* Control thread.  n_in / n_out: 0..256 ports.  retire_capacity: process
 * functions that may wait in the retire ring (power of two is not required). */
rt_jack_host *rt_jack_host_create(uint32_t n_in, uint32_t n_out, uint32_t retire_capacity);
/* After the client is closed (or never attached).  Frees every process record. */
void rt_jack_host_destroy(rt_jack_host *h);

/* Before jack_activate: remember the client and its ports (arrays of n_in /
 * n_out pointers, copied) and install all callbacks.  Clears the shutdown
 * flag and the telemetry.  Returns 0, or -1 naming no reason (bad arguments)
 * or the negative count of jack_set_* calls that failed. */
int rt_jack_host_attach(rt_jack_host *h, jack_client_t *client, jack_port_t **in_ports, jack_port_t **out_ports);
/* After jack_client_close: no callback can run any more.  Moves the running
 * process function back to "pending", so a later attach runs it again. */
void rt_jack_host_detach(rt_jack_host *h);

/* Publish {fn, ctx} (fn may be NULL: silence).  token (>= 1) names the record
 * for the caller's keep-alive bookkeeping.  If an earlier record was never
 * picked up by the audio thread, it is freed and its token is stored in
 * *displaced (else 0).  Returns 0, or -1 when out of memory or the retire ring
 * could overflow (collect, then retry). */
int rt_jack_host_set_process(rt_jack_host *h, rt_process_fn fn, void *ctx, uint64_t token, uint64_t *displaced);
/* One record the audio thread has stopped using: frees it and returns its
 * token, or 0 when there is none.  Call until 0. */
uint64_t rt_jack_host_collect(rt_jack_host *h);
/* Token of the record the audio thread runs (or will run next), 0 if none. */
uint64_t rt_jack_host_current_token(rt_jack_host *h);

/* The latency our process adds, in frames; reported on the ports by the
 * latency callback.  Call jack_recompute_total_latencies afterwards
 * (rt_jack_recompute_latencies) so JACK asks again. */
void rt_jack_host_set_latency(rt_jack_host *h, uint32_t frames);
int rt_jack_recompute_latencies(jack_client_t *client);

/* Seqlock snapshot (retries a few times); 0, or -1 if the audio thread kept
 * writing.  Percentiles are computed here, on the calling thread. */
int rt_jack_host_read_stats(rt_jack_host *h, rt_jack_stats *dst);
/* Ask the audio thread to clear the histogram, max and counters of callbacks
 * and frames at its next cycle (xruns are kept). */
void rt_jack_host_reset_stats(rt_jack_host *h);
/* 1 once the audio thread has carried out the last reset request. */
int rt_jack_host_reset_done(rt_jack_host *h);
/* Copies the server's shutdown reason (NUL-terminated, truncated to cap). */
size_t rt_jack_host_shutdown_reason(rt_jack_host *h, char *buf, size_t cap);

/* Latency range of any port (mode 0 = capture, 1 = playback). */
void rt_jack_port_latency_range(jack_port_t *port, int mode, uint32_t *min_frames, uint32_t *max_frames);

/* Real-time hygiene helpers (control thread).
 * rt_jack_lock_memory: mlockall(MCL_CURRENT | MCL_FUTURE); 0 or errno.
 * rt_jack_thread_policy: scheduling policy and priority of the client's
 * process thread (SCHED_OTHER = 0, SCHED_FIFO = 1, SCHED_RR = 2); 0 or -1. */
int rt_jack_lock_memory(void);
int rt_jack_thread_policy(jack_client_t *client, int *policy, int *priority);

/* PortAudio through the same host (python-sounddevice opens the stream with
 * rt_host_pa_callback as its C callback and the host as userdata; interleaved
 * float32, fixed block size).  prepare: control thread, before the stream
 * starts: scratch for max_frames (longer callbacks are processed in pieces),
 * the sample rate for the DSP load; clears the telemetry.  The callback counts
 * PortAudio's under/overflow flags as xruns. */
int rt_host_pa_prepare(rt_jack_host *h, uint32_t sample_rate, uint32_t max_frames);
int rt_host_pa_callback(const void *input, void *output, unsigned long frames, const void *time_info,
                        unsigned long status_flags, void *user);

/* A process function: copies min(n_in, n_out) channels; ctx points to a
 * uint32_t holding that channel count.  Monitoring without a chain. */
uint32_t rt_jack_passthrough(void *ctx, const float *const *in, float *const *out, uint32_t frames);
/* cffi:end */
#endif
