"""A running engine for the control tests: the live chain of a small test preset in an
Executor driven by a real-time paced thread (engine.control.driver.OfflineDriver)
fed a steady 937.5 Hz tone, with a tap that keeps the recent output so a test can
measure the level the commands produce."""

from __future__ import annotations

import collections
import json
import math
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from engine.control import Dispatcher, Session
from engine.control.driver import OfflineDriver
from engine.live import live_executor
from graph.nodes import NODE_TYPES
from presets import load_preset

RATE = 48000
BLOCK = 256
TONE_DBFS = -20.0  # peak level of the test tone
TONE_HZ = 937.5  # 5 periods per BLOCK

#: input gain -> compressor -> limiter, far from limiting at the tone's level.
PROBE_PRESET = {
    "schema_version": 2, "name": "probe", "description": "control tests", "adaptive": False,
    "intensity": 1.0, "target": {"integrated_lufs": -14.0, "ceiling_dbtp": -0.5},
    "chain": [
        {"name": "input", "type": "gain", "params": {"gain_db": 0.0, "ramp_ms": 5.0}},
        {"name": "comp", "type": "compressor",
         "params": {"threshold_db": -6.0, "ratio": 4.0, "knee_db": 0.0, "attack_ms": 1.0, "release_ms": 50.0,
                    "makeup_db": 0.0, "detector": "rms", "rms_ms": 10.0, "link": "max"}},
        {"name": "limiter", "type": "limiter",
         "params": {"release_ms": 50.0, "auto_release": False, "lookahead_ms": 1.5, "true_peak": False}},
    ],
}


def write_probe_preset(directory: Path, name: str = "probe") -> Path:
    data = dict(PROBE_PRESET, name=name)
    path = Path(directory) / f"{name}.json"
    path.write_text(json.dumps(data, indent=2))
    return path


def tone(seconds: float = 1.0, level_dbfs: float = TONE_DBFS, channels: int = 2) -> np.ndarray:
    """A sine of 937.5 Hz: exactly 5 periods per 256-frame block, so it loops seamlessly
    and the RMS of any whole number of blocks is exact.  Planar float32."""
    frames = BLOCK * max(1, round(seconds * RATE / BLOCK))
    t = np.arange(frames) / RATE
    x = 10 ** (level_dbfs / 20) * np.sin(2 * np.pi * TONE_HZ * t)
    return np.ascontiguousarray(np.stack([x.astype(np.float32)] * channels))


class Rig:
    """Session + Dispatcher over a driven executor; ``level_db(seconds)`` measures the
    RMS (dBFS) of the most recent output."""

    def __init__(self, preset_path: Path, *, realtime: bool = True, source: np.ndarray | None = None):
        self.preset = load_preset(preset_path, node_types=NODE_TYPES)
        self.executor, _ = live_executor(self.preset, 2, RATE, max_block=1024)
        self._out = collections.deque(maxlen=int(2 * RATE / BLOCK))  # ~2 s of output blocks
        self._lock = threading.Lock()
        self.blocks = 0
        self.driver = OfflineDriver(self.executor, block=BLOCK, source=tone() if source is None else source,
                                    tap=self._tap, realtime=realtime)
        self.session = Session(self.executor, self.preset, driver=self.driver, preset_path=str(preset_path))
        self.dispatcher = Dispatcher(self.session)
        self.driver.start()

    def _tap(self, block: np.ndarray) -> None:
        with self._lock:
            self._out.append(block.copy())
            self.blocks += 1

    def wait_blocks(self, n: int, timeout_s: float = 10.0) -> None:
        """Wait until ``n`` more blocks have been processed."""
        target = self.blocks + n
        deadline = time.monotonic() + timeout_s
        while self.blocks < target:
            assert time.monotonic() < deadline, f"the driver stalled at block {self.blocks} (wanted {target})"
            time.sleep(0.005)

    def settle(self, seconds: float) -> None:
        self.wait_blocks(math.ceil(seconds * RATE / BLOCK))

    def level_db(self, seconds: float = 0.05) -> float:
        """RMS of the last ``seconds`` of output, dBFS (channel 0)."""
        n = math.ceil(seconds * RATE / BLOCK)
        with self._lock:
            recent = list(self._out)[-n:]
        x = np.concatenate([b[0] for b in recent]).astype(np.float64)
        return 20 * math.log10(max(float(np.sqrt(np.mean(x * x))), 1e-12))

    def run(self, line: str):
        reply = self.dispatcher.execute(line)
        assert reply.ok, f"{line!r}: {reply.text}"
        return reply

    def close(self) -> None:
        self.session.close()


def sine_rms_db(peak_dbfs: float) -> float:
    return peak_dbfs - 20 * math.log10(math.sqrt(2))


@pytest.fixture
def rig(tmp_path, monkeypatch):
    """A running Rig on the probe preset; user presets and REPL history under tmp_path."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    r = Rig(write_probe_preset(tmp_path))
    r.settle(0.2)
    yield r
    r.close()
