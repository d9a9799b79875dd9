"""The Qwen3-ASR tokenizer against transformers' Qwen2Tokenizer, on a small real one.

The fixture keeps the real layout's offsets: the BPE vocab ends where the added tokens
begin, `<|audio_start|>` is 26 ids after `<|endoftext|>`, `<asr_text>` 61 (151643,
151669, 151704 in the published files), with filler added tokens in between.
"""

from __future__ import annotations

import json
import shutil
import unicodedata

import numpy as np
import pytest

from asr.base import ASRError, ModelNotFoundError
from asr.qwen3.tokenizer import QwenTokenizer
from tests.asr.qwen3.tokenizer_fixture import write_qwen_tokenizer, write_tokenizer_json

BASE = 1000
SPECIAL = {
    "<|endoftext|>": BASE,
    "<|im_start|>": BASE + 1,
    "<|im_end|>": BASE + 2,
    "<|audio_start|>": BASE + 26,
    "<|audio_end|>": BASE + 27,
    "<|audio_pad|>": BASE + 33,
    "<asr_text>": BASE + 61,
}
VOCAB_SIZE = 1088
CONFIG = "tokenizer_config.json"

PROMPT = (
    "<|im_start|>system\nAnya, Kubernetes<|im_end|>\n<|im_start|>user\n"
    "<|audio_start|><|audio_pad|><|audio_pad|><|audio_end|><|im_end|>\n"
    "<|im_start|>assistant\nlanguage English<asr_text>Hello there."
)
PROMPT_TEXT = (
    "system\nAnya, Kubernetes\nuser\n\n"
    "assistant\nlanguage English<asr_text>Hello there."
)

