/* Which vector instruction set the hand-dispatched kernels use on this machine. */
#ifndef RT_CPU_LEVEL_H
#define RT_CPU_LEVEL_H

/* cffi:begin */
/* 0: baseline (x86-64 SSE2, or not x86), 3: x86-64-v3 (AVX2 + FMA), 4: x86-64-v4
 * (AVX-512 F, CD, BW, DQ, VL).  The environment variable AURALIS_RT_ISA = base | v3 | v4
 * caps it, so tests and benchmarks can run every path on one machine.  Read once, at the
 * first call (kernels call it from create, never from the audio thread). */
int rt_cpu_level(void);
/* The cap asked for by AURALIS_RT_ISA (-1: none or not understood). */
int rt_cpu_level_cap(void);
/* cffi:end */

#endif
