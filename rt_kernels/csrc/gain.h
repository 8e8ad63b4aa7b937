/* Gain with per-sample linear smoothing toward a new value. */
#ifndef RT_GAIN_H
#define RT_GAIN_H
#include <stdint.h>

/* cffi:begin */
typedef struct rt_gain rt_gain;
/* ramp_ms: time a change takes (0 = jump).  Not on the audio thread. */
rt_gain *rt_gain_create(uint32_t channels, double sample_rate, double ramp_ms, double initial_linear);
void rt_gain_destroy(rt_gain *g);
/* Snap to the target and forget any ramp in progress. */
void rt_gain_reset(rt_gain *g);
/* Audio-thread safe: ramp linearly to `linear` over ramp_ms, reaching it exactly. */
void rt_gain_set_linear(rt_gain *g, double linear);
double rt_gain_current(const rt_gain *g);
double rt_gain_target(const rt_gain *g);
uint32_t rt_gain_process(rt_gain *g, const float *const *in, float *const *out, uint32_t frames);
uint32_t rt_gain_latency(const rt_gain *g);
/* cffi:end */
#endif
