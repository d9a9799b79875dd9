"""Model folders: a local path as is, or a Hugging Face hub repo from the cache or downloaded.

The cache is tried first so that a model downloaded once keeps working offline; every
failure is a ModelNotFoundError with one line, never a traceback. A download that stopped
half-way (`.incomplete` blobs, missing shards) or a weight file that is cut off is never
used: the error (an IncompleteDownload naming the repo) says so, and that downloading the repo
again resumes it; what the user types for that is the app's to add.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from asr.base import ModelNotFoundError

class IncompleteDownload(ModelNotFoundError):
    """A hub model in the cache that is only partly downloaded or damaged: downloading `repo`
    again (huggingface_hub resumes what is there) makes it whole. `damaged`: a file of it is
    broken, not just missing."""

    def __init__(self, message: str, repo: str, damaged: bool = False):
        super().__init__(message)
        self.repo = repo
        self.damaged = damaged


# Files that mean a snapshot holds model weights, not just a tokenizer fetched on its own.
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".npz")
# Every layout the engines load has one of these (CTranslate2, Mistral's original, the rest).
CONFIG_FILES = ("config.json", "params.json", "model.bin")


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
    if patterns is not None:  # single files (a tokenizer): huggingface_hub's own bookkeeping
        cached = _cached_files(spec, cache_dir, patterns)
        if cached is not None:
            return cached
        if not allow_download:
            raise ModelNotFoundError(f"model {spec} is not downloaded and downloads are turned off")
        return _download(spec, cache_dir, patterns)
    found = cached_repo(spec, cache_dir)
    if found.state == "complete":
        return found.folder
    if found.state == "corrupt":
        raise IncompleteDownload(f"model {spec} is damaged ({found.problem}); downloading it again replaces it",
                                 spec, damaged=True)
    if not allow_download:
        if found.state == "partial":
            raise IncompleteDownload(f"model {spec} is only partly downloaded ({found.problem}) and downloads "
                                     "are turned off; downloading it again resumes it", spec)
        raise ModelNotFoundError(f"model {spec} is not downloaded and downloads are turned off")
    try:
        folder = _download(spec, cache_dir, None)
    except ModelNotFoundError:
        if found.state == "partial":
            raise IncompleteDownload(f"model {spec} is only partly downloaded ({found.problem}) and the hub "
                                     "cannot be reached; downloading it again resumes it", spec) from None
        raise
    # snapshot_download hands back whatever the cache holds when the hub stops answering.
    problem = check_folder(folder) or _unfinished_problem(repo_cache_dir(spec, cache_dir))
    if problem is not None:
        raise IncompleteDownload(f"model {spec} is only partly downloaded ({problem[1]}); downloading it again "
                                 "resumes it", spec)
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


@dataclass(frozen=True)
class CachedRepo:
    """What the hub cache holds of one repo."""

    folder: Path | None  # the snapshot its main ref points to (None: nothing yet)
    state: str  # "complete", "partial" (a download to finish), "corrupt", "missing"
    problem: str | None = None  # one line, for the states between


def repo_cache_dir(repo: str, cache_dir: Path | None) -> Path:
    """`<cache>/models--org--name`, where huggingface_hub keeps one repo's blobs and snapshots."""
    from huggingface_hub import constants

    base = Path(cache_dir if cache_dir is not None else constants.HF_HUB_CACHE).expanduser()
    return base / ("models--" + repo.replace("/", "--"))


def unfinished_blobs(repo_dir: Path) -> list[Path]:
    """Blobs a download left half-written: `<etag>.incomplete` (resumed by the next call to
    huggingface_hub < 1.0) or `<etag>.<id>.incomplete` (later versions start the file again),
    without the finished `<etag>` beside them."""
    blobs = repo_dir / "blobs"
    if not blobs.is_dir():
        return []
    return sorted(p for p in blobs.glob("*.incomplete") if not (blobs / p.name.split(".")[0]).exists())


