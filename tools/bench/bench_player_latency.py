"""The player: time from ``Player.play()`` to the first sample of the track at the
output, on a private jackd (dummy driver, 48 kHz, period 256).

A JACK-Client recorder on our output ports notes the JACK frame time of the first
non-zero sample (every test file starts with a non-zero frame); the start is
``jack_frame_time()`` read right before play() is called.  The figure covers
command hand-off to the decoder thread, file open, first decode (+ resampling),
the wait for the next cycle, and the chain's latency (the default mastering chain,
as `auralis-rt play` runs it: 105 frames of true-peak lookahead).  It is measured at
our output port: a sound card adds its own playback latency on top.

Peer, same run, same server, same files: the usual Python way, a JACK-Client
client whose play() reads the whole file with soundfile (and resamples it with
soxr when its rate differs) and then plays it from memory in its process callback.
Median over 2 x ``opts.repeats`` starts per file (at least 9), each at a random moment
within the period.  Target: under 50 ms.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from engine.backends.jack import JackBackend
from engine.backends.jackd import PrivateJackServer
from engine.live import live_executor
from engine.player.player import Player
from tools.bench.common import Row

RATE, PERIOD = 48000, 256


class FirstSound:
    """Records the JACK frame time of the first non-zero input sample after arm()."""

    def __init__(self, server: str, name: str = "first-sound"):
        import jack

        self.client = jack.Client(name, servername=server, no_start_server=True)
        self.ports = [self.client.inports.register(f"in_{c + 1}") for c in range(2)]
        self.frame: int | None = None
        self.heard = threading.Event()
        self._armed = False
        self.client.set_process_callback(self._process)
        self.client.activate()

    def _process(self, frames: int) -> None:
        if not self._armed or self.heard.is_set():
            return
        block = self.ports[0].get_array()
        nz = np.flatnonzero(block)
        if nz.size:
            self.frame = self.client.last_frame_time + int(nz[0])
            self.heard.set()

    def arm(self) -> int:
        """Start listening; returns the JACK frame time now."""
        self.frame = None
        self.heard.clear()
        self._armed = True
        return self.client.frame_time

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()


class NaivePlayer:
    """The peer: read the whole file (soundfile, soxr if needed), then play it from memory."""

    def __init__(self, server: str):
        import jack

        self.client = jack.Client("naive-player", servername=server, no_start_server=True)
        self.ports = [self.client.outports.register(f"out_{c + 1}") for c in range(2)]
        self.data: np.ndarray | None = None
        self.pos = 0
        self.client.set_process_callback(self._process)
        self.client.activate()

    def play(self, path: Path) -> None:
        import soxr

        x, rate = sf.read(path, dtype="float32", always_2d=True)
        if rate != RATE:
            x = soxr.resample(x, rate, RATE, quality="VHQ")
        self.pos = 0
        self.data = np.ascontiguousarray(x.T, dtype=np.float32)

    def stop(self) -> None:
        self.data = None

    def _process(self, frames: int) -> None:
        data = self.data
        for c, port in enumerate(self.ports):
            buf = port.get_array()
            if data is None:
                buf.fill(0.0)
                continue
            seg = data[c, self.pos:self.pos + frames]
            buf[:len(seg)] = seg
            buf[len(seg):] = 0.0
        if data is not None:
            self.pos += frames

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()


def measure(listener: FirstSound, start, stop, repeats: int, rng) -> list[float]:
    """Seconds from start() to the first sound, `repeats` times, each at a random
    moment within the JACK period (otherwise the loop locks onto one phase of the cycle)."""
    out = []
    for _ in range(repeats):
        stop()
        time.sleep(0.15 + float(rng.uniform(0.0, PERIOD / RATE)))  # the previous start's fade-out, silence
        t0 = listener.arm()
        start()
        if listener.heard.wait(5.0):
            out.append((listener.frame - t0) / RATE)
        listener._armed = False
    return out


def run(opts) -> list[Row]:
    seconds = max(2.0, float(opts.seconds))
    repeats = max(9, 2 * int(opts.repeats))
    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, PrivateJackServer(rate=RATE, period=PERIOD) as server:
        files = {}
        for label, rate, name, subtype in (("FLAC 44.1k", 44100, "a.flac", "PCM_24"),
                                           ("WAV 48k", 48000, "b.wav", "PCM_16"),
                                           ("MP3 44.1k", 44100, "c.mp3", None)):
            x = (0.2 * rng.standard_normal((int(seconds * rate), 2))).astype(np.float32)
            x[:4096] = 0.5                      # loud from the first frame (MP3's priming is silent)
            path = Path(tmp) / name
            sf.write(path, x, rate, subtype=subtype)
            files[label] = path
        backend = JackBackend("auralis-rt", server=server.name, channels=2, lock_memory=False)
        executor, _ = live_executor("adaptive", 2, RATE)
        player = Player(executor)
        player.attach(backend)
        backend.activate()
        ours_listener = FirstSound(server.name, "ours-first")
        peer = NaivePlayer(server.name)
        peer_listener = FirstSound(server.name, "peer-first")
        for c in range(2):
            backend.connect(backend.outports[c], f"ours-first:in_{c + 1}")
            backend.connect(f"naive-player:out_{c + 1}", f"peer-first:in_{c + 1}")
        try:
            for label, path in files.items():
                player.queue.clear()
                player.queue.add(str(path))
                ours = measure(ours_listener, lambda: player.play(0), player.stop, repeats, rng)
                theirs = measure(peer_listener, lambda: peer.play(path), peer.stop, repeats, rng)
                o, p = statistics.median(ours), statistics.median(theirs)
                print(f"  {label} ({seconds:g} s file): play() -> first sample at our output: median "
                      f"{1e3 * o:.1f} ms (min {1e3 * min(ours):.1f}, max {1e3 * max(ours):.1f}, n={len(ours)}); "
                      f"read-whole-file peer {1e3 * p:.1f} ms (min {1e3 * min(theirs):.1f}, "
                      f"max {1e3 * max(theirs):.1f})")
                rows.append(Row(f"player play->first sample, {label}", "ns per start (wall)", o * 1e9,
                                "soundfile.read + JACK-Client", p * 1e9, "< 50 ms"))
            print(f"  includes the chain's latency of {executor.latency_frames} frames "
                  f"({1e3 * executor.latency_frames / RATE:.1f} ms) and up to one {PERIOD}-frame period "
                  f"({1e3 * PERIOD / RATE:.1f} ms) of waiting for the next cycle; underruns {player.underruns}, "
                  f"xruns {backend.status().xruns}")
        finally:
            player.close()
            ours_listener.close()
            peer_listener.close()
            peer.close()
            backend.destroy()
    return rows


if __name__ == "__main__":
    import argparse

    from tools.bench.common import print_rows

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the test files (s)")
    parser.add_argument("--repeats", type=int, default=7)
    rows = run(parser.parse_args())
    print_rows(rows)
