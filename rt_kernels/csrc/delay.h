/* Integer delay line (latency compensation, bypass dry paths, plain delays). */
#ifndef RT_DELAY_H
#define RT_DELAY_H
#include <stdint.h>

/* cffi:begin */
typedef struct rt_delay rt_delay;
/* Room for up to max_delay_frames; starts at delay_frames (<= max) with silent
 * history.  Not on the audio thread. */
rt_delay *rt_delay_create(uint32_t channels, uint32_t max_delay_frames, uint32_t delay_frames);
void rt_delay_destroy(rt_delay *d);
void rt_delay_reset(rt_delay *d);
/* Audio-thread safe: change the delay (history kept, so the output jumps to the
 * sample written delay_frames ago).  Returns -1 (nothing changed) above max. */
int rt_delay_set_frames(rt_delay *d, uint32_t delay_frames);
uint32_t rt_delay_process(rt_delay *d, const float *const *in, float *const *out, uint32_t frames);
/* = the current delay in frames */
uint32_t rt_delay_latency(const rt_delay *d);
uint32_t rt_delay_max_frames(const rt_delay *d);
/* cffi:end */
#endif
