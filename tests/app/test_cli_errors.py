"""Bad input to the CLI: exit 2, exactly one line on stderr starting with `notetaker`, no
traceback, and nothing half-saved. Each case runs `python -m notetaker` in a subprocess."""

from __future__ import annotations

import os
import wave
from pathlib import Path

import pytest

from .conftest import SEEDED, Run, write_wav


def assert_user_error(run: Run, *mentions: str) -> str:
    assert run.rc == 2, (run.rc, run.err)
    assert "Traceback" not in run.err and "Traceback" not in run.out
    lines = run.err.splitlines()
    assert len(lines) == 1, run.err
    assert lines[0].startswith("notetaker"), lines[0]
    assert run.err.endswith("\n")
    assert "internal error" not in lines[0]
    for m in mentions:
        assert m.lower() in lines[0].lower(), (m, lines[0])
    return lines[0]


@pytest.fixture
def tone(tmp_path: Path) -> Path:
    return write_wav(tmp_path / "tone.wav", 1.0)


# -- bad audio files ------------------------------------------------------------------------


def _missing(d: Path) -> Path:
    return d / "no-such-meeting.wav"


def _directory(d: Path) -> Path:
    (d / "a-folder.wav").mkdir()
    return d / "a-folder.wav"


def _empty(d: Path) -> Path:
    (d / "empty.wav").write_bytes(b"")
    return d / "empty.wav"


def _zero_samples(d: Path) -> Path:
    with wave.open(str(d / "zero.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"")
    assert (d / "zero.wav").stat().st_size == 44
    return d / "zero.wav"


def _truncated_header(d: Path) -> Path:
    whole = write_wav(d / "whole.wav", 1.0).read_bytes()
    (d / "cut.wav").write_bytes(whole[:20])
    return d / "cut.wav"


def _text(d: Path) -> Path:
    (d / "notes.wav").write_text("Agenda:\n1. budget\n2. hiring\n" * 50)
    return d / "notes.wav"


def _random(d: Path, name: str = "noise.wav") -> Path:
    import random

    (d / name).write_bytes(random.Random(7).randbytes(20_000))
    return d / name


def _random_mp3(d: Path) -> Path:
    return _random(d, "noise.mp3")


def _png(d: Path) -> Path:
    (d / "slide.flac").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(2000))
    return d / "slide.flac"


BAD_FILES = {"missing": _missing, "directory": _directory, "empty": _empty, "zero-samples": _zero_samples,
             "truncated-header": _truncated_header, "text": _text, "random-bytes": _random, "png": _png,
             "random-bytes-as-mp3": _random_mp3}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_audio_file(seeded, tmp_path, case):
    path = BAD_FILES[case](tmp_path)
    run = seeded("transcribe", path)
    assert_user_error(run, path.name)
    assert run.out == ""
    assert seeded.session_rows() == SEEDED


def test_bad_audio_in_a_fresh_home_creates_nothing(cli, tmp_path):
    run = cli("transcribe", _text(tmp_path))
    assert_user_error(run)
    assert not cli.home.exists()


def test_sample_and_file_together(seeded, tone):
    assert_user_error(seeded("transcribe", "--sample", tone), "--sample")
    assert_user_error(seeded("transcribe"), "--sample")  # neither
    assert seeded.session_rows() == SEEDED


# -- engines and models ---------------------------------------------------------------------


def test_unknown_engine_from_flag_env_and_config(seeded, tone):
    assert_user_error(seeded("transcribe", "--engine", "parakeet", tone), "parakeet", "whisper")
    assert_user_error(seeded("transcribe", tone, env={"NOTETAKER_ENGINE": "canary"}), "canary")
    (seeded.home / "config.toml").write_text('engine = "granite"\n')
    assert_user_error(seeded("transcribe", tone), "granite")
    assert seeded.session_rows() == SEEDED


def test_unknown_model_offline(seeded, tone):
    assert_user_error(seeded("transcribe", "--model", "nonexistent-model", tone), "nonexistent-model")
    assert_user_error(seeded("transcribe", "--model", "nobody/nonexistent-model", tone),
                      "nobody/nonexistent-model")
    assert seeded.session_rows() == SEEDED
    assert not (seeded.home / "models").exists() or not any((seeded.home / "models").rglob("*.safetensors"))


# -- sessions that do not exist -------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ["show", "999"], ["show", "999", "--json"], ["export", "999", "--format", "md"],
    ["export", "2", "-f", "json", "-o", "out.json"], ["search", "budget", "--session", "999"],
])
def test_unknown_session(seeded, args):
    run = seeded(*args)
    sid = next(a for a in args if a.isdigit())
    assert_user_error(run, f"no session {sid}")
    assert run.out == ""
    assert not (seeded.base / "out.json").exists()
    assert seeded.session_rows() == SEEDED


# -- export to a place that cannot be written ------------------------------------------------


