"""Whisper checkpoints in every layout load to the same weights, in our names.

The reference is the tiny random transformers model of conftest.py; CTranslate2 files
come from ctranslate2's own converter, so they have the real on-disk layout.
"""

from __future__ import annotations

import json
import pickle
import shutil
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from mlx.utils import tree_flatten

from asr.base import ASRError, ModelNotFoundError
from asr.runtime.hub import resolve_model
from asr.whisper.ct2 import read_model
from asr.whisper.model import WhisperDims, sinusoids
from asr.runtime.torchzip import _rebuild_tensor, read_torch_zip
from asr.whisper.weights import build_model, default_tokenizer_file, load_checkpoint
from tests.asr.whisper.conftest import (
    MLX_ALIGNMENT_HEADS,
    TINY_DIMS,
    TINY_GENERATION,
    bundled_model_dir,
    hf_to_openai,
)

TINY_EN_DIMS = WhisperDims(80, 1500, 384, 6, 4, 51864, 448, 384, 6, 4)


def numpy_weights(checkpoint) -> dict[str, np.ndarray]:
    return {k: np.array(v) for k, v in checkpoint.weights.items()}


def assert_one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert message and "\n" not in message
    return message


def fp16(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float16).astype(np.float32)


def is_matrix_weight(name: str, value: np.ndarray) -> bool:
    # What CTranslate2 quantizes: linear, conv and embedding weights (not norms, not positions).
    return name.endswith(".weight") and value.ndim >= 2


# --- transformers ------------------------------------------------------------------------


def test_transformers_layout_is_the_state_dict_renamed(hf_tiny_dir, hf_tiny_state, tiny_expected):
    ckpt = load_checkpoint(hf_tiny_dir)
    assert ckpt.layout == "transformers"
    assert ckpt.dims == TINY_DIMS
    assert ckpt.quantization is None
    assert ckpt.tokenizer_file == hf_tiny_dir / "tokenizer.json"
    # The mapping accounts for every stored tensor but the tied output projection.
    used = {k for k in hf_tiny_state if k != "proj_out.weight"}
    assert len(tiny_expected) == len(used)
    got = numpy_weights(ckpt)
    assert got.keys() == tiny_expected.keys()
    for name, value in tiny_expected.items():
        assert got[name].dtype == np.float32
        np.testing.assert_array_equal(got[name], value, err_msg=name)


def test_transformers_generation_config(hf_tiny_dir):
    gen = load_checkpoint(hf_tiny_dir).generation
    for key, value in TINY_GENERATION.items():
        assert gen[key] == value, key
    assert gen["decoder_start_token_id"] == 50257 and gen["eos_token_id"] == 50256


def test_transformers_sharded_safetensors(hf_tiny_model, tmp_path, tiny_expected):
    folder = tmp_path / "sharded"
    hf_tiny_model.save_pretrained(folder, max_shard_size="2MB")
    shards = sorted(folder.glob("model-*.safetensors"))
    assert len(shards) > 1 and (folder / "model.safetensors.index.json").is_file()
    got = numpy_weights(load_checkpoint(folder))
    for name, value in tiny_expected.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)
    shards[-1].unlink()
    with pytest.raises(ModelNotFoundError) as err:
        load_checkpoint(folder)
    assert shards[-1].name in assert_one_line(err)


def test_transformers_pytorch_bin_is_read_without_torch(
    hf_tiny_model, hf_tiny_dir, tmp_path, tiny_expected, monkeypatch
):
    import torch

    folder = tmp_path / "bin"
    folder.mkdir()
    shutil.copy(hf_tiny_dir / "config.json", folder / "config.json")
    torch.save(hf_tiny_model.state_dict(), folder / "pytorch_model.bin")
    monkeypatch.setitem(sys.modules, "torch", None)  # any `import torch` now fails
    got = numpy_weights(load_checkpoint(folder))
    for name, value in tiny_expected.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)


def test_torch_zip_reader_follows_views_and_bounds(tmp_path):
    import torch

    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    tensors = {"t": base.t(), "tail": base.view(-1)[5:17], "half": base.half(), "bf16": base.bfloat16()}
    torch.save(tensors, tmp_path / "views.bin")
    got = read_torch_zip(tmp_path / "views.bin")
    for name, tensor in tensors.items():
        np.testing.assert_array_equal(got[name], tensor.float().numpy(), err_msg=name)
    with pytest.raises(pickle.UnpicklingError):  # would read past the storage
        _rebuild_tensor(np.zeros(4, np.float32), 2, (3,), (1,))


