"""The player's state machine and the events its listeners receive.

Threads: `EventBus.emit` only appends to a queue under a short lock and returns; one
dispatcher thread per bus calls the listeners, in `seq` order, holding no lock at all.
A listener may therefore call back into the bus or the state machine (emit, subscribe,
unsubscribe, transition) without deadlock, and a slow listener delays only later
deliveries, never the thread that emitted.  The audio thread (C) never emits.

Lock order: StateMachine._lock -> EventBus._lock, never the reverse (the bus calls no
machine code), so `transition` can emit while it holds its own lock.  That is what makes
the seq order of "state" events equal the order in which transitions happened.
"""

from __future__ import annotations

import sys
import threading
from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable

EVENT_KINDS = ("state", "track", "error", "queue", "underrun", "end")


class PlayerState(str, Enum):
    STOPPED = "stopped"
    LOADING = "loading"
    PLAYING = "playing"
    PAUSED = "paused"
    ERROR = "error"


# Which states each state may move to.  LOADING is the only way into PLAYING from
# STOPPED or ERROR (a file must be opened first); PAUSED -> ERROR is not allowed because
# a paused player reads nothing: a seek or the next track goes through LOADING first.
TRANSITIONS: dict[PlayerState, frozenset[PlayerState]] = {
    PlayerState.STOPPED: frozenset({PlayerState.LOADING}),
    PlayerState.LOADING: frozenset({PlayerState.PLAYING, PlayerState.PAUSED, PlayerState.ERROR,
                                    PlayerState.STOPPED}),
    PlayerState.PLAYING: frozenset({PlayerState.PAUSED, PlayerState.STOPPED, PlayerState.LOADING,
                                    PlayerState.ERROR}),
    PlayerState.PAUSED: frozenset({PlayerState.PLAYING, PlayerState.STOPPED, PlayerState.LOADING}),
    PlayerState.ERROR: frozenset({PlayerState.STOPPED, PlayerState.LOADING}),
}


@dataclass(frozen=True)
class PlayerEvent:
    """One thing that happened in the player.

    seq:     1, 2, 3, ... in emit order (per bus); listeners see events in this order.
    kind:    "state" (a transition; data["previous"] is the state it left),
             "track" (a new track started), "error" (a track skipped, ...),
             "queue" (the queue changed), "underrun" (the audio thread found the ring
             empty), "end" (the queue played out).
    state:   the player's state when the event was emitted.
    """

    seq: int
    kind: str
    state: PlayerState
    track: Any = None
    message: str = ""
    data: dict = field(default_factory=dict)


Listener = Callable[[PlayerEvent], None]


class EventBus:
    """Delivers events to listeners on one dispatcher thread, never under a lock.

    The thread starts with the bus and runs until `close()`; it is a daemon thread, so a
    bus that is never closed does not keep the interpreter alive (close it anyway: it
    delivers what is still queued).
    """

    def __init__(self, name: str = "player-events"):
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._queue: deque[PlayerEvent] = deque()
        # Copy-on-write: the dispatcher takes the current tuple per event, so
        # (un)subscribing from a listener never mutates what is being iterated.
        self._listeners: tuple[tuple[object, Listener], ...] = ()
        self._seq = 0
        self._queued_seq = 0  # seq of the last event queued for delivery
        self._delivered = 0   # seq of the last event every listener has returned from
        self._closed = False
        self._reported: set[object] = set()
        self._thread = threading.Thread(target=self._dispatch, name=name, daemon=True)
        self._thread.start()

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener(event)` for every event emitted from now on; returns the unsubscribe.

        A listener subscribed while an event is being delivered receives the events
        after it.  Unsubscribing twice is harmless.
        """
        if not callable(listener):
            raise TypeError(f"event listener must be callable, got {type(listener).__name__}")
        token = object()
        with self._lock:
            self._listeners = self._listeners + ((token, listener),)

        def unsubscribe() -> None:
            with self._lock:
                self._listeners = tuple(entry for entry in self._listeners if entry[0] is not token)

        return unsubscribe

    def emit(self, kind: str, state: PlayerState, **fields: Any) -> PlayerEvent:
        """Queue an event for delivery and return it at once (never waits for listeners).

        `fields` are PlayerEvent's track, message and data.  After close() the event is
        numbered and returned but not delivered.
        """
        if kind not in EVENT_KINDS:
            raise ValueError(f"event kind {kind!r} is not one of {', '.join(EVENT_KINDS)}")
        state = PlayerState(state)
        with self._lock:
            self._seq += 1
            event = PlayerEvent(self._seq, kind, state, **fields)
            if not self._closed:
                self._queue.append(event)
                self._queued_seq = event.seq
                self._wake.notify_all()
            return event

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every event emitted before this call was delivered; False on timeout.

        Not callable from a listener (it would wait for the delivery it is part of).
        """
        if threading.current_thread() is self._thread:
            raise RuntimeError("EventBus.flush() called from a listener would wait for itself")
        with self._lock:
            target = self._queued_seq
            return self._wake.wait_for(lambda: self._delivered >= target, timeout)

    def close(self, timeout: float | None = None) -> None:
        """Deliver what is queued, then stop the dispatcher thread (waits up to `timeout` s)."""
        with self._lock:
            self._closed = True
            self._wake.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    @property
    def closed(self) -> bool:
        return self._closed

    def _dispatch(self) -> None:
        while True:
            with self._lock:
                self._wake.wait_for(lambda: self._queue or self._closed)
                if not self._queue:  # closed and drained
                    return
                event = self._queue.popleft()
                listeners = self._listeners
            for token, listener in listeners:
                try:
                    listener(event)
                except Exception as exc:  # a broken listener must not stop the others
                    if token not in self._reported:
                        self._reported.add(token)
                        name = getattr(listener, "__qualname__", repr(listener))
                        print(f"player: event listener {name} raised {type(exc).__name__}: {exc} "
                              f"(on {event.kind} event {event.seq}; reported once)", file=sys.stderr)
            with self._lock:
                self._delivered = event.seq
                self._wake.notify_all()


class StateMachine:
    """The player's state (stopped, loading, playing, paused, error), thread-safe.

    Every successful transition emits one "state" event on the bus while the machine's
    lock is held, so events are numbered in the order the transitions happened.
    """

    def __init__(self, bus: EventBus, initial: PlayerState = PlayerState.STOPPED):
        self._bus = bus
        self._lock = threading.Lock()
        self._state = PlayerState(initial)

    @property
    def state(self) -> PlayerState:
        return self._state

    def can(self, new: PlayerState) -> bool:
        """Whether `transition(new)` would succeed now (advice only: another thread may move first)."""
        return PlayerState(new) in TRANSITIONS[self._state]

    def transition(self, new: PlayerState, *, track: Any = None, message: str = "") -> bool:
        """Move to `new`: True, and a "state" event; False if already there (no event).

        A transition that is not in TRANSITIONS raises a one-line ValueError and changes nothing.
        """
        try:
            new = PlayerState(new)
        except ValueError:
            raise ValueError(f"player: {new!r} is not a state "
                             f"({', '.join(s.value for s in PlayerState)})") from None
        with self._lock:
            old = self._state
            if new is old:
                return False
            if new not in TRANSITIONS[old]:
                raise ValueError(f"player: cannot go from {old.value} to {new.value} "
                                 f"(allowed: {', '.join(sorted(s.value for s in TRANSITIONS[old]))})")
            self._state = new
            self._bus.emit("state", new, track=track, message=message, data={"previous": old.value})
            return True
