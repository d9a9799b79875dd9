"""Whisper's tokenizer from `tokenizer.json` through `tokenizers`, plus the special
ids Whisper decoding needs (looked up by name, never hard-coded: the English,
multilingual and large-v3 vocabularies place them differently)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from tokenizers import Tokenizer

from asr.base import ASRError
from asr.whisper.spec import LANGUAGES



class WhisperTokenizer:
    def __init__(self, tokenizer_file: str | Path, n_vocab: int):
        try:
            self._tk = Tokenizer.from_file(str(tokenizer_file))
        except Exception as e:  # tokenizers raises a bare Exception on bad JSON
            raise ASRError(f"cannot read tokenizer {tokenizer_file}: {str(e).splitlines()[0]}") from None
        self.n_vocab = n_vocab
        self.eot = self._id("<|endoftext|>")
        self.sot = self._id("<|startoftranscript|>")
        self.translate = self._id("<|translate|>")
        self.transcribe = self._id("<|transcribe|>")
        self.sot_lm = self._id("<|startoflm|>")
        self.sot_prev = self._id("<|startofprev|>")
        self.no_speech = self._id("<|nospeech|>", "<|nocaptions|>")
        self.no_timestamps = self._id("<|notimestamps|>")
        # Timestamp tokens <|0.00|> ... <|30.00|> follow <|notimestamps|> to the end of the vocabulary.
        self.timestamp_begin = self.no_timestamps + 1
        self.multilingual = n_vocab >= 51865
        self.language_ids: dict[str, int] = {}
        if self.multilingual:
            for code in LANGUAGES:
                tid = self._tk.token_to_id(f"<|{code}|>")
                if tid is not None and tid < self.translate:
                    self.language_ids[code] = tid

    def _id(self, *names: str) -> int:
        for name in names:
            tid = self._tk.token_to_id(name)
            if tid is not None:
                return tid
        raise ASRError(f"tokenizer has no {names[0]} token; is it a Whisper tokenizer?")

    def encode(self, text: str) -> list[int]:
        return self._tk.encode(text, add_special_tokens=False).ids

    def decode(self, tokens) -> str:
        """Text of the text tokens (special and timestamp tokens dropped)."""
        return self._tk.decode([int(t) for t in tokens if t < self.eot])

    def sot_sequence(self, language: str | None, task: str = "transcribe") -> list[int]:
        seq = [self.sot]
        if self.multilingual:
            lang = language or "en"
            if lang not in self.language_ids:
                raise ASRError(f"language {lang!r} is not supported by this model")
            seq += [self.language_ids[lang], self.translate if task == "translate" else self.transcribe]
        return seq

    @cached_property
    def non_speech_tokens(self) -> tuple[int, ...]:
        """Tokens for speaker tags, music notes and bracketed annotations (never spoken)."""
        symbols = list('"#()*+/:;<=>@[\\]^_`{|}~「」『』')
        symbols += "<< >> <<< >>> -- --- -( -[ (' (\" (( )) ((( ))) [[ ]] {{ }} ♪♪ ♪♪♪".split()
        miscellaneous = set("♩♪♫♬♭♮♯")
        # Hyphens and apostrophes are fine inside words, not at the start of one.
        result = {self.encode(" -")[0], self.encode(" '")[0]}
        for symbol in symbols + sorted(miscellaneous):
            for tokens in (self.encode(symbol), self.encode(" " + symbol)):
                if len(tokens) == 1 or symbol in miscellaneous:
                    result.add(tokens[0])
        return tuple(sorted(result))

    def suppress_tokens(self) -> tuple[int, ...]:
        """Never sampled: non-speech symbols and control tokens."""
        specials = [self.transcribe, self.translate, self.sot, self.sot_prev, self.sot_lm, self.no_speech]
        return tuple(sorted(set(self.non_speech_tokens) | set(specials)))
