"""Header-only fixtures of the catalogue's real checkpoints, for the memory budgeter's tests.

The model hub cannot be reached from the tests, so each catalogue model is described here by
its published config file(s) and the exact tensor names, dtypes and shapes of its real repo,
laid out in the repo's real files (single `model.safetensors`, or shards plus
`model.safetensors.index.json`). `write_checkpoint` writes them as valid safetensors files that
hold only the header (8-byte little-endian length + JSON with `dtype`, `shape` and contiguous
`data_offsets`), no tensor data: a budgeter that reads headers and configs sees the real model.

The tensor lists are made by generators that are functions of a config dict, so the tests can
run the same generator on a tiny config and compare it with what the repo's own test builders
write and what our loaders accept (tests/budget/test_checkpoints.py). Facts that could not be
confirmed from public material are listed in each spec's `unverified`.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Tensor = tuple[str, tuple[int, ...]]  # (safetensors dtype, shape)

DTYPE_BYTES = {"BF16": 2, "F16": 2, "F32": 4, "F64": 8, "U32": 4, "I32": 4, "I64": 8, "U8": 1, "I8": 1}
INDEX_FILE = "model.safetensors.index.json"
MLX_MAX_SHARD_BYTES = 5 << 30  # mlx_lm.utils.MAX_FILE_SIZE_GB = 5, as `max_file_size_gb << 30`


@dataclass(frozen=True)
class CheckpointSpec:
    """One checkpoint repo: its json files, its safetensors files and where the facts came from.

    `shards` maps each safetensors file name to {tensor name: (dtype, shape)}, in the order the
    converter walked the model. `metadata` is the `__metadata__` the real files carry (None:
    none). `header_style` is the writer that made them: "pt" for the Rust safetensors library
    (transformers, Mistral), "mlx" for `mx.save_safetensors` (mlx-lm, mlx-audio)."""

    name: str
    repo: str
    files: dict[str, dict]
    shards: dict[str, dict[str, Tensor]]
    sources: tuple[str, ...]
    metadata: dict[str, str] | None = None
    header_style: str = "pt"
    unverified: tuple[str, ...] = ()
    published: dict[str, Any] = field(default_factory=dict)  # figures quoted in sources

    @property
    def tensors(self) -> dict[str, Tensor]:
        return {k: v for shard in self.shards.values() for k, v in shard.items()}

    @property
    def config(self) -> dict:
        """The model config: config.json, or params.json for Mistral's original layout."""
        return self.files.get("config.json") or self.files.get("params.json") or {}

    @property
    def quantization(self) -> dict | None:
        return self.config.get("quantization")


# --- sizes ----------------------------------------------------------------------------------


def numel(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


def tensor_bytes(tensor: Tensor) -> int:
    dtype, shape = tensor
    return numel(shape) * DTYPE_BYTES[dtype]


def stored_bytes(spec: CheckpointSpec) -> int:
    """Bytes of tensor data in all safetensors files (what `total_size` of an index counts)."""
    return sum(tensor_bytes(t) for t in spec.tensors.values())


def tensor_count(spec: CheckpointSpec) -> int:
    return len(spec.tensors)


def dtype_counts(spec: CheckpointSpec) -> dict[str, int]:
    counts: dict[str, int] = {}
    for dtype, _ in spec.tensors.values():
        counts[dtype] = counts.get(dtype, 0) + 1
    return counts


def quantized_modules(tensors: dict[str, Tensor]) -> list[str]:
    """Module paths stored MLX-quantized (packed `.weight` plus `.scales` and `.biases`)."""
    return [k[: -len(".scales")] for k in tensors
            if k.endswith(".scales") and k[: -len(".scales")] + ".biases" in tensors]  # fmt: skip


def parameter_count(spec: CheckpointSpec) -> int:
    """Model parameters the files hold: a quantized weight counts its unpacked elements
    (in = groups * group_size), its scales and biases count nothing."""
    tensors = spec.tensors
    quantized = set(quantized_modules(tensors))
    group_size = (spec.quantization or {}).get("group_size", 64)
    total = 0
    for name, (_, shape) in tensors.items():
        base, _, param = name.rpartition(".")
        if base in quantized:
            if param == "weight":
                total += shape[0] * tensors[base + ".scales"][1][-1] * group_size
            elif param in ("scales", "biases"):
                continue
            else:
                total += numel(shape)
        else:
            total += numel(shape)
    return total


# --- safetensors headers ----------------------------------------------------------------------


def header_json(tensors: dict[str, Tensor], metadata: dict | None = None, style: str = "pt") -> bytes:
    """The JSON header a writer would produce for these tensors, data laid out contiguously.

    "pt" follows the Rust safetensors library (`save_file`): data sorted by dtype size (largest
    first) then name, keys in dtype/shape/data_offsets order, `__metadata__` first, the header
    padded with spaces to a multiple of 8. "mlx" follows `mx.save_safetensors`: compact JSON with
    sorted keys, no padding (its data order is a hash map's; sorted names are used here)."""
    if style == "pt":
        order = sorted(tensors, key=lambda k: (-DTYPE_BYTES[tensors[k][0]], k))
    elif style == "mlx":
        order = sorted(tensors)
    else:
        raise ValueError(f"unknown header style {style!r}")
    entries: dict[str, Any] = {}
    if metadata is not None:
        entries["__metadata__"] = dict(metadata)
    offset = 0
    for name in order:
        dtype, shape = tensors[name]
        size = tensor_bytes((dtype, shape))
        if style == "pt":
            entries[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + size]}
        else:
            entries[name] = {"data_offsets": [offset, offset + size], "dtype": dtype, "shape": list(shape)}
        offset += size
    if style == "mlx":
        entries = dict(sorted(entries.items()))
    text = json.dumps(entries, separators=(",", ":")).encode()
    if style == "pt":
        text += b" " * (-len(text) % 8)
    return text


def safetensors_file_bytes(spec: CheckpointSpec, filename: str) -> int:
    """Size the real file has: 8 + header + data (the header as this module writes it)."""
    tensors = spec.shards[filename]
    header = header_json(tensors, spec.metadata, spec.header_style)
    return 8 + len(header) + sum(tensor_bytes(t) for t in tensors.values())


def index_for(shards: dict[str, dict[str, Tensor]], total_parameters: int | None = None) -> dict:
    """`model.safetensors.index.json`: total data bytes and the sorted tensor → file map (mlx-lm
    also writes `total_parameters`)."""
    metadata: dict[str, int] = {"total_size": sum(tensor_bytes(t) for s in shards.values() for t in s.values())}
    if total_parameters is not None:
        metadata["total_parameters"] = total_parameters
    weight_map = {name: file for file, tensors in shards.items() for name in tensors}
    return {"metadata": metadata, "weight_map": dict(sorted(weight_map.items()))}


