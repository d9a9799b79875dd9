"""Every published layout of the same tiny weights loads to the same model; bad folders give
one clear line."""

from __future__ import annotations

import json
import shutil

import mlx.core as mx
import numpy as np
import pytest

from asr.base import ASRError, ModelNotFoundError
from asr.qwen3.weights import LAYOUT_MLX, LAYOUT_ORIGINAL, build_model, dequantized, load_checkpoint
from tests.asr.qwen3.conftest import SPECIAL

PAD = SPECIAL["<|audio_pad|>"]


def _logits(folder, quantize_bits=None, dtype=mx.float32, expand=False) -> np.ndarray:
    ckpt = load_checkpoint(folder, dtype=dtype)
    if expand:
        ckpt = dequantized(ckpt)
    model = build_model(ckpt, quantize_bits=quantize_bits)
    rng = np.random.default_rng(1)
    mel = mx.array(rng.standard_normal((230, 128)).astype(np.float32))
    audio = model.encode(mel)
    ids = [SPECIAL["<|im_start|>"], 7, 8, SPECIAL["<|audio_start|>"]] + [PAD] * audio.shape[0] + [
        SPECIAL["<|audio_end|>"], SPECIAL["<|im_end|>"], 9]
    return np.array(model.logits(model.merged_embeddings(ids, audio), None, last_only=False))


@pytest.fixture(scope="module")
def reference(qwen3_original):
    return _logits(qwen3_original)


def test_layouts_are_detected(qwen3_original, qwen3_original_sharded, qwen3_mlx, qwen3_mlx_8bit):
    assert load_checkpoint(qwen3_original).layout == LAYOUT_ORIGINAL
    assert load_checkpoint(qwen3_original_sharded).layout == LAYOUT_ORIGINAL
    assert load_checkpoint(qwen3_mlx).layout == LAYOUT_MLX
    q = load_checkpoint(qwen3_mlx_8bit)
    assert q.layout == LAYOUT_MLX and q.quantization == {"group_size": 64, "bits": 8, "mode": "affine"}


def test_original_sharded_and_mlx_float_give_identical_logits(reference, qwen3_original_sharded, qwen3_mlx):
    assert np.array_equal(_logits(qwen3_original_sharded), reference)
    assert np.array_equal(_logits(qwen3_mlx), reference)  # flat config, MLX conv layout


@pytest.mark.parametrize("bits", [8, 4])
def test_mlx_quantized_equals_quantize_on_load(request, qwen3_original, reference, bits):
    folder = request.getfixturevalue(f"qwen3_mlx_{bits}bit")
    stored = _logits(folder)
    assert np.array_equal(stored, _logits(qwen3_original, quantize_bits=bits))
    # Expanded to float32 (the CPU path) it computes the same numbers.
    assert np.abs(_logits(folder, expand=True) - stored).max() < 1e-4
    # And quantization really happened: near the float logits, not equal to them.
    assert not np.array_equal(stored, reference)
    assert np.corrcoef(stored.ravel(), reference.ravel())[0, 1] > (0.99 if bits == 8 else 0.6)


def test_quantize_on_load_leaves_the_audio_tower_float(qwen3_original):
    model = build_model(load_checkpoint(qwen3_original), quantize_bits=8)
    assert type(model.audio_tower.layers[0].fc1).__name__ == "Linear"
    assert type(model.lm.model.layers[0].mlp.up_proj).__name__ == "QuantizedLinear"
    assert type(model.lm.model.embed_tokens).__name__ == "QuantizedEmbedding"


def _copy(src, tmp_path):
    dst = tmp_path / "model"
    shutil.copytree(src, dst)
    return dst


def test_bad_folders_give_one_line(tmp_path, qwen3_original, qwen3_original_sharded):
    with pytest.raises(ModelNotFoundError, match="no model folder"):
        load_checkpoint(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        load_checkpoint(empty)

    folder = _copy(qwen3_original, tmp_path)
    (folder / "model.safetensors").unlink()
    with pytest.raises(ModelNotFoundError, match="no weights"):
        load_checkpoint(folder)

    sharded = tmp_path / "sharded"
    shutil.copytree(qwen3_original_sharded, sharded)
    (sharded / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(ModelNotFoundError, match="incomplete"):
        load_checkpoint(sharded)


def test_wrong_or_foreign_configs_are_refused(tmp_path, qwen3_original):
    folder = _copy(qwen3_original, tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["thinker_config"]["text_config"]["hidden_size"] = 96
    config["thinker_config"]["audio_config"]["output_dim"] = 96
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ASRError, match="shape"):
        load_checkpoint(folder)

    config["model_type"] = "whisper"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelNotFoundError, match="not Qwen3-ASR"):
        load_checkpoint(folder)

    (folder / "config.json").write_text("{not json")
    with pytest.raises(ASRError, match="not valid JSON"):
        load_checkpoint(folder)


def test_truncated_weights_are_refused(tmp_path, qwen3_original):
    folder = _copy(qwen3_original, tmp_path)
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ASRError):
        load_checkpoint(folder)
