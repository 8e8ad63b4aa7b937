"""Mastering: analyse, plan the chain, render through the executor until the loudness
target is met, and report.  The same code serves arrays (engine.render) and files
(engine.master, streamed with bounded memory: every pass re-reads the input)."""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from engine.audio_io import AtomicWriter, AudioInputError, AudioReader, check_output
from engine.mastering.analysis import InputAnalysis, analyse_blocks
from engine.mastering.chain import LOUDNESS_GAIN_LIMIT_DB, ChainPlan, initial_loudness_gain, plan_chain
from engine.mastering.measure import Measurement, _from_meter
from engine.offline import Progress, prefetched, render_blocks
from graph import Executor
from graph.nodes import NODE_TYPES
from presets import Preset, PresetError, load_preset, parse_preset
from rt_kernels._validate import first_non_finite
from rt_kernels.loudness import LoudnessMeter

DEFAULT_PRESET = "adaptive"
LOUDNESS_TOLERANCE_LU = 0.1   # what the solve aims for; the promise is +-0.5 LU
MAX_PASSES = 5
READ_BLOCK_FRAMES = 65536


@dataclass
class MasterReport:
    preset: str
    target_lufs: float
    ceiling_dbtp: float
    intensity: float
    input: Measurement
    output: Measurement
    parameters: dict[str, dict[str, Any]]
    loudness_gain_db: float | None
    passes: int
    notes: list[str] = field(default_factory=list)

    @property
    def target_met(self) -> bool:
        return math.isfinite(self.output.integrated_lufs) and abs(self.output.integrated_lufs - self.target_lufs) <= 0.5

    def to_json(self) -> dict:
        return {
            "preset": self.preset, "target_lufs": self.target_lufs, "ceiling_dbtp": self.ceiling_dbtp,
            "intensity": self.intensity, "input": self.input.to_json(), "output": self.output.to_json(),
            "parameters": self.parameters, "loudness_gain_db": self.loudness_gain_db, "passes": self.passes,
            "target_met": self.target_met, "notes": self.notes,
        }


def resolve_preset(preset: str | Path | Preset) -> Preset:
    return preset if isinstance(preset, Preset) else load_preset(preset, node_types=NODE_TYPES)


def _apply_overrides(preset: Preset, overrides: dict[str, Any]) -> Preset:
    """`node__param=value` keyword overrides (e.g. comp__ratio=3), validated like the file."""
    if not overrides:
        return preset
    data = preset.model_dump()
    for key, value in overrides.items():
        node, sep, param = key.partition("__")
        if not sep:
            raise PresetError(f"override {key}: expected node__param (e.g. comp__ratio=3)")
        for cfg in data["chain"]:
            if cfg["name"] == node:
                cfg["params"][param] = value
                break
        else:
            raise PresetError(f"override {key}: preset {preset.name} has no node {node!r} "
                              f"(it has {', '.join(c['name'] for c in data['chain'])})")
    return parse_preset(data, f"{preset.name} (with overrides)", NODE_TYPES)


