"""Exports: golden files for every format, plus structural checks that do not need goldens."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest

from storage.export import FORMATS, clock, render, srt_time, to_json, to_markdown, vtt_time, yaml_str
from storage.records import SessionRecord
from tests.storage.conftest import GOLDEN, fixed_session, speakers_session, update_golden


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_golden(fmt: str) -> None:
    session, segments, marks, summary = fixed_session()
    text = FORMATS[fmt].render(session, segments, marks, summary)
    path = GOLDEN / f"session.{FORMATS[fmt].extension}"
    if update_golden():
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing {path}; run with UPDATE_GOLDEN=1 to create it"
    assert text == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_golden_with_speakers(fmt: str) -> None:
    """Names where a label has one, labels elsewhere; consecutive segments of one speaker
    read as one turn in Markdown and text; VTT voice tags; JSON's speakers map."""
    session, segments, marks, names = speakers_session()
    text = render(fmt, session, segments, marks, speakers=names)
    path = GOLDEN / f"speakers.{FORMATS[fmt].extension}"
    if update_golden():
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing {path}; run with UPDATE_GOLDEN=1 to create it"
    assert text == path.read_text(encoding="utf-8")


def test_a_turn_is_one_name_then_its_segments() -> None:
    session, segments, marks, names = speakers_session()
    lines = [line for line in render("txt", session, segments, marks, speakers=names).splitlines()]
    assert lines[1:3] == ["[#2 00:00:03] Anya (system): Yes. The <mock-ups> are done.",
                          "[#3 00:00:06] I'll send them *today*."]
    # A mark ends a turn: S1 is named again after it.
    assert lines[3:6] == ["[#4 00:00:10] S1 (mic): Great.", "▸ [00:00:11] Action: Anya sends the mock-ups",
                          "[#5 00:00:12] S1 (mic): Who reviews them?"]


def test_without_names_labels_show_and_unlabelled_meetings_read_as_before() -> None:
    session, segments, marks, _ = speakers_session()
    assert "<v S2 (system)>Yes." in render("vtt", session, segments, marks)
    mic = replace(fixed_session()[1][0], clean_text=None)
    # Segments with a channel and no label: the channel on every line, never grouped.
    assert render("txt", session, [mic, replace(mic, seq=2)]).splitlines() == [
        "[#1 00:00:00] mic: Okay, let's start with the budget for Q3.",
        "[#2 00:00:00] mic: Okay, let's start with the budget for Q3."]


def _front_matter(md: str) -> dict[str, object]:
    """A small YAML subset reader: `key: value` lines, double-quoted strings, a flow list."""
    lines = md.split("\n")
    assert lines[0] == "---"
    end = lines.index("---", 1)
    out: dict[str, object] = {}
    for line in lines[1:end]:
        m = re.fullmatch(r"([a-z_]+): (.*)", line)
        assert m, f"not a key: value line: {line!r}"
        key, value = m.groups()
        if value.startswith('"'):
            out[key] = json.loads(value)  # our double-quoted scalars use only JSON escapes
        elif value.startswith("["):
            out[key] = [v.strip() for v in value[1:-1].split(",")]
        else:
            out[key] = value
    return out


def test_markdown_front_matter_and_sections() -> None:
    session, segments, marks, summary = fixed_session()
    md = to_markdown(session, segments, marks, summary)
    fm = _front_matter(md)
    assert fm["title"] == session.title
    assert fm["date"] == "2025-03-04T09:30:00Z"
    assert fm["duration"] == "01:01:05"
    assert fm["engine"] == "voxtral" and fm["model"] == session.model
    assert fm["status"] == "complete" and fm["tags"] == ["meeting"]
    body = md.split("\n---\n", 1)[1]
    headings = [line for line in body.splitlines() if line.startswith("#")]
    assert headings == [
        '# Q3 "budget" review: café & naïve résumé',
        "## Summary",
        "## Transcript",
    ]
    assert "**[#3 00:01:23]** Ünïcödé chéck: 東京オフィス, Zürich, São Paulo 🎉" in body
    assert "**[#2 00:00:04]** **Priya (system):** " in body
    # Obsidian syntax in speech stays text: no tag, no wikilink, no math, no HTML.
    assert r"\#launch" in body and r"\[\[April\]\]" in body and r"\$5k" in body and r"\<b>" in body
    assert "> **▸ [00:00:05] Action**: Priya to send the cloud cost breakdown" in body
    assert "> **▸ [01:00:06] Note**\n" in body  # no text: no colon


