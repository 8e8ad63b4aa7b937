/* JACK host glue.  See jack_host.h for the threads and the contract. */
#define _GNU_SOURCE
#include "jack_host.h"

#include <errno.h>
#include <jack/jack.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#if defined(__SSE2__) || defined(__x86_64__)
#include <xmmintrin.h>
#endif

#define MAX_PORTS 256u
#define REASON_CAP 256u
/* DSP load: rises at once, decays with this time constant. */
#define LOAD_DECAY_SECONDS 0.5
/* Cost histogram: values below 32 ns get one bucket each; above, 32 buckets
 * per octave (relative width 1/32).  Octaves up to 2^37 ns (~137 s). */
#define HIST_SUB 32u
#define HIST_OCTAVES 33u
#define HIST_BUCKETS (HIST_SUB + HIST_SUB * HIST_OCTAVES)

/* Interposition hooks for the LD_PRELOAD real-time checker (tests): weak, so
 * they are NULL unless a preloaded library defines them.  They bracket the
 * part of the callback that our code and the process function run in. */
extern void rtcheck_enter(void) __attribute__((weak));
extern void rtcheck_leave(void) __attribute__((weak));

typedef struct rt_jack_proc {
    rt_process_fn fn;
    void *ctx;
    uint64_t token;
} rt_jack_proc;

struct rt_jack_host {
    uint32_t n_in, n_out;
    jack_client_t *client;
    jack_port_t *in_ports[MAX_PORTS];
    jack_port_t *out_ports[MAX_PORTS];

    /* Audio-thread private. */
    const float *in_bufs[MAX_PORTS];
    float *out_bufs[MAX_PORTS];
    rt_jack_proc *active;
    uint32_t load_frames, load_rate; /* what load_period_ns / load_alpha were computed for */
    double load_period_ns, load_alpha, load;

    /* control -> audio */
    _Atomic(rt_jack_proc *) pending;
    atomic_uint_fast64_t reset_req, reset_ack;
    atomic_uint latency_frames;

    /* audio -> control: retired process records (SPSC ring). */
    rt_jack_proc **ring;
    uint32_t ring_cap;
    _Alignas(64) atomic_size_t ring_head; /* consumer (control) */
    _Alignas(64) atomic_size_t ring_tail; /* producer (audio; control only when detached) */
    atomic_uint_fast64_t current_token;
    atomic_int has_fn;

    /* Telemetry written by the audio thread under the seqlock. */
    _Alignas(64) atomic_uint seq;
    atomic_uint_fast64_t callbacks, frames, short_blocks, swaps, cost_last, cost_max, timed;
    _Atomic double dsp_load;
    atomic_uint_fast64_t hist[HIST_BUCKETS];

    /* Written by notification threads. */
    atomic_uint_fast64_t xruns;
    atomic_uint period_frames, sample_rate, bufsize_changes, rate_changes;
    atomic_int freewheel, shut_down;
    char reason[REASON_CAP];

    /* PortAudio: planar scratch for (n_in + n_out) channels of pa_max_frames. */
    float *pa_scratch;
    uint32_t pa_max_frames;
};

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void denormals_on(void)
{
#if defined(__SSE2__) || defined(__x86_64__)
    unsigned int csr = _mm_getcsr();
    if ((csr & 0x8040u) != 0x8040u) _mm_setcsr(csr | 0x8040u); /* FTZ | DAZ */
#elif defined(__aarch64__)
    uint64_t v;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(v));
    if (!(v & (1ull << 24))) __asm__ __volatile__("msr fpcr, %0" : : "r"(v | (1ull << 24)));
#endif
}

static inline uint32_t hist_bucket(uint64_t ns)
{
    if (ns < HIST_SUB) return (uint32_t)ns;
    uint32_t e = 63u - (uint32_t)__builtin_clzll(ns); /* >= 5 */
    uint32_t octave = e - 5u;
    if (octave >= HIST_OCTAVES) return HIST_BUCKETS - 1u;
    uint32_t sub = (uint32_t)(ns >> octave) & (HIST_SUB - 1u);
    return HIST_SUB + octave * HIST_SUB + sub;
}

/* Largest value that falls into bucket b. */
static uint64_t hist_upper(uint32_t b)
{
    if (b < HIST_SUB) return b;
    uint32_t octave = (b - HIST_SUB) / HIST_SUB, sub = (b - HIST_SUB) % HIST_SUB;
    uint64_t lo = ((uint64_t)(HIST_SUB + sub)) << octave;
    return lo + (1ull << octave) - 1u;
}