class _Renderer:
    """Runs passes of one plan over a source of blocks.

    A loudness solve renders the chain several times with different loudness gains, and
    everything before the loudness stage (input gain, EQ, compressor, width) comes out
    the same every time.  So when the chain splits there (and intensity is 1, i.e. no dry
    path that needs the input), the first pass keeps what that part produced, in a
    temporary file next to the output (an unlinked file: nothing is left behind, whatever
    happens) or in memory for arrays, and later passes replay it through the loudness
    stage and what follows only.  The replay is exact: the kernels' output does not
    depend on how the stream is cut into blocks, so two executors in series equal one
    over the whole chain, and the replay includes what the first part produced from the
    flush silence.
    """

    def __init__(self, plan: ChainPlan, sample_rate: int, block_size: int, intensity: float,
                 source: Callable[[], Iterator[np.ndarray]], cache_dir: Path | None = None,
                 progress: Progress | None = None):
        self.plan, self.sample_rate, self.block_size, self.intensity = plan, sample_rate, block_size, intensity
        self.source, self.cache_dir, self.progress = source, cache_dir, progress
        self.split = intensity == 1.0 and plan.split_at_loudness() is not None
        self._cache: _PreCache | None = None
        self._frames = 0
        self._latency = 0

    def _executor(self, graph) -> Executor:
        executor = Executor(graph, self.plan.channels, self.sample_rate, max_block=self.block_size,
                            intensity=self.intensity)
        executor.set_timing(False)  # nobody reads per-node cost and peaks offline
        return executor

    def run(self, loudness_gain_db: float | None, emit: Callable[[np.ndarray], None] | None = None) -> Measurement:
        meter = LoudnessMeter(self.plan.channels, self.sample_rate, true_peak=True)
        frames = 0

        def sink(out: np.ndarray) -> None:
            nonlocal frames
            meter.process(np.ascontiguousarray(out.T))
            frames += out.shape[0]
            if emit is not None:
                emit(out)

        if self._cache is not None:
            post = self._executor(self.plan.split_at_loudness(loudness_gain_db)[1])
            _replay(post, self._cache.replay(self.progress), self._latency, self._frames, sink)
        elif self.split:
            pre_graph, post_graph = self.plan.split_at_loudness(loudness_gain_db)
            pre, post = self._executor(pre_graph), self._executor(post_graph)
            cache = _PreCache(self.plan.channels, self.cache_dir)
            try:
                series = _Series(pre, post, cache.append)
                self._frames = render_blocks(series, self.source(), sink)
            except BaseException:
                cache.close()
                raise
            self._cache, self._latency = cache, series.latency_frames
        else:
            executor = self._executor(self.plan.graph(loudness_gain_db))
            render_blocks(executor, self.source(), sink)
        return _from_meter(meter, frames, self.sample_rate, self.plan.channels)

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
            self._cache = None


class _Series:
    """Two executors in series, handing the first one's output to `tap` on the way."""

    def __init__(self, first: Executor, second: Executor, tap: Callable[[np.ndarray], None]):
        self.first, self.second, self.tap = first, second, tap
        self.channels = second.channels

    @property
    def latency_frames(self) -> int:
        return self.first.latency_frames + self.second.latency_frames

    def process(self, block: np.ndarray) -> np.ndarray:
        middle = self.first.process(block)
        self.tap(middle)
        return self.second.process(middle)


class _PreCache:
    """What the chain before the loudness stage produced in the first pass, block by
    block (planar float32): in an unlinked temporary file in `directory`, or as the arrays
    themselves when there is no directory (in-memory rendering)."""

    def __init__(self, channels: int, directory: Path | None):
        self.channels = channels
        self._file = tempfile.TemporaryFile(prefix=".auralis-pre.", dir=directory) if directory else None
        self._blocks: list[np.ndarray] = []
        self._lengths: list[int] = []

    def append(self, planar: np.ndarray) -> None:
        if self._file is None:
            self._blocks.append(planar)
        else:
            self._file.write(np.ascontiguousarray(planar).data)
            self._lengths.append(planar.shape[1])

    def replay(self, progress: Progress | None = None) -> Iterator[np.ndarray]:
        for block in self._blocks if self._file is None else self._read_back():
            if progress:
                progress.advance(block.shape[1])
            yield block

    def _read_back(self) -> Iterator[np.ndarray]:
        self._file.seek(0)
        for n in self._lengths:
            flat = np.fromfile(self._file, np.float32, count=self.channels * n)
            if flat.size != self.channels * n:  # the file is ours and unlinked: only a failing disk gets here
                raise OSError(f"mastering cache: read {flat.size // self.channels} of {n} frames back")
            yield flat.reshape(self.channels, n)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._blocks = []


def _replay(processor: Executor, blocks: Iterable[np.ndarray], latency: int, frames: int,
            emit: Callable[[np.ndarray], None]) -> None:
    """Run recorded planar blocks (which include what the flush produced) through
    `processor`, dropping the first `latency` output frames and emitting `frames`."""
    to_drop, owed = latency, frames
    for block in blocks:
        out = processor.process(block).T
        skip = min(to_drop, out.shape[0])
        out, to_drop = out[skip:owed + skip], to_drop - skip
        if out.shape[0]:
            emit(out)
            owed -= out.shape[0]
        if owed == 0:
            return
    raise RuntimeError(f"replay ran out of recorded frames with {owed} of {frames} still owed")


