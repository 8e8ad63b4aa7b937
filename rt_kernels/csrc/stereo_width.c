#include "stereo_width.h"
#include "biquad.h"
#include "rt_common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Work runs in chunks aligned to the absolute frame count; tiny filter state is
 * flushed at each grid point, so output is bit-identical for any block split. */
#define RT_SW_CHUNK 128
#define RT_SW_XOVERS (RT_SW_MAX_BANDS - 1)

/* Butterworth section Q values: 2nd order, and the two sections of 4th order. */
#define RT_SW_Q2 0.70710678118654752440
#define RT_SW_Q4A 0.54119610014619698440 /* 1 / (2 cos(pi/8)) */
#define RT_SW_Q4B 1.30656296487637652786 /* 1 / (2 cos(3pi/8)) */

typedef struct {
    double current, target, step;
    uint32_t remaining;
} sw_ramp;

/* Filter history only (x1 x2 y1 y2 per section): a struct of double arrays, so
 * it can be flushed and cleared as one flat array. */
typedef struct {
    double xo_lp[RT_SW_XOVERS][2][4];   /* side: LR4 low-pass of each split */
    double xo_hp[RT_SW_XOVERS][2][4];   /* side: LR4 high-pass of each split */
    double xo_ap_side[RT_SW_XOVERS][4]; /* side: compensation of lower bands */
    double xo_ap_mid[RT_SW_XOVERS][4];  /* mid: the same all-passes */
    double mb_hp[4][4];                 /* side: LR8 high-pass (mono bass) */
    double mb_lp[4][4];                 /* side: LR8 low-pass (mono bass fade) */
    double mb_ap[2][4];                 /* mid: 4th-order all-pass (mono bass) */
} sw_history;

struct rt_stereo_width {
    uint32_t bands;
    uint32_t ramp_frames;
    uint32_t grid_phase;
    int mono_bass_active; /* the mono bass stage is in the signal path */
    double sample_rate;
    double mono_bass_hz;
    double crossover_hz[RT_SW_XOVERS];
    /* b0 b1 b2 a1 a2; each LR4 filter is one Butterworth section run twice */
    double xo_lp_c[RT_SW_XOVERS][5];
    double xo_hp_c[RT_SW_XOVERS][5];
    double xo_ap_c[RT_SW_XOVERS][5];
    double mb_hp_c[2][5]; /* Q4A, Q4B; each run twice (LR8 = Butterworth-4 squared) */
    double mb_lp_c[2][5];
    double mb_ap_c[2][5];
    sw_ramp mono_bass;    /* 0 = side kept below mono_bass_hz, 1 = removed */
    sw_ramp width[RT_SW_MAX_BANDS];
    sw_history h;
    double mid[RT_SW_CHUNK];
    double rest[RT_SW_CHUNK]; /* side above the current split */
    double band[RT_SW_CHUNK];
    double acc[RT_SW_CHUNK];  /* weighted sum of the side bands so far */
};

static int design_crossovers(double fs, const double *hz, uint32_t count,
                             double lp[][5], double hp[][5], double ap[][5])
{
    for (uint32_t k = 0; k < count; k++) {
        if (!isfinite(hz[k]) || (k > 0 && !(hz[k] > hz[k - 1]))) return -1;
        if (rt_biquad_design(RT_BQ_LOW_PASS, fs, hz[k], RT_SW_Q2, 0.0, 0.0, lp[k]) != 0) return -1;
        if (rt_biquad_design(RT_BQ_HIGH_PASS, fs, hz[k], RT_SW_Q2, 0.0, 0.0, hp[k]) != 0) return -1;
        if (rt_biquad_design(RT_BQ_ALL_PASS, fs, hz[k], RT_SW_Q2, 0.0, 0.0, ap[k]) != 0) return -1;
    }
    return 0;
}

rt_stereo_width *rt_stereo_width_create(uint32_t channels, double sample_rate, uint32_t bands,
                                        const double *crossover_hz, double ramp_ms)
{
    if (channels != 2 || !(sample_rate > 0.0) || !isfinite(sample_rate)) return NULL;
    if (bands < 1 || bands > RT_SW_MAX_BANDS || !(ramp_ms >= 0.0) || !isfinite(ramp_ms)) return NULL;
    if (bands > 1 && !crossover_hz) return NULL;
    rt_stereo_width *st = calloc(1, sizeof *st);
    if (!st) return NULL;
    st->bands = bands;
    st->sample_rate = sample_rate;
    st->ramp_frames = (uint32_t)lround(ramp_ms * 0.001 * sample_rate);
    for (uint32_t b = 0; b < RT_SW_MAX_BANDS; b++) st->width[b].current = st->width[b].target = 1.0;
    if (rt_stereo_width_set_crossovers(st, crossover_hz, bands - 1) != 0) {
        free(st);
        return NULL;
    }
    return st;
}

