/* The player's stream source (see stream_source.h for the contract).
 *
 * Audio side, per rt_stream_process call: the output is built in chunks of at
 * most max_block frames.  Each chunk is cut where something happens in the
 * stream -- a marker's position, a seek's position, the end of a fade-out, the
 * ring running dry -- so a marker's parameter block is applied between two
 * executor calls, exactly before its frame. */
#include "stream_source.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "rt_common.h"

typedef struct marker {
    uint64_t position;
    uint64_t token;
    uint64_t track_frame;
    rt_param_block *block;
    uint32_t kind;
} marker;

struct rt_stream {
    uint32_t channels;
    uint32_t mask;           /* ring capacity in frames - 1 */
    uint32_t max_block;
    uint32_t marker_mask;
    uint32_t fade_frames;
    rt_executor *ex;
    float *ring;             /* interleaved, (mask + 1) * channels */
    marker *markers;
    float *fade;             /* fade_frames gains in (0, 1), rising */
    float *scratch;          /* channels * max_block, planar */
    float **scratch_ptrs;
    float **out_ptrs;

    /* Producer-owned, read by the consumer. */
    _Alignas(64) _Atomic uint64_t write_pos;
    _Atomic uint32_t marker_tail;
    _Atomic uint64_t nonfinite;
    /* Seek request: position and marker index written, then seq bumped (release). */
    _Atomic uint64_t seek_pos;
    _Atomic uint32_t seek_marker_tail;
    _Atomic uint32_t seek_fade_in;
    _Atomic uint32_t seek_seq;

    /* Consumer-owned, read by the producer. */
    _Alignas(64) _Atomic uint64_t read_pos;
    _Atomic uint32_t marker_head;

    /* Control -> audio. */
    _Alignas(64) _Atomic uint32_t playing;

    /* Audio-thread state. */
    _Alignas(64) uint32_t seek_seen;
    int seek_pending;
    uint64_t pending_pos;
    uint32_t pending_marker_tail;
    uint32_t pending_fade_in;
    uint32_t fade_pos;       /* 0 = silent .. fade_frames = full level (while RUNNING) */
    int start_full;          /* LOADING -> RUNNING at full level (a track's first frame) */
    rt_stream_status st;     /* the audio thread's working copy */

    /* Seqlock-published copy for the control side. */
    _Alignas(64) _Atomic uint32_t status_seq;
    rt_stream_status published;
};

static uint32_t pow2_at_least(uint32_t n)
{
    uint32_t c = 1;
    while (c < n) c <<= 1;
    return c;
}

rt_stream *rt_stream_create(uint32_t channels, uint32_t capacity_frames, uint32_t max_block,
                            uint32_t marker_capacity, uint32_t fade_frames, rt_executor *ex)
{
    if (channels == 0 || channels > 64 || capacity_frames == 0 || capacity_frames > (1u << 26) || max_block == 0 ||
        max_block > (1u << 20) || marker_capacity == 0 || marker_capacity > (1u << 16) || fade_frames > (1u << 20))
        return NULL;
    rt_stream *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    uint32_t cap = pow2_at_least(capacity_frames);
    uint32_t mcap = pow2_at_least(marker_capacity);
    s->channels = channels;
    s->mask = cap - 1;
    s->max_block = max_block;
    s->marker_mask = mcap - 1;
    s->fade_frames = fade_frames;
    s->ex = ex;
    s->ring = calloc((size_t)cap * channels, sizeof(float));
    s->markers = calloc(mcap, sizeof(marker));
    s->fade = calloc(fade_frames ? fade_frames : 1, sizeof(float));
    s->scratch = calloc((size_t)channels * max_block, sizeof(float));
    s->scratch_ptrs = calloc(channels, sizeof(float *));
    s->out_ptrs = calloc(channels, sizeof(float *));
    if (!s->ring || !s->markers || !s->fade || !s->scratch || !s->scratch_ptrs || !s->out_ptrs) {
        rt_stream_destroy(s);
        return NULL;
    }
    for (uint32_t ch = 0; ch < channels; ch++) s->scratch_ptrs[ch] = s->scratch + (size_t)ch * max_block;
    /* Raised-cosine gains sampled at frame centres: strictly between 0 and 1, so
     * every frame of a fade is still heard, and a fade-out is the fade-in reversed. */
    for (uint32_t i = 0; i < fade_frames; i++)
        s->fade[i] = (float)(0.5 - 0.5 * cos(RT_PI * ((double)i + 0.5) / (double)fade_frames));
    s->start_full = 1;
    s->st.state = RT_STREAM_LOADING;
    s->published = s->st;
    return s;
}

