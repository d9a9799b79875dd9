"""GGUF files (llama.cpp's single-file format) as mlx-lm models.

`mx.load(path, return_metadata=True)` reads the tensors and the metadata. Q4_0, Q4_1 and
Q8_0 tensors come back as MLX affine-quantized arrays (group size 32: `weight` packed in
uint32, `scales`, `biases`) and become `nn.QuantizedLinear`/`QuantizedEmbedding` as they
are; float tensors stay float. mx.load (mlx 0.32) expands Q2_K and Q6_K to float16
correctly, but its Q4_K expansion disagrees with llama.cpp's wherever a block's sub-scales
differ (silently wrong weights), and Q3_K, Q5_K, Q5_0, Q5_1 and the IQ types do not load:
files holding any of those are refused in one line, before anything is read.

The tensor names map onto mlx-lm's own `llama`, `qwen2` and `qwen3` classes, configured from
the metadata. llama.cpp's converter reorders the rows of each head of `attn_q`/`attn_k` for
the `llama` architecture (pairs interleaved, for its rotary kernel); the reorder is undone
here, which is exact for packed rows too since a quantization group never spans rows.
"""

from __future__ import annotations

import mmap
import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewrite.base import RewriteError

MAGIC = b"GGUF"
ARCHITECTURES = ("llama", "qwen2", "qwen3")
# ggml type id -> name (llama.cpp's ggml.h); only the ones a user may meet are named.
GGML_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1", 10: "Q2_K",
    11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K", 16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS",
    19: "IQ1_S", 20: "IQ4_NL", 21: "IQ3_S", 22: "IQ2_S", 23: "IQ4_XS", 24: "I8", 25: "I16", 26: "I32",
    27: "I64", 28: "F64", 29: "IQ1_M", 30: "BF16", 34: "TQ1_0", 35: "TQ2_0", 39: "MXFP4",
}
QUANTIZED_BITS = {"Q4_0": 4, "Q4_1": 4, "Q8_0": 8}  # stay packed: MLX affine, group size 32
GROUP_SIZE = 32
EXPANDED = {"F32", "F16", "BF16", "Q2_K", "Q6_K"}  # read as float (checked against llama.cpp's decoding)
LOADABLE = set(QUANTIZED_BITS) | EXPANDED

# GGUF metadata value types: id -> struct format (8: string, 9: array).
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]  # as GGUF lists it: the fastest-varying dimension first
    type: str  # "Q4_1", "F32", ...


@dataclass(frozen=True)
class GGUFHeader:
    """A GGUF file's metadata and tensor list, read without its tensor data. Arrays in the
    metadata other than the short ones are kept as their length (`ArrayLength`)."""

    path: Path
    version: int
    metadata: dict[str, Any]
    tensors: dict[str, TensorInfo]

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", "?"))

    def tensor_types(self) -> Counter:
        return Counter(t.type for t in self.tensors.values())


class ArrayLength(int):
    """A metadata array that was skipped: its length."""


