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

    return {AudioInputError: EXIT_INPUT, PresetError: EXIT_USAGE, AudioOutputError: EXIT_USAGE}


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