TEXTS = [
    "Hello world",
    "Good morning everyone, let's get started with the weekly planning meeting.",
    "Revenue in Q3 2024 grew 12% to $1,234.56 (vs. 987 in Q2)",
    'Wait... what?! -- yes; no: maybe/perhaps "quoted" \'single\' [x] {y} C#tag @me',
    "line one\nline two\r\n\nline four\n",
    "a  b   c    d\t\te  ",
    "   leading and trailing spaces   ",
    "Contractions: I'M, you'RE, it's, we'll, they'd, I've, don't",
    "Glued: it'self they'dn't you'rent she'sand we'veal I'mean they'llama you'RENT",
    "end.\n\n\n  Next\n \n\tline\r\n\r\n  x \n\n and then  \n\n",
    "Zürich café naïve Ærøskøbing Straße Kraków Ελληνικά Привет",
    "cafe\u0301 and A\u030a (decomposed, NFC folds them)",
    "日本語のメモ、東京で会いましょう。我们明天开会。회의는 내일입니다.",
    "Emoji 😀👍🏽 🎉✅ and a ZWJ sequence 👩‍💻",
    "control\x00bytes\x07and\x1bescape ¤ ¥ © \u00a0nbsp",
    "",
    PROMPT,
    "<|im_start|><|im_start|>back to back<|im_end|><|endoftext|>",
    "word<asr_text>glued and <|audio_pad|>inside",
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("qwen_tokenizer")
    write_qwen_tokenizer(path, VOCAB_SIZE, SPECIAL)
    return path


@pytest.fixture(scope="module")
def tok(folder):
    return QwenTokenizer.from_folder(folder)


@pytest.fixture(scope="module")
def hf(folder):
    transformers = pytest.importorskip("transformers")
    return transformers.Qwen2Tokenizer.from_pretrained(str(folder))


@pytest.fixture
def copy(folder, tmp_path):
    return shutil.copytree(folder, tmp_path / "tok")


def test_fixture_is_in_the_real_format(folder):
    merges = (folder / "merges.txt").read_text(encoding="utf-8")
    assert merges.startswith("#version: 0.2\nĠ t\n")
    vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    assert sorted(vocab.values()) == list(range(BASE))
    assert (vocab["!"], vocab["Ġ"], vocab["Ċ"]) == (0, 220, 198)  # GPT-2 byte order
    config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    added = config["added_tokens_decoder"]
    assert list(added) == [str(i) for i in range(BASE, BASE + 62)]
    assert added[str(BASE + 61)]["content"] == "<asr_text>"
    assert added[str(BASE + 61)]["special"] is False
    assert added[str(BASE + 33)] == {
        "content": "<|audio_pad|>", "lstrip": False, "normalized": False,
        "rstrip": False, "single_word": False, "special": True,
    }  # fmt: skip
    assert added[str(BASE + 3)]["content"] == f"<|reserved_{BASE + 3}|>"
    assert config["eos_token"] == "<|im_end|>"
    assert config["pad_token"] == "<|endoftext|>"


def test_added_tokens_sit_at_their_ids(tok, folder):
    for content, token_id in SPECIAL.items():
        assert tok.token_id(content) == token_id
        assert tok.encode(content) == [token_id]
    assert tok.eos_ids == (BASE + 2, BASE)
    assert tok.vocab_size == BASE + 62
    vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    assert tok.token_id("Ġthe") == vocab["Ġthe"]
    assert tok.token_id("!") == 0
    assert tok.token_id("<|not_a_token|>") is None


def test_added_token_ids_agree_with_transformers(tok, hf):
    for content in SPECIAL:
        assert tok.token_id(content) == hf.convert_tokens_to_ids(content)
    assert hf.eos_token_id == tok.eos_ids[0]
    assert len(hf) == tok.vocab_size


@pytest.mark.parametrize("text", TEXTS)
def test_encode_and_decode_match_transformers(tok, hf, text):
    ids = tok.encode(text)
    assert ids == hf.encode(text, add_special_tokens=False)
    assert ids == hf.encode(text)  # Qwen adds no BOS/EOS
    assert tok.decode(ids) == hf.decode(ids, skip_special_tokens=True)
    assert tok.decode(ids, skip_special=False) == hf.decode(ids)
    assert tok.decode(ids, skip_special=False) == unicodedata.normalize("NFC", text)


# Merges across the places Qwen2's pattern splits text (digits, contractions, runs of
# spaces and newlines). Trained on that same split, the fixture has none, so a wrong
# split could give the same ids; with these, every split shows in the ids.
CROSSING = [
    ("2", "0"), ("20", "2"), ("202", "4"), ("1", "2"),
    ("'", "R"), ("'R", "E"), ("'RE", "N"), ("'REN", "T"),
    ("'s", "e"), ("'se", "l"), ("'sel", "f"), ("#", "t"), ("#t", "a"), ("#ta", "g"),
    ("Ġ", "Ċ"), ("ĠĊ", "Ċ"), ("Ċ", "Ġ"), ("ĊĠ", "Ġ"), ("Ċ", "Ċ"), ("Ġ", "ĠĠ"),
]  # fmt: skip


@pytest.fixture(scope="module")
def crossing(folder, tmp_path_factory):
    """The fixture with its last merges swapped for CROSSING, ids kept below BASE."""
    path = shutil.copytree(folder, tmp_path_factory.mktemp("crossing") / "tok")
    vocab = json.loads((path / "vocab.json").read_text(encoding="utf-8"))
    lines = (path / "merges.txt").read_text(encoding="utf-8").splitlines()
    new = [m for m in CROSSING if "".join(m) not in vocab]
    by_id = sorted(vocab, key=vocab.__getitem__)
    for token in by_id[-len(new):]:  # the last merges; no other merge builds on them
        del vocab[token]
    for a, b in new:
        vocab[a + b] = len(vocab)
    lines = lines[: -len(new)] + [f"{a} {b}" for a, b in new]
    (path / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), "utf-8")
    (path / "merges.txt").write_text("\n".join(lines) + "\n", "utf-8")
    return path


