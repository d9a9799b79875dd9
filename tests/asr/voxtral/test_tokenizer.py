"""The Tekken tokenizer on a tiny tekken.json in the real format.

Expected encodings were cross-checked against mistral-common 1.13.1's Tekkenizer (a scratch
install, never a dependency): encode, decode and id_to_byte_piece agree on these fixtures
and on a published 131072-id tekken file, except where a special id splits a multi-byte
character (mistral-common decodes each run between special ids alone; we join the bytes).
"""

import json
import random

import pytest

from asr.base import ASRError
from asr.voxtral.tokenizer import StreamDecoder, TekkenTokenizer
from tests.asr.voxtral.tekken_fixture import write_tiny_tekken

EMOJI = "😀".encode()  # f0 9f 98 80


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_tekken(tmp_path_factory.mktemp("tekken") / "tekken.json")


@pytest.fixture(scope="module")
def tok(tiny):
    return TekkenTokenizer.from_file(tiny.path)


def stream(tok, ids):
    dec = StreamDecoder(tok)
    return [dec.push(i) for i in ids], dec.flush()


def test_special_ids_and_audio_settings_come_from_the_file(tok, tiny):
    assert (tok.bos, tok.eos, tok.streaming_pad, tok.streaming_word) == (1, 2, 32, 33)
    assert (tok.n_special, tok.vocab_size) == (512, 1024)
    assert tok.audio["transcription_delay_ms"] == 480
    assert tok.audio["streaming_n_left_pad_tokens"] == 32
    assert tok.audio["audio_encoding_config"]["hop_length"] == 160
    assert tok.special_id("[BEGIN_AUDIO]") == 25
    assert tok.special_name(32) == "[STREAMING_PAD]"
    assert tok.special_name(40) == "<SPECIAL_40>"


def test_other_ranks_and_special_count_are_followed(tmp_path):
    ranks = {"<s>": 5, "</s>": 7, "[STREAMING_PAD]": 100, "[STREAMING_WORD]": 3}
    tiny = write_tiny_tekken(tmp_path / "tekken.json", vocab_size=700, n_special=300, special_ranks=ranks)
    tok = TekkenTokenizer.from_file(tiny.path)
    assert (tok.bos, tok.eos, tok.streaming_pad, tok.streaming_word) == (5, 7, 100, 3)
    assert (tok.n_special, tok.vocab_size) == (300, 700)
    assert tok.id_to_bytes(300) == b"\x00" and tok.id_to_bytes(300 + 65) == b"A"
    assert tok.decode([5, 3, *tiny.ids(" hello", " world"), 100, 299, 7]) == " hello world"


def test_published_special_count(tmp_path):
    tiny = write_tiny_tekken(tmp_path / "tekken.json", vocab_size=1400, n_special=1000)
    tok = TekkenTokenizer.from_file(tiny.path)
    assert tok.n_special == 1000 and tok.is_special(999) and not tok.is_special(1000)
    assert tok.decode([1, *tiny.ids(" café", " 日本"), 2]) == " café 日本"


def test_decode(tok, tiny):
    assert tok.decode(tiny.ids(" hello", " world", "!")) == " hello world!"
    assert tok.decode(tiny.ids("Hello", ",", " 😀", " naïve")) == "Hello, 😀 naïve"
    assert tok.decode([tok.n_special + b for b in b"bytes"]) == "bytes"
    assert tok.decode([]) == ""


def test_special_ids_are_dropped(tok, tiny):
    ids = [tok.bos, *tiny.ids(" we"), tok.streaming_pad, tok.streaming_word, *tiny.ids(" ok"), 0, 511, tok.eos]
    assert tok.decode(ids) == " we ok"
    deltas, tail = stream(tok, ids)
    assert deltas == ["", " we", "", "", " ok", "", "", ""] and tail == ""


def test_id_to_bytes(tok, tiny):
    assert tok.id_to_bytes(tiny.id_of(" meeting")) == b" meeting"
    assert tok.id_to_bytes(tok.n_special + 0xF0) == b"\xf0"
    assert tok.id_to_bytes(tok.streaming_pad) == b""
    assert tok.is_special(0) and tok.is_special(511) and not tok.is_special(512)
    for bad in (-1, 1024):
        with pytest.raises(ValueError):
            tok.id_to_bytes(bad)


