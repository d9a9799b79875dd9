"""Greedy transcription of one utterance with Qwen3-ASR.

Prompt (the model's chat format; the system turn carries the biasing context):
    <|im_start|>system\\n{context}<|im_end|>\\n<|im_start|>user\\n<|audio_start|>
    <|audio_pad|> x N <|audio_end|><|im_end|>\\n<|im_start|>assistant\\n
The model answers `language English<asr_text>the words`. A forced language is written into
the prompt (`language English<asr_text>`), and so is a committed prefix after it; otherwise
the language is read from the answer. The `language X` part never reaches the transcript.
"""

from __future__ import annotations

from dataclasses import dataclass

import mlx.core as mx
import numpy as np

from asr.base import FLAG_NO_SPEECH, FLAG_REPETITION, SAMPLE_RATE
from asr.features import log_mel
from asr.qwen3.config import LANGUAGE_NAMES
from asr.qwen3.model import Qwen3ASR
from asr.qwen3.tokenizer import QwenTokenizer
from asr.repetition import find_loop

ASR_TEXT = "<asr_text>"
MIN_SAMPLES = SAMPLE_RATE // 2  # shorter clips are zero-padded to 0.5 s, as the original does
_NAME_TO_CODE = {v.lower(): k for k, v in LANGUAGE_NAMES.items()}


@dataclass(frozen=True)
class Result:
    text: str  # prefix + the decoded words, without the language tag
    language: str | None  # ISO code, forced or detected (None: not recognised)
    tokens: tuple[int, ...]  # the generated ids
    flags: tuple[str, ...] = ()


def features(audio: np.ndarray, n_mels: int) -> np.ndarray:
    """The log-mel (frames, n_mels) of one utterance, clamped at its own max - 8."""
    x = np.asarray(audio, dtype=np.float32).reshape(-1)
    if x.size < MIN_SAMPLES:
        x = np.pad(x, (0, MIN_SAMPLES - x.size))
    return log_mel(x, n_mels, pad_to=None)


class Qwen3Decoder:
    def __init__(self, model: Qwen3ASR, tokenizer: QwenTokenizer):
        self.model = model
        self.tok = tokenizer
        cfg = model.config
        self._head = tokenizer.encode("<|im_start|>system\n")
        self._user = tokenizer.encode("<|im_end|>\n<|im_start|>user\n") + [cfg.audio_start_token_id]
        self._assistant = [cfg.audio_end_token_id] + tokenizer.encode("<|im_end|>\n<|im_start|>assistant\n")
        self.eos = set(tokenizer.eos_ids)

    def prompt(self, n_audio: int, context: str = "", language: str | None = None,
               prefix: list[int] | None = None) -> list[int]:
        """The prompt ids; `prefix` (tokens of committed words) only with a known language."""
        ids = self._head + (self.tok.encode(context.strip()) if context.strip() else []) + self._user
        ids += [self.model.config.audio_token_id] * n_audio + self._assistant
        if language is not None:
            ids += self.tok.encode(f"language {LANGUAGE_NAMES[language]}{ASR_TEXT}") + list(prefix or [])
        return ids

    def encode(self, audio: np.ndarray) -> mx.array:
        mel = features(audio, self.model.config.audio.num_mel_bins)
        out = self.model.encode(mx.array(mel))
        mx.eval(out)
        return out

    def transcribe(self, audio: np.ndarray, context: str = "", language: str | None = None,
                   prefix: str = "", max_new_tokens: int | None = None) -> Result:
        """Greedy decoding of one utterance (at most 30 s)."""
        audio_embeds = self.encode(audio)
        forced = self.tok.encode(prefix.strip()) if language is not None and prefix.strip() else []
        ids = self.prompt(audio_embeds.shape[0], context, language, forced)
        seconds = max(audio.size, MIN_SAMPLES) / SAMPLE_RATE
        limit = max_new_tokens or int(16 + 10 * seconds)
        tokens = self.generate(self.model.merged_embeddings(ids, audio_embeds), limit)
        flags: tuple[str, ...] = ()
        cut = find_loop(tokens)
        if cut is not None:
            tokens, flags = tokens[:cut], (FLAG_REPETITION,)
        text = self.tok.decode(forced + tokens)
        if language is None:
            language, text = parse_answer(text)
            if text is None:  # "language None": the model heard no speech
                return Result("", None, tuple(tokens), (FLAG_NO_SPEECH,))
        # Some answers close with a second tag (`...<asr_text>words<asr_text>`): the end.
        return Result(text.partition(ASR_TEXT)[0].strip(), language, tuple(tokens), flags)

    def generate(self, embeddings: mx.array, limit: int) -> list[int]:
        cache = self.model.make_cache()
        logits = self.model.logits(embeddings, cache)
        out: list[int] = []
        while len(out) < limit:
            token = int(mx.argmax(logits).item())
            if token in self.eos:
                break
            out.append(token)
            if len(out) % 8 == 0 and find_loop(out) is not None:
                break
            logits = self.model.logits(self.model.embed([token]), cache)
        return out


def parse_answer(text: str) -> tuple[str | None, str | None]:
    """(ISO code or None, transcript) from `language X<asr_text>words`. The transcript is
    None when the model says `language None` (no speech)."""
    head, sep, rest = text.partition(ASR_TEXT)
    if not sep:  # no tag: a bare answer, or one cut before the tag
        return None, "" if text.startswith("language ") else text
    name = head.strip()
    name = name[len("language "):].strip() if name.lower().startswith("language ") else name
    if name.lower() == "none":
        return None, None if not rest.strip() else rest
    return _NAME_TO_CODE.get(name.lower()), rest
