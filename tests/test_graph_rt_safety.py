"""The audio path allocates nothing and takes no mutex: rt_executor_process runs in a
subprocess with an LD_PRELOAD probe that interposes rt_executor_process itself and
counts malloc/calloc/realloc/free and pthread_mutex_lock calls made while it runs
(NOTES.md: the practical substitute for RealtimeSanitizer here).  The GIL release
around the cffi call happens outside that window, so it is not counted."""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

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

SCRIPT = r"""
import ctypes, threading, time
import numpy as np
from graph import Chain, Executor, Graph, Node, Parallel
from rt_kernels._ffi import channel_pointers, lib

probe = ctypes.CDLL(None)
probe.rt_probe_arm.argtypes = [ctypes.c_int]
probe.rt_probe_hits.restype = ctypes.c_ulong
probe.rt_probe_calls.restype = ctypes.c_ulong

g = Graph(Node("dc_blocker", "dc"), Node("biquad", "eq", freq_hz=900.0, gain_db=3.0),
          Parallel(Chain(Node("delay", "d", delay_frames=100), Node("gain", "g", gain_db=-3.0)), Chain()))
ex = Executor(g, 2, 48000, max_block=64, intensity=0.7)
x = (0.1 * np.random.default_rng(0).standard_normal((2, 256))).astype(np.float32)
out = np.empty_like(x)
pin, pout = channel_pointers(x), channel_pointers(out)
stop = threading.Event()

def control():
    i = 0
    while not stop.is_set():
        ex.publish({"eq.gain_db": float(i % 12), "g.gain_db": -float(i % 7), "eq.bypass": i % 3 == 0,
                    "intensity": (i % 10) / 10})
        ex.schedule(ex.frames + 100, {"eq.freq_hz": 500.0 + i % 1000})
        if i % 20 == 0:
            ex.swap(Graph(*g.root.elements[: 1 + i % 3]))
        ex.telemetry()
        i += 1
        time.sleep(0.0002)

t = threading.Thread(target=control)
t.start()
x[0, 7] = np.nan  # the guard path too
calls = 0
deadline = time.monotonic() + 1.0
while time.monotonic() < deadline:
    lib.rt_executor_process(ex.c_executor, pin, pout, 256)
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


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc to build the probe")
def test_audio_path_never_allocates_or_locks(tmp_path: Path):
    (tmp_path / "probe.c").write_text(PROBE_C)
    lib = tmp_path / "probe.so"
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", str(lib), str(tmp_path / "probe.c"), "-ldl"],
                   check=True)
    root = Path(__file__).resolve().parent.parent
    import rt_kernels._rt as ext
    env = dict(os.environ, LD_PRELOAD=str(lib), PYTHONPATH=str(root), RT_SO=ext.__file__)
    run = subprocess.run([sys.executable, "-c", textwrap.dedent(SCRIPT)], env=env, capture_output=True, text=True,
                         timeout=60, cwd=root)
    assert run.returncode == 0, run.stderr
    calls, audio_hits, control_hits, guarded = map(int, run.stdout.split())
    assert calls > 100 and guarded > 0
    assert control_hits > 0  # the probe sees an allocation on an armed thread
    assert audio_hits == 0
