import numpy as np
import pytest

from asr.vad import Endpointer, VadConfig

from .audio_util import SR, espeak_clips, librivox_clips, silence, sox_noise


def run(audio, chunk=1600, config=None):
    ep = Endpointer(config)
    out = []
    if callable(chunk):
        i = 0
        while i < len(audio):
            n = chunk()
            out += ep.feed(audio[i : i + n])
            i += n
    else:
        for i in range(0, len(audio), chunk):
            out += ep.feed(audio[i : i + chunk])
    return out + ep.flush()


@pytest.fixture(scope="module")
def clips():
    return espeak_clips()


@pytest.mark.parametrize("kind", ["silence", "pinknoise", "whitenoise", "brownnoise"])
def test_no_speech_in_silence_or_steady_noise(kind):
    assert run(sox_noise(kind, 60.0)) == []


def test_speech_after_silence_is_found_with_tight_bounds(clips):
    speech = clips[0][1]
    audio = np.concatenate([silence(1.5), speech, silence(2.0)])
    (u,) = run(audio)
    active = np.nonzero(np.abs(speech) > 0.01)[0]
    onset, offset = 1.5 + active[0] / SR, 1.5 + active[-1] / SR
    assert onset - 0.4 <= u.start <= onset
    assert offset <= u.end <= offset + 1.0
    assert not u.forced


def test_speech_at_the_very_start_is_not_missed(clips):
    speech = clips[1][1]
    (u,) = run(np.concatenate([speech, silence(1.0)]))
    assert u.start <= 0.1


def test_pauses_split_utterances(clips):
    audio = np.concatenate([clips[2][1], silence(1.5), clips[3][1], silence(1.5)])
    us = run(audio)
    assert len(us) == 2
    assert us[0].end < len(clips[2][1]) / SR + 1.0 < us[1].start


def test_speech_in_noise(clips):
    speech = np.concatenate([silence(2.0), clips[4][1], silence(2.0)])
    noise = sox_noise("pinknoise", len(speech) / SR, volume=0.05)[: len(speech)]
    (u,) = run(speech + noise)
    assert 1.4 < u.start < 2.3


def test_chunk_size_does_not_change_the_result(clips):
    audio = np.concatenate([silence(0.5), clips[5][1], silence(1.0), clips[6][1], silence(1.0)])
    reference = run(audio, chunk=len(audio))
    rng = np.random.default_rng(3)
    for chunk in (160, 16000, lambda: int(rng.integers(1, 9000))):
        assert run(audio, chunk=chunk) == reference


def test_long_speech_is_cut_before_the_maximum_at_quiet_points():
    clips = librivox_clips()
    audio = np.concatenate([c[1] for c in clips] * 3)  # ~74 s with only short pauses
    cfg = VadConfig(max_utterance_s=12.0, hangover_s=2.0)  # a long hangover forces the cuts
    us = run(audio, config=cfg)
    assert len(us) >= 5
    assert all(u.end - u.start <= 12.0 + 1e-6 for u in us)
    forced = [(a, b) for a, b in zip(us, us[1:]) if a.forced]
    assert forced and all(b.start == pytest.approx(a.end) for a, b in forced)
    assert us[-1].end == pytest.approx(len(audio) / SR, abs=0.1)
