"""Channel-layout kernels (stateless, latency 0).

Channel counts never change by accident: mono_to_stereo returns stereo input
unchanged and refuses anything but 1 or 2 channels (predecessor defect ENG-01).
"""

from __future__ import annotations

import numpy as np

from rt_kernels import _validate as check
from rt_kernels._ffi import channel_pointers, lib


def _run(where: str, fn, block: np.ndarray, out_channels: int) -> np.ndarray:
    out = np.empty((out_channels, block.shape[1]), dtype=np.float32)
    fn(channel_pointers(block), channel_pointers(out), block.shape[1])
    return out


def mono_to_stereo(block: np.ndarray) -> np.ndarray:
    """(1, n) -> (2, n) with both channels equal; (2, n) comes back unchanged."""
    block = check.audio_block("mono_to_stereo", block, None)
    if block.shape[0] not in (1, 2):
        raise ValueError(f"mono_to_stereo: block has {block.shape[0]} channels; expected 1 (mono) "
                         f"or 2 (stereo, returned unchanged) - downmix multichannel audio explicitly")
    out = np.empty((2, block.shape[1]), dtype=np.float32)
    lib.rt_mono_to_stereo(channel_pointers(block), block.shape[0], channel_pointers(out), block.shape[1])
    return out


def stereo_to_mono(block: np.ndarray) -> np.ndarray:
    """(2, n) -> (1, n), the mean of the two channels."""
    return _run("stereo_to_mono", lib.rt_stereo_to_mono, check.audio_block("stereo_to_mono", block, 2), 1)


def ms_encode(block: np.ndarray) -> np.ndarray:
    """(L, R) -> (mid, side) with mid = (L + R) / 2, side = (L - R) / 2."""
    return _run("ms_encode", lib.rt_ms_encode, check.audio_block("ms_encode", block, 2), 2)


def ms_decode(block: np.ndarray) -> np.ndarray:
    """(mid, side) -> (L, R) with L = mid + side, R = mid - side."""
    return _run("ms_decode", lib.rt_ms_decode, check.audio_block("ms_decode", block, 2), 2)
