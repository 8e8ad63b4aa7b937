#include "loudness.h"
#include "cpu_level.h"
#include "rt_common.h"
#include "true_peak.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define KB_X86 1
#endif

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi" /* 32-byte vectors in static helpers only */
#endif

/* ---- K-weighting (BS.1770-4 Annex 1), as analog prototypes ------------------------
 * Stage 1, a high shelf: H(s) = (Vh s^2 + Vb (w0/Q) s + w0^2) / (s^2 + (w0/Q) s + w0^2),
 * unity at DC, Vh = 10^(G/20) at high frequencies, Vb = Vh^VB_EXP in the transition.
 * Stage 2, the RLB high-pass: H(s) = g s^2 / (s^2 + (w0/Q) s + w0^2).
 * Both go through the bilinear transform with w0 pre-warped (K = tan(pi f0 / fs)).
 * The parameters are the ones that reproduce BS.1770-4's 48 kHz table (as derived for
 * libebur128); BS.1770's stage-2 numerator is exactly (1, -2, 1) at 48 kHz, i.e. its
 * passband gain is g = 1 + K48/Q + K48^2 (+0.043 dB), so that gain is kept at every rate
 * (the -0.691 dB calibration constant assumes it). */
#define KW_SHELF_F0_HZ 1681.974450955533
#define KW_SHELF_GAIN_DB 3.999843853973347
#define KW_SHELF_Q 0.7071752369554196
#define KW_SHELF_VB_EXP 0.4996667741545416
#define KW_HP_F0_HZ 38.13547087602444
#define KW_HP_Q 0.5003270373238773

#define LOUDNESS_OFFSET_DB (-0.691)
#define ABS_GATE_LUFS (-70.0)
#define INTEGRATED_REL_GATE_LU (-10.0)
#define LRA_REL_GATE_LU (-20.0)
#define LRA_LOW_PERCENTILE 0.10
#define LRA_HIGH_PERCENTILE 0.95

#define TICKS_PER_HOP 10u
#define MOMENTARY_HOPS 4u
#define SHORT_TERM_HOPS 30u
#define RING_TICKS (SHORT_TERM_HOPS * TICKS_PER_HOP)
#define MOMENTARY_TICKS (MOMENTARY_HOPS * TICKS_PER_HOP)

/* Histogram of gating-block loudness: bin 0 is the loudest, [HIST_TOP - 0.01, HIST_TOP)
 * plus everything louder; bin HIST_BINS - 1 ends at the absolute gate. */
#define HIST_TOP_LUFS 40.0
#define HIST_BINS_PER_LU 100.0
#define HIST_BINS 11000
#define FENWICK_TOP_STEP 8192 /* highest power of two <= HIST_BINS */

#define SAMPLE_RATE_MIN 8000.0
#define SAMPLE_RATE_MAX 384000.0
#define WEIGHT_MAX 16.0

_Static_assert(RT_LOUDNESS_MAX_CHANNELS == 64, "the cdef spells the per-channel arrays as [64]");

/* What process() publishes: energies and linear peaks (all 64-bit words). */
typedef struct {
    uint64_t frames, nonfinite_ticks;
    double momentary, short_term, integrated, integrated_gate, lra_lu, max_momentary, max_short_term;
    double sample_peak[RT_LOUDNESS_MAX_CHANNELS];
    double true_peak[RT_LOUDNESS_MAX_CHANNELS];
} raw_values;
#define RAW_SCALAR_WORDS 9u
#define PUBLISHED_WORDS (sizeof(raw_values) / sizeof(uint64_t))
/* Word view of the raw values (type punning through a union is defined in C11). */
typedef union {
    raw_values v;
    uint64_t w[PUBLISHED_WORDS];
} raw_words;
_Static_assert(offsetof(raw_values, sample_peak) == RAW_SCALAR_WORDS * sizeof(uint64_t), "layout");
_Static_assert(sizeof(raw_values) == (RAW_SCALAR_WORDS + 2 * RT_LOUDNESS_MAX_CHANNELS) * sizeof(uint64_t), "layout");

/* Software prefetch distance for the input (hardware prefetching was measured to leave
 * the K-weighting waiting on memory for whole files: 1.8 vs 1.0 ns per sample). */
#define PREFETCH_BYTES 2048u

typedef struct {
    uint64_t *count;    /* blocks per bin */
    double *energy;     /* sum of the blocks' energies per bin */
    uint64_t *fcount;   /* Fenwick trees over the two, 1-based, HIST_BINS + 1 */
    double *fenergy;
} histogram;

enum { KW_X1, KW_X2, KW_Y1, KW_Y2, KW_Z1, KW_Z2, KW_STATE };

/* The block form of the K-filter (the vector paths, see kb_design): blocks of KB_FRAMES
 * frames aligned to the start of each tick, two channels interleaved (pairs of doubles:
 * frame f, channel c at 2 f + c).  Per channel pair (KP_STATE doubles):
 *   KP_S    the block state: z[-2], z[-1], v[-2], v[-1] (pairs), v the shelf's output
 *   KP_XL   the last input x[-1] (pair), for the next first difference
 *   KP_E    e[-2], e[-1] (pairs), then the frames of the current block received so far
 *           (up to KB_FRAMES - 1), e = x[n] - x[n-1]
 *   KP_ACC  the sums of squares of the current tick, lane 2 t + c for frame t of a block
 *           (KB_LANES doubles, the last four stay 0) */
#define KB_FRAMES 10u
#define KB_HIST 2u    /* frames of e before a block that its outputs read */
#define KB_CAP 512u   /* frames converted per pass into the scratch (a whole tick below 51.2 kHz) */
#define KB_ROWS (4u + KB_HIST + KB_FRAMES) /* coefficient rows: the 4 state values, then e[-2..9] */
#define KB_LANES (2u * KB_FRAMES + 4u)    /* per row: z of frames 0..9, then v[8], v[9] (pairs) */
#define KB_TAIL (KB_ROWS * KB_LANES)      /* then per r = 1..9, KB_ROWS rows of 8: the state after r frames */
#define KB_COEFS (KB_TAIL + (KB_FRAMES - 1) * KB_ROWS * 8)
enum { KP_S = 0, KP_XL = 8, KP_E = 10, KP_ACC = KP_E + 2 * (KB_HIST + KB_FRAMES - 1), KP_STATE = KP_ACC + KB_LANES };

/* Converts n frames of channels a and b (b NULL: zeros) to first differences, pairs of
 * doubles at e (xl: the pair before, updated); mx[c] = the largest bit pattern of |x| of
 * each channel (NaN above +inf above any finite value). */
typedef void (*kb_convert_fn)(const float *a, const float *b, uint32_t n, double *e, double *xl, uint32_t mx[2]);
/* Filters nb whole blocks whose first frame is at e (e[-4..-1]: the two frames before),
 * then, if tail > 0, the tick's last `tail` frames (e zero after them).  flags: KB_FLUSH,
 * the first frames of a tick (the state is flushed first, rt_flush_tiny); KB_END, the
 * tick ends here (the lane sums of each channel go to sums[c], in a fixed order, and are
 * cleared).  Updates s (KP_S) and acc (KP_ACC). */
typedef void (*kb_blocks_fn)(const double *kb, const double *e, uint32_t nb, uint32_t tail, uint32_t flags,
                             double *s, double *acc, double *sums);
#define KB_FLUSH 1u
#define KB_END 2u

struct rt_loudness {
    uint32_t channels;
    uint32_t hop;                   /* frames per 100 ms */
    uint32_t tick_frames[TICKS_PER_HOP];
    double kw[10];                  /* shelf b0 b1 b2 a1 a2, high-pass b0 b1 b2 a1 a2 */
    double kn[7];                   /* normalized: b1/b0 b2/b0 a1 a2 (shelf), a1 a2 (high-pass), (b0 g0)^2 */
    double *weight;                 /* per channel */
    uint32_t *order;                /* channels with weight > 0 first, then the others */
    uint32_t weighted;              /* how many have weight > 0 */
    double *state;                  /* per channel, KW_STATE doubles (level 0) */
    double *acc;                    /* per channel: sum of squares in the current tick */
    float *peak;                    /* per channel: largest |sample| */
    uint32_t *segmax;               /* per channel: largest |sample| bits in the current segment */

    /* vector paths (level 3, 4): block form, see kb_design */
    int level;                      /* rt_cpu_level() at create */
    uint32_t pairs;                 /* weighted channels two by two (the odd one with zeros) */
    double *kb;                     /* KB_COEFS coefficients (kb_design), 64-byte aligned */
    double *pair;                   /* per pair, KP_STATE doubles */
    double *xs;                     /* scratch: 2 * (KB_HIST + KB_FRAMES + KB_CAP) doubles */
    kb_convert_fn convert;
    kb_blocks_fn filter;
    uint32_t kb_tick_start;         /* no block of the current tick computed yet */

