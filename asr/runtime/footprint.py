"""What a checkpoint will take in memory once loaded, read from its files without loading it.

Weight bytes come from the safetensors headers (or a CTranslate2 `model.bin` index): the
dtype and shape of every tensor, never a size guessed from a model's name. How those bytes
change at load follows the loaders: on the CPU floats become float32 and MLX-quantized
layers are expanded to float32 where that fits (`expands_on_cpu`); on a GPU the stored
precision stays (Whisper casts to float16).

The working memory on top (KV caches at their bound, activations at their peak) is each
family's own formula over its config (its spec's `working`), shared with the engines'
`memory_estimate()`; here only the decoder-only LLM's, which the rewrite models share.
Nothing here reads tensor data, so planning stays quick however big the models are.
"""

from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from asr.base import ASRError, ModelNotFoundError

DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "I64": 8, "I32": 4,
               "U32": 4, "I16": 2, "U16": 2, "I8": 1, "U8": 1, "BOOL": 1}  # fmt: skip
FLOAT_DTYPES = {"F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2"}
MAX_HEADER_BYTES = 100 * 2**20  # the safetensors format's own limit
CPU_EXPAND_CAP = 8 * 2**30  # quantized weights expanded on the CPU only up to this much float32...
CPU_EXPAND_SHARE = 0.4  # ...and this share of physical memory


class CorruptCheckpoint(ASRError):
    """A weight file whose header or length is wrong (a cut-off or damaged download)."""