def write_checkpoint(spec: CheckpointSpec, folder: Path) -> Path:
    """Write the spec's json files and its safetensors files, headers only (no data bytes),
    plus the shard index for sharded specs that do not list one. Returns `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    indent = 4 if spec.header_style == "mlx" else 2  # mlx-lm's save_config/save_model; transformers
    for name, content in spec.files.items():
        (folder / name).write_text(json.dumps(content, indent=indent))
    for name, tensors in spec.shards.items():
        header = header_json(tensors, spec.metadata, spec.header_style)
        (folder / name).write_bytes(struct.pack("<Q", len(header)) + header)
    if len(spec.shards) > 1 and INDEX_FILE not in spec.files:
        (folder / INDEX_FILE).write_text(json.dumps(index_for(spec.shards), indent=indent))
    return folder


def read_header(path: Path) -> tuple[dict[str, Tensor], dict | None, int]:
    """(tensors, __metadata__, data bytes the header describes) of a safetensors file."""
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
    metadata = header.pop("__metadata__", None)
    tensors = {k: (v["dtype"], tuple(v["shape"])) for k, v in header.items()}
    end = max((v["data_offsets"][1] for v in header.values()), default=0)
    return tensors, metadata, end


# --- sharding, as the converters do it ----------------------------------------------------------


def mlx_shards(tensors: dict[str, Tensor], max_bytes: int = MLX_MAX_SHARD_BYTES) -> dict[str, dict[str, Tensor]]:
    """mlx_lm.utils.make_shards + save_model's file names: a new shard when the next tensor
    would pass `max_bytes`; one shard is `model.safetensors`."""
    shards: list[dict[str, Tensor]] = []
    size = 0
    for name, tensor in tensors.items():
        if not shards or size + tensor_bytes(tensor) > max_bytes:
            shards.append({})
            size = 0
        shards[-1][name] = tensor
        size += tensor_bytes(tensor)
    return _named(shards)


def hf_shards(tensors: dict[str, Tensor], max_bytes: int) -> dict[str, dict[str, Tensor]]:
    """huggingface_hub.split_state_dict_into_shards (transformers' save_pretrained): a tensor
    larger than the limit gets a shard of its own, otherwise a new shard starts when the next
    tensor would pass the limit."""
    shards: list[dict[str, Tensor]] = []
    current: dict[str, Tensor] = {}
    size = 0
    for name, tensor in tensors.items():
        nbytes = tensor_bytes(tensor)
        if nbytes > max_bytes:
            shards.append({name: tensor})
            continue
        if size + nbytes > max_bytes:
            shards.append(current)
            current, size = {}, 0
        current[name] = tensor
        size += nbytes
    if current:
        shards.append(current)
    return _named(shards)


def _named(shards: list[dict[str, Tensor]]) -> dict[str, dict[str, Tensor]]:
    if len(shards) == 1:
        return {"model.safetensors": shards[0]}
    return {f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors": s for i, s in enumerate(shards)}


# --- layer helpers ----------------------------------------------------------------------------


def _linear(out: dict, path: str, out_dim: int, in_dim: int, dtype: str, bias: bool = False,
            bias_dtype: str | None = None, q: dict | None = None) -> None:
    """A Linear (or Embedding, as (vocab, dim)) layer's tensors, MLX-quantized when `q`
    ({"bits", "group_size"}) is given: `.weight` U32 (out, in * bits / 32), `.scales` and
    `.biases` (out, in / group_size) in the float dtype, then the float `.bias`."""
    if q:
        bits, group = int(q["bits"]), int(q["group_size"])
        out[f"{path}.weight"] = ("U32", (out_dim, in_dim * bits // 32))
        out[f"{path}.scales"] = (dtype, (out_dim, in_dim // group))
        out[f"{path}.biases"] = (dtype, (out_dim, in_dim // group))
    else:
        out[f"{path}.weight"] = (dtype, (out_dim, in_dim))
    if bias:
        out[f"{path}.bias"] = (bias_dtype or dtype, (out_dim,))


def _quantizable(q: dict | None, in_dim: int) -> dict | None:
    """mlx_lm.quantize_model's own rule: only layers whose input width splits into groups."""
    return q if q and in_dim % int(q["group_size"]) == 0 else None


# --- Whisper (transformers layout, openai/whisper-*) -----------------------------------------


def whisper_transformers_tensors(config: dict, dtype: str) -> dict[str, Tensor]:
    """WhisperForConditionalGeneration's state dict as `save_pretrained` (and the hub's
    safetensors conversion) stores it: the tied `proj_out.weight` is not stored."""
    d, mels = config["d_model"], config["num_mel_bins"]
    t: dict[str, Tensor] = {}
    t["model.encoder.conv1.weight"] = (dtype, (d, mels, 3))
    t["model.encoder.conv1.bias"] = (dtype, (d,))
    t["model.encoder.conv2.weight"] = (dtype, (d, d, 3))
    t["model.encoder.conv2.bias"] = (dtype, (d,))
    t["model.encoder.embed_positions.weight"] = (dtype, (config["max_source_positions"], d))

    def attention(prefix: str) -> None:
        _linear(t, f"{prefix}.k_proj", d, d, dtype)  # Whisper's key has no bias
        _linear(t, f"{prefix}.v_proj", d, d, dtype, bias=True)
        _linear(t, f"{prefix}.q_proj", d, d, dtype, bias=True)
        _linear(t, f"{prefix}.out_proj", d, d, dtype, bias=True)

    def layer_norm(prefix: str) -> None:
        t[f"{prefix}.weight"] = (dtype, (d,))
        t[f"{prefix}.bias"] = (dtype, (d,))

    for i in range(config["encoder_layers"]):
        p = f"model.encoder.layers.{i}"
        attention(f"{p}.self_attn")
        layer_norm(f"{p}.self_attn_layer_norm")
        _linear(t, f"{p}.fc1", config["encoder_ffn_dim"], d, dtype, bias=True)
        _linear(t, f"{p}.fc2", d, config["encoder_ffn_dim"], dtype, bias=True)
        layer_norm(f"{p}.final_layer_norm")
    layer_norm("model.encoder.layer_norm")
    t["model.decoder.embed_tokens.weight"] = (dtype, (config["vocab_size"], d))
    t["model.decoder.embed_positions.weight"] = (dtype, (config["max_target_positions"], d))
    for i in range(config["decoder_layers"]):
        p = f"model.decoder.layers.{i}"
        attention(f"{p}.self_attn")
        layer_norm(f"{p}.self_attn_layer_norm")
        attention(f"{p}.encoder_attn")
        layer_norm(f"{p}.encoder_attn_layer_norm")
        _linear(t, f"{p}.fc1", config["decoder_ffn_dim"], d, dtype, bias=True)
        _linear(t, f"{p}.fc2", d, config["decoder_ffn_dim"], dtype, bias=True)
        layer_norm(f"{p}.final_layer_norm")
    layer_norm("model.decoder.layer_norm")
    return t


def whisper_config(name: str, d: int, layers: tuple[int, int], heads: int, vocab: int, mels: int,
                   torch_dtype: str) -> dict:
    """The transformers WhisperConfig fields of an openai/whisper-* config.json; token ids are
    those of the English (51864) or the v3 (51866) vocabulary. suppress_tokens,
    begin_suppress_tokens and forced_decoder_ids are left out (generation settings)."""
    english = vocab == 51864
    return {
        "_name_or_path": name, "activation_dropout": 0.0, "activation_function": "gelu",
        "architectures": ["WhisperForConditionalGeneration"], "attention_dropout": 0.0,
        "bos_token_id": 50257, "d_model": d, "decoder_attention_heads": heads, "decoder_ffn_dim": 4 * d,
        "decoder_layerdrop": 0.0, "decoder_layers": layers[1],
        "decoder_start_token_id": 50257 if english else 50258, "dropout": 0.0,
        "encoder_attention_heads": heads, "encoder_ffn_dim": 4 * d, "encoder_layerdrop": 0.0,
        "encoder_layers": layers[0], "eos_token_id": 50256 if english else 50257, "init_std": 0.02,
        "is_encoder_decoder": True, "max_length": 448, "max_source_positions": 1500,
        "max_target_positions": 448, "model_type": "whisper", "num_hidden_layers": layers[0],
        "num_mel_bins": mels, "pad_token_id": 50256, "scale_embedding": False, "torch_dtype": torch_dtype,
        "use_cache": True, "vocab_size": vocab,
    }  # fmt: skip


WHISPER_SOURCES = (
    ("openai/whisper README model table (layers/width/heads per size; base 74 M, small 244 M, "
    "turbo 809 M parameters) and Radford et al. 2022, Table 1; large-v3-turbo: 32 encoder + 4 "
    "decoder layers, 128 mels, 51866 tokens"),
    ("transformers models/whisper/modeling_whisper.py (state-dict names; embed_positions stored, "
    "proj_out tied to decoder.embed_tokens and not saved)"),
    ("this repo: tests/asr/whisper/conftest.py hf_tiny_dir (save_pretrained layout), "
    "asr/whisper/weights.py hf_to_ours"),
)


def whisper_spec(repo: str, config: dict, dtype: str, published: dict | None = None,
                 unverified: tuple[str, ...] = ()) -> CheckpointSpec:
    """An openai/whisper-* repo: config.json + one model.safetensors (transformers layout)."""
    return CheckpointSpec(
        name=repo, repo=repo, files={"config.json": config},
        shards={"model.safetensors": whisper_transformers_tensors(config, dtype)},
        sources=WHISPER_SOURCES, metadata={"format": "pt"}, header_style="pt",
        unverified=unverified, published=published or {},
    )


# --- Voxtral Mini 4B Realtime ----------------------------------------------------------------

VOXTRAL_ORIGINAL_PREFIX = "mm_streams_embeddings.embedding_module."

# params.json of mistralai/Voxtral-Mini-4B-Realtime-2602 (numbers in /work/shared/MODEL-NOTES.md,
# antirez/voxtral.c MODEL.md and the mistral-hackaton-2026/voxtral_model card; field set as in
# this repo's tests/asr/voxtral/conftest.py TINY_PARAMS).
VOXTRAL_PARAMS = {
    "dim": 3072, "n_layers": 26, "head_dim": 128, "hidden_dim": 9216, "n_heads": 32, "n_kv_heads": 8,
    "use_biases": False, "causal": True, "rope_theta": 1_000_000.0, "norm_eps": 1e-5, "vocab_size": 131072,
    "model_parallel": 1, "tied_embeddings": True, "sliding_window": 8192, "model_max_length": 131072,
    "multimodal": {
        "whisper_model_args": {
            "encoder_args": {
                "audio_encoding_args": {
                    "sampling_rate": 16000, "frame_rate": 12.5, "num_mel_bins": 128, "hop_length": 160,
                    "window_size": 400, "chunk_length_s": None, "global_log_mel_max": 1.5,
                    "transcription_format": "streaming",
                },
                "dim": 1280, "n_layers": 32, "head_dim": 64, "hidden_dim": 5120, "n_heads": 32,
                "vocab_size": 131072, "n_kv_heads": 32, "use_biases": True, "use_cache": False,
                "rope_theta": 1_000_000.0, "causal": True, "norm_eps": 1e-5, "pos_embed": "rope",
                "max_source_positions": None, "ffn_type": "swiglu", "norm_type": "rms_norm",
                "sliding_window": 750,
            },
            "downsample_args": {"downsample_factor": 4},
        }
    },
    "ada_rms_norm_t_cond": True,
    "ada_rms_norm_t_cond_dim": 32,
}  # fmt: skip


def voxtral_original_tensors(params: dict, dtype: str = "BF16") -> dict[str, Tensor]:
    """consolidated.safetensors (antirez/voxtral.c MODEL.md "Tensor Names"): the embedding and
    the audio side under `mm_streams_embeddings.embedding_module.`, the decoder layers and the
    final norm at the top level; convs torch-style (out, in, kernel); encoder biases on q, v, o
    and w2 only; the tied output head not stored."""
    enc = params["multimodal"]["whisper_model_args"]["encoder_args"]
    factor = params["multimodal"]["whisper_model_args"]["downsample_args"]["downsample_factor"]
    mels = enc.get("audio_encoding_args", {}).get("num_mel_bins", 128)
    dim, ed = params["dim"], enc["dim"]
    pre, w = VOXTRAL_ORIGINAL_PREFIX, VOXTRAL_ORIGINAL_PREFIX + "whisper_encoder."
    t: dict[str, Tensor] = {}
    t[pre + "tok_embeddings.weight"] = (dtype, (params["vocab_size"], dim))
    t[w + "conv_layers.0.conv.weight"] = (dtype, (ed, mels, 3))
    t[w + "conv_layers.0.conv.bias"] = (dtype, (ed,))
    t[w + "conv_layers.1.conv.weight"] = (dtype, (ed, ed, 3))
    t[w + "conv_layers.1.conv.bias"] = (dtype, (ed,))
    attn = enc["n_heads"] * enc["head_dim"]
    kv = enc.get("n_kv_heads", enc["n_heads"]) * enc["head_dim"]
    bias = bool(enc.get("use_biases", True))
    for i in range(enc["n_layers"]):
        p = f"{w}transformer.layers.{i}"
        _linear(t, f"{p}.attention.wq", attn, ed, dtype, bias=bias)
        _linear(t, f"{p}.attention.wk", kv, ed, dtype)
        _linear(t, f"{p}.attention.wv", kv, ed, dtype, bias=bias)
        _linear(t, f"{p}.attention.wo", ed, attn, dtype, bias=bias)
        t[f"{p}.attention_norm.weight"] = (dtype, (ed,))
        _linear(t, f"{p}.feed_forward.w1", enc["hidden_dim"], ed, dtype)
        _linear(t, f"{p}.feed_forward.w2", ed, enc["hidden_dim"], dtype, bias=bias)
        _linear(t, f"{p}.feed_forward.w3", enc["hidden_dim"], ed, dtype)
        t[f"{p}.ffn_norm.weight"] = (dtype, (ed,))
    t[w + "transformer.norm.weight"] = (dtype, (ed,))
    _linear(t, pre + "audio_language_projection.0", dim, ed * factor, dtype)
    _linear(t, pre + "audio_language_projection.2", dim, dim, dtype)
    q_dim, kv_dim = params["n_heads"] * params["head_dim"], params["n_kv_heads"] * params["head_dim"]
    for i in range(params["n_layers"]):
        p = f"layers.{i}"
        t[f"{p}.attention_norm.weight"] = (dtype, (dim,))
        _linear(t, f"{p}.attention.wq", q_dim, dim, dtype)
        _linear(t, f"{p}.attention.wk", kv_dim, dim, dtype)
        _linear(t, f"{p}.attention.wv", kv_dim, dim, dtype)
        _linear(t, f"{p}.attention.wo", dim, q_dim, dtype)
        t[f"{p}.ffn_norm.weight"] = (dtype, (dim,))
        _linear(t, f"{p}.feed_forward.w1", params["hidden_dim"], dim, dtype)
        _linear(t, f"{p}.feed_forward.w2", dim, params["hidden_dim"], dtype)
        _linear(t, f"{p}.feed_forward.w3", params["hidden_dim"], dim, dtype)
        if params.get("ada_rms_norm_t_cond", True):
            cond = params["ada_rms_norm_t_cond_dim"]
            _linear(t, f"{p}.ada_rms_norm_t_cond.0", cond, dim, dtype)
            _linear(t, f"{p}.ada_rms_norm_t_cond.2", dim, cond, dtype)
    t["norm.weight"] = (dtype, (dim,))
    return t


def voxtral_mlx_config(params: dict, quantization: dict | None = None) -> dict:
    """mlx-audio's config.json for a converted params.json (its voxtral_realtime convert.py
    `params_to_config`, then mlx_lm `save_config`: sorted keys, `quantization_config` copy)."""
    names = ("dim", "n_layers", "head_dim", "hidden_dim", "n_heads", "n_kv_heads", "vocab_size",
             "norm_eps", "rope_theta", "sliding_window", "tied_embeddings")
    decoder = {k: params[k] for k in names if k in params}
    decoder["ada_rms_norm_t_cond"] = params.get("ada_rms_norm_t_cond", True)
    decoder["ada_rms_norm_t_cond_dim"] = params["ada_rms_norm_t_cond_dim"]
    whisper = params["multimodal"]["whisper_model_args"]
    encoder = json.loads(json.dumps(whisper["encoder_args"]))
    encoder["downsample_factor"] = whisper["downsample_args"]["downsample_factor"]
    config: dict[str, Any] = {"decoder": decoder, "encoder_args": encoder, "model_type": "voxtral_realtime"}
    if quantization:
        config["quantization"] = dict(quantization)
        config["quantization_config"] = dict(quantization)
    return dict(sorted(config.items()))


# mlx-audio's Model.model_quant_predicate of February 2026 (commit 950d0593, the one the
# mlx-community 4-bit conversion was made with: its token embedding and adapter are float).
VOXTRAL_MLX_SKIP = ("norm", "ada_rms_norm", "tok_embeddings", "conv_layers", "audio_language_projection")


def voxtral_mlx_tensors(config: dict, float_dtype: str = "F16",
                        skip: tuple[str, ...] = VOXTRAL_MLX_SKIP) -> dict[str, Tensor]:
    """An mlx-audio conversion (Model.sanitize names), in mlx-audio's parameter order (encoder:
    convs, layers, norm, adapter; decoder: embedding, layers, norm). Dtypes as the mlx-community
    files have them: norms, biases and the AdaRMSNorm projections float32 (mlx-audio's
    voxtral_realtime/convert.py kept every original key containing "norm" or "bias" in float32),
    the rest `float_dtype`; with `quantization` in the config, every Linear/Embedding that the
    predicate allows and whose input width splits into groups is MLX-quantized."""
    q = config.get("quantization")
    dec, enc = config["decoder"], config["encoder_args"]
    mels = enc.get("audio_encoding_args", {}).get("num_mel_bins", 128)
    dim, ed = dec["dim"], enc["dim"]
    f32, fl = "F32", float_dtype
    t: dict[str, Tensor] = {}

    def lin(path: str, out_dim: int, in_dim: int, bias: bool = False) -> None:
        wdtype = f32 if "norm" in path else fl
        allowed = q and not any(s in path for s in skip)
        _linear(t, path, out_dim, in_dim, wdtype, bias=bias, bias_dtype=f32,
                q=_quantizable(q, in_dim) if allowed else None)

    # CausalConv1d -> nn.Conv1d: MLX layout (out, kernel, in).
    t["encoder.conv_layers_0_conv.conv.weight"] = (fl, (ed, 3, mels))
    t["encoder.conv_layers_0_conv.conv.bias"] = (f32, (ed,))
    t["encoder.conv_layers_1_conv.conv.weight"] = (fl, (ed, 3, ed))
    t["encoder.conv_layers_1_conv.conv.bias"] = (f32, (ed,))
    attn = enc["n_heads"] * enc["head_dim"]
    kv = enc.get("n_kv_heads", enc["n_heads"]) * enc["head_dim"]
    bias = bool(enc.get("use_biases", True))
    for i in range(enc["n_layers"]):
        p = f"encoder.transformer_layers.{i}"
        t[f"{p}.attention_norm.weight"] = (f32, (ed,))
        lin(f"{p}.attention.wq", attn, ed, bias)
        lin(f"{p}.attention.wk", kv, ed)
        lin(f"{p}.attention.wv", kv, ed, bias)
        lin(f"{p}.attention.wo", ed, attn, bias)
        t[f"{p}.ffn_norm.weight"] = (f32, (ed,))
        lin(f"{p}.feed_forward_w1", enc["hidden_dim"], ed)
        lin(f"{p}.feed_forward_w3", enc["hidden_dim"], ed)
        lin(f"{p}.feed_forward_w2", ed, enc["hidden_dim"], bias)
    t["encoder.transformer_norm.weight"] = (f32, (ed,))
    lin("encoder.audio_language_projection_0", dim, ed * enc["downsample_factor"])
    lin("encoder.audio_language_projection_2", dim, dim)
    lin("decoder.tok_embeddings", dec["vocab_size"], dim)
    q_dim, kv_dim = dec["n_heads"] * dec["head_dim"], dec["n_kv_heads"] * dec["head_dim"]
    for i in range(dec["n_layers"]):
        p = f"decoder.layers.{i}"
        t[f"{p}.attention_norm.weight"] = (f32, (dim,))
        lin(f"{p}.attention.wq", q_dim, dim)
        lin(f"{p}.attention.wk", kv_dim, dim)
        lin(f"{p}.attention.wv", kv_dim, dim)
        lin(f"{p}.attention.wo", dim, q_dim)
        t[f"{p}.ffn_norm.weight"] = (f32, (dim,))
        if dec.get("ada_rms_norm_t_cond", True):
            cond = dec["ada_rms_norm_t_cond_dim"]
            lin(f"{p}.ada_rms_norm_t_cond.ada_down", cond, dim)
            lin(f"{p}.ada_rms_norm_t_cond.ada_up", dim, cond)
        lin(f"{p}.feed_forward_w1", dec["hidden_dim"], dim)
        lin(f"{p}.feed_forward_w3", dec["hidden_dim"], dim)
        lin(f"{p}.feed_forward_w2", dim, dec["hidden_dim"])
    t["decoder.norm.weight"] = (f32, (dim,))
    return t


VOXTRAL_SOURCES = (
    ("antirez/voxtral.c MODEL.md (tensor names and shapes of consolidated.safetensors; "
    "8.86 GB, all BF16, 711 tensors)"),
    "/work/shared/MODEL-NOTES.md (params.json numbers)",
    ("Blaizzy/mlx-audio stt/models/voxtral_realtime: voxtral_realtime.py Model.sanitize and "
    "model_quant_predicate at 950d0593 (Feb 2026: norm, ada_rms_norm, tok_embeddings, "
    "conv_layers, audio_language_projection skipped), encoder.py/decoder.py module order, "
    "convert.py at 57ff12d4 (params_to_config; norms and biases kept float32); mlx_audio/convert.py "
    "(mlx_lm save_model: shards of at most 5 GiB + model.safetensors.index.json)"),
    ("sebastian-software/cuttledoc-rs spikes/voxtral-realtime-mlx-reference/model-manifest.json "
    "and voxtral MLX shim (pinned mlx-community/Voxtral-Mini-4B-Realtime-2602-4bit@fdebf7b2: "
    "model.safetensors 3,133,798,126 B, index 118,632 B, 1,523 tensors = 300 F32 + 817 F16 + "
    "406 U32, 406 affine 4-bit modules, tok_embeddings [131072, 3072] and adapter float; "
    "source parameter_count 4,429,679,360)"),
    ("T0mSIlver/localvoxtral scripts/mac/convert-qhead-checkpoint.py and Blaizzy/mlx-audio-swift "
    "PR #232 (the mlx-community conversion ships decoder.tok_embeddings.weight unquantized fp16, "
    "768 MiB, group 64 / 4 bits)"),
    "hf page mlx-community/Voxtral-Mini-4B-Realtime-2602-4bit (tensor types F32, F16, U32)",
    "this repo: tests/asr/voxtral/conftest.py (voxtral_dirs), asr/voxtral/weights.py",
)


# --- Qwen3-ASR ---------------------------------------------------------------------------------


def qwen3_asr_config(size: str) -> dict:
    """config.json of Qwen/Qwen3-ASR-0.6B / -1.7B (structure as in this repo's
    tests/asr/qwen3/conftest.py original_config, numbers from the sources below)."""
    audio = {"0.6B": {"d_model": 896, "encoder_layers": 18, "encoder_attention_heads": 14, "encoder_ffn_dim": 3584,
                          "output_dim": 1024},
             "1.7B": {"d_model": 1024, "encoder_layers": 24, "encoder_attention_heads": 16, "encoder_ffn_dim": 4096,
                          "output_dim": 2048}}[size]  # fmt: skip
    text = {"0.6B": {"hidden_size": 1024, "intermediate_size": 3072},
            "1.7B": {"hidden_size": 2048, "intermediate_size": 6144}}[size]  # fmt: skip
    return {
        "architectures": ["Qwen3ASRForConditionalGeneration"],
        "model_type": "qwen3_asr",
        "thinker_config": {
            "model_type": "qwen3_asr_thinker",
            "audio_config": {
                "model_type": "qwen3_asr_audio_encoder", "num_mel_bins": 128, **audio,
                "downsample_hidden_size": 480, "n_window": 50, "n_window_infer": 800,
                "max_source_positions": 1500, "conv_chunksize": 500, "activation_function": "gelu",
                "scale_embedding": False,
            },
            "text_config": {
                "model_type": "qwen3_asr_text", "vocab_size": 151936, **text, "num_hidden_layers": 28,
                "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128, "hidden_act": "silu",
                "max_position_embeddings": 65536, "rms_norm_eps": 1e-6, "rope_theta": 1_000_000.0,
                "tie_word_embeddings": True, "attention_bias": False,
                "rope_scaling": {"interleaved": True, "mrope_interleaved": True, "mrope_section": [24, 20, 20],
                                 "rope_type": "default", "type": "default"},
            },
            "audio_token_id": 151676, "audio_start_token_id": 151669, "audio_end_token_id": 151670,
        },
        "torch_dtype": "bfloat16",
    }  # fmt: skip


def _conv_out_len(n: int, convs: int = 3) -> int:
    for _ in range(convs):
        n = (n - 1) // 2 + 1
    return n


def _qwen3_audio(t: dict, prefix: str, a: dict, dtype: str, mlx: bool) -> None:
    d, c = a["d_model"], a["downsample_hidden_size"]
    for i in range(a["encoder_layers"]):
        p = f"{prefix}layers.{i}"
        for proj in ("k_proj", "v_proj", "q_proj", "out_proj"):
            _linear(t, f"{p}.self_attn.{proj}", d, d, dtype, bias=True)
        t[f"{p}.self_attn_layer_norm.weight"] = (dtype, (d,))
        t[f"{p}.self_attn_layer_norm.bias"] = (dtype, (d,))
        _linear(t, f"{p}.fc1", a["encoder_ffn_dim"], d, dtype, bias=True)
        _linear(t, f"{p}.fc2", d, a["encoder_ffn_dim"], dtype, bias=True)
        t[f"{p}.final_layer_norm.weight"] = (dtype, (d,))
        t[f"{p}.final_layer_norm.bias"] = (dtype, (d,))
    t[f"{prefix}ln_post.weight"] = (dtype, (d,))
    t[f"{prefix}ln_post.bias"] = (dtype, (d,))
    for i, cin in ((1, 1), (2, c), (3, c)):
        # torch Conv2d (out, in, kh, kw); mlx-audio's sanitize moves it to (out, kh, kw, in).
        t[f"{prefix}conv2d{i}.weight"] = (dtype, (c, 3, 3, cin) if mlx else (c, cin, 3, 3))
        t[f"{prefix}conv2d{i}.bias"] = (dtype, (c,))
    _linear(t, f"{prefix}conv_out", d, c * _conv_out_len(a["num_mel_bins"]), dtype)
    _linear(t, f"{prefix}proj1", d, d, dtype, bias=True)
    _linear(t, f"{prefix}proj2", a["output_dim"], d, dtype, bias=True)


def _qwen3_text(t: dict, prefix: str, x: dict, dtype: str, q: dict | None) -> None:
    h, hd = x["hidden_size"], x["head_dim"]
    qd, kvd, ffn = x["num_attention_heads"] * hd, x["num_key_value_heads"] * hd, x["intermediate_size"]
    _linear(t, f"{prefix}embed_tokens", x["vocab_size"], h, dtype, q=_quantizable(q, h))
    for i in range(x["num_hidden_layers"]):
        p = f"{prefix}layers.{i}"
        _linear(t, f"{p}.self_attn.q_proj", qd, h, dtype, q=_quantizable(q, h))
        _linear(t, f"{p}.self_attn.k_proj", kvd, h, dtype, q=_quantizable(q, h))
        _linear(t, f"{p}.self_attn.v_proj", kvd, h, dtype, q=_quantizable(q, h))
        _linear(t, f"{p}.self_attn.o_proj", h, qd, dtype, q=_quantizable(q, qd))
        t[f"{p}.self_attn.q_norm.weight"] = (dtype, (hd,))
        t[f"{p}.self_attn.k_norm.weight"] = (dtype, (hd,))
        _linear(t, f"{p}.mlp.gate_proj", ffn, h, dtype, q=_quantizable(q, h))
        _linear(t, f"{p}.mlp.up_proj", ffn, h, dtype, q=_quantizable(q, h))
        _linear(t, f"{p}.mlp.down_proj", h, ffn, dtype, q=_quantizable(q, ffn))
        t[f"{p}.input_layernorm.weight"] = (dtype, (h,))
        t[f"{p}.post_attention_layernorm.weight"] = (dtype, (h,))
    t[f"{prefix}norm.weight"] = (dtype, (h,))


def qwen3_asr_original_tensors(config: dict, dtype: str = "BF16") -> dict[str, Tensor]:
    """The original repos' state dict (QwenLM/Qwen3-ASR modeling_qwen3_asr.py order: audio
    tower, text model, head). The tied `thinker.lm_head.weight` IS stored (antirez/qwen-asr
    MODEL.md; the file sizes there only add up with it); the sinusoidal positions are a
    non-persistent buffer and are not."""
    th = config.get("thinker_config", config)
    t: dict[str, Tensor] = {}
    _qwen3_audio(t, "thinker.audio_tower.", th["audio_config"], dtype, mlx=False)
    _qwen3_text(t, "thinker.model.", th["text_config"], dtype, None)
    x = th["text_config"]
    _linear(t, "thinker.lm_head", x["vocab_size"], x["hidden_size"], dtype)
    return t


def qwen3_asr_mlx_tensors(config: dict, dtype: str = "BF16") -> dict[str, Tensor]:
    """An mlx-audio conversion (mlx-community/Qwen3-ASR-*): `thinker.` dropped, the tied head
    dropped, convs in MLX layout, the decoder's Linear layers and embedding quantized (its
    model_quant_predicate leaves `audio_tower` float), everything float in bf16."""
    th = config.get("thinker_config", config)
    q = config.get("quantization")
    t: dict[str, Tensor] = {}
    _qwen3_audio(t, "audio_tower.", th["audio_config"], dtype, mlx=True)
    _qwen3_text(t, "model.", th["text_config"], dtype, q)
    return t


QWEN3_SOURCES = (
    ("antirez/qwen-asr MODEL.md (tensor names and shapes; 0.6B: single model.safetensors BF16; "
    "1.7B: model-00001/00002-of-00002.safetensors + index, BF16; tied head stored as "
    "thinker.lm_head.weight) and README.md (safetensors files 1.747 GiB / 4.376 GiB); "
    "download_model.sh (file lists)"),
    ("QwenLM/Qwen3-ASR qwen_asr/core/transformers_backend/modeling_qwen3_asr.py (module order, "
    "non-persistent positional buffer) and configuration_qwen3_asr.py (field names)"),
    ("ivan-digital/qwen3-asr-swift docs/asr-model.md and mlx-audio mega_asr tests (1.7B sizes: audio "
    "1024 x 24 layers, 16 heads, ffn 4096, output 2048; text 2048, ffn 6144, 28 layers)"),
    ("Blaizzy/mlx-audio stt/models/qwen3_asr/qwen3_asr.py (sanitize: drop thinker. and lm_head, "
    "conv2d to (out, kh, kw, in); model_quant_predicate: not audio_tower)"),
    ("sebastian-software/cuttledoc-rs spikes/qwen3-mlx-direct/model-manifest.json and qwen3 MLX "
    "shim (pinned mlx-community/Qwen3-ASR-0.6B-8bit@89e96d92: model.safetensors 1,006,229,426 B, "
    "index 71,815 B, 1,005 tensors = 808 BF16 + 197 U32, 197 affine 8-bit modules incl. "
    "model.embed_tokens; audio tower float)"),
    "/work/shared/MODEL-NOTES.md (0.6B config numbers, token ids)",
    "this repo: tests/asr/qwen3/conftest.py, asr/qwen3/weights.py",
)


# --- Llama (mlx-lm 4-bit conversions) ----------------------------------------------------------


def llama_config(hidden: int, layers: int, heads: int, kv_heads: int, ffn: int, tie: bool, rope_factor: float,
                 head_dim: int | None, quantization: dict | None) -> dict:
    """The meta-llama config.json (+ mlx-lm's `quantization`), sizes from the model cards."""
    config = {
        "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
        "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "hidden_act": "silu",
        "hidden_size": hidden, "initializer_range": 0.02, "intermediate_size": ffn,
        "max_position_embeddings": 131072, "mlp_bias": False, "model_type": "llama",
        "num_attention_heads": heads, "num_hidden_layers": layers, "num_key_value_heads": kv_heads,
        "pretraining_tp": 1, "rms_norm_eps": 1e-05,
        "rope_scaling": {"factor": rope_factor, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                         "original_max_position_embeddings": 8192, "rope_type": "llama3"},
        "rope_theta": 500000.0, "tie_word_embeddings": tie, "torch_dtype": "bfloat16", "use_cache": True,
        "vocab_size": 128256,
    }  # fmt: skip
    if head_dim is not None:
        config["head_dim"] = head_dim
    if quantization:
        config["quantization"] = dict(quantization)
    return dict(sorted(config.items()))


def llama_mlx_tensors(config: dict, dtype: str = "F16") -> dict[str, Tensor]:
    """mlx_lm.models.llama.Model's parameters after mlx-lm's quantize_model (every Linear and
    the embedding quantized; norms float), in the model's order; `lm_head` only when untied."""
    q = config.get("quantization")
    h, heads = config["hidden_size"], config["num_attention_heads"]
    hd = config.get("head_dim") or h // heads
    qd, kvd, ffn = heads * hd, config["num_key_value_heads"] * hd, config["intermediate_size"]
    t: dict[str, Tensor] = {}
    _linear(t, "model.embed_tokens", config["vocab_size"], h, dtype, q=_quantizable(q, h))
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}"
        _linear(t, f"{p}.self_attn.q_proj", qd, h, dtype, q=_quantizable(q, h))
        _linear(t, f"{p}.self_attn.k_proj", kvd, h, dtype, q=_quantizable(q, h))
        _linear(t, f"{p}.self_attn.v_proj", kvd, h, dtype, q=_quantizable(q, h))
        _linear(t, f"{p}.self_attn.o_proj", h, qd, dtype, q=_quantizable(q, qd))
        _linear(t, f"{p}.mlp.gate_proj", ffn, h, dtype, q=_quantizable(q, h))
        _linear(t, f"{p}.mlp.down_proj", h, ffn, dtype, q=_quantizable(q, ffn))
        _linear(t, f"{p}.mlp.up_proj", ffn, h, dtype, q=_quantizable(q, h))
        t[f"{p}.input_layernorm.weight"] = (dtype, (h,))
        t[f"{p}.post_attention_layernorm.weight"] = (dtype, (h,))
    t["model.norm.weight"] = (dtype, (h,))
    if not config.get("tie_word_embeddings", True):
        _linear(t, "lm_head", config["vocab_size"], h, dtype, q=_quantizable(q, h))
    return t


