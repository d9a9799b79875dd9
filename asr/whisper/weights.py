"""Whisper checkpoints in the three layouts users have, mapped onto our model's names.

- CTranslate2 (faster-whisper repos, the bundled tiny.en): `model.bin` + `config.json`.
- mlx-community (openai names, MLX conv layout): `config.json` with `n_mels`, ... and
  `model.safetensors` / `weights.safetensors` / `weights.npz`, maybe quantized.
- transformers (the openai/whisper-* hub repos): `config.json` with `d_model`, ... and
  safetensors (single or sharded) or `pytorch_model.bin`, plus `generation_config.json`.

Every layout yields complete weights in our naming (see `model.py`), cast to one dtype.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import mlx.core as mx
import numpy as np

from asr.base import ASRError, ModelNotFoundError
from asr.runtime.checkpoint import (
    Read,
    build_quantized,
    dequantized as expand_quantized,
    load_weights,
    mx_load,
    read_json,
    shard_files,
)
from asr.runtime.torchzip import read_torch_zip
from asr.whisper.ct2 import CT2Model, read_model
from asr.whisper.model import Whisper, WhisperDims, sinusoids

LAYOUT_CT2 = "ctranslate2"
LAYOUT_MLX = "mlx"
LAYOUT_TRANSFORMERS = "transformers"

# The hub repos whose tokenizer.json fits each vocabulary size (mlx-community repos ship none).
TOKENIZER_REPOS = {
    51864: "openai/whisper-tiny.en",
    51865: "openai/whisper-tiny",
    51866: "openai/whisper-large-v3",
}

# generation_config.json fields passed through as they are.
_HF_GENERATION_KEYS = (
    "suppress_tokens", "begin_suppress_tokens", "alignment_heads", "lang_to_id", "task_to_id",
    "no_timestamps_token_id", "decoder_start_token_id", "eos_token_id", "prev_sot_token_id",
    "max_initial_timestamp_index", "is_multilingual",
)  # fmt: skip


@dataclass(frozen=True)
class Checkpoint:
    """Weights in our naming plus what decoding needs from the checkpoint.

    `generation` holds, when the layout provides them: suppress_tokens, begin_suppress_tokens,
    alignment_heads ([layer, head] pairs), lang_ids (sorted token ids), and from transformers
    repos also lang_to_id, task_to_id, no_timestamps_token_id and the other ids in
    `_HF_GENERATION_KEYS`. `quantization` ({"group_size", "bits"}) marks an MLX-quantized
    checkpoint whose weights carry `.scales`/`.biases`: see `build_model`.
    """

    dims: WhisperDims
    weights: dict[str, mx.array]
    layout: str
    folder: Path
    quantization: dict[str, Any] | None = None
    tokenizer_file: Path | None = None
    generation: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> WhisperDims:
        """The dims, under the name every family's checkpoint gives its config."""
        return self.dims


def load_checkpoint(folder: str | Path, dtype: mx.Dtype | None = mx.float32) -> Checkpoint:
    """Load a Whisper checkpoint folder in any supported layout.

    Floating-point weights are cast to `dtype` (None keeps what is stored; float32 is what
    the CPU backend computes fast). Raises ModelNotFoundError for a missing or incomplete
    folder and ASRError for corrupt or unsupported files, each with a one-line message.
    """
    folder, r = load_weights(folder, read, Whisper, "Whisper", dtype)
    tokenizer = folder / "tokenizer.json"
    return Checkpoint(
        dims=r.config,
        weights=r.weights,
        layout=r.layout,
        folder=folder,
        quantization=r.quantization,
        tokenizer_file=tokenizer if tokenizer.is_file() else None,
        generation=r.extra["generation"],
    )


def read(folder: Path) -> Read:
    """The dims and our-named weights of a folder in whichever layout it holds (the
    generation settings in `extra`)."""
    layout = detect_layout(folder)
    loaders = {LAYOUT_CT2: _load_ct2, LAYOUT_MLX: _load_mlx, LAYOUT_TRANSFORMERS: _load_transformers}
    dims, weights, generation, quantization = loaders[layout](folder)
    if "encoder.positional_embedding" not in weights:
        # Layouts that do not store it use the fixed sinusoids Whisper was trained with.
        like = weights.get("decoder.positional_embedding", mx.zeros(0)).dtype
        fixed = sinusoids(dims.n_audio_ctx, dims.n_audio_state)
        weights["encoder.positional_embedding"] = fixed.astype(like)
    return Read(layout, dims, weights, quantization, {"generation": generation})


