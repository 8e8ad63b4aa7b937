#include "biquad.h"
#include "rt_common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Work is done in grid-aligned chunks of RT_BQ_CHUNK frames (aligned to the
 * absolute frame count, not to the caller's blocks); tiny state is flushed at
 * each grid point.  That keeps the output bit-identical for any block size. */
#define RT_BQ_CHUNK 128
#define RT_BQ_HISTORY 6  /* per section: x1 x2 x3 y1 y2 y3 */

struct rt_biquad {
    uint32_t channels;
    uint32_t sections;
    uint32_t grid_phase;  /* frames processed since the last grid point */
    double sample_rate;
    double *coeffs;       /* sections * 5: b0 b1 b2 a1 a2 */
    double *state;        /* per channel, per section: x1 x2 x3 y1 y2 y3 */
    rt_v2d *hist;         /* one channel pair's history while it runs */
    rt_v2d lanes[RT_BQ_CHUNK];
};

static const double identity[5] = {1.0, 0.0, 0.0, 0.0, 0.0};

int rt_biquad_design(int type, double fs, double f0, double q, double gain_db,
                     double shelf_slope, double c[5])
{
    if (!(fs > 0.0) || !isfinite(fs)) return -1;
    if (type == RT_BQ_IDENTITY) {
        memcpy(c, identity, sizeof identity);
        return 0;
    }
    if (!(f0 > 0.0) || !(f0 < 0.5 * fs)) return -1;
    if (!isfinite(gain_db) || fabs(gain_db) > 60.0) return -1;
    int shelf = (type == RT_BQ_LOW_SHELF || type == RT_BQ_HIGH_SHELF);
    if (shelf && shelf_slope != 0.0) {
        if (!(shelf_slope > 0.0) || !isfinite(shelf_slope)) return -1;
    } else if (!(q > 0.0) || !isfinite(q)) {
        return -1;
    }

    double A = pow(10.0, gain_db / 40.0);
    double w0 = 2.0 * RT_PI * f0 / fs;
    double cw = cos(w0), sw = sin(w0);
    double alpha;
    if (shelf && shelf_slope != 0.0) {
        double inner = (A + 1.0 / A) * (1.0 / shelf_slope - 1.0) + 2.0;
        if (!(inner >= 0.0)) return -1; /* slope too steep for this gain */
        alpha = 0.5 * sw * sqrt(inner);
    } else {
        alpha = sw / (2.0 * q);
    }
    double sa = 2.0 * sqrt(A) * alpha;
    double b0, b1, b2, a0, a1, a2;

    switch (type) {
    case RT_BQ_PEAKING:
        b0 = 1.0 + alpha * A; b1 = -2.0 * cw; b2 = 1.0 - alpha * A;
        a0 = 1.0 + alpha / A; a1 = -2.0 * cw; a2 = 1.0 - alpha / A;
        break;
    case RT_BQ_LOW_SHELF:
        b0 = A * ((A + 1.0) - (A - 1.0) * cw + sa);
        b1 = 2.0 * A * ((A - 1.0) - (A + 1.0) * cw);
        b2 = A * ((A + 1.0) - (A - 1.0) * cw - sa);
        a0 = (A + 1.0) + (A - 1.0) * cw + sa;
        a1 = -2.0 * ((A - 1.0) + (A + 1.0) * cw);
        a2 = (A + 1.0) + (A - 1.0) * cw - sa;
        break;
    case RT_BQ_HIGH_SHELF:
        b0 = A * ((A + 1.0) + (A - 1.0) * cw + sa);
        b1 = -2.0 * A * ((A - 1.0) + (A + 1.0) * cw);
        b2 = A * ((A + 1.0) + (A - 1.0) * cw - sa);
        a0 = (A + 1.0) - (A - 1.0) * cw + sa;
        a1 = 2.0 * ((A - 1.0) - (A + 1.0) * cw);
        a2 = (A + 1.0) - (A - 1.0) * cw - sa;
        break;
    case RT_BQ_LOW_PASS:
        b0 = 0.5 * (1.0 - cw); b1 = 1.0 - cw; b2 = b0;
        a0 = 1.0 + alpha; a1 = -2.0 * cw; a2 = 1.0 - alpha;
        break;
    case RT_BQ_HIGH_PASS:
        b0 = 0.5 * (1.0 + cw); b1 = -(1.0 + cw); b2 = b0;
        a0 = 1.0 + alpha; a1 = -2.0 * cw; a2 = 1.0 - alpha;
        break;
    case RT_BQ_BAND_PASS:
        b0 = alpha; b1 = 0.0; b2 = -alpha;
        a0 = 1.0 + alpha; a1 = -2.0 * cw; a2 = 1.0 - alpha;
        break;
    case RT_BQ_NOTCH:
        b0 = 1.0; b1 = -2.0 * cw; b2 = 1.0;
        a0 = 1.0 + alpha; a1 = -2.0 * cw; a2 = 1.0 - alpha;
        break;
    case RT_BQ_ALL_PASS:
        b0 = 1.0 - alpha; b1 = -2.0 * cw; b2 = 1.0 + alpha;
        a0 = 1.0 + alpha; a1 = -2.0 * cw; a2 = 1.0 - alpha;
        break;
    default:
        return -1;
    }
    double inv = 1.0 / a0;
    double out[5] = {b0 * inv, b1 * inv, b2 * inv, a1 * inv, a2 * inv};
    for (int i = 0; i < 5; i++)
        if (!isfinite(out[i])) return -1;
    memcpy(c, out, sizeof out);
    return 0;
}

