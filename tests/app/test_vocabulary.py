"""The custom vocabulary setting: config.toml, environment and flag layers; the atomic
rewrite of config.toml that keeps everything else; `notetaker vocabulary` and its errors."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from notetaker.config import ConfigError, load_settings, set_config_value
from notetaker.prepare import session_options
from notetaker.vocabulary import add_term, configured_terms, remove_term


def load(home: Path, flags: dict | None = None, **env: str):
    return load_settings(flags, env={"NOTETAKER_HOME": str(home), **env})


def test_config_list_env_text_and_a_flag_that_adds(tmp_path):
    (tmp_path / "config.toml").write_text('vocabulary = ["Anya", "Q3 OKRs", "anya"]\n', encoding="utf-8")
    s = load(tmp_path)
    assert s.vocabulary == ("Anya", "Q3 OKRs")  # each once, whatever its case
    assert load(tmp_path, NOTETAKER_VOCABULARY="Kafka; Siobhan ,").vocabulary == ("Kafka", "Siobhan")
    s = load(tmp_path, {"vocabulary": "Kubernetes, Okonkwo, ANYA"})
    assert s.vocabulary == ("Anya", "Q3 OKRs", "Kubernetes", "Okonkwo")
    assert session_options(s).vocabulary == s.vocabulary


@pytest.mark.parametrize("text, words", [
    ("vocabulary = 3\n", "must be a list of terms"),
    ('vocabulary = ["ok", 3]\n', "must be a list of terms"),
    ('vocabulary = ["  "]\n', "cannot be empty"),
    ('vocabulary = ["' + "x" * 65 + '"]\n', "longer than 64"),
    ('vocabulary = ["a\\u0007b"]\n', "control"),
    ('vocabulary = ["--"]\n', "no letters or digits"),
])
def test_bad_vocabulary_in_the_config_is_one_line(tmp_path, text, words):
    (tmp_path / "config.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load(tmp_path)
    assert words in str(info.value) and "\n" not in str(info.value) and "vocabulary" in str(info.value)


CONFIG = """# my settings
engine = "whisper"   # the default anyway
vocabulary = [
    "Anya",  # from the design team
    "Kafka",
]
context = "weekly sync"

[rewrite]
backend = "none"
"""


def test_add_and_remove_rewrite_only_the_vocabulary(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(CONFIG, encoding="utf-8")
    assert add_term(path, "  Siobhan   Ní  ") == ("Anya", "Kafka", "Siobhan Ní")
    assert add_term(path, "KAFKA") == ("Anya", "Kafka", "Siobhan Ní")  # already there: unchanged
    text = path.read_text(encoding="utf-8")
    assert text.startswith('# my settings\nengine = "whisper"   # the default anyway\n'
                           'vocabulary = ["Anya", "Kafka", "Siobhan Ní"]\ncontext = "weekly sync"\n')
    assert text.endswith('[rewrite]\nbackend = "none"\n')
    assert remove_term(path, "anya") == ("Kafka", "Siobhan Ní")
    s = load(tmp_path)
    assert (s.vocabulary, s.engine, s.context, s.rewrite_backend) == (("Kafka", "Siobhan Ní"), "whisper",
                                                                      "weekly sync", "none")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["config.toml"]  # no temporary file left


def test_a_new_key_goes_above_the_first_section_and_quotes_survive(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('engine = "whisper"\n\n[audio]\nkeep_audio = false', encoding="utf-8")
    add_term(path, 'The "Big" Deal')
    add_term(path, "back\\slash")
    assert configured_terms(path) == ('The "Big" Deal', "back\\slash")
    assert load(tmp_path).keep_audio is False
    assert path.read_text().index("vocabulary") < path.read_text().index("[audio]")


def test_a_missing_config_is_created(tmp_path):
    path = tmp_path / "home" / "config.toml"
    assert add_term(path, "Anya") == ("Anya",)
    assert path.read_text() == 'vocabulary = ["Anya"]\n'


def test_a_broken_config_is_refused_and_left_as_it_was(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("engine = \n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        add_term(path, "Anya")
    assert path.read_text() == "engine = \n"


def test_a_key_that_cannot_be_rewritten_safely_is_refused(tmp_path):
    path = tmp_path / "config.toml"
    text = '"vocabulary" = ["Anya"]  # a quoted key: not found by the rewrite, so never doubled\n'
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="safely"):
        set_config_value(path, "vocabulary", ["Anya"])
    assert path.read_text() == text


def test_removing_a_term_that_is_not_there(tmp_path):
    with pytest.raises(ConfigError, match="not in the vocabulary"):
        remove_term(tmp_path / "config.toml", "Bob")


def test_cli_list_add_rm_and_bad_input(cli):
    run = cli("vocabulary")
    assert run.rc == 0 and "no vocabulary yet" in run.out
    run = cli("vocabulary", "add", "Anya", "Q3 OKRs")
    assert run.rc == 0 and "added 'Anya'" in run.out and "2 terms" in run.out
    assert cli("vocabulary", "list").out.splitlines() == ["Anya", "Q3 OKRs"]
    assert cli("vocabulary", "list", "--json").json_lines()[0]["vocabulary"] == ["Anya", "Q3 OKRs"]
    run = cli("vocabulary", "rm", "anya")
    assert run.rc == 0 and "removed" in run.out and cli("vocabulary", "list").out.splitlines() == ["Q3 OKRs"]
    for args, words in [(("rm", "Bob"), "not in the vocabulary"), (("add", " "), "cannot be empty"),
                        (("add", "a\x01b"), "control"), (("add",), "the following arguments are required")]:
        run = cli("vocabulary", *args)
        assert run.rc == 2 and words in run.err and len(run.err.strip().splitlines()) == 1, run.err
        assert "Traceback" not in run.err
    (cli.home / "config.toml").write_text("vocabulary = [\n", encoding="utf-8")
    run = cli("vocabulary", "add", "Kafka")
    assert run.rc == 2 and "not valid TOML" in run.err
    assert (cli.home / "config.toml").read_text() == "vocabulary = [\n"
    (cli.home / "config.toml").unlink()
    run = cli("transcribe", "--vocabulary", "a\x01b", "--sample")
    assert run.rc == 2 and "control" in run.err and "Traceback" not in run.err