def build_model(checkpoint: Checkpoint) -> Whisper:
    """A `Whisper` holding the checkpoint's weights (quantized layers made quantized first)."""
    return build_quantized(Whisper(checkpoint.dims), checkpoint.weights, checkpoint.quantization, None, 64, None)


def dequantized(checkpoint: Checkpoint, dtype: mx.Dtype = mx.float32, consume: bool = False) -> Checkpoint:
    """The checkpoint with MLX-quantized layers expanded back to `dtype`.

    On the CPU, MLX's quantized matmul is slow and everything computes in float32 anyway,
    so quantized downloads are expanded once at load. `consume` expands in place, freeing
    each packed layer as soon as its expansion exists.
    """
    return expand_quantized(checkpoint, Whisper, dtype, consume)


def detect_layout(folder: Path) -> str:
    """Which layout a folder holds, from its files; ModelNotFoundError if none fits."""
    if (folder / "model.bin").is_file():
        return LAYOUT_CT2
    if not (folder / "config.json").is_file():
        raise ModelNotFoundError(
            f"{folder} holds no Whisper model: no model.bin (CTranslate2) "
            "or config.json (mlx, transformers)"
        )
    config = _read_json(folder, "config.json", required=True)
    if "n_mels" in config and "n_audio_ctx" in config:
        return LAYOUT_MLX
    if "d_model" in config and "encoder_layers" in config:
        if config.get("model_type", "whisper") != "whisper":
            raise ModelNotFoundError(f"{folder} holds a {config['model_type']} model, not Whisper")
        return LAYOUT_TRANSFORMERS
    raise ModelNotFoundError(
        f"{folder}/config.json describes no Whisper model (expected openai/mlx fields such as "
        "n_mels, or transformers fields such as d_model)"
    )


def default_tokenizer_file(
    n_vocab: int, cache_dir: Path | None = None, allow_download: bool = True
) -> Path:
    """The tokenizer.json of the openai model family with this vocabulary size.

    English (51864) comes from the bundled tiny.en model and works offline; the
    multilingual ones are a single-file download from the openai repo.
    """
    if n_vocab not in TOKENIZER_REPOS:
        raise ModelNotFoundError(
            f"no known Whisper tokenizer has {n_vocab} tokens; put a tokenizer.json in the model folder"
        )
    if n_vocab == 51864:
        bundled = _bundled_tokenizer()
        if bundled is not None:
            return bundled
    from asr.runtime.hub import resolve_model

    repo = TOKENIZER_REPOS[n_vocab]
    folder = resolve_model(repo, cache_dir, allow_download, allow_patterns=["tokenizer.json"])
    path = folder / "tokenizer.json"
    if not path.is_file():
        raise ModelNotFoundError(f"the tokenizer of {repo} is not downloaded and could not be fetched")
    return path


def _bundled_tokenizer() -> Path | None:
    from asr.whisper.bundled import bundled_model_dir

    folder = bundled_model_dir()
    path = folder / "tokenizer.json" if folder is not None else None
    return path if path is not None and path.is_file() else None


# --- CTranslate2 -----------------------------------------------------------------------

# Verified in ctranslate2/converters/transformers.py (BartLoader.set_attention, which
# WhisperLoader inherits): self-attention linear_0 = [q; k; v] and linear_1 = out;
# cross-attention linear_0 = q, linear_1 = [k; v], linear_2 = out. The absent k_proj
# bias is filled with zeros by converters/utils.fuse_linear.
_CT2_LN = {"gamma": "weight", "beta": "bias"}


def _load_ct2(folder: Path):
    m = read_model(folder / "model.bin")
    _check_ct2_spec(m)
    dims = _ct2_dims(m)
    weights: dict[str, mx.array] = {}
    for side, n_layers in (("encoder", dims.n_audio_layer), ("decoder", dims.n_text_layer)):
        for i in range(n_layers):
            src, dst = f"{side}/layer_{i}", f"{side}.blocks.{i}"
            _ct2_attention(m, f"{src}/self_attention", f"{dst}.attn", weights, fused_qkv=True)
            _ct2_layer_norm(m, f"{src}/self_attention/layer_norm", f"{dst}.attn_ln", weights)
            if side == "decoder":
                _ct2_attention(m, f"{src}/attention", f"{dst}.cross_attn", weights, fused_qkv=False)
                _ct2_layer_norm(m, f"{src}/attention/layer_norm", f"{dst}.cross_attn_ln", weights)
            _ct2_linear(m, f"{src}/ffn/linear_0", f"{dst}.mlp1", weights)
            _ct2_linear(m, f"{src}/ffn/linear_1", f"{dst}.mlp2", weights)
            _ct2_layer_norm(m, f"{src}/ffn/layer_norm", f"{dst}.mlp_ln", weights)
    for conv in ("conv1", "conv2"):
        _ct2_linear(m, f"encoder/{conv}", f"encoder.{conv}", weights)
        # CTranslate2 keeps torch's (out, in, kernel); MLX convolves with (out, kernel, in).
        weights[f"encoder.{conv}.weight"] = weights[f"encoder.{conv}.weight"].transpose(0, 2, 1)
    if "encoder/position_encodings/encodings" in m:
        weights["encoder.positional_embedding"] = _ct2_tensor(m, "encoder/position_encodings/encodings")
    _ct2_layer_norm(m, "encoder/layer_norm", "encoder.ln_post", weights)
    weights["decoder.token_embedding.weight"] = _ct2_tensor(m, "decoder/embeddings/weight")
    weights["decoder.positional_embedding"] = _ct2_tensor(m, "decoder/position_encodings/encodings")
    _ct2_layer_norm(m, "decoder/layer_norm", "decoder.ln", weights)
    _check_tied_projection(m)
    return dims, weights, _ct2_generation(folder), None


