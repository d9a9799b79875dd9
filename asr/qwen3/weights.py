"""Qwen3-ASR checkpoints in the layouts users have, mapped onto our names.

- original (Qwen/Qwen3-ASR-0.6B, -1.7B): `config.json` (`thinker_config`) + `model.safetensors`
  or shards with `model.safetensors.index.json`; keys `thinker.audio_tower.*`,
  `thinker.model.*` and (when untied) `thinker.lm_head.weight`; convs stored torch-style
  (out, in, h, w); tokenizer from `vocab.json` + `merges.txt`.
- mlx (mlx-audio's conversions, mlx-community/Qwen3-ASR-0.6B-8bit, -4bit, -bf16): the same
  keys without `thinker.`, convs as MLX's (out, h, w, in), the decoder's layers (and
  embeddings) MLX-quantized (`.scales`/`.biases`), settings under `quantization`.

Ours: `audio_tower.*` as stored, the decoder under `lm.` (mlx-lm's Qwen3 names below it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn

from asr.base import ModelNotFoundError
from asr.qwen3.config import Qwen3ASRConfig
from asr.qwen3.model import Qwen3ASR
from asr.runtime.checkpoint import (
    Read,
    build_quantized,
    dequantized as expand_quantized,
    load_safetensors,
    load_weights,
    read_json,
    read_quantization,
)

LAYOUT_ORIGINAL = "original"
LAYOUT_MLX = "mlx"


@dataclass(frozen=True)
class Checkpoint:
    config: Qwen3ASRConfig
    weights: dict[str, mx.array]
    layout: str
    folder: Path
    quantization: dict[str, Any] | None = None


def load_checkpoint(folder: str | Path, dtype: mx.Dtype | None = mx.float32) -> Checkpoint:
    """Load a Qwen3-ASR folder in either layout; float weights cast to `dtype` (None: as
    stored). One-line ModelNotFoundError / ASRError for anything missing or wrong."""
    folder, r = load_weights(folder, read, Qwen3ASR, "Qwen3-ASR", dtype)
    return Checkpoint(r.config, r.weights, r.layout, folder, r.quantization)


def read(folder: Path) -> Read:
    """The config and our-named weights of a folder in either layout (the layout from its
    keys: the original's start with `thinker.`)."""
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise ModelNotFoundError(f"{folder} has no config.json")
    settings = read_json(config_path)
    model_type = settings.get("model_type")
    if model_type not in (None, "qwen3_asr"):
        raise ModelNotFoundError(f"{folder} holds a {model_type} model, not Qwen3-ASR")
    config = Qwen3ASRConfig.from_dict(settings, str(config_path))
    raw = load_safetensors(folder)
    layout = LAYOUT_ORIGINAL if any(k.startswith("thinker.") for k in raw) else LAYOUT_MLX
    weights: dict[str, mx.array] = {}
    for key in list(raw):
        name = to_ours(key, config)
        value = raw.pop(key)
        if name is not None:
            weights[name] = _conv_to_mlx(name, value, layout)
    return Read(layout, config, weights, read_quantization(settings, weights, config_path))


def to_ours(key: str, config: Qwen3ASRConfig) -> str | None:
    """Our parameter name for a stored key (either layout); None for what we do not keep."""
    key = key.removeprefix("thinker.")
    if key.startswith("audio_tower."):
        return key
    if key.startswith("model."):
        return "lm." + key
    if key.startswith("lm_head."):
        return None if config.text.tie_word_embeddings else "lm." + key
    return key  # unknown: reported by the shape check


def _conv_to_mlx(name: str, value: mx.array, layout: str) -> mx.array:
    """Conv weights to MLX's (out, h, w, in). The mlx layout should already be, but a
    conversion that kept torch's (out, in, 3, 3) is recognised by its shape."""
    if not (name.startswith("audio_tower.conv2d") and name.endswith(".weight")) or value.ndim != 4:
        return value
    torch_style = layout == LAYOUT_ORIGINAL or (value.shape[-1] == 3 and value.shape[1] != 3)
    return value.transpose(0, 2, 3, 1) if torch_style else value


def build_model(checkpoint: Checkpoint, quantize_bits: int | None = None, group_size: int = 64) -> Qwen3ASR:
    """A `Qwen3ASR` holding the checkpoint's weights. `quantize_bits` quantizes the float
    decoder (its Linear layers and token embeddings) on load; the audio tower stays float,
    as in mlx-audio's conversions."""
    return build_quantized(Qwen3ASR(checkpoint.config), checkpoint.weights, checkpoint.quantization,
                           quantize_bits, group_size, _quantizable)


def dequantized(checkpoint: Checkpoint, dtype: mx.Dtype = mx.float32, consume: bool = False) -> Checkpoint:
    """The checkpoint with MLX-quantized layers expanded to `dtype` (CPU's fast path);
    `consume` expands in place, freeing each packed layer as it goes."""
    return expand_quantized(checkpoint, Qwen3ASR, dtype, consume)


def _quantizable(path: str, module: nn.Module, group_size: int) -> bool:
    if not path.startswith("lm.") or not isinstance(module, (nn.Linear, nn.Embedding)):
        return False
    return module.weight.shape[-1] % group_size == 0
