"""Settings: defaults < `config.toml` in the data home < environment < command-line flags.

The data home defaults to the platform's user-data folder and moves with
`NOTETAKER_HOME` or `--home`; everything the app writes lives under it.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tomllib
import unicodedata
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Mapping

APP = "notetaker"
CONFIG_FILE = "config.toml"
ENV_PREFIX = "NOTETAKER_"


class ConfigError(Exception):
    """A bad setting or config file: one line for the user."""


@dataclass(frozen=True)
class Settings:
    home: Path
    engine: str | None = None  # None: the memory plan's choice (notetaker.budget)
    model: str | None = None  # None: the plan's, or the engine's default (Whisper: bundled tiny.en)
    language: str | None = None
    delay_ms: int = 480
    context: str = ""
    allow_download: bool = True
    rewrite_backend: str | None = None  # None: the memory plan's choice
    rewrite_model: str | None = None
    openai_base_url: str | None = None
    openai_detect: str = "11434,1234,8080"  # loopback ports where a running server is looked for ("off": none)
    input_device: str | None = None  # microphone: a name, part of one, or an index (None: default)
    system_device: str | None = None  # loopback/monitor for the other side of a call ("auto": find one)
    mix_channels: bool = False  # one mixed channel instead of separate mic and system channels
    output_device: str | None = None  # where playback is heard: a name, part of one, or an index (None: default)
    keep_audio: bool = True
    memory_budget_gb: float | None = None  # cap on what notetaker's models may take (None: the plan's)
    # Names and terms recognition should get right: `vocabulary = ["Anya", "Kubernetes"]` at the
    # top of config.toml, `notetaker vocabulary add`, $NOTETAKER_VOCABULARY="Anya, Kubernetes";
    # `--vocabulary` adds to them for one run.
    vocabulary: tuple[str, ...] = ()
    diarize: str = "auto"  # speaker labels: "auto" (where the plan says they fit), "on", "off"

    @property
    def db_path(self) -> Path:
        return self.home / "notetaker.db"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def sessions_dir(self) -> Path:
        return self.home / "sessions"

    @property
    def config_path(self) -> Path:
        return self.home / CONFIG_FILE


# config.toml sections map onto flat setting names: [rewrite] backend → rewrite_backend.
_SECTIONS = {"rewrite": "rewrite_", "openai": "openai_", "audio": ""}
_AUDIO_SETTINGS = {"input_device", "system_device", "mix_channels", "keep_audio", "output_device"}  # [audio] has no prefix: only these belong there
DELAY_RANGE_MS = (80, 2400)
DIARIZE_CHOICES = ("auto", "on", "off")
_TYPES: dict[str, type] = {f.name: f.type for f in fields(Settings)}  # annotations as strings
MAX_TERM_CHARS = 64
_BOOL_WORDS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


def default_home(env: Mapping[str, str] | None = None) -> Path:
    """The platform's per-user data folder for the app."""
    env = os.environ if env is None else env
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / APP
    if sys.platform == "win32":
        return Path(env.get("APPDATA", Path.home() / "AppData" / "Roaming")) / APP
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / APP


def resolve_home(flag: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Path:
    raw = flag or env.get(ENV_PREFIX + "HOME") or None
    return Path(raw).expanduser().resolve() if raw else default_home(env)


def clean_term(term: str) -> str:
    """A vocabulary term as stored (spaces collapsed); ConfigError (one line) if it cannot be one."""
    text = " ".join(unicodedata.normalize("NFC", term).split())
    if not text:
        raise ConfigError("a vocabulary term cannot be empty")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") for c in text):
        raise ConfigError(f"vocabulary term {ascii(text)} has control or unassigned characters")
    if len(text) > MAX_TERM_CHARS:
        raise ConfigError(f"vocabulary term {text[:20]!r}... is longer than {MAX_TERM_CHARS} characters")
    if not any(c.isalnum() for c in text):
        raise ConfigError(f"vocabulary term {text!r} has no letters or digits")
    return text


def parse_terms(value: str | list | tuple, where: str = "vocabulary") -> tuple[str, ...]:
    """Terms from a list (each item one term) or text ("Anya, Kubernetes; Q3 OKRs"), cleaned,
    each once whatever its case."""
    if isinstance(value, str):
        value = [t for t in re.split(r"[,;\n]", value) if t.strip()]
    if not isinstance(value, (list, tuple)) or not all(isinstance(t, str) for t in value):
        raise ConfigError(f"{where} must be a list of terms, not {value!r}")
    out: dict[str, str] = {}
    for term in value:
        try:
            text = clean_term(term)
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None
        out.setdefault(text.casefold(), text)
    return tuple(out.values())


def _coerce(name: str, value: Any, where: str) -> Any:
    kind = _TYPES[name]
    if value is None:
        return None
    if "tuple" in kind:
        return parse_terms(value, where)
    if "bool" in kind:
        if isinstance(value, bool):
            return value
        word = str(value).strip().lower()
        if word in _BOOL_WORDS:
            return _BOOL_WORDS[word]
        raise ConfigError(f"{where} must be true or false, not {value!r}")
    if "float" in kind:
        if isinstance(value, bool):
            raise ConfigError(f"{where} must be a number, not {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where} must be a number, not {value!r}") from None
        if not 0 < number < 1e6:
            raise ConfigError(f"{where} must be a positive number of GB, not {value!r}")
        return number
    if "int" in kind:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ConfigError(f"{where} must be a whole number, not {value!r}")
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where} must be a whole number, not {value!r}") from None
        low, high = DELAY_RANGE_MS
        if name == "delay_ms" and not low <= number <= high:
            raise ConfigError(f"{where} must be between {low} and {high}, not {number}")
        return number
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be text, not {value!r}")
    return value


