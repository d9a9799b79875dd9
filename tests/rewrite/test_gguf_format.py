"""GGUF reading without real weights: what mx.load gives for each tensor type against
gguf-py's reference decoding (llama.cpp's algorithms), the header reader, and the Q/K
row order. Small files written with `gguf` (test-only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rewrite.base import RewriteError
from rewrite.gguf import LOADABLE, QUANTIZED_BITS, check_loadable, read_header, unpermute_rows

gguf = pytest.importorskip("gguf")


def _write(path: Path, tensors: dict[str, tuple[np.ndarray, str | None]], arch: str = "llama") -> Path:
    w = gguf.GGUFWriter(str(path), arch)
    w.add_uint32(f"{arch}.block_count", 1)
    for name, (data, kind) in tensors.items():
        if kind is None:
            w.add_tensor(name, data)
        else:
            w.add_tensor(name, data, raw_dtype=getattr(gguf.GGMLQuantizationType, kind))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.mark.parametrize("kind", ["Q4_0", "Q4_1", "Q8_0"])
def test_packed_types_load_as_mlx_affine_groups_of_32(tmp_path, kind):
    # mlx before its Q4_1 fix (ml-explore/mlx#3664) decoded Q4_1 wrongly without a word:
    # the reference decoding holds it to the bytes.
    import mlx.core as mx

    qtype = getattr(gguf.GGMLQuantizationType, kind)
    x = np.random.default_rng(0).standard_normal((8, 256)).astype(np.float32)
    raw = gguf.quants.quantize(x, qtype)
    loaded = mx.load(str(_write(tmp_path / "t.gguf", {"w.weight": (raw, kind)})))
    assert loaded["w.weight"].dtype == mx.uint32 and loaded["w.scales"].shape == (8, 256 // 32)
    ours = mx.dequantize(loaded["w.weight"], loaded["w.scales"].astype(mx.float32),
                         loaded["w.biases"].astype(mx.float32), group_size=32, bits=QUANTIZED_BITS[kind])
    assert np.abs(np.array(ours) - gguf.quants.dequantize(raw, qtype)).max() < 1e-5


def _k_quant_blocks(kind: str, rows: int, rng) -> np.ndarray:
    """Random K-quant blocks whose float16 super-block scales are 0.01 (random bytes there
    would be inf or NaN)."""
    qtype = getattr(gguf.GGMLQuantizationType, kind)
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, (rows, 512 // block, size), dtype=np.uint8)
    scale = np.frombuffer(np.float16(0.01).tobytes(), np.uint8)
    for offset in {"Q2_K": (80, 82), "Q6_K": (208,), "Q4_K": (0, 2)}[kind]:
        raw[:, :, offset:offset + 2] = scale
    return raw.reshape(rows, -1)


def test_what_mx_load_does_with_k_quants(tmp_path):
    """Q2_K and Q6_K: expanded to float16, as llama.cpp decodes them (so they load). Q4_K:
    expanded, but unlike llama.cpp wherever a block's sub-scales differ (so it is refused).
    Q3_K and Q5_K: not read at all."""
    import mlx.core as mx

    rng = np.random.default_rng(1)
    for kind, right in (("Q2_K", True), ("Q6_K", True), ("Q4_K", False)):
        raw = _k_quant_blocks(kind, 4, rng)
        loaded = mx.load(str(_write(tmp_path / f"{kind}.gguf", {"w.weight": (raw, kind)})))["w.weight"]
        assert loaded.dtype == mx.float16 and loaded.shape == (4, 512)
        reference = gguf.quants.dequantize(raw, getattr(gguf.GGMLQuantizationType, kind))
        error = np.abs(np.array(loaded.astype(mx.float32)) - reference).max()
        assert (error < 1e-3 * np.abs(reference).max() + 1e-3) == right, (kind, error)
        assert (kind in LOADABLE) == right
    for kind in ("Q3_K", "Q5_K", "Q5_0"):
        qtype = getattr(gguf.GGMLQuantizationType, kind)
        block, size = gguf.GGML_QUANT_SIZES[qtype]
        path = _write(tmp_path / f"{kind}.gguf", {"w.weight": (np.zeros((4, 512 // block * size), np.uint8), kind)})
        with pytest.raises(RuntimeError):
            mx.load(str(path))
        assert kind not in LOADABLE


def test_header_and_refusals(tmp_path):
    x = np.random.default_rng(0).standard_normal((4, 64)).astype(np.float32)
    path = _write(tmp_path / "m.gguf", {"blk.0.attn_q.weight": (gguf.quants.quantize(x, gguf.GGMLQuantizationType.Q4_1),
                                                                "Q4_1"),
                                        "blk.0.attn_k.weight": (_k_quant_blocks("Q4_K", 2, np.random.default_rng(2)),
                                                                "Q4_K"),
                                        "output_norm.weight": (np.ones(64, np.float32), None)})
    header = read_header(path)
    assert header.architecture == "llama" and header.metadata["llama.block_count"] == 1
    assert {n: (t.shape, t.type) for n, t in header.tensors.items()} == {
        "blk.0.attn_q.weight": ((64, 4), "Q4_1"), "blk.0.attn_k.weight": ((512, 2), "Q4_K"),
        "output_norm.weight": ((64,), "F32")}
    with pytest.raises(RewriteError, match=r"holds Q4_K tensors \(1\)"):
        check_loadable(header)
    other = _write(tmp_path / "g.gguf", {"output_norm.weight": (np.ones(4, np.float32), None)}, arch="gemma2")
    with pytest.raises(RewriteError, match="is a gemma2 model"):
        check_loadable(read_header(other))
    for bad, why in ((b"", "cannot read"), (b"GGML" + bytes(40), "not a GGUF"), (path.read_bytes()[:30], "cut off")):
        (tmp_path / "bad.gguf").write_bytes(bad)
        with pytest.raises(RewriteError, match=why):
            read_header(tmp_path / "bad.gguf")


def test_unpermute_undoes_llama_cpp_row_order():
    """gguf-py's converter reorders q/k rows per head; ours puts them back, also for packed
    rows (any trailing width)."""

    heads, head_dim = 3, 8
    w = np.arange(heads * head_dim * 5).reshape(heads * head_dim, 5)
    # llama.cpp's permute: (heads, 2, head_dim/2, ...) with the middle axes swapped.
    permuted = w.reshape(heads, 2, head_dim // 2, 5).swapaxes(1, 2).reshape(w.shape)
    assert (unpermute_rows(permuted, heads) == w).all()
