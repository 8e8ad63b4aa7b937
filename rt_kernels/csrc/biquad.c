#include "biquad.h"
#include "cpu_level.h"
#include "rt_common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#define RT_BQ_X86 1
#include <immintrin.h>
#endif

/* How the cascade runs: a wavefront over the stages.
 *
 * Processed sample by sample a cascade is one long chain of dependent multiply-adds;
 * processed stage by stage each stage's recursion is a chain of its own.  Either way the
 * arithmetic units mostly wait.  Here stage s processes frame m at "iteration" m + off_s,
 * off_s growing with s (see RT_BQ_DEFINE_PASS): at one iteration every stage works on a
 * different frame and they are all independent (stage s reads what stage s-1 produced at
 * an earlier iteration).  The stages of an iteration are packed into vector lanes, a lane
 * being (group of consecutive stages, channel): AVX-512 holds 4 groups x 2 channels, AVX2
 * 2 x 2; short cascades and the baseline use one group, a channel pair per 16 bytes.
 * rt_cpu_level() at create picks the kind of pass (AURALIS_RT_ISA caps it).
 *
 * Every stage is direct form I, always with the same operations in the same order:
 *     y[m] = b0 x[m] + b1 x[m-1] + b2 x[m-2] - a2 y[m-2] - a1 y[m-1]
 * (x86-64-v3 and up fuse each product into its add: one rounding per term; the baseline
 * rounds products and sums).  Which iteration a frame is computed at never changes its
 * arithmetic, so the skew does not show in the output: zero latency, and bit-identical
 * output for any block split.
 *
 * A coefficient change between calls applies to every stage from the same frame, as in a
 * stage-by-stage cascade.  The wavefront flows from call to call; a call's last outputs,
 * which need frames not yet arrived, are computed on a copy of the state with silence
 * after the call's input (the real state stays mid-flight).  After a change each lane
 * takes the new coefficients when that frame reaches it (rt_biquad_set_coefficients).
 *
 * Tiny state is flushed to zero (rt_flush_tiny) on a grid of the absolute frame count:
 * stage s flushes after its frame m when (m + s) % RT_BQ_GRID == RT_BQ_GRID - 1.  It
 * flushes what its next frames read of its own output, y[m], y[m-1], y[m-2] (the next
 * stage's x history too).  What enters the cascade is never flushed: float32 copied into
 * doubles, never subnormal and never decaying; nor what enters a pass after the first
 * (at most 2 frames of the next stage's x history, below 1e-30: nothing audible). */

#define RT_BQ_GRID 128u
#define RT_BQ_BLOCK 256   /* frames staged as interleaved doubles at a time */
#define RT_BQ_MAX_SLOTS 8 /* stages per lane group in a pass, kept in registers (baseline: 4) */
/* Cascades from this many sections on use 8 lanes (AVX-512) or 4 (AVX2); shorter ones a
 * 2-lane pass.  Measured (ns per sample-channel, 512-frame blocks, Xeon with AVX-512):
 * 2 sections 0.81 / 1.11 / 1.16 with 2 / 4 / 8 lanes, 3 sections 1.29 / 1.28 / 1.15. */
#define RT_BQ_GROUPS_FROM 3

/* A pass: the stages first .. first + stages - 1, `lanes` doubles per vector
 * (lanes / 2 groups), `slots` stages per group.  The first group starts with `pad`
 * identity stages, so that the last real stage is the last slot of the last group
 * (where the output is read).
 *
 * At iteration i (counted from the last drain of the wavefront) the stage in lane
 * (group g, slot j) processes the pass's input frame i - off, off = g (slots + 1) + j
 * (see RT_BQ_DEFINE_PASS).  run() does iterations [i0, i1) in place on buf: it reads
 * iteration i's input pair at buf[2 (i - base)] and writes the output pair of that
 * iteration (input frame i - depth) to the same place.  Lanes with nothing to do (off > i,
 * or frame i - off >= end: past the last frame before a drain) keep their state. */
typedef struct {
    double *buf;              /* interleaved pairs, read and written in place */
    const float *src0, *src1; /* or the call's float channels: a lone 2-lane pass */
    float *dst0, *dst1;
    ptrdiff_t frames;         /* of src and dst */
} pass_io;

typedef void (*pass_fn)(double *state, const double *coef, const double *coef_prev, ptrdiff_t switch_at,
                        const pass_io *io, ptrdiff_t i0, ptrdiff_t i1, ptrdiff_t base, ptrdiff_t end, uint32_t phase,
                        uint32_t pad);

typedef struct {
    uint32_t first, stages, lanes, slots, pad;
    uint32_t depth;       /* the last lane's off: lanes / 2 * (slots + 1) - 2 */
    uint32_t lag;         /* frames the pass's input lags the cascade's input (earlier passes' depths) */
    size_t state_offset;  /* into a pair's state block, doubles */
    pass_fn run;
    pass_fn direct;       /* a lone 2-lane pass: the same on the float channels */
    double *coef;         /* slots * 5 coefficient rows (b0 b1 b2 a1 a2), see coef_row */
    double *coef_prev;    /* the same before the last change (for frames before switch_at) */
} vpass;

/* The lane of (group g, channel c) in a vector of `lanes`, and the doubles per
 * coefficient row (CK_8 etc.: the 8-lane vectors repeat a row of 4). */
static uint32_t lane_of(uint32_t lanes, uint32_t g, uint32_t c) { return lanes == 8 ? 4 * c + g : 2 * g + c; }
static uint32_t coef_row(uint32_t lanes) { return lanes == 8 ? 4 : lanes; }

struct rt_biquad {
    uint32_t channels;
    uint32_t sections;
    uint32_t pairs;
    uint32_t level;      /* rt_cpu_level() at create: 0, 3 or 4 */
    uint32_t passes;
    uint32_t depth;      /* sum of the passes' depths */
    uint64_t frame;      /* absolute frame count */
    uint64_t drained_at; /* absolute frame of the last drain */
    ptrdiff_t switch_at; /* frames from here (counted from the drain) use coef, earlier ones coef_prev */
    double sample_rate;
    double *coeffs;      /* sections * 5: b0 b1 b2 a1 a2 */
    vpass *pass;         /* passes */
    size_t pair_state;   /* doubles of state per channel pair (all passes) */
    double *state;       /* pairs * pair_state */
    double *spare;       /* pair_state: where a call's last outputs are finished */
    double *buf;         /* RT_BQ_BLOCK interleaved pairs */
};

static const double identity[5] = {1.0, 0.0, 0.0, 0.0, 0.0};

/* Coefficients divided by a0 into c, or -1 (c untouched) if one is not finite. */
static int normalise(double b0, double b1, double b2, double a0, double a1, double a2, double c[5])
{
    double inv = 1.0 / a0;
    double out[5] = {b0 * inv, b1 * inv, b2 * inv, a1 * inv, a2 * inv};
    for (int i = 0; i < 5; i++)
        if (!isfinite(out[i])) return -1;
    memcpy(c, out, sizeof out);
    return 0;
}

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
    if (type == RT_BQ_PEAKING) return rt_biquad_peaking(cw, alpha, gain_db, c);
    double sa = 2.0 * sqrt(A) * alpha;
    double b0, b1, b2, a0, a1, a2;

    switch (type) {
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
    return normalise(b0, b1, b2, a0, a1, a2, c);
}

int rt_biquad_peaking(double cos_w0, double alpha, double gain_db, double c[5])
{
    if (!isfinite(gain_db) || fabs(gain_db) > 60.0) return -1;
    double A = pow(10.0, gain_db / 40.0);
    return normalise(1.0 + alpha * A, -2.0 * cos_w0, 1.0 - alpha * A, 1.0 + alpha / A, -2.0 * cos_w0,
                     1.0 - alpha / A, c);
}