@dataclass(frozen=True)
class TensorInfo:
    dtype: str
    shape: tuple[int, ...]

    @property
    def elements(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.elements * DTYPE_BYTES[self.dtype]


# --- reading headers ---------------------------------------------------------------------


def read_safetensors_header(path: Path) -> tuple[dict[str, TensorInfo], int]:
    """({name: TensorInfo}, bytes of tensor data the header declares) of one file, read from
    its first bytes only. CorruptCheckpoint for anything that is not a valid header."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise CorruptCheckpoint(f"{path} is cut off: shorter than a safetensors header")
            (n,) = struct.unpack("<Q", head)
            if n > MAX_HEADER_BYTES:
                raise CorruptCheckpoint(f"{path} is not a safetensors file (header of {n} bytes)")
            raw = f.read(n)
    except OSError as e:
        raise ModelNotFoundError(f"cannot read {path}: {e.strerror}") from None
    if len(raw) < n:
        raise CorruptCheckpoint(f"{path} is cut off inside its header")
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CorruptCheckpoint(f"{path} has a damaged safetensors header") from None
    if not isinstance(header, dict):
        raise CorruptCheckpoint(f"{path} has a damaged safetensors header")
    tensors: dict[str, TensorInfo] = {}
    spans = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            info = TensorInfo(str(entry["dtype"]), tuple(int(d) for d in entry["shape"]))
            start, end = (int(x) for x in entry["data_offsets"])
            size = info.nbytes
        except (KeyError, TypeError, ValueError):
            raise CorruptCheckpoint(f"{path}: tensor {name} has a damaged header entry") from None
        if end - start != size or start < 0:
            raise CorruptCheckpoint(f"{path}: tensor {name} declares {end - start} bytes for {size}")
        tensors[name] = info
        spans.append((start, end))
    spans.sort()
    at = 0
    for start, end in spans:
        if start != at:
            raise CorruptCheckpoint(f"{path}: tensor data is not laid out contiguously")
        at = end
    return tensors, at


def safetensors_problem(path: Path) -> str | None:
    """None when the file is a complete safetensors file, else what is wrong with it."""
    try:
        _, data = read_safetensors_header(path)
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
        size = path.stat().st_size
    except (ASRError, OSError) as e:
        return str(e)
    expected = 8 + n + data
    if size < expected:
        return f"{path.name} is cut off: {size} of {expected} bytes"
    if size > expected:
        return f"{path.name} has {size - expected} bytes after its data"
    return None


def weight_files(folder: Path) -> list[Path]:
    """The safetensors files a model folder's weights are in: the shards its index names,
    else every *.safetensors file. ModelNotFoundError if an index names a missing shard."""
    indexes = sorted(folder.glob("*.safetensors.index.json"))
    if indexes:
        files: list[Path] = []
        for index in indexes:
            try:
                weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
                names = sorted(set(weight_map.values()))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError):
                raise CorruptCheckpoint(f"{index} is not a valid safetensors index") from None
            for name in names:
                if not (folder / name).is_file():
                    raise ModelNotFoundError(f"{folder} lacks the shard {name} its index names")
                files.append(folder / name)
        return files
    return sorted(folder.glob("*.safetensors"))


def folder_tensors(folder: Path) -> dict[str, TensorInfo]:
    """Every tensor in a folder's safetensors files, from their headers."""
    tensors: dict[str, TensorInfo] = {}
    for path in weight_files(folder):
        tensors.update(read_safetensors_header(path)[0])
    return tensors


# --- what the weights take -----------------------------------------------------------------


@dataclass(frozen=True)
class WeightSummary:
    """The weights of a checkpoint in the terms that decide their loaded size."""

    stored_bytes: int  # as the files hold them
    float_elements: int  # float tensors, not counting quantization scales and biases
    packed_bytes: int  # MLX-quantized weights (uint32 words) as stored
    packed_elements: int  # the weights those words hold once expanded
    qparam_elements: int  # quantization scales and biases

    @property
    def quantized(self) -> bool:
        return self.packed_bytes > 0

    @property
    def float32_bytes(self) -> int:
        """Everything expanded (and cast) to float32."""
        return (self.float_elements + self.packed_elements) * 4

    def kept_bytes(self, float_item: int) -> int:
        """Quantized layers kept packed, every float cast to `float_item` bytes."""
        return self.packed_bytes + (self.float_elements + self.qparam_elements) * float_item

    def as_dict(self) -> dict[str, int]:
        return {"stored_bytes": self.stored_bytes, "float_elements": self.float_elements,
                "packed_bytes": self.packed_bytes, "packed_elements": self.packed_elements,
                "qparam_elements": self.qparam_elements}  # fmt: skip


def summarize(tensors: Mapping[str, TensorInfo], group_size: int = 64) -> WeightSummary:
    """A WeightSummary of safetensors tensors. A `.weight` stored as uint32 beside `.scales`
    is MLX-quantized: it holds `scales elements x group_size` weights, whatever the bits."""
    stored = floats = packed = packed_elems = qparams = 0
    for name, t in tensors.items():
        stored += t.nbytes
        base = name.rsplit(".", 1)[0]
        if name.endswith((".scales", ".biases")) and f"{base}.weight" in tensors \
                and tensors[f"{base}.weight"].dtype == "U32":
            qparams += t.elements
        elif t.dtype == "U32" and name.endswith(".weight") and f"{base}.scales" in tensors:
            packed += t.nbytes
            packed_elems += tensors[f"{base}.scales"].elements * group_size
        elif t.dtype in FLOAT_DTYPES:
            floats += t.elements
    return WeightSummary(stored, floats, packed, packed_elems, qparams)


def summarize_ct2(m) -> WeightSummary:
    """A WeightSummary of a read CTranslate2 `model.bin` (asr.whisper.ct2.CT2Model; its int8
    weights load as floats)."""
    stored = floats = 0
    for v in m.variables.values():
        stored += v.nbytes
        if v.dtype in ("float32", "float16", "bfloat16", "int8", "int16") and not v.name.endswith("_scale"):
            floats += math.prod(v.shape)
    return WeightSummary(stored, floats, 0, 0, 0)


def expands_on_cpu(float32_bytes: int, physical_bytes: int | None = None) -> bool:
    """Whether quantized weights are expanded to float32 on the CPU (its fast path: MLX's
    quantized CPU kernels are 3-6x slower): only where that fits easily — the real Voxtral
    4B would need 17.6 GB."""
    if physical_bytes is None:
        physical_bytes = physical_memory_bytes()
    return float32_bytes <= min(CPU_EXPAND_CAP, int(CPU_EXPAND_SHARE * physical_bytes))


def physical_memory() -> tuple[int | None, int | None]:
    """(total, available) bytes of this machine, None where it cannot be read: Linux
    /proc/meminfo, macOS `sysctl hw.memsize` (no 'available' there), else sysconf."""
    if sys.platform == "linux":
        try:
            info = {}
            with open("/proc/meminfo") as f:
                for line in f:
                    key, _, rest = line.partition(":")
                    if key in ("MemTotal", "MemAvailable"):
                        info[key] = int(rest.split()[0]) * 1024
            if "MemTotal" in info:
                return info["MemTotal"], info.get("MemAvailable")
        except (OSError, ValueError, IndexError):
            pass
    elif sys.platform == "darwin":
        try:
            out = subprocess.run(["sysctl", "-n", "hw.memsize"], capture_output=True, text=True, timeout=5)
            return int(out.stdout.strip()), None
        except (OSError, ValueError, subprocess.SubprocessError):
            pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), None
    except (ValueError, OSError, AttributeError):
        return None, None


