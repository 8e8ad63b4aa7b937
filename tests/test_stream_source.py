"""The C stream source (rt_kernels/csrc/stream_source.c) offline: the audio side is
driven from Python (Stream.process) with numpy buffers, the producer side from the
same thread between calls, so every scenario is deterministic."""

from __future__ import annotations

import numpy as np
import pytest

from engine.player.stream import Stream
from graph import Executor, Graph, Node

CH = 2


def ramp(frames: int, start: int = 0, channels: int = CH) -> np.ndarray:
    """Interleaved (frames, channels) float32 with no zero sample, unique per frame:
    frame i of channel c is (start + i + 1) * 1e-5 * (c + 1)."""
    i = np.arange(start, start + frames, dtype=np.float64) + 1
    return np.ascontiguousarray(np.stack([(i * 1e-5 * (c + 1)) for c in range(channels)], axis=1).astype(np.float32))


def noise(rng, frames: int, channels: int = CH) -> np.ndarray:
    return np.ascontiguousarray((0.3 * rng.standard_normal((frames, channels))).astype(np.float32))


def fade_table(fade_frames: int) -> np.ndarray:
    """The stream's fade gains (raised cosine at frame centres), float32 as the C side stores them."""
    i = np.arange(fade_frames, dtype=np.float64)
    return (0.5 - 0.5 * np.cos(np.pi * (i + 0.5) / fade_frames)).astype(np.float32)


def write_all(stream: Stream, frames: np.ndarray) -> None:
    assert stream.write(frames) == frames.shape[0]


def play_through(stream: Stream, frames: int, block: int) -> np.ndarray:
    parts = []
    done = 0
    while done < frames:
        n = min(block, frames - done)
        parts.append(stream.process(n))
        done += n
    return np.concatenate(parts, axis=1) if parts else np.zeros((stream.channels, 0), np.float32)


def gain_executor(**kw) -> Executor:
    return Executor(Graph(Node("gain", "g", gain_db=0.0, ramp_ms=0.0)), CH, 48000, max_block=64, **kw)


# -- ring ----------------------------------------------------------------------------

def test_frames_come_out_in_order_across_many_ring_wraparounds(rng):
    stream = Stream(CH, capacity_frames=64, max_block=16, fade_frames=8)
    assert stream.capacity_frames == 64
    signal = ramp(64 * 40 + 13)
    stream.set_playing(True)
    written = played = 0
    out = []
    while played < signal.shape[0]:
        written += stream.write(signal[written:written + int(rng.integers(1, 100))])
        if stream.writable == 0 or written == signal.shape[0]:
            n = min(int(rng.integers(1, 65)), written - played)
            out.append(stream.process(n))
            played += n
    got = np.concatenate(out, axis=1)
    np.testing.assert_array_equal(got, signal.T)
    st = stream.status()
    assert (st.read_position, st.write_position, st.underrun_events) == (signal.shape[0], signal.shape[0], 0)


def test_write_takes_only_what_fits_and_never_blocks():
    stream = Stream(CH, capacity_frames=100, fade_frames=0)
    assert stream.capacity_frames == 128
    assert stream.write(ramp(200)) == 128
    assert stream.write(ramp(5)) == 0 and stream.writable == 0
    stream.set_playing(True)
    stream.process(28)
    assert stream.writable == 28
    assert stream.write(ramp(50, start=128)) == 28


def test_write_refuses_wrong_layouts_with_one_line():
    stream = Stream(CH, capacity_frames=64)
    with pytest.raises(TypeError, match="float32"):
        stream.write(np.zeros((4, CH)))
    with pytest.raises(ValueError, match=r"\(frames, 2\)"):
        stream.write(np.zeros((CH, 4), np.float32))
    with pytest.raises(ValueError, match="needs a stream with an executor"):
        stream.mark_track(1, snapshot=gain_executor().prepare({"g.gain_db": -1.0}))
    with pytest.raises(ValueError, match="executor has 2 channels, the stream 1"):
        Stream(1, capacity_frames=64, executor=gain_executor())


def test_nan_and_inf_never_reach_the_output(rng):
    for executor in (None, gain_executor()):
        stream = Stream(CH, capacity_frames=256, executor=executor)
        x = noise(rng, 200)
        x[10, 0], x[50, 1], x[51, 0] = np.nan, np.inf, -np.inf
        write_all(stream, x)
        stream.set_playing(True)
        y = stream.process(200)
        assert np.isfinite(y).all()
        assert stream.nonfinite_samples == 3
        clean = x.copy()
        clean[~np.isfinite(clean)] = 0.0
        expect = clean.T if executor is None else gain_executor().process(np.ascontiguousarray(clean.T))
        np.testing.assert_array_equal(y, expect)