/* ---- the passes ----------------------------------------------------------------------- */

/* Operations per kind of pass, suffixed by its name: _b (portable, the baseline: a
 * channel pair in a GCC vector of 2 doubles, separate multiplies and adds), and on x86-64
 * _8 (AVX-512, 4 groups x 2 channels), _4 (AVX2, 2 x 2) and _2 (one group in SSE registers
 * with FMA, for cascades too short to fill more lanes).  vm: a lane mask.  ldk: a
 * coefficient vector from its row of CK doubles (see coef_row). */

#define ATTR_b __attribute__((always_inline)) static inline
#define CK_b 2
typedef rt_v2d vd_b;
typedef int64_t vm_b __attribute__((vector_size(16)));
ATTR_b vd_b ld_b(const double *p) { return *(const vd_b *)p; }
ATTR_b vd_b ldk_b(const double *p) { return *(const vd_b *)p; }
ATTR_b void st_b(double *p, vd_b v) { *(vd_b *)p = v; }
ATTR_b vd_b mul_b(vd_b a, vd_b b) { return a * b; }
ATTR_b vd_b fma_b(vd_b a, vd_b b, vd_b c) { return c + a * b; }
ATTR_b vd_b fnma_b(vd_b a, vd_b b, vd_b c) { return c - a * b; }
ATTR_b vd_b set1_b(double v) { return (vd_b){v, v}; }
ATTR_b vd_b shift_in_b(vd_b y, const double *p) { return (vd_b){p[0], p[1]}; }
ATTR_b void store_last_b(double *p, vd_b v)
{
    p[0] = v[0];
    p[1] = v[1];
}
ATTR_b vd_b group_offsets_b(double g) { return (vd_b){0.0, 0.0}; }
ATTR_b vm_b active_b(vd_b off, vd_b i, vd_b i_minus_end) { return (off <= i) & (off > i_minus_end); }
ATTR_b vm_b at_least_b(vd_b off, vd_b v) { return off >= v; }
ATTR_b vm_b at_most_b(vd_b off, vd_b v) { return off <= v; }
ATTR_b vm_b mand_b(vm_b a, vm_b b) { return a & b; }
ATTR_b vm_b same_b(vd_b a, vd_b b) { return a == b; }
ATTR_b vd_b blend_b(vm_b m, vd_b old, vd_b new) { return (vd_b)(((vm_b) new & m) | ((vm_b)old & ~m)); }
ATTR_b vd_b flush_b(vd_b v, vm_b m)
{
    const vd_b magnitude = (vd_b)((vm_b)v & (vm_b){INT64_MAX, INT64_MAX});
    const vm_b tiny = (magnitude < set1_b(RT_STATE_FLOOR)) & m;
    return (vd_b)((vm_b)v & ~tiny);
}

#ifdef RT_BQ_X86
#define ATTR_8 __attribute__((target("arch=x86-64-v4"), always_inline)) static inline
#define CK_8 4
typedef __m512d vd_8;
typedef __mmask8 vm_8;
ATTR_8 vd_8 ld_8(const double *p) { return _mm512_load_pd(p); }
ATTR_8 vd_8 ldk_8(const double *p) { return _mm512_broadcast_f64x4(_mm256_load_pd(p)); }
ATTR_8 void st_8(double *p, vd_8 v) { _mm512_store_pd(p, v); }
ATTR_8 vd_8 mul_8(vd_8 a, vd_8 b) { return _mm512_mul_pd(a, b); }
ATTR_8 vd_8 fma_8(vd_8 a, vd_8 b, vd_8 c) { return _mm512_fmadd_pd(a, b, c); }
ATTR_8 vd_8 fnma_8(vd_8 a, vd_8 b, vd_8 c) { return _mm512_fnmadd_pd(a, b, c); }
ATTR_8 vd_8 set1_8(double v) { return _mm512_set1_pd(v); }
/* A slot-0 input: group 0 <- the pair at p (channel 0, 1), group g <- y's group g - 1
 * (each group's last stage feeds the next group). */
ATTR_8 vd_8 shift_in_8(vd_8 y, const double *p)
{
    return _mm512_permutex2var_pd(y, _mm512_set_epi64(6, 5, 4, 9, 2, 1, 0, 8), _mm512_castpd128_pd512(_mm_loadu_pd(p)));
}
/* the last group's pair (lanes 3 and 7) */
ATTR_8 void store_last_8(double *p, vd_8 v)
{
    _mm_storeu_pd(p, _mm512_castpd512_pd128(_mm512_permutexvar_pd(_mm512_set_epi64(0, 0, 0, 0, 0, 0, 7, 3), v)));
}
ATTR_8 vd_8 group_offsets_8(double g) { return _mm512_set_pd(3 * g, 2 * g, g, 0, 3 * g, 2 * g, g, 0); }
/* lanes where off <= i and off > i - end */
ATTR_8 vm_8 active_8(vd_8 off, vd_8 i, vd_8 i_minus_end)
{
    return _mm512_cmp_pd_mask(off, i, _CMP_LE_OQ) & _mm512_cmp_pd_mask(off, i_minus_end, _CMP_GT_OQ);
}
ATTR_8 vm_8 at_least_8(vd_8 off, vd_8 v) { return _mm512_cmp_pd_mask(off, v, _CMP_GE_OQ); }
ATTR_8 vm_8 at_most_8(vd_8 off, vd_8 v) { return _mm512_cmp_pd_mask(off, v, _CMP_LE_OQ); }
ATTR_8 vm_8 mand_8(vm_8 a, vm_8 b) { return a & b; }
ATTR_8 vm_8 same_8(vd_8 a, vd_8 b) { return _mm512_cmp_pd_mask(a, b, _CMP_EQ_OQ); }
ATTR_8 vd_8 blend_8(vm_8 m, vd_8 old, vd_8 new) { return _mm512_mask_mov_pd(old, m, new); }
ATTR_8 vd_8 flush_8(vd_8 v, vm_8 m)
{
    vm_8 tiny = _mm512_cmp_pd_mask(_mm512_abs_pd(v), _mm512_set1_pd(RT_STATE_FLOOR), _CMP_LT_OQ) & m;
    return _mm512_mask_mov_pd(v, tiny, _mm512_setzero_pd());
}

