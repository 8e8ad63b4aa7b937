/* Shared definitions for every kernel. See rt_kernels/README.md for the convention. */
#ifndef RT_COMMON_H
#define RT_COMMON_H

#include <stdint.h>
#include <stddef.h>

/* Below this magnitude a recursive state variable is set to zero.  1e-30 is
 * about -600 dBFS: far below anything audible, far above FLT_MIN (1.2e-38), so
 * neither the state nor any float32 derived from it is ever subnormal. */
#define RT_STATE_FLOOR 1e-30

#define RT_PI 3.14159265358979323846

/* Hot loops are compiled twice, for baseline x86-64 and for x86-64-v3 (AVX2 +
 * FMA), and the loader picks one per machine (GCC/clang target_clones, ifunc).
 * No -march=native: a build must run on any x86-64.  Kernels that pick a path by hand
 * (AVX-512 included) ask rt_cpu_level() (cpu_level.h) at create time, so the
 * AURALIS_RT_ISA cap lets tests compare every path on one machine. */
#if defined(__x86_64__) && defined(__GNUC__) && defined(__linux__)
#define RT_HOT_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define RT_HOT_CLONES
#endif

/* Two doubles processed together (one SSE2/NEON register): a channel pair. */
typedef double rt_v2d __attribute__((vector_size(16)));

static inline double rt_flush_tiny(double v) { return (v < RT_STATE_FLOOR && v > -RT_STATE_FLOOR) ? 0.0 : v; }

#endif
