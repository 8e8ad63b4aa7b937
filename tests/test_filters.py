"""Biquad kernels against an independent float64 cookbook reference (scipy.signal.sosfilt)."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import signal

import rt_kernels as rk
from tests.conftest import BLOCK_SIZES, FLT_MIN, in_blocks, noise, subnormal_count
from tests.cookbook import rbj, response

RATES = (44100, 48000, 96000)

# (kind, f0, q, gain_db, slope): each filter type, plus low-frequency cases where a
# float32 filter state would be far off the -100 dB bar.
CASES = [
    ("peaking", 1000.0, 1.4, 6.0, None),
    ("peaking", 60.0, 0.7, -9.0, None),
    ("low_shelf", 120.0, 0.7071, 4.5, None),
    ("low_shelf", 200.0, 0.7071, -6.0, 1.0),
    ("high_shelf", 6000.0, 0.7071, 3.0, None),
    ("high_shelf", 8000.0, 0.7071, -4.0, 0.5),
    ("low_pass", 2000.0, 0.7071, 0.0, None),
    ("high_pass", 30.0, 0.7071, 0.0, None),
    ("band_pass", 1500.0, 2.0, 0.0, None),
    ("notch", 3000.0, 4.0, 0.0, None),
    ("all_pass", 800.0, 0.9, 0.0, None),
]
IDS = [f"{c[0]}-{c[1]:g}Hz" + ("-slope" if c[4] else "") for c in CASES]


def make_section(kind, f0, q, gain_db, slope):
    return rk.Section(kind, f0, q=q, gain_db=gain_db, shelf_slope=slope)


def db_error(actual: np.ndarray, reference: np.ndarray) -> float:
    err = np.sqrt(np.mean((actual.astype(np.float64) - reference) ** 2))
    return 20 * np.log10(err / np.sqrt(np.mean(reference ** 2)))


@pytest.mark.parametrize("fs", RATES)
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_filter_matches_float64_reference(case, fs, rng):
    x = noise(rng, 2, fs)  # one second of stereo noise
    kernel = rk.BiquadCascade([make_section(*case)], channels=2, sample_rate=fs)
    y = kernel.process(x)
    sos = rbj(case[0], fs, case[1], case[2], case[3], case[4])[None, :]
    ref = signal.sosfilt(sos, x.astype(np.float64), axis=1)
    assert db_error(y, ref) < -100.0


@pytest.mark.parametrize("fs", RATES)
@pytest.mark.parametrize("count", (2, 5, len(CASES)))
def test_cascade_matches_float64_reference(fs, count, rng):
    x = noise(rng, 3, fs // 2)
    cases = CASES[:count]
    kernel = rk.BiquadCascade([make_section(*c) for c in cases], channels=3, sample_rate=fs)
    sos = np.stack([rbj(c[0], fs, c[1], c[2], c[3], c[4]) for c in cases])
    ref = signal.sosfilt(sos, x.astype(np.float64), axis=1)
    assert db_error(kernel.process(x), ref) < -100.0


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_c_coefficients_equal_the_cookbook(case):
    fs = 48000
    ours = make_section(*case).coefficients(fs)
    ref = rbj(case[0], fs, case[1], case[2], case[3], case[4])
    np.testing.assert_allclose(ours, np.delete(ref, 3), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("fs", RATES)
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_magnitude_response_at_20_frequencies(case, fs):
    kernel = rk.BiquadCascade([make_section(*case)], channels=1, sample_rate=fs)
    impulse = np.zeros((1, 4 * fs), dtype=np.float32)
    impulse[0, 0] = 1.0
    h = kernel.process(impulse)[0].astype(np.float64)
    assert np.all(np.abs(h[-fs // 10:]) < 1e-9), "impulse response did not decay inside the window"
    freqs = np.geomspace(20.0, 0.45 * fs, 20)
    n = np.arange(h.size)
    realized = np.array([np.abs(np.sum(h * np.exp(-2j * np.pi * f * n / fs))) for f in freqs])
    expected = np.abs(response(rbj(case[0], fs, case[1], case[2], case[3], case[4]), freqs, fs))
    audible = expected > 1e-3  # compare in dB where the response is above -60 dB
    np.testing.assert_array_less(np.abs(20 * np.log10(realized[audible] / expected[audible])), 0.01)
    np.testing.assert_array_less(np.abs(realized[~audible] - expected[~audible]), 1e-5)


# 1-2 sections run in a 2-lane pass, 3 and more in lane groups (with identity pad stages
# when the count does not fill them), 40 in several passes.
@pytest.mark.parametrize("count", (1, 2, 3, 4, 6, 11, 40))
@pytest.mark.parametrize("size", BLOCK_SIZES)
def test_block_size_invariance_is_bit_exact(size, count, rng):
    sections = [make_section(*CASES[i % len(CASES)]) for i in range(count)]
    x = noise(rng, 2, 20000)
    whole = rk.BiquadCascade(sections, 2, 48000).process(x)
    split = in_blocks(rk.BiquadCascade(sections, 2, 48000).process, x, size)
    assert np.array_equal(whole, split)


@pytest.mark.parametrize("frames", (0, 1, 7, 64))
def test_frames_out_equal_frames_in(frames, rng):
    kernel = rk.BiquadCascade([make_section(*CASES[0])], 2, 48000)
    assert kernel.process(noise(rng, 2, frames)).shape == (2, frames)


def test_resonant_filter_rings_out_without_subnormals():
    fs = 48000
    kernel = rk.BiquadCascade([rk.Section("peaking", 1000.0, q=50.0, gain_db=24.0),
                               rk.Section("band_pass", 1000.0, q=40.0)], 2, fs)
    x = np.zeros((2, 10 * fs + 1), dtype=np.float32)
    x[:, 0] = 1.0
    y = np.concatenate([kernel.process(np.ascontiguousarray(x[:, i:i + 4096]))
                        for i in range(0, x.shape[1], 4096)], axis=1)
    assert np.max(np.abs(y[:, :fs // 10])) > 1e-3, "the filter should ring"
    assert subnormal_count(y) == 0
    state = kernel.state_snapshot()
    # Every state value is zero or a normal float32: none would be subnormal once narrowed.
    assert np.all((state == 0) | (np.abs(state) >= FLT_MIN)), state[(state != 0) & (np.abs(state) < FLT_MIN)]
    assert np.all(state == 0), "10 s of silence after an impulse must leave no residue"


def test_section_change_takes_effect_and_keeps_running(rng):
    fs = 48000
    kernel = rk.BiquadCascade([rk.Section("peaking", 1000.0, q=1.0, gain_db=0.0)], 1, fs)
    t = np.arange(fs) / fs
    tone = (0.1 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)[None, :]
    before = kernel.process(tone)
    kernel.set_section(0, rk.Section("peaking", 1000.0, q=1.0, gain_db=12.0))
    after = kernel.process(tone)
    rms = lambda v: np.sqrt(np.mean(v[0, fs // 2:].astype(np.float64) ** 2))
    assert 20 * np.log10(rms(after) / rms(before)) == pytest.approx(12.0, abs=0.01)
    assert kernel.sections[0].gain_db == 12.0


# --- every instruction set: AURALIS_RT_ISA caps the path rt_cpu_level() picks at create ----

ROOT = Path(__file__).resolve().parents[1]
ISA_NAMES = {0: "base", 3: "v3", 4: "v4"}
# One length per way the cascade is laid out: a 2-lane pass on the float channels (1, 2),
# lane groups with identity pad stages (3, 6), one long pass (25, the psychoacoustic EQ),
# several passes (40) and the longest an eq node may have (256: its wavefront is deeper
# than one staging block).
LENGTHS = (1, 2, 3, 6, 25, 40, 256)
# Section changes between blocks: (frame, which section, new section).  The second comes
# 20 frames after the first, before the first has reached every section of the longer
# cascades (the vector paths finish the frames in flight then; otherwise they switch
# coefficients on the fly).  None of the frames is on a block boundary of the splits.
CHANGES = [(12345, "middle", ("peaking", 333.0, 2.0, -9.0)), (12365, "first", ("low_shelf", 150.0, 0.7071, 4.0)),
           (12465, "last", ("high_shelf", 5000.0, 0.7071, -3.0))]


def changed_index(which, count):
    return {"first": 0, "middle": count // 2, "last": count - 1}[which]

ISA_CHILD = r"""
import json, sys
import numpy as np
import rt_kernels as rk
from rt_kernels._ffi import lib