void rt_stereo_width_destroy(rt_stereo_width *st) { free(st); }

void rt_stereo_width_reset(rt_stereo_width *st)
{
    memset(&st->h, 0, sizeof st->h);
    st->grid_phase = 0;
    for (uint32_t b = 0; b < RT_SW_MAX_BANDS; b++) {
        st->width[b].current = st->width[b].target;
        st->width[b].remaining = 0;
    }
    st->mono_bass.current = st->mono_bass.target;
    st->mono_bass.remaining = 0;
    /* Switched off: with the history gone, the stage can leave the path without a jump. */
    if (st->mono_bass.target == 0.0) st->mono_bass_active = 0;
}

static void ramp_to(sw_ramp *w, double target, uint32_t ramp_frames)
{
    w->target = target;
    if (ramp_frames == 0) {
        w->current = target;
        w->remaining = 0;
    } else {
        w->remaining = ramp_frames;
        w->step = (target - w->current) / (double)ramp_frames;
    }
}

int rt_stereo_width_set_width(rt_stereo_width *st, uint32_t band, double width)
{
    if (band >= st->bands || !(width >= 0.0 && width <= RT_SW_WIDTH_MAX)) return -1; /* NaN fails too */
    ramp_to(&st->width[band], width, st->ramp_frames);
    return 0;
}

int rt_stereo_width_set_crossovers(rt_stereo_width *st, const double *crossover_hz, uint32_t count)
{
    if (count != st->bands - 1) return -1;
    double lp[RT_SW_XOVERS][5], hp[RT_SW_XOVERS][5], ap[RT_SW_XOVERS][5];
    if (design_crossovers(st->sample_rate, crossover_hz, count, lp, hp, ap) != 0) return -1;
    /* Commit only when every crossover designed: never half-applied. */
    for (uint32_t k = 0; k < count; k++) {
        st->crossover_hz[k] = crossover_hz[k];
        memcpy(st->xo_lp_c[k], lp[k], sizeof lp[k]);
        memcpy(st->xo_hp_c[k], hp[k], sizeof hp[k]);
        memcpy(st->xo_ap_c[k], ap[k], sizeof ap[k]);
    }
    return 0;
}

int rt_stereo_width_set_mono_bass(rt_stereo_width *st, double hz)
{
    if (hz == 0.0) {
        /* Fade the low side back in; the stage stays in the path (as an
         * all-pass) until reset, so turning it off does not click. */
        st->mono_bass_hz = 0.0;
        ramp_to(&st->mono_bass, 0.0, st->ramp_frames);
        return 0;
    }
    double hp[2][5], lp[2][5], ap[2][5];
    const double q[2] = {RT_SW_Q4A, RT_SW_Q4B};
    for (int i = 0; i < 2; i++) {
        if (rt_biquad_design(RT_BQ_HIGH_PASS, st->sample_rate, hz, q[i], 0.0, 0.0, hp[i]) != 0) return -1;
        if (rt_biquad_design(RT_BQ_LOW_PASS, st->sample_rate, hz, q[i], 0.0, 0.0, lp[i]) != 0) return -1;
        if (rt_biquad_design(RT_BQ_ALL_PASS, st->sample_rate, hz, q[i], 0.0, 0.0, ap[i]) != 0) return -1;
    }
    memcpy(st->mb_hp_c, hp, sizeof hp);
    memcpy(st->mb_lp_c, lp, sizeof lp);
    memcpy(st->mb_ap_c, ap, sizeof ap);
    if (!st->mono_bass_active) {
        /* Entering the path: no stale history, and the side fades out from full. */
        memset(st->h.mb_hp, 0, sizeof st->h.mb_hp);
        memset(st->h.mb_lp, 0, sizeof st->h.mb_lp);
        memset(st->h.mb_ap, 0, sizeof st->h.mb_ap);
        st->mono_bass.current = 0.0;
        st->mono_bass.remaining = 0;
        st->mono_bass_active = 1;
    }
    st->mono_bass_hz = hz;
    ramp_to(&st->mono_bass, 1.0, st->ramp_frames);
    return 0;
}

double rt_stereo_width_mono_bass_amount(const rt_stereo_width *st)
{
    return st->mono_bass_active ? st->mono_bass.current : 0.0;
}

