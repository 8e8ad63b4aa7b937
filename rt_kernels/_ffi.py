"""Loads the compiled extension and hands out channel-pointer arrays."""

from __future__ import annotations

import numpy as np

try:
    from rt_kernels._rt import ffi, lib
except ImportError as exc:  # pragma: no cover - only without a build
    raise ImportError(
        "rt_kernels: the C extension is not built; install the package with "
        "`pip install -e .` (or run `python rt_kernels/build_ffi.py`)"
    ) from exc

__all__ = ["ffi", "lib", "channel_pointers", "denormals_off"]


def channel_pointers(block: np.ndarray):
    """`float *[channels]` pointing at the rows of a C-contiguous planar block."""
    channels, frames = block.shape
    base = block.ctypes.data
    row_bytes = frames * block.itemsize
    return ffi.new("float *[]", [ffi.cast("float *", base + c * row_bytes) for c in range(channels)])


class denormals_off:
    """FTZ/DAZ on for the duration of one kernel call, then restored, so numpy
    code running later on the same thread keeps IEEE subnormals."""

    __slots__ = ("_previous",)

    def __enter__(self):
        self._previous = lib.rt_denormals_enable()
        return self

    def __exit__(self, *exc):
        lib.rt_denormals_restore(self._previous)
        return False
