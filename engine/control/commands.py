"""The one command layer: typed commands and ``Dispatcher.execute(line) -> Reply``.

The REPL, scripts and OSC all call ``execute``; it never raises for anything a user can
type (unknown command, wrong unit, NaN, 1e999, unicode, control characters, unbalanced
quotes, empty line): the Reply is ``ok=False`` with one line saying what and where, and
nothing was applied.  A command changes parameters only through the Session (one
``Executor.publish`` per change), under the session's lock, so the OSC thread and the
REPL can call ``execute`` at the same time.

Each command has a name, typed arguments (with completion sources for the REPL), a
summary, help text and examples (``help set``).
"""

from __future__ import annotations

import difflib
import math
import shlex
import threading
import unicodedata
from dataclasses import dataclass
from typing import Any, Callable

from engine.control import units
from engine.control.session import ControlError, Session
from engine.control.units import UnitError, format_number, format_value
from engine.live import METER_NODES

__all__ = ["Reply", "Arg", "Command", "Dispatcher", "COMMANDS", "MAX_LINE"]

MAX_LINE = 4096
MAX_SLEEP_S = 60.0
SOURCES = ("repl", "script", "osc")


@dataclass(frozen=True)
class Reply:
    """What a command line did.  ``ok=False``: nothing was applied and ``text`` says
    why in one line.  ``value``: the result for programs (a number for ``get``, a dict
    for ``status``...).  ``quit``: the front end should stop."""

    ok: bool
    text: str
    value: Any = None
    quit: bool = False


@dataclass(frozen=True)
class Arg:
    """One argument: ``complete`` names a completion source (``key``, ``node``,
    ``preset``, ``port``, ``value``, ``file``) or lists literal choices."""

    name: str
    complete: str | tuple[str, ...] = ""
    optional: bool = False
    repeat: bool = False

    def usage(self) -> str:
        text = self.name + ("..." if self.repeat else "")
        return f"[{text}]" if self.optional else text


@dataclass(frozen=True)
class Command:
    name: str
    args: tuple[Arg, ...]
    summary: str
    run: Callable[["Context", list[str]], Reply]
    help: str = ""
    examples: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    needs: str = ""                 # "player" or "jack": refused (one line) without one
    sources: tuple[str, ...] = SOURCES
    locked: bool = True             # runs under the session lock (sleep does not)
    complete: Callable[[Session, list[str]], list[str]] | None = None

    def usage(self) -> str:
        return " ".join([self.name, *(a.usage() for a in self.args)])


@dataclass
class Context:
    session: Session
    dispatcher: "Dispatcher"
    source: str
    line: str


def ok(text: str, value: Any = None) -> Reply:
    return Reply(True, text, value)


def fail(text: str) -> Reply:
    return Reply(False, text)


def _arity(cmd: Command, args: list[str], lo: int, hi: int | None = None) -> None:
    hi = lo if hi is None else hi
    if not lo <= len(args) <= (hi if hi >= 0 else len(args)):
        raise ControlError(f"{cmd.name}: expected {cmd.usage()}")


# -- parameters ------------------------------------------------------------------

def _pairs(session: Session, args: list[str]) -> list[tuple[str, str]]:
    """``KEY VALUE [UNIT]`` ... or ``KEY=VALUE`` ... -> [(key, value text)]."""
    pairs = []
    i = 0
    while i < len(args):
        token = args[i]
        if "=" in token:
            key, _, value = token.partition("=")
            i += 1
        else:
            if i + 1 >= len(args):
                raise ControlError(f"set: {token} needs a value (set {token} VALUE)")
            key, value = token, args[i + 1]
            i += 2
        if i < len(args) and units.is_unit_word(args[i]):
            value += args[i]
            i += 1
        pairs.append((key, value))
    return pairs


def _shown(session: Session, key: str, v: float) -> str:
    return format_value(session.spec(key), v)


def _cmd_set(ctx: Context, args: list[str]) -> Reply:
    s = ctx.session
    if not args:
        raise ControlError("set: expected set NODE.PARAM VALUE [NODE.PARAM VALUE ...] (e.g. set comp.ratio 4:1)")
    changes: dict[str, Any] = {}
    for key, text in _pairs(s, args):
        spec = s.spec(key)
        value = units.parse_value(text, spec, key)
        changes[key] = s.check(key, value)
    before = {k: s.value(k) for k in changes}
    changed = s.apply(changes, " ".join(["set", *args]))
    if not changed:
        return ok("no change: " + ", ".join(f"{k} is already {_shown(s, k, v)}" for k, v in changes.items()), {})
    return ok(", ".join(f"{k} = {_shown(s, k, v)} (was {_shown(s, k, before[k])})" for k, v in changed.items()),
              changed)


def _describe(session: Session, key: str) -> str:
    spec = session.spec(key)
    value = session.value(key)
    extra = units.describe_range(spec, session.sample_rate)
    return f"{key} = {format_value(spec, value)}  {extra}" + (f"  ({spec.doc})" if spec.doc else "")


