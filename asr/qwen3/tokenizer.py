"""Qwen3-ASR's tokenizer, Qwen2's byte-level BPE, on `tokenizers` (no transformers).

A checkpoint ships `vocab.json` + `merges.txt` + `tokenizer_config.json`, sometimes a
`tokenizer.json` too, which is then used as it is. From the pair, the tokenizer is built
as transformers' `Qwen2Tokenizer` builds it (`models/qwen2/tokenization_qwen2.py`):
NFC, a split on Qwen2's pattern, the byte-to-unicode mapping with no prefix space,
plain BPE (no unk, no dropout), a byte-level decoder. The tokens listed under
`added_tokens_decoder` in `tokenizer_config.json` (`<|im_start|>`, `<|audio_pad|>`,
`<asr_text>`, ...) are matched whole in text, at their listed ids, with their flags:
`decode` drops the special ones and keeps `<asr_text>` (not special) for the caller.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tokenizers import (
    AddedToken,
    Regex,
    Tokenizer,
    decoders,
    normalizers,
    pre_tokenizers,
)
from tokenizers.models import BPE

from asr.base import ASRError, ModelNotFoundError

# Qwen2Tokenizer's PRETOKENIZE_REGEX, verbatim.
PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"""
    r""" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
EOS_TOKENS = ("<|im_end|>", "<|endoftext|>")
SPLIT_FILES = ("vocab.json", "merges.txt", "tokenizer_config.json")
_FLAGS = ("single_word", "lstrip", "rstrip", "normalized", "special")


class QwenTokenizer:
    """Encoding and decoding of a Qwen2-family vocabulary."""

    def __init__(self, tokenizer: Tokenizer):
        self._tk = tokenizer
        vocab = tokenizer.get_vocab(with_added_tokens=True)
        self._vocab_size = max(vocab.values(), default=-1) + 1
        # Qwen3-ASR ends its reply with <|im_end|>; <|endoftext|> also stops it.
        self.eos_ids: tuple[int, ...] = tuple(
            vocab[t] for t in EOS_TOKENS if t in vocab
        )

    @classmethod
    def from_folder(cls, folder: str | Path) -> QwenTokenizer:
        """From `tokenizer.json` if there is one, else from the SPLIT_FILES."""
        folder = Path(folder)
        if not folder.is_dir():
            raise ModelNotFoundError(f"no tokenizer folder {folder}")
        if (folder / "tokenizer.json").is_file():
            return cls(_from_tokenizer_json(folder / "tokenizer.json"))
        missing = [name for name in SPLIT_FILES if not (folder / name).is_file()]
        if missing:
            raise ModelNotFoundError(
                f"{folder} has no tokenizer.json and no {', '.join(missing)}"
            )
        vocab = _read_vocab(folder / "vocab.json")
        merges = _read_merges(folder / "merges.txt")
        added = _read_added_tokens(folder / "tokenizer_config.json")
        return cls(_build(vocab, merges, added, folder))

    @property
    def vocab_size(self) -> int:
        """The largest id + 1, added tokens included (the embedding may be larger)."""
        return self._vocab_size

    def encode(self, text: str) -> list[int]:
        """Ids of the text; added tokens written in it become their ids. No BOS/EOS."""
        return self._tk.encode(text, add_special_tokens=False).ids

    def decode(self, ids: Iterable[int], skip_special: bool = True) -> str:
        """Text of the ids; special added tokens dropped if `skip_special`."""
        return self._tk.decode([int(i) for i in ids], skip_special_tokens=skip_special)

    def token_id(self, content: str) -> int | None:
        """The id of an added token ("<|im_end|>") or a vocab entry ("Ġhello")."""
        return self._tk.token_to_id(content)


def _from_tokenizer_json(path: Path) -> Tokenizer:
    try:
        return Tokenizer.from_file(str(path))
    except Exception as e:  # tokenizers raises a bare Exception on bad JSON
        raise ASRError(f"cannot read tokenizer {path}: {_first_line(e)}") from None


def _build(
    vocab: dict[str, int],
    merges: list[tuple[str, str]],
    added: dict[int, AddedToken],
    folder: Path,
) -> Tokenizer:
    # Each added token also goes into the BPE vocab at its id, so that `add_tokens`
    # keeps that id instead of numbering the tokens on from the end of the vocab. BPE
    # never yields them (no merge builds them); text is split at them before BPE.
    by_id = {i: t for t, i in vocab.items()}
    full = dict(vocab)
    for token_id, token in added.items():
        known = vocab.get(token.content)
        if known is not None and known != token_id:
            raise ASRError(
                f"{folder}: added token {token.content} has id {token_id}, "
                f"vocab.json gives it {known}"
            )
        if known is None and token_id in by_id:
            raise ASRError(
                f"{folder}: added token {token.content} has id {token_id}, "
                f"which vocab.json gives to {by_id[token_id]!r}"
            )
        full[token.content] = token_id
    try:
        model = BPE(
            vocab=full,
            merges=merges,
            dropout=None,
            unk_token=None,
            continuing_subword_prefix="",
            end_of_word_suffix="",
            fuse_unk=False,
            byte_fallback=False,
        )
    except Exception as e:  # e.g. a merge of tokens that are not in the vocab
        raise ASRError(
            f"{folder}: merges.txt does not fit vocab.json: {_first_line(e)}"
        ) from None
    tk = Tokenizer(model)
    tk.normalizer = normalizers.NFC()
    split = pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated")
    tk.pre_tokenizer = pre_tokenizers.Sequence(
        [split, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]
    )
    tk.decoder = decoders.ByteLevel()
    tk.add_tokens([added[i] for i in sorted(added)])
    return tk


def _load_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as e:
        raise ASRError(f"cannot read {path}: {e.strerror or e}") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise ASRError(f"{path} is not JSON: {_first_line(e)}") from None


def _read_vocab(path: Path) -> dict[str, int]:
    data = _load_json(path)
    if not isinstance(data, dict) or not data:
        raise ASRError(f"{path} is not a vocabulary: no object of token -> id")
    for token, token_id in data.items():
        if not _is_id(token_id):
            raise ASRError(f"{path}: token {token!r} has id {token_id!r}")
    return data


def _read_merges(path: Path) -> list[tuple[str, str]]:
    """As `tokenizers`' `BPE.read_file`: "#version" lines skipped, then pairs."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ASRError(f"cannot read {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ASRError(f"{path} is not UTF-8 text") from None
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    merges: list[tuple[str, str]] = []
    for number, line in enumerate(lines, 1):
        line = line.removesuffix("\r")
        if line.startswith("#version"):
            continue
        parts = line.split(" ")
        if len(parts) != 2:
            raise ASRError(f"{path}: line {number} is not two tokens")
        merges.append((parts[0], parts[1]))
    return merges


