/* rt_node_ops adapters for the mastering kernels (graph node types registered by
 * graph/kernel_nodes.py): compressor, limiter, psy_eq, stereo_width, soft_clipper,
 * loudness_meter, correlation_meter.  Parameter ids are the order of the
 * NodeType's params there; each set_param is audio-thread safe (no allocation)
 * and returns -1, storing nothing, for a value it cannot take. */
#ifndef RT_MASTERING_NODES_H
#define RT_MASTERING_NODES_H
#include <stdint.h>
#include "compressor.h"
#include "executor.h"
#include "loudness.h"
#include "correlation.h"

/* cffi:begin */
/* Compressor (adapter state around an rt_compressor made with the facade's defaults).
 * ids: 0 threshold_db, 1 ratio, 2 knee_db, 3 attack_ms, 4 release_ms, 5 makeup_db,
 * 6 auto_makeup (0/1), 7 link (rt_compressor_link), 8 detector (rt_compressor_detector),
 * 9 rms_ms.  Every value goes to the kernel at once (it smooths by itself). */
void *rt_compressor_node_state_create(uint32_t channels, double sample_rate);
const rt_node_ops *rt_compressor_node_ops(void);
/* The kernel inside a compressor node's state (rt_node_state(node)), for its lock-free
 * gain-reduction meter: rt_compressor_gr_db / rt_compressor_gr_max_take_db. */
rt_compressor *rt_compressor_node_kernel(void *state);

/* Limiter (state: rt_limiter from rt_limiter_create).  ids: 0 ceiling_db,
 * 1 release_ms, 2 auto_release (0/1).  lookahead and true_peak are creation-time
 * (they fix the latency). */
const rt_node_ops *rt_limiter_node_ops(void);

/* Psychoacoustic EQ (adapter state around an rt_psy_eq).  ids 0..24: band gains in dB
 * (+-RT_PSY_EQ_MAX_COMMAND_DB).  set_param only stores the command and marks it
 * pending; the next process call (or reset) applies every pending band with ONE
 * rt_psy_eq_set_gains_db (one ~15 us solve for a whole 25-band snapshot), then the
 * kernel ramps over ramp_ms.  reset() lands pending gains at once. */
void *rt_psy_eq_node_state_create(uint32_t channels, double sample_rate, double ramp_ms);
const rt_node_ops *rt_psy_eq_node_ops(void);

/* Stereo width (adapter state around an rt_stereo_width; channels must be 2).
 * ids: 0..2 crossover_1..3_hz (only the first bands - 1 are used), 3..6 width_1..4
 * ([0, 2]; widths of bands >= `bands` are stored and ignored), 7 mono_bass_hz
 * (0 = off, else [20, 1000]).  A crossover value is refused (-1) if non-finite,
 * outside [20, 0.45 fs], or if the used crossovers would not be strictly increasing;
 * a refused value that is in range is remembered, so a snapshot whose entries
 * arrive in an awkward order still lands (crossovers are applied at the start of
 * the next process call, and only while the used ones are strictly increasing). */
void *rt_stereo_width_node_state_create(uint32_t channels, double sample_rate, uint32_t bands, double ramp_ms);
const rt_node_ops *rt_stereo_width_node_ops(void);

/* Soft clipper (adapter state around an rt_soft_clipper).  ids: 0 ceiling_db, 1 knee_db. */
void *rt_soft_clipper_node_state_create(uint32_t channels);
const rt_node_ops *rt_soft_clipper_node_ops(void);

/* Loudness meter as a pass-through sink (output = input bit for bit; out may alias in).
 * weights: one BS.1770 weight per channel.  No live parameters.  Read it from any
 * thread with rt_loudness_snapshot(rt_loudness_node_meter(rt_node_state(node)), &v). */
void *rt_loudness_node_state_create(uint32_t channels, double sample_rate, const double *weights, int true_peak);
const rt_node_ops *rt_loudness_node_ops(void);
rt_loudness *rt_loudness_node_meter(void *state);

/* Correlation meter as a pass-through sink (channels must be 2).  No live parameters.
 * rt_correlation_value(rt_correlation_node_meter(rt_node_state(node))) from any thread. */
void *rt_correlation_node_state_create(uint32_t channels, double sample_rate, double window_ms);
const rt_node_ops *rt_correlation_node_ops(void);
rt_correlation *rt_correlation_node_meter(void *state);
/* cffi:end */
#endif