def _plain(session: Session, key: str) -> Any:
    spec = session.spec(key)
    v = session.value(key)
    return format_value(spec, v) if spec.choices is not None else v


def _cmd_get(ctx: Context, args: list[str]) -> Reply:
    s = ctx.session
    if not args:
        keys = s.keys()
        return ok("\n".join(_describe(s, k) for k in keys), {k: _plain(s, k) for k in keys})
    lines, values = [], {}
    for target in args:
        if "." in target or target == "intensity":
            lines.append(_describe(s, target))
            values[target] = _plain(s, target)
        else:
            node = s.node(target)
            if target in METER_NODES:
                lines.append(f"{target} is a live meter ({node.type.name}); read it with: meter")
                continue
            for key in [f"{target}.{p.name}" for p in node.type.params] + [f"{target}.bypass"]:
                lines.append(_describe(s, key))
                values[key] = _plain(s, key)
    if len(args) == 1 and len(values) == 1:
        return ok(lines[0], next(iter(values.values())))
    return ok("\n".join(lines), values)


def _bypass(ctx: Context, args: list[str], on: bool) -> Reply:
    s = ctx.session
    name = "bypass" if on else "enable"
    if not args:
        raise ControlError(f"{name}: expected {name} NODE [NODE ...]")
    changes = {}
    for node in args:
        if node == "intensity" or "." in node:
            raise ControlError(f"{name}: {node!r} is not a node name (nodes: {', '.join(s.node_names())})")
        s.node(node)
        if node in METER_NODES:
            raise ControlError(f"{name}: {node} is a live meter (pass-through); there is nothing to {name}")
        changes[f"{node}.bypass"] = 1.0 if on else 0.0
    changed = s.apply(changes, " ".join([name, *args]))
    state = "bypassed" if on else "active"
    if not changed:
        return ok(f"{', '.join(args)}: already {state}", {})
    return ok(f"{', '.join(k.partition('.')[0] for k in changed)}: {state}", changed)


# -- information ------------------------------------------------------------------

def _ms(frames: int, rate: float) -> str:
    return f"{1000.0 * frames / rate:.2f} ms"


def _cmd_status(ctx: Context, args: list[str]) -> Reply:
    _arity(ctx.dispatcher.commands["status"], args, 0)
    s = ctx.session
    info = s.engine_status()
    lat = info["latency_frames"]
    if info["kind"] == "offline":
        engine = (f"engine: offline driver ({info.get('source') or 'silence'}), {info['sample_rate']:g} Hz, "
                  f"block {info['period']}, {info['channels']} ch, {info['state']}")
    elif info["kind"] == "portaudio":
        engine = (f"engine: portaudio device {info.get('device', '')!r} ({info.get('host_api', '')}), "
                  f"{info['sample_rate']:g} Hz x {info['period']}, {info['channels']} ch, {info['state']}")
    else:
        engine = (f"engine: {info['kind']} client {info.get('client', '')!r} on server {info.get('server', '')!r}, "
                  f"{info['sample_rate']:g} Hz x {info['period']}, {info['channels']} ch, {info['state']}")
    load = (f"dsp {100 * info['dsp_load']:.1f} %" + (f", callback p99 {info['callback_us_p99']:.0f} us"
                                                     if 'callback_us_p99' in info else "")
            + (f", xruns {info['xruns']}" if info.get("xruns") is not None else ""))
    preset = f"preset: {s.preset.name}" + (" (modified)" if s.modified else "") + \
        (f" from {s.preset_path}" if s.preset_path and s.preset_path != s.preset.name else "")
    slots = "/".join(x.upper() + ("*" if s.active_slot == x else "") for x in "ab" if s.slots[x] is not None)
    lines = [engine, f"{load}, latency {lat} frames ({_ms(lat, info['sample_rate'])})", preset,
             f"undo {len(s.undo_stack)}, redo {len(s.redo_stack)}, A/B {slots or 'empty'}, "
             f"meters {'on' if s.meters_on else 'off'}"]
    if s.player is not None:
        try:
            underruns, _ = s.player.underruns
            lines.append(f"player: {_position_text(s.player)}, underruns {underruns}")
            info["player"] = _state_name(s.player.state)
        except Exception as exc:
            lines.append(f"player: {type(exc).__name__}: {exc}")
    osc = getattr(s, "osc_address", None)
    if osc:
        lines.append(f"osc: listening on {osc}")
    if s.server_gone:
        lines.append(f"the audio server went away: {s.server_gone}")
    info["preset"] = s.preset.name
    info["modified"] = s.modified
    return ok("\n".join(lines), info)


def _state_name(state: Any) -> str:
    return str(getattr(state, "value", getattr(state, "name", state)))