#define RELAXED memory_order_relaxed
#define BUMP(field, by) atomic_store_explicit(&(field), atomic_load_explicit(&(field), RELAXED) + (by), RELAXED)

static size_t ring_count(rt_jack_host *h)
{
    return atomic_load_explicit(&h->ring_tail, memory_order_acquire) -
           atomic_load_explicit(&h->ring_head, memory_order_acquire);
}

static void ring_push(rt_jack_host *h, rt_jack_proc *p) /* caller checked room */
{
    size_t t = atomic_load_explicit(&h->ring_tail, RELAXED);
    h->ring[t % h->ring_cap] = p;
    atomic_store_explicit(&h->ring_tail, t + 1, memory_order_release);
}

/* ---- callbacks ---------------------------------------------------------- */

static void clear_stats_audio(rt_jack_host *h)
{
    atomic_store_explicit(&h->callbacks, 0, RELAXED);
    atomic_store_explicit(&h->frames, 0, RELAXED);
    atomic_store_explicit(&h->short_blocks, 0, RELAXED);
    atomic_store_explicit(&h->cost_last, 0, RELAXED);
    atomic_store_explicit(&h->cost_max, 0, RELAXED);
    atomic_store_explicit(&h->timed, 0, RELAXED);
    for (uint32_t i = 0; i < HIST_BUCKETS; i++) atomic_store_explicit(&h->hist[i], 0, RELAXED);
    h->load = 0.0;
    atomic_store_explicit(&h->dsp_load, 0.0, RELAXED);
}

/* Audio thread: adopt a newly published process function if the retire ring
 * has room for the one it replaces (else try again next cycle). */
static void take_pending(rt_jack_host *h)
{
    if (atomic_load_explicit(&h->pending, RELAXED) && ring_count(h) < h->ring_cap) {
        rt_jack_proc *p = atomic_exchange_explicit(&h->pending, NULL, memory_order_acq_rel);
        if (p) {
            if (h->active) ring_push(h, h->active);
            h->active = p;
            atomic_store_explicit(&h->current_token, p->token, RELAXED);
            atomic_store_explicit(&h->has_fn, p->fn != NULL, RELAXED);
            BUMP(h->swaps, 1);
        }
    }
}

/* Audio thread: the process function on h->in_bufs / h->out_bufs, zero-filling
 * what it did not write.  Returns 1 if it came up short. */
static int run_process(rt_jack_host *h, uint32_t nframes)
{
    uint32_t done = 0;
    int is_short = 0;
    if (h->active && h->active->fn) {
        done = h->active->fn(h->active->ctx, h->in_bufs, h->out_bufs, nframes);
        if (done > nframes) done = nframes;
        is_short = done < nframes;
    }
    if (done < nframes)
        for (uint32_t c = 0; c < h->n_out; c++) memset(h->out_bufs[c] + done, 0, (size_t)(nframes - done) * sizeof(float));
    return is_short;
}

/* Audio thread: telemetry of one callback, under the seqlock. */
static void record_cycle(rt_jack_host *h, uint32_t nframes, uint64_t cost, int shorts)
{
    int freewheeling = atomic_load_explicit(&h->freewheel, RELAXED);
    uint32_t rate = atomic_load_explicit(&h->sample_rate, RELAXED);
    if (nframes != h->load_frames || rate != h->load_rate) {
        h->load_frames = nframes;
        h->load_rate = rate;
        h->load_period_ns = rate ? 1e9 * (double)nframes / (double)rate : 0.0;
        h->load_alpha = rate ? 1.0 - exp(-(double)nframes / ((double)rate * LOAD_DECAY_SECONDS)) : 1.0;
    }

    atomic_fetch_add_explicit(&h->seq, 1, RELAXED); /* odd: writing */
    atomic_thread_fence(memory_order_release);
    uint64_t req = atomic_load_explicit(&h->reset_req, memory_order_acquire);
    if (req != atomic_load_explicit(&h->reset_ack, RELAXED)) {
        clear_stats_audio(h);
        atomic_store_explicit(&h->reset_ack, req, memory_order_release);
    }
    BUMP(h->callbacks, 1);
    BUMP(h->frames, nframes);
    if (shorts) BUMP(h->short_blocks, 1);
    atomic_store_explicit(&h->cost_last, cost, RELAXED);
    if (!freewheeling && h->load_period_ns > 0.0) {
        double load = (double)cost / h->load_period_ns;
        h->load = load > h->load ? load : h->load + (load - h->load) * h->load_alpha;
        atomic_store_explicit(&h->dsp_load, h->load, RELAXED);
        if (cost > atomic_load_explicit(&h->cost_max, RELAXED)) atomic_store_explicit(&h->cost_max, cost, RELAXED);
        BUMP(h->hist[hist_bucket(cost)], 1);
        BUMP(h->timed, 1);
    }
    atomic_fetch_add_explicit(&h->seq, 1, memory_order_release); /* even: done */
}

