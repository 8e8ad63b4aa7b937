#include "delay.h"

#include <stdlib.h>
#include <string.h>

/* Ring slack beyond the longest delay: lets every block be copied in whole
 * segments (see rt_delay_process) instead of sample by sample. */
#define RT_DELAY_SLACK 4096u

struct rt_delay {
    uint32_t channels;
    uint32_t max_delay;
    uint32_t size;     /* ring length: max delay + slack */
    uint32_t delay;
    uint32_t write;    /* next write index, shared by all channels */
    float *ring;       /* channels * size */
};

rt_delay *rt_delay_create(uint32_t channels, uint32_t max_delay_frames, uint32_t delay_frames)
{
    if (channels == 0 || delay_frames > max_delay_frames || max_delay_frames >= 0x7FFFFFFFu - RT_DELAY_SLACK)
        return NULL;
    rt_delay *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->channels = channels;
    d->max_delay = max_delay_frames;
    d->size = max_delay_frames + RT_DELAY_SLACK;
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
    if (delay_frames > d->max_delay) return -1;
    d->delay = delay_frames;
    return 0;
}

/* Whole segments with memcpy: within a segment neither the write index w nor
 * the read index r = w - delay wraps.  The segment is written before it is
 * read (so out may alias in).  When r < w that is right even if the regions
 * overlap (delay < segment): what is read from the fresh part is exactly the
 * input `delay` frames back.  When r > w (read index wrapped) the read region
 * must not be overwritten first: the segment is kept <= r - w = size - delay,
 * which the slack makes >= RT_DELAY_SLACK. */
uint32_t rt_delay_process(rt_delay *d, const float *const *in, float *const *out, uint32_t frames)
{
    const uint32_t size = d->size;
    uint32_t w = d->write, done = 0;
    while (done < frames) {
        uint32_t r = w >= d->delay ? w - d->delay : w + size - d->delay;
        uint32_t seg = frames - done;
        if (seg > size - w) seg = size - w;
        if (seg > size - r) seg = size - r;
        if (r > w && seg > r - w) seg = r - w;
        for (uint32_t ch = 0; ch < d->channels; ch++) {
            float *ring = d->ring + (size_t)ch * size;
            memcpy(ring + w, in[ch] + done, sizeof(float) * seg);
            if (out[ch] + done != ring + r) memmove(out[ch] + done, ring + r, sizeof(float) * seg);
        }
        done += seg;
        w += seg;
        if (w == size) w = 0;
    }
    d->write = w;
    return frames;
}

uint32_t rt_delay_latency(const rt_delay *d) { return d->delay; }
uint32_t rt_delay_max_frames(const rt_delay *d) { return d->max_delay; }
