"""Rewrite backends by name, each imported only when asked for (mlx-lm pulls in seconds of
imports). `none` is no backend at all."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from rewrite.base import BACKENDS, RewriteBackend, RewriteError


def backend_name(name: str | None) -> str:
    """A backend name as given (None: "none"), lower-cased; one-line RewriteError if unknown."""
    name = (name or "none").lower()
    if name not in BACKENDS:
        raise RewriteError(f"unknown rewrite backend {name!r}; available: {', '.join(BACKENDS)}")
    return name


def load_backend(name: str | None, model: str | None = None, *, cache_dir: Path | None = None,
                 allow_download: bool = True, openai_base_url: str | None = None,
                 voxtral_engine: Any = None, voxtral_model: str | None = None, probe_path: Path | None = None,
                 report: Callable[[str], None] = lambda line: None,
                 context_tokens: int | None = None) -> RewriteBackend | None:
    """The backend `name` with `model` (None: its default). `voxtral` shares a loaded Voxtral
    engine (or loads `voxtral_model`), runs only after its capability probe passed (score
    kept in `probe_path`) and otherwise falls back to `mlx`, saying so through `report`.
    `context_tokens`: the context an mlx model is run with (None: its window, capped)."""
    name = backend_name(name)
    if name == "none":
        return None
    if name == "mlx":
        from rewrite.mlx_llm import MlxBackend

        return MlxBackend(model, cache_dir=cache_dir, allow_download=allow_download, context_tokens=context_tokens)
    if name == "openai":
        if not openai_base_url:
            raise RewriteError("the openai backend needs a server: set openai_base_url in the config "
                               "(e.g. http://127.0.0.1:8080) or NOTETAKER_OPENAI_BASE_URL")
        from rewrite.openai_compat import OpenAIBackend

        return OpenAIBackend(openai_base_url, model)
    from rewrite.probe import ProbeStore, choose_voxtral_or_fallback

    if voxtral_engine is None:
        from asr.base import ASRError
        from asr.voxtral.engine import VoxtralEngine

        try:
            voxtral_engine = VoxtralEngine(voxtral_model, cache_dir=cache_dir, allow_download=allow_download)
        except ASRError as e:
            raise RewriteError(f"the voxtral backend needs the Voxtral model: {e}") from None
    if probe_path is None:
        raise RewriteError("the voxtral backend needs a place to keep its probe score")

    def fallback() -> RewriteBackend:
        from rewrite.mlx_llm import MlxBackend

        return MlxBackend(model, cache_dir=cache_dir, allow_download=allow_download, context_tokens=context_tokens)

    return choose_voxtral_or_fallback(voxtral_engine, ProbeStore(probe_path), fallback, report)