job = json.loads(sys.argv[1])
x = np.load(job["input"])
out = {"level": np.array(lib.rt_cpu_level())}
for count, spec in job["cascades"].items():
    frames = [0] + [f for f, _, _ in job["changes"][count]] + [x.shape[1]]
    for size in job["sizes"]:
        k = rk.BiquadCascade([rk.Section(*s) for s in spec], x.shape[0], job["fs"])
        pieces = []
        for n, (start, stop) in enumerate(zip(frames, frames[1:])):
            if n:
                _, index, section = job["changes"][count][n - 1]
                k.set_section(index, rk.Section(*section))
            for i in range(start, stop, size):
                pieces.append(k.process(np.ascontiguousarray(x[:, i:min(i + size, stop)])))
        out[f"{count}/{size}"] = np.concatenate(pieces, axis=1)
np.savez(job["output"], **out)
"""


def cascade_spec(count):
    """Peaking sections from 40 Hz to 16 kHz, Q 0.7 to 1.1, gains within +-6 dB."""
    return [("peaking", 40.0 * 400.0 ** (i / max(count - 1, 1)), 0.7 + 0.1 * (i % 5), round(6.0 * math.sin(i + 1), 3))
            for i in range(count)]


def df1_reference(x, spec, changes, fs):
    """Float64 cascade whose sections change at the given frames, a new section starting from
    the old one's last two inputs and outputs (direct form I): scipy's lfilter per section
    and segment, the state at each change rebuilt from that history by lfiltic."""
    y = x.astype(np.float64)
    for index, section in enumerate(spec):
        schedule = [(0, section)] + [(f, new) for f, i, new in changes if i == index]
        bounds = [f for f, _ in schedule] + [x.shape[1]]
        pieces, prev_in, prev_out = [], None, None
        for (start, current), stop in zip(schedule, bounds[1:]):
            sos = rbj(current[0], fs, *current[1:])
            seg = y[:, start:stop]
            if prev_in is None:
                out = signal.lfilter(sos[:3], sos[3:], seg, axis=1)
            else:
                zi = np.stack([signal.lfiltic(sos[:3], sos[3:], y=prev_out[c, ::-1][:2], x=prev_in[c, ::-1][:2])
                               for c in range(y.shape[0])])
                out, _ = signal.lfilter(sos[:3], sos[3:], seg, axis=1, zi=zi)
            pieces.append(out)
            prev_in, prev_out = seg, out
        y = np.concatenate(pieces, axis=1)
    return y


def changes_for(count):
    return [(f, changed_index(which, count), new) for f, which, new in CHANGES]


@pytest.fixture(scope="module")
def isa_runs(tmp_path_factory):
    """The same cascades, coefficient change and block splits on every instruction set this
    machine has, each in a child process; keyed by the level the child actually used."""
    tmp = tmp_path_factory.mktemp("isa")
    x = noise(np.random.default_rng(11), 2, 20000)
    np.save(tmp / "x.npy", x)
    runs = {}
    for name in ("base", "v3", "v4"):
        job = {"input": str(tmp / "x.npy"), "output": str(tmp / f"{name}.npz"), "fs": 44100,
               "sizes": [*BLOCK_SIZES, x.shape[1]], "cascades": {str(n): cascade_spec(n) for n in LENGTHS},
               "changes": {str(n): changes_for(n) for n in LENGTHS}}
        subprocess.run([sys.executable, "-c", ISA_CHILD, json.dumps(job)], cwd=ROOT, check=True,
                       env={**os.environ, "AURALIS_RT_ISA": name})
        data = dict(np.load(tmp / f"{name}.npz"))
        runs.setdefault(int(data["level"]), data)  # v4 on an AVX2-only machine runs v3
    assert 0 in runs, "AURALIS_RT_ISA=base did not select the baseline path"
    return x, runs


def test_every_instruction_set_is_bit_exact_across_block_splits(isa_runs):
    x, runs = isa_runs
    for level, data in runs.items():
        for n in LENGTHS:
            whole = data[f"{n}/{x.shape[1]}"]
            for size in BLOCK_SIZES:
                assert np.array_equal(data[f"{n}/{size}"], whole), f"{ISA_NAMES[level]}, {n} sections, blocks of {size}"


def test_every_instruction_set_matches_float64_across_coefficient_changes(isa_runs):
    """A change between blocks applies to the section from that frame on, whatever the
    other sections are still processing; every path is within float32 rounding of the
    baseline's (its arithmetic differs only by fused multiply-adds): -140 dB, 1e-6 of the
    peak."""
    x, runs = isa_runs
    for n in LENGTHS:
        ref = df1_reference(x, cascade_spec(n), changes_for(n), 44100)
        base = runs[0][f"{n}/{x.shape[1]}"].astype(np.float64)
        for level, data in runs.items():
            y = data[f"{n}/{x.shape[1]}"].astype(np.float64)
            where = f"{ISA_NAMES[level]}, {n} sections"
            assert db_error(y, ref) < -100.0, where
            if level:
                assert np.sqrt(np.mean((y - base) ** 2)) < 10 ** (-140 / 20) * np.sqrt(np.mean(base ** 2)), where
                assert np.max(np.abs(y - base)) <= 1e-6 * np.max(np.abs(base)), where
