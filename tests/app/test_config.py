"""Settings layering (defaults < config.toml < environment < flags), the data home, and bad config."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from notetaker.config import ConfigError, Settings, default_home, ensure_home, load_settings


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "data"
    h.mkdir()
    return h


def write_config(home: Path, text: str) -> Path:
    path = home / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def load(home: Path, flags: dict | None = None, **env: str) -> Settings:
    return load_settings(flags, env={"NOTETAKER_HOME": str(home), **env})


def config_error(home: Path, text: str | None = None, flags: dict | None = None, **env: str) -> str:
    if text is not None:
        write_config(home, text)
    with pytest.raises(ConfigError) as info:
        load(home, flags, **env)
    message = str(info.value)
    assert "\n" not in message and message.strip() == message and message
    return message


# -- layering -------------------------------------------------------------------------------


def test_defaults_without_config_env_or_flags(home):
    s = load(home)
    assert s == Settings(home=home.resolve())
    # Engine, model and rewrite backend left open: the memory plan chooses them.
    assert (s.engine, s.model, s.language, s.delay_ms) == (None, None, None, 480)
    assert (s.allow_download, s.keep_audio, s.rewrite_backend, s.memory_budget_gb) == (True, True, None, None)
    assert s.db_path == home.resolve() / "notetaker.db"
    assert s.config_path == home.resolve() / "config.toml"
    assert s.models_dir.parent == s.sessions_dir.parent == home.resolve()


def test_each_layer_overrides_the_one_below(home):
    write_config(home, """
engine = "whisper-file"
model = "small.en"
language = "de"
delay_ms = 800
context = "from the file"
keep_audio = false
""")
    s = load(home, {"language": "en", "engine": None, "context": "from a flag"},
             NOTETAKER_DELAY_MS="960", NOTETAKER_LANGUAGE="fr", NOTETAKER_CONTEXT="from env")
    assert s.engine == "whisper-file"  # file only (a None flag is "not given")
    assert s.model == "small.en"  # file only
    assert s.keep_audio is False  # file only
    assert s.delay_ms == 960  # env over file
    assert s.language == "en"  # flag over env over file
    assert s.context == "from a flag"  # flag over env over file


def test_env_over_defaults_and_env_types(home):
    s = load(home, NOTETAKER_ENGINE="whisper", NOTETAKER_MODEL="base.en", NOTETAKER_ALLOW_DOWNLOAD="no",
             NOTETAKER_KEEP_AUDIO="OFF", NOTETAKER_REWRITE_BACKEND="openai",
             NOTETAKER_OPENAI_BASE_URL="http://localhost:8080/v1", NOTETAKER_DELAY_MS=" 1200 ")
    assert (s.model, s.allow_download, s.keep_audio) == ("base.en", False, False)
    assert (s.rewrite_backend, s.openai_base_url, s.delay_ms) == ("openai", "http://localhost:8080/v1", 1200)


def test_empty_env_values_do_not_override(home):
    write_config(home, 'model = "small.en"\n')
    assert load(home, NOTETAKER_MODEL="").model == "small.en"


def test_sections_map_onto_settings(home):
    write_config(home, """
[rewrite]
backend = "mlx"
model = "mlx-community/Qwen3-1.7B-4bit"

[openai]
base_url = "http://127.0.0.1:8000/v1"

