"""`notetaker speakers ID`: the list, --rename and --merge (in order, all or none), and bad
input as one line with exit 2 that changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from notetaker.cli import main
from storage import SessionStore


@pytest.fixture
def home(tmp_path: Path) -> tuple[Path, int]:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    with SessionStore.open(home / "notetaker.db") as store:
        sid = store.create_session("Call", "whisper", "tiny.en")
        for text, start, end, channel, speaker in [("hello", 0.0, 2.0, "mic", "S1"),
                                                   ("hi", 2.0, 65.0, "system", "S2"),
                                                   ("me too", 65.0, 66.0, "system", "S3")]:
            store.add_segment(sid, text, start, end, channel=channel, speaker=speaker)
        store.finish_session(sid, "complete")
    return home, sid


def _run(home: Path, *args: str) -> int:
    try:
        return main(["--home", str(home), "speakers", *args])
    except SystemExit as e:  # the parser's own errors
        return int(e.code)


def _names(home: Path, sid: int) -> dict[str, str]:
    with SessionStore.open(home / "notetaker.db") as store:
        return store.speaker_names(sid)


def test_lists_labels_names_talk_time_and_segments(home, capsys) -> None:
    home, sid = home
    assert _run(home, str(sid)) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["LABEL", "NAME", "TALK", "SEGMENTS", "CHANNEL"]
    assert [line.split() for line in out[1:]] == [["S1", "-", "0:02", "1", "mic"],
                                                  ["S2", "-", "1:03", "1", "system"],
                                                  ["S3", "-", "0:01", "1", "system"]]


def test_rename_and_merge_apply_in_the_order_given(home, capsys) -> None:
    home, sid = home
    assert _run(home, str(sid), "--rename", "S3=Anya Petrova", "--merge", "S3=S2", "--rename", "S1=Me", "--json") == 0
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.splitlines()]
    assert [(r["label"], r["name"], r["segments"]) for r in rows] == [("S1", "Me", 1), ("S2", "Anya Petrova", 2)]
    assert captured.err.splitlines() == ["named S3 Anya Petrova", "merged S3 into S2 (1 segment)", "named S1 Me"]
    assert _run(home, str(sid), "--rename", "S1=") == 0
    assert _names(home, sid) == {"S2": "Anya Petrova"}


@pytest.mark.parametrize("args, says", [
    (["--rename", "S9=Bo"], "no speaker 'S9'"),
    (["--merge", "S9=S1"], "no speaker 'S9'"),
    (["--rename", "S2"], "is not LABEL=NAME"),
    (["--rename", "=Bo"], "is not LABEL=NAME"),
    (["--merge", "S3="], "is not FROM=INTO"),
    (["--merge", "S2=S2"], "into itself"),
])
def test_bad_input_is_one_line_and_changes_nothing(home, capsys, args, says) -> None:
    home, sid = home
    # The first edit is good; the bad one after it undoes it (all or none).
    assert _run(home, str(sid), "--rename", "S1=Me", *args) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("notetaker") and says in err, err
    assert "Traceback" not in err
    assert _names(home, sid) == {}


def test_no_such_meeting_and_a_meeting_without_labels(home, capsys) -> None:
    home, sid = home
    assert _run(home, str(sid + 5)) == 2
    assert capsys.readouterr().err.strip() == f"notetaker: no session {sid + 5}; `notetaker sessions` lists them"
    with SessionStore.open(home / "notetaker.db") as store:
        plain = store.create_session("Solo", "whisper", "tiny.en")
        store.add_segment(plain, "just me", 0.0, 1.0)
    assert _run(home, str(plain)) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and "no speaker labels yet" in captured.err


def test_show_and_export_use_the_names(home, capsys) -> None:
    home, sid = home
    assert _run(home, str(sid), "--rename", "S2=Anya", "--merge", "S3=S2") == 0
    capsys.readouterr()
    assert main(["--home", str(home), "show", str(sid)]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == ["[#1 00:00:00] S1 (mic): hello",
                                                        "[#2 00:00:02] Anya (system): hi",
                                                        "[#3 00:01:05] me too"]
    assert main(["--home", str(home), "export", str(sid), "-f", "vtt"]) == 0
    assert "<v Anya (system)>me too" in capsys.readouterr().out