def _read_added_tokens(path: Path) -> dict[int, AddedToken]:
    """`added_tokens_decoder`: {"151644": {"content": "<|im_start|>", ...}, ...}."""
    data = _load_json(path)
    if not isinstance(data, dict):
        raise ASRError(f"{path} is not a tokenizer config: not a JSON object")
    entries = data.get("added_tokens_decoder", {})
    if not isinstance(entries, dict):
        raise ASRError(f"{path}: added_tokens_decoder is not an object")
    added: dict[int, AddedToken] = {}
    for key, entry in entries.items():
        content = entry.get("content") if isinstance(entry, dict) else None
        valid_id = key.isascii() and key.isdigit() and _is_id(int(key))
        if not valid_id or not isinstance(content, str) or not content:
            raise ASRError(f"{path}: added token {key!r} is not an id with a content")
        flags = {name: entry[name] for name in _FLAGS if name in entry}
        if not all(isinstance(v, bool) for v in flags.values()):
            raise ASRError(f"{path}: added token {content} has a non-boolean flag")
        added[int(key)] = AddedToken(content, **flags)
    contents = [t.content for t in added.values()]
    if len(set(contents)) != len(contents):
        raise ASRError(f"{path}: an added token is listed under two ids")
    return added


def _is_id(value: Any) -> bool:
    return type(value) is int and 0 <= value < 2**32


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__
