import json

import pytest

from asr.base import FLAG_NO_SPEECH, FLAG_REPETITION
from asr.repetition import find_loop, find_segment_copy
from asr.whisper.beam import cut_loop
from asr.whisper.decoding import DecodingOptions, WhisperDecoder, compression_ratio
from asr.whisper.engine import bundled_model_dir
from asr.whisper.tokenizer import WhisperTokenizer
from asr.whisper.weights import build_model, load_checkpoint

from ..audio_util import espeak_clips, sox_noise


@pytest.mark.parametrize("tokens, cut", [
    ([5] * 8, 1),
    ([1, 2] + [5] * 7, None),  # seven of one token is not yet a loop
    ([9, 1, 2, 1, 2, 1, 2, 1, 2], 3),
    ([1, 2, 1, 2, 1, 2], None),  # "no, no, no": three of a short phrase is speech
    ([7] + [1, 2, 3, 4, 5] * 3, 6),
    (list(range(40)), None),
    ([7] + [1, 2, 3, 4, 5] * 2, None),  # a clause said twice is speech
    ([7] + list(range(10, 20)) * 2, 11),  # a whole sentence twice in a row is a loop
])
def test_find_loop(tokens, cut):
    assert find_loop(tokens) == cut


def test_compression_ratio_is_high_for_repeats():
    assert compression_ratio("the meeting starts at nine") < 1.5
    assert compression_ratio("thank you " * 30) > 2.4


@pytest.fixture(scope="module")
def random_decoder(hf_tiny_dir):
    ckpt = load_checkpoint(hf_tiny_dir)
    return WhisperDecoder(build_model(ckpt), WhisperTokenizer(ckpt.tokenizer_file, ckpt.dims.n_vocab))


def test_a_looping_model_is_cut_and_flagged(random_decoder):
    """A random-weight model repeats itself: the loop is cut to one copy and flagged."""
    audio = espeak_clips()[0][1]
    d = random_decoder
    r = d.decode(d.encode([audio]), DecodingOptions(timestamps=False, temperatures=(0.0,)), [3.0])[0]
    assert FLAG_REPETITION in r.flags
    assert find_loop([t for t in r.tokens if t < d.tok.eot]) is None
    assert len(r.tokens) < 20


def test_fallback_retries_at_higher_temperature(random_decoder):
    audio = espeak_clips()[0][1]
    d = random_decoder
    r = d.decode(d.encode([audio]), DecodingOptions(timestamps=False), [3.0])[0]
    assert r.temperature > 0.0  # temperature 0 looped, so the guards asked for a retry
    assert r.flags  # and nothing random passes the guards unflagged


def test_batch_decoding_equals_one_by_one(random_decoder):
    clips = [c[1] for c in espeak_clips()[:3]]
    d = random_decoder
    opts = DecodingOptions(temperatures=(0.0,))
    batch = d.decode(d.encode(clips), opts, [len(c) / 16000 for c in clips])
    single = [d.decode(d.encode([c]), opts, [len(c) / 16000])[0] for c in clips]
    assert [r.tokens for r in batch] == [r.tokens for r in single]


def test_suppressed_tokens_equal_the_checkpoints_list():
    folder = bundled_model_dir()
    tok = WhisperTokenizer(folder / "tokenizer.json", 51864)
    assert list(tok.suppress_tokens()) == sorted(json.loads((folder / "config.json").read_text())["suppress_ids"])
    assert (tok.eot, tok.sot, tok.no_speech, tok.no_timestamps, tok.timestamp_begin) == (50256, 50257, 50361, 50362, 50363)


@pytest.fixture(scope="module")
def tiny_en():
    from asr.whisper.engine import WhisperEngine

    return WhisperEngine()


@pytest.mark.parametrize("kind, volume", [("pinknoise", 0.3), ("whitenoise", 0.1), ("silence", 0.0)])
def test_noise_windows_are_silent_or_flagged(tiny_en, kind, volume):
    """Even when forced to decode 30 s without speech, nothing comes out unflagged."""
    d = tiny_en.decoder
    r = d.decode(d.encode([sox_noise(kind, 30.0, volume)]), DecodingOptions(), [30.0])[0]
    assert r.text.strip() == "" or FLAG_NO_SPEECH in r.flags
    assert r.no_speech_prob > 0.6


def _ts(t):
    return t >= 1000


@pytest.mark.parametrize("first, second, copy", [
    (list(range(1, 13)), [1, 2, 3, 6, 7, 8, 9, 10, 11, 12], True),  # two tokens left out
    (list(range(1, 13)), list(range(1, 13)), True),  # the same segment again
    ([1, 2, 3, 6, 7, 8, 9, 10, 11, 12], list(range(1, 13)), True),  # two added
    ([1, 2, 3, 4, 50, 6, 7, 8, 9], [1, 2, 3, 4, 51, 6, 7, 8, 9], False),  # one word changed: a list
    (list(range(1, 13)), [1, 2, 3, 10, 11, 12], False),  # half of it: not a restatement
    ([1, 2, 3, 4, 5, 6, 7], [1, 2, 3, 4, 5, 6, 7], False),  # too short to tell from speech
])
def test_a_segment_restating_the_one_before_is_a_loop(first, second, copy):
    tokens = [1000, *first, 1010, 1010, *second, 1020]
    assert find_segment_copy(tokens, _ts) == (len(first) + 3 if copy else None)
    assert find_segment_copy(tokens[:-1], _ts) is None  # checked once the segment closes


def test_a_restating_segment_is_cut_off_unflagged():
    eot = 500
    first, second = list(range(1, 13)), [1, 2, 3, 6, 7, 8, 9, 10, 11, 12]
    seq = [600, *first, 610, 610, *second, 620]
    assert cut_loop(seq, eot) == ([600, *first, 610, 610], False)  # ends where the first closed
    assert cut_loop([600, *first, *first], eot) == ([600, *first], True)  # an exact loop: flagged
    assert cut_loop([600, *first, 610, 610, 40, 41, 42, 43, 44, 45, 46, 47, 48, 620], eot) is None
