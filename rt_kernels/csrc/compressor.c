#include "compressor.h"
#include "rt_common.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Work is done in chunks on a grid of RT_CMP_CHUNK frames aligned to the absolute
 * frame count (not to the caller's blocks); tiny state is flushed at each grid point,
 * which keeps the flush off the smoother's per-sample dependency chain and the output
 * bit-identical for any block size.  Between two grid points a state above
 * RT_STATE_FLOOR cannot decay into the subnormal range (even the fastest time
 * constants shrink it by far less than 1e-270 in 256 frames), and a zero
 * time constant sets the envelope to its input exactly. */
#define RT_CMP_CHUNK 256
#define RT_CMP_MAKEUP_RAMP_MS 20.0
/* Detector inputs above this (+200 dB, Inf included) are clamped to it and a NaN
 * reads as silence, so a stray non-finite sample cannot poison the envelope. */
#define RT_CMP_LEVEL_MAX 1e10

#define DB_PER_NEPER_AMP (20.0 / 2.302585092994045684)  /* 20 / ln 10 */
#define DB_PER_NEPER_POW (10.0 / 2.302585092994045684)  /* 10 / ln 10 */
#define NEPER_PER_DB (2.302585092994045684 / 20.0)

/* The two vectorized passes are also built for AVX2 (4 doubles per instruction)
 * and picked at load time (ifunc) on CPUs that have it.  No FMA: the arithmetic,
 * and so the output, is the same in every clone. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define RT_CMP_SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define RT_CMP_SIMD_CLONES
#endif

struct rt_compressor {
    uint32_t channels;
    double sample_rate;
    rt_compressor_params p;

    /* derived from p */
    double drop;           /* 1 - 1/R: dB of reduction per dB above the threshold */
    double half_inv_knee;  /* 1/(2W), 0 for a hard knee */
    double knee_lo_db;     /* T - W/2: at or below it the curve is the identity */
    double knee_hi_db;     /* T + W/2 */
    double attack_coef;    /* a_A */
    double release_coef;   /* a_R */
    double rms_coef;       /* one-pole coefficient of the mean-square detector */
    double makeup_target_db;

    /* makeup ramp (per sample, in dB) */
    double makeup_db;
    double makeup_step;
    uint32_t makeup_remaining;
    uint32_t makeup_ramp_frames;
    uint32_t grid_phase;   /* frames since the last grid point */

    /* per channel (index 0 is the shared detector when linked) */
    double *env_db;        /* y_L */
    double *ms;            /* mean square (RMS mode) */
    _Atomic double *gr_now;
    _Atomic double *gr_max;

    double level[2][RT_CMP_CHUNK];  /* detector level per frame (two channels at a time) */
    double gain[2][RT_CMP_CHUNK];   /* x_L, then y_L, then the linear gain, per frame */
    double makeup[RT_CMP_CHUNK];  /* makeup dB per frame while ramping */
};

/* Natural log and exp for the per-sample level and gain.  libm's are correctly
 * rounded and handle every special case, but cost a call per sample and cannot be
 * vectorized; these are inline, branch-free, use no int<->double conversion (so
 * gcc vectorizes the loops that call them with plain SSE2), and are accurate far
 * beyond audibility (errors < 1e-12, i.e. < 1e-11 dB) in the ranges met here:
 * fast_log takes a finite x >= 0 (0 and subnormals give about -709, i.e. a level of
 * about -6000 dB, far below any knee); fast_exp takes |y| <= 700. */
