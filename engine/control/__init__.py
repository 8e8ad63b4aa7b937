"""The control thread: one command layer used by the REPL, scripts and OSC.

Every parameter change goes through the graph's atomic publish; nothing else touches
the engine's state.
"""
