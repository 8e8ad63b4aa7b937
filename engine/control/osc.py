"""OSC control (python-osc UDP server on its own thread; nothing listens unless
``--osc-port N`` is given; it binds 127.0.0.1 unless ``--osc-bind ADDR``).

Every message becomes a command line for the same ``Dispatcher.execute`` as the REPL
(source "osc"; ``quit`` and ``sleep`` are refused there):

=====================================  ===============================================
message                                does
=====================================  ===============================================
/param/<node>/<param> <value>          set node.param value (a number, or text with a
                                       unit: "-18dB", "4:1", "rms"; T/F = on/off)
/param/<node>/<param>  (no argument)   replies /param/<node>/<param> <value> to the sender
/bypass/<node> 1|0                     bypass / enable (no argument: replies 1|0)
/preset "warm"                         preset load warm
/transport/play|pause|resume|stop|next|prev  the player's transport
/transport/seek 42.0                   seek 42.0 (seconds)
/cmd "any command line"                replies /reply <1|0> "<text>"
=====================================  ===============================================

Any failure is answered to the sender as ``/error "<one line>"``; successful changes
are silent (controllers send many).  OSC floats are 32-bit: send a string ("-20.3dB")
or a double for a value that must be exact.  Bundles run at once (their time tags
are not waited for, so a bundle cannot hold the OSC thread).
"""

from __future__ import annotations

import shlex
import threading
from typing import Any

from pythonosc.dispatcher import Dispatcher as OscDispatcher
from pythonosc.osc_server import BlockingOSCUDPServer

from engine.control.commands import Dispatcher, Reply
from engine.control.units import format_number

__all__ = ["OscServer", "osc_to_line"]


class OscRouteError(ValueError):
    pass


def _arg_text(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (int, float)):
        return format_number(float(value))
    if isinstance(value, (bytes, bytearray)):
        raise OscRouteError("a blob is not a value")
    if value is None:
        raise OscRouteError("nil is not a value")
    return str(value)


def osc_to_line(address: str, args: tuple) -> tuple[str, str]:
    """(command line, kind) for an OSC message; kind is "set", "query", "cmd" or "do".
    Raises OscRouteError for an address or arguments that map to no command."""
    parts = address.split("/")
    if len(parts) < 2 or parts[0] != "":
        raise OscRouteError(f"{address!r} is not an OSC address")
    parts = parts[1:]
    head = parts[0]
    q = shlex.quote
    if head == "param" and len(parts) == 3 and all(parts[1:]):
        key = f"{parts[1]}.{parts[2]}"
        if not args:
            return f"get {q(key)}", "query"
        if len(args) != 1:
            raise OscRouteError(f"{address} takes one value, got {len(args)}")
        return f"set {q(key)} {q(_arg_text(args[0]))}", "set"
    if head == "bypass" and len(parts) == 2 and parts[1]:
        if not args:
            return f"get {q(parts[1] + '.bypass')}", "query"
        if len(args) != 1 or _arg_text(args[0]) not in ("1", "0", "on", "off"):
            raise OscRouteError(f"{address} takes 1 (bypass) or 0 (enable)")
        on = _arg_text(args[0]) in ("1", "on")
        return f"{'bypass' if on else 'enable'} {q(parts[1])}", "do"
    if head == "preset" and len(parts) == 1:
        if len(args) != 1 or not isinstance(args[0], str):
            raise OscRouteError('/preset takes one string: the preset name, e.g. /preset "warm"')
        return f"preset load {q(args[0])}", "do"
    if head == "transport" and len(parts) == 2:
        action = parts[1]
        if action == "seek":
            if len(args) != 1 or isinstance(args[0], bool):
                raise OscRouteError("/transport/seek takes one value: seconds (42.0) or a time (\"1:23\")")
            return f"seek {q(_arg_text(args[0]))}", "do"
        if action in ("play", "pause", "resume", "stop", "next", "prev"):
            extra = f" {q(_arg_text(args[0]))}" if action == "play" and len(args) == 1 else ""
            if len(args) > (1 if action == "play" else 0):
                raise OscRouteError(f"{address} takes no arguments")
            return f"{action}{extra}", "do"
    if head == "cmd" and len(parts) == 1:
        if len(args) != 1 or not isinstance(args[0], str):
            raise OscRouteError('/cmd takes one string: a command line, e.g. /cmd "get comp.ratio"')
        return args[0], "cmd"
    raise OscRouteError(f"no OSC command at {address} (/param/NODE/PARAM, /bypass/NODE, /preset, /transport/..., /cmd)")


class OscServer:
    """The OSC server thread.  ``port`` 0 picks a free port (see ``address``).
    Raises OSError when the address cannot be bound."""

    def __init__(self, dispatcher: Dispatcher, port: int, bind: str = "127.0.0.1"):
        self.dispatcher = dispatcher
        osc = OscDispatcher(strict_timing=False)
        osc.set_default_handler(self._handle, needs_reply_address=True)
        self.server = BlockingOSCUDPServer((bind, port), osc)
        self.address = self.server.server_address[:2]
        self.messages = 0
        self.errors = 0
        self._thread: threading.Thread | None = None

    def start(self) -> "OscServer":
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="auralis-osc", daemon=True)
        self._thread.start()
        host, port = self.address
        self.dispatcher.session.osc_address = f"udp://{host}:{port}"
        return self

    def close(self) -> None:
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join(5.0)
            self._thread = None
        self.server.server_close()
        self.dispatcher.session.osc_address = None

    def __enter__(self) -> "OscServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def _handle(self, client_address, address: str, *args):
        """One message -> one command; returns the reply message (or None)."""
        self.messages += 1
        try:
            line, kind = osc_to_line(address, args)
        except OscRouteError as exc:
            self.errors += 1
            return ("/error", str(exc))
        except Exception as exc:
            self.errors += 1
            return ("/error", f"{address}: {type(exc).__name__}: {exc}")
        reply: Reply = self.dispatcher.execute(line, source="osc")
        if kind == "cmd":
            return ("/reply", 1 if reply.ok else 0, reply.text)
        if not reply.ok:
            self.errors += 1
            return ("/error", reply.text)
        if kind == "query":
            value = reply.value
            if isinstance(value, bool):
                value = 1 if value else 0
            if address.startswith("/bypass/"):
                value = 1 if value else 0
            return (address, value if isinstance(value, (int, float, str)) else str(value))
        return None
