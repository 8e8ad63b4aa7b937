"""`auralis-rt` command line."""

from __future__ import annotations

import argparse
import sys

from engine import __version__


def _cmd_info(args: argparse.Namespace) -> int:
    import rt_kernels
    from rt_kernels._ffi import lib
    from rt_kernels import _rt

    previous = lib.rt_denormals_enable()
    ftz = bool(lib.rt_denormals_active())
    lib.rt_denormals_restore(previous)
    print(f"auralis-rt {__version__}")
    print(f"C extension: {_rt.__file__}")
    print(f"FTZ/DAZ on the audio thread: {'supported' if ftz else 'not supported on this CPU'}")
    print("filter types: " + ", ".join(rt_kernels.FILTER_TYPES))
    return 0


EXIT_OK, EXIT_USAGE, EXIT_INPUT = 0, 2, 3


def _finite_float(text: str) -> float:
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _in_range(lo: float, hi: float, unit: str = ""):
    def parse(text: str) -> float:
        value = _finite_float(text)
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{value:g} is outside [{lo:g}, {hi:g}]{' ' + unit if unit else ''}")
        return value
    return parse


def _block_size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= 1 << 20:
        raise argparse.ArgumentTypeError(f"{value} is outside [1, 1048576] frames")
    return value


def _fmt(value, unit: str) -> str:
    return "-inf" if value is None else f"{value:.2f} {unit}"


def _print_measurement(title: str, m: dict) -> None:
    print(f"{title}: {_fmt(m['integrated_lufs'], 'LUFS')} integrated, LRA {_fmt(m['loudness_range_lu'], 'LU')}, "
          f"true peak {_fmt(m['true_peak_dbtp'], 'dBTP')}, sample peak {_fmt(m['sample_peak_dbfs'], 'dBFS')}, "
          f"{m['duration_s']:.2f} s, {m['sample_rate']} Hz, {m['channels']} ch")


def _user_errors():
    from engine.audio_io import AudioInputError, AudioOutputError
    from presets import PresetError

    errors = {AudioInputError: EXIT_INPUT, PresetError: EXIT_USAGE, AudioOutputError: EXIT_USAGE}
    for kind in _live_errors():
        errors[kind] = 1
    return errors


def _cmd_analyze(args: argparse.Namespace) -> int:
    import json

    from engine.mastering import measure_file

    m = measure_file(args.file).to_json()
    if args.json:
        print(json.dumps(m, indent=2))
    else:
        _print_measurement(args.file, m)
        if "notes" in m:
            print(f"note: {m['notes']}")
    return EXIT_OK


def _cmd_master(args: argparse.Namespace) -> int:
    import json

    from engine.mastering import master

    report = master(args.input, args.output, args.preset, target_lufs=args.target_lufs,
                    ceiling_dbtp=args.ceiling_dbtp, intensity=args.intensity, block_size=args.block_size,
                    subtype=args.subtype, progress=not args.json)
    data = report.to_json()
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        _print_measurement("input ", data["input"])
        _print_measurement("output", data["output"])
        print(f"preset {data['preset']}: target {data['target_lufs']:g} LUFS, ceiling {data['ceiling_dbtp']:g} dBTP, "
              f"intensity {data['intensity']:g}, {data['passes']} pass(es) -> {args.output}")
        for note in data["notes"]:
            print(f"note: {note}")
    return EXIT_OK


def _port_list(text: str) -> list[str]:
    ports = [p.strip() for p in text.split(",") if p.strip()]
    if not ports:
        raise argparse.ArgumentTypeError("expected PORT[,PORT...]")
    return ports


