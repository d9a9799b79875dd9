"""A meeting started from the meetings list (`n`) gets the checks `notetaker record` runs before
it (`notetaker.cli.tui.prepare_meeting`): the plan for the model chosen, its download, the
rewrite backend and the input, on real settings, the bundled Whisper and real files."""

from __future__ import annotations

from pathlib import Path

import pytest

from asr.base import ModelNotFoundError
from notetaker.audio.base import AudioError
from notetaker.cli.tui import prepare_meeting
from notetaker.config import load_settings
from notetaker.prepare import open_store
from notetaker.tui.deps import MeetingChoice, SpeechChoice
from tests.app.conftest import write_wav


@pytest.fixture
def settings(tmp_path: Path):
    return load_settings({"home": str(tmp_path / "home"), "allow_download": False}, env={})


def test_a_file_with_the_bundled_whisper_gets_a_live_meeting_ready(settings, tmp_path: Path):
    wav = write_wav(tmp_path / "retro.wav", 1.5)
    store = open_store(settings)
    try:
        deps = prepare_meeting(settings, store, MeetingChoice(
            "Retro", file=wav, speech=SpeechChoice("whisper/tiny.en", "whisper", "tiny.en")))
        source = deps.source_factory()
        try:
            assert source.duration_s == pytest.approx(1.5, abs=0.01)
        finally:
            source.close()
    finally:
        store.close()
    assert (deps.title, deps.engine_label, deps.realtime) == ("Retro", "whisper/tiny.en", True)
    assert deps.audio_path == str(wav.resolve())
    assert deps.memory_budget_bytes > 0 and deps.memory_planned_bytes > 0
    # no rewrite model is downloaded here: cleanup is off with its reason, the meeting still starts
    assert deps.rewrite_backend == "none"


def test_a_model_that_is_not_downloaded_is_one_line_before_anything_is_saved(settings, tmp_path: Path):
    wav = write_wav(tmp_path / "retro.wav", 1.0)
    store = open_store(settings)
    try:
        with pytest.raises(ModelNotFoundError) as caught:
            prepare_meeting(settings, store, MeetingChoice(
                "Retro", file=wav, speech=SpeechChoice("qwen3/0.6b", "qwen3", "Qwen/Qwen3-ASR-0.6B")))
        assert store.list_sessions() == []
    finally:
        store.close()
    assert str(caught.value) == "model Qwen/Qwen3-ASR-0.6B is not downloaded and downloads are turned off"


def test_an_unreadable_file_is_one_line(settings, tmp_path: Path):
    bad = tmp_path / "notes.wav"
    bad.write_bytes(b"this is not audio at all" * 40)
    store = open_store(settings)
    try:
        with pytest.raises(AudioError):
            prepare_meeting(settings, store, MeetingChoice("Retro", file=bad))
    finally:
        store.close()
