"""The audio spool: raw int16 on disk as it is captured, synced at least every second,
compacted to verified FLAC on a clean stop, dropped on request; any OSError is a one-line
SpoolError and what was written before it stays readable."""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import subprocess
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from notetaker import spool as spool_mod
from notetaker.spool import FLAC, META, RAW, Spool, SpoolError, finish_spool, open_spool, spool_folder, to_pcm16

RATE = 16_000


def noise(seconds: float, channels: int = 1, seed: int = 0, level: float = 0.3) -> np.ndarray:
    x = np.random.default_rng(seed).uniform(-level, level, (int(seconds * RATE), channels)).astype(np.float32)
    return x[:, 0] if channels == 1 else x


def as_stored(x: np.ndarray) -> np.ndarray:
    """What reading back should give: the float → int16 → float round trip."""
    return to_pcm16(x, 1 if x.ndim == 1 else x.shape[1]).astype(np.float32).reshape(x.shape) / 32768


def append_in_blocks(sp: Spool, x: np.ndarray, block: int = 1600) -> None:
    for i in range(0, len(x), block):
        sp.append(x[i:i + block])


# -- writing and reading ---------------------------------------------------------------


def test_create_writes_private_folder_and_header(tmp_path):
    folder = spool_folder(tmp_path / "sessions", 7)
    assert folder == tmp_path / "sessions" / "7"
    sp = Spool.create(folder, channels=("mic", "system"))
    try:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert stat.S_IMODE((tmp_path / "sessions").stat().st_mode) == 0o700
        for name in (META, RAW):
            assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
        meta = json.loads((folder / META).read_text())
        assert meta["format"] == 1 and meta["channels"] == ["mic", "system"] and meta["sample_rate"] == RATE
        assert meta["sample_format"] == "s16le" and meta["audio"] == "raw" and meta["created_at"]
    finally:
        sp.close(compact=False)


def test_mono_round_trip_while_open_and_slices(tmp_path):
    x = noise(3.0)
    sp = Spool.create(tmp_path / "1", channels=("mono",))
    append_in_blocks(sp, x)
    assert sp.seconds == pytest.approx(3.0)
    # Readable at once, before any close: every append is in the kernel already.
    r = open_spool(tmp_path / "1")
    assert r.kind == "raw" and r.channels == ("mono",) and r.sample_rate == RATE
    assert r.seconds == pytest.approx(3.0)
    got = r.read()
    assert got.dtype == np.float32 and got.shape == (len(x),)
    np.testing.assert_array_equal(got, as_stored(x))
    np.testing.assert_array_equal(r.read(1.0, 1.5), as_stored(x)[16000:24000])
    assert r.read(2.9, 99).shape == (1600,) and r.read(5.0).shape == (0,)
    assert np.abs(got - x).max() <= 1 / 32768
    sp.close(compact=False)


def test_16_bit_audio_round_trips_exactly(tmp_path):
    pcm = np.random.default_rng(1).integers(-32768, 32767, 8000, dtype=np.int16)
    x = pcm.astype(np.float32) / 32768  # what soundfile gives for a 16-bit file
    sp = Spool.create(tmp_path / "1", channels=("mono",))
    sp.append(x)
    path = sp.close()
    assert path == tmp_path / "1" / FLAC
    np.testing.assert_array_equal(open_spool(tmp_path / "1").read(), x)


def test_stereo_interleaved_and_blocks(tmp_path):
    x = noise(2.0, channels=2)
    sp = Spool.create(tmp_path / "2", channels=("mic", "system"))
    append_in_blocks(sp, x, block=1000)
    sp.close(compact=False)
    r = open_spool(tmp_path / "2")
    raw = np.fromfile(tmp_path / "2" / RAW, dtype="<i2").reshape(-1, 2)
    np.testing.assert_array_equal(raw[:, 1], to_pcm16(x, 2)[:, 1])  # interleaved L R L R
    assert r.read().shape == (32000, 2)
    pieces = list(r.blocks(0.5, None, block_s=0.6))
    assert [len(p) for p in pieces] == [9600, 9600, 4800]
    np.testing.assert_array_equal(np.concatenate(pieces), as_stored(x)[8000:])


