"""`notetaker record` and `notetaker` with no command, from the command line: every bad input
fails with one line and exit 2 before the TUI starts and before anything is saved; piped,
`notetaker` alone still prints help. Each case runs `python -m notetaker` in a subprocess
(no terminal: stdin and stdout are pipes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from notetaker.cli import build_parser
from notetaker.config import load_settings
from tests.app.conftest import CLI, SEEDED, Run, cli, seeded  # noqa: F401  (fixtures)

SAMPLE = Path(__file__).resolve().parents[2] / "notetaker" / "data" / "sample.flac"
MIC = "no audio input device found"  # this machine has no sound card (the capture tests start one)


def one_line_error(run: Run, *mentions: str) -> str:
    assert run.rc == 2, (run.rc, run.out, run.err)
    assert "Traceback" not in run.err + run.out
    lines = run.err.splitlines()
    assert len(lines) == 1 and run.err.endswith("\n"), run.err
    assert lines[0].startswith("notetaker"), lines[0]
    assert "internal error" not in lines[0]
    for m in mentions:
        assert m.lower() in lines[0].lower(), (m, lines[0])
    assert "\x1b[" not in run.out  # the TUI never drew anything
    return lines[0]


def test_no_command_when_piped_prints_help(cli):
    run = cli()
    assert run.rc == 0, run.err
    assert "usage: notetaker" in run.out and "record" in run.out and "transcribe" in run.out
    assert "\x1b[" not in run.out
    assert not cli.home.exists()  # help opens no store


def test_record_help_names_its_options(cli):
    run = cli("record", "--help")
    assert run.rc == 0
    for option in ("--input", "--realtime", "--speed", "--engine", "--model", "--language", "--title", "--rewrite"):
        assert option in run.out, option


# -- what to record -------------------------------------------------------------------------


def test_no_input_means_the_default_microphone_and_none_is_there(cli):
    one_line_error(cli("record"), MIC, "--input FILE")
    assert not cli.home.exists()


@pytest.mark.parametrize("device", ["default", "MacBook Pro Microphone", "pulse"])
def test_a_device_name_that_is_not_there_is_one_line(cli, device):
    one_line_error(cli("record", "--input", device), device, MIC)
    assert not cli.home.exists()


def test_the_configured_input_device_is_a_microphone_too(seeded):
    (seeded.home / "config.toml").write_text('[audio]\ninput_device = "USB Mic"\n')
    one_line_error(seeded("record"), "USB Mic", MIC)
    assert seeded.session_rows() == SEEDED


def test_missing_file(seeded, tmp_path):
    one_line_error(seeded("record", "--input", tmp_path / "no-such-meeting.wav"), "no-such-meeting.wav",
                   "no such file")
    one_line_error(seeded("record", "--input", "meeting.flac"), "meeting.flac", "no such file")
    assert seeded.session_rows() == SEEDED


def test_not_audio(seeded, tmp_path):
    (tmp_path / "notes.wav").write_text("Agenda:\n1. budget\n" * 50)
    one_line_error(seeded("record", "--input", tmp_path / "notes.wav"), "notes.wav")
    (tmp_path / "folder.wav").mkdir()
    one_line_error(seeded("record", "--input", tmp_path / "folder.wav"), "folder.wav", "directory")
    assert seeded.session_rows() == SEEDED


def test_bad_audio_in_a_fresh_home_creates_nothing(cli, tmp_path):
    (tmp_path / "empty.flac").write_bytes(b"")
    one_line_error(cli("record", "--input", tmp_path / "empty.flac"), "empty.flac")
    assert not cli.home.exists()


# -- engines, models, languages --------------------------------------------------------------


def test_unknown_engine_from_flag_env_and_config(seeded):
    one_line_error(seeded("record", "--input", SAMPLE, "--engine", "parakeet"), "parakeet", "whisper")
    one_line_error(seeded("record", "--input", SAMPLE, env={"NOTETAKER_ENGINE": "canary"}), "canary")
    (seeded.home / "config.toml").write_text('engine = "granite"\n')
    one_line_error(seeded("record", "--input", SAMPLE), "granite")
    assert seeded.session_rows() == SEEDED


def test_unknown_model_offline(seeded):
    one_line_error(seeded("record", "--input", SAMPLE, "--model", "nonexistent-model"), "nonexistent-model")
    one_line_error(seeded("record", "--input", SAMPLE, "--model", "nobody/nonexistent-model"),
                   "nobody/nonexistent-model")
    one_line_error(seeded("record", "--input", SAMPLE, "--engine", "qwen3", "--model", "qwen3-asr-9b"),
                   "qwen3-asr-9b")
    assert seeded.session_rows() == SEEDED


def test_bad_language(seeded):
    one_line_error(seeded("record", "--input", SAMPLE, "--language", "xx"), "'xx'")
    one_line_error(seeded("record", "--input", SAMPLE, "--language", "de"), "English-only", "'de'")
    one_line_error(seeded("record", "--input", SAMPLE, "--engine", "voxtral", "--language", "tlh"), "'tlh'")
    assert seeded.session_rows() == SEEDED


def test_bad_delay_and_speed(seeded):
    one_line_error(seeded("record", "--input", SAMPLE, "--engine", "voxtral", "--delay", "100"), "100")
    one_line_error(seeded("record", "--input", SAMPLE, "--speed", "0"), "speed")
    one_line_error(seeded("record", "--input", SAMPLE, "--rewrite", "gpt"), "gpt")
    assert seeded.session_rows() == SEEDED


def test_rewrite_backend_from_the_config(seeded):
    (seeded.home / "config.toml").write_text('[rewrite]\nbackend = "gpt4"\n')
    one_line_error(seeded("record", "--input", SAMPLE), "gpt4", "mlx")
    # A backend that is not set up (no server address, none running) does not stop a meeting
    # (issue 17): it gets as far as the terminal check, saying first that cleanup is off.
    (seeded.home / "config.toml").write_text('[rewrite]\nbackend = "openai"\n')
    run = seeded("record", "--input", SAMPLE)
    assert run.rc == 2 and run.err.splitlines()[-1].endswith("needs a terminal; for plain output use "
                                                              "`notetaker transcribe FILE --realtime`")
    assert seeded.session_rows() == SEEDED


def test_good_input_without_a_terminal_says_so_and_saves_nothing(seeded):
    line = one_line_error(seeded("record", "--input", SAMPLE), "terminal", "notetaker transcribe")
    assert "Traceback" not in line
    assert seeded.session_rows() == SEEDED


# -- the deps the TUI is built from -------------------------------------------------------------


def test_deps_from_flags(tmp_path, monkeypatch):
    from notetaker.cli.tui import build_deps
    from notetaker.prepare import fetch_engine_model

    monkeypatch.setenv("NOTETAKER_HOME", str(tmp_path / "home"))
    args = build_parser().parse_args(["record", "--input", str(SAMPLE), "--title", "Standup", "--language", "en",
                                      "--context", "Dashwood", "--rewrite", "mlx"])
    assert args.realtime is True and args.speed is None  # a live meeting by default, at its own pace
    settings = load_settings({"language": args.language, "context": args.context,
                              "rewrite_backend": args.rewrite_backend})
    label = fetch_engine_model(settings)
    assert label == "whisper/tiny.en"
    deps = build_deps(settings, store=None, title=args.title, engine_label=label)
    assert (deps.title, deps.engine_label, deps.rewrite_backend, deps.realtime) == ("Standup", label, "mlx", True)
    assert deps.options.language == "en" and deps.options.context == "Dashwood"
    assert deps.options.delay_ms is None and deps.options.partials  # Whisper has no delay control
    assert deps.templates_dir == settings.home / "templates"
    assert deps.rewrite_factory("none") is None
    assert build_parser().parse_args(["record", "--no-realtime"]).realtime is False
    voxtral = build_deps(load_settings({"engine": "voxtral", "delay_ms": 960}), store=None)
    assert voxtral.options.delay_ms == 960


def test_engine_factory_loads_once(tmp_path, monkeypatch):
    from notetaker.cli import tui as launch

    calls = []
    monkeypatch.setattr("asr.registry.load_engine", lambda *a, **k: calls.append(a) or object())
    deps = launch.build_deps(load_settings({"home": str(tmp_path)}), store=None)
    assert deps.engine_factory() is deps.engine_factory()
    assert len(calls) == 1