    /* time base */
    uint32_t tick;                  /* index of the current tick in its hop */
    uint32_t tick_left;             /* frames still to come in the current tick */
    uint64_t ticks;                 /* completed ticks */
    uint64_t frames;
    uint64_t nonfinite_ticks;
    uint32_t nonfinite_input;       /* a non-finite sample was seen (any channel) */

    /* tick energies (weighted sums of squares) of the last 3 s, oldest at ring_pos; every
     * entry is written twice (at i and i + RING_TICKS), so the window is contiguous */
    double ring[2 * RING_TICKS];
    uint32_t ring_pos;

    /* mean-square energies (sum over channels of G * mean square) */
    double momentary, short_term, max_momentary, max_short_term;
    double integrated, integrated_gate, lra_lu;

    histogram blocks;               /* 400 ms gating blocks */
    histogram short_blocks;         /* 3 s blocks for LRA */

    rt_true_peak *true_peak;

    /* Published values: a sequence lock (odd while a write is in progress). */
    raw_words scratch;
    uint32_t seq;
    uint64_t published[PUBLISHED_WORDS];
};

/* ---- small helpers ---------------------------------------------------------------- */

static double lufs_of(double energy)
{
    return energy > 0.0 ? LOUDNESS_OFFSET_DB + 10.0 * log10(energy) : -INFINITY;
}

static double db_of(double linear) { return linear > 0.0 ? 20.0 * log10(linear) : -INFINITY; }

/* Bin of a loudness above the absolute gate (clamped into the histogram). */
static uint32_t bin_of(double lufs)
{
    double d = (HIST_TOP_LUFS - lufs) * HIST_BINS_PER_LU;
    if (!(d > 0.0)) return 0;
    if (d >= (double)(HIST_BINS - 1)) return HIST_BINS - 1;
    return (uint32_t)d;
}

/* ---- histogram --------------------------------------------------------------------- */

static int histogram_alloc(histogram *h)
{
    h->count = calloc(HIST_BINS, sizeof(uint64_t));
    h->energy = calloc(HIST_BINS, sizeof(double));
    h->fcount = calloc(HIST_BINS + 1, sizeof(uint64_t));
    h->fenergy = calloc(HIST_BINS + 1, sizeof(double));
    return h->count && h->energy && h->fcount && h->fenergy ? 0 : -1;
}

static void histogram_free(histogram *h)
{
    free(h->count);
    free(h->energy);
    free(h->fcount);
    free(h->fenergy);
}

static void histogram_clear(histogram *h)
{
    memset(h->count, 0, HIST_BINS * sizeof(uint64_t));
    memset(h->energy, 0, HIST_BINS * sizeof(double));
    memset(h->fcount, 0, (HIST_BINS + 1) * sizeof(uint64_t));
    memset(h->fenergy, 0, (HIST_BINS + 1) * sizeof(double));
}

/* Adds a block if it is above the absolute gate; returns 1 if it was added. */
static int histogram_add(histogram *h, double energy)
{
    double lufs = lufs_of(energy);
    if (!(lufs > ABS_GATE_LUFS)) return 0;
    uint32_t b = bin_of(lufs);
    h->count[b] += 1;
    h->energy[b] += energy;
    for (uint32_t i = b + 1; i <= HIST_BINS; i += i & (~i + 1)) {
        h->fcount[i] += 1;
        h->fenergy[i] += energy;
    }
    return 1;
}

/* Count and energy of bins [0, k): every block louder than bin k. */
static void histogram_prefix(const histogram *h, uint32_t k, uint64_t *count, double *energy)
{
    uint64_t c = 0;
    double e = 0.0;
    for (uint32_t i = k; i > 0; i -= i & (~i + 1)) {
        c += h->fcount[i];
        e += h->fenergy[i];
    }
    *count = c;
    *energy = e;
}

/* The blocks that pass a relative gate `gate_lu` below the mean of all blocks held.
 * Returns their count; *energy is their energy sum, *gate the gate's energy. */
static uint64_t histogram_gated(const histogram *h, double gate_lu, double *energy, double *gate)
{
    uint64_t n_all, n;
    double e_all, e;
    histogram_prefix(h, HIST_BINS, &n_all, &e_all);
    if (n_all == 0) {
        *energy = 0.0;
        *gate = 0.0;
        return 0;
    }
    double threshold = e_all / (double)n_all * pow(10.0, gate_lu / 10.0);
    double threshold_lufs = lufs_of(threshold);
    uint32_t b = threshold_lufs > ABS_GATE_LUFS ? bin_of(threshold_lufs) : HIST_BINS;
    histogram_prefix(h, b, &n, &e);
    /* The bin holding the threshold: in when its blocks are, on average, above it (exact
     * whenever its blocks are equal, e.g. steady tones). */
    if (b < HIST_BINS && h->count[b] > 0 && h->energy[b] > threshold * (double)h->count[b]) {
        n += h->count[b];
        e += h->energy[b];
    }
    *energy = e;
    *gate = threshold;
    return n;
}

/* Bin holding the block of rank r (0 = loudest); requires r < the number of blocks. */
static uint32_t histogram_find(const histogram *h, uint64_t r)
{
    uint32_t pos = 0;
    for (uint32_t step = FENWICK_TOP_STEP; step > 0; step >>= 1) {
        if (pos + step <= HIST_BINS && h->fcount[pos + step] <= r) {
            pos += step;
            r -= h->fcount[pos];
        }
    }
    return pos;
}

/* ---- K-weighting ------------------------------------------------------------------- */

int rt_loudness_k_weighting(double sample_rate, double c[10])
{
    if (!(sample_rate >= SAMPLE_RATE_MIN && sample_rate <= SAMPLE_RATE_MAX)) return -1;

    double K = tan(RT_PI * KW_SHELF_F0_HZ / sample_rate);
    double Vh = pow(10.0, KW_SHELF_GAIN_DB / 20.0);
    double Vb = pow(Vh, KW_SHELF_VB_EXP);
    double a0 = 1.0 + K / KW_SHELF_Q + K * K;
    c[0] = (Vh + Vb * K / KW_SHELF_Q + K * K) / a0;
    c[1] = 2.0 * (K * K - Vh) / a0;
    c[2] = (Vh - Vb * K / KW_SHELF_Q + K * K) / a0;
    c[3] = 2.0 * (K * K - 1.0) / a0;
    c[4] = (1.0 - K / KW_SHELF_Q + K * K) / a0;

    double K48 = tan(RT_PI * KW_HP_F0_HZ / 48000.0);
    double g = 1.0 + K48 / KW_HP_Q + K48 * K48;
    K = tan(RT_PI * KW_HP_F0_HZ / sample_rate);
    a0 = 1.0 + K / KW_HP_Q + K * K;
    c[5] = g / a0;
    c[6] = -2.0 * g / a0;
    c[7] = g / a0;
    c[8] = 2.0 * (K * K - 1.0) / a0;
    c[9] = (1.0 - K / KW_HP_Q + K * K) / a0;
    return 0;
}

/* ---- K-weighting in blocks (the vector paths) ------------------------------------
 * The same two sections as weigh(), rearranged so that no output waits for the one
 * before it.  The input first goes through the first difference e = x[n] - x[n-1] (one of
 * the high-pass's two zeros at DC): then the shelf gives v = (1 - q) y (q the unit
 * delay, y the shelf output of weigh()) and the high-pass's rest gives z = (v - v[-1]) -
 * c1 z[-1] - c2 z[-2], the same z.  Unrolled over the ten frames t = 0..9 of a block,
 *     z[t] = A[t] . (v[-1], v[-2], z[-1], z[-2]) + sum_{j=-2..t} B[t][j] e[j],
 * and likewise v[8], v[9], the state of the next block.  A and B are the sections' own
 * responses to their state and inputs (computed once, in long double).  So each output
 * is one fixed sum of products, a vector holds several frames of both channels, and only
 * four values per channel go from block to block: one dependent chain of a shuffle and
 * three vector operations per ten frames, instead of a multiply-add per frame.  (Ten:
 * shorter blocks wait on that chain, longer ones spend more on the growing sums.)
 * Why this form: it keeps each section's own state, and the input reaches the recursions
 * without its DC.  The shorter alternative, z[t] from z[-4..-1] and x[-4..t] (the two
 * sections as one fourth-order direct form), is ill-conditioned here: with the high-pass
 * poles at 0.995 a DC offset costs it 1e-8 of the energy (7e-8 LU); this form stays
 * within 1e-11 of a long-double cascade on DC-heavy material (tests/test_loudness_paths.py).
 * Arithmetic, per lane (both vector widths, so the two give the same bits): frames 0..3:
 * u = B[-2] e[-2], u += B[j] e[j] for j = -1..3, then u += A_z2 z[-2], A_z1 z[-1],
 * A_v2 v[-2], A_v1 v[-1], all fused multiply-adds; frames 4..7: the same with j up to 7;
 * frames 8, 9 and v[8], v[9] (which the next block waits for): j up to 9, then
 * (u + A_z2 z[-2] + A_v2 v[-2]) + (A_z1 z[-1] + A_v1 v[-1]); the squares of frames 0..9
 * are added to the lane sums (fused).  Terms with j > t have B = 0 and add nothing. */

