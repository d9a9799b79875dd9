"""The model families, by name: the one place that lists them. Everything else asks here
(names, default model, memory formula, catalogue entries, which family a folder holds) and
never `if family == ...`. Engines are imported only when one is loaded (each pulls in its
model code); the specs are cheap.

Adding a family: a folder `asr/<family>/` with a `spec.py` whose `SPEC` is a FamilySpec, and
its module in FAMILY_SPECS below (or `register(spec)` at run time, as the tests do)."""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Any, Callable

from asr.base import ASRError, Engine
from asr.runtime.family import CatalogueModel, FamilySpec

FAMILY_SPECS = ("asr.voxtral.spec", "asr.qwen3.spec", "asr.whisper.spec")
DEFAULT_ENGINE = "whisper"

_FAMILIES: dict[str, FamilySpec] = {}


def register(spec: FamilySpec) -> None:
    """Make a family known (replacing one of the same name)."""
    _FAMILIES[spec.name] = spec


def unregister(name: str) -> None:
    _FAMILIES.pop(name, None)


for _module in FAMILY_SPECS:
    register(import_module(_module).SPEC)


def families() -> list[FamilySpec]:
    """Every family, in registry order (the order folders are matched in)."""
    return list(_FAMILIES.values())


def family(name: str) -> FamilySpec:
    """The family of an engine name; a one-line ASRError for an unknown one."""
    if name not in _FAMILIES:
        raise ASRError(f"unknown engine {name!r}; available: {', '.join(engine_names())}")
    return _FAMILIES[name]


def is_family(name: str) -> bool:
    return name in _FAMILIES


def engine_names() -> list[str]:
    return sorted(_FAMILIES)


def default_model(name: str | None) -> str:
    return family(name or DEFAULT_ENGINE).default_model


def catalogue() -> tuple[CatalogueModel, ...]:
    """Every family's recommended models."""
    return tuple(m for spec in _FAMILIES.values() for m in spec.catalogue)


def family_of_folder(folder: Path, config: Callable[[], dict[str, Any]]) -> FamilySpec | None:
    """The family whose files `folder` holds: first by files alone (a CTranslate2 model.bin,
    Mistral's params.json), then by `config()` (its config.json, read once and only then).
    None when no family claims it; a family's one-line error when it looks like one but is not."""
    for spec in _FAMILIES.values():
        if spec.claims_files(folder):
            return spec
    cfg = config()
    for spec in _FAMILIES.values():
        if spec.claims_config(folder, cfg):
            return spec
    return None


def check_options(name: str, model: str, language: str | None, delay_ms: int | None) -> None:
    """The model, language and delay checked as the family's engine will check them, before
    anything loads or downloads (a one-line ASRError)."""
    spec = family(name)
    languages = spec.capabilities.languages
    if language and languages and language not in languages:
        listed = f"; it knows {', '.join(languages)}" if len(languages) <= 30 else ""
        raise ASRError(f"unknown language code {language!r} for {name}{listed}")
    if spec.check_options is not None:
        spec.check_options(model, language, delay_ms)


def resolve_model(name: str, model: str | None, cache_dir: Path | None = None,
                  allow_download: bool = True) -> Path | None:
    """The model's folder, downloaded now if it has to be (None: the family's engine finds
    its own when it loads). Imports the family's resolver module only now."""
    spec = family(name)
    return None if spec.resolver is None else _imported(spec.resolver)(model, cache_dir, allow_download)


def bundled_folder(name: str) -> Path | None:
    """The folder of the model family `name` ships inside a Python package, if installed."""
    spec = family(name)
    return None if spec.bundled is None else _imported(spec.bundled)()


def load_engine(name: str | None, model: str | None = None, *, cache_dir: Path | None = None,
                allow_download: bool = True, **options) -> Engine:
    """Load an engine by name; unknown names and models raise a one-line ASRError."""
    engine_cls = _imported(family(name or DEFAULT_ENGINE).engine)
    return engine_cls(model, cache_dir=cache_dir, allow_download=allow_download, **options)


def _imported(ref: str) -> Any:
    """A spec's "module:name" reference, its module imported only now."""
    module, name = ref.split(":")
    return getattr(import_module(module), name)
