"""Engines by name, imported only when asked for (each pulls in its model code)."""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

from asr.base import ASRError, Engine

ENGINES: dict[str, str] = {
    "whisper": "asr.whisper.engine:WhisperEngine",
    "voxtral": "asr.voxtral.engine:VoxtralEngine",
    "qwen3": "asr.qwen3.engine:Qwen3Engine",
}
DEFAULT_ENGINE = "whisper"


def engine_names() -> list[str]:
    return sorted(ENGINES)


def load_engine(name: str | None, model: str | None = None, *, cache_dir: Path | None = None,
                allow_download: bool = True, **options) -> Engine:
    """Load an engine by name; unknown names and models raise a one-line ASRError."""
    name = name or DEFAULT_ENGINE
    if name not in ENGINES:
        raise ASRError(f"unknown engine {name!r}; available: {', '.join(engine_names())}")
    module, cls = ENGINES[name].split(":")
    engine_cls = getattr(import_module(module), cls)
    return engine_cls(model, cache_dir=cache_dir, allow_download=allow_download, **options)
