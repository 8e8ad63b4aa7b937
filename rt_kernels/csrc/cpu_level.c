#include "cpu_level.h"

#include <stdlib.h>
#include <string.h>

int rt_cpu_level_cap(void)
{
    const char *s = getenv("AURALIS_RT_ISA");
    if (!s) return -1;
    if (strcmp(s, "base") == 0) return 0;
    if (strcmp(s, "v3") == 0) return 3;
    if (strcmp(s, "v4") == 0) return 4;
    return -1;
}

static int detect(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) return 0;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl")
        && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512cd"))
        return 4;
    return 3;
#else
    return 0;
#endif
}

int rt_cpu_level(void)
{
    /* Racing first calls compute the same value: a benign, idempotent store. */
    static volatile int level = -1;
    if (level < 0) {
        int found = detect(), cap = rt_cpu_level_cap();
        level = cap >= 0 && cap < found ? cap : found;
    }
    return level;
}
