"""The only list of rewrite backends. Each is a module ending in a `SPEC` (a BackendSpec,
rewrite/backend.py), imported only when asked for (mlx-lm pulls in seconds of imports).
`none` is no backend at all. Adding a backend is its module plus one line in BACKENDS."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from importlib import import_module
from pathlib import Path
from typing import Any

from rewrite.backend import BackendOptions, BackendSpec, RewriteBackend
from rewrite.base import RewriteError

NONE = "none"
BACKENDS: dict[str, str] = {  # name -> "module:SPEC", in the order users see them
    "mlx": "rewrite.mlx_llm:SPEC",
    "voxtral": "rewrite.voxtral_text:SPEC",
    "openai": "rewrite.openai_compat:SPEC",
}


def backend_names() -> list[str]:
    """Every name a user may give, `none` first."""
    return [NONE, *BACKENDS]


def backend_name(name: str | None) -> str:
    """A backend name as given (None: "none"), lower-cased; one-line RewriteError if unknown."""
    name = (name or NONE).lower()
    if name not in backend_names():
        raise RewriteError(f"unknown rewrite backend {name!r}; available: {', '.join(backend_names())}")
    return name


def backend_spec(name: str) -> BackendSpec:
    """The spec of backend `name` (its module is imported now); RewriteError if unknown or `none`."""
    name = backend_name(name)
    if name == NONE:
        raise RewriteError("the `none` rewrite backend has no spec: it is no backend at all")
    module, attr = BACKENDS[name].split(":")
    return getattr(import_module(module), attr)


def build_backend(name: str, options: BackendOptions) -> RewriteBackend:
    """Backend `name` built from `options`, after checking what its spec needs; a spec that
    names a fallback gets it as `options.fallback`, built from the same options."""
    spec = backend_spec(name)
    for need, what in spec.needs.items():
        if not getattr(options, need):
            raise RewriteError(f"the {spec.name} backend needs {what}")
    if spec.fallback is not None and options.fallback is None:
        fallback_name = spec.fallback
        options = replace(options, fallback=lambda: build_backend(fallback_name, options))
    return spec.build(options)


def load_backend(name: str | None, model: str | None = None, *, cache_dir: Path | None = None,
                 allow_download: bool = True, openai_base_url: str | None = None,
                 voxtral_engine: Any = None, voxtral_model: str | None = None, probe_path: Path | None = None,
                 report: Callable[[str], None] = lambda line: None,
                 context_tokens: int | None = None) -> RewriteBackend | None:
    """The backend `name` with `model` (None: its default); None for `none`. `voxtral` shares
    a loaded Voxtral engine (or loads `voxtral_model`), runs only after its capability probe
    passed (score kept in `probe_path`) and otherwise falls back to `mlx`, saying so through
    `report`. `context_tokens`: the context an mlx model is run with (None: its window, capped)."""
    name = backend_name(name)
    if name == NONE:
        return None
    return build_backend(name, BackendOptions(
        model=model, cache_dir=cache_dir, allow_download=allow_download, context_tokens=context_tokens,
        openai_base_url=openai_base_url, voxtral_engine=voxtral_engine, voxtral_model=voxtral_model,
        probe_path=probe_path, report=report))
