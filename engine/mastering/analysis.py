"""What adaptive mastering measures on the input before it chooses parameters.

BS.1770 loudness and peaks, crest factor, the Bark-band balance (psychoacoustic EQ
analysis, window-compensated) and the stereo phase correlation, all in one streamed
pass (memory does not grow with the length of the input).
"""

from __future__ import annotations

import math
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from engine.mastering.measure import Measurement, _from_meter
from rt_kernels.loudness import LoudnessMeter
from rt_kernels.psy_eq import BandAnalysis, BandAnalyzer


@dataclass(frozen=True)
class InputAnalysis:
    measurement: Measurement
    rms_dbfs: float            #: over the whole signal, all channels pooled
    crest_db: float            #: sample peak - RMS (dB); inf for silence
    bands: BandAnalysis | None  #: None when the input is shorter than one analysis segment
    correlation: float | None  #: phase correlation over the whole signal (stereo only), None for mono


def analyse_blocks(blocks: Iterable[np.ndarray], sample_rate: int, channels: int) -> InputAnalysis:
    """One pass over the blocks.  The band analysis (FFTs, about half the work) runs on a
    worker thread, in order, while this thread reads and meters the next block: the C
    calls release the GIL, so on a machine with two cores the pass takes about as long
    as the slower half.  At most two blocks are in flight."""
    meter = LoudnessMeter(channels, sample_rate, true_peak=True)
    bands = BandAnalyzer(channels, sample_rate)
    stereo = channels == 2
    sum_lr = sum_ll = sum_rr = 0.0
    sum_sq = 0.0
    frames = 0
    pending: deque[Future] = deque()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="band-analysis") as worker:
        for block in blocks:
            planar = np.ascontiguousarray(block.T, dtype=np.float32)
            while len(pending) >= 2:
                pending.popleft().result()
            pending.append(worker.submit(bands.process, planar))
            meter.process(planar)
            # Per-block float32 dot products (relative error ~1e-6 over a block), summed in
            # double across blocks: plenty for a crest factor and a correlation, and no
            # float64 copy of the audio.
            squares = [float(np.dot(row, row)) for row in planar]
            sum_sq += sum(squares)
            if stereo:
                sum_lr += float(np.dot(planar[0], planar[1]))
                sum_ll += squares[0]
                sum_rr += squares[1]
            frames += planar.shape[1]
        while pending:
            pending.popleft().result()
    measurement = _from_meter(meter, frames, sample_rate, channels)
    mean_square = sum_sq / max(1, frames * channels)
    rms_dbfs = 10 * math.log10(mean_square) if mean_square > 0 else -math.inf
    crest = measurement.sample_peak_dbfs - rms_dbfs if mean_square > 0 else math.inf
    try:
        band_result = bands.result()
    except ValueError:  # shorter than one FFT segment: no band balance to act on
        band_result = None
    correlation = None
    if stereo:
        correlation = sum_lr / math.sqrt(sum_ll * sum_rr) if sum_ll > 0 and sum_rr > 0 else 0.0
    return InputAnalysis(measurement, rms_dbfs, crest, band_result, correlation)
