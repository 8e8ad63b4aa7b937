#ifndef CMP_TEMPLATE /* the file proper; the per-ISA vector pipeline is at the end */
/* No implicit a*b+c -> fma contraction (gnu11's default): whether the compiler fuses
 * depends on the code around an expression, and the same stage is compiled in more than
 * one context (full or partial group, stereo or any channel count), so the output could
 * depend on where a block ends.  Fused multiply-adds are written out (v_fma, vd2_fma).
 * Before every #include, so that the intrinsics are compiled with the same options. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif
#include "compressor.h"
#include "cpu_level.h"
#include "rt_common.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

/* Work is done in chunks on a grid of RT_CMP_CHUNK frames aligned to the absolute
 * frame count (not to the caller's blocks); tiny state is flushed at each grid point,
 * which keeps the flush off the smoother's per-sample dependency chain and the output
 * bit-identical for any block size.  Between two grid points a state above
 * RT_STATE_FLOOR cannot decay into the subnormal range (even the fastest time
 * constants shrink it by far less than 1e-270 in 256 frames), and a zero
 * time constant sets the envelope to its input exactly.
 *
 * Inside a chunk, frames go in groups of RT_CMP_GROUP, counted from the chunk's first
 * frame.  Every per-frame formula is computed lane by lane, with the same instructions
 * whatever the lane, so where a block boundary falls changes no result: the vector
 * stages compute a partial group in full (the lanes past the block's end see zeros or
 * stale but finite buffer contents) and only its valid frames are used. */
#define RT_CMP_CHUNK 256
#define RT_CMP_GROUP 8
#define RT_CMP_MAKEUP_RAMP_MS 20.0
/* Detector inputs above this (+200 dB, Inf included) are clamped to it and a NaN
 * reads as silence, so a stray non-finite sample cannot poison the envelope. */
#define RT_CMP_LEVEL_MAX 1e10

#define DB_PER_OCTAVE_AMP 6.0205999132796239042 /* 20 log10(2): dB per doubling of an amplitude */
#define DB_PER_OCTAVE_POW 3.0102999566398119521 /* 10 log10(2): dB per doubling of a power */
#define OCTAVES_PER_DB 0.16609640474436811739   /* log2(10) / 20 */

/* Two detectors' (or channels') serial states side by side: one SSE2 register. */
typedef double vd2 __attribute__((vector_size(16)));
typedef int64_t vi2 __attribute__((vector_size(16)));

typedef struct rt_compressor rt_compressor;
typedef void (*cmp_chunk_fn)(rt_compressor *c, const float *const *in, float *const *out, uint32_t off,
                             uint32_t n, int ramping);
static cmp_chunk_fn pick_chunk(void);

struct rt_compressor {
    /* Per-frame scratch of one chunk (index = frame in the chunk), 64-byte aligned so that
     * a group is whole cache lines. */
    double x_l[2][RT_CMP_CHUNK] __attribute__((aligned(64)));   /* wanted gain reduction x_L, dB, per detector */
    double x_att[2][RT_CMP_CHUNK] __attribute__((aligned(64))); /* (1 - a_A) x_L */
    double x_rel[2][RT_CMP_CHUNK] __attribute__((aligned(64))); /* (1 - a_R) x_L */
    double env[2][RT_CMP_CHUNK] __attribute__((aligned(64)));   /* y_L, dB */
    double makeup[RT_CMP_CHUNK] __attribute__((aligned(64)));   /* makeup dB per frame while ramping */
    double *ms_frames;     /* RMS mode: mean square per channel and frame, channels x RT_CMP_CHUNK */

    uint32_t channels;
    double sample_rate;
    rt_compressor_params p;
    cmp_chunk_fn chunk;    /* the pipeline for this machine's ISA level */

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
    unsigned char *smooth_branchy; /* per job (at its first channel): stage_smooth's loop */
    _Atomic double *gr_now;
    _Atomic double *gr_max;
};

static double time_coef(double ms, double fs)
{
    /* a = exp(-1/(tau fs)); tau = 0 means no smoothing. */
    return ms > 0.0 ? exp(-1.0 / (ms * 0.001 * fs)) : 0.0;
}

