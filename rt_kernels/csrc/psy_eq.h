/* Psychoacoustic EQ: 25 Bark-band peaking biquads in cascade (minimum phase,
 * latency 0) whose section gains are solved so that the realized magnitude at
 * every band centre equals the commanded gain (Valimaki & Liski, "Accurate
 * cascade graphic equalizer", IEEE SPL 24(2), 2017, plus exact-response
 * correction steps).  Analysis and target curves live in rt_kernels/psy_eq.py. */
#ifndef RT_PSY_EQ_H
#define RT_PSY_EQ_H
#include <stdint.h>

/* cffi:begin */
#define RT_PSY_EQ_BANDS 25
#define RT_PSY_EQ_MAX_COMMAND_DB 12
#define RT_PSY_EQ_MAX_RAMP_MS 5000
typedef struct rt_psy_eq rt_psy_eq;

/* The band table (independent of the sample rate): edges[RT_PSY_EQ_BANDS + 1] in Hz,
 * centres[RT_PSY_EQ_BANDS] (geometric mean of the edges) and the peaking-filter q
 * that puts each filter's half-gain (dB) points on its band edges. */
void rt_psy_eq_band_table(double *edges_hz, double *centres_hz, double *q);

/* Not on the audio thread.  All gains start at 0 dB.  A gain change moves the section
 * gains linearly (in dB) to their new values over ramp_ms (0 = at once, up to
 * RT_PSY_EQ_MAX_RAMP_MS), redesigning the sections every 32 frames of the absolute
 * frame count.  NULL on bad arguments. */
rt_psy_eq *rt_psy_eq_create(uint32_t channels, double sample_rate, double ramp_ms);
void rt_psy_eq_destroy(rt_psy_eq *eq);
void rt_psy_eq_reset(rt_psy_eq *eq);
uint32_t rt_psy_eq_process(rt_psy_eq *eq, const float *const *in, float *const *out, uint32_t frames);
uint32_t rt_psy_eq_latency(const rt_psy_eq *eq);
/* Bands whose upper edge lies below Nyquist (25 at 44.1 kHz and up); commands for
 * the bands above are ignored (their sections stay identity). */
uint32_t rt_psy_eq_active_bands(const rt_psy_eq *eq);
/* Audio-thread safe (no allocation): command gains_db[RT_PSY_EQ_BANDS], each finite
 * and within +-RT_PSY_EQ_MAX_COMMAND_DB.  Solves the section gains (about 13 us) and
 * starts the ramp toward them from where the sections are now.  Returns 0, or -1
 * (nothing changed) for a bad command.  _now skips the ramp. */
int rt_psy_eq_set_gains_db(rt_psy_eq *eq, const double *gains_db);
int rt_psy_eq_set_gains_db_now(rt_psy_eq *eq, const double *gains_db);
/* Frames until the current ramp ends (0 when settled). */
uint32_t rt_psy_eq_ramp_frames_left(const rt_psy_eq *eq);
/* Test accessors: the section gains in use (mid-ramp: the values reached), and the cascade's magnitude (dB) at the
 * band centres as computed from the coefficients in use. */
void rt_psy_eq_section_gains_db(const rt_psy_eq *eq, double *dest);
void rt_psy_eq_centre_response_db(const rt_psy_eq *eq, double *dest);
/* The coefficients in use, RT_PSY_EQ_BANDS * 5 doubles (b0 b1 b2 a1 a2, identity for
 * inactive bands), e.g. to design the offline linear-phase FIR from the same curve. */
void rt_psy_eq_read_coefficients(const rt_psy_eq *eq, double *dest);
/* cffi:end */
#endif