def test_clips_and_rejects_nothing_odd(tmp_path):
    sp = Spool.create(tmp_path / "1", channels=("mono",))
    sp.append(np.array([2.0, -2.0, np.nan, np.inf, -np.inf, 0.5], dtype=np.float32))
    sp.append(np.zeros(0, dtype=np.float32))  # an empty block is fine
    with pytest.raises(ValueError):
        sp.append(np.zeros((10, 2), dtype=np.float32))  # wrong channel count: a programming error
    sp.close(compact=False)
    raw = np.fromfile(tmp_path / "1" / RAW, dtype="<i2")
    assert raw.tolist() == [32767, -32768, 0, 32767, -32768, 16384]


# -- ending: compact, keep raw, drop ---------------------------------------------------


def test_close_compacts_to_verified_flac_and_removes_raw(tmp_path, monkeypatch):
    monkeypatch.setattr(spool_mod, "COMPACT_BLOCK", 7000)  # several blocks: never all in memory
    x = noise(5.0, channels=2, seed=3)
    sp = Spool.create(tmp_path / "3", channels=("mic", "system"))
    append_in_blocks(sp, x)
    assert sp.close(compact=True, keep=True) == tmp_path / "3" / FLAC
    assert sorted(os.listdir(tmp_path / "3")) == [FLAC, META]
    assert stat.S_IMODE((tmp_path / "3" / FLAC).stat().st_mode) == 0o600
    meta = json.loads((tmp_path / "3" / META).read_text())
    assert meta["audio"] == "flac" and meta["seconds"] == 5.0
    r = open_spool(tmp_path / "3")
    assert r.kind == "flac" and r.seconds == 5.0 and r.channels == ("mic", "system")
    np.testing.assert_array_equal(r.read(), as_stored(x))
    np.testing.assert_array_equal(r.read(4.0, 4.25), as_stored(x)[64000:68000])
    assert sp.close() == tmp_path / "3" / FLAC  # twice: harmless


def test_failed_verification_keeps_the_raw_file(tmp_path, monkeypatch):
    sp = Spool.create(tmp_path / "1", channels=("mono",))
    sp.append(noise(1.0))

    def broken(*a, **k):
        raise OSError(errno.EIO, "FLAC check failed: the samples differ from the raw spool")

    monkeypatch.setattr(spool_mod, "_verify", broken)
    with pytest.raises(SpoolError, match="samples differ"):
        sp.close()
    assert sorted(os.listdir(tmp_path / "1")) == [RAW, META]  # no half FLAC, raw intact
    assert open_spool(tmp_path / "1").seconds == 1.0


def test_close_without_compacting_keeps_raw(tmp_path):
    sp = Spool.create(tmp_path / "1", channels=("mono",))
    sp.append(noise(1.0))
    assert sp.close(compact=False) == tmp_path / "1" / RAW
    assert open_spool(tmp_path / "1").kind == "raw"
    with pytest.raises(SpoolError, match="closed"):
        sp.append(noise(0.1))


def test_drop_deletes_audio_and_says_so(tmp_path):
    sp = Spool.create(tmp_path / "1", channels=("mono",))
    sp.append(noise(2.0))
    assert sp.close(compact=True, keep=False) is None
    assert os.listdir(tmp_path / "1") == [META]
    meta = json.loads((tmp_path / "1" / META).read_text())
    assert meta["audio"] == "dropped" and meta["seconds"] == 2.0 and meta["dropped_at"]
    with pytest.raises(SpoolError, match="dropped after transcription"):
        open_spool(tmp_path / "1")


