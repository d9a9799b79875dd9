"""notetaker: a local, private meeting note-taker for the terminal."""

__version__ = "0.1.0"
