/* Phase correlation meter for a stereo pair (a sink: reads, writes nothing).
 *
 *   r = E[L R] / sqrt(E[L^2] E[R^2])
 * where E[.] is an exponential moving average with time constant window_ms
 * (one-pole, a = 1 - exp(-1 / (window_ms * 0.001 * fs)); a sample's weight
 * falls to 1/e after window_ms), run in double, per sample:
 *   s <- s + a (x - s)   for x in {L R, L^2, R^2}.
 * r is +1 for identical channels, -1 for inverted, ~0 for unrelated ones.
 * It is defined as 0 when either channel's power is 0 (silence, or one side
 * silent), clamped to [-1, 1] against rounding, and never NaN.  States below
 * RT_STATE_FLOOR are set to zero each sample (no subnormals; silence after
 * sound settles on exactly 0).
 * The value is published once per process call (an atomic store at the end
 * of the block), so the control thread reads a consistent snapshot with
 * rt_correlation_value while the audio thread runs. */
#ifndef RT_CORRELATION_H
#define RT_CORRELATION_H
#include <stdint.h>

/* cffi:begin */
typedef struct rt_correlation rt_correlation;
/* channels must be 2.  Not on the audio thread. */
rt_correlation *rt_correlation_create(uint32_t channels, double sample_rate, double window_ms);
void rt_correlation_destroy(rt_correlation *m);
void rt_correlation_reset(rt_correlation *m);
uint32_t rt_correlation_process(rt_correlation *m, const float *const *in, uint32_t frames);
uint32_t rt_correlation_latency(const rt_correlation *m);
/* Correlation in [-1, 1] as of the end of the last processed block (0 before any). */
double rt_correlation_value(const rt_correlation *m);
/* The averaging coefficient a (test accessor). */
double rt_correlation_coefficient(const rt_correlation *m);
/* cffi:end */
#endif
