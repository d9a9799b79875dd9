"""`torch.save` zip archives (pytorch_model.bin, *.pt) read without torch and without running
the pickle: an unpickler that builds numpy arrays and a few containers, and refuses every
other class the file names. Shared by every loader of torch checkpoints (Whisper's
transformers layout, diarize's pyannote and CAM++ checkpoints)."""

from __future__ import annotations

import collections
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from asr.base import ASRError

# torch storage class → element type (BFloat16Storage is read as bits, widened below).
_TORCH_STORAGES = {
    "FloatStorage": np.float32, "HalfStorage": np.float16, "BFloat16Storage": np.uint16,
    "DoubleStorage": np.float64, "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}  # fmt: skip

# Metadata objects a pyannote (PyTorch Lightning) checkpoint stores beside its state dict:
# task specifications, their enums and torch's version string. Each becomes an inert
# `Metadata` that keeps what the file says and runs nothing.
_METADATA_CLASSES = {
    ("pyannote.audio.core.task", "Specifications"),
    ("pyannote.audio.core.task", "Problem"),
    ("pyannote.audio.core.task", "Resolution"),
    ("torch.torch_version", "TorchVersion"),
}


class Metadata:
    """Stands in for a checkpoint's metadata object: `args` (what it was built from) and
    `state` (what BUILD gave it); no method of the original class ever runs."""

    name = "?"

    def __new__(cls, *args):
        obj = super().__new__(cls)
        obj.args, obj.state = args, None
        return obj

    def __init__(self, *args) -> None:  # REDUCE calls the class; __new__ kept the args
        pass

    def __setstate__(self, state) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"{self.name}{self.args!r}"


_METADATA_TYPES = {key: type(key[1], (Metadata,), {"name": key[1]}) for key in _METADATA_CLASSES}


def read_torch_checkpoint(path: Path) -> Any:
    """Everything a `torch.save` zip archive holds, tensors as numpy arrays; a one-line
    ASRError for a file that is not one, is cut off, or names a class outside the allow-list."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise ASRError(f"{path} is not a zip-format torch checkpoint; use safetensors weights") from None
    with archive:
        pkl = next((n for n in archive.namelist() if n.endswith("data.pkl")), None)
        if pkl is None:
            raise ASRError(f"{path} holds no data.pkl; use safetensors weights")
        prefix = pkl[: -len("data.pkl")]
        try:
            with archive.open(pkl) as f:
                return _TorchUnpickler(f, archive, prefix).load()
        except pickle.UnpicklingError as e:
            raise ASRError(f"{path} is not a plain weights file: {e}") from None
        except (EOFError, KeyError, ValueError, TypeError, zipfile.BadZipFile) as e:
            raise ASRError(f"{path} is corrupt ({type(e).__name__})") from None


def read_torch_zip(path: Path) -> dict[str, np.ndarray]:
    """The tensors of a checkpoint's state dict: the top-level dict, or a Lightning
    checkpoint's `state_dict` entry."""
    state = read_torch_checkpoint(path)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ASRError(f"{path} does not hold a state dict")
    return {k: v for k, v in state.items() if isinstance(v, np.ndarray)}


class _TorchUnpickler(pickle.Unpickler):
    def __init__(self, file, archive: zipfile.ZipFile, prefix: str):
        super().__init__(file)
        self.archive, self.prefix = archive, prefix

    def find_class(self, module: str, name: str):
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return lambda data, requires_grad, hooks: data
        if module == "torch" and name in _TORCH_STORAGES:
            return name
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if (module, name) in _METADATA_TYPES:
            return _METADATA_TYPES[module, name]
        raise pickle.UnpicklingError(f"it refers to {module}.{name}, which a state dict never does")

    def persistent_load(self, pid):
        kind, storage, key, _location, _numel = pid
        if kind != "storage" or storage not in _TORCH_STORAGES:
            raise pickle.UnpicklingError(f"it has an unknown storage {storage!r}")
        raw = self.archive.read(f"{self.prefix}data/{key}")
        data = np.frombuffer(raw, dtype=_TORCH_STORAGES[storage])
        if storage == "BFloat16Storage":
            data = (data.astype(np.uint32) << 16).view(np.float32)
        return data


def _rebuild_tensor(storage: np.ndarray, offset: int, size, stride, *_args) -> np.ndarray:
    size, stride = tuple(size), tuple(stride)
    # as_strided trusts its arguments: check that the tensor lies inside its storage.
    last = offset + sum((n - 1) * s for n, s in zip(size, stride)) if all(size) else offset - 1
    if len(size) != len(stride) or offset < 0 or min(stride, default=0) < 0 or last >= storage.size:
        raise pickle.UnpicklingError("a tensor lies outside its storage")
    if not all(size):
        return np.zeros(size, storage.dtype)
    strides = [s * storage.itemsize for s in stride]
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=size, strides=strides)
    return np.ascontiguousarray(view)
