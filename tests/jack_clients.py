"""Test-side JACK clients (JACK-Client, Python callbacks): a player and a recorder.

Both index audio by JACK frame time (``last_frame_time``, the same for every
client in a cycle), so a recording lines up with what was played whatever the
scheduling, and both note any cycle they missed (a gap in frame time).
"""

from __future__ import annotations

import threading
import time

import jack
import numpy as np


class _TestClient:
    """A JACK-Client test client with `channels` ports that counts missed cycles
    (`gaps`); subclasses set up their state in _setup() and handle each cycle in
    _cycle(t, frames)."""

    def __init__(self, server: str, channels: int, name: str, output: bool):
        self.client = jack.Client(name, servername=server, no_start_server=True)
        ports, prefix = (self.client.outports, "out") if output else (self.client.inports, "in")
        self.ports = [ports.register(f"{prefix}_{c + 1}") for c in range(channels)]
        self.gaps = 0
        self._armed = False
        self._last: int | None = None
        self._setup(channels)
        self.client.set_process_callback(self._process)
        self.client.activate()

    def _setup(self, channels: int) -> None:
        pass

    def _process(self, frames: int) -> None:
        t = self.client.last_frame_time
        if self._last is not None and t != self._last + frames:
            self.gaps += 1
        self._last = t
        self._cycle(t, frames)

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()


class Player(_TestClient):
    """Plays `signal` (channels, frames) once, from the first cycle after play()."""

    def __init__(self, server: str, channels: int, name: str = "tplayer"):
        super().__init__(server, channels, name, output=True)

    def _setup(self, channels: int) -> None:
        self.signal = np.zeros((channels, 0), np.float32)
        self.start_frame: int | None = None

    def _cycle(self, t: int, frames: int) -> None:
        if self._armed and self.start_frame is None:
            self.start_frame = t
        for c, port in enumerate(self.ports):
            buf = port.get_array()
            if self.start_frame is None:
                buf.fill(0.0)
                continue
            i = t - self.start_frame
            seg = self.signal[c, i:i + frames] if 0 <= i < self.signal.shape[1] else self.signal[c, :0]
            buf[:len(seg)] = seg
            buf[len(seg):] = 0.0

    def play(self, signal: np.ndarray) -> None:
        self.signal = np.ascontiguousarray(signal, dtype=np.float32)
        self.start_frame = None
        self._armed = True


class Recorder(_TestClient):
    """Records its inputs by frame time from the first cycle after record()."""

    def __init__(self, server: str, channels: int, name: str = "trecorder"):
        super().__init__(server, channels, name, output=False)

    def _setup(self, channels: int) -> None:
        self.buffer = np.zeros((channels, 0), np.float32)
        self.base_frame: int | None = None
        self.filled = 0
        self._follow: Player | None = None
        self._done = threading.Event()

    def _cycle(self, t: int, frames: int) -> None:
        if not self._armed or self._done.is_set():
            return
        if self.base_frame is None:
            if self._follow is not None:
                # The player runs before us in the same cycle (graph order).
                if self._follow.start_frame is None:
                    return
                self.base_frame = self._follow.start_frame
            else:
                self.base_frame = t
        off = t - self.base_frame
        n = min(frames, self.buffer.shape[1] - off)
        if n > 0:
            for c, port in enumerate(self.ports):
                self.buffer[c, off:off + n] = port.get_array()[:n]
            self.filled = off + n
        if self.filled >= self.buffer.shape[1]:
            self._done.set()

    def record(self, frames: int, follow: "Player | None" = None) -> None:
        """Record `frames` from now, or (follow=player) from the player's first frame."""
        self.buffer = np.zeros((len(self.ports), frames), np.float32)
        self._follow = follow
        self.base_frame = None
        self.filled = 0
        self._done.clear()
        self._armed = True

    def wait(self, timeout_s: float) -> bool:
        """Until the buffer is full."""
        ok = self._done.wait(timeout_s)
        self._armed = False
        return ok

    def stop(self) -> None:
        self._armed = False


def wait_until(predicate, timeout_s: float, step_s: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step_s)
    return bool(predicate())