void rt_stream_destroy(rt_stream *s)
{
    if (!s) return;
    free(s->ring);
    free(s->markers);
    free(s->fade);
    free(s->scratch);
    free(s->scratch_ptrs);
    free(s->out_ptrs);
    free(s);
}

uint32_t rt_stream_capacity(const rt_stream *s) { return s->mask + 1; }
uint32_t rt_stream_channels(const rt_stream *s) { return s->channels; }

/* --- producer --------------------------------------------------------------- */

uint32_t rt_stream_writable(const rt_stream *s)
{
    rt_stream *m = (rt_stream *)s;
    uint64_t w = atomic_load_explicit(&m->write_pos, memory_order_relaxed);
    uint64_t r = atomic_load_explicit(&m->read_pos, memory_order_acquire);
    return (uint32_t)((uint64_t)(s->mask + 1) - (w - r));
}

uint64_t rt_stream_write_position(const rt_stream *s)
{
    return atomic_load_explicit(&((rt_stream *)s)->write_pos, memory_order_relaxed);
}

uint64_t rt_stream_nonfinite_samples(const rt_stream *s)
{
    return atomic_load_explicit(&((rt_stream *)s)->nonfinite, memory_order_relaxed);
}

uint32_t rt_stream_write(rt_stream *s, const float *interleaved, uint32_t frames)
{
    const uint32_t C = s->channels;
    uint32_t room = rt_stream_writable(s);
    uint32_t n = frames < room ? frames : room;
    uint64_t w = atomic_load_explicit(&s->write_pos, memory_order_relaxed);
    uint64_t bad = 0;
    uint32_t done = 0;
    while (done < n) {
        uint32_t at = (uint32_t)((w + done) & s->mask);
        uint32_t run = s->mask + 1 - at;
        if (run > n - done) run = n - done;
        const float *src = interleaved + (size_t)done * C;
        float *dst = s->ring + (size_t)at * C;
        for (size_t i = 0; i < (size_t)run * C; i++) {
            float v = src[i];
            if (!isfinite(v)) {
                v = 0.0f;
                bad++;
            }
            dst[i] = v;
        }
        done += run;
    }
    if (bad) atomic_fetch_add_explicit(&s->nonfinite, bad, memory_order_relaxed);
    /* release: the frames are in the ring before the consumer can see them. */
    atomic_store_explicit(&s->write_pos, w + n, memory_order_release);
    return n;
}

uint32_t rt_stream_marker_room(const rt_stream *s)
{
    rt_stream *m = (rt_stream *)s;
    uint32_t tail = atomic_load_explicit(&m->marker_tail, memory_order_relaxed);
    uint32_t head = atomic_load_explicit(&m->marker_head, memory_order_acquire);
    return s->marker_mask + 1 - (tail - head);
}

int rt_stream_mark(rt_stream *s, uint32_t kind, uint64_t token, uint64_t track_frame, rt_param_block *block)
{
    if (kind != RT_STREAM_MARK_TRACK && kind != RT_STREAM_MARK_END) return -1;
    if (block && (!s->ex || kind != RT_STREAM_MARK_TRACK)) return -1;
    uint32_t tail = atomic_load_explicit(&s->marker_tail, memory_order_relaxed);
    uint32_t head = atomic_load_explicit(&s->marker_head, memory_order_acquire);
    if (tail - head > s->marker_mask) return -1;
    s->markers[tail & s->marker_mask] = (marker){atomic_load_explicit(&s->write_pos, memory_order_relaxed), token,
                                                 track_frame, block, kind};
    atomic_store_explicit(&s->marker_tail, tail + 1, memory_order_release);
    return 0;
}