#define ATTR_4 __attribute__((target("arch=x86-64-v3"), always_inline)) static inline
#define CK_4 4
typedef __m256d vd_4;
typedef __m256d vm_4;
ATTR_4 vd_4 ld_4(const double *p) { return _mm256_load_pd(p); }
ATTR_4 vd_4 ldk_4(const double *p) { return _mm256_load_pd(p); }
ATTR_4 void st_4(double *p, vd_4 v) { _mm256_store_pd(p, v); }
ATTR_4 vd_4 mul_4(vd_4 a, vd_4 b) { return _mm256_mul_pd(a, b); }
ATTR_4 vd_4 fma_4(vd_4 a, vd_4 b, vd_4 c) { return _mm256_fmadd_pd(a, b, c); }
ATTR_4 vd_4 fnma_4(vd_4 a, vd_4 b, vd_4 c) { return _mm256_fnmadd_pd(a, b, c); }
ATTR_4 vd_4 set1_4(double v) { return _mm256_set1_pd(v); }
ATTR_4 vd_4 shift_in_4(vd_4 y, const double *p)
{
    return _mm256_permute2f128_pd(y, _mm256_castpd128_pd256(_mm_loadu_pd(p)), 0x02);
}
ATTR_4 void store_last_4(double *p, vd_4 v) { _mm_storeu_pd(p, _mm256_extractf128_pd(v, 1)); }
ATTR_4 vd_4 group_offsets_4(double g) { return _mm256_set_pd(g, g, 0, 0); }
ATTR_4 vm_4 active_4(vd_4 off, vd_4 i, vd_4 i_minus_end)
{
    return _mm256_and_pd(_mm256_cmp_pd(off, i, _CMP_LE_OQ), _mm256_cmp_pd(off, i_minus_end, _CMP_GT_OQ));
}
ATTR_4 vm_4 at_least_4(vd_4 off, vd_4 v) { return _mm256_cmp_pd(off, v, _CMP_GE_OQ); }
ATTR_4 vm_4 at_most_4(vd_4 off, vd_4 v) { return _mm256_cmp_pd(off, v, _CMP_LE_OQ); }
ATTR_4 vm_4 mand_4(vm_4 a, vm_4 b) { return _mm256_and_pd(a, b); }
ATTR_4 vm_4 same_4(vd_4 a, vd_4 b) { return _mm256_cmp_pd(a, b, _CMP_EQ_OQ); }
ATTR_4 vd_4 blend_4(vm_4 m, vd_4 old, vd_4 new) { return _mm256_blendv_pd(old, new, m); }
ATTR_4 vd_4 flush_4(vd_4 v, vm_4 m)
{
    const vd_4 magnitude = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7fffffffffffffffLL));
    vm_4 tiny = _mm256_and_pd(_mm256_cmp_pd(_mm256_and_pd(v, magnitude), _mm256_set1_pd(RT_STATE_FLOOR), _CMP_LT_OQ), m);
    return _mm256_andnot_pd(tiny, v);
}

#define ATTR_2 __attribute__((target("arch=x86-64-v3"), always_inline)) static inline
#define CK_2 2
typedef __m128d vd_2;
typedef __m128d vm_2;
ATTR_2 vd_2 ld_2(const double *p) { return _mm_load_pd(p); }
ATTR_2 vd_2 ldk_2(const double *p) { return _mm_load_pd(p); }
ATTR_2 void st_2(double *p, vd_2 v) { _mm_store_pd(p, v); }
ATTR_2 vd_2 mul_2(vd_2 a, vd_2 b) { return _mm_mul_pd(a, b); }
ATTR_2 vd_2 fma_2(vd_2 a, vd_2 b, vd_2 c) { return _mm_fmadd_pd(a, b, c); }
ATTR_2 vd_2 fnma_2(vd_2 a, vd_2 b, vd_2 c) { return _mm_fnmadd_pd(a, b, c); }
ATTR_2 vd_2 set1_2(double v) { return _mm_set1_pd(v); }
ATTR_2 vd_2 shift_in_2(vd_2 y, const double *p) { return _mm_loadu_pd(p); }
ATTR_2 void store_last_2(double *p, vd_2 v) { _mm_storeu_pd(p, v); }
ATTR_2 vd_2 group_offsets_2(double g) { return _mm_setzero_pd(); }
ATTR_2 vm_2 active_2(vd_2 off, vd_2 i, vd_2 i_minus_end)
{
    return _mm_and_pd(_mm_cmp_pd(off, i, _CMP_LE_OQ), _mm_cmp_pd(off, i_minus_end, _CMP_GT_OQ));
}
ATTR_2 vm_2 at_least_2(vd_2 off, vd_2 v) { return _mm_cmp_pd(off, v, _CMP_GE_OQ); }
ATTR_2 vm_2 at_most_2(vd_2 off, vd_2 v) { return _mm_cmp_pd(off, v, _CMP_LE_OQ); }
ATTR_2 vm_2 mand_2(vm_2 a, vm_2 b) { return _mm_and_pd(a, b); }
ATTR_2 vm_2 same_2(vd_2 a, vd_2 b) { return _mm_cmp_pd(a, b, _CMP_EQ_OQ); }
ATTR_2 vd_2 blend_2(vm_2 m, vd_2 old, vd_2 new) { return _mm_blendv_pd(old, new, m); }
ATTR_2 vd_2 flush_2(vd_2 v, vm_2 m)
{
    const vd_2 magnitude = _mm_castsi128_pd(_mm_set1_epi64x(0x7fffffffffffffffLL));
    vm_2 tiny = _mm_and_pd(_mm_cmp_pd(_mm_and_pd(v, magnitude), _mm_set1_pd(RT_STATE_FLOOR), _CMP_LT_OQ), m);
    return _mm_andnot_pd(tiny, v);
}

#endif /* RT_BQ_X86 */

#define RT_BQ_PASS_ARGS                                                                                          \
    double *restrict state, const double *restrict coef, const double *restrict coef_prev, ptrdiff_t switch_at,  \
        const pass_io *io_arg, ptrdiff_t i0, ptrdiff_t i1, ptrdiff_t base, ptrdiff_t end, uint32_t phase,        \
        uint32_t pad

/* The pass template, per kind of pass N (its operations' suffix) with W lanes.  G (slots
 * per group) is a compile-time constant
 * after inlining, so the state lives in registers (arrays are sized RT_BQ_MAX_SLOTS, not
 * G: variable-length arrays would stay in memory).
 *
 * Layout: slot j of group g is the stage at position g G + j (pad included), in lane
 * (g, c) of each channel c.  A group's slot 0 takes the previous group's last output of
 * two iterations before (one would do, but then the dependent operations through a
 * group, two per slot plus the lane shift, would bound the speed of short cascades), so
 * the stage at lane (g, j) processes input frame i - off at iteration i, with
 * off = g (G + 1) + j, and the pass is depth = groups (G + 1) - 2 iterations deep.
 *
 * State: per slot j its outputs at m, m-1, m-2 (y1 y2 y3, which slot j+1 reads as its x
 * history), then slot 0's inputs at m, m-1 (h1 h2).
 *
 * step: every slot's next output into dst.  dst may be y3: slots run last to first, so
 * slot j+1 has read y3[j] (its x2) before slot j replaces it.  One multiply and four
 * multiply-adds (fused, one rounding, except in the baseline) in a fixed order:
 *   W > 2:  t = b2 x2; t += b1 x1; t -= a2 y2; t += b0 x; y = t - a1 y1
 *   W = 2:  t = b2 x2; t += b1 x1; t += b0 x; t -= a2 y2; y = t - a1 y1
 * With one group the y[m-2] path is the longest chain (feedback last); with several the
 * path from a stage's input to its output is (input late).
 *
 * Coefficients: frames from switch_at on use coef, earlier ones coef_prev (a change
 * between calls while frames are in flight).  `mixed` (a constant at each call) blends
 * them per lane with sel; otherwise all lanes use coef. */
