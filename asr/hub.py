"""Model folders: a local path as is, or a Hugging Face hub repo from the cache or downloaded.

The cache is tried first so that a model downloaded once keeps working offline; every
failure is a ModelNotFoundError with one line, never a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from asr.base import ModelNotFoundError

# Files that mean a snapshot holds model weights, not just a tokenizer fetched on its own.
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".npz")


def resolve_model(
    spec: str,
    cache_dir: Path | None = None,
    allow_download: bool = True,
    allow_patterns: Sequence[str] | None = None,
) -> Path:
    """The local folder of a model given as a folder path or a hub repo id ("org/name")."""
    path = Path(spec).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise ModelNotFoundError(f"{spec} is a file, not a model folder")
    if _looks_like_path(spec):
        raise ModelNotFoundError(f"no model folder at {spec}")
    patterns = list(allow_patterns) if allow_patterns is not None else None
    cached = _cached_snapshot(spec, cache_dir, patterns)
    if cached is not None:
        return cached
    if not allow_download:
        raise ModelNotFoundError(f"model {spec} is not downloaded and downloads are turned off")
    folder = _download(spec, cache_dir, patterns)
    if patterns is None and not _has_weights(folder):
        # snapshot_download returns a partial cached snapshot when the hub is unreachable.
        raise ModelNotFoundError(
            f"model {spec} is only partly downloaded (no weights) and the hub cannot be reached"
        )
    return folder


def resolve_named(model: str | None, default: str, names: dict[str, str], family: str,
                  cache_dir: Path | None = None, allow_download: bool = True) -> Path:
    """The folder of a model given as an existing path, a short name from `names` (case
    folded), or a hub repo id; an unknown short name lists the known ones."""
    name = model or default
    path = Path(name).expanduser()
    if path.exists():
        return path
    repo = names.get(name.lower(), name)
    if "/" not in repo:
        raise ModelNotFoundError(f"unknown {family} model {name!r}; known: {', '.join(sorted(names))}; "
                                 "or a local folder or hub repo id")
    return resolve_model(repo, cache_dir, allow_download)


def _looks_like_path(spec: str) -> bool:
    # Hub ids are "name" or "org/name"; anything else with separators is meant as a path.
    return spec.startswith((".", "~", os.sep)) or spec.count("/") > 1 or "\\" in spec


def _cached_snapshot(repo: str, cache_dir: Path | None, patterns: list[str] | None) -> Path | None:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        found = snapshot_download(
            repo, cache_dir=cache_dir, local_files_only=True, allow_patterns=patterns
        )
    except HFValidationError:
        raise ModelNotFoundError(f"{repo} is neither a model folder nor a hub repo id") from None
    except (LocalEntryNotFoundError, OSError):
        return None
    folder = Path(found)
    if patterns is None and not _has_weights(folder):
        return None  # only single files (a tokenizer) were fetched from this repo so far
    return folder


def _has_weights(folder: Path) -> bool:
    return any(p.suffix in _WEIGHT_SUFFIXES for p in folder.iterdir())


def _download(repo: str, cache_dir: Path | None, patterns: list[str] | None) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        return Path(snapshot_download(repo, cache_dir=cache_dir, allow_patterns=patterns))
    except RepositoryNotFoundError:
        raise ModelNotFoundError(
            f"model {repo} was not found on the hub "
            "(check the name; gated or private repos need `hf auth login`)"
        ) from None
    except RevisionNotFoundError:
        raise ModelNotFoundError(f"model {repo} has no main revision on the hub") from None
    except LocalEntryNotFoundError:
        # snapshot_download's answer to no network, offline mode or an unreachable hub.
        raise ModelNotFoundError(
            f"model {repo} is not downloaded and the hub cannot be reached; "
            "connect once to download it, or pass a local model folder"
        ) from None
    except Exception as e:  # network stacks raise many kinds; the user needs one line
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ModelNotFoundError(f"model {repo} could not be downloaded: {first}") from None
