#include "loudness.h"
#include "rt_common.h"
#include "true_peak.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

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

struct rt_loudness {
    uint32_t channels;
    uint32_t hop;                   /* frames per 100 ms */
    uint32_t tick_frames[TICKS_PER_HOP];
    double kw[10];                  /* shelf b0 b1 b2 a1 a2, high-pass b0 b1 b2 a1 a2 */
    double kn[7];                   /* normalized: b1/b0 b2/b0 a1 a2 (shelf), a1 a2 (high-pass), (b0 g0)^2 */
    double *weight;                 /* per channel */
    uint32_t *order;                /* channels with weight > 0 first, then the others */
    uint32_t weighted;              /* how many have weight > 0 */
    double *state;                  /* per channel, KW_STATE doubles */
    double *acc;                    /* per channel: sum of squares in the current tick */
    float *peak;                    /* per channel: largest |sample| */

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

/* ---- lifecycle --------------------------------------------------------------------- */

static void publish(rt_loudness *st);

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
    st->order = calloc(channels, sizeof(uint32_t));
    st->true_peak = true_peak ? rt_true_peak_create(channels, sample_rate) : NULL;
    if (!st->weight || !st->state || !st->acc || !st->peak || !st->order || (true_peak && !st->true_peak)
        || histogram_alloc(&st->blocks) || histogram_alloc(&st->short_blocks)) {
        rt_loudness_destroy(st);
        return NULL;
    }
    memcpy(st->weight, weights, sizeof(double) * channels);
    for (uint32_t ch = 0; ch < channels; ch++)
        if (weights[ch] > 0.0) st->order[st->weighted++] = ch;
    for (uint32_t ch = 0, k = st->weighted; ch < channels; ch++)
        if (!(weights[ch] > 0.0)) st->order[k++] = ch;
    rt_loudness_reset(st);
    return st;
}

void rt_loudness_destroy(rt_loudness *st)
{
    if (!st) return;
    free(st->weight);
    free(st->state);
    free(st->acc);
    free(st->peak);
    free(st->order);
    histogram_free(&st->blocks);
    histogram_free(&st->short_blocks);
    rt_true_peak_destroy(st->true_peak);
    free(st);
}

void rt_loudness_reset(rt_loudness *st)
{
    memset(st->state, 0, sizeof(double) * st->channels * KW_STATE);
    memset(st->acc, 0, sizeof(double) * st->channels);
    memset(st->peak, 0, sizeof(float) * st->channels);
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
    histogram_clear(&st->blocks);
    histogram_clear(&st->short_blocks);
    if (st->true_peak) rt_true_peak_reset(st->true_peak);
    memset(&st->scratch, 0, sizeof st->scratch);
    publish(st);
}

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
RT_HOT_CLONES
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

RT_HOT_CLONES
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

/* Largest finite |x[i]| folded into *peak.  The first pass keeps eight running maxima
 * per vector, two vectors (independent chains; NaN never wins a comparison); only when it
 * meets an infinity does the careful loop run. */
typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
RT_HOT_CLONES
static void peak_of(const float *restrict x, uint32_t n, float *peak, uint32_t *nonfinite)
{
    v8f m0 = *peak - (v8f){0}, m1 = m0;
    v8i bad = {0};
    uint32_t i = 0;
    for (; i + 16 <= n; i += 16) {
        v8f a, b;
        memcpy(&a, x + i, sizeof a);
        memcpy(&b, x + i + 8, sizeof b);
        a = (v8f)((v8i)a & 0x7fffffff);
        b = (v8f)((v8i)b & 0x7fffffff);
        bad |= ((v8i)a >= 0x7f800000) | ((v8i)b >= 0x7f800000); /* infinity or NaN */
        v8i ga = a > m0, gb = b > m1; /* NaN: false, the maximum stays */
        m0 = (v8f)(((v8i)a & ga) | ((v8i)m0 & ~ga));
        m1 = (v8f)(((v8i)b & gb) | ((v8i)m1 & ~gb));
    }
    float pk = *peak;
    for (int j = 0; j < 8; j++) {
        pk = m0[j] > pk ? m0[j] : pk;
        pk = m1[j] > pk ? m1[j] : pk;
    }
    int any = 0;
    for (int j = 0; j < 8; j++) any |= bad[j] != 0;
    for (; i < n; i++) {
        float a = fabsf(x[i]);
        pk = a > pk ? a : pk;
        any |= !isfinite(a);
    }
    if (any) *nonfinite = 1;
    if (pk <= 3.4028234663852886e38f) {
        *peak = pk;
        return;
    }
    pk = *peak;
    for (uint32_t i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        if (a > pk && a <= 3.4028234663852886e38f) pk = a;
    }
    *peak = pk;
}

/* ---- per-tick and per-hop work ----------------------------------------------------- */

/* Sum of n (a multiple of 4) tick energies: eight partial sums (w[k] goes to k mod 8,
 * a last group of four to the first four), combined in a fixed order; the result depends
 * only on the values and their order in time, not on where the ring starts. */
typedef double v4d __attribute__((vector_size(32)));
static double window_sum(const double *w, uint32_t n)
{
    v4d s0 = {0.0, 0.0, 0.0, 0.0}, s1 = s0;
    uint32_t k = 0;
    for (; k + 8 <= n; k += 8) {
        v4d a, b;
        memcpy(&a, w + k, sizeof a);
        memcpy(&b, w + k + 4, sizeof b);
        s0 += a;
        s1 += b;
    }
    if (k < n) {
        v4d a;
        memcpy(&a, w + k, sizeof a);
        s0 += a;
    }
    v4d s = s0 + s1;
    return (s[0] + s[1]) + (s[2] + s[3]);
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
        st->nonfinite_ticks++;
    } else {
        for (uint32_t i = 0; i < st->channels * KW_STATE; i++) s[i] = rt_flush_tiny(s[i]);
    }

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
        /* Weighted channels two at a time, then the odd one (weight-0 channels are not filtered). */
        const uint32_t *order = st->order;
        uint32_t k = 0;
        for (; k + 1 < st->weighted; k += 2) {
            uint32_t a = order[k], b = order[k + 1];
            weigh_pair(st->kn, st->state + (size_t)a * KW_STATE, st->state + (size_t)b * KW_STATE,
                       in[a] + done, in[b] + done, n, &st->acc[a], &st->acc[b]);
        }
        if (k < st->weighted) {
            uint32_t a = order[k];
            weigh(st->kn, st->state + (size_t)a * KW_STATE, in[a] + done, n, &st->acc[a]);
        }
        /* Peaks on the same segment while it is still in cache (the true-peak maximum does
         * not depend on how its input is split). */
        for (uint32_t ch = 0; ch < st->channels; ch++) peak_of(in[ch] + done, n, &st->peak[ch], &st->nonfinite_input);
        if (st->true_peak) {
            const float *seg[RT_LOUDNESS_MAX_CHANNELS];
            for (uint32_t ch = 0; ch < st->channels; ch++) seg[ch] = in[ch] + done;
            rt_true_peak_process(st->true_peak, seg, n);
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
