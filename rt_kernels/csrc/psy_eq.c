#include "psy_eq.h"
#include "biquad.h"
#include "rt_common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NB RT_PSY_EQ_BANDS
/* Prototype gain for the interaction matrix (the paper uses 17 dB for octave bands;
 * the command range here is +-12 dB). */
#define PROTO_GAIN_DB 12.0
/* Correction steps g += B^-1 (t - H(g)) after the paper's first solve; the response
 * H(g) is evaluated exactly from the designed coefficients, so the remaining error is
 * what the fixed-point iteration leaves (measured < 0.01 dB over +-12 dB commands). */
#define CORRECTION_STEPS 4
/* Section gains are kept inside this bound (rt_biquad_design accepts +-60 dB). */
#define SECTION_GAIN_LIMIT_DB 40.0
/* During a gain ramp the sections are redesigned every RAMP_STEP_FRAMES frames,
 * counted from the absolute frame count (so any block split gives the same output). */
#define RAMP_STEP_FRAMES 32u

/* Zwicker's critical-band edges (Zwicker & Terhardt, JASA 68, 1980), with the first
 * edge at 20 Hz and a 25th band 15.5-20 kHz closing the audible range. */
static const double band_edges_hz[NB + 1] = {
    20, 100, 200, 300, 400, 510, 630, 770, 920, 1080, 1270, 1480, 1720, 2000,
    2320, 2700, 3150, 3700, 4400, 5300, 6400, 7700, 9500, 12000, 15500, 20000,
};

struct rt_psy_eq {
    uint32_t channels;
    uint32_t active;              /* bands 0 .. active-1 have sections */
    double sample_rate;
    rt_biquad *cascade;
    double centre_hz[NB];
    double q[NB];
    double cos_w[NB], cos_2w[NB]; /* at each band centre */
    double alpha[NB];             /* sin w / (2 q): with cos_w, a band's design at any gain */
    double inverse[NB * NB];      /* (interaction matrix)^-1, active x active, row major */
    double section_db[NB];        /* section gains in use now */
    double ramp_from_db[NB], ramp_to_db[NB];
    double coeffs[NB * 5];        /* in use now */
    double target_coeffs[NB * 5]; /* at the end of the ramp (the solved command) */
    uint32_t ramp_steps;          /* ramp length in RAMP_STEP_FRAMES steps (0: no ramp) */
    uint32_t ramp_steps_left;
    uint32_t step_phase;          /* frames since the last step grid point */
    const float **in_ptrs;        /* per-channel pointers into the caller's blocks */
    float **out_ptrs;
};

void rt_psy_eq_band_table(double *edges_hz, double *centres_hz, double *q)
{
    for (int b = 0; b <= NB; b++) edges_hz[b] = band_edges_hz[b];
    for (int b = 0; b < NB; b++) {
        double lo = band_edges_hz[b], hi = band_edges_hz[b + 1];
        centres_hz[b] = sqrt(lo * hi);
        q[b] = centres_hz[b] / (hi - lo);
    }
}

/* |H|^2 of one normalised biquad at a centre, from cos w and cos 2w. */
static inline double power_ratio(const double *c, double cw, double c2w)
{
    double b0 = c[0], b1 = c[1], b2 = c[2], a1 = c[3], a2 = c[4];
    double num = b0 * b0 + b1 * b1 + b2 * b2 + 2.0 * (b0 * b1 + b1 * b2) * cw + 2.0 * b0 * b2 * c2w;
    double den = 1.0 + a1 * a1 + a2 * a2 + 2.0 * (a1 + a1 * a2) * cw + 2.0 * a2 * c2w;
    return num / den;
}

