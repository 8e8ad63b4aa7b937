/* RBJ Audio EQ Cookbook biquads: a cascade of N sections over any channel count. */
#ifndef RT_BIQUAD_H
#define RT_BIQUAD_H
#include <stdint.h>

/* cffi:begin */
typedef enum {
    RT_BQ_PEAKING = 0,
    RT_BQ_LOW_SHELF = 1,
    RT_BQ_HIGH_SHELF = 2,
    RT_BQ_LOW_PASS = 3,
    RT_BQ_HIGH_PASS = 4,
    RT_BQ_BAND_PASS = 5,  /* constant 0 dB peak gain */
    RT_BQ_NOTCH = 6,
    RT_BQ_ALL_PASS = 7,
    RT_BQ_IDENTITY = 8
} rt_biquad_type;

typedef struct rt_biquad rt_biquad;

/* Cookbook coefficients, normalised by a0, written as b0 b1 b2 a1 a2.  For the
 * shelves, shelf_slope > 0 selects the slope form (S, 1 = steepest monotonic);
 * shelf_slope == 0 uses q.  Returns 0, or -1 for a parameter outside its range
 * (coefficients untouched).  Pure: safe on the audio thread. */
int rt_biquad_design(int type, double sample_rate, double freq_hz, double q,
                     double gain_db, double shelf_slope, double coeffs[5]);

/* Not on the audio thread: allocates.  Every section starts as identity. */
rt_biquad *rt_biquad_create(uint32_t channels, uint32_t sections, double sample_rate);
void rt_biquad_destroy(rt_biquad *bq);
void rt_biquad_reset(rt_biquad *bq);
/* Audio-thread safe: recompute one section's coefficients in place; they apply from
 * the next frame processed.  State is kept (direct form I tolerates coefficient changes
 * without blowing up). */
int rt_biquad_set_section(rt_biquad *bq, uint32_t index, int type, double freq_hz,
                          double q, double gain_db, double shelf_slope);
int rt_biquad_set_coefficients(rt_biquad *bq, uint32_t index, const double coeffs[5]);
uint32_t rt_biquad_process(rt_biquad *bq, const float *const *in, float *const *out, uint32_t frames);
uint32_t rt_biquad_latency(const rt_biquad *bq);
/* Test accessors: the recursive state between calls, channels * sections * RT_BQ_HISTORY
 * doubles (per channel, per section: x1 x2 y1 y2, the last two inputs and outputs).
 * read_state allocates: not on the audio thread. */
#define RT_BQ_HISTORY 4
uint32_t rt_biquad_state_size(const rt_biquad *bq);
void rt_biquad_read_state(const rt_biquad *bq, double *dest);
/* cffi:end */

/* The peaking design of rt_biquad_design from its frequency terms cos w0 and
 * alpha = sin w0 / (2 q), with w0 = 2 pi f0 / fs: the same coefficients, for callers that
 * redesign one frequency at many gains (the psychoacoustic EQ's solve and ramps). */
int rt_biquad_peaking(double cos_w0, double alpha, double gain_db, double coeffs[5]);
#endif
