"""What the commands act on: the running executor (and its backend, player or offline
driver), the preset the chain came from, undo/redo and the A/B slots.

Every parameter change is one ``Executor.publish`` (an atomic snapshot the audio thread
applies at the start of a block); nothing here touches the engine's state otherwise.
A Session is shared by the REPL, scripts and the OSC thread: each operation runs under
one re-entrant lock, so two threads never interleave inside an undo step or an A/B
switch (the audio thread never takes it; Executor.publish is lock-free toward it).

Parameter keys are ``"node.param"``, ``"node.bypass"`` and ``"intensity"``; values are
the floats the C nodes receive (a choice as its number), exactly as the executor
recorded them, so undo and A/B restore values bit for bit.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass
from typing import Any

from engine.live import METER_NODES, live_graph, read_meters
from engine.mastering.chain import TRUE_PEAK_MARGIN_DB, plan_chain
from graph import BYPASS, INTENSITY, Executor, ParamSpec
from graph.nodes import NODE_TYPES, Node
from graph.topology import Chain, Graph, Parallel
from presets import Preset, PresetError

__all__ = ["ControlError", "Session", "UndoEntry", "preset_values"]

UNDO_DEPTH = 1000
#: How long a change waits for room in the queue to the audio thread before it is refused.
PUBLISH_WAIT_S = 1.0


class ControlError(Exception):
    """A command that cannot be done; the message is one line for the user."""


@dataclass(frozen=True)
class UndoEntry:
    label: str
    before: dict[str, float]
    after: dict[str, float]


def _structure(nodes: list[tuple[str, str, dict[str, float]]]) -> tuple:
    return tuple((name, kind, tuple(sorted(options.items()))) for name, kind, options in nodes)


def preset_values(preset: Preset, channels: int, sample_rate: float) -> tuple[dict[str, float], tuple]:
    """What loading ``preset`` live gives: every live parameter key -> the float the C
    node receives (the same planner as live_graph), and the chain's structure (names,
    types, creation options) to tell whether a publish can reach it or a new graph is needed."""
    plan = plan_chain(preset, channels, int(sample_rate), None, preset.target.ceiling_dbtp)
    values: dict[str, float] = {}
    nodes = []
    for cfg in preset.chain:
        if cfg.name in plan.skipped:
            continue
        kind = NODE_TYPES[cfg.type]
        given = plan.params[cfg.name]
        where = f"preset {preset.name}"
        for p in kind.params:
            values[f"{cfg.name}.{p.name}"] = p.check(where, f"{cfg.name}.{p.name}", given.get(p.name, p.default),
                                                     sample_rate)
        values[f"{cfg.name}.bypass"] = 1.0 if cfg.bypass else 0.0
        options = {o.name: o.check(where, f"{cfg.name}.{o.name}", given.get(o.name, o.default), sample_rate)
                   for o in kind.options}
        nodes.append((cfg.name, cfg.type, options))
    values["intensity"] = float(preset.intensity)
    return values, _structure(nodes)


def _store():
    from presets import store

    return store


class Session:
    """The state the control commands act on.

    ``executor``: the running Executor (its graph must be ``live_graph`` of ``preset``
    or have the same node names).  ``backend``: a JackBackend/PortAudioBackend when
    audio runs through one (ports, xruns, latency reporting).  ``driver``: the offline
    driver feeding the executor (``auralis-rt repl``).  ``player``: an
    engine.player Player when one runs (transport commands).
    """

    def __init__(self, executor: Executor, preset: Preset, *, backend: Any = None, host: Any = None,
                 player: Any = None, driver: Any = None, undo_depth: int = UNDO_DEPTH,
                 preset_path: str | None = None):
        self._executor = executor
        self.preset = preset
        self.preset_path = preset_path
        self.backend = backend
        self.host = host
        self.player = player
        self.driver = driver
        self.lock = threading.RLock()
        self.undo_stack: collections.deque[UndoEntry] = collections.deque(maxlen=undo_depth)
        self.redo_stack: list[UndoEntry] = []
        self.slots: dict[str, dict[str, float] | None] = {"a": None, "b": None}
        self.active_slot: str | None = None
        self.meters_on = False
        self.notices: collections.deque[str] = collections.deque(maxlen=100)
        self.stop_requested = threading.Event()
        self.server_gone = ""
        self.osc_address: str | None = None   # set while an OscServer listens
        self._saved_values = self.values()

    # -- the engine -----------------------------------------------------------
    @property
    def executor(self) -> Executor:
        return self._executor

    @property
    def channels(self) -> int:
        return self._executor.channels

    @property
    def sample_rate(self) -> float:
        return self._executor.sample_rate

    def node_names(self) -> list[str]:
        """Nodes of the running chain, in order (the live meters included)."""
        return list(self._executor.graph.nodes)

    def node(self, name: str) -> Node:
        node = self._executor.graph.nodes.get(name)
        if node is None:
            raise ControlError(f"no node {name!r} in the chain (nodes: {', '.join(self.node_names())})")
        return node

    def keys(self) -> list[str]:
        """Every live parameter key of the chain (meters have none), bypass and intensity last per node."""
        keys = []
        for name, node in self._executor.graph.nodes.items():
            if name in METER_NODES:
                continue
            keys += [f"{name}.{p.name}" for p in node.type.params]
            keys.append(f"{name}.bypass")
        keys.append("intensity")
        return keys

    def spec(self, key: str) -> ParamSpec:
        """The ParamSpec of ``key``; ControlError naming what exists otherwise."""
        if key == "intensity":
            return INTENSITY
        name, dot, param = key.partition(".")
        if not dot or not param:
            raise ControlError(f"{key!r} is not node.param (e.g. comp.threshold_db) or intensity")
        node = self.node(name)
        if param == "bypass":
            return BYPASS
        try:
            return node.type.param(param)
        except KeyError:
            live = ", ".join([p.name for p in node.type.params] + ["bypass"])
            fixed = [o.name for o in node.type.options]
            hint = f"; {param} is fixed when the chain is built (preset)" if param in fixed else ""
            raise ControlError(f"{name} ({node.type.name}) has no parameter {param!r} (it has: {live}){hint}") from None

    def value(self, key: str) -> float:
        """The value last published for ``key`` (C units; a choice as its number)."""
        self.spec(key)
        if key == "intensity":
            return float(self._executor.intensity)
        name, _, param = key.partition(".")
        return float(self._executor.graph.nodes[name].values[param])

    def values(self) -> dict[str, float]:
        """Every live parameter's current value."""
        with self.lock:
            out = {}
            for name, node in self._executor.graph.nodes.items():
                if name in METER_NODES:
                    continue
                for p in node.type.params:
                    out[f"{name}.{p.name}"] = float(node.values[p.name])
                out[f"{name}.bypass"] = float(node.values["bypass"])
            out["intensity"] = float(self._executor.intensity)
            return out

    # -- changing parameters ---------------------------------------------------
    def check(self, key: str, value: Any) -> float:
        """``value`` (a number or a choice name) as the float ``key`` takes, range checked."""
        spec = self.spec(key)
        if spec.choices is not None and isinstance(value, float) and value.is_integer():
            value = int(value)  # a choice's number as the C node stores it (e.g. from undo or A/B)
        try:
            return spec.check("set", key, value, self.sample_rate)
        except (ValueError, TypeError) as exc:
            raise ControlError(str(exc).removeprefix("set: ")) from None

    def _publish(self, values: dict[str, float]) -> None:
        # The executor takes a choice as its name or integer code (the C value is a float).
        values = {k: int(v) if self.spec(k).choices is not None else v for k, v in values.items()}
        deadline = None
        while True:
            try:
                self._executor.publish(values)
                return
            except (ValueError, TypeError) as exc:
                raise ControlError(str(exc).removeprefix("Executor.publish: ")) from None
            except RuntimeError as exc:
                # The queue to the audio thread is full (a flood of changes within one
                # period): wait for the audio thread to drain it, a little.
                now = time.monotonic()
                deadline = deadline or now + PUBLISH_WAIT_S
                if now >= deadline:
                    raise ControlError(f"the engine does not take parameter changes right now ({exc})") from None
                time.sleep(0.001)

    def apply(self, changes: dict[str, Any], label: str, *, record: bool = True) -> dict[str, float]:
        """Validate ``changes`` as a whole and publish the ones that differ from the
        current values in ONE snapshot.  Nothing is applied if anything is invalid.
        Returns the published {key: value} (empty: nothing to change)."""
        with self.lock:
            checked = {key: self.check(key, v) for key, v in changes.items()}
            before = {key: self.value(key) for key in checked}
            changed = {k: v for k, v in checked.items() if v != before[k]}
            if not changed:
                return {}
            self._publish(changed)
            if record:
                self.undo_stack.append(UndoEntry(label, {k: before[k] for k in changed}, changed))
                self.redo_stack.clear()
            return changed

    def undo(self, steps: int = 1) -> list[UndoEntry]:
        """Publish the values before the last ``steps`` changes (each one snapshot)."""
        with self.lock:
            done = []
            for _ in range(steps):
                if not self.undo_stack:
                    break
                entry = self.undo_stack[-1]
                self._publish(entry.before)
                self.undo_stack.pop()
                self.redo_stack.append(entry)
                done.append(entry)
            return done

    def redo(self, steps: int = 1) -> list[UndoEntry]:
        with self.lock:
            done = []
            for _ in range(steps):
                if not self.redo_stack:
                    break
                entry = self.redo_stack[-1]
                self._publish(entry.after)
                self.redo_stack.pop()
                self.undo_stack.append(entry)
                done.append(entry)
            return done

    # -- A/B -------------------------------------------------------------------
    def ab_store(self, slot: str) -> None:
        with self.lock:
            self.slots[slot] = self.values()
            self.active_slot = slot

    def ab_switch(self, slot: str | None = None) -> tuple[str, dict[str, float]]:
        """Publish slot ``slot`` (None: the other one) in one snapshot; undoable."""
        with self.lock:
            if slot is None:
                if self.slots["a"] is None or self.slots["b"] is None:
                    missing = " and ".join(s.upper() for s in "ab" if self.slots[s] is None)
                    raise ControlError(f"A/B: {missing} not stored yet (ab store a, ab store b)")
                slot = "b" if self.active_slot == "a" else "a"
            stored = self.slots[slot]
            if stored is None:
                raise ControlError(f"A/B: {slot.upper()} is not stored yet (ab store {slot})")
            changed = self.apply(stored, f"ab {slot}")
            self.active_slot = slot
            return slot, changed

    # -- presets -----------------------------------------------------------------
    def load_preset(self, name_or_path: str) -> tuple[Preset, str]:
        """Load a preset live.  Same nodes and creation options as the running chain:
        one undoable snapshot.  Otherwise a new graph is swapped in (undo history and
        A/B slots no longer apply and are cleared).  Returns (preset, how)."""
        store = _store()
        try:
            preset = store.load(name_or_path, node_types=NODE_TYPES)
        except PresetError as exc:
            raise ControlError(str(exc).splitlines()[0]) from None
        with self.lock:
            try:
                values, structure = preset_values(preset, self.channels, self.sample_rate)
            except (ValueError, TypeError) as exc:
                raise ControlError(f"preset {preset.name}: {exc}") from None
            if structure == self._structure():
                self.apply(values, f"preset load {preset.name}")
                how = "parameters published"
            else:
                graph, notes = self._graph_for(preset)
                self._executor.swap(graph)
                self._publish({"intensity": float(preset.intensity)})
                if self.backend is not None:
                    self.backend.set_latency_frames(self._executor.latency_frames)
                self.undo_stack.clear()
                self.redo_stack.clear()
                self.slots = {"a": None, "b": None}
                self.active_slot = None
                how = "new chain swapped in (undo history and A/B cleared)"
            self.preset = preset
            self.preset_path = str(name_or_path)
            self._saved_values = self.values()
            return preset, how

    def _graph_for(self, preset: Preset) -> tuple[Graph, list[str]]:
        try:
            return live_graph(preset, self.channels, self.sample_rate)
        except (ValueError, TypeError) as exc:
            raise ControlError(f"preset {preset.name}: {str(exc).splitlines()[0]}") from None

    def _structure(self) -> tuple:
        nodes = [(name, node.type.name, node.options) for name, node in self._executor.graph.nodes.items()
                 if name not in METER_NODES]
        return _structure(nodes)

    def snapshot_preset(self, name: str | None = None) -> Preset:
        """The running chain as a preset: the loaded preset's fields with every live
        value (presets.store.with_values).  Checked to load back to exactly the running
        values; ControlError names the first one that would not."""
        store = _store()
        with self.lock:
            base = self.preset
            values = self.values()
            limiter = self._executor.graph.nodes.get("limiter")
            if limiter is not None and limiter.type.name == "limiter":
                # The planner sets the limiter from the preset's true-peak target minus its
                # margin, whatever the file says: store the ceiling there so it loads back.
                ceiling = round(values["limiter.ceiling_db"] + TRUE_PEAK_MARGIN_DB, 6)
                base = base.model_copy(update={"target": base.target.model_copy(update={"ceiling_dbtp": ceiling})})
            if name is not None:
                base = base.model_copy(update={"name": name})
            ceiling_dbtp = base.target.ceiling_dbtp
            if limiter is not None and not -12.0 <= ceiling_dbtp <= 0.0:
                top = -TRUE_PEAK_MARGIN_DB
                raise ControlError(f"limiter.ceiling_db = {values['limiter.ceiling_db']:g} dBFS cannot be saved: a "
                                   f"preset's limiter sits {TRUE_PEAK_MARGIN_DB:g} dB under its true-peak target "
                                   f"(0 .. -12 dBTP), so between {-12 + top:g} and {top:g} dBFS")
            try:
                preset = store.with_values(base, values, NODE_TYPES)
            except PresetError as exc:
                raise ControlError(str(exc).splitlines()[0]) from None
            back, _ = preset_values(preset, self.channels, self.sample_rate)
            for key, v in values.items():
                if back.get(key) != v:
                    raise ControlError(f"{key} = {v!r} cannot be stored exactly in a preset "
                                       f"(it would load back as {back.get(key)!r})")
            return preset

    def save_preset(self, name: str, *, overwrite: bool = False):
        store = _store()
        with self.lock:
            preset = self.snapshot_preset(name)
            try:
                path = store.save(preset, name=name, overwrite=overwrite)
            except (PresetError, FileExistsError, OSError, ValueError) as exc:
                raise ControlError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
            self.preset = preset
            self.preset_path = str(path)
            self._saved_values = self.values()
            return path

    def load_preset_model(self, name_or_path: str) -> Preset:
        try:
            return _store().load(name_or_path, node_types=NODE_TYPES)
        except PresetError as exc:
            raise ControlError(str(exc).splitlines()[0]) from None

    @property
    def modified(self) -> bool:
        """Values differ from the preset as loaded or last saved."""
        return self.values() != self._saved_values

    # -- engine events ----------------------------------------------------------
    def rebuild(self, sample_rate: float) -> None:
        """A new sample rate (JACK): the chain is built again for it (the C nodes
        depend on it), the current values published on the new executor, and the
        backend switched over.  Values the new rate cannot take keep the preset's."""
        with self.lock:
            if self.player is not None:
                # The player's stream is built around its executor: whoever started the
                # player rebuilds both.
                self.notices.append(f"sample rate is now {sample_rate:g} Hz: restart to rebuild the chain "
                                    f"and the player")
                return
            values = self.values()
            graph, _ = self._graph_for(self.preset)
            old = self._executor
            executor = Executor(graph, old.channels, float(sample_rate), max_block=old.max_block,
                                intensity=old.intensity)
            self._executor = executor
            refused = []
            try:
                executor.publish(values)
            except (ValueError, TypeError):  # e.g. a frequency above the new Nyquist: one by one
                for key, v in values.items():
                    try:
                        executor.publish({key: v})
                    except (ValueError, TypeError):
                        refused.append(key)
            if self.backend is not None:
                self.backend.set_executor(executor)
            self.notices.append(f"sample rate is now {sample_rate:g} Hz: chain rebuilt"
                                + (f" ({', '.join(refused)} kept the preset's values)" if refused else ""))

    def housekeeping(self) -> None:
        """Control-thread upkeep, about once a second: free what the audio thread
        retired, react to JACK events (new sample rate -> rebuild), notice a server
        that went away."""
        if self.backend is not None:
            self.backend.collect()
            events = self.backend.poll_events() if hasattr(self.backend, "poll_events") else []
            status = self.backend.status()
            if "sample_rate" in events:
                self.rebuild(float(status.sample_rate))
            if "buffer_size" in events:
                self.notices.append(f"period is now {status.period} frames")
            if getattr(status, "shutdown", False) and not self.server_gone:
                self.server_gone = status.shutdown_reason or "no reason given"
                self.notices.append(f"the audio server went away ({self.server_gone}); quit to exit")
        self._executor.collect()

    # -- reading ------------------------------------------------------------------
    def meters(self, take: bool = False):
        return read_meters(self._executor, take=take)

    def engine_status(self) -> dict[str, Any]:
        """Backend or driver figures: kind, rate, period, state, dsp_load, xruns, latency."""
        ex = self._executor
        info: dict[str, Any] = {"latency_frames": ex.latency_frames, "sample_rate": ex.sample_rate,
                                "channels": ex.channels}
        if self.backend is not None:
            st = self.backend.status()
            info.update(kind=type(self.backend).__name__.removesuffix("Backend").lower(), state=st.state,
                        period=st.period, dsp_load=st.dsp_load, xruns=st.xruns, callbacks=st.callbacks,
                        callback_us_p99=st.callback_us_p99, server=getattr(st, "server", ""),
                        client=getattr(st, "client_name", ""), device=getattr(st, "device", ""),
                        host_api=getattr(st, "host_api", ""))
        else:
            tel = ex.telemetry()
            info.update(kind="offline", state="running" if self.driver and self.driver.running else "stopped",
                        period=getattr(self.driver, "block", None), dsp_load=tel.dsp_load, xruns=None,
                        source=getattr(self.driver, "source_name", ""))
        return info

    def walk_graph(self) -> list[tuple[int, Node | str]]:
        """(depth, node or "parallel"/"branch") in graph order, for display."""
        out: list[tuple[int, Node | str]] = []

        def visit(element, depth):
            if isinstance(element, Node):
                out.append((depth, element))
            elif isinstance(element, Chain):
                for e in element.elements:
                    visit(e, depth)
            elif isinstance(element, Parallel):
                out.append((depth, "parallel"))
                for b in element.branches:
                    out.append((depth + 1, "branch"))
                    visit(b, depth + 2)

        visit(self._executor.graph.root, 0)
        return out

    def close(self) -> None:
        """Stop what the session started (the offline driver); the host is closed by its owner."""
        if self.driver is not None:
            self.driver.stop()