#define RT_BQ_DEFINE_STEP(N, W)                                                                                  \
    ATTR_##N void step_##N(const int G, const double *coef, const double *coef_prev, const int mixed,            \
                           const vm_##N *sel, const vd_##N *y1, const vd_##N *y2, vd_##N *y3, vd_##N x0,         \
                           vd_##N h1, vd_##N h2, vd_##N *dst)                                                    \
    {                                                                                                            \
        /* Load the coefficients here, every iteration: hoisted out of the loop they do not                      \
         * fit in registers and come back from the stack as full vectors, twice the bytes                        \
         * of a repeated row (the empty asm hides that coef is loop-invariant). */                               \
        __asm__("" : "+r"(coef));                                                                                \
        _Pragma("GCC unroll 8") for (int j = G - 1; j >= 0; j--) {                                               \
            const vd_##N x = j ? y1[j - 1] : x0, x1 = j ? y2[j - 1] : h1, x2 = j ? y3[j - 1] : h2;               \
            const double *k = coef + 5 * CK_##N * j, *kp = coef_prev + 5 * CK_##N * j;                           \
            vd_##N kv[5];                                                                                        \
            _Pragma("GCC unroll 5") for (int e = 0; e < 5; e++)                                                  \
                kv[e] = mixed ? blend_##N(sel[j], ldk_##N(kp + e * CK_##N), ldk_##N(k + e * CK_##N))              \
                              : ldk_##N(k + e * CK_##N);                                                         \
            vd_##N t = mul_##N(kv[2], x2);                                                                       \
            t = fma_##N(kv[1], x1, t);                                                                           \
            if (W > 2) {                                                                                         \
                t = fnma_##N(kv[4], y2[j], t);                                                                   \
                t = fma_##N(kv[0], x, t);                                                                        \
            } else {                                                                                             \
                t = fma_##N(kv[0], x, t);                                                                        \
                t = fnma_##N(kv[4], y2[j], t);                                                                   \
            }                                                                                                    \
            dst[j] = fnma_##N(kv[3], y1[j], t);                                                                  \
        }                                                                                                        \
    }                                                                                                            \
    /* Flush tiny history in the lanes of `live` (per slot; slot 0's inputs by live0). */                        \
    ATTR_##N void flush_all_##N(const int G, const vm_##N *live, vm_##N live0, vd_##N *y1, vd_##N *y2,           \
                                vd_##N *y3, vd_##N *h1, vd_##N *h2)                                              \
    {                                                                                                            \
        _Pragma("GCC unroll 8") for (int j = 0; j < G; j++) {                                                    \
            y1[j] = flush_##N(y1[j], live[j]);                                                                   \
            y2[j] = flush_##N(y2[j], live[j]);                                                                   \
            y3[j] = flush_##N(y3[j], live[j]);                                                                   \
        }                                                                                                        \
        *h1 = flush_##N(*h1, live0);                                                                             \
        *h2 = flush_##N(*h2, live0);                                                                             \
    }                                                                                                            \
    /* Flush group g's lanes if iteration i is its grid point: the stage at lane (g, j) is                       \
     * global stage first + g G + j - pad on frame i - g (G + 1) - j, so (frame + stage) %                       \
     * GRID == GRID - 1 when (phase + i - g) % GRID == GRID - 1. */                                              \
    ATTR_##N void grid_##N(const int G, uint32_t phase, ptrdiff_t i, const vm_##N *keep, vm_##N keep0,           \
                           vd_##N gidx, vd_##N *y1, vd_##N *y2, vd_##N *y3, vd_##N *h1, vd_##N *h2)              \
    {                                                                                                            \
        const uint32_t g = (uint32_t)((phase + (uint64_t)i + 1) % RT_BQ_GRID);                                   \
        if (g >= W / 2) return;                                                                                  \
        vm_##N live[RT_BQ_MAX_SLOTS];                                                                            \
        const vm_##N mine = same_##N(gidx, set1_##N((double)g));                                                 \
        _Pragma("GCC unroll 8") for (int j = 0; j < G; j++) live[j] = mand_##N(keep[j], mine);                   \
        flush_all_##N(G, live, mand_##N(keep0, mine), y1, y2, y3, h1, h2);                                      \
    }

/* The iteration loop, per lane count W and I/O: _buf reads and writes the in-place
 * buffer of interleaved pairs (io->buf), _flt the float channels themselves (a lone
 * 2-lane pass: staging would cost as much as its latency-bound loop). */
