/* Stateless channel kernels (latency 0).  in and out may be the same buffers. */
#ifndef RT_CHANNELS_H
#define RT_CHANNELS_H
#include <stdint.h>

/* cffi:begin */
/* 1 channel in -> 2 out (copied); 2 in -> 2 out unchanged.  Any other
 * in_channels returns -1 and writes nothing.  Otherwise returns frames. */
int64_t rt_mono_to_stereo(const float *const *in, uint32_t in_channels, float *const *out, uint32_t frames);
/* out[0] = (L + R) / 2 */
uint32_t rt_stereo_to_mono(const float *const *in, float *const *out, uint32_t frames);
/* mid = (L + R) / 2, side = (L - R) / 2 */
uint32_t rt_ms_encode(const float *const *in, float *const *out, uint32_t frames);
/* L = mid + side, R = mid - side */
uint32_t rt_ms_decode(const float *const *in, float *const *out, uint32_t frames);
/* cffi:end */
#endif
