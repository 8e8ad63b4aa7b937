"""The play queue: edits, navigation, repeat modes, shuffle, and edits from 8 threads."""

import random
import sys
import threading

import pytest

from engine.player.queue import REMEMBER_REMOVED, PlayQueue, Track


def names(queue):
    return [t.path for t in queue.tracks()]


def test_add_insert_remove_move_clear():
    q = PlayQueue()
    a, b = q.add("a.flac", "b.flac")
    assert (a.path, a.title, b.path) == ("a.flac", "a.flac", "b.flac")
    again = q.add("a.flac")[0]
    assert again.path == a.path and again.id != a.id and again != a  # the same file twice
    assert q.insert(1, "x.wav").path == "x.wav"
    assert names(q) == ["a.flac", "x.wav", "b.flac", "a.flac"]
    assert q.insert(4, "end.mp3") and names(q)[-1] == "end.mp3"  # index == len appends
    assert q.insert(-1, "y.ogg") and names(q)[-2:] == ["y.ogg", "end.mp3"]  # like list.insert
    assert q.remove(0) == a
    assert q.remove(-1).path == "end.mp3"
    assert names(q) == ["x.wav", "b.flac", "a.flac", "y.ogg"]
    q.move(0, 3)
    assert names(q) == ["b.flac", "a.flac", "y.ogg", "x.wav"]
    q.move(3, 1)
    assert names(q) == ["b.flac", "x.wav", "a.flac", "y.ogg"]
    assert len(q) == 4
    q.clear()
    assert len(q) == 0 and q.tracks() == () and q.current is None
    assert Track("/music/Some Song.flac", 7).title == "Some Song.flac"


@pytest.mark.parametrize("call, length", [
    (lambda q: q.remove(3), 3), (lambda q: q.remove(-4), 3), (lambda q: q.select(5), 3),
    (lambda q: q.move(0, 3), 3), (lambda q: q.move(7, 0), 3), (lambda q: q.insert(4, "z"), 3),
    (lambda q: q.insert(-5, "z"), 3),
])
def test_index_errors_name_the_index_and_the_length(call, length):
    q = PlayQueue(["a", "b", "c"])
    version, before = q.version, q.tracks()
    with pytest.raises(IndexError) as info:
        call(q)
    message = str(info.value)
    assert "\n" not in message and f"holds {length} tracks" in message
    assert message.startswith("queue index ")
    assert q.tracks() == before and q.version == version  # nothing changed


def test_index_error_on_an_empty_queue():
    with pytest.raises(IndexError, match=r"queue index 0 is out of range \(the queue holds 0 tracks\)"):
        PlayQueue().select(0)


def test_repeat_validates_with_a_one_line_error():
    q = PlayQueue()
    for mode in ("off", "one", "all"):
        q.repeat = mode
        assert q.repeat == mode
    with pytest.raises(ValueError, match=r"^queue: repeat must be one of off, one, all \(got 'twice'\)$"):
        q.repeat = "twice"
    assert q.repeat == "all"


def test_navigation_with_repeat_off():
    q = PlayQueue(["a", "b", "c"])
    assert q.current is None and q.current_index is None
    assert q.peek_following().path == "a"
    assert q.advance(auto=True).path == "a" and q.current_index == 0
    assert q.advance(auto=False).path == "b"
    assert q.select(2).path == "c"
    assert q.peek_following() is None
    assert q.advance(auto=True) is None and q.current is None  # past the end
    assert q.advance(auto=True).path == "a"                    # a new start from the top
    assert q.previous().path == "a"                             # first track stays (restart)
    q.select(1)
    assert q.previous().path == "a"
    q.advance(auto=True), q.advance(auto=True)
    assert q.advance(auto=False) is None


def test_navigation_with_repeat_one_and_all():
    q = PlayQueue(["a", "b", "c"], repeat="one")
    q.select(2)
    assert q.peek_following().path == "c"
    assert q.advance(auto=True).path == "c"       # the track ended: the same again
    assert q.advance(auto=False) is None          # the user's next moves on: past the end
    q.select(0)
    assert q.advance(auto=False).path == "b"
    q.repeat = "all"
    q.select(2)
    assert q.peek_following().path == "a"
    assert q.advance(auto=True).path == "a"       # wraps
    assert q.previous().path == "c"               # wraps backwards too
    assert q.advance(auto=False).path == "a"