uint32_t rt_stereo_width_bands(const rt_stereo_width *st) { return st->bands; }

double rt_stereo_width_target_width(const rt_stereo_width *st, uint32_t band)
{
    return band < st->bands ? st->width[band].target : 0.0;
}

double rt_stereo_width_current_width(const rt_stereo_width *st, uint32_t band)
{
    return band < st->bands ? st->width[band].current : 0.0;
}

/* One section, direct form I, in place on buf; h is x1 x2 y1 y2. */
static inline void section_run(const double *restrict c, double *restrict h, double *restrict buf, uint32_t n)
{
    const double b0 = c[0], b1 = c[1], b2 = c[2], a1 = c[3], a2 = c[4];
    double x1 = h[0], x2 = h[1], y1 = h[2], y2 = h[3];
    for (uint32_t i = 0; i < n; i++) {
        double x = buf[i];
        double y = (b0 * x + b1 * x1 + b2 * x2 - a2 * y2) - a1 * y1;
        x2 = x1; x1 = x;
        y2 = y1; y1 = y;
        buf[i] = y;
    }
    h[0] = x1; h[1] = x2; h[2] = y1; h[3] = y2;
}

/* acc = (or +=) width * band, the width advancing per sample along its ramp. */
static inline void add_weighted(sw_ramp *w, const double *restrict band, double *restrict acc, uint32_t n, int assign)
{
    uint32_t i = 0;
    for (; i < n && w->remaining > 0; i++) {
        w->remaining--;
        w->current = w->remaining ? w->current + w->step : w->target;
        acc[i] = assign ? w->current * band[i] : acc[i] + w->current * band[i];
    }
    const double g = w->current;
    if (assign)
        for (; i < n; i++) acc[i] = g * band[i];
    else
        for (; i < n; i++) acc[i] += g * band[i];
}

/* Four sections side by side, one per lane (four doubles: one AVX register on
 * x86-64-v3, two SSE2 ones on the baseline clone).  Each lane computes exactly the
 * expression of section_run, in the same order. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi" /* 32-byte vectors: only in always-inlined helpers */
#endif
typedef double sw_v4 __attribute__((vector_size(32)));
typedef struct {
    sw_v4 b0, b1, b2, a1, a2, x1, x2, y1, y2;
} sw_quad;

static inline __attribute__((always_inline)) sw_v4 quad_step(sw_quad *q, sw_v4 x)
{
    sw_v4 y = (q->b0 * x + q->b1 * q->x1 + q->b2 * q->x2 - q->a2 * q->y2) - q->a1 * q->y1;
    q->x2 = q->x1; q->x1 = x;
    q->y2 = q->y1; q->y1 = y;
    return y;
}

/* Lane j of q <- section with coefficients c and history h (NULL: an idle lane, all zero). */
static void quad_load(sw_quad *q, int j, const double *c, const double *h)
{
    q->b0[j] = c ? c[0] : 0.0; q->b1[j] = c ? c[1] : 0.0; q->b2[j] = c ? c[2] : 0.0;
    q->a1[j] = c ? c[3] : 0.0; q->a2[j] = c ? c[4] : 0.0;
    q->x1[j] = h ? h[0] : 0.0; q->x2[j] = h ? h[1] : 0.0; q->y1[j] = h ? h[2] : 0.0; q->y2[j] = h ? h[3] : 0.0;
}

static void quad_store(const sw_quad *q, int j, double *h)
{
    h[0] = q->x1[j]; h[1] = q->x2[j]; h[2] = q->y1[j]; h[3] = q->y2[j];
}

/* Split k, one loop over the chunk: the LR4 split of `rest` (low part -> band, high part
 * -> rest), the crossover's all-pass on the mid and, for k > 0, on the weighted side sum
 * so far (so the lower bands stay in phase with what this split passes on).  The first
 * sections of the low-pass and high-pass, the mid all-pass and the side all-pass run as
 * the four lanes of one vector; the second sections of the two filters as two lanes of
 * another.  The recursions are independent, so nothing waits on anything but itself. */