#define RT_BQ_DEFINE_PASS(N, W, IO)                                                                                 \
    /* One iteration with every lane active: the new outputs replace y3 and the new                              \
     * slot-0 input goes to *hx (the caller rotates the roles). */                                               \
    ATTR_##N void fast_##N##IO(const int G, const double *coef, const double *coef_prev, const int mixed,        \
                               const vm_##N *sel, const pass_io *io, ptrdiff_t i, ptrdiff_t base, uint32_t phase, \
                               const vm_##N *real, vm_##N real0, vd_##N gidx, vd_##N *y1, vd_##N *y2,            \
                               vd_##N *y3, vd_##N *hx, vd_##N *h1, vd_##N *h2)                                   \
    {                                                                                                            \
        *hx = take_##N##IO(io, i - base, y2[G - 1]);                                                             \
        step_##N(G, coef, coef_prev, mixed, sel, y1, y2, y3, *hx, *h1, *h2, y3);                                 \
        grid_##N(G, phase, i, real, real0, gidx, y3, y1, y2, hx, h1);                                            \
        give_##N##IO(io, i - base, (W / 2) * (G + 1) - 2, y3[G - 1]);                                            \
    }                                                                                                            \
    ATTR_##N void pass_##N##IO(const int G, RT_BQ_PASS_ARGS)                                                     \
    {                                                                                                            \
        typedef vd_##N vd;                                                                                       \
        typedef vm_##N vm;                                                                                       \
        /* a local copy: stores to the audio cannot change it, so it is not reloaded */                          \
        const pass_io io_local = *io_arg, *io = &io_local;                                                       \
        const ptrdiff_t depth = (W / 2) * (G + 1) - 2;                                                           \
        vd a[RT_BQ_MAX_SLOTS], b[RT_BQ_MAX_SLOTS], c[RT_BQ_MAX_SLOTS], off[RT_BQ_MAX_SLOTS], p, q, r;            \
        vm real[RT_BQ_MAX_SLOTS];                                                                                \
        const vd gidx = group_offsets_##N(1.0), real_from = set1_##N((double)pad);                               \
        _Pragma("GCC unroll 8") for (int j = 0; j < G; j++) {                                                    \
            a[j] = ld_##N(state + W * j);                                                                        \
            b[j] = ld_##N(state + W * (G + j));                                                                  \
            c[j] = ld_##N(state + W * (2 * G + j));                                                              \
            off[j] = group_offsets_##N((double)(G + 1)) + set1_##N((double)j);                                   \
            real[j] = at_least_##N(group_offsets_##N((double)G) + set1_##N((double)j), real_from);               \
        }                                                                                                        \
        /* slot-0 lanes whose input comes from a real stage (not the cascade's input,                            \
         * passed on by pad stages): only those inputs are flushed */                                            \
        const vm real0 = at_least_##N(group_offsets_##N((double)G), set1_##N((double)pad + 1.0));                \
        q = ld_##N(state + W * 3 * G);                                                                           \
        r = ld_##N(state + W * (3 * G + 1));                                                                     \
        p = q;                                                                                                   \
        ptrdiff_t i = i0;                                                                                        \
        while (i < i1) {                                                                                         \
            /* every lane's frame (i - off, off in [0, depth]) on the same side of switch_at */                  \
            const int before = i < switch_at, after = i - depth >= switch_at;                                    \
            if (i >= depth && i < end && (before || after)) {                                                    \
                /* every lane active; three iterations per turn so that the history                              \
                 * registers change roles instead of values: y1 y2 y3 = a b c, c a b, b c a */                   \
                const double *k = before ? coef_prev : coef;                                                     \
                ptrdiff_t stop = i1 < end ? i1 : end;                                                            \
                if (before && switch_at < stop) stop = switch_at;                                                \
                for (; i + 3 <= stop; i += 3) {                                                                  \
                    fast_##N##IO(G, k, k, 0, NULL, io, i, base, phase, real, real0, gidx, a, b, c, &p, &q, &r);  \
                    fast_##N##IO(G, k, k, 0, NULL, io, i + 1, base, phase, real, real0, gidx, c, a, b, &r, &p,   \
                                 &q);                                                                            \
                    fast_##N##IO(G, k, k, 0, NULL, io, i + 2, base, phase, real, real0, gidx, b, c, a, &q, &r,   \
                                 &p);                                                                            \
                }                                                                                                \
                for (; i < stop; i++) {                                                                          \
                    fast_##N##IO(G, k, k, 0, NULL, io, i, base, phase, real, real0, gidx, a, b, c, &p, &q, &r);  \
                    _Pragma("GCC unroll 8") for (int j = 0; j < G; j++) {                                        \
                        const vd t = c[j];                                                                       \
                        c[j] = b[j];                                                                             \
                        b[j] = a[j];                                                                             \
                        a[j] = t;                                                                                \
                    }                                                                                            \
                    r = q;                                                                                       \
                    q = p;                                                                                       \
                }                                                                                                \
                continue;                                                                                        \
            }                                                                                                    \
            if (i >= depth && i < end) {                                                                         \
                /* every lane active, its frame's coefficients: a change passing through */                      \
                vm sel[RT_BQ_MAX_SLOTS];                                                                         \
                const vd vs = set1_##N((double)(i - switch_at));                                                 \
                _Pragma("GCC unroll 8") for (int j = 0; j < G; j++) sel[j] = at_most_##N(off[j], vs);            \
                fast_##N##IO(G, coef, coef_prev, 1, sel, io, i, base, phase, real, real0, gidx, a, b, c, &p, &q, \
                             &r);                                                                                \
                _Pragma("GCC unroll 8") for (int j = 0; j < G; j++) {                                            \
                    const vd t = c[j];                                                                           \
                    c[j] = b[j];                                                                                 \
                    b[j] = a[j];                                                                                 \
                    a[j] = t;                                                                                    \
                }                                                                                                \
                r = q;                                                                                           \
                q = p;                                                                                           \
                i++;                                                                                             \
                continue;                                                                                        \
            }                                                                                                    \
            /* the wavefront filling, draining or switching coefficients: every lane                             \
             * computes with its frame's coefficients, the lanes of stages with a frame to                       \
             * process keep their result */                                                                      \
            vd ny[RT_BQ_MAX_SLOTS];                                                                              \
            vm act[RT_BQ_MAX_SLOTS], keep[RT_BQ_MAX_SLOTS], sel[RT_BQ_MAX_SLOTS];                                \
            const vd vs = set1_##N((double)(i - switch_at));                                                     \
            _Pragma("GCC unroll 8") for (int j = 0; j < G; j++) sel[j] = at_most_##N(off[j], vs);                \
            /* The hand-off is the previous group's output of two iterations before, y2,                         \
             * if that lane ran at the last iteration; when draining it stops, and then                          \
             * the frame wanted is its last one, still y1.  (While filling, a lane that                          \
             * has not started feeds one that has not either.) */                                                \
            const vm ran = at_least_##N(off[G - 1], set1_##N((double)(i - end)));                                \
            const vd x0 = take_##N##IO(io, i - base, blend_##N(ran, a[G - 1], b[G - 1]));                        \
            step_##N(G, coef, coef_prev, 1, sel, a, b, c, x0, q, r, ny);                                         \
            const vd vi = set1_##N((double)i), vie = set1_##N((double)(i - end));                                \
            _Pragma("GCC unroll 8") for (int j = 0; j < G; j++) {                                                \
                act[j] = active_##N(off[j], vi, vie);                                                            \
                keep[j] = mand_##N(act[j], real[j]);                                                             \
                c[j] = blend_##N(act[j], c[j], b[j]);                                                            \
                b[j] = blend_##N(act[j], b[j], a[j]);                                                            \
                a[j] = blend_##N(act[j], a[j], ny[j]);                                                           \
            }                                                                                                    \
            r = blend_##N(act[0], r, q);                                                                         \
            q = blend_##N(act[0], q, x0);                                                                        \
            grid_##N(G, phase, i, keep, mand_##N(act[0], real0), gidx, a, b, c, &q, &r);                         \
            give_##N##IO(io, i - base, depth, a[G - 1]);                                                         \
            i++;                                                                                                 \
        }                                                                                                        \
        _Pragma("GCC unroll 8") for (int j = 0; j < G; j++) {                                                    \
            st_##N(state + W * j, a[j]);                                                                         \
            st_##N(state + W * (G + j), b[j]);                                                                   \
            st_##N(state + W * (2 * G + j), c[j]);                                                               \
        }                                                                                                        \
        st_##N(state + W * 3 * G, q);                                                                            \
        st_##N(state + W * (3 * G + 1), r);                                                                      \
    }

/* Slot-0 input and last output at call index k = i - base: _buf at buf[2 k] (the output
 * pair of iteration i, input frame i - depth, replaces the input pair); _flt from the
 * float channels (frame k while k < frames, else silence) and to them (frame k - depth,
 * when that is one of the call's frames). */
#define RT_BQ_DEFINE_BUF(N)                                                                                      \
    ATTR_##N vd_##N take_##N##_buf(const pass_io *io, ptrdiff_t k, vd_##N y)                                      \
    {                                                                                                            \
        return shift_in_##N(y, io->buf + 2 * k);                                                                 \
    }                                                                                                            \
    ATTR_##N void give_##N##_buf(const pass_io *io, ptrdiff_t k, ptrdiff_t depth, vd_##N v)                      \
    {                                                                                                            \
        store_last_##N(io->buf + 2 * k, v);                                                                      \
    }

ATTR_b vd_b take_b_flt(const pass_io *io, ptrdiff_t k, vd_b y)
{
    if (k >= io->frames) return set1_b(0.0);
    return (vd_b){io->src0[k], io->src1[k]};
}
ATTR_b void give_b_flt(const pass_io *io, ptrdiff_t k, ptrdiff_t depth, vd_b v)
{
    k -= depth;
    if (k < 0 || k >= io->frames) return;
    io->dst1[k] = (float)v[1];
    io->dst0[k] = (float)v[0]; /* last: for an odd channel out, dst1 == dst0 */
}
RT_BQ_DEFINE_STEP(b, 2)
RT_BQ_DEFINE_BUF(b)
RT_BQ_DEFINE_PASS(b, 2, _buf)
RT_BQ_DEFINE_PASS(b, 2, _flt)

/* A pass function per slot count (G a compile-time constant in each). */
#define RT_BQ_PASS(N, IO, ATTRS, g)                                                                              \
    ATTRS static void pass_##N##IO##_##g(RT_BQ_PASS_ARGS)                                                        \
    {                                                                                                            \
        pass_##N##IO(g, state, coef, coef_prev, switch_at, io_arg, i0, i1, base, end, phase, pad);               \
    }
#define RT_BQ_PASSES(N, IO, ATTRS)                                                                               \
    RT_BQ_PASS(N, IO, ATTRS, 1) RT_BQ_PASS(N, IO, ATTRS, 2) RT_BQ_PASS(N, IO, ATTRS, 3)                          \
    RT_BQ_PASS(N, IO, ATTRS, 4) RT_BQ_PASS(N, IO, ATTRS, 5) RT_BQ_PASS(N, IO, ATTRS, 6)                          \
    RT_BQ_PASS(N, IO, ATTRS, 7) RT_BQ_PASS(N, IO, ATTRS, 8)                                                      \
    static const pass_fn passes_##N##IO[RT_BQ_MAX_SLOTS] = {                                                     \
        pass_##N##IO##_1, pass_##N##IO##_2, pass_##N##IO##_3, pass_##N##IO##_4,                                  \
        pass_##N##IO##_5, pass_##N##IO##_6, pass_##N##IO##_7, pass_##N##IO##_8};
