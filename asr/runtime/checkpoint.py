"""Reading checkpoint files, shared by every family's loader: JSON configs, safetensors and
their shard indexes, float casts, MLX quantization as stored, the shape check, and the one
load sequence (`load_weights`) each family's `load_checkpoint` runs with its own reader.
Every failure is a one-line ASRError or ModelNotFoundError."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten

from asr.base import ASRError, ModelNotFoundError
from asr.runtime.footprint import expands_on_cpu


def read_json(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ASRError(f"{path} is not valid JSON: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ASRError(f"{path} is not a JSON object")
    return data


def mx_load(path: Path) -> dict[str, mx.array]:
    try:
        return dict(mx.load(str(path)))
    except Exception as e:  # MLX raises RuntimeError/ValueError with multi-line text
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ASRError(f"cannot read {path}: {why}") from None


def cast_floats(a: mx.array, dtype: mx.Dtype | None) -> mx.array:
    """`a` in `dtype` if it is a float array (quantized ints and None dtype pass through)."""
    if dtype is None or not mx.issubdtype(a.dtype, mx.floating):
        return a
    return a.astype(dtype)


def shard_files(folder: Path, index_name: str) -> list[Path]:
    """The weight files a `*.index.json` names, all present, or a one-line error."""
    index = folder / index_name
    names = sorted(set(read_json(index).get("weight_map", {}).values()))
    if not names:
        raise ASRError(f"{index} lists no weight files")
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise ModelNotFoundError(f"{folder} is incomplete: {', '.join(missing)} missing")
    return [folder / n for n in names]


def check_weights(folder: Path, expected: dict[str, tuple[int, ...]], weights: dict, model: str) -> None:
    """The weights are exactly the parameters a model needs, in the right shapes."""
    missing = sorted(expected.keys() - weights.keys())
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise ModelNotFoundError(f"{folder} is incomplete: no weight for {missing[0]}{more}")
    extra = sorted(weights.keys() - expected.keys())
    if extra:
        raise ASRError(f"{folder} has weights {model} does not use, e.g. {extra[0]}")
    for name, shape in expected.items():
        if tuple(weights[name].shape) != tuple(shape):
            got = tuple(weights[name].shape)
            raise ASRError(f"{folder}: {name} has shape {got}, the config implies {tuple(shape)}")


def float32_bytes(weights: dict[str, mx.array], quantization: dict | None) -> int:
    """Size of the weights once any MLX-quantized layers are expanded to float32."""
    bits = (quantization or {}).get("bits", 32)
    return sum(v.size * (32 // bits if k.endswith(".weight") and v.dtype == mx.uint32 else 1) * 4
               for k, v in weights.items() if not k.endswith((".scales", ".biases")))


def expand_on_cpu(weights: dict[str, mx.array], quantization: dict | None) -> bool:
    """Whether these quantized weights are expanded to float32 on the CPU (see
    `asr.runtime.footprint.expands_on_cpu`, the rule the memory budget also plans with)."""
    return expands_on_cpu(float32_bytes(weights, quantization))


def load_safetensors(folder: Path, stem: str = "model") -> dict[str, mx.array]:
    """`{stem}.safetensors`, or the shards named by `{stem}.safetensors.index.json`."""
    single, index = folder / f"{stem}.safetensors", folder / f"{stem}.safetensors.index.json"
    if single.is_file():
        return mx_load(single)
    if index.is_file():
        state: dict[str, mx.array] = {}
        for shard in shard_files(folder, index.name):
            state.update(mx_load(shard))
        return state
    raise ModelNotFoundError(f"{folder} has no weights ({single.name} or sharded with {index.name})")


def read_quantization(settings: dict, weights: dict, where: Path) -> dict | None:
    """{"group_size", "bits", "mode"} of an MLX-quantized checkpoint (None if it stores no
    `.scales`). mlx-lm writes `quantization`; some converters `quantization_config`."""
    if not any(k.endswith(".scales") for k in weights):
        return None
    q = settings.get("quantization") or settings.get("quantization_config")
    if not isinstance(q, dict):
        raise ASRError(f"{where} has quantized weights but no quantization settings")
    return {"group_size": int(q.get("group_size", 64)), "bits": int(q.get("bits", 4)),
            "mode": q.get("mode", "affine")}  # fmt: skip


def float_in_dims(model: nn.Module) -> dict[str, int]:
    """Input width of every layer with a weight, by module path (of a float model)."""
    return {k[: -len(".weight")]: v.shape[-1] for k, v in tree_flatten(model.parameters()) if k.endswith(".weight")}


def stored_quantization(weights: dict, base: str, in_dim: int) -> tuple[int, int]:
    """(group_size, bits) of one stored quantized layer, from its shapes: the packed weight
    holds in_dim * bits / 32 words per row, the scales one entry per group."""
    packed, scales = weights[base + ".weight"], weights[base + ".scales"]
    return in_dim // scales.shape[-1], packed.shape[-1] * 32 // in_dim


def quantize_as_stored(model: nn.Module, weights: dict, quantization: dict | None) -> nn.Module:
    """Make the layers the checkpoint stores quantized (those with `.scales`) quantized, each
    with its own bits and group size; others stay float. Returns the model."""
    if quantization:
        in_dims = float_in_dims(model)
        mode = quantization.get("mode", "affine")

        def stored(path: str, module: nn.Module):
            if f"{path}.scales" not in weights or not hasattr(module, "to_quantized"):
                return False
            group_size, bits = stored_quantization(weights, path, in_dims[path])
            return {"group_size": group_size, "bits": bits, "mode": mode}

        nn.quantize(model, class_predicate=stored)
    return model


def dequantize_weights(weights: dict[str, mx.array], quantization: dict, in_dims: dict[str, int],
                       dtype: mx.Dtype = mx.float32, consume: bool = False) -> dict[str, mx.array]:
    """The weights with every stored quantized layer expanded back to `dtype`. `consume`
    expands `weights` itself, layer by layer, so each packed layer is freed as soon as its
    expansion exists (the load then peaks at one layer above the expanded size, not at
    packed + expanded)."""
    w = weights if consume else dict(weights)
    mode = quantization.get("mode", "affine")
    for key in [k for k in w if k.endswith(".scales")]:
        base = key[: -len(".scales")]
        group_size, bits = stored_quantization(w, base, in_dims[base])
        w[base + ".weight"] = mx.dequantize(
            w[base + ".weight"], w.pop(key), w.pop(base + ".biases", None),
            group_size=group_size, bits=bits, mode=mode,
        ).astype(dtype)
        mx.eval(w[base + ".weight"])
    return w


def dequantized(checkpoint, model_factory, dtype: mx.Dtype = mx.float32, consume: bool = False):
    """A checkpoint dataclass (with `config`, `weights`, `quantization`) with its MLX-quantized
    layers expanded to `dtype` (the CPU's fast path); `model_factory(config)` builds the float
    model whose layer widths say how each layer was packed. `consume`: expand in place (the
    given checkpoint is spent)."""
    if not checkpoint.quantization:
        return checkpoint
    in_dims = float_in_dims(model_factory(checkpoint.config))
    weights = dequantize_weights(checkpoint.weights, checkpoint.quantization, in_dims, dtype, consume)
    return replace(checkpoint, weights=weights, quantization=None)


QUANTIZE_BITS = (2, 3, 4, 5, 6, 8)  # what mx.quantize supports in affine mode


def build_quantized(model: nn.Module, weights: dict, quantization: dict | None, quantize_bits: int | None,
                    group_size: int, quantizable) -> nn.Module:
    """`model` holding `weights`: layers the checkpoint stores quantized are made so first;
    `quantize_bits` then quantizes the float layers `quantizable(path, module, group_size)`
    picks. Evaluated, ready to run."""
    if quantize_bits is not None and quantize_bits not in QUANTIZE_BITS:
        raise ASRError(f"cannot quantize to {quantize_bits} bits; use 4 or 8")
    model = quantize_as_stored(model, weights, quantization)
    model.load_weights(list(weights.items()), strict=True)
    if quantize_bits is not None:
        nn.quantize(model, group_size=group_size, bits=quantize_bits,
                    class_predicate=lambda path, m: quantizable(path, m, group_size))
    mx.eval(model.parameters())
    return model


def check_against(folder: Path, skeleton: nn.Module, weights: dict, model: str) -> None:
    """`check_weights` against a (lazy, possibly quantized) model skeleton's parameters."""
    check_weights(folder, {k: v.shape for k, v in tree_flatten(skeleton.parameters())}, weights, model)


# --- the one loader ------------------------------------------------------------------------


@dataclass
class Read:
    """What a family makes of a folder: the layout it found, its config object, the weights
    sanitized into its model's own parameter names, the MLX quantization settings when
    stored quantized, and anything else it keeps from the folder (`extra`)."""

    layout: str
    config: Any
    weights: dict[str, mx.array]
    quantization: dict | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def load_weights(folder: str | Path, read: Callable[[Path], Read], model: Callable[[Any], nn.Module], name: str,
                 dtype: mx.Dtype | None) -> tuple[Path, Read]:
    """Load a model folder the way every family does: `read(folder)` (the family's part:
    which layout, its config, its sanitized weights), then the weights checked against
    `model(config)` — exactly its parameters, in its shapes, quantized where stored so —
    and float weights cast to `dtype` (None: as stored) one tensor at a time, so a stored copy
    is freed as soon as its cast exists. One-line ModelNotFoundError / ASRError throughout."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise ModelNotFoundError(f"no model folder at {folder}")
    r = read(folder)
    check_shapes(folder, model(r.config), r.weights, r.quantization, name)
    for key in list(r.weights):
        r.weights[key] = cast_floats(r.weights[key], dtype)
        mx.eval(r.weights[key])
    return folder, r


def check_shapes(folder: Path, model: nn.Module, weights: dict, quantization: dict | None, name: str) -> None:
    """The weights fit `model` (a lazy float skeleton) once quantized as they are stored."""
    try:
        skeleton = quantize_as_stored(model, weights, quantization)
    except (ValueError, ZeroDivisionError, KeyError) as e:
        raise ASRError(f"{folder}: quantized weights do not fit the config ({e})") from None
    check_against(folder, skeleton, weights, name)