class _RunsCode:
    def __reduce__(self):
        return (print, ("a weights file must not run code",))


def test_pytorch_bin_that_would_run_code_is_refused(hf_tiny_dir, tmp_path):
    folder = tmp_path / "evil"
    folder.mkdir()
    shutil.copy(hf_tiny_dir / "config.json", folder / "config.json")
    with zipfile.ZipFile(folder / "pytorch_model.bin", "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({"x": _RunsCode()}))
    with pytest.raises(ASRError) as err:
        load_checkpoint(folder)
    assert "builtins.print" in assert_one_line(err)  # refused before anything ran


def test_untied_output_projection_is_refused(hf_tiny_dir, hf_tiny_state, tmp_path):
    folder = tmp_path / "untied"
    folder.mkdir()
    shutil.copy(hf_tiny_dir / "config.json", folder / "config.json")
    state = {k: mx.array(v) for k, v in hf_tiny_state.items()}
    state["proj_out.weight"] = state["proj_out.weight"] + 1.0
    mx.save_safetensors(str(folder / "model.safetensors"), state)
    with pytest.raises(ASRError) as err:
        load_checkpoint(folder)
    assert "output projection" in assert_one_line(err)


# --- CTranslate2 -------------------------------------------------------------------------


def test_ct2_float32_is_identical_to_transformers(ct2_tiny_dirs, tiny_expected):
    ckpt = load_checkpoint(ct2_tiny_dirs["float32"])
    assert ckpt.layout == "ctranslate2"
    assert ckpt.dims == TINY_DIMS
    got = numpy_weights(ckpt)
    assert got.keys() == tiny_expected.keys()
    for name, value in tiny_expected.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)


def test_ct2_float16_is_fp16_rounding(ct2_tiny_dirs, tiny_expected):
    got = numpy_weights(load_checkpoint(ct2_tiny_dirs["float16"]))
    for name, value in tiny_expected.items():
        np.testing.assert_array_equal(got[name], fp16(value), err_msg=name)


def test_ct2_bfloat16_is_bf16_rounding(ct2_tiny_dirs, tiny_expected):
    import torch

    got = numpy_weights(load_checkpoint(ct2_tiny_dirs["bfloat16"]))
    for name, value in tiny_expected.items():
        expected = torch.from_numpy(value.copy()).to(torch.bfloat16).float().numpy()
        np.testing.assert_array_equal(got[name], expected, err_msg=name)


@pytest.mark.parametrize("quantization", ["int8", "int8_float16"])
def test_ct2_int8_within_the_per_row_bound(ct2_tiny_dirs, tiny_expected, quantization):
    # The converter stores rint(w * 127 / amax(|row|)): dequantized error <= amax / 254 per row.
    got = numpy_weights(load_checkpoint(ct2_tiny_dirs[quantization]))
    for name, value in tiny_expected.items():
        if is_matrix_weight(name, value):
            rows = value.reshape(value.shape[0], -1)
            bound = np.abs(rows).max(axis=1, keepdims=True) / 254 * (1 + 1e-4)  # + float32 rounding
            error = np.abs(got[name].reshape(rows.shape) - rows)
            assert np.all(error <= bound), name
            assert error.max() > 0, name  # really quantized
        elif quantization == "int8":
            np.testing.assert_array_equal(got[name], value, err_msg=name)
        else:  # int8_float16 keeps the other variables in float16
            np.testing.assert_array_equal(got[name], fp16(value), err_msg=name)


def test_ct2_int16_within_the_per_tensor_bound(ct2_tiny_dirs, tiny_expected):
    # int16 keeps one scale 2**10 / amax per stored (possibly fused) tensor; bound it by
    # the largest value of the whole attention module, which covers any fusion.
    got = numpy_weights(load_checkpoint(ct2_tiny_dirs["int16"]))
    for name, value in tiny_expected.items():
        if not is_matrix_weight(name, value):
            np.testing.assert_array_equal(got[name], value, err_msg=name)
            continue
        module = name.rsplit(".", 2)[0]
        amax = max(
            np.abs(v).max() for k, v in tiny_expected.items() if k.startswith(module + ".") and v.ndim >= 2
        )
        assert np.abs(got[name] - value).max() <= amax / 2**11 * (1 + 1e-3), name  # + float32 rounding