LLAMA_SOURCES = (
    ("meta-llama model cards (Llama 3.2: 1B (1.23B), 3B (3.21B) parameters, shared embeddings; "
    "Llama 3.1 8B) and their config.json fields; sizes also in the brief and this repo's "
    "tests/rewrite/tiny_llm.py LLAMA_3_2_1B"),
    ("ml-explore/mlx-lm models/llama.py (parameter names; lm_head only when untied) and utils.py "
    "(quantize_model: every Linear/Embedding whose input splits into groups; save_model: one "
    "model.safetensors under 5 GiB + model.safetensors.index.json; save_config)"),
    ("ml-explore/mlx-examples mlx_lm convert of 2024 (`dtype = mx.float16 if quantize else ...`, "
    "PR #240 'Force fp16 for non-quantized weights in quantized models'): float tensors of the "
    "2024 4-bit conversions are float16"),
    ("mlx-community/Llama-3.2-3B-Instruct-4bit@7f0dc925: model.safetensors 1,807,496,278 B (HF "
    "metadata quoted in a public research note; header ~72.8 kB for 648 tensors)"),
)


# --- spec builders (functions of a config, so the tests can make tiny ones) ---------------------


def mlx_repo_spec(repo: str, config: dict, tensors: dict[str, Tensor], sources: tuple[str, ...],
                  total_parameters: bool = True, max_shard_bytes: int = MLX_MAX_SHARD_BYTES,
                  unverified: tuple[str, ...] = (), published: dict | None = None) -> CheckpointSpec:
    """A repo saved by mlx_lm.save_model: shards of at most 5 GiB and always an index (with
    `total_parameters` since 2025; the 2024 mlx-lm wrote `total_size` only)."""
    shards = mlx_shards(tensors, max_shard_bytes)
    spec = CheckpointSpec(name=repo, repo=repo, files={"config.json": config}, shards=shards, sources=sources,
                          metadata={"format": "mlx"}, header_style="mlx", unverified=unverified,
                          published=published or {})  # fmt: skip
    spec.files[INDEX_FILE] = index_for(shards, parameter_count(spec) if total_parameters else None)
    return spec


