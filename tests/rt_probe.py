"""The LD_PRELOAD probe for offline executor calls: it interposes rt_executor_process
and counts malloc/calloc/realloc/free and pthread_mutex_lock calls made while it runs
(NOTES.md: the practical substitute for RealtimeSanitizer here).  The GIL release
around the cffi call happens outside that window, so it is not counted.

run_probed() builds the probe, then runs a child script: BODY (which defines the
executor `ex`, the planar float32 input `x` and a `control()` loop that runs until
`stop` is set) inside a fixed harness that processes `x` in a loop for `seconds`
while control() runs on another thread, then checks the probe on a deliberate
allocation.  (The JACK callback has its own checker, tests/csrc/rtcheck.c.)
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

PROBE_C = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
static __thread int armed;
static unsigned long hits, calls;
void rt_probe_arm(int on) { armed = on; }
unsigned long rt_probe_hits(void) { return __atomic_load_n(&hits, __ATOMIC_RELAXED); }
unsigned long rt_probe_calls(void) { return calls; }
/* Interposes the extension's own symbol (calls inside a -fPIC object go through its PLT). */
uint32_t rt_executor_process(void *ex, const float *const *in, float *const *out, uint32_t frames)
{
    static uint32_t (*real)(void *, const float *const *, float *const *, uint32_t);
    if (!real) real = (uint32_t (*)(void *, const float *const *, float *const *, uint32_t))
                      dlsym(dlopen(getenv("RT_SO"), RTLD_NOLOAD | RTLD_LAZY), "rt_executor_process");
    armed = 1;
    uint32_t r = real(ex, in, out, frames);
    armed = 0;
    calls++;
    return r;
}
static void hit(void) { if (armed) __atomic_add_fetch(&hits, 1, __ATOMIC_RELAXED); }
void *malloc(size_t n) { hit(); return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { hit(); return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { hit(); return __libc_realloc(p, n); }
void free(void *p) { if (p) hit(); __libc_free(p); }
int pthread_mutex_lock(pthread_mutex_t *m) {
    static int (*real)(pthread_mutex_t *);
    if (!real) real = (int (*)(pthread_mutex_t *))dlsym(RTLD_NEXT, "pthread_mutex_lock");
    hit();
    return real(m);
}
"""

_PRELUDE = """
import ctypes, threading, time
import numpy as np
from rt_kernels._ffi import channel_pointers, lib

probe = ctypes.CDLL(None)
probe.rt_probe_arm.argtypes = [ctypes.c_int]
probe.rt_probe_hits.restype = ctypes.c_ulong
probe.rt_probe_calls.restype = ctypes.c_ulong
stop = threading.Event()
"""

_LOOP = """
out = np.empty_like(x)
pin, pout = channel_pointers(x), channel_pointers(out)
t = threading.Thread(target=control)
t.start()
calls = 0
deadline = time.monotonic() + {seconds}
while time.monotonic() < deadline:
    lib.rt_executor_process(ex.c_executor, pin, pout, x.shape[1])
    calls += 1
stop.set()
t.join()
audio_hits = probe.rt_probe_hits()
probe.rt_probe_arm(1)
np.zeros(1 << 20)          # the control: an allocation on the armed thread is seen
probe.rt_probe_arm(0)
assert probe.rt_probe_calls() >= calls, "the probe did not interpose rt_executor_process"
print(calls, audio_hits, probe.rt_probe_hits() - audio_hits, ex.telemetry().nonfinite_blocks)
"""


def run_probed(tmp_path: Path, body: str, seconds: float) -> tuple[int, int, int, int]:
    """(executor calls, allocations/locks seen inside them, seen in the control
    allocation, blocks the non-finite guard silenced)."""
    (tmp_path / "probe.c").write_text(PROBE_C)
    so = tmp_path / "probe.so"
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", str(so), str(tmp_path / "probe.c"), "-ldl"], check=True)
    root = Path(__file__).resolve().parent.parent
    import rt_kernels._rt as ext
    env = dict(os.environ, LD_PRELOAD=str(so), PYTHONPATH=str(root), RT_SO=ext.__file__)
    script = _PRELUDE + textwrap.dedent(body) + _LOOP.format(seconds=seconds)
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60,
                         cwd=root)
    assert run.returncode == 0, run.stderr
    calls, audio_hits, control_hits, guarded = map(int, run.stdout.split())
    return calls, audio_hits, control_hits, guarded