static void kb_design(const double kn[7], double *kb)
{
    typedef long double ld;
    const ld p1 = kn[0], p2 = kn[1], a1 = kn[2], a2 = kn[3], c1 = kn[4], c2 = kn[5];
    /* every quantity as its coefficients on the basis v[-1], v[-2], z[-1], z[-2], e[-2..9] */
    ld e[KB_HIST + KB_FRAMES][KB_ROWS] = {{0}}, v[KB_HIST + KB_FRAMES][KB_ROWS] = {{0}};
    ld z[KB_HIST + KB_FRAMES][KB_ROWS] = {{0}};
    for (uint32_t f = 0; f < KB_HIST + KB_FRAMES; f++) e[f][4 + f] = 1.0L; /* frame f - 2 */
    v[1][0] = v[0][1] = z[1][2] = z[0][3] = 1.0L;
    for (uint32_t f = KB_HIST; f < KB_HIST + KB_FRAMES; f++)
        for (uint32_t k = 0; k < KB_ROWS; k++) {
            v[f][k] = e[f][k] + p1 * e[f - 1][k] + p2 * e[f - 2][k] - a2 * v[f - 2][k] - a1 * v[f - 1][k];
            z[f][k] = (v[f][k] - v[f - 1][k]) - c2 * z[f - 2][k] - c1 * z[f - 1][k];
        }
    /* lane 2 s + c of a row: slot s = frame s (z) for s < 10, then v[8], v[9] */
    for (uint32_t k = 0; k < KB_ROWS; k++)
        for (uint32_t c = 0; c < 2; c++) {
            for (uint32_t t = 0; t < KB_FRAMES; t++) kb[k * KB_LANES + 2 * t + c] = (double)z[KB_HIST + t][k];
            kb[k * KB_LANES + 2 * KB_FRAMES + c] = (double)v[KB_HIST + KB_FRAMES - 2][k];
            kb[k * KB_LANES + 2 * KB_FRAMES + 2 + c] = (double)v[KB_HIST + KB_FRAMES - 1][k];
            /* the state after the first r frames: z[r-2], z[r-1], v[r-2], v[r-1] */
            for (uint32_t r = 1; r < KB_FRAMES; r++) {
                double *row = kb + KB_TAIL + ((r - 1) * KB_ROWS + k) * 8;
                row[c] = (double)z[KB_HIST + r - 2][k];
                row[2 + c] = (double)z[KB_HIST + r - 1][k];
                row[4 + c] = (double)v[KB_HIST + r - 2][k];
                row[6 + c] = (double)v[KB_HIST + r - 1][k];
            }
        }
}

#ifdef KB_X86
/* The frames i..n-1 the vector loop of kb_convert_v3/_v4 left, one at a time, then the
 * carried sample pair (xl) and the two channels' max |x| bit patterns (mx) stored:
 * prev holds the pair before frame i, ma/mb the maxima so far. */
static inline __attribute__((always_inline)) void kb_convert_tail(const float *a, const float *b, uint32_t i,
                                                                  uint32_t n, double *e, double prev[2],
                                                                  uint32_t ma, uint32_t mb, double *xl,
                                                                  uint32_t mx[2])
{
    for (; i < n; i++) {
        const float va = a[i], vb = b ? b[i] : 0.0f;
        uint32_t ba, bb;
        memcpy(&ba, &va, 4);
        memcpy(&bb, &vb, 4);
        ma = (ba & 0x7fffffffu) > ma ? ba & 0x7fffffffu : ma;
        mb = (bb & 0x7fffffffu) > mb ? bb & 0x7fffffffu : mb;
        e[2 * i] = (double)va - prev[0];
        e[2 * i + 1] = (double)vb - prev[1];
        prev[0] = va;
        prev[1] = vb;
    }
    _mm_storeu_pd(xl, _mm_loadu_pd(prev)); /* one store: the next call loads it as one */
    mx[0] = ma;
    mx[1] = mb;
}

/* x86-64-v4: three vectors hold frames 0..3, 4..7, then 8, 9 and v[8], v[9] of a block,
 * both channels (8 doubles). */
__attribute__((target("arch=x86-64-v4")))
static void kb_convert_v4(const float *a, const float *b, uint32_t n, double *e, double *xl, uint32_t mx[2])
{
    const __m512i order = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i magnitude = _mm512_set1_epi32(0x7fffffff);
    __m512i m = _mm512_setzero_si512();
    __m512d last = _mm512_broadcast_f64x2(_mm_loadu_pd(xl)); /* lanes 6, 7: x[-1] */
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        if ((i & 15u) == 0) { /* the input usually streams from memory: ask for it 2 KiB early */
            __builtin_prefetch((const void *)((uintptr_t)(a + i) + PREFETCH_BYTES));
            if (b) __builtin_prefetch((const void *)((uintptr_t)(b + i) + PREFETCH_BYTES));
        }
        __m512 fa = _mm512_castps256_ps512(_mm256_loadu_ps(a + i));
        __m512 fb = b ? _mm512_castps256_ps512(_mm256_loadu_ps(b + i)) : _mm512_setzero_ps();
        __m512 f = _mm512_permutex2var_ps(fa, order, fb); /* a0 b0 a1 b1 .. a7 b7 */
        m = _mm512_max_epi32(m, _mm512_and_si512(_mm512_castps_si512(f), magnitude));
        const __m512d x0 = _mm512_cvtps_pd(_mm512_castps512_ps256(f)), x1 = _mm512_cvtps_pd(_mm512_extractf32x8_ps(f, 1));
        /* x[n - 1]: the pairs shifted by one frame, the one before coming from `last` */
        const __m512d y0 = _mm512_castsi512_pd(_mm512_alignr_epi64(_mm512_castpd_si512(x0), _mm512_castpd_si512(last), 6));
        const __m512d y1 = _mm512_castsi512_pd(_mm512_alignr_epi64(_mm512_castpd_si512(x1), _mm512_castpd_si512(x0), 6));
        _mm512_storeu_pd(e + 2 * i, _mm512_sub_pd(x0, y0));
        _mm512_storeu_pd(e + 2 * i + 8, _mm512_sub_pd(x1, y1));
        last = x1;
    }
    double prev[2];
    _mm_storeu_pd(prev, _mm512_extractf64x2_pd(last, 3));
    uint32_t ma = (uint32_t)_mm512_reduce_max_epi32(_mm512_maskz_mov_epi32(0x5555, m)); /* even lanes: a */
    uint32_t mb = (uint32_t)_mm512_reduce_max_epi32(_mm512_maskz_mov_epi32(0xaaaa, m));
    kb_convert_tail(a, b, i, n, e, prev, ma, mb, xl, mx);
}

/* A pair of doubles from memory in every pair of lanes: one load (vbroadcastf64x2), written
 * out because GCC otherwise keeps the values of one block for the next in registers and
 * broadcasts them with shuffles, which compete with the filter's for one port. */
__attribute__((target("arch=x86-64-v4"), always_inline))
static inline __m512d kb_pair8(const double *p)
{
    __m512d r;
    __asm__("vbroadcastf64x2 %1, %0" : "=v"(r) : "m"(*(const __m128d *)p));
    return r;
}

/* The state of both channels, each value in every pair of lanes. */
#define KB_STATE4(st, z2, z1, v2, v1)                                                   \
    const __m512d z2 = _mm512_shuffle_f64x2(st, st, 0x00), z1 = _mm512_shuffle_f64x2(st, st, 0x55); \
    const __m512d v2 = _mm512_shuffle_f64x2(st, st, 0xaa), v1 = _mm512_shuffle_f64x2(st, st, 0xff)
#define KB_ROW8(k, w) _mm512_load_pd(kb + (k) * KB_LANES + 8 * (w))

