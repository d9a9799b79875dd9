"""Prompt building and answer parsing of the Qwen3-ASR decoder, on a scripted model (a test
double that answers fixed text and records the prompts it is given) and the tokenizer of the
tiny checkpoints."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from asr.base import FLAG_NO_SPEECH, FLAG_REPETITION, SessionOptions
from asr.qwen3.config import Qwen3ASRConfig, conv_out_len
from asr.qwen3.decoding import Qwen3Decoder, parse_answer
from asr.qwen3.engine import Qwen3Utterances
from asr.qwen3.tokenizer import QwenTokenizer
from tests.asr.qwen3.conftest import SPECIAL, original_config

TAG = "<asr_text>"


class ScriptedQwen:
    """Replies `answer` (`language X<asr_text>words`, as the model would unprompted), token by
    token, then <|im_end|>, whatever the audio. When the prompt forces the start of the reply
    (a language tag, committed words), it replies with the rest, as a real model continues."""

    def __init__(self, tok: QwenTokenizer, answer: str):
        self.config = Qwen3ASRConfig.from_dict(original_config())
        self.tok = tok
        self.answer = answer
        self.prompts: list[list[int]] = []
        self.steps = 0
        self._reply: list[int] = []

    def encode(self, mel: mx.array) -> mx.array:
        n = (mel.shape[0] // 100) * 13 + conv_out_len(mel.shape[0] % 100)
        return mx.zeros((n, self.config.text.hidden_size))

    def merged_embeddings(self, ids: list[int], audio: mx.array) -> mx.array:
        assert ids.count(self.config.audio_token_id) == audio.shape[0]
        self.prompts.append(list(ids))
        turn = len(ids) - ids[::-1].index(SPECIAL["<|im_start|>"])
        forced = self.tok.decode(ids[turn:], skip_special=False).removeprefix("assistant\n")
        reply = self.answer
        if forced:
            words, forced_words = self.answer.partition(TAG)[2], forced.partition(TAG)[2]
            reply = words[len(forced_words):] if words.startswith(forced_words) else words
        self._reply = self.tok.encode(reply) + [SPECIAL["<|im_end|>"]]
        return mx.zeros((len(ids), self.config.text.hidden_size))

    def embed(self, ids: list[int]) -> mx.array:
        return mx.zeros((len(ids), self.config.text.hidden_size))

    def make_cache(self) -> dict:
        return {"step": 0}

    def logits(self, embeddings: mx.array, cache: dict) -> mx.array:
        i = cache["step"]
        cache["step"] += 1
        self.steps += 1
        out = np.zeros(self.config.text.vocab_size, np.float32)
        out[self._reply[min(i, len(self._reply) - 1)]] = 1.0
        return mx.array(out)


@pytest.fixture(scope="module")
def tok(qwen3_original) -> QwenTokenizer:
    return QwenTokenizer.from_folder(qwen3_original)


def _decoder(tok, answer: str) -> tuple[Qwen3Decoder, ScriptedQwen]:
    model = ScriptedQwen(tok, answer)
    return Qwen3Decoder(model, tok), model


SPEECH = np.zeros(16000 * 2, np.float32)


def test_prompt_is_the_models_chat_format(tok):
    d, _ = _decoder(tok, "")
    ids = d.prompt(3, context="Anya, Kubernetes, Q3 OKRs", language="en", prefix=tok.encode("Hello"))
    assert tok.decode(ids, skip_special=False) == (
        "<|im_start|>system\nAnya, Kubernetes, Q3 OKRs<|im_end|>\n<|im_start|>user\n"
        "<|audio_start|><|audio_pad|><|audio_pad|><|audio_pad|><|audio_end|><|im_end|>\n"
        "<|im_start|>assistant\nlanguage English<asr_text>Hello"
    )
    # No context: the system turn is still there, empty (as the original always sends it);
    # no language: the model writes the tag itself, and a prefix cannot be forced before it.
    ids = d.prompt(1, prefix=tok.encode("Hello"))
    assert tok.decode(ids, skip_special=False) == (
        "<|im_start|>system\n<|im_end|>\n<|im_start|>user\n<|audio_start|><|audio_pad|><|audio_end|>"
        "<|im_end|>\n<|im_start|>assistant\n"
    )
    # Encoding the whole prompt string gives the same ids as building it piece by piece.
    text = tok.decode(d.prompt(2, context="Q3 OKRs", language="fr"), skip_special=False)
    assert tok.encode(text) == d.prompt(2, context="Q3 OKRs", language="fr")


def test_detected_language_is_parsed_and_never_reaches_the_transcript(tok):
    d, model = _decoder(tok, "language French<asr_text>bonjour tout le monde")
    r = d.transcribe(SPEECH)
    assert (r.text, r.language, r.flags) == ("bonjour tout le monde", "fr", ())
    assert model.prompts[0].count(SPECIAL["<|audio_pad|>"]) == 26  # 2 s: 13 tokens a second


def test_forced_language_and_prefix_are_in_the_prompt_and_the_text(tok):
    d, model = _decoder(tok, "language English<asr_text>Hello Anya, how are you")
    r = d.transcribe(SPEECH, context="Anya", language="en", prefix="Hello Anya, how")
    assert r.text == "Hello Anya, how are you" and r.language == "en"
    prompt = tok.decode(model.prompts[0], skip_special=False)
    assert prompt.startswith("<|im_start|>system\nAnya<|im_end|>")
    assert prompt.endswith("<|im_start|>assistant\nlanguage English<asr_text>Hello Anya, how")


def test_no_speech_answer_gives_no_text(tok):
    d, _ = _decoder(tok, "language None<asr_text>")
    r = d.transcribe(SPEECH)
    assert r.text == "" and FLAG_NO_SPEECH in r.flags


def test_a_second_tag_ends_the_answer(tok):
    d, _ = _decoder(tok, "language English<asr_text>the budget is approved<asr_text>the budget")
    assert d.transcribe(SPEECH).text == "the budget is approved"


def test_repetition_loops_are_cut_and_flagged(tok):
    d, model = _decoder(tok, "language English<asr_text>we will" + " go on and" * 40)
    r = d.transcribe(SPEECH)
    assert FLAG_REPETITION in r.flags
    assert r.text.startswith("we will go on and") and r.text.count("go on and") == 1
    assert model.steps < 60  # stopped soon after the loop, not at the token limit


def test_decoding_stops_at_the_token_limit(tok):
    d, model = _decoder(tok, "language English<asr_text>" + " ".join(f"w{i}" for i in range(400)))
    d.transcribe(SPEECH)  # 2 s of audio: 16 + 10 tokens a second
    assert model.steps <= 16 + 20 + 1


@pytest.mark.parametrize("answer, language, text", [
    ("language English<asr_text>Hi.", "en", "Hi."),
    ("language Chinese<asr_text>你好", "zh", "你好"),
    ("language Klingon<asr_text>Qapla'", None, "Qapla'"),
    ("language None<asr_text>", None, None),
    ("Just text", None, "Just text"),
    ("language English", None, ""),
])  # fmt: skip
def test_parse_answer(answer, language, text):
    assert parse_answer(answer) == (language, text)


def test_utterances_adapter_uses_the_users_context_and_language(tok):
    d, model = _decoder(tok, "language German<asr_text>words")
    u = Qwen3Utterances(d, SessionOptions(language="de", context="Kubernetes"))
    t = u.decode(SPEECH, prefix="", heard=(), timestamps=True)
    assert t.text == "words" and t.segments == ()
    prompt = tok.decode(model.prompts[0], skip_special=False)
    assert "Kubernetes" in prompt and "language German" in prompt
    assert u.decode(np.zeros(800, np.float32), "", (), False).text == ""  # under 0.1 s: nothing
    assert [x.text for x in u.decode_many([SPEECH, SPEECH])] == ["words", "words"]