def voxtral_original_spec(repo: str, params: dict, dtype: str = "BF16", **kw) -> CheckpointSpec:
    """Mistral's layout: params.json + consolidated.safetensors."""
    return CheckpointSpec(name=repo, repo=repo, files={"params.json": params},
                          shards={"consolidated.safetensors": voxtral_original_tensors(params, dtype)},
                          sources=VOXTRAL_SOURCES, metadata=None, header_style="pt", **kw)  # fmt: skip


def voxtral_mlx_spec(repo: str, config: dict, float_dtype: str = "F16", **kw) -> CheckpointSpec:
    return mlx_repo_spec(repo, config, voxtral_mlx_tensors(config, float_dtype), VOXTRAL_SOURCES, **kw)


def qwen3_asr_original_spec(repo: str, config: dict, dtype: str = "BF16", max_shard_bytes: int | None = None,
                            **kw) -> CheckpointSpec:
    """transformers save_pretrained: one model.safetensors, or shards + index."""
    tensors = qwen3_asr_original_tensors(config, dtype)
    shards = hf_shards(tensors, max_shard_bytes) if max_shard_bytes else {"model.safetensors": tensors}
    files = {"config.json": config}
    if len(shards) > 1:
        files[INDEX_FILE] = index_for(shards)
    return CheckpointSpec(name=repo, repo=repo, files=files, shards=shards, sources=QWEN3_SOURCES,
                          metadata={"format": "pt"}, header_style="pt", **kw)  # fmt: skip


