"""The audio path allocates nothing and takes no mutex: rt_executor_process runs in a
subprocess under the LD_PRELOAD probe of tests/rt_probe.py, with parameter snapshots,
scheduled snapshots, plan swaps, bypass, intensity and the non-finite guard exercised
from a control thread."""

import shutil
from pathlib import Path

import pytest

from tests.rt_probe import run_probed

BODY = r"""
from graph import Chain, Executor, Graph, Node, Parallel

g = Graph(Node("dc_blocker", "dc"), Node("biquad", "eq", freq_hz=900.0, gain_db=3.0),
          Parallel(Chain(Node("delay", "d", delay_frames=100), Node("gain", "g", gain_db=-3.0)), Chain()))
ex = Executor(g, 2, 48000, max_block=64, intensity=0.7)
x = (0.1 * np.random.default_rng(0).standard_normal((2, 256))).astype(np.float32)
x[0, 7] = np.nan  # the guard path too

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
"""


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc to build the probe")
def test_audio_path_never_allocates_or_locks(tmp_path: Path):
    calls, audio_hits, control_hits, guarded = run_probed(tmp_path, BODY, seconds=1.0)
    assert calls > 100 and guarded > 0
    assert control_hits > 0  # the probe sees an allocation on an armed thread
    assert audio_hits == 0
