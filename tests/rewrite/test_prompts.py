import re
from datetime import datetime
import os
from pathlib import Path

import pytest

from rewrite.base import Message, RewriteError, Segment
from rewrite.prompts import (
    CLEANUP_SYSTEM,
    DEFAULT_TEMPLATE,
    MAP_SYSTEM,
    MERGE_SYSTEM,
    MESSAGE_OVERHEAD,
    SUMMARY_SYSTEM,
    Template,
    cleanup_messages,
    clock,
    default_template,
    load_template,
    map_messages,
    merge_messages,
    prompt_tokens,
    reduce_messages,
    summary_messages,
    transcript_line,
    write_default_templates,
)

from .scripted_backend import ScriptedBackend

KNOWN = "known: {title}, {date}, {duration}, {language}"


# -- prompt building -----------------------------------------------------------------


def test_clock_and_transcript_lines():
    assert clock(0) == "00:00" and clock(65.9) == "01:05" and clock(3599) == "59:59"
    assert clock(3600) == "1:00:00" and clock(3 * 3600 + 61) == "3:01:01"
    assert transcript_line(Segment(12, 303.4, 306.0, "  we agreed\n on  Friday ")) == "[#12 05:03] we agreed on Friday"
    assert transcript_line(Segment(7, 5, 6, "hi", channel="them")) == "[#7 00:05 them] hi"
    assert transcript_line(Segment(7, 5, 6, "hi"), "second half") == "[#7 00:05] second half"


def test_cleanup_messages_number_each_segment_by_id():
    msgs = cleanup_messages([Segment(3, 0, 1, "um hello there"), Segment(9, 1, 2, "so uh\nyeah")])
    assert [m.role for m in msgs] == ["system", "user"]
    assert msgs[0].content == CLEANUP_SYSTEM
    assert "[#id] cleaned text" in CLEANUP_SYSTEM and "Never add a word" in CLEANUP_SYSTEM
    assert msgs[1].content.splitlines()[-2:] == ["[#3] um hello there", "[#9] so uh yeah"]


def test_summary_prompts_carry_lines_template_and_rules():
    lines = ["[#1 00:00] we ship friday", "[#2 00:04] Ann writes the notes"]
    msgs = summary_messages(lines, "### Decisions\n", {"title": "Sync", "language": "German"})
    assert msgs[0] == Message("system", SUMMARY_SYSTEM)
    user = msgs[1].content
    assert "[#1 00:00] we ship friday\n[#2 00:04] Ann writes the notes" in user
    assert "Template:\n### Decisions\n" in user and "title: Sync" in user and "in German" in user
    assert user.index("[#2 00:04]") < user.index("Template:")  # the instructions come last
    assert "[#12] or [#12, #15]" in SUMMARY_SYSTEM and "Never invent" in SUMMARY_SYSTEM
    assert "in the transcript's language" in summary_messages(lines, "x", {})[1].content

    m = map_messages(lines)
    assert m[0].content == MAP_SYSTEM and "[#12] or [#12, #15]" in MAP_SYSTEM
    assert "[#1 00:00] we ship friday\n[#2 00:04] Ann writes the notes" in m[1].content
    g = merge_messages(["Part 1 (00:00-01:00):\n- a [#1]", "Part 2 (01:00-02:00):\n- b [#2]"])
    assert g[0].content == MERGE_SYSTEM and "- a [#1]\n\nPart 2" in g[1].content
    r = reduce_messages(["Part 1 (00:00-01:00):\n- a [#1]"], "### Key points\n", {"date": "2024-05-01"})
    assert r[0].content == SUMMARY_SYSTEM and "- a [#1]" in r[1].content and "Template:\n### Key points" in r[1].content
    assert "date: 2024-05-01" in r[1].content


def test_prompt_tokens_counts_every_message_with_the_template_allowance():
    b = ScriptedBackend()
    msgs = [Message("system", "one two three"), Message("user", "four five")]
    assert prompt_tokens(b, msgs) == 5 + 3 * MESSAGE_OVERHEAD


def test_default_template_has_the_four_sections_and_asks_for_citations():
    t = default_template()
    heads = [line for line in t.text.splitlines() if line.startswith("### ")]
    assert heads == ["### Key points", "### Decisions", "### Action items", "### Open questions"]
    assert "<!--" not in t.text and "[#id, #id]" in t.text and "Owner" in t.text and "due date" in t.text
    assert not re.search(r"#\d", t.text)  # placeholders only: a model copying them cites nothing real
    assert t.render() == t.text  # no fields in the default


# -- templates -----------------------------------------------------------------------


