"""The play queue: which tracks play, in which order, and which one is current.

Thread-safe (one re-entrant lock around every method), no callbacks: the player reads
`version` (bumped on every change, including a new current track, repeat or shuffle)
and emits its own "queue" events.

Two orders are kept.  The *play order* (`tracks()`) is what plays; the *insertion order*
is what `unshuffle()` returns to.  While not shuffled they are the same list.  While
shuffled, add/insert/remove edit both (an inserted track goes into the insertion order
right after the track that precedes it in play order), and `move` edits the play order
only — on unshuffle the insertion order comes back with every added or removed track
accounted for.

The current track is held as a Track, not an index, so edits around it never change
what is playing.  Removing the current track makes the track that followed it in play
order current (None when it was the last one): the player sees `current` change and
decides whether to start it.  The queue remembers what followed the last
REMEMBER_REMOVED removed tracks, so `peek_following` can still answer for a track
that is being played (or decoded ahead) after it was removed.
"""

from __future__ import annotations

import operator
import random
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

REPEAT_MODES = ("off", "one", "all")
REMEMBER_REMOVED = 64   # removed tracks whose successor peek_following still knows


@dataclass(frozen=True)
class Track:
    """One entry of the queue.  `id` is unique per add, so a file queued twice is two Tracks."""

    path: str
    id: int

    @property
    def title(self) -> str:
        """The file name (no tags are read here)."""
        return Path(self.path).name