def test_ct2_generation_and_tokenizer(ct2_tiny_dirs):
    folder = ct2_tiny_dirs["float16"]
    ckpt = load_checkpoint(folder)
    config = json.loads((folder / "config.json").read_text())
    assert ckpt.tokenizer_file == folder / "tokenizer.json"
    assert config["suppress_ids"] == TINY_GENERATION["suppress_tokens"]
    assert ckpt.generation["suppress_tokens"] == TINY_GENERATION["suppress_tokens"]
    assert ckpt.generation["begin_suppress_tokens"] == TINY_GENERATION["begin_suppress_tokens"]
    assert ckpt.generation["alignment_heads"] == TINY_GENERATION["alignment_heads"]


def test_ct2_fused_layout_is_checked_through_the_key_bias(ct2_tiny_dirs, tmp_path):
    # The converter fills Whisper's missing key bias with zeros; a non-zero slice there
    # means the q/k/v order is not what the loader assumes, and it must say so.
    folder = tmp_path / "ct2"
    shutil.copytree(ct2_tiny_dirs["float32"], folder)
    var = read_model(folder / "model.bin").variable("encoder/layer_0/self_attention/linear_0/bias")
    n = TINY_DIMS.n_audio_state
    with open(folder / "model.bin", "r+b") as f:
        f.seek(var.offset + 4 * n)  # first element of the key slice
        f.write(struct.pack("<f", 0.5))
    with pytest.raises(ASRError) as err:
        load_checkpoint(folder)
    assert "key bias" in assert_one_line(err)


def test_bundled_tiny_en_reads():
    folder = bundled_model_dir()
    model = read_model(folder / "model.bin")
    assert (model.version, model.spec, model.revision) == (6, "WhisperSpec", 3)
    assert len(model.variables) == 148
    assert {v.dtype for v in model.variables.values() if v.shape} == {"float16"}
    assert model.aliases["decoder/projection/weight"] == "decoder/embeddings/weight"
    assert model.raw("decoder/projection/weight").shape == (51864, 384)
    ckpt = load_checkpoint(folder)
    assert ckpt.dims == TINY_EN_DIMS
    assert len(ckpt.weights) == len(tree_flatten(build_model(ckpt).parameters()))
    assert all(bool(mx.all(mx.isfinite(w)).item()) for w in ckpt.weights.values())
    assert ckpt.generation["alignment_heads"][0] == [1, 0]
    assert ckpt.tokenizer_file == folder / "tokenizer.json"


