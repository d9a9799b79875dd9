"""The vocabulary in Whisper's prompt: within the room `<|startofprev|>` has, kept ahead of
earlier text, in whole terms; and on the bundled tiny.en it makes a name come out right."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from asr.base import Final, SessionOptions
from asr.whisper.decoding import DecodingOptions
from asr.whisper.engine import WhisperEngine

SR = 16_000
TERMS = tuple(f"Term{i} Okonkwo-{i}" for i in range(60))  # far more than fits


@pytest.fixture(scope="module")
def engine() -> WhisperEngine:
    return WhisperEngine()


def _room(decoder) -> int:
    return decoder.n_text_ctx // 2 - 1  # 223 for every Whisper


@pytest.mark.parametrize("n_terms", [0, 1, 5, 60])
@pytest.mark.parametrize("n_context", [0, 10, 111, 150, 400])
@pytest.mark.parametrize("timed", [False, True])
def test_the_prompt_never_exceeds_whispers_room(engine, n_terms, n_context, timed):
    d = engine.decoder
    context = list(range(100, 100 + n_context))
    prev = d.previous_tokens(TERMS[:n_terms], context, timed)
    assert len(prev) <= _room(d)
    # The most recent earlier text is kept, at least half the room of it (all of it without terms).
    k = min(len(context), _room(d) if n_terms == 0 else _room(d) // 2)
    assert prev[len(prev) - k:] == context[len(context) - k:]
    prompt, sot_index = d._prompt(DecodingOptions(vocabulary=TERMS[:n_terms], vocabulary_timed=timed),
                                  None, context, [])
    assert sot_index == (len(prev) + 1 if prev else 0) and prompt[sot_index] == d.tok.sot


def test_the_vocabulary_stays_when_earlier_text_is_long(engine):
    d = engine.decoder
    terms = ("Siobhan", "Okonkwo", "Kubernetes")
    long_context = d.tok.encode(" and then we talked about the budget" * 60)
    prev = d.previous_tokens(terms, long_context)
    text = d.tok.decode(prev)
    assert text.startswith(" Names: Siobhan Okonkwo Kubernetes.")
    assert prev[-20:] == long_context[-20:] and len(prev) == _room(d)


def test_only_whole_terms_go_in(engine):
    d = engine.decoder
    vocab = d.vocabulary_tokens(TERMS, 100)
    assert 0 < len(vocab) <= 100
    text = d.tok.decode(vocab)
    kept = text.removeprefix(" Names: ").removesuffix(".").split(" ")
    assert kept == [w for t in TERMS[: len(kept) // 2] for w in t.split(" ")]  # whole terms, in order
    one_more = d.tok.encode(" Names: " + " ".join(TERMS[: len(kept) // 2 + 1]) + ".")
    assert len(one_more) > 100  # and one more term would not have fitted


def test_a_timed_vocabulary_reads_as_an_earlier_segment(engine):
    d = engine.decoder
    tb = d.tok.timestamp_begin
    prev = d.previous_tokens(("Siobhan",), [], timed=True)
    assert prev[0] == tb and prev[-1] > tb and all(t < d.tok.eot for t in prev[1:-1])


def _say(text: str, voice: str) -> np.ndarray:
    if not (shutil.which("espeak-ng") and shutil.which("sox")):
        pytest.skip("espeak-ng and sox are needed")
    wav = subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "--stdout", text], capture_output=True,
                         check=True).stdout
    raw = subprocess.run(["sox", "-R", "-t", "wav", "-", "-r", str(SR), "-c", "1", "-b", "16", "-e", "signed",
                          "-t", "raw", "-"], input=wav, capture_output=True, check=True).stdout
    pad = np.zeros(SR // 2, np.float32)
    return np.concatenate([pad, np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0, pad])


def _finals(engine, audio, options: SessionOptions) -> str:
    s = engine.start_session(options)
    s.feed_audio(audio)
    events = s.step() + s.finish()
    while not s.idle:
        events += s.step()
    return " ".join(e.text for e in events if isinstance(e, Final))


# Without a vocabulary tiny.en writes "She warns her post does migration is blocked." here.
SENTENCE, VOICE = "Siobhan says the Postgres migration is blocked.", "en-gb"
VOCABULARY = ("Anya", "Siobhan", "Nguyen", "Kubernetes", "Postgres", "Grafana")


def test_the_vocabulary_in_the_prompt_spells_the_names_right(engine):
    audio = _say(SENTENCE, VOICE)
    d = engine.decoder
    feats = d.encode([audio])
    plain = d.decode(feats, DecodingOptions(), [len(audio) / SR])[0].text
    hinted = d.decode(feats, DecodingOptions(vocabulary=VOCABULARY), [len(audio) / SR])[0].text
    assert "Siobhan" not in plain and "Postgres" not in plain, plain
    assert "Siobhan" in hinted and "Postgres" in hinted, hinted


@pytest.mark.parametrize("options", [SessionOptions(partials=False, windowing="seek"),
                                     SessionOptions(partials=False), SessionOptions(partials=True)],
                         ids=["seek", "vad", "live"])
def test_every_windowing_takes_the_vocabulary(engine, options):
    from dataclasses import replace

    audio = _say(SENTENCE, VOICE)
    plain = _finals(engine, audio, options)
    hinted = _finals(engine, audio, replace(options, vocabulary=VOCABULARY))
    assert "Siobhan" not in plain, plain
    assert "Siobhan" in hinted, hinted