def _solve(renderer: _Renderer, analysis: InputAnalysis, target_lufs: float,
           make_sink: Callable[[], tuple[Callable, Callable, Callable]] | None, notes: list[str]):
    """Render until the output's integrated loudness is within tolerance of the target.

    make_sink() -> (emit, keep, drop): a pass that writes goes through emit; the best pass
    is kept, the others dropped.  A first pass that later passes replay cheaply only
    measures (writing is the dearer part of a replay); if it turns out best, one replay
    writes it.  Returns (output measurement, loudness gain, passes).
    """
    plan = renderer.plan
    no_sink = (None, None, None)
    if not plan.has_loudness_stage or renderer.intensity == 0.0 or analysis.measurement.silent:
        if analysis.measurement.silent:
            notes.append("loudness: the input is silent, so no gain can reach the target; output left at its level")
        elif renderer.intensity == 0.0:
            notes.append("intensity 0: the output is the input, unchanged")
        elif not plan.has_loudness_stage:
            notes.append(f"loudness: preset {plan.preset.name} has no 'loudness' stage; level not adjusted")
        emit, keep, _drop = make_sink() if make_sink else no_sink
        out = renderer.run(None, emit)
        if keep:
            keep()
        return out, None, 1
    gain = initial_loudness_gain(plan, analysis, target_lufs)
    best = None  # (error, measurement, gain, keep, drop)
    passes = 0
    for passes in range(1, MAX_PASSES + 1):
        writes = make_sink is not None and not (passes == 1 and renderer.split)
        emit, keep, drop = make_sink() if writes else no_sink
        out = renderer.run(gain, emit)
        error = target_lufs - out.integrated_lufs if not out.silent else math.inf
        if best is None or abs(error) < abs(best[0]):
            if best is not None and best[4]:
                best[4]()
            best = (error, out, gain, keep, drop)
        elif drop:
            drop()
        if abs(error) <= LOUDNESS_TOLERANCE_LU or not math.isfinite(error):
            break
        new_gain = min(LOUDNESS_GAIN_LIMIT_DB, max(-LOUDNESS_GAIN_LIMIT_DB, gain + error))
        if new_gain == gain:
            notes.append(f"loudness: the gain stage is at its {LOUDNESS_GAIN_LIMIT_DB:g} dB limit")
            break
        gain = new_gain
    error, out, gain, keep, _drop = best
    if make_sink is not None and keep is None:
        # The best pass only measured: replay it once more, writing (the same samples).
        emit, keep, _drop = make_sink()
        renderer.run(gain, emit)
        passes += 1
    if keep:
        keep()
    if abs(error) > 0.5:
        notes.append(f"loudness: reached {out.integrated_lufs:.2f} LUFS, {abs(error):.2f} LU from the target: the "
                     f"true-peak ceiling limits how loud this material can be made without more compression")
    return out, round(gain, 4), passes


def _check_channels(channels: int, where: str) -> None:
    if channels not in (1, 2):
        raise AudioInputError(f"{where}: has {channels} channels; mastering takes mono or stereo "
                              f"(downmix multichannel audio first)")


def render(audio: np.ndarray, sample_rate: int, preset: str | Path | Preset = DEFAULT_PRESET, block_size: int = 512,
           *, target_lufs: float | None = None, ceiling_dbtp: float | None = None, intensity: float | None = None,
           report: list | None = None, **overrides) -> np.ndarray:
    """Master an in-memory float32 array shaped (frames, channels); returns the same shape.

    ``overrides``: ``node__param=value`` (e.g. ``comp__ratio=3``), validated like a preset.
    Pass a list as ``report`` to receive the MasterReport.
    """
    audio = np.asarray(audio)
    if audio.dtype != np.float32:
        raise TypeError(f"render: audio has dtype {audio.dtype}; expected float32 (frames, channels)")
    mono_1d = audio.ndim == 1
    if mono_1d:
        audio = audio[:, None]
    if audio.ndim != 2 or audio.shape[0] == 0:
        raise ValueError(f"render: audio has shape {audio.shape}; expected (frames, channels) with frames > 0")
    bad = first_non_finite(audio)
    if bad is not None:
        frame, ch = bad
        raise ValueError(f"render: audio holds a non-finite sample at frame {frame}, channel {ch + 1}")
    _check_channels(audio.shape[1], "render: audio")
    blocks = lambda: (audio[i:i + READ_BLOCK_FRAMES] for i in range(0, audio.shape[0], READ_BLOCK_FRAMES))
    pieces: list[np.ndarray] = []

    def make_sink():
        mine: list[np.ndarray] = []
        return mine.append, (lambda: pieces.__setitem__(slice(None), mine)), mine.clear

    result = _master(blocks, int(sample_rate), audio.shape[1], preset, block_size, target_lufs, ceiling_dbtp,
                     intensity, overrides, make_sink)
    if report is not None:
        report.append(result)
    out = np.ascontiguousarray(np.concatenate(pieces, axis=0), dtype=np.float32)
    return out[:, 0] if mono_1d else out