static uint32_t state_stride(const rt_biquad *bq) { return RT_BQ_HISTORY * bq->sections; }

rt_biquad *rt_biquad_create(uint32_t channels, uint32_t sections, double sample_rate)
{
    if (channels == 0 || sections == 0 || !(sample_rate > 0.0)) return NULL;
    rt_biquad *bq = aligned_alloc(16, sizeof *bq);  /* lanes[] holds 16-byte vectors */
    if (bq) memset(bq, 0, sizeof *bq);
    if (!bq) return NULL;
    bq->channels = channels;
    bq->sections = sections;
    bq->sample_rate = sample_rate;
    bq->coeffs = malloc(sizeof(double) * 5u * sections);
    bq->state = calloc((size_t)channels * state_stride(bq), sizeof(double));
    bq->hist = aligned_alloc(16, sizeof(rt_v2d) * state_stride(bq));
    if (!bq->coeffs || !bq->state || !bq->hist) {
        rt_biquad_destroy(bq);
        return NULL;
    }
    for (uint32_t s = 0; s < sections; s++) memcpy(bq->coeffs + 5u * s, identity, sizeof identity);
    return bq;
}

void rt_biquad_destroy(rt_biquad *bq)
{
    if (!bq) return;
    free(bq->coeffs);
    free(bq->state);
    free(bq->hist);
    free(bq);
}

void rt_biquad_reset(rt_biquad *bq)
{
    memset(bq->state, 0, sizeof(double) * bq->channels * state_stride(bq));
    bq->grid_phase = 0;
}

int rt_biquad_set_section(rt_biquad *bq, uint32_t index, int type, double freq_hz,
                          double q, double gain_db, double shelf_slope)
{
    if (index >= bq->sections) return -1;
    return rt_biquad_design(type, bq->sample_rate, freq_hz, q, gain_db, shelf_slope, bq->coeffs + 5u * index);
}

int rt_biquad_set_coefficients(rt_biquad *bq, uint32_t index, const double c[5])
{
    if (index >= bq->sections) return -1;
    for (int i = 0; i < 5; i++)
        if (!isfinite(c[i])) return -1;
    memcpy(bq->coeffs + 5u * index, c, 5 * sizeof(double));
    return 0;
}

/* Channels are processed in pairs, one pair per rt_v2d lane pair, so the two
 * recursions run side by side; sections are processed two at a time over a
 * chunk so that the second section's recursion overlaps the first's.  A chunk
 * lives in `lanes` as interleaved pairs.  Direct form I: history x1 x2 y1 y2. */

static inline rt_v2d splat(double v) { return (rt_v2d){v, v}; }

/* Input comes from the float channels (src0/src1) when given, else from buf;
 * output goes to the float channels (dst0/dst1) when given, else to buf.  The
 * conditions are loop-invariant, so the compiler unswitches them. */
static inline rt_v2d fetch(const float *src0, const float *src1, const rt_v2d *buf, uint32_t i)
{
    return src0 ? (rt_v2d){src0[i], src1[i]} : buf[i];
}

static inline void deliver(float *dst0, float *dst1, rt_v2d *buf, uint32_t i, rt_v2d y)
{
    if (dst0) {
        dst1[i] = (float)y[1];
        dst0[i] = (float)y[0];  /* last: for an odd channel out, dst1 == dst0 */
    } else {
        buf[i] = y;
    }
}

