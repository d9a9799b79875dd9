"""What every audio source shares: the output rate, the user-facing error, the source shape."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import numpy as np

# Every engine in asr/ takes SAMPLE_RATE (16 kHz) mono float32: sources convert before
# anything else sees audio.
from asr.base import SAMPLE_RATE

__all__ = ["SAMPLE_RATE", "AudioError", "AudioSource"]


class AudioError(Exception):
    """A problem the user caused or can fix (bad file, unreadable device): one line, no traceback."""

    def __init__(self, message: str, path: str | None = None) -> None:
        # One line always: the CLI and the TUI print str(error) as is.
        super().__init__(" ".join(message.split()))
        self.path = path


class AudioSource(Protocol):
    """Everything the recorder asks of a source (a file, or capture devices).

    A class that names AudioSource as its base gets the defaults below (one unlabelled
    channel, a file's semantics, nothing dropped); capture sources set their own.
    """

    sample_rate: int
    # One label per column of each block (blocks are 1-D when there is one); None: unlabelled.
    channels: tuple[str | None, ...] = (None,)
    # A live capture (devices), not a file: it has no end of its own and no clock to speed up.
    # Stopping either is the user ending the meeting (complete, with the audio heard so far).
    live: bool = False
    # Why iteration ended on its own when that was a failure (a device gone for good).
    ended_reason: str | None = None

    @property
    def position_s(self) -> float:
        """Audio seconds delivered so far."""
        ...

    @property
    def dropped_frames(self) -> int:
        """Frames lost before they reached the source (a capture queue that overflowed)."""
        return 0

    def pause(self) -> None:
        """Stop delivering: a paused microphone hears nothing, a paused file's clock stops."""

    def resume(self) -> None: ...

    def __iter__(self) -> Iterator[np.ndarray]:
        """16 kHz float32 blocks in [-1, 1], in order, until the source ends."""
        ...

    def close(self) -> None: ...
