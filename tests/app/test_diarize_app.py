"""Speakers in a recording: the recorder with a scripted engine and the diarization pipeline on
model doubles (tests/diarize/doubles.py): stored finals carry their speaker and are split at a
change, held finals are bounded, a crash while finals are held loses nothing, and the offline
pass relabels the meeting at its end."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.base import Final
from notetaker import recorder as recorder_mod
from notetaker.audio import FileSource
from notetaker.audio.base import AudioSource
from notetaker.diarization import LiveSpeakers
from notetaker.recorder import Recorder, RecorderListener
from notetaker.recovery import recover_session
from storage import SessionStore
from tests.diarize.doubles import RATE, ToneEmbedder, ToneSegmenter, meeting

from .scripted import ScriptedEngine, final

ROOT = Path(__file__).resolve().parents[2]
TURNS = [(0.5, 5.0, "A"), (5.3, 10.0, "B"), (10.3, 15.0, "A"), (15.3, 19.5, "C")]
SCRIPT = [  # the first final runs across the change from A to B at 5.15 s
    final(9.9, "We should ship the release on Friday as planned. I disagree, the tests are red.", start=0.6),
    final(14.9, "Then we wait for Monday.", start=10.4),
    final(19.4, "Agreed.", start=15.4),
]


class Collect(RecorderListener):
    def __init__(self, source=None) -> None:
        self.finals: list[tuple[Final, object, float]] = []
        self.errors: list[str] = []
        self.relabelled: list[int] = []
        self.source = source

    def on_final(self, f, segment) -> None:
        self.finals.append((f, segment, self.source.position_s if self.source else 0.0))

    def on_speakers_error(self, message: str) -> None:
        self.errors.append(message)

    def on_relabelled(self, changed: int) -> None:
        self.relabelled.append(changed)


def _wav(tmp_path: Path, turns=TURNS, seconds: float = 20.0) -> Path:
    path = tmp_path / "meeting.wav"
    sf.write(path, meeting(turns, seconds), RATE, subtype="PCM_16")
    return path


def _speakers(labels=(None,), **kw):
    return lambda: LiveSpeakers(ToneSegmenter(), ToneEmbedder(noise=0.2), labels, **kw)


def test_stored_finals_carry_their_speakers_split_at_a_change(tmp_path):
    store = SessionStore.open(tmp_path / "nt.db")
    source = FileSource.open(_wav(tmp_path))
    got = Collect()
    rec = Recorder(store, ScriptedEngine(SCRIPT), source, title="t", listeners=[got], speakers=_speakers())
    result = rec.run()
    assert result.status == "complete"
    rows = [(s.text, s.speaker) for s in store.segments(result.session_id)]
    assert rows == [("We should ship the release on Friday as planned.", "S1"),
                    ("I disagree, the tests are red.", "S2"),
                    ("Then we wait for Monday.", "S1"),
                    ("Agreed.", "S3")]
    assert [seg.speaker for _, seg, _ in got.finals] == [r[1] for r in rows]  # as stored live
    assert got.relabelled == [4] and not got.errors
    assert [(s.label, s.segments) for s in store.speakers(result.session_id)] == [("S1", 2), ("S2", 1), ("S3", 1)]


def test_the_offline_pass_fixes_live_labels_in_one_transaction(tmp_path, monkeypatch):
    # Noisy voices make the live pass get labels wrong (invent speakers, or give a turn another's
    # label); at the end the meeting has the three there are, each with one label.
    turns = [(0.5 + 4 * i, 4.2 + 4 * i, "ABC"[i % 3]) for i in range(15)]
    script = [final(4.2 + 4 * i, f"Line number {i}.", start=0.6 + 4 * i) for i in range(15)]
    store = SessionStore.open(tmp_path / "nt.db")
    source = FileSource.open(_wav(tmp_path, turns, 61.0))
    live_labels = []

    class Live(Collect):
        def on_final(self, f, segment) -> None:
            live_labels.append(segment.speaker)

    # thresholds for the tone stand-in's embeddings (tests/diarize/test_offline.py says why)
    from tests.diarize.test_offline import TONE_OPTIONS

    factory = lambda: LiveSpeakers(ToneSegmenter(), ToneEmbedder(noise=1.2, seed=1), (None,),  # noqa: E731
                                   options=TONE_OPTIONS)
    result = Recorder(store, ScriptedEngine(script), source, title="t", listeners=[Live()], speakers=factory).run()
    assert len(set(live_labels)) > 3 or any(live_labels[i] != live_labels[i % 3] for i in range(15))
    stored = [s.speaker for s in store.segments(result.session_id)]
    assert len(set(stored)) == 3
    assert all(stored[i] == stored[i % 3] for i in range(15))  # A, B, C each one label throughout


def test_held_finals_are_stored_within_the_hold_even_when_the_diarizer_is_stuck(tmp_path, monkeypatch):
    class Stuck(LiveSpeakers):
        has_work = False

        def covered_s(self, channel):
            return 0.0

    ticks = iter(np.arange(0, 10_000, 0.5))
    store = SessionStore.open(tmp_path / "nt.db")
    source = FileSource.open(_wav(tmp_path))
    got = Collect(source)
    rec = Recorder(store, ScriptedEngine(SCRIPT), source, title="t", listeners=[got], clock=lambda: float(next(ticks)),
                   speakers=lambda: Stuck(ToneSegmenter(), ToneEmbedder(), (None,)))
    rec.run()
    stored_at = [(f.end, at) for f, _, at in got.finals]
    assert len(stored_at) == 3
    # Each final is stored a bounded time after it exists (MAX_HOLD_S of clock = 10 ticks = 10 blocks
    # of 0.1 s), not at the end of the meeting.
    assert all(at - end <= recorder_mod.MAX_HOLD_S / 0.5 * 0.1 + 0.2 for end, at in stored_at[:-1])


class _Stereo(AudioSource):
    channels = ("mic", "system")
    sample_rate = RATE

    def __init__(self, mic: np.ndarray, system: np.ndarray) -> None:
        self.audio = np.stack([mic, system], 1)
        self.delivered = 0

    @property
    def position_s(self) -> float:
        return self.delivered / RATE

    def __iter__(self):
        for i in range(0, len(self.audio), 1600):
            self.delivered = min(i + 1600, len(self.audio))
            yield self.audio[i:i + 1600]


def test_mic_and_system_never_share_a_label(tmp_path):
    store = SessionStore.open(tmp_path / "nt.db")
    mic = meeting([(0.5, 5.0, "A"), (5.3, 10.0, "B"), (10.3, 15.0, "A")], 20.0)
    system = meeting([(0.5, 9.9, "C"), (10.3, 19.5, "A")], 20.0)  # the same voice A on the far side
    script = [final(4.9, "One.", start=0.6), final(9.8, "Two.", start=5.4), final(14.9, "Three.", start=10.4)]
    result = Recorder(store, ScriptedEngine(script), _Stereo(mic, system), title="call",
                      speakers=_speakers(("mic", "system"))).run()
    segs = store.segments(result.session_id)
    by = {(s.channel, s.text): s.speaker for s in segs}
    assert by[("mic", "One.")] == by[("mic", "Three.")] != by[("mic", "Two.")]
    assert {by[("mic", t)] for t in ("One.", "Two.")}.isdisjoint({by[("system", t)] for t in ("One.", "Three.")})
    for s in store.speakers(result.session_id):
        assert len(s.channels) == 1


def test_a_diarizer_that_fails_to_load_leaves_the_meeting_unlabelled(tmp_path):
    def broken():
        raise FileNotFoundError("no diarization checkpoint at /nowhere")

    store = SessionStore.open(tmp_path / "nt.db")
    got = Collect()
    result = Recorder(store, ScriptedEngine(SCRIPT), FileSource.open(_wav(tmp_path)), title="t", listeners=[got],
                      speakers=broken).run()
    assert result.status == "complete" and got.errors == ["no diarization checkpoint at /nowhere"]
    assert [s.speaker for s in store.segments(result.session_id)] == [None] * 3


CRASH = """
import os, sys
sys.path.insert(0, {root!r})
from notetaker import recorder as r
from notetaker.audio import FileSource
from notetaker.diarization import LiveSpeakers
from storage import SessionStore
from tests.app.scripted import ScriptedEngine
from tests.app.test_diarize_app import SCRIPT
from tests.diarize.doubles import ToneSegmenter, ToneEmbedder

