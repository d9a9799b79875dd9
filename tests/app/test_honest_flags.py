"""Flags that would do nothing in the chosen setup say so in one line: an error (exit 2,
nothing saved) where the user asked for something that cannot happen, a warning where the
result is the same without it. And the lines that close a meeting or refuse a setting say
plainly what they mean."""

from __future__ import annotations

import pytest

from notetaker.config import ConfigError, load_settings
from notetaker.spool import FLAC, RAW, spool_folder

from .conftest import write_wav

def one_line_error(run, *words: str) -> None:
    assert run.rc == 2, run.err
    assert len(run.err.strip().splitlines()) == 1 and "Traceback" not in run.err, run.err
    for w in words:
        assert w in run.err, run.err


@pytest.mark.parametrize(("args", "words"), [
    (["transcribe", "--sample", "--speed", "4"], ("--speed", "--realtime")),
    (["record", "--speed", "2"], ("--speed", "microphone")),
    (["record", "--input", "{clip}", "--no-realtime", "--speed", "2"], ("--speed", "--no-realtime")),
    (["record", "--input", "{clip}", "--system"], ("--system", "--input FILE")),
    (["record", "--input", "{clip}", "--mix"], ("--mix",)),
])
def test_flags_that_cannot_apply_are_refused_before_anything_is_saved(cli, tmp_path, args, words):
    clip = write_wav(tmp_path / "clip.wav", 1.0)
    one_line_error(cli(*[a.format(clip=clip) for a in args]), *words)
    assert cli.session_rows() == []
    assert not (cli.home / "sessions").exists()


def test_delay_and_context_an_engine_cannot_use_are_one_warning_each(cli):
    r = cli("transcribe", "--sample", "--delay", "480", "--context", "Dashwood, Norland")
    assert r.rc == 0, r.err
    warnings = [line for line in r.err.splitlines() if "does nothing" in line]
    assert warnings == [
        "notetaker: --delay does nothing with whisper: it has no delay control (voxtral has); ignored",
        "notetaker: --context does nothing with whisper: it cannot be steered by text (qwen3 can); ignored"]
    assert cli.session_rows() == [(1, "complete")]


def test_bad_settings_name_the_key_once_as_it_was_written(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text("[rewrite]\nmodel = 3\n")
    with pytest.raises(ConfigError) as info:
        load_settings({"home": str(home)}, env={})
    assert str(info.value) == f"{home / 'config.toml'} [rewrite] model must be text, not 3"
    (home / "config.toml").unlink()
    with pytest.raises(ConfigError) as info:
        load_settings({"home": str(home)}, env={"NOTETAKER_DELAY_MS": "soon"})
    assert str(info.value) == "$NOTETAKER_DELAY_MS must be a whole number, not 'soon'"  # not "...: delay_ms must"
    with pytest.raises(ConfigError) as info:
        load_settings({"home": str(home), "delay_ms": 5}, env={})
    assert str(info.value) == "command line delay_ms must be between 80 and 2400, not 5"


def test_leaving_the_tui_says_what_was_saved_and_where_its_audio_is(tmp_path, capsys):
    from notetaker.cli.tui import _report
    from storage import SessionStore

    sessions = tmp_path / "sessions"
    with SessionStore.open(tmp_path / "notetaker.db") as store:
        sid = store.create_session("Standup", "whisper", "tiny.en")
        store.add_segment(sid, "Hello.", 0.0, 1.0)
        store.finish_session(sid, "complete", duration_s=65.0)
        folder = spool_folder(sessions, sid)
        folder.mkdir(parents=True)
        (folder / FLAC).write_bytes(b"")
        assert _report(None, store, sid, sessions) == 0
        (folder / FLAC).unlink()
        assert _report(None, store, sid, sessions) == 0
        (folder / RAW).write_bytes(b"")
        assert _report(None, store, sid, sessions) == 0
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == (f"session {sid} complete: 1 segments, 1:05 of audio in {folder / FLAC} "
                        f"(`notetaker show {sid}`)")
    assert lines[1] == (f"session {sid} complete: 1 segments, 1:05 of audio, audio not kept (keep_audio is off) "
                        f"(`notetaker show {sid}`)")
    assert f"in {folder / RAW}" in lines[2]
    assert len(lines) == 3