def test_markdown_without_summary_or_marks() -> None:
    session, segments, _, _ = fixed_session()
    md = to_markdown(session, segments)
    assert "## Summary" not in md and "▸" not in md and "## Transcript" in md


def _lines_around(text: str, needle: str) -> tuple[str, str]:
    """The non-blank lines just before and just after the one holding `needle`."""
    lines = [line for line in text.splitlines() if line.strip()]
    at = next(i for i, line in enumerate(lines) if needle in line)
    return lines[at - 1], lines[at + 1] if at + 1 < len(lines) else ""


@pytest.mark.parametrize("fmt", ["md", "txt"])
def test_a_mark_lands_between_the_segments_around_its_moment(fmt: str) -> None:
    # Segments start at 0, 4, 83, 3599 and 3605 s; marks at 5, 3600.4 and 3606 s.
    session, segments, marks, summary = fixed_session()
    text = render(fmt, session, segments, marks, [summary])
    assert "## Marks" not in text
    before, after = _lines_around(text, "Action")
    assert "[#2 00:00:04]" in before and "[#3 00:01:23]" in after
    before, after = _lines_around(text, "Launch moves to April")
    assert "[#4 00:59:59]" in before and "[#5 01:00:05]" in after
    before, after = _lines_around(text, "[01:00:06] Note")  # after the last segment: the end
    assert "[#5 01:00:05]" in before and after == ""
    # Each mark once, in time order, inside the transcript (after its heading in Markdown).
    assert [text.count(m.text) for m in marks if m.text] == [1, 1]
    assert text.index("Action") < text.index("Launch moves to April") < text.index("[01:00:06] Note")
    if fmt == "md":
        assert text.index("## Transcript") < text.index("Action")


def test_a_mark_at_a_segments_start_follows_it_and_unsorted_marks_are_placed_in_time() -> None:
    session, segments, marks, _ = fixed_session()
    at_start = replace(marks[0], id=9, t_s=segments[2].start_s, text="at the start of #3")
    lines = render("txt", session, segments, [marks[1], at_start, marks[0]]).splitlines()
    assert [line[:14] for line in lines] == [
        "[#1 00:00:00] ", "[#2 00:00:04] ", "▸ [00:00:05] A", "[#3 00:01:23] ", "▸ [00:01:23] A",
        "[#4 00:59:59] ", "▸ [01:00:00] D", "[#5 01:00:05] ",
    ]
    assert lines[4] == "▸ [00:01:23] Action: at the start of #3"


def test_front_matter_parses_as_yaml_when_pyyaml_is_around() -> None:
    yaml = pytest.importorskip("yaml")  # only a cross-check; storage never imports it
    session, segments, marks, summary = fixed_session()
    nasty = "yes: no\n# not a comment \\ \"quoted\" \t\u2028 'single' {a: [b]} \x07 \ud800"
    session = SessionRecord(**{**session.__dict__, "title": nasty, "model": "- item"})
    md = to_markdown(session, segments, marks, summary)
    fm = yaml.safe_load(md.split("---\n")[1])
    assert fm["model"] == "- item"
    assert fm["status"] == "complete" and fm["tags"] == ["meeting"]
    # Whitespace runs (newline, tab, U+2028) become one space; every other character survives.
    assert fm["title"] == " ".join(nasty.split())


