/* Peak and RMS meter (a sink: reads its input, writes nothing). */
#ifndef RT_LEVEL_METER_H
#define RT_LEVEL_METER_H
#include <stdint.h>

/* cffi:begin */
typedef struct rt_level_meter rt_level_meter;
/* RMS over a sliding window of window_ms (the window starts out silent). */
rt_level_meter *rt_level_meter_create(uint32_t channels, double sample_rate, double window_ms);
void rt_level_meter_destroy(rt_level_meter *m);
void rt_level_meter_reset(rt_level_meter *m);
uint32_t rt_level_meter_process(rt_level_meter *m, const float *const *in, uint32_t frames);
uint32_t rt_level_meter_latency(const rt_level_meter *m);
/* Largest |sample| since creation, reset or the last clear_peak (linear). */
double rt_level_meter_peak(const rt_level_meter *m, uint32_t channel);
void rt_level_meter_clear_peak(rt_level_meter *m);
/* RMS over the last window_ms (linear). */
double rt_level_meter_rms(const rt_level_meter *m, uint32_t channel);
uint32_t rt_level_meter_window_frames(const rt_level_meter *m);
/* cffi:end */
#endif