def test_render_fills_fields_and_keeps_literal_braces():
    t = Template.from_text("# {title} ({date}, {duration})\nIn {language}: {{not a field}}\n")
    assert t.render(title="Standup", date=datetime(2024, 5, 1, 9, 30), duration=3725.0, language="en") == \
        "# Standup (2024-05-01 09:30, 1:02:05)\nIn en: {not a field}\n"
    assert t.render(title="Standup") == "# Standup (unknown, unknown)\nIn unknown: {not a field}\n"
    with pytest.raises(TypeError):
        t.render(attendees="x")


def test_load_template_by_name_path_and_default(tmp_path):
    d = tmp_path / "templates"
    d.mkdir()
    (d / "standup.md").write_text("<!-- a note -->\n## Yesterday {date}\n## Today\n", encoding="utf-8")
    assert load_template(None, d) == default_template()
    t = load_template("standup", d)
    assert (t.name, t.text) == ("standup.md", "## Yesterday {date}\n## Today\n")
    assert load_template("standup.md", d) == t
    assert load_template(str(d / "standup.md"), None) == t
    assert load_template("default", d) == default_template()  # no default.md yet: the built-in
    (d / "default.md").write_text("## Mine\n", encoding="utf-8")
    assert load_template("default", d).text == "## Mine\n"
    assert load_template(None, d) == default_template()


def test_write_default_templates_writes_once(tmp_path):
    d = tmp_path / "home" / "templates"
    path = write_default_templates(d)
    assert path == d / "default.md" and path.read_text(encoding="utf-8") == DEFAULT_TEMPLATE
    assert load_template("default", d).text == default_template().text
    path.write_text("## Edited\n", encoding="utf-8")
    write_default_templates(d)
    assert path.read_text(encoding="utf-8") == "## Edited\n"


@pytest.mark.parametrize("body, message", [
    ("## Who\n{attendees}\n", "template standup.md uses unknown field {attendees}; " + KNOWN),
    ("## {title.upper}\n", "template standup.md uses unknown field {title.upper}; " + KNOWN),
    ("## {title!r}\n", "template standup.md uses unknown field {title!r}; " + KNOWN),
    ("## {}\n", "template standup.md uses unknown field {}; " + KNOWN),
    ("## a { b\n", "template standup.md has a stray '{' or '}'; write literal braces as {{ and }}"),
    ("## a } b\n", "template standup.md has a stray '{' or '}'; write literal braces as {{ and }}"),
    ("  \n\n", "template standup.md is empty"),
    ("<!-- only a note {attendees} -->\n", "template standup.md is empty"),
])
def test_bad_templates_fail_with_one_line(tmp_path, body, message):
    (tmp_path / "standup.md").write_text(body, encoding="utf-8")
    with pytest.raises(RewriteError) as e:
        load_template("standup", tmp_path)
    assert str(e.value) == message and "\n" not in str(e.value)


def test_missing_and_unreadable_templates_fail_with_one_line(tmp_path):
    (tmp_path / "retro.md").write_text("## Went well\n", encoding="utf-8")
    (tmp_path / "daily.md").write_text("## Today\n", encoding="utf-8")
    (tmp_path / "latin1.md").write_bytes("## Caf\xe9\n".encode("latin-1"))
    cases = {
        ("standup", tmp_path): f"no template named 'standup' in {tmp_path} (found: daily, latin1, retro)",
        ("standup", tmp_path / "none"): f"no template named 'standup' in {tmp_path / 'none'} (found: none there)",
        ("standup", None): "no template named 'standup' (and no templates folder to look in)",
        (str(tmp_path / "nope.md"), tmp_path): f"template file {tmp_path / 'nope.md'} does not exist",
        (str(tmp_path) + "/", None): f"cannot read template {tmp_path}: it is a folder",
        ("  ", tmp_path): "template name is empty",
        ("latin1", tmp_path): f"cannot read template {tmp_path / 'latin1.md'}: it is not UTF-8 text",
    }
    for (name, where), message in cases.items():
        with pytest.raises(RewriteError) as e:
            load_template(name, where)
        assert str(e.value) == message


def test_unreadable_template_file(tmp_path, monkeypatch):
    path = tmp_path / "secret.md"
    path.write_text("## x\n", encoding="utf-8")

    real_open = os.open

    def denied(name, *a, **k):
        if str(name) == str(path):
            raise PermissionError(13, "Permission denied", str(name))
        return real_open(name, *a, **k)

    monkeypatch.setattr(os, "open", denied)  # file modes do not bind root, who runs CI
    with pytest.raises(RewriteError) as e:
        load_template("secret", tmp_path)
    assert str(e.value) == f"cannot read template {path}: Permission denied"
