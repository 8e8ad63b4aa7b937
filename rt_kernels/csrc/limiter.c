#ifndef LIM_TEMPLATE /* the file proper; the vector stages are at the end */
#include "limiter.h"
#include "cpu_level.h"
#include "rt_common.h"
#include "true_peak.h"

#include <float.h>
#include <stdatomic.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LOOKAHEAD_MS_MIN 0.5
#define LOOKAHEAD_MS_MAX 10.0
#define CEILING_DB_MIN (-60.0)
#define CEILING_DB_MAX 0.0
#define RELEASE_MS_MIN 1.0
#define RELEASE_MS_MAX 5000.0
/* The detector: 4x at every rate (full-band content at 96 kHz has inter-sample peaks
 * too), 64 taps per phase with Kaiser beta 9 (a sharper transition at fs/2 than the
 * meter's 32-tap filter: a limiter pins many peaks at the ceiling, so the near-Nyquist
 * part of them matters), and the parabola-refined envelope (true_peak.h), computed
 * exactly only where it may exceed the ceiling (rt_true_peak_envelope_bounded). */
#define TP_FACTOR 4u
#define TP_TAPS 64u
#define TP_BETA 9.0
#define TP_FLAT_MAX 8u        /* K: frames of flat gain either side of a peak (true-peak mode) */
#define CHUNK 256u            /* frames per internal pass (scratch size); not a processing unit */
#define Q_ONE 1099511627776.0 /* 2^40: fixed-point unit of the averaged gain */
#define Q_ONE_I ((int64_t)1 << 40)
#define R_MARGIN (1.0 - 1e-12)
#define AUTO_DENSITY_MS 500.0
#define AUTO_RECOVERED_U 0.001 /* gain reduction counted as recovered (gain >= 0.999, -0.009 dB) */
#define CELL 64u              /* frames per update of the auto-release density (absolute grid) */
#define KAPPA_REL 0x1p-30     /* release offset, relative to the rate (see header) */
#define KAPPA_MIN 0x1p-50
/* A gain in [UNITY_GAIN, 1] leaves every float32 sample unchanged: |x (1 - g)| plus the
 * rounding of the double product is < 2^-29 |x|, below half an ulp of x. */
#define UNITY_GAIN (1.0 - 0x1p-30)

/* The vector stages, built for the baseline and for x86-64-v3 (see the end of the file). */
typedef struct {
    uint32_t (*sanitize)(const float *x, float *dst, uint32_t n);
    void (*absmax)(float *d, const float *x, int first, uint32_t n);
    void (*max3)(float *d, const float *v, uint32_t n);
    float (*vmax)(const float *d, uint32_t n);
    void (*required)(const float *d, double *r, float ceiling, uint32_t n);
    uint64_t (*apply)(const float *xd, const double *g, float *out, float ceiling, uint32_t n);
    uint64_t (*apply_unity)(const float *xd, float *out, float ceiling, uint32_t n);
    void (*fill)(double *a, double v, uint32_t n);
} lim_stages;
static const lim_stages *pick_stages(void);

struct rt_limiter {
    uint32_t channels;
    double sample_rate;
    uint32_t max_lookahead;   /* frames, fixed at create */
    uint32_t lookahead;       /* D */
    uint32_t flat;            /* K */
    uint32_t hold_len;        /* H + 1 = D + K + 1 */
    uint32_t box_len;         /* A = D + 1 - K */
    uint32_t det_latency;     /* 0, or true-peak latency + 1 */
    uint32_t latency;         /* D + det_latency */

    double ceiling;           /* linear */
    float ceiling_f;          /* largest float <= ceiling */
    double release_ms;
    double rate_slow, rate_fast;
    double rise[CELL + 1], decay[CELL + 1]; /* density over k frames: 1 - (1 - a)^k, (1 - a)^k */
    int auto_release;
    int true_peak;