def is_gguf(path: str | Path) -> bool:
    """Whether `path` is a file that starts like a GGUF."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == MAGIC
    except OSError:
        return False


def read_header(path: str | Path, short_arrays: int = 64) -> GGUFHeader:
    """The header of a GGUF file; RewriteError (one line) when it is not one or is cut off."""
    path = Path(path)
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            return _parse_header(path, buf, short_arrays)
    except (OSError, ValueError) as e:  # an empty file cannot be mapped
        raise RewriteError(f"cannot read {path}: {e}") from None
    except struct.error:
        raise RewriteError(f"{path} is cut off: its GGUF header ends early") from None


def _parse_header(path: Path, buf, short_arrays: int) -> GGUFHeader:
    if buf[:4] != MAGIC:
        raise RewriteError(f"{path} is not a GGUF file (it does not start with 'GGUF')")
    version, n_tensors, n_kv = struct.unpack_from("<IQQ", buf, 4)
    if version < 2:
        raise RewriteError(f"{path} is GGUF version {version}; only versions 2 and 3 are read")
    pos = 24

    def string() -> str:
        nonlocal pos
        (n,) = struct.unpack_from("<Q", buf, pos)
        pos += 8 + n
        return bytes(buf[pos - n:pos]).decode("utf-8", errors="replace")

    def value(kind: int, keep: bool = True) -> Any:
        nonlocal pos
        if kind in _SCALARS:
            fmt = _SCALARS[kind]
            (v,) = struct.unpack_from(fmt, buf, pos)
            pos += struct.calcsize(fmt)
            return v
        if kind == 8:
            return string()
        if kind == 9:
            item, count = struct.unpack_from("<IQ", buf, pos)
            pos += 12
            if item in _SCALARS and not (keep and count <= short_arrays):
                pos += count * struct.calcsize(_SCALARS[item])  # fixed size: skipped in one step
                return ArrayLength(count)
            out = [value(item, keep and count <= short_arrays) for _ in range(count)]
            return out if keep and count <= short_arrays else ArrayLength(count)
        raise RewriteError(f"{path} has metadata of unknown type {kind}: not a GGUF this reader knows")

    metadata: dict[str, Any] = {}
    for _ in range(n_kv):
        key = string()
        (kind,) = struct.unpack_from("<I", buf, pos)
        pos += 4
        metadata[key] = value(kind)
    tensors: dict[str, TensorInfo] = {}
    for _ in range(n_tensors):
        name = string()
        (dims,) = struct.unpack_from("<I", buf, pos)
        shape = struct.unpack_from(f"<{dims}Q", buf, pos + 4)
        kind, _offset = struct.unpack_from("<IQ", buf, pos + 4 + 8 * dims)
        pos += 4 + 8 * dims + 12
        tensors[name] = TensorInfo(name, tuple(shape), GGML_TYPES.get(kind, f"type {kind}"))
    return GGUFHeader(path, version, metadata, tensors)


def check_loadable(header: GGUFHeader) -> None:
    """RewriteError (one line) unless the architecture and every tensor type load here."""
    arch = header.architecture
    if arch not in ARCHITECTURES:
        raise RewriteError(f"{header.path.name} is a {arch} model; GGUF files load for "
                           f"{', '.join(ARCHITECTURES)} only")
    bad = sorted({t.type for t in header.tensors.values()} - LOADABLE)
    if bad:
        count = sum(1 for t in header.tensors.values() if t.type in bad)
        raise RewriteError(f"{header.path.name} holds {', '.join(bad)} tensors ({count}), which MLX's GGUF reader "
                           f"cannot load correctly; use a Q4_0, Q4_1, Q8_0, F16 or F32 file of this model")


# --- the model ---------------------------------------------------------------------------


def model_config(metadata: dict[str, Any], tensor_names: set[str]) -> dict[str, Any]:
    """An mlx-lm `config.json` for the model the metadata describes."""
    arch = str(metadata["general.architecture"])

    def get(key: str, default: Any = None) -> Any:
        value = metadata.get(f"{arch}.{key}", default)
        return value.item() if hasattr(value, "item") else value

    heads = int(get("attention.head_count"))
    hidden = int(get("embedding_length"))
    tokens = metadata.get("tokenizer.ggml.tokens")
    vocab = get("vocab_size") or (len(tokens) if isinstance(tokens, list) else tokens)
    config = {
        "model_type": arch,
        "hidden_size": hidden,
        "num_hidden_layers": int(get("block_count")),
        "intermediate_size": int(get("feed_forward_length")),
        "num_attention_heads": heads,
        "num_key_value_heads": int(get("attention.head_count_kv", heads)),
        "head_dim": int(get("attention.key_length") or hidden // heads),
        "rms_norm_eps": float(get("attention.layer_norm_rms_epsilon", 1e-6)),
        "vocab_size": int(vocab),
        "rope_theta": float(get("rope.freq_base", 1_000_000.0 if arch.startswith("qwen") else 10_000.0)),
        "max_position_embeddings": int(get("context_length", 4096)),
        "tie_word_embeddings": "output.weight" not in tensor_names,
    }
    if arch == "llama":
        config["attention_bias"] = "blk.0.attn_q.bias" in tensor_names
    eos = metadata.get("tokenizer.ggml.eos_token_id")
    if eos is not None:
        config["eos_token_id"] = int(eos.item() if hasattr(eos, "item") else eos)
    return config


_LAYER_NAMES = {
    "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "attn_q_norm": "self_attn.q_norm", "attn_k_norm": "self_attn.k_norm",
    "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
}
_TOP_NAMES = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}


def mlx_name(name: str) -> str | None:
    """mlx-lm's name for a GGUF tensor name (`.scales`/`.biases` of packed tensors kept);
    None for tensors the model does not use (`rope_freqs`, read separately)."""
    stem, _, suffix = name.rpartition(".")
    if stem.startswith("blk."):
        _, layer, part = stem.split(".", 2)
        if part not in _LAYER_NAMES:
            raise RewriteError(f"unknown GGUF tensor {name}: not a layer of a llama, qwen2 or qwen3 model")
        return f"model.layers.{layer}.{_LAYER_NAMES[part]}.{suffix}"
    if stem == "rope_freqs":
        return None
    if stem not in _TOP_NAMES:
        raise RewriteError(f"unknown GGUF tensor {name}: not part of a llama, qwen2 or qwen3 model")
    return f"{_TOP_NAMES[stem]}.{suffix}"


def unpermute_rows(w, heads: int):
    """Undo llama.cpp's per-head row order for `attn_q`/`attn_k` (rotary pairs interleaved,
    row 2j+h of a head) back to the checkpoint's (halves: row h*d/2+j)."""
    rows = w.shape[0]
    half = rows // heads // 2
    return w.reshape(heads, half, 2, *w.shape[1:]).swapaxes(1, 2).reshape(rows, *w.shape[1:])


