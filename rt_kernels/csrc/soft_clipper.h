/* Static soft clipper with a ceiling.  Per sample, a = |x|:
 *   a <= T:  y = x                                        (exact identity)
 *   a >  T:  y = sign(x) * (T + (C - T) * tanh((a - T) / (C - T)))
 * C = 10^(ceiling_db/20), T = C * 10^(-knee_db/20) (the knee starts knee_db below
 * the ceiling).  tanh'(0) = 1 and tanh''(0) = 0, so the curve and its first (and
 * second) derivative are continuous at T; it is odd and approaches C without
 * reaching it.  The float32 output is additionally held at or below the largest
 * float <= C, so rounding can never put a sample above the ceiling.
 * Stateless, latency 0.  Inf maps to +-C; NaN passes through as NaN. */
#ifndef RT_SOFT_CLIPPER_H
#define RT_SOFT_CLIPPER_H
#include <stdint.h>

/* cffi:begin */
typedef struct rt_soft_clipper rt_soft_clipper;
/* ceiling_db in [-60, 0] dBFS, knee_db in [0.1, 24] dB.  Not on the audio thread. */
rt_soft_clipper *rt_soft_clipper_create(uint32_t channels, double ceiling_db, double knee_db);
void rt_soft_clipper_destroy(rt_soft_clipper *s);
void rt_soft_clipper_reset(rt_soft_clipper *s);
/* Audio-thread safe; both at once; 0, or -1 (nothing stored) for a non-finite or
 * out-of-range value.  Takes effect at the next frame (no ramp: a static curve). */
int rt_soft_clipper_set_params(rt_soft_clipper *s, double ceiling_db, double knee_db);
uint32_t rt_soft_clipper_process(rt_soft_clipper *s, const float *const *in, float *const *out, uint32_t frames);
uint32_t rt_soft_clipper_latency(const rt_soft_clipper *s);
/* The curve in double precision (without the float32 hold), for plots and tests. */
double rt_soft_clipper_curve(const rt_soft_clipper *s, double x);
/* Largest float32 output: the largest float <= C. */
double rt_soft_clipper_ceiling_linear(const rt_soft_clipper *s);
double rt_soft_clipper_knee_linear(const rt_soft_clipper *s);
/* cffi:end */
#endif