    /* sanitized input: per channel a ring of dcap frames stored twice (slot p and p + dcap),
     * so that any dcap consecutive frames are contiguous */
    float *delay;
    uint32_t dcap, dpos;      /* dpos: ring slot of the next frame */
    /* Rings indexed by the frame count t (capacities are powers of two):
     * r(t) at t & rmask, stored twice (slot p and p + rmask + 1) so that r(t - D) for a
     * whole chunk is contiguous; q(t) at t & bmask; the monotonic deque of (w = 1 - r, t)
     * for the frames with r < 1 (indices & qmask). */
    double *r_ring;
    uint32_t rmask;
    double *dq_w;
    uint64_t *dq_t;
    uint32_t qmask, dq_head, dq_count;
    int64_t *box;
    int64_t box_sum;
    uint32_t bmask;
    uint32_t clean;           /* frames since u was last above 0 (saturates at bmask + 1) */
    double box_scale;         /* 1 / (box_len * 2^40) */
    double g_unity;           /* the gain once everything is at unity */
    double u;                 /* release stage: gain reduction 1 - e(t) */
    double density;           /* auto release: fraction of time limiting */
    double rho, keep, kappa;  /* release rate of the current cell, 1 - rho, offset */
    uint32_t cell_pos, cell_lim, cell_rec;
    uint64_t t;               /* frames pushed through the detector */

    float *det;               /* CHUNK + 2: detector per frame (true peak: two frames of history first) */
    float *det3;              /* CHUNK: true peak: 3-wide maximum */
    double *r;                /* CHUNK: r(t) of the chunk */
    double *g;                /* CHUNK: gain per output frame */
    double *ua, *va;          /* CHUNK: u(t) and v(t) of the frames run one by one */
    int64_t *bs;              /* CHUNK: their box sums */
    rt_true_peak *tp;
    float *tp_env;            /* channels * CHUNK */
    float **tp_env_ptr;
    const float **tp_in_ptr;
    float tp_prev[2];         /* detector values of the last two frames (3-wide max) */
    const lim_stages *k;

    double gain_last, gain_min;
    uint64_t clamps, nonfinite;
    /* Copies for other threads (relaxed atomics; the fields above belong to the audio
     * thread): the gain of the last frame, and the lowest gain since the last take. */
    _Atomic double shared_gain_last, shared_gain_min_take;
};

static float float_at_or_below(double v)
{
    float f = (float)v;
    if ((double)f > v) f = nextafterf(f, 0.0f);
    return f;
}

static uint32_t pow2_at_least(uint32_t n)
{
    uint32_t p = 1;
    while (p < n) p <<= 1;
    return p;
}

static double release_rate(double ms, double fs) { return 1.0 - exp(-1000.0 / (ms * fs)); }

static uint32_t lookahead_frames(double ms, double fs)
{
    long d = lround(ms * 0.001 * fs);
    return d < 1 ? 1u : (uint32_t)d;
}

/* The release rate for the next frames, from the density (auto) or release_ms. */
static void set_rate(rt_limiter *st)
{
    double rho = st->rate_slow;
    if (st->auto_release) rho = st->rate_fast + (st->rate_slow - st->rate_fast) * st->density;
    st->rho = rho;
    st->keep = 1.0 - rho;
    st->kappa = fmax(rho * KAPPA_REL, KAPPA_MIN);
}

static void configure(rt_limiter *st, uint32_t lookahead)
{
    st->lookahead = lookahead;
    st->flat = st->true_peak ? (lookahead / 2 < TP_FLAT_MAX ? lookahead / 2 : TP_FLAT_MAX) : 0;
    st->hold_len = lookahead + st->flat + 1;
    st->box_len = lookahead + 1 - st->flat;
    st->latency = lookahead + st->det_latency;
    st->box_scale = 1.0 / ((double)st->box_len * Q_ONE);
    const double g = (double)(Q_ONE_I * (int64_t)st->box_len) * st->box_scale;
    st->g_unity = g < 1.0 ? g : 1.0;
}

