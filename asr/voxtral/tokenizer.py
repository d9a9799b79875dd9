"""Mistral's Tekken tokenizer, read from `tekken.json` without mistral-common.

Layout (mistral-common `tokens/tokenizers/tekken.py`): ids below
`config.default_num_special_tokens` are special (dropped from text); id >= that maps to
`vocab[id - n_special]["token_bytes"]` (base64), the vocab cut to
`default_vocab_size - n_special` entries, whose first 256 are the single bytes. Text is the
UTF-8 of the concatenated bytes; `StreamDecoder` does the same one token at a time.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from asr.base import ASRError

BOS = "<s>"
EOS = "</s>"
STREAMING_PAD = "[STREAMING_PAD]"
STREAMING_WORD = "[STREAMING_WORD]"


class _Malformed(Exception):
    pass


def _need(cond: bool, why: str) -> None:
    if not cond:
        raise _Malformed(why)


def _int(value: Any, what: str) -> int:
    _need(isinstance(value, int) and not isinstance(value, bool), f"{what} is not an integer")
    return value


class TekkenTokenizer:
    """Decoding (and encoding) of a Tekken vocabulary; special ids are looked up by name."""

    def __init__(self, data: Mapping[str, Any], source: str = "tekken.json"):
        try:
            self._load(data)
        except _Malformed as e:
            raise ASRError(f"{source} is not a usable tekken.json: {e}") from None

    @classmethod
    def from_file(cls, path: str | Path) -> TekkenTokenizer:
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except OSError as e:
            raise ASRError(f"cannot read {path}: {e.strerror or e}") from None
        except (ValueError, UnicodeDecodeError) as e:
            raise ASRError(f"{path} is not JSON: {str(e).splitlines()[0]}") from None
        return cls(data, str(path))

    def _load(self, data: Mapping[str, Any]) -> None:
        _need(isinstance(data, dict), "the top level is not an object")
        config = data.get("config")
        _need(isinstance(config, dict), "no 'config' object")
        self.n_special = _int(config.get("default_num_special_tokens"), "config.default_num_special_tokens")
        self.vocab_size = _int(config.get("default_vocab_size"), "config.default_vocab_size")
        self.pattern: str = config.get("pattern", "")
        self.version: str | None = config.get("version")
        inner = self.vocab_size - self.n_special
        _need(self.n_special > 0 and inner >= 256, "fewer than 256 byte tokens after the special tokens")

        self._names = self._load_special(data.get("special_tokens"))
        self._ids = {name: rank for rank, name in self._names.items()}
        vocab = data.get("vocab")
        _need(isinstance(vocab, list), "no 'vocab' list")
        _need(len(vocab) >= inner, f"vocab has {len(vocab)} entries, default_vocab_size needs {inner}")
        # Index = id; special ids decode to nothing. Entries past the cut are never read.
        self._bytes: list[bytes] = [b""] * self.n_special + [self._entry(vocab[i], i) for i in range(inner)]
        _need(len(set(self._bytes)) == inner + 1, "vocab entries repeat")
        self._ranks: dict[bytes, int] | None = None  # built on the first encode
        self._split: Any = None

        audio = data.get("audio", {})
        _need(isinstance(audio, dict), "'audio' is not an object")
        for key in ("sampling_rate", "frame_rate", "transcription_delay_ms", "streaming_n_left_pad_tokens"):
            value = audio.get(key, 0)
            _need(isinstance(value, (int, float)) and not isinstance(value, bool), f"audio.{key} is not a number")
        self.audio: Mapping[str, Any] = MappingProxyType(dict(audio))

        for name in (BOS, EOS, STREAMING_PAD, STREAMING_WORD):
            _need(name in self._ids, f"no {name} special token; is it Voxtral Realtime's tokenizer?")
        self.bos = self.special_id(BOS)
        self.eos = self.special_id(EOS)
        self.streaming_pad = self.special_id(STREAMING_PAD)
        self.streaming_word = self.special_id(STREAMING_WORD)

    def _load_special(self, entries: Any) -> dict[int, str]:
        _need(isinstance(entries, list), "no 'special_tokens' list")
        _need(len(entries) <= self.n_special, f"{len(entries)} special tokens, more than {self.n_special}")
        names: dict[int, str] = {}
        for entry in entries:
            _need(isinstance(entry, dict) and isinstance(entry.get("token_str"), str), "a special token has no name")
            rank = _int(entry.get("rank"), f"the rank of {entry['token_str']}")
            _need(0 <= rank < self.n_special, f"special token {entry['token_str']} has rank {rank}")
            _need(rank not in names, f"two special tokens have rank {rank}")
            names[rank] = entry["token_str"]
        _need(len(set(names.values())) == len(names), "special token names repeat")
        return names

    @staticmethod
    def _entry(entry: Any, index: int) -> bytes:
        _need(isinstance(entry, dict), f"vocab[{index}] is not an object")
        _need(entry.get("rank") == index, f"vocab[{index}] has rank {entry.get('rank')}")
        try:
            piece = base64.b64decode(entry["token_bytes"], validate=True)
        except (KeyError, TypeError, binascii.Error):
            raise _Malformed(f"vocab[{index}] has no base64 token_bytes") from None
        _need(index >= 256 or piece == bytes([index]), f"vocab[{index}] is not the byte {index}")
        _need(len(piece) > 0, f"vocab[{index}] is empty")
        return piece

    def special_id(self, name: str) -> int:
        """The id of a special token by name, e.g. "[STREAMING_PAD]"."""
        rank = self._ids.get(name)
        if rank is None:
            raise ASRError(f"tekken.json has no {name} special token; is it Voxtral Realtime's tokenizer?")
        return rank

    def special_name(self, token_id: int) -> str:
        """The name of a special id; unnamed ones are `<SPECIAL_{id}>` as mistral-common fills them."""
        if not self.is_special(token_id):
            raise ValueError(f"token {token_id} is not special")
        return self._names.get(token_id, f"<SPECIAL_{token_id}>")

    def is_special(self, token_id: int) -> bool:
        return 0 <= token_id < self.n_special

    def id_to_bytes(self, token_id: int) -> bytes:
        """The bytes a token contributes to text: b"" for special ids."""
        if not 0 <= token_id < self.vocab_size:
            raise ValueError(f"token {token_id} is outside the vocabulary of {self.vocab_size}")
        return self._bytes[token_id]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of the ids, special ids dropped; invalid UTF-8 becomes U+FFFD."""
        return b"".join(self.id_to_bytes(int(t)) for t in ids).decode("utf-8", errors="replace")

    def encode(self, text: str) -> list[int]:
        """Byte-level BPE as tiktoken runs it (mistral-common's encoder), no BOS/EOS."""
        try:
            import regex  # a dependency of transformers, which mlx-lm requires
        except ImportError:
            raise ASRError("encoding with tekken.json needs the 'regex' package") from None
        if self._ranks is None:
            self._ranks = {piece: i for i, piece in enumerate(self._bytes) if i >= self.n_special}
            self._split = regex.compile(self.pattern)
        ids: list[int] = []
        for match in self._split.finditer(text):
            ids.extend(self._bpe(match.group().encode("utf-8")))
        return ids

    def _bpe(self, piece: bytes) -> list[int]:
        ranks = self._ranks
        assert ranks is not None
        if piece in ranks:
            return [ranks[piece]]
        parts = [piece[i:i + 1] for i in range(len(piece))]
        while len(parts) > 1:
            # Merge the leftmost adjacent pair whose union has the lowest rank.
            best, at = None, -1
            for i in range(len(parts) - 1):
                rank = ranks.get(parts[i] + parts[i + 1])
                if rank is not None and (best is None or rank < best):
                    best, at = rank, i
            if best is None:
                break
            parts[at:at + 2] = [parts[at] + parts[at + 1]]
        return [ranks[p] for p in parts]


class StreamDecoder:
    """Text deltas, one token at a time: `push` costs only that token's bytes.

    A UTF-8 sequence split across tokens is held back until complete; special ids (BOS,
    `[STREAMING_PAD]`, `[STREAMING_WORD]`, ...) yield "" and do not break a held sequence.
    The deltas of a run of pushes plus `flush` concatenate to `tokenizer.decode` of the ids.
    """

    def __init__(self, tokenizer: TekkenTokenizer):
        self._tok = tokenizer
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    @property
    def pending(self) -> bool:
        """True while bytes of an incomplete character are held back."""
        return bool(self._utf8.getstate()[0])

    def push(self, token_id: int) -> str:
        data = self._tok.id_to_bytes(int(token_id))
        return self._utf8.decode(data) if data else ""

    def flush(self) -> str:
        """End of the text: held-back bytes become U+FFFD; the decoder starts afresh."""
        text = self._utf8.decode(b"", final=True)
        self._utf8.reset()
        return text
