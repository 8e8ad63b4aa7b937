"""Child process for the LD_PRELOAD real-time checker (tests/test_jack_backend.py).

Run as ``python -m tests.jack_rtcheck_child SERVER MODE SECONDS TEST_LIB`` with
LD_PRELOAD=librtcheck.so.  Runs a JackBackend for SECONDS while the control
thread keeps publishing (parameter changes, process swaps, latency changes,
status reads), then prints the checker's counts as one JSON line.

MODE: clean (test gain-with-delay), portaudio (the same on PortAudioBackend
through PortAudio's JACK host API), bad (mallocs and locks in the callback),
python (a cffi Python callback as the process function: takes the GIL),
executor (the default preset's live chain in the callback while the control
thread publishes parameter snapshots, reads the meters and swaps plans).
"""

from __future__ import annotations

import ctypes
import json
import sys
import time

from engine.backends.jack import JackBackend, ffi
from tests.jack_fixtures import load_test_process_lib

NAMES = ["malloc", "calloc", "realloc", "free", "pthread_mutex_lock", "PyGILState_Ensure", "PyEval_RestoreThread"]


def counts() -> dict:
    buf = (ctypes.c_ulong * (2 * len(NAMES) + 1))()
    ctypes.CDLL(None).rtcheck_counts(buf)
    n = len(NAMES)
    return {"inside": dict(zip(NAMES, buf[:n])), "outside": dict(zip(NAMES, buf[n:2 * n])), "brackets": buf[2 * n]}


def main(server: str, mode: str, seconds: float, lib_path: str) -> None:
    tffi, tlib = load_test_process_lib(lib_path)
    if mode == "portaudio":
        import os

        os.environ["JACK_DEFAULT_SERVER"] = server  # before PortAudio initialises
        from engine.backends.portaudio import PortAudioBackend, terminate_portaudio

        backend = PortAudioBackend("system", channels=2, sample_rate=48000, blocksize=256, lock_memory=False)
    else:
        backend = JackBackend("rtcheck", server=server, channels=2, lock_memory=False)
    publishes = 0

    def gain_delay(delay, gain):
        ctx = tffi.gc(tlib.tp_gain_delay_create(2, delay, gain), tlib.tp_gain_delay_destroy)
        return int(tffi.cast("uintptr_t", tlib.tp_gain_delay_process)), int(tffi.cast("uintptr_t", ctx)), ctx

    if mode in ("clean", "portaudio"):
        fn, ctx, keep = gain_delay(100, 1.0)
        backend.set_process(fn, ctx, keep_alive=keep, latency_frames=100)
    elif mode == "bad":
        channels = tffi.new("uint32_t *", 2)
        backend.set_process(int(tffi.cast("uintptr_t", tlib.tp_bad_process)), int(tffi.cast("uintptr_t", channels)),
                            keep_alive=channels)
    elif mode == "executor":
        from engine.live import METER_NODE, live_executor
        from graph import Graph, read_loudness

        executor, _ = live_executor("adaptive", 2, 48000.0)
        full = executor.graph
        # The same nodes without the width stage: a plan swap that keeps every surviving node's state.
        reduced = Graph(*[e for e in full.root.elements if getattr(e, "name", "") != "width"])
        backend.set_executor(executor)
    elif mode == "python":
        def process(ctx, ins, outs, frames):
            for c in range(2):
                ffi.memmove(outs[c], ins[c], 4 * frames)
            return frames

        callback = ffi.callback("rt_process_fn", process)
        backend.set_process(callback, None, keep_alive=callback)
    else:
        raise SystemExit(f"unknown mode {mode!r}")

    if mode == "portaudio":
        backend.start()
    else:
        backend.activate()
        backend.autoconnect()
    start = time.monotonic()
    before = counts()
    step = 0
    while time.monotonic() - start < seconds:
        time.sleep(0.01)
        step += 1
        if mode in ("clean", "portaudio"):
            tlib.tp_gain_delay_set_gain(keep, 0.5 + 0.5 * (step % 2))  # parameter change
            publishes += 1
            if step % 10 == 0:  # swap the process function (new state, new latency)
                delay = 100 + (step // 10) % 3
                fn, ctx, keep = gain_delay(delay, 1.0)
                backend.set_process(fn, ctx, keep_alive=keep, latency_frames=delay)
                publishes += 1
            backend.status()
            backend.collect()
        elif mode == "executor":
            executor.publish({"comp.threshold_db": -30.0 + 5 * (step % 3), "eq.band_10_db": 2.0 * (step % 2),
                              "input.gain_db": -1.0 * (step % 4), "limiter.ceiling_db": -1.0 - 0.1 * (step % 2)})
            publishes += 1
            read_loudness(executor, METER_NODE)
            executor.telemetry()
            if step % 25 == 0:
                executor.swap(reduced if (step // 25) % 2 else full)
                publishes += 1
            executor.collect()
            backend.status()
            backend.collect()
    after = counts()
    status = backend.status()
    backend.destroy()
    if mode == "portaudio":
        terminate_portaudio()
    result = {
        "inside": {k: after["inside"][k] - before["inside"][k] for k in NAMES},
        "outside": {k: after["outside"][k] - before["outside"][k] for k in NAMES},
        "callbacks": after["brackets"] - before["brackets"],
        "publishes": publishes,
        "swaps": status.process_swaps if mode != "executor" else executor.retired["plans"],
        "xruns": status.xruns,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4])