void rt_limiter_reset(rt_limiter *st)
{
    memset(st->delay, 0, sizeof(float) * 2 * st->dcap * st->channels);
    st->dpos = 0;
    for (uint32_t i = 0; i < 2 * (st->rmask + 1); i++) st->r_ring[i] = 1.0;
    st->dq_head = st->dq_count = 0;
    for (uint32_t i = 0; i <= st->bmask; i++) st->box[i] = Q_ONE_I;
    st->box_sum = Q_ONE_I * (int64_t)st->box_len;
    st->clean = st->bmask + 1;
    st->u = 0.0;
    st->density = 0.0;
    st->cell_pos = st->cell_lim = st->cell_rec = 0;
    set_rate(st);
    st->t = 0;
    st->tp_prev[0] = st->tp_prev[1] = 0.0f;
    if (st->tp) rt_true_peak_reset(st->tp);
    st->gain_last = st->gain_min = 1.0;
    atomic_store_explicit(&st->shared_gain_last, 1.0, memory_order_relaxed);
    atomic_store_explicit(&st->shared_gain_min_take, 1.0, memory_order_relaxed);
}

rt_limiter *rt_limiter_create(uint32_t channels, double sample_rate, double lookahead_ms,
                              double ceiling_db, double release_ms, int auto_release, int true_peak)
{
    if (channels == 0 || !(sample_rate >= 1000.0 && sample_rate <= 1e6)) return NULL;
    if (!(lookahead_ms >= LOOKAHEAD_MS_MIN && lookahead_ms <= LOOKAHEAD_MS_MAX)) return NULL;
    if (!(ceiling_db >= CEILING_DB_MIN && ceiling_db <= CEILING_DB_MAX)) return NULL;
    if (!(release_ms >= RELEASE_MS_MIN && release_ms <= RELEASE_MS_MAX)) return NULL;
    rt_limiter *st = calloc(1, sizeof *st);
    if (!st) return NULL;
    st->channels = channels;
    st->sample_rate = sample_rate;
    st->true_peak = true_peak != 0;
    st->k = pick_stages();
    st->max_lookahead = lookahead_frames(LOOKAHEAD_MS_MAX, sample_rate);
    if (st->true_peak) {
        st->tp = rt_true_peak_create_design(channels, sample_rate, TP_FACTOR, TP_TAPS, TP_BETA);
        st->tp_env = calloc((size_t)channels * CHUNK, sizeof(float));
        st->tp_env_ptr = calloc(channels, sizeof(float *));
        st->tp_in_ptr = calloc(channels, sizeof(float *));
        if (!st->tp || !st->tp_env || !st->tp_env_ptr || !st->tp_in_ptr) goto fail;
        for (uint32_t ch = 0; ch < channels; ch++) st->tp_env_ptr[ch] = st->tp_env + (size_t)ch * CHUNK;
        st->det_latency = rt_true_peak_latency(st->tp) + 1;
    }
    st->dcap = st->max_lookahead + st->det_latency + CHUNK;
    st->rmask = pow2_at_least(st->max_lookahead + CHUNK) - 1;
    st->qmask = pow2_at_least(st->max_lookahead + TP_FLAT_MAX + 2) - 1;
    st->bmask = pow2_at_least(st->max_lookahead + 1) - 1;
    st->delay = calloc((size_t)channels * 2 * st->dcap, sizeof(float));
    st->r_ring = calloc(2 * ((size_t)st->rmask + 1), sizeof(double));
    st->dq_w = calloc((size_t)st->qmask + 1, sizeof(double));
    st->dq_t = calloc((size_t)st->qmask + 1, sizeof(uint64_t));
    st->box = calloc((size_t)st->bmask + 1, sizeof(int64_t));
    st->det = calloc(CHUNK + 2, sizeof(float));
    st->det3 = calloc(CHUNK, sizeof(float));
    st->r = calloc(CHUNK, sizeof(double));
    st->g = calloc(CHUNK, sizeof(double));
    st->ua = calloc(CHUNK, sizeof(double));
    st->va = calloc(CHUNK, sizeof(double));
    st->bs = calloc(CHUNK, sizeof(int64_t));
    if (!st->delay || !st->r_ring || !st->dq_w || !st->dq_t || !st->box || !st->det || !st->det3 || !st->r || !st->g
        || !st->ua || !st->va || !st->bs)
        goto fail;
    for (uint32_t k = 0; k <= CELL; k++) {
        const double a = (double)k * log1p(-release_rate(AUTO_DENSITY_MS, sample_rate));
        st->decay[k] = exp(a);
        st->rise[k] = -expm1(a);
    }
    st->auto_release = auto_release != 0;
    rt_limiter_set_ceiling_db(st, ceiling_db);
    rt_limiter_set_release_ms(st, release_ms);
    configure(st, lookahead_frames(lookahead_ms, sample_rate));
    if (st->lookahead > st->max_lookahead) goto fail;
    rt_limiter_reset(st);
    return st;
fail:
    rt_limiter_destroy(st);
    return NULL;
}