/* A section that runs alone uses a two-sample look-ahead form: with
 *   f[n] = b0 x[n] + b1 x[n-1] + b2 x[n-2],
 * an even frame n is y[n] = f[n] - a2 y[n-2] - a1 y[n-1]            (form A)
 * and an odd frame n is y[n] = f[n] - a1 f[n-1] + (a1^2 - a2) y[n-2] + a1 a2 y[n-3]  (form B),
 * the same filter with y[n-1] eliminated, so a pair of frames costs one
 * multiply-add of recursion latency instead of two.  Which form a frame gets
 * depends only on the parity of its absolute index, and a frame computed alone
 * uses the same expression as inside a pair: the output is bit-identical for
 * any block split.  History: x1 x2 x3 y1 y2 y3. */
static inline rt_v2d feed(rt_v2d b0, rt_v2d b1, rt_v2d b2, rt_v2d x, rt_v2d x1, rt_v2d x2)
{
    return b0 * x + b1 * x1 + b2 * x2;
}

static inline rt_v2d form_a(rt_v2d f, rt_v2d a1, rt_v2d a2, rt_v2d y1, rt_v2d y2) { return (f - a2 * y2) - a1 * y1; }

static inline rt_v2d form_b(rt_v2d f, rt_v2d f_prev, rt_v2d a1, rt_v2d k1, rt_v2d k2, rt_v2d y2, rt_v2d y3)
{
    return ((f - a1 * f_prev) + k2 * y3) + k1 * y2;
}

static inline void one_section(const double *restrict c, rt_v2d *restrict h, rt_v2d *restrict buf, uint32_t n,
                               uint32_t odd_start, const float *src0, const float *src1, float *dst0, float *dst1)
{
    const rt_v2d b0 = splat(c[0]), b1 = splat(c[1]), b2 = splat(c[2]), a1 = splat(c[3]), a2 = splat(c[4]);
    const rt_v2d k1 = splat(c[3] * c[3] - c[4]), k2 = splat(c[3] * c[4]);
    rt_v2d x1 = h[0], x2 = h[1], x3 = h[2], y1 = h[3], y2 = h[4], y3 = h[5];
    uint32_t i = 0;
    if (odd_start && n > 0) {
        rt_v2d x = fetch(src0, src1, buf, 0);
        rt_v2d y = form_b(feed(b0, b1, b2, x, x1, x2), feed(b0, b1, b2, x1, x2, x3), a1, k1, k2, y2, y3);
        x3 = x2; x2 = x1; x1 = x;
        y3 = y2; y2 = y1; y1 = y;
        deliver(dst0, dst1, buf, 0, y);
        i = 1;
    }
    for (; i + 1 < n; i += 2) {
        rt_v2d xa = fetch(src0, src1, buf, i), xb = fetch(src0, src1, buf, i + 1);
        rt_v2d fa = feed(b0, b1, b2, xa, x1, x2), fb = feed(b0, b1, b2, xb, xa, x1);
        rt_v2d ya = form_a(fa, a1, a2, y1, y2);
        rt_v2d yb = form_b(fb, fa, a1, k1, k2, y1, y2);
        x3 = x1; x2 = xa; x1 = xb;
        y3 = y1; y2 = ya; y1 = yb;
        deliver(dst0, dst1, buf, i, ya);
        deliver(dst0, dst1, buf, i + 1, yb);
    }
    if (i < n) {
        rt_v2d x = fetch(src0, src1, buf, i);
        rt_v2d y = form_a(feed(b0, b1, b2, x, x1, x2), a1, a2, y1, y2);
        x3 = x2; x2 = x1; x1 = x;
        y3 = y2; y2 = y1; y1 = y;
        deliver(dst0, dst1, buf, i, y);
    }
    h[0] = x1; h[1] = x2; h[2] = x3; h[3] = y1; h[4] = y2; h[5] = y3;
}

/* Sections A then B, each sample through both (the two recursions overlap);
 * B's input history is A's output history.  Uses x1 x2 y1 y2 of the history. */