def test_previous_without_a_current_track_and_on_an_empty_queue():
    assert PlayQueue().previous() is None
    assert PlayQueue().advance(auto=True) is None
    assert PlayQueue().peek_following() is None
    assert PlayQueue(["a", "b"]).previous().path == "b"


def test_peek_following_a_given_track_uses_the_rule_of_advance():
    q = PlayQueue(["a", "b", "c"])
    a, b, c = q.tracks()
    assert q.peek_following(a).path == "b" and q.current is None       # no current track needed
    q.select(0)
    version = q.version
    assert q.peek_following(b).path == "c"                              # not the current one's successor
    assert q.peek_following(c) is None                                  # the end, repeat off
    assert q.peek_following(c, auto=False) is None
    q.repeat = "one"
    assert q.peek_following(b) == b                                     # the track ended: again
    assert q.peek_following(b, auto=False) == c                         # past it (a failed file)
    assert q.peek_following() == a and q.peek_following(auto=False) == b
    q.repeat = "all"
    assert q.peek_following(c) == a and q.peek_following(c, auto=False) == a   # wraps
    q.shuffle(seed=3)
    order = q.tracks()
    for k, t in enumerate(order):                                       # play order, not insertion order
        assert q.peek_following(t) == order[(k + 1) % 3]
    assert q.current == a and q.version == version + 3                  # repeat twice + shuffle; peeks move nothing
    for mode in ("off", "one", "all"):                                  # after=current agrees with advance
        q.repeat = mode
        for k in range(3):
            q.select(k)
            peeked = q.peek_following(q.current)
            assert peeked == q.advance(auto=True)
    stranger = PlayQueue(["x"]).tracks()[0]
    with pytest.raises(ValueError, match=rf"^queue: track {stranger.id} \(x\) is not in the queue$"):
        q.peek_following(stranger)


def test_peek_following_a_removed_track_gives_what_followed_it_then():
    """The player may still play (or have decoded ahead) a track removed from the queue:
    what follows it is what followed it when it was removed, not the current track."""
    q = PlayQueue(["a", "b", "c", "d", "e"])
    a, b, c, d, e = q.tracks()
    q.select(0)
    q.remove(1)                                          # b, not current
    assert q.current == a and q.peek_following(b) == c
    q.repeat = "one"
    assert q.peek_following(b) == c                      # a removed track does not repeat
    q.remove(1)                                          # c too: b is followed by what followed c
    assert q.peek_following(b) == d and q.peek_following(c) == d
    q.repeat = "off"
    q.select(2)                                          # e, the last one, current
    q.remove(2)
    assert q.current is None and q.peek_following(e) is None
    q.repeat = "all"
    assert q.peek_following(e) == a                      # wraps
    q.clear()
    assert q.peek_following(b) is None                   # nothing left to follow it
    with pytest.raises(ValueError, match="is not in the queue"):
        q.peek_following(a)                              # cleared, not removed one by one
    q = PlayQueue([f"t{k}" for k in range(REMEMBER_REMOVED + 2)])
    first = q.tracks()[0]
    for _ in range(REMEMBER_REMOVED + 1):
        q.remove(0)
    with pytest.raises(ValueError):
        q.peek_following(first)                          # bounded memory: the oldest is forgotten
    assert len(q._removed) == REMEMBER_REMOVED                 # and no more is kept


def test_removing_the_current_track_makes_the_next_one_current():
    q = PlayQueue(["a", "b", "c"])
    q.select(1)
    q.remove(1)
    assert q.current.path == "c" and q.current_index == 1
    q.remove(1)                                    # the last one: nothing is current
    assert q.current is None
    q.select(0)
    q.insert(0, "z")                               # edits around the current track
    q.move(0, 1)
    assert q.current.path == "a" and q.current_index == 0


