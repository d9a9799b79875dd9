"""Reading checkpoint files, shared by every engine's loader: JSON configs, safetensors and
their shard indexes, float casts. Every failure is a one-line ASRError or ModelNotFoundError."""

from __future__ import annotations

import json
import os
from pathlib import Path

import mlx.core as mx

from asr.base import ASRError, ModelNotFoundError


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
    """Whether quantized weights should be expanded to float32 on the CPU (its fast path:
    MLX's quantized CPU kernels are 3-6x slower): only where that fits easily — the real
    Voxtral 4B would need 17.6 GB."""
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        physical = 16 * 2**30
    return float32_bytes(weights, quantization) <= min(8 * 2**30, int(0.4 * physical))
