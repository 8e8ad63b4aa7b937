/* Multiband mid/side stereo width with Linkwitz-Riley crossovers, optional mono bass.
 *
 * Formulation (per frame, double precision inside):
 *   M = (L + R) / 2,  S = (L - R) / 2
 *   S is split into 1..4 bands by LR4 crossovers (each LP/HP = two cascaded
 *   Butterworth sections, Q = 1/sqrt(2), from rt_biquad_design).  Lower bands are
 *   phase-compensated by the all-pass of every higher crossover (LP4 + HP4 of an
 *   LR4 pair is exactly the RBJ 2nd-order all-pass at Q = 1/sqrt(2)), so
 *   sum(bands) = AP(S), AP = product of the crossover all-passes.
 *   S' = sum_k width_k * band_k(S),  M' = AP(M).
 *   Mono bass (optional): an LR8 split of S' at mono_bass_hz (4th-order
 *   Butterworth run twice, 48 dB/oct: an LR4 would remove only ~25 dB an
 *   octave below): S' -> HP8(S') + (1 - amount) LP8(S'), M' -> the matching
 *   4th-order all-pass (= LP8 + HP8).  amount ramps 0 -> 1 over ramp_ms when
 *   mono bass is turned on and back to 0 when it is turned off.  The first
 *   turn-on in a running kernel inserts the stage (its all-pass starts from
 *   rest: a small low-frequency transient, like switching in a filter); once
 *   in, it stays in the path (an all-pass at amount 0) until reset, which
 *   removes it if it is off, so later off/on toggles fade without a click.
 *   L_out = M' + S',  R_out = M' - S'.
 * Transparency: with every width 1 and no mono bass, L_out = AP(L) and
 * R_out = AP(R): the same all-pass on both channels, flat magnitude, image
 * unchanged (not bit-exact: the phase turns at each crossover).  All widths 0:
 * S' = 0 exactly, so L_out == R_out bit for bit.  Latency 0.
 * Stereo only: create returns NULL unless channels == 2. */
#ifndef RT_STEREO_WIDTH_H
#define RT_STEREO_WIDTH_H
#include <stdint.h>

#define RT_SW_WIDTH_MAX 2.0

/* cffi:begin */
#define RT_SW_MAX_BANDS 4

typedef struct rt_stereo_width rt_stereo_width;

/* bands in [1, 4]; crossover_hz: bands - 1 strictly increasing frequencies in
 * (0, 0.5 * sample_rate) (may be NULL when bands == 1).  Widths start at 1, mono
 * bass off.  ramp_ms >= 0: time a width or mono bass change takes (linear, per
 * sample); crossover changes apply at once (coefficients recomputed, history kept).
 * Not on the audio thread. */
rt_stereo_width *rt_stereo_width_create(uint32_t channels, double sample_rate, uint32_t bands,
                                        const double *crossover_hz, double ramp_ms);
void rt_stereo_width_destroy(rt_stereo_width *st);
/* Clears filter history and finishes any ramp; keeps parameters. */
void rt_stereo_width_reset(rt_stereo_width *st);
/* Audio-thread safe setters.  Return 0, or -1 (nothing changed) for a bad value. */
int rt_stereo_width_set_width(rt_stereo_width *st, uint32_t band, double width);  /* [0, 2] */
/* All bands - 1 crossovers at once, strictly increasing, in (0, 0.5 fs). */
int rt_stereo_width_set_crossovers(rt_stereo_width *st, const double *crossover_hz, uint32_t count);
/* hz == 0 turns mono bass off (fades out); otherwise (0, 0.5 fs), fades in. */
int rt_stereo_width_set_mono_bass(rt_stereo_width *st, double hz);
/* How much of the side below mono_bass_hz is removed now: 0..1 (mid-fade values between). */
double rt_stereo_width_mono_bass_amount(const rt_stereo_width *st);
uint32_t rt_stereo_width_bands(const rt_stereo_width *st);
double rt_stereo_width_target_width(const rt_stereo_width *st, uint32_t band);
double rt_stereo_width_current_width(const rt_stereo_width *st, uint32_t band);
uint32_t rt_stereo_width_process(rt_stereo_width *st, const float *const *in, float *const *out, uint32_t frames);
uint32_t rt_stereo_width_latency(const rt_stereo_width *st);
/* cffi:end */
#endif