def _legacy_model_bin(source: Path, target: Path, version: int) -> None:
    """Rewrite a v6 model.bin in the v1-v3 layout (item size + count, no dtype id;
    aliases only from v3; spec name only from v2), as model.cc reads those versions."""
    model = read_model(source)
    item_sizes = {"float32": 4, "int16": 2, "int8": 1}

    def string(s: str) -> bytes:
        raw = s.encode() + b"\0"
        return struct.pack("<H", len(raw)) + raw

    out = [struct.pack("<I", version)]
    if version >= 2:
        out += [string(model.spec), struct.pack("<I", model.revision)]
    variables = dict(model.variables)
    if version < 3:  # no aliases yet: store the aliased tensors themselves
        variables.update({alias: model.variable(alias) for alias in model.aliases if alias in model})
    out.append(struct.pack("<I", len(variables)))
    for name, var in variables.items():
        size = item_sizes[var.dtype]
        rank = len(var.shape)
        out += [string(name), struct.pack("<B", rank), struct.pack(f"<{rank}I", *var.shape)]
        out += [struct.pack("<BI", size, var.nbytes // size), model.raw(name).tobytes()]
    if version >= 3:
        pairs = [(a, t) for a, t in model.aliases.items() if not a.endswith("_scale")]
        out.append(struct.pack("<I", len(pairs)))
        out += [string(a) + string(t) for a, t in pairs]
    target.write_bytes(b"".join(out))


@pytest.mark.parametrize("version", [1, 2, 3, 4, 5])
def test_ct2_reader_older_format_versions(ct2_tiny_dirs, tmp_path, version):
    source = ct2_tiny_dirs["float32"] / "model.bin"
    target = tmp_path / "model.bin"
    if version >= 4:  # same layout as v6, other version number
        target.write_bytes(struct.pack("<I", version) + source.read_bytes()[4:])
    else:
        _legacy_model_bin(source, target, version)
    new, old = read_model(source), read_model(target)
    assert old.version == version
    assert old.spec == ("" if version == 1 else "WhisperSpec")
    for name in [*new.variables, *(a for a in new.aliases if a in new)]:
        np.testing.assert_array_equal(old.float32(name), new.float32(name), err_msg=name)


def _bad_model_bins(source: bytes) -> dict[str, bytes]:
    header_end = 4 + 2 + len(b"WhisperSpec\0") + 4 + 4
    first_dtype = header_end + 2 + len(b"decoder/activation\0") + 1  # after the name and rank
    return {
        "empty": b"",
        "three bytes": source[:3],
        "cut in the header": source[:10],
        "cut in a name": source[: header_end + 5],
        "cut in the data": source[: len(source) // 2],
        "cut in the aliases": source[:-3],
        "random bytes": np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        "a safetensors file": struct.pack("<Q", 2) + b"{}",
        "newer version": struct.pack("<I", 7) + source[4:],
        "unknown dtype": source[:first_dtype] + b"\x09" + source[first_dtype + 1 :],
    }  # fmt: skip


def test_ct2_bad_files_fail_with_one_line(ct2_tiny_dirs, tmp_path):
    source = (ct2_tiny_dirs["float32"] / "model.bin").read_bytes()
    for case, data in _bad_model_bins(source).items():
        folder = tmp_path / case.replace(" ", "_")
        shutil.copytree(ct2_tiny_dirs["float32"], folder)
        (folder / "model.bin").write_bytes(data)
        with pytest.raises(ASRError) as err:
            load_checkpoint(folder)
        message = assert_one_line(err)
        assert "model.bin" in message, case
        if case.startswith("cut"):
            assert "truncated" in message, case
        if case == "newer version":
            assert "newer" in message
        if case == "unknown dtype":
            assert "type id 9" in message


# --- mlx-community -----------------------------------------------------------------------


def test_mlx_layout_is_identical(mlx_tiny_dir, tiny_expected):
    ckpt = load_checkpoint(mlx_tiny_dir)
    assert ckpt.layout == "mlx"
    assert ckpt.dims == TINY_DIMS
    assert ckpt.quantization is None and ckpt.tokenizer_file is None
    assert ckpt.generation == {"alignment_heads": MLX_ALIGNMENT_HEADS}  # the stored key, not a weight
    got = numpy_weights(ckpt)
    assert got.keys() == tiny_expected.keys()
    for name, value in tiny_expected.items():
        if name == "encoder.positional_embedding":
            # Not stored by mlx_whisper: our sinusoids, equal to torch's up to float32 rounding.
            np.testing.assert_array_equal(got[name], np.array(sinusoids(1500, 64)))
            np.testing.assert_allclose(got[name], value, atol=1e-3)
        else:
            np.testing.assert_array_equal(got[name], value, err_msg=name)


def test_mlx_npz_and_float16(mlx_tiny_dir, tmp_path, tiny_expected):
    folder = tmp_path / "npz"
    folder.mkdir()
    shutil.copy(mlx_tiny_dir / "config.json", folder / "config.json")
    weights = mx.load(str(mlx_tiny_dir / "weights.safetensors"))
    halves = {k: v if k == "alignment_heads" else v.astype(mx.float16) for k, v in weights.items()}
    mx.savez(str(folder / "weights.npz"), **halves)
    ckpt = load_checkpoint(folder, dtype=None)
    assert ckpt.weights["decoder.ln.weight"].dtype == mx.float16
    np.testing.assert_array_equal(
        np.array(ckpt.weights["decoder.ln.weight"]), tiny_expected["decoder.ln.weight"].astype(np.float16)
    )
    assert load_checkpoint(folder).weights["decoder.ln.weight"].dtype == mx.float32


@pytest.mark.parametrize("bits", [4, 8])
def test_mlx_quantized_within_the_quantization_error(mlx_tiny_q4_dir, mlx_tiny_q8_dir, tiny_expected, bits):
    folder = {4: mlx_tiny_q4_dir, 8: mlx_tiny_q8_dir}[bits]
    ckpt = load_checkpoint(folder)
    assert ckpt.quantization == {"group_size": 64, "bits": bits}
    assert "decoder.token_embedding.scales" in ckpt.weights
    model = build_model(ckpt)
    kinds = (nn.QuantizedLinear, nn.QuantizedEmbedding)
    quantized = {p: m for p, m in model.named_modules() if isinstance(m, kinds)}
    assert len(quantized) == 2 * 6 + 2 * 10 + 1  # every Linear and the token embedding
    stored = mx.load(str(folder / "weights.safetensors"))
    for path, module in quantized.items():
        for part in ("weight", "scales", "biases"):
            assert mx.array_equal(getattr(module, part), stored[f"{path}.{part}"]).item(), (path, part)
        w = mx.dequantize(module.weight, module.scales, module.biases, group_size=64, bits=bits)
        reference = tiny_expected[f"{path}.weight"].reshape(-1, module.scales.shape[1], 64)
        error = np.abs(np.array(w).reshape(reference.shape) - reference)
        # MLX's affine grid is bias + scale * q, q in [0, 2**bits - 1], anchored at the group's
        # larger-magnitude edge: values on the grid's span round to within scale / 2, and
        # values past its far end (the anchoring can shorten the span) clip to it.
        scale = np.array(module.scales)[..., None]
        first = np.array(module.biases)[..., None]
        ends = np.stack([first, first + scale * (2**bits - 1)])
        outside = np.maximum(0, np.maximum(ends.min(0) - reference, reference - ends.max(0)))
        assert np.all(error <= np.abs(scale) / 2 * (1 + 1e-3) + outside + 1e-6), path
    flat = dict(tree_flatten(model.parameters()))
    for name, value in tiny_expected.items():
        if name in flat and flat[name].dtype == mx.float32 and name != "encoder.positional_embedding":
            np.testing.assert_array_equal(np.array(flat[name]), value, err_msg=name)


def test_mlx_config_must_match_the_weights(mlx_tiny_dir, tmp_path):
    cases = (("n_text_layer", 3, ModelNotFoundError), ("n_audio_state", 128, ASRError))
    for field_name, value, error in cases:
        folder = tmp_path / field_name
        shutil.copytree(mlx_tiny_dir, folder)
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**config, field_name: value}))
        with pytest.raises(error) as err:
            load_checkpoint(folder)
        assert_one_line(err)


