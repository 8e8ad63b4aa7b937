"""StereoWidth (3 bands) and CorrelationMeter vs the same computations in scipy.signal.

Peers, on the same audio in the same run:
- width: the identical network (M/S, LR4 tree from scipy.signal.butter, all-pass
  compensation, weights) run with scipy.signal.sosfilt in float64 over the whole
  buffer — 11 second-order sections per frame, as in the C kernel;
- correlation: the same exponential averages with scipy.signal.lfilter.
Units are ns per sample-channel (frames * 2).
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from tools.bench.common import Row, median_seconds, per_unit_ns
from rt_kernels.stereo import CorrelationMeter, StereoWidth

FS = 48000
CROSSOVERS = (200.0, 2000.0)
WIDTHS = (0.5, 1.2, 1.5)
BLOCK = 256


def _allpass_sos(butter_sos: np.ndarray) -> np.ndarray:
    """A 2nd-order all-pass from a Butterworth section: numerator = reversed denominator."""
    _, _, _, a0, a1, a2 = butter_sos[0]
    return np.array([[a2, a1, a0, a0, a1, a2]])


def _scipy_width(x: np.ndarray) -> np.ndarray:
    lp = [signal.butter(2, f, "low", fs=FS, output="sos") for f in CROSSOVERS]
    hp = [signal.butter(2, f, "high", fs=FS, output="sos") for f in CROSSOVERS]
    ap = [_allpass_sos(s) for s in lp]
    x = x.astype(np.float64)
    m, s = 0.5 * (x[0] + x[1]), 0.5 * (x[0] - x[1])
    low = signal.sosfilt(np.vstack([lp[0], lp[0]]), s)
    rest = signal.sosfilt(np.vstack([hp[0], hp[0]]), s)
    middle = signal.sosfilt(np.vstack([lp[1], lp[1]]), rest)
    high = signal.sosfilt(np.vstack([hp[1], hp[1]]), rest)
    side = signal.sosfilt(ap[1], WIDTHS[0] * low) + WIDTHS[1] * middle + WIDTHS[2] * high
    m = signal.sosfilt(np.vstack(ap), m)
    return np.stack([m + side, m - side]).astype(np.float32)


def _scipy_correlation(x: np.ndarray, window_ms: float) -> float:
    a = -np.expm1(-1.0 / (window_ms * 1e-3 * FS))
    x = x.astype(np.float64)
    b, den = [a], [1.0, -(1.0 - a)]
    lr = signal.lfilter(b, den, x[0] * x[1])[-1]
    ll = signal.lfilter(b, den, x[0] * x[0])[-1]
    rr = signal.lfilter(b, den, x[1] * x[1])[-1]
    return lr / np.sqrt(ll * rr)


def run(opts) -> list[Row]:
    frames = int(opts.seconds * FS)
    rng = np.random.default_rng(1)
    x = (0.25 * rng.standard_normal((2, frames))).astype(np.float32)
    x[1] = 0.5 * x[0] + 0.5 * x[1]
    units = 2 * frames

    width = StereoWidth(FS, crossover_hz=CROSSOVERS, widths=WIDTHS)
    peer = _scipy_width(x).astype(np.float64)
    width.reset()
    ours = width.process(x).astype(np.float64)
    err = np.sqrt(np.mean((ours - peer) ** 2) / np.mean(peer ** 2))
    assert err < 1e-5, f"bench_stereo: C and scipy width outputs differ (relative rms {err:.2e})"

    def width_whole():
        width.reset()
        width.process(x)

    def width_blocks():
        width.reset()
        for i in range(0, frames, BLOCK):
            width.process(np.ascontiguousarray(x[:, i:i + BLOCK]))

    peer_width = per_unit_ns(median_seconds(lambda: _scipy_width(x), opts.repeats), units)
    rows = [
        Row("StereoWidth 3 bands (whole buffer)", "ns per sample-channel",
            per_unit_ns(median_seconds(width_whole, opts.repeats), units),
            "scipy sosfilt, same network", peer_width),
        Row(f"StereoWidth 3 bands ({BLOCK}-frame blocks)", "ns per sample-channel",
            per_unit_ns(median_seconds(width_blocks, opts.repeats), units),
            "scipy sosfilt, same network", peer_width, "incl. Python call per block"),
    ]

    meter = CorrelationMeter(FS, window_ms=300.0)

    def meter_whole():
        meter.reset()
        meter.process(x)

    rows.append(Row("CorrelationMeter (whole buffer)", "ns per sample-channel",
                    per_unit_ns(median_seconds(meter_whole, opts.repeats), units),
                    "scipy lfilter, same averages",
                    per_unit_ns(median_seconds(lambda: _scipy_correlation(x, 300.0), opts.repeats), units)))
    return rows