static int on_process(jack_nframes_t nframes, void *arg)
{
    rt_jack_host *h = arg;
    if (rtcheck_enter) rtcheck_enter();
    uint64_t t0 = now_ns();
    denormals_on();
    take_pending(h);
    for (uint32_t c = 0; c < h->n_in; c++) h->in_bufs[c] = jack_port_get_buffer(h->in_ports[c], nframes);
    for (uint32_t c = 0; c < h->n_out; c++) h->out_bufs[c] = jack_port_get_buffer(h->out_ports[c], nframes);
    int is_short = run_process(h, nframes);
    record_cycle(h, nframes, now_ns() - t0, is_short);
    if (rtcheck_leave) rtcheck_leave();
    return 0;
}

/* ---- PortAudio: the same host core behind a PaStreamCallback ------------- */

/* PaStreamCallbackFlags: input underflow/overflow, output underflow/overflow. */
#define PA_XRUN_FLAGS 0x0Fu

int rt_host_pa_prepare(rt_jack_host *h, uint32_t sample_rate, uint32_t max_frames)
{
    if (!h || sample_rate == 0 || max_frames == 0 || max_frames > (1u << 16)) return -1;
    float *scratch = calloc((size_t)(h->n_in + h->n_out) * max_frames, sizeof(float));
    if (!scratch) return -1;
    free(h->pa_scratch);
    h->pa_scratch = scratch;
    h->pa_max_frames = max_frames;
    atomic_store(&h->sample_rate, sample_rate);
    atomic_store(&h->period_frames, max_frames);
    atomic_store(&h->shut_down, 0);
    atomic_store(&h->xruns, 0);
    clear_stats_audio(h);
    h->load_frames = h->load_rate = 0;
    return 0;
}

int rt_host_pa_callback(const void *input, void *output, unsigned long frames, const void *time_info,
                        unsigned long status_flags, void *user)
{
    rt_jack_host *h = user;
    if (rtcheck_enter) rtcheck_enter();
    uint64_t t0 = now_ns();
    denormals_on();
    if (status_flags & PA_XRUN_FLAGS) atomic_fetch_add_explicit(&h->xruns, 1, RELAXED);
    take_pending(h);
    const float *in = input;
    float *out = output;
    uint32_t max = h->pa_max_frames, n_in = h->n_in, n_out = h->n_out;
    int shorts = 0;
    for (unsigned long done = 0; done < frames;) {
        uint32_t n = frames - done < max ? (uint32_t)(frames - done) : max;
        for (uint32_t c = 0; c < n_in; c++) {
            float *dst = h->pa_scratch + (size_t)c * max;
            if (in)
                for (uint32_t i = 0; i < n; i++) dst[i] = in[(done + i) * n_in + c];
            else
                memset(dst, 0, n * sizeof(float));
            h->in_bufs[c] = dst;
        }
        for (uint32_t c = 0; c < n_out; c++) h->out_bufs[c] = h->pa_scratch + (size_t)(n_in + c) * max;
        shorts |= run_process(h, n);
        if (out)
            for (uint32_t c = 0; c < n_out; c++)
                for (uint32_t i = 0; i < n; i++) out[(done + i) * n_out + c] = h->out_bufs[c][i];
        done += n;
    }
    record_cycle(h, (uint32_t)frames, now_ns() - t0, shorts);
    if (rtcheck_leave) rtcheck_leave();
    return 0; /* paContinue */
}

static int on_buffer_size(jack_nframes_t nframes, void *arg)
{
    rt_jack_host *h = arg;
    atomic_store(&h->period_frames, nframes);
    atomic_fetch_add(&h->bufsize_changes, 1);
    return 0;
}

