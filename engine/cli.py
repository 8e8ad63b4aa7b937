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
        return 130
    except Exception as exc:  # one line for the user; the traceback with --debug
        if args.debug:
            raise
        print(f"auralis-rt {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