# -- starting, underruns, end -----------------------------------------------------------

def test_loading_is_silent_and_not_an_underrun_until_a_whole_call_is_there():
    stream = Stream(CH, capacity_frames=1024, fade_frames=16)
    stream.set_playing(True)
    assert not stream.process(256).any()
    write_all(stream, ramp(100))                 # less than a call: keep waiting
    assert not stream.process(256).any()
    st = stream.status()
    assert (st.state, st.underrun_events, st.underrun_frames, st.read_position) == ("loading", 0, 0, 0)
    write_all(stream, ramp(200, start=100))
    np.testing.assert_array_equal(stream.process(256), ramp(256).T)   # a track's start: full level at once


def test_underruns_are_counted_in_events_and_frames_and_recovery_fades_in():
    fade = 32
    stream = Stream(CH, capacity_frames=4096, fade_frames=fade)
    stream.set_playing(True)
    write_all(stream, ramp(1000))
    y = play_through(stream, 768, 256)
    np.testing.assert_array_equal(y, ramp(768).T)
    tail = stream.process(256)                                      # 232 left: 24 frames short
    np.testing.assert_array_equal(tail[:, :232], ramp(232, start=768).T)
    assert not tail[:, 232:].any()
    st = stream.status()
    assert (st.state, st.underrun_events, st.underrun_frames) == ("starved", 1, 24)
    assert not play_through(stream, 512, 256).any()                 # still dry: one event, more frames
    st = stream.status()
    assert (st.underrun_events, st.underrun_frames) == (1, 24 + 512)
    write_all(stream, ramp(600, start=1000))
    y = stream.process(256)                                         # recovers from the next unplayed frame
    expect = ramp(256, start=1000).T.copy()
    expect[:, :fade] *= fade_table(fade)
    np.testing.assert_array_equal(y, expect)
    # Pausing does not count; the end marker makes an empty ring not an underrun.
    stream.set_playing(False)
    stream.process(512)
    stream.set_playing(True)
    assert stream.mark_end()
    play_through(stream, 2048, 256)
    st = stream.status()
    assert (st.state, st.underrun_events, st.underrun_frames, st.read_position) == ("ended", 1, 536, 1600)


def test_a_stream_shorter_than_one_call_plays_because_its_end_is_marked():
    stream = Stream(CH, capacity_frames=1024)
    stream.set_playing(True)
    write_all(stream, ramp(40))
    assert stream.mark_end()
    y = stream.process(256)
    np.testing.assert_array_equal(y[:, :40], ramp(40).T)
    assert not y[:, 40:].any()
    assert stream.status().state == "ended" and stream.status().underrun_events == 0


# -- pause / resume ------------------------------------------------------------------

@pytest.mark.parametrize("block", [1, 37, 256])
def test_pause_and_resume_play_every_frame_once_in_order_with_the_designed_fades(block):
    fade = 48
    stream = Stream(CH, capacity_frames=8192, fade_frames=fade, max_block=64)
    signal = ramp(6000)
    write_all(stream, signal)
    stream.set_playing(True)
    out = [play_through(stream, 1000, block)]
    stream.set_playing(False)
    held = play_through(stream, 700, block)
    paused_at = stream.status().read_position
    out.append(held)
    assert stream.status().read_position == paused_at == 1000 + fade   # held: nothing taken
    out.append(play_through(stream, 300, block))
    assert stream.status().read_position == paused_at
    stream.set_playing(True)
    out.append(play_through(stream, 6000 - paused_at + 500, block))
    y = np.concatenate(out, axis=1)
    heard = y[:, y[0] != 0]                                        # the signal has no zero sample
    assert heard.shape[1] == 6000                                  # every frame exactly once
    g = np.ones(6000, np.float32)
    g[1000:1000 + fade] = fade_table(fade)[::-1]                   # fade-out of the pause
    g[1000 + fade:1000 + 2 * fade] = fade_table(fade)              # fade-in of the resume
    np.testing.assert_array_equal(heard, signal.T * g)
    assert stream.status().underrun_events == 0 or stream.status().state == "starved"


def test_pause_before_anything_played_is_immediate_and_resume_starts_at_full_level():
    stream = Stream(CH, capacity_frames=1024, fade_frames=32)
    write_all(stream, ramp(512))
    assert not stream.process(256).any()          # created paused
    stream.set_playing(True)
    np.testing.assert_array_equal(stream.process(128), ramp(128).T)


