/* ITU-R BS.1770-4 / EBU R 128 loudness meter (a sink: reads its input, writes nothing).
 *
 * K-weighting: the two stages of BS.1770-4 (a high shelf and the RLB high-pass) are
 * bilinear transforms of analog prototypes, computed in double at create time for the
 * actual sample rate (rt_loudness_k_weighting); at 48 kHz they equal the BS.1770-4
 * table to ~1e-14.  Below 0.45 fs the response stays within 0.01 dB of the 48 kHz one
 * from 44.1 kHz up, 0.035 dB at 22.05 kHz; at 8 kHz the bilinear warping of the 1.7 kHz
 * shelf costs 0.2 dB near 1 kHz (a second-order section cannot do better there).
 * The filter runs in double, in a normalized form (the shelf's numerator divided by b0,
 * the high-pass's by g0, leaving it exactly (1, -2, 1)); the squares are scaled back by
 * (b0 g0)^2 once per tick.  Same filter, rounding only.  Two ways, chosen at create by
 * rt_cpu_level(): baseline, the two sections in direct form, two channels per vector;
 * x86-64-v3 / v4 (AVX2 / AVX-512), the same sections in blocks of ten frames aligned to
 * the ticks, every output of a block from the state before it (see loudness.c), the two
 * levels giving the same bits, within 1e-9 LU of the baseline.
 *
 * Time base (aligned to the absolute frame count since create/reset, never to the
 * caller's blocks): a step of hop = round(fs / 10) frames (100 ms; windows are 4 and
 * 30 hops, e.g. 400.18 ms at 11025 Hz where fs / 10 is not whole) is split into 10
 * ticks of floor((j+1)*hop/10) - floor(j*hop/10) frames.  At the end of every tick the
 * meter updates momentary (last 40 ticks = 4 hops = 400 ms) and short-term (last 300
 * ticks = 30 hops = 3 s) loudness and their maxima; windows that reach back before the
 * start count the missing frames as silence.  At the end of every hop, once 4 (30)
 * hops have passed, the momentary (short-term) value is one gating block for the
 * integrated loudness (LRA): 400 ms blocks with 75 % overlap, 3 s blocks every 100 ms.
 *
 * Bounded memory: the gating blocks go into histograms over -70..+40 LUFS in 0.01 LU
 * bins (anything louder lands in the top bin); each bin keeps its block count and the
 * exact sum of its blocks' energies, and Fenwick trees over both give the gated sums in
 * O(log bins).  So the integrated loudness is the exact BS.1770 mean of the gated
 * blocks; only the relative-gate decision for the one bin that contains the threshold
 * is taken per bin (the bin is in when its mean energy is above the threshold), and the
 * LRA percentiles are the mean loudness of the bin holding that rank (error < 0.01 LU).
 * Memory is fixed at create (about 0.7 MB + 128 bytes per channel), whatever the
 * duration.
 *
 * Integrated: absolute gate -70 LUFS, relative gate -10 LU.  LRA (EBU Tech 3342):
 * short-term values, absolute gate -70 LUFS, relative gate -20 LU, 10th to 95th
 * percentile (nearest rank: index round((n - 1) * p) of the sorted values).
 *
 * True peak (optional at create): rt_true_peak (true_peak.h), BS.1770 factor (4x below
 * 96 kHz, 2x below 192 kHz, 1x above), on every channel (weight 0 included), fed tick
 * segment by tick segment while they are in cache, with each channel's max |x| over the
 * segment (found in the pass that K-weights it).  Only its running maximum is used, so it
 * skips the oversampling of stretches that provably cannot raise that maximum (exact: see
 * rt_true_peak_process_bounded).
 *
 * Values that do not exist yet or are silent are -INFINITY (never NaN); the loudness
 * range is 0 until at least one short-term block passes its gates.
 *
 * Threads: process() on the audio thread (no allocation, no locks, O(frames) plus
 * O(log bins) per 100 ms).  At the end of each process() call the meter publishes its
 * values through a sequence lock; rt_loudness_snapshot() copies them from any thread
 * without ever making the audio thread wait (the reader retries if it raced a write).
 *
 * Non-finite input (the facade refuses it, but the audio thread may see it): the
 * K-filter history is cleared at the end of the tick that saw it, that tick counts as
 * silence, and nonfinite_ticks counts it.  Sample peaks ignore non-finite samples; the
 * true peak holds its last finite reading.
 *
 * Range: the histograms span -70..+40 LUFS; a float signal louder than +40 LUFS still
 * gets its exact energy into the integrated value, but its LRA percentiles read as the
 * top bin's mean. */