/* Static gain reduction x_L = x_G - y_G (dB, >= 0) of the paper's soft knee, written with
 * clamps only (v_knee_curve_gr is the same, lane by lane):
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
    const size_t size = (sizeof(rt_compressor) + 63) / 64 * 64; /* aligned_alloc: a multiple of 64 */
    rt_compressor *c = aligned_alloc(64, size);
    if (!c) return NULL;
    memset(c, 0, size);
    c->channels = channels;
    c->sample_rate = sample_rate;
    c->chunk = pick_chunk();
    c->makeup_ramp_frames = (uint32_t)lround(RT_CMP_MAKEUP_RAMP_MS * 0.001 * sample_rate);
    c->ms_frames = aligned_alloc(64, (size_t)channels * RT_CMP_CHUNK * sizeof(double));
    c->env_db = calloc(channels, sizeof(double));
    c->ms = calloc(channels, sizeof(double));
    c->smooth_branchy = calloc(channels, 1);
    c->gr_now = calloc(channels, sizeof(_Atomic double));
    c->gr_max = calloc(channels, sizeof(_Atomic double));
    if (!c->ms_frames || !c->env_db || !c->ms || !c->smooth_branchy || !c->gr_now || !c->gr_max) {
        rt_compressor_destroy(c);
        return NULL;
    }
    /* Vector lanes past a block's end read this before it is written: keep it finite. */
    memset(c->ms_frames, 0, (size_t)channels * RT_CMP_CHUNK * sizeof(double));
    c->p = *p;
    apply_params(c, p, 0);
    rt_compressor_reset(c);
    return c;
}

