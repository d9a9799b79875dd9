"""The audio spool: every captured sample on disk, so a crash loses no audio.

One folder per meeting, `sessions/<id>/` in the data home (0700, files 0600):

- `spool.json`: format version, channel names, sample rate, when it was created, and
  what the audio is now (`raw`, `flac` or `dropped`), written atomically;
- `audio.raw`: 16-bit little-endian PCM, channels interleaved, appended while the
  meeting runs. Each block is written (`os.write`, no user-space buffer) the moment it is
  appended, so a process that dies loses nothing the kernel has; a sync thread fsyncs it
  at least every second of wall time, and sooner once a second of audio is unsynced, so
  a power cut loses at most about a second;
- `audio.flac`: the same samples, lossless, once the meeting ended cleanly (the raw file
  is deleted only after the FLAC has been written, synced and read back identical).

Any OSError (disk full, the data home gone or read-only) becomes a one-line SpoolError;
whatever was written before it stays readable with `open_spool`.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

FORMAT = 1
META = "spool.json"
RAW = "audio.raw"
FLAC = "audio.flac"
WAITING = "finals-waiting.jsonl"  # finals the store refused during the meeting
SAMPLE_FORMAT = "s16le"
SYNC_EVERY_S = 1.0  # wall time between fsyncs while there is unsynced audio
COMPACT_BLOCK = 1 << 20  # frames per block when compacting or verifying (2 MiB per channel)
_SCALE = 32768.0  # float [-1, 1) <-> int16, as libsndfile does, so 16-bit sources round-trip exactly


class SpoolError(Exception):
    """The spool cannot be written or read: one line for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


def spool_folder(sessions_dir: str | os.PathLike[str], session_id: int) -> Path:
    return Path(sessions_dir) / str(int(session_id))