void rt_stream_seek(rt_stream *s, int fade_in)
{
    atomic_store_explicit(&s->seek_pos, atomic_load_explicit(&s->write_pos, memory_order_relaxed),
                          memory_order_relaxed);
    atomic_store_explicit(&s->seek_marker_tail, atomic_load_explicit(&s->marker_tail, memory_order_relaxed),
                          memory_order_relaxed);
    atomic_store_explicit(&s->seek_fade_in, fade_in != 0, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->seek_seq, 1u, memory_order_release);
}

/* --- control ---------------------------------------------------------------- */

void rt_stream_set_playing(rt_stream *s, int playing)
{
    atomic_store_explicit(&s->playing, playing != 0, memory_order_relaxed);
}

int rt_stream_read_status(rt_stream *s, rt_stream_status *dst)
{
    for (int attempt = 0; attempt < 100000; attempt++) {
        uint32_t s1 = atomic_load_explicit(&s->status_seq, memory_order_acquire);
        if (!(s1 & 1u)) {
            *dst = s->published;
            atomic_thread_fence(memory_order_acquire);
            if (atomic_load_explicit(&s->status_seq, memory_order_relaxed) == s1) return 0;
        }
    }
    return -1;
}

static void drop_marker(rt_stream *s, const marker *m)
{
    if (m->block) rt_executor_drop(s->ex, m->block);
}

uint32_t rt_stream_drain(rt_stream *s)
{
    uint32_t head = atomic_load_explicit(&s->marker_head, memory_order_relaxed);
    uint32_t tail = atomic_load_explicit(&s->marker_tail, memory_order_acquire);
    for (uint32_t i = head; i != tail; i++) drop_marker(s, &s->markers[i & s->marker_mask]);
    atomic_store_explicit(&s->marker_head, tail, memory_order_release);
    return tail - head;
}

/* --- audio side ------------------------------------------------------------- */

/* Take note of a new seek request.  The fields are re-read until the sequence
 * number is stable, so position and marker index belong to the same request. */
