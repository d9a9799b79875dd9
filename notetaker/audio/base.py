"""What every audio source shares: the output rate, the user-facing error, the source shape."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import numpy as np

# Every engine in asr/ takes 16 kHz mono float32; sources convert before anything else sees audio.
SAMPLE_RATE = 16_000


class AudioError(Exception):
    """A problem the user caused or can fix (bad file, unreadable device): one line, no traceback."""

    def __init__(self, message: str, path: str | None = None) -> None:
        # One line always: the CLI and the TUI print str(error) as is.
        super().__init__(" ".join(message.split()))
        self.path = path


class AudioSource(Protocol):
    """What the recorder consumes: a file now, a microphone (mic.py) later."""

    sample_rate: int

    @property
    def position_s(self) -> float:
        """Audio seconds delivered so far."""
        ...

    def __iter__(self) -> Iterator[np.ndarray]:
        """16 kHz mono float32 blocks in [-1, 1], in order, until the source ends."""
        ...

    def close(self) -> None: ...