/* Cascade magnitude in dB at every active centre for the coefficients in `coeffs`. */
static void centre_response(const rt_psy_eq *eq, const double *coeffs, double *dest)
{
    for (uint32_t k = 0; k < eq->active; k++) {
        double product = 1.0;
        for (uint32_t m = 0; m < eq->active; m++)
            product *= power_ratio(coeffs + 5 * m, eq->cos_w[k], eq->cos_2w[k]);
        dest[k] = 10.0 * log10(product);
    }
}

/* rt_biquad_design(RT_BQ_PEAKING, fs, centre, q, gain_db) without recomputing cos and sin:
 * the solve designs 125 sections and a ramp step 25. */
static int design(const rt_psy_eq *eq, uint32_t band, double gain_db, double *c)
{
    return rt_biquad_peaking(eq->cos_w[band], eq->alpha[band], gain_db, c);
}

/* In-place Gauss-Jordan inversion with partial pivoting of an n x n matrix
 * (create time only).  Returns -1 if singular. */
static int invert(double *a, double *inv, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < n; j++) inv[i * n + j] = (i == j);
    for (uint32_t col = 0; col < n; col++) {
        uint32_t pivot = col;
        for (uint32_t r = col + 1; r < n; r++)
            if (fabs(a[r * n + col]) > fabs(a[pivot * n + col])) pivot = r;
        if (!(fabs(a[pivot * n + col]) > 1e-12)) return -1;
        if (pivot != col)
            for (uint32_t j = 0; j < n; j++) {
                double t = a[col * n + j]; a[col * n + j] = a[pivot * n + j]; a[pivot * n + j] = t;
                t = inv[col * n + j]; inv[col * n + j] = inv[pivot * n + j]; inv[pivot * n + j] = t;
            }
        double d = 1.0 / a[col * n + col];
        for (uint32_t j = 0; j < n; j++) { a[col * n + j] *= d; inv[col * n + j] *= d; }
        for (uint32_t r = 0; r < n; r++) {
            if (r == col) continue;
            double f = a[r * n + col];
            if (f == 0.0) continue;
            for (uint32_t j = 0; j < n; j++) {
                a[r * n + j] -= f * a[col * n + j];
                inv[r * n + j] -= f * inv[col * n + j];
            }
        }
    }
    return 0;
}

rt_psy_eq *rt_psy_eq_create(uint32_t channels, double sample_rate, double ramp_ms)
{
    if (channels == 0 || !(sample_rate >= 8000.0) || !(sample_rate <= 384000.0)) return NULL;
    if (!(ramp_ms >= 0.0) || !(ramp_ms <= RT_PSY_EQ_MAX_RAMP_MS)) return NULL;
    rt_psy_eq *eq = calloc(1, sizeof *eq);
    if (!eq) return NULL;
    eq->channels = channels;
    eq->sample_rate = sample_rate;
    eq->ramp_steps = (uint32_t)ceil(ramp_ms * 1e-3 * sample_rate / RAMP_STEP_FRAMES);
    eq->in_ptrs = calloc(channels, sizeof *eq->in_ptrs);
    eq->out_ptrs = calloc(channels, sizeof *eq->out_ptrs);
    double edges[NB + 1];
    rt_psy_eq_band_table(edges, eq->centre_hz, eq->q);
    while (eq->active < NB && edges[eq->active + 1] < 0.5 * sample_rate) eq->active++;
    for (uint32_t k = 0; k < NB; k++) {
        double w = 2.0 * RT_PI * eq->centre_hz[k] / sample_rate;
        eq->cos_w[k] = cos(w);
        eq->cos_2w[k] = cos(2.0 * w);
        eq->alpha[k] = sin(w) / (2.0 * eq->q[k]); /* as rt_biquad_design computes them */
    }
    /* only the active bands run (17 at 8 kHz); at least one section, left identity */
    eq->cascade = rt_biquad_create(channels, eq->active > 0 ? eq->active : 1, sample_rate);
    if (!eq->cascade || !eq->in_ptrs || !eq->out_ptrs) {
        rt_psy_eq_destroy(eq);
        return NULL;
    }

    /* Interaction matrix: column m = dB response of section m alone at the prototype
     * gain, at every centre, divided by that gain. */
    const uint32_t n = eq->active;
    double matrix[NB * NB];
    for (uint32_t m = 0; m < n; m++) {
        double c[5];
        if (design(eq, m, PROTO_GAIN_DB, c) != 0) {
            rt_psy_eq_destroy(eq);
            return NULL;
        }
        for (uint32_t k = 0; k < n; k++)
            matrix[k * n + m] = 10.0 * log10(power_ratio(c, eq->cos_w[k], eq->cos_2w[k])) / PROTO_GAIN_DB;
    }
    if (n > 0 && invert(matrix, eq->inverse, n) != 0) {
        rt_psy_eq_destroy(eq);
        return NULL;
    }
    for (uint32_t b = 0; b < NB; b++) memcpy(eq->coeffs + 5 * b, (double[5]){1, 0, 0, 0, 0}, sizeof(double[5]));
    memcpy(eq->target_coeffs, eq->coeffs, sizeof eq->coeffs);
    return eq;
}

