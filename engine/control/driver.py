"""An executor run by a Python thread instead of an audio callback: for `auralis-rt repl`
without a host (edit and save presets, watch the meters on a file) and for tests.

The thread processes one block of ``block`` frames at a time, paced to real time (so
ramps, meters and the toolbar behave as they do live), from a source: silence, or an
array played in a loop.  ``tap(out)`` sees every output block (planar float32) on the
driver thread.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

import numpy as np

__all__ = ["OfflineDriver"]


class OfflineDriver:
    """Feeds ``executor`` from ``source`` (None: silence; else planar float32
    (channels, frames), looped) in blocks of ``block`` frames on its own thread.

    ``realtime``: pace to the sample rate (else as fast as the executor runs).
    ``tap``: called with each output block on the driver thread."""

    def __init__(self, executor, *, block: int = 256, source: np.ndarray | None = None, source_name: str = "",
                 tap: Callable[[np.ndarray], None] | None = None, realtime: bool = True):
        if not isinstance(block, int) or not 1 <= block <= executor.max_block:
            raise ValueError(f"OfflineDriver: block = {block!r} is outside [1, {executor.max_block}] frames")
        if source is not None:
            source = np.ascontiguousarray(source, dtype=np.float32)
            if source.ndim != 2 or source.shape[0] != executor.channels or source.shape[1] == 0:
                raise ValueError(f"OfflineDriver: source must be ({executor.channels}, frames > 0) planar float32, "
                                 f"got shape {source.shape}")
        self.executor = executor
        self.block = block
        self.source = source
        self.source_name = source_name or ("silence" if source is None else "a looped signal")
        self.tap = tap
        self.realtime = realtime
        self.frames = 0          # frames processed
        self.late_resyncs = 0    # times the thread fell more than 0.5 s behind real time
        self.error: BaseException | None = None
        self._pos = 0
        self._silence = np.zeros((executor.channels, block), np.float32)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> "OfflineDriver":
        if self.running:
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="auralis-offline-driver", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def __enter__(self) -> "OfflineDriver":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _next_block(self) -> np.ndarray:
        if self.source is None:
            return self._silence
        n = self.source.shape[1]
        idx = (self._pos + np.arange(self.block)) % n
        self._pos = (self._pos + self.block) % n
        return np.ascontiguousarray(self.source[:, idx])

    def _run(self) -> None:
        period_s = self.block / self.executor.sample_rate
        next_t = time.monotonic()
        try:
            while not self._stop.is_set():
                out = self.executor.process(self._next_block())
                self.frames += self.block
                if self.tap is not None:
                    self.tap(out)
                if self.realtime:
                    next_t += period_s
                    delay = next_t - time.monotonic()
                    if delay > 0:
                        self._stop.wait(delay)
                    elif delay < -0.5:
                        next_t = time.monotonic()
                        self.late_resyncs += 1
        except BaseException as exc:  # reported by status; the control thread goes on
            self.error = exc
