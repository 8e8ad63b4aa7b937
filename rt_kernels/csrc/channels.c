#include "channels.h"

int64_t rt_mono_to_stereo(const float *const *in, uint32_t in_channels, float *const *out, uint32_t frames)
{
    if (in_channels != 1 && in_channels != 2) return -1;
    const float *l = in[0], *r = in_channels == 2 ? in[1] : in[0];
    for (uint32_t n = 0; n < frames; n++) {
        float a = l[n], b = r[n];
        out[0][n] = a;
        out[1][n] = b;
    }
    return frames;
}

uint32_t rt_stereo_to_mono(const float *const *in, float *const *out, uint32_t frames)
{
    for (uint32_t n = 0; n < frames; n++) out[0][n] = (float)(0.5 * ((double)in[0][n] + (double)in[1][n]));
    return frames;
}

uint32_t rt_ms_encode(const float *const *in, float *const *out, uint32_t frames)
{
    for (uint32_t n = 0; n < frames; n++) {
        double l = in[0][n], r = in[1][n];
        out[0][n] = (float)(0.5 * (l + r));
        out[1][n] = (float)(0.5 * (l - r));
    }
    return frames;
}

uint32_t rt_ms_decode(const float *const *in, float *const *out, uint32_t frames)
{
    for (uint32_t n = 0; n < frames; n++) {
        double m = in[0][n], s = in[1][n];
        out[0][n] = (float)(m + s);
        out[1][n] = (float)(m - s);
    }
    return frames;
}