RT_HOT_CLONES
static void split_run(rt_stereo_width *st, uint32_t k, uint32_t n)
{
    sw_history *h = &st->h;
    const int side_ap = k > 0;
    sw_quad first, second;
    quad_load(&first, 0, st->xo_lp_c[k], h->xo_lp[k][0]);
    quad_load(&first, 1, st->xo_hp_c[k], h->xo_hp[k][0]);
    quad_load(&first, 2, st->xo_ap_c[k], h->xo_ap_mid[k]);
    quad_load(&first, 3, side_ap ? st->xo_ap_c[k] : NULL, side_ap ? h->xo_ap_side[k] : NULL);
    quad_load(&second, 0, st->xo_lp_c[k], h->xo_lp[k][1]);
    quad_load(&second, 1, st->xo_hp_c[k], h->xo_hp[k][1]);
    quad_load(&second, 2, NULL, NULL);
    quad_load(&second, 3, NULL, NULL);
    double *restrict rest = st->rest, *restrict band = st->band, *restrict mid = st->mid, *restrict acc = st->acc;
    for (uint32_t i = 0; i < n; i++) {
        sw_v4 a = quad_step(&first, (sw_v4){rest[i], rest[i], mid[i], side_ap ? acc[i] : 0.0});
        sw_v4 b = quad_step(&second, a);
        band[i] = b[0];
        rest[i] = b[1];
        mid[i] = a[2];
        if (side_ap) acc[i] = a[3];
    }
    quad_store(&first, 0, h->xo_lp[k][0]);
    quad_store(&first, 1, h->xo_hp[k][0]);
    quad_store(&first, 2, h->xo_ap_mid[k]);
    if (side_ap) quad_store(&first, 3, h->xo_ap_side[k]);
    quad_store(&second, 0, h->xo_lp[k][1]);
    quad_store(&second, 1, h->xo_hp[k][1]);
}

static void run_chunk(rt_stereo_width *st, uint32_t n)
{
    sw_history *h = &st->h;
    double *acc = st->acc, *rest = st->rest, *band = st->band, *mid = st->mid;
    const uint32_t splits = st->bands - 1;
    if (splits == 0) {
        add_weighted(&st->width[0], rest, acc, n, 1);
    } else {
        for (uint32_t k = 0; k < splits; k++) {
            split_run(st, k, n);
            add_weighted(&st->width[k], band, acc, n, k == 0);
        }
        add_weighted(&st->width[splits], rest, acc, n, 0);
    }
    if (st->mono_bass_active) {
        /* S' = HP8(S') + (1 - amount) * LP8(S'): amount 1 removes the low side,
         * amount 0 leaves the LR8 all-pass, matching the mid's. */
        /* The low-pass runs even at amount 1 so that its history is current
         * when a fade starts. */
        sw_ramp *mb = &st->mono_bass;
        memcpy(band, acc, n * sizeof(double));
        for (int s = 0; s < 4; s++) section_run(st->mb_lp_c[s >> 1], h->mb_lp[s], band, n);
        for (int s = 0; s < 4; s++) section_run(st->mb_hp_c[s >> 1], h->mb_hp[s], acc, n);
        for (uint32_t i = 0; i < n; i++) {
            if (mb->remaining) {
                mb->remaining--;
                mb->current = mb->remaining ? mb->current + mb->step : mb->target;
            }
            acc[i] += (1.0 - mb->current) * band[i];
        }
        for (int s = 0; s < 2; s++) section_run(st->mb_ap_c[s], h->mb_ap[s], mid, n);
    }
}

uint32_t rt_stereo_width_process(rt_stereo_width *st, const float *const *in, float *const *out, uint32_t frames)
{
    uint32_t done = 0;
    while (done < frames) {
        uint32_t n = RT_SW_CHUNK - st->grid_phase;
        if (n > frames - done) n = frames - done;
        const float *l = in[0] + done, *r = in[1] + done;
        for (uint32_t i = 0; i < n; i++) {
            double a = l[i], b = r[i];
            st->mid[i] = 0.5 * (a + b);
            st->rest[i] = 0.5 * (a - b);
        }
        run_chunk(st, n);
        /* Input fully read above, so out may alias in. */
        float *lo = out[0] + done, *ro = out[1] + done;
        /* Between grid points a fast-decaying state can pass through the
         * float32 subnormal range; flushing the output keeps it normal even
         * when the caller did not turn FTZ on. */
        for (uint32_t i = 0; i < n; i++) {
            lo[i] = (float)rt_flush_tiny(st->mid[i] + st->acc[i]);
            ro[i] = (float)rt_flush_tiny(st->mid[i] - st->acc[i]);
        }
        st->grid_phase += n;
        done += n;
        if (st->grid_phase == RT_SW_CHUNK) {
            st->grid_phase = 0;
            double *flat = (double *)&st->h;
            for (size_t i = 0; i < sizeof st->h / sizeof(double); i++) flat[i] = rt_flush_tiny(flat[i]);
        }
    }
    return frames;
}

uint32_t rt_stereo_width_latency(const rt_stereo_width *st) { return 0; }
