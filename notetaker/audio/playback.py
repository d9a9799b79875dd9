"""Hearing what was said: a meeting's kept audio played on an output device, one segment
(with a little of what came before and after) or the whole meeting.

The audio comes from the meeting's spool folder (notetaker/spool.py): its FLAC once the
meeting ended cleanly, else the raw spool of a meeting still recording or interrupted. A
segment is played from its own channel (`mic` or `system`); the whole meeting with its
channels mixed. `Player` writes to a PortAudio output stream from a thread of its own, so a
screen stays responsive and `stop()` works from any thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from notetaker.spool import SpoolError, SpoolReader, open_spool, spool_folder
from storage import SegmentRecord
from storage.export import clock

from .base import SAMPLE_RATE, AudioError
from .devices import DeviceInfo, choose_device, close_input, load_sounddevice, open_output, reason
from .resample import downmix, to_unit_range

PAD_S = 0.25  # heard before and after a segment: its first and last words are not clipped
CHUNK_S = 0.05  # one blocking write; `stop()` takes effect within about this (plus the device's latency)
READ_BLOCK_S = 10.0  # the whole meeting is read this much at a time (memory stays flat)


@dataclass(frozen=True)
class Span:
    """What to play: seconds on the meeting's timeline, and the spool column (None: all mixed)."""

    start_s: float
    end_s: float
    column: int | None

    @property
    def seconds(self) -> float:
        return max(0.0, self.end_s - self.start_s)


def meeting_audio(sessions_dir: str | Path | None, session_id: int) -> SpoolReader:
    """The kept audio of a meeting; AudioError (one line) when there is none to play."""
    folder = spool_folder(sessions_dir, session_id) if sessions_dir is not None else None
    if folder is None or not folder.is_dir():
        raise AudioError(f"meeting {session_id} has no audio kept (it was imported, or recorded with "
                         "keep_audio off)")
    try:
        return open_spool(folder)
    except SpoolError as e:
        raise AudioError(f"cannot play meeting {session_id}: {e}") from None


def segment_span(reader: SpoolReader, seg: SegmentRecord, pad_s: float = PAD_S) -> Span:
    """A segment's stretch of its own channel, padded and clamped to the audio kept."""
    if seg.start_s >= reader.seconds:
        raise AudioError(f"segment #{seg.seq} starts at {clock(seg.start_s)}, after the end of the audio kept "
                         f"({clock(reader.seconds)})")
    start = max(0.0, seg.start_s - pad_s)
    return Span(start, min(reader.seconds, max(seg.end_s, seg.start_s) + pad_s), channel_column(reader, seg.channel))


def meeting_span(reader: SpoolReader) -> Span:
    return Span(0.0, reader.seconds, None)


def channel_column(reader: SpoolReader, channel: str | None) -> int | None:
    """The spool column holding `channel` (a one-channel spool: its only one); None (mixed)
    when the segment names no channel the spool has apart."""
    names = reader.channels
    if len(names) == 1:
        return 0
    return names.index(channel) if channel in names else None


def span_audio(reader: SpoolReader, span: Span, block_s: float = READ_BLOCK_S) -> Iterator[np.ndarray]:
    """The span as 16 kHz mono float32 blocks, read one at a time. SpoolError for a file
    that cannot be read (damaged, gone)."""
    for block in reader.blocks(span.start_s, span.end_s, block_s):
        if block.ndim == 1:
            yield block
        elif span.column is not None:
            yield np.ascontiguousarray(block[:, span.column])
        else:
            yield downmix(block)


def read_span(reader: SpoolReader, span: Span) -> np.ndarray:
    """The whole span at once (a segment: a few seconds); AudioError when it cannot be read."""
    try:
        blocks = list(span_audio(reader, span))
    except SpoolError as e:
        raise AudioError(str(e)) from None
    return np.concatenate(blocks) if blocks else np.zeros(0, np.float32)


