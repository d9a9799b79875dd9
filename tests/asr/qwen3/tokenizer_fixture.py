"""A small Qwen tokenizer in the real on-disk format, for tiny random Qwen3-ASR models.

The published Qwen3-ASR repos ship `vocab.json` (the byte-level BPE vocab, ids
0..151642), `merges.txt` ("#version: 0.2", then one merge a line) and
`tokenizer_config.json`, whose `added_tokens_decoder` numbers the added tokens on from
the end of the vocab (`<|endoftext|>` 151643, ..., `<asr_text>` 151704) with no gaps;
the model's embedding (151936) is larger than the tokenizer. This writes the same
layout, small: a BPE trained with `tokenizers` on the Qwen2 pre-tokenization over the
text below, exactly `min(special.values())` entries long (bytes first, in GPT-2's
byte order as Qwen's vocab.json has them), then the added tokens. Ids between the
given special ids get filler special tokens `<|reserved_{id}|>`, as transformers'
`Qwen2Tokenizer` numbers added tokens on from the vocab and would shift the later ones
past a gap. Ids past the last special id, up to `vocab_size`, are unused.

    write_qwen_tokenizer(tmp_path, 1024, {"<|endoftext|>": 1000, "<|im_end|>": 1002})
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from tokenizers import (
    AddedToken,
    Regex,
    Tokenizer,
    decoders,
    normalizers,
    pre_tokenizers,
)
from tokenizers.models import BPE
from tokenizers.trainers import BpeTrainer

NOT_SPECIAL = frozenset({"<asr_text>"})

# transformers' models/qwen2/tokenization_qwen2.py PRETOKENIZE_REGEX (kept apart from
# asr.qwen3.tokenizer's copy on purpose: this is the reference side).
QWEN2_PATTERN = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"""
    r""" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

CORPUS = """\
Good morning everyone, let's get started with the weekly planning meeting.
The budget for the next quarter has not been approved yet, so we'll keep spending flat.
Please send me the final report before Friday afternoon; I'd like to read it twice.
We decided to move the product launch to the second week of March.
Can you explain why the server went down last night? It was down for 42 minutes.
Anya will own the Kubernetes migration, and Ravi takes the billing service.
Revenue in Q3 2024 grew 12% over Q2, with 3,500 new customers and $1.2M in bookings.
Action items: update the roadmap, book the room for Tuesday at 10:30, and call legal.
I think we should ship it. Does anyone disagree? No? Great, then it's settled.
The transcript of this call is stored locally; nothing leaves the laptop.
Notes: latency is under 300 ms, accuracy on the test set is 96.4 percent.
Let me share my screen. Can everyone see the slides now? Next slide, please.
We're running out of time, so let's take the remaining questions offline.
Thanks, everyone. See you next week, same time, same place.
The meeting in Zürich moved to the café near the station; the naïve plan failed.
Crème brûlée, jalapeño, façade, São Paulo, Kraków, Ærøskøbing, Straße.
Ελληνικά. Привет, как дела? Всё хорошо, спасибо. Встреча в пятницу.
今日は会議があります。日本語のメモを取ります。
東京で会いましょう。
我们明天开会。请把报告发给我。谢谢大家。
회의는 내일 오전에 있습니다. 감사합니다.
Emoji happen in chat logs too 😀 👍 🎉 ✅
— and dashes, “quotes” and ‘apostrophes’…
Tabs\tand  double  spaces,   and line
breaks,

