"""`windowing="seek"`: faster-whisper's long-form loop on our decoder gives faster-whisper's
text on the same weights, and the whole-recording log-mel is faster-whisper's."""

from __future__ import annotations

import numpy as np
import pytest

from asr.base import Final, SessionOptions
from asr.features import whole_log_mel
from tests.support.wer import normalize, wer

from ..audio_util import SR, espeak_clips, librivox_clips, silence, sox_noise
from .test_real_weights import engine, reference  # noqa: F401  (the shared module fixtures)

faster_whisper = pytest.importorskip("faster_whisper")
pytestmark = pytest.mark.slow


def recordings() -> dict[str, np.ndarray]:
    """Several minutes-long inputs that need several 30 s windows each."""
    es = [a for _, a, _ in espeak_clips()]
    lv = [a for _, a, _ in librivox_clips()]
    gaps = [0.3, 1.1, 0.6, 2.0, 0.2]
    joined = lambda clips: np.concatenate([np.concatenate([a, silence(gaps[i % 5])])  # noqa: E731
                                           for i, a in enumerate(clips)])
    noisy = joined(es[:8])
    noisy = noisy + sox_noise("pinknoise", len(noisy) / SR, volume=0.01)[: len(noisy)]
    return {"espeak": joined(es), "librivox": joined(lv), "mixed": joined(es[6:] + lv[:3] + es[:4]),
            "noisy": noisy.astype(np.float32)}


def test_whole_log_mel_is_faster_whispers(reference):
    from faster_whisper.feature_extractor import FeatureExtractor

    audio = recordings()["librivox"]
    ours = whole_log_mel(audio, 80, chunk_frames=1000)
    theirs = FeatureExtractor(feature_size=80)(audio, padding=160).T
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, atol=2e-4)


@pytest.mark.parametrize("beam, names", [(1, ("espeak", "librivox", "mixed", "noisy")), (5, ("mixed",))])
def test_seek_windows_give_faster_whispers_text(engine, reference, beam, names):
    same = 0
    for name, audio in recordings().items():
        if name not in names:
            continue
        s = engine.start_session(SessionOptions(partials=False, windowing="seek", beam_size=beam))
        s.feed_audio(audio)
        ours = [e for e in s.finish() if isinstance(e, Final)]
        segments, _ = reference.transcribe(audio, beam_size=beam)
        theirs = list(segments)
        a, b = " ".join(f.text for f in ours), " ".join(x.text for x in theirs)
        same += normalize(a) == normalize(b)
        assert wer([b], [a]) < 0.03, (name, a, b)  # at most a word or two where fp rounding tips
        # the segments fall where faster-whisper's fall
        assert len(ours) == pytest.approx(len(theirs), abs=1)
        assert abs(ours[0].start - theirs[0].start) < 0.05 and abs(ours[-1].end - theirs[-1].end) < 0.5
    assert same >= len(names) - 1  # the same words but in one recording at most