@pytest.mark.parametrize(
    "text",
    ["plain", 'say "hi"', "back\\slash", "new\nline", "tab\there", "bell\x07", "\u2028", "yes", "🎉"],
)
def test_yaml_str_round_trips_through_json(text: str) -> None:
    assert json.loads(yaml_str(text)) == text


def test_srt_and_vtt_timestamps_are_well_formed() -> None:
    session, segments, marks, summary = fixed_session()
    srt = FORMATS["srt"].render(session, segments, marks, summary)
    vtt = FORMATS["vtt"].render(session, segments, marks, summary)
    srt_cues = srt.strip().split("\n\n")
    assert len(srt_cues) == len(segments)
    for n, cue in enumerate(srt_cues, 1):
        number, times, text = cue.split("\n")
        assert number == str(n)
        start, end = times.split(" --> ")
        assert re.fullmatch(r"\d\d:[0-5]\d:[0-5]\d,\d{3}", start) and re.fullmatch(
            r"\d\d:[0-5]\d:[0-5]\d,\d{3}", end
        )
        assert start <= end and text.strip()
    assert vtt.startswith("WEBVTT\n\n")
    vtt_cues = vtt.strip().split("\n\n")[1:]
    assert len(vtt_cues) == len(segments)
    for n, cue in enumerate(vtt_cues, 1):
        ident, times, text = cue.split("\n")
        assert ident == str(n)  # the segment's number, as summaries cite it
        start, end = times.split(" --> ")
        assert re.fullmatch(r"\d\d:[0-5]\d:[0-5]\d\.\d{3}", start) and re.fullmatch(
            r"\d\d:[0-5]\d:[0-5]\d\.\d{3}", end
        )
        assert "-->" not in text and start <= end


def test_time_formats_round_and_carry() -> None:
    assert srt_time(3599.9996) == "01:00:00,000"
    assert vtt_time(61.5) == "00:01:01.500"
    assert clock(83.99) == "00:01:23"
    assert clock(-2) == "00:00:00" and srt_time(float("nan")) == "00:00:00,000"
    assert clock(100 * 3600 + 1) == "100:00:01"


def test_txt_lines() -> None:
    session, segments, marks, summary = fixed_session()
    lines = FORMATS["txt"].render(session, segments, marks, summary).splitlines()
    assert len(lines) == len(segments) + len(marks)
    seg_lines = [line for line in lines if not line.startswith("▸ ")]
    assert len(seg_lines) == len(segments)
    assert all(re.match(r"\[#\d+ \d\d:\d\d:\d\d\] \S", line) for line in seg_lines)
    assert seg_lines[-1] == "[#5 01:00:05] Thank you all."
    assert lines[-1] == "▸ [01:00:06] Note"
    assert "▸ [00:00:05] Action: Priya to send the cloud cost breakdown" in lines
    assert FORMATS["txt"].render(session, segments).splitlines() == seg_lines  # no marks: as before


def test_json_is_utf8_and_full() -> None:
    session, segments, marks, summary = fixed_session()
    text = to_json(session, segments, marks, summary)
    assert "東京オフィス" in text and "\\u" not in text
    data = json.loads(text)
    assert [s["id"] for s in data["segments"]] == [s.id for s in segments]
    assert data["summaries"][0]["citations"][1] == {
        "bullet": "**Decision:** the launch moves to April.",
        "seqs": [4],
    }
    assert data["segments"][3]["flags"] == ["repetition"]


def test_render_picks_latest_summary_and_rejects_unknown_format() -> None:
    from storage import StoreError

    session, segments, marks, summary = fixed_session()
    newer = replace(summary, id=4, markdown="- newer summary", created_at=summary.created_at.replace(hour=11))
    md = render("md", session, segments, marks, [newer, summary])
    assert "- newer summary" in md and "12% over budget" not in md
    assert len(json.loads(render("json", session, segments, marks, [summary, newer]))["summaries"]) == 2
    with pytest.raises(StoreError, match="unknown export format"):
        render("docx", session, segments)