def test_finish_spool_after_a_crash_mid_compaction(tmp_path):
    """Killed after the FLAC was renamed into place but before the raw file went: the FLAC
    wins and finishing again completes the job."""
    sp = Spool.create(tmp_path / "1", channels=("mono",))
    x = noise(1.0)
    sp.append(x)
    sp.close(compact=False)
    shutil.copy(tmp_path / "1" / RAW, tmp_path / "raw.bak")
    finish_spool(tmp_path / "1")
    shutil.copy(tmp_path / "raw.bak", tmp_path / "1" / RAW)  # as if the unlink never happened
    meta = json.loads((tmp_path / "1" / META).read_text())
    (tmp_path / "1" / META).write_text(json.dumps({**meta, "audio": "raw"}))
    assert open_spool(tmp_path / "1").kind == "flac"
    assert finish_spool(tmp_path / "1") == tmp_path / "1" / FLAC
    assert sorted(os.listdir(tmp_path / "1")) == [FLAC, META]


def test_torn_last_frame_is_ignored(tmp_path):
    """A process killed in the middle of a write leaves part of a frame: readers and the
    compactor use whole frames only."""
    sp = Spool.create(tmp_path / "1", channels=("mic", "system"))
    x = noise(0.5, channels=2)
    sp.append(x)
    sp.close(compact=False)
    with open(tmp_path / "1" / RAW, "ab") as f:
        f.write(b"\x01\x02\x03")  # one and a half samples of a frame
    r = open_spool(tmp_path / "1")
    assert r.frames == 8000
    np.testing.assert_array_equal(r.read(), as_stored(x))
    finish_spool(tmp_path / "1")
    np.testing.assert_array_equal(open_spool(tmp_path / "1").read(), as_stored(x))


def test_an_old_folder_with_the_same_id_is_moved_aside(tmp_path):
    """Session ids can be reused (a reset database): an old spool is never appended to."""
    old = Spool.create(tmp_path / "s" / "1", channels=("mono",))
    old.append(noise(1.0))
    old.close(compact=False)
    new = Spool.create(tmp_path / "s" / "1", channels=("mono",))
    new.append(noise(0.25))
    new.close(compact=False)
    assert open_spool(tmp_path / "s" / "1").seconds == 0.25
    aside = [p for p in (tmp_path / "s").iterdir() if p.name.startswith("1.old-")]
    assert len(aside) == 1 and open_spool(aside[0]).seconds == 1.0


@pytest.mark.parametrize("meta, message", [
    (None, "no audio spool"),
    ("{not json", "damaged"),
    (json.dumps({"format": 1}), "damaged"),
    (json.dumps({"format": 99, "channels": ["mono"], "sample_rate": 16000}), "format 99"),
])
def test_bad_or_missing_header_is_one_line(tmp_path, meta, message):
    (tmp_path / "1").mkdir()
    if meta is not None:
        (tmp_path / "1" / META).write_text(meta)
    with pytest.raises(SpoolError, match=message) as e:
        open_spool(tmp_path / "1")
    assert "\n" not in str(e.value)


# -- syncing -----------------------------------------------------------------------------


def test_synced_at_least_every_second_of_wall_time(tmp_path, monkeypatch):
    calls: list[float] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(time.monotonic()), real_fsync(fd))[1])
    sp = Spool.create(tmp_path / "1", channels=("mono",))
    calls.clear()
    start = time.monotonic()
    block = noise(0.02)  # slower than real time: the second-of-audio rule never fires
    lags = []
    while time.monotonic() - start < 3.2:
        sp.append(block)
        lags.append(sp.seconds - sp.synced_seconds)
        time.sleep(0.05)
    assert len(calls) >= 2
    assert max(b - a for a, b in zip([start] + calls, calls)) < 1.5
    assert max(lags) <= 0.02 * (1.5 / 0.05) + 0.02  # at most ~1.5 s of appends unsynced
    time.sleep(1.3)  # appends stop: what is left is synced within a second
    assert sp.synced_seconds == sp.seconds
    sp.close(compact=False)