def _cmd_graph(ctx: Context, args: list[str]) -> Reply:
    _arity(ctx.dispatcher.commands["graph"], args, 0)
    s = ctx.session
    lines, value = [], []
    for depth, item in s.walk_graph():
        pad = "  " * depth
        if isinstance(item, str):
            lines.append(f"{pad}{item}")
            continue
        lat = item.latency_frames
        state = "meter" if item.name in METER_NODES else ("bypassed" if item.values.get("bypass") else "active")
        params = "  ".join(f"{p.name}={format_value(p, item.values[p.name])}" for p in item.type.params)
        lines.append(f"{pad}{item.name:<12} {item.type.name:<17} lat {lat:>5}  {state:<8}  {params}".rstrip())
        value.append({"name": item.name, "type": item.type.name, "latency_frames": lat,
                      "bypass": bool(item.values.get("bypass")), "values": dict(item.values)})
    total = s.executor.latency_frames
    lines.append(f"total latency {total} frames ({_ms(total, s.sample_rate)}), intensity "
                 f"{format_number(s.executor.intensity)}")
    return ok("\n".join(lines), value)


def meter_line(meters, info: dict | None = None) -> str:
    """The toolbar's text: M/S LUFS, true peak, gain reduction, correlation (+ DSP load,
    xruns and latency when ``info`` (Session.engine_status()) is given)."""
    def db(v):
        return "-inf" if v is None or not math.isfinite(v) else f"{v:.1f}"

    parts = [f"M {db(meters.momentary_lufs)} LUFS", f"S {db(meters.short_term_lufs)} LUFS",
             f"TP {db(meters.true_peak_dbtp)} dBTP"]
    if meters.gain_reduction_db:
        parts.append("GR " + " ".join(f"{name} {v if v > 0 else 0.0:.1f}"
                                      for name, v in meters.gain_reduction_db.items()) + " dB")
    if meters.correlation is not None:
        parts.append(f"corr {meters.correlation:+.2f}")
    if info is not None:
        parts.append(f"DSP {100 * info['dsp_load']:.1f} %")
        parts.append(f"xruns {info['xruns'] if info.get('xruns') is not None else '-'}")
        lat = info["latency_frames"]
        parts.append(f"lat {lat} ({_ms(lat, info['sample_rate'])})")
    return "  ".join(parts)


def _cmd_meter(ctx: Context, args: list[str]) -> Reply:
    s = ctx.session
    _arity(ctx.dispatcher.commands["meter"], args, 0, 1)
    if args:
        word = args[0].lower()
        if word not in ("on", "off"):
            raise ControlError(f"meter: {args[0]!r} is not on or off")
        s.meters_on = word == "on"
        return ok(f"meters {word}" + (" (the toolbar under the prompt)" if s.meters_on and ctx.source == "repl"
                                     else ""), s.meters_on)
    m = s.meters()
    info = s.engine_status()
    value = {"momentary_lufs": m.momentary_lufs, "short_term_lufs": m.short_term_lufs,
             "true_peak_dbtp": m.true_peak_dbtp, "gain_reduction_db": dict(m.gain_reduction_db),
             "correlation": m.correlation, "dsp_load": info["dsp_load"], "xruns": info.get("xruns"),
             "latency_frames": info["latency_frames"]}
    return ok(meter_line(m, info), value)


# -- undo, A/B ----------------------------------------------------------------------

def _steps(cmd: str, args: list[str]) -> int:
    if not args:
        return 1
    if len(args) > 1:
        raise ControlError(f"{cmd}: expected {cmd} [N]")
    try:
        n = int(args[0])
    except ValueError:
        raise ControlError(f"{cmd}: {args[0]!r} is not a whole number of steps") from None
    if not 1 <= n <= 1000:
        raise ControlError(f"{cmd}: {n} is outside [1, 1000] steps")
    return n


def _cmd_undo(ctx: Context, args: list[str], redo: bool = False) -> Reply:
    s = ctx.session
    name = "redo" if redo else "undo"
    n = _steps(name, args)
    done = (s.redo if redo else s.undo)(n)
    if not done:
        return fail(f"{name}: nothing to {name}")
    values = {}
    for entry in done:
        values.update(entry.after if redo else entry.before)
    shown = ", ".join(f"{k} = {_shown(s, k, v)}" for k, v in values.items())
    labels = "; ".join(repr(e.label) for e in done)
    return ok(f"{name} {labels}: {shown}", values)


def _cmd_ab(ctx: Context, args: list[str]) -> Reply:
    s = ctx.session
    if len(args) > 2:
        raise ControlError("ab: expected ab, ab a|b, ab store a|b or ab status")
    if args and args[0].lower() == "status":
        stored = [x.upper() for x in "ab" if s.slots[x] is not None]
        at = s.active_slot.upper() if s.active_slot else "-"
        return ok(f"A/B: stored {', '.join(stored) or 'nothing'}; at {at}", {"stored": stored, "at": s.active_slot})
    if args and args[0].lower() == "store":
        if len(args) != 2 or args[1].lower() not in ("a", "b"):
            raise ControlError("ab store: expected ab store a or ab store b")
        slot = args[1].lower()
        s.ab_store(slot)
        return ok(f"A/B: the current parameters are {slot.upper()}", slot)
    if len(args) == 2:
        raise ControlError("ab: expected ab, ab a|b, ab store a|b or ab status")
    slot = None
    if args:
        if args[0].lower() not in ("a", "b"):
            raise ControlError(f"ab: {args[0]!r} is not a, b, store or status")
        slot = args[0].lower()
    slot, changed = s.ab_switch(slot)
    return ok(f"A/B: {slot.upper()} ({len(changed)} parameter{'s' if len(changed) != 1 else ''} changed)", changed)


