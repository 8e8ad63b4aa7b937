/* True-peak oversampler: streaming polyphase FIR interpolator in the spirit of
 * ITU-R BS.1770-4 Annex 2 (a sink that measures; it writes no audio).
 *
 * Oversampling factor (rt_true_peak_create, the BS.1770 rule):
 *   4x below 96 kHz, 2x from 96 kHz up to below 192 kHz, 1x at 192 kHz and above.
 * rt_true_peak_create_factor picks the factor explicitly (1, 2, 4 or 8), e.g. for a
 * limiter that must see inter-sample peaks of full-band content at 96 kHz too.
 *
 * Filter (designed at create time, per factor L): windowed sinc, 32 taps per phase
 * (32*L taps, the first one zero so the filter is symmetric and odd-length), cutoff
 * at the input Nyquist frequency fs/2, Kaiser window beta = 4.5.  Each phase is
 * normalized to a DC gain of exactly 1 (DC reads exact), and phase 0 is a pure
 * delay (the input samples themselves pass unchanged: a true peak is never below
 * the sample peak).  Passband: every phase within +-0.1 dB from 0 to 0.4545 fs
 * (20 kHz at 44.1 kHz, fs/2.2); the prototype is within +-0.05 dB there.  Stopband:
 * images at >= 0.5455 fs are attenuated by >= 44 dB (2x), 46 dB (4x), 48 dB (8x).
 * Half amplitude at fs/2.  The oversampled grid itself under-reads a peak that falls
 * between two grid points (4x: up to 0.17 dB at fs/4, ~0.6 dB near fs/2.2 for one
 * isolated peak; 2x: ~0.7 dB at fs/4): that is BS.1770's own limitation.
 *
 * Latency: 16 input frames for factor > 1 (half the per-phase length), 0 for 1x.
 * The L interpolated values produced for input frame n are the signal at times
 * n - latency + p/L, p = 0..L-1 (the interval [n - latency, n - latency + 1)).
 *
 * Every interpolated value is computed by the same arithmetic (one float32 accumulator,
 * taps added in a fixed order) whatever the block split or its position in an internal
 * vector, so results are bit-identical for any block split.  Interpolation is float32
 * (error ~1e-6 relative; a few 1e-5 on values far below the peak); running maxima are
 * double.  Internally the input is handled in chunks of up to 256 frames per channel,
 * with time in the vector dimension (8 frames per vector with AVX2 + FMA, chosen at
 * create time by rt_cpu_level() >= 3, else 4); the two builds may differ by rounding. */
#ifndef RT_TRUE_PEAK_H
#define RT_TRUE_PEAK_H
#include <stdint.h>

/* cffi:begin */
typedef struct rt_true_peak rt_true_peak;
/* BS.1770 factor for the rate (see above).  NULL on bad arguments or no memory. */
rt_true_peak *rt_true_peak_create(uint32_t channels, double sample_rate);
/* Explicit factor: 1, 2, 4 or 8 (anything else returns NULL). */
rt_true_peak *rt_true_peak_create_factor(uint32_t channels, double sample_rate, uint32_t factor);
/* Explicit filter: taps_per_phase a multiple of 4 in [8, 128], Kaiser beta in [0, 20] (the
 * defaults above are 32 and 4.5).  Latency is taps_per_phase / 2 (0 at 1x). */
rt_true_peak *rt_true_peak_create_design(uint32_t channels, double sample_rate, uint32_t factor,
                                         uint32_t taps_per_phase, double kaiser_beta);
void rt_true_peak_destroy(rt_true_peak *st);
/* Clears the filter history and the running maxima. */
void rt_true_peak_reset(rt_true_peak *st);
/* Input frames by which the interpolated signal lags the input (16, or 0 at 1x). */
uint32_t rt_true_peak_latency(const rt_true_peak *st);
/* Oversampling factor L. */
uint32_t rt_true_peak_factor(const rt_true_peak *st);
/* Audio thread.  Updates each channel's running max of |interpolated value|.
 * For the MAXIMUM only, it skips work that cannot change it: an interpolated value is a
 * dot product of one phase's taps with the input window it covers, so its magnitude is at
 * most B * max|x| over that window (B: the largest sum of |taps| over the phases, times a
 * margin for float32 rounding, computed at create).  A FIR block (8-24 frames) whose
 * window gives B * max|x| < the channel's running maximum is not computed; nor is one
 * where the 8 central taps' values, computed, plus a bound on the other taps' share
 * (their sum of |taps| * max|x|, with the rounding margins) stay below it.  The maximum
 * read by rt_true_peak_max is the same number, bit for bit, as without skipping, for
 * any block split.  The envelope functions below never skip. */
uint32_t rt_true_peak_process(rt_true_peak *st, const float *const *in, uint32_t frames);
/* Audio thread.  As process (running maxima updated too), and also writes, per channel
 * and input frame, env[ch][n] = max over p of |interpolated value at n - latency + p/L|. */
uint32_t rt_true_peak_envelope(rt_true_peak *st, const float *const *in, float *const *env, uint32_t frames);
/* As envelope, but each oversampled point that is a local maximum of |y| counts as the
 * peak of the parabola through it and its two neighbours (capped at 1/cos(pi/2L) times
 * the point), which recovers most of what the grid misses between points.  A point is
 * final once its successor exists, so env[ch][n] covers the points at
 * n - latency - 1/L .. n - latency + (L-2)/L.  Used by the limiter's detector. */
uint32_t rt_true_peak_envelope_refined(rt_true_peak *st, const float *const *in, float *const *env, uint32_t frames);
/* Audio thread.  The refined envelope where it matters against a threshold (the limiter's
 * detector): env[ch][n] is bit for bit the value rt_true_peak_envelope_refined gives
 * wherever that value exceeds threshold, and some value in [0, threshold] elsewhere (the
 * sample at phase 0, |x[n - latency]|, where the FIR was not computed).  It computes the FIR
 * only for blocks that may exceed the threshold (the bounds of process, the second one with
 * 8 and then 16 central taps, against threshold / cap instead of the running maximum), so
 * it costs far less on material that stays below it.  The running maxima are left unspecified (they do not count the values it
 * skipped).  At 1x, or with a negative or NaN threshold, it is rt_true_peak_envelope_refined. */
uint32_t rt_true_peak_envelope_bounded(rt_true_peak *st, const float *const *in, float *const *env,
                                       double threshold, uint32_t frames);
/* Largest |interpolated value| on channel ch since create, reset or clear (linear;
 * 0 for a channel index out of range). */
double rt_true_peak_max(const rt_true_peak *st, uint32_t ch);
/* Zeroes the running maxima (history kept). */
void rt_true_peak_clear(rt_true_peak *st);
/* Audio thread.  As rt_true_peak_process (the same maxima, bit for bit; the envelope
 * functions may follow), for a caller that already knows, per channel, bound[ch] >=
 * |in[ch][i]| for every non-NaN sample of these frames (NaN or +inf: no bound known): a
 * channel whose bound and history cannot raise its maximum only keeps its history, without
 * reading the frames again; with AVX-512 (rt_cpu_level() 4) the others are screened in
 * groups of 16 frames with process's second test, and only the groups that may raise the
 * maximum are computed.  For the loudness meter. */
uint32_t rt_true_peak_process_bounded(rt_true_peak *st, const float *const *in, uint32_t frames, const float *bound);
/* cffi:end */
#endif