def test_every_layout_builds_a_model(hf_tiny_dir, ct2_tiny_dirs, mlx_tiny_dir):
    mel = mx.zeros((1, 3000, 80))
    tokens = mx.array([[50257, 50362]])
    folders = (hf_tiny_dir, ct2_tiny_dirs["float32"], mlx_tiny_dir)
    logits = [build_model(load_checkpoint(d))(mel, tokens) for d in folders]
    assert logits[0].shape == (1, 2, 51864)
    np.testing.assert_array_equal(np.array(logits[0]), np.array(logits[1]))  # same weights exactly
    # The mlx layout recomputes the encoder sinusoids in MLX (float32 rounding differs).
    np.testing.assert_allclose(np.array(logits[0]), np.array(logits[2]), atol=1e-3)


# --- folders that are not (complete) models ------------------------------------------------


def test_bad_folders_name_what_is_missing(tmp_path, hf_tiny_dir, mlx_tiny_dir):
    cases = {}
    cases["missing"] = (tmp_path / "does-not-exist", "no model folder")
    (tmp_path / "empty").mkdir()
    cases["empty"] = (tmp_path / "empty", "config.json")
    hf_no_weights = tmp_path / "hf_no_weights"
    hf_no_weights.mkdir()
    shutil.copy(hf_tiny_dir / "config.json", hf_no_weights)
    cases["hf without weights"] = (hf_no_weights, "model.safetensors")
    hf_no_config = tmp_path / "hf_no_config"
    hf_no_config.mkdir()
    shutil.copy(hf_tiny_dir / "model.safetensors", hf_no_config)
    cases["hf without config"] = (hf_no_config, "config.json")
    mlx_no_weights = tmp_path / "mlx_no_weights"
    mlx_no_weights.mkdir()
    shutil.copy(mlx_tiny_dir / "config.json", mlx_no_weights)
    cases["mlx without weights"] = (mlx_no_weights, "weights.safetensors")
    other = tmp_path / "llama"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 8}))
    cases["another model"] = (other, "no Whisper model")
    for case, (folder, expected) in cases.items():
        with pytest.raises(ModelNotFoundError) as err:
            load_checkpoint(folder)
        assert expected in assert_one_line(err), case