def with_quantization(config: dict, bits: int, group_size: int = 64, mode: str | None = "affine") -> dict:
    """The config with mlx-lm's `quantization` (and `quantization_config`) added, keys sorted."""
    q = {"group_size": group_size, "bits": bits, **({"mode": mode} if mode else {})}
    return dict(sorted({**config, "quantization": q, "quantization_config": dict(q)}.items()))


def qwen3_asr_mlx_spec(repo: str, config: dict, dtype: str = "BF16", **kw) -> CheckpointSpec:
    return mlx_repo_spec(repo, config, qwen3_asr_mlx_tensors(config, dtype), QWEN3_SOURCES, **kw)


def llama_mlx_spec(repo: str, config: dict, dtype: str = "F16", **kw) -> CheckpointSpec:
    return mlx_repo_spec(repo, config, llama_mlx_tensors(config, dtype), LLAMA_SOURCES, **kw)


# --- the catalogue ----------------------------------------------------------------------------

_WHISPER_CONFIG_NOTE = ("config.json is reconstructed from the architecture numbers; fields other than the "
                        "WhisperConfig sizes and token ids are not copied from the repo")
_WHISPER_F32_NOTE = ("F32 assumed (OpenAI published these checkpoints in float32); neither a header nor the "
                     "file size was confirmed here")
