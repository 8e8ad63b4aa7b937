"""Player state machine and event bus: order, callbacks into the bus, broken listeners,
transitions hammered from several threads."""

import random
import threading

import pytest

from engine.player.events import TRANSITIONS, EventBus, PlayerEvent, PlayerState, StateMachine

S = PlayerState


@pytest.fixture
def bus():
    b = EventBus()
    yield b
    b.close(timeout=5)


def test_events_reach_every_listener_in_seq_order_on_the_dispatcher_thread(bus):
    seen_a, seen_b, threads = [], [], set()

    def a(event):
        seen_a.append(event)
        threads.add(threading.current_thread())

    bus.subscribe(a)
    bus.subscribe(seen_b.append)
    kinds = ["state", "track", "error", "queue", "underrun", "end"] * 50
    emitted = [bus.emit(kind, S.PLAYING, message=str(i)) for i, kind in enumerate(kinds)]
    assert bus.flush(timeout=10)
    assert [e.seq for e in emitted] == list(range(1, len(kinds) + 1))
    assert seen_a == emitted and seen_b == emitted
    assert threading.current_thread() not in threads and len(threads) == 1


def test_emit_returns_while_a_listener_is_still_busy(bus):
    release, entered = threading.Event(), threading.Event()
    seen = []

    def slow(event):
        entered.set()
        release.wait(10)
        seen.append(event.seq)

    bus.subscribe(slow)
    bus.emit("state", S.LOADING)
    assert entered.wait(5)
    # The listener is blocked inside event 1: emitting must still return at once.
    later = [bus.emit("queue", S.LOADING).seq for _ in range(3)]
    assert later == [2, 3, 4] and seen == []
    assert not bus.flush(timeout=0.05)  # nothing delivered yet
    release.set()
    assert bus.flush(timeout=10)
    assert seen == [1, 2, 3, 4]


def test_unsubscribe_stops_delivery_and_is_idempotent(bus):
    seen = []
    unsubscribe = bus.subscribe(seen.append)
    bus.emit("queue", S.STOPPED)
    assert bus.flush(timeout=5)
    unsubscribe()
    unsubscribe()
    bus.emit("queue", S.STOPPED)
    assert bus.flush(timeout=5)
    assert [e.seq for e in seen] == [1]


def _free(lock) -> bool:
    if lock.acquire(blocking=False):
        lock.release()
        return True
    return False


def test_listener_calls_back_into_bus_and_machine_without_deadlock(bus):
    machine = StateMachine(bus)
    states, extra, locks_free, flush_errors = [], [], [], []

    def driver(event):
        # Runs with no lock held: both locks are free while it runs.
        locks_free.append(_free(machine._lock) and _free(bus._lock))
        try:
            bus.flush()
        except RuntimeError as exc:
            flush_errors.append(str(exc))
        if event.kind != "state":
            return
        states.append(event.state)
        if event.state is S.LOADING:
            machine.transition(S.PLAYING, track=event.track)
        elif event.state is S.PLAYING:
            bus.subscribe(extra.append)
            bus.emit("track", machine.state, track=event.track)
            machine.transition(S.STOPPED)

    bus.subscribe(driver)
    assert machine.transition(S.LOADING, track="a.flac")
    for _ in range(5):  # each flush also covers what listeners emitted during the one before
        assert bus.flush(timeout=10)
    assert states == [S.LOADING, S.PLAYING, S.STOPPED]
    assert machine.state is S.STOPPED
    # The listener subscribed during event PLAYING sees what came after it, not before.
    assert [(e.kind, e.state) for e in extra] == [("track", S.PLAYING), ("state", S.STOPPED)]
    assert extra[0].track == "a.flac"
    assert len(locks_free) == 4 and all(locks_free)
    assert len(flush_errors) == 4 and all("wait for itself" in m for m in flush_errors)


def test_a_raising_listener_is_reported_once_and_delivery_goes_on(bus, capfd):
    good = []

    def broken(event):
        raise KeyError(event.seq)

    bus.subscribe(broken)
    bus.subscribe(good.append)
    for _ in range(5):
        bus.emit("underrun", S.PLAYING, data={"count": 1})
    assert bus.flush(timeout=5)
    assert [e.seq for e in good] == [1, 2, 3, 4, 5]
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "broken" in err[0] and "KeyError" in err[0] and "event 1" in err[0]


def test_transition_table_is_enforced_with_one_line_errors(bus):
    seen = []
    bus.subscribe(seen.append)
    for old in S:
        for new in S:
            machine = StateMachine(bus, initial=old)
            if new is old:
                assert machine.transition(new) is False
            elif new in TRANSITIONS[old]:
                assert machine.transition(new) is True
                assert machine.state is new
            else:
                with pytest.raises(ValueError) as info:
                    machine.transition(new)
                message = str(info.value)
                assert "\n" not in message
                assert f"cannot go from {old.value} to {new.value}" in message
                assert machine.state is old
    assert bus.flush(timeout=5)
    allowed = sum(len(v) for v in TRANSITIONS.values())
    assert len(seen) == allowed  # one event per successful transition, none for no-ops or refusals
    assert all(e.kind == "state" and e.data["previous"] != e.state.value for e in seen)
    with pytest.raises(ValueError, match="'flying' is not a state"):
        StateMachine(bus).transition("flying")


def test_the_documented_table():
    assert TRANSITIONS == {
        S.STOPPED: {S.LOADING},
        S.LOADING: {S.PLAYING, S.PAUSED, S.ERROR, S.STOPPED},
        S.PLAYING: {S.PAUSED, S.STOPPED, S.LOADING, S.ERROR},
        S.PAUSED: {S.PLAYING, S.STOPPED, S.LOADING},
        S.ERROR: {S.STOPPED, S.LOADING},
    }


def test_eight_threads_hammering_transitions(bus):
    machine = StateMachine(bus)
    delivered: list[PlayerEvent] = []
    bus.subscribe(delivered.append)
    successes = [0] * 8
    start = threading.Barrier(8)

    def hammer(index):
        rng = random.Random(index)
        start.wait()
        for _ in range(400):
            target = rng.choice(list(S))
            try:
                if machine.transition(target, track=index):
                    successes[index] += 1
            except ValueError:
                pass

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads), "a transition deadlocked"
    assert bus.flush(timeout=30)
    assert sum(successes) > 100  # the threads really interleaved transitions
    # Every successful transition delivered exactly once, in seq order ...
    assert len(delivered) == sum(successes)
    seqs = [e.seq for e in delivered]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    # ... and the events form one unbroken chain of legal transitions from STOPPED,
    # which is only true if seq order equals the order the transitions happened.
    previous = S.STOPPED
    for event in delivered:
        assert event.data["previous"] == previous.value
        assert event.state in TRANSITIONS[previous]
        previous = event.state
    assert machine.state is previous


def test_close_delivers_what_is_queued_and_stops_the_thread():
    bus = EventBus()
    release = threading.Event()
    seen = []

    def slow(event):
        release.wait(10)
        seen.append(event.seq)

    bus.subscribe(slow)
    for _ in range(4):
        bus.emit("queue", S.STOPPED)
    release.set()
    bus.close(timeout=10)
    assert seen == [1, 2, 3, 4]
    assert not bus._thread.is_alive()
    late = bus.emit("queue", S.STOPPED)
    assert late.seq == 5 and bus.flush(timeout=1)
    assert seen == [1, 2, 3, 4]


def test_unknown_event_kind_is_refused(bus):
    with pytest.raises(ValueError, match="event kind 'tick' is not one of state, track"):
        bus.emit("tick", S.PLAYING)
