/* Lookahead brick-wall limiter with stereo-linked gain and an optional true-peak detector.
 *
 * Signal path (one gain for all channels, per frame):
 *   detector  d(t)  = max over channels of |x| (sample-peak mode), or of the 4x-oversampled,
 *                     parabola-refined true-peak envelope (64 taps per phase) over frames
 *                     t-1..t+1 (true-peak mode); it includes the sample itself, so sample
 *                     peaks are held exactly in both modes.  The envelope is computed exactly
 *                     only where it may exceed the ceiling (rt_true_peak_envelope_bounded);
 *                     elsewhere it is a value <= the ceiling, which gives the same r(t) = 1
 *   required  r(t)  = min(1, ceiling / d(t)) (rounded down by 1e-12 relative)
 *   hold      h(t)  = min of r over the last H+1 = D+K+1 frames: a monotonic-deque sliding
 *                     minimum (Lemire 2006), O(1) amortized per frame, fed only with the
 *                     frames where r < 1 (h = 1 when it is empty)
 *   release   on the gain reduction u = 1 - e, v = 1 - h:
 *             u(t)  = max(v(t), u(t-1) * (1 - a) + (v(t) * a - k)),  k = max(a 2^-30, 2^-50)
 *                     i.e. instant attack to v, one-pole release toward v at rate a; the tiny
 *                     offset k makes u land exactly on v (and on 0: unity gain, exactly)
 *                     instead of creeping toward it forever (it moves the release
 *                     target by k / a <= 5e-9 in gain, about -165 dB)
 *   attack    g(t)  = mean of e = 1 - u over the last A = D+1-K frames (a linear ramp),
 *                     computed with an exact integer running sum (e in units of 2^-40,
 *                     rounded down)
 *   output    y(t)  = x(t - latency) * min(g(t), r(t - D))
 * D = lookahead frames.  K = 0 in sample-peak mode; in true-peak mode K = min(D/2, 8)
 * frames, so the gain is flat over +-K frames around each peak and the interpolating
 * filter sees one gain there.  Every e in the averaging window is at most the h of its
 * frame (up to the rounding of 1 - u), a minimum over a window that contains t - D, so
 * g(t) <= r(t - D); the min() with the stored r(t - D) makes it exact.  So |y| <= ceiling
 * without any clipping.  Safety stage: an output sample still above the float ceiling (it
 * cannot happen with the above, except through a ceiling lowered while audio sat in the
 * delay line) is set to +-ceiling, i.e. multiplied by ceiling/|x| < 1, and counted
 * (rt_limiter_clamp_count).
 *
 * Release: a one-pole on the linear gain, time constant release_ms (1 - g decays as
 * exp(-t / release_ms) once the lookahead has passed).  Auto release (program-dependent):
 * the release rate blends from release_ms / 4 (isolated peaks recover fast) to release_ms
 * (dense limiting recovers slowly, less pumping and distortion) by the density of
 * limiting: a one-pole average (500 ms) of [h < 1] that rises while limiting and decays
 * only while the gain is recovered (e >= 0.999), so one recovery runs at one rate,
 * chosen by how much of the time before it was spent limiting.  The density, and the
 * rate it gives, are updated every 64 frames (on the absolute frame grid) from the counts
 * of limiting and recovered frames in those 64 (k steps of the one-pole at once:
 * (1 - a)^k), which keeps it off the per-frame work; the rate holds for the next 64.
 *
 * At unity (no r < 1 in the hold window, u = 0 for the last frames, so the averaging
 * window is at unity too) a frame changes nothing but the density counters: such
 * stretches are taken whole and cost little more than the delay line.
 * Latency = D (+ the detector's 32 + 1 frames in true-peak mode), rt_limiter_latency.
 * Output is exactly the delayed input times a gain <= 1 (bit-exact delay when no
 * limiting is needed).  Buffers are allocated at create for 10 ms of lookahead at the
 * create-time sample rate.  Non-finite input samples are treated as 0 and counted.
 * The per-frame vector stages are built for the baseline and for x86-64-v3 (rt_cpu_level);
 * the gain computer is one scalar build, so both give the same gains in sample-peak mode
 * (the true-peak envelope may differ in the last bit: FMA). */
#ifndef RT_LIMITER_H
#define RT_LIMITER_H
#include <stdint.h>

/* cffi:begin */
typedef struct rt_limiter rt_limiter;
/* lookahead_ms in [0.5, 10], ceiling_db in [-60, 0] dBFS (dBTP in true-peak mode),
 * release_ms in [1, 5000]; auto_release and true_peak are 0 or 1.  NULL on bad arguments. */
rt_limiter *rt_limiter_create(uint32_t channels, double sample_rate, double lookahead_ms,
                              double ceiling_db, double release_ms, int auto_release, int true_peak);
void rt_limiter_destroy(rt_limiter *st);
void rt_limiter_reset(rt_limiter *st);
uint32_t rt_limiter_process(rt_limiter *st, const float *const *in, float *const *out, uint32_t frames);
/* As process; gain_out (may be NULL) receives the linear gain applied to each output frame. */
uint32_t rt_limiter_process_gain(rt_limiter *st, const float *const *in, float *const *out,
                                 float *gain_out, uint32_t frames);
uint32_t rt_limiter_latency(const rt_limiter *st);
uint32_t rt_limiter_lookahead_frames(const rt_limiter *st);
/* Setters return 0, or -1 (nothing changed) for a non-finite or out-of-range value.
 * A new lookahead changes the latency and clears the history (as reset). */
int rt_limiter_set_lookahead_ms(rt_limiter *st, double lookahead_ms);
int rt_limiter_set_ceiling_db(rt_limiter *st, double ceiling_db);
int rt_limiter_set_release_ms(rt_limiter *st, double release_ms);
void rt_limiter_set_auto_release(rt_limiter *st, int on);
/* Gain reduction (dB, >= 0) applied to the last output frame, and the largest since
 * create, reset or the last rt_limiter_clear_meter. */
double rt_limiter_gain_reduction_db(const rt_limiter *st);
double rt_limiter_max_gain_reduction_db(const rt_limiter *st);
void rt_limiter_clear_meter(rt_limiter *st);
/* The same meter for another thread while the audio thread runs (relaxed atomics,
 * updated at the end of each process call): gain reduction (dB, >= 0) of the last
 * frame, and the largest since the previous take (clears it; one reader). */
double rt_limiter_gr_now_db(const rt_limiter *st);
double rt_limiter_gr_max_take_db(rt_limiter *st);
/* Output samples the safety stage had to set to +-ceiling; non-finite input samples seen. */
uint64_t rt_limiter_clamp_count(const rt_limiter *st);
uint64_t rt_limiter_nonfinite_count(const rt_limiter *st);
/* cffi:end */
#endif
