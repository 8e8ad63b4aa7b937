"""The JACK backend under load: 64 frames / 48 kHz on a private jackd (dummy driver).

Load, the same in every phase: a Python thread in this process spinning on
pure Python code, and a background thread doing analysis (numpy FFTs).
Phases, each ``opts.seconds`` long in total, on the same server:

  A  a no-op C client: our client with no process function (silence)
  B  the engine: the chain run by the graph executor inside the same C callback
  C  the peer: the same chain run by a JACK-Client Python callback
     (Executor.process on the port arrays), as pyo or a naive host would

A and B are the same JACK client, switched between silence and the chain by
set_process every 5 s (interleaved slices), so the JACK graph is identical and
slow drifts of the shared machine's load fall on both alike.  xruns are
server-wide notifications, counted by our client's xrun callback; per phase
the sum over its slices is reported.  Target: B's xruns <= 1.2 x A's.

Callback p50/p99: ours from the C histogram (median of the chain slices' p50,
worst slice's p99), the peer's from
perf_counter_ns around its Python callback body (which excludes waiting for
the GIL before the body starts, so it flatters the peer).  DSP load target:
<= 2 % of the period.

The chain is the default mastering chain as the live host runs it (engine.live:
the adaptive preset's input gain, 25-band psychoacoustic EQ, compressor, 3-band
stereo width, loudness gain, true-peak limiter, plus the loudness meter), stereo.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from engine.backends.jack import JackBackend
from engine.backends.jackd import PrivateJackServer
from engine.live import live_executor
from graph import Executor
from tools.bench.common import Row

RATE = 48000
PERIOD = 64


def default_chain_executor():
    return live_executor("adaptive", 2, RATE, max_block=512)[0]


class Load:
    """A pure-Python spinner and a numpy analysis thread."""

    def __init__(self):
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._spin, daemon=True),
                        threading.Thread(target=self._analyse, daemon=True)]

    def _spin(self):
        x = 0
        while not self.stop.is_set():
            for i in range(1000):
                x = (x * 31 + i) % 1000003

    def _analyse(self):
        rng = np.random.default_rng(0)
        block = rng.standard_normal(1 << 16).astype(np.float32)
        while not self.stop.is_set():
            spectrum = np.abs(np.fft.rfft(block * np.hanning(block.size)))
            block = np.roll(block, 1) + 1e-3 * float(spectrum[:16].mean())
            block /= max(1.0, float(np.abs(block).max()))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            if t.is_alive():
                t.join()


class PythonPeer:
    """The same chain in a JACK-Client Python process callback."""

    def __init__(self, server: str, executor: Executor):
        import jack

        self.ex = executor
        self.costs: list[int] = []
        self.client = jack.Client("py-peer", servername=server, no_start_server=True)
        self.ins = [self.client.inports.register(f"in_{c + 1}") for c in range(2)]
        self.outs = [self.client.outports.register(f"out_{c + 1}") for c in range(2)]
        self.client.set_process_callback(self._process)
        self.client.activate()

    def _process(self, frames):
        t0 = time.perf_counter_ns()
        block = np.stack([p.get_array() for p in self.ins])
        out = self.ex.process(block)
        for c, p in enumerate(self.outs):
            p.get_array()[:] = out[c]
        self.costs.append(time.perf_counter_ns() - t0)

    def close(self):
        self.client.deactivate()
        self.client.close()


def _feed(backend: JackBackend, ports: list[str]) -> None:
    for c, port in enumerate(ports):
        backend.connect(f"system:capture_{c + 1}", port)


def run(opts) -> list[Row]:
    seconds = float(opts.seconds)
    period_ns = 1e9 * PERIOD / RATE
    with PrivateJackServer(rate=RATE, period=PERIOD, inputs=2, outputs=2) as server, Load() as load:
        # A and B: one client, silence (no-op) and the chain in interleaved slices.
        engine = JackBackend("auralis-rt", server=server.name, channels=2)
        executor = default_chain_executor()
        engine.activate()
        _feed(engine, engine.inports)
        slices = max(1, round(seconds / 5.0))
        xruns_noop = xruns_engine = 0
        chain_slices = []  # status at the end of each chain slice (stats reset at its start)
        for i in range(2 * slices):
            chain_on = i % 2 == 1
            if chain_on:
                engine.set_executor(executor)
            else:
                engine.clear_process()
            time.sleep(0.5)  # let the swap settle
            engine.reset_stats()
            x0 = engine.status().xruns
            time.sleep(seconds / slices)
            status = engine.status()
            if chain_on:
                xruns_engine += status.xruns - x0
                chain_slices.append(status)
            else:
                xruns_noop += status.xruns - x0
        engine.destroy()
        ours_p50 = float(np.median([st.callback_us_p50 for st in chain_slices]))
        ours_p99 = max(st.callback_us_p99 for st in chain_slices)  # the worst slice
        ours_max = max(st.callback_us_max for st in chain_slices)
        ours_callbacks = sum(st.callbacks for st in chain_slices)

        # C: the Python-callback peer.
        observer = JackBackend("observer", server=server.name, channels=1)  # counts the peer phase's xruns
        observer.clear_process()
        observer.activate()
        peer = PythonPeer(server.name, default_chain_executor())
        for c in range(2):
            observer.client.connect(f"system:capture_{c + 1}", f"py-peer:in_{c + 1}")
        time.sleep(1.0)
        peer.costs.clear()
        x0 = observer.status().xruns
        time.sleep(seconds)
        xruns_peer = observer.status().xruns - x0
        costs = np.array(peer.costs, dtype=np.float64)
        # Stop the load first: jack_deactivate waits for the peer's process
        # thread, which waits for the GIL that the load threads keep taking.
        load.__exit__(None, None, None)
        peer.close()
        observer.destroy()

    peer_p50, peer_p99 = (float(np.percentile(costs, q)) for q in (50, 99)) if costs.size else (float("nan"),) * 2
    cycles = seconds * RATE / PERIOD
    print(f"  {seconds:g} s per phase at {PERIOD} frames / {RATE} Hz ({cycles:.0f} cycles), with a Python spinner "
          f"and a numpy analysis thread in the process")
    print(f"  xruns: no-op C client {xruns_noop}, engine {xruns_engine}, JACK-Client Python peer {xruns_peer}")
    print(f"  engine ({len(chain_slices)} x {seconds / slices:g} s): callback p50 {ours_p50:.1f} us (median of slices), "
          f"p99 {ours_p99:.1f} us (worst slice), max {ours_max:.1f} us; DSP load at p50 "
          f"{100 * ours_p50 * 1e3 / period_ns:.2f} %, at p99 {100 * ours_p99 * 1e3 / period_ns:.2f} % of the "
          f"{period_ns / 1e3:.0f} us period; {ours_callbacks} callbacks")
    print(f"  peer:   callback p50 {peer_p50 / 1e3:.1f} us, p99 {peer_p99 / 1e3:.1f} us "
          f"({costs.size} callbacks of {cycles:.0f} cycles ran)")
    return [
        Row("jack callback p50, chain, 64 fr", "ns per callback", ours_p50 * 1e3,
            "JACK-Client Python callback", peer_p50),
        Row("jack callback p99, chain, 64 fr", "ns per callback", ours_p99 * 1e3,
            "JACK-Client Python callback", peer_p99, "DSP load <= 2 %"),
        Row("jack xruns+1 per phase, engine", "xruns+1 (in the ns column)", xruns_engine + 1.0,
            "no-op C client", xruns_noop + 1.0, "ratio >= 0.83"),
        Row("jack xruns+1 per phase, engine vs py peer", "xruns+1 (in the ns column)", xruns_engine + 1.0,
            "JACK-Client Python callback", xruns_peer + 1.0),
    ]
