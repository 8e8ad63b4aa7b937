"""RBJ Audio EQ Cookbook coefficients written out independently of the C kernel
(float64, from the cookbook text), used as the reference in the tests."""

import math

import numpy as np


def rbj(kind: str, fs: float, f0: float, q: float = 1 / math.sqrt(2), gain_db: float = 0.0,
        slope: float | None = None) -> np.ndarray:
    """One second-order section as scipy's sos row [b0 b1 b2 1 a1 a2] (normalised)."""
    A = 10 ** (gain_db / 40)
    w0 = 2 * math.pi * f0 / fs
    c, s = math.cos(w0), math.sin(w0)
    if slope is not None:
        alpha = s / 2 * math.sqrt((A + 1 / A) * (1 / slope - 1) + 2)
    else:
        alpha = s / (2 * q)
    k = 2 * math.sqrt(A) * alpha
    if kind == "low_pass":
        b, a = [(1 - c) / 2, 1 - c, (1 - c) / 2], [1 + alpha, -2 * c, 1 - alpha]
    elif kind == "high_pass":
        b, a = [(1 + c) / 2, -(1 + c), (1 + c) / 2], [1 + alpha, -2 * c, 1 - alpha]
    elif kind == "band_pass":
        b, a = [alpha, 0, -alpha], [1 + alpha, -2 * c, 1 - alpha]
    elif kind == "notch":
        b, a = [1, -2 * c, 1], [1 + alpha, -2 * c, 1 - alpha]
    elif kind == "all_pass":
        b, a = [1 - alpha, -2 * c, 1 + alpha], [1 + alpha, -2 * c, 1 - alpha]
    elif kind == "peaking":
        b, a = [1 + alpha * A, -2 * c, 1 - alpha * A], [1 + alpha / A, -2 * c, 1 - alpha / A]
    elif kind == "low_shelf":
        b = [A * ((A + 1) - (A - 1) * c + k), 2 * A * ((A - 1) - (A + 1) * c), A * ((A + 1) - (A - 1) * c - k)]
        a = [(A + 1) + (A - 1) * c + k, -2 * ((A - 1) + (A + 1) * c), (A + 1) + (A - 1) * c - k]
    elif kind == "high_shelf":
        b = [A * ((A + 1) + (A - 1) * c + k), -2 * A * ((A - 1) + (A + 1) * c), A * ((A + 1) + (A - 1) * c - k)]
        a = [(A + 1) - (A - 1) * c + k, 2 * ((A - 1) - (A + 1) * c), (A + 1) - (A - 1) * c - k]
    else:
        raise ValueError(kind)
    b = np.array(b) / a[0]
    a = np.array(a) / a[0]
    return np.concatenate([b, a])


def response(sos: np.ndarray, freqs_hz: np.ndarray, fs: float) -> np.ndarray:
    """Complex response of a cascade at the given frequencies, from the transfer function."""
    z1 = np.exp(-2j * np.pi * np.asarray(freqs_hz) / fs)
    h = np.ones_like(z1)
    for b0, b1, b2, _a0, a1, a2 in np.atleast_2d(sos):
        h *= (b0 + b1 * z1 + b2 * z1 ** 2) / (1 + a1 * z1 + a2 * z1 ** 2)
    return h
