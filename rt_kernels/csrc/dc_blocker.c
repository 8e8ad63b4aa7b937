#include "dc_blocker.h"
#include "rt_common.h"

#include <math.h>
#include <stdlib.h>

/* Tiny state is flushed on a grid of RT_DC_CHUNK frames aligned to the absolute
 * frame count (as biquad.c does), not per sample: a flush on the recursion chain
 * (two sign-dependent, mispredicted compares) cost ~7 ns per sample and channel;
 * now ~0.9 ns (stereo: channel pairs run as two interleaved chains).  Between grid
 * points the state can only decay by pole^RT_DC_CHUNK (pole >= exp(-pi), so at
 * worst from 1e-30 to ~1e-175: never a subnormal double); the float output is
 * flushed separately (off the recursion chain), so it is never subnormal either.
 * The output is bit-identical for any block split. */
#define RT_DC_CHUNK 128

/* An empty asm that makes the compiler treat v as computed opaquely, so that
 * `r * y1 + t` contracts to fma(r, y1, t) (one multiply-add on the recursion
 * chain) instead of fma(g, v - x1, r * y1) (a multiply, then an FMA, on it). */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define RT_DC_OPAQUE(v) __asm__("" : "+x"(v))
#else
#define RT_DC_OPAQUE(v) ((void)0)
#endif

struct rt_dc_blocker {
    uint32_t channels;
    uint32_t grid_phase; /* frames processed since the last grid point */
    double pole;      /* R = exp(-2 pi fc / fs) */
    double gain;      /* (1 + R) / 2: unity at Nyquist */
    double *x1, *y1;  /* per channel */
};

rt_dc_blocker *rt_dc_blocker_create(uint32_t channels, double sample_rate, double cutoff_hz)
{
    if (channels == 0 || !(sample_rate > 0.0) || !(cutoff_hz > 0.0 && cutoff_hz < 0.5 * sample_rate)) return NULL;
    rt_dc_blocker *d = calloc(1, sizeof *d + 2 * sizeof(double) * channels);
    if (!d) return NULL;
    d->channels = channels;
    d->pole = exp(-2.0 * RT_PI * cutoff_hz / sample_rate);
    d->gain = 0.5 * (1.0 + d->pole);
    d->x1 = (double *)(d + 1);
    d->y1 = d->x1 + channels;
    return d;
}

void rt_dc_blocker_destroy(rt_dc_blocker *d) { free(d); }

void rt_dc_blocker_reset(rt_dc_blocker *d)
{
    for (uint32_t ch = 0; ch < d->channels; ch++) d->x1[ch] = d->y1[ch] = 0.0;
    d->grid_phase = 0;
}

RT_HOT_CLONES
static void dc_run(const rt_dc_blocker *d, const float *x, float *y, uint32_t n, double *x1p, double *y1p)
{
    const double g = d->gain, r = d->pole;
    double x1 = *x1p, y1 = *y1p;
    for (uint32_t i = 0; i < n; i++) {
        double v = x[i];
        double t = g * (v - x1);    /* off the recursion chain */
        RT_DC_OPAQUE(t);
        y1 = r * y1 + t;             /* the only loop-carried chain: one multiply-add */
        x1 = v;
        /* |y1| compared once: predictable whatever the sign (rt_flush_tiny's two
         * compares branch on the sign of the audio and mispredict half the time) */
        y[i] = fabs(y1) < RT_STATE_FLOOR ? 0.0f : (float)y1;
    }
    *x1p = x1;
    *y1p = y1;
}

/* Two channels in one loop: two independent recursion chains overlap (same
 * arithmetic per channel as dc_run, so the output does not depend on pairing). */
RT_HOT_CLONES
static void dc_run2(const rt_dc_blocker *d, const float *xa, const float *xb, float *ya, float *yb, uint32_t n,
                    double *x1p, double *y1p)
{
    const double g = d->gain, r = d->pole;
    double xa1 = x1p[0], ya1 = y1p[0], xb1 = x1p[1], yb1 = y1p[1];
    for (uint32_t i = 0; i < n; i++) {
        double va = xa[i], vb = xb[i];
        double ta = g * (va - xa1), tb = g * (vb - xb1);
        RT_DC_OPAQUE(ta);
        RT_DC_OPAQUE(tb);
        ya1 = r * ya1 + ta;
        yb1 = r * yb1 + tb;
        xa1 = va;
        xb1 = vb;
        ya[i] = fabs(ya1) < RT_STATE_FLOOR ? 0.0f : (float)ya1;
        yb[i] = fabs(yb1) < RT_STATE_FLOOR ? 0.0f : (float)yb1;
    }
    x1p[0] = xa1;
    y1p[0] = ya1;
    x1p[1] = xb1;
    y1p[1] = yb1;
}

uint32_t rt_dc_blocker_process(rt_dc_blocker *d, const float *const *in, float *const *out, uint32_t frames)
{
    uint32_t done = 0;
    while (done < frames) {
        uint32_t n = RT_DC_CHUNK - d->grid_phase;
        if (n > frames - done) n = frames - done;
        uint32_t ch = 0;
        for (; ch + 1 < d->channels; ch += 2)
            dc_run2(d, in[ch] + done, in[ch + 1] + done, out[ch] + done, out[ch + 1] + done, n, &d->x1[ch], &d->y1[ch]);
        if (ch < d->channels) dc_run(d, in[ch] + done, out[ch] + done, n, &d->x1[ch], &d->y1[ch]);
        done += n;
        d->grid_phase += n;
        if (d->grid_phase == RT_DC_CHUNK) {
            d->grid_phase = 0;
            for (uint32_t ch = 0; ch < d->channels; ch++) d->y1[ch] = rt_flush_tiny(d->y1[ch]);
        }
    }
    return frames;
}

uint32_t rt_dc_blocker_latency(const rt_dc_blocker *d) { return 0; }