void rt_limiter_destroy(rt_limiter *st)
{
    if (!st) return;
    rt_true_peak_destroy(st->tp);
    free(st->tp_env);
    free(st->tp_env_ptr);
    free(st->tp_in_ptr);
    free(st->delay);
    free(st->r_ring);
    free(st->dq_w);
    free(st->dq_t);
    free(st->box);
    free(st->det);
    free(st->det3);
    free(st->r);
    free(st->g);
    free(st->ua);
    free(st->va);
    free(st->bs);
    free(st);
}

uint32_t rt_limiter_latency(const rt_limiter *st) { return st->latency; }
uint32_t rt_limiter_lookahead_frames(const rt_limiter *st) { return st->lookahead; }

int rt_limiter_set_lookahead_ms(rt_limiter *st, double lookahead_ms)
{
    if (!(lookahead_ms >= LOOKAHEAD_MS_MIN && lookahead_ms <= LOOKAHEAD_MS_MAX)) return -1;
    uint32_t d = lookahead_frames(lookahead_ms, st->sample_rate);
    if (d > st->max_lookahead) return -1;
    configure(st, d);
    rt_limiter_reset(st);
    return 0;
}

int rt_limiter_set_ceiling_db(rt_limiter *st, double ceiling_db)
{
    if (!(ceiling_db >= CEILING_DB_MIN && ceiling_db <= CEILING_DB_MAX)) return -1;
    st->ceiling = pow(10.0, ceiling_db / 20.0);
    st->ceiling_f = float_at_or_below(st->ceiling);
    return 0;
}

int rt_limiter_set_release_ms(rt_limiter *st, double release_ms)
{
    if (!(release_ms >= RELEASE_MS_MIN && release_ms <= RELEASE_MS_MAX)) return -1;
    st->release_ms = release_ms;
    st->rate_slow = release_rate(release_ms, st->sample_rate);
    st->rate_fast = release_rate(release_ms / 4.0, st->sample_rate);
    set_rate(st);
    return 0;
}

void rt_limiter_set_auto_release(rt_limiter *st, int on)
{
    st->auto_release = on != 0;
    set_rate(st);
}

/* End of a density cell: the limiting frames raise the density, the recovered ones lower
 * it (as that many one-pole steps would), then the rate follows. */
static void cell_update(rt_limiter *st)
{
    if (st->cell_lim) st->density += (1.0 - st->density) * st->rise[st->cell_lim];
    if (st->cell_rec) st->density = rt_flush_tiny(st->density * st->decay[st->cell_rec]);
    st->cell_pos = st->cell_lim = st->cell_rec = 0;
    set_rate(st);
}

/* Frames [0, m) of a stretch run one by one: hold (deque), release, box sum.  u(t), v(t)
 * and the box sum go to ua, va, bs; the rest (gain, counters) is done by the caller on
 * whole arrays.  The one loop-carried floating-point chain is u: a multiply, an add and a
 * max per frame. */