@pytest.mark.parametrize("text", TEXTS)
def test_split_matches_transformers_where_merges_cross_it(crossing, text):
    transformers = pytest.importorskip("transformers")
    hf = transformers.Qwen2Tokenizer.from_pretrained(str(crossing))
    tok = QwenTokenizer.from_folder(crossing)
    ids = tok.encode(text)
    assert ids == hf.encode(text, add_special_tokens=False)
    assert tok.decode(ids, skip_special=False) == unicodedata.normalize("NFC", text)


def test_crossing_merges_apply_only_within_a_piece(crossing):
    tok = QwenTokenizer.from_folder(crossing)
    assert tok.token_id("2024") is not None and tok.token_id("'self") is not None
    assert tok.encode("2024") == [tok.token_id(d) for d in "2024"]
    assert tok.encode("'self") == [tok.token_id("'s"), *tok.encode("elf")]
    assert tok.encode(" \n\n") == [tok.token_id("ĠĊĊ")]


def test_text_is_merged_into_fewer_tokens_than_bytes(tok):
    text = "Good morning everyone, let's get started with the weekly planning meeting."
    ids = tok.encode(text)
    assert len(ids) < len(text) // 2
    assert all(0 <= i < BASE for i in ids)
    assert tok.encode(" the") == [tok.token_id("Ġthe")]


def test_chat_prompt(tok):
    ids = tok.encode(PROMPT)
    im_start, im_end = SPECIAL["<|im_start|>"], SPECIAL["<|im_end|>"]
    pad = SPECIAL["<|audio_pad|>"]
    audio = [SPECIAL["<|audio_start|>"], pad, pad, SPECIAL["<|audio_end|>"]]
    nl = tok.encode("\n")
    assert ids == [
        im_start, *tok.encode("system\nAnya, Kubernetes"), im_end, *nl,
        im_start, *tok.encode("user\n"), *audio, im_end, *nl,
        im_start, *tok.encode("assistant\nlanguage English"), SPECIAL["<asr_text>"],
        *tok.encode("Hello there."),
    ]  # fmt: skip


def test_decode_drops_special_tokens_and_keeps_asr_text(tok):
    ids = tok.encode(PROMPT)
    assert tok.decode(ids) == PROMPT_TEXT
    assert tok.decode(ids, skip_special=False) == PROMPT
    asr_text, im_end = SPECIAL["<asr_text>"], SPECIAL["<|im_end|>"]
    reply = [*tok.encode("language English"), asr_text, *tok.encode(" Ship it.")]
    text = "language English<asr_text> Ship it."
    assert tok.decode([*reply, im_end]) == text
    assert tok.decode(np.array(reply, dtype=np.int32)) == text
    assert tok.decode([]) == ""


def test_tokenizer_json_gives_the_same_tokenizer(tok, folder, tmp_path):
    write_tokenizer_json(tmp_path / "json", folder)
    (tmp_path / "json" / "vocab.json").write_text("not read", encoding="utf-8")
    from_json = QwenTokenizer.from_folder(tmp_path / "json")
    for text in TEXTS:
        ids = tok.encode(text)
        assert from_json.encode(text) == ids
        assert from_json.decode(ids) == tok.decode(ids)
        raw = tok.decode(ids, skip_special=False)
        assert from_json.decode(ids, skip_special=False) == raw
    assert (from_json.eos_ids, from_json.vocab_size) == (tok.eos_ids, tok.vocab_size)


def test_tokenizer_json_saved_by_transformers(tok, hf, tmp_path):
    (tmp_path / "hf").mkdir()
    hf.backend_tokenizer.save(str(tmp_path / "hf" / "tokenizer.json"))
    from_json = QwenTokenizer.from_folder(tmp_path / "hf")
    for text in TEXTS:
        assert from_json.encode(text) == tok.encode(text)
    assert from_json.decode(tok.encode(PROMPT)) == PROMPT_TEXT