def _ct2_tensor(m: CT2Model, name: str) -> mx.array:
    """One variable as an MLX array: float16/float32 copied straight from the file, the
    rest (bfloat16, int8/int16 with scales) through float32."""
    if m.variable(name).dtype in ("float16", "float32"):
        return mx.array(m.raw(name))
    return mx.array(m.float32(name))


def _check_ct2_spec(m: CT2Model) -> None:
    if m.spec and m.spec != "WhisperSpec":
        raise ASRError(f"{m.path} holds a CTranslate2 {m.spec}, not a Whisper model")
    if m.revision > 3:
        raise ASRError(
            f"{m.path} uses WhisperSpec revision {m.revision}, newer than this reader knows (1-3)"
        )
    # Spec revision 3 renumbered activations: GELU (erf) was 1 before and is 3 since.
    gelu = 3 if m.revision >= 3 else 1
    if "decoder/activation" in m and m.scalar("decoder/activation") != gelu:
        raise ASRError(f"{m.path} uses an activation other than GELU, which Whisper needs")


def _ct2_dims(m: CT2Model) -> WhisperDims:
    required = ("encoder/conv1/weight", "decoder/embeddings/weight", "encoder/num_heads",
                "decoder/position_encodings/encodings", "decoder/num_heads")  # fmt: skip
    for name in required:
        if name not in m:
            raise ModelNotFoundError(f"{m.path} is incomplete: it has no {name}")
    conv = m.variable("encoder/conv1/weight").shape
    embed = m.variable("decoder/embeddings/weight").shape
    audio_ctx = 1500  # every Whisper's 30 s window, when the encodings are not stored
    if "encoder/position_encodings/encodings" in m:
        audio_ctx = m.variable("encoder/position_encodings/encodings").shape[0]
    return WhisperDims(
        n_mels=conv[1],
        n_audio_ctx=audio_ctx,
        n_audio_state=conv[0],
        n_audio_head=int(m.scalar("encoder/num_heads")),
        n_audio_layer=_ct2_layer_count(m, "encoder"),
        n_vocab=embed[0],
        n_text_ctx=m.variable("decoder/position_encodings/encodings").shape[0],
        n_text_state=embed[1],
        n_text_head=int(m.scalar("decoder/num_heads")),
        n_text_layer=_ct2_layer_count(m, "decoder"),
    )


def _ct2_layer_count(m: CT2Model, side: str) -> int:
    pattern = re.compile(rf"{side}/layer_(\d+)/")
    found = {int(g.group(1)) for n in [*m.variables, *m.aliases] if (g := pattern.match(n))}
    if found != set(range(len(found))):
        raise ModelNotFoundError(
            f"{m.path} is incomplete: {side} layers {sorted(found)} are not contiguous"
        )
    return len(found)


def _ct2_attention(m: CT2Model, src: str, dst: str, out: dict, fused_qkv: bool) -> None:
    if fused_qkv:
        w, b = _ct2_split(m, f"{src}/linear_0", 3)
        out_linear = f"{src}/linear_1"
    else:
        wq, bq = _ct2_split(m, f"{src}/linear_0", 1)
        wkv, bkv = _ct2_split(m, f"{src}/linear_1", 2)
        w, b = wq + wkv, bq + bkv
        out_linear = f"{src}/linear_2"
    for name, wi, bi in zip(("query", "key", "value"), w, b):
        out[f"{dst}.{name}.weight"] = wi
        if name == "key":
            # Whisper's key has no bias; the converter stored zeros there. A non-zero slice
            # means the fused order is not the one verified above.
            if bi is not None and mx.any(bi != 0).item():
                raise ASRError(
                    f"{m.path}: {src} has a non-zero key bias; its fused q/k/v layout is not Whisper's"
                )
        elif bi is not None:
            out[f"{dst}.{name}.bias"] = bi
    _ct2_linear(m, out_linear, f"{dst}.out", out)