@pytest.mark.parametrize("pieces", [
    [EMOJI[:1], EMOJI[1:2], EMOJI[2:3], EMOJI[3:]],  # four byte tokens
    [EMOJI[:2], EMOJI[2:3], EMOJI[3:]],  # three
    [EMOJI[:3], EMOJI[3:]],  # two
    [EMOJI[:2], EMOJI[2:3], EMOJI[3:], EMOJI[:2], EMOJI[2:3], EMOJI[3:]],  # two in a row
])
def test_emoji_split_across_tokens_is_held_back(tok, tiny, pieces):
    ids = tiny.ids(" a", *pieces)
    deltas, tail = stream(tok, ids)
    n = len(pieces) // (2 if len(pieces) == 6 else 1)
    expected = [" a"] + (([""] * (n - 1) + ["😀"]) * (len(pieces) // n))
    assert deltas == expected and tail == ""
    assert tok.decode(ids) == "".join(deltas)


def test_control_ids_inside_a_split_character_keep_the_held_bytes(tok, tiny):
    ids = [tiny.id_of(EMOJI[:2]), tok.streaming_pad, tiny.id_of(EMOJI[2:3]), tok.streaming_word,
           tiny.id_of(EMOJI[3:])]
    deltas, _ = stream(tok, ids)
    assert deltas == ["", "", "", "", "😀"]
    assert tok.decode(ids) == "😀"


def test_cjk_split_across_tokens(tok, tiny):
    nihon = "日本".encode()  # e6 97 a5 | e6 9c ac
    ids = tiny.ids(nihon[:2], nihon[2:3], nihon[3:4], nihon[4:5], nihon[5:])
    deltas, tail = stream(tok, ids)
    assert deltas == ["", "日", "", "", "本"] and tail == ""


def _prefix_check(tok, ids):
    full_deltas, full_tail = stream(tok, ids)
    full = "".join(full_deltas) + full_tail
    assert full == tok.decode(ids)
    for k in range(len(ids) + 1):
        deltas, tail = stream(tok, ids[:k])
        assert deltas == full_deltas[:k]  # a delta never depends on later tokens
        assert "".join(deltas) + tail == tok.decode(ids[:k])
        assert full.startswith("".join(deltas))  # text never retracts


def test_deltas_concatenate_to_the_decode_of_every_prefix(tok, tiny):
    ids = [tok.bos, tok.streaming_pad, *tiny.ids(" hello", ",", " 日本"), tok.streaming_word,
           *tiny.ids("語", EMOJI[:3], EMOJI[3:], " caf", "é", " ok", "."), tok.eos]
    _prefix_check(tok, ids)


def test_random_ids_including_invalid_utf8(tok):
    # Byte tokens in random order make invalid UTF-8 too: deltas still match the batch decode.
    rng = random.Random(0)
    for _ in range(300):
        ids = [rng.randrange(tok.vocab_size) if rng.random() < 0.5 else tok.n_special + rng.randrange(128, 256)
               for _ in range(rng.randint(0, 12))]
        _prefix_check(tok, ids)


def test_flush_ends_an_incomplete_character_and_resets(tok, tiny):
    dec = StreamDecoder(tok)
    assert dec.push(tiny.id_of(EMOJI[:2])) == "" and dec.pending
    assert dec.flush() == "\ufffd" and not dec.pending
    assert dec.push(tiny.id_of(" ok")) == " ok"


def test_encode_matches_mistral_common(tok, tiny):
    # Expected pieces as mistral-common 1.13.1 encodes them on this fixture.
    cases = {
        " hello world": [" hello", " world"],
        "Hello, world!": ["Hello", ",", " world", "!"],
        " café naïve": [" café", " naïve"],
        "日本語 😀": ["日本", "語", " 😀"],
        " the meeting notes.": [" the", " meeting", " notes", "."],
        "It's OK": ["I", "t", "'s", " ", "O", "K"],
    }
    for text, pieces in cases.items():
        assert tok.encode(text) == tiny.ids(*pieces), text
        assert tok.decode(tok.encode(text)) == text


def test_entries_past_the_cut_are_never_read(tmp_path):
    tiny = write_tiny_tekken(tmp_path / "tekken.json", extra_vocab=4)
    data = json.loads(tiny.path.read_text(encoding="utf-8"))
    data["vocab"][-1] = {"rank": "garbage"}
    tiny.path.write_text(json.dumps(data), encoding="utf-8")
    assert TekkenTokenizer.from_file(tiny.path).vocab_size == 1024


def _broken(data, what):
    if what == "no config":
        del data["config"]
    elif what == "vocab too short":
        data["vocab"] = data["vocab"][:500]  # 512 needed
    elif what == "rank out of order":
        data["vocab"][300]["rank"] = 301
    elif what == "bad base64":
        data["vocab"][300]["token_bytes"] = "not base64!"
    elif what == "bytes out of place":
        data["vocab"][65]["token_bytes"] = "Qg=="  # "B" where "A" belongs
    elif what == "repeated piece":
        data["vocab"][300]["token_bytes"] = "QQ=="
    elif what == "repeated special rank":
        data["special_tokens"][3]["rank"] = 1
    elif what == "special rank out of range":
        data["special_tokens"][3]["rank"] = 512
    elif what == "no streaming pad":
        data["special_tokens"][32]["token_str"] = "<SPECIAL_32>"
    elif what == "no special tokens":
        del data["special_tokens"]
    elif what == "vocab size not an int":
        data["config"]["default_vocab_size"] = "1024"
    elif what == "audio not an object":
        data["audio"] = [480]
    elif what == "delay not a number":
        data["audio"]["transcription_delay_ms"] = "480"
    return data


@pytest.mark.parametrize("what", [
    "no config", "vocab too short", "rank out of order", "bad base64", "bytes out of place",
    "repeated piece", "repeated special rank", "special rank out of range", "no streaming pad",
    "no special tokens", "vocab size not an int", "audio not an object", "delay not a number",
])
def test_malformed_file_is_one_line_error(tmp_path, what):
    tiny = write_tiny_tekken(tmp_path / "tekken.json")
    data = _broken(json.loads(tiny.path.read_text(encoding="utf-8")), what)
    tiny.path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ASRError) as err:
        TekkenTokenizer.from_file(tiny.path)
    assert "\n" not in str(err.value) and "tekken.json" in str(err.value)


@pytest.mark.parametrize("content", [None, "{not json", "[]", ""])
def test_unreadable_file_is_one_line_error(tmp_path, content):
    path = tmp_path / "tekken.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ASRError) as err:
        TekkenTokenizer.from_file(path)
    assert "\n" not in str(err.value) and "tekken.json" in str(err.value)