/* One block (e: its first frame): z of frames 0..3 in u[0], 4..7 in u[1], 8 9 v8 v9 in u[2]. */
__attribute__((target("arch=x86-64-v4"), always_inline))
static inline void kb_block_v4(const double *restrict kb, const double *restrict e, __m512d st, __m512d u[3])
{
    __m512d ej = kb_pair8(e - 4);
    __m512d u0 = _mm512_mul_pd(KB_ROW8(4, 0), ej), u1 = _mm512_mul_pd(KB_ROW8(4, 1), ej);
    __m512d u2 = _mm512_mul_pd(KB_ROW8(4, 2), ej);
    #pragma GCC unroll 16
    for (uint32_t k = 5; k < KB_ROWS; k++) {
        ej = kb_pair8(e + 2 * ((int)k - 6));
        if (k < 10) u0 = _mm512_fmadd_pd(KB_ROW8(k, 0), ej, u0); /* frames 0..3 read e[-2..3] */
        if (k < 14) u1 = _mm512_fmadd_pd(KB_ROW8(k, 1), ej, u1); /* frames 4..7 read e[-2..7] */
        u2 = _mm512_fmadd_pd(KB_ROW8(k, 2), ej, u2);
    }
    KB_STATE4(st, z2, z1, v2, v1);
    u[0] = _mm512_fmadd_pd(KB_ROW8(0, 0), v1, _mm512_fmadd_pd(KB_ROW8(1, 0), v2,
           _mm512_fmadd_pd(KB_ROW8(2, 0), z1, _mm512_fmadd_pd(KB_ROW8(3, 0), z2, u0))));
    u[1] = _mm512_fmadd_pd(KB_ROW8(0, 1), v1, _mm512_fmadd_pd(KB_ROW8(1, 1), v2,
           _mm512_fmadd_pd(KB_ROW8(2, 1), z1, _mm512_fmadd_pd(KB_ROW8(3, 1), z2, u1))));
    u[2] = _mm512_add_pd(_mm512_fmadd_pd(KB_ROW8(1, 2), v2, _mm512_fmadd_pd(KB_ROW8(3, 2), z2, u2)),
                         _mm512_fmadd_pd(KB_ROW8(0, 2), v1, _mm512_mul_pd(KB_ROW8(2, 2), z1)));
}

__attribute__((target("arch=x86-64-v4")))
static void kb_blocks_v4(const double *restrict kb, const double *restrict e, uint32_t nb, uint32_t tail,
                         uint32_t flags, double *restrict s, double *restrict acc, double *restrict sums)
{
    __m512d st = _mm512_loadu_pd(s), s0 = _mm512_loadu_pd(acc), s1 = _mm512_loadu_pd(acc + 8);
    __m512d s2 = _mm512_loadu_pd(acc + 16), u[3];
    if (flags & KB_FLUSH) {
        const __mmask8 tiny = _mm512_cmp_pd_mask(_mm512_abs_pd(st), _mm512_set1_pd(RT_STATE_FLOOR), _CMP_LT_OQ);
        st = _mm512_mask_mov_pd(st, tiny, _mm512_setzero_pd());
    }
    for (uint32_t blk = 0; blk < nb; blk++, e += 2 * KB_FRAMES) {
        kb_block_v4(kb, e, st, u);
        s0 = _mm512_fmadd_pd(u[0], u[0], s0);
        s1 = _mm512_fmadd_pd(u[1], u[1], s1);
        s2 = _mm512_mask3_fmadd_pd(u[2], u[2], s2, 0x0f); /* frames 8, 9 only */
        st = u[2];
    }
    if (tail) {
        /* the outputs of the first `tail` frames as in a block (the zeros after them change
         * none), then the state after them from its own rows */
        kb_block_v4(kb, e, st, u);
        const uint32_t r0 = tail < 4 ? tail : 4, r1 = tail < 4 ? 0 : tail - 4 < 4 ? tail - 4 : 4;
        const uint32_t r2 = tail < 8 ? 0 : tail - 8;
        s0 = _mm512_mask3_fmadd_pd(u[0], u[0], s0, (__mmask8)((1u << (2 * r0)) - 1));
        s1 = _mm512_mask3_fmadd_pd(u[1], u[1], s1, (__mmask8)((1u << (2 * r1)) - 1));
        s2 = _mm512_mask3_fmadd_pd(u[2], u[2], s2, (__mmask8)((1u << (2 * r2)) - 1));
        const double *t = kb + KB_TAIL + (tail - 1) * KB_ROWS * 8;
        __m512d w = _mm512_mul_pd(_mm512_load_pd(t + 4 * 8), kb_pair8(e - 4));
        for (uint32_t k = 5; k < 6 + tail; k++) w = _mm512_fmadd_pd(_mm512_load_pd(t + k * 8), kb_pair8(e + 2 * ((int)k - 6)), w);
        KB_STATE4(st, z2, z1, v2, v1);
        st = _mm512_add_pd(_mm512_fmadd_pd(_mm512_load_pd(t + 8), v2, _mm512_fmadd_pd(_mm512_load_pd(t + 24), z2, w)),
                           _mm512_fmadd_pd(_mm512_load_pd(t), v1, _mm512_mul_pd(_mm512_load_pd(t + 16), z1)));
    }
    if (flags & KB_END) {
        /* per channel: ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)), plus (l8 + l9) */
        const __m512d t4 = _mm512_add_pd(s0, s1);
        const __m256d t2 = _mm256_add_pd(_mm512_castpd512_pd256(t4), _mm512_extractf64x4_pd(t4, 1));
        const __m128d t1 = _mm_add_pd(_mm256_castpd256_pd128(t2), _mm256_extractf128_pd(t2, 1));
        const __m256d l89 = _mm512_castpd512_pd256(s2);
        const __m128d tail89 = _mm_add_pd(_mm256_castpd256_pd128(l89), _mm256_extractf128_pd(l89, 1));
        _mm_storeu_pd(sums, _mm_add_pd(t1, tail89));
        s0 = s1 = s2 = _mm512_setzero_pd();
    }
    _mm512_storeu_pd(s, st);
    _mm512_storeu_pd(acc, s0);
    _mm512_storeu_pd(acc + 8, s1);
    _mm512_storeu_pd(acc + 16, s2);
}
#undef KB_ROW8

/* x86-64-v3: six vectors of two slots each (frames 0 1, .., 8 9, then v[8] v[9]); the
 * same operations per lane as kb_blocks_v4. */
__attribute__((target("arch=x86-64-v3")))
static void kb_convert_v3(const float *a, const float *b, uint32_t n, double *e, double *xl, uint32_t mx[2])
{
    const __m256i magnitude = _mm256_set1_epi32(0x7fffffff);
    __m256i ma8 = _mm256_setzero_si256(), mb8 = ma8;
    __m256d last = _mm256_broadcast_pd((const __m128d *)xl); /* high half: x[-1] */
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        if ((i & 15u) == 0) {
            __builtin_prefetch((const void *)((uintptr_t)(a + i) + PREFETCH_BYTES));
            if (b) __builtin_prefetch((const void *)((uintptr_t)(b + i) + PREFETCH_BYTES));
        }
        const __m256 fa = _mm256_loadu_ps(a + i), fb = b ? _mm256_loadu_ps(b + i) : _mm256_setzero_ps();
        ma8 = _mm256_max_epi32(ma8, _mm256_and_si256(_mm256_castps_si256(fa), magnitude));
        mb8 = _mm256_max_epi32(mb8, _mm256_and_si256(_mm256_castps_si256(fb), magnitude));
        const __m256 lo = _mm256_unpacklo_ps(fa, fb), hi = _mm256_unpackhi_ps(fa, fb); /* a0 b0 a1 b1 | a4 b4 a5 b5 */
        const __m256d x0 = _mm256_cvtps_pd(_mm256_castps256_ps128(lo)), x1 = _mm256_cvtps_pd(_mm256_castps256_ps128(hi));
        const __m256d x2 = _mm256_cvtps_pd(_mm256_extractf128_ps(lo, 1)), x3 = _mm256_cvtps_pd(_mm256_extractf128_ps(hi, 1));
        _mm256_storeu_pd(e + 2 * i, _mm256_sub_pd(x0, _mm256_permute2f128_pd(x0, last, 0x03)));
        _mm256_storeu_pd(e + 2 * i + 4, _mm256_sub_pd(x1, _mm256_permute2f128_pd(x1, x0, 0x03)));
        _mm256_storeu_pd(e + 2 * i + 8, _mm256_sub_pd(x2, _mm256_permute2f128_pd(x2, x1, 0x03)));
        _mm256_storeu_pd(e + 2 * i + 12, _mm256_sub_pd(x3, _mm256_permute2f128_pd(x3, x2, 0x03)));
        last = x3;
    }
    double prev[2];
    _mm_storeu_pd(prev, _mm256_extractf128_pd(last, 1));
    uint32_t la[8], lb[8];
    _mm256_storeu_si256((__m256i *)la, ma8);
    _mm256_storeu_si256((__m256i *)lb, mb8);
    uint32_t ma = 0, mb = 0;
    for (uint32_t k = 0; k < 8; k++) {
        ma = la[k] > ma ? la[k] : ma;
        mb = lb[k] > mb ? lb[k] : mb;
    }
    kb_convert_tail(a, b, i, n, e, prev, ma, mb, xl, mx);
}

