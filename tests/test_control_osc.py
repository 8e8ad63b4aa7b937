"""OSC from a real python-osc UDP client on loopback, while the engine runs and the
REPL-side dispatcher is used at the same time."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.udp_client import SimpleUDPClient

from engine.control.osc import OscRouteError, OscServer, osc_to_line
from engine.control.run import ControlSetupError, control_services
from tests.control_rig import Rig, TONE_DBFS, rig, sine_rms_db, write_probe_preset  # noqa: F401 (rig: fixture)


@pytest.fixture
def osc(rig):
    server = OscServer(rig.dispatcher, 0).start()  # port 0: a free one
    client = SimpleUDPClient(*server.address)
    yield server, client
    server.close()


def wait_for(predicate, timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def answer(client, timeout_s=5.0) -> OscMessage:
    data = client.receive(timeout_s)
    assert data, "no OSC reply"
    return OscMessage(data)


def test_param_messages_change_parameters_and_the_audio(rig, osc):
    server, client = osc
    assert server.address[0] == "127.0.0.1"
    client.send_message("/param/input/gain_db", -6.0)
    wait_for(lambda: rig.session.value("input.gain_db") == -6.0)
    rig.settle(0.1)
    assert rig.level_db() == pytest.approx(sine_rms_db(TONE_DBFS) - 6.0, abs=0.01)
    client.send_message("/param/comp/ratio", "3:1")  # text with units goes through the same parser
    client.send_message("/param/comp/detector", "peak")
    client.send_message("/param/limiter/auto_release", True)
    wait_for(lambda: rig.session.value("limiter.auto_release") == 1.0)
    assert rig.session.value("comp.ratio") == 3.0 and rig.session.value("comp.detector") == 0.0
    # OSC floats are 32-bit: -20.3 arrives as the nearest float32.
    client.send_message("/param/comp/threshold_db", -20.3)
    wait_for(lambda: rig.session.value("comp.threshold_db") != -6.0)
    assert rig.session.value("comp.threshold_db") == float(np.float32(-20.3))
    # The changes are undoable from the REPL like any other.
    assert len(rig.session.undo_stack) == 5


def test_a_query_gets_the_value_back_at_the_same_address(rig, osc):
    server, client = osc
    rig.run("set comp.ratio 2.5:1 comp.detector peak")
    client.send_message("/param/comp/ratio", [])
    reply = answer(client)
    assert (reply.address, reply.params) == ("/param/comp/ratio", [2.5])
    client.send_message("/param/comp/detector", [])
    assert answer(client).params == ["peak"]
    rig.run("bypass comp")
    client.send_message("/bypass/comp", [])
    assert answer(client).params == [1]
    client.send_message("/cmd", "get input.gain_db")
    reply = answer(client)
    assert reply.address == "/reply" and reply.params[0] == 1
    assert reply.params[1].startswith("input.gain_db = 0 dB  [-120, 48] dB")


def test_bypass_preset_and_cmd(rig, osc):
    server, client = osc
    client.send_message("/bypass/comp", 1)
    wait_for(lambda: rig.session.value("comp.bypass") == 1.0)
    client.send_message("/bypass/comp", 0)
    wait_for(lambda: rig.session.value("comp.bypass") == 0.0)
    client.send_message("/preset", "warm")
    wait_for(lambda: rig.session.preset.name == "warm")
    assert "eq.band_01_db" in rig.session.values()
    client.send_message("/cmd", "set eq.band_01_db 2.5 comp.ratio 3:1")
    reply = answer(client)
    assert reply.params[0] == 1 and rig.session.value("eq.band_01_db") == 2.5


@pytest.mark.parametrize("address, args, error", [
    ("/param/comp/ratio", [1e9], "comp.ratio = 1000000000.0 is outside [1, 1000]"),
    ("/param/comp/ratio", ["nan"], "comp.ratio: 'nan' is not a finite number"),
    ("/param/comp/ratio", [float("nan")], "comp.ratio: 'nan' is not a finite number"),
    ("/param/comp/threshold_db", ["10ms"], "comp.threshold_db: '10ms' is in ms; comp.threshold_db takes dBFS"),
    ("/param/comp/ratio", [1.0, 2.0], "/param/comp/ratio takes one value, got 2"),
    ("/param/nosuch/x", [1.0], "no node 'nosuch' in the chain (nodes: input, comp, limiter, meter, correlation)"),
    ("/param/comp x/ratio", [1.0], "no node 'comp x' in the chain (nodes: input, comp, limiter, meter, correlation)"),
    ("/bypass/comp", [7], "/bypass/comp takes 1 (bypass) or 0 (enable)"),
    ("/preset", [3], '/preset takes one string: the preset name, e.g. /preset "warm"'),
    ("/preset", ["nosuch"], "preset nosuch: no such preset (user: none; shipped: adaptive, bright, gentle, live, "
                            "punchy, transparent, warm)"),
    ("/transport/play", [], "play: needs a player (auralis-rt play); none runs here"),
    ("/transport/seek", [42.0], "seek: needs a player (auralis-rt play); none runs here"),
    ("/transport/rewind", [], "no OSC command at /transport/rewind (/param/NODE/PARAM, /bypass/NODE, /preset, "
                              "/transport/..., /cmd)"),
    ("/nosuch", [], "no OSC command at /nosuch (/param/NODE/PARAM, /bypass/NODE, /preset, /transport/..., /cmd)"),
])
def test_bad_messages_are_answered_with_one_error_line_and_change_nothing(rig, osc, address, args, error):
    server, client = osc
    before = rig.session.values()
    client.send_message(address, args)
    reply = answer(client)
    assert (reply.address, reply.params) == ("/error", [error])
    assert rig.session.values() == before


def test_cmd_cannot_quit_and_garbage_datagrams_are_ignored(rig, osc):
    server, client = osc
    client.send_message("/cmd", "quit")
    assert answer(client).params == [0, "quit is not available from osc"]
    assert not rig.session.stop_requested.is_set()
    client._sock.sendto(b"\x00\xff not osc at all", server.address)
    client._sock.sendto(b"/param/comp/ratio\x00\x00\x00,f\x00", server.address)  # truncated
    client.send_message("/param/comp/ratio", 5.0)
    wait_for(lambda: rig.session.value("comp.ratio") == 5.0)


def test_a_bundle_with_a_future_time_tag_runs_at_once(rig, osc):
    from pythonosc.osc_bundle_builder import OscBundleBuilder

    server, client = osc
    bundle = OscBundleBuilder(time.time() + 3600)
    for key, value in (("gain_db", -3.0), ("gain_db", -4.0)):
        msg = OscMessageBuilder(f"/param/input/{key}")
        msg.add_arg(value)
        bundle.add_content(msg.build())
    client.send(bundle.build())
    wait_for(lambda: rig.session.value("input.gain_db") == -4.0, 2.0)


def test_osc_and_the_repl_side_change_parameters_at_the_same_time(rig, osc):
    server, client = osc
    start = rig.session.values()
    done = threading.Event()

    def repl_side():
        for i in range(200):
            assert rig.dispatcher.execute(f"set comp.ratio {2 + i % 5}").ok
        done.set()

    t = threading.Thread(target=repl_side)
    t.start()
    for i in range(200):
        client.send_message("/param/input/gain_db", float(-(i % 10) - 1))
    t.join()
    client.send_message("/cmd", "get input.gain_db")
    answer(client)  # every earlier datagram was handled before this one
    assert server.messages == 201 and server.errors == 0
    assert rig.session.value("input.gain_db") == -10.0 and rig.session.value("comp.ratio") == 6.0
    rig.session.undo(len(rig.session.undo_stack))
    assert rig.session.values() == start


def test_nothing_listens_unless_asked_and_a_taken_port_is_one_line(rig):
    with control_services(rig.session, rig.dispatcher, housekeeping=False) as server:
        assert server is None and rig.session.osc_address is None
    rig.driver.start()  # control_services stopped the session's driver on exit
    taken = OscServer(rig.dispatcher, 0)
    port = taken.address[1]
    try:
        with pytest.raises(ControlSetupError) as exc:
            with control_services(rig.session, rig.dispatcher, osc_port=port, housekeeping=False,
                                  print_fn=lambda t: None):
                pass
        assert str(exc.value) == f"--osc-port {port}: cannot listen on 127.0.0.1:{port} (Address already in use)"
    finally:
        taken.close()


def test_routing_table():
    assert osc_to_line("/param/comp/ratio", (4.0,)) == ("set comp.ratio 4", "set")
    assert osc_to_line("/param/comp/ratio", ()) == ("get comp.ratio", "query")
    assert osc_to_line("/param/comp/ratio", ("4:1",)) == ("set comp.ratio 4:1", "set")
    assert osc_to_line("/param/comp/ratio", ("4; quit",)) == ("set comp.ratio '4; quit'", "set")
    assert osc_to_line("/bypass/eq", (1,)) == ("bypass eq", "do")
    assert osc_to_line("/bypass/eq", (False,)) == ("enable eq", "do")
    assert osc_to_line("/preset", ("warm",)) == ("preset load warm", "do")
    assert osc_to_line("/transport/seek", (42.0,)) == ("seek 42", "do")
    assert osc_to_line("/transport/play", (3,)) == ("play 3", "do")
    assert osc_to_line("/cmd", ("status",)) == ("status", "cmd")
    with pytest.raises(OscRouteError):
        osc_to_line("/param/comp/ratio", (b"blob",))