#ifndef RT_LOUDNESS_H
#define RT_LOUDNESS_H
#include <stdint.h>

/* cffi:begin */
#define RT_LOUDNESS_MAX_CHANNELS 64

typedef struct rt_loudness rt_loudness;

typedef struct rt_loudness_values {
    uint64_t frames;               /* frames metered since create/reset */
    uint64_t nonfinite_ticks;      /* ticks in which the K-filter saw non-finite input */
    uint32_t channels;
    uint32_t true_peak_factor;     /* oversampling factor of true_peak_dbtp; 0 = not measured */
    double momentary_lufs;         /* last 400 ms, updated every tick */
    double short_term_lufs;        /* last 3 s, updated every tick */
    double integrated_lufs;        /* gated (-70 LUFS, -10 LU); -inf until a block passes */
    double integrated_gate_lufs;   /* the relative gate in use; -inf until a block passes */
    double loudness_range_lu;      /* EBU Tech 3342; 0 until a short-term block passes */
    double max_momentary_lufs;
    double max_short_term_lufs;
    double sample_peak_dbfs;       /* max over channels */
    double true_peak_dbtp;         /* max over channels */
    double channel_sample_peak_dbfs[64];  /* first `channels` entries used */
    double channel_true_peak_dbtp[64];
} rt_loudness_values;

/* The K-weighting for sample_rate: coeffs = {b0 b1 b2 a1 a2} of the high shelf, then
 * {b0 b1 b2 a1 a2} of the high-pass (a0 = 1).  Returns 0, or -1 for a rate outside
 * [8000, 384000] Hz (coeffs untouched).  Pure. */
int rt_loudness_k_weighting(double sample_rate, double coeffs[10]);

/* Not on the audio thread: allocates.  weights[ch] is the BS.1770 channel weight G
 * (1.0 front, 1.41 surround, 0 for LFE), each in [0, 16], at least one > 0.
 * true_peak: nonzero to run the true-peak oversampler (most of the cost per sample);
 * without it the true-peak values read -inf and true_peak_factor 0.
 * NULL on bad arguments or no memory. */
rt_loudness *rt_loudness_create(uint32_t channels, double sample_rate, const double *weights, int true_peak);
void rt_loudness_destroy(rt_loudness *st);
/* Between blocks: a new measurement (history, histograms, maxima, peaks cleared). */
void rt_loudness_reset(rt_loudness *st);
/* Audio thread.  A sink: reads `frames` frames, returns `frames`. */
uint32_t rt_loudness_process(rt_loudness *st, const float *const *in, uint32_t frames);
uint32_t rt_loudness_latency(const rt_loudness *st);
/* Any thread: copies the values published at the end of the last process() call.
 * Returns the number of read attempts (>= 1; more means a write was in progress). */
uint32_t rt_loudness_snapshot(const rt_loudness *st, rt_loudness_values *out);
/* Frames per 100 ms hop and per tick j (0..9) of this instance. */
uint32_t rt_loudness_hop_frames(const rt_loudness *st);
uint32_t rt_loudness_tick_frames(const rt_loudness *st, uint32_t j);
/* 1 if any sample (any channel, weighted or not) given to process() since create/reset
 * was an infinity or NaN, else 0.  Read on the processing thread or between blocks (not
 * published with the snapshot).  Lets a one-shot caller check finiteness in the same
 * pass as the metering instead of a separate one. */
uint32_t rt_loudness_saw_nonfinite(const rt_loudness *st);
/* cffi:end */
#endif
