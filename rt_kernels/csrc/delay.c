#include "delay.h"

#include <stdlib.h>
#include <string.h>

struct rt_delay {
    uint32_t channels;
    uint32_t size;     /* ring length: max delay + 1 */
    uint32_t delay;
    uint32_t write;    /* next write index, shared by all channels */
    float *ring;       /* channels * size */
};

rt_delay *rt_delay_create(uint32_t channels, uint32_t max_delay_frames, uint32_t delay_frames)
{
    if (channels == 0 || delay_frames > max_delay_frames || max_delay_frames >= 0x7FFFFFFFu) return NULL;
    rt_delay *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->channels = channels;
    d->size = max_delay_frames + 1;
    d->delay = delay_frames;
    d->ring = calloc((size_t)channels * d->size, sizeof(float));
    if (!d->ring) {
        free(d);
        return NULL;
    }
    return d;
}

void rt_delay_destroy(rt_delay *d)
{
    if (!d) return;
    free(d->ring);
    free(d);
}

void rt_delay_reset(rt_delay *d)
{
    memset(d->ring, 0, sizeof(float) * d->channels * d->size);
    d->write = 0;
}

int rt_delay_set_frames(rt_delay *d, uint32_t delay_frames)
{
    if (delay_frames >= d->size) return -1;
    d->delay = delay_frames;
    return 0;
}

uint32_t rt_delay_process(rt_delay *d, const float *const *in, float *const *out, uint32_t frames)
{
    if (d->delay == 0) {
        /* The ring is still written, so a later longer delay finds real history. */
        for (uint32_t ch = 0; ch < d->channels; ch++) {
            float *ring = d->ring + (size_t)ch * d->size;
            uint32_t w = d->write;
            const float *x = in[ch];
            for (uint32_t n = 0; n < frames; n++) {
                ring[w] = x[n];
                if (++w == d->size) w = 0;
            }
            if (out[ch] != x) memcpy(out[ch], x, sizeof(float) * frames);
        }
    } else {
        for (uint32_t ch = 0; ch < d->channels; ch++) {
            float *ring = d->ring + (size_t)ch * d->size;
            uint32_t w = d->write;
            uint32_t r = w >= d->delay ? w - d->delay : w + d->size - d->delay;
            const float *x = in[ch];
            float *y = out[ch];
            for (uint32_t n = 0; n < frames; n++) {
                float v = x[n];  /* read first: out may alias in */
                ring[w] = v;
                y[n] = ring[r];
                if (++w == d->size) w = 0;
                if (++r == d->size) r = 0;
            }
        }
    }
    d->write = (uint32_t)(((uint64_t)d->write + frames) % d->size);
    return frames;
}

uint32_t rt_delay_latency(const rt_delay *d) { return d->delay; }
uint32_t rt_delay_max_frames(const rt_delay *d) { return d->size - 1; }
