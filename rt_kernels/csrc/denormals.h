/* Flush-to-zero / denormals-are-zero for the calling thread. */
#ifndef RT_DENORMALS_H
#define RT_DENORMALS_H
#include <stdint.h>

/* cffi:begin */
/* Turn FTZ and DAZ on for the calling thread; returns the previous control
 * word, to hand to rt_denormals_restore.  The audio thread calls this once;
 * offline callers wrap each call so numpy code in the same thread keeps IEEE
 * subnormals. */
uint64_t rt_denormals_enable(void);
void rt_denormals_restore(uint64_t previous);
/* 1 when FTZ and DAZ are both on in the calling thread (0 where unsupported). */
int rt_denormals_active(void);
/* cffi:end */
#endif
