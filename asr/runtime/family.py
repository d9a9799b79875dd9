"""What a model family tells the rest of notetaker about itself: its `FamilySpec`.

Each family keeps one spec next to its code (`asr/<family>/spec.py`) and `asr.registry`
lists them. Everything the app knows about a family — the names users type, the default
model, what a folder of its files looks like, its memory formula, its catalogue entries, how
its engine is imported — comes from here, so a new family is one folder and one registry
line. A spec module stays cheap to import (no MLX): the CLI's `--help` reads specs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from asr.base import Capabilities
from asr.runtime.footprint import WeightSummary


@dataclass(frozen=True)
class CatalogueModel:
    """A model notetaker recommends, with what the budget needs before it is downloaded: a
    summary of the weights as published and the config numbers its memory formula reads."""

    name: str  # what users type: `--model NAME`
    kind: str  # "asr" or "rewrite"
    family: str  # a registered family, or "llm"
    engine: str  # the engine (asr) or rewrite backend that runs it
    repo: str | None  # hub repo; None: bundled with the package
    languages: str  # for people: "en", "13 languages"
    rank: int  # higher is better, within a kind
    cpu_realtime: bool
    weights: WeightSummary
    shape: dict[str, int]  # the config numbers of the family's `working` formula
    float_dtype: str  # the float type the weights are stored in
    extra_bytes: int = 0  # tokenizer and other files of the download
    allow_patterns: tuple[str, ...] | None = None  # what a download fetches (None: the repo)
    note: str = ""
    aliases: tuple[str, ...] = field(default=())

    @property
    def download_bytes(self) -> int:
        return self.weights.stored_bytes + self.extra_bytes


def weights_summary(stored: int, floats: int, packed: int = 0, packed_elements: int = 0,
                    qparams: int = 0) -> WeightSummary:
    """A WeightSummary written as catalogue entries spell it."""
    return WeightSummary(stored, floats, packed, packed_elements, qparams)


# (KV bytes, activation bytes) of a model of the family, from its config shape and the bytes
# per float it computes in.
Working = Callable[[Mapping[str, int], int], "tuple[int, int]"]


@dataclass(frozen=True)
class FamilySpec:
    name: str  # "whisper": the engine name users pass as --engine
    title: str  # "Whisper": for messages
    engine: str  # "module:Class", imported only when an engine is loaded
    default_model: str
    names: Mapping[str, str]  # short names users type -> hub repo ids
    capabilities: Capabilities  # what the family's engines can do (languages: the family's widest set)
    layouts: tuple[str, ...]  # the checkpoint layouts its loader reads
    working: Working  # memory formula beyond the weights
    shape: Callable[[Path], dict[str, int]]  # the config numbers `working` reads, from a folder
    claims_files: Callable[[Path], bool]  # a folder whose files alone say it is this family
    claims_config: Callable[[Path, dict[str, Any]], bool]  # ...or whose config.json says so
    catalogue: tuple[CatalogueModel, ...] = ()
    gpu_float_item: int | None = None  # bytes per float it casts to on a GPU (None: as stored)
    # (weights, shape, stored float dtype) of folders not in safetensors (None: the default)
    read_folder: Callable[[Path], "tuple[WeightSummary, dict[str, int], str] | None"] | None = None
    # "module:function" (model, cache_dir, allow_download) -> the model's folder, found or
    # downloaded; imported only when asked (None: the engine finds its own when it loads)
    resolver: str | None = None
    # (model, language, delay_ms) checked the way the engine will check them, before anything
    # loads or downloads: a one-line ASRError (the languages are checked from `capabilities`)
    check_options: Callable[[str, "str | None", "int | None"], None] | None = None
    # "module:function" () -> the folder of the model that ships inside a Python package
    # (the catalogue entry with no repo), or None when that package is not installed
    bundled: str | None = None
