/* Two-input kernels: dry/wet mix and equal-power crossfade. */
#ifndef RT_MIX_H
#define RT_MIX_H
#include <stdint.h>

/* cffi:begin */
typedef struct rt_mix rt_mix;
/* out = dry * (1 - wet_amount) + wet * wet_amount, the amount ramping linearly
 * over ramp_ms when it changes.  Amount 0 returns dry bit for bit, 1 wet. */
rt_mix *rt_mix_create(uint32_t channels, double sample_rate, double ramp_ms, double wet_amount);
void rt_mix_destroy(rt_mix *m);
void rt_mix_reset(rt_mix *m);
void rt_mix_set_amount(rt_mix *m, double wet_amount);
double rt_mix_current(const rt_mix *m);
uint32_t rt_mix_process(rt_mix *m, const float *const *dry, const float *const *wet,
                        float *const *out, uint32_t frames);
uint32_t rt_mix_latency(const rt_mix *m);

typedef struct rt_xfade rt_xfade;
/* Equal-power crossfade from input a to input b: a*cos(p*pi/2) + b*sin(p*pi/2),
 * p rising linearly from 0 to 1 over the fade.  Before rt_xfade_start (or
 * after reset) the output is a; once the fade is over it is b, bit for bit. */
rt_xfade *rt_xfade_create(uint32_t channels);
void rt_xfade_destroy(rt_xfade *x);
void rt_xfade_reset(rt_xfade *x);
/* Audio-thread safe.  length_frames 0 switches to b at once. */
void rt_xfade_start(rt_xfade *x, uint32_t length_frames);
/* Fade position: 0 = all a, 1 = all b. */
double rt_xfade_position(const rt_xfade *x);
uint32_t rt_xfade_process(rt_xfade *x, const float *const *a, const float *const *b,
                          float *const *out, uint32_t frames);
uint32_t rt_xfade_latency(const rt_xfade *x);
/* cffi:end */
#endif