def _why(e: OSError) -> str:
    return e.strerror or str(e) or type(e).__name__


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # some platforms cannot open a folder; the entries are synced with it elsewhere
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_meta(folder: Path, meta: dict) -> None:
    """Atomically: a reader sees the old or the new file, never half of one."""
    tmp = folder / (META + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        data = (json.dumps(meta, indent=1) + "\n").encode()
        while data:
            data = data[os.write(fd, data):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, folder / META)
    _fsync_dir(folder)


# The channel lists a recorder writes: one unnamed source, a microphone, system audio,
# both mixed, or both apart (the order is the raw file's interleaving).
CHANNEL_LAYOUTS = {("mono",), ("mic",), ("system",), ("mix",), ("mic", "system")}
MONO = "mono"  # the spool's name for a source's one unnamed channel (stored as no channel)


def store_label(spool_channel: str) -> str | None:
    """The `segments.channel` value for a spool channel name."""
    return None if spool_channel == MONO else spool_channel


def _read_meta(folder: Path) -> dict:
    path = folder / META
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpoolError(f"no audio spool in {folder}") from None
    except OSError as e:
        raise SpoolError(f"cannot read the audio spool in {folder}: {_why(e)}") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise SpoolError(f"{path} is damaged (not JSON)") from None
    try:
        version = int(meta["format"])
        channels = tuple(str(c) for c in meta["channels"])
        rate = int(meta["sample_rate"])
    except (KeyError, TypeError, ValueError):
        raise SpoolError(f"{path} is damaged (fields missing)") from None
    if version > FORMAT:
        raise SpoolError(f"{path} is spool format {version}; this notetaker reads up to {FORMAT} (upgrade it)")
    if not channels or rate <= 0:
        raise SpoolError(f"{path} is damaged (no channels or no sample rate)")
    if channels not in CHANNEL_LAYOUTS:
        # The raw file is interleaved by this list: another one would mix the channels up.
        raise SpoolError(f"{path} names a channel layout notetaker never writes ({', '.join(channels)}): "
                         "it was edited or damaged; restore it to recover this audio")
    return meta


def to_pcm16(block: np.ndarray, channels: int) -> np.ndarray:
    """(n,) or (n, k) float audio → (n, k) little-endian int16, clipped; NaN becomes 0."""
    a = np.asarray(block, dtype=np.float32)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[1] != channels:
        raise ValueError(f"the spool takes (n,) or (n, {channels}) blocks, not shape {np.shape(block)}")
    scaled = np.nan_to_num(a * _SCALE, nan=0.0, posinf=32767.0, neginf=-32768.0)
    np.clip(scaled, -32768.0, 32767.0, out=scaled)
    return np.rint(scaled).astype("<i2")


class Spool:
    """Appends one meeting's audio to `folder/audio.raw`; see the module docstring.

    `append` is called from the capture thread and only copies the block into the
    kernel (one write); fsync runs on the spool's own thread, so a slow disk never
    stalls capture.
    """

    def __init__(self, folder: Path, channels: tuple[str, ...], sample_rate: int, fd: int, meta: dict,
                 sync_every_s: float = SYNC_EVERY_S) -> None:
        self.folder = folder
        self.channels = channels
        self.sample_rate = sample_rate
        self._fd: int | None = fd
        self._meta = meta
        self._frame_bytes = 2 * len(channels)
        self._frames = 0  # frames written (in the kernel)
        self._synced = 0  # frames known to be on disk
        self._sync_every_s = sync_every_s
        self._failed: str | None = None  # the first error: every later append repeats it
        self._closed = False
        self._lock = threading.Lock()  # guards the fd against close while the sync thread uses it
        self._wake = threading.Event()
        self._stopping = False
        self.syncs = 0  # fsyncs done (tests and benchmarks read it)
        self._syncer = threading.Thread(target=self._sync_loop, name="notetaker-spool-sync", daemon=True)
        self._syncer.start()

    # -- creating ---------------------------------------------------------------------
    @classmethod
    def create(cls, folder: str | os.PathLike[str], channels: Sequence[str] = ("mic",),
               sample_rate: int = 16000, *, sync_every_s: float = SYNC_EVERY_S) -> Spool:
        """A new, empty spool in `folder` (created 0700 with its parents). A folder left
        there by an older session with the same id (the database was reset) is moved aside,
        never mixed in."""
        folder = Path(folder)
        channels = tuple(str(c) for c in channels)
        if channels not in CHANNEL_LAYOUTS:
            raise ValueError(f"a spool's channels are one of {sorted(CHANNEL_LAYOUTS)}, not {channels}")
        if sample_rate <= 0:
            raise ValueError(f"sample rate must be positive, not {sample_rate}")
        try:
            folder.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if folder.exists() and any(folder.iterdir()):
                stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
                folder.rename(folder.with_name(f"{folder.name}.old-{stamp}-{os.getpid()}"))
            folder.mkdir(mode=0o700, exist_ok=True)
            meta = {"format": FORMAT, "sample_format": SAMPLE_FORMAT, "channels": list(channels),
                    "sample_rate": int(sample_rate), "created_at": _now_iso(), "audio": "raw"}
            _write_meta(folder, meta)
            fd = os.open(folder / RAW, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0), 0o600)
            _fsync_dir(folder)
        except OSError as e:
            raise SpoolError(f"cannot write the audio spool in {folder}: {_why(e)}") from None
        return cls(folder, channels, int(sample_rate), fd, meta, sync_every_s)

    # -- writing ----------------------------------------------------------------------
    @property
    def seconds(self) -> float:
        """Audio seconds written so far."""
        return self._frames / self.sample_rate

    @property
    def synced_seconds(self) -> float:
        """Audio seconds known to be on disk (fsynced)."""
        return self._synced / self.sample_rate

    @property
    def raw_path(self) -> Path:
        return self.folder / RAW

    def still_there(self) -> bool:
        """Whether the file this spool writes is still the one at its path (a data home
        removed or replaced while recording leaves the writes going to a deleted file)."""
        with self._lock:
            if self._fd is None:
                return True
            try:
                mine, there = os.fstat(self._fd), os.stat(self.folder / RAW)
            except OSError:
                return False
        return (mine.st_dev, mine.st_ino) == (there.st_dev, there.st_ino)

    def append(self, block: np.ndarray) -> None:
        """Write a (n,) or (n, k) float32 block; SpoolError if it cannot be written (the
        samples written before stay readable)."""
        if self._failed:
            raise SpoolError(self._failed)
        if self._closed:
            raise SpoolError(f"the audio spool in {self.folder} is closed")
        pcm = to_pcm16(block, len(self.channels))
        if not len(pcm):
            return
        view = memoryview(pcm.tobytes())
        written = 0
        try:
            while written < len(view):
                n = os.write(self._fd, view[written:])
                if n <= 0:
                    raise OSError(28, os.strerror(28))
                written += n
        except OSError as e:
            self._frames += written // self._frame_bytes  # a torn last frame is ignored by readers
            self._fail(e)
        self._frames += len(pcm)
        if self._frames - self._synced >= self.sample_rate:
            self._wake.set()  # a second of audio unsynced: sync now, not at the next tick

    def _fail(self, e: OSError) -> None:
        self._failed = f"cannot write the audio spool in {self.folder}: {_why(e)}"
        raise SpoolError(self._failed) from None

    def sync(self) -> None:
        """fsync what has been written (any thread)."""
        with self._lock:
            if self._fd is None:
                return
            frames = self._frames
            if frames == self._synced:
                return
            try:
                os.fsync(self._fd)
            except OSError as e:
                if not self._failed:
                    self._failed = f"cannot write the audio spool in {self.folder}: {_why(e)}"
                return
            self._synced = max(self._synced, frames)
            self.syncs += 1

    def _sync_loop(self) -> None:
        while not self._stopping:
            self._wake.wait(self._sync_every_s)
            self._wake.clear()
            self.sync()

    # -- ending -----------------------------------------------------------------------
    def close(self, compact: bool = True, keep: bool = True) -> Path | None:
        """End the spool. keep and compact: the audio becomes `audio.flac` (verified before the
        raw file goes); keep only: the raw file stays; not keep: the audio is deleted and
        spool.json says so. Returns the audio file kept, or None. Closing twice is harmless."""
        if not self._closed:
            self._closed = True
            self._stopping = True
            self._wake.set()
            self._syncer.join(timeout=10)
            self.sync()
            with self._lock:
                fd, self._fd = self._fd, None
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        return finish_spool(self.folder, compact=compact, keep=keep)

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(compact=False, keep=True)


