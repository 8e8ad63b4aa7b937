/* rt_node_ops adapters for the foundation kernels (biquad, gain, dc_blocker,
 * delay, level_meter).  The pattern for any new kernel: see graph/README.md. */
#ifndef RT_NODE_ADAPTERS_H
#define RT_NODE_ADAPTERS_H
#include <stdint.h>
#include "executor.h"
#include "level_meter.h"

/* cffi:begin */
/* Biquad cascade.  Parameters, per section s (id = 5 * s + k):
 *   k = 0 type (rt_biquad_type), 1 freq_hz, 2 q, 3 gain_db, 4 shelf_slope (0 = use q).
 * Every section starts as peaking 1 kHz, q 0.7071, 0 dB (identity response). */
void *rt_biquad_node_state_create(uint32_t channels, uint32_t sections, double sample_rate);
const rt_node_ops *rt_biquad_node_ops(void);
enum { RT_BIQUAD_NODE_PARAMS_PER_SECTION = 5 };

/* Gain (state: rt_gain from rt_gain_create).  Param 0: gain_db; the kernel ramps. */
const rt_node_ops *rt_gain_node_ops(void);
/* DC blocker (state: rt_dc_blocker).  No live parameters. */
const rt_node_ops *rt_dc_blocker_node_ops(void);
/* Delay (state: rt_delay).  No live parameters: the latency must not change in a plan. */
const rt_node_ops *rt_delay_node_ops(void);
/* Level meter as a pass-through node (adapter state around an rt_level_meter).
 * Its readings are not synchronised with the audio thread: read them only
 * while the executor is not running (offline), or use executor telemetry. */
void *rt_level_meter_node_state_create(uint32_t channels, double sample_rate, double window_ms);
const rt_node_ops *rt_level_meter_node_ops(void);
rt_level_meter *rt_level_meter_node_meter(void *state);
/* cffi:end */
#endif
