"""The bundled Whisper tiny.en, end to end, against faster-whisper on the same files."""

import numpy as np
import pytest

from asr.base import Final, SessionOptions
from asr.whisper.decoding import DecodingOptions
from asr.whisper.engine import WhisperEngine, bundled_model_dir
from tests.support.wer import wer

from ..audio_util import SR, cards_clips, espeak_clips, librivox_clips, raw_clips, silence, sox_noise

faster_whisper = pytest.importorskip("faster_whisper")


@pytest.fixture(scope="module")
def engine():
    return WhisperEngine()


@pytest.fixture(scope="module")
def reference():
    return faster_whisper.WhisperModel(str(bundled_model_dir()), device="cpu", compute_type="float32")


@pytest.fixture(scope="module")
def decoded(engine, reference):
    """Every test clip decoded once by each: (truth or None, our result, their tokens, their text)."""
    clips = [(t, a) for _, a, t in librivox_clips() + cards_clips() + espeak_clips()]
    clips += [(None, a) for _, a in raw_clips()]
    d = engine.decoder
    out = []
    for truth, audio in clips:
        ours = d.decode(d.encode([audio]), DecodingOptions(temperatures=(0.0,)), [len(audio) / SR])[0]
        segments, _ = reference.transcribe(audio, beam_size=1, temperature=0.0,
                                           condition_on_previous_text=False, vad_filter=False)
        segments = list(segments)
        out.append((truth, ours, [t for s in segments for t in s.tokens], " ".join(s.text for s in segments)))
    return out


def test_greedy_tokens_equal_faster_whisper(decoded):
    same = [list(ours.tokens) == theirs for _, ours, theirs, _ in decoded]
    assert len(same) >= 20
    assert sum(same) / len(same) >= 0.95, f"{sum(same)}/{len(same)} equal"


def test_wer_within_half_a_point_of_faster_whisper(decoded):
    labelled = [row for row in decoded if row[0] is not None]
    truth = [t for t, *_ in labelled]
    ours_wer = wer(truth, [ours.text for _, ours, _, _ in labelled])
    ref_wer = wer(truth, [text for *_, text in labelled])
    assert ours_wer <= ref_wer + 0.005, (ours_wer, ref_wer)
    assert ours_wer < 0.15


MODES = {"offline": SessionOptions(partials=False), "live": SessionOptions(partials=True),
         "seek": SessionOptions(partials=False, windowing="seek")}


def _session_text(engine, audio, partials, chunk=SR // 10):
    options = partials if isinstance(partials, SessionOptions) else SessionOptions(partials=partials)
    s = engine.start_session(options)
    events = []
    for i in range(0, len(audio), chunk):
        s.feed_audio(audio[i : i + chunk])
        while not s.idle:
            events += s.step()
    events += s.finish()
    return [e for e in events if isinstance(e, Final)]


@pytest.mark.parametrize("mode", list(MODES))
def test_a_meeting_of_utterances_transcribes(engine, mode):
    clips = librivox_clips()[:3]
    audio = np.concatenate([np.concatenate([a, silence(1.2)]) for _, a, _ in clips])
    finals = _session_text(engine, audio, MODES[mode])
    assert wer([" ".join(t for *_, t in clips)], [" ".join(f.text for f in finals)]) < 0.2
    starts = [f.start for f in finals]
    assert starts == sorted(starts) and finals[-1].end <= len(audio) / SR + 1e-6


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("kind", ["silence", "pinknoise", "whitenoise"])
def test_a_minute_of_silence_or_noise_gives_no_unflagged_text(engine, mode, kind):
    finals = _session_text(engine, sox_noise(kind, 60.0), MODES[mode])
    assert all(f.flags for f in finals if f.text.strip())