def _positive_int(lo: int, hi: int, unit: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{value} is outside [{lo}, {hi}] {unit}".rstrip())
        return value
    return parse


def _live_errors():
    from engine.backends.jack import JackBackendError
    from engine.backends.jackd import JackdError
    from engine.backends.portaudio import PortAudioError

    return (JackBackendError, JackdError, PortAudioError)


def _cmd_host(args: argparse.Namespace) -> int:
    import contextlib

    from engine.backends import open_host, run_host, status_line
    from engine.control import Dispatcher, Session
    from engine.control.run import ControlSetupError, control_services, interact, resolve_preset
    from engine.live import live_executor, meter_text

    preset = resolve_preset(args.preset)  # a bad preset is refused before any audio starts
    device = int(args.device) if args.device is not None and args.device.isdigit() else args.device
    interactive = not args.no_repl
    code = None
    with contextlib.ExitStack() as stack:
        host = stack.enter_context(open_host(
            args.backend, jack_server=args.jack_server, name=args.name, channels=args.channels,
            connect_in=args.connect_in, connect_out=args.connect_out, rate=args.rate, period=args.period,
            device=device))
        for note in host.notes:
            print(note, flush=True)
        status = host.backend.status()
        executor, notes = live_executor(preset, args.channels, float(status.sample_rate))
        host.backend.set_executor(executor)
        session = Session(executor, preset, backend=host.backend, host=host, preset_path=args.preset)
        dispatcher = Dispatcher(session)

        def tick(st):
            # --no-repl: the upkeep (collect, a new sample rate rebuilds the chain off the
            # audio thread and publishes it with one atomic swap) and the status line.
            with session.lock:
                session.housekeeping()
            while session.notices:
                print(session.notices.popleft(), flush=True)
            if not args.quiet:
                print(status_line(st, meter_text(session.executor)), flush=True)

        try:  # from here on Ctrl-C is the normal way to stop
            for note in notes:
                print(note, flush=True)
            print(f"auralis-rt host: {host.kind}, server {host.server_name!r}, {status.sample_rate} Hz x "
                  f"{status.period}, preset {preset.name}, latency {executor.latency_frames} frames"
                  + ("" if args.no_repl or not sys.stdin.isatty() else " (help lists the commands, Ctrl-D quits)"),
                  flush=True)
            with control_services(session, dispatcher, osc_port=args.osc_port, osc_bind=args.osc_bind,
                                  housekeeping=interactive):
                code = interact(session, dispatcher, script=args.script, repl=interactive, duration_s=args.duration)
                if code is None:
                    final = run_host(host, duration_s=args.duration, status_json=args.status_json, on_tick=tick,
                                     should_stop=session.stop_requested.is_set)
                else:
                    final = run_host(host, duration_s=0.0, status_json=args.status_json)  # final telemetry only
        except KeyboardInterrupt:
            final = run_host(host, duration_s=0.0, status_json=args.status_json)
        except ControlSetupError as exc:
            print(f"auralis-rt host: {exc}", file=sys.stderr)
            return EXIT_USAGE
        if getattr(final, "shutdown", False):
            print(f"auralis-rt host: the audio server went away ({final.shutdown_reason or 'no reason given'})",
                  file=sys.stderr)
            return 1
    return code or EXIT_OK


def _cmd_devices(args: argparse.Namespace) -> int:
    import json

    from engine.backends import list_devices

    found = list_devices(args.jack_server)
    if args.json:
        print(json.dumps(found, indent=2))
        return EXIT_OK
    if found["jack"]:
        print("JACK ports:")
        for port in found["jack"]:
            kind = ("physical " if port["physical"] else "") + ("audio" if port["audio"] else "midi")
            print(f"  {port['name']:40s} {port['direction']:6s} {kind}")
    else:
        print("JACK: no server running" + (f" named {args.jack_server!r}" if args.jack_server else ""))
    if found["portaudio"]:
        print("PortAudio devices:")
        for d in found["portaudio"]:
            print(f"  [{d['index']}] {d['name']} ({d['host_api']}): {d['inputs']} in, {d['outputs']} out, "
                  f"{d['default_sample_rate']:g} Hz")
    else:
        print("PortAudio: no devices")
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from engine.backends import run_demo
    from engine.live import live_executor, meter_text

    print(f"auralis-rt demo: synthesized music through preset {args.preset!r} on a private JACK server "
          f"(dummy driver) for {args.seconds:g} s; meters once per second", flush=True)
    final = run_demo(seconds=args.seconds, channels=2,
                     executor_factory=lambda channels, rate: live_executor(args.preset, channels, rate)[0],
                     meters_fn=meter_text, print_fn=lambda line: print(line, flush=True))
    print(f"done: {final.callbacks} callbacks, {final.xruns} xruns, DSP load {100 * final.dsp_load:.2f} %, "
          f"callback p99 {final.callback_us_p99:.1f} us", flush=True)
    return EXIT_OK


def _cmd_repl(args: argparse.Namespace) -> int:
    from engine.control import Dispatcher, Session
    from engine.control.driver import OfflineDriver
    from engine.control.run import ControlSetupError, control_services, interact, resolve_preset
    from engine.live import live_executor

    preset = resolve_preset(args.preset)
    rate, channels, source, source_name = args.rate, args.channels, None, "silence"
    if args.input:
        from engine.audio_io import AudioReader

        with AudioReader(args.input) as reader:
            rate, channels = reader.info.sample_rate, reader.info.channels
            limit = int(REPL_INPUT_SECONDS * rate)
            pieces, frames = [], 0
            for block in reader.blocks(65536):
                pieces.append(block[:limit - frames])
                frames += pieces[-1].shape[0]
                if frames >= limit:
                    break
        import numpy as np

        source = np.ascontiguousarray(np.concatenate(pieces, axis=0).T)
        source_name = f"{args.input}, looped"
    executor, notes = live_executor(preset, channels, float(rate), max_block=max(1024, args.block))
    driver = OfflineDriver(executor, block=args.block, source=source, source_name=source_name).start()
    session = Session(executor, preset, driver=driver, preset_path=args.preset)
    dispatcher = Dispatcher(session)
    if sys.stdin.isatty() or args.script:
        for note in notes:
            print(note, flush=True)
        print(f"auralis-rt repl: preset {preset.name} on an offline engine fed {source_name} "
              f"({rate} Hz, {channels} ch; nothing is played, meters and presets work). help lists the commands.",
              flush=True)
    try:
        with control_services(session, dispatcher, osc_port=args.osc_port, osc_bind=args.osc_bind):
            return interact(session, dispatcher, script=args.script) or EXIT_OK
    except ControlSetupError as exc:
        print(f"auralis-rt repl: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_OK
    finally:
        driver.stop()


REPL_INPUT_SECONDS = 120.0


def _cmd_presets(args: argparse.Namespace) -> int:
    """`presets list|show|validate|schema`: user presets next to the shipped ones."""
    import json

    import graph  # noqa: F401  (registers the node types the parameters are checked against)
    from graph.nodes import NODE_TYPES
    from presets import SCHEMA_VERSION, PresetError, store

    def value_text(spec, key: str, value) -> str:
        if isinstance(value, bool):
            return "on" if value else "off"
        if isinstance(value, str):
            return value
        if spec is not None and key == "ratio" and not spec.unit:
            return f"{value!r}:1"
        unit = f" {spec.unit}" if spec is not None and spec.unit else ""
        return f"{value!r}{unit}"

    def show(loaded) -> None:
        p = loaded.preset
        print(f"preset {p.name} ({loaded.source}: {loaded.path})")
        if p.description:
            print(f"  {p.description}")
        print(f"  target: {p.target.integrated_lufs!r} LUFS integrated, true-peak ceiling "
              f"{p.target.ceiling_dbtp!r} dBTP; intensity {p.intensity!r} (0 = dry, 1 = processed)")
        if p.adaptive:
            print(f"  adaptive: yes (EQ toward {p.eq_target} at {100 * p.eq_strength:g} %, reference level "
                  f"{p.reference_lufs!r} LUFS); stored parameters are the starting point")
        else:
            print("  adaptive: no (the stored parameters are used as they are)")
        print(f"  chain ({len(p.chain)} nodes, in order):")
        width = max(len(n.name) for n in p.chain)
        for i, node in enumerate(p.chain, 1):
            node_type = NODE_TYPES[node.type]
            specs = {s.name: s for s in node_type.params}
            options = {s.name: s for s in node_type.options}
            flags = "  (bypassed)" if node.bypass else ""
            if not node.params:
                flags += "  (all parameters at their defaults)"
            print(f"    {i}. {node.name:<{width}}  {node.type}{flags}")
            key_width = max((len(k) for k in node.params), default=0)
            for key, value in node.params.items():
                spec = specs.get(key) or options.get(key)
                fixed = "  (creation option: fixed while running)" if key in options else ""
                print(f"         {key:<{key_width}}  {value_text(spec, key, value)}{fixed}")

    try:
        if args.presets_command == "list":
            entries = store.list_presets(NODE_TYPES)
            if args.json:
                print(json.dumps({"user_dir": str(store.user_dir()), "presets": [e.to_json() for e in entries]},
                                 indent=2))
                return EXIT_OK
            user_count = sum(e.source == "user" for e in entries)
            print(f"user presets: {store.user_dir()}" + ("" if user_count else " (none yet)"))
            width = max(len(e.name) for e in entries)
            for e in entries:
                if e.error:
                    note = f"INVALID: {e.error}"
                else:
                    notes = []
                    if e.shadows_shipped:
                        notes.append(f"shadows the shipped {e.name!r}")
                    if e.shadowed:
                        notes.append(f"shadowed by your user preset {e.name!r}")
                    if e.schema_version is not None and e.schema_version < SCHEMA_VERSION:
                        notes.append(f"schema {e.schema_version}: migrated when loaded")
                    note = (f"[{'; '.join(notes)}] " if notes else "") + e.description
                print(f"  {e.name:<{width}}  {e.source:<7}  {note}")
            return EXIT_OK
        if args.presets_command == "show":
            loaded = store.open_preset(args.preset, NODE_TYPES)
            if loaded.note:
                print(f"auralis-rt presets: {loaded.note}", file=sys.stderr)
            if args.json:
                print(json.dumps(store.preset_data(loaded.preset), indent=2, ensure_ascii=False))
            else:
                show(loaded)
            return EXIT_OK
        if args.presets_command == "validate":
            loaded = store.open_preset(args.file, NODE_TYPES, write_migrated=True if args.migrate else False)
            where = loaded.path.name
            nodes = f"{len(loaded.preset.chain)} nodes"
            if not loaded.migrated:
                print(f"preset {where}: valid (schema {SCHEMA_VERSION}, {nodes})")
            elif loaded.backup is not None:
                print(f"preset {where}: valid; migrated from schema {loaded.from_version} to {SCHEMA_VERSION} and "
                      f"rewritten, the original is kept as {loaded.backup.name} ({nodes})")
            else:
                print(f"preset {where}: valid after migration from schema {loaded.from_version} to {SCHEMA_VERSION} "
                      f"({nodes}); `auralis-rt presets validate {loaded.path} --migrate` rewrites the file and keeps "
                      f"the original as {where}.v{loaded.from_version}.bak")
            return EXIT_OK
        if args.presets_command == "schema":
            print(json.dumps(store.schema(NODE_TYPES), indent=2))
            return EXIT_OK
    except PresetError as exc:  # one line per problem, each naming the file and the field
        for line in str(exc).splitlines():
            print(f"auralis-rt presets: {line}", file=sys.stderr)
        return EXIT_USAGE
    args.presets_parser.print_help()
    return EXIT_USAGE


def _cmd_play(args: argparse.Namespace) -> int:
    """`auralis-rt play`: files -> player -> the preset's live chain -> outputs, with the
    REPL (a terminal), the commands on stdin (no terminal) or neither (--no-repl)."""
    import contextlib
    import threading
    import time

    from engine.backends import open_host, run_host, status_line
    from engine.control import Dispatcher, Session
    from engine.control.run import ControlSetupError, control_services, interact, resolve_preset
    from engine.live import live_executor, meter_text
    from engine.player.player import Player

    def clock(seconds: float) -> str:
        return f"{int(seconds // 60)}:{seconds % 60:04.1f}"

    preset = resolve_preset(args.preset)  # a bad preset fails before any audio starts
    interactive = not args.no_repl
    tty = interactive and sys.stdin.isatty()
    code = None
    with contextlib.ExitStack() as stack:
        host = stack.enter_context(open_host(args.backend, jack_server=args.jack_server, channels=2))
        for note in host.notes:
            print(note, flush=True)
        status = host.backend.status()
        rate = float(status.sample_rate)
        executor, notes = live_executor(preset, 2, rate)
        player = Player(executor, crossfade_s=args.crossfade)
        stack.callback(player.close)
        session = Session(executor, preset, backend=host.backend, host=host, player=player,
                          preset_path=args.preset) if interactive else None
        finished = threading.Event()
        counts = {"tracks": 0, "errors": 0}
        # At a prompt, lines from the player's event thread would tear the line being
        # typed: they go to the session's notices, which the REPL prints between commands.
        say = session.notices.append if tty else (lambda text: print(text, flush=True))

        def on_event(event) -> None:  # the player's event thread
            if event.kind == "track":
                counts["tracks"] += 1
                d = event.data
                length = "" if d.get("frames") is None else f" ({clock(d['frames'] / d['sample_rate'])})"
                place = "" if d.get("index") is None else f"{d['index'] + 1}/{d['queue_length']} "
                say(f"track {place}{event.track.path}{length}")
            elif event.kind == "error":
                counts["errors"] += 1
                say(f"error: {event.message}")
            elif event.kind == "underrun":
                say(f"underrun: the decoder fell behind ({event.data['events']} so far)")
            elif event.kind == "end":
                finished.set()

        player.subscribe(on_event)
        player.attach(host.backend)
        player.queue.add(*args.files)
        for note in notes:
            print(note, flush=True)
        print(f"auralis-rt play: {len(args.files)} file(s), {host.kind}, server {host.server_name!r}, "
              f"{status.sample_rate} Hz x {status.period}, preset {preset.name}, latency "
              f"{executor.latency_frames} frames" + (f", crossfade {args.crossfade:g} s" if args.crossfade else "")
              + (" (help lists the commands, Ctrl-D quits)" if tty else ""), flush=True)
        last = {"t": 0.0}

        def tick(st) -> None:
            if session is None and "sample_rate" in (host.backend.poll_events()
                                                     if hasattr(host.backend, "poll_events") else []):
                print(f"auralis-rt play: the server's sample rate changed to {st.sample_rate} Hz; stopping",
                      file=sys.stderr, flush=True)
                finished.set()
            while session is not None and session.notices:
                print(session.notices.popleft(), flush=True)
            now = time.monotonic()
            if args.quiet or finished.is_set() or now - last["t"] < 1.0:
                return
            last["t"] = now
            track, _, seconds = player.position()
            where = f"{player.state.value} {clock(seconds)} {track.title if track else '-'}"
            print(status_line(st, f"{where}  {meter_text(executor)}"), flush=True)

        def play_out(duration_s):
            """Until the queue ends, `duration_s` passes, quit, or Ctrl-C."""
            stop = finished.is_set if session is None else (
                lambda: finished.is_set() or session.stop_requested.is_set())
            return run_host(host, duration_s=duration_s, interval_s=0.2, on_tick=tick, should_stop=stop)

        started = time.monotonic()
        player.play()
        try:
            if session is None:
                final = play_out(args.duration)
            else:
                dispatcher = Dispatcher(session)
                with control_services(session, dispatcher, osc_port=args.osc_port, osc_bind=args.osc_bind):
                    code = interact(session, dispatcher, script=args.script, repl=True,
                                    duration_s=None if not tty else args.duration)
                    if not tty and code == 0 and not session.stop_requested.is_set():
                        # stdin's commands are done: play on, as without a terminal one would
                        left = None if args.duration is None else max(0.0, args.duration - (time.monotonic() - started))
                        final = play_out(left)
                    else:
                        final = host.backend.status()
        except KeyboardInterrupt:
            final = host.backend.status()
        except ControlSetupError as exc:
            print(f"auralis-rt play: {exc}", file=sys.stderr)
            return EXIT_USAGE
        events, frames = player.underruns
        player.stop()
        print(f"done: {counts['tracks']} track(s) played, {counts['errors']} error(s), {events} underrun(s) "
              f"({frames} frames), {final.xruns} xruns", flush=True)
        if getattr(final, "shutdown", False):
            print(f"auralis-rt play: the audio server went away ({final.shutdown_reason or 'no reason given'})",
                  file=sys.stderr)
            return 1
        if counts["tracks"] == 0 and counts["errors"]:
            print("auralis-rt play: no file could be played", file=sys.stderr)
            return EXIT_INPUT
    return code or EXIT_OK


def _add_control_options(parser: argparse.ArgumentParser) -> None:
    """--script, --osc-port, --osc-bind: the command layer's inputs besides the REPL."""
    parser.add_argument("--script", metavar="FILE", help="run these commands first (stops at the first failing line)")
    parser.add_argument("--osc-port", type=_positive_int(0, 65535, ""), metavar="N",
                        help="accept the same commands as OSC messages on this UDP port (nothing listens without it)")
    parser.add_argument("--osc-bind", default="127.0.0.1", metavar="ADDR", help="OSC address (default 127.0.0.1)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="auralis-rt",
        description="Real-time audio plugin host and mastering engine (JACK, PortAudio, offline).",
    )
    parser.add_argument("--version", action="version", version=f"auralis-rt {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    info = sub.add_parser("info", help="show the build: version, C extension, denormal handling")
    info.set_defaults(func=_cmd_info)

    analyze = sub.add_parser("analyze", help="measure a file: BS.1770 loudness, LRA, true and sample peak")
    analyze.add_argument("file")
    analyze.add_argument("--json", action="store_true", help="print the values as JSON")
    analyze.set_defaults(func=_cmd_analyze)

    master = sub.add_parser("master", help="master a file offline through the default chain",
                            description="Master IN into OUT (WAV or FLAC). OUT appears only when the render "
                                        "succeeded. Exit status: 0 ok, 2 bad arguments or preset, 3 unreadable input.")
    master.add_argument("input", metavar="IN")
    master.add_argument("output", metavar="OUT")
    master.add_argument("--preset", default="adaptive", help="shipped preset name or a JSON file (default: adaptive)")
    master.add_argument("--target-lufs", type=_in_range(-40.0, -5.0, "LUFS"), help="integrated loudness target")
    master.add_argument("--ceiling-dbtp", type=_in_range(-12.0, 0.0, "dBTP"), help="true-peak ceiling")
    master.add_argument("--intensity", type=_in_range(0.0, 1.0), help="dry/wet over the whole chain, 0..1")
    master.add_argument("--block-size", type=_block_size, default=512, help="executor block (does not change the result)")
    master.add_argument("--subtype", choices=("PCM_16", "PCM_24", "FLOAT"), default="PCM_24",
                        help="PCM_16 is TPDF-dithered (default: PCM_24)")
    master.add_argument("--json", action="store_true", help="print the report as JSON")
    master.set_defaults(func=_cmd_master)

    host = sub.add_parser("host", help="live monitoring: inputs -> chain -> outputs on JACK or PortAudio",
                          description="Run the chain of a preset live. --backend auto uses a running JACK server "
                                      "or starts a private one (dummy driver) and stops it on exit.")
    host.add_argument("--backend", choices=("auto", "jack", "portaudio"), default="auto")
    host.add_argument("--jack-server", metavar="NAME", help="JACK server name (default: $JACK_DEFAULT_SERVER or default)")
    host.add_argument("--name", default="auralis-rt", help="JACK client name (ports in_1..N, out_1..N)")
    host.add_argument("--channels", type=_positive_int(1, 64, "channels"), default=2)
    host.add_argument("--preset", default="adaptive", help="shipped preset name or a JSON file (default: adaptive)")
    host.add_argument("--connect-in", type=_port_list, metavar="PORT,...", help="ports wired to in_1, in_2, ...")
    host.add_argument("--connect-out", type=_port_list, metavar="PORT,...", help="ports out_1, out_2, ... feed")
    host.add_argument("--rate", type=_positive_int(8000, 384000, "Hz"), default=48000,
                      help="sample rate of a private server or a PortAudio stream (default 48000)")
    host.add_argument("--period", type=_positive_int(16, 8192, "frames"), default=256,
                      help="period of a private server / PortAudio block size (default 256)")
    host.add_argument("--device", help="PortAudio device (index or name)")
    host.add_argument("--no-repl", action="store_true", help="no interactive prompt; run for --duration")
    host.add_argument("--duration", type=_in_range(0.0, 1e9, "s"), help="stop after S seconds (default: Ctrl-C)")
    host.add_argument("--status-json", metavar="PATH", help="write the final telemetry here")
    host.add_argument("--quiet", action="store_true", help="no status line per second")
    _add_control_options(host)
    host.set_defaults(func=_cmd_host)

    devices = sub.add_parser("devices", help="list JACK ports and PortAudio devices")
    devices.add_argument("--jack-server", metavar="NAME")
    devices.add_argument("--json", action="store_true")
    devices.set_defaults(func=_cmd_devices)

    demo = sub.add_parser("demo", help="the main job on the embedded default: a private JACK server, demo audio "
                                       "through the default preset, live meters")
    demo.add_argument("--seconds", type=_in_range(1.0, 3600.0, "s"), default=5.0)
    demo.add_argument("--preset", default="adaptive")
    demo.set_defaults(func=_cmd_demo)

    repl = sub.add_parser("repl", help="the control REPL on an offline engine: edit, meter and save presets",
                          description="The same commands as the host's REPL, on the preset's chain run by an "
                                      "offline engine at real-time pace, fed silence (or --input FILE, looped); "
                                      "nothing is played. For live audio use `auralis-rt host`. When stdin is not "
                                      "a terminal its lines are run as a script.")
    repl.add_argument("--preset", default="adaptive", help="user or shipped preset name, or a JSON file")
    repl.add_argument("--input", metavar="FILE", help=f"feed this file (its first {REPL_INPUT_SECONDS:g} s, looped) "
                                                      "instead of silence; its rate and channels are used")
    repl.add_argument("--rate", type=_positive_int(8000, 384000, "Hz"), default=48000)
    repl.add_argument("--channels", type=_positive_int(1, 64, "channels"), default=2)
    repl.add_argument("--block", type=_positive_int(16, 8192, "frames"), default=256,
                      help="frames per processing block (default 256)")
    _add_control_options(repl)
    repl.set_defaults(func=_cmd_repl)

    presets_parser = sub.add_parser(
        "presets", help="list, show, validate presets; print the preset JSON Schema",
        description="User presets live in $XDG_CONFIG_HOME/auralis-rt/presets (default ~/.config/...) next to the "
                    "shipped ones; a user preset named like a shipped one shadows it. Exit status: 0 ok, 2 bad "
                    "arguments or an invalid preset.")
    presets_sub = presets_parser.add_subparsers(dest="presets_command", metavar="SUBCOMMAND")
    presets_list = presets_sub.add_parser("list", help="user and shipped presets, with their descriptions")
    presets_list.add_argument("--json", action="store_true", help="print the list as JSON")
    presets_show = presets_sub.add_parser("show", help="a preset's targets and chain, parameters with units")
    presets_show.add_argument("preset", metavar="NAME|FILE")
    presets_show.add_argument("--json", action="store_true", help="print the preset as JSON (the file format)")
    presets_validate = presets_sub.add_parser(
        "validate", help="check a preset file; exit 0 valid, 2 invalid (one line per problem on stderr)",
        description="Check FILE (or a preset NAME) against the schema and the node types. A file of an older "
                    "schema version is reported; --migrate rewrites it in the current version, keeping the "
                    "original next to it as FILE.vN.bak.")
    presets_validate.add_argument("file", metavar="FILE")
    presets_validate.add_argument("--migrate", action="store_true",
                                  help="rewrite an older file in the current schema version (keeps a backup)")
    presets_sub.add_parser("schema", help="print the JSON Schema of the preset format")
    presets_parser.set_defaults(func=_cmd_presets, presets_parser=presets_parser)

    play = sub.add_parser("play", help="play files through a preset's live chain (gapless queue)",
                          description="Play FILE... in order through the live chain of a preset, gapless (or "
                                      "crossfaded). Unplayable files are reported and skipped. --backend auto uses "
                                      "a running JACK server or a private one (dummy driver). Exit status: 0 ok, "
                                      "1 audio server problem, 2 bad arguments or preset, 3 no file could be played.")
    play.add_argument("files", nargs="+", metavar="FILE")
    play.add_argument("--preset", default="adaptive", help="user or shipped preset name, or a JSON file (default: adaptive)")
    play.add_argument("--backend", choices=("auto", "jack", "portaudio"), default="auto")
    play.add_argument("--jack-server", metavar="NAME", help="JACK server name (default: $JACK_DEFAULT_SERVER or default)")
    play.add_argument("--no-repl", action="store_true",
                      help="no prompt and no commands from stdin; end with the queue")
    _add_control_options(play)
    play.add_argument("--crossfade", type=_in_range(0.0, 30.0, "s"), default=0.0,
                      help="equal-power crossfade between tracks in seconds (default 0: gapless)")
    play.add_argument("--duration", type=_in_range(0.0, 1e9, "s"), help="stop after S seconds")
    play.add_argument("--quiet", action="store_true", help="no status line per second")
    play.set_defaults(func=_cmd_play)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"auralis-rt {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one line for the user; the traceback with --debug
        if args.debug:
            raise
        for kind, status in _user_errors().items():
            if isinstance(exc, kind):
                print(f"auralis-rt {args.command}: {exc}", file=sys.stderr)
                return status
        print(f"auralis-rt {args.command}: internal error: {type(exc).__name__}: {exc} (run with --debug for the "
              f"traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