def finish_spool(folder: str | os.PathLike[str], compact: bool = True, keep: bool = True) -> Path | None:
    """What `Spool.close` does once the file is closed; also for a spool a crashed process
    left behind (recovery). Idempotent."""
    folder = Path(folder)
    meta = _read_meta(folder)
    raw, flac = folder / RAW, folder / FLAC
    try:
        if not keep:
            seconds = _frames_on_disk(folder, meta) / int(meta["sample_rate"])
            for path in (raw, flac, folder / (FLAC + ".tmp")):
                path.unlink(missing_ok=True)
            if meta.get("audio") != "dropped":
                meta.update(audio="dropped", seconds=round(seconds, 3), dropped_at=_now_iso())
                _write_meta(folder, meta)
            return None
        if flac.exists():  # compacted before (perhaps killed before the raw file went)
            if meta.get("audio") != "flac":
                meta.update(audio="flac", seconds=round(_flac_frames(flac) / int(meta["sample_rate"]), 3))
                _write_meta(folder, meta)
            raw.unlink(missing_ok=True)
            return flac
        if not raw.exists():
            raise SpoolError(f"no audio in the spool {folder}" + (
                " (it was dropped after transcription)" if meta.get("audio") == "dropped" else ""))
        if not compact:
            return raw
        frames = _compact(folder, meta)
        meta.update(audio="flac", seconds=round(frames / int(meta["sample_rate"]), 3))
        _write_meta(folder, meta)
        raw.unlink()
        _fsync_dir(folder)
        return flac
    except OSError as e:
        raise SpoolError(f"cannot finish the audio spool in {folder}: {_why(e)}") from None


