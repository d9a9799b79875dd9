"""Every bad file a user can hand us becomes one AudioError line that names it."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from notetaker.audio import AudioError, FileSource, open_audio, read_audio

from .conftest import sox, synth

# Exception class names ("LibsndfileError", "RuntimeError", ...) must never reach the user.
CLASS_NAME = re.compile(r"\b\w*(Error|Exception)\b|Traceback|soundfile|cffi")

PNG_HEADER = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000")


def make_wav(path: Path) -> Path:
    return synth(path, rate=16000, channels=1, seconds=0.5, tones=[(440.0, 0.5)], encoding="s16")


def make_missing(p: Path) -> None:
    pass


def make_directory(p: Path) -> None:
    p.mkdir()


def make_empty(p: Path) -> None:
    p.write_bytes(b"")


def make_zero_samples(p: Path) -> None:
    sox("-n", "-r", "16000", "-c", "1", "-b", "16", p, "trim", "0", "0")
    assert p.stat().st_size > 0


def make_truncated_header(p: Path) -> None:
    whole = make_wav(p.with_name("whole.wav"))
    p.write_bytes(whole.read_bytes()[:20])


def make_text(p: Path) -> None:
    p.write_text("Meeting notes\n- ship it on Friday\n- café ☕ at ten\n" * 20, encoding="utf-8")


def make_random(p: Path) -> None:
    p.write_bytes(np.random.default_rng(7).bytes(20_000))


def make_png(p: Path) -> None:
    p.write_bytes(PNG_HEADER + bytes(200))


def make_m4a(p: Path) -> None:
    p.write_bytes(b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00" + bytes(500))


BAD_FILES: list[tuple[str, str, Callable[[Path], None], str]] = [
    # (id, file name, how to make it, what the message must say)
    ("missing", "nope.wav", make_missing, "no such file"),
    ("directory", "folder.wav", make_directory, "is a directory"),
    ("empty", "empty.wav", make_empty, "empty"),
    ("zero-samples", "silence.wav", make_zero_samples, "no audio samples"),
    ("truncated-header", "cut.wav", make_truncated_header, "damaged"),
    ("text-as-wav", "notes.wav", make_text, "looks like text"),
    ("text-as-mp3", "notes.mp3", make_text, "looks like text"),
    ("random-as-wav", "noise.wav", make_random, "not an audio file"),
    ("random-as-mp3", "noise.mp3", make_random, "not an audio file"),
    ("random-as-flac", "noise.flac", make_random, "not an audio file"),
    ("png-as-wav", "picture.wav", make_png, "PNG image"),
    ("m4a", "zoom recording.m4a", make_m4a, "AAC audio is not supported"),
]


def assert_user_facing(err: AudioError, name: str) -> None:
    message = str(err)
    assert name in message
    assert "\n" not in message
    assert not CLASS_NAME.search(message.replace(name, "")), message
    # Nothing from libsndfile chained on: printed, it would show as a second traceback.
    assert err.__cause__ is None and (err.__context__ is None or err.__suppress_context__)


@pytest.mark.parametrize(("name", "make", "says"), [b[1:] for b in BAD_FILES], ids=[b[0] for b in BAD_FILES])
def test_bad_file_is_one_clear_line(tmp_path: Path, name: str, make: Callable[[Path], None], says: str) -> None:
    path = tmp_path / name
    make(path)
    with pytest.raises(AudioError) as err:
        open_audio(path)
    assert_user_facing(err.value, name)
    assert says in str(err.value)
    # Every entry point fails the same way, before any work.
    with pytest.raises(AudioError):
        read_audio(path)
    with pytest.raises(AudioError):
        FileSource.open(path)


@contextmanager
def unprivileged() -> Iterator[None]:
    """Root reads any file whatever its mode; drop to `nobody` for as long as the check lasts."""
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)


def test_unreadable_file(tmp_path: Path) -> None:
    # A folder of its own outside pytest's root-only tmp tree, so `nobody` can reach the file.
    folder = Path(tempfile.mkdtemp(prefix="notetaker-perm-"))
    try:
        folder.chmod(0o755)
        path = make_wav(folder / "locked.wav")
        path.chmod(0)
        with unprivileged(), pytest.raises(AudioError) as err:
            open_audio(path)
        assert_user_facing(err.value, "locked.wav")
        assert "permission denied" in str(err.value)
    finally:
        shutil.rmtree(folder)


def test_names_with_spaces_and_unicode(tmp_path: Path) -> None:
    folder = tmp_path / "Réunions 2024 — équipe"
    folder.mkdir()
    path = make_wav(folder / "stand-up 会议 ☕.wav")
    with open_audio(path) as audio:
        assert audio.path == path
        assert audio.duration_s == pytest.approx(0.5)
    assert len(read_audio(str(path))) == 8000

    with pytest.raises(AudioError) as err:
        open_audio(folder / "missing 会议.wav")
    assert_user_facing(err.value, "missing 会议.wav")