def test_version_bumps_on_every_change_and_only_then():
    q = PlayQueue()
    seen = [q.version]

    def changed():
        assert q.version > seen[-1]
        seen.append(q.version)

    q.add("a", "b", "c"); changed()
    q.insert(0, "d"); changed()
    q.move(0, 2); changed()
    q.remove(0); changed()
    q.select(1); changed()
    q.advance(auto=False); changed()
    q.previous(); changed()
    q.repeat = "all"; changed()
    q.shuffle(seed=1); changed()
    q.unshuffle(); changed()
    q.clear(); changed()
    version = q.version
    q.repeat = "all"
    q.add()
    q.move(0, 0) if len(q) else None
    q.peek_following()
    q.tracks()
    assert q.version == version


def test_shuffle_keeps_the_current_track_and_is_a_permutation():
    paths = [f"t{i:02d}.flac" for i in range(30)]
    q = PlayQueue(paths)
    current = q.select(12)
    q.shuffle(seed=3)
    assert q.shuffled
    assert q.current == current and q.current_index == 0  # current first, the rest to come
    order = q.tracks()
    assert sorted(t.path for t in order) == paths
    assert len({t.id for t in order}) == 30
    assert [t.path for t in order] != paths
    q2 = PlayQueue(paths)
    q2.select(12)
    q2.shuffle(seed=3)
    assert [t.path for t in q2.tracks()] == [t.path for t in order]  # the seed reproduces it
    # Playing through the shuffled queue visits every other track once, then ends.
    visited = [q.advance(auto=True) for _ in range(29)]
    assert sorted(t.path for t in visited + [current]) == paths
    assert q.advance(auto=True) is None


def test_unshuffle_restores_insertion_order_with_the_edits_made_meanwhile():
    q = PlayQueue(["a", "b", "c", "d", "e"])
    q.select(2)
    q.shuffle(seed=7)
    shuffled = names(q)
    new = q.add("f")[0]
    q.insert(1, "g")                      # follows shuffled[0] in insertion order
    removed = q.remove(names(q).index("d"))
    q.move(0, len(q) - 1)                 # a move edits the shuffled order only
    assert q.current.path == "c"
    q.unshuffle()
    assert not q.shuffled
    expected = [p for p in ["a", "b", "c", "d", "e"] if p != removed.path]
    expected.insert(expected.index(shuffled[0]) + 1, "g")
    expected.append(new.path)
    assert names(q) == expected
    assert q.current.path == "c" and q.current_index == expected.index("c")
    q.shuffled = True
    assert q.shuffled and q.current_index == 0
    q.shuffled = False
    assert names(q) == expected


@pytest.fixture
def eager_thread_switches():
    """Switch threads every microsecond so that unlocked read-modify-write sequences
    really interleave (with the default 5 ms they almost never do)."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(old)


def test_edits_from_eight_threads_keep_the_queue_consistent(eager_thread_switches):
    q = PlayQueue([f"seed{i}" for i in range(20)])
    added, removed, errors = [], [], []
    record = threading.Lock()
    start = threading.Barrier(8)

    def worker(index):
        rng = random.Random(index)
        start.wait()
        for step in range(800):
            action = rng.random()
            try:
                if action < 0.35:
                    tracks = q.add(f"w{index}-{step}")
                    with record:
                        added.extend(tracks)
                elif action < 0.45:
                    track = q.insert(rng.randrange(-3, 4), f"i{index}-{step}")
                    with record:
                        added.append(track)
                elif action < 0.7:
                    track = q.remove(rng.randrange(-5, 5))
                    with record:
                        removed.append(track)
                elif action < 0.9:
                    q.move(rng.randrange(0, 10), rng.randrange(0, 10))
                elif action < 0.95:
                    q.shuffle(seed=step)
                else:
                    q.unshuffle()
            except IndexError:
                pass  # another thread emptied the queue below this index
            except Exception as exc:  # an inconsistent queue shows up as ValueError etc.
                errors.append(repr(exc))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    initial = set(range(1, 21))
    ids = [t.id for t in q.tracks()]
    assert len(ids) == len(set(ids)) == len(q)  # nothing duplicated
    assert len(removed) == len({t.id for t in removed})  # nothing removed twice
    expected = (initial | {t.id for t in added}) - {t.id for t in removed}
    assert set(ids) == expected  # nothing lost
    q.unshuffle()
    assert sorted(t.id for t in q.tracks()) == sorted(expected)
    assert len(added) > 100 and len(removed) > 50