# -- seek / stop -----------------------------------------------------------------------

@pytest.mark.parametrize("block", [1, 64, 300])
def test_seek_fades_out_jumps_to_the_new_audio_and_fades_in(block):
    fade = 40
    stream = Stream(CH, capacity_frames=8192, fade_frames=fade, max_block=128)
    a, b = ramp(4000), -ramp(3000, start=50_000)
    write_all(stream, a)
    stream.set_playing(True)
    y0 = play_through(stream, 1000, block)
    stream.seek(fade_in=True)
    assert stream.mark_track(7, track_frame=50_000)
    write_all(stream, b)
    y1 = play_through(stream, 2000, block)
    np.testing.assert_array_equal(y0, a[:1000].T)
    t = fade_table(fade)
    np.testing.assert_array_equal(y1[:, :fade], a[1000:1000 + fade].T * t[::-1])
    expect_b = b[:2000 - fade].T.copy()
    expect_b[:, :fade] *= t
    np.testing.assert_array_equal(y1[:, fade:], expect_b)
    st = stream.status()
    assert (st.seeks, st.token, st.frame_in_track, st.underrun_events) == (1, 7, 50_000 + 2000 - fade, 0)


@pytest.mark.parametrize("fade_in", [True, False])
def test_seek_while_paused_jumps_at_once_and_resume_starts_there(fade_in):
    fade = 16
    stream = Stream(CH, capacity_frames=4096, fade_frames=fade)
    write_all(stream, ramp(3000))
    stream.set_playing(True)
    stream.process(100)
    stream.set_playing(False)
    stream.process(100)                                           # faded out, held
    stream.seek(fade_in=fade_in)
    write_all(stream, -ramp(500))
    assert not stream.process(64).any()
    assert stream.status().read_position == 3000                  # jumped while paused
    stream.set_playing(True)
    y = stream.process(200)
    expect = -ramp(200).T
    if fade_in:                                                   # mid-track: fades in; a track start does not
        expect[:, :fade] *= fade_table(fade)
    np.testing.assert_array_equal(y, expect)


def test_stop_is_pause_plus_seek_and_play_again_starts_a_track_at_full_level():
    fade = 16
    stream = Stream(CH, capacity_frames=4096, fade_frames=fade)
    write_all(stream, ramp(3000))
    stream.set_playing(True)
    stream.process(500)
    stream.set_playing(False)
    stream.seek(fade_in=False)
    y = stream.process(256)
    np.testing.assert_array_equal(y[:, :fade], ramp(fade, start=500).T * fade_table(fade)[::-1])
    assert not y[:, fade:].any()
    assert not play_through(stream, 1024, 256).any()
    st = stream.status()
    assert (st.read_position, st.underrun_events, st.state) == (3000, 0, "loading")
    stream.seek(fade_in=False)
    write_all(stream, -ramp(1000))
    stream.set_playing(True)
    np.testing.assert_array_equal(stream.process(256), -ramp(256).T)


def test_seek_drops_the_markers_written_before_it_and_their_snapshots_come_back():
    ex = gain_executor()
    stream = Stream(CH, capacity_frames=4096, executor=ex, fade_frames=8)
    write_all(stream, ramp(1000))
    for k in range(3):
        assert stream.mark_track(10 + k, snapshot=ex.prepare({"g.gain_db": -1.0 - k}))
        write_all(stream, ramp(100))
    stream.set_playing(True)
    stream.process(256)
    in_flight = ex.in_flight
    stream.seek(fade_in=False)
    assert stream.mark_track(99, snapshot=ex.prepare({"g.gain_db": -20.0}))
    write_all(stream, ramp(512, start=9))
    y = play_through(stream, 1024, 256)
    st = stream.status()
    assert (st.token, st.markers_dropped, st.markers_passed) == (99, 3, 1)
    ex.collect()
    assert ex.in_flight == in_flight - 3                          # 3 dropped + 1 applied come back, 1 prepared
    assert ex.telemetry().param_blocks == 1
    g = np.float32(10 ** (-20 / 20))
    np.testing.assert_allclose(y[:, 8:8 + 512], ramp(512, start=9).T * g, rtol=1e-6)


def test_drain_returns_queued_snapshots_to_the_executor():
    ex = gain_executor()
    stream = Stream(CH, capacity_frames=1024, executor=ex)
    base = ex.in_flight
    for k in range(4):
        assert stream.mark_track(k + 1, snapshot=ex.prepare({"g.gain_db": -1.0}))
    assert ex.in_flight == base + 4
    assert stream.drain() == 4
    assert ex.in_flight == base