def _frames_on_disk(folder: Path, meta: dict) -> int:
    k = len(meta["channels"])
    if (folder / FLAC).exists():
        try:
            return _flac_frames(folder / FLAC)
        except (OSError, SpoolError):
            pass
    try:
        return (folder / RAW).stat().st_size // (2 * k)
    except FileNotFoundError:
        return 0


def _flac_frames(path: Path) -> int:
    import soundfile as sf

    try:
        return int(sf.info(str(path)).frames)
    except RuntimeError as e:  # libsndfile's error for a bad file
        raise SpoolError(f"{path} is not readable FLAC: {e}") from None


def _compact(folder: Path, meta: dict) -> int:
    """Raw → FLAC in blocks (never all in memory); verified sample for sample before the
    caller deletes the raw file. Returns the frames written."""
    import soundfile as sf

    raw, flac, tmp = folder / RAW, folder / FLAC, folder / (FLAC + ".tmp")
    k, rate = len(meta["channels"]), int(meta["sample_rate"])
    frame_bytes = 2 * k
    frames = raw.stat().st_size // frame_bytes  # a torn last frame (a crash mid-write) is dropped
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))  # private before it holds audio
    try:
        with open(raw, "rb") as src:
            try:  # by path, not a Python file object: libsndfile's own I/O reports a full disk
                with sf.SoundFile(str(tmp), "w", samplerate=rate, channels=k, format="FLAC",
                                  subtype="PCM_16") as out:
                    left = frames
                    while left:
                        n = min(left, COMPACT_BLOCK)
                        out.write(_raw_block(src.read(n * frame_bytes), k))
                        left -= n
            except (RuntimeError, AssertionError) as e:
                raise _encoder_error(tmp, e) from None
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        _verify(tmp, raw, frames, k, rate)
        os.replace(tmp, flac)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(folder)
    return frames


def _encoder_error(tmp: Path, e: BaseException) -> OSError:
    """libsndfile says little ("Unspecified internal error"): a full disk is found by asking the
    file system for room."""
    try:
        st = os.statvfs(tmp.parent)
        if st.f_bavail * st.f_frsize < COMPACT_BLOCK * 4:
            return OSError(28, os.strerror(28))
    except (OSError, AttributeError):
        pass
    return OSError(5, f"FLAC encoder: {e or type(e).__name__}")


def _raw_block(data: bytes, k: int) -> np.ndarray:
    n = len(data) // (2 * k)
    return np.frombuffer(data, dtype="<i2", count=n * k).reshape(n, k)


def _verify(flac: Path, raw: Path, frames: int, k: int, rate: int) -> None:
    import soundfile as sf

    try:
        with sf.SoundFile(str(flac)) as f, open(raw, "rb") as src:
            if f.frames != frames or f.channels != k or f.samplerate != rate:
                raise OSError(5, f"FLAC check failed: {f.frames} frames, {f.channels} channels at {f.samplerate} Hz,"
                                 f" expected {frames}, {k} at {rate}")
            left = frames
            while left:
                n = min(left, COMPACT_BLOCK)
                want = _raw_block(src.read(n * 2 * k), k)
                got = f.read(n, dtype="int16", always_2d=True)
                if got.shape != want.shape or not np.array_equal(got, want):
                    raise OSError(5, "FLAC check failed: the samples differ from the raw spool")
                left -= n
    except (RuntimeError, sf.LibsndfileError) as e:
        raise OSError(5, f"FLAC check failed: {e}") from None


# ---------------------------------------------------------------- reading


