"""Base class of the Python facade: one C state, created here, freed on collection."""

from __future__ import annotations

import numpy as np

from rt_kernels import _validate as check
from rt_kernels._ffi import channel_pointers, denormals_off, ffi, lib


class Kernel:
    """A C kernel instance following the convention in rt_kernels/README.md.

    Subclasses set ``_prefix`` (``rt_<name>``) and create ``self._state`` in
    ``__init__``; this class supplies reset, latency and single-input process.
    """

    _prefix: str = ""

    def __init__(self, channels: int, sample_rate: float | None):
        where = type(self).__name__
        self.channels = check.channels(where, channels)
        self.sample_rate = None if sample_rate is None else check.sample_rate(where, sample_rate)
        self._state = ffi.NULL

    def _adopt(self, pointer) -> None:
        if pointer == ffi.NULL:
            raise MemoryError(f"{type(self).__name__}: the C kernel could not be created")
        self._state = ffi.gc(pointer, getattr(lib, f"{self._prefix}_destroy"))

    def _c(self, suffix: str):
        return getattr(lib, f"{self._prefix}_{suffix}")

    @property
    def latency_frames(self) -> int:
        """Frames by which the output lags the input."""
        return int(self._c("latency")(self._state))

    def reset(self) -> None:
        """Back to the just-created state (parameters kept, history cleared)."""
        self._c("reset")(self._state)

    def process(self, block: np.ndarray) -> np.ndarray:
        """Process a planar float32 (channels, frames) block; returns a new block of the same shape."""
        block = check.audio_block(f"{type(self).__name__}.process", block, self.channels)
        out = np.empty_like(block)
        with denormals_off():
            done = self._c("process")(self._state, channel_pointers(block), channel_pointers(out), block.shape[1])
        if done != block.shape[1]:
            raise RuntimeError(f"{self._prefix}_process returned {done} frames for {block.shape[1]}")
        return out