_QWEN3_CONFIG_NOTE = ("config.json is reconstructed: the sizes and token ids are confirmed, the other "
                      "fields follow this repo's test fixture")


def _build_specs() -> dict[str, CheckpointSpec]:
    specs: list[CheckpointSpec] = []

    # Whisper: the openai repos, transformers layout, one model.safetensors each.
    specs.append(whisper_spec(
        "openai/whisper-base.en", whisper_config("openai/whisper-base.en", 512, (6, 6), 8, 51864, 80, "float32"),
        "F32", published={"parameters": 74e6},
        unverified=(_WHISPER_F32_NOTE,
                    _WHISPER_CONFIG_NOTE)))
    specs.append(whisper_spec(
        "openai/whisper-small.en",
        whisper_config("openai/whisper-small.en", 768, (12, 12), 12, 51864, 80, "float32"),
        "F32", published={"parameters": 244e6},
        unverified=(_WHISPER_F32_NOTE,
                    _WHISPER_CONFIG_NOTE)))
    specs.append(whisper_spec(
        "openai/whisper-large-v3-turbo",
        whisper_config("openai/whisper-large-v3-turbo", 1280, (32, 4), 20, 51866, 128, "float16"),
        "F16", published={"parameters": 809e6},
        unverified=(("F16 inferred from the quoted ~1.62 GB safetensors for 809 M parameters (drose.io summary of "
                     "the model card); no header read"),
                    _WHISPER_CONFIG_NOTE)))

    # Voxtral Mini 4B Realtime: the original and mlx-community's two conversions.
    specs.append(voxtral_original_spec(
        "mistralai/Voxtral-Mini-4B-Realtime-2602", VOXTRAL_PARAMS,
        unverified=("whether consolidated.safetensors carries __metadata__ (none written here)",
                    "params.json fields other than the sizes follow this repo's test fixture",
                    "the repo's transformers-layout files (config.json + model weights) are not in this spec"),
        published={"tensors": 711, "bytes": 8.86e9, "parameters": 4_429_679_360}))
    specs.append(voxtral_mlx_spec(
        "mlx-community/Voxtral-Mini-4B-Realtime-2602-4bit", voxtral_mlx_config(VOXTRAL_PARAMS)
        | {"quantization": {"group_size": 64, "bits": 4, "mode": "affine"},
           "quantization_config": {"group_size": 64, "bits": 4, "mode": "affine"}},
        unverified=(("config.json: written as mlx-lm writes it, it has the real file's 1,513 bytes; its "
                    "content was not compared"),
                    "header data order (mx.save_safetensors writes a hash map's order; sorted names here)"),
        published={"file_bytes": {"model.safetensors": 3_133_798_126}, "index_bytes": 118_632,
                   "config_bytes": 1_513, "tensors": 1523, "dtypes": {"F32": 300, "F16": 817, "U32": 406},
                   "quantized_modules": 406}))
    specs.append(voxtral_mlx_spec(
        "mlx-community/Voxtral-Mini-4B-Realtime-2602-fp16", voxtral_mlx_config(VOXTRAL_PARAMS),
        unverified=(("two shards + index is what mlx_lm save_model makes of 8.87 GB in mlx-audio's parameter "
                    "order; the shard boundary and the mlx-audio names are inferred from the 4-bit sibling"),
                    ("float32 norms/biases/AdaRMSNorm as in the 4-bit sibling (consistent with the quoted "
                    "8.87 GB, vs 8.86 GB were everything 16-bit)")),
        published={"bytes": 8.87e9}))

    # Qwen3-ASR: originals (transformers layout) and mlx-community's 8/4-bit conversions.
    for size in ("0.6B", "1.7B"):
        config = qwen3_asr_config(size)
        sharded = size == "1.7B"
        specs.append(qwen3_asr_original_spec(
            f"Qwen/Qwen3-ASR-{size}", config, max_shard_bytes=4 * 10**9 if sharded else None,
            unverified=(_QWEN3_CONFIG_NOTE,) + ((
                ("two shards are confirmed; the split point assumes save_pretrained with max_shard_size "
                "4 GB over modeling_qwen3_asr.py's parameter order"),) if sharded else ()),
            published={"file_gib": 1.747 if size == "0.6B" else 4.376}))
        for bits in (8, 4):
            pinned = (size, bits) == ("0.6B", 8)
            specs.append(qwen3_asr_mlx_spec(
                f"mlx-community/Qwen3-ASR-{size}-{bits}bit", with_quantization(config, bits),
                unverified=("config.json content (the real 0.6B-8bit file is 7,187 B)",) + (() if pinned else (
                    (f"the {size}-{bits}bit layout is inferred from the confirmed 0.6B-8bit one (same "
                    "converter), not read from the repo"),)),
                published={"file_bytes": {"model.safetensors": 1_006_229_426}, "index_bytes": 71_815,
                           "tensors": 1005, "dtypes": {"BF16": 808, "U32": 197},
                           "quantized_modules": 197} if pinned else {}))

    # Rewrite LLMs: mlx-lm 4-bit, group 64 (2024 conversions: float16, no "mode", index without
    # total_parameters).
    llama_notes = (("float dtype F16 (the 2024 mlx-lm forced float16 when quantizing); BF16 if the repo was "
                   "re-converted later; the sizes are the same either way"),
                   "config.json is the meta-llama config + quantization, not a copy of the repo's file")
    q4 = {"group_size": 64, "bits": 4}
    specs.append(llama_mlx_spec(
        "mlx-community/Llama-3.2-1B-Instruct-4bit",
        llama_config(2048, 16, 32, 8, 8192, True, 32.0, 64, q4), total_parameters=False,
        unverified=llama_notes, published={"parameters": 1.24e9}))
    specs.append(llama_mlx_spec(
        "mlx-community/Llama-3.2-3B-Instruct-4bit",
        llama_config(3072, 28, 24, 8, 8192, True, 32.0, 128, q4), total_parameters=False,
        unverified=llama_notes,
        published={"parameters": 3.21e9, "file_bytes": {"model.safetensors": 1_807_496_278}}))
    specs.append(llama_mlx_spec(
        "mlx-community/Meta-Llama-3.1-8B-Instruct-4bit",
        llama_config(4096, 32, 32, 8, 14336, False, 8.0, None, q4), total_parameters=False,
        unverified=llama_notes, published={"parameters": 8.03e9}))
    return {s.name: s for s in specs}


SPECS: dict[str, CheckpointSpec] = _build_specs()


def spec_summary(spec: CheckpointSpec) -> dict[str, Any]:
    """Counts for reports: parameters, data bytes, tensors, dtypes, files."""
    return {
        "parameters": parameter_count(spec), "stored_bytes": stored_bytes(spec), "tensors": tensor_count(spec),
        "dtypes": dtype_counts(spec), "files": sorted([*spec.files, *spec.shards]),
    }  # fmt: skip