static void notice_seek(rt_stream *s)
{
    uint32_t seq = atomic_load_explicit(&s->seek_seq, memory_order_acquire);
    if (seq == s->seek_seen) return;
    for (int attempt = 0; attempt < 4; attempt++) {
        uint64_t pos = atomic_load_explicit(&s->seek_pos, memory_order_relaxed);
        uint32_t tail = atomic_load_explicit(&s->seek_marker_tail, memory_order_relaxed);
        uint32_t fade_in = atomic_load_explicit(&s->seek_fade_in, memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
        uint32_t again = atomic_load_explicit(&s->seek_seq, memory_order_acquire);
        if (again == seq) {
            s->seek_seen = seq;
            s->seek_pending = 1;
            s->pending_pos = pos;
            s->pending_marker_tail = tail;
            s->pending_fade_in = fade_in;
            return;
        }
        seq = again;
    }
    /* The producer is mid-way through a burst of seeks: take the next one next chunk. */
}

static void jump(rt_stream *s)
{
    uint32_t head = atomic_load_explicit(&s->marker_head, memory_order_relaxed);
    /* Markers written before the seek; none if the consumer has already passed them. */
    for (; (int32_t)(s->pending_marker_tail - head) > 0; head++) {
        drop_marker(s, &s->markers[head & s->marker_mask]);
        s->st.markers_dropped++;
    }
    atomic_store_explicit(&s->marker_head, head, memory_order_release);
    uint64_t r = atomic_load_explicit(&s->read_pos, memory_order_relaxed);
    if (s->pending_pos >= r) {
        atomic_store_explicit(&s->read_pos, s->pending_pos, memory_order_release);
        s->st.state = RT_STREAM_LOADING;
        s->start_full = !s->pending_fade_in;
    }
    s->seek_pending = 0;
    s->st.seeks++;
}

static const marker *next_marker(rt_stream *s)
{
    uint32_t head = atomic_load_explicit(&s->marker_head, memory_order_relaxed);
    uint32_t tail = atomic_load_explicit(&s->marker_tail, memory_order_acquire);
    return head == tail ? NULL : &s->markers[head & s->marker_mask];
}

static int end_marker_waiting(rt_stream *s)
{
    uint32_t head = atomic_load_explicit(&s->marker_head, memory_order_relaxed);
    uint32_t tail = atomic_load_explicit(&s->marker_tail, memory_order_acquire);
    for (; head != tail; head++)
        if (s->markers[head & s->marker_mask].kind == RT_STREAM_MARK_END) return 1;
    return 0;
}

/* An end marker at or before the read position (behind track markers at the same place). */
static int end_marker_reached(rt_stream *s, uint64_t r)
{
    uint32_t head = atomic_load_explicit(&s->marker_head, memory_order_relaxed);
    uint32_t tail = atomic_load_explicit(&s->marker_tail, memory_order_acquire);
    for (; head != tail && s->markers[head & s->marker_mask].position <= r; head++)
        if (s->markers[head & s->marker_mask].kind == RT_STREAM_MARK_END) return 1;
    return 0;
}

/* Apply every marker at or before the read position. */
static void pass_markers(rt_stream *s, uint64_t r)
{
    const marker *m;
    while ((m = next_marker(s)) != NULL && m->position <= r) {
        if (m->kind == RT_STREAM_MARK_TRACK) {
            if (m->block) rt_executor_apply_now(s->ex, m->block);
            s->st.token = m->token;
            s->st.marker_position = m->position;
            s->st.track_frame = m->track_frame;
        } else {
            s->st.state = RT_STREAM_ENDED;
        }
        s->st.markers_passed++;
        atomic_store_explicit(&s->marker_head, atomic_load_explicit(&s->marker_head, memory_order_relaxed) + 1,
                              memory_order_release);
    }
}

static void silence(float *const *dst, uint32_t channels, uint32_t n)
{
    for (uint32_t ch = 0; ch < channels; ch++) memset(dst[ch], 0, sizeof(float) * n);
}

/* Fill the first frames of the scratch; returns how many (1..n).  `call_left`
 * is what the current rt_stream_process call still has to produce (the
 * amount of data that must be there before playback starts). */
static uint32_t fill(rt_stream *s, uint32_t n, uint32_t call_left)
{
    const uint32_t C = s->channels, F = s->fade_frames;
    float *const *dst = s->scratch_ptrs;
    int playing = atomic_load_explicit(&s->playing, memory_order_relaxed) != 0;
    s->st.playing = (uint32_t)playing;
    notice_seek(s);
    uint64_t r = atomic_load_explicit(&s->read_pos, memory_order_relaxed);
    int running = s->st.state == RT_STREAM_RUNNING;
    if (s->seek_pending && (!running || s->fade_pos == 0 || r >= s->pending_pos)) {
        jump(s);
        r = atomic_load_explicit(&s->read_pos, memory_order_relaxed);
        running = s->st.state == RT_STREAM_RUNNING;
    }
    int want = playing && !s->seek_pending;
    if (!want && (!running || s->fade_pos == 0)) { /* held: paused, stopped, or about to jump */
        silence(dst, C, n);
        return n;
    }
    uint64_t avail = atomic_load_explicit(&s->write_pos, memory_order_acquire) - r;
    if (s->st.state != RT_STREAM_RUNNING) {
        /* Start (or restart after running dry) only with a whole call's worth, so
         * a decoder that has just begun does not cause an underrun at once. */
        if (avail > 0 && (avail >= call_left || end_marker_waiting(s))) {
            /* A track's first frame at full level; anything else fades in. */
            s->fade_pos = (s->st.state == RT_STREAM_LOADING && s->start_full) ? F : 0;
            s->st.state = RT_STREAM_RUNNING;
        } else {
            if (end_marker_reached(s, r)) pass_markers(s, r);
            if (s->st.state == RT_STREAM_STARVED && want) s->st.underrun_frames += n;
            silence(dst, C, n);
            return n;
        }
    }
    /* A track marker's block is applied only when its frame is about to be played
     * (not during silence before it, where a parameter ramp would already run). */
    if (avail > 0 || end_marker_reached(s, r)) pass_markers(s, r);
    if (s->st.state == RT_STREAM_ENDED) {
        silence(dst, C, n);
        return n;
    }
    uint64_t limit = n;
    const marker *m = next_marker(s);
    if (m && m->position - r < limit) limit = m->position - r;       /* > 0: passed ones are gone */
    if (s->seek_pending && s->pending_pos - r < limit) limit = s->pending_pos - r;
    if (!want && s->fade_pos < limit) limit = s->fade_pos;           /* stop where a fade-out ends */
    uint32_t take = (uint32_t)(avail < limit ? avail : limit);
    if (take == 0) { /* the ring ran dry mid-stream (limit >= 1 unless avail == 0) */
        s->st.state = RT_STREAM_STARVED;
        s->st.underrun_events++;
        if (want) s->st.underrun_frames += n;
        silence(dst, C, n);
        return n;
    }
    for (uint32_t i = 0; i < take;) {
        uint32_t at = (uint32_t)((r + i) & s->mask);
        uint32_t run = s->mask + 1 - at;
        if (run > take - i) run = take - i;
        const float *src = s->ring + (size_t)at * C;
        if (want && s->fade_pos == F) {
            for (uint32_t ch = 0; ch < C; ch++) {
                float *d = dst[ch] + i;
                for (uint32_t k = 0; k < run; k++) d[k] = src[(size_t)k * C + ch];
            }
        } else {
            for (uint32_t k = 0; k < run; k++) {
                float g;
                if (want) {
                    g = s->fade_pos < F ? s->fade[s->fade_pos++] : 1.0f;
                } else {
                    g = s->fade[--s->fade_pos];
                }
                for (uint32_t ch = 0; ch < C; ch++) dst[ch][i + k] = g * src[(size_t)k * C + ch];
            }
        }
        i += run;
    }
    /* release: our reads of the ring are done before the producer may overwrite. */
    atomic_store_explicit(&s->read_pos, r + take, memory_order_release);
    s->st.frames_played += take;
    return take;
}

static void publish_status(rt_stream *s)
{
    s->st.read_position = atomic_load_explicit(&s->read_pos, memory_order_relaxed);
    s->st.write_position = atomic_load_explicit(&s->write_pos, memory_order_relaxed);
    s->st.fade_position = s->fade_pos;
    s->st.seek_pending = (uint32_t)s->seek_pending;
    uint32_t q = atomic_load_explicit(&s->status_seq, memory_order_relaxed);
    atomic_store_explicit(&s->status_seq, q + 1u, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    s->published = s->st;
    atomic_store_explicit(&s->status_seq, q + 2u, memory_order_release);
}

uint32_t rt_stream_process(void *ctx, const float *const *in, float *const *out, uint32_t frames)
{
    rt_stream *s = ctx;
    const uint32_t C = s->channels;
    uint32_t done = 0;
    while (done < frames) {
        uint32_t n = frames - done;
        if (n > s->max_block) n = s->max_block;
        uint32_t m = fill(s, n, frames - done);
        for (uint32_t ch = 0; ch < C; ch++) s->out_ptrs[ch] = out[ch] + done;
        if (s->ex) {
            rt_executor_process(s->ex, (const float *const *)s->scratch_ptrs, s->out_ptrs, m);
        } else {
            for (uint32_t ch = 0; ch < C; ch++) memcpy(s->out_ptrs[ch], s->scratch_ptrs[ch], sizeof(float) * m);
        }
        done += m;
    }
    s->st.frames_out += frames;
    publish_status(s);
    return frames;
}