static int on_sample_rate(jack_nframes_t rate, void *arg)
{
    rt_jack_host *h = arg;
    if (rate != atomic_load(&h->sample_rate)) atomic_fetch_add(&h->rate_changes, 1);
    atomic_store(&h->sample_rate, rate);
    return 0;
}

static int on_xrun(void *arg)
{
    rt_jack_host *h = arg;
    atomic_fetch_add(&h->xruns, 1);
    return 0;
}

static void on_freewheel(int starting, void *arg)
{
    rt_jack_host *h = arg;
    atomic_store(&h->freewheel, starting ? 1 : 0);
}

static void on_shutdown(jack_status_t code, const char *reason, void *arg)
{
    rt_jack_host *h = arg;
    if (!atomic_load(&h->shut_down)) {
        size_t i = 0;
        if (reason)
            for (; reason[i] && i < REASON_CAP - 1; i++) h->reason[i] = reason[i];
        h->reason[i] = '\0';
        atomic_store_explicit(&h->shut_down, 1, memory_order_release);
    }
    (void)code;
}

/* JACK latency API: in capture mode our outputs carry the capture latency of
 * our inputs plus what our process adds; in playback mode our inputs carry
 * the playback latency of our outputs plus the same. */
static void on_latency(jack_latency_callback_mode_t mode, void *arg)
{
    rt_jack_host *h = arg;
    uint32_t ours = atomic_load(&h->latency_frames);
    jack_port_t **from = mode == JackCaptureLatency ? h->in_ports : h->out_ports;
    jack_port_t **to = mode == JackCaptureLatency ? h->out_ports : h->in_ports;
    uint32_t n_from = mode == JackCaptureLatency ? h->n_in : h->n_out;
    uint32_t n_to = mode == JackCaptureLatency ? h->n_out : h->n_in;
    jack_latency_range_t range = {UINT32_MAX, 0}, r;
    for (uint32_t i = 0; i < n_from; i++) {
        jack_port_get_latency_range(from[i], mode, &r);
        if (r.min < range.min) range.min = r.min;
        if (r.max > range.max) range.max = r.max;
    }
    if (n_from == 0) range.min = 0;
    range.min += ours;
    range.max += ours;
    for (uint32_t i = 0; i < n_to; i++) jack_port_set_latency_range(to[i], mode, &range);
}

/* ---- control side -------------------------------------------------------- */

rt_jack_host *rt_jack_host_create(uint32_t n_in, uint32_t n_out, uint32_t retire_capacity)
{
    if (n_in > MAX_PORTS || n_out > MAX_PORTS || retire_capacity == 0 || retire_capacity > (1u << 16)) return NULL;
    rt_jack_host *h = aligned_alloc(64, (sizeof(rt_jack_host) + 63) & ~(size_t)63);
    if (!h) return NULL;
    memset(h, 0, sizeof *h);
    h->ring = calloc(retire_capacity, sizeof *h->ring);
    if (!h->ring) {
        free(h);
        return NULL;
    }
    h->n_in = n_in;
    h->n_out = n_out;
    h->ring_cap = retire_capacity;
    atomic_init(&h->pending, NULL);
    atomic_init(&h->dsp_load, 0.0);
    return h;
}

static void free_all_records(rt_jack_host *h)
{
    rt_jack_proc *p = atomic_exchange(&h->pending, NULL);
    free(p);
    free(h->active);
    h->active = NULL;
    while (ring_count(h)) {
        size_t head = atomic_load(&h->ring_head);
        free(h->ring[head % h->ring_cap]);
        atomic_store(&h->ring_head, head + 1);
    }
}

void rt_jack_host_destroy(rt_jack_host *h)
{
    if (!h) return;
    free_all_records(h);
    free(h->pa_scratch);
    free(h->ring);
    free(h);
}