#define KB_ROW4(k, w) _mm256_load_pd(kb + (k) * KB_LANES + 4 * (w))
#define KB_PAIR4(p) _mm256_broadcast_pd((const __m128d *)(p))

/* One block: frames 2w, 2w + 1 in u[w] for w < 5, v8 v9 in u[5]; zs, vs: the state. */
__attribute__((target("arch=x86-64-v3"), always_inline))
static inline void kb_block_v3(const double *restrict kb, const double *restrict e, __m256d zs, __m256d vs, __m256d u[6])
{
    __m256d ej = KB_PAIR4(e - 4);
    #pragma GCC unroll 6
    for (uint32_t w = 0; w < 6; w++) u[w] = _mm256_mul_pd(KB_ROW4(4, w), ej);
    #pragma GCC unroll 16
    for (uint32_t k = 5; k < KB_ROWS; k++) {
        ej = KB_PAIR4(e + 2 * ((int)k - 6));
        #pragma GCC unroll 6
        for (uint32_t w = k < 10 ? 0 : k < 14 ? 2 : 4; w < 6; w++) u[w] = _mm256_fmadd_pd(KB_ROW4(k, w), ej, u[w]);
    }
    const __m256d z2 = _mm256_permute2f128_pd(zs, zs, 0x00), z1 = _mm256_permute2f128_pd(zs, zs, 0x11);
    const __m256d v2 = _mm256_permute2f128_pd(vs, vs, 0x00), v1 = _mm256_permute2f128_pd(vs, vs, 0x11);
    #pragma GCC unroll 6
    for (uint32_t w = 0; w < 6; w++) {
        if (w < 4) {
            u[w] = _mm256_fmadd_pd(KB_ROW4(0, w), v1, _mm256_fmadd_pd(KB_ROW4(1, w), v2,
                   _mm256_fmadd_pd(KB_ROW4(2, w), z1, _mm256_fmadd_pd(KB_ROW4(3, w), z2, u[w]))));
        } else {
            u[w] = _mm256_add_pd(_mm256_fmadd_pd(KB_ROW4(1, w), v2, _mm256_fmadd_pd(KB_ROW4(3, w), z2, u[w])),
                                 _mm256_fmadd_pd(KB_ROW4(0, w), v1, _mm256_mul_pd(KB_ROW4(2, w), z1)));
        }
    }
}

__attribute__((target("arch=x86-64-v3")))
static void kb_blocks_v3(const double *restrict kb, const double *restrict e, uint32_t nb, uint32_t tail,
                         uint32_t flags, double *restrict s, double *restrict acc, double *restrict sums)
{
    __m256d zs = _mm256_loadu_pd(s), vs = _mm256_loadu_pd(s + 4), sq[5], u[6];
    for (uint32_t w = 0; w < 5; w++) sq[w] = _mm256_loadu_pd(acc + 4 * w);
    if (flags & KB_FLUSH) {
        const __m256d floor = _mm256_set1_pd(RT_STATE_FLOOR), magnitude = _mm256_castsi256_pd(_mm256_set1_epi64x(INT64_MAX));
        zs = _mm256_andnot_pd(_mm256_cmp_pd(_mm256_and_pd(zs, magnitude), floor, _CMP_LT_OQ), zs);
        vs = _mm256_andnot_pd(_mm256_cmp_pd(_mm256_and_pd(vs, magnitude), floor, _CMP_LT_OQ), vs);
    }
    for (uint32_t blk = 0; blk < nb; blk++, e += 2 * KB_FRAMES) {
        kb_block_v3(kb, e, zs, vs, u);
        #pragma GCC unroll 5
        for (uint32_t w = 0; w < 5; w++) sq[w] = _mm256_fmadd_pd(u[w], u[w], sq[w]);
        zs = u[4];
        vs = u[5];
    }
    if (tail) { /* as kb_blocks_v4 */
        kb_block_v3(kb, e, zs, vs, u);
        for (uint32_t w = 0; w < 5; w++) { /* frames >= tail add +0 (as the masked lanes of v4 add nothing) */
            const int64_t f0 = 2 * w < tail ? -1 : 0, f1 = 2 * w + 1 < tail ? -1 : 0;
            const __m256d uw = _mm256_and_pd(u[w], _mm256_castsi256_pd(_mm256_set_epi64x(f1, f1, f0, f0)));
            sq[w] = _mm256_fmadd_pd(uw, uw, sq[w]);
        }
        const double *t = kb + KB_TAIL + (tail - 1) * KB_ROWS * 8;
        __m256d wz = _mm256_mul_pd(_mm256_load_pd(t + 4 * 8), KB_PAIR4(e - 4)), wv = _mm256_mul_pd(_mm256_load_pd(t + 4 * 8 + 4), KB_PAIR4(e - 4));
        for (uint32_t k = 5; k < 6 + tail; k++) {
            const __m256d ej = KB_PAIR4(e + 2 * ((int)k - 6));
            wz = _mm256_fmadd_pd(_mm256_load_pd(t + k * 8), ej, wz);
            wv = _mm256_fmadd_pd(_mm256_load_pd(t + k * 8 + 4), ej, wv);
        }
        const __m256d z2 = _mm256_permute2f128_pd(zs, zs, 0x00), z1 = _mm256_permute2f128_pd(zs, zs, 0x11);
        const __m256d v2 = _mm256_permute2f128_pd(vs, vs, 0x00), v1 = _mm256_permute2f128_pd(vs, vs, 0x11);
        zs = _mm256_add_pd(_mm256_fmadd_pd(_mm256_load_pd(t + 8), v2, _mm256_fmadd_pd(_mm256_load_pd(t + 24), z2, wz)),
                           _mm256_fmadd_pd(_mm256_load_pd(t), v1, _mm256_mul_pd(_mm256_load_pd(t + 16), z1)));
        vs = _mm256_add_pd(_mm256_fmadd_pd(_mm256_load_pd(t + 12), v2, _mm256_fmadd_pd(_mm256_load_pd(t + 28), z2, wv)),
                           _mm256_fmadd_pd(_mm256_load_pd(t + 4), v1, _mm256_mul_pd(_mm256_load_pd(t + 20), z1)));
    }
    if (flags & KB_END) { /* the order of kb_blocks_v4 */
        const __m256d t2 = _mm256_add_pd(_mm256_add_pd(sq[0], sq[2]), _mm256_add_pd(sq[1], sq[3]));
        const __m128d t1 = _mm_add_pd(_mm256_castpd256_pd128(t2), _mm256_extractf128_pd(t2, 1));
        const __m128d tail89 = _mm_add_pd(_mm256_castpd256_pd128(sq[4]), _mm256_extractf128_pd(sq[4], 1));
        _mm_storeu_pd(sums, _mm_add_pd(t1, tail89));
        for (uint32_t w = 0; w < 5; w++) sq[w] = _mm256_setzero_pd();
    }
    _mm256_storeu_pd(s, zs);
    _mm256_storeu_pd(s + 4, vs);
    for (uint32_t w = 0; w < 5; w++) _mm256_storeu_pd(acc + 4 * w, sq[w]);
}
#undef KB_ROW4
#undef KB_PAIR4
#endif /* KB_X86 */

/* ---- lifecycle --------------------------------------------------------------------- */

static void publish(rt_loudness *st);
static void clear(rt_loudness *st, int histograms);

