"""Voxtral Realtime checkpoints in the three layouts users have, mapped onto our names.

- original (mistralai/Voxtral-Mini-4B-Realtime-2602): `params.json` + `consolidated.safetensors`
  (bf16, 711 tensors) + `tekken.json`. Our module names are these keys without the
  `mm_streams_embeddings.embedding_module.` prefix; convs are stored (out, in, kernel).
- transformers: `config.json` + `model.safetensors` (or shards with an index). Keys as
  written by transformers 5 (`audio_tower.`, `language_model.model.`, `multi_modal_projector.`;
  the in-memory `model.` prefix accepted too). Its converter permuted q/k (and the q bias) of
  both stacks for rotate-half RoPE; we undo that, since our RoPE is the original interleaved one.
- mlx-audio / mlx-community: `config.json` (decoder / encoder_args) + `model.safetensors`,
  float or MLX-quantized (`.scales`/`.biases` on the quantized layers; which layers are is
  read per layer from the keys present, bits and group size from the shapes).

Every layout yields complete weights in our naming, cast to one dtype; `build_model`
quantizes on load (token embeddings included) when asked.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn

from asr.base import ASRError, ModelNotFoundError
from asr.runtime.checkpoint import (
    Read,
    build_quantized,
    dequantized as expand_quantized,
    load_safetensors,
    load_weights,
    mx_load,
    read_json,
    read_quantization,
)
from asr.voxtral.config import VoxtralConfig
from asr.voxtral.model import VoxtralRealtime

LAYOUT_ORIGINAL = "original"
LAYOUT_TRANSFORMERS = "transformers"
LAYOUT_MLX = "mlx"

ORIGINAL_PREFIX = "mm_streams_embeddings.embedding_module."


@dataclass(frozen=True)
class Checkpoint:
    """Weights in our naming plus what running the model needs from the folder.

    `quantization` ({"group_size", "bits", "mode"}) marks an MLX-quantized checkpoint: the
    layers whose `.scales` are present are quantized (others, e.g. token embeddings of older
    conversions, are float); `build_model` makes the skeleton match.
    """

    config: VoxtralConfig
    weights: dict[str, mx.array]
    layout: str
    folder: Path
    quantization: dict[str, Any] | None = None
    tokenizer_file: Path | None = None


def load_checkpoint(folder: str | Path, dtype: mx.Dtype | None = mx.float32) -> Checkpoint:
    """Load a Voxtral Realtime folder in any supported layout.

    Floating-point weights are cast to `dtype` (None keeps what is stored; float32 is what the
    CPU computes fast). ModelNotFoundError for a missing or incomplete folder, ASRError for
    corrupt or unsupported files; each message is one line.
    """
    folder, r = load_weights(folder, read, VoxtralRealtime, "Voxtral Realtime", dtype)
    tekken = folder / "tekken.json"
    return Checkpoint(r.config, r.weights, r.layout, folder, r.quantization, tekken if tekken.is_file() else None)


def read(folder: Path) -> Read:
    """The config and our-named weights of a folder in whichever layout it holds."""
    layout = detect_layout(folder)
    loaders = {LAYOUT_ORIGINAL: _load_original, LAYOUT_TRANSFORMERS: _load_transformers,
               LAYOUT_MLX: _load_mlx}  # fmt: skip
    config, weights, quantization = loaders[layout](folder)
    return Read(layout, config, weights, quantization)


def build_model(checkpoint: Checkpoint, quantize_bits: int | None = None,
                group_size: int = 64) -> VoxtralRealtime:
    """A `VoxtralRealtime` holding the checkpoint's weights.

    `quantize_bits` (4 or 8; 2, 3, 5, 6 also work) quantizes every float Linear and the token
    embeddings on load: a conversion that left the embeddings float ran about 3x slower. The
    tiny AdaRMSNorm projections stay float (they run once per delay). Layers the checkpoint
    stores quantized keep their stored precision.
    """
    return build_quantized(VoxtralRealtime(checkpoint.config), checkpoint.weights, checkpoint.quantization,
                           quantize_bits, group_size, _quantizable)


def dequantized(checkpoint: Checkpoint, dtype: mx.Dtype = mx.float32, consume: bool = False) -> Checkpoint:
    """The checkpoint with MLX-quantized layers expanded to `dtype` (CPU's fast path);
    `consume` expands in place, freeing each packed layer as it goes."""
    return expand_quantized(checkpoint, VoxtralRealtime, dtype, consume)


def detect_layout(folder: Path) -> str:
    """Which layout a folder holds, from its files; ModelNotFoundError if none fits."""
    if (folder / "params.json").is_file() and (folder / "consolidated.safetensors").is_file():
        return LAYOUT_ORIGINAL
    if not (folder / "config.json").is_file():
        if (folder / "params.json").is_file():
            raise ModelNotFoundError(f"{folder} has params.json but no consolidated.safetensors")
        raise ModelNotFoundError(
            f"{folder} holds no Voxtral Realtime model: no params.json + consolidated.safetensors "
            "(original) or config.json (transformers, mlx)"
        )
    config = read_json(folder / "config.json")
    model_type = config.get("model_type")
    if model_type not in (None, "voxtral_realtime"):
        raise ModelNotFoundError(f"{folder} holds a {model_type} model, not Voxtral Realtime")
    if "text_config" in config or "audio_config" in config:
        return LAYOUT_TRANSFORMERS
    if "decoder" in config or "encoder_args" in config:
        return LAYOUT_MLX
    raise ModelNotFoundError(
        f"{folder}/config.json describes no Voxtral Realtime model (expected text_config/"
        "audio_config or decoder/encoder_args)"
    )


# --- original (Mistral) -------------------------------------------------------------------


def read_config(folder: Path) -> VoxtralConfig:
    """The config of a folder in any layout, read without touching the weights."""
    layout = detect_layout(folder)
    if layout == LAYOUT_ORIGINAL:
        return _config(folder / "params.json", VoxtralConfig.from_params)
    if layout == LAYOUT_MLX:
        return _config(folder / "config.json", VoxtralConfig.from_mlx_audio)
    preprocessor = folder / "preprocessor_config.json"
    pre = read_json(preprocessor) if preprocessor.is_file() else None
    return _config(folder / "config.json", lambda d, source: VoxtralConfig.from_transformers(d, pre, source))


def _load_original(folder: Path):
    config = read_config(folder)
    raw = mx_load(folder / "consolidated.safetensors")
    weights = {}
    for key, value in raw.items():
        name = key.removeprefix(ORIGINAL_PREFIX)
        if name == "output.weight":  # a separate head: allowed only if it equals the embedding
            continue
        weights[name] = _conv_to_mlx(name, value)
    _check_tied(folder, raw.get("output.weight"), weights.get("tok_embeddings.weight"))
    return config, weights, None


# --- transformers --------------------------------------------------------------------------

# transformers name -> ours, after _hf_normalize; (pattern, replacement) applied in order.
_HF_RULES = [
    (r"^audio_tower\.embedder\.conv1\.", "whisper_encoder.conv_layers.0.conv."),
    (r"^audio_tower\.embedder\.conv2\.", "whisper_encoder.conv_layers.1.conv."),
    (r"^audio_tower\.norm\.", "whisper_encoder.transformer.norm."),
    (r"^audio_tower\.layers\.", "whisper_encoder.transformer.layers."),
    (r"^multi_modal_projector\.linear_1\.", "audio_language_projection.0."),
    (r"^multi_modal_projector\.linear_2\.", "audio_language_projection.2."),
    (r"^language_model\.embed_tokens\.", "tok_embeddings."),
    (r"^language_model\.norm\.", "norm."),
    (r"^language_model\.layers\.", "layers."),
    (r"\.self_attn\.([qkv])_proj\.", r".attention.w\1."),
    (r"\.self_attn\.o_proj\.", ".attention.wo."),
    (r"\.(self_attn_layer_norm|input_layernorm)\.", ".attention_norm."),
    (r"\.(final_layer_norm|post_attention_layernorm)\.", ".ffn_norm."),
    (r"\.mlp\.gate_proj\.", ".feed_forward.w1."),
    (r"\.mlp\.down_proj\.", ".feed_forward.w2."),
    (r"\.mlp\.up_proj\.", ".feed_forward.w3."),
    (r"\.ada_rms_norm\.linear1\.", ".ada_rms_norm_t_cond.0."),
    (r"\.ada_rms_norm\.linear2\.", ".ada_rms_norm_t_cond.2."),
]  # fmt: skip


def _load_transformers(folder: Path):
    config = read_config(folder)
    raw = load_safetensors(folder, "model")
    weights, head = {}, None
    for key, value in raw.items():
        name = _hf_normalize(key)
        if name == "lm_head.weight":
            head = value
            continue
        name = _apply_rules(name, _HF_RULES)
        weights[name] = _unpermute_rope(name, _conv_to_mlx(name, value), config)
    _check_tied(folder, head, weights.get("tok_embeddings.weight"))
    return config, weights, None


def hf_to_ours(key: str) -> str:
    """Our parameter name for a transformers key (the tied `lm_head.weight` kept as is)."""
    name = _hf_normalize(key)
    return name if name == "lm_head.weight" else _apply_rules(name, _HF_RULES)


def _hf_normalize(key: str) -> str:
    # On disk (transformers 5 save_pretrained, the hub repo): language_model.model.*,
    # language_model.lm_head / lm_head; in memory: model.language_model.*, model.audio_tower.*.
    key = key.removeprefix("model.")
    if key.startswith("language_model.model."):
        key = "language_model." + key[len("language_model.model."):]
    if key.startswith("language_model.lm_head."):
        key = key[len("language_model."):]
    return key


def _unpermute_rope(name: str, value: mx.array, config: VoxtralConfig) -> mx.array:
    """Undo permute_for_rope of convert_voxtral_realtime_weights_to_hf.py: it viewed each
    head's rows as (head_dim/2, 2) and transposed them to (2, head_dim/2), turning interleaved
    RoPE pairs into rotate-half halves. The inverse views (2, head_dim/2) and transposes back."""
    m = re.search(r"\.attention\.w([qk])\.(weight|bias)$", name)
    if m is None:
        return value
    args = config.encoder if name.startswith("whisper_encoder.") else config.decoder
    heads = args.n_heads if m.group(1) == "q" else args.n_kv_heads
    rows = value.shape[0]
    rest = value.shape[1:]
    return value.reshape(heads, 2, rows // heads // 2, *rest).swapaxes(1, 2).reshape(rows, *rest)


# --- mlx-audio / mlx-community -----------------------------------------------------------

# mlx-audio's module names (its Model.sanitize) -> ours.
_MLX_RULES = [
    (r"^decoder\.tok_embeddings\.", "tok_embeddings."),
    (r"^decoder\.norm\.", "norm."),
    (r"^decoder\.layers\.", "layers."),
    (r"^encoder\.conv_layers_(\d+)_conv\.conv\.", r"whisper_encoder.conv_layers.\1.conv."),
    (r"^encoder\.transformer_layers\.", "whisper_encoder.transformer.layers."),
    (r"^encoder\.transformer_norm\.", "whisper_encoder.transformer.norm."),
    (r"^encoder\.audio_language_projection_(\d+)\.", r"audio_language_projection.\1."),
    (r"\.feed_forward_w([123])\.", r".feed_forward.w\1."),
    (r"\.ada_rms_norm_t_cond\.ada_down\.", ".ada_rms_norm_t_cond.0."),
    (r"\.ada_rms_norm_t_cond\.ada_up\.", ".ada_rms_norm_t_cond.2."),
]  # fmt: skip


def _load_mlx(folder: Path):
    config_path = folder / "config.json"
    config = read_config(folder)
    raw = load_safetensors(folder, "model")
    weights = {_apply_rules(k, _MLX_RULES): v for k, v in raw.items()}
    for name in [k for k in weights if k.endswith(".weight")]:
        weights[name] = _conv_to_mlx(name, weights[name], torch_layout=None)
    quantization = read_quantization(read_json(config_path), weights, config_path)
    return config, weights, quantization


# --- shared -------------------------------------------------------------------------------


def _apply_rules(name: str, rules: list[tuple[str, str]]) -> str:
    for pattern, replacement in rules:
        name = re.sub(pattern, replacement, name)
    return name


def _conv_to_mlx(name: str, value: mx.array, torch_layout: bool | None = True) -> mx.array:
    """Conv weights to MLX's (out, kernel, in). torch_layout=None decides from the shape: the
    kernel is 3 and no input width is 3."""
    if not re.match(r"^whisper_encoder\.conv_layers\.\d+\.conv\.weight$", name) or value.ndim != 3:
        return value
    if torch_layout is None:
        torch_layout = value.shape[2] == 3 and value.shape[1] != 3
    return value.transpose(0, 2, 1) if torch_layout else value


def _check_tied(folder: Path, head: mx.array | None, embedding: mx.array | None) -> None:
    if head is None or embedding is None:
        return
    if head.shape != embedding.shape or not mx.array_equal(head, embedding).item():
        raise ASRError(f"{folder} has an output projection separate from the token embedding")


def _config(path: Path, parse: Callable[[dict, str], VoxtralConfig]) -> VoxtralConfig:
    return parse(read_json(path), str(path))


def _quantizable(path: str, module: nn.Module, group_size: int) -> bool:
    if not isinstance(module, (nn.Linear, nn.Embedding)) or "ada_rms_norm_t_cond" in path:
        return False
    return module.weight.shape[-1] % group_size == 0
