#include "correlation.h"
#include "rt_common.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>

struct rt_correlation {
    double a;        /* one-pole coefficient */
    double lr, ll, rr;
    _Atomic double published;
};

rt_correlation *rt_correlation_create(uint32_t channels, double sample_rate, double window_ms)
{
    if (channels != 2 || !(sample_rate > 0.0) || !isfinite(sample_rate)) return NULL;
    if (!(window_ms > 0.0) || !isfinite(window_ms)) return NULL;
    rt_correlation *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->a = -expm1(-1.0 / (window_ms * 0.001 * sample_rate));
    atomic_init(&m->published, 0.0);
    return m;
}

void rt_correlation_destroy(rt_correlation *m) { free(m); }

void rt_correlation_reset(rt_correlation *m)
{
    m->lr = m->ll = m->rr = 0.0;
    atomic_store_explicit(&m->published, 0.0, memory_order_relaxed);
}

static double correlation_of(double lr, double ll, double rr)
{
    double den = sqrt(ll * rr);
    if (!(den > 0.0)) return 0.0; /* silence (or one silent channel): defined as 0 */
    double r = lr / den;
    if (r > 1.0) return 1.0;
    if (r < -1.0) return -1.0;
    return r == r ? r : 0.0;
}

uint32_t rt_correlation_process(rt_correlation *m, const float *const *in, uint32_t frames)
{
    const float *l = in[0], *r = in[1];
    const double a = m->a;
    double lr = m->lr, ll = m->ll, rr = m->rr;
    for (uint32_t i = 0; i < frames; i++) {
        double x = l[i], y = r[i];
        lr = rt_flush_tiny(lr + a * (x * y - lr));
        ll = rt_flush_tiny(ll + a * (x * x - ll));
        rr = rt_flush_tiny(rr + a * (y * y - rr));
    }
    m->lr = lr; m->ll = ll; m->rr = rr;
    atomic_store_explicit(&m->published, correlation_of(lr, ll, rr), memory_order_release);
    return frames;
}

uint32_t rt_correlation_latency(const rt_correlation *m) { return 0; }

double rt_correlation_value(const rt_correlation *m)
{
    return atomic_load_explicit(&((rt_correlation *)m)->published, memory_order_acquire);
}

double rt_correlation_coefficient(const rt_correlation *m) { return m->a; }
