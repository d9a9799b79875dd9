"""Audio files (WAV, FLAC, OGG Vorbis, MP3) as 16 kHz mono blocks, read as they stream.

libsndfile decodes; soxr resamples. Every problem a user can cause with a file
becomes an `AudioError` naming it, raised by `open_audio` before any work starts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
import soundfile as sf

from .base import AudioError
from .resample import MonoResampler, Reblocker, block_samples, downmix, to_unit_range

log = logging.getLogger(__name__)

# Native frames per libsndfile read. Kept small because a read that runs into damage
# (a cut FLAC) raises and loses everything it had decoded: we lose at most this much.
READ_FRAMES = 4096

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
    to ~200 frames) and a damaged file may decode fewer; `blocks()` yields what decodes.
    """

    def __init__(self, handle: sf.SoundFile, info: AudioInfo) -> None:
        self._handle = handle
        self.info = info
        # None, or one line saying where and why decoding stopped early (a cut or damaged file).
        self.damage: str | None = None

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

    def blocks(self, block_s: float = 1.0) -> Iterator[np.ndarray]:
        """16 kHz mono float32 blocks in [-1, 1] of exactly `block_s` seconds (the last shorter).

        Reads, downmixes and resamples as it goes: memory stays a few blocks whatever
        the file's length. Each call starts again from the beginning of the file.
        """
        reblocker = Reblocker(block_samples(block_s))
        resampler = MonoResampler(self.native_rate)
        for native in self._native_chunks():
            yield from reblocker.push(to_unit_range(resampler.process(downmix(native))))
        yield from reblocker.push(to_unit_range(resampler.flush()))
        tail = reblocker.flush()
        if tail is not None:
            yield tail

    def _native_chunks(self) -> Iterator[np.ndarray]:
        """Native (n, channels) float32 frames, READ_FRAMES at a time, in one reused buffer."""
        self._rewind()
        self.damage = None
        buf = np.empty((READ_FRAMES, self.channels), np.float32)
        done = 0
        while True:
            try:
                # `out=` reads until libsndfile stops, rather than trusting the header's count.
                got = self._handle.read(out=buf)
            except (RuntimeError, OSError, ValueError) as err:
                if done == 0:
                    raise _damaged(self.path, err) from None
                # libsndfile's words here are about its internals ("seek failed"), not the file.
                self.damage = (
                    f"decoding stopped at {done / self.native_rate:.1f} s of "
                    f"{self.duration_s:.1f} s: the file is cut short or damaged"
                )
                log.warning("%s: %s (%s)", self.path, self.damage, _reason(err))
                return
            if len(got) == 0:
                return
            done += len(got)
            yield got

    def _rewind(self) -> None:
        if self._handle.closed:
            raise ValueError(f"I/O on a closed AudioFile ({self.path})")
        try:
            self._handle.seek(0)
        except (RuntimeError, OSError, ValueError) as err:
            raise AudioError(f"{self.path}: cannot seek in the file ({_reason(err)})", str(self.path)) from None

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
    """Open and validate an audio file: it exists, is readable and decodes at least one frame.

    Raises AudioError (one line naming the file) for anything a user can get wrong.
    """
    p = Path(path)
    head = _read_head(p)
    with _quiet_native_stderr():
        try:
            handle = sf.SoundFile(str(p))
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
        with _quiet_native_stderr():
            _check_decodes(handle, p)
    except BaseException:
        handle.close()
        raise
    return AudioFile(handle, info)


def read_audio(path: str | os.PathLike[str]) -> np.ndarray:
    """The whole file as one 16 kHz mono float32 array: for short clips and tests."""
    with open_audio(path) as audio:
        return np.concatenate(list(audio.blocks(30.0)))


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Silence C-level stderr while probing: libmpg123 prints "Note: Illegal Audio-MPEG-Header"
    lines for junk bytes straight to fd 2, which would break the one-line error (and a TUI)."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _read_head(p: Path) -> bytes:
    """The file's first bytes, after the checks that give a clearer message than libsndfile."""
    try:
        st = p.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise AudioError(f"{p}: no such file", str(p)) from None
    except PermissionError:
        raise AudioError(f"{p}: permission denied", str(p)) from None
    except OSError as err:
        raise AudioError(f"{p}: cannot open ({err.strerror or 'system error'})", str(p)) from None
    if stat.S_ISDIR(st.st_mode):
        raise AudioError(f"{p}: is a directory, not an audio file", str(p))
    if not stat.S_ISREG(st.st_mode):
        raise AudioError(f"{p}: not a regular file (pipes and devices are not supported)", str(p))
    if st.st_size == 0:
        raise AudioError(f"{p}: file is empty (0 bytes)", str(p))
    try:
        with p.open("rb") as f:
            return f.read(512)
    except PermissionError:
        raise AudioError(f"{p}: permission denied (the file is not readable)", str(p)) from None
    except OSError as err:
        raise AudioError(f"{p}: cannot read ({err.strerror or 'system error'})", str(p)) from None


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
            f"{p}: contains no audio samples (the {handle.format} header is there, the audio is not)",
            str(p),
        )


def _unreadable(p: Path, head: bytes, err: BaseException) -> AudioError:
    code = getattr(err, "code", None)
    # 1: no known header. 7: libsndfile's MP3 probe found a frame sync in non-audio bytes
    # and mpg123 then gave up; its text ("does not exist") would mislead.
    if code in (1, 7):
        return AudioError(f"{p}: not an audio file we can read ({_what_it_is(head)}); expected {SUPPORTED}", str(p))
    return _damaged(p, err)


def _damaged(p: Path, err: BaseException) -> AudioError:
    return AudioError(f"{p}: damaged or unsupported audio file ({_reason(err)})", str(p))


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