def test_a_second_of_audio_is_synced_without_waiting_for_the_clock(tmp_path):
    sp = Spool.create(tmp_path / "1", channels=("mono",), sync_every_s=60.0)  # the clock never ticks
    sp.append(noise(0.5))
    time.sleep(0.2)
    assert sp.synced_seconds == 0.0
    sp.append(noise(0.6))  # 1.1 s unsynced: the sync thread is woken
    deadline = time.monotonic() + 2
    while sp.synced_seconds < 1.1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sp.synced_seconds == pytest.approx(1.1)
    sp.close(compact=False)


def test_append_is_cheap(tmp_path):
    sp = Spool.create(tmp_path / "1", channels=("mono",))
    block = noise(0.1)
    t = time.perf_counter()
    for _ in range(600):  # a minute of audio
        sp.append(block)
    per_block = (time.perf_counter() - t) / 600
    sp.close(compact=False)
    assert per_block < 0.002, f"{per_block * 1e6:.0f} µs per 100 ms block"


# -- disk full, unwritable home -------------------------------------------------------------


class TinyFS:
    """A small tmpfs mounted for the test (root only), to fill up for real."""

    def __init__(self, path: Path, size_kb: int, read_only: bool = False):
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        opts = f"size={size_kb}k,mode=0700" + (",ro" if read_only else "")
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, f"nt-{uuid.uuid4().hex[:6]}", str(path)],
                           capture_output=True, text=True)
        self.mounted = p.returncode == 0

    def umount(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True)


@pytest.fixture
def tiny_fs(tmp_path):
    made: list[TinyFS] = []

    def make(size_kb: int, read_only: bool = False) -> TinyFS | None:
        if os.geteuid() != 0 or not shutil.which("mount"):
            return None
        fs = TinyFS(tmp_path / f"fs{len(made)}", size_kb, read_only)
        made.append(fs)
        return fs if fs.mounted else None

    yield make
    for fs in made:
        fs.umount()


class FullDisk:
    """The fallback where no tmpfs can be mounted: os.write gives out after `room` bytes to files in
    `folder`, as a full disk does (a short write, then ENOSPC)."""

    def __init__(self, monkeypatch, room: int):
        self.room = room
        real_write = os.write

        def write(fd, data):
            if fd <= 2:
                return real_write(fd, data)
            if self.room <= 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            n = real_write(fd, bytes(data)[: self.room])
            self.room -= n
            return n

        monkeypatch.setattr(os, "write", write)


def test_disk_full_stops_with_one_line_and_keeps_what_was_written(tmp_path, tiny_fs, monkeypatch):
    fs = tiny_fs(256)
    base = fs.path if fs else tmp_path
    sp = Spool.create(base / "sessions" / "1", channels=("mono",))
    if fs is None:
        FullDisk(monkeypatch, room=200_000 + 1001)  # an odd byte count: a torn last sample
    x = noise(30.0)  # 960 kB: more than there is room for
    appended = 0
    with pytest.raises(SpoolError) as e:
        for i in range(0, len(x), 1600):
            sp.append(x[i:i + 1600])
            appended = i + 1600
    message = str(e.value)
    assert message.startswith(f"cannot write the audio spool in {base / 'sessions' / '1'}: ")
    assert "No space left on device" in message and "\n" not in message
    with pytest.raises(SpoolError, match="No space left"):
        sp.append(x[:1600])  # every later append says the same
    assert appended > 0
    r = open_spool(base / "sessions" / "1")
    assert appended <= r.frames < appended + 1600
    np.testing.assert_array_equal(r.read(), as_stored(x)[: r.frames])
    if fs is None:
        return  # the fallback fakes os.write only; the FLAC encoder writes another way
    # No room to compact either: the raw spool stays, readable; nothing half-written is left.
    with pytest.raises(SpoolError, match="audio spool"):
        sp.close(compact=True)
    assert sorted(os.listdir(base / "sessions" / "1")) == [RAW, META]
    np.testing.assert_array_equal(open_spool(base / "sessions" / "1").read(), as_stored(x)[: r.frames])