RT_BQ_PASSES(b, _buf, )
RT_BQ_PASSES(b, _flt, )

#ifdef RT_BQ_X86
RT_BQ_DEFINE_STEP(8, 8)
RT_BQ_DEFINE_STEP(4, 4)
RT_BQ_DEFINE_STEP(2, 2)
RT_BQ_DEFINE_BUF(8)
RT_BQ_DEFINE_BUF(4)
RT_BQ_DEFINE_BUF(2)
ATTR_2 vd_2 take_2_flt(const pass_io *io, ptrdiff_t k, vd_2 y)
{
    if (k >= io->frames) return _mm_setzero_pd();
    return _mm_cvtps_pd(_mm_unpacklo_ps(_mm_load_ss(io->src0 + k), _mm_load_ss(io->src1 + k)));
}
ATTR_2 void give_2_flt(const pass_io *io, ptrdiff_t k, ptrdiff_t depth, vd_2 v)
{
    k -= depth;
    if (k < 0 || k >= io->frames) return;
    const __m128 f = _mm_cvtpd_ps(v);
    _mm_store_ss(io->dst1 + k, _mm_movehdup_ps(f));
    _mm_store_ss(io->dst0 + k, f); /* last: for an odd channel out, dst1 == dst0 */
}
RT_BQ_DEFINE_PASS(8, 8, _buf)
RT_BQ_DEFINE_PASS(4, 4, _buf)
RT_BQ_DEFINE_PASS(2, 2, _buf)
RT_BQ_DEFINE_PASS(2, 2, _flt)
RT_BQ_PASSES(8, _buf, __attribute__((target("arch=x86-64-v4"))))
RT_BQ_PASSES(4, _buf, __attribute__((target("arch=x86-64-v3"))))
RT_BQ_PASSES(2, _buf, __attribute__((target("arch=x86-64-v3"))))
RT_BQ_PASSES(2, _flt, __attribute__((target("arch=x86-64-v3"))))

/* Staging, vectorised. */
__attribute__((target("arch=x86-64-v4"))) static void stage_in_v4(double *dst, const float *src0, const float *src1,
                                                                   size_t count)
{
    const __m512i lo = _mm512_set_epi64(11, 3, 10, 2, 9, 1, 8, 0), hi = _mm512_set_epi64(15, 7, 14, 6, 13, 5, 12, 4);
    size_t k = 0;
    for (; k + 8 <= count; k += 8) {
        __m512d a = _mm512_cvtps_pd(_mm256_loadu_ps(src0 + k)), b = _mm512_cvtps_pd(_mm256_loadu_ps(src1 + k));
        _mm512_storeu_pd(dst + 2 * k, _mm512_permutex2var_pd(a, lo, b));
        _mm512_storeu_pd(dst + 2 * k + 8, _mm512_permutex2var_pd(a, hi, b));
    }
    for (; k < count; k++) {
        dst[2 * k] = src0[k];
        dst[2 * k + 1] = src1[k];
    }
}

__attribute__((target("arch=x86-64-v4"))) static void deliver_v4(float *dst0, float *dst1, const double *src,
                                                                  size_t count)
{
    const __m512i even = _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0), odd = _mm512_set_epi64(15, 13, 11, 9, 7, 5, 3, 1);
    size_t k = 0;
    for (; k + 8 <= count; k += 8) {
        __m512d lo = _mm512_loadu_pd(src + 2 * k), hi = _mm512_loadu_pd(src + 2 * k + 8);
        _mm256_storeu_ps(dst1 + k, _mm512_cvtpd_ps(_mm512_permutex2var_pd(lo, odd, hi)));
        _mm256_storeu_ps(dst0 + k, _mm512_cvtpd_ps(_mm512_permutex2var_pd(lo, even, hi)));
    }
    for (; k < count; k++) {
        dst1[k] = (float)src[2 * k + 1];
        dst0[k] = (float)src[2 * k]; /* last: for an odd channel out, dst1 == dst0 */
    }
}

__attribute__((target("arch=x86-64-v3"))) static void stage_in_v3(double *dst, const float *src0, const float *src1,
                                                                   size_t count)
{
    size_t k = 0;
    for (; k + 4 <= count; k += 4) {
        __m256d a = _mm256_cvtps_pd(_mm_loadu_ps(src0 + k)), b = _mm256_cvtps_pd(_mm_loadu_ps(src1 + k));
        __m256d t0 = _mm256_unpacklo_pd(a, b), t1 = _mm256_unpackhi_pd(a, b); /* a0 b0 a2 b2, a1 b1 a3 b3 */
        _mm256_storeu_pd(dst + 2 * k, _mm256_permute2f128_pd(t0, t1, 0x20));
        _mm256_storeu_pd(dst + 2 * k + 4, _mm256_permute2f128_pd(t0, t1, 0x31));
    }
    for (; k < count; k++) {
        dst[2 * k] = src0[k];
        dst[2 * k + 1] = src1[k];
    }
}

__attribute__((target("arch=x86-64-v3"))) static void deliver_v3(float *dst0, float *dst1, const double *src,
                                                                  size_t count)
{
    size_t k = 0;
    for (; k + 4 <= count; k += 4) {
        __m256d lo = _mm256_loadu_pd(src + 2 * k), hi = _mm256_loadu_pd(src + 2 * k + 4);
        __m256d t0 = _mm256_permute2f128_pd(lo, hi, 0x20), t1 = _mm256_permute2f128_pd(lo, hi, 0x31);
        _mm_storeu_ps(dst1 + k, _mm256_cvtpd_ps(_mm256_unpackhi_pd(t0, t1)));
        _mm_storeu_ps(dst0 + k, _mm256_cvtpd_ps(_mm256_unpacklo_pd(t0, t1)));
    }
    for (; k < count; k++) {
        dst1[k] = (float)src[2 * k + 1];
        dst0[k] = (float)src[2 * k]; /* last: for an odd channel out, dst1 == dst0 */
    }
}

#endif /* RT_BQ_X86 */

/* Staging: frames of a channel pair as interleaved doubles, and back. */
static void stage_in_b(double *dst, const float *src0, const float *src1, size_t count)
{
    for (size_t k = 0; k < count; k++) {
        dst[2 * k] = src0[k];
        dst[2 * k + 1] = src1[k];
    }
}

static void deliver_b(float *dst0, float *dst1, const double *src, size_t count)
{
    for (size_t k = 0; k < count; k++) {
        dst1[k] = (float)src[2 * k + 1];
        dst0[k] = (float)src[2 * k]; /* last: for an odd channel out, dst1 == dst0 */
    }
}

static void stage_in(const rt_biquad *bq, double *dst, const float *src0, const float *src1, size_t count)
{
#ifdef RT_BQ_X86
    if (bq->level == 4) return stage_in_v4(dst, src0, src1, count);
    if (bq->level == 3) return stage_in_v3(dst, src0, src1, count);
#endif
    stage_in_b(dst, src0, src1, count);
}

static void deliver(const rt_biquad *bq, float *dst0, float *dst1, const double *src, size_t count)
{
#ifdef RT_BQ_X86
    if (bq->level == 4) return deliver_v4(dst0, dst1, src, count);
    if (bq->level == 3) return deliver_v3(dst0, dst1, src, count);
#endif
    deliver_b(dst0, dst1, src, count);
}

static uint32_t pass_phase(const rt_biquad *bq, const vpass *p)
{
    /* stage first + pos - pad processes absolute frame drained_at + i - off at iteration i */
    return (uint32_t)((bq->drained_at + p->first + RT_BQ_GRID - p->pad) % RT_BQ_GRID);
}

