#include "denormals.h"

#if defined(__SSE2__) || defined(__x86_64__)
#include <xmmintrin.h>
#define RT_FTZ_DAZ_BITS 0x8040u /* FTZ (bit 15) | DAZ (bit 6) */

uint64_t rt_denormals_enable(void)
{
    unsigned int previous = _mm_getcsr();
    _mm_setcsr(previous | RT_FTZ_DAZ_BITS);
    return previous;
}

void rt_denormals_restore(uint64_t previous) { _mm_setcsr((unsigned int)previous); }

int rt_denormals_active(void) { return (_mm_getcsr() & RT_FTZ_DAZ_BITS) == RT_FTZ_DAZ_BITS; }

#elif defined(__aarch64__)
#define RT_FPCR_FZ (1ull << 24)

static uint64_t read_fpcr(void)
{
    uint64_t v;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(v));
    return v;
}

static void write_fpcr(uint64_t v) { __asm__ __volatile__("msr fpcr, %0" : : "r"(v)); }

uint64_t rt_denormals_enable(void)
{
    uint64_t previous = read_fpcr();
    write_fpcr(previous | RT_FPCR_FZ);
    return previous;
}

void rt_denormals_restore(uint64_t previous) { write_fpcr(previous); }

int rt_denormals_active(void) { return (read_fpcr() & RT_FPCR_FZ) != 0; }

#else
uint64_t rt_denormals_enable(void) { return 0; }
void rt_denormals_restore(uint64_t previous) { (void)previous; }
int rt_denormals_active(void) { return 0; }
#endif