def mlx_weights(gguf_weights: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """GGUF tensors under mlx-lm's names; llama's q/k rows in the checkpoint's order."""
    out = {}
    for name, value in gguf_weights.items():
        target = mlx_name(name)
        if target is None:
            continue
        if config["model_type"] == "llama" and (".attn_q." in name or ".attn_k." in name):
            heads = config["num_attention_heads"] if ".attn_q." in name else config["num_key_value_heads"]
            value = unpermute_rows(value, heads)
        out[target] = value
    return out


def quantization(header: GGUFHeader) -> dict[str, Any] | None:
    """mlx-lm's `quantization` config for the packed tensors: the most common bits, and a
    per-layer entry for each layer packed with other bits (None: nothing packed)."""
    packed = {mlx_name(n).removesuffix(".weight"): QUANTIZED_BITS[t.type]
              for n, t in header.tensors.items() if t.type in QUANTIZED_BITS and n.endswith(".weight")}
    if not packed:
        return None
    bits = Counter(packed.values()).most_common(1)[0][0]
    config: dict[str, Any] = {"group_size": GROUP_SIZE, "bits": bits, "mode": "affine"}
    config.update({layer: {"group_size": GROUP_SIZE, "bits": b, "mode": "affine"}
                   for layer, b in packed.items() if b != bits})
    return config


def load_model(path: str | Path) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """(mlx-lm model, its config (with `quantization` where packed), the GGUF metadata) of a
    GGUF file; RewriteError in one line for anything that cannot load."""
    import importlib

    import mlx.core as mx
    import mlx.nn as nn

    header = read_header(path)
    check_loadable(header)
    try:
        gguf_weights, metadata = mx.load(str(path), return_metadata=True)
    except Exception as e:  # RuntimeError "[load_gguf] ..." on a cut-off or damaged file
        raise RewriteError(f"MLX cannot read {Path(path).name}: {str(e).strip().splitlines()[0]}") from None
    config = model_config(metadata, set(gguf_weights))
    quant = quantization(header)
    if quant is not None:
        config["quantization"] = quant
    arch = importlib.import_module(f"mlx_lm.models.{config['model_type']}")
    model = arch.Model(arch.ModelArgs.from_dict(config))
    weights = mlx_weights(gguf_weights, config)
    if quant is not None:
        nn.quantize(model, class_predicate=lambda p, m: _layer_quant(p, m, quant, weights))
    if "rope_freqs.weight" in gguf_weights:
        _use_rope_factors(model, config, gguf_weights["rope_freqs.weight"])
    try:
        model.load_weights(list(weights.items()), strict=True)
    except ValueError as e:
        raise RewriteError(f"{Path(path).name} does not match a {config['model_type']} model: "
                           f"{str(e).splitlines()[0]}") from None
    return model, config, metadata


def _layer_quant(path: str, module: Any, quant: dict[str, Any], weights: dict[str, Any]) -> dict | bool:
    if f"{path}.scales" not in weights or not hasattr(module, "to_quantized"):
        return False
    params = quant.get(path, quant)
    return {"group_size": params["group_size"], "bits": params["bits"], "mode": params["mode"]}


def _use_rope_factors(model: Any, config: dict[str, Any], factors: Any) -> None:
    """Llama 3 files store their RoPE scaling as per-frequency divisors (`rope_freqs`)
    instead of config values: each layer's RoPE gets those frequencies."""
    import mlx.core as mx
    import mlx.nn as nn

    dims = config["head_dim"]
    freqs = config["rope_theta"] ** (mx.arange(0, dims, 2, dtype=mx.float32) / dims) * factors.astype(mx.float32)

    class FactoredRoPE(nn.Module):
        def __init__(self):
            super().__init__()
            self._freqs = freqs

        def __call__(self, x, offset: int = 0):
            return mx.fast.rope(x, dims, traditional=False, base=None, scale=1.0, offset=offset, freqs=self._freqs)

    for layer in model.layers:
        layer.self_attn.rope = FactoredRoPE()


def tensor_summary(header: GGUFHeader) -> str:
    """"Q4_1 x 211, F32 x 61": the tensor types, most common first."""
    return ", ".join(f"{t} x {n}" for t, n in header.tensor_types().most_common())



def budget_numbers(header: GGUFHeader) -> tuple[dict[str, int], dict[str, int]]:
    """What the memory budget needs of a GGUF without loading it: the weights in
    `asr.runtime.footprint.WeightSummary`'s terms (as MLX holds them once loaded: packed
    types as uint32 words + float16 scales and biases, the rest as float16) and the shape."""
    import math

    floats = packed_bytes = packed = qparams = 0
    for t in header.tensors.values():
        n = math.prod(t.shape)
        if t.type in QUANTIZED_BITS:
            packed += n
            packed_bytes += n * QUANTIZED_BITS[t.type] // 8
            qparams += 2 * n // GROUP_SIZE
        else:
            floats += n
    weights = {"stored_bytes": header.path.stat().st_size, "float_elements": floats, "packed_bytes": packed_bytes,
               "packed_elements": packed, "qparam_elements": qparams}
    config = model_config(header.metadata, set(header.tensors))
    shape = {"layers": config["num_hidden_layers"], "heads": config["num_attention_heads"],
             "kv_heads": config["num_key_value_heads"], "head_dim": config["head_dim"], "hidden": config["hidden_size"],
             "ffn": config["intermediate_size"], "vocab": config["vocab_size"],
             "window": config["max_position_embeddings"]}
    return weights, shape
