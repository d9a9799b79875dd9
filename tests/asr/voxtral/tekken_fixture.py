"""A tiny tekken.json in the real format, small enough for tiny random Voxtral models.

Same structure as the published file (`config`, `vocab` of {rank, token_bytes, token_str},
`special_tokens` of {rank, token_str, is_control}, an `audio` section), with a small
vocabulary: `n_special` special ids, then the 256 single bytes, then merges of a few words
(English, "é", "日本", "😀", with partial-UTF-8 pieces as the real vocab has), then filler
pairs up to `vocab_size`, then `extra_vocab` entries past the cut (the real file lists
150000 entries and uses 130072).

    tiny = write_tiny_tekken(tmp_path / "tekken.json")          # 1024 ids, 512 special
    tok = TekkenTokenizer.from_file(tiny.path)
    tok.decode(tiny.ids(" hello", " world")) == " hello world"
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Named special tokens at their published ranks. 0-19: mistral-common's legacy layout
# (Tekkenizer.DEPRECATED_SPECIAL_TOKENS), kept by later files; 24/25: voxtral.c MODEL.md;
# 32/33: the Realtime file (MODEL-NOTES). The rest are "<SPECIAL_{rank}>" fillers.
REALTIME_SPECIAL_RANKS: dict[str, int] = {
    "<unk>": 0, "<s>": 1, "</s>": 2, "[INST]": 3, "[/INST]": 4, "[AVAILABLE_TOOLS]": 5,
    "[/AVAILABLE_TOOLS]": 6, "[TOOL_RESULTS]": 7, "[/TOOL_RESULTS]": 8, "[TOOL_CALLS]": 9,
    "[IMG]": 10, "<pad>": 11, "[IMG_BREAK]": 12, "[IMG_END]": 13, "[PREFIX]": 14,
    "[MIDDLE]": 15, "[SUFFIX]": 16, "[SYSTEM_PROMPT]": 17, "[/SYSTEM_PROMPT]": 18,
    "[TOOL_CONTENT]": 19, "[AUDIO]": 24, "[BEGIN_AUDIO]": 25,
    "[STREAMING_PAD]": 32, "[STREAMING_WORD]": 33,
}

# The tokenizer's split pattern, verbatim from the published tekken files.
TEKKEN_PATTERN = (
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|"
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|"
    r"\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

REALTIME_AUDIO: dict[str, Any] = {
    "sampling_rate": 16000,
    "frame_rate": 12.5,
    "audio_encoding_config": {"num_mel_bins": 128, "hop_length": 160, "window_size": 400},
    "transcription_format": "streaming",
    "transcription_delay_ms": 480,
    "streaming_look_ahead_ms": 2.5,
    "streaming_look_back_ms": 52.5,
    "streaming_n_left_pad_tokens": 32,
}

# Each word brings all its prefixes of two or more bytes, so BPE can build it pair by pair;
# prefixes that end inside a character ("\xf0\x9f", " caf\xc3") are partial-UTF-8 tokens.
WORDS = (
    " hello", "hello", " world", " the", " meeting", " notes", " we", " a", " is", " and",
    " to", " it", "Hello", " Hello", " café", " naïve", "é", "日本", " 日本", "語", "😀", " 😀",
    " ok", ",", ".", "!", "?", " -", "'s",
)


@dataclass(frozen=True)
class TinyTekken:
    path: Path
    vocab_size: int
    n_special: int
    special: dict[str, int]  # name -> id of every named special token
    pieces: tuple[bytes, ...] = field(repr=False)  # the inner vocab, ranks 0 .. vocab_size - n_special - 1

    def id_of(self, piece: bytes | str) -> int:
        """The token id of one vocab piece ("é", b"\\xf0\\x9f")."""
        raw = piece.encode("utf-8") if isinstance(piece, str) else piece
        return self.pieces.index(raw) + self.n_special

    def ids(self, *pieces: bytes | str) -> list[int]:
        return [self.id_of(p) for p in pieces]


def _merges() -> list[bytes]:
    found: set[bytes] = set()
    for word in WORDS:
        raw = word.encode("utf-8")
        found.update(raw[:k] for k in range(2, len(raw) + 1))
    return sorted(found, key=lambda b: (len(b), b))


def _fillers() -> list[bytes]:
    # Letter pairs no test word builds on, for as many ids as the size asks.
    letters = "QXZJVKWYFGPBUMCDNRLHSTOIAE"
    return [(a + b).encode() for a in letters for b in letters.lower()] + [
        (a + b).encode() for a in letters for b in letters]


def _entry(rank: int, piece: bytes) -> dict[str, Any]:
    try:
        text: str | None = piece.decode("utf-8")
    except UnicodeDecodeError:
        text = None  # the published file stores null for partial UTF-8
    return {"rank": rank, "token_bytes": base64.b64encode(piece).decode("ascii"), "token_str": text}


def write_tiny_tekken(path: str | Path, *, vocab_size: int = 1024, n_special: int = 512,
                      special_ranks: dict[str, int] | None = None, extra_vocab: int = 8,
                      audio: dict[str, Any] | None = None, version: str = "v13") -> TinyTekken:
    """Write a tekken.json of `vocab_size` ids, `n_special` of them special.

    `special_ranks` replaces the named special tokens (name -> rank), e.g. to prove ids are
    read from the file; `audio` replaces the audio section ({} leaves it out).
    """
    names = dict(REALTIME_SPECIAL_RANKS if special_ranks is None else special_ranks)
    if max(names.values(), default=-1) >= n_special:
        raise ValueError(f"a special rank does not fit in {n_special} special tokens")
    merges = _merges()
    inner = vocab_size - n_special
    if inner < 256 + len(merges):
        raise ValueError(f"vocab_size must be at least n_special + {256 + len(merges)}")
    fillers = [f for f in _fillers() if f not in merges]
    pieces = [bytes([i]) for i in range(256)] + merges + fillers
    if len(pieces) < inner + extra_vocab:
        raise ValueError(f"the fixture has at most {len(pieces) - extra_vocab} non-special tokens")
    pieces = pieces[: inner + extra_vocab]

    by_rank = {rank: name for name, rank in names.items()}
    special = [{"rank": r, "token_str": by_rank.get(r, f"<SPECIAL_{r}>"), "is_control": True}
               for r in range(n_special)]
    data: dict[str, Any] = {
        "config": {
            "pattern": TEKKEN_PATTERN,
            "num_vocab_tokens": len(pieces),
            "default_vocab_size": vocab_size,
            "default_num_special_tokens": n_special,
            "version": version,
        },
        "vocab": [_entry(rank, piece) for rank, piece in enumerate(pieces)],
        "special_tokens": special,
    }
    audio = REALTIME_AUDIO if audio is None else audio
    if audio:
        data["audio"] = audio
    path = Path(path)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return TinyTekken(path, vocab_size, n_special, names, tuple(pieces[:inner]))
