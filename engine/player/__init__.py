"""The player: files decoded on a background thread into a lock-free ring that the
audio thread reads (C), a gapless queue, seek/pause, and a thread-safe state machine.

    decode.py   open_track(): soundfile / ffmpeg pipe, BS.775 downmix, soxr resampling
    queue.py    PlayQueue: add/insert/remove/move/shuffle/repeat, thread-safe
    events.py   PlayerState, EventBus (listeners on their own thread, never under a lock)
    stream.py   the C stream source (rt_kernels/csrc/stream_source.c) seen from Python
    player.py   Player: decoder thread + transport, driving an Executor through the stream
"""