/* Cascade frames [x, x1) (counted from the last drain) of one pair through every pass,
 * in place in buf: buf[2 (f - x)] holds input frame f on entry and output frame
 * f - bq->depth on return.  Pass k works lag_k frames behind; its iterations before the
 * drain (negative) have nothing to do.  end: frames before the next drain. */
static void run_passes(const rt_biquad *bq, double *state, double *buf, ptrdiff_t x, ptrdiff_t x1, ptrdiff_t end)
{
    const pass_io io = {.buf = buf};
    for (uint32_t k = 0; k < bq->passes; k++) {
        const vpass *p = &bq->pass[k];
        const ptrdiff_t base = x - (ptrdiff_t)p->lag, lo = base > 0 ? base : 0, hi = x1 - (ptrdiff_t)p->lag;
        const uint32_t phase = pass_phase(bq, p);
        if (hi > lo)
            p->run(state + p->state_offset, p->coef, p->coef_prev, bq->switch_at, &io, lo, hi, base, end, phase, p->pad);
    }
}

/* Finish the frames in flight, as if no frame followed (coefficients about to change). */
static void drain(const rt_biquad *bq, double *state, double *buf)
{
    const ptrdiff_t end = (ptrdiff_t)(bq->frame - bq->drained_at);
    for (uint32_t pr = 0; pr < bq->pairs; pr++)
        for (ptrdiff_t x = end; x < end + (ptrdiff_t)bq->depth; x += RT_BQ_BLOCK) {
            ptrdiff_t x1 = x + RT_BQ_BLOCK < end + (ptrdiff_t)bq->depth ? x + RT_BQ_BLOCK : end + (ptrdiff_t)bq->depth;
            memset(buf, 0, sizeof(double) * 2u * (size_t)(x1 - x));
            run_passes(bq, state + bq->pair_state * pr, buf, x, x1, end);
        }
}

static void process(rt_biquad *bq, const float *const *in, float *const *out, uint32_t frames)
{
    const ptrdiff_t since = (ptrdiff_t)(bq->frame - bq->drained_at), n = frames, depth = bq->depth;
    double *buf = bq->buf;
    if (bq->pass[0].direct) {
        /* a lone 2-lane pass on the float channels; its last `depth` outputs as below */
        const vpass *p = &bq->pass[0];
        for (uint32_t pr = 0; pr < bq->pairs; pr++) {
            const uint32_t ch0 = 2 * pr, ch1 = ch0 + 1 < bq->channels ? ch0 + 1 : ch0;
            double *state = bq->state + bq->pair_state * pr;
            const pass_io io = {NULL, in[ch0], in[ch1], out[ch0], out[ch1], n};
            p->direct(state, p->coef, p->coef_prev, bq->switch_at, &io, since, since + n, since, PTRDIFF_MAX,
                      pass_phase(bq, p), p->pad);
            if (depth == 0) continue;
            memcpy(bq->spare, state, sizeof(double) * bq->pair_state);
            p->direct(bq->spare, p->coef, p->coef_prev, bq->switch_at, &io, since + n, since + n + depth, since,
                      PTRDIFF_MAX, pass_phase(bq, p), p->pad);
        }
        return;
    }
    for (uint32_t pr = 0; pr < bq->pairs; pr++) {
        const uint32_t ch0 = 2 * pr, ch1 = ch0 + 1 < bq->channels ? ch0 + 1 : ch0;
        double *state = bq->state + bq->pair_state * pr;
        /* The call's frames, RT_BQ_BLOCK at a time; a block's output is `depth` frames
         * behind its input (the first `depth` were delivered by the previous call). */
        for (ptrdiff_t a = 0; a < n; a += RT_BQ_BLOCK) {
            const ptrdiff_t count = n - a < RT_BQ_BLOCK ? n - a : RT_BQ_BLOCK;
            stage_in(bq, buf, in[ch0] + a, in[ch1] + a, (size_t)count);
            run_passes(bq, state, buf, since + a, since + a + count, PTRDIFF_MAX);
            const ptrdiff_t from = a - depth > 0 ? a - depth : 0, to = a + count - depth;
            if (to > from)
                deliver(bq, out[ch0] + from, out[ch1] + from, buf + 2 * (from - (a - depth)), (size_t)(to - from));
        }
        /* The last `depth` outputs need frames that have not arrived: run on with zero
         * input on a copy of the state, which leaves the real state mid-flight. */
        memcpy(bq->spare, state, sizeof(double) * bq->pair_state);
        for (ptrdiff_t a = n; a < n + depth; a += RT_BQ_BLOCK) {
            const ptrdiff_t count = n + depth - a < RT_BQ_BLOCK ? n + depth - a : RT_BQ_BLOCK;
            memset(buf, 0, sizeof(double) * 2u * (size_t)count);
            run_passes(bq, bq->spare, buf, since + a, since + a + count, PTRDIFF_MAX);
            const ptrdiff_t from = a - depth > 0 ? a - depth : 0, to = a + count - depth;
            if (to > from)
                deliver(bq, out[ch0] + from, out[ch1] + from, buf + 2 * (from - (a - depth)), (size_t)(to - from));
        }
    }
}

/* Lanes per vector for a cascade of `sections` at this level: short cascades are bound by
 * the chain of dependent operations through the groups, long ones by arithmetic. */
static uint32_t choose_lanes(uint32_t level, uint32_t sections)
{
    if (level == 0 || sections < RT_BQ_GROUPS_FROM) return 2;
    return level == 4 ? 8 : 4;
}

/* 64-byte aligned doubles (aligned_alloc wants a multiple of the alignment). */
static double *alloc_doubles(size_t count) { return aligned_alloc(64, (sizeof(double) * count + 63) / 64 * 64); }

/* Lay the cascade out in passes of the kind this level runs. */
static int setup(rt_biquad *bq)
{
    const uint32_t lanes = choose_lanes(bq->level, bq->sections), groups = lanes / 2;
    const pass_fn *table = passes_b_buf, *direct = passes_b_flt;
    /* the baseline has 16 vector registers on x86-64: 4 slots' history fits */
    uint32_t slots_max = 4;
#ifdef RT_BQ_X86
    if (bq->level != 0) {
        table = lanes == 8 ? passes_8_buf : (lanes == 4 ? passes_4_buf : passes_2_buf);
        direct = passes_2_flt;
        slots_max = RT_BQ_MAX_SLOTS;
    }
#endif
    const uint32_t per_pass = groups * slots_max;
    bq->passes = (bq->sections + per_pass - 1) / per_pass;
    bq->pass = calloc(bq->passes, sizeof *bq->pass);
    if (!bq->pass) return -1;
    const uint32_t even = (bq->sections + bq->passes - 1) / bq->passes;
    size_t offset = 0;
    uint32_t lag = 0;
    for (uint32_t k = 0; k < bq->passes; k++) {
        vpass *p = &bq->pass[k];
        p->first = k * even;
        p->stages = bq->sections - p->first < even ? bq->sections - p->first : even;
        p->lanes = lanes;
        p->slots = (p->stages + groups - 1) / groups;
        p->pad = groups * p->slots - p->stages;
        p->depth = groups * (p->slots + 1) - 2;
        p->lag = lag;
        lag += p->depth;
        p->state_offset = offset;
        offset += (size_t)(3 * p->slots + 2) * lanes;
        p->run = table[p->slots - 1];
        if (bq->passes == 1 && lanes == 2) p->direct = direct[p->slots - 1];
        const uint32_t row = coef_row(lanes);
        size_t coef_doubles = (size_t)5 * p->slots * row;
        p->coef = alloc_doubles(coef_doubles);
        p->coef_prev = alloc_doubles(coef_doubles);
        if (!p->coef || !p->coef_prev) return -1;
        /* identity everywhere, so that pad stages pass their input through unchanged */
        memset(p->coef, 0, sizeof(double) * coef_doubles);
        for (uint32_t j = 0; j < p->slots; j++)
            for (uint32_t l = 0; l < row; l++) p->coef[(size_t)5 * j * row + l] = 1.0;
    }
    bq->depth = lag;
    bq->pair_state = offset;
    bq->state = alloc_doubles(offset * bq->pairs);
    bq->spare = alloc_doubles(offset);
    bq->buf = alloc_doubles(2u * RT_BQ_BLOCK);
    return bq->state && bq->spare && bq->buf ? 0 : -1;
}


