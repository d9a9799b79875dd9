"""`notetaker edit` and `notetaker replace`: corrections from the command line, their preview
and confirmation, undo, and one line (exit 2, nothing changed) for every bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from storage import SessionStore


def texts(cli, sid: int = 1) -> list[tuple[str, str | None]]:
    with SessionStore.open(cli.db_path) as store:
        return [(s.text, s.edited_text) for s in store.segments(sid)]


def test_edit_shows_everywhere_and_undo_takes_it_back(seeded):
    run = seeded("edit", "1", "1", "We agreed on the Q3 budget.")
    assert run.rc == 0, run.err
    assert run.out == "[#1 00:00:00] We agreed on the budget. → We agreed on the Q3 budget.\n"
    assert "--undo" in run.err
    assert texts(seeded)[0] == ("We agreed on the budget.", "We agreed on the Q3 budget.")
    assert "[#1 00:00:00] We agreed on the Q3 budget.  (edited)" in seeded("show", "1").out
    assert "Q3 budget" in seeded("export", "1", "-f", "txt").out
    first = json.loads(seeded("export", "1", "-f", "json").out)["segments"][0]
    assert first["edited"] is True and first["text"] == "We agreed on the budget."

    undo = seeded("edit", "1", "--undo")
    assert undo.rc == 0 and undo.out == "[#1 00:00:00] We agreed on the Q3 budget. → We agreed on the budget.\n"
    assert texts(seeded)[0] == ("We agreed on the budget.", None)
    again = seeded("edit", "1", "--undo")
    assert (again.rc, again.err) == (2, "notetaker: nothing to undo in meeting 1\n")


def test_replace_previews_without_a_terminal_and_applies_with_yes(seeded):
    preview = seeded("replace", "1", "THE BUDGET", "the Q3 budget")
    assert preview.rc == 0
    assert preview.out == "[#1 00:00:00] We agreed on the budget. → We agreed on the Q3 budget.\n"
    assert "nothing changed" in preview.err and "--yes" in preview.err
    assert texts(seeded)[0][1] is None

    applied = seeded("replace", "1", "the budget", "the Q3 budget", "--yes")
    assert applied.rc == 0 and "replaced in 1 of 1 segment" in applied.err
    assert texts(seeded)[0][1] == "We agreed on the Q3 budget."
    none = seeded("replace", "1", "zebra", "horse", "--yes")
    assert none.rc == 0 and "no “zebra” in meeting 1" in none.err


def test_replace_across_meetings_names_each_meeting(seeded):
    with SessionStore.open(seeded.db_path) as store:
        other = store.create_session("Retro", "whisper", "tiny.en")
        store.add_segment(other, "Sam liked the budget talk.", 0.0, 2.0)
    run = seeded("replace", "--all-meetings", "sam", "Samantha", "--yes")
    assert run.rc == 0, run.err
    assert run.out.splitlines() == [
        "    1  [#2 00:00:02] Sam writes it up. → Samantha writes it up.",
        f"    {other}  [#1 00:00:00] Sam liked the budget talk. → Samantha liked the budget talk.",
    ]
    assert texts(seeded, other)[0][1] == "Samantha liked the budget talk."


def test_replace_can_add_the_replacement_to_the_vocabulary(seeded):
    """`--add-to-vocabulary`: the engines get the corrected spelling from now on; a term the
    vocabulary would refuse is one line before anything is replaced."""
    refused = seeded("replace", "1", "sam", "?!", "--yes", "--add-to-vocabulary")
    assert refused.rc == 2 and len(refused.err.strip().splitlines()) == 1
    assert texts(seeded)[1][1] is None
    run = seeded("replace", "1", "sam", "Samantha", "--yes", "--add-to-vocabulary")
    assert run.rc == 0, run.err
    assert "“Samantha” is in the vocabulary (1 terms)" in run.err
    assert texts(seeded)[1][1] == "Samantha writes it up."
    assert seeded("vocabulary", "list").out.split() == ["Samantha"]


def test_replace_asks_on_a_terminal(seeded):
    """y applies, anything else (or end of input) changes nothing."""
    for answer, expected in ((b"n\n", None), (b"", None), (b"y\n", "Samantha writes it up.")):
        main, child = os.openpty()
        p = subprocess.Popen([sys.executable, "-m", "notetaker", "replace", "1", "sam", "Samantha"],
                             cwd=seeded.base, env=seeded.env, stdin=child, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        os.close(child)
        os.write(main, answer or b"\x04")  # ctrl+d: end of input
        out, err = p.communicate(timeout=60)
        os.close(main)
        assert p.returncode == 0, err
        assert b"Replace in 1 segment? [y/N]" in out
        assert texts(seeded)[1][1] == expected, answer


def test_bad_inputs_are_one_line_and_change_nothing(seeded):
    before = texts(seeded)
    cases = {
        ("edit", "1", "9", "x"): "meeting 1 has no segment #9; `notetaker show 1` lists them",
        ("edit", "7", "1", "x"): "no session 7",
        ("edit", "1", "1", "   "): "an edit cannot be empty",
        ("edit", "1", "1"): "give the segment's number and its text",
        ("edit", "1", "1", "--undo"): "--undo takes only the meeting",
        ("edit", "1", "0", "x"): "must be at least 1",
        ("replace", "1", "  ", "x"): "nothing to find",
        ("replace", "7", "a", "b"): "no session 7",
        ("replace", "x", "a", "b"): "is not a session id",
        ("replace", "1", "a"): "give ID OLD NEW",
        ("replace", "--all-meetings", "1", "a", "b"): "give ID OLD NEW",
    }
    for args, message in cases.items():
        run = seeded(*args)
        assert run.rc == 2 and message in run.err, (args, run.err)
        assert run.err.count("\n") == 1 and "Traceback" not in run.err, args
    assert texts(seeded) == before