int rt_jack_host_attach(rt_jack_host *h, jack_client_t *client, jack_port_t **in_ports, jack_port_t **out_ports)
{
    if (!h || !client || (h->n_in && !in_ports) || (h->n_out && !out_ports)) return -1;
    for (uint32_t i = 0; i < h->n_in; i++)
        if (!in_ports[i]) return -1;
    for (uint32_t i = 0; i < h->n_out; i++)
        if (!out_ports[i]) return -1;
    h->client = client;
    memcpy(h->in_ports, in_ports, h->n_in * sizeof *in_ports);
    memcpy(h->out_ports, out_ports, h->n_out * sizeof *out_ports);

    atomic_store(&h->shut_down, 0);
    h->reason[0] = '\0';
    atomic_store(&h->freewheel, 0);
    atomic_store(&h->xruns, 0);
    atomic_store(&h->bufsize_changes, 0);
    atomic_store(&h->rate_changes, 0);
    atomic_store(&h->period_frames, jack_get_buffer_size(client));
    atomic_store(&h->sample_rate, jack_get_sample_rate(client));
    clear_stats_audio(h); /* no callback runs yet */
    atomic_store(&h->swaps, 0);
    h->load_frames = h->load_rate = 0;

    int failed = 0;
    failed += jack_set_process_callback(client, on_process, h) != 0;
    failed += jack_set_buffer_size_callback(client, on_buffer_size, h) != 0;
    failed += jack_set_sample_rate_callback(client, on_sample_rate, h) != 0;
    failed += jack_set_xrun_callback(client, on_xrun, h) != 0;
    failed += jack_set_freewheel_callback(client, on_freewheel, h) != 0;
    failed += jack_set_latency_callback(client, on_latency, h) != 0;
    jack_on_info_shutdown(client, on_shutdown, h);
    return failed ? -failed : 0;
}

void rt_jack_host_detach(rt_jack_host *h)
{
    if (!h) return;
    h->client = NULL;
    if (h->active) {
        /* Nothing runs any more: the control thread may act as the producer. */
        rt_jack_proc *expected = NULL;
        if (atomic_compare_exchange_strong(&h->pending, &expected, h->active)) {
            /* kept: runs again after the next attach */
        } else if (ring_count(h) < h->ring_cap) {
            ring_push(h, h->active);
        } else {
            free(h->active); /* unreachable in practice: the caller collects first */
        }
        h->active = NULL;
    }
    atomic_store(&h->has_fn, 0);
}

int rt_jack_host_set_process(rt_jack_host *h, rt_process_fn fn, void *ctx, uint64_t token, uint64_t *displaced)
{
    if (displaced) *displaced = 0;
    if (!h || token == 0) return -1;
    rt_jack_proc *p = malloc(sizeof *p);
    if (!p) return -1;
    p->fn = fn;
    p->ctx = ctx;
    p->token = token;
    rt_jack_proc *old = atomic_exchange_explicit(&h->pending, p, memory_order_acq_rel);
    if (old) {
        /* The audio thread takes `pending` with an exchange, so it never saw this one. */
        if (displaced) *displaced = old->token;
        free(old);
    }
    return 0;
}

uint64_t rt_jack_host_collect(rt_jack_host *h)
{
    if (!h) return 0;
    size_t head = atomic_load_explicit(&h->ring_head, RELAXED);
    if (head == atomic_load_explicit(&h->ring_tail, memory_order_acquire)) return 0;
    rt_jack_proc *p = h->ring[head % h->ring_cap];
    atomic_store_explicit(&h->ring_head, head + 1, memory_order_release);
    uint64_t token = p->token;
    free(p);
    return token;
}

uint64_t rt_jack_host_current_token(rt_jack_host *h)
{
    if (!h) return 0;
    rt_jack_proc *p = atomic_load(&h->pending);
    /* Racy by nature when a swap is in flight; good enough for reporting. */
    return p ? p->token : (uint64_t)atomic_load(&h->current_token);
}

void rt_jack_host_set_latency(rt_jack_host *h, uint32_t frames)
{
    if (h) atomic_store(&h->latency_frames, frames);
}

int rt_jack_recompute_latencies(jack_client_t *client)
{
    return client ? jack_recompute_total_latencies(client) : -1;
}