# -- presets ---------------------------------------------------------------------------

def _cmd_preset(ctx: Context, args: list[str]) -> Reply:
    s = ctx.session
    if not args:
        return ok(f"preset {s.preset.name}" + (" (modified)" if s.modified else "")
                  + (f": {s.preset.description}" if s.preset.description else ""), s.preset.name)
    sub, rest = args[0].lower(), args[1:]
    if sub == "list":
        from presets import store

        entries = store.list_presets()
        lines = []
        for e in entries:
            shadow = " (shadows the shipped one)" if getattr(e, "shadows_shipped", False) else ""
            desc = f"  {e.description}" if getattr(e, "description", "") else ""
            lines.append(f"{e.name:<16} {e.source}{shadow}{desc}")
        return ok("\n".join(lines) or "no presets", [e.name for e in entries])
    if sub == "load":
        if len(rest) != 1:
            raise ControlError("preset load: expected preset load NAME|FILE")
        preset, how = s.load_preset(rest[0])
        return ok(f"preset {preset.name}: {how}", preset.name)
    if sub == "save":
        force = [a for a in rest if a in ("--force", "-f", "force")]
        names = [a for a in rest if a not in force]
        if len(names) != 1:
            raise ControlError("preset save: expected preset save NAME [--force]")
        path = s.save_preset(names[0], overwrite=bool(force))
        return ok(f"saved preset {names[0]} to {path}", str(path))
    if sub == "diff":
        if len(rest) not in (1, 2):
            raise ControlError("preset diff: expected preset diff A [B] (one name: A against the running chain)")
        from presets import store

        a = s.load_preset_model(rest[0])
        b = s.load_preset_model(rest[1]) if len(rest) == 2 else s.snapshot_preset(s.preset.name)
        b_label = rest[1] if len(rest) == 2 else "running"
        from graph.nodes import NODE_TYPES

        rows = store.diff(a, b, NODE_TYPES)
        if not rows:
            return ok(f"{rest[0]} and {b_label} are the same", [])
        lines = [f"{key}: {av!r} ({rest[0]}) -> {bv!r} ({b_label})" for key, av, bv in rows]
        return ok("\n".join(lines), [tuple(r) for r in rows])
    raise ControlError(f"preset: {args[0]!r} is not list, load, save or diff")


# -- JACK ports ---------------------------------------------------------------------------

def _jack(session: Session):
    b = session.backend
    if b is None or not hasattr(b, "ports"):
        raise ControlError("no JACK client runs here (ports need auralis-rt host on JACK)")
    return b


def _cmd_ports(ctx: Context, args: list[str]) -> Reply:
    _arity(ctx.dispatcher.commands["ports"], args, 0, 1)
    b = _jack(ctx.session)
    pattern = args[0] if args else ""
    try:
        ports = b.client.get_ports(pattern)
        lines, value = [], []
        for p in ports:
            kind = ("physical " if p.is_physical else "") + ("audio" if p.is_audio else "midi")
            direction = "in " if p.is_input else "out"
            links = [q.name for q in b.client.get_all_connections(p)]
            arrow = ("<- " if p.is_input else "-> ") + ", ".join(links) if links else ""
            lines.append(f"{p.name:<36} {direction} {kind:<14} {arrow}".rstrip())
            value.append({"name": p.name, "input": p.is_input, "audio": p.is_audio, "physical": p.is_physical,
                          "connections": links})
    except Exception as exc:
        raise ControlError(f"ports: {exc}") from None
    return ok("\n".join(lines) or f"no port matches {pattern!r}", value)


def _cmd_connect(ctx: Context, args: list[str], connect: bool = True) -> Reply:
    name = "connect" if connect else "disconnect"
    if len(args) != 2:
        raise ControlError(f"{name}: expected {name} SOURCE DESTINATION (JACK port names; see ports)")
    b = _jack(ctx.session)
    try:
        (b.connect if connect else b.disconnect)(args[0], args[1])
    except Exception as exc:
        raise ControlError(str(exc).splitlines()[0]) from None
    return ok(f"{'connected' if connect else 'disconnected'} {args[0]} -> {args[1]}", (args[0], args[1]))


# -- transport ------------------------------------------------------------------------------

def _player(session: Session):
    if session.player is None:
        raise ControlError("no player runs here (start one with auralis-rt play FILE...)")
    return session.player


