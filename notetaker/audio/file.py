"""Audio files (WAV, FLAC, OGG Vorbis, MP3) as 16 kHz mono blocks, read as they stream.

libsndfile decodes; soxr resamples. Every problem a user can cause with a file
becomes an `AudioError` naming it, raised by `open_audio` before any work starts.

A file damaged part-way is read past the damage, as far as libsndfile allows
(measured with libsndfile 1.2.2, its bundled libFLAC 1.4.3 and libmpg123 1.32.3):
- FLAC: on a bad frame libsndfile aborts its decoder for good, so a fresh handle
  seeks past the damage (the first point that decodes, to about 0.1 s); the stretch
  between is silence, so every later time is where it was.
- MP3: libmpg123 resyncs over up to 1 KB of junk by itself (that audio is dropped, not
  silenced); past more it gives up, and its sample-exact seek cannot cross the damage
  either. We find the next run of valid MPEG frames ourselves and decode from there,
  with silence for the frames lost (estimated from their bytes).
- OGG Vorbis: libvorbisfile skips damaged pages itself (that audio is dropped); WAV has
  no structure to damage. Both show up as audio shorter than their header says.
What was skipped, and where audio ends before the header says it should, is kept on
the `AudioFile` (`gaps`, `stopped`, `notes()`) for the caller to flag the meeting.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import re
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
import soundfile as sf

from storage.export import clock

from .base import SAMPLE_RATE, AudioError
from .resample import MonoResampler, Reblocker, block_samples, downmix, to_unit_range

log = logging.getLogger(__name__)

# Native frames per libsndfile read. A read that runs into damage keeps what it decoded
# (the handle's position says how much), so this only sets the cost per call.
READ_FRAMES = 4096

# Sample rates a real recording can have. A header outside these is damage (a WAV claiming
# 2^31 - 1 Hz would otherwise resample 5 s to nothing, or 1 Hz to 22 hours of noise).
MIN_RATE, MAX_RATE = 1_000, 768_000

# Audio shorter than the header says by more than this is flagged (an MP3's length is only
# known to within a frame or two; gapless trimming and FLAC block sizes are smaller).
SHORTFALL_S = 0.25

# "Speech level": 0.1 s windows at or above this RMS. Voices in a recording sit around
# -35 to -15 dBFS; a quiet room is below -50. Audio this loud for at least SPEECH_MIN_S with
# no text recognised is worth a warning.
SPEECH_DBFS = -40.0
SPEECH_MIN_S = 1.0
_LEVEL_WINDOW = SAMPLE_RATE // 10

# Decoding gives up after this many resyncs: a file that is mostly junk is not worth more.
MAX_RESYNCS = 1000

_DECODE_ERRORS = (RuntimeError, OSError, ValueError)

SUPPORTED = "WAV, FLAC, OGG Vorbis or MP3"

# Files people pass by mistake, recognised by their first bytes, for a message that helps.
_CONVERT_HINT = "convert it first, e.g. `ffmpeg -i IN -ac 1 -ar 16000 OUT.wav`"
_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x89PNG", "a PNG image"),
    (0, b"\xff\xd8\xff", "a JPEG image"),
    (0, b"GIF8", "a GIF image"),
    (0, b"%PDF", "a PDF document"),
    (0, b"PK\x03\x04", "a ZIP archive"),
    (4, b"ftyp", f"an MP4/M4A file (AAC audio is not supported: {_CONVERT_HINT})"),
    (0, b"\x1a\x45\xdf\xa3", f"a WebM/Matroska file (not supported: {_CONVERT_HINT})"),
)


@dataclass(frozen=True)
class AudioInfo:
    """What the file's header says; `frames` is native frames per channel."""

    path: Path
    native_rate: int
    channels: int
    frames: int
    format: str
    subtype: str

    @property
    def duration_s(self) -> float:
        return self.frames / self.native_rate