and blank lines are text as well.
"""


def write_qwen_tokenizer(
    folder: Path, vocab_size: int, special: dict[str, int]
) -> None:
    """vocab.json, merges.txt and tokenizer_config.json of a small Qwen tokenizer.

    `special`: added token -> id (`<asr_text>` not special, the rest special); the BPE
    vocab fills the ids below the smallest. `vocab_size`: the model's id space.
    """
    ids = sorted(special.values())
    if not special or len(set(ids)) != len(ids):
        raise ValueError("special ids must be given and distinct")
    n_base, last = ids[0], ids[-1]
    if n_base < 300 or last >= vocab_size:
        raise ValueError(f"special ids must lie in [300, {vocab_size})")

    vocab, merges = train_bpe(n_base)
    named = {i: t for t, i in special.items()}
    added = {i: named.get(i, f"<|reserved_{i}|>") for i in range(n_base, last + 1)}

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(
        json.dumps(vocab, ensure_ascii=False, separators=(",", ":")), encoding="utf-8"
    )
    (folder / "merges.txt").write_text(
        "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8"
    )
    config = tokenizer_config(added)
    (folder / "tokenizer_config.json").write_text(
        json.dumps(config, indent=2, ensure_ascii=False, sort_keys=True) + "\n",
        encoding="utf-8",
    )


def tokenizer_config(added: dict[int, str]) -> dict:
    """tokenizer_config.json as Qwen's repos have it (less the chat template)."""
    contents = set(added.values())
    eos = next((t for t in ("<|im_end|>", "<|endoftext|>") if t in contents), None)
    pad = "<|endoftext|>" if "<|endoftext|>" in contents else None
    return {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": {
            str(i): {
                "content": t,
                "lstrip": False,
                "normalized": False,
                "rstrip": False,
                "single_word": False,
                "special": t not in NOT_SPECIAL,
            }
            for i, t in sorted(added.items())
        },
        "additional_special_tokens": [
            t for _, t in sorted(added.items()) if t != pad and t not in NOT_SPECIAL
        ],
        "bos_token": None,
        "clean_up_tokenization_spaces": False,
        "eos_token": eos,
        "errors": "replace",
        "model_max_length": 131072,
        "pad_token": pad,
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }


def qwen2_tokenizer(vocab: dict[str, int], merges: list[tuple[str, str]]) -> Tokenizer:
    """A `tokenizers` pipeline as transformers' Qwen2Tokenizer sets it up."""
    tk = Tokenizer(
        BPE(
            vocab=vocab,
            merges=merges,
            dropout=None,
            unk_token=None,
            continuing_subword_prefix="",
            end_of_word_suffix="",
            fuse_unk=False,
            byte_fallback=False,
        )
    )
    tk.normalizer = normalizers.NFC()
    tk.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tk.decoder = decoders.ByteLevel()
    return tk


def train_bpe(size: int) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A byte-level BPE of exactly `size` entries: the 256 bytes, then merges in order.

    CORPUS alone gives some hundreds of merges; seeded pseudo-words make up the rest.
    """
    trainer_tk = qwen2_tokenizer({}, [])
    trainer = BpeTrainer(
        vocab_size=size,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    rng = random.Random(0)
    syllables = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"]
    filler = [
        " " + "".join(rng.choices(syllables, k=rng.randint(2, 5))) for _ in range(size)
    ]
    lines = CORPUS.splitlines(keepends=True)
    trainer_tk.train_from_iterator(lines * 20 + filler, trainer=trainer)
    model = json.loads(trainer_tk.to_str())["model"]
    merges = [m.split(" ") if isinstance(m, str) else m for m in model["merges"]]
    if len(model["vocab"]) != size:
        raise ValueError(f"training gave {len(model['vocab'])} tokens, not {size}")
    # Renumbered: the bytes in GPT-2's bytes_to_unicode order, as Qwen's vocab.json has
    # them ("!" is 0), then the merged tokens in the order training made them.
    vocab = {c: i for i, c in enumerate(_gpt2_byte_chars())}
    for token, _ in sorted(model["vocab"].items(), key=lambda kv: kv[1]):
        vocab.setdefault(token, len(vocab))
    assert len(vocab) == size
    return vocab, [(a, b) for a, b in merges]


def _gpt2_byte_chars() -> list[str]:
    """GPT-2's bytes_to_unicode characters, printable bytes first, as in vocab.json."""
    printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    n_other = 256 - len(printable)
    return [chr(b) for b in printable] + [chr(256 + n) for n in range(n_other)]


def write_tokenizer_json(folder: Path, source: Path) -> None:
    """`folder/tokenizer.json`: the tokenizer of `source`'s three files, as one file."""
    files = (str(source / "vocab.json"), str(source / "merges.txt"))
    vocab, merges = BPE.read_file(*files)
    config = json.loads((source / "tokenizer_config.json").read_text(encoding="utf-8"))
    tk = qwen2_tokenizer(vocab, merges)
    entries = sorted(config["added_tokens_decoder"].items(), key=lambda kv: int(kv[0]))
    tk.add_tokens([AddedToken(**entry) for _, entry in entries])
    for key, entry in entries:
        assert tk.token_to_id(entry["content"]) == int(key)
    folder.mkdir(parents=True, exist_ok=True)
    tk.save(str(folder / "tokenizer.json"))