class PlayQueue:
    def __init__(self, paths=(), *, repeat: str = "off"):
        self._lock = threading.RLock()
        self._order: list[Track] = []   # insertion order
        self._play = self._order        # play order: the same list object while not shuffled
        self._current: Track | None = None
        self._next_id = 1
        self._repeat = "off"
        self._version = 0
        # removed track -> the track that followed it in play order then (None: it was last)
        self._removed: OrderedDict[Track, Track | None] = OrderedDict()
        self.repeat = repeat
        if paths:
            self.add(*paths)

    # -- state -----------------------------------------------------------------------

    @property
    def version(self) -> int:
        """Bumped on every change (tracks, order, current track, repeat, shuffle)."""
        return self._version

    @property
    def repeat(self) -> str:
        return self._repeat

    @repeat.setter
    def repeat(self, mode: str) -> None:
        if mode not in REPEAT_MODES:
            raise ValueError(f"queue: repeat must be one of {', '.join(REPEAT_MODES)} (got {mode!r})")
        with self._lock:
            if mode != self._repeat:
                self._repeat = mode
                self._version += 1

    @property
    def shuffled(self) -> bool:
        return self._play is not self._order

    @shuffled.setter
    def shuffled(self, on: bool) -> None:
        if on:
            self.shuffle()
        else:
            self.unshuffle()

    def tracks(self) -> tuple[Track, ...]:
        """The tracks in play order."""
        with self._lock:
            return tuple(self._play)

    def __len__(self) -> int:
        return len(self._play)

    @property
    def current(self) -> Track | None:
        return self._current

    @property
    def current_index(self) -> int | None:
        """Position of the current track in play order, or None."""
        with self._lock:
            return None if self._current is None else self._play.index(self._current)

    def index_of(self, track: Track) -> int:
        """Position of `track` in play order (ValueError if it is not queued)."""
        with self._lock:
            try:
                return self._play.index(track)
            except ValueError:
                raise ValueError(f"queue: track {track.id} ({track.title}) is not in the queue") from None

    # -- edits -----------------------------------------------------------------------

    def add(self, *paths) -> list[Track]:
        """Append tracks at the end of the play order (and of the insertion order)."""
        with self._lock:
            added = [self._new_track(p) for p in paths]
            if added:
                self._play.extend(added)
                if self.shuffled:
                    self._order.extend(added)
                self._version += 1
            return added

    def insert(self, index: int, path) -> Track:
        """Insert a track so that it is at `index` in play order (0 <= index <= len)."""
        with self._lock:
            index = self._check_index(index, len(self._play), end_ok=True)
            track = self._new_track(path)
            if self.shuffled:
                # In the insertion order it follows whatever precedes it in play order.
                position = 0 if index == 0 else self._order.index(self._play[index - 1]) + 1
                self._order.insert(position, track)
            self._play.insert(index, track)
            self._version += 1
            return track

    def remove(self, index: int) -> Track:
        """Remove and return the track at `index`; if it was current, the next one becomes current."""
        with self._lock:
            index = self._check_index(index, len(self._play))
            track = self._play.pop(index)
            if self.shuffled:
                self._order.remove(track)
            self._removed[track] = self._play[index] if index < len(self._play) else None
            while len(self._removed) > REMEMBER_REMOVED:
                self._removed.popitem(last=False)
            if track == self._current:
                self._current = self._play[index] if index < len(self._play) else None
            self._version += 1
            return track

    def move(self, src: int, dst: int) -> None:
        """Move the track at `src` so that it ends up at `dst` (both play-order indexes)."""
        with self._lock:
            src = self._check_index(src, len(self._play))
            dst = self._check_index(dst, len(self._play))
            if src != dst:
                self._play.insert(dst, self._play.pop(src))
                self._version += 1

    def clear(self) -> None:
        with self._lock:
            self._order.clear()
            self._play = self._order
            self._current = None
            self._version += 1

    # -- navigation ------------------------------------------------------------------

    def select(self, index: int) -> Track:
        """Make the track at `index` current (a jump) and return it."""
        with self._lock:
            track = self._play[self._check_index(index, len(self._play))]
            self._set_current(track)
            return track

    def advance(self, auto: bool) -> Track | None:
        """Move to the next track and return it (None past the end; the queue then has no current).

        auto=True (the current track ended): repeat "one" gives the same track again,
        "all" wraps to the first track after the last.  auto=False (the user's "next"):
        always moves on, wrapping only with repeat "all".  With no current track (a new
        queue, or after the end) it starts at the first track.
        """
        with self._lock:
            track = self._following(auto)
            self._set_current(track)
            return track

    def peek_following(self, after: Track | None = None, *, auto: bool = True) -> Track | None:
        """What follows `after` (None: the current track) by advance()'s rule, without moving.

        auto=True (the default) is advance(auto=True)'s rule: what plays when `after`
        ends (for gapless pre-decoding, where the track being decoded is not yet the
        current one); auto=False the user's "next" (e.g. past a file that failed, which
        repeat "one" must not retry).  after=None with no current track gives the first
        track.  A removed `after` (one of the last REMEMBER_REMOVED) is followed by the
        track that followed it when it was removed (or, removed since too, by that
        one's follower), wrapping to the first with repeat "all"; repeat "one" does not
        bring it back.  A track the queue does not know (never queued, cleared, or
        removed longer ago): ValueError, as index_of.
        """
        with self._lock:
            if after is None or after in self._play:
                return self._following(auto, after)
            if after not in self._removed:
                raise ValueError(f"queue: track {after.id} ({after.title}) is not in the queue")
            following = self._removed[after]
            while following is not None and following not in self._play:
                following = self._removed.get(following)   # removed since too (cleared, forgotten: None)
            if following is None and self._repeat == "all" and self._play:
                following = self._play[0]
            return following

    def previous(self) -> Track | None:
        """Move to the track before the current one and return it.

        At the first track: repeat "all" wraps to the last, otherwise the first track
        stays current (the player restarts it).  With no current track: the last track.
        None only for an empty queue.
        """
        with self._lock:
            if not self._play:
                return None
            if self._current is None:
                track = self._play[-1]
            else:
                index = self._play.index(self._current)
                if index > 0:
                    track = self._play[index - 1]
                else:
                    track = self._play[-1] if self._repeat == "all" else self._play[0]
            self._set_current(track)
            return track

    def shuffle(self, seed=None) -> None:
        """Play the tracks in a random order: the current track first, then all the others.

        The insertion order is kept for unshuffle().  Reshuffles if already shuffled.
        `seed` makes the order reproducible.
        """
        with self._lock:
            others = [t for t in self._order if t != self._current]
            random.Random(seed).shuffle(others)
            self._play = ([self._current] if self._current is not None else []) + others
            self._version += 1

    def unshuffle(self) -> None:
        """Back to insertion order (with the tracks added or removed meanwhile); current stays."""
        with self._lock:
            if self.shuffled:
                self._play = self._order
                self._version += 1

    # -- helpers ---------------------------------------------------------------------

    def _new_track(self, path) -> Track:
        track = Track(str(path), self._next_id)
        self._next_id += 1
        return track

    def _set_current(self, track: Track | None) -> None:
        if track != self._current:
            self._current = track
            self._version += 1

    def _following(self, auto: bool, after: Track | None = None) -> Track | None:
        """The one rule of what comes next: after `after` (default: the current track)."""
        if after is None:
            after = self._current
        if not self._play:
            return None
        if after is None:
            return self._play[0]
        if auto and self._repeat == "one":
            return after
        index = self._play.index(after) + 1
        if index < len(self._play):
            return self._play[index]
        return self._play[0] if self._repeat == "all" else None

    @staticmethod
    def _check_index(index: int, length: int, *, end_ok: bool = False) -> int:
        """`index` as a position in [0, length) ([0, length] with end_ok, for insert);
        negative indexes count from the end, as list indexes and list.insert do."""
        index = operator.index(index)
        position = index + length if index < 0 else index
        if not 0 <= position < (length + 1 if end_ok else length):
            raise IndexError(f"queue index {index} is out of range (the queue holds {length} "
                             f"track{'' if length == 1 else 's'})")
        return position