static inline uint64_t bits_of(double x)
{
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static inline double double_of(uint64_t u)
{
    double x;
    memcpy(&x, &u, sizeof x);
    return x;
}

static inline double fast_log(double x)
{
    /* x = 2^k m with m in [sqrt(1/2), sqrt(2)): measured from the bits of sqrt(1/2),
     * the top 12 bits give k and the rest gives m (as in musl's log). */
    uint64_t ix = bits_of(x);
    uint64_t tmp = ix - 0x3FE6A09E667F3BCDull;
    double m = double_of(ix - (tmp & (0xFFFull << 52)));
    /* k + 2048 as an unsigned 12-bit field, turned into a double via 2^52 + field. */
    uint64_t biased = (tmp + (2048ull << 52)) >> 52;
    double k = double_of(0x4330000000000000ull | biased) - (0x1.0p52 + 2048.0);
    /* log(m) = 2 atanh(s), s = (m - 1)/(m + 1), |s| <= 0.1716; series to s^13 */
    double sv = (m - 1.0) / (m + 1.0), z = sv * sv;
    double poly = 1.0 + z * (1.0 / 3 + z * (1.0 / 5 + z * (1.0 / 7 + z * (1.0 / 9 + z * (1.0 / 11 + z * (1.0 / 13))))));
    return k * 0.6931471805599453094 + 2.0 * sv * poly;
}

static inline double fast_exp(double y)
{
    /* y = k ln2 + r, |r| <= ln2/2; exp(y) = 2^k e^r.  Adding 1.5 * 2^52 rounds
     * y/ln2 to the integer k and leaves k in the low bits of the sum. */
    const double round_magic = 0x1.8p52;
    double shifted = y * 1.4426950408889634074 + round_magic;
    double kd = shifted - round_magic;
    double r = (y - kd * 0x1.62e42fefa3800p-1) - kd * 0x1.ef35793c76730p-45;
    double p = 1.0 + r * (1.0 + r * (1.0 / 2 + r * (1.0 / 6 + r * (1.0 / 24 + r * (1.0 / 120 + r * (1.0 / 720
              + r * (1.0 / 5040 + r * (1.0 / 40320 + r * (1.0 / 362880 + r * (1.0 / 3628800))))))))));
    return p * double_of((bits_of(shifted) + 1023) << 52);
}

static double time_coef(double ms, double fs)
{
    /* a = exp(-1/(tau fs)); tau = 0 means no smoothing. */
    return ms > 0.0 ? exp(-1.0 / (ms * 0.001 * fs)) : 0.0;
}

/* Static gain reduction x_L = x_G - y_G (dB, >= 0) of the paper's soft knee, written with
 * clamps only (so that a loop over it vectorizes):
 *     x_L = drop (xk - lo)^2 / (2W) + drop (max(x, hi) - hi),   xk = clamp(x, lo, hi),
 * drop = 1 - 1/R, lo/hi = T -/+ W/2.  At or below the knee both terms are exactly 0;
 * in it, the first is the quadratic; above it, their sum is drop (x - T). */
static inline double knee_curve_gr(double x_db, double lo, double hi, double drop, double half_inv_knee)
{
    double xk = x_db > lo ? x_db : lo;
    xk = xk < hi ? xk : hi;
    double xa = x_db > hi ? x_db : hi;
    double d = xk - lo;
    return drop * d * d * half_inv_knee + drop * (xa - hi);
}

static double static_gr_db(const rt_compressor *c, double x_db)
{
    return knee_curve_gr(x_db, c->knee_lo_db, c->knee_hi_db, c->drop, c->half_inv_knee);
}

static int params_valid(const rt_compressor_params *p)
{
    /* Written so that NaN fails every comparison. */
    if (!(p->threshold_db >= -100.0 && p->threshold_db <= 20.0)) return 0;
    if (!(p->ratio >= 1.0 && p->ratio <= 1000.0)) return 0;
    if (!(p->knee_db >= 0.0 && p->knee_db <= 48.0)) return 0;
    if (!(p->attack_ms >= 0.0 && p->attack_ms <= 2000.0)) return 0;
    if (!(p->release_ms >= 0.0 && p->release_ms <= 10000.0)) return 0;
    if (!(p->makeup_db >= -48.0 && p->makeup_db <= 48.0)) return 0;
    if (p->auto_makeup != 0 && p->auto_makeup != 1) return 0;
    if (p->detector != RT_CMP_DETECT_PEAK && p->detector != RT_CMP_DETECT_RMS) return 0;
    if (!(p->rms_ms >= 0.1 && p->rms_ms <= 2000.0)) return 0;
    if (p->link != RT_CMP_LINK_NONE && p->link != RT_CMP_LINK_MAX && p->link != RT_CMP_LINK_MEAN) return 0;
    return 1;
}

/* Store p (already valid) and everything derived from it.  No allocation. */
static void apply_params(rt_compressor *c, const rt_compressor_params *p, int ramp_makeup)
{
    int detector_changed = c->p.detector != p->detector;
    int relink = c->p.link != p->link || detector_changed;
    c->p = *p;
    c->drop = 1.0 - 1.0 / p->ratio;
    c->half_inv_knee = p->knee_db > 0.0 ? 0.5 / p->knee_db : 0.0;
    c->knee_lo_db = p->threshold_db - 0.5 * p->knee_db;
    c->knee_hi_db = p->threshold_db + 0.5 * p->knee_db;
    c->attack_coef = time_coef(p->attack_ms, c->sample_rate);
    c->release_coef = time_coef(p->release_ms, c->sample_rate);
    c->rms_coef = time_coef(p->rms_ms, c->sample_rate);

    double target = p->makeup_db + (p->auto_makeup ? static_gr_db(c, 0.0) : 0.0);
    if (target != c->makeup_target_db || !ramp_makeup) {
        c->makeup_target_db = target;
        if (ramp_makeup && c->makeup_ramp_frames > 0) {
            c->makeup_remaining = c->makeup_ramp_frames;
            c->makeup_step = (target - c->makeup_db) / (double)c->makeup_ramp_frames;
        } else {
            c->makeup_db = target;
            c->makeup_remaining = 0;
        }
    }
    if (relink) {
        /* Detector topology changed.  A newly linked detector starts from the most
         * reduced channel (linked mode keeps every env_db equal to the shared one,
         * so unlinking needs nothing); an RMS detector restarts from silence. */
        double env = 0.0;
        for (uint32_t ch = 0; ch < c->channels; ch++) {
            if (c->env_db[ch] > env) env = c->env_db[ch];
            if (detector_changed) c->ms[ch] = 0.0;
        }
        if (p->link != RT_CMP_LINK_NONE)
            for (uint32_t ch = 0; ch < c->channels; ch++) c->env_db[ch] = env;
    }
}

rt_compressor *rt_compressor_create(uint32_t channels, double sample_rate, const rt_compressor_params *p)
{
    if (channels == 0 || !(sample_rate > 0.0) || !isfinite(sample_rate) || !p || !params_valid(p)) return NULL;
    rt_compressor *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->channels = channels;
    c->sample_rate = sample_rate;
    c->makeup_ramp_frames = (uint32_t)lround(RT_CMP_MAKEUP_RAMP_MS * 0.001 * sample_rate);
    c->env_db = calloc(channels, sizeof(double));
    c->ms = calloc(channels, sizeof(double));
    c->gr_now = calloc(channels, sizeof(_Atomic double));
    c->gr_max = calloc(channels, sizeof(_Atomic double));
    if (!c->env_db || !c->ms || !c->gr_now || !c->gr_max) {
        rt_compressor_destroy(c);
        return NULL;
    }
    c->p = *p;
    apply_params(c, p, 0);
    rt_compressor_reset(c);
    return c;
}

void rt_compressor_destroy(rt_compressor *c)
{
    if (!c) return;
    free(c->env_db);
    free(c->ms);
    free((void *)c->gr_now);
    free((void *)c->gr_max);
    free(c);
}

void rt_compressor_reset(rt_compressor *c)
{
    for (uint32_t ch = 0; ch < c->channels; ch++) {
        c->env_db[ch] = 0.0;
        c->ms[ch] = 0.0;
        atomic_store_explicit(&c->gr_now[ch], 0.0, memory_order_relaxed);
        atomic_store_explicit(&c->gr_max[ch], 0.0, memory_order_relaxed);
    }
    c->makeup_db = c->makeup_target_db;
    c->makeup_remaining = 0;
    c->grid_phase = 0;
}

uint32_t rt_compressor_latency(const rt_compressor *c) { return 0; }

int rt_compressor_set_params(rt_compressor *c, const rt_compressor_params *p)
{
    if (!p || !params_valid(p)) return -1;
    apply_params(c, p, 1);
    return 0;
}

void rt_compressor_get_params(const rt_compressor *c, rt_compressor_params *p) { *p = c->p; }

#define RT_CMP_SETTER(name, type, field)                               \
    int rt_compressor_set_##name(rt_compressor *c, type value)         \
    {                                                                  \
        rt_compressor_params p = c->p;                                 \
        p.field = value;                                               \
        return rt_compressor_set_params(c, &p);                        \
    }
RT_CMP_SETTER(threshold_db, double, threshold_db)
RT_CMP_SETTER(ratio, double, ratio)
RT_CMP_SETTER(knee_db, double, knee_db)
RT_CMP_SETTER(attack_ms, double, attack_ms)
RT_CMP_SETTER(release_ms, double, release_ms)
RT_CMP_SETTER(makeup_db, double, makeup_db)
RT_CMP_SETTER(auto_makeup, int, auto_makeup)
RT_CMP_SETTER(link, int, link)
#undef RT_CMP_SETTER

int rt_compressor_set_detector(rt_compressor *c, int detector, double rms_ms)
{
    rt_compressor_params p = c->p;
    p.detector = detector;
    p.rms_ms = rms_ms;
    return rt_compressor_set_params(c, &p);
}

double rt_compressor_makeup_total_db(const rt_compressor *c) { return c->makeup_target_db; }

double rt_compressor_gr_db(const rt_compressor *c, uint32_t channel)
{
    if (channel >= c->channels) return 0.0;
    return atomic_load_explicit((_Atomic double *)&c->gr_now[channel], memory_order_relaxed);
}

double rt_compressor_gr_max_take_db(rt_compressor *c, uint32_t channel)
{
    if (channel >= c->channels) return 0.0;
    return atomic_exchange_explicit(&c->gr_max[channel], 0.0, memory_order_relaxed);
}

static inline double clamp_level(double v)
{
    return v <= RT_CMP_LEVEL_MAX ? v : (v > RT_CMP_LEVEL_MAX ? RT_CMP_LEVEL_MAX : 0.0);
}

/* Mean-square update with a clamped input (NaN/Inf cannot enter the state). */
static inline double ms_step(double ms, double x, double coef)
{
    double sq = clamp_level(x * x);
    return coef * ms + (1.0 - coef) * sq;
}

static inline void publish_gr(rt_compressor *c, uint32_t ch, double now, double block_max)
{
    atomic_store_explicit(&c->gr_now[ch], now, memory_order_relaxed);
    double old = atomic_load_explicit(&c->gr_max[ch], memory_order_relaxed);
    while (block_max > old &&
           !atomic_compare_exchange_weak_explicit(&c->gr_max[ch], &old, block_max,
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

/* Fill c->makeup[0..n) if a ramp is running; returns 1 if it did (per-frame makeup). */
static int makeup_for_chunk(rt_compressor *c, uint32_t n)
{
    if (c->makeup_remaining == 0) return 0;
    for (uint32_t i = 0; i < n; i++) {
        if (c->makeup_remaining > 0) {
            c->makeup_remaining--;
            c->makeup_db = c->makeup_remaining ? c->makeup_db + c->makeup_step : c->makeup_target_db;
        }
        c->makeup[i] = c->makeup_db;
    }
    return 1;
}

/* The per-chunk passes.  Only the smoother is serial; the log and exp passes have
 * no loop-carried dependency and no branches, so the compiler vectorizes them. */

/* Wanted gain reduction x_L per frame from detector levels (amplitudes, or mean
 * squares if `power`). */
RT_CMP_SIMD_CLONES
static void wanted_gr(const rt_compressor *c, const double *restrict level, double *restrict g,
                      uint32_t n, int power)
{
    const double to_db = power ? DB_PER_NEPER_POW : DB_PER_NEPER_AMP;
    const double lo = c->knee_lo_db, hi = c->knee_hi_db, drop = c->drop, half_inv_knee = c->half_inv_knee;
    for (uint32_t i = 0; i < n; i++) {
        double x_db = to_db * fast_log(level[i]);  /* silence reads as about -6000 dB */
        g[i] = knee_curve_gr(x_db, lo, hi, drop, half_inv_knee);
    }
}

/* Smooth branching peak detector on x_L (as in the paper), in place: g[i] becomes y_L.
 * Both branches are computed; they differ by (a_A - a_R)(y_L - x_L), so when the
 * attack is the faster one (a_A <= a_R) the branch taken is always the larger of the
 * two, otherwise the smaller.  A max/min thus replaces the data-dependent branch,
 * which noise would mispredict half the time.  Two channels are smoothed in one loop
 * (g1 may be NULL) so that their dependency chains overlap. */
static void smooth(const rt_compressor *c, double *restrict g0, double *restrict g1, uint32_t n,
                   double *env, double *block_max)
{
    const double aa = c->attack_coef, ba = 1.0 - aa, ar = c->release_coef, br = 1.0 - ar;
    double e0 = env[0], m0 = 0.0;
    if (g1) {
        double e1 = env[1], m1 = 0.0;
        if (aa <= ar) {
            for (uint32_t i = 0; i < n; i++) {
                double x0 = g0[i], x1 = g1[i];
                double a0 = aa * e0 + ba * x0, r0 = ar * e0 + br * x0;
                double a1 = aa * e1 + ba * x1, r1 = ar * e1 + br * x1;
                e0 = a0 > r0 ? a0 : r0;
                e1 = a1 > r1 ? a1 : r1;
                m0 = e0 > m0 ? e0 : m0;
                m1 = e1 > m1 ? e1 : m1;
                g0[i] = e0;
                g1[i] = e1;
            }
        } else {
            for (uint32_t i = 0; i < n; i++) {
                double x0 = g0[i], x1 = g1[i];
                double a0 = aa * e0 + ba * x0, r0 = ar * e0 + br * x0;
                double a1 = aa * e1 + ba * x1, r1 = ar * e1 + br * x1;
                e0 = a0 < r0 ? a0 : r0;
                e1 = a1 < r1 ? a1 : r1;
                m0 = e0 > m0 ? e0 : m0;
                m1 = e1 > m1 ? e1 : m1;
                g0[i] = e0;
                g1[i] = e1;
            }
        }
        env[1] = e1;
        block_max[1] = m1;
    } else if (aa <= ar) {
        for (uint32_t i = 0; i < n; i++) {
            double x0 = g0[i];
            double a0 = aa * e0 + ba * x0, r0 = ar * e0 + br * x0;
            e0 = a0 > r0 ? a0 : r0;
            m0 = e0 > m0 ? e0 : m0;
            g0[i] = e0;
        }
    } else {
        for (uint32_t i = 0; i < n; i++) {
            double x0 = g0[i];
            double a0 = aa * e0 + ba * x0, r0 = ar * e0 + br * x0;
            e0 = a0 < r0 ? a0 : r0;
            m0 = e0 > m0 ? e0 : m0;
            g0[i] = e0;
        }
    }
    env[0] = e0;
    block_max[0] = m0;
}

/* Linear gain = 10^((makeup - y_L)/20), in place.  The argument stays within
 * [-40, 6] nepers: levels are clamped to +200 dBFS, so y_L < 350 dB, and
 * |makeup| <= 48 dB.  fast_exp(0) is exactly 1, so with no reduction and no
 * makeup a signal passes bit for bit. */
RT_CMP_SIMD_CLONES
static void to_gain(const rt_compressor *c, double *restrict g, uint32_t n, int ramping)
{
    if (ramping) {
        const double *restrict mk = c->makeup;
        for (uint32_t i = 0; i < n; i++) g[i] = fast_exp(NEPER_PER_DB * (mk[i] - g[i]));
    } else {
        const double makeup = c->makeup_db;
        for (uint32_t i = 0; i < n; i++) g[i] = fast_exp(NEPER_PER_DB * (makeup - g[i]));
    }
}

static inline void apply_gain(const double *restrict g, const float *x, float *y, uint32_t n)
{
    /* x and y may be the same buffer; each sample is read before it is written. */
    for (uint32_t i = 0; i < n; i++) y[i] = (float)((double)x[i] * g[i]);
}

static void process_linked(rt_compressor *c, const float *const *in, float *const *out,
                           uint32_t off, uint32_t n, int ramping)
{
    const uint32_t nch = c->channels;
    const int rms = c->p.detector == RT_CMP_DETECT_RMS;
    const int mean = c->p.link == RT_CMP_LINK_MEAN;
    const double inv_n = 1.0 / nch;
    double *restrict level = c->level[0], *restrict g = c->gain[0];

    /* The shared detector's input per frame; all inputs are read before any output is written. */
    for (uint32_t i = 0; i < n; i++) level[i] = 0.0;
    for (uint32_t ch = 0; ch < nch; ch++) {
        const float *x = in[ch] + off;
        if (rms) {
            double ms = c->ms[ch];
            for (uint32_t i = 0; i < n; i++) {
                ms = ms_step(ms, x[i], c->rms_coef);
                if (mean) level[i] += sqrt(ms);
                else level[i] = ms > level[i] ? ms : level[i];
            }
            c->ms[ch] = ms;
        } else {
            for (uint32_t i = 0; i < n; i++) {
                double a = fabs((double)x[i]);
                if (mean) level[i] += a;
                else level[i] = a > level[i] ? a : level[i];
            }
        }
    }
    if (mean)
        for (uint32_t i = 0; i < n; i++) level[i] = clamp_level(level[i] * inv_n);
    else if (!rms)
        for (uint32_t i = 0; i < n; i++) level[i] = clamp_level(level[i]);

    /* One envelope for all channels.  Mean-linked RMS is an amplitude (mean of RMS values). */
    double env = c->env_db[0], block_max;
    wanted_gr(c, level, g, n, rms && !mean);
    smooth(c, g, NULL, n, &env, &block_max);
    to_gain(c, g, n, ramping);
    for (uint32_t ch = 0; ch < nch; ch++) {
        c->env_db[ch] = env;
        publish_gr(c, ch, env, block_max);
        apply_gain(g, in[ch] + off, out[ch] + off, n);
    }
}

/* Each channel its own detector; channels go through the passes two at a time. */
static void process_unlinked(rt_compressor *c, const float *const *in, float *const *out,
                             uint32_t off, uint32_t n, int ramping)
{
    const int rms = c->p.detector == RT_CMP_DETECT_RMS;
    for (uint32_t ch = 0; ch < c->channels; ch += 2) {
        uint32_t pair = c->channels - ch >= 2 ? 2 : 1;
        for (uint32_t k = 0; k < pair; k++) {
            const float *x = in[ch + k] + off;
            double *restrict level = c->level[k];
            if (rms) {
                double ms = c->ms[ch + k];
                for (uint32_t i = 0; i < n; i++) level[i] = ms = ms_step(ms, x[i], c->rms_coef);
                c->ms[ch + k] = ms;
            } else {
                for (uint32_t i = 0; i < n; i++) level[i] = clamp_level(fabs((double)x[i]));
            }
            wanted_gr(c, level, c->gain[k], n, rms);
        }
        double block_max[2];
        smooth(c, c->gain[0], pair == 2 ? c->gain[1] : NULL, n, &c->env_db[ch], block_max);
        for (uint32_t k = 0; k < pair; k++) {
            to_gain(c, c->gain[k], n, ramping);
            publish_gr(c, ch + k, c->env_db[ch + k], block_max[k]);
            apply_gain(c->gain[k], in[ch + k] + off, out[ch + k] + off, n);
        }
    }
}

uint32_t rt_compressor_process(rt_compressor *c, const float *const *in, float *const *out, uint32_t frames)
{
    uint32_t done = 0;
    while (done < frames) {
        uint32_t n = RT_CMP_CHUNK - c->grid_phase;
        if (n > frames - done) n = frames - done;
        int ramping = makeup_for_chunk(c, n);
        if (c->p.link == RT_CMP_LINK_NONE || c->channels == 1)
            process_unlinked(c, in, out, done, n, ramping);
        else
            process_linked(c, in, out, done, n, ramping);
        done += n;
        c->grid_phase += n;
        if (c->grid_phase == RT_CMP_CHUNK) {
            c->grid_phase = 0;
            for (uint32_t ch = 0; ch < c->channels; ch++) {
                c->env_db[ch] = rt_flush_tiny(c->env_db[ch]);
                c->ms[ch] = rt_flush_tiny(c->ms[ch]);
            }
        }
    }
    return frames;
}