static void run_frames(rt_limiter *st, const double *restrict r, double *restrict ua, double *restrict va,
                       int64_t *restrict bs, uint32_t m)
{
    const uint32_t hold_len = st->hold_len, qmask = st->qmask, bmask = st->bmask, box_len = st->box_len;
    const double keep = st->keep, rho = st->rho, kappa = st->kappa;
    double *restrict dq_w = st->dq_w;
    uint64_t *restrict dq_t = st->dq_t;
    int64_t *restrict box = st->box;
    double u = st->u;
    uint64_t t = st->t;
    int64_t box_sum = st->box_sum;
    uint32_t head = st->dq_head, count = st->dq_count;
    for (uint32_t i = 0; i < m; i++, t++) {
        const double rt = r[i];
        if (rt < 1.0) {
            const double w = 1.0 - rt;
            while (count && !(dq_w[(head + count - 1) & qmask] > w)) count--;
            dq_w[(head + count) & qmask] = w;
            dq_t[(head + count) & qmask] = t;
            count++;
        }
        /* one frame enters the window, so at most one leaves it */
        if (count && dq_t[head] + hold_len <= t) {
            head = (head + 1) & qmask;
            count--;
        }
        const double v = count ? dq_w[head] : 0.0;
        /* release (attack is instant: u jumps up to v) */
        const double un = u * keep + (v * rho - kappa);
        u = un > v ? un : v;
        ua[i] = u;
        va[i] = v;
        /* attack: exact moving sum of e = 1 - u over box_len frames */
        const int64_t q = (int64_t)((1.0 - u) * Q_ONE); /* >= 0: truncation rounds down */
        box_sum += q - box[(t - box_len) & bmask];
        box[t & bmask] = q;
        bs[i] = box_sum;
    }
    st->u = u;
    st->t = t;
    st->box_sum = box_sum;
    st->dq_head = head;
    st->dq_count = count;
}

/* The gain computer for one chunk: r(t) of its n frames in (NULL: all 1), and r(t - D) of
 * the same frames (contiguous); the gain of each output frame out.  Scalar, and built once
 * (no FMA contraction on the baseline target), so every vector level computes the same
 * gains.  Frames run one by one are taken in stretches that end at the density's cell
 * boundaries (its counters are summed per stretch).
 *
 * At unity (u = 0, no r < 1 in the hold window, u = 0 for the last bmask + 1 frames: every
 * q in the ring is Q_ONE) a frame with r = 1 leaves every state but t and the density
 * counters as it was (u stays max(0, 0 - kappa) = 0, q = Q_ONE replaces Q_ONE) and gets the
 * gain g_unity: such stretches are taken whole.  Returns the smallest gain. */
static double gain_chunk(rt_limiter *st, const double *restrict r, const double *restrict r_delayed,
                         double *restrict g, uint32_t n, int *all_unity)
{
    const double box_scale = st->box_scale, g_unity = st->g_unity;
    const uint32_t full = st->bmask + 1;
    double g_min = 1.0;
    uint32_t i = 0;
    *all_unity = 0;
    while (i < n) {
        if (st->u == 0.0 && st->dq_count == 0 && st->clean >= full) {
            uint32_t j = i;
            if (r)
                while (j < n && !(r[j] < 1.0)) j++;
            else
                j = n;
            if (j > i) {
                *all_unity = j - i == n; /* then g is not needed: every gain is g_unity */
                if (!*all_unity) st->k->fill(g + i, g_unity, j - i);
                g_min = g_unity < g_min ? g_unity : g_min;
                st->t += j - i;
                for (uint32_t left = j - i; left;) {
                    const uint32_t step = left < CELL - st->cell_pos ? left : CELL - st->cell_pos;
                    st->cell_rec += step;
                    st->cell_pos += step;
                    left -= step;
                    if (st->cell_pos == CELL) cell_update(st);
                }
                i = j;
                if (i == n) break;
            }
        }
        if (!r) { /* a release still running through a chunk without r < 1 */
            st->k->fill(st->r, 1.0, n);
            r = st->r;
        }
        const uint32_t j = n - i < CELL - st->cell_pos ? n : i + (CELL - st->cell_pos);
        run_frames(st, r + i, st->ua + i, st->va + i, st->bs + i, j - i);
        const double *restrict ua = st->ua, *restrict va = st->va;
        const int64_t *restrict bs = st->bs;
        uint32_t lim = 0, rec = 0;
        for (uint32_t k = i; k < j; k++) {
            const double gg = (double)bs[k] * box_scale; /* rounding may lift it by an ulp: min() */
            const double gk = gg < r_delayed[k] ? gg : r_delayed[k];
            g[k] = gk;
            g_min = gk < g_min ? gk : g_min;
            lim += va[k] > 0.0;
            rec += va[k] == 0.0 && ua[k] <= AUTO_RECOVERED_U;
        }
        st->cell_lim += lim;
        st->cell_rec += rec;
        uint32_t z = 0; /* trailing frames with u = 0 */
        while (z < j - i && ua[j - 1 - z] == 0.0) z++;
        st->clean = z < j - i ? z : (st->clean + z < full ? st->clean + z : full);
        st->cell_pos += j - i;
        if (st->cell_pos == CELL) cell_update(st);
        i = j;
    }
    return g_min;
}

