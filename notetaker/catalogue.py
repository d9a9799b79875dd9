"""The models notetaker recommends: each speech family's entries (its spec, through
asr.registry) and the rewrite LLMs for mlx-lm.

Each entry carries what the budget needs before anything is downloaded: a summary of the
weights as published (from the real checkpoints' tensor dtypes and shapes; the test suite
writes those shapes as safetensors headers and checks these numbers against what the
budget reads from them, see tests/budget/checkpoints.py for where each came from) and the
config numbers that bound its KV caches and activations. Once a model is downloaded the
budget reads its own headers instead.

`rank` orders entries of one kind from best to worst; `cpu_realtime` says whether it keeps
up with live speech on a laptop CPU (measured on 2 x86-64 cores: Whisper tiny.en at a
real-time factor of 0.02, Qwen3-ASR 0.6B at 0.89, Voxtral's 4B decoder at 2 s a token).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from asr import registry
from asr.runtime.family import CatalogueModel
from asr.runtime.family import weights_summary as _w

MB = 10**6


def _llama(layers: int, heads: int, kv_heads: int, head_dim: int, hidden: int, ffn: int) -> dict[str, int]:
    return {"layers": layers, "heads": heads, "kv_heads": kv_heads, "head_dim": head_dim, "hidden": hidden,
            "ffn": ffn, "vocab": 128256, "window": 131072}


# Filled from the published shapes: see tests/budget/checkpoints.py (sources) and
# tests/budget/test_catalogue.py (the check that these equal what the headers give).
REWRITE_MODELS: tuple[CatalogueModel, ...] = (
    CatalogueModel("llama-3.1-8b", "rewrite", "llm", "mlx", "mlx-community/Meta-Llama-3.1-8B-Instruct-4bit",
                   "8 languages", 30, True, _w(4517404672, 266240, 4014997504, 8029995008, 250937344),
                   _llama(32, 32, 8, 128, 4096, 14336), "F16", 17 * MB),
    CatalogueModel("llama-3.2-3b", "rewrite", "llm", "mlx", "mlx-community/Llama-3.2-3B-Instruct-4bit",
                   "8 languages", 20, True, _w(1807423488, 175104, 1606287360, 3212574720, 100392960),
                   _llama(28, 24, 8, 128, 3072, 8192), "F16", 17 * MB),
    CatalogueModel("llama-3.2-1b", "rewrite", "llm", "mlx", "mlx-community/Llama-3.2-1B-Instruct-4bit",
                   "8 languages", 10, True, _w(695242752, 67584, 617873408, 1235746816, 38617088),
                   _llama(16, 32, 8, 64, 2048, 8192), "F16", 17 * MB),
)


class Catalogue(Sequence):
    """Every recommended model: the registered speech families' entries, then the rewrite
    LLMs. A live view, so a family registered later is in it too."""

    def _all(self) -> tuple[CatalogueModel, ...]:
        return (*registry.catalogue(), *REWRITE_MODELS)

    def __iter__(self) -> Iterator[CatalogueModel]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def __getitem__(self, i):
        return self._all()[i]


CATALOGUE: Sequence[CatalogueModel] = Catalogue()


def by_name(name: str) -> CatalogueModel | None:
    key = name.lower()
    for m in CATALOGUE:
        if key == m.name or key in m.aliases or (m.repo and key == m.repo.lower()):
            return m
    return None


def of_kind(kind: str) -> list[CatalogueModel]:
    """Entries of one kind, best first."""
    return sorted((m for m in CATALOGUE if m.kind == kind), key=lambda m: -m.rank)