def test_marker_ring_full_is_reported_not_overwritten():
    stream = Stream(CH, capacity_frames=1024, marker_capacity=4)
    assert all(stream.mark_track(k) for k in range(4))
    assert stream.marker_room == 0
    assert not stream.mark_track(5) and not stream.mark_end()
    stream.set_playing(True)
    write_all(stream, ramp(10))
    stream.process(10)                       # passes the four markers at position 0
    assert stream.marker_room == 4


# -- markers: parameter snapshots at the exact frame ------------------------------------

def reference_with_switch(x: np.ndarray, switch_at: int, params: dict) -> np.ndarray:
    """The same chain driven directly: process up to the frame, publish, process the rest."""
    ref = gain_executor()
    head = ref.process(np.ascontiguousarray(x[:, :switch_at]))
    ref.publish(params)
    return np.concatenate([head, ref.process(np.ascontiguousarray(x[:, switch_at:]))], axis=1)


@pytest.mark.parametrize("block", [1, 7, 64, 65])
def test_a_track_markers_snapshot_applies_at_its_exact_frame_at_every_offset(rng, block):
    x = noise(rng, 2 * 65 + 40)
    for at in range(0, 2 * 65 + 1):
        ex = gain_executor()
        stream = Stream(CH, capacity_frames=1024, executor=ex, max_block=64)
        write_all(stream, x[:at])
        assert stream.mark_track(5, track_frame=0, snapshot=ex.prepare({"g.gain_db": -6.0}))
        write_all(stream, x[at:])
        stream.set_playing(True)
        y = play_through(stream, x.shape[0], block)
        np.testing.assert_array_equal(y, reference_with_switch(x.T, at, {"g.gain_db": -6.0}),
                                      err_msg=f"marker at {at}, block {block}")
        assert stream.status().frame_in_track == x.shape[0] - at


def test_a_snapshot_waits_for_its_frame_through_loading_and_starved_silence(rng):
    """A ramped parameter must start ramping on the track's first frame, not during the
    silence before it (while the decoder is still loading, or after the ring ran dry)."""
    def ramped():
        return Executor(Graph(Node("gain", "g", gain_db=0.0, ramp_ms=2.0)), CH, 48000, max_block=64)

    a, b = noise(rng, 700), noise(rng, 900)
    ex = ramped()
    stream = Stream(CH, capacity_frames=4096, executor=ex)
    stream.set_playing(True)
    assert stream.mark_track(1, snapshot=ex.prepare({"g.gain_db": -12.0}))
    silent_start = play_through(stream, 1000, 256)                  # loading: marker at 0, no frames
    write_all(stream, a)
    assert stream.mark_track(2, snapshot=ex.prepare({"g.gain_db": 0.0}))
    y_a = play_through(stream, 768, 256)                            # a, then dry at b's marker
    assert stream.status().state == "starved" and stream.status().token == 1
    write_all(stream, b)
    y_b = play_through(stream, 1024, 256)
    assert not silent_start.any()
    ref = ramped()
    ref.publish({"g.gain_db": -12.0})
    np.testing.assert_array_equal(y_a[:, :700], ref.process(np.ascontiguousarray(a.T)))
    ref.publish({"g.gain_db": 0.0})
    recovering = b.T.copy()
    recovering[:, :stream.fade_frames] *= fade_table(stream.fade_frames)   # recovery from the underrun fades in
    np.testing.assert_array_equal(y_b[:, :900], ref.process(recovering))


def test_output_is_block_size_invariant_through_a_chain_with_markers_and_fades(rng):
    def run(block: int) -> np.ndarray:
        ex = Executor(Graph(Node("biquad", "lo", type="low_shelf", freq_hz=200.0, gain_db=3.0),
                            Node("gain", "g", gain_db=-1.0)), CH, 48000, max_block=64)
        stream = Stream(CH, capacity_frames=1 << 15, executor=ex, max_block=50, fade_frames=64)
        r = np.random.default_rng(3)
        for k, n in enumerate((3000, 1, 777, 4096)):
            assert stream.mark_track(k + 1, snapshot=ex.prepare({"g.gain_db": -3.0 * k, "lo.gain_db": float(k)}))
            write_all(stream, noise(r, n))
        assert stream.mark_end()
        stream.set_playing(True)
        return play_through(stream, 9000, block)

    ref = run(9000)
    assert np.abs(ref).max() > 0.1
    for block in (1, 7, 64, 65, 4096):
        np.testing.assert_array_equal(run(block), ref, err_msg=f"block {block}")
