"""Speakers in a summary's prompt: each line says who spoke (a name, else the label), so a
model can give action items owners by name; citations still name the lines."""

from __future__ import annotations

import re

from rewrite.base import Message, Segment
from rewrite.prompts import MAP_SYSTEM, SPEAKERS_HEAD, SUMMARY_SYSTEM, transcript_line
from rewrite.summarize import Citation, Summarizer

from .scripted_backend import ScriptedBackend


def test_a_line_says_who_spoke_after_its_id_time_and_channel():
    assert transcript_line(Segment(3, 65.0, 66.0, " I'll send\nit ", "system", "Anya")) == \
        "[#3 01:05 system] Anya: I'll send it"
    assert transcript_line(Segment(3, 65.0, 66.0, "ok", speaker="S2"), "half") == "[#3 01:05] S2: half"
    assert transcript_line(Segment(3, 65.0, 66.0, "ok", speaker=" ")) == "[#3 01:05] ok"


def owner_model(messages: list[Message], max_tokens: int) -> str:
    """Reads each line's speaker, as a real model is asked to: `I'll …` becomes an action
    item owned by whoever said it, cited by the line's id."""
    items = [f"- {who}: {what} [#{n}]" for n, who, what in
             re.findall(r"^\[#(\d+) [^\]]*\] ([^:\n]+): I'll (.+)$", messages[-1].content, re.MULTILINE)]
    return "### Action items\n" + "\n".join(items) + "\n"


def test_action_item_owners_come_out_by_name_with_their_citations():
    segs = [Segment(1, 0.0, 2.0, "who sends the deck?", "mic", "S1"),
            Segment(2, 2.0, 4.0, "I'll send the deck", "system", "Anya"),
            Segment(3, 4.0, 6.0, "I'll book the room", "mic", "S1")]
    b = ScriptedBackend(owner_model)
    s = Summarizer(b)
    text = "".join(s.stream(segs))
    (call,) = b.calls
    assert call.system == SUMMARY_SYSTEM and f"Transcript ({SPEAKERS_HEAD}):" in call.user
    assert "[#2 00:02 system] Anya: I'll send the deck" in call.user
    assert text == "### Action items\n- Anya: send the deck [#2]\n- S1: book the room [#3]"
    assert s.result.citations == [Citation("Anya: send the deck", (2,)), Citation("S1: book the room", (3,))]
    assert s.result.removed_citations == 0


def test_a_long_meeting_with_speakers_says_so_in_every_part():
    segs = [Segment(i, 4.0 * i, 4.0 * i + 3.9, " ".join(f"w{i}_{k}" for k in range(30)), speaker=f"S{i % 3 + 1}")
            for i in range(1, 301)]

    def reply(messages, max_tokens):
        return "- Action: S1 does a part [#1]" if messages[0].content == MAP_SYSTEM else "### Action items\n- S1 [#1]\n"

    b = ScriptedBackend(reply, context_tokens=2048)
    list(Summarizer(b).stream(segs))
    maps = [c for c in b.calls if c.system == MAP_SYSTEM]
    assert len(maps) > 1 and all(SPEAKERS_HEAD in c.user and "] S2: w1_0" in maps[0].user for c in maps)


def test_without_speakers_the_prompt_is_as_before():
    b = ScriptedBackend(["- ok [#1]"])
    list(Summarizer(b).stream([Segment(1, 0.0, 1.0, "hello", "mic")]))
    assert "Transcript (each line: [#id time] text):\n[#1 00:00 mic] hello\n" in b.calls[0].user


def test_the_summarizer_sees_names_from_the_store():
    from notetaker.summary import rewrite_segments
    from storage import SessionStore, open_db

    with SessionStore(open_db(None)) as store:
        sid = store.create_session("Call", "whisper", "tiny.en")
        for text, speaker in [("hi", "S1"), ("hello", "S2"), ("  ", "S2"), ("bye", None)]:
            store.add_segment(sid, text, 0.0, 1.0, speaker=speaker)
        store.rename_speaker(sid, "S2", "Anya")
        got = [(s.id, s.speaker) for s in rewrite_segments(store.segments(sid), store.speaker_names(sid))]
    assert got == [(1, "S1"), (2, "Anya"), (4, None)]
