"""Psychoacoustic EQ: the 25-band C cascade vs pedalboard's 25 PeakFilters (settled, and
while gain ramps run), the gain solve, and the band analysis (stereo, 44.1 kHz)."""

from __future__ import annotations

import numpy as np
from scipy import signal

from tools.bench.common import Row, median_seconds, per_unit_ns

FS = 44100
CHANNELS = 2


def run(opts) -> list[Row]:
    import pedalboard

    from rt_kernels._ffi import denormals_off, ffi, lib
    from rt_kernels.psy_eq import (BAND_CENTRES_HZ, BAND_EDGES_HZ, BAND_Q, BANDS, PsychoacousticEQ,
                                   analyze_bands)

    rng = np.random.default_rng(1)
    frames = int(opts.seconds * FS)
    audio = (0.25 * rng.standard_normal((CHANNELS, frames))).astype(np.float32)
    command = rng.uniform(-12, 12, BANDS)

    eq = PsychoacousticEQ(CHANNELS, FS, command)
    # The peer gets the very same filters: our solved section gains, centres and Q.
    board = pedalboard.Pedalboard([
        pedalboard.PeakFilter(cutoff_frequency_hz=float(f), gain_db=float(g), q=float(q))
        for f, g, q in zip(BAND_CENTRES_HZ, eq.section_gains_db(), BAND_Q)
    ])
    units = BANDS * frames * CHANNELS
    ours = median_seconds(lambda: eq.process(audio), repeats=opts.repeats)
    peer = median_seconds(lambda: board.process(audio, FS, reset=True), repeats=opts.repeats)
    rows = [Row("psy_eq 25-band cascade, stereo 44.1k", "ns per band-sample-channel",
                per_unit_ns(ours, units), "pedalboard 25x PeakFilter", per_unit_ns(peer, units))]

    # Gains changing all the time: a new command every ramp (20 ms), so the sections are
    # redesigned every 32 frames; the solve of each command is included.
    ramp_ms = 20.0
    ramping = lib.rt_psy_eq_create(CHANNELS, FS, ramp_ms)
    commands = [ffi.new("double[]", rng.uniform(-12, 12, BANDS).tolist()) for _ in range(2)]
    out = np.empty_like(audio)
    step = int(FS * ramp_ms / 1000)
    row_bytes = frames * audio.itemsize
    segments = [(ffi.new("float *[]", [ffi.cast("float *", audio.ctypes.data + c * row_bytes + 4 * start)
                                      for c in range(CHANNELS)]),
                 ffi.new("float *[]", [ffi.cast("float *", out.ctypes.data + c * row_bytes + 4 * start)
                                      for c in range(CHANNELS)]),
                 min(step, frames - start)) for start in range(0, frames, step)]

    def ramp_all_the_time():
        with denormals_off():
            for k, (src, dst, n) in enumerate(segments):
                lib.rt_psy_eq_set_gains_db(ramping, commands[k & 1])
                lib.rt_psy_eq_process(ramping, src, dst, n)
    ramped = median_seconds(ramp_all_the_time, repeats=opts.repeats)
    lib.rt_psy_eq_destroy(ramping)
    rows.append(Row("  same, a new command every 20 ms ramp", "ns per band-sample-channel", per_unit_ns(ramped, units)))

    state = lib.rt_psy_eq_create(CHANNELS, FS, 0.0)
    c_command = ffi.new("double[]", command.tolist())
    calls = 2000
    solve = median_seconds(lambda: [lib.rt_psy_eq_set_gains_db(state, c_command) for _ in range(calls)],
                           repeats=opts.repeats)
    lib.rt_psy_eq_destroy(state)
    rows.append(Row("psy_eq set_gains_db (solve + 25 designs)", "ns per call", per_unit_ns(solve, calls)))

    nfft = 1 << int(np.ceil(np.log2(FS / 4)))
    edges = np.asarray(BAND_EDGES_HZ)

    def welch_bands():
        freqs, psd = signal.welch(audio, fs=FS, window="hann", nperseg=nfft, noverlap=nfft // 2,
                                  detrend=False, scaling="density", axis=-1)
        psd = psd.mean(axis=0)
        return [psd[(freqs >= lo) & (freqs < hi)].mean() for lo, hi in zip(edges[:-1], edges[1:])]

    analysis = median_seconds(lambda: analyze_bands(audio, FS), repeats=opts.repeats)
    peer_analysis = median_seconds(welch_bands, repeats=opts.repeats)
    rows.append(Row("psy_eq analyze_bands, stereo 44.1k", "ns per second of audio (analysis)",
                    per_unit_ns(analysis, opts.seconds), "scipy welch + band means",
                    per_unit_ns(peer_analysis, opts.seconds)))
    return rows
