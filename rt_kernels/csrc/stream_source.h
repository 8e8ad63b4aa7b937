/* The player's stream source: a lock-free ring of interleaved float frames that a
 * decoder thread fills and the audio thread plays, in front of the graph executor.
 *
 * Threads (see ARCHITECTURE.md):
 *   producer  one decoder thread: rt_stream_write / rt_stream_mark / rt_stream_seek
 *   audio     rt_stream_process only (the backends' process-function signature,
 *             ctx = the rt_stream)
 *   control   any thread: rt_stream_set_playing, rt_stream_read_status
 * Nothing the audio thread does allocates, frees, locks, logs or waits.
 *
 * Stream positions are 64-bit frame counts since creation that only grow: the
 * producer's write position and the consumer's read position.  Markers ride on
 * stream positions: "track T starts here (its frame F), apply this prepared
 * parameter block exactly here" and "the stream ends here".  A seek is "skip
 * everything written so far": the consumer fades out (or has already faded out,
 * when paused), jumps its read position to the producer's write position at the
 * moment of the seek, drops the markers written before it, and fades in. */
#ifndef RT_STREAM_SOURCE_H
#define RT_STREAM_SOURCE_H
#include <stdint.h>

#include "executor.h"

/* cffi:begin */
typedef struct rt_stream rt_stream;

enum {
    /* From this position on the frames belong to track `token`, and the frame at
     * this position is the track's frame `track_frame`.  A non-NULL block (from
     * Executor.prepare) is applied with rt_executor_apply_now right before the
     * executor processes this position's frame. */
    RT_STREAM_MARK_TRACK = 1,
    /* Nothing follows: an empty ring after this position is not an underrun. */
    RT_STREAM_MARK_END = 2
};

enum {
    RT_STREAM_LOADING = 0, /* after creation or a seek: silence until enough frames arrive (not an underrun) */
    RT_STREAM_RUNNING = 1, /* playing frames from the ring */
    RT_STREAM_STARVED = 2, /* the ring ran dry mid-stream: silence, counted as underrun */
    RT_STREAM_ENDED = 3    /* the end marker was reached: silence, nothing counted */
};

/* What the audio thread last published (end of an rt_stream_process call). */
typedef struct rt_stream_status {
    uint64_t read_position;     /* frames taken from the ring (stream position) */
    uint64_t write_position;    /* frames the producer has written (read at the same time) */
    uint64_t token;             /* of the last track marker passed; 0 = none yet */
    uint64_t marker_position;   /* stream position of that marker */
    uint64_t track_frame;       /* that track's frame at marker_position */
    uint64_t underrun_events;   /* times the ring ran dry while playing */
    uint64_t underrun_frames;   /* output frames of silence while starved and playing */
    uint64_t markers_passed;    /* markers applied (track + end) */
    uint64_t markers_dropped;   /* markers skipped by seeks */
    uint64_t seeks;             /* seeks carried out */
    uint64_t frames_out;        /* frames produced by rt_stream_process */
    uint64_t frames_played;     /* of those, frames taken from the ring */
    uint32_t state;             /* RT_STREAM_LOADING .. RT_STREAM_ENDED */
    uint32_t fade_position;     /* 0 = silent (held) .. fade_frames = full level */
    uint32_t playing;           /* the transport flag as the audio thread saw it */
    uint32_t seek_pending;      /* a seek noticed, not yet carried out */
} rt_stream_status;

/* Control thread.  capacity_frames is rounded up to a power of two; the
 * executor (may be NULL: ring straight to the output) must have `channels`
 * channels and outlive the stream; max_block bounds the chunks handed to it;
 * fade_frames is the length of pause/seek/underrun-recovery fades (0 = none).
 * The stream starts paused and loading.  NULL on bad arguments or no memory. */
rt_stream *rt_stream_create(uint32_t channels, uint32_t capacity_frames, uint32_t max_block,
                            uint32_t marker_capacity, uint32_t fade_frames, rt_executor *ex);
/* Not while the audio thread runs.  Does not free parameter blocks still in
 * markers: call rt_stream_drain first. */
void rt_stream_destroy(rt_stream *s);

/* AUDIO THREAD.  The backends' process function: `in` is ignored, `out` gets
 * `channels` planar channels of `frames` frames (ring -> fades -> executor).
 * Returns frames. */
uint32_t rt_stream_process(void *ctx, const float *const *in, float *const *out, uint32_t frames);

/* Producer (one thread).  Copies up to `frames` interleaved frames into the
 * ring without waiting; returns how many it took.  Non-finite samples are
 * stored as 0 and counted (rt_stream_nonfinite_samples): the ring never holds
 * NaN or Inf. */
uint32_t rt_stream_write(rt_stream *s, const float *interleaved, uint32_t frames);
/* Producer: free room in frames, and the write position. */
uint32_t rt_stream_writable(const rt_stream *s);
uint64_t rt_stream_write_position(const rt_stream *s);
/* Producer: a marker at the current write position.  Returns 0, or -1 when the
 * marker ring is full (retry after the consumer has played on) or the kind is
 * unknown or a block is given without an executor. */
int rt_stream_mark(rt_stream *s, uint32_t kind, uint64_t token, uint64_t track_frame, rt_param_block *block);
/* Producer: everything written so far is to be skipped.  The consumer fades out
 * over at most fade_frames of what it has before this position, jumps, drops
 * the markers written before, and then plays what is written from here on,
 * fading in if fade_in (a mid-track position), at full level if not (a track's
 * first frame), whether it is playing now or resumed later. */
void rt_stream_seek(rt_stream *s, int fade_in);
/* Producer: free marker slots (a marker fits if > 0; only the consumer changes it,
 * upwards), so a parameter block is prepared only when it can be handed over. */
uint32_t rt_stream_marker_room(const rt_stream *s);
uint64_t rt_stream_nonfinite_samples(const rt_stream *s);

/* Control (any thread): play (1) or pause (0).  Pausing fades out over
 * fade_frames of the stream, then outputs silence without taking frames;
 * resuming fades in from the next frame not yet played. */
void rt_stream_set_playing(rt_stream *s, int playing);
/* Control: a consistent copy of the status (seqlock).  Returns 0, or -1 if the
 * audio thread kept overwriting it. */
int rt_stream_read_status(rt_stream *s, rt_stream_status *dst);
/* Not while the audio thread runs: drop every marker still in the ring (their
 * blocks go back through rt_executor_collect).  Returns how many. */
uint32_t rt_stream_drain(rt_stream *s);
uint32_t rt_stream_capacity(const rt_stream *s);
uint32_t rt_stream_channels(const rt_stream *s);
/* cffi:end */
#endif