rt_loudness *rt_loudness_create(uint32_t channels, double sample_rate, const double *weights, int true_peak)
{
    if (channels == 0 || channels > RT_LOUDNESS_MAX_CHANNELS || !weights) return NULL;
    if (!(sample_rate >= SAMPLE_RATE_MIN && sample_rate <= SAMPLE_RATE_MAX)) return NULL;
    int any = 0;
    for (uint32_t ch = 0; ch < channels; ch++) {
        if (!(weights[ch] >= 0.0 && weights[ch] <= WEIGHT_MAX)) return NULL;
        any |= weights[ch] > 0.0;
    }
    if (!any) return NULL;

    rt_loudness *st = calloc(1, sizeof *st);
    if (!st) return NULL;
    st->channels = channels;
    rt_loudness_k_weighting(sample_rate, st->kw);
    /* The shelf's numerator divided by b0, the high-pass's (g0, -2 g0, g0) by g0 (exactly
     * (1, -2, 1)); the squares are scaled back by (b0 g0)^2 once per tick. */
    st->kn[0] = st->kw[1] / st->kw[0];
    st->kn[1] = st->kw[2] / st->kw[0];
    st->kn[2] = st->kw[3];
    st->kn[3] = st->kw[4];
    st->kn[4] = st->kw[8];
    st->kn[5] = st->kw[9];
    st->kn[6] = (st->kw[0] * st->kw[5]) * (st->kw[0] * st->kw[5]);
    st->hop = (uint32_t)lround(sample_rate / 10.0);
    for (uint32_t j = 0; j < TICKS_PER_HOP; j++)
        st->tick_frames[j] = (uint32_t)(((uint64_t)(j + 1) * st->hop) / TICKS_PER_HOP
                                        - ((uint64_t)j * st->hop) / TICKS_PER_HOP);
    st->weight = calloc(channels, sizeof(double));
    st->state = calloc((size_t)channels * KW_STATE, sizeof(double));
    st->acc = calloc(channels, sizeof(double));
    st->peak = calloc(channels, sizeof(float));
    st->segmax = calloc(channels, sizeof(uint32_t));
    st->order = calloc(channels, sizeof(uint32_t));
    st->true_peak = true_peak ? rt_true_peak_create(channels, sample_rate) : NULL;
    if (!st->weight || !st->state || !st->acc || !st->peak || !st->segmax || !st->order
        || (true_peak && !st->true_peak) || histogram_alloc(&st->blocks) || histogram_alloc(&st->short_blocks)) {
        rt_loudness_destroy(st);
        return NULL;
    }
    memcpy(st->weight, weights, sizeof(double) * channels);
    for (uint32_t ch = 0; ch < channels; ch++)
        if (weights[ch] > 0.0) st->order[st->weighted++] = ch;
    for (uint32_t ch = 0, k = st->weighted; ch < channels; ch++)
        if (!(weights[ch] > 0.0)) st->order[k++] = ch;
#ifdef KB_X86
    st->level = rt_cpu_level();
    if (st->level >= 4) {
        st->convert = kb_convert_v4;
        st->filter = kb_blocks_v4;
    } else if (st->level >= 3) {
        st->convert = kb_convert_v3;
        st->filter = kb_blocks_v3;
    } else {
        st->level = 0;
    }
#endif
    if (st->level) {
        st->pairs = (st->weighted + 1) / 2;
        st->kb = aligned_alloc(64, sizeof(double) * KB_COEFS);
        st->pair = calloc((size_t)st->pairs * KP_STATE, sizeof(double));
        st->xs = calloc(2 * (KB_HIST + KB_FRAMES + KB_CAP), sizeof(double));
        if (!st->kb || !st->pair || !st->xs) {
            rt_loudness_destroy(st);
            return NULL;
        }
        kb_design(st->kn, st->kb);
    }
    clear(st, 0); /* the histograms come zeroed from calloc (untouched pages cost nothing) */
    return st;
}

void rt_loudness_destroy(rt_loudness *st)
{
    if (!st) return;
    free(st->weight);
    free(st->state);
    free(st->acc);
    free(st->peak);
    free(st->segmax);
    free(st->order);
    free(st->kb);
    free(st->pair);
    free(st->xs);
    histogram_free(&st->blocks);
    histogram_free(&st->short_blocks);
    rt_true_peak_destroy(st->true_peak);
    free(st);
}

static void clear(rt_loudness *st, int histograms)
{
    memset(st->state, 0, sizeof(double) * st->channels * KW_STATE);
    memset(st->acc, 0, sizeof(double) * st->channels);
    memset(st->peak, 0, sizeof(float) * st->channels);
    if (st->pair) memset(st->pair, 0, sizeof(double) * st->pairs * KP_STATE);
    st->kb_tick_start = 1;
    memset(st->ring, 0, sizeof st->ring);
    st->ring_pos = 0;
    st->tick = 0;
    st->tick_left = st->tick_frames[0];
    st->ticks = 0;
    st->frames = 0;
    st->nonfinite_ticks = 0;
    st->nonfinite_input = 0;
    st->momentary = st->short_term = st->max_momentary = st->max_short_term = 0.0;
    st->integrated = st->integrated_gate = st->lra_lu = 0.0;
    if (histograms) {
        histogram_clear(&st->blocks);
        histogram_clear(&st->short_blocks);
    }
    if (st->true_peak) rt_true_peak_reset(st->true_peak);
    memset(&st->scratch, 0, sizeof st->scratch);
    publish(st);
}

void rt_loudness_reset(rt_loudness *st) { clear(st, 1); }

uint32_t rt_loudness_latency(const rt_loudness *st) { return 0; }
uint32_t rt_loudness_saw_nonfinite(const rt_loudness *st) { return st->nonfinite_input; }
uint32_t rt_loudness_hop_frames(const rt_loudness *st) { return st->hop; }
uint32_t rt_loudness_tick_frames(const rt_loudness *st, uint32_t j)
{
    return j < TICKS_PER_HOP ? st->tick_frames[j] : 0;
}

/* ---- per-sample work --------------------------------------------------------------- */

/* K-weights n samples of one channel, adding the squares to *acc.  Normalized form (see
 * kn): y = x + p1 x1 + p2 x2 - a1 y1 - a2 y2, z = (y - 2 y1 + y2) - c1 z1 - c2 z2, i.e. the
 * K-filter's output divided by b0 g0.  The previous output's term comes last: the
 * recursion's critical path is one multiply-add per sample. */
static void weigh(const double *restrict kn, double *restrict s, const float *restrict x, uint32_t n,
                  double *acc)
{
    const double p1 = kn[0], p2 = kn[1], a1 = kn[2], a2 = kn[3], c1 = kn[4], c2 = kn[5];
    double x1 = s[KW_X1], x2 = s[KW_X2], y1 = s[KW_Y1], y2 = s[KW_Y2], z1 = s[KW_Z1], z2 = s[KW_Z2];
    double sum = *acc;
    for (uint32_t i = 0; i < n; i++) {
        if ((i & 15u) == 0) __builtin_prefetch((const void *)((uintptr_t)(x + i) + PREFETCH_BYTES));
        double in = x[i];
        double y = in + p1 * x1 + p2 * x2 - a2 * y2 - a1 * y1;
        double z = (y + y2) - 2.0 * y1 - c2 * z2 - c1 * z1;
        x2 = x1;
        x1 = in;
        y2 = y1;
        y1 = y;
        z2 = z1;
        z1 = z;
        sum += z * z;
    }
    s[KW_X1] = x1;
    s[KW_X2] = x2;
    s[KW_Y1] = y1;
    s[KW_Y2] = y2;
    s[KW_Z1] = z1;
    s[KW_Z2] = z2;
    *acc = sum;
}

/* weigh() for two channels at once, in the two lanes of a vector (GCC/Clang vector
 * extension: SSE2 on x86-64, NEON on arm64).  Each lane does exactly weigh()'s
 * operations; the two recursions run side by side. */
typedef double v2d __attribute__((vector_size(16)));

static void weigh_pair(const double *restrict kn, double *restrict sa, double *restrict sb,
                       const float *restrict xa, const float *restrict xb, uint32_t n,
                       double *acc_a, double *acc_b)
{
    const v2d p1 = {kn[0], kn[0]}, p2 = {kn[1], kn[1]}, a1 = {kn[2], kn[2]}, a2 = {kn[3], kn[3]};
    const v2d c1 = {kn[4], kn[4]}, c2 = {kn[5], kn[5]}, two = {2.0, 2.0};
    v2d x1 = {sa[KW_X1], sb[KW_X1]}, x2 = {sa[KW_X2], sb[KW_X2]};
    v2d y1 = {sa[KW_Y1], sb[KW_Y1]}, y2 = {sa[KW_Y2], sb[KW_Y2]};
    v2d z1 = {sa[KW_Z1], sb[KW_Z1]}, z2 = {sa[KW_Z2], sb[KW_Z2]};
    v2d sum = {*acc_a, *acc_b};
    for (uint32_t i = 0; i < n; i++) {
        if ((i & 15u) == 0) { /* the input usually streams from memory: ask for it 2 KiB early */
            __builtin_prefetch((const void *)((uintptr_t)(xa + i) + PREFETCH_BYTES));
            __builtin_prefetch((const void *)((uintptr_t)(xb + i) + PREFETCH_BYTES));
        }
        v2d in = {xa[i], xb[i]};
        v2d y = in + p1 * x1 + p2 * x2 - a2 * y2 - a1 * y1;
        v2d z = (y + y2) - two * y1 - c2 * z2 - c1 * z1;
        x2 = x1;
        x1 = in;
        y2 = y1;
        y1 = y;
        z2 = z1;
        z1 = z;
        sum += z * z;
    }
    sa[KW_X1] = x1[0]; sa[KW_X2] = x2[0]; sa[KW_Y1] = y1[0]; sa[KW_Y2] = y2[0]; sa[KW_Z1] = z1[0]; sa[KW_Z2] = z2[0];
    sb[KW_X1] = x1[1]; sb[KW_X2] = x2[1]; sb[KW_Y1] = y1[1]; sb[KW_Y2] = y2[1]; sb[KW_Z1] = z1[1]; sb[KW_Z2] = z2[1];
    *acc_a = sum[0];
    *acc_b = sum[1];
}

