"""Damaged audio files, as users meet them, through the real `notetaker transcribe`.

A meeting is never lost to a damaged file: what decodes is transcribed, damage skipped
is silence in its place, and what could not be read is said once on stderr and kept as a
`note` mark on the meeting. A file that is no recording at all is one line, exit 2.
Before this, a FLAC or MP3 with 4 KB of junk a fifth of the way in was transcribed only
up to the junk (8.5 s of 44.8 s here; the MP3 9 s, with libmpg123's "Note: Illegal
Audio-MPEG-Header" lines on stderr), the meeting `complete` with nothing in it to say so.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from notetaker.audio import read_audio

from .conftest import CLI, Run

# Thirteen sentences, about 45 s from espeak-ng: the damage lands in the second or third.
SENTENCES = [
    "The quarterly budget review starts now.",
    "We agreed to ship the new release on Friday.",
    "Sam will write the summary and send it to the whole team.",
    "The marketing plan needs two more weeks of work.",
    "Please check the numbers before the next meeting.",
    "Our customers asked for better search and faster exports.",
    "The design team will present three options on Monday.",
    "Travel costs went down by ten percent this quarter.",
    "The office will be closed for the holiday next month.",
    "Everyone should update their passwords this week.",
    "Lunch is provided on Thursday for the whole team.",
    "We should hire one more engineer for the platform group.",
    "Let us meet again next Tuesday at ten in the morning.",
]
# Words of the last sentences, which only a decode past the damage can hear.
LATE_WORDS = ("engineer", "platform", "tuesday", "morning")
# libmpg123's own lines and Python's must never reach the user.
NOISE = re.compile(r"Note:|mpg123|resync|Illegal|Traceback|Error\b", re.IGNORECASE)


def tool(*args: str | bytes | Path) -> None:
    if shutil.which(str(args[0])) is None:
        pytest.skip(f"{args[0]} is not installed (Debian: apt-get install espeak-ng sox libsox-fmt-all)")
    subprocess.run([a if isinstance(a, bytes) else str(a) for a in args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    tool("espeak-ng", "-s", "150", "-w", path, " ".join(SENTENCES))
    return path


def encode(speech: Path, dst: Path) -> Path:
    """44.1 kHz stereo, as a recorder would write it."""
    tool("sox", "-D", speech, "-r", "44100", "-c", "2", dst)
    return dst


def damage(path: Path, fraction: float = 0.2, size: int = 4096) -> Path:
    data = bytearray(path.read_bytes())
    at = int(len(data) * fraction)
    data[at : at + size] = np.random.default_rng(5).bytes(size)
    path.write_bytes(bytes(data))
    return path


def query(cli: CLI, sql: str, *params: object) -> list[tuple]:
    conn = sqlite3.connect(f"file:{cli.db_path}?mode=ro", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def session(cli: CLI) -> tuple:
    [row] = query(cli, "SELECT id, status, duration_s, title, audio_path FROM sessions")
    return row


def marks(cli: CLI, sid: int) -> list[tuple[float, str, str]]:
    return query(cli, "SELECT t_s, kind, text FROM marks WHERE session_id = ? ORDER BY t_s", sid)


def text(cli: CLI, sid: int) -> str:
    return " ".join(t for (t,) in query(cli, "SELECT text FROM segments WHERE session_id = ? ORDER BY seq", sid))


def stderr_lines(run: Run) -> list[str]:
    assert not NOISE.search(run.err.replace("damaged", "")), run.err
    return [line for line in run.err.splitlines() if line.strip()]


@pytest.mark.slow
@pytest.mark.parametrize("ext", ["flac", "mp3"])
def test_damaged_mid_file_is_read_past_the_damage(cli: CLI, speech: Path, ext: str) -> None:
    path = encode(speech, cli.base / f"standup.{ext}")
    whole_s = len(read_audio(path)) / 16000
    damage(path)

    run = cli("transcribe", path.name)
    assert run.rc == 0, run.err
    summary, warning = stderr_lines(run)
    assert summary.startswith("session 1 complete: ")
    found = re.fullmatch(rf"notetaker: standup\.{ext}: (\d\.\d+) s at 00:00:(\d\d\.\d) could not be decoded "
                         r"\(the file is damaged there\); silence is in its place", warning)
    assert found, warning
    lost_s, at_s = float(found[1]), float(found[2])
    assert 0 < lost_s <= 0.5 and 0.15 * whole_s < at_s < 0.25 * whole_s

    sid, status, duration_s, _, _ = session(cli)
    assert status == "complete"
    assert duration_s == pytest.approx(whole_s, abs=0.05)  # all of it; before: 6.8 s (FLAC), 7.0 s (MP3)
    [(t, kind, note)] = marks(cli, sid)
    assert kind == "note" and t == pytest.approx(at_s, abs=0.05) and warning.endswith(note)
    heard = text(cli, sid).lower()
    assert sum(word in heard for word in LATE_WORDS) >= 2, heard


@pytest.mark.slow
def test_truncated_flac_says_how_much_was_read(cli: CLI, speech: Path) -> None:
    path = encode(speech, cli.base / "cut.flac")
    whole_s = len(read_audio(path)) / 16000
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 3 // 10])

    run = cli("transcribe", path.name)
    assert run.rc == 0, run.err
    summary, warning = stderr_lines(run)
    assert summary.startswith("session 1 complete: ")
    found = re.fullmatch(r"notetaker: cut\.flac: read (\d+\.\d) s of (\d+\.\d) s: the file is damaged after that",
                         warning)
    assert found, warning
    read_s = float(found[1])
    assert float(found[2]) == round(whole_s, 1)
    assert 0.25 * whole_s < read_s < 0.32 * whole_s

    sid, status, duration_s, _, _ = session(cli)
    assert status == "complete"  # the transcript of what is there is whole; the mark says the rest
    assert duration_s == pytest.approx(read_s, abs=0.06)
    [(t, kind, note)] = marks(cli, sid)
    assert kind == "note" and t == pytest.approx(read_s, abs=0.06)
    assert note == f"read {read_s:.1f} s of {whole_s:.1f} s: the file is damaged after that"
    assert text(cli, sid)  # what was there was transcribed


@pytest.mark.parametrize("rate", [2**31 - 1, 1])
def test_absurd_sample_rate_is_one_line_and_no_meeting(cli: CLI, speech: Path, rate: int) -> None:
    path = cli.base / "call.wav"
    tool("sox", "-D", speech, "-r", "16000", path, "trim", "0", "2")
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, data.index(b"fmt ") + 12, rate)
    path.write_bytes(bytes(data))

    run = cli("transcribe", path.name)
    assert run.rc == 2
    assert run.err == (f"notetaker: call.wav: damaged header: it gives a sample rate of {rate} Hz "
                       "(a recording has 1 kHz to 768 kHz)\n")
    assert run.out == ""
    assert cli.session_rows() == []


@pytest.mark.slow
def test_a_name_that_is_not_utf8(cli: CLI, speech: Path) -> None:
    if os.name == "nt":
        pytest.skip("Windows names are UTF-16")
    raw = b"r\xe9union \xff.wav"  # Latin-1 and a stray byte: a name copied from another system
    tool("sox", "-D", speech, "-r", "16000", os.fsencode(cli.base) + b"/" + raw, "trim", "0", "6")

    run = cli("transcribe", os.fsdecode(raw))  # as argv gives it to Python: surrogates
    assert run.rc == 0, run.err
    [summary] = stderr_lines(run)
    assert summary.startswith("session 1 complete: ")
    sid, status, _, title, audio_path = session(cli)
    assert status == "complete"
    assert title == "r\\xe9union \\xff"
    assert audio_path == str(cli.base.resolve() / "r\\xe9union \\xff.wav")
    assert "budget" in text(cli, sid).lower()


@pytest.mark.slow
def test_speech_level_noise_with_no_text_is_flagged(cli: CLI) -> None:
    tool("sox", "-n", "-r", "16000", "-c", "1", cli.base / "hum.wav", "synth", "6", "pinknoise", "vol", "0.3")

    run = cli("transcribe", "hum.wav")
    assert run.rc == 0, run.err
    summary, warning = stderr_lines(run)
    assert summary.startswith("session 1 complete: 0 segments")
    assert re.fullmatch(r"notetaker: hum\.wav: no speech recognised, though 6\.0 s of the audio is at speech "
                        r"level \(-2\d dBFS\): noise, music, or a language the model does not know\?", warning)
    sid, status, _, _, _ = session(cli)
    assert status == "complete" and text(cli, sid) == ""
    [(t, kind, note)] = marks(cli, sid)
    assert (t, kind) == (0.0, "note") and warning.endswith(note)