/* No coefficient change in flight. */
#define NO_SWITCH (PTRDIFF_MIN / 4)

/* Let the coefficients before the next change be the ones in use now. */
static void settle_coefficients(rt_biquad *bq)
{
    for (uint32_t k = 0; k < bq->passes; k++)
        memcpy(bq->pass[k].coef_prev, bq->pass[k].coef,
               sizeof(double) * 5u * bq->pass[k].slots * coef_row(bq->pass[k].lanes));
}

/* Put section s's coefficients where the path in use reads them. */
static void spread_coefficients(rt_biquad *bq, uint32_t s)
{
    const double *c = bq->coeffs + 5u * s;
    for (uint32_t k = 0; k < bq->passes; k++) {
        vpass *p = &bq->pass[k];
        if (s < p->first || s >= p->first + p->stages) continue;
        uint32_t pos = s - p->first + p->pad, g = pos / p->slots, j = pos % p->slots;
        const uint32_t row = coef_row(p->lanes);
        for (uint32_t q = 0; q < 5; q++)
            for (uint32_t ch = 0; ch < 2; ch++) p->coef[(5u * j + q) * row + lane_of(p->lanes, g, ch) % row] = c[q];
    }
}

rt_biquad *rt_biquad_create(uint32_t channels, uint32_t sections, double sample_rate)
{
    if (channels == 0 || sections == 0 || !(sample_rate > 0.0)) return NULL;
    rt_biquad *bq = calloc(1, sizeof *bq);
    if (!bq) return NULL;
    bq->channels = channels;
    bq->sections = sections;
    bq->pairs = (channels + 1) / 2;
    bq->sample_rate = sample_rate;
    bq->coeffs = malloc(sizeof(double) * 5u * sections);
#ifdef RT_BQ_X86
    int level = rt_cpu_level();
    bq->level = level >= 4 ? 4 : (level >= 3 ? 3 : 0);
#endif
    if (!bq->coeffs || setup(bq) != 0) {
        rt_biquad_destroy(bq);
        return NULL;
    }
    for (uint32_t s = 0; s < sections; s++) {
        memcpy(bq->coeffs + 5u * s, identity, sizeof identity);
        spread_coefficients(bq, s);
    }
    rt_biquad_reset(bq);
    return bq;
}

void rt_biquad_destroy(rt_biquad *bq)
{
    if (!bq) return;
    free(bq->coeffs);
    for (uint32_t k = 0; bq->pass && k < bq->passes; k++) {
        free(bq->pass[k].coef);
        free(bq->pass[k].coef_prev);
    }
    free(bq->pass);
    free(bq->state);
    free(bq->spare);
    free(bq->buf);
    free(bq);
}

void rt_biquad_reset(rt_biquad *bq)
{
    memset(bq->state, 0, sizeof(double) * bq->pair_state * bq->pairs);
    bq->frame = 0;
    bq->drained_at = 0;
    bq->switch_at = NO_SWITCH;
    settle_coefficients(bq);
}

int rt_biquad_set_section(rt_biquad *bq, uint32_t index, int type, double freq_hz,
                          double q, double gain_db, double shelf_slope)
{
    if (index >= bq->sections) return -1;
    double c[5];
    int rc = rt_biquad_design(type, bq->sample_rate, freq_hz, q, gain_db, shelf_slope, c);
    if (rc == 0) rt_biquad_set_coefficients(bq, index, c);
    return rc;
}

int rt_biquad_set_coefficients(rt_biquad *bq, uint32_t index, const double c[5])
{
    if (index >= bq->sections) return -1;
    for (int i = 0; i < 5; i++)
        if (!isfinite(c[i])) return -1;
    memcpy(bq->coeffs + 5u * index, c, 5 * sizeof(double));
    /* Frames are in flight: the stages still to process frames before this one must do so
     * with the old coefficients.  They keep them in coef_prev for frames before switch_at;
     * the new ones apply from here on (each lane switches when this frame reaches it). */
    const ptrdiff_t since = (ptrdiff_t)(bq->frame - bq->drained_at);
    if (since > 0 && bq->switch_at != since) {
        if (bq->switch_at + (ptrdiff_t)bq->depth > since) {
            /* the last change has not reached every stage yet: finish the frames in flight
             * (rare: changes less than `depth` frames apart) */
            drain(bq, bq->state, bq->buf);
            bq->drained_at = bq->frame;
            bq->switch_at = NO_SWITCH;
        } else {
            settle_coefficients(bq);
            bq->switch_at = since;
        }
    }
    spread_coefficients(bq, index);
    if (bq->frame == bq->drained_at) settle_coefficients(bq); /* nothing in flight */
    return 0;
}

uint32_t rt_biquad_process(rt_biquad *bq, const float *const *in, float *const *out, uint32_t frames)
{
    if (frames == 0) return 0;
    process(bq, in, out, frames);
    bq->frame += frames;
    return frames;
}

uint32_t rt_biquad_latency(const rt_biquad *bq) { return 0; }

uint32_t rt_biquad_state_size(const rt_biquad *bq) { return bq->channels * bq->sections * RT_BQ_HISTORY; }

/* Every stage's history once the frames so far have been processed by every stage:
 * x[M-1] x[M-2] y[M-1] y[M-2], M the frame count. */
void rt_biquad_read_state(const rt_biquad *bq, double *dest)
{
    const uint32_t S = bq->sections;
    /* a drained copy (not on the audio thread: this allocates) */
    double *drained = malloc(sizeof(double) * bq->pair_state * bq->pairs);
    double *scratch = malloc(sizeof(double) * 2u * RT_BQ_BLOCK);
    if (!drained || !scratch) {
        free(drained);
        free(scratch);
        memset(dest, 0, sizeof(double) * rt_biquad_state_size(bq));
        return;
    }
    memcpy(drained, bq->state, sizeof(double) * bq->pair_state * bq->pairs);
    drain(bq, drained, scratch);
    for (uint32_t ch = 0; ch < bq->channels; ch++) {
        const uint32_t pr = ch / 2, c = ch % 2;
        for (uint32_t s = 0; s < S; s++) {
            double *d = dest + ((size_t)ch * S + s) * RT_BQ_HISTORY;
            const vpass *p = &bq->pass[0];
            while (s >= p->first + p->stages) p++;
            const double *st = drained + bq->pair_state * pr + p->state_offset;
            const uint32_t pos = s - p->first + p->pad, g = pos / p->slots, j = pos % p->slots, G = p->slots;
            const uint32_t lane = lane_of(p->lanes, g, c), W = p->lanes;
            d[0] = j ? st[W * (j - 1) + lane] : st[W * 3 * G + lane];
            d[1] = j ? st[W * (G + j - 1) + lane] : st[W * (3 * G + 1) + lane];
            d[2] = st[W * j + lane];
            d[3] = st[W * (G + j) + lane];
        }
    }
    free(drained);
    free(scratch);
}