def _master(blocks, sample_rate, channels, preset, block_size, target_lufs, ceiling_dbtp, intensity, overrides,
            make_sink, cache_dir: Path | None = None, progress: Progress | None = None) -> MasterReport:
    preset = _apply_overrides(resolve_preset(preset), overrides)
    target = preset.target.integrated_lufs if target_lufs is None else target_lufs
    ceiling = preset.target.ceiling_dbtp if ceiling_dbtp is None else ceiling_dbtp
    mix = preset.intensity if intensity is None else intensity
    analysis = analyse_blocks(blocks(), sample_rate, channels)
    plan = plan_chain(preset, channels, sample_rate, analysis, ceiling, fixed=True)
    notes = list(plan.notes)
    renderer = _Renderer(plan, sample_rate, block_size, mix, blocks, cache_dir, progress)
    try:
        out, gain, passes = _solve(renderer, analysis, target, make_sink, notes)
    finally:
        renderer.close()
    if math.isfinite(out.true_peak_dbtp) and out.true_peak_dbtp > ceiling + 0.1 and mix < 1.0:
        notes.append(f"ceiling: the dry share of intensity {mix:g} is not limited; true peak {out.true_peak_dbtp:.2f} dBTP")
    params = {name: dict(values) for name, values in plan.params.items() if name not in plan.skipped}
    if gain is not None and "loudness" in params:
        params["loudness"]["gain_db"] = gain
    return MasterReport(preset.name, target, ceiling, mix, analysis.measurement, out, params, gain, passes, notes)


def master(in_path, out_path, preset: str | Path | Preset = DEFAULT_PRESET, *, target_lufs: float | None = None,
           ceiling_dbtp: float | None = None, intensity: float | None = None, block_size: int = 512,
           subtype: str = "PCM_24", progress: bool = True, **overrides) -> MasterReport:
    """Master a file into another, streamed; the output appears only when complete."""
    with AudioReader(in_path) as probe:
        info = probe.info
    _check_channels(info.channels, str(in_path))
    out_path = Path(out_path)
    if Path(in_path).resolve() == out_path.resolve():
        raise AudioInputError(f"{out_path}: the output would overwrite the input; choose another name")
    out_dir = check_output(out_path, subtype)[1]  # before any work: a bad output fails at once
    bar = Progress(f"mastering {Path(in_path).name}", info.frames, info.sample_rate) if progress else None

    def read():
        with AudioReader(in_path) as reader:
            for block in reader.blocks(READ_BLOCK_FRAMES):
                if bar:
                    bar.advance(block.shape[0])
                yield block

    def blocks():
        return prefetched(read())

    writers: list[AtomicWriter] = []

    def make_sink():
        # Each pass writes a temporary file; the best one is renamed into place.
        writer = AtomicWriter(out_path, info.sample_rate, info.channels, subtype, background=True)
        writers.append(writer)
        return writer.write, writer.commit, writer.abort

    try:
        return _master(blocks, info.sample_rate, info.channels, preset, block_size, target_lufs, ceiling_dbtp,
                       intensity, overrides, make_sink, out_dir, bar)
    finally:
        for writer in writers:
            writer.abort()  # no-op for the committed one
        if bar:
            bar.close()