/* Writes n frames at ring slot pos of a doubled ring of cap slots (values at pos .. pos + n
 * are already in place; this copies them to their other slot). */
static void mirror(float *ring, uint32_t pos, uint32_t cap, uint32_t n)
{
    const uint32_t first = pos + n <= cap ? n : cap - pos;
    memcpy(ring + pos + cap, ring + pos, sizeof(float) * first);
    if (first < n) memcpy(ring, ring + cap, sizeof(float) * (n - first));
}

uint32_t rt_limiter_process_gain(rt_limiter *st, const float *const *in, float *const *out,
                                 float *gain_out, uint32_t frames)
{
    const uint32_t C = st->channels, dcap = st->dcap;
    const float ceiling_f = st->ceiling_f;
    const lim_stages *k = st->k;
    double gain_min = st->gain_min, g = st->gain_last, block_min = 1.0;
    for (uint32_t off = 0; off < frames; off += CHUNK) {
        const uint32_t n = frames - off < CHUNK ? frames - off : CHUNK;
        /* Copy into the delay line (so out may alias in), non-finite samples as 0. */
        for (uint32_t ch = 0; ch < C; ch++) {
            float *ring = st->delay + (size_t)ch * 2 * dcap;
            st->nonfinite += k->sanitize(in[ch] + off, ring + st->dpos, n);
            mirror(ring, st->dpos, dcap, n);
        }
        /* detector d(t), then r(t) */
        const float *d;
        if (st->tp) {
            for (uint32_t ch = 0; ch < C; ch++) st->tp_in_ptr[ch] = st->delay + (size_t)ch * 2 * dcap + st->dpos;
            rt_true_peak_envelope_bounded(st->tp, st->tp_in_ptr, st->tp_env_ptr, (double)ceiling_f, n);
            float *v = st->det; /* v[0], v[1]: the two frames before the chunk */
            v[0] = st->tp_prev[1];
            v[1] = st->tp_prev[0];
            for (uint32_t ch = 0; ch < C; ch++) k->absmax(v + 2, st->tp_env_ptr[ch], ch == 0, n);
            /* 3-wide max: covers the inter-sample intervals on both sides of a frame. */
            k->max3(st->det3, v, n);
            st->tp_prev[0] = v[n + 1];
            st->tp_prev[1] = v[n];
            d = st->det3;
        } else {
            for (uint32_t ch = 0; ch < C; ch++)
                k->absmax(st->det, st->delay + (size_t)ch * 2 * dcap + st->dpos, ch == 0, n);
            d = st->det;
        }
        const int active = k->vmax(d, n) > ceiling_f;
        if (active) k->required(d, st->r, ceiling_f, n);
        /* r(t) into its ring, twice (read back D frames later, a chunk at a time) */
        const uint32_t rcap = st->rmask + 1, rpos = (uint32_t)st->t & st->rmask;
        const uint32_t first = rpos + n <= rcap ? n : rcap - rpos;
        if (active) {
            memcpy(st->r_ring + rpos, st->r, sizeof(double) * first);
            memcpy(st->r_ring + rpos + rcap, st->r, sizeof(double) * first);
            memcpy(st->r_ring, st->r + first, sizeof(double) * (n - first));
            memcpy(st->r_ring + rcap, st->r + first, sizeof(double) * (n - first));
        } else {
            k->fill(st->r_ring + rpos, 1.0, first);
            k->fill(st->r_ring + rpos + rcap, 1.0, first);
            k->fill(st->r_ring, 1.0, n - first);
            k->fill(st->r_ring + rcap, 1.0, n - first);
        }
        const double *r_delayed = st->r_ring + ((st->t - st->lookahead) & st->rmask);
        int all_unity;
        const double chunk_min = gain_chunk(st, active ? st->r : NULL, r_delayed, st->g, n, &all_unity);
        if (chunk_min < block_min) block_min = chunk_min;

        /* output: the delayed input times the gain (the safety stage inside) */
        const uint32_t rd = st->dpos + dcap - st->latency; /* < 2 dcap; a window of n from it is in the ring */
        const uint32_t rdm = rd >= dcap ? rd - dcap : rd;
        for (uint32_t ch = 0; ch < C; ch++) {
            const float *xd = st->delay + (size_t)ch * 2 * dcap + rdm;
            st->clamps += chunk_min >= UNITY_GAIN ? k->apply_unity(xd, out[ch] + off, ceiling_f, n)
                                                  : k->apply(xd, st->g, out[ch] + off, ceiling_f, n);
        }
        st->dpos = st->dpos + n >= dcap ? st->dpos + n - dcap : st->dpos + n;

        if (all_unity) {
            if (gain_out)
                for (uint32_t i = 0; i < n; i++) gain_out[off + i] = (float)st->g_unity;
            g = st->g_unity;
        } else {
            if (gain_out)
                for (uint32_t i = 0; i < n; i++) gain_out[off + i] = (float)st->g[i];
            g = st->g[n - 1];
        }
    }
    if (block_min < gain_min) gain_min = block_min;
    st->gain_last = g;
    st->gain_min = gain_min;
    atomic_store_explicit(&st->shared_gain_last, g, memory_order_relaxed);
    double old = atomic_load_explicit(&st->shared_gain_min_take, memory_order_relaxed);
    while (block_min < old &&
           !atomic_compare_exchange_weak_explicit(&st->shared_gain_min_take, &old, block_min,
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
    return frames;
}

uint32_t rt_limiter_process(rt_limiter *st, const float *const *in, float *const *out, uint32_t frames)
{
    return rt_limiter_process_gain(st, in, out, NULL, frames);
}

static double to_db_reduction(double g) { return g > 0.0 ? -20.0 * log10(g) : INFINITY; }

double rt_limiter_gain_reduction_db(const rt_limiter *st) { return to_db_reduction(st->gain_last); }
double rt_limiter_max_gain_reduction_db(const rt_limiter *st) { return to_db_reduction(st->gain_min); }
void rt_limiter_clear_meter(rt_limiter *st) { st->gain_min = st->gain_last; }
double rt_limiter_gr_now_db(const rt_limiter *st)
{
    return to_db_reduction(atomic_load_explicit((_Atomic double *)&st->shared_gain_last, memory_order_relaxed));
}
double rt_limiter_gr_max_take_db(rt_limiter *st)
{
    return to_db_reduction(atomic_exchange_explicit(&st->shared_gain_min_take, 1.0, memory_order_relaxed));
}
uint64_t rt_limiter_clamp_count(const rt_limiter *st) { return st->clamps; }
uint64_t rt_limiter_nonfinite_count(const rt_limiter *st) { return st->nonfinite; }

/* The vector stages (the LIM_TEMPLATE part below), built twice: for the baseline and for
 * x86-64-v3, picked at create by rt_cpu_level().  Plain loops the compiler vectorizes; no
 * sums and no FMA-contractible expressions, so both builds give the same numbers. */
#define LIM_TEMPLATE 1
#define LIM_SFX _base
#define LIM_TARGET
#include "limiter.c"
#undef LIM_SFX
#undef LIM_TARGET
#if defined(__x86_64__) && defined(__GNUC__)
#define LIM_HAVE_V3 1
#define LIM_SFX _v3
#define LIM_TARGET __attribute__((target("arch=x86-64-v3")))
#include "limiter.c"
#undef LIM_SFX
#undef LIM_TARGET
#endif

static const lim_stages *pick_stages(void)
{
#ifdef LIM_HAVE_V3
    if (rt_cpu_level() >= 3) return &stages_v3;
#endif
    return &stages_base;
}

#else /* LIM_TEMPLATE */

#define LIM_CAT_(a, b) a##b
#define LIM_CAT(a, b) LIM_CAT_(a, b)
#define LIM_N(name) LIM_CAT(name, LIM_SFX)

/* Copies x to dst with non-finite samples as 0; returns how many there were. */
LIM_TARGET static uint32_t LIM_N(sanitize)(const float *restrict x, float *restrict dst, uint32_t n)
{
    uint32_t bad = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, x + i, sizeof bits);
        const int finite = (bits & 0x7f800000u) != 0x7f800000u;
        bad += !finite;
        dst[i] = finite ? x[i] : 0.0f;
    }
    return bad;
}

