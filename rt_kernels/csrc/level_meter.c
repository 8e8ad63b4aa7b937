#include "level_meter.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct rt_level_meter {
    uint32_t channels;
    uint32_t window;   /* frames */
    uint32_t pos;      /* next write index in the ring */
    double *peak;      /* per channel */
    double *sum;       /* per channel: running sum of the ring */
    double *ring;      /* channels * window squares */
};

rt_level_meter *rt_level_meter_create(uint32_t channels, double sample_rate, double window_ms)
{
    if (channels == 0 || !(sample_rate > 0.0) || !(window_ms > 0.0)) return NULL;
    long window = lround(window_ms * 0.001 * sample_rate);
    if (window < 1) window = 1;
    rt_level_meter *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->channels = channels;
    m->window = (uint32_t)window;
    m->peak = calloc(channels, sizeof(double));
    m->sum = calloc(channels, sizeof(double));
    m->ring = calloc((size_t)channels * m->window, sizeof(double));
    if (!m->peak || !m->sum || !m->ring) {
        rt_level_meter_destroy(m);
        return NULL;
    }
    return m;
}

void rt_level_meter_destroy(rt_level_meter *m)
{
    if (!m) return;
    free(m->peak);
    free(m->sum);
    free(m->ring);
    free(m);
}

void rt_level_meter_reset(rt_level_meter *m)
{
    memset(m->peak, 0, sizeof(double) * m->channels);
    memset(m->sum, 0, sizeof(double) * m->channels);
    memset(m->ring, 0, sizeof(double) * m->channels * m->window);
    m->pos = 0;
}

uint32_t rt_level_meter_process(rt_level_meter *m, const float *const *in, uint32_t frames)
{
    for (uint32_t ch = 0; ch < m->channels; ch++) {
        const float *x = in[ch];
        double *ring = m->ring + (size_t)ch * m->window;
        double peak = m->peak[ch], sum = m->sum[ch];
        uint32_t pos = m->pos;
        for (uint32_t n = 0; n < frames; n++) {
            double v = x[n], sq = v * v, a = fabs(v);
            if (a > peak || a != a) peak = a;  /* a NaN stays visible */
            sum += sq - ring[pos];
            ring[pos] = sq;
            if (++pos == m->window) {
                /* Re-sum once per window so rounding in the running sum cannot drift. */
                pos = 0;
                sum = 0.0;
                for (uint32_t i = 0; i < m->window; i++) sum += ring[i];
            }
        }
        m->peak[ch] = peak;
        m->sum[ch] = sum;
    }
    m->pos = (uint32_t)(((uint64_t)m->pos + frames) % m->window);
    return frames;
}

uint32_t rt_level_meter_latency(const rt_level_meter *m) { return 0; }

double rt_level_meter_peak(const rt_level_meter *m, uint32_t channel)
{
    return channel < m->channels ? m->peak[channel] : 0.0;
}

void rt_level_meter_clear_peak(rt_level_meter *m) { memset(m->peak, 0, sizeof(double) * m->channels); }

double rt_level_meter_rms(const rt_level_meter *m, uint32_t channel)
{
    if (channel >= m->channels) return 0.0;
    double s = m->sum[channel];
    return s > 0.0 ? sqrt(s / m->window) : 0.0;
}

uint32_t rt_level_meter_window_frames(const rt_level_meter *m) { return m->window; }