void rt_compressor_destroy(rt_compressor *c)
{
    if (!c) return;
    free(c->ms_frames);
    free(c->env_db);
    free(c->ms);
    free(c->smooth_branchy);
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

/* ---- the chunk pipeline --------------------------------------------------------------
 *
 * A job is the channels that share one detector (linked), or one or two unlinked
 * channels, each with its own detector (a pair's two serial chains run in the two
 * lanes of one vd2).  Per group g of RT_CMP_GROUP frames:
 *   R(g): RMS mode, the mean-square one-poles of the job's channels (serial per frame);
 *   X(g): detector level -> dB -> x_L (vector, per ISA);
 *   S(g): the attack/release smoother (serial per frame);
 *   A(g): gain = 2^((makeup - y_L) log2(10)/20) (vector, per ISA), applied.
 * Loop step t runs R(t), X(t - CMP_LAG_X), S(t - CMP_LAG_S), A(t - CMP_LAG_A): the two
 * serial chains (RMS and smoother) are independent there, and the vector work of other
 * groups fills the cycles the CPU would otherwise wait on them (measured with the RMS
 * detector: 2.7x faster than R, X, S, A on one group at a time).  The order changes no
 * arithmetic. */
#define CMP_LAG_X 1
#define CMP_LAG_S 2
#define CMP_LAG_A 3

typedef struct {
    uint32_t first, count; /* the job's channels */
    uint32_t lanes;        /* detectors: 1, or 2 for an unlinked pair */
    int linked;            /* one detector for all `count` channels */
} cmp_job;

typedef struct {
    const float *const *in;
    float *const *out;
    uint32_t off, n;       /* the chunk: frames off .. off + n - 1 of the block */
} cmp_io;

static inline void publish_gr(rt_compressor *c, uint32_t ch, double now, double block_max)
{
    atomic_store_explicit(&c->gr_now[ch], now, memory_order_relaxed);
    double old = atomic_load_explicit(&c->gr_max[ch], memory_order_relaxed);
    while (block_max > old &&
           !atomic_compare_exchange_weak_explicit(&c->gr_max[ch], &old, block_max,
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

/* The vector stages and the job loop (the CMP_TEMPLATE part at the end of this file),
 * instantiated per ISA level with CMP_W doubles per vector: 2 (SSE2, or anything not
 * x86-64), 4 (x86-64-v3: AVX2 + FMA), 8 (x86-64-v4: AVX-512).  rt_cpu_level() picks one
 * at create time (AURALIS_RT_ISA caps it).  The paths differ only by rounding: v3/v4 fuse
 * multiply-adds (one rounding instead of two); on one machine and level results are fixed. */
#define CMP_TEMPLATE 1
#define CMP_W 2
#define CMP_SFX _base
#define CMP_TARGET
#include "compressor.c"
#undef CMP_W
#undef CMP_SFX
#undef CMP_TARGET
#if defined(__x86_64__) && defined(__GNUC__)
#define CMP_HAVE_X86_LEVELS 1
#define CMP_W 4
#define CMP_SFX _v3
#define CMP_TARGET __attribute__((target("arch=x86-64-v3")))
#include "compressor.c"
#undef CMP_W
#undef CMP_SFX
#undef CMP_TARGET
#define CMP_W 8
#define CMP_SFX _v4
#define CMP_TARGET __attribute__((target("arch=x86-64-v4")))
#include "compressor.c"
#undef CMP_W
#undef CMP_SFX
#undef CMP_TARGET
#endif

static cmp_chunk_fn pick_chunk(void)
{
#ifdef CMP_HAVE_X86_LEVELS
    const int level = rt_cpu_level();
    if (level >= 4) return chunk_v4;
    if (level >= 3) return chunk_v3;
#endif
    return chunk_base;
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

uint32_t rt_compressor_process(rt_compressor *c, const float *const *in, float *const *out, uint32_t frames)
{
    uint32_t done = 0;
    while (done < frames) {
        uint32_t n = RT_CMP_CHUNK - c->grid_phase;
        if (n > frames - done) n = frames - done;
        int ramping = makeup_for_chunk(c, n);
        c->chunk(c, in, out, done, n, ramping);
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

#else /* CMP_TEMPLATE: the vector stages, included once per ISA level by the part above */

/* CMP_W doubles per vector (a group is RT_CMP_GROUP / CMP_W of them); names get the
 * suffix CMP_SFX, functions the attribute CMP_TARGET. */
#define CMP_CAT_(a, b) a##b
#define CMP_CAT(a, b) CMP_CAT_(a, b)
#define CMP_N(name) CMP_CAT(name, CMP_SFX)
#define CMP_PARTS (RT_CMP_GROUP / CMP_W)
#define CMP_VINLINE static inline __attribute__((always_inline)) CMP_TARGET
#define cmp_vd CMP_N(cmp_vd)
#define cmp_vi CMP_N(cmp_vi)
#define cmp_vu CMP_N(cmp_vu)
#define cmp_vf CMP_N(cmp_vf)
#define cmp_vfu CMP_N(cmp_vfu)
#define cmp_vdu CMP_N(cmp_vdu)
#define v_splat CMP_N(v_splat)
#define v_load CMP_N(v_load)
#define v_store CMP_N(v_store)
#define part_frames CMP_N(part_frames)
#define v_load_samples CMP_N(v_load_samples)
#define v_min CMP_N(v_min)
#define v_fma CMP_N(v_fma)
#define vd2_fma CMP_N(vd2_fma)
#define v_max CMP_N(v_max)
#define v_clamp_level CMP_N(v_clamp_level)
#define v_log2 CMP_N(v_log2)
#define v_exp2 CMP_N(v_exp2)
#define v_knee_curve_gr CMP_N(v_knee_curve_gr)
#define vd2_pick_gt CMP_N(vd2_pick_gt)
#define sd_fma CMP_N(sd_fma)
#define cmp_run CMP_N(cmp_run)
#define v_gt_bits CMP_N(v_gt_bits)
#define stage_smooth CMP_N(stage_smooth)
#define stage_rms CMP_N(stage_rms)
#define stage_wanted_gr CMP_N(stage_wanted_gr)
#define stage_apply CMP_N(stage_apply)
#define partial_group CMP_N(partial_group)
#define run_job CMP_N(run_job)
#define chunk CMP_N(chunk)

typedef double cmp_vd __attribute__((vector_size(8 * CMP_W)));
typedef int64_t cmp_vi __attribute__((vector_size(8 * CMP_W)));
typedef uint64_t cmp_vu __attribute__((vector_size(8 * CMP_W)));
typedef float cmp_vf __attribute__((vector_size(4 * CMP_W)));
typedef float cmp_vfu __attribute__((vector_size(4 * CMP_W), aligned(4))); /* unaligned load/store */
typedef double cmp_vdu __attribute__((vector_size(8 * CMP_W), aligned(8)));

CMP_VINLINE cmp_vd v_splat(double v) { return v - (cmp_vd){0}; } /* a broadcast; v - 0 is v */
/* Scratch buffers are 64-byte aligned and groups start at multiples of 8 doubles. */
CMP_VINLINE cmp_vd v_load(const double *p) { return *(const cmp_vd *)p; }
CMP_VINLINE void v_store(double *p, cmp_vd v) { *(cmp_vd *)p = v; }
/* a > b ? a : b and a < b ? a : b lane by lane, as the scalar code writes them: exactly
 * what the x86 max/min instructions compute (the second operand if either is NaN). */
CMP_VINLINE cmp_vd v_max(cmp_vd a, cmp_vd b)
{
#if CMP_W == 8
    return _mm512_max_pd(a, b);
#elif CMP_W == 4
    return _mm256_max_pd(a, b);
#elif defined(__x86_64__) && defined(__GNUC__)
    return _mm_max_pd(a, b);
#else
    const cmp_vi m = a > b;
    return (cmp_vd)(((cmp_vi)a & m) | ((cmp_vi)b & ~m));
#endif
}

CMP_VINLINE cmp_vd v_min(cmp_vd a, cmp_vd b)
{
#if CMP_W == 8
    return _mm512_min_pd(a, b);
#elif CMP_W == 4
    return _mm256_min_pd(a, b);
#elif defined(__x86_64__) && defined(__GNUC__)
    return _mm_min_pd(a, b);
#else
    const cmp_vi m = a < b;
    return (cmp_vd)(((cmp_vi)a & m) | ((cmp_vi)b & ~m));
#endif
}

/* Bit k set where lane k of a > b. */
CMP_VINLINE uint32_t v_gt_bits(cmp_vd a, cmp_vd b)
{
#if CMP_W == 8
    return _mm512_cmp_pd_mask(a, b, _CMP_GT_OQ);
#elif CMP_W == 4
    return (uint32_t)_mm256_movemask_pd(_mm256_cmp_pd(a, b, _CMP_GT_OQ));
#elif defined(__x86_64__) && defined(__GNUC__)
    return (uint32_t)_mm_movemask_pd(_mm_cmpgt_pd(a, b));
#else
    const cmp_vi m = a > b;
    uint32_t bits = 0;
    for (int k = 0; k < CMP_W; k++) bits |= (uint32_t)(m[k] & 1) << k;
    return bits;
#endif
}

/* a * b + c: one rounding where the path has FMA (v3, v4), two on the baseline. */
CMP_VINLINE cmp_vd v_fma(cmp_vd a, cmp_vd b, cmp_vd c)
{
#if CMP_W == 8
    return _mm512_fmadd_pd(a, b, c);
#elif CMP_W == 4
    return _mm256_fmadd_pd(a, b, c);
#else
    return a * b + c;
#endif
}

/* Valid frames (0..CMP_W) in part h of a group of `frames`. */
CMP_VINLINE uint32_t part_frames(uint32_t frames, uint32_t h)
{
    return frames <= h * CMP_W ? 0 : frames - h * CMP_W >= CMP_W ? CMP_W : frames - h * CMP_W;
}

/* `frames` (0..CMP_W) input samples as doubles; the lanes past them read 0. */
CMP_VINLINE cmp_vd v_load_samples(const float *x, uint32_t frames)
{
    cmp_vf v = {0};
    if (frames >= CMP_W)
        v = *(const cmp_vfu *)x;
    else
        for (uint32_t k = 0; k < frames; k++) v[k] = x[k];
    return __builtin_convertvector(v, cmp_vd);
}

/* Detector input (>= 0 or NaN): above RT_CMP_LEVEL_MAX (Inf included) clamped to it,
 * NaN -> 0.  max(v, 0) turns NaN into 0 and keeps every v >= 0. */
CMP_VINLINE cmp_vd v_clamp_level(cmp_vd v) { return v_min(v_max(v, v_splat(0.0)), v_splat(RT_CMP_LEVEL_MAX)); }

/* log2(x) for a finite x >= 0, with no division (slow in vectors) and no
 * int<->double conversion (missing before AVX-512).  x = 2^k m, m in
 * [sqrt(1/2), sqrt(2)): measured from the bits of sqrt(1/2), the top 12 bits give k and
 * the rest gives m (as in musl's log); k + 2048 is a 12-bit field, made a double as
 * (2^52 + field) - 2^52.  Zero and subnormals give about -1023 (a level near -6000 dB,
 * far below any knee).  log2(m) = t Q(t), t = m - 1 in [-0.293, 0.415]: Q of degree 9
 * interpolates log2(1 + t)/t at the 10 Chebyshev nodes of that interval.  Measured
 * error against long double log1p, densely over the interval: < 2.4e-9 (< 1.5e-8 dB;
 * a float32 output sample resolves 5e-7 dB at best). */
CMP_VINLINE cmp_vd v_log2(cmp_vd x)
{
    const cmp_vu ix = (cmp_vu)x;
    const cmp_vu tmp = ix - 0x3FE6A09E667F3BCDull;
    const cmp_vd m = (cmp_vd)(ix - (tmp & (0xFFFull << 52)));
    const cmp_vd k = (cmp_vd)(((tmp + (2048ull << 52)) >> 52) | 0x4330000000000000ull) - (0x1.0p52 + 2048.0);
    const cmp_vd t = m - 1.0;
    cmp_vd q = v_fma(t, v_splat(-0.10749789389568988), v_splat(0.1847603334633674));
    q = v_fma(q, t, v_splat(-0.1913883765910012));
    q = v_fma(q, t, v_splat(0.204857647816971));
    q = v_fma(q, t, v_splat(-0.23960812190973627));
    q = v_fma(q, t, v_splat(0.2885525614358782));
    q = v_fma(q, t, v_splat(-0.36069654180749233));
    q = v_fma(q, t, v_splat(0.48089852032408964));
    q = v_fma(q, t, v_splat(-0.7213473544789047));
    q = v_fma(q, t, v_splat(1.4426950399991885));
    return v_fma(t, q, k);
}

/* 2^u for |u| < 1000 (here |u| < 70: gain reductions below 350 dB, makeup below
 * 150 dB).  u = k + r, k the nearest integer (adding 1.5 * 2^52 rounds u and leaves k
 * in the low bits of the sum), |r| <= 1/2;  2^u = 2^k (1 + r R(r)), R of degree 6
 * interpolating (2^r - 1)/r at the 7 Chebyshev nodes of [-1/2, 1/2]: measured relative
 * error < 1.2e-10 (< 1e-9 dB).  2^0 is exactly 1, so with no reduction and no makeup a
 * signal passes bit for bit. */
CMP_VINLINE cmp_vd v_exp2(cmp_vd u)
{
    const cmp_vd shifted = u + 0x1.8p52;
    const cmp_vd r = u - (shifted - 0x1.8p52);
    cmp_vd p = v_fma(r, v_splat(1.529732318378528e-05), v_splat(0.00015461444698744708));
    p = v_fma(p, r, v_splat(0.0013333502388099057));
    p = v_fma(p, r, v_splat(0.009618056678519811));
    p = v_fma(p, r, v_splat(0.05550410883908015));
    p = v_fma(p, r, v_splat(0.24022650922288794));
    p = v_fma(p, r, v_splat(0.6931471805599454));
    p = v_fma(p, r, v_splat(1.0));
    return p * (cmp_vd)(((cmp_vu)shifted + 1023) << 52);
}

/* knee_curve_gr, lane by lane */
CMP_VINLINE cmp_vd v_knee_curve_gr(cmp_vd x_db, double lo, double hi, double drop, double half_inv_knee)
{
    const cmp_vd vlo = v_splat(lo), vhi = v_splat(hi);
    const cmp_vd d = v_min(v_max(x_db, vlo), vhi) - vlo;
    return drop * d * d * half_inv_knee + drop * (v_max(x_db, vhi) - vhi);
}

/* a * b + c for the serial chains (two lanes), fused where the path has FMA. */
CMP_VINLINE vd2 vd2_fma(vd2 a, vd2 b, vd2 c)
{
#if CMP_W >= 4
    return _mm_fmadd_pd(a, b, c);
#else
    return a * b + c;
#endif
}

/* x > y ? a : b, lane by lane, for the serial chains (two lanes). */
CMP_VINLINE vd2 vd2_pick_gt(vd2 x, vd2 y, vd2 a, vd2 b)
{
#if CMP_W == 8
    return _mm_mask_blend_pd(_mm_cmp_pd_mask(x, y, _CMP_GT_OQ), b, a);
#elif CMP_W == 4
    return _mm_blendv_pd(b, a, _mm_cmpgt_pd(x, y));
#else
    const vi2 mask = x > y;
    return (vd2)((mask & (vi2)a) | (~mask & (vi2)b));
#endif
}

/* State of one job across its chunk: the smoothers' y_L, the meters' running maxima,
 * and the statistics that pick the smoother's loop for the next chunk. */
typedef struct {
    vd2 env;          /* y_L of the (up to) two detectors */
    cmp_vd top[2];    /* largest y_L per detector, lane-wise */
    uint32_t flips;   /* attack/release changes seen between neighbouring frames ... */
    uint32_t pairs;   /* ... out of this many neighbouring pairs */
    int branchy;      /* run the smoother with branches (see stage_smooth) */
} cmp_run;

/* a * b + c, one lane, rounded exactly as a lane of vd2_fma. */
CMP_VINLINE double sd_fma(double a, double b, double c)
{
#if CMP_W >= 4
    return __builtin_fma(a, b, c);
#else
    return a * b + c;
#endif
}

/* The attack/release choice as a real branch: keeps the compiler from turning it back
 * into a blend (an empty asm cannot be made conditional). */
#if defined(__x86_64__) && defined(__GNUC__)
#define CMP_KEEP_BRANCH(v) __asm__("" : "+x"(v))
#else
#define CMP_KEEP_BRANCH(v) ((void)0)
#endif

/* S(g): smooth branching peak detector on x_L, as in the paper:
 *     y_L = a_A y_L + (1 - a_A) x_L   if x_L > y_L (attack),   else  a_R y_L + (1 - a_R) x_L.
 * Two loops compute exactly that (same multiply-adds, same comparison), and differ only in
 * speed.  Branch-free (both candidates computed, the comparison's mask picks one) the
 * serial chain per frame is a multiply-add and a blend; with a branch it is the
 * multiply-add alone, but a mispredicted branch costs ~20 cycles.  The branch wins when
 * attack and release come in long runs (an RMS detector, mostly), the blend when they
 * alternate (a peak detector on noise); run_job picks per chunk from how often they
 * alternated in the previous one.  Nothing else depends on the choice. */
CMP_VINLINE void stage_smooth(rt_compressor *c, const cmp_job *job, uint32_t g, uint32_t frames, cmp_run *run)
{
    const uint32_t base = g * RT_CMP_GROUP;
    const double aa = c->attack_coef, ar = c->release_coef;
    const int two = job->lanes == 2;
    const double *restrict x0 = c->x_l[0] + base, *restrict a0 = c->x_att[0] + base, *restrict r0 = c->x_rel[0] + base;
    const double *restrict x1 = c->x_l[1] + base, *restrict a1 = c->x_att[1] + base, *restrict r1 = c->x_rel[1] + base;
    double *restrict y0 = c->env[0] + base, *restrict y1 = c->env[1] + base;
    if (run->branchy) {
        double e0 = run->env[0], e1 = run->env[1];
        for (uint32_t i = 0; i < frames; i++) {
            if (x0[i] > e0) {
                e0 = sd_fma(aa, e0, a0[i]);
                CMP_KEEP_BRANCH(e0);
            } else {
                e0 = sd_fma(ar, e0, r0[i]);
            }
            y0[i] = e0;
            if (two) {
                if (x1[i] > e1) {
                    e1 = sd_fma(aa, e1, a1[i]);
                    CMP_KEEP_BRANCH(e1);
                } else {
                    e1 = sd_fma(ar, e1, r1[i]);
                }
                y1[i] = e1;
            }
        }
        run->env = (vd2){e0, e1};
    } else {
        const vd2 vaa = {aa, aa}, var = {ar, ar};
        vd2 e = run->env;
        for (uint32_t i = 0; i < frames; i++) {
            /* a single detector leaves lane 1 at rest */
            const vd2 x = {x0[i], two ? x1[i] : 0.0}, xa = {a0[i], two ? a1[i] : 0.0}, xr = {r0[i], two ? r1[i] : 0.0};
            e = vd2_pick_gt(x, e, vd2_fma(vaa, e, xa), vd2_fma(var, e, xr));
            y0[i] = e[0];
            if (two) y1[i] = e[1];
        }
        run->env = e;
    }
}

/* R(g): mean square per channel and frame into ms_frames (state in c->ms):
 * ms = a ms + (1 - a) sq, sq = clamped x^2 (NaN/Inf cannot enter the state).  The
 * inputs (1 - a) sq are vectors; the one-poles run two channels per vd2. */
CMP_VINLINE void stage_rms(rt_compressor *c, const cmp_io *io, const cmp_job *job, uint32_t g, uint32_t frames)
{
    const uint32_t base = g * RT_CMP_GROUP;
    const double coef = c->rms_coef, gain_in = 1.0 - coef;
    const vd2 vcoef = {coef, coef};
    for (uint32_t k = 0; k < job->count; k += 2) {
        /* a lone channel runs in both lanes */
        const uint32_t c0 = job->first + k, c1 = k + 1 < job->count ? c0 + 1 : c0;
        double s0[RT_CMP_GROUP] __attribute__((aligned(64))), s1[RT_CMP_GROUP] __attribute__((aligned(64)));
        for (uint32_t h = 0; h < CMP_PARTS; h++) {
            const uint32_t valid = part_frames(frames, h);
            const cmp_vd x0 = v_load_samples(io->in[c0] + io->off + base + h * CMP_W, valid);
            const cmp_vd x1 = v_load_samples(io->in[c1] + io->off + base + h * CMP_W, valid);
            v_store(s0 + h * CMP_W, gain_in * v_clamp_level(x0 * x0));
            v_store(s1 + h * CMP_W, gain_in * v_clamp_level(x1 * x1));
        }
        double *restrict m0 = c->ms_frames + (size_t)c0 * RT_CMP_CHUNK + base;
        double *restrict m1 = c->ms_frames + (size_t)c1 * RT_CMP_CHUNK + base;
        vd2 ms = {c->ms[c0], c->ms[c1]};
        for (uint32_t i = 0; i < frames; i++) {
            ms = vd2_fma(vcoef, ms, (vd2){s0[i], s1[i]});
            m0[i] = ms[0];
            m1[i] = ms[1];
        }
        c->ms[c0] = ms[0];
        c->ms[c1] = ms[1];
    }
}

/* X(g): for each detector of the job, the level of the group's frames (as the scalar
 * definition: max/mean of |x| or of the mean squares, clamped), then x_L and its
 * attack/release products over the whole group. */
CMP_VINLINE void stage_wanted_gr(rt_compressor *c, const cmp_io *io, const cmp_job *job, uint32_t g,
                                 uint32_t frames, int rms)
{
    const uint32_t base = g * RT_CMP_GROUP;
    const int mean = c->p.link == RT_CMP_LINK_MEAN;
    const double lo = c->knee_lo_db, hi = c->knee_hi_db, drop = c->drop, half_inv_knee = c->half_inv_knee;
    const double ba = 1.0 - c->attack_coef, br = 1.0 - c->release_coef;
    for (uint32_t j = 0; j < job->lanes; j++) {
        for (uint32_t h = 0; h < CMP_PARTS; h++) {
            const uint32_t at = base + h * CMP_W;
            const uint32_t valid = part_frames(frames, h);
            cmp_vd level;
            int power = rms;
            if (job->linked) {
                level = v_splat(0.0);
                for (uint32_t ch = job->first; ch < job->first + job->count; ch++) {
                    cmp_vd a;
                    if (rms) {
                        a = v_load(c->ms_frames + (size_t)ch * RT_CMP_CHUNK + at);
                        if (mean)
                            for (int k = 0; k < CMP_W; k++) a[k] = __builtin_sqrt(a[k]);
                    } else {
                        a = v_load_samples(io->in[ch] + io->off + at, valid);
                        a = (cmp_vd)((cmp_vu)a & 0x7FFFFFFFFFFFFFFFull); /* |x| */
                    }
                    level = mean ? level + a : v_max(a, level);
                }
                /* Mean-linked RMS is an amplitude (mean of RMS values). */
                if (mean) {
                    level = v_clamp_level(level * (1.0 / job->count));
                    power = 0;
                } else if (!rms) {
                    level = v_clamp_level(level);
                }
            } else if (rms) {
                level = v_load(c->ms_frames + (size_t)(job->first + j) * RT_CMP_CHUNK + at);
            } else {
                const cmp_vd x = v_load_samples(io->in[job->first + j] + io->off + at, valid);
                level = v_clamp_level((cmp_vd)((cmp_vu)x & 0x7FFFFFFFFFFFFFFFull));
            }
            const cmp_vd x_db = (power ? DB_PER_OCTAVE_POW : DB_PER_OCTAVE_AMP) * v_log2(level);
            const cmp_vd x_l = v_knee_curve_gr(x_db, lo, hi, drop, half_inv_knee);
            v_store(c->x_l[j] + at, x_l);
            v_store(c->x_att[j] + at, ba * x_l);
            v_store(c->x_rel[j] + at, br * x_l);
        }
    }
}

/* A(g): linear gain = 10^((makeup - y_L)/20) per frame, applied to the detector's
 * channels (x and y may be the same buffer; each sample is read before it is written).
 * Also the meters' maxima of y_L, and for stage_smooth's choice, how often attack and
 * release alternated inside the group (frames 1..7; whole groups after the first). */
CMP_VINLINE void stage_apply(rt_compressor *c, const cmp_io *io, const cmp_job *job, uint32_t g, uint32_t frames,
                             int ramping, cmp_run *run)
{
    const uint32_t base = g * RT_CMP_GROUP;
    for (uint32_t j = 0; j < job->lanes; j++) {
        const uint32_t ch0 = job->linked ? job->first : job->first + j;
        const uint32_t ch_end = job->linked ? job->first + job->count : ch0 + 1;
        uint32_t attack = 0; /* bit i: x_L[i] > y_L[i - 1] */
        for (uint32_t h = 0; h < CMP_PARTS; h++) {
            const uint32_t at = base + h * CMP_W;
            const cmp_vd makeup = ramping ? v_load(c->makeup + at) : v_splat(c->makeup_db);
            cmp_vd env = v_load(c->env[j] + at);
            const cmp_vd gain = v_exp2((makeup - env) * OCTAVES_PER_DB);
            if (frames == RT_CMP_GROUP && g > 0)
                attack |= v_gt_bits(v_load(c->x_l[j] + at), *(const cmp_vdu *)(c->env[j] + at - 1)) << (h * CMP_W);
            for (uint32_t k = frames > h * CMP_W ? frames - h * CMP_W : 0; k < CMP_W; k++) env[k] = 0.0; /* past the end */
            run->top[j] = v_max(env, run->top[j]);
            for (uint32_t ch = ch0; ch < ch_end; ch++) {
                const float *x = io->in[ch] + io->off + at;
                float *y = io->out[ch] + io->off + at;
                if (frames >= (h + 1) * CMP_W) {
                    *(cmp_vfu *)y = __builtin_convertvector(__builtin_convertvector(*(const cmp_vfu *)x, cmp_vd) * gain,
                                                            cmp_vf);
                } else {
                    for (uint32_t i = 0; h * CMP_W + i < frames; i++) y[i] = (float)((double)x[i] * gain[i]);
                }
            }
        }
        if (frames == RT_CMP_GROUP && g > 0) {
            run->flips += (uint32_t)__builtin_popcount((attack ^ (attack >> 1)) & 0x7Eu);
            run->pairs += RT_CMP_GROUP - 2;
        }
    }
}

/* The last group of a chunk that ends inside one: its stages in order (cold code). */
CMP_TARGET __attribute__((noinline)) static void partial_group(rt_compressor *c, const cmp_io *io,
                                                               const cmp_job *job, uint32_t g, uint32_t frames,
                                                               int ramping, cmp_run *run)
{
    const int rms = c->p.detector == RT_CMP_DETECT_RMS;
    if (rms) stage_rms(c, io, job, g, frames);
    stage_wanted_gr(c, io, job, g, frames, rms);
    stage_smooth(c, job, g, frames, run);
    stage_apply(c, io, job, g, frames, ramping, run);
}

CMP_VINLINE void run_job(rt_compressor *c, const cmp_io *io, const cmp_job *job, int ramping)
{
    const int rms = c->p.detector == RT_CMP_DETECT_RMS;
    const uint32_t full = io->n / RT_CMP_GROUP; /* whole groups */
    cmp_run run = {{c->env_db[job->first], job->lanes == 2 ? c->env_db[job->first + 1] : 0.0},
                   {v_splat(0.0), v_splat(0.0)}, 0, 0, c->smooth_branchy[job->first]};
    /* The software pipeline over the whole groups (t - lag wraps around, past `full`,
     * while a stage has not started yet). */
    for (uint32_t t = 0; t < full + CMP_LAG_A; t++) {
        if (rms && t < full) stage_rms(c, io, job, t, RT_CMP_GROUP);
        if (t - CMP_LAG_X < full) stage_wanted_gr(c, io, job, t - CMP_LAG_X, RT_CMP_GROUP, rms);
        if (t - CMP_LAG_S < full) stage_smooth(c, job, t - CMP_LAG_S, RT_CMP_GROUP, &run);
        if (t - CMP_LAG_A < full) stage_apply(c, io, job, t - CMP_LAG_A, RT_CMP_GROUP, ramping, &run);
    }
    if (io->n > full * RT_CMP_GROUP) partial_group(c, io, job, full, io->n - full * RT_CMP_GROUP, ramping, &run);

    /* Branches for the next chunk if attack and release changed at most once in 16 frames
     * (a mispredicted branch then costs less than the blend saves); undecided on little data. */
    if (run.pairs >= 4 * (RT_CMP_GROUP - 2)) c->smooth_branchy[job->first] = run.flips * 16 <= run.pairs;
    for (uint32_t ch = job->first; ch < job->first + job->count; ch++) {
        const uint32_t lane = job->linked ? 0 : ch - job->first;
        double top = 0.0;
        for (int k = 0; k < CMP_W; k++) top = run.top[lane][k] > top ? run.top[lane][k] : top;
        c->env_db[ch] = run.env[lane];
        publish_gr(c, ch, run.env[lane], top);
    }
}

/* One chunk: n (1..RT_CMP_CHUNK) frames from `off`, inside one grid interval. */
CMP_TARGET static void chunk(rt_compressor *c, const float *const *in, float *const *out, uint32_t off, uint32_t n,
                             int ramping)
{
    const cmp_io io = {in, out, off, n};
    /* Constant jobs for stereo (the common case) let the channel loops unroll. */
    if (c->p.link != RT_CMP_LINK_NONE && c->channels > 1) {
        if (c->channels == 2) {
            run_job(c, &io, &(const cmp_job){0, 2, 1, 1}, ramping);
        } else {
            const cmp_job job = {0, c->channels, 1, 1};
            run_job(c, &io, &job, ramping);
        }
    } else {
        for (uint32_t ch = 0; ch < c->channels; ch += 2) {
            if (c->channels - ch >= 2)
                run_job(c, &io, &(const cmp_job){ch, 2, 2, 0}, ramping);
            else
                run_job(c, &io, &(const cmp_job){ch, 1, 1, 0}, ramping);
        }
    }
}

#undef CMP_CAT_
#undef CMP_CAT
#undef CMP_N
#undef CMP_PARTS
#undef CMP_VINLINE
#undef cmp_vd
#undef cmp_vi
#undef cmp_vu
#undef cmp_vf
#undef cmp_vfu
#undef cmp_vdu
#undef v_splat
#undef v_load
#undef v_store
#undef part_frames
#undef v_load_samples
#undef v_min
#undef v_fma
#undef vd2_fma
#undef v_max
#undef v_clamp_level
#undef v_log2
#undef v_exp2
#undef v_knee_curve_gr
#undef vd2_pick_gt
#undef sd_fma
#undef cmp_run
#undef v_gt_bits
#undef CMP_KEEP_BRANCH
#undef stage_smooth
#undef stage_rms
#undef stage_wanted_gr
#undef stage_apply
#undef partial_group
#undef run_job
#undef chunk
#endif /* CMP_TEMPLATE */
