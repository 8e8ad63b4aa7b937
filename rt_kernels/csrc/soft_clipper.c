#include "soft_clipper.h"

#include <math.h>
#include <stdlib.h>

struct rt_soft_clipper {
    uint32_t channels;
    double ceiling;      /* C */
    double knee;         /* T */
    double width;        /* C - T */
    double inv_width;
    double hold;         /* largest float <= C, as a double */
};

static int valid(double ceiling_db, double knee_db)
{
    return ceiling_db >= -60.0 && ceiling_db <= 0.0 && knee_db >= 0.1 && knee_db <= 24.0;
}

static void design(rt_soft_clipper *s, double ceiling_db, double knee_db)
{
    s->ceiling = pow(10.0, ceiling_db / 20.0);
    s->knee = s->ceiling * pow(10.0, -knee_db / 20.0);
    s->width = s->ceiling - s->knee;
    s->inv_width = 1.0 / s->width;
    float hold = (float)s->ceiling;
    if ((double)hold > s->ceiling) hold = nextafterf(hold, 0.0f);
    s->hold = hold;
}

rt_soft_clipper *rt_soft_clipper_create(uint32_t channels, double ceiling_db, double knee_db)
{
    if (channels == 0 || !valid(ceiling_db, knee_db)) return NULL;
    rt_soft_clipper *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->channels = channels;
    design(s, ceiling_db, knee_db);
    return s;
}

void rt_soft_clipper_destroy(rt_soft_clipper *s) { free(s); }

void rt_soft_clipper_reset(rt_soft_clipper *s) {}

int rt_soft_clipper_set_params(rt_soft_clipper *s, double ceiling_db, double knee_db)
{
    if (!valid(ceiling_db, knee_db)) return -1;
    design(s, ceiling_db, knee_db);
    return 0;
}

static inline double shape(const rt_soft_clipper *s, double a)
{
    /* a > T */
    return s->knee + s->width * tanh((a - s->knee) * s->inv_width);
}

double rt_soft_clipper_curve(const rt_soft_clipper *s, double x)
{
    double a = fabs(x);
    if (!(a > s->knee)) return x;
    return copysign(shape(s, a), x);
}

uint32_t rt_soft_clipper_process(rt_soft_clipper *s, const float *const *in, float *const *out, uint32_t frames)
{
    const double knee = s->knee, hold = s->hold;
    for (uint32_t ch = 0; ch < s->channels; ch++) {
        const float *x = in[ch];
        float *y = out[ch];
        for (uint32_t n = 0; n < frames; n++) {
            double v = x[n], a = fabs(v);
            if (a > knee) {
                double m = shape(s, a);
                if (m > hold) m = hold;
                v = copysign(m, v);
            }
            y[n] = (float)v;
        }
    }
    return frames;
}

uint32_t rt_soft_clipper_latency(const rt_soft_clipper *s) { return 0; }

double rt_soft_clipper_ceiling_linear(const rt_soft_clipper *s) { return s->hold; }
double rt_soft_clipper_knee_linear(const rt_soft_clipper *s) { return s->knee; }
