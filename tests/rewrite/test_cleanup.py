import re

import pytest

from rewrite.base import Message, Segment
from rewrite.cleanup import clean_segments, content_words, is_faithful, parse_reply, words
from rewrite.prompts import CLEANUP_SYSTEM, prompt_tokens

from .scripted_backend import ScriptedBackend

RAW = "um so we we agreed on uh friday"


def seg(i: int, text: str) -> Segment:
    return Segment(i, float(i), i + 1.0, text)


def sent_ids(call) -> list[int]:
    return [int(x) for x in re.findall(r"^\[#(\d+)\] ", call.user, re.MULTILINE)]


def test_words_and_content_words():
    assert words("Don't stop—the follow-up, OK?") == ["don't", "stop", "the", "follow", "up", "ok"]
    assert words("We’re at 3:00 pm.") == ["we're", "at", "3", "00", "pm"]
    assert content_words("Um, you know, I mean we, like, uh ship it. Hmm.") == ["we", "ship", "it"]
    assert content_words("I think I mean it") == ["i", "think", "it"]
    assert content_words("我们周五开会。") == ["我", "们", "周", "五", "开", "会"]


def test_is_faithful_allows_form_changes_and_rejects_new_words():
    assert is_faithful(RAW, "So we agreed on Friday.")
    assert is_faithful("i i think we should we will ship it monday", "We will ship it Monday.")  # false start
    assert is_faithful("uh um", "")  # nothing but fillers
    assert not is_faithful(RAW, "So we agreed on Friday at 3 pm.")
    assert not is_faithful(RAW, "So we did not agree on Friday.")
    assert not is_faithful("we do not ship on friday", "We don't ship on Friday.")  # no contraction games
    assert not is_faithful(RAW, "")  # content dropped
    assert not is_faithful("we agreed the budget and the hiring plan for march", "We agreed.")  # most dropped
    assert is_faithful("嗯我们周五开会", "我们周五开会。")
    assert not is_faithful("嗯我们周五开会", "我们周五三点开会。")


def test_parse_reply_reads_ids_continuations_and_first_of_duplicates():
    reply = "Sure! Here you go:\n[#3] Hello there.\n- [#4] So,\n  yeah.\n[#3] Again.\n[#x] nope\n"
    assert parse_reply(reply) == {3: "Hello there.", 4: "So, yeah."}
    assert parse_reply("I cannot help with that.") == {}


def test_cleanup_accepts_faithful_lines_and_keeps_raw_for_the_rest():
    segs = [seg(1, RAW), seg(2, "i i think that's uh fine"), seg(3, "and uh the budget is ten k"),
            seg(4, "what what about hiring")]
    reply = ("[#1] So we agreed on Friday.\n"
             "[#2] I think that's fine.\n"
             "[#3] And the budget is $10,000.\n")  # #3 adds a number's spelling; #4 missing
    b = ScriptedBackend([reply])
    assert clean_segments(b, segs) == ["So we agreed on Friday.", "I think that's fine.", segs[2].text, segs[3].text]
    [call] = b.calls
    assert call.system == CLEANUP_SYSTEM and sent_ids(call) == [1, 2, 3, 4] and call.temperature == 0.0


def test_cleanup_rejects_a_new_fact():
    b = ScriptedBackend(["[#1] So we agreed on Friday at 3 pm."])
    assert clean_segments(b, [seg(1, RAW)]) == [RAW]


def test_garbled_and_empty_replies_keep_every_raw_line():
    segs = [seg(1, RAW), seg(2, "hello hello world")]
    for reply in ["So we agreed on Friday. Hello world.", "", "[#1 So we agreed", "#1: So we agreed on Friday."]:
        assert clean_segments(ScriptedBackend([reply]), segs) == [RAW, "hello hello world"]


def test_ids_not_asked_for_are_ignored():
    b = ScriptedBackend(["[#2] Hello world.\n[#1] So we agreed on Friday.\n[#99] Invented line."])
    assert clean_segments(b, [seg(1, RAW), seg(2, "hello hello world")]) == ["So we agreed on Friday.", "Hello world."]


