"""The person's own notes in a summary's prompt: their emphasis, in the final pass only,
never citable, and never silently dropped when too many to fit."""

from __future__ import annotations

from rewrite.base import Note, Segment
from rewrite.prompts import MAP_SYSTEM, OWN_NOTES_HEAD, SUMMARY_SYSTEM, own_notes_block, prompt_tokens
from rewrite.summarize import Summarizer

from .scripted_backend import ScriptedBackend

SEGMENTS = [Segment(1, 0.0, 3.0, "we should ship on friday"), Segment(2, 3.0, 6.0, "dana owns the release notes")]
NOTES = [Note(2.0, "**ship friday** is the big one"), Note(75.0, "ask Dana\nabout docs")]


def test_notes_go_into_the_one_pass_prompt_and_cannot_be_cited():
    b = ScriptedBackend(["### Decisions\n- Ship on Friday [#1] [#3]\n"])
    s = Summarizer(b)
    text = "".join(s.stream(SEGMENTS, NOTES))
    (call,) = b.calls
    assert call.system == SUMMARY_SYSTEM
    assert OWN_NOTES_HEAD in call.user
    assert "- [00:02] **ship friday** is the big one\n- [01:15] ask Dana about docs" in call.user
    # The notes come after the transcript, and carry no `#id` a summary could cite.
    assert call.user.index("[#2 00:03]") < call.user.index(OWN_NOTES_HEAD) < call.user.index("Template:")
    assert "[#" not in own_notes_block(NOTES)
    # Only transcript lines are valid citations: #3 is neither a segment nor made one by the notes.
    assert s.result.removed_citations == 1 and "[#3]" not in text and s.result.own_notes_left_out == 0


def test_without_notes_the_prompt_is_as_before():
    b = ScriptedBackend(["- ok [#1]"])
    list(Summarizer(b).stream(SEGMENTS))
    assert OWN_NOTES_HEAD not in b.calls[0].user and own_notes_block([]) == ""


def test_a_long_meeting_sees_the_notes_in_the_reduce_only():
    segs = [Segment(i, 4.0 * i, 4.0 * i + 3.9, " ".join(f"w{i}_{k}" for k in range(30))) for i in range(1, 301)]

    def reply(messages, max_tokens):
        return "- Decision: a part [#1]" if messages[0].content == MAP_SYSTEM else "### Decisions\n- All [#1]\n"

    b = ScriptedBackend(reply, context_tokens=2048)
    list(Summarizer(b).stream(segs, NOTES))
    maps = [c for c in b.calls if c.system == MAP_SYSTEM]
    assert len(maps) > 1 and all(OWN_NOTES_HEAD not in c.user for c in maps)
    assert b.calls[-1].system == SUMMARY_SYSTEM and "ask Dana about docs" in b.calls[-1].user
    for c in b.calls:
        assert prompt_tokens(b, c.messages) + c.max_tokens <= 2048


def test_notes_beyond_their_share_of_the_context_are_left_out_and_said():
    many = [Note(float(i), f"note {i} " + "word " * 20) for i in range(200)]
    b = ScriptedBackend(["### Decisions\n- Ship [#1]\n"], context_tokens=2048)
    s = Summarizer(b)
    text = "".join(s.stream(SEGMENTS, many))
    left = s.result.own_notes_left_out
    assert 0 < left < 200 and f"{left} of your own notes did not fit" in text
    user = b.calls[0].user
    assert "note 0 " in user and f"note {200 - left - 1} " in user and f"note {200 - left} " not in user
    assert prompt_tokens(b, b.calls[0].messages) + b.calls[0].max_tokens <= 2048