def cached_repo(repo: str, cache_dir: Path | None, patterns: Sequence[str] | None = None) -> CachedRepo:
    """The cached snapshot of a hub repo and whether it is whole. With `patterns` (what a
    pull fetches), huggingface_hub's own listing of the repo must be complete too; without,
    the folder is judged by its own files (config, weights, shards, safetensors lengths)."""
    from huggingface_hub import errors, snapshot_download
    from huggingface_hub.utils import validate_repo_id

    incomplete = getattr(errors, "IncompleteSnapshotError", None)  # huggingface_hub >= 1.x
    try:
        validate_repo_id(repo)
    except errors.HFValidationError:
        raise ModelNotFoundError(f"{repo} is neither a model folder nor a hub repo id") from None
    root = repo_cache_dir(repo, cache_dir)
    if not root.is_dir():
        return CachedRepo(None, "missing")
    listed_missing = None
    try:
        folder: Path | None = Path(snapshot_download(repo, cache_dir=cache_dir, local_files_only=True,
                                                     allow_patterns=list(patterns) if patterns else None))
    except (errors.LocalEntryNotFoundError, OSError) as e:
        # A listing that names files the snapshot lacks: the snapshot is still there to judge.
        path = getattr(e, "snapshot_path", None) if incomplete and isinstance(e, incomplete) else None
        folder = Path(path) if path else None
        if folder is not None and patterns is not None:
            listed_missing = "files it lists are not downloaded yet"
    unfinished = _unfinished_problem(root)
    if folder is None or not folder.is_dir():
        if unfinished:
            return CachedRepo(None, "partial", unfinished[1])
        return CachedRepo(None, "missing")
    problem = check_folder(folder)
    if problem is not None and problem[0] == "damaged":
        return CachedRepo(folder, "corrupt", problem[1])
    for found in (unfinished, problem):
        if found is not None:
            return CachedRepo(folder, "partial", found[1])
    if listed_missing:
        return CachedRepo(folder, "partial", listed_missing)
    return CachedRepo(folder, "complete")


def check_folder(folder: Path) -> tuple[str, str] | None:
    """None for a whole model folder, else ("missing", why) when files are absent (a download
    that has not finished, or not a model folder) or ("damaged", why) when a weight file is cut
    off or broken. Reads headers and file sizes only."""
    from asr.runtime.footprint import CorruptCheckpoint, safetensors_problem, weight_files

    try:
        entries = list(folder.iterdir())
    except OSError as e:
        return "missing", f"cannot read {folder}: {e.strerror}"
    for p in sorted(entries):
        if p.is_symlink() and not p.exists():  # a snapshot entry whose blob is gone
            return "missing", f"{p.name} is missing"
    if not any((folder / name).is_file() for name in CONFIG_FILES):
        return "missing", "no config.json, params.json or model.bin"
    try:
        files = weight_files(folder)
    except CorruptCheckpoint as e:
        return "damaged", str(e)
    except ModelNotFoundError as e:  # an index naming a shard that is not there (yet)
        return "missing", str(e).replace(f"{folder} lacks the shard", "missing the shard")
    if not files and not has_weights(folder):
        return "missing", "no weight files"
    for path in files:
        why = safetensors_problem(path)
        if why is not None:
            return "damaged", why.replace(str(path), path.name)
    return None


def _unfinished_problem(repo_dir: Path) -> tuple[str, str] | None:
    blobs = unfinished_blobs(repo_dir)
    if not blobs:
        return None
    done = sum(p.stat().st_size for p in blobs if p.exists())
    files = "a file" if len(blobs) == 1 else f"{len(blobs)} files"
    return "missing", f"{files} stopped half-way, {done / 2**20:.0f} MB in"


def _cached_files(repo: str, cache_dir: Path | None, patterns: list[str]) -> Path | None:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo, cache_dir=cache_dir, local_files_only=True, allow_patterns=patterns))
    except HFValidationError:
        raise ModelNotFoundError(f"{repo} is neither a model folder nor a hub repo id") from None
    except (LocalEntryNotFoundError, OSError):
        return None


def has_weights(folder: Path) -> bool:
    """Whether a folder holds weight files (not just a tokenizer fetched on its own)."""
    try:
        return any(p.suffix in _WEIGHT_SUFFIXES for p in folder.iterdir())
    except OSError:
        return False


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