[audio]
input_device = "USB Microphone"
keep_audio = false
""")
    s = load(home)
    assert (s.rewrite_backend, s.rewrite_model) == ("mlx", "mlx-community/Qwen3-1.7B-4bit")
    assert s.openai_base_url == "http://127.0.0.1:8000/v1"
    assert (s.input_device, s.keep_audio) == ("USB Microphone", False)
    # env beats a section value
    assert load(home, NOTETAKER_REWRITE_BACKEND="none").rewrite_backend == "none"


# -- the data home --------------------------------------------------------------------------


def test_notetaker_home_env_and_home_flag(tmp_path):
    env_home, flag_home = tmp_path / "from-env", tmp_path / "from-flag"
    for h, engine in ((env_home, "env-engine"), (flag_home, "flag-engine")):
        h.mkdir()
        write_config(h, f'engine = "{engine}"\n')
    env = {"NOTETAKER_HOME": str(env_home)}
    s = load_settings({}, env=env)
    assert (s.home, s.engine) == (env_home.resolve(), "env-engine")
    # --home wins, and the config file is read from the home it names
    s = load_settings({"home": str(flag_home)}, env=env)
    assert (s.home, s.engine) == (flag_home.resolve(), "flag-engine")


def test_home_is_made_absolute_and_user_expanded(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_settings({"home": "rel/home"}, env={}).home == tmp_path / "rel" / "home"
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    assert load_settings({}, env={"NOTETAKER_HOME": "~/notes"}).home == tmp_path / "me" / "notes"


def test_default_home_is_under_xdg_data_home(tmp_path, monkeypatch):
    xdg = tmp_path / "xdg"
    monkeypatch.setenv("XDG_DATA_HOME", str(xdg))
    assert default_home() == xdg / "notetaker"
    assert load_settings({}, env={"XDG_DATA_HOME": str(xdg)}).home == xdg / "notetaker"
    # the environment given to load_settings is the one that counts
    other = tmp_path / "other-xdg"
    assert load_settings({}, env={"XDG_DATA_HOME": str(other)}).home == other / "notetaker"


def test_default_home_without_xdg_is_under_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    assert load_settings({}, env={}).home == tmp_path / "me" / ".local" / "share" / "notetaker"


def test_loading_settings_creates_nothing_and_ensure_home_is_private(tmp_path):
    h = tmp_path / "a" / "b"
    s = load_settings({"home": str(h)}, env={})
    assert not h.exists()
    assert ensure_home(s) == h and h.is_dir()
    assert stat.S_IMODE(h.stat().st_mode) == 0o700


def test_home_that_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    message = config_error(f)
    assert str(f) in message


def test_ensure_home_failure_is_a_config_error(tmp_path):
    (tmp_path / "file").write_text("x")
    s = load_settings({"home": str(tmp_path / "file" / "home")}, env={})
    with pytest.raises(ConfigError, match="cannot create data home"):
        ensure_home(s)


# -- bad config -----------------------------------------------------------------------------


def test_corrupt_toml_names_the_file(home):
    message = config_error(home, 'engine = "whisper\nmodel = [\n')
    assert str(home / "config.toml") in message and "TOML" in message


def test_config_that_is_not_utf8_or_not_a_file(home):
    (home / "config.toml").write_bytes(b'engine = "\xff\xfe"\n')
    assert str(home / "config.toml") in config_error(home)
    (home / "config.toml").unlink()
    (home / "config.toml").mkdir()
    assert str(home / "config.toml") in config_error(home)


@pytest.mark.parametrize("text, names", [
    ('colour = "red"\n', ["colour"]),
    ('home = "/elsewhere"\n', ["home"]),
    ('[video]\nfps = 30\n', ["[video]"]),
    ('[rewrite]\ntemperature = 0.2\n', ["[rewrite]", "temperature"]),
    ('[audio]\nsample_rate = 48000\n', ["[audio]", "sample_rate"]),
    # [audio] has no prefix, but it is not a back door for other settings
    ('[audio]\nengine = "whisper"\n', ["[audio]", "engine"]),
    ('[audio]\ndelay_ms = 960\n', ["[audio]", "delay_ms"]),
])
def test_unknown_keys(home, text, names):
    message = config_error(home, text)
    assert str(home / "config.toml") in message
    for name in names:
        assert name in message
    assert "unknown" in message


@pytest.mark.parametrize("text, name", [
    ('delay_ms = "soon"\n', "delay_ms"),
    ("delay_ms = true\n", "delay_ms"),
    ("delay_ms = 480.5\n", "delay_ms"),  # not silently truncated to 480
    ("delay_ms = [480]\n", "delay_ms"),
    ('keep_audio = "maybe"\n', "keep_audio"),
    ("engine = 5\n", "engine"),
    ("model = true\n", "model"),
    ('language = ["en"]\n', "language"),
    ("[rewrite]\nbackend = 1\n", "[rewrite] backend"),  # the key as written, not the setting's inner name
    ("[audio]\nkeep_audio = 2\n", "keep_audio"),
])
def test_wrong_types_in_the_file(home, text, name):
    message = config_error(home, text)
    assert str(home / "config.toml") in message and name in message


def test_wrong_types_in_env_and_flags(home):
    assert "$NOTETAKER_DELAY_MS" in config_error(home, NOTETAKER_DELAY_MS="abc")
    assert "$NOTETAKER_KEEP_AUDIO" in config_error(home, NOTETAKER_KEEP_AUDIO="perhaps")
    assert "command line" in config_error(home, flags={"delay_ms": "x"})
    assert "colour" in config_error(home, flags={"colour": "red"})


def test_whole_float_is_accepted(home):
    write_config(home, "delay_ms = 960.0\n")
    assert load(home).delay_ms == 960


@pytest.mark.parametrize("value", [0, 79, 2401, 100000, -480])
def test_delay_out_of_range(home, value):
    message = config_error(home, f"delay_ms = {value}\n")
    assert "delay_ms" in message and str(home / "config.toml") in message and "80" in message
    write_config(home, "")
    assert "$NOTETAKER_DELAY_MS" in config_error(home, NOTETAKER_DELAY_MS=str(value))
    assert "delay_ms" in config_error(home, flags={"delay_ms": value})


@pytest.mark.parametrize("value", [80, 2400])
def test_delay_range_is_inclusive(home, value):
    assert load(home, {"delay_ms": value}).delay_ms == value


def test_bad_file_value_is_reported_even_when_env_overrides_it(home):
    # A broken file is broken: a good env value does not hide it.
    write_config(home, 'delay_ms = "soon"\n')
    with pytest.raises(ConfigError):
        load(home, NOTETAKER_DELAY_MS="480")


def test_memory_budget_gb_is_a_positive_number(home):
    assert load(home, NOTETAKER_MEMORY_BUDGET_GB="6.5").memory_budget_gb == 6.5
    (home / "config.toml").write_text("memory_budget_gb = 12\n")
    assert load(home).memory_budget_gb == 12.0
    for bad in ("lots", "0", "-3"):
        with pytest.raises(ConfigError, match="(?i)memory_budget_gb"):
            load(home, NOTETAKER_MEMORY_BUDGET_GB=bad)