static inline void two_sections(const double *restrict ca, const double *restrict cb, rt_v2d *restrict ha,
                                rt_v2d *restrict hb, rt_v2d *restrict buf, uint32_t n,
                                const float *src0, const float *src1, float *dst0, float *dst1)
{
    const rt_v2d ab0 = splat(ca[0]), ab1 = splat(ca[1]), ab2 = splat(ca[2]), aa1 = splat(ca[3]), aa2 = splat(ca[4]);
    const rt_v2d bb0 = splat(cb[0]), bb1 = splat(cb[1]), bb2 = splat(cb[2]), ba1 = splat(cb[3]), ba2 = splat(cb[4]);
    rt_v2d x1 = ha[0], x2 = ha[1], m1 = ha[3], m2 = ha[4], y1 = hb[3], y2 = hb[4];
    for (uint32_t i = 0; i < n; i++) {
        rt_v2d x = fetch(src0, src1, buf, i);
        rt_v2d m = (ab0 * x + ab1 * x1 + ab2 * x2 - aa2 * m2) - aa1 * m1;
        rt_v2d y = (bb0 * m + bb1 * m1 + bb2 * m2 - ba2 * y2) - ba1 * y1;
        x2 = x1; x1 = x;
        m2 = m1; m1 = m;
        y2 = y1; y1 = y;
        deliver(dst0, dst1, buf, i, y);
    }
    ha[0] = x1; ha[1] = x2; ha[3] = m1; ha[4] = m2;
    hb[0] = m1; hb[1] = m2; hb[3] = y1; hb[4] = y2;
}

/* Gather/scatter one channel pair's history for every section. */
static void load_history(const rt_biquad *bq, uint32_t ch0, uint32_t ch1, rt_v2d *hist)
{
    const uint32_t stride = state_stride(bq);
    const double *s0 = bq->state + (size_t)ch0 * stride, *s1 = bq->state + (size_t)ch1 * stride;
    for (uint32_t k = 0; k < stride; k++) hist[k] = (rt_v2d){s0[k], s1[k]};
}

static void store_history(rt_biquad *bq, uint32_t ch0, uint32_t ch1, const rt_v2d *hist)
{
    const uint32_t stride = state_stride(bq);
    double *s0 = bq->state + (size_t)ch0 * stride, *s1 = bq->state + (size_t)ch1 * stride;
    for (uint32_t k = 0; k < stride; k++) {
        s1[k] = hist[k][1];
        s0[k] = hist[k][0];  /* written last: for an odd channel out, ch1 == ch0 */
    }
}

RT_HOT_CLONES
static void run_pair(rt_biquad *bq, uint32_t ch0, uint32_t ch1, const float *const *in, float *const *out,
                     uint32_t offset, uint32_t n)
{
    rt_v2d *lanes = bq->lanes, *hist = bq->hist;
    const float *src0 = in[ch0] + offset, *src1 = in[ch1] + offset;
    float *dst0 = out[ch0] + offset, *dst1 = out[ch1] + offset;
    load_history(bq, ch0, ch1, hist);
    /* The first group reads the float input, the last writes the float output,
     * groups in between work on `lanes`. */
    const uint32_t sections = bq->sections;
    for (uint32_t s = 0; s < sections;) {
        const int first = s == 0, pair = s + 1 < sections, last = s + (pair ? 2u : 1u) == sections;
        const float *a = first ? src0 : NULL, *b = first ? src1 : NULL;
        float *c = last ? dst0 : NULL, *d = last ? dst1 : NULL;
        rt_v2d *h = hist + RT_BQ_HISTORY * s;
        if (pair) {
            two_sections(bq->coeffs + 5u * s, bq->coeffs + 5u * (s + 1), h, h + RT_BQ_HISTORY, lanes, n, a, b, c, d);
            s += 2;
        } else {
            one_section(bq->coeffs + 5u * s, h, lanes, n, bq->grid_phase & 1u, a, b, c, d);
            s += 1;
        }
    }
    store_history(bq, ch0, ch1, hist);
}

uint32_t rt_biquad_process(rt_biquad *bq, const float *const *in, float *const *out, uint32_t frames)
{
    const uint32_t stride = state_stride(bq);
    uint32_t done = 0;
    while (done < frames) {
        uint32_t n = RT_BQ_CHUNK - bq->grid_phase;
        if (n > frames - done) n = frames - done;
        /* An odd last channel runs in both lanes of its pair (same data twice). */
        for (uint32_t ch = 0; ch < bq->channels; ch += 2)
            run_pair(bq, ch, ch + 1 < bq->channels ? ch + 1 : ch, in, out, done, n);
        bq->grid_phase += n;
        done += n;
        if (bq->grid_phase == RT_BQ_CHUNK) {
            bq->grid_phase = 0;
            for (uint32_t i = 0; i < bq->channels * stride; i++) bq->state[i] = rt_flush_tiny(bq->state[i]);
        }
    }
    return frames;
}

uint32_t rt_biquad_latency(const rt_biquad *bq) { return 0; }

uint32_t rt_biquad_state_size(const rt_biquad *bq) { return bq->channels * state_stride(bq); }

void rt_biquad_read_state(const rt_biquad *bq, double *dest)
{
    memcpy(dest, bq->state, sizeof(double) * rt_biquad_state_size(bq));
}