def physical_memory_bytes() -> int:
    """Total bytes, or 16 GiB (the smallest machine we plan for) where it cannot be read."""
    return physical_memory()[0] or 16 * 2**30


@dataclass(frozen=True)
class Footprint:
    """Bytes a loaded model holds: weights, KV caches at their bound, peak activations."""

    weights: int
    kv: int
    activations: int
    stored: int  # the weights on disk
    float_item: int  # bytes per float the model computes in (4 on the CPU)
    held_as: str  # how the weights are held, for people: "4-bit expanded to float32"

    @property
    def total(self) -> int:
        return self.weights + self.kv + self.activations


def loaded_weights(summary: WeightSummary, device: str, physical_bytes: int, gpu_float_item: int | None,
                   stored_float: str) -> tuple[int, int, str]:
    """(resident weight bytes, bytes per float computed in, how they are held) on `device`
    ("cpu" or "gpu"). `gpu_float_item` None keeps the stored float type on the GPU."""
    if device == "cpu":
        if summary.quantized and expands_on_cpu(summary.float32_bytes, physical_bytes):
            return summary.float32_bytes, 4, "expanded to float32 (CPU)"
        how = "kept quantized, floats as float32 (CPU)" if summary.quantized else "float32 (CPU)"
        return summary.kept_bytes(4), 4, how
    item = gpu_float_item or _FLOAT_ITEM.get(stored_float, 2)
    if gpu_float_item is None:
        return summary.stored_bytes, item, f"as stored ({stored_float.lower()})"
    return summary.kept_bytes(item), item, f"float{8 * item}"


_FLOAT_ITEM = {"F32": 4, "F16": 2, "BF16": 2}


def dominant_float(tensors: Iterable[TensorInfo]) -> str:
    """The float dtype holding most of the bytes ("BF16", "F16", "F32")."""
    sizes: dict[str, int] = {}
    for t in tensors:
        if t.dtype in FLOAT_DTYPES:
            sizes[t.dtype] = sizes.get(t.dtype, 0) + t.nbytes
    return max(sizes, key=sizes.__getitem__) if sizes else "F16"


# --- working memory of a decoder-only LLM -----------------------------------------------------

LLM_PREFILL_STEP = 2048  # mlx-lm's prefill chunk


def llm_working(c: Mapping[str, int], context_tokens: int, item: int, device: str) -> tuple[int, int]:
    """(KV bytes, activation bytes) of a decoder-only LLM run with `context_tokens` of context:
    keys and values of every layer for every token; for one prefill chunk the FFN's three
    widths, the attention scores against the whole context (materialised on the CPU; fused on
    GPUs), and one row of float32 logits."""
    kv = 2 * c["layers"] * c["kv_heads"] * c["head_dim"] * context_tokens * item
    chunk = min(LLM_PREFILL_STEP, context_tokens)
    ffn = chunk * (3 * c["ffn"] + 4 * c["hidden"]) * item
    scores = c["heads"] * chunk * context_tokens * 4 if device == "cpu" else 0
    return kv, ffn + scores + c["vocab"] * 4


# --- shapes from configs ---------------------------------------------------------------------


def llm_shape(folder: Path) -> dict[str, int]:
    """The numbers of an LLM's config.json the budget needs (the text section of a
    multimodal config)."""
    path = folder / "config.json"
    if not path.is_file():
        raise ModelNotFoundError(f"{folder} has no config.json")
    raw = read_json_object(path)
    c = raw.get("text_config", raw)
    try:
        heads = int(c["num_attention_heads"])
        hidden = int(c["hidden_size"])
        return {"layers": int(c["num_hidden_layers"]), "heads": heads,
                "kv_heads": int(c.get("num_key_value_heads") or heads),
                "head_dim": int(c.get("head_dim") or hidden // heads), "hidden": hidden,
                "ffn": int(c["intermediate_size"]), "vocab": int(c["vocab_size"]),
                "window": int(c.get("max_position_embeddings") or 4096)}  # fmt: skip
    except (KeyError, TypeError, ValueError) as e:
        raise ModelNotFoundError(f"{path} lacks what a language model's config has ({e})") from None


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON file holding an object; ModelNotFoundError (one line) for anything else."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise ModelNotFoundError(f"{path} is not a readable JSON file") from None
    if not isinstance(data, dict):
        raise ModelNotFoundError(f"{path} is not a JSON object")
    return data