def _ct2_split(m: CT2Model, name: str, parts: int) -> tuple[list, list]:
    """A fused linear's weight and bias cut into `parts` equal blocks of rows."""
    if f"{name}/weight" not in m:
        raise ModelNotFoundError(f"{m.path} is incomplete: it has no {name}/weight")
    weight = _ct2_tensor(m, f"{name}/weight")
    if weight.shape[0] % parts:
        raise ASRError(f"{m.path}: {name} has {weight.shape[0]} fused rows, not {parts} equal parts")
    bias = _ct2_tensor(m, f"{name}/bias") if f"{name}/bias" in m else None
    biases = mx.split(bias, parts) if bias is not None else [None] * parts
    return mx.split(weight, parts), biases


def _ct2_linear(m: CT2Model, src: str, dst: str, out: dict) -> None:
    out[f"{dst}.weight"] = _ct2_tensor(m, f"{src}/weight")
    if f"{src}/bias" in m:
        out[f"{dst}.bias"] = _ct2_tensor(m, f"{src}/bias")


def _ct2_layer_norm(m: CT2Model, src: str, dst: str, out: dict) -> None:
    for theirs, ours in _CT2_LN.items():
        out[f"{dst}.{ours}"] = _ct2_tensor(m, f"{src}/{theirs}")


def _check_tied_projection(m: CT2Model) -> None:
    # Our decoder reuses the token embedding as the output projection (as Whisper does).
    name = "decoder/projection/weight"
    if name not in m or m.resolve(name) == "decoder/embeddings/weight":
        return
    if not np.array_equal(m.float32(name), m.float32("decoder/embeddings/weight")):
        raise ASRError(f"{m.path} has an output projection separate from the token embedding")
    if "decoder/projection/bias" in m and np.any(m.float32("decoder/projection/bias") != 0):
        raise ASRError(f"{m.path} has an output projection bias, which Whisper does not")


def _ct2_generation(folder: Path) -> dict[str, Any]:
    config = _read_json(folder, "config.json", required=False)
    mapping = {"suppress_ids": "suppress_tokens", "suppress_ids_begin": "begin_suppress_tokens",
               "alignment_heads": "alignment_heads", "lang_ids": "lang_ids"}  # fmt: skip
    generation = {ours: config[k] for k, ours in mapping.items() if config.get(k) is not None}
    if "lang_ids" in generation:
        generation["lang_ids"] = sorted(generation["lang_ids"])
    return generation


# --- mlx-community -------------------------------------------------------------------

_MLX_WEIGHT_FILES = ("model.safetensors", "weights.safetensors", "weights.npz")


def read_dims(folder: Path) -> WhisperDims:
    """The model's dimensions from its config (or CTranslate2 index), without the weights."""
    layout = detect_layout(folder)
    if layout == LAYOUT_CT2:
        return _ct2_dims(read_model(folder / "model.bin"))
    config = _read_json(folder, "config.json", required=True)
    if layout == LAYOUT_TRANSFORMERS:
        return _hf_dims(folder, config)
    return _mlx_dims(folder, config)


def _mlx_dims(folder: Path, config: dict) -> WhisperDims:
    missing = [f.name for f in fields(WhisperDims) if f.name not in config]
    if missing:
        raise ModelNotFoundError(f"{folder}/config.json lacks {', '.join(missing)}")
    return WhisperDims(**{f.name: int(config[f.name]) for f in fields(WhisperDims)})


def _load_mlx(folder: Path):
    config = _read_json(folder, "config.json", required=True)
    dims = _mlx_dims(folder, config)
    path = next((folder / n for n in _MLX_WEIGHT_FILES if (folder / n).is_file()), None)
    if path is None:
        raise ModelNotFoundError(f"{folder} has no weights ({' or '.join(_MLX_WEIGHT_FILES)})")
    weights = mx_load(path)
    generation = {}
    heads = weights.pop("alignment_heads", None)  # mlx_whisper saves it among the parameters
    if heads is not None:
        generation["alignment_heads"] = np.array(heads).astype(int).tolist()
    quantization = config.get("quantization")
    if quantization is not None:
        quantization = {k: quantization[k] for k in ("group_size", "bits", "mode") if k in quantization}
    return dims, weights, generation, quantization


