"""A reader for CTranslate2's `model.bin`, with no dependency on ctranslate2.

Layout (little-endian), as written by `ctranslate2/specs/model_spec.py` and read by
`src/models/model.cc`: u32 format version; since v2 a spec name and u32 spec revision;
u32 variable count; per variable a name, u8 rank, u32 dims, then (v4+) u8 dtype id and
u32 byte count, or (v1-v3) u8 item size and u32 element count; the raw data; since v3
u32 alias count and (alias, target) name pairs. Strings are a u16 length counting a
trailing NUL, then the bytes. Versions 4, 5 and 6 share one layout: v5 only changed
quantization rounding and v6 only added config.json beside the file.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from asr.base import ASRError

KNOWN_VERSIONS = range(1, 7)
# int16 models from before scales were saved: ops::Quantize::global_int16_scale (quantize.cc).
INT16_LEGACY_SCALE = 1000.0

# Type ids of the v4+ format, in the order of CTranslate2's DataType enum.
_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
# v1-v3 stored only an item size; CTranslate2 itself maps it this way.
_LEGACY_DTYPES = {4: "float32", 2: "int16", 1: "int8"}
_NUMPY = {
    "float32": np.float32,
    "int8": np.int8,
    "int16": np.int16,
    "int32": np.int32,
    "float16": np.float16,
    "bfloat16": np.uint16,  # numpy has no bfloat16: kept as raw bits until converted
}


@dataclass(frozen=True)
class CT2Variable:
    name: str
    shape: tuple[int, ...]
    dtype: str  # one of _DTYPES
    offset: int  # of the data, in bytes from the start of the file
    nbytes: int


@dataclass
class CT2Model:
    """The parsed index of one model.bin; data stays in the memory map until asked for."""

    path: Path
    version: int
    spec: str
    revision: int
    variables: dict[str, CT2Variable]
    aliases: dict[str, str]
    _buffer: mmap.mmap | bytes = field(repr=False)

    def resolve(self, name: str) -> str:
        """The stored variable behind `name` (aliases followed)."""
        return self.aliases.get(name, name)

    def __contains__(self, name: str) -> bool:
        return self.resolve(name) in self.variables

    def variable(self, name: str) -> CT2Variable:
        try:
            return self.variables[self.resolve(name)]
        except KeyError:
            raise ASRError(f"{self.path}: variable {name} is missing") from None

    def raw(self, name: str) -> np.ndarray:
        """The stored values as a read-only view over the file (bfloat16 as uint16 bits)."""
        var = self.variable(name)
        data = np.frombuffer(self._buffer, dtype=_NUMPY[var.dtype], offset=var.offset,
                             count=var.nbytes // np.dtype(_NUMPY[var.dtype]).itemsize)
        return data.reshape(var.shape)

    def scalar(self, name: str) -> int | float:
        return self.raw(name).reshape(-1)[0].item()

    def float32(self, name: str) -> np.ndarray:
        """The values as float32: bfloat16 widened, int8/int16 divided by their scale."""
        var = self.variable(name)
        data = self.raw(name)
        if var.dtype == "bfloat16":
            # bfloat16 is the top half of a float32.
            return (data.astype(np.uint32) << 16).view(np.float32)
        if var.dtype in ("int8", "int16") and var.shape:  # int scalars are flags and counts
            return self._dequantize(var, data)
        return data.astype(np.float32, copy=False)  # float32 stays a view over the file

    def _dequantize(self, var: CT2Variable, data: np.ndarray) -> np.ndarray:
        # model_spec.py stores rint(w * scale) with scale = 127 / amax(|row|) for int8
        # (one per output row, convs flattened per output channel) and one scalar for int16.
        scale_name = var.name + "_scale"
        if scale_name in self.variables:
            scale = self.float32(scale_name)
        elif var.dtype == "int16":
            scale = np.float32(INT16_LEGACY_SCALE)
        else:
            raise ASRError(f"{self.path}: quantized variable {var.name} has no {scale_name}")
        if scale.ndim == 1:
            scale = scale.reshape((-1,) + (1,) * (data.ndim - 1))
        return data.astype(np.float32) / scale


class _Cursor:
    """Sequential little-endian reads that fail with a clear message past the end."""

    def __init__(self, buffer: mmap.mmap | bytes, path: Path):
        self.buffer, self.path, self.pos = buffer, path, 0

    def unpack(self, fmt: str) -> tuple:
        size = struct.calcsize("<" + fmt)
        if self.pos + size > len(self.buffer):
            raise self.truncated()
        values = struct.unpack_from("<" + fmt, self.buffer, self.pos)
        self.pos += size
        return values

    def u8(self) -> int:
        return self.unpack("B")[0]

    def u32(self) -> int:
        return self.unpack("I")[0]

    def string(self) -> str:
        (length,) = self.unpack("H")
        raw = bytes(self.buffer[self.pos : self.pos + length])
        if len(raw) < length:
            raise self.truncated()
        self.pos += length
        try:
            return raw.rstrip(b"\0").decode("utf-8")
        except UnicodeDecodeError:
            raise self.corrupt("a name is not text") from None

    def skip(self, nbytes: int) -> int:
        start = self.pos
        if start + nbytes > len(self.buffer):
            raise self.truncated()
        self.pos += nbytes
        return start

    def truncated(self) -> ASRError:
        size = len(self.buffer)
        return ASRError(f"{self.path} is truncated (it ends at byte {size}); download it again")

    def corrupt(self, why: str) -> ASRError:
        return ASRError(f"{self.path} is not a valid CTranslate2 model: {why} (byte {self.pos})")


def read_model(path: str | Path) -> CT2Model:
    """Parse a CTranslate2 model.bin (format versions 1-6) without loading its data."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            buffer: mmap.mmap | bytes = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except ValueError:  # an empty file cannot be mapped
        buffer = b""
    except OSError as e:
        raise ASRError(f"cannot read {path}: {e.strerror or e}") from None
    cur = _Cursor(buffer, path)
    version = cur.u32()
    if version not in KNOWN_VERSIONS:
        raise _version_error(path, version)
    spec, revision = "", 1
    if version >= 2:
        spec, revision = cur.string(), cur.u32()
        if not spec:
            raise cur.corrupt("it names no model specification")
    count = cur.u32()
    variables: dict[str, CT2Variable] = {}
    for _ in range(count):
        var = _read_variable(cur, version)
        variables[var.name] = var
    aliases: dict[str, str] = {}
    if version >= 3:
        for _ in range(cur.u32()):
            alias, target = cur.string(), cur.string()
            aliases[alias] = target
            # CTranslate2 aliases the int8 scale along with the weight.
            aliases.setdefault(alias + "_scale", target + "_scale")
    return CT2Model(path, version, spec, revision, variables, aliases, buffer)