class Stuck(LiveSpeakers):  # finals wait for speakers that never come
    has_work = False
    def covered_s(self, channel):
        return 0.0

class Die(r.RecorderListener):
    def on_progress(self, p):
        if p.audio_s >= 16.0:
            assert rec._spoken and not rec._finals, "finals must be held when the process dies"
            os._exit(9)

r.MAX_HOLD_S = 1e9
store = SessionStore.open({db!r})
source = FileSource.open({wav!r}, realtime=True, speed=8)
rec = Recorder = r.Recorder(store, ScriptedEngine(SCRIPT), source, title="t", listeners=[Die()],
                            spool_dir={spool!r}, speakers=lambda: Stuck(ToneSegmenter(), ToneEmbedder(), (None,)))
rec.run()
"""


def _crashed_while_holding(tmp_path) -> tuple[SessionStore, Path, int]:
    """The store, spool folder and meeting that CRASH left: interrupted, no final stored."""
    db, spool, wav = tmp_path / "nt.db", tmp_path / "sessions", _wav(tmp_path)
    code = textwrap.dedent(CRASH).format(root=str(ROOT), db=str(db), spool=str(spool), wav=str(wav))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 9, done.stderr
    store = SessionStore.open(db)
    (session,) = store.interrupted_sessions()  # opening the store marked it: its process is gone
    assert store.segments(session.id) == []  # every final was held: none stored
    return store, spool, session.id


def test_a_crash_while_finals_are_held_loses_no_words(tmp_path):
    store, spool, sid = _crashed_while_holding(tmp_path)
    result = recover_session(store, spool, sid, ScriptedEngine(SCRIPT))
    spooled = result.audio_s
    want = [c.event.text for c in SCRIPT if c.event.end <= spooled]
    assert len(want) >= 2  # the kill came after the second final was held
    assert [s.text for s in store.segments(sid)] == want
    assert store.get_session(sid).status == "complete"


# -- the plan and the flags -------------------------------------------------------------------------


def _plan(device: str = "cpu", budget: int = 8 << 30, during: int = 1 << 30, pair_fits: bool = True):
    """A plan with the speech model placed and, where `pair_fits`, the diarization pair kept
    beside it (make_plan leaves it out when it does not fit: tests/budget covers that)."""
    from asr.runtime.footprint import Footprint
    from notetaker.budget import Candidate, Machine, Plan, from_wheel_model
    from notetaker.catalogue import DIARIZATION

    asr = Candidate("tiny.en", "asr", "whisper", "whisper", "tiny.en", Footprint(during, 0, 0, during, 2, "F16"), True)
    resident = [from_wheel_model(DIARIZATION, None)] if pair_fits else []
    return Plan(Machine("Linux", "x86_64", 16 << 30, device), budget, asr, "none", resident=resident)


def test_the_plan_says_why_speakers_are_off():
    from notetaker.budget import diarization_for

    assert diarization_for("auto", True, _plan(), realtime=True, cores=8) is None
    assert "diarize = off" in diarization_for("off", True, _plan(), realtime=True, cores=8)
    assert "`notetaker models pull diarization`" in diarization_for("auto", False, _plan(), realtime=True, cores=8)
    assert "`notetaker models pull diarization`" in diarization_for("on", False, _plan(), realtime=False, cores=8)
    tight = _plan(pair_fits=False)
    assert "do not fit beside the speech model" in diarization_for("auto", True, tight, realtime=False, cores=8)
    slow = diarization_for("auto", True, _plan(), realtime=True, cores=2)
    assert "4 CPU cores" in slow and "diarize = on" in slow
    assert diarization_for("on", True, _plan(), realtime=True, cores=2) is None  # asked for: runs anyway
    assert diarization_for("auto", True, _plan(), realtime=False, cores=2) is None  # a file is never behind
    assert diarization_for("auto", True, _plan(device="gpu"), realtime=True, cores=2) is None


def test_prepare_carries_the_speakers_hint_and_the_models_folder(tmp_path, monkeypatch):
    from notetaker import diarization
    from notetaker.config import load_settings
    from notetaker.prepare import plan_speakers

    settings = load_settings({"home": str(tmp_path)}, env={})
    assert not plan_speakers(settings, _plan(), speakers=3).on  # nothing pulled here
    from notetaker import models

    monkeypatch.setattr(models, "diarization_folder", lambda settings: settings.models_dir / "diarization")
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    d = plan_speakers(settings, _plan(), speakers=3)
    assert d.on and d.speakers == 3 and d.folder == tmp_path / "models" / "diarization"
    assert diarization.speakers_factory(d, realtime=True) is not None
    off = plan_speakers(load_settings({"home": str(tmp_path), "diarize": "off"}, env={}), _plan())
    assert not off.on and diarization.speakers_factory(off, realtime=True) is None


def test_the_diarize_setting(tmp_path):
    import pytest

    from notetaker.config import ConfigError, load_settings

    assert load_settings({"home": str(tmp_path)}, env={}).diarize == "auto"
    assert load_settings({"home": str(tmp_path)}, env={"NOTETAKER_DIARIZE": "off"}).diarize == "off"
    (tmp_path / "config.toml").write_text('diarize = "sometimes"\n')
    with pytest.raises(ConfigError, match="diarize must be one of auto, on, off"):
        load_settings({"home": str(tmp_path)}, env={})


def test_speaker_flags_that_cannot_be_honoured_are_one_line(cli, tmp_path):
    from .conftest import write_wav

    tone = write_wav(tmp_path / "t.wav", 1.0)
    for args, says in ((("--speakers", "3", "--no-diarize"), "--speakers N is for speaker labels"),
                       (("--speakers", "50"), "--speakers must be 1 to 20"),
                       (("--speakers", "0"), "must be at least 1")):
        run = cli("transcribe", tone, *args)
        assert run.rc == 2 and says in run.err and len(run.err.strip().splitlines()) == 1, run.err
    assert not cli.db_path.exists()  # nothing saved


def test_without_the_models_a_file_is_transcribed_and_one_line_says_how_to_get_them(cli, tmp_path):
    from .conftest import write_wav

    tone = write_wav(tmp_path / "t.wav", 1.5)
    run = cli("transcribe", tone, "--speakers", "2")
    assert run.rc == 0, run.err
    assert [line for line in run.err.splitlines() if "speaker labels" in line] == [
        "notetaker: speaker labels are off: the diarization models are not downloaded "
        "(`notetaker models pull diarization`)"]
    quiet = cli("transcribe", tone, "--no-diarize")
    assert quiet.rc == 0 and "speaker labels" not in quiet.err


# -- speakers found afterwards: recovery, `speakers --find` --------------------------------------


def _doubles_labeller(store, sid):
    from notetaker.diarization import find_speakers

    def label(reader) -> str:
        labelled, found = find_speakers(store, reader, sid, None, models=(ToneSegmenter(), ToneEmbedder(noise=0.2)))
        return f"{found} speakers found; {labelled} segments labelled"

    return label


def test_a_recovered_meeting_gets_its_speakers_from_its_whole_audio(tmp_path):
    # The crash came while every final was held for its speaker: none was stored, none labelled.
    # Recovery transcribes the spool and then finds the speakers over the whole of it.
    store, spool, sid = _crashed_while_holding(tmp_path)
    result = recover_session(store, spool, sid, ScriptedEngine(SCRIPT), label_speakers=_doubles_labeller(store, sid))
    rows = [(s.text, s.speaker) for s in store.segments(sid)]
    assert len(rows) >= 2 and all(label for _, label in rows), rows
    # numbered afresh in the order people first speak; A's "Then we wait" is not B's turn
    assert rows[0][1] == "S1" and rows[1] == ("Then we wait for Monday.", "S2")
    assert result.speakers_note == f"{len({r[1] for r in rows})} speakers found; {len(rows)} segments labelled"
    assert store.get_session(sid).status == "complete"


def test_finding_speakers_that_fails_costs_only_the_labels(tmp_path):
    from .spooled import interrupted_meeting

    store = SessionStore.open(tmp_path / "nt.db")
    audio = meeting(TURNS, 20.0)
    sid = interrupted_meeting(store, tmp_path / "sessions", audio, [])

    def broken(reader) -> str:
        raise OSError("No space left on device")

    result = recover_session(store, tmp_path / "sessions", sid, ScriptedEngine(SCRIPT), label_speakers=broken)
    assert result.speakers_note == "speaker labels were not found: No space left on device"
    assert [s.text for s in store.segments(sid)] == [c.event.text for c in SCRIPT]
    assert store.get_session(sid).status == "complete"
    assert all(s.speaker is None for s in store.segments(sid))


def test_finding_speakers_again_leaves_named_speakers_alone(tmp_path):
    from notetaker.diarization import FindError, find_speakers, recovery_labeller
    from notetaker.spool import open_spool, spool_folder

    from .spooled import interrupted_meeting

    store = SessionStore.open(tmp_path / "nt.db")
    sid = interrupted_meeting(store, tmp_path / "sessions", meeting(TURNS, 20.0), [(c.event.text, c.event.start, c.event.end)
                                                                                   for c in SCRIPT])
    reader = open_spool(spool_folder(tmp_path / "sessions", sid))
    assert find_speakers(store, reader, sid, None, models=(ToneSegmenter(), ToneEmbedder(noise=0.2))) == (3, 3)
    labels = [s.speaker for s in store.segments(sid)]
    store.rename_speaker(sid, "S1", "Anya")
    with pytest.raises(FindError, match=r"meeting \d+ has named speakers \(S1=Anya\)"):
        find_speakers(store, reader, sid, None, models=(ToneSegmenter(), ToneEmbedder()))
    assert [s.speaker for s in store.segments(sid)] == labels  # nothing changed

    from notetaker.config import load_settings

    settings = load_settings({"home": str(tmp_path), "diarize": "off"}, env={})
    assert recovery_labeller(settings, store, sid) is None  # labels off: recovery leaves them
