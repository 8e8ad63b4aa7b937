"""Checks every facade call makes before C sees its arguments (predecessor defect ENG-10).

Each failure raises TypeError (wrong type or dtype) or ValueError (wrong value)
with one line naming the call, the argument, the value and what is allowed.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

SAMPLE_RATE_MIN_HZ = 8000
SAMPLE_RATE_MAX_HZ = 384000


def number(where: str, name: str, value, lo: float, hi: float, unit: str = "",
           lo_open: bool = False, hi_open: bool = False) -> float:
    """A finite real number in [lo, hi] (or open at either end)."""
    if isinstance(value, bool) or not isinstance(value, (Real, np.floating, np.integer)):
        raise TypeError(f"{where}: {name} must be a number, got {type(value).__name__} {value!r}")
    v = float(value)
    lo_ok = v > lo if lo_open else v >= lo
    hi_ok = v < hi if hi_open else v <= hi
    if not math.isfinite(v) or not (lo_ok and hi_ok):
        interval = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
        suffix = f" {unit}" if unit else ""
        raise ValueError(f"{where}: {name} = {v!r} is outside {interval}{suffix}")
    return v


def count(where: str, name: str, value, lo: int, hi: int) -> int:
    """An int in [lo, hi]."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{where}: {name} must be an int, got {type(value).__name__} {value!r}")
    if not lo <= int(value) <= hi:
        raise ValueError(f"{where}: {name} = {value} is outside [{lo}, {hi}]")
    return int(value)


def sample_rate(where: str, value) -> float:
    return number(where, "sample_rate", value, SAMPLE_RATE_MIN_HZ, SAMPLE_RATE_MAX_HZ, "Hz")


def channels(where: str, value, hi: int = 64) -> int:
    return count(where, "channels", value, 1, hi)


def first_non_finite(array: np.ndarray) -> tuple[int, ...] | None:
    """Index of the first NaN/Inf in C order, or None when every value is finite."""
    finite = np.isfinite(array)
    if finite.all():
        return None
    return tuple(int(i) for i in np.argwhere(~finite)[0])


def audio_block(where: str, block, expected_channels: int | None, name: str = "block") -> np.ndarray:
    """A planar float32 (channels, frames) C-contiguous block of finite samples.

    Zero frames is a valid block (it produces zero frames); zero channels is not.
    """
    block = audio_block_shape(where, block, expected_channels, name)
    bad = first_non_finite(block)
    if bad is not None:
        ch, frame = bad
        raise ValueError(
            f"{where}: {name} holds non-finite samples "
            f"(first at channel {ch}, frame {frame}: {block[ch, frame]!r})"
        )
    return block


def same_shape(where: str, first_name: str, first: np.ndarray, second_name: str, second: np.ndarray) -> None:
    if first.shape != second.shape:
        raise ValueError(f"{where}: {first_name} has shape {first.shape} but {second_name} has {second.shape}")


def audio_block_shape(where: str, block, expected_channels: int | None, name: str = "block") -> np.ndarray:
    """audio_block's checks without the finiteness scan (type, dtype, shape, channels,
    contiguity, frame count), same messages.  For callers that check finiteness in the same
    pass as their processing and call audio_block on the rare failure for its message."""
    if not isinstance(block, np.ndarray):
        raise TypeError(f"{where}: {name} must be a numpy array, got {type(block).__name__}")
    if block.dtype != np.float32:
        raise TypeError(
            f"{where}: {name} has dtype {block.dtype}; kernels take float32 "
            f"(convert explicitly with {name}.astype(np.float32) if the precision loss is intended)"
        )
    if block.ndim != 2:
        raise ValueError(f"{where}: {name} has shape {block.shape}; expected planar (channels, frames)")
    if block.shape[0] == 0:
        raise ValueError(f"{where}: {name} has no channels (shape {block.shape})")
    if expected_channels is not None and block.shape[0] != expected_channels:
        raise ValueError(f"{where}: {name} has {block.shape[0]} channels; expected {expected_channels}")
    if not block.flags.c_contiguous:
        raise ValueError(f"{where}: {name} is not C-contiguous (pass np.ascontiguousarray({name}))")
    if block.shape[1] > 0xFFFFFFFF:
        raise ValueError(f"{where}: {name} has {block.shape[1]} frames; at most 2**32 - 1 per call")
    return block