int rt_jack_host_read_stats(rt_jack_host *h, rt_jack_stats *dst)
{
    if (!h || !dst) return -1;
    uint64_t counts[HIST_BUCKETS];
    int ok = 0;
    for (int attempt = 0; attempt < 64 && !ok; attempt++) {
        unsigned s1 = atomic_load_explicit(&h->seq, memory_order_acquire);
        if (s1 & 1u) {
            sched_yield();
            continue;
        }
        dst->callbacks = atomic_load_explicit(&h->callbacks, RELAXED);
        dst->frames = atomic_load_explicit(&h->frames, RELAXED);
        dst->short_blocks = atomic_load_explicit(&h->short_blocks, RELAXED);
        dst->process_swaps = atomic_load_explicit(&h->swaps, RELAXED);
        dst->cost_ns_last = atomic_load_explicit(&h->cost_last, RELAXED);
        dst->cost_ns_max = atomic_load_explicit(&h->cost_max, RELAXED);
        dst->timed_callbacks = atomic_load_explicit(&h->timed, RELAXED);
        dst->dsp_load = atomic_load_explicit(&h->dsp_load, RELAXED);
        for (uint32_t i = 0; i < HIST_BUCKETS; i++) counts[i] = atomic_load_explicit(&h->hist[i], RELAXED);
        atomic_thread_fence(memory_order_acquire);
        ok = atomic_load_explicit(&h->seq, RELAXED) == s1;
    }
    dst->xruns = atomic_load(&h->xruns);
    dst->period_frames = atomic_load(&h->period_frames);
    dst->sample_rate = atomic_load(&h->sample_rate);
    dst->latency_frames = atomic_load(&h->latency_frames);
    dst->buffer_size_changes = atomic_load(&h->bufsize_changes);
    dst->sample_rate_changes = atomic_load(&h->rate_changes);
    dst->freewheel = atomic_load(&h->freewheel);
    dst->shut_down = atomic_load_explicit(&h->shut_down, memory_order_acquire);
    dst->has_process = atomic_load_explicit(&h->has_fn, RELAXED);
    dst->cost_ns_p50 = dst->cost_ns_p99 = 0;
    if (!ok) return -1;

    uint64_t total = 0;
    for (uint32_t i = 0; i < HIST_BUCKETS; i++) total += counts[i];
    if (total) {
        uint64_t rank50 = (total * 50 + 99) / 100, rank99 = (total * 99 + 99) / 100, seen = 0;
        int have50 = 0;
        for (uint32_t i = 0; i < HIST_BUCKETS; i++) {
            seen += counts[i];
            if (!have50 && seen >= rank50) {
                dst->cost_ns_p50 = hist_upper(i);
                have50 = 1;
            }
            if (seen >= rank99) {
                dst->cost_ns_p99 = hist_upper(i);
                break;
            }
        }
        /* The bucket edge may overshoot the largest value seen. */
        if (dst->cost_ns_p50 > dst->cost_ns_max) dst->cost_ns_p50 = dst->cost_ns_max;
        if (dst->cost_ns_p99 > dst->cost_ns_max) dst->cost_ns_p99 = dst->cost_ns_max;
    }
    return 0;
}

void rt_jack_host_reset_stats(rt_jack_host *h)
{
    if (h) atomic_fetch_add(&h->reset_req, 1);
}

int rt_jack_host_reset_done(rt_jack_host *h)
{
    return h ? atomic_load_explicit(&h->reset_ack, memory_order_acquire) == atomic_load(&h->reset_req) : 1;
}

size_t rt_jack_host_shutdown_reason(rt_jack_host *h, char *buf, size_t cap)
{
    if (!h || !buf || cap == 0) return 0;
    size_t n = 0;
    if (atomic_load_explicit(&h->shut_down, memory_order_acquire))
        for (; n < cap - 1 && h->reason[n]; n++) buf[n] = h->reason[n];
    buf[n] = '\0';
    return n;
}

void rt_jack_port_latency_range(jack_port_t *port, int mode, uint32_t *min_frames, uint32_t *max_frames)
{
    jack_latency_range_t r = {0, 0};
    if (port) jack_port_get_latency_range(port, mode ? JackPlaybackLatency : JackCaptureLatency, &r);
    if (min_frames) *min_frames = r.min;
    if (max_frames) *max_frames = r.max;
}

int rt_jack_lock_memory(void)
{
    return mlockall(MCL_CURRENT | MCL_FUTURE) == 0 ? 0 : errno;
}

int rt_jack_thread_policy(jack_client_t *client, int *policy, int *priority)
{
    if (!client) return -1;
    pthread_t t = jack_client_thread_id(client);
    if (!t) return -1;
    struct sched_param sp;
    int pol;
    if (pthread_getschedparam(t, &pol, &sp) != 0) return -1;
    if (policy) *policy = pol;
    if (priority) *priority = sp.sched_priority;
    return 0;
}

uint32_t rt_jack_passthrough(void *ctx, const float *const *in, float *const *out, uint32_t frames)
{
    uint32_t channels = ctx ? *(const uint32_t *)ctx : 0;
    for (uint32_t c = 0; c < channels; c++)
        if (out[c] != in[c]) memcpy(out[c], in[c], (size_t)frames * sizeof(float));
    return channels ? frames : 0;
}