class Player:
    """Plays 16 kHz mono audio on one output device, from a thread of its own.

    `start` opens the device at once (a bad device raises AudioError there, nothing plays);
    the audio is then written in CHUNK_S pieces until it ends or `stop()` is called (any
    thread). `on_end(error)` runs on the player's thread when playing is over: error is None
    after a clean end or a stop, else one line (the file could not be read, the device went).
    """

    def __init__(self, device: str | int | None = None, chunk_s: float = CHUNK_S) -> None:
        self.device_spec = device
        self.chunk_s = chunk_s
        self.device: DeviceInfo | None = None
        self.error: str | None = None
        self.stopped = False  # stop() ended it before the audio did
        self.start_s = 0.0
        self._written = 0  # samples at SAMPLE_RATE handed to the device
        self._latency_s = 0.0
        self._stop = threading.Event()
        # Set when the stream is closed. Not Thread.join: a join that Ctrl-C interrupted can
        # return at once the next time, and PortAudio torn down at exit under a thread still
        # writing corrupted the heap.
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, audio: np.ndarray | Iterable[np.ndarray], start_s: float = 0.0,
              on_end: Callable[[str | None], None] | None = None) -> None:
        """Begin playing `audio` (an array, or blocks read as they are needed), whose first
        sample is at `start_s` on the meeting's timeline."""
        if self._thread is not None:
            raise RuntimeError("a Player plays once; make another")
        self.device = choose_device(self.device_spec, kind="output")
        stream, rate = self._open(self.device)
        self.start_s = start_s
        blocks = [audio] if isinstance(audio, np.ndarray) else audio
        self._thread = threading.Thread(target=self._run, args=(stream, rate, blocks, on_end),
                                        name="notetaker-playback", daemon=True)
        self._thread.start()

    def _open(self, device: DeviceInfo) -> tuple[Any, int]:
        """The stream at 16 kHz, or at the device's own rate where it refuses 16 kHz (then
        this side resamples); stereo where the device has two channels (mono copied)."""
        sd = load_sounddevice()
        channels = max(1, min(2, device.channels))
        problem: BaseException | None = None
        for rate in dict.fromkeys((SAMPLE_RATE, device.rate)):
            stream = None
            try:
                stream = open_output(device, rate, channels)
                stream.start()
            except (sd.PortAudioError, ValueError) as e:
                close_input(stream)
                problem = e
                continue
            self._latency_s = float(getattr(stream, "latency", 0.0) or 0.0)
            return stream, rate
        raise AudioError(f"cannot play on {device.label}: {reason(problem)}")

    def _run(self, stream: Any, rate: int, blocks: Iterable[np.ndarray],
             on_end: Callable[[str | None], None] | None) -> None:
        try:
            resampler = None
            if rate != SAMPLE_RATE:
                import soxr

                resampler = soxr.ResampleStream(SAMPLE_RATE, rate, 1, dtype="float32", quality="HQ")
            for block in blocks:
                out = block if resampler is None else resampler.resample_chunk(np.ascontiguousarray(block))
                if not self._write(stream, rate, out):
                    return
            if resampler is not None and not self._write(stream, rate, resampler.resample_chunk(
                    np.zeros(0, np.float32), last=True)):
                return
            stream.stop()  # waits until the device has played what was written
        except SpoolError as e:
            self.error = str(e)
        except Exception as e:  # the device went away mid-play (sounddevice.PortAudioError)
            self.error = f"playback stopped: {reason(e)}"
        finally:
            close_input(stream)
            self._done.set()
            if on_end is not None:
                on_end(self.error)

    def _write(self, stream: Any, rate: int, samples: np.ndarray) -> bool:
        """Write mono samples (at the stream's rate) in CHUNK_S pieces; False once stopped."""
        out = to_unit_range(np.array(samples, dtype=np.float32))
        chunk, channels = max(1, int(self.chunk_s * rate)), int(stream.channels)
        for a in range(0, len(out), chunk):
            if self._stop.is_set():
                self.stopped = True
                return False
            piece = out[a:a + chunk]
            stream.write(np.repeat(piece[:, None], channels, axis=1) if channels > 1 else piece[:, None])
            self._written += round(len(piece) * SAMPLE_RATE / rate)
        return True

    @property
    def position_s(self) -> float:
        """Where on the meeting's timeline the sound now coming out is (roughly: what was
        written, less what the device still holds)."""
        return self.start_s + max(0.0, self._written / SAMPLE_RATE - self._latency_s)

    @property
    def playing(self) -> bool:
        return self._thread is not None and not self._done.is_set()

    def stop(self) -> None:
        """Stop at once (any thread); what is still in the device's buffer is dropped."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until playing is over; False if `timeout` passed first."""
        return self._thread is None or self._done.wait(timeout)
