"""Each thing said becomes text once, with Whisper tiny.en on multi-voice speech that
espeak-ng speaks at test time: offline (VAD windows), live (the open utterance
re-decoded, finals behind the audio before them), faster-whisper's seek loop, and
recovery of a killed meeting. No two finals overlap in time, no sentence comes twice,
and every sentence is there."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from asr.base import Final, SessionOptions
from tests.support.wer import normalize, wer

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")]

SR = 16_000
# The meeting that came out doubled: two ~13 s turns, 1.2 s of digital silence between them.
TWO_TURNS = [
    ("en-us", 160, "Good morning everyone, this is the weekly planning meeting for the Atlas Project. "
                   "I am Anya, and Bob and Carla are here too. The first item is the budget for the next "
                   "quarter, which is still not approved."),
    ("en+m3", 150, "Thanks Anya. The budget depends on the vendor contract, and the launch moved to March "
                   "because the payment integration is late. We need two more engineers to finish it by "
                   "the end of April."),
]
# Short and long turns of four voices whose sentences cross the 30 s window boundaries.
ACROSS_WINDOWS = [
    ("en-us", 165, "Let's start with the incident from Tuesday night. The database failover took eleven "
                   "minutes, and the alerts reached nobody because the pager rotation was empty."),
    ("en+f3", 155, "I can take that. I will fill the rotation for the next six weeks today."),
    ("en", 150, "Good. The second point is the hiring plan for the platform team."),
    ("en-us+m7", 160, "We have two open roles. The interviews for the senior engineer start on Monday, "
                      "and the recruiter sends the shortlist on Friday."),
    ("en+f3", 170, "Sounds good."),
    ("en-us", 160, "Then the last point is the customer survey. Most customers want faster support "
                   "and clearer documentation, and nobody asked for more features."),
]


def speak(voice: str, speed: int, text: str, folder: Path) -> np.ndarray:
    wav = folder / "turn.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(wav), text], check=True)
    audio, rate = sf.read(wav, dtype="float32")
    return soxr.resample(audio, rate, SR).astype(np.float32)


def meeting(turns, gaps: list[float], folder: Path) -> tuple[np.ndarray, str]:
    parts = [np.zeros(int(0.3 * SR), np.float32)]
    for (voice, speed, text), gap in zip(turns, gaps):
        parts += [speak(voice, speed, text, folder), np.zeros(int(gap * SR), np.float32)]
    return np.concatenate(parts), " ".join(t for *_, t in turns)


@pytest.fixture(scope="module")
def whisper_engine():
    from asr.whisper.engine import WhisperEngine

    return WhisperEngine()


@pytest.fixture(scope="module")
def two_turns(tmp_path_factory) -> tuple[np.ndarray, str]:
    return meeting(TWO_TURNS, [1.2, 0.5], tmp_path_factory.mktemp("two"))


@pytest.fixture(scope="module")
def across_windows(tmp_path_factory) -> tuple[np.ndarray, str]:
    audio, text = meeting(ACROSS_WINDOWS, [0.4, 0.25, 0.9, 0.3, 0.6, 0.5], tmp_path_factory.mktemp("across"))
    assert len(audio) / SR > 40  # more than one window
    return audio, text


def transcribe(engine, audio: np.ndarray, options: SessionOptions, chunk_s: float) -> list[Final]:
    from .test_real_weights import _session_text

    return _session_text(engine, audio, options, int(chunk_s * SR))


def assert_said_once(finals: list[Final], reference: str, max_wer: float) -> None:
    finals = sorted(finals, key=lambda f: f.start)
    for a, b in zip(finals, finals[1:]):
        assert b.start >= a.end - 0.3, f"finals overlap: {a} / {b}"
    texts = [" ".join(normalize(f.text)) for f in finals]
    for i, t in enumerate(texts):
        if len(t.split()) >= 4:
            assert not any(t in u or u in t for u in texts[max(0, i - 3) : i] if len(u.split()) >= 4), texts
    hyp = " ".join(f.text for f in finals)
    words = normalize(hyp)
    for n in range(len(words) - 5):  # no run of six words comes twice (the reference has none)
        gram = words[n : n + 6]
        assert not any(words[m : m + 6] == gram for m in range(n + 1, len(words) - 5)), hyp
    assert wer([reference], [hyp]) < max_wer, hyp


MODES = {
    "offline": (SessionOptions(partials=False), 1.0),
    "live": (SessionOptions(partials=True), 0.1),
    "seek": (SessionOptions(partials=False, windowing="seek"), 1.0),
}


@pytest.mark.parametrize("mode", list(MODES))
def test_two_turns_are_each_said_once(whisper_engine, two_turns, mode):
    audio, reference = two_turns
    options, chunk = MODES[mode]
    finals = transcribe(whisper_engine, audio, options, chunk)
    assert_said_once(finals, reference, 0.2)


@pytest.mark.parametrize("mode", list(MODES))
def test_turns_across_window_boundaries_are_each_said_once(whisper_engine, across_windows, mode):
    audio, reference = across_windows
    options, chunk = MODES[mode]
    finals = transcribe(whisper_engine, audio, options, chunk)
    assert_said_once(finals, reference, 0.3)  # tiny.en mishears some espeak words ("failover")
    words = normalize(" ".join(f.text for f in finals))
    for word, times in [("incident", 1), ("rotation", 2), ("hiring", 1), ("friday", 1), ("survey", 1),
                        ("documentation", 1)]:  # each sentence there, once
        assert words.count(word) == times, (word, " ".join(words))
    assert finals[-1].end > len(audio) / SR - 3.0


def test_recovery_after_a_kill_repeats_nothing(whisper_engine, two_turns, tmp_path):
    """A meeting killed after its first final: recovery transcribes the rest of the spool
    (several long utterances, decoded in offline windows) and repeats no word."""
    from notetaker.recovery import recover_session
    from storage import SessionStore
    from tests.app.spooled import interrupted_meeting

    audio, reference = two_turns
    live = transcribe(whisper_engine, audio[: int(6.0 * SR)], SessionOptions(partials=True), 0.1)
    first = live[0]
    home = tmp_path / "home"
    with SessionStore.open(home / "notetaker.db") as store:
        sid = interrupted_meeting(store, home / "sessions", audio, [(first.text, first.start, first.end)])
        recover_session(store, home / "sessions", sid, whisper_engine)
        segs = store.segments(sid)
        assert store.get_session(sid).status == "complete"
    finals = [Final(s.text, s.start_s, s.end_s) for s in segs]
    assert len(finals) >= 3
    assert_said_once(finals, reference, 0.2)


@pytest.fixture(scope="module")
def standup():
    """The evaluation set's stand-up meeting (bench/evalset.py: five voices, pauses of 0.3-0.6 s),
    and its turns' times. Whisper wrote "Thanks. Great. That's it for today." as one final
    across the 0.33 s between two voices."""
    from bench.evalset import MEETINGS, render, speak as speak_line

    meeting = next(m for m in MEETINGS if m.name == "standup")
    voices = [speak_line(text, meeting.speakers[who]) for who, text in meeting.lines]
    audio, turns = render(meeting, voices)
    return audio, [(t.start, t.end) for t in turns]


@pytest.mark.parametrize("mode", ["offline", "live"])  # seek: Whisper's own coarse times
def test_no_final_runs_across_a_pause_between_turns(whisper_engine, standup, mode):
    """Whisper joins the end of one turn to the start of the next across a short pause; the
    finals are split there (asr/sentences.py), so each reads as one speaker's sentences."""
    audio, bounds = standup
    options, chunk = MODES[mode]
    finals = transcribe(whisper_engine, audio, options, chunk)
    for (_, end), (start, _) in zip(bounds, bounds[1:]):
        across = [f for f in finals if f.start < end - 0.15 and f.end > start + 0.15]
        assert not across, (end, start, [(f.start, f.end, f.text) for f in finals])