void rt_psy_eq_destroy(rt_psy_eq *eq)
{
    if (!eq) return;
    rt_biquad_destroy(eq->cascade);
    free(eq->in_ptrs);
    free(eq->out_ptrs);
    free(eq);
}

/* Put coefficients `c` (active x 5) in use. */
static void use_coefficients(rt_psy_eq *eq, const double *c)
{
    for (uint32_t m = 0; m < eq->active; m++) {
        memcpy(eq->coeffs + 5 * m, c + 5 * m, sizeof(double[5]));
        rt_biquad_set_coefficients(eq->cascade, m, c + 5 * m);
    }
}

static void finish_ramp(rt_psy_eq *eq)
{
    eq->ramp_steps_left = 0;
    memcpy(eq->section_db, eq->ramp_to_db, sizeof eq->section_db);
    use_coefficients(eq, eq->target_coeffs);
}

/* One ramp step at a grid point: section gains linear in dB from `from` to `to`. */
static void ramp_step(rt_psy_eq *eq)
{
    if (--eq->ramp_steps_left == 0) {
        finish_ramp(eq);
        return;
    }
    double t = 1.0 - (double)eq->ramp_steps_left / (double)eq->ramp_steps;
    for (uint32_t m = 0; m < eq->active; m++) {
        double g = eq->ramp_from_db[m] + (eq->ramp_to_db[m] - eq->ramp_from_db[m]) * t;
        double c[5];
        if (design(eq, m, g, c) == 0) {
            eq->section_db[m] = g;
            memcpy(eq->coeffs + 5 * m, c, sizeof c);
            rt_biquad_set_coefficients(eq->cascade, m, c);
        }
    }
}

/* Reset clears the filter history and lands any ramp on its target (parameters kept). */
void rt_psy_eq_reset(rt_psy_eq *eq)
{
    rt_biquad_reset(eq->cascade);
    if (eq->ramp_steps_left) finish_ramp(eq);
    eq->step_phase = 0;
}

uint32_t rt_psy_eq_process(rt_psy_eq *eq, const float *const *in, float *const *out, uint32_t frames)
{
    uint32_t done = 0;
    while (done < frames) {
        uint32_t n = frames - done;
        if (eq->ramp_steps_left) {
            uint32_t to_grid = RAMP_STEP_FRAMES - eq->step_phase;
            if (n > to_grid) n = to_grid;
        }
        for (uint32_t ch = 0; ch < eq->channels; ch++) {
            eq->in_ptrs[ch] = in[ch] + done;
            eq->out_ptrs[ch] = out[ch] + done;
        }
        rt_biquad_process(eq->cascade, eq->in_ptrs, eq->out_ptrs, n);
        done += n;
        eq->step_phase = (eq->step_phase + n) % RAMP_STEP_FRAMES;
        if (eq->ramp_steps_left && eq->step_phase == 0) ramp_step(eq);
    }
    return frames;
}

