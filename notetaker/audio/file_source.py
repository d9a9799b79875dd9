"""A file played as a live source for the recorder, optionally at wall-clock pace."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from types import TracebackType

import numpy as np

from .base import SAMPLE_RATE, AudioSource
from .file import AudioFile, open_audio
from .resample import block_samples


class FileSource(AudioSource):
    """Blocks of 16 kHz mono audio from an `AudioFile`, like a microphone would deliver them.

    With `realtime=True` each block is handed over when a microphone would have finished
    capturing it: at start + (its end in audio seconds) / speed on a monotonic clock.
    Due times come from the sample count, not from summed sleeps, so lateness never
    accumulates; a consumer that falls behind gets the overdue blocks at once.
    """

    sample_rate: int = SAMPLE_RATE

    def __init__(
        self,
        audio: AudioFile,
        *,
        block_s: float = 0.1,
        realtime: bool = False,
        speed: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
        owns_audio: bool = False,
    ) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be positive, got {speed!r}")
        block_samples(block_s)  # validates
        self.audio = audio
        self.block_s = block_s
        self.realtime = realtime
        self.speed = speed
        self._clock = clock
        self._sleep = sleep
        self._owns_audio = owns_audio
        self._delivered = 0
        self._paused_at: float | None = None
        self._paused_total = 0.0  # wall time spent paused: due times move by it

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        block_s: float = 0.1,
        realtime: bool = False,
        speed: float = 1.0,
    ) -> FileSource:
        """Open `path` (AudioError if it is no good) as a source that closes the file with it."""
        audio = open_audio(path)
        return cls(audio, block_s=block_s, realtime=realtime, speed=speed, owns_audio=True)

    @property
    def position_s(self) -> float:
        """Audio seconds delivered so far (the end of the last block handed over)."""
        return self._delivered / SAMPLE_RATE

    @property
    def duration_s(self) -> float:
        return self.audio.duration_s

    def pause(self) -> None:
        """Stop the clock: while paused no block becomes due (a paused microphone hears nothing)."""
        if self._paused_at is None:
            self._paused_at = self._clock()

    def resume(self) -> None:
        if self._paused_at is not None:
            self._paused_total += self._clock() - self._paused_at
            self._paused_at = None

    def __iter__(self) -> Iterator[np.ndarray]:
        """Blocks from the start of the file; each iteration starts again (and its clock too)."""
        self._delivered = 0
        self._paused_total = 0.0
        start = self._clock()
        for block in self.audio.blocks(self.block_s):
            if self.realtime:
                due = start + self._paused_total + (self._delivered + len(block)) / (SAMPLE_RATE * self.speed)
                delay = due - self._clock()
                if delay > 0:
                    self._sleep(delay)
            self._delivered += len(block)
            yield block

    def close(self) -> None:
        if self._owns_audio:
            self.audio.close()

    def __enter__(self) -> FileSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
