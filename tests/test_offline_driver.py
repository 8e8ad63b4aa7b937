"""The render driver's frame accounting: aligned output, exactly as long as the input."""

import numpy as np
import pytest

from engine.offline import render_array, render_blocks


class DelayLine:
    """A processor with latency: output = input delayed by `latency` frames, times `gain`."""

    def __init__(self, channels: int, latency: int, gain: float = 0.5):
        self.channels, self._latency, self.gain = channels, latency, gain
        self._tail = np.zeros((channels, latency), np.float32)

    @property
    def latency_frames(self) -> int:
        return self._latency

    def process(self, block: np.ndarray) -> np.ndarray:
        joined = np.concatenate([self._tail, block], axis=1)
        self._tail = joined[:, joined.shape[1] - self._latency:].copy()
        return (joined[:, :block.shape[1]] * self.gain).astype(np.float32)


@pytest.mark.parametrize("latency", (0, 1, 63, 64, 5000))
@pytest.mark.parametrize("block_size", (1, 7, 64, 65, 4096, 100000))
def test_output_is_aligned_and_exactly_as_long(latency, block_size):
    rng = np.random.default_rng(latency + block_size)
    audio = rng.standard_normal((10007, 2)).astype(np.float32)
    out = render_array(DelayLine(2, latency), audio, block_size)
    assert out.shape == audio.shape
    assert np.array_equal(out, (audio * 0.5).astype(np.float32))


def test_click_positions_survive_latency():
    audio = np.zeros((48000, 1), np.float32)
    clicks = [0, 1, 4799, 24000, 47999]
    audio[clicks, 0] = 1.0
    out = render_array(DelayLine(1, 1323, gain=1.0), audio, 512)
    assert list(np.flatnonzero(out[:, 0])) == clicks


def test_empty_blocks_are_skipped_and_counted_right():
    pieces = []
    blocks = [np.zeros((0, 2), np.float32), np.ones((10, 2), np.float32), np.zeros((0, 2), np.float32)]
    assert render_blocks(DelayLine(2, 3), blocks, pieces.append) == 10
    assert sum(p.shape[0] for p in pieces) == 10


def test_prefetched_yields_every_block_in_order_and_raises_where_the_source_failed():
    from engine.offline import prefetched

    def source(fail_at=None):
        for i in range(10):
            if i == fail_at:
                raise ValueError(f"block {i} is corrupt")
            yield np.full((3, 2), i, np.float32)

    assert [int(b[0, 0]) for b in prefetched(source())] == list(range(10))
    got = []
    with pytest.raises(ValueError, match="block 6 is corrupt"):
        for b in prefetched(source(fail_at=6)):
            got.append(int(b[0, 0]))
    assert got == list(range(6))


def test_closing_a_prefetched_stream_early_stops_and_closes_the_source():
    from engine.offline import prefetched

    closed = []

    def source():
        try:
            for i in range(1000):
                yield np.full((3, 2), i, np.float32)
        finally:
            closed.append(True)

    stream = prefetched(source(), depth=2)
    assert int(next(stream)[0, 0]) == 0
    stream.close()
    assert closed == [True]