class SpoolReader:
    """A spool's audio, raw (a meeting still running or interrupted) or compacted FLAC.

    Times are seconds from the spool's start, which is the meeting's own timeline."""

    def __init__(self, folder: Path, meta: dict, kind: str, frames: int) -> None:
        self.folder = folder
        self.meta = meta
        self.kind = kind  # "raw" or "flac"
        self.channels: tuple[str, ...] = tuple(meta["channels"])
        self.sample_rate = int(meta["sample_rate"])
        self.frames = frames

    @property
    def path(self) -> Path:
        return self.folder / (RAW if self.kind == "raw" else FLAC)

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate

    def _span(self, start_s: float, end_s: float | None) -> tuple[int, int]:
        a = min(self.frames, max(0, int(round(start_s * self.sample_rate))))
        b = self.frames if end_s is None else min(self.frames, max(a, int(round(end_s * self.sample_rate))))
        return a, b

    def read(self, start_s: float = 0.0, end_s: float | None = None) -> np.ndarray:
        """float32 audio in [start_s, end_s): (n,) for one channel, (n, k) for more."""
        a, b = self._span(start_s, end_s)
        k = len(self.channels)
        try:
            if self.kind == "raw":
                with open(self.path, "rb") as f:
                    f.seek(a * 2 * k)
                    pcm = _raw_block(f.read((b - a) * 2 * k), k)
            else:
                import soundfile as sf

                with sf.SoundFile(str(self.path)) as f:
                    f.seek(a)
                    pcm = f.read(b - a, dtype="int16", always_2d=True)
        except OSError as e:
            raise SpoolError(f"cannot read the audio spool in {self.folder}: {_why(e)}") from None
        except RuntimeError as e:
            raise SpoolError(f"cannot read {self.path}: {e}") from None
        out = pcm.astype(np.float32) / np.float32(_SCALE)
        return out[:, 0] if k == 1 else out

    def blocks(self, start_s: float = 0.0, end_s: float | None = None, block_s: float = 30.0) -> Iterator[np.ndarray]:
        """`read` in pieces of at most `block_s` seconds, for long stretches."""
        a, b = self._span(start_s, end_s)
        step = max(1, int(block_s * self.sample_rate))
        for s in range(a, b, step):
            yield self.read(s / self.sample_rate, min(b, s + step) / self.sample_rate)


def park_finals(folder: Path, finals: Iterable[tuple[str | None, float, float, str, tuple[str, ...]]]) -> Path:
    """Append finals the store would not take, as (channel, start, end, text, flags), to
    the meeting's WAITING file beside its audio, synced; OSError when it cannot."""
    folder = Path(folder)
    path = folder / WAITING
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        for channel, start, end, text, flags in finals:
            f.write(json.dumps({"text": text, "start": start, "end": end, "channel": channel,
                                "flags": list(flags)}, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    return path


def parked_finals(folder: Path) -> list[tuple[str | None, float, float, str, tuple[str, ...]]]:
    """The finals `park_finals` wrote, in order; a line cut by a crash is left out."""
    path = Path(folder) / WAITING
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            f = json.loads(line)
            out.append((f.get("channel"), float(f["start"]), float(f["end"]), str(f["text"]),
                        tuple(f.get("flags") or ())))
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
    return out


def open_spool(folder: str | os.PathLike[str]) -> SpoolReader:
    """The spool in `folder`; SpoolError (one line) if there is none or its audio is gone."""
    folder = Path(folder)
    meta = _read_meta(folder)
    k = len(meta["channels"])
    flac, raw = folder / FLAC, folder / RAW
    if flac.exists():  # renamed into place only once verified: complete whenever it exists
        import soundfile as sf

        try:
            info = sf.info(str(flac))
        except RuntimeError as e:
            if not raw.exists():
                raise SpoolError(f"{flac} is not readable FLAC: {e}") from None
        else:
            if info.channels != k or info.samplerate != int(meta["sample_rate"]):
                raise SpoolError(f"{flac} does not match {folder / META} (channels or rate)")
            return SpoolReader(folder, meta, "flac", int(info.frames))
    try:
        size = raw.stat().st_size
    except FileNotFoundError:
        dropped = meta.get("audio") == "dropped"
        raise SpoolError(f"no audio in the spool {folder}"
                         + (" (it was dropped after transcription; keep_audio is off)" if dropped else "")) from None
    except OSError as e:
        raise SpoolError(f"cannot read the audio spool in {folder}: {_why(e)}") from None
    return SpoolReader(folder, meta, "raw", size // (2 * k))  # a torn last frame is left out