# --- transformers ----------------------------------------------------------------------

# Module names per dotted segment, transformers → openai (ours).
_HF_SEGMENTS = {
    "layers": "blocks",
    "self_attn": "attn",
    "encoder_attn": "cross_attn",
    "self_attn_layer_norm": "attn_ln",
    "encoder_attn_layer_norm": "cross_attn_ln",
    "final_layer_norm": "mlp_ln",
    "fc1": "mlp1",
    "fc2": "mlp2",
    "q_proj": "query",
    "k_proj": "key",
    "v_proj": "value",
    "out_proj": "out",
    "embed_tokens": "token_embedding",
}


def _load_transformers(folder: Path):
    config = _read_json(folder, "config.json", required=True)
    dims = _hf_dims(folder, config)
    raw = _hf_state_dict(folder)
    weights: dict[str, mx.array] = {}
    for name, value in raw.items():
        ours = hf_to_ours(name)
        if ours is None:
            continue
        if ours.endswith(("conv1.weight", "conv2.weight")):
            value = value.transpose(0, 2, 1)  # torch (out, in, kernel) → MLX (out, kernel, in)
        weights[ours] = value
    projection = raw.get("proj_out.weight")
    embedding = weights.get("decoder.token_embedding.weight")
    tied = projection is None or embedding is None or mx.array_equal(projection, embedding).item()
    if not tied:
        raise ASRError(f"{folder} has an output projection separate from the token embedding")
    return dims, weights, _hf_generation(folder, config), None


def hf_to_ours(name: str) -> str | None:
    """Our parameter name for a transformers Whisper key (None: not a model weight we use)."""
    parts = name.split(".")
    if parts[0] == "model":
        parts = parts[1:]
    if not parts or parts[0] not in ("encoder", "decoder"):
        return None  # proj_out (tied) and heads of other tasks
    side = parts[0]
    if parts[1:] == ["embed_positions", "weight"]:
        return f"{side}.positional_embedding"
    if parts[1] == "layer_norm":
        return ".".join([side, "ln_post" if side == "encoder" else "ln", *parts[2:]])
    return ".".join(_HF_SEGMENTS.get(p, p) for p in parts)


# WhisperDims field ← transformers config key.
_HF_DIMS = {
    "n_mels": "num_mel_bins", "n_audio_ctx": "max_source_positions", "n_audio_state": "d_model",
    "n_audio_head": "encoder_attention_heads", "n_audio_layer": "encoder_layers",
    "n_vocab": "vocab_size", "n_text_ctx": "max_target_positions", "n_text_state": "d_model",
    "n_text_head": "decoder_attention_heads", "n_text_layer": "decoder_layers",
}  # fmt: skip


def _hf_dims(folder: Path, config: dict) -> WhisperDims:
    missing = sorted({key for key in _HF_DIMS.values() if key not in config})
    if missing:
        raise ModelNotFoundError(f"{folder}/config.json lacks {', '.join(missing)}")
    return WhisperDims(**{ours: int(config[theirs]) for ours, theirs in _HF_DIMS.items()})


def _hf_state_dict(folder: Path) -> dict[str, mx.array]:
    for single, index in (("model.safetensors", "model.safetensors.index.json"),
                          ("pytorch_model.bin", "pytorch_model.bin.index.json")):  # fmt: skip
        if (folder / single).is_file():
            return _load_weight_file(folder / single)
        if (folder / index).is_file():
            state: dict[str, mx.array] = {}
            for shard in shard_files(folder, index):
                state.update(_load_weight_file(shard))
            return state
    raise ModelNotFoundError(
        f"{folder} has no weights (model.safetensors, sharded safetensors or pytorch_model.bin)"
    )


def _load_weight_file(path: Path) -> dict[str, mx.array]:
    if path.suffix == ".bin":
        return {k: mx.array(v) for k, v in read_torch_zip(path).items()}
    return mx_load(path)


def _hf_generation(folder: Path, config: dict) -> dict[str, Any]:
    generation = _read_json(folder, "generation_config.json", required=False) or {
        k: config[k] for k in ("suppress_tokens", "begin_suppress_tokens") if k in config
    }
    out = {k: generation[k] for k in _HF_GENERATION_KEYS if generation.get(k) is not None}
    if "lang_to_id" in out:
        out["lang_ids"] = sorted(out["lang_to_id"].values())
    return out


# --- shared ------------------------------------------------------------------------------


def _read_json(folder: Path, name: str, required: bool) -> dict:
    path = folder / name
    if not path.is_file():
        if required:
            raise ModelNotFoundError(f"{folder} has no {name}")
        return {}
    return read_json(path)