uint32_t rt_psy_eq_latency(const rt_psy_eq *eq) { return 0; }

uint32_t rt_psy_eq_active_bands(const rt_psy_eq *eq) { return eq->active; }

/* Design every active section for gains g into coeffs; -1 if one fails. */
static int design_all(const rt_psy_eq *eq, const double *g, double *coeffs)
{
    for (uint32_t m = 0; m < eq->active; m++)
        if (design(eq, m, g[m], coeffs + 5 * m) != 0) return -1;
    return 0;
}

static double clamp(double v, double lim) { return v > lim ? lim : (v < -lim ? -lim : v); }

int rt_psy_eq_set_gains_db(rt_psy_eq *eq, const double *gains_db)
{
    for (uint32_t b = 0; b < NB; b++)
        if (!isfinite(gains_db[b]) || fabs(gains_db[b]) > RT_PSY_EQ_MAX_COMMAND_DB) return -1;

    const uint32_t n = eq->active;
    double g[NB] = {0}, trial[NB * 5] = {0}, realized[NB] = {0}, residual[NB] = {0};
    /* First solve (the paper's): g = B^-1 t. */
    for (uint32_t i = 0; i < n; i++) {
        double s = 0.0;
        for (uint32_t j = 0; j < n; j++) s += eq->inverse[i * n + j] * gains_db[j];
        g[i] = clamp(s, SECTION_GAIN_LIMIT_DB);
    }
    /* Correction: the filters' dB shapes are not proportional to their gains, so
     * re-solve for the residual measured on the actual coefficients. */
    for (int step = 0; step < CORRECTION_STEPS; step++) {
        if (design_all(eq, g, trial) != 0) return -1;
        centre_response(eq, trial, realized);
        for (uint32_t k = 0; k < n; k++) residual[k] = gains_db[k] - realized[k];
        for (uint32_t i = 0; i < n; i++) {
            double s = 0.0;
            for (uint32_t j = 0; j < n; j++) s += eq->inverse[i * n + j] * residual[j];
            g[i] = clamp(g[i] + s, SECTION_GAIN_LIMIT_DB);
        }
    }
    if (design_all(eq, g, trial) != 0) return -1;

    memcpy(eq->ramp_from_db, eq->section_db, sizeof eq->section_db);
    memcpy(eq->ramp_to_db, g, sizeof g);
    memcpy(eq->target_coeffs, trial, sizeof trial);
    if (eq->ramp_steps == 0) {
        finish_ramp(eq);
    } else {
        eq->ramp_steps_left = eq->ramp_steps;  /* the first step lands on the next grid point */
    }
    return 0;
}

int rt_psy_eq_set_gains_db_now(rt_psy_eq *eq, const double *gains_db)
{
    if (rt_psy_eq_set_gains_db(eq, gains_db) != 0) return -1;
    if (eq->ramp_steps_left) finish_ramp(eq);
    return 0;
}

uint32_t rt_psy_eq_ramp_frames_left(const rt_psy_eq *eq)
{
    if (!eq->ramp_steps_left) return 0;
    return (eq->ramp_steps_left - 1) * RAMP_STEP_FRAMES + (RAMP_STEP_FRAMES - eq->step_phase);
}

void rt_psy_eq_section_gains_db(const rt_psy_eq *eq, double *dest) { memcpy(dest, eq->section_db, sizeof eq->section_db); }

void rt_psy_eq_centre_response_db(const rt_psy_eq *eq, double *dest)
{
    for (uint32_t k = 0; k < NB; k++) dest[k] = 0.0;
    centre_response(eq, eq->coeffs, dest);
}

void rt_psy_eq_read_coefficients(const rt_psy_eq *eq, double *dest) { memcpy(dest, eq->coeffs, sizeof eq->coeffs); }