/* The largest bit pattern of |x[i]| (as an unsigned integer: the order of the magnitudes,
 * +inf above every finite value, NaN above +inf).  Sixteen running maxima in two vectors. */
typedef int32_t v8i __attribute__((vector_size(32)));
RT_HOT_CLONES
static uint32_t max_abs_bits(const float *restrict x, uint32_t n)
{
    v8i m0 = {0}, m1 = {0};
    uint32_t i = 0;
    for (; i + 16 <= n; i += 16) {
        v8i a, b;
        memcpy(&a, x + i, sizeof a);
        memcpy(&b, x + i + 8, sizeof b);
        a &= 0x7fffffff;
        b &= 0x7fffffff;
        v8i ga = a > m0, gb = b > m1;
        m0 = (a & ga) | (m0 & ~ga);
        m1 = (b & gb) | (m1 & ~gb);
    }
    int32_t m = 0;
    for (int j = 0; j < 8; j++) {
        m = m0[j] > m ? m0[j] : m;
        m = m1[j] > m ? m1[j] : m;
    }
    for (; i < n; i++) {
        int32_t a;
        memcpy(&a, x + i, sizeof a);
        a &= 0x7fffffff;
        m = a > m ? a : m;
    }
    return (uint32_t)m;
}

/* The largest finite |x[i]| (the rare segment that holds an infinity or a NaN). */
static float finite_peak(const float *x, uint32_t n, float peak)
{
    for (uint32_t i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        if (a > peak && a <= 3.4028234663852886e38f) peak = a;
    }
    return peak;
}

/* Vector paths: K-weights one tick segment, frames [off, off + n) of the call, of every
 * weighted channel (pairs), and leaves each channel's max |x| bits in segmax.  The frames
 * of an incomplete block wait in the pair's state for the next call, unless the tick ends
 * here: then they are the tick's tail (kb_blocks_fn). */
static void weigh_blocks(rt_loudness *st, const float *const *in, uint32_t off, uint32_t n, int ends_tick)
{
    const uint32_t pending = (st->tick_frames[st->tick] - st->tick_left) % KB_FRAMES;
    double *xs = st->xs; /* e of frame f of the current block at xs + 2 (KB_HIST + f) */
    int computed = 0;
    for (uint32_t k = 0; k < st->weighted; k += 2) {
        const uint32_t a = st->order[k], b = k + 1 < st->weighted ? st->order[k + 1] : a;
        const int has_b = k + 1 < st->weighted;
        double *ps = st->pair + (size_t)(k / 2) * KP_STATE;
        memcpy(xs, ps + KP_E, sizeof(double) * 2 * (KB_HIST + pending));
        uint32_t have = pending, done = 0, ma = 0, mb = 0, flags = st->kb_tick_start ? KB_FLUSH : 0, base = 0;
        do {
            const uint32_t m = n - done < KB_CAP - have ? n - done : KB_CAP - have;
            uint32_t mx[2];
            st->convert(in[a] + off + done, has_b ? in[b] + off + done : NULL, m, xs + 2 * (KB_HIST + have),
                        ps + KP_XL, mx);
            ma = mx[0] > ma ? mx[0] : ma;
            mb = mx[1] > mb ? mx[1] : mb;
            have += m;
            done += m;
            const uint32_t nb = have / KB_FRAMES;
            uint32_t tail = 0;
            if (done == n && ends_tick) {
                flags |= KB_END;
                tail = have - nb * KB_FRAMES;
                memset(xs + 2 * (KB_HIST + have), 0, sizeof(double) * 2 * (KB_FRAMES - tail));
            }
            if (nb || (flags & KB_END)) {
                double sums[2];
                st->filter(st->kb, xs + 2 * KB_HIST, nb, tail, flags, ps + KP_S, ps + KP_ACC, sums);
                if (flags & KB_END) {
                    st->acc[a] = sums[0];
                    if (has_b) st->acc[b] = sums[1];
                }
                if (nb || tail) {
                    flags &= ~KB_FLUSH;
                    computed = 1;
                }
                have -= nb * KB_FRAMES + tail;
                base = 2 * (KB_FRAMES * nb + tail);
            }
            if (done < n && base) { /* the scratch holds KB_CAP frames: continue from its start */
                memmove(xs, xs + base, sizeof(double) * 2 * (KB_HIST + have));
                base = 0;
            }
        } while (done < n);
        memcpy(ps + KP_E, xs + base, sizeof(double) * 2 * (KB_HIST + have));
        st->segmax[a] = ma;
        if (has_b) st->segmax[b] = mb;
    }
    if (computed) st->kb_tick_start = 0;
}

/* ---- per-tick and per-hop work ----------------------------------------------------- */

/* Sum of n (a multiple of 4) tick energies: eight partial sums (w[k] goes to k mod 8,
 * a last group of four to the first four), combined in a fixed order; the result depends
 * only on the values and their order in time, not on where the ring starts.  (Pairs of
 * doubles: registers on every target.) */
static double window_sum(const double *w, uint32_t n)
{
    rt_v2d s0 = {0.0, 0.0}, s1 = s0, s2 = s0, s3 = s0; /* partial sums k mod 8 = 0 1, 2 3, 4 5, 6 7 */
    uint32_t k = 0;
    for (; k + 8 <= n; k += 8) {
        rt_v2d a, b, c, d;
        memcpy(&a, w + k, sizeof a);
        memcpy(&b, w + k + 2, sizeof b);
        memcpy(&c, w + k + 4, sizeof c);
        memcpy(&d, w + k + 6, sizeof d);
        s0 += a;
        s1 += b;
        s2 += c;
        s3 += d;
    }
    if (k < n) {
        rt_v2d a, b;
        memcpy(&a, w + k, sizeof a);
        memcpy(&b, w + k + 2, sizeof b);
        s0 += a;
        s1 += b;
    }
    rt_v2d lo = s0 + s2, hi = s1 + s3; /* (partial k) + (partial k + 4), k = 0..3 */
    return (lo[0] + lo[1]) + (hi[0] + hi[1]);
}
_Static_assert((RING_TICKS - MOMENTARY_TICKS) % 4 == 0 && MOMENTARY_TICKS % 4 == 0, "window_sum takes multiples of 4");

static void end_of_hop(rt_loudness *st)
{
    uint64_t hops = st->ticks / TICKS_PER_HOP;
    double energy, gate;
    if (hops >= MOMENTARY_HOPS && histogram_add(&st->blocks, st->momentary)) {
        uint64_t n = histogram_gated(&st->blocks, INTEGRATED_REL_GATE_LU, &energy, &gate);
        st->integrated = n ? energy / (double)n : 0.0;
        st->integrated_gate = gate;
    }
    if (hops >= SHORT_TERM_HOPS && histogram_add(&st->short_blocks, st->short_term)) {
        const histogram *h = &st->short_blocks;
        uint64_t n = histogram_gated(h, LRA_REL_GATE_LU, &energy, &gate);
        if (n > 0) {
            /* Nearest rank on ascending order; the Fenwick tree counts from the loud end. */
            uint64_t lo = (uint64_t)((double)(n - 1) * LRA_LOW_PERCENTILE + 0.5);
            uint64_t hi = (uint64_t)((double)(n - 1) * LRA_HIGH_PERCENTILE + 0.5);
            uint32_t b_lo = histogram_find(h, n - 1 - lo), b_hi = histogram_find(h, n - 1 - hi);
            double l_lo = lufs_of(h->energy[b_lo] / (double)h->count[b_lo]);
            double l_hi = lufs_of(h->energy[b_hi] / (double)h->count[b_hi]);
            st->lra_lu = l_hi > l_lo ? l_hi - l_lo : 0.0;
        }
    }
}