def read_config_file(path: Path) -> dict[str, Any]:
    """Flat settings from a config.toml; ConfigError for bad TOML or unknown keys."""
    try:
        if not path.exists():
            return {}
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read {path}: {e.strerror if isinstance(e, OSError) else 'not UTF-8 text'}") from None
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            if key not in _SECTIONS:
                raise ConfigError(f"{path}: unknown section [{key}]")
            for sub, v in value.items():
                if key == "audio" and sub not in _AUDIO_SETTINGS:
                    raise ConfigError(f"{path} [{key}] {sub}: unknown setting")
                flat[_SECTIONS[key] + sub] = (v, f"{path} [{key}] {sub}")
        else:
            flat[key] = (value, f"{path} {key}")
    out = {}
    for name, (value, where) in flat.items():
        if name == "home" or name not in _TYPES:
            raise ConfigError(f"{where}: unknown setting")
        out[name] = _coerce(name, value, where)  # `where` names the key as written: "... [rewrite] model"
    return out


def read_env(env: Mapping[str, str]) -> dict[str, Any]:
    out = {}
    for name in _TYPES:
        raw = env.get(ENV_PREFIX + name.upper())
        if name != "home" and raw is not None and raw != "":
            out[name] = _coerce(name, raw, f"${ENV_PREFIX}{name.upper()}")
    return out


def load_settings(flags: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Settings from every layer; `flags` holds command-line values (None = not given)."""
    env = os.environ if env is None else env
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    home = resolve_home(flags.pop("home", None), env)
    if home.exists() and not home.is_dir():
        raise ConfigError(f"data home {home} exists and is not a folder")
    settings = Settings(home=home)
    for layer in (read_config_file(home / CONFIG_FILE), read_env(env)):
        settings = replace(settings, **layer)
    unknown = set(flags) - set(_TYPES)
    if unknown:
        raise ConfigError(f"unknown setting {sorted(unknown)[0]!r}")
    if "vocabulary" in flags:  # a run's terms join the configured ones
        flags["vocabulary"] = settings.vocabulary + _coerce("vocabulary", flags["vocabulary"], "--vocabulary")
    settings = replace(settings, **{k: _coerce(k, v, f"command line {k}") for k, v in flags.items()})
    if not 80 <= settings.delay_ms <= 2400:
        raise ConfigError(f"delay_ms must be between 80 and 2400, not {settings.delay_ms}")
    if settings.diarize not in DIARIZE_CHOICES:
        raise ConfigError(f"diarize must be one of {', '.join(DIARIZE_CHOICES)}, not {settings.diarize!r}")
    return settings


def ensure_home(settings: Settings) -> Path:
    """Create the data home (private to the user) if it does not exist yet."""
    try:
        settings.home.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create data home {settings.home}: {e.strerror}") from None
    return settings.home


def set_config_value(path: Path, key: str, value: list[str] | tuple[str, ...]) -> None:
    """Set one top-level key of config.toml to a list of strings, keeping every other line
    (comments included) as it is; written atomically, private to the user. ConfigError when
    the file is not valid TOML or the key cannot be rewritten safely (then nothing changes)."""
    try:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        before = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML ({e}); fix it before changing {key}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read {path}: {e.strerror if isinstance(e, OSError) else 'not UTF-8 text'}") from None
    line = f"{key} = [{', '.join(json.dumps(v, ensure_ascii=False) for v in value)}]\n"
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    first, last = _top_level_key_lines(lines, key)
    if first is None:  # top-level keys must come before the first [section]
        first = next((i for i, s in enumerate(lines) if re.match(r"\s*\[", s)), len(lines))
        while first > 0 and not lines[first - 1].strip():  # above the blank lines before it
            first -= 1
        last = first
    new_text = "".join(lines[:first] + [line] + lines[last:])
    try:
        after = tomllib.loads(new_text)
    except tomllib.TOMLDecodeError:
        after = None
    if after != {**before, key: list(value)}:
        raise ConfigError(f"cannot update {key} in {path} safely; edit it by hand")
    _write_private(path, new_text)


def _top_level_key_lines(lines: list[str], key: str) -> tuple[int | None, int]:
    """Where `key = ...` stands before the first section: its first line and the line after
    its value (an array may run over several lines); (None, 0) when it is not there."""
    for i, s in enumerate(lines):
        if re.match(r"\s*\[", s):
            break
        if re.match(rf"\s*{re.escape(key)}\s*=", s):
            for j in range(i + 1, len(lines) + 1):
                try:
                    if set(tomllib.loads("".join(lines[i:j]))) == {key}:
                        return i, j
                except tomllib.TOMLDecodeError:
                    continue
    return None, 0


def _write_private(path: Path, text: str) -> None:
    """Write through a temporary file in the same folder, then rename: a crash leaves the old
    file or the new one, never half of one."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"cannot write {path}: {e.strerror or e}") from None
