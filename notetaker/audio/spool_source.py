"""A meeting's spooled audio played back as a source for the recorder (recovery), and then,
for a meeting that came from a file, the rest of that file."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from notetaker.spool import SpoolReader

from .base import AudioSource

if TYPE_CHECKING:
    from .file import AudioFile


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


MATCH_S = 1.0  # the file's audio just before the spool's end must be the spool's: the same recording
MATCH_TOLERANCE = 2e-3  # the spool keeps 16-bit samples; a different recording differs by far more


class SpoolThenFile(AudioSource):
    """A meeting that came from a file, continued after a crash: its spool from `spool.start`
    to the spool's end, then the file from that point to its own end.

    The spool comes first because it is exactly what the meeting heard (recovery's resume
    point and its overlap are found in it); the file gives only what the spool never got.
    The file is decoded from its start (decoders and the resampler seek only roughly) and its
    last MATCH_S before the spool's end must match the spool: a file replaced since then
    stops the source at the spool's end, and `problem` says why. Mono only.
    """

    def __init__(self, spool: SpoolSource, audio: AudioFile, *, block_s: float = 30.0) -> None:
        if len(spool.columns) != 1:
            raise ValueError("a file continues a one-channel spool only")
        self.spool = spool
        self.audio = audio
        self.sample_rate = spool.sample_rate
        self.channels = spool.channels
        self.block_s = block_s
        self.problem: str | None = None  # why the file was not played after the spool
        self._file_delivered = 0

    @property
    def position_s(self) -> float:
        return self.spool.position_s + self._file_delivered / self.sample_rate

    def __iter__(self) -> Iterator[np.ndarray]:
        self._file_delivered = 0
        yield from self.spool
        end = self.spool.reader.frames
        check_from = max(0, end - int(MATCH_S * self.sample_rate))
        tail = self.spool.reader.read(check_from / self.sample_rate)
        at = 0  # samples of the file decoded so far
        for block in self.audio.blocks(self.block_s):
            a, at = at, at + len(block)
            if at <= check_from:
                continue
            if a < end:  # this block holds the last of what the spool has: compare, then skip it
                lo, hi = max(a, check_from), min(at, end)
                if not self._same(block[lo - a:hi - a], tail[lo - check_from:hi - check_from]):
                    return
                block = block[end - a:]
                if not len(block):
                    continue
            self._file_delivered += len(block)
            yield block
        if at < end:
            self.problem = f"{self._name()} now ends before the audio this meeting spooled (it was changed)"

    def _same(self, got: np.ndarray, spooled: np.ndarray) -> bool:
        if len(got) == len(spooled) and (not len(got) or float(np.max(np.abs(got - spooled))) <= MATCH_TOLERANCE):
            return True
        self.problem = f"{self._name()} is no longer the audio this meeting heard (it was changed)"
        return False

    def _name(self) -> str:
        from .file import path_text

        return path_text(self.audio.path)

    def close(self) -> None:
        self.audio.close()
