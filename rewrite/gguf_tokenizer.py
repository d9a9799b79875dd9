"""The tokenizer and chat template a GGUF file carries in its metadata.

GGUF has no `tokenizer.json`: the vocabulary (`tokenizer.ggml.tokens`), the merges, each
token's type (3: control, 4: user-defined) and the special ids are metadata. A byte-level
BPE (`tokenizer.ggml.model = gpt2`, what Llama 3, Qwen 2/3 and SmolLM files use) is built
here with the `tokenizers` library, pre-tokenized the way `tokenizer.ggml.pre` names (as
llama.cpp splits text for that vocabulary). The chat template is rendered with jinja2 in a
sandbox, as transformers renders it; neither needs transformers.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from rewrite.base import RewriteError

CONTROL, USER_DEFINED = 3, 4
# Text splits before byte-level BPE, by `tokenizer.ggml.pre` (llama.cpp's names). None:
# GPT-2's own split, which the ByteLevel pre-tokenizer applies itself.
_LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
           r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_QWEN2 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
          r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
PRE_SPLITS: dict[str, str | None] = {
    "default": None, "gpt-2": None, "gpt2": None, "smollm": None,
    "llama-bpe": _LLAMA3, "llama3": _LLAMA3, "llama-v3": _LLAMA3, "smaug-bpe": _LLAMA3, "dbrx": _LLAMA3,
    "qwen2": _QWEN2, "deepseek-r1-qwen": _QWEN2,
}
# Tokens that end a turn in the chat formats we run (when the file marks them as control).
END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<|endoftext|>", "<|end_of_text|>", "<end_of_turn>",
               "<|end|>")


def _scalar(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _ints(value: Any) -> list[int]:
    return [int(v) for v in (value.tolist() if hasattr(value, "tolist") else value)]


class GGUFTokenizer:
    """What the mlx backend asks of a tokenizer: encode, decode, the chat template, stop
    tokens, and a streaming decoder."""

    def __init__(self, metadata: dict[str, Any]):
        from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

        kind = metadata.get("tokenizer.ggml.model")
        if kind != "gpt2":
            raise RewriteError(f"this GGUF's tokenizer is {kind!r}; only byte-level BPE ('gpt2': Llama 3, Qwen, "
                               "SmolLM) is read from GGUF files")
        pre = str(metadata.get("tokenizer.ggml.pre", "default"))
        if pre not in PRE_SPLITS:
            raise RewriteError(f"this GGUF's tokenizer splits text as {pre!r}, which notetaker does not know; "
                               f"known: {', '.join(sorted(PRE_SPLITS))}")
        self.tokens: list[str] = list(metadata["tokenizer.ggml.tokens"])
        merges = [tuple(m.split(" ", 1)) for m in metadata.get("tokenizer.ggml.merges", [])]
        types = _ints(metadata["tokenizer.ggml.token_type"]) if "tokenizer.ggml.token_type" in metadata \
            else [1] * len(self.tokens)
        tok = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(self.tokens)}, merges=merges))
        split = PRE_SPLITS[pre]
        if split is None:
            tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        else:
            tok.pre_tokenizer = pre_tokenizers.Sequence([
                pre_tokenizers.Split(Regex(split), behavior="isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
        tok.decoder = decoders.ByteLevel()
        # Control tokens (<|im_start|>) and user-defined ones (<think>) are matched whole in text.
        tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                                for t, k in zip(self.tokens, types) if k == CONTROL])
        tok.add_tokens([AddedToken(t, special=False, normalized=False)
                        for t, k in zip(self.tokens, types) if k == USER_DEFINED])
        self.backend = tok

        def special(key: str) -> int | None:
            value = metadata.get(f"tokenizer.ggml.{key}")
            return None if value is None else int(_scalar(value))

        self.bos_token_id, self.eos_token_id = special("bos_token_id"), special("eos_token_id")
        self.pad_token_id, self.unk_token_id = special("padding_token_id"), special("unknown_token_id")
        self.add_bos = bool(_scalar(metadata.get("tokenizer.ggml.add_bos_token", False)))
        self.chat_template: str | None = metadata.get("tokenizer.chat_template")
        control = {t for t, k in zip(self.tokens, types) if k == CONTROL}
        stops = {self.eos_token_id, special("eot_token_id"), special("eom_token_id")}
        stops |= {self.tokens.index(t) for t in END_OF_TURN if t in control}
        self.eos_token_ids: set[int] = {i for i in stops if i is not None}

    def token(self, token_id: int | None) -> str | None:
        return None if token_id is None or not 0 <= token_id < len(self.tokens) else self.tokens[token_id]

    @property
    def has_chat_template(self) -> bool:
        return bool(self.chat_template)

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        ids = self.backend.encode(text, add_special_tokens=False).ids
        if add_special_tokens and self.add_bos and self.bos_token_id is not None:
            ids = [self.bos_token_id, *ids]
        return ids

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        return self.backend.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def render_chat(self, messages: Sequence[dict[str, str]], add_generation_prompt: bool = True) -> str:
        """The chat template rendered as transformers renders it (sandboxed jinja2, blocks
        trimmed, `raise_exception`, `strftime_now`, `tojson`)."""
        if not self.chat_template:
            raise RewriteError("this GGUF has no chat template (tokenizer.chat_template)")
        return _template(self.chat_template).render(
            messages=list(messages), add_generation_prompt=add_generation_prompt,
            bos_token=self.token(self.bos_token_id) or "", eos_token=self.token(self.eos_token_id) or "",
            pad_token=self.token(self.pad_token_id), unk_token=self.token(self.unk_token_id))

    def apply_chat_template(self, messages: Sequence[dict[str, str]], add_generation_prompt: bool = True) -> list[int]:
        """Token ids of the rendered template (its special tokens are in the text)."""
        return self.encode(self.render_chat(messages, add_generation_prompt), add_special_tokens=False)

    def stream_text(self, ids: Iterable[int]) -> Iterator[str]:
        """Text pieces for token ids as they come, whole UTF-8 characters only."""
        from tokenizers.decoders import DecodeStream

        stream = DecodeStream(skip_special_tokens=False)
        for token in ids:
            piece = stream.step(self.backend, token)
            yield piece or ""


def _template(source: str):
    import jinja2
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x: Any, ensure_ascii: bool = False, indent: int | None = None, separators=None,
               sort_keys: bool = False) -> str:
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env.from_string(source)