def test_empty_input_and_blank_segments():
    b = ScriptedBackend()
    assert clean_segments(b, []) == [] and b.calls == []
    assert clean_segments(b, [seg(1, "  "), seg(2, "")]) == ["  ", ""] and b.calls == []
    b = ScriptedBackend(["[#2] Hello world."])
    assert clean_segments(b, [seg(1, " "), seg(2, "hello hello world"), seg(3, "")]) == [" ", "Hello world.", ""]
    assert sent_ids(b.calls[0]) == [2]


def echo_cleaner(messages: list[Message], max_tokens: int) -> str:
    """A faithful model: capitalizes each line, drops its fillers, adds a full stop."""
    out = []
    for i, text in re.findall(r"^\[#(\d+)\] (.*)$", messages[-1].content, re.MULTILINE):
        kept = " ".join(w for w in text.split() if w not in ("um", "uh"))
        out.append(f"[#{i}] {kept[:1].upper()}{kept[1:]}.")
    return "\n".join(out)


@pytest.mark.parametrize("counting", ["words", "chars"])
def test_batches_fit_the_context_and_cover_every_segment_once(counting):
    segs = [seg(i, f"um so line {i} says " + " ".join(f"w{i}x{k}" for k in range(i % 7 + 3))) for i in range(1, 121)]
    b = ScriptedBackend(echo_cleaner, context_tokens=400, counting=counting)
    progress = []
    out = clean_segments(b, segs, on_progress=lambda done, total: progress.append((done, total)))
    assert out == [echo_cleaner([Message("user", f"[#{s.id}] {s.text}")], 0)[len(f"[#{s.id}] "):] for s in segs]
    assert len(b.calls) > 3
    for call in b.calls:
        assert prompt_tokens(b, call.messages) + call.max_tokens <= 400
        assert b.prompt_tokens(call.messages) + call.max_tokens <= 400  # by the bare count too
        assert b.count_tokens(call.reply) < call.max_tokens  # the reply budget was enough
    assert [i for call in b.calls for i in sent_ids(call)] == [s.id for s in segs]
    assert progress[-1] == (120, 120) and len(progress) == len(b.calls)
    assert [d for d, _ in progress] == sorted(d for d, _ in progress)


def test_max_batch_caps_segments_per_request():
    segs = [seg(i, f"hello {i}") for i in range(1, 11)]
    b = ScriptedBackend(echo_cleaner, context_tokens=100_000)
    clean_segments(b, segs, max_batch=4)
    assert [sent_ids(c) for c in b.calls] == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]


def test_a_segment_too_long_for_the_context_keeps_its_raw_text():
    long = " ".join(["word"] * 500)
    segs = [seg(1, "um hello world"), seg(2, long), seg(3, "uh goodbye world")]
    b = ScriptedBackend(echo_cleaner, context_tokens=300)
    assert clean_segments(b, segs) == ["Hello world.", long, "Goodbye world."]
    assert [sent_ids(c) for c in b.calls] == [[1], [3]]


class NewlineHeavy(ScriptedBackend):
    """A tokenizer for which lines cost more joined than apart: the per-line estimate is short."""

    def count_tokens(self, text: str) -> int:
        return len(text.split()) + 8 * text.count("\n")


def test_batches_are_checked_on_the_whole_prompt_when_the_estimate_is_short():
    segs = [seg(i, f"uh line {i} a b c d e f") for i in range(1, 61)]
    b = NewlineHeavy(echo_cleaner, context_tokens=300)
    out = clean_segments(b, segs)
    assert out == [f"Line {i} a b c d e f." for i in range(1, 61)]
    for call in b.calls:
        assert prompt_tokens(b, call.messages) + call.max_tokens <= 300
    assert [i for call in b.calls for i in sent_ids(call)] == list(range(1, 61))