/* d = |x| (first) or max(d, |x|). */
LIM_TARGET static void LIM_N(absmax)(float *restrict d, const float *restrict x, int first, uint32_t n)
{
    if (first) {
        for (uint32_t i = 0; i < n; i++) d[i] = fabsf(x[i]);
        return;
    }
    for (uint32_t i = 0; i < n; i++) {
        const float a = fabsf(x[i]);
        d[i] = a > d[i] ? a : d[i];
    }
}

/* d[i] = max(v[i], v[i + 1], v[i + 2]). */
LIM_TARGET static void LIM_N(max3)(float *restrict d, const float *restrict v, uint32_t n)
{
    const float *restrict v1 = v + 1, *restrict v2 = v + 2; /* (i + 2 in 32 bits would stop the vectorizer) */
    for (size_t i = 0; i < n; i++) {
        const float a = v[i] > v1[i] ? v[i] : v1[i];
        d[i] = v2[i] > a ? v2[i] : a;
    }
}

/* Largest of n values >= 0 (their bits order as integers: an integer reduction vectorizes). */
LIM_TARGET static float LIM_N(vmax)(const float *restrict d, uint32_t n)
{
    uint32_t m = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, d + i, sizeof bits);
        m = bits > m ? bits : m;
    }
    float f;
    memcpy(&f, &m, sizeof f);
    return f;
}