def test_listed_ids_are_kept_across_a_gap(copy):
    # transformers numbers added tokens on from the vocab and would shift these; the
    # listed ids are the ones the model was trained with.
    path = copy / "tokenizer_config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    added = config["added_tokens_decoder"]
    config["added_tokens_decoder"] = {
        k: v for k, v in added.items() if "reserved" not in v["content"]
    }
    path.write_text(json.dumps(config), encoding="utf-8")
    tok = QwenTokenizer.from_folder(copy)
    assert [tok.token_id(t) for t in SPECIAL] == list(SPECIAL.values())
    assert tok.encode("<|audio_pad|><asr_text>") == [BASE + 33, BASE + 61]
    assert tok.vocab_size == BASE + 62


def one_line(excinfo, kind, *words):
    message = str(excinfo.value)
    assert type(excinfo.value) is kind
    assert "\n" not in message and excinfo.value.__cause__ is None
    # No chained exception shows in a traceback.
    assert excinfo.value.__context__ is None or excinfo.value.__suppress_context__
    for word in words:
        assert word in message
    return message


def test_missing_folder(tmp_path):
    with pytest.raises(ASRError) as e:
        QwenTokenizer.from_folder(tmp_path / "nope")
    one_line(e, ModelNotFoundError, "nope")


def test_missing_files(copy, tmp_path):
    (copy / "merges.txt").unlink()
    with pytest.raises(ASRError) as e:
        QwenTokenizer.from_folder(copy)
    assert "merges.txt" in one_line(e, ModelNotFoundError, str(copy))
    assert "vocab.json" not in str(e.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ASRError) as e:
        QwenTokenizer.from_folder(tmp_path / "empty")
    one_line(e, ModelNotFoundError, "vocab.json", "merges.txt", "tokenizer_config.json")


@pytest.mark.parametrize(
    "name, content, words",
    [
        ("vocab.json", '{"!": 0, "\\"": 1, ', ["vocab.json", "not JSON"]),
        ("vocab.json", '["!", "a"]', ["vocab.json"]),
        ("vocab.json", '{"!": 0, "a": -3}', ["vocab.json", "'a'"]),
        ("merges.txt", "#version: 0.2\nĠ t\nĠ t h\n", ["merges.txt", "line 3"]),
        ("merges.txt", "#version: 0.2\nĠ t\n\n", ["merges.txt", "line 3"]),
        ("merges.txt", "#version: 0.2\nĠ ☃\n", ["merges.txt", "☃"]),
        (CONFIG, "{", [CONFIG, "not JSON"]),
        (CONFIG, '{"added_tokens_decoder": []}', ["added_tokens_decoder"]),
        (CONFIG, '{"added_tokens_decoder": {"x": {"content": "<a>"}}}', ["'x'"]),
        (CONFIG, '{"added_tokens_decoder": {"5": {"content": "<a>"}}}', ["<a>", "5"]),
        (CONFIG, '{"added_tokens_decoder": {"1000": {"content": "!"}}}', ["!"]),
        (CONFIG, '{"added_tokens_decoder": {"1000": {"content": ""}}}', ["1000"]),
    ],
)
def test_corrupt_files(copy, name, content, words):
    (copy / name).write_text(content, encoding="utf-8")
    with pytest.raises(ASRError) as e:
        QwenTokenizer.from_folder(copy)
    one_line(e, ASRError, *words)


def test_unreadable_bytes(copy):
    (copy / "merges.txt").write_bytes(b"#version: 0.2\n\xff\xfe t\n")
    with pytest.raises(ASRError) as e:
        QwenTokenizer.from_folder(copy)
    one_line(e, ASRError, "merges.txt", "UTF-8")


def test_corrupt_tokenizer_json(copy):
    (copy / "tokenizer.json").write_text('{"version": "1.0", "model": {', "utf-8")
    with pytest.raises(ASRError) as e:
        QwenTokenizer.from_folder(copy)
    one_line(e, ASRError, "tokenizer.json")