def _no_parent(d: Path) -> Path:
    return d / "no-such-folder" / "notes.md"


def _under_a_file(d: Path) -> Path:
    (d / "plain-file").write_text("x")
    return d / "plain-file" / "notes.md"


def _proc(d: Path) -> Path:
    return Path("/proc/notetaker-test-notes.md")


def _read_only_dir(d: Path) -> Path:
    if os.geteuid() == 0:
        pytest.skip("root writes through permission bits; the other cases cover unwritable paths")
    ro = d / "read-only"
    ro.mkdir()
    ro.chmod(0o555)
    return ro / "notes.md"


def _missing_folder(d: Path) -> Path:
    return d / "exports"  # given as "exports/": a folder that does not exist, not a file to create


UNWRITABLE = {"no-parent": _no_parent, "under-a-file": _under_a_file, "proc": _proc, "read-only": _read_only_dir,
              "missing-folder": _missing_folder}


@pytest.mark.parametrize("case", list(UNWRITABLE))
def test_unwritable_export_path(seeded, tmp_path, case):
    out = UNWRITABLE[case](tmp_path)
    run = seeded("export", "1", "--format", "md", "-o", f"{out}/" if case == "missing-folder" else out)
    assert_user_error(run, str(out))
    assert run.out == ""
    assert not out.exists() and not out.with_name(out.name + ".part").exists()
    assert seeded.session_rows() == SEEDED


# -- broken config and database --------------------------------------------------------------


@pytest.mark.parametrize("args", [["sessions"], ["show", "1"], ["search", "budget"], ["doctor"],
                                  ["export", "1", "-f", "txt"], ["transcribe", "--sample"]])
def test_corrupt_config(seeded, args):
    (seeded.home / "config.toml").write_text('engine = "whisper\nmodel = [\n')
    run = seeded(*args)
    assert_user_error(run, "config.toml")
    assert run.out == ""
    assert seeded.session_rows() == SEEDED


def test_bad_config_value_via_env(seeded):
    assert_user_error(seeded("sessions", env={"NOTETAKER_DELAY_MS": "5000"}), "NOTETAKER_DELAY_MS")


@pytest.mark.parametrize("args", [["sessions"], ["show", "1"], ["search", "budget"],
                                  ["export", "1", "-f", "md"], ["transcribe", "TONE"]])
def test_db_that_is_not_sqlite(cli, tone, args):
    cli.home.mkdir()
    garbage = b"this is not a database\n" * 100
    cli.db_path.write_bytes(garbage)
    run = cli(*[tone if a == "TONE" else a for a in args])
    assert_user_error(run, "notetaker.db")
    assert run.out == ""
    assert cli.db_path.read_bytes() == garbage  # left exactly as it was
    assert sorted(p.name for p in cli.home.iterdir()) == ["notetaker.db"]


def test_home_that_is_a_file(cli):
    cli.home.write_text("not a folder")
    assert_user_error(cli("sessions"), str(cli.home))


# -- import of something that is not an export -----------------------------------------------


@pytest.mark.parametrize("content", [None, "not json at all", "[1, 2, 3]", '{"session": 5}',
                                     '{"format": "other.tool", "session": {}}', "\udcff"])
def test_bad_import(seeded, tmp_path, content):
    path = tmp_path / "export.json"
    if content == "\udcff":
        path.write_bytes(b"\xff\xfe\x00garbage")
    elif content is not None:
        path.write_text(content)
    assert_user_error(seeded("import", path))
    assert seeded.session_rows() == SEEDED


# -- what argparse sees ----------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ["export", "1", "--format", "docx"], ["export", "1"], ["show", "abc"], ["show", "0"], ["show", "--", "-3"],
    ["show"], ["sessions", "--limit", "0"], ["search", "x", "--limit", "many"],
    ["transcribe", "--sample", "--speed", "0"], ["transcribe", "--sample", "--speed", "nan"],
    ["frobnicate"], ["--no-such-flag"],
])
def test_bad_arguments(seeded, args):
    run = seeded(*args)
    line = assert_user_error(run)
    assert line.startswith("notetaker")
    assert run.out == ""
    assert seeded.session_rows() == SEEDED


@pytest.mark.parametrize("query", ["", "   ", "*", "x" * 5000])
def test_search_queries_that_cannot_be_searched(seeded, query):
    run = seeded("search", query)
    assert_user_error(run)
    assert run.out == ""


@pytest.mark.parametrize(("args", "mention"), [
    (["search", "budget", "--limt", "3"], "--limt"),
    (["search", "channel:phone", "budget"], "channel:mic"),
    (["search", "speaker:", "budget"], "speaker: needs a value"),
    (["sessions", "-budget"], "unrecognized arguments: -budget"),
])
def test_search_mistakes_are_one_line(seeded, args, mention):
    run = seeded(*args)
    assert_user_error(run, mention)
    assert run.out == ""
    assert seeded.session_rows() == SEEDED
