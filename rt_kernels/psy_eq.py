"""Psychoacoustic EQ: Bark-band analysis, masking, target curves and the band EQ.

Three parts, each usable on its own:

- :class:`BandAnalyzer` / :func:`analyze_bands` (background worker, C): the power
  spectral density of a signal averaged over each of the 25 critical bands,
  window-gain compensated so that white noise, pink noise and tones read as their
  true spectra (ENG-07).
- :func:`adaptive_gains_db` (background worker): target minus measured, compared
  after spreading across bands (Schroeder's masking spreading function), level
  matched, clipped to +-12 dB; never NaN or Inf (ENG-02).
- :class:`PsychoacousticEQ` (audio thread, C): 25 peaking biquads in cascade,
  minimum phase, latency 0, whose section gains are solved with band interaction
  taken into account so the response at every band centre is the command (+-0.5 dB;
  measured < 0.01 dB).  :func:`linear_phase_eq` applies the same curve offline as a
  linear-phase FIR, latency reported.

The analysis and the EQ are C; the gain computation (25 numbers, once per analysis)
and the offline FIR design are numpy/scipy on the background worker.

Bands: Zwicker's critical-band edges (Zwicker & Terhardt 1980) from 20 Hz, with a
25th band 15.5-20 kHz; centres are the geometric means of the edges; at sample rates
whose Nyquist frequency is at or below a band's upper edge, that band and the ones
above it are inactive (no analysis, 0 dB gain, identity section).  All 25 are active
above 40 kHz (44.1 kHz included); 24 at 32 kHz, 17 at 8 kHz.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import signal

from rt_kernels import _validate as check
from rt_kernels._ffi import channel_pointers, ffi, lib
from rt_kernels.kernel import Kernel

BANDS = int(lib.RT_PSY_EQ_BANDS)
MAX_GAIN_DB = float(lib.RT_PSY_EQ_MAX_COMMAND_DB)


def _band_table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    edges = ffi.new("double[]", BANDS + 1)
    centres = ffi.new("double[]", BANDS)
    q = ffi.new("double[]", BANDS)
    lib.rt_psy_eq_band_table(edges, centres, q)
    as_array = lambda p, n: np.frombuffer(ffi.buffer(p, 8 * n), dtype=np.float64).copy()  # noqa: E731
    return as_array(edges, BANDS + 1), as_array(centres, BANDS), as_array(q, BANDS)


BAND_EDGES_HZ, BAND_CENTRES_HZ, BAND_Q = _band_table()
for _table in (BAND_EDGES_HZ, BAND_CENTRES_HZ, BAND_Q):
    _table.flags.writeable = False
del _table


def active_band_count(sample_rate: float) -> int:
    """Bands whose upper edge lies below the Nyquist frequency (the C kernel's rule)."""
    return int(np.count_nonzero(BAND_EDGES_HZ[1:] < 0.5 * sample_rate))


def bark(freq_hz) -> np.ndarray:
    """Zwicker & Terhardt's critical-band rate in Bark."""
    f = np.asarray(freq_hz, dtype=np.float64)
    return 13.0 * np.arctan(0.00076 * f) + 3.5 * np.arctan((f / 7500.0) ** 2)


# ---------------------------------------------------------------------------------
# Analysis

SILENCE_MEAN_SQUARE = 1e-10  # -100 dBFS: below this the signal is treated as silence


@dataclass(frozen=True)
class BandAnalysis:
    """Band levels of one signal (all channels pooled).

    ``band_psd``: mean one-sided power spectral density over each band, in
    full-scale^2 per Hz (a full-scale sine has mean square 0.5).  ``band_power``:
    ``band_psd`` times the band's width, i.e. the signal power inside the band.
    ``band_psd_db``: 10*log10(band_psd), -inf where the band holds no power (not
    replaced by a number).  Inactive bands (above Nyquist) hold 0 and -inf.
    """

    sample_rate: float
    active_bands: int
    band_psd: np.ndarray
    band_power: np.ndarray
    mean_square: float

    @property
    def band_psd_db(self) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return 10.0 * np.log10(self.band_psd)

    @property
    def silent(self) -> bool:
        return not self.mean_square > SILENCE_MEAN_SQUARE


class BandAnalyzer(Kernel):
    """Streaming band analysis in C (rt_kernels/csrc/psy_analysis.c): feed blocks, read
    :meth:`result` between blocks.

    Welch's method: periodic Hann segments of ``fft_size`` frames (the smallest power
    of two >= sample_rate / 4, so bins are <= 4 Hz apart) at 50 % overlap, aligned to
    the absolute frame count, no detrending, each periodogram scaled by
    2 / (sample_rate * sum(window**2)).  That window-energy compensation is what makes
    noise read at its true density and a sine's band power equal its mean square
    (ENG-07: the predecessor compared windowed analysis with unwindowed filtering).
    Channels are pooled by power.  cffi releases the GIL for the C calls, so a worker
    thread running it does not hold up the control thread.
    """

    _prefix = "rt_psy_analysis"

    def __init__(self, channels: int, sample_rate: float):
        super().__init__(channels, sample_rate)
        self._adopt(lib.rt_psy_analysis_create(self.channels, self.sample_rate))
        self.frames_seen = 0

    @property
    def fft_size(self) -> int:
        return int(lib.rt_psy_analysis_fft_size(self._state))

    def reset(self) -> None:
        super().reset()
        self.frames_seen = 0

    def process(self, block: np.ndarray) -> int:  # type: ignore[override]
        """Analyse a planar float32 block; returns the number of frames read."""
        block = check.audio_block("BandAnalyzer.process", block, self.channels)
        done = int(lib.rt_psy_analysis_process(self._state, channel_pointers(block), block.shape[1]))
        self.frames_seen += done
        return done

    def result(self, where: str = "BandAnalyzer.result", name: str = "the input") -> "BandAnalysis":
        """The analysis of everything fed since creation or reset (complete segments)."""
        psd = ffi.new("double[]", BANDS)
        if lib.rt_psy_analysis_band_psd(self._state, psd) == 0:
            raise ValueError(f"{where}: {name} has {self.frames_seen} frames; the analysis needs at least "
                             f"{self.fft_size} (one FFT segment at {self.sample_rate:g} Hz)")
        band_psd = np.frombuffer(ffi.buffer(psd), dtype=np.float64).copy()
        return BandAnalysis(self.sample_rate, active_band_count(self.sample_rate), band_psd,
                            band_psd * np.diff(BAND_EDGES_HZ), float(lib.rt_psy_analysis_mean_square(self._state)))


def analyze_bands(audio: np.ndarray, sample_rate: float) -> BandAnalysis:
    """Band PSD of a whole planar float32 (channels, frames) signal (see :class:`BandAnalyzer`).

    Raises ValueError for non-finite samples (naming ``audio``, the channel and the
    frame) or a signal shorter than one FFT segment.
    """
    where = "analyze_bands"
    fs = check.sample_rate(where, sample_rate)
    audio = check.audio_block(where, audio, None, name="audio")
    analyzer = BandAnalyzer(audio.shape[0], fs)
    analyzer.process(audio)
    return analyzer.result(where, "audio")


# ---------------------------------------------------------------------------------
# Masking and targets

def schroeder_spreading_db(dz_bark) -> np.ndarray:
    """Schroeder, Atal & Hall (1979): excitation spread, dB, at dz = z_maskee - z_masker."""
    x = np.asarray(dz_bark, dtype=np.float64) + 0.474
    return 15.81 + 7.5 * x - 17.5 * np.sqrt(1.0 + x * x)


def spreading_matrix() -> np.ndarray:
    """S[k, j]: the linear power that a unit of band j's power excites in band k."""
    z = bark(BAND_CENTRES_HZ)
    return 10.0 ** (schroeder_spreading_db(z[:, None] - z[None, :]) / 10.0)


_SPREAD = spreading_matrix()
_SPREAD.flags.writeable = False

#: Named targets as tilts in dB/octave relative to "flat", pivoting at 1 kHz.
TARGET_TILTS_DB_PER_OCTAVE = {"flat": 0.0, "warm": -1.5, "bright": 1.5}


def target_band_power(target: str | Sequence[float] = "flat") -> np.ndarray:
    """Relative band powers of a target spectrum.

    "flat" is equal power per octave (pink, -3 dB/octave in PSD; what a fractional-
    octave analyser shows as flat, and the long-term balance of most mixes); "warm"
    and "bright" tilt it by -1.5 / +1.5 dB per octave about 1 kHz.  The power of the
    target PSD is integrated exactly over each band.  A sequence gives 25 offsets in
    dB applied to "flat" per band.
    """
    where = "target_band_power"
    lo, hi = BAND_EDGES_HZ[:-1], BAND_EDGES_HZ[1:]
    if isinstance(target, str):
        if target not in TARGET_TILTS_DB_PER_OCTAVE:
            raise ValueError(f"{where}: target = {target!r} is not one of {', '.join(TARGET_TILTS_DB_PER_OCTAVE)}")
        alpha = TARGET_TILTS_DB_PER_OCTAVE[target] / (10.0 * np.log10(2.0))  # PSD ~ f**(alpha - 1)
        if alpha == 0.0:
            return np.log(hi / lo)
        return ((hi / 1000.0) ** alpha - (lo / 1000.0) ** alpha) / alpha
    offsets = _db_vector(where, "target", target, lo_db=-24.0, hi_db=24.0)
    return np.log(hi / lo) * 10.0 ** (offsets / 10.0)


def _db_vector(where: str, name: str, values, lo_db: float, hi_db: float) -> np.ndarray:
    """25 finite real numbers, each in [lo_db, hi_db]."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise TypeError(f"{where}: {name} must be a sequence of {BANDS} numbers, got {type(values).__name__}")
    if len(values) != BANDS:
        raise ValueError(f"{where}: {name} has {len(values)} values; expected {BANDS} (one per band)")
    return np.array([check.number(where, f"{name}[{i}]", v, lo_db, hi_db, "dB") for i, v in enumerate(values)])


def adaptive_gains_db(analysis: BandAnalysis | Sequence[float], sample_rate: float | None = None,
                      target: str | Sequence[float] = "flat", masking: bool = True) -> np.ndarray:
    """EQ command (25 gains in dB) that moves the measured spectrum toward ``target``.

    ``analysis``: a :class:`BandAnalysis`, or 25 band powers (``band_power``, >= 0,
    finite; then ``sample_rate`` is required).  Target and measured band powers are
    both spread across bands with Schroeder's function (``masking=True``), so the
    comparison is between excitation patterns: a dip that neighbouring bands mask is
    not chased.  The target is scaled to the measured total power (the EQ shapes,
    loudness normalisation sets the level).  gain = 10*log10(target / measured),
    clipped to +-12 dB.  Silence (mean square <= -100 dBFS, or no power), inactive
    bands, and bands more than 100 dB below the loudest band get exactly 0 dB.
    The result is always finite.
    """
    where = "adaptive_gains_db"
    if isinstance(analysis, BandAnalysis):
        power = np.array(analysis.band_power, dtype=np.float64)
        active, silent = analysis.active_bands, analysis.silent
    else:
        if sample_rate is None:
            raise ValueError(f"{where}: sample_rate is required when band powers are given as an array")
        fs = check.sample_rate(where, sample_rate)
        if isinstance(analysis, (str, bytes)) or not hasattr(analysis, "__len__"):
            raise TypeError(f"{where}: band_power must be a BandAnalysis or {BANDS} numbers")
        if len(analysis) != BANDS:
            raise ValueError(f"{where}: band_power has {len(analysis)} values; expected {BANDS}")
        power = np.array([check.number(where, f"band_power[{i}]", v, 0.0, np.inf)
                          for i, v in enumerate(analysis)])
        active, silent = active_band_count(fs), False
    if not isinstance(masking, bool):
        raise TypeError(f"{where}: masking must be True or False, got {masking!r}")
    gains = np.zeros(BANDS)
    measured = power[:active]
    total = measured.sum()
    if silent or active == 0 or not total > 0.0:
        return gains
    wanted = target_band_power(target)[:active]
    wanted = wanted * (total / wanted.sum())
    if masking:
        spread = _SPREAD[:active, :active]
        measured, wanted = spread @ measured, spread @ wanted
    usable = power[:active] > measured.max() * 1e-10
    gains[:active][usable] = np.clip(10.0 * np.log10(wanted[usable] / measured[usable]), -MAX_GAIN_DB, MAX_GAIN_DB)
    if not np.all(np.isfinite(gains)):  # cannot happen after the checks above; never hand on NaN
        raise RuntimeError(f"{where}: computed non-finite gains {gains}")
    return gains


# ---------------------------------------------------------------------------------
# The EQ (C kernel)

class PsychoacousticEQ(Kernel):
    """25 Bark-band peaking biquads in cascade, minimum phase, latency 0 (C kernel).

    ``set_gains_db(g)`` commands the magnitude at each band centre (25 values in
    +-12 dB); the section gains are solved for the interaction between bands
    (Valimaki & Liski 2017, plus exact-response correction steps), allocation-free,
    so the C call may run on the audio thread.  The section gains then move linearly
    in dB to their solved values over ``ramp_ms`` (redesigned every 32 frames of the
    absolute frame count, so the output does not depend on block sizes); gains given
    to the constructor, ``set_gains_db(..., immediate=True)`` and ``reset()`` land at
    once.  Bands above Nyquist (``active_bands`` < 25 at 40 kHz and below) ignore their
    command.
    """

    _prefix = "rt_psy_eq"
    band_edges_hz = BAND_EDGES_HZ
    band_centres_hz = BAND_CENTRES_HZ

    def __init__(self, channels: int, sample_rate: float, gains_db: Sequence[float] | None = None,
                 ramp_ms: float = 20.0):
        super().__init__(channels, sample_rate)
        self.ramp_ms = check.number("PsychoacousticEQ", "ramp_ms", ramp_ms, 0.0, float(lib.RT_PSY_EQ_MAX_RAMP_MS), "ms")
        self._adopt(lib.rt_psy_eq_create(self.channels, self.sample_rate, self.ramp_ms))
        self._gains_db = np.zeros(BANDS)
        if gains_db is not None:
            self.set_gains_db(gains_db, immediate=True)

    @property
    def active_bands(self) -> int:
        return int(lib.rt_psy_eq_active_bands(self._state))

    @property
    def gains_db(self) -> np.ndarray:
        """The command in force (25 values, dB at each band centre)."""
        return self._gains_db.copy()

    @property
    def ramp_frames_left(self) -> int:
        """Frames until the last gain change is complete (0 when settled)."""
        return int(lib.rt_psy_eq_ramp_frames_left(self._state))

    def set_gains_db(self, gains_db: Sequence[float], immediate: bool = False) -> None:
        """Command 25 gains (dB at the band centres, each in [-12, 12])."""
        gains = _db_vector("PsychoacousticEQ.set_gains_db", "gains_db", gains_db, -MAX_GAIN_DB, MAX_GAIN_DB)
        setter = lib.rt_psy_eq_set_gains_db_now if immediate else lib.rt_psy_eq_set_gains_db
        if setter(self._state, ffi.new("double[]", gains.tolist())) != 0:
            raise RuntimeError(f"rt_psy_eq_set_gains_db refused the validated command {gains.tolist()}")
        self._gains_db = gains

    def _read(self, fn, n: int) -> np.ndarray:
        buf = ffi.new("double[]", n)
        fn(self._state, buf)
        return np.frombuffer(ffi.buffer(buf), dtype=np.float64).copy()

    def section_gains_db(self) -> np.ndarray:
        """The gain of each peaking section now (solved: may exceed +-12 dB; mid-ramp: the value reached)."""
        return self._read(lib.rt_psy_eq_section_gains_db, BANDS)

    def sos(self) -> np.ndarray:
        """The cascade as scipy second-order sections, shape (25, 6)."""
        c = self._read(lib.rt_psy_eq_read_coefficients, 5 * BANDS).reshape(BANDS, 5)
        return np.column_stack([c[:, :3], np.ones(BANDS), c[:, 3:]])


# ---------------------------------------------------------------------------------
# Offline linear-phase mode

def linear_phase_fir(gains_db: Sequence[float], sample_rate: float) -> np.ndarray:
    """Symmetric (linear-phase) FIR with the magnitude of the minimum-phase cascade.

    Odd length 2**k - 1 (k such that the frequency grid is <= 1.5 Hz apart), so its
    delay, (len - 1) / 2 frames, is a whole number of frames.  The zero-phase
    magnitude is sampled on that grid and windowed by a Hann window of the full
    length (the cascade's narrowest feature is many bins wide, so the window's
    smoothing is far below the +-0.5 dB bar).
    """
    where = "linear_phase_fir"
    fs = check.sample_rate(where, sample_rate)
    gains = _db_vector(where, "gains_db", gains_db, -MAX_GAIN_DB, MAX_GAIN_DB)
    eq = PsychoacousticEQ(1, fs, gains)
    n = 1 << int(np.ceil(np.log2(fs / 1.5)))
    _, response = signal.sosfreqz(eq.sos(), worN=n // 2 + 1, whole=False, fs=fs)
    kernel = np.fft.irfft(np.abs(response), n)  # zero phase: symmetric about index 0
    kernel = np.roll(kernel, n // 2 - 1)[: n - 1]  # centre at (n - 2) / 2, odd length n - 1
    return kernel * signal.windows.hann(n - 1, sym=True)


def linear_phase_eq(audio: np.ndarray, sample_rate: float, gains_db: Sequence[float],
                    compensate_latency: bool = True) -> tuple[np.ndarray, int]:
    """Apply the EQ curve offline with zero phase distortion: returns (audio, latency).

    The FIR from :func:`linear_phase_fir` is applied by FFT overlap-add
    (scipy.signal.oaconvolve): contiguous rectangular segments, a window pair that
    sums to exactly one, so the result is the exact linear convolution.  With
    ``compensate_latency`` (default) the output is trimmed to be time-aligned with
    the input and has as many frames (the latency returned is then the one removed);
    otherwise it is ``latency`` frames late (same length, tail cut).
    """
    where = "linear_phase_eq"
    audio = check.audio_block(where, audio, None, name="audio")
    fir = linear_phase_fir(gains_db, sample_rate)
    latency = (fir.size - 1) // 2
    frames = audio.shape[1]
    if frames == 0:
        return audio.copy(), latency
    full = signal.oaconvolve(audio.astype(np.float64), fir[None, :], mode="full", axes=1)
    start = latency if compensate_latency else 0
    return np.ascontiguousarray(full[:, start:start + frames], dtype=np.float32), latency