def _player_call(what: str, fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except (ValueError, TypeError, IndexError, RuntimeError, OSError) as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ControlError(f"{what}: {text.removeprefix('Player.').removeprefix(what + ': ')}") from None


def _track_text(player, track) -> str:
    if track is None:
        return "no track"
    try:
        number = player.queue.index_of(track) + 1
    except ValueError:
        return track.title
    return f"{number}/{len(player.queue.tracks())} {track.title}"


def _position_text(player) -> str:
    track, _frame, seconds = player.position()
    return f"{_state_name(player.state)}, {_track_text(player, track)}, {seconds:.2f} s"


def _transport(action: str) -> Callable[[Context, list[str]], Reply]:
    method = {"prev": "previous"}.get(action, action)

    def run(ctx: Context, args: list[str]) -> Reply:
        p = _player(ctx.session)
        if action == "play" and args:
            if len(args) > 1:
                raise ControlError("play: expected play [N] (N: position in the queue, from 1)")
            n = len(p.queue.tracks())
            try:
                index = int(args[0]) - 1
            except ValueError:
                raise ControlError(f"play: {args[0]!r} is not a queue position (1, 2, ...)") from None
            if not 0 <= index < n:
                raise ControlError(f"play: {args[0]} is outside [1, {n}] (the queue has {n} track"
                                   f"{'s' if n != 1 else ''})")
            _player_call("play", lambda: p.play(index))
        else:
            if args:
                raise ControlError(f"{action}: takes no arguments")
            _player_call(action, getattr(p, method))
        return ok(f"{action}: {_position_text(p)}", _state_name(p.state))
    return run


def _cmd_seek(ctx: Context, args: list[str]) -> Reply:
    p = _player(ctx.session)
    if len(args) != 1:
        raise ControlError("seek: expected seek TIME (42, 42s, 1:23, +10s, -5s)")
    seconds, relative = units.parse_seconds(args[0], "seek")
    if relative:
        seconds = max(0.0, seconds + p.position()[2])
    if seconds < 0:
        raise ControlError(f"seek: {args[0]!r} is before the start of the track")
    _player_call("seek", lambda: p.seek(seconds))
    return ok(f"seek: {_position_text(p)}", seconds)


def _cmd_queue(ctx: Context, args: list[str]) -> Reply:
    import os

    p = _player(ctx.session)
    q = p.queue
    sub = args[0].lower() if args else "list"
    rest = args[1:]

    def index(text: str, n: int) -> int:
        try:
            i = int(text)
        except ValueError:
            raise ControlError(f"queue {sub}: {text!r} is not a queue position (1, 2, ...)") from None
        if not 1 <= i <= n:
            raise ControlError(f"queue {sub}: {i} is outside [1, {n}]" if n else f"queue {sub}: the queue is empty")
        return i - 1

    if sub == "list":
        if rest:
            raise ControlError("queue list: takes no arguments")
        tracks = q.tracks()
        current = q.current
        lines = [f"{'>' if t == current else ' '} {i + 1:>3}  {t.title}  ({t.path})" for i, t in enumerate(tracks)]
        flags = f"repeat {q.repeat}" + (", shuffled" if q.shuffled else "")
        return ok("\n".join(lines + [flags]) if lines else f"the queue is empty ({flags})",
                  [t.path for t in tracks])
    if sub == "add":
        if not rest:
            raise ControlError("queue add: expected queue add FILE [FILE ...]")
        for path in rest:
            if not os.path.isfile(path):
                raise ControlError(f"queue add: {path}: no such file" if not os.path.isdir(path)
                                   else f"queue add: {path}: is a directory")
        added = _player_call("queue add", lambda: q.add(*rest))
        return ok(f"queue: added {len(added)} track{'s' if len(added) != 1 else ''} ({len(q.tracks())} in all)",
                  [t.path for t in added])
    if sub == "remove":
        if len(rest) != 1:
            raise ControlError("queue remove: expected queue remove N")
        i = index(rest[0], len(q.tracks()))
        track = _player_call("queue remove", lambda: q.remove(i))
        return ok(f"queue: removed {i + 1} {track.title}")
    if sub == "move":
        if len(rest) != 2:
            raise ControlError("queue move: expected queue move FROM TO")
        n = len(q.tracks())
        a, b = index(rest[0], n), index(rest[1], n)
        _player_call("queue move", lambda: q.move(a, b))
        return ok(f"queue: moved {a + 1} to {b + 1}")
    if sub in ("clear", "shuffle", "unshuffle"):
        if rest:
            raise ControlError(f"queue {sub}: takes no arguments")
        _player_call(f"queue {sub}", getattr(q, sub))
        return ok({"clear": "queue: cleared", "shuffle": "queue: shuffled", "unshuffle": "queue: in added order"}[sub])
    if sub == "repeat":
        modes = ("off", "one", "all")
        if len(rest) != 1 or rest[0].lower() not in modes:
            raise ControlError("queue repeat: expected queue repeat off|one|all")
        _player_call("queue repeat", lambda: setattr(q, "repeat", rest[0].lower()))
        return ok(f"queue: repeat {rest[0].lower()}")
    raise ControlError(f"queue: {args[0]!r} is not list, add, remove, move, clear, shuffle, unshuffle or repeat")


# -- the rest ---------------------------------------------------------------------------------

def _cmd_help(ctx: Context, args: list[str]) -> Reply:
    d = ctx.dispatcher
    if not args:
        width = max(len(c.name) for c in d.commands.values())
        needs = {"player": " (with a player)", "jack": " (on JACK)"}
        lines = [f"{c.name:<{width}}  {c.summary}" + ("" if d.available(c) else needs.get(c.needs, ""))
                 for c in d.ordered()]
        lines.append("help COMMAND shows its arguments and examples; Tab completes.")
        return ok("\n".join(lines), [c.name for c in d.ordered()])
    if len(args) > 1:
        raise ControlError("help: expected help [COMMAND]")
    cmd = d.lookup(args[0])
    lines = [f"usage: {cmd.usage()}", cmd.summary]
    if cmd.help:
        lines.append(cmd.help)
    if cmd.aliases:
        lines.append("also: " + ", ".join(cmd.aliases))
    if cmd.examples:
        lines.append("examples:")
        lines += [f"  {e}" for e in cmd.examples]
    return ok("\n".join(lines), cmd.name)


def _cmd_quit(ctx: Context, args: list[str]) -> Reply:
    ctx.session.stop_requested.set()
    return Reply(True, "bye", None, quit=True)


def _cmd_sleep(ctx: Context, args: list[str]) -> Reply:
    if len(args) != 1:
        raise ControlError("sleep: expected sleep SECONDS (e.g. sleep 0.5, sleep 200ms)")
    seconds, relative = units.parse_seconds(args[0], "sleep")
    if relative and seconds < 0:
        raise ControlError(f"sleep: {args[0]!r} is negative")
    if seconds > MAX_SLEEP_S:
        raise ControlError(f"sleep: {format_number(seconds)} s is outside [0, {MAX_SLEEP_S:g}] s")
    ctx.session.stop_requested.wait(seconds)
    return ok("", seconds)


# -- completion sources ------------------------------------------------------------------------

def complete_keys(session: Session) -> list[str]:
    return session.keys()


def complete_value(session: Session, key: str) -> list[str]:
    try:
        spec = session.spec(key)
    except ControlError:
        return []
    if spec.choices is not None:
        return list(spec.choices)
    if units._is_switch(spec):
        return ["on", "off"]
    return []


def _complete_set(session: Session, done: list[str]) -> list[str]:
    # KEY VALUE [UNIT] pairs: after a key comes its value, else the next key.
    i = 0
    while i < len(done):
        if "=" in done[i]:
            i += 1
        elif i + 1 < len(done):
            i += 2
            if i < len(done) and units.is_unit_word(done[i]):
                i += 1
        else:
            return complete_value(session, done[i])
    return complete_keys(session)


def _complete_nodes(session: Session, done: list[str]) -> list[str]:
    return [n for n in session.node_names() if n not in METER_NODES]


def _complete_get(session: Session, done: list[str]) -> list[str]:
    return _complete_nodes(session, done) + complete_keys(session)


def _preset_names() -> list[str]:
    try:
        from presets import store

        return [e.name for e in store.list_presets()]
    except Exception:
        from presets import shipped_names

        return shipped_names()


def _complete_preset(session: Session, done: list[str], partial: str = "") -> list[str]:
    if not done:
        return ["list", "load", "save", "diff"]
    if done[0] in ("load", "diff") and len(done) <= (1 if done[0] == "load" else 2):
        return complete_path(partial) if "/" in partial or partial.startswith(".") else _preset_names()
    if done[0] == "save":
        return _preset_names() + ["--force"] if len(done) >= 1 else []
    return []


def _port_names(session: Session) -> list[str]:
    b = session.backend
    if b is None or not hasattr(b, "ports"):
        return []
    try:
        return b.ports()
    except Exception:
        return []


def _complete_connect(session: Session, done: list[str]) -> list[str]:
    return _port_names(session) if len(done) < 2 else []


def _complete_ab(session: Session, done: list[str]) -> list[str]:
    if not done:
        return ["a", "b", "store", "status"]
    return ["a", "b"] if done == ["store"] else []


def _complete_help(session: Session, done: list[str]) -> list[str]:
    return [c.name for c in COMMANDS] if not done else []


def complete_path(partial: str) -> list[str]:
    """Files and directories (with a trailing /) that start with ``partial``."""
    import os

    directory, _, stem = partial.rpartition("/")
    base = os.path.expanduser(directory + "/" if directory or partial.startswith("/") else ".")
    try:
        names = sorted(os.listdir(base))
    except OSError:
        return []
    prefix = directory + "/" if directory or partial.startswith("/") else ""
    out = []
    for name in names:
        if name.startswith(stem) and (stem.startswith(".") or not name.startswith(".")):
            out.append(prefix + name + ("/" if os.path.isdir(os.path.join(base, name)) else ""))
    return out[:200]


def _complete_queue(session: Session, done: list[str], partial: str = "") -> list[str]:
    if not done:
        return ["list", "add", "remove", "move", "clear", "shuffle", "unshuffle", "repeat"]
    if done[0] == "add":
        return complete_path(partial)
    return ["off", "one", "all"] if done == ["repeat"] else []


def _literal(*words: str) -> Callable[[Session, list[str]], list[str]]:
    return lambda session, done: list(words) if not done else []


COMMANDS: tuple[Command, ...] = (
    Command("help", (Arg("COMMAND", "command", optional=True),), "list the commands, or explain one", _cmd_help,
            examples=("help", "help set"), aliases=("?",), complete=_complete_help),
    Command("status", (), "engine, preset, DSP load, xruns, latency, undo and A/B state", _cmd_status,
            examples=("status",)),
    Command("graph", (), "the chain: node, type, latency, bypass state and current values", _cmd_graph,
            examples=("graph",)),
    Command("get", (Arg("NODE.PARAM|NODE", "key", optional=True, repeat=True),),
            "show parameter values with their allowed range", _cmd_get,
            help="With no argument: every parameter.  A node name shows all of its parameters.",
            examples=("get comp.threshold_db", "get comp", "get intensity"), complete=_complete_get),
    Command("set", (Arg("NODE.PARAM", "key"), Arg("VALUE", "value"), Arg("NODE.PARAM VALUE", optional=True,
                                                                          repeat=True)),
            "change parameters (several at once land in the same audio block)", _cmd_set,
            help=("Values take units: dB (dBFS, dBTP), ms or s, Hz or kHz, % where the range is 0..2 "
                  "(intensity, widths), N:1 for ratios, on/off for switches, names for choices.  A value in the "
                  "wrong unit or outside the range is refused and nothing is applied.  KEY=VALUE works too."),
            examples=("set comp.threshold_db -18dB", "set comp.ratio 4:1 comp.attack_ms 10 ms",
                      "set limiter.release_ms 0.2s", "set width.width_2 90%", "set comp.detector rms",
                      "set intensity 0.8"),
            complete=_complete_set),
    Command("bypass", (Arg("NODE", "node", repeat=True),), "bypass nodes (latency-compensated crossfade)",
            lambda c, a: _bypass(c, a, True), examples=("bypass comp", "bypass eq width"),
            complete=_complete_nodes),
    Command("enable", (Arg("NODE", "node", repeat=True),), "un-bypass nodes", lambda c, a: _bypass(c, a, False),
            examples=("enable comp",), complete=_complete_nodes),
    Command("preset", (Arg("list|load|save|diff", ("list", "load", "save", "diff"), optional=True),
                       Arg("NAME", "preset", optional=True, repeat=True)),
            "list, load, save or compare presets", _cmd_preset,
            help=("load: a preset with the same nodes as the running chain is published as one undoable "
                  "change; another chain is swapped in (undo history and A/B are cleared).  save NAME writes "
                  "the running chain as a user preset (--force replaces one of that name).  diff A [B]: A "
                  "against B, or against the running chain."),
            examples=("preset list", "preset load warm", "preset save mymaster", "preset save mymaster --force",
                      "preset diff warm", "preset diff warm bright"),
            complete=_complete_preset),
    Command("ab", (Arg("a|b|store|status", ("a", "b", "store", "status"), optional=True),
                   Arg("a|b", ("a", "b"), optional=True)),
            "A/B: store the parameters as A or B, switch between them in one snapshot", _cmd_ab,
            help="ab with no argument toggles between A and B.  A switch is undoable.",
            examples=("ab store a", "set comp.ratio 8:1", "ab store b", "ab a", "ab"), complete=_complete_ab),
    Command("undo", (Arg("N", optional=True),), "undo the last parameter change(s), exact values restored",
            _cmd_undo, examples=("undo", "undo 3")),
    Command("redo", (Arg("N", optional=True),), "redo what undo undid", lambda c, a: _cmd_undo(c, a, True),
            examples=("redo",)),
    Command("meter", (Arg("on|off", ("on", "off"), optional=True),),
            "meters now, or on/off in the toolbar (LUFS M/S, true peak, GR, correlation, DSP, xruns, latency)",
            _cmd_meter, examples=("meter", "meter on", "meter off"), complete=_literal("on", "off")),
    Command("ports", (Arg("PATTERN", optional=True),), "JACK ports and their connections", _cmd_ports,
            needs="jack", examples=("ports", "ports system")),
    Command("connect", (Arg("SOURCE", "port"), Arg("DESTINATION", "port")), "connect two JACK ports",
            _cmd_connect, needs="jack", examples=("connect system:capture_1 auralis-rt:in_1",),
            complete=_complete_connect),
    Command("disconnect", (Arg("SOURCE", "port"), Arg("DESTINATION", "port")), "disconnect two JACK ports",
            lambda c, a: _cmd_connect(c, a, False), needs="jack",
            examples=("disconnect auralis-rt:out_1 system:playback_1",), complete=_complete_connect),
    Command("play", (Arg("N", optional=True),), "play: resume when paused, or start the queue's track N",
            _transport("play"), needs="player", examples=("play", "play 3")),
    Command("pause", (), "pause (with a short fade; play or resume continues)", _transport("pause"),
            needs="player", examples=("pause",)),
    Command("resume", (), "continue after pause", _transport("resume"), needs="player", examples=("resume",)),
    Command("stop", (), "stop playing", _transport("stop"), needs="player", examples=("stop",)),
    Command("next", (), "next track", _transport("next"), needs="player", examples=("next",)),
    Command("prev", (), "previous track", _transport("prev"), needs="player", aliases=("previous",),
            examples=("prev",)),
    Command("seek", (Arg("TIME"),), "seek in the current track (absolute, or +/- relative)", _cmd_seek,
            needs="player", examples=("seek 42", "seek 1:23", "seek +10s", "seek -5s")),
    Command("queue", (Arg("list|add|remove|move|clear|shuffle|unshuffle|repeat", optional=True),
                      Arg("ARG", optional=True, repeat=True)),
            "show or edit the play queue", _cmd_queue, needs="player",
            examples=("queue", "queue add song.flac", "queue remove 2", "queue move 3 1", "queue repeat all"),
            complete=_complete_queue),
    Command("sleep", (Arg("SECONDS"),), "wait (scripts), at most 60 s", _cmd_sleep, sources=("repl", "script"),
            locked=False, examples=("sleep 0.5", "sleep 200ms")),
    Command("quit", (), "leave (closes the host and stops a private JACK server)", _cmd_quit,
            sources=("repl", "script"), aliases=("exit",), examples=("quit",)),
)


class Dispatcher:
    """``execute(line) -> Reply`` over a Session; safe to call from several threads."""

    def __init__(self, session: Session, commands: tuple[Command, ...] = COMMANDS):
        self.session = session
        self.commands: dict[str, Command] = {c.name: c for c in commands}
        self._aliases = {a: c.name for c in commands for a in c.aliases}
        self.executed = 0
        self._count_lock = threading.Lock()

    def ordered(self) -> list[Command]:
        return list(self.commands.values())

    def names(self) -> list[str]:
        return list(self.commands) + list(self._aliases)

    def lookup(self, name: str) -> Command:
        key = name.lower()
        key = self._aliases.get(key, key)
        cmd = self.commands.get(key)
        if cmd is None:
            close = difflib.get_close_matches(key, self.names(), n=2, cutoff=0.6)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            raise ControlError(f"unknown command {name!r}{hint} (help lists the commands)")
        return cmd

    def available(self, cmd: Command) -> bool:
        if cmd.needs == "player":
            return self.session.player is not None
        if cmd.needs == "jack":
            return self.session.backend is not None and hasattr(self.session.backend, "ports")
        return True

    def execute(self, line: str, *, source: str = "repl") -> Reply:
        """Run one command line.  Never raises for user input; ``ok=False`` means
        nothing was applied."""
        with self._count_lock:
            self.executed += 1
        try:
            return self._execute(line, source)
        except (ControlError, UnitError) as exc:
            return fail(_one_line(str(exc)))
        except Exception as exc:  # a bug, not the user's: still one line, and the caller goes on
            return fail(f"internal error: {type(exc).__name__}: {_one_line(str(exc))}")

    def _execute(self, line: str, source: str) -> Reply:
        if not isinstance(line, str):
            return fail(f"a command line must be text, got {type(line).__name__}")
        if len(line) > MAX_LINE:
            return fail(f"line too long ({len(line)} characters; at most {MAX_LINE})")
        for ch in line:
            if ch != "\t" and unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn"):
                return fail(f"the line contains the control character U+{ord(ch):04X}")
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError as exc:
            return fail(f"cannot read the line: {str(exc).lower()}")
        if not tokens:
            return fail("empty command line (help lists the commands)")
        cmd = self.lookup(tokens[0])
        if source not in cmd.sources:
            return fail(f"{cmd.name} is not available from {source}")
        if not self.available(cmd):
            what = "a player (auralis-rt play)" if cmd.needs == "player" else "a JACK host (auralis-rt host)"
            return fail(f"{cmd.name}: needs {what}; none runs here")
        ctx = Context(self.session, self, source, line)
        if not cmd.locked:
            return cmd.run(ctx, tokens[1:])
        with self.session.lock:
            return cmd.run(ctx, tokens[1:])

    def completions(self, tokens_done: list[str], partial: str = "") -> list[str]:
        """Candidates for the next token after ``tokens_done`` (the REPL's Tab); ``partial``
        is what is typed of it so far (file names are listed from its directory)."""
        if not tokens_done:
            return [c.name for c in self.ordered() if self.available(c)]
        try:
            cmd = self.lookup(tokens_done[0])
        except ControlError:
            return []
        if cmd.complete is None:
            return []
        try:
            if cmd.complete in (_complete_queue, _complete_preset):
                return cmd.complete(self.session, tokens_done[1:], partial)
            return cmd.complete(self.session, tokens_done[1:])
        except Exception:
            return []


def _one_line(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else "error"
    return first