def test_corrupt_safetensors_and_json(tmp_path, mlx_tiny_dir):
    folder = tmp_path / "corrupt"
    shutil.copytree(mlx_tiny_dir, folder)
    (folder / "weights.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(ASRError) as err:
        load_checkpoint(folder)
    assert "weights.safetensors" in assert_one_line(err)
    (folder / "config.json").write_text("{")
    with pytest.raises(ASRError) as err:
        load_checkpoint(folder)
    assert "config.json" in assert_one_line(err)


def test_product_modules_do_not_import_test_only_packages():
    code = (
        "import sys, asr.whisper.weights, asr.whisper.ct2, asr.runtime.hub\n"
        "bad = [m for m in ('torch', 'transformers', 'ctranslate2') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[3])


# --- hub and tokenizer ---------------------------------------------------------------------


@pytest.fixture
def offline(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def _fake_snapshot(cache: Path, repo: str, files: dict[str, str]) -> Path:
    """A hub cache entry laid out as huggingface_hub writes it."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    root = cache / ("models--" + repo.replace("/", "--"))
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(commit)
    snapshot = root / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for name, text in files.items():
        (snapshot / name).write_text(text)
    return snapshot


def test_resolve_model_local_folder(mlx_tiny_dir, tmp_path):
    assert resolve_model(str(mlx_tiny_dir), cache_dir=tmp_path) == mlx_tiny_dir
    with pytest.raises(ModelNotFoundError) as err:
        resolve_model(str(tmp_path / "nope"), cache_dir=tmp_path)
    assert "no model folder" in assert_one_line(err)


def test_resolve_model_unknown_repo_offline_fails_fast(tmp_path, offline):
    start = time.monotonic()
    with pytest.raises(ModelNotFoundError) as err:
        resolve_model("nobody-here/whisper-nothing", cache_dir=tmp_path / "cache")
    assert "cannot be reached" in assert_one_line(err)
    assert time.monotonic() - start < 10
    with pytest.raises(ModelNotFoundError) as err:
        resolve_model("nobody-here/whisper-nothing", cache_dir=tmp_path / "cache", allow_download=False)
    assert "not downloaded" in assert_one_line(err)
    with pytest.raises(ModelNotFoundError) as err:
        resolve_model("not a repo id", cache_dir=tmp_path / "cache")
    assert_one_line(err)


def test_resolve_model_uses_the_cache_offline(tmp_path, offline):
    cache = tmp_path / "cache"
    # The smallest whole safetensors file: an 8-byte length and an empty header "{}".
    empty_safetensors = "\x02" + "\x00" * 7 + "{}"
    snapshot = _fake_snapshot(cache, "acme/whisper-x", {"config.json": "{}", "model.safetensors": empty_safetensors})
    assert resolve_model("acme/whisper-x", cache_dir=cache) == snapshot
    # A repo of which only the tokenizer was fetched is not a downloaded model.
    _fake_snapshot(cache, "acme/whisper-y", {"tokenizer.json": "{}"})
    with pytest.raises(ModelNotFoundError):
        resolve_model("acme/whisper-y", cache_dir=cache)
    assert resolve_model("acme/whisper-y", cache_dir=cache, allow_patterns=["tokenizer.json"]).is_dir()


def test_default_tokenizer_file(tmp_path, offline):
    assert default_tokenizer_file(51864, cache_dir=tmp_path) == bundled_model_dir() / "tokenizer.json"
    with pytest.raises(ModelNotFoundError) as err:
        default_tokenizer_file(51865, cache_dir=tmp_path)
    assert "openai/whisper-tiny" in assert_one_line(err)
    snapshot = _fake_snapshot(tmp_path, "openai/whisper-large-v3", {"tokenizer.json": "{}"})
    assert default_tokenizer_file(51866, cache_dir=tmp_path) == snapshot / "tokenizer.json"
    with pytest.raises(ModelNotFoundError):
        default_tokenizer_file(40000, cache_dir=tmp_path)


def test_hf_to_openai_covers_the_checkpoint(hf_tiny_state):
    # Guard for the test's own reference mapping: nothing silently skipped.
    mapped = hf_to_openai(hf_tiny_state, 2, 2)
    assert len(mapped) == len(hf_tiny_state) - 1  # all but proj_out (tied)
