"""The Textual TUI: the live meeting view, past meetings, search and summaries.

All model work runs on the compute thread (the recorder's, or a worker when no meeting is
live); screens only receive messages. Built by `make_app` from a store, an engine factory
and a clock, so tests drive it with a scripted engine.
"""
