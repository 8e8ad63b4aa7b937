/* DC blocker: one-pole/one-zero high-pass, unity gain at Nyquist. */
#ifndef RT_DC_BLOCKER_H
#define RT_DC_BLOCKER_H
#include <stdint.h>

/* cffi:begin */
typedef struct rt_dc_blocker rt_dc_blocker;
rt_dc_blocker *rt_dc_blocker_create(uint32_t channels, double sample_rate, double cutoff_hz);
void rt_dc_blocker_destroy(rt_dc_blocker *d);
void rt_dc_blocker_reset(rt_dc_blocker *d);
uint32_t rt_dc_blocker_process(rt_dc_blocker *d, const float *const *in, float *const *out, uint32_t frames);
uint32_t rt_dc_blocker_latency(const rt_dc_blocker *d);
/* cffi:end */
#endif