/* r = ceiling / d, rounded down by R_MARGIN so that |x| * r can never round above the
 * ceiling; 1 where d <= ceiling. */
LIM_TARGET static void LIM_N(required)(const float *restrict d, double *restrict r, float ceiling, uint32_t n)
{
    const float half = 0.5f * ceiling;
    for (uint32_t i = 0; i < n; i++) {
        /* Where d <= ceiling the quotient is ~2 and the min() makes it 1; the division is
         * then unconditional and the loop vectorizes. */
        const float den = d[i] > ceiling ? d[i] : half;
        const double q = ((double)ceiling / (double)den) * R_MARGIN;
        r[i] = q < 1.0 ? q : 1.0;
    }
}

/* out = xd * g (double product, rounded once to float); an output still above the ceiling
 * (only possible after the ceiling was lowered with audio in the delay line) is set to
 * +-ceiling and counted; no subnormal output, even without FTZ. */
LIM_TARGET static uint64_t LIM_N(apply)(const float *restrict xd, const double *restrict g, float *restrict out,
                                        float ceiling, uint32_t n)
{
    uint32_t over = 0;
    for (uint32_t i = 0; i < n; i++) {
        float y = (float)((double)xd[i] * g[i]);
        const int o = fabsf(y) > ceiling;
        over += o;
        y = o ? copysignf(ceiling, xd[i]) : y;
        out[i] = fabsf(y) < FLT_MIN ? 0.0f : y;
    }
    return over;
}

/* apply() with every g in [UNITY_GAIN, 1]: the product would give xd back (see UNITY_GAIN). */
LIM_TARGET static uint64_t LIM_N(apply_unity)(const float *restrict xd, float *restrict out, float ceiling, uint32_t n)
{
    uint32_t over = 0;
    for (uint32_t i = 0; i < n; i++) {
        float y = xd[i];
        const int o = fabsf(y) > ceiling;
        over += o;
        y = o ? copysignf(ceiling, xd[i]) : y;
        out[i] = fabsf(y) < FLT_MIN ? 0.0f : y;
    }
    return over;
}

LIM_TARGET static void LIM_N(fill)(double *restrict a, double v, uint32_t n)
{
    for (size_t i = 0; i < n; i++) a[i] = v;
}

static const lim_stages LIM_N(stages) = {LIM_N(sanitize), LIM_N(absmax), LIM_N(max3), LIM_N(vmax),
                                         LIM_N(required), LIM_N(apply), LIM_N(apply_unity), LIM_N(fill)};

#undef LIM_CAT_
#undef LIM_CAT
#undef LIM_N
#endif /* LIM_TEMPLATE */