static void end_of_tick(rt_loudness *st)
{
    double tick_energy = 0.0;
    for (uint32_t ch = 0; ch < st->channels; ch++) {
        if (st->weight[ch] > 0.0) tick_energy += st->weight[ch] * (st->kn[6] * st->acc[ch]);
        st->acc[ch] = 0.0;
    }
    double *s = st->state;
    if (!isfinite(tick_energy)) {
        /* Non-finite input reached the K-filter: forget it, count it. */
        tick_energy = 0.0;
        memset(s, 0, sizeof(double) * st->channels * KW_STATE);
        /* (vector paths: the state, x[-1], e[-2..-1]; no frame is pending at a tick's end) */
        for (uint32_t k = 0; k < st->pairs; k++) memset(st->pair + (size_t)k * KP_STATE, 0, sizeof(double) * KP_ACC);
        st->nonfinite_ticks++;
    } else {
        if (!st->level) /* (the vector paths flush theirs at the start of a tick) */
            for (uint32_t i = 0; i < st->channels * KW_STATE; i++) s[i] = rt_flush_tiny(s[i]);
    }
    st->kb_tick_start = 1; /* the vector paths flush their state before the next tick's first block */

    st->ring[st->ring_pos] = tick_energy;
    st->ring[st->ring_pos + RING_TICKS] = tick_energy;
    st->ring_pos = st->ring_pos + 1 == RING_TICKS ? 0 : st->ring_pos + 1;
    /* Re-summed from the ring every tick (no running-sum drift), in time order; the last
     * 400 ms on their own, so momentary never comes from a difference of large sums. */
    const double *w = st->ring + st->ring_pos; /* the window, oldest first */
    double older = window_sum(w, RING_TICKS - MOMENTARY_TICKS);
    double recent = window_sum(w + RING_TICKS - MOMENTARY_TICKS, MOMENTARY_TICKS);
    st->momentary = recent / (double)(MOMENTARY_HOPS * st->hop);
    st->short_term = (older + recent) / (double)(SHORT_TERM_HOPS * st->hop);
    if (st->momentary > st->max_momentary) st->max_momentary = st->momentary;
    if (st->short_term > st->max_short_term) st->max_short_term = st->short_term;

    st->ticks++;
    if (++st->tick == TICKS_PER_HOP) {
        st->tick = 0;
        end_of_hop(st);
    }
    st->tick_left = st->tick_frames[st->tick];
}

uint32_t rt_loudness_process(rt_loudness *st, const float *const *in, uint32_t frames)
{
    uint32_t done = 0;
    while (done < frames) {
        uint32_t n = frames - done < st->tick_left ? frames - done : st->tick_left;
        const uint32_t *order = st->order;
        uint32_t k = 0;
        if (st->level) {
            weigh_blocks(st, in, done, n, n == st->tick_left);
            k = st->weighted;
        } else {
            /* Weighted channels two at a time, then the odd one. */
            for (; k + 1 < st->weighted; k += 2) {
                uint32_t a = order[k], b = order[k + 1];
                weigh_pair(st->kn, st->state + (size_t)a * KW_STATE, st->state + (size_t)b * KW_STATE,
                           in[a] + done, in[b] + done, n, &st->acc[a], &st->acc[b]);
            }
            if (k < st->weighted) {
                uint32_t a = order[k];
                weigh(st->kn, st->state + (size_t)a * KW_STATE, in[a] + done, n, &st->acc[a]);
            }
            k = 0;
        }
        /* Peaks of the channels not read yet (weight-0 ones are not filtered), while the
         * segment is in cache. */
        for (; k < st->channels; k++) st->segmax[order[k]] = max_abs_bits(in[order[k]] + done, n);
        float bound[RT_LOUDNESS_MAX_CHANNELS];
        for (uint32_t ch = 0; ch < st->channels; ch++) {
            const uint32_t bits = st->segmax[ch];
            float m;
            memcpy(&m, &bits, sizeof m);
            if (bits < 0x7f800000u) {
                st->peak[ch] = m > st->peak[ch] ? m : st->peak[ch];
            } else { /* an infinity or a NaN: the largest finite sample, the hard way */
                st->nonfinite_input = 1;
                st->peak[ch] = finite_peak(in[ch] + done, n, st->peak[ch]);
            }
            bound[ch] = m; /* NaN only if NaN is the largest: then no bound */
        }
        if (st->true_peak) {
            /* The true-peak maximum does not depend on how its input is split, and skips the
             * channels whose max |x| here cannot raise it without reading them again. */
            const float *seg[RT_LOUDNESS_MAX_CHANNELS];
            for (uint32_t ch = 0; ch < st->channels; ch++) seg[ch] = in[ch] + done;
            rt_true_peak_process_bounded(st->true_peak, seg, n, bound);
        }
        done += n;
        st->tick_left -= n;
        if (st->tick_left == 0) end_of_tick(st);
    }
    st->frames += frames;
    publish(st);
    return frames;
}

/* ---- publication (sequence lock) --------------------------------------------------- */

/* The raw values (energies, linear peaks) are published; the snapshot converts them, so
 * no logarithm runs on the audio thread per call. */
static void publish(rt_loudness *st)
{
    raw_values *r = &st->scratch.v;
    r->frames = st->frames;
    r->nonfinite_ticks = st->nonfinite_ticks;
    r->momentary = st->momentary;
    r->short_term = st->short_term;
    r->integrated = st->integrated;
    r->integrated_gate = st->integrated_gate;
    r->lra_lu = st->lra_lu;
    r->max_momentary = st->max_momentary;
    r->max_short_term = st->max_short_term;
    for (uint32_t ch = 0; ch < st->channels; ch++) {
        double t = st->true_peak ? rt_true_peak_max(st->true_peak, ch) : 0.0;
        r->sample_peak[ch] = st->peak[ch];
        /* An infinity that reached the oversampler: keep the last finite reading. */
        if (t <= 3.4028234663852886e38) r->true_peak[ch] = t;
    }
    const uint64_t *words = st->scratch.w;
    uint32_t seq = st->seq;
    __atomic_store_n(&st->seq, seq + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    for (size_t i = 0; i < RAW_SCALAR_WORDS; i++) __atomic_store_n(&st->published[i], words[i], __ATOMIC_RELAXED);
    for (size_t i = 0; i < st->channels; i++) {
        size_t sp = RAW_SCALAR_WORDS + i, tp = RAW_SCALAR_WORDS + RT_LOUDNESS_MAX_CHANNELS + i;
        __atomic_store_n(&st->published[sp], words[sp], __ATOMIC_RELAXED);
        __atomic_store_n(&st->published[tp], words[tp], __ATOMIC_RELAXED);
    }
    __atomic_store_n(&st->seq, seq + 2, __ATOMIC_RELEASE);
}

uint32_t rt_loudness_snapshot(const rt_loudness *st, rt_loudness_values *out)
{
    raw_words u;
    uint64_t *words = u.w;
    uint32_t attempts = 0;
    for (;;) {
        attempts++;
        uint32_t before = __atomic_load_n(&st->seq, __ATOMIC_ACQUIRE);
        if (before & 1u) continue;
        for (size_t i = 0; i < PUBLISHED_WORDS; i++) words[i] = __atomic_load_n(&st->published[i], __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&st->seq, __ATOMIC_RELAXED) == before) break;
    }
    const raw_values r = u.v;
    memset(out, 0, sizeof *out);
    out->frames = r.frames;
    out->nonfinite_ticks = r.nonfinite_ticks;
    out->channels = st->channels;
    out->true_peak_factor = st->true_peak ? rt_true_peak_factor(st->true_peak) : 0;
    out->momentary_lufs = lufs_of(r.momentary);
    out->short_term_lufs = lufs_of(r.short_term);
    out->integrated_lufs = lufs_of(r.integrated);
    out->integrated_gate_lufs = lufs_of(r.integrated_gate);
    out->loudness_range_lu = r.lra_lu;
    out->max_momentary_lufs = lufs_of(r.max_momentary);
    out->max_short_term_lufs = lufs_of(r.max_short_term);
    double sp = 0.0, tp = 0.0;
    for (uint32_t ch = 0; ch < st->channels; ch++) {
        out->channel_sample_peak_dbfs[ch] = db_of(r.sample_peak[ch]);
        out->channel_true_peak_dbtp[ch] = db_of(r.true_peak[ch]);
        if (r.sample_peak[ch] > sp) sp = r.sample_peak[ch];
        if (r.true_peak[ch] > tp) tp = r.true_peak[ch];
    }
    out->sample_peak_dbfs = db_of(sp);
    out->true_peak_dbtp = db_of(tp);
    return attempts;
}