def _read_variable(cur: _Cursor, version: int) -> CT2Variable:
    name = cur.string()
    rank = cur.u8()
    shape = cur.unpack(f"{rank}I") if rank else ()
    if version >= 4:
        type_id, nbytes = cur.u8(), cur.u32()
        if type_id >= len(_DTYPES):
            raise cur.corrupt(f"variable {name} has unknown type id {type_id}")
        dtype = _DTYPES[type_id]
    else:
        item_size, n_items = cur.u8(), cur.u32()
        if item_size not in _LEGACY_DTYPES:
            raise cur.corrupt(f"variable {name} has items of {item_size} bytes")
        dtype, nbytes = _LEGACY_DTYPES[item_size], n_items * item_size
    expected = int(np.prod(shape, dtype=np.int64)) * np.dtype(_NUMPY[dtype]).itemsize
    if nbytes != expected:
        raise cur.corrupt(f"variable {name} holds {nbytes} bytes for shape {list(shape)}")
    return CT2Variable(name, tuple(shape), dtype, cur.skip(nbytes), nbytes)


def _version_error(path: Path, version: int) -> ASRError:
    if 6 < version < 100:
        return ASRError(
            f"{path} uses CTranslate2 format version {version}, newer than this reader "
            "knows (1-6); update notetaker"
        )
    return ASRError(f"{path} is not a CTranslate2 model.bin")