def test_disk_full_with_a_real_tmpfs(tiny_fs):
    """The same on a real 128 kB filesystem (skipped where tmpfs cannot be mounted)."""
    fs = tiny_fs(128)
    if fs is None:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    sp = Spool.create(fs.path / "1", channels=("mic", "system"))
    with pytest.raises(SpoolError, match="No space left on device"):
        for _ in range(100):
            sp.append(noise(0.1, channels=2))
    written = open_spool(fs.path / "1").read()
    assert written.shape[1] == 2 and 2 * written.size <= 128 * 1024


def test_unwritable_home_is_one_line(tmp_path, tiny_fs, monkeypatch):
    fs = tiny_fs(64, read_only=True)
    if fs is not None:
        target = fs.path / "sessions" / "1"
        why = "Read-only file system"
    else:  # running as a user, or no mount: a folder we may not write (not for root, hence the tmpfs)
        ro = tmp_path / "ro"
        ro.mkdir()

        def denied(*a, **k):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

        monkeypatch.setattr(Path, "mkdir", denied)
        target = ro / "sessions" / "1"
        why = os.strerror(errno.EACCES)
    with pytest.raises(SpoolError) as e:
        Spool.create(target)
    assert str(e.value) == f"cannot write the audio spool in {target}: {why}"


def test_home_removed_mid_meeting(tmp_path):
    """The data home is deleted while recording: the open file still takes audio (POSIX), and
    compacting it then fails with one line instead of a traceback."""
    sp = Spool.create(tmp_path / "home" / "sessions" / "1", channels=("mono",))
    sp.append(noise(0.5))
    shutil.rmtree(tmp_path / "home")
    sp.append(noise(0.5))
    with pytest.raises(SpoolError) as e:
        sp.close()
    assert "\n" not in str(e.value) and str(tmp_path / "home") in str(e.value)


def test_sync_thread_does_not_outlive_close(tmp_path):
    sp = Spool.create(tmp_path / "1", channels=("mono",))
    sp.append(noise(0.1))
    sp.close()
    assert not sp._syncer.is_alive()


# -- through the CLI ------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_transcribe_stops_capture_when_the_spool_disk_is_full(cli, tmp_path, tiny_fs):
    """`notetaker transcribe` with the spool folder on a 256 kB file system: capture stops with
    one clear line, the finals of what was captured are saved, the spool stays readable and
    holds exactly the start of the file, and `recover` still completes the meeting (saying
    the spool could not be compacted)."""
    import soundfile as sf

    from storage import SessionStore

    from .spooled import write_clip

    cli.home.mkdir(mode=0o700)
    fs = TinyFS(cli.home / "sessions", 256)
    if not fs.mounted:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        clip, _ = write_clip(tmp_path / "meeting.wav", ["es01", "es02", "es03", "es04", "es05", "es06"])
        r = cli("transcribe", clip)
        folder = cli.home / "sessions" / "1"
        assert r.rc not in (0, 1) and "internal error" not in r.err, r.err
        line = f"capture stopped: cannot write the audio spool in {folder}: No space left on device"
        assert line in r.err, r.err
        reader = open_spool(folder)
        assert reader.kind == "raw" and 4.0 < reader.seconds < 8.5
        audio, _ = sf.read(clip, dtype="float32")
        np.testing.assert_array_equal(reader.read(), audio[: reader.frames])
        with SessionStore.open(cli.db_path) as store:
            s = store.get_session(1)
            segs = store.segments(1)
        assert s.status == "interrupted" and segs and "morning" in segs[0].text.lower()
        assert segs[-1].end_s <= reader.seconds + 0.5
        r = cli("recover", "1")
        assert r.rc == 0, r.err
        assert "cannot finish the audio spool" in r.err and "the raw audio stays" in r.err
        with SessionStore.open(cli.db_path) as store:
            assert store.get_session(1).status == "complete"
        np.testing.assert_array_equal(open_spool(folder).read(), audio[: reader.frames])
    finally:
        fs.umount()
