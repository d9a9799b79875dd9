"""The user's custom vocabulary (names and terms recognition should get right), kept in
config.toml as `vocabulary = [...]`: listed, added to and removed from here by
`notetaker vocabulary` and by "add to vocabulary" in the TUI's replace dialog.

Each function takes the Settings (its config file) or a config file's path, re-reads the
file (not the settings, which may hold terms from the environment or a flag) and writes it
back atomically with every other line as it was. Bad input: ConfigError, one line.
"""

from __future__ import annotations

from pathlib import Path

from notetaker.config import ConfigError, Settings, clean_term, read_config_file, set_config_value

KEY = "vocabulary"


def _path(target: Settings | Path | str) -> Path:
    return target.config_path if isinstance(target, Settings) else Path(target)


def configured_terms(target: Settings | Path | str) -> tuple[str, ...]:
    """The terms in the config file, in the order they were added."""
    return read_config_file(_path(target)).get(KEY) or ()


def add_term(target: Settings | Path | str, term: str) -> tuple[str, ...]:
    """Add a term (kept as written; nothing changes if it is there in any case); the new list."""
    text = clean_term(term)
    terms = configured_terms(target)
    if text.casefold() in {t.casefold() for t in terms}:
        return terms
    terms = terms + (text,)
    set_config_value(_path(target), KEY, terms)
    return terms


def remove_term(target: Settings | Path | str, term: str) -> tuple[str, ...]:
    """Remove a term (any case); the new list. ConfigError when it is not in the list."""
    key = " ".join(term.split()).casefold()
    terms = configured_terms(target)
    kept = tuple(t for t in terms if t.casefold() != key)
    if kept == terms:
        raise ConfigError(f"{term.strip()!r} is not in the vocabulary (see `notetaker vocabulary list`)")
    set_config_value(_path(target), KEY, kept)
    return kept