class AudioFile:
    """An open, validated audio file. Use `open_audio` to make one; close it when done.

    `frames` comes from the header. libsndfile estimates it for MP3 (measured off by up
    to ~200 frames) and a damaged file may decode fewer; `blocks()` yields what decodes,
    with silence where damage was skipped. After `blocks()` has run to its end,
    `decoded_frames`, `gaps`, `stopped`, `loud_s` and `notes()` say what it found.
    """

    def __init__(self, handle: sf.SoundFile, info: AudioInfo, expected_frames: int | None = None) -> None:
        self._handle = handle
        self.info = info
        # The header's length where it can be trusted to say what a whole file holds
        # (FLAC, OGG, WAV's data size, an MP3 with a Xing/Info frame count); None elsewhere.
        self.expected_frames = expected_frames
        self._reset_report()

    def _reset_report(self) -> None:
        self.decoded_frames = 0  # native frames on the file's timeline: decoded, or silence for damage
        self.gaps: list[tuple[int, int]] = []  # (start, length) in native frames: damage skipped, silenced
        self.stopped: str | None = None  # libsndfile's reason, where decoding ended early for good
        self.read_to_end = False  # blocks() ran to the file's end (not abandoned by a reader that stopped)
        self.level_windows = 0  # 0.1 s windows measured
        self.loud_windows = 0  # ... at speech level
        self._loud_energy = 0.0

    @property
    def path(self) -> Path:
        return self.info.path

    @property
    def native_rate(self) -> int:
        return self.info.native_rate

    @property
    def channels(self) -> int:
        return self.info.channels

    @property
    def frames(self) -> int:
        return self.info.frames

    @property
    def duration_s(self) -> float:
        return self.info.duration_s

    @property
    def format(self) -> str:
        return self.info.format

    @property
    def subtype(self) -> str:
        return self.info.subtype

    @property
    def decoded_s(self) -> float:
        return self.decoded_frames / self.native_rate

    @property
    def loud_s(self) -> float:
        """Seconds of the output at speech level (see SPEECH_DBFS)."""
        return self.loud_windows * _LEVEL_WINDOW / SAMPLE_RATE

    @property
    def loud_dbfs(self) -> float:
        """RMS level of the windows at speech level (-120 when there are none)."""
        if not self.loud_windows:
            return -120.0
        return 10 * float(np.log10(self._loud_energy / self.loud_windows))

    @property
    def damage(self) -> str | None:
        """One line on what damage decoding met, or None (a sound file, or not read yet)."""
        lines = self._damage_notes()
        return "; ".join(text for _, text in lines) if lines else None

    def notes(self, recognised: bool = True) -> list[tuple[float, str]]:
        """(seconds, one line) for each thing worth flagging on a meeting made from this file:
        damage skipped, audio ending before the header says, and, when no text was
        `recognised`, audio at speech level all the same. Call after `blocks()` has ended."""
        notes = self._damage_notes()
        if not recognised and self.loud_s >= SPEECH_MIN_S:
            notes.append((0.0, f"no speech recognised, though {self.loud_s:.1f} s of the audio is at speech "
                               f"level ({self.loud_dbfs:.0f} dBFS): noise, music, or a language the model "
                               "does not know?"))
        return notes

    def _damage_notes(self) -> list[tuple[float, str]]:
        rate = self.native_rate
        notes = []
        if self.gaps:
            lost = sum(n for _, n in self.gaps) / rate
            first = self.gaps[0][0] / rate
            if len(self.gaps) == 1:
                text = f"{_secs(lost)} at {clock(first, tenths=True)} could not be decoded (the file is damaged there)"
            else:
                last = self.gaps[-1][0] / rate
                text = (f"{len(self.gaps)} damaged stretches, {_secs(lost)} in all from {clock(first, tenths=True)} to "
                        f"{clock(last, tenths=True)}, could not be decoded")
            notes.append((first, f"{text}; silence is in their place" if len(self.gaps) > 1
                          else f"{text}; silence is in its place"))
        expected = self.expected_frames or self.frames
        if self.stopped is not None:
            notes.append((self.decoded_s, f"read {self.decoded_s:.1f} s of {expected / rate:.1f} s: "
                                          "the file is damaged after that"))
        elif (self.read_to_end and self.expected_frames
              and self.decoded_frames < self.expected_frames - SHORTFALL_S * rate):
            notes.append((self.decoded_s, f"read {self.decoded_s:.1f} s of the {expected / rate:.1f} s its "
                                          "header gives: the file is cut short or damaged"))
        return notes

    def blocks(self, block_s: float = 1.0) -> Iterator[np.ndarray]:
        """16 kHz mono float32 blocks in [-1, 1] of exactly `block_s` seconds (the last shorter).

        Reads, downmixes and resamples as it goes: memory stays a few blocks whatever
        the file's length. Each call starts again from the beginning of the file.
        """
        reblocker = Reblocker(block_samples(block_s))
        resampler = MonoResampler(self.native_rate)
        for native in self._native_chunks():
            yield from self._measured(reblocker.push(to_unit_range(resampler.process(downmix(native)))))
        self.read_to_end = True  # a reader that stopped early (the user ended the meeting) never gets here
        yield from self._measured(reblocker.push(to_unit_range(resampler.flush())))
        tail = reblocker.flush()
        if tail is not None:
            yield from self._measured([tail])

    def _measured(self, blocks: list[np.ndarray]) -> Iterator[np.ndarray]:
        for block in blocks:
            n = len(block) // _LEVEL_WINDOW * _LEVEL_WINDOW
            if n:
                energy = np.square(block[:n].reshape(-1, _LEVEL_WINDOW), dtype=np.float64).mean(axis=1)
                loud = energy >= 10 ** (SPEECH_DBFS / 10)
                self.level_windows += len(energy)
                self.loud_windows += int(loud.sum())
                self._loud_energy += float(energy[loud].sum())
            yield block

    def _native_chunks(self) -> Iterator[np.ndarray]:
        """Native (n, channels) float32 frames, READ_FRAMES at a time, in one reused buffer,
        with silence where damage was skipped."""
        self._rewind()
        self._reset_report()
        buf = np.empty((READ_FRAMES, self.channels), np.float32)
        quiet = self.format == "MP3"  # only libmpg123 prints while it decodes
        reader = _Reader(self._handle)
        pos = 0  # native frames handed out: the position on the file's timeline
        resyncs = 0
        try:
            while True:
                err: BaseException | None = None
                try:
                    with _NATIVE_STDERR.quiet(quiet):
                        got = reader.handle.read(out=buf)
                except _DECODE_ERRORS as e:
                    err, got = e, buf[:0]
                    # What the failed read did decode is in `buf`; the handle's position says how much.
                    n = (reader.position() or pos) - pos
                    if n > 0:
                        pos += n
                        self.decoded_frames = pos
                        yield buf[:n]
                if len(got):
                    pos += len(got)
                    self.decoded_frames = pos
                    yield got
                    continue
                # The reader stopped: an error, or an MP3 ending quietly well short of its length
                # (libsndfile has libmpg123 stop where junk looks like the start of another stream).
                if err is None and not (quiet and pos < self.frames - SHORTFALL_S * self.native_rate):
                    return
                resyncs += 1
                resumed = self._resync(reader, pos) if resyncs <= MAX_RESYNCS else None
                if resumed is None:
                    if err is None:
                        return
                    if pos == 0:
                        raise _damaged(self.path, err) from None
                    self.stopped = _reason(err)
                    log.info("%s: decoding stopped at %.1f s (%s)", self.path, pos / self.native_rate, self.stopped)
                    return
                if reader.handle is not self._handle:
                    reader.close()
                reader = resumed
                if reader.start > pos:
                    self.gaps.append((pos, reader.start - pos))
                    log.info("%s: skipped damage from %.2f s to %.2f s", self.path, pos / self.native_rate,
                             reader.start / self.native_rate)
                    yield from _silence(reader.start - pos, self.channels)
                    pos = self.decoded_frames = reader.start
        finally:
            if reader.handle is not self._handle:
                reader.close()

    # -- reading past damage --------------------------------------------------------------
    def _resync(self, reader: _Reader, pos: int) -> _Reader | None:
        """A reader that decodes from past the damage that stopped `reader` at `pos`, its
        `start` where its first frame lies on the timeline; None when nothing after decodes."""
        if self.format == "MP3":
            return self._resync_mpeg(reader, pos)
        return self._resync_by_seeking(pos)

    def _resync_by_seeking(self, pos: int) -> _Reader | None:
        """The first point after `pos` where a fresh handle seeks and decodes: out from `pos`
        in doubling steps, then bisected down to one step."""
        step = max(READ_FRAMES, self.native_rate // 20)
        end = self.frames
        bad, distance = pos, step
        found = None
        while found is None:
            if pos + distance >= end:
                return None
            found = self._probe(pos + distance)
            if found is None:
                bad = pos + distance
                distance *= 2
        good = pos + distance
        while good - bad > step:
            mid = (bad + good) // 2
            nearer = self._probe(mid)
            if nearer is None:
                bad = mid
            else:
                found.close()
                found, good = nearer, mid
        return found

    def _probe(self, frame: int) -> _Reader | None:
        """A fresh handle at `frame`, if it seeks there and decodes a block from it."""
        try:
            with _NATIVE_STDERR.quiet():
                handle = sf.SoundFile(_native_path(self.path))
        except (*_DECODE_ERRORS, TypeError):
            return None
        try:
            with _NATIVE_STDERR.quiet():
                handle.seek(frame)
                if len(handle.read(READ_FRAMES, dtype="float32", always_2d=True)) == 0:
                    raise ValueError("nothing decodes here")
                handle.seek(frame)
        except _DECODE_ERRORS:
            handle.close()
            return None
        return _Reader(handle, start=frame)

    def _resync_mpeg(self, reader: _Reader, pos: int) -> _Reader | None:
        """libmpg123 gave up at a break in the chain of MPEG frames: decode again from the
        next run of valid frames, placed where the frames lost between would have ended."""
        out = pos - reader.base  # what this handle decoded
        xing = reader.xing
        try:
            with open(_native_path(self.path), "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
                runs = _mpeg_runs(data, reader.offset)
                decoded = 0
                for run in runs:
                    if reader.offset == 0 and decoded == 0:
                        xing = _xing_frame(data, run.start)
                    decoded += run.frames * run.samples
                    # libmpg123 hands out the frames of a run until the break stops it (a frame or
                    # so fewer), so the run that ends at or just after what came out is the one.
                    if decoded + run.samples >= out:
                        break
                else:
                    return None
                after = next(runs, None)
        except (OSError, ValueError):
            return None
        if after is None:
            return None
        # Frames lost in the junk, from its bytes: exact at a constant bitrate, near for VBR.
        lost = round((after.start - run.end) / run.mean_length) * run.samples
        # The tail starts with the file's Xing frame, if it has one: its length lets libsndfile
        # read a VBR tail to the end, and its LAME tag trims the tail's start as it did the
        # file's, so the tail lines up with the file once that (silent) frame is taken off.
        skipped = run.samples if reader.offset == 0 and xing else 0
        return self._open_tail(after.start, max(pos, reader.base + decoded + lost - skipped), xing)

    def _open_tail(self, offset: int, start: int, xing: bytes) -> _Reader | None:
        view = _Tail(_native_path(self.path), offset, xing)
        try:
            with _NATIVE_STDERR.quiet():
                handle = sf.SoundFile(view)
        except (*_DECODE_ERRORS, TypeError):
            view.close()
            return None
        if handle.samplerate != self.native_rate or handle.channels != self.channels:
            handle.close()
            view.close()
            return None
        return _Reader(handle, start=start, base=start, offset=offset, xing=xing, view=view)

    def _rewind(self) -> None:
        if self._handle.closed:
            raise ValueError(f"I/O on a closed AudioFile ({_text(self.path)})")
        try:
            self._handle.seek(0)
            return
        except _DECODE_ERRORS as err:
            reason = _reason(err)
        # A decoder that met damage (libFLAC aborts) cannot seek any more: open the file again.
        try:
            with _NATIVE_STDERR.quiet():
                handle = sf.SoundFile(_native_path(self.path))
        except (*_DECODE_ERRORS, TypeError):
            raise AudioError(f"{_text(self.path)}: cannot seek in the file ({reason})", str(self.path)) from None
        self._handle.close()
        self._handle = handle

    @property
    def closed(self) -> bool:
        return bool(self._handle.closed)

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> AudioFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        i = self.info
        return (
            f"AudioFile({str(i.path)!r}, {i.format}/{i.subtype}, {i.native_rate} Hz, "
            f"{i.channels} ch, {i.duration_s:.2f} s)"
        )


def open_audio(path: str | os.PathLike[str]) -> AudioFile:
    """Open and validate an audio file: it exists, is readable, has a real sample rate and
    decodes at least one frame.

    Raises AudioError (one line naming the file) for anything a user can get wrong.
    """
    p = Path(path)
    head = _read_head(p)
    with _NATIVE_STDERR.quiet():
        try:
            handle = sf.SoundFile(_native_path(p))
        except (RuntimeError, OSError, ValueError, TypeError) as err:
            raise _unreadable(p, head, err) from None
    try:
        info = AudioInfo(
            path=p,
            native_rate=int(handle.samplerate),
            channels=int(handle.channels),
            frames=int(handle.frames),
            format=str(handle.format),
            subtype=str(handle.subtype),
        )
        if not MIN_RATE <= info.native_rate <= MAX_RATE:
            raise AudioError(f"{_text(p)}: damaged header: it gives a sample rate of {info.native_rate} Hz "
                             f"(a recording has {MIN_RATE // 1000} kHz to {MAX_RATE // 1000} kHz)", str(p))
        with _NATIVE_STDERR.quiet():
            _check_decodes(handle, p)
        expected = _expected_frames(p, head, info)
    except BaseException:
        handle.close()
        raise
    return AudioFile(handle, info, expected)


def read_audio(path: str | os.PathLike[str]) -> np.ndarray:
    """The whole file as one 16 kHz mono float32 array: for short clips and tests."""
    with open_audio(path) as audio:
        return np.concatenate(list(audio.blocks(30.0)))


def path_text(path: str | os.PathLike[str]) -> str:
    """A path as text that prints and stores anywhere: bytes that are not UTF-8 (a name
    made on another system, handed over by the shell as surrogates) become \\xNN."""
    text = os.fspath(path)
    if os.name == "nt":
        return text
    return os.fsencode(text).decode("utf-8", "backslashreplace")


_text = path_text


def _native_path(p: Path) -> str | bytes:
    """What libsndfile opens: the file system's own bytes, so a name that is not UTF-8 works
    (soundfile would encode a str as UTF-8 and fail on it)."""
    return str(p) if os.name == "nt" else os.fsencode(p)


def _secs(seconds: float) -> str:
    """0.3 s; under a tenth, 0.03 s (an MP3 frame is 0.026 s)."""
    return f"{seconds:.1f} s" if seconds >= 0.095 else f"{seconds:.2f} s"


def _silence(frames: int, channels: int) -> Iterator[np.ndarray]:
    block = np.zeros((min(frames, READ_FRAMES), channels), np.float32)
    while frames > 0:
        yield block[: min(frames, READ_FRAMES)]
        frames -= READ_FRAMES


class _Reader:
    """A libsndfile handle on the file, or on its tail from byte `offset` (MP3 after damage).
    `base`: where the handle's frame 0 lies on the file's timeline (a tail's first frame is
    not the file's); `start`: where reading from it resumes."""

    def __init__(self, handle: sf.SoundFile, start: int = 0, base: int = 0, offset: int = 0,
                 xing: bytes = b"", view: _Tail | None = None) -> None:
        self.handle = handle
        self.start = start
        self.base = base
        self.offset = offset
        self.xing = xing  # the Xing frame a tail starts with
        self._view = view

    def position(self) -> int | None:
        """Where the handle is on the timeline: libsndfile counts a failed read's frames too."""
        try:
            return self.base + int(self.handle.tell())
        except _DECODE_ERRORS:
            return None

    def close(self) -> None:
        self.handle.close()
        if self._view is not None:
            self._view.close()


class _Tail:
    """A read-only file for libsndfile's virtual I/O: `prefix`, then the file from `offset` on."""

    def __init__(self, path: str | bytes, offset: int, prefix: bytes = b"") -> None:
        self._f = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._offset = offset
        self._prefix = prefix
        self._size = len(prefix) + max(0, os.fstat(self._f.fileno()).st_size - offset)
        self._pos = 0

    def seek(self, pos: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._size}[whence]
        self._pos = min(max(0, base + pos), self._size)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, n: int = -1) -> bytes:
        n = self._size - self._pos if n < 0 else min(n, self._size - self._pos)
        out = self._prefix[self._pos : self._pos + n]
        if len(out) < n:
            self._f.seek(self._offset + self._pos + len(out) - len(self._prefix))
            out += self._f.read(n - len(out))
        self._pos += len(out)
        return out

    def close(self) -> None:
        self._f.close()


# -- MPEG audio frames ------------------------------------------------------------------------
# Header fields by the 2-bit codes in the header: version 3 = MPEG-1, 2 = MPEG-2, 0 = MPEG-2.5;
# layer 3 = I, 2 = II, 1 = III. Bitrates in kbit/s by index 1..14.
_MPEG_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}
_MPEG_KBPS = {
    (3, 3): (32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (3, 2): (32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (3, 1): (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (2, 3): (32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (2, 2): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (2, 1): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_CHAIN = 3  # frames in a row that must check out before bytes count as MPEG audio


def _mpeg_frame(data, i: int) -> tuple[int, int, tuple[int, int, int]] | None:  # noqa: ANN001 - bytes-like
    """(length in bytes, samples, stream key) of the MPEG audio frame whose header is at `i`."""
    if i + 4 > len(data) or data[i] != 0xFF or data[i + 1] & 0xE0 != 0xE0:
        return None
    b1, b2 = data[i + 1], data[i + 2]
    version, layer = (b1 >> 3) & 3, (b1 >> 1) & 3
    bitrate, rate_index, padding = b2 >> 4, (b2 >> 2) & 3, (b2 >> 1) & 1
    if version == 1 or layer == 0 or bitrate in (0, 15) or rate_index == 3 or data[i + 3] & 3 == 2:
        return None
    rate = _MPEG_RATES[version][rate_index]
    kbps = _MPEG_KBPS[(3 if version == 3 else 2, layer)][bitrate - 1]
    if layer == 3:
        return (12000 * kbps // rate + padding) * 4, 384, (version, layer, rate_index)
    if layer == 2 or version == 3:
        return 144000 * kbps // rate + padding, 1152, (version, layer, rate_index)
    return 72000 * kbps // rate + padding, 576, (version, layer, rate_index)


@dataclass(frozen=True)
class _Run:
    """Consecutive MPEG frames of one stream: bytes [start, end), `frames` of `samples` each."""

    start: int
    end: int
    frames: int
    samples: int

    @property
    def mean_length(self) -> float:
        return (self.end - self.start) / self.frames


def _xing_frame(data, i: int) -> bytes:  # noqa: ANN001 - bytes-like
    """The frame at `i` if it is a Xing/Info frame (the stream's length, no audio), else b""."""
    frame = _mpeg_frame(data, i)
    if frame is None:
        return b""
    body = bytes(data[i : i + frame[0]])
    return body if b"Xing" in body[:64] or b"Info" in body[:64] else b""


def _mpeg_runs(data, start: int) -> Iterator[_Run]:  # noqa: ANN001 - bytes-like
    """The runs of valid MPEG frames from byte `start` on, in order, skipping junk between."""
    if start == 0 and data[:3] == b"ID3" and len(data) >= 10:  # an ID3v2 tag: its size is syncsafe
        size = (data[6] & 0x7F) << 21 | (data[7] & 0x7F) << 14 | (data[8] & 0x7F) << 7 | data[9] & 0x7F
        start = 10 + size + (10 if data[5] & 0x10 else 0)
    i = start
    while True:
        i = _next_chain(data, i)
        if i is None:
            return
        first = _mpeg_frame(data, i)
        assert first is not None
        run_start, frames = i, 0
        while (frame := _mpeg_frame(data, i)) is not None and frame[2] == first[2] and i + frame[0] <= len(data):
            i += frame[0]
            frames += 1
        yield _Run(run_start, i, frames, first[1])


def _next_chain(data, i: int) -> int | None:  # noqa: ANN001 - bytes-like
    """The first byte at or after `i` where _CHAIN frames of one stream follow each other."""
    while (i := data.find(b"\xff", i)) >= 0:
        frame = _mpeg_frame(data, i)
        j, ok = i, frame is not None
        for _ in range(_CHAIN):
            here = _mpeg_frame(data, j)
            if here is None or frame is None or here[2] != frame[2]:
                ok = False
                break
            j += here[0]
        if ok:
            return i
        i += 1
    return None


# -- libmpg123's stderr --------------------------------------------------------------------------
class _NativeStderr:
    """libmpg123 prints to fd 2 ("Note: Illegal Audio-MPEG-Header ...", "[src/libmpg123/...]
    error: ..."), which would break a one-line error or a terminal UI; libsndfile offers no
    way to quiet it. While a decode call runs, fd 2 goes into a pipe; afterwards what
    libmpg123 wrote is dropped and anything else (another thread's output meanwhile) is
    passed on. Thread-safe: the first thread in redirects, the last one out restores and
    drains. Where fd 2 or a non-blocking pipe is not available, nothing is redirected."""

    _MPG123_LINE = re.compile(rb"((Note|Warning|Error): |\[[^\]\n]*libmpg123[^\]\n]*\] )")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._saved = -1
        self._pipe: tuple[int, int] | None = None

    @contextlib.contextmanager
    def quiet(self, active: bool = True) -> Iterator[None]:
        entered = active and self._enter()
        try:
            yield
        finally:
            if entered:
                self._leave()

    def _enter(self) -> bool:
        with self._lock:
            if self._users == 0:
                try:
                    if self._pipe is None:
                        self._pipe = self._make_pipe()
                    saved = os.dup(2)
                except OSError:
                    return False
                try:
                    os.dup2(self._pipe[1], 2)
                except OSError:
                    os.close(saved)
                    return False
                self._saved = saved
            self._users += 1
            return True

    def _leave(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users:
                return
            os.dup2(self._saved, 2)
            os.close(self._saved)
            self._saved = -1
            self._drain()

    @staticmethod
    def _make_pipe() -> tuple[int, int]:
        r, w = os.pipe()
        try:
            # Never block: a writer facing a full pipe loses its text rather than hanging.
            os.set_blocking(r, False)
            os.set_blocking(w, False)
        except OSError:
            os.close(r)
            os.close(w)
            raise
        with contextlib.suppress(ImportError, OSError, AttributeError):
            import fcntl

            fcntl.fcntl(w, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)  # Linux: room for 1 MB
        return r, w

    def _drain(self) -> None:
        assert self._pipe is not None
        chunks = []
        while True:
            try:
                chunk = os.read(self._pipe[0], 1 << 16)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                return
            if not chunk:
                break
            chunks.append(chunk)
        keep = b"".join(line for line in b"".join(chunks).splitlines(keepends=True)
                        if not self._MPG123_LINE.match(line))
        with contextlib.suppress(OSError):
            while keep:
                keep = keep[os.write(2, keep):]


_NATIVE_STDERR = _NativeStderr()


def _expected_frames(p: Path, head: bytes, info: AudioInfo) -> int | None:
    """The header's length where it says what a whole file holds, else None. libsndfile's own
    count follows a cut WAV (it trusts the file size), so WAV's data size is read here."""
    if info.format in ("FLAC", "OGG"):
        return info.frames or None
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return _wav_data_frames(head)
    if info.format == "MP3":
        return info.frames if _mpeg_counts_frames(p) else None
    return None


def _wav_data_frames(head: bytes) -> int | None:
    pos, align = 12, 0
    while pos + 8 <= len(head):
        chunk, size = head[pos : pos + 4], int.from_bytes(head[pos + 4 : pos + 8], "little")
        if chunk == b"fmt " and pos + 22 <= len(head):
            align = int.from_bytes(head[pos + 20 : pos + 22], "little")
        if chunk == b"data":
            # 0, 0xFFFFFFFF, 0x7FFFFFFF and near: placeholders of a writer that streamed (sox,
            # arecord to a pipe) and never came back to fill in the size.
            return size // align if align and 0 < size < 0x7FFF0000 else None
        pos += 8 + size + (size & 1)
    return None


def _mpeg_counts_frames(p: Path) -> bool:
    """Whether the first MPEG frame is a Xing/Info frame (it gives the stream's length)."""
    try:
        with open(_native_path(p), "rb") as f:
            head = f.read(10)
            start = 0
            if head[:3] == b"ID3" and len(head) == 10:
                start = 10 + ((head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7
                              | head[9] & 0x7F)
            f.seek(start)
            frame = f.read(64)
    except OSError:
        return False
    return b"Xing" in frame or b"Info" in frame


def _read_head(p: Path) -> bytes:
    """The file's first bytes, after the checks that give a clearer message than libsndfile."""
    name = _text(p)
    try:
        st = p.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise AudioError(f"{name}: no such file", str(p)) from None
    except PermissionError:
        raise AudioError(f"{name}: permission denied", str(p)) from None
    except OSError as err:
        raise AudioError(f"{name}: cannot open ({err.strerror or 'system error'})", str(p)) from None
    if stat.S_ISDIR(st.st_mode):
        raise AudioError(f"{name}: is a directory, not an audio file", str(p))
    if not stat.S_ISREG(st.st_mode):
        raise AudioError(f"{name}: not a regular file (pipes and devices are not supported)", str(p))
    if st.st_size == 0:
        raise AudioError(f"{name}: file is empty (0 bytes)", str(p))
    try:
        with p.open("rb") as f:
            return f.read(512)
    except PermissionError:
        raise AudioError(f"{name}: permission denied (the file is not readable)", str(p)) from None
    except OSError as err:
        raise AudioError(f"{name}: cannot read ({err.strerror or 'system error'})", str(p)) from None


def _check_decodes(handle: sf.SoundFile, p: Path) -> None:
    """Decode the first frames now, so a file with a header but no audio fails at open."""
    buf = np.empty((READ_FRAMES, handle.channels), np.float32)
    try:
        got = len(handle.read(out=buf))
        handle.seek(0)
    except (RuntimeError, OSError, ValueError) as err:
        raise _damaged(p, err) from None
    if got == 0:
        raise AudioError(
            f"{_text(p)}: contains no audio samples (the {handle.format} header is there, the audio is not)",
            str(p),
        )


def _unreadable(p: Path, head: bytes, err: BaseException) -> AudioError:
    code = getattr(err, "code", None)
    # 1: no known header. 7: libsndfile's MP3 probe found a frame sync in non-audio bytes
    # and mpg123 then gave up; its text ("does not exist") would mislead.
    if code in (1, 7):
        return AudioError(f"{_text(p)}: not an audio file we can read ({_what_it_is(head)}); expected {SUPPORTED}", str(p))
    return _damaged(p, err)


def _damaged(p: Path, err: BaseException) -> AudioError:
    return AudioError(f"{_text(p)}: damaged or unsupported audio file ({_reason(err)})", str(p))


def _what_it_is(head: bytes) -> str:
    for offset, magic, name in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return f"it is {name}"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as err:
        # Only a character split by the 512-byte cut is forgiven; binary fails far earlier.
        text = head[: err.start].decode("utf-8") if err.start >= len(head) - 3 else ""
    if text and all(c.isprintable() or c in "\t\r\n" for c in text):
        return "it looks like text"
    return "unrecognised format or damaged header"


def _reason(err: BaseException) -> str:
    """libsndfile's own words, without its 'Error' prefixes or Python class names."""
    text = str(getattr(err, "error_string", None) or err or "unknown error")
    text = " ".join(text.split()).strip().rstrip(".")
    for prefix in ("Error :", "Error:"):
        if text.startswith(prefix):
            text = text[len(prefix) :].strip()
    if text.startswith("Error in ") and ". " in text:
        # "Error in WAV/W64/RF64 file. Malformed 'fmt ' chunk" -> "malformed 'fmt ' chunk"
        text = text.split(". ", 1)[1]
    text = text.replace("psf_fseek()", "seek").replace("Internal ", "")
    return (text[:1].lower() + text[1:]) or "unknown error"
