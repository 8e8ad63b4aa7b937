/* Feed-forward compressor (Giannoulis, Massberg & Reiss, "Digital Dynamic Range
 * Compressor Design -- A Tutorial and Analysis", JAES 60(6), 2012).
 *
 * Per sample and per detector (one detector per channel, or one shared by all
 * channels when linked):
 *   level   x_G = 20 log10 |x|  (peak)  or  10 log10 ms  (RMS: ms = one-pole mean of x^2)
 *   static curve y_G: identity below T - W/2, T + (x_G - T)/R above T + W/2, and
 *           x_G + (1/R - 1)(x_G - T + W/2)^2 / (2W) inside the knee  (soft-knee gain computer)
 *   x_L = x_G - y_G  (gain reduction wanted, dB, >= 0)
 *   smooth branching peak detector on x_L in the dB domain (log-domain detector)
 *       y_L[n] = a_A y_L[n-1] + (1 - a_A) x_L[n]   if x_L[n] > y_L[n-1]
 *       y_L[n] = a_R y_L[n-1] + (1 - a_R) x_L[n]   otherwise
 *       a = exp(-1 / (tau * fs)): tau is the time to reach 1 - 1/e of a step
 *   gain = 10^((makeup_db - y_L) / 20), applied to every sample (no per-chunk gain).
 * All detector state is double.  Latency 0.
 * Levels and gains go through polynomial log2/exp2 (errors below 1.5e-8 dB and 1e-9 dB;
 * tested: every output sample within 1 float32 ulp of the formulas above in float64).  The
 * vector code is picked per CPU at create time (rt_cpu_level: SSE2, x86-64-v3, v4);
 * the paths differ only by rounding (fused multiply-adds), below 1 ulp of the output. */
#ifndef RT_COMPRESSOR_H
#define RT_COMPRESSOR_H
#include <stdint.h>

/* cffi:begin */
typedef enum {
    RT_CMP_DETECT_PEAK = 0,   /* instantaneous |x| */
    RT_CMP_DETECT_RMS = 1     /* mean square, one-pole with time constant rms_ms */
} rt_compressor_detector;

typedef enum {
    RT_CMP_LINK_NONE = 0,     /* each channel has its own detector and gain */
    RT_CMP_LINK_MAX = 1,      /* one detector fed by the loudest channel */
    RT_CMP_LINK_MEAN = 2      /* one detector fed by the mean of the channels' linear levels
                                 (peak: mean |x|; RMS: mean of the channels' RMS values) */
} rt_compressor_link;

/* One consistent parameter set.  Ranges (checked by rt_compressor_set_params):
 * threshold_db [-100, 20] dBFS, ratio [1, 1000], knee_db [0, 48] (full width),
 * attack_ms [0, 2000], release_ms [0, 10000], makeup_db [-48, 48],
 * auto_makeup 0/1, detector rt_compressor_detector, rms_ms [0.1, 2000],
 * link rt_compressor_link.
 * Auto makeup adds the static curve's gain reduction at 0 dBFS (knee included),
 * so a steady 0 dBFS level comes out at 0 dBFS + makeup_db. */
typedef struct {
    double threshold_db;
    double ratio;
    double knee_db;
    double attack_ms;
    double release_ms;
    double makeup_db;
    int auto_makeup;
    int detector;
    double rms_ms;
    int link;
} rt_compressor_params;

typedef struct rt_compressor rt_compressor;

/* Not on the audio thread: allocates.  NULL for bad arguments or no memory. */
rt_compressor *rt_compressor_create(uint32_t channels, double sample_rate, const rt_compressor_params *p);
void rt_compressor_destroy(rt_compressor *c);
/* Clears detector state and meters; a makeup ramp in progress snaps to its target. */
void rt_compressor_reset(rt_compressor *c);
uint32_t rt_compressor_process(rt_compressor *c, const float *const *in, float *const *out, uint32_t frames);
uint32_t rt_compressor_latency(const rt_compressor *c);

/* Audio-thread safe (no allocation), between blocks.  All or nothing: returns 0,
 * or -1 if any field is non-finite or out of range (nothing is stored).
 * A makeup change ramps linearly in dB over 20 ms; the other parameters act at
 * once (changes of threshold/ratio/knee pass through the attack/release smoother). */
int rt_compressor_set_params(rt_compressor *c, const rt_compressor_params *p);
void rt_compressor_get_params(const rt_compressor *c, rt_compressor_params *p);
int rt_compressor_set_threshold_db(rt_compressor *c, double threshold_db);
int rt_compressor_set_ratio(rt_compressor *c, double ratio);
int rt_compressor_set_knee_db(rt_compressor *c, double knee_db);
int rt_compressor_set_attack_ms(rt_compressor *c, double attack_ms);
int rt_compressor_set_release_ms(rt_compressor *c, double release_ms);
int rt_compressor_set_makeup_db(rt_compressor *c, double makeup_db);
int rt_compressor_set_auto_makeup(rt_compressor *c, int on);
int rt_compressor_set_detector(rt_compressor *c, int detector, double rms_ms);
int rt_compressor_set_link(rt_compressor *c, int link);
/* The makeup gain applied once any ramp is done (makeup_db + auto part), dB. */
double rt_compressor_makeup_total_db(const rt_compressor *c);

/* Metering, readable from any thread while the audio thread runs (atomics).
 * Gain reduction is in dB, >= 0 (6.0 = the gain is 6 dB below makeup).
 * gr_db: at the last processed frame.  gr_max_take_db: largest since the previous
 * take (or reset), and clears it. */
double rt_compressor_gr_db(const rt_compressor *c, uint32_t channel);
double rt_compressor_gr_max_take_db(rt_compressor *c, uint32_t channel);
/* cffi:end */
#endif
