"""A meeting's spooled audio played back as a source for the recorder (recovery)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from notetaker.spool import SpoolReader

from .base import AudioSource


class SpoolSource(AudioSource):
    """The spool's audio from `start_s` to its end, in blocks of `block_s` read one at a time
    (memory stays flat however long the meeting was).

    `columns` picks the spool channels to deliver, `labels` names them as the recorder
    stores them; one column gives 1-D blocks. Not live: it ends when the spool does.
    """

    def __init__(self, reader: SpoolReader, *, start_s: float = 0.0, columns: Sequence[int] | None = None,
                 labels: Sequence[str | None] | None = None, block_s: float = 30.0) -> None:
        self.reader = reader
        self.sample_rate = reader.sample_rate
        self.columns = tuple(range(len(reader.channels)) if columns is None else columns)
        self.channels = tuple(reader.channels[c] for c in self.columns) if labels is None else tuple(labels)
        if not self.columns or len(self.channels) != len(self.columns):
            raise ValueError(f"{len(self.columns)} spool columns need as many labels, got {len(self.channels)}")
        self.start = min(reader.frames, max(0, int(round(start_s * self.sample_rate))))
        self.step = max(1, int(block_s * self.sample_rate))
        self._delivered = 0

    @property
    def position_s(self) -> float:
        """Where the last block delivered ended, in seconds from the spool's start."""
        return (self.start + self._delivered) / self.sample_rate

    def __iter__(self) -> Iterator[np.ndarray]:
        rate, frames = self.sample_rate, self.reader.frames
        self._delivered = 0
        for a in range(self.start, frames, self.step):
            b = min(frames, a + self.step)
            block = self.reader.read(a / rate, b / rate)
            block = block[:, None] if block.ndim == 1 else block
            cols = self.columns
            block = np.ascontiguousarray(block[:, cols[0]] if len(cols) == 1 else block[:, cols])
            self._delivered += b - a
            yield block

    def close(self) -> None: ...
